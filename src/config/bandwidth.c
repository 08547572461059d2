/*
 * Bandwidth table text: parsing (pure, bounds-checked, fuzzed) and
 * canonical formatting. The grammar is in include/distsync/bandwidth.h;
 * evaluation at an instant is in bandwidth_eval.c.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "distsync/bandwidth.h"
#include "distsync/error.h"

#define WEEK_MIN (7 * 1440)

static const char *const day_name[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

static const struct unit {
    const char *name;
    uint64_t bits; /* bits per unit */
} units[] = {
    {"bit", 1},           {"kbit", 1000},          {"Kbit", 1000},     {"Mbit", 1000000},
    {"Gbit", 1000000000}, {"Tbit", 1000000000000}, {"B", 8},           {"kB", 8000},
    {"KB", 8000},         {"MB", 8000000},         {"GB", 8000000000}, {"KiB", 8 << 10},
    {"MiB", 8 << 20},     {"GiB", 8ull << 30},
};

/* A bandwidth key error (ds_errf, error.h). */
#define fail(err, errlen, ...) ds_errf(err, errlen, DS_ECONFIG, __VA_ARGS__)

void ds_bw_table_off(ds_bw_table_t *t)
{
    memset(t, 0, sizeof(*t));
    t->dflt = DS_BW_OFF;
}

/* Copies s for a message: at most 40 bytes, control bytes as '?'. */
static const char *shown(const char *s, size_t n, char *out, size_t outlen)
{
    size_t i;

    for (i = 0; i < n && s[i] != '\0' && i + 1 < outlen && i < 40; i++)
        out[i] = ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f) ? '?' : s[i];
    out[i] = '\0';
    return out;
}

static const struct unit *find_unit(const char *s)
{
    size_t n = strlen(s);

    if (n > 2 && strcmp(s + n - 2, "/s") == 0)
        n -= 2;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strlen(units[i].name) == n && memcmp(units[i].name, s, n) == 0)
            return &units[i];
    return NULL;
}

int ds_bw_parse_rate(const char *s, uint64_t *bps, char *msg, size_t msglen)
{
    const char *p = s;
    const struct unit *u;
    uint64_t ip = 0, frac = 0, scale = 1;
    unsigned __int128 v;
    char buf[48];

    if (strcmp(s, "off") == 0) {
        *bps = DS_BW_OFF;
        return 0;
    }
    if (!isdigit((unsigned char)*p))
        return fail(msg, msglen, "expected a rate such as 20Mbit, 2MB, off or 0, got '%s'",
                    shown(s, 40, buf, sizeof(buf)));
    for (; isdigit((unsigned char)*p); p++)
        if ((ip = ip * 10 + (uint64_t)(*p - '0')) > DS_BW_MAX)
            return fail(msg, msglen, "rate '%s' is too large (at most 10Tbit)",
                        shown(s, 40, buf, sizeof(buf)));
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++) {
            if (scale >= 1000000000000ull)
                return fail(msg, msglen, "rate '%s' has too many decimals (at most 12)",
                            shown(s, 40, buf, sizeof(buf)));
            frac = frac * 10 + (uint64_t)(*p - '0');
            scale *= 10;
        }
        if (scale == 1)
            return fail(msg, msglen, "expected digits after '.' in '%s'",
                        shown(s, 40, buf, sizeof(buf)));
    }
    if (*p == '\0' && ip == 0 && frac == 0) {
        *bps = DS_BW_PAUSED;
        return 0;
    }
    if (*p == '\0')
        return fail(msg, msglen,
                    "rate '%s' has no unit (write e.g. %sMbit or %sMB; bit units are "
                    "1000-based, MB is 10^6 bytes, MiB 2^20 bytes, all per second)",
                    shown(s, 40, buf, sizeof(buf)), buf, buf);
    if ((u = find_unit(p)) == NULL)
        return fail(msg, msglen,
                    "unknown unit '%s' (use bit, kbit, Mbit, Gbit, B, kB, MB, GB, KiB, MiB "
                    "or GiB, per second)",
                    shown(p, 40, buf, sizeof(buf)));
    v = ((unsigned __int128)ip * scale + frac) * u->bits;
    v = (v + scale / 2) / scale;
    if (v > DS_BW_MAX)
        return fail(msg, msglen, "rate '%s' is too large (at most 10Tbit)",
                    shown(s, 40, buf, sizeof(buf)));
    if (v == 0 && ip == 0 && frac == 0) {
        *bps = DS_BW_PAUSED;
        return 0;
    }
    if (v < DS_BW_MIN)
        return fail(msg, msglen, "rate '%s' is below 1kbit (use 0 to pause)",
                    shown(s, 40, buf, sizeof(buf)));
    *bps = (uint64_t)v;
    return 0;
}

/* Parses a day name (Mon..Sun, any case) from s[0..3). -1 when not one. */
static int day_of(const char *s, size_t n)
{
    for (int d = 0; n == 3 && d < 7; d++)
        if (strncasecmp(s, day_name[d], 3) == 0)
            return d;
    return -1;
}

/* "Mon-Fri,Sun" into a weekday mask. */
static int parse_days(const char *s, uint8_t *mask, char *msg, size_t msglen)
{
    char buf[48];
    int a, b;

    *mask = 0;
    for (;;) {
        size_t n = strcspn(s, ",");
        const char *dash = memchr(s, '-', n);

        a = day_of(s, dash ? (size_t)(dash - s) : n);
        b = dash ? day_of(dash + 1, n - (size_t)(dash + 1 - s)) : a;
        if (a < 0 || b < 0)
            return fail(msg, msglen, "expected days such as Mon-Fri or Sat,Sun, got '%s'",
                        shown(s, n, buf, sizeof(buf)));
        for (int d = a;; d = (d + 1) % 7) {
            *mask |= (uint8_t)(1u << d);
            if (d == b)
                break;
        }
        if (s[n] == '\0')
            return 0;
        s += n + 1;
    }
}

/* "HH:MM" (00:00..24:00) into minutes; -1 when malformed. */
static int parse_hm(const char *s, size_t n)
{
    int h, m;

    if (n != 5 || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2] != ':' ||
        !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
        return -1;
    h = (s[0] - '0') * 10 + (s[1] - '0');
    m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && m != 0))
        return -1;
    return h * 60 + m;
}

static int parse_times(const char *s, ds_bw_window_t *w, char *msg, size_t msglen)
{
    const char *dash = strchr(s, '-');
    int a = dash ? parse_hm(s, (size_t)(dash - s)) : -1;
    int b = dash ? parse_hm(dash + 1, strlen(dash + 1)) : -1;
    char buf[48];

    if (a < 0 || b < 0 || a == 1440 || b == 0)
        return fail(msg, msglen,
                    "expected a time range such as 08:00-18:00 or 22:00-06:00 (end 24:00 for "
                    "midnight), got '%s'",
                    shown(s, 40, buf, sizeof(buf)));
    if (a == b)
        return fail(msg, msglen, "time range '%s' is empty (for a whole day, omit the times)",
                    shown(s, 40, buf, sizeof(buf)));
    w->start = (uint16_t)a;
    w->end = (uint16_t)b;
    return 0;
}

/* One window: words of entry e, separated by blanks. */
static int parse_window(char *e, ds_bw_window_t *w, char *msg, size_t msglen)
{
    char *word[4], *save = NULL, buf[48];
    int n = 0, i = 0, rc;

    for (char *t = strtok_r(e, " \t", &save); t != NULL; t = strtok_r(NULL, " \t", &save)) {
        if (n == 3)
            return fail(msg, msglen, "expected '[DAYS] [HH:MM-HH:MM] RATE', got more words in '%s'",
                        shown(word[0], 40, buf, sizeof(buf)));
        word[n++] = t;
    }
    w->days = 0x7f; /* field by field: the padding stays as zeroed, so tables compare */
    w->start = 0;
    w->end = 1440;
    if (n == 2 && strspn(word[0], "0123456789.") == strlen(word[0]) && find_unit(word[1]))
        return fail(msg, msglen, "write the rate without a space ('%s%s')",
                    shown(word[0], 16, buf, sizeof(buf)), word[1]);
    if (n < 2)
        return fail(msg, msglen, "expected '[DAYS] [HH:MM-HH:MM] RATE'");
    if (n > 1 && !isdigit((unsigned char)word[0][0]) &&
        (rc = parse_days(word[i++], &w->days, msg, msglen)) < 0)
        return rc;
    if (i < n - 1 && (rc = parse_times(word[i++], w, msg, msglen)) < 0)
        return rc;
    if (i != n - 1)
        return fail(msg, msglen, "expected '[DAYS] [HH:MM-HH:MM] RATE', got '%s %s'",
                    shown(word[0], 20, buf, sizeof(buf)), word[1]);
    return ds_bw_parse_rate(word[i], &w->bps, msg, msglen);
}

/* Minutes of window w, started on day d, as up to two spans within the week. */
static int spans(const ds_bw_window_t *w, int d, int s[2], int e[2])
{
    int a = d * 1440 + w->start;
    int len = w->end > w->start ? w->end - w->start : w->end + 1440 - w->start;

    s[0] = a;
    e[0] = a + len;
    if (e[0] <= WEEK_MIN)
        return 1;
    e[0] = WEEK_MIN;
    s[1] = 0;
    e[1] = a + len - WEEK_MIN;
    return 2;
}

static int overlap(const ds_bw_window_t *x, const ds_bw_window_t *y, int *at_s, int *at_e)
{
    int xs[2], xe[2], ys[2], ye[2];

    for (int d = 0; d < 7; d++) {
        for (int f = 0; (x->days >> d & 1) && f < 7; f++) {
            int nx = spans(x, d, xs, xe), ny = (y->days >> f & 1) ? spans(y, f, ys, ye) : 0;

            for (int i = 0; i < nx; i++)
                for (int j = 0; j < ny; j++) {
                    *at_s = xs[i] > ys[j] ? xs[i] : ys[j];
                    *at_e = xe[i] < ye[j] ? xe[i] : ye[j];
                    if (*at_s < *at_e)
                        return 1;
                }
        }
    }
    return 0;
}

static void fmt_hm(int min, char *buf, size_t len)
{
    snprintf(buf, len, "%02d:%02d", min / 60, min % 60);
}

static int check_overlaps(const ds_bw_table_t *t, char *msg, size_t msglen)
{
    char a[64], b[64], ra[32], rb[32], hs[8], he[8];
    int s, e;

    for (size_t i = 0; i < t->n; i++) {
        for (size_t j = i + 1; j < t->n; j++) {
            if (!overlap(&t->w[i], &t->w[j], &s, &e))
                continue;
            /* 64 and 32 bytes always fit (bandwidth.h) */
            (void)ds_bw_format_window(&t->w[i], a, sizeof(a));
            (void)ds_bw_format_window(&t->w[j], b, sizeof(b));
            (void)ds_bw_format_rate(t->w[i].bps, ra, sizeof(ra));
            (void)ds_bw_format_rate(t->w[j].bps, rb, sizeof(rb));
            fmt_hm(s % 1440, hs, sizeof(hs));
            fmt_hm(e % 1440, he, sizeof(he));
            return fail(msg, msglen, "window '%s %s' overlaps window '%s %s' (both cover %s %s-%s)",
                        a, ra, b, rb, day_name[s / 1440], hs, e % 1440 ? he : "24:00");
        }
    }
    return 0;
}

/* Entry k (0-based) of a table, trimmed in place: the default rate (first
 * entry only) or a window. */
static int parse_entry(char *e, int k, ds_bw_table_t *out, char *msg, size_t msglen)
{
    char *t = e + strspn(e, " \t"), *end = t + strlen(t), buf[48];

    while (end > t && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = '\0';
    if (*t == '\0')
        return fail(msg, msglen, "entry %d is empty (remove the extra ';')", k + 1);
    if (strpbrk(t, " \t") == NULL && k == 0)
        return ds_bw_parse_rate(t, &out->dflt, msg, msglen);
    if (strpbrk(t, " \t") == NULL)
        return fail(msg, msglen, "entry %d '%s' is not a window (the default rate comes first)",
                    k + 1, shown(t, 40, buf, sizeof(buf)));
    if (out->n == DS_BW_MAX_WINDOWS)
        return fail(msg, msglen, "more than %d windows", DS_BW_MAX_WINDOWS);
    return parse_window(t, &out->w[out->n++], msg, msglen);
}

int ds_bw_parse(const char *text, ds_bw_table_t *out, char *msg, size_t msglen)
{
    char buf[DS_BW_TEXT_MAX], *next;
    int rc = 0, k = 0;

    ds_bw_table_off(out);
    if (strlen(text) >= sizeof(buf))
        return fail(msg, msglen, "table is longer than %d characters", DS_BW_TEXT_MAX - 1);
    for (const char *c = text; *c != '\0'; c++)
        if (((unsigned char)*c < 0x20 && *c != '\t') || (unsigned char)*c >= 0x7f)
            return fail(msg, msglen, "table contains a control or non-ASCII character");
    if (text[0] == '\0')
        return fail(msg, msglen, "empty value (expected a rate such as 20Mbit, or off)");
    strcpy(buf, text);
    for (char *e = buf; rc == 0 && e != NULL; e = next, k++) {
        if ((next = strchr(e, ';')) != NULL)
            *next++ = '\0';
        rc = parse_entry(e, k, out, msg, msglen);
    }
    if (rc == 0)
        rc = check_overlaps(out, msg, msglen);
    if (rc < 0)
        ds_bw_table_off(out);
    return rc;
}

int ds_bw_format_rate(uint64_t bps, char *buf, size_t len)
{
    static const struct unit u[] = {
        {"Tbit", 1000000000000}, {"Gbit", 1000000000}, {"Mbit", 1000000}, {"kbit", 1000}};
    size_t i = 0;
    uint64_t rem;
    int n;

    if (len < 32)
        return DS_ETOOBIG;
    if (bps == DS_BW_OFF || bps == DS_BW_PAUSED) {
        snprintf(buf, len, "%s", bps ? "off" : "0");
        return 0;
    }
    while (i < 3 && bps < u[i].bits)
        i++;
    n = snprintf(buf, len, "%llu", (unsigned long long)(bps / u[i].bits));
    rem = bps % u[i].bits;
    if (rem != 0) {
        int digits = 0;

        for (uint64_t b = u[i].bits; b > 1; b /= 10)
            digits++;
        while (rem % 10 == 0) {
            rem /= 10;
            digits--;
        }
        n += snprintf(buf + n, len - (size_t)n, ".%0*llu", digits, (unsigned long long)rem);
    }
    snprintf(buf + n, len - (size_t)n, "%s", u[i].name);
    return 0;
}

int ds_bw_format_window(const ds_bw_window_t *w, char *buf, size_t len)
{
    static const int order[7] = {1, 2, 3, 4, 5, 6, 0}; /* Mon first */
    size_t n = 0;
    char hs[8], he[8];

    if (len < 64)
        return DS_ETOOBIG;
    buf[0] = '\0';
    for (int i = 0; i < 7 && w->days != 0x7f; i++) {
        int j = i;

        if (!(w->days >> order[i] & 1))
            continue;
        while (j + 1 < 7 && (w->days >> order[j + 1] & 1))
            j++;
        n += (size_t)snprintf(buf + n, len - n, "%s%s%s%s", n ? "," : "", day_name[order[i]],
                              j > i ? "-" : "", j > i ? day_name[order[j]] : "");
        i = j;
    }
    if (w->start != 0 || w->end != 1440 || n == 0) {
        fmt_hm(w->start, hs, sizeof(hs));
        fmt_hm(w->end, he, sizeof(he));
        snprintf(buf + n, len - n, "%s%s-%s", n ? " " : "", hs, he);
    }
    return 0;
}

int ds_bw_format(const ds_bw_table_t *t, char *buf, size_t len)
{
    char r[32], w[64];
    size_t n;

    if (len < 32)
        return DS_ETOOBIG;
    (void)ds_bw_format_rate(t->dflt, buf, len); /* len >= 32 always fits */
    n = strlen(buf);
    for (size_t i = 0; i < t->n; i++) {
        (void)ds_bw_format_window(&t->w[i], w, sizeof(w));
        (void)ds_bw_format_rate(t->w[i].bps, r, sizeof(r));
        if (n + strlen(w) + strlen(r) + 4 >= len)
            return DS_ETOOBIG;
        n += (size_t)snprintf(buf + n, len - n, "; %s %s", w, r);
    }
    return 0;
}

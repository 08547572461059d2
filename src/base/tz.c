/*
 * Time zones: TZif reader (RFC 8536), POSIX TZ footer rules, and conversion
 * between instants and local wall time. Pure except ds_tz_load().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "distsync/error.h"
#include "distsync/tz.h"

#define MAX_UTOFF  (26 * 3600)   /* |UT offset| bound; RFC 8536 needs < 2^31 */
#define WIN        (27 * 3600)   /* resolve(): wider than any offset */
#define MAX_TZIF   (1024 * 1024) /* file size bound for ds_tz_load */
#define ZONEINFO   "/usr/share/zoneinfo/"
#define MAX_CHANGE 16 /* offsets considered around one wall time */

/* One date of a POSIX TZ rule: Jn, n or Mm.w.d, plus a local time. */
struct rule_date {
    char kind; /* 'J', 'n' or 'M' */
    int a, b, c;
    int32_t time; /* seconds after local midnight, -167h..167h */
};

struct ds_tz {
    char *name;
    int64_t *trans; /* ascending transition instants */
    uint8_t *tidx;  /* type index after each transition */
    size_t ntrans;
    int32_t *utoff; /* per type */
    uint8_t *isdst;
    size_t ntypes;
    int has_rule; /* footer present: governs instants after the table */
    int rule_dst; /* the footer rule has a DST part */
    int32_t std_off, dst_off;
    struct rule_date start, end;
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* ---- POSIX TZ footer ------------------------------------------------- */

/* Parses [+-]hh[:mm[:ss]] with hh <= maxh into seconds. */
static int posix_hms(const char **sp, int maxh, int32_t *out)
{
    const char *s = *sp;
    int sign = 1, part[3] = {0, 0, 0};

    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    for (int i = 0; i < 3; i++) {
        int n = 0, digits = 0;

        if (i > 0) {
            if (*s != ':')
                break;
            s++;
        }
        while (*s >= '0' && *s <= '9' && digits < 3) {
            n = n * 10 + (*s++ - '0');
            digits++;
        }
        if (digits == 0 || (i > 0 && n > 59))
            return -1;
        part[i] = n;
    }
    if (part[0] > maxh)
        return -1;
    *out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
    *sp = s;
    return 0;
}

/* Skips a zone abbreviation: <...> or 3+ letters. */
static int posix_name(const char **sp)
{
    const char *s = *sp;
    size_t n = 0;

    if (*s == '<') {
        s++;
        while (*s != '>') {
            if (*s == '\0' || !(((*s | 32) >= 'a' && (*s | 32) <= 'z') ||
                                (*s >= '0' && *s <= '9') || *s == '+' || *s == '-'))
                return -1;
            s++;
            n++;
        }
        s++;
    } else {
        while (((*s | 32) >= 'a' && (*s | 32) <= 'z')) {
            s++;
            n++;
        }
    }
    if (n < 3)
        return -1;
    *sp = s;
    return 0;
}

static int posix_num(const char **sp, int lo, int hi, int *out)
{
    const char *s = *sp;
    int n = 0, digits = 0;

    while (*s >= '0' && *s <= '9' && digits < 4) {
        n = n * 10 + (*s++ - '0');
        digits++;
    }
    if (digits == 0 || n < lo || n > hi)
        return -1;
    *out = n;
    *sp = s;
    return 0;
}

static int posix_date(const char **sp, struct rule_date *rd)
{
    const char *s = *sp;

    rd->time = 2 * 3600;
    if (*s == 'J') {
        s++;
        rd->kind = 'J';
        if (posix_num(&s, 1, 365, &rd->a) < 0)
            return -1;
    } else if (*s == 'M') {
        s++;
        rd->kind = 'M';
        if (posix_num(&s, 1, 12, &rd->a) < 0 || *s++ != '.' || posix_num(&s, 1, 5, &rd->b) < 0 ||
            *s++ != '.' || posix_num(&s, 0, 6, &rd->c) < 0)
            return -1;
    } else {
        rd->kind = 'n';
        if (posix_num(&s, 0, 365, &rd->a) < 0)
            return -1;
    }
    if (*s == '/') {
        s++;
        if (posix_hms(&s, 167, &rd->time) < 0)
            return -1;
    }
    *sp = s;
    return 0;
}

/* Parses a POSIX TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3" into tz's
 * rule. POSIX offsets count west; ours count east. */
static int posix_parse(const char *s, ds_tz_t *tz)
{
    int32_t off;

    if (posix_name(&s) < 0 || posix_hms(&s, 24, &off) < 0)
        return -1;
    tz->std_off = -off;
    tz->dst_off = tz->std_off;
    tz->rule_dst = 0;
    if (*s != '\0') {
        if (posix_name(&s) < 0)
            return -1;
        tz->dst_off = tz->std_off + 3600;
        if (*s != ',' && *s != '\0') {
            if (posix_hms(&s, 24, &off) < 0)
                return -1;
            tz->dst_off = -off;
        }
        if (*s++ != ',' || posix_date(&s, &tz->start) < 0 || *s++ != ',' ||
            posix_date(&s, &tz->end) < 0 || *s != '\0')
            return -1;
        tz->rule_dst = 1;
    }
    tz->has_rule = 1;
    return 0;
}

/* Local day number of a rule date in year y. */
static int64_t rule_day(const struct rule_date *rd, int64_t y)
{
    int64_t jan1 = ds_tz_days_from_civil(y, 1, 1), first, day;
    int leap = ds_tz_days_in_month(y, 2) == 29;

    if (rd->kind == 'J')
        return jan1 + rd->a - 1 + (leap && rd->a >= 60);
    if (rd->kind == 'n')
        return jan1 + rd->a;
    first = ds_tz_days_from_civil(y, rd->a, 1);
    day = first + (rd->c - ds_tz_weekday(first) + 7) % 7 + (int64_t)(rd->b - 1) * 7;
    while (day >= first + ds_tz_days_in_month(y, rd->a))
        day -= 7;
    return day;
}

struct rule_tr {
    int64_t at;
    int dst; /* state after the transition */
};

/* The rule's transitions in years y-1..y+1, sorted; ends sort before starts
 * at the same instant, so a year-round DST rule stays in DST. */
static void rule_year_trans(const ds_tz_t *tz, int64_t y, struct rule_tr tr[6])
{
    for (int i = 0; i < 3; i++) {
        int64_t yy = y - 1 + i;

        tr[2 * i].at = rule_day(&tz->end, yy) * 86400 + tz->end.time - tz->dst_off;
        tr[2 * i].dst = 0;
        tr[2 * i + 1].at = rule_day(&tz->start, yy) * 86400 + tz->start.time - tz->std_off;
        tr[2 * i + 1].dst = 1;
    }
    for (int i = 1; i < 6; i++) {
        struct rule_tr x = tr[i];
        int j = i;

        while (j > 0 && (tr[j - 1].at > x.at || (tr[j - 1].at == x.at && tr[j - 1].dst > x.dst))) {
            tr[j] = tr[j - 1];
            j--;
        }
        tr[j] = x;
    }
}

static int64_t year_of(int64_t t)
{
    int64_t y;
    int m, d;

    ds_tz_civil_from_days(floor_div(t, 86400), &y, &m, &d);
    return y;
}

/* DST state of the footer rule at instant t. */
static int rule_isdst(const ds_tz_t *tz, int64_t t)
{
    struct rule_tr tr[6];
    int dst;

    if (!tz->rule_dst)
        return 0;
    rule_year_trans(tz, year_of(t), tr);
    dst = !tr[0].dst;
    for (int i = 0; i < 6 && tr[i].at <= t; i++)
        dst = tr[i].dst;
    return dst;
}

/* First footer-rule transition strictly after t. 0, or -1 if none. */
static int rule_next(const ds_tz_t *tz, int64_t t, int64_t *at)
{
    struct rule_tr tr[6];

    if (!tz->rule_dst)
        return -1;
    for (int64_t y = year_of(t); y <= year_of(t) + 2; y++) {
        rule_year_trans(tz, y, tr);
        for (int i = 0; i < 6; i++) {
            if (tr[i].at > t) {
                *at = tr[i].at;
                return 0;
            }
        }
    }
    return -1;
}

/* ---- offsets --------------------------------------------------------- */

/* Index of the last transition <= t, or -1. */
static ptrdiff_t trans_index(const ds_tz_t *tz, int64_t t)
{
    size_t lo = 0, hi = tz->ntrans;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (tz->trans[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}

static int32_t offset_at(const ds_tz_t *tz, int64_t t, int *isdst)
{
    ptrdiff_t i = trans_index(tz, t);
    int dst;

    if (tz->has_rule && (tz->ntrans == 0 || (i == (ptrdiff_t)tz->ntrans - 1 && t > tz->trans[i]))) {
        dst = rule_isdst(tz, t);
        if (isdst)
            *isdst = dst;
        return dst ? tz->dst_off : tz->std_off;
    }
    i = i < 0 ? 0 : tz->tidx[i];
    if (isdst)
        *isdst = tz->isdst[i];
    return tz->utoff[i];
}

/* First instant T in (t, limit] where the UT offset changes. 0 or -1. */
static int next_change(const ds_tz_t *tz, int64_t t, int64_t limit, int64_t *out)
{
    ptrdiff_t i = trans_index(tz, t) + 1;
    int64_t c = t;

    for (;;) {
        if (i < (ptrdiff_t)tz->ntrans) {
            c = tz->trans[i++];
        } else {
            if (!tz->has_rule)
                return -1;
            if (tz->ntrans > 0 && c < tz->trans[tz->ntrans - 1])
                c = tz->trans[tz->ntrans - 1];
            if (c > limit || rule_next(tz, c, &c) < 0)
                return -1;
        }
        if (c > limit)
            return -1;
        if (offset_at(tz, c, NULL) != offset_at(tz, c - 1, NULL)) {
            *out = c;
            return 0;
        }
    }
}

/* UTC offset and DST flag at t. */
int ds_tz_offset(const ds_tz_t *tz, int64_t t, int32_t *utoff, int *isdst)
{
    int dst;

    if (t < DS_TZ_MIN || t > DS_TZ_MAX)
        return DS_ERANGE;
    *utoff = offset_at(tz, t, &dst);
    if (isdst)
        *isdst = dst;
    return 0;
}

/* Local wall time -> instant(s); see tz.h. */
int ds_tz_resolve(const ds_tz_t *tz, int64_t local, ds_tz_local_t *out)
{
    int32_t offs[MAX_CHANGE];
    int64_t cur = local - WIN, t, c, best = 0, second = 0;
    size_t noffs = 0, nvalid = 0;

    if (local < DS_TZ_MIN || local > DS_TZ_MAX)
        return DS_ERANGE;
    offs[noffs++] = offset_at(tz, cur, NULL);
    while (noffs < MAX_CHANGE && next_change(tz, cur, local + WIN, &c) == 0) {
        offs[noffs++] = offset_at(tz, c, NULL);
        cur = c;
    }
    for (size_t i = 0; i < noffs; i++) {
        t = local - offs[i];
        if (offset_at(tz, t, NULL) != offs[i])
            continue;
        if (nvalid == 0 || t < best) {
            second = nvalid == 0 ? t : best;
            best = t;
        } else if (t != best && (second == best || t > second)) {
            second = t;
        }
        nvalid++;
    }
    if (nvalid > 0) {
        if (best < DS_TZ_MIN || second > DS_TZ_MAX)
            return DS_ERANGE;
        out->first = best;
        out->second = nvalid > 1 ? second : best;
        out->kind = out->second != best ? DS_TZ_FOLD : DS_TZ_UNIQUE;
        return 0;
    }
    /* A gap: the transition whose skipped wall-time range holds local. */
    cur = local - WIN;
    while (next_change(tz, cur, local + WIN, &c) == 0) {
        if (c - 1 + offset_at(tz, c - 1, NULL) < local && c + offset_at(tz, c, NULL) > local) {
            if (c < DS_TZ_MIN || c > DS_TZ_MAX)
                return DS_ERANGE;
            out->kind = DS_TZ_GAP;
            out->first = out->second = c;
            return 0;
        }
        cur = c;
    }
    return DS_ECORRUPT;
}

/* ---- TZif ------------------------------------------------------------ */

struct rd {
    const uint8_t *p;
    size_t len, pos;
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be_time(const uint8_t *p, int tsize)
{
    if (tsize == 4)
        return (int32_t)be32(p);
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_hdr {
    int version;
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static int read_header(struct rd *r, struct tzif_hdr *h)
{
    const uint8_t *p = r->p + r->pos;
    uint32_t c[6];

    if (r->len - r->pos < 44 || memcmp(p, "TZif", 4) != 0)
        return DS_ECORRUPT;
    h->version = p[4] == 0 ? 1 : p[4] - '0';
    if (h->version < 1 || h->version > 4)
        return DS_ECORRUPT;
    for (int i = 0; i < 6; i++)
        c[i] = be32(p + 20 + 4 * i);
    h->isutcnt = c[0], h->isstdcnt = c[1], h->leapcnt = c[2];
    h->timecnt = c[3], h->typecnt = c[4], h->charcnt = c[5];
    if (h->typecnt == 0 || h->typecnt > 256 || h->charcnt == 0 ||
        (h->isutcnt != 0 && h->isutcnt != h->typecnt) ||
        (h->isstdcnt != 0 && h->isstdcnt != h->typecnt))
        return DS_ECORRUPT;
    r->pos += 44;
    return 0;
}

static uint64_t block_size(const struct tzif_hdr *h, int tsize)
{
    return (uint64_t)h->timecnt * (tsize + 1) + (uint64_t)h->typecnt * 6 + h->charcnt +
           (uint64_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

/* Reads one data block (transitions and types) into tz. */
static int read_block(struct rd *r, const struct tzif_hdr *h, int tsize, ds_tz_t *tz)
{
    const uint8_t *p = r->p + r->pos, *idx, *types;

    if (block_size(h, tsize) > r->len - r->pos)
        return DS_ECORRUPT;
    tz->ntrans = h->timecnt;
    tz->ntypes = h->typecnt;
    tz->trans = malloc(sizeof(int64_t) * (h->timecnt ? h->timecnt : 1));
    tz->tidx = malloc(h->timecnt ? h->timecnt : 1);
    tz->utoff = malloc(sizeof(int32_t) * h->typecnt);
    tz->isdst = malloc(h->typecnt);
    if (!tz->trans || !tz->tidx || !tz->utoff || !tz->isdst)
        return DS_ENOMEM;
    idx = p + (size_t)h->timecnt * tsize;
    types = idx + h->timecnt;
    for (size_t i = 0; i < h->timecnt; i++) {
        tz->trans[i] = be_time(p + i * tsize, tsize);
        tz->tidx[i] = idx[i];
        if (idx[i] >= h->typecnt || (i > 0 && tz->trans[i] <= tz->trans[i - 1]))
            return DS_ECORRUPT;
    }
    for (size_t i = 0; i < h->typecnt; i++) {
        int32_t off = (int32_t)be32(types + 6 * i);

        if (off <= -MAX_UTOFF || off >= MAX_UTOFF || types[6 * i + 4] > 1 ||
            types[6 * i + 5] >= h->charcnt)
            return DS_ECORRUPT;
        tz->utoff[i] = off;
        tz->isdst[i] = types[6 * i + 4];
    }
    r->pos += block_size(h, tsize);
    return 0;
}

/* Reads the "\nTZ-string\n" footer of a v2+ file. */
static int read_footer(struct rd *r, ds_tz_t *tz)
{
    const uint8_t *p = r->p + r->pos, *nl;
    size_t left = r->len - r->pos;
    char buf[256];

    if (left < 2 || p[0] != '\n')
        return DS_ECORRUPT;
    nl = memchr(p + 1, '\n', left - 1);
    if (nl == NULL || (size_t)(nl - p - 1) >= sizeof(buf))
        return DS_ECORRUPT;
    memcpy(buf, p + 1, (size_t)(nl - p - 1));
    buf[nl - p - 1] = '\0';
    if (buf[0] == '\0')
        return 0;
    if (memchr(buf, '\0', (size_t)(nl - p - 1)) != NULL || posix_parse(buf, tz) < 0)
        return DS_ECORRUPT;
    if (tz->std_off <= -MAX_UTOFF || tz->std_off >= MAX_UTOFF || tz->dst_off <= -MAX_UTOFF ||
        tz->dst_off >= MAX_UTOFF)
        return DS_ECORRUPT;
    return 0;
}

static ds_tz_t *tz_alloc(const char *name)
{
    ds_tz_t *tz = calloc(1, sizeof(*tz));

    if (tz == NULL)
        return NULL;
    tz->name = strdup(name ? name : "");
    if (tz->name == NULL) {
        free(tz);
        return NULL;
    }
    return tz;
}

/* Parses TZif bytes; see tz.h. */
int ds_tz_parse(const void *buf, size_t len, const char *name, ds_tz_t **out)
{
    struct rd r = {buf, len, 0};
    struct tzif_hdr h;
    ds_tz_t *tz = NULL;
    int err;

    *out = NULL;
    err = read_header(&r, &h);
    if (err < 0)
        goto out;
    if (h.version >= 2) {
        if (block_size(&h, 4) > r.len - r.pos) {
            err = DS_ECORRUPT;
            goto out;
        }
        r.pos += block_size(&h, 4);
        err = read_header(&r, &h);
        if (err < 0)
            goto out;
    }
    tz = tz_alloc(name);
    err = tz ? read_block(&r, &h, h.version >= 2 ? 8 : 4, tz) : DS_ENOMEM;
    if (err == 0 && h.version >= 2)
        err = read_footer(&r, tz);
out:
    if (err < 0)
        ds_tz_free(tz);
    else
        *out = tz;
    return err;
}

/* Fixed UTC zone. */
int ds_tz_utc(ds_tz_t **out)
{
    ds_tz_t *tz = tz_alloc("UTC");

    *out = NULL;
    if (tz == NULL)
        return DS_ENOMEM;
    tz->utoff = calloc(1, sizeof(int32_t));
    tz->isdst = calloc(1, 1);
    tz->ntypes = 1;
    if (!tz->utoff || !tz->isdst) {
        ds_tz_free(tz);
        return DS_ENOMEM;
    }
    *out = tz;
    return 0;
}

void ds_tz_free(ds_tz_t *tz)
{
    if (tz == NULL)
        return;
    free(tz->name);
    free(tz->trans);
    free(tz->tidx);
    free(tz->utoff);
    free(tz->isdst);
    free(tz);
}

const char *ds_tz_name(const ds_tz_t *tz)
{
    return tz->name;
}

/* ---- loading (the only I/O) ------------------------------------------ */

static int name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > 200 || name[0] == '/' || strstr(name, "..") != NULL)
        return 0;
    for (const char *s = name; *s; s++) {
        if (!((*s | 32) >= 'a' && (*s | 32) <= 'z') && !(*s >= '0' && *s <= '9') &&
            strchr("/_+-.", *s) == NULL)
            return 0;
    }
    return 1;
}

/* Reads a whole (small) regular file. */
static int read_file(const char *path, uint8_t **buf, size_t *len)
{
    struct stat st;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;

    *buf = NULL;
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_TZIF) {
        err = DS_ETZ;
        goto out;
    }
    *buf = malloc((size_t)st.st_size + 1);
    if (*buf == NULL) {
        err = DS_ENOMEM;
        goto out;
    }
    n = read(fd, *buf, (size_t)st.st_size);
    if (n != st.st_size)
        err = n < 0 ? -errno : DS_ECHANGED;
    *len = (size_t)st.st_size;
out:
    close(fd);
    if (err < 0) {
        free(*buf);
        *buf = NULL;
    }
    return err;
}

static int load_path(const char *path, const char *name, ds_tz_t **out)
{
    uint8_t *buf;
    size_t len = 0;
    int err = read_file(path, &buf, &len);

    if (err < 0)
        return err;
    err = ds_tz_parse(buf, len, name, out);
    free(buf);
    return err;
}

static int load_named(const char *name, ds_tz_t **out)
{
    char path[256];
    int err;

    if (!name_ok(name))
        return DS_ETZ;
    snprintf(path, sizeof(path), ZONEINFO "%s", name);
    err = load_path(path, name, out);
    if (err < 0 && err != DS_ECORRUPT && err != DS_ENOMEM) {
        if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0)
            return ds_tz_utc(out);
        return DS_ETZ;
    }
    return err;
}

/* A zone from a POSIX TZ string such as $TZ="CET-1CEST,M3.5.0,M10.5.0/3". */
static int load_posix(const char *str, ds_tz_t **out)
{
    ds_tz_t *tz = NULL;
    int err = ds_tz_utc(&tz);

    if (err < 0)
        return err;
    free(tz->name);
    tz->name = strdup(str);
    if (tz->name == NULL || posix_parse(str, tz) < 0) {
        ds_tz_free(tz);
        return DS_ETZ;
    }
    *out = tz;
    return 0;
}

/* The console's zone: $TZ, /etc/localtime, UTC. */
static int load_default(ds_tz_t **out)
{
    const char *env = getenv("TZ"), *name = NULL;
    char link[512];
    ssize_t n;

    if (env != NULL && *env != '\0') {
        if (*env == ':')
            env++;
        if (strncmp(env, ZONEINFO, strlen(ZONEINFO)) == 0)
            env += strlen(ZONEINFO);
        if (load_named(env, out) == 0)
            return 0;
        if (load_posix(env, out) == 0)
            return 0;
    }
    n = readlink("/etc/localtime", link, sizeof(link) - 1);
    if (n > 0) {
        link[n] = '\0';
        name = strstr(link, "zoneinfo/");
        name = name ? name + strlen("zoneinfo/") : NULL;
    }
    if (load_path("/etc/localtime", name ? name : "localtime", out) == 0)
        return 0;
    return ds_tz_utc(out);
}

/* Loads a zone by name or the console's zone; see tz.h. */
int ds_tz_load(const char *name, ds_tz_t **out)
{
    *out = NULL;
    if (name == NULL || *name == '\0')
        return load_default(out);
    return load_named(name, out);
}

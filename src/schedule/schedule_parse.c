/*
 * Schedule rule text: parsing (pure, bounds-checked, fuzzed), canonical
 * formatting, and windows. Every error names the offending word.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "distsync/error.h"
#include "distsync/schedule.h"

#define MAX_RULE  256
#define MAX_WORDS 24

static const char *const wday_short[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
static const char *const wday_long[7] = {"sunday",   "monday", "tuesday", "wednesday",
                                         "thursday", "friday", "saturday"};
static const char *const ord_long[4] = {"first", "second", "third", "fourth"};
static const char *const ord_short[4] = {"1st", "2nd", "3rd", "4th"};

struct words {
    char buf[MAX_RULE];
    char *w[MAX_WORDS];
    int n;
};

/* A schedule rule error (ds_errf, error.h). */
#define fail(err, errlen, ...) ds_errf(err, errlen, DS_ESCHEDULE, __VA_ARGS__)

/* Splits text on blanks. Words point into w->buf. */
static int split(const char *text, struct words *w, char *err, size_t errlen)
{
    char *p;

    if (strlen(text) >= sizeof(w->buf))
        return fail(err, errlen, "rule is longer than %d characters", MAX_RULE - 1);
    for (const char *c = text; *c; c++) {
        if (((unsigned char)*c < 0x20 && *c != '\t') || (unsigned char)*c >= 0x7f)
            return fail(err, errlen, "rule contains a control or non-ASCII character");
    }
    strcpy(w->buf, text);
    w->n = 0;
    for (p = w->buf; *p;) {
        while (*p == ' ' || *p == '\t')
            *p++ = '\0';
        if (*p == '\0')
            break;
        if (w->n == MAX_WORDS)
            return fail(err, errlen, "rule has more than %d words", MAX_WORDS);
        w->w[w->n++] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
    }
    return 0;
}

/* Parses exactly n..m digits into *out. Returns the count, or -1. */
static int num(const char *s, int maxdigits, int *out)
{
    int v = 0, i;

    for (i = 0; s[i] >= '0' && s[i] <= '9'; i++) {
        if (i == maxdigits)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return i;
}

static int parse_time(struct words *w, int i, ds_schedule_rule_t *r, char *err, size_t errlen)
{
    const char *s;
    int n;

    if (i >= w->n)
        return fail(err, errlen, "missing time (HH:MM) after '%s'", w->w[w->n - 1]);
    s = w->w[i];
    n = num(s, 2, &r->hour);
    if (n < 1 || s[n] != ':' || num(s + n + 1, 2, &r->minute) != 2 || s[n + 3] != '\0')
        return fail(err, errlen, "word '%s' is not a time (HH:MM)", s);
    if (r->hour > 23 || r->minute > 59)
        return fail(err, errlen, "time '%s' is out of range 00:00..23:59", s);
    if (i + 1 < w->n)
        return fail(err, errlen, "unexpected word '%s' after the time", w->w[i + 1]);
    return 0;
}

static int lookup(const char *s, const char *const *names, int count)
{
    for (int i = 0; i < count; i++) {
        if (strcasecmp(s, names[i]) == 0)
            return i;
    }
    return -1;
}

static int weekday(const char *s)
{
    int d = lookup(s, wday_short, 7);

    return d >= 0 ? d : lookup(s, wday_long, 7);
}

static int parse_once(struct words *w, ds_schedule_rule_t *r, char *err, size_t errlen)
{
    const char *s;

    if (w->n < 2)
        return fail(err, errlen, "missing date (YYYY-MM-DD) after 'once'");
    s = w->w[1];
    if (num(s, 4, &r->year) != 4 || s[4] != '-' || num(s + 5, 2, &r->month) != 2 || s[7] != '-' ||
        num(s + 8, 2, &r->day) != 2 || s[10] != '\0')
        return fail(err, errlen, "word '%s' is not a date (YYYY-MM-DD)", s);
    if (r->year < 1 || r->month < 1 || r->month > 12 || r->day < 1 ||
        r->day > ds_tz_days_in_month(r->year, r->month))
        return fail(err, errlen, "date '%s' does not exist", s);
    return parse_time(w, 2, r, err, errlen);
}

/* weekly DAY[,DAY...] [DAY...] HH:MM */
static int parse_weekly(struct words *w, ds_schedule_rule_t *r, char *err, size_t errlen)
{
    int i;

    for (i = 1; i < w->n && strchr(w->w[i], ':') == NULL; i++) {
        char item[32];
        const char *p = w->w[i];

        while (*p) {
            size_t len = strcspn(p, ",");
            int d;

            if (len == 0) {
                p++;
                continue;
            }
            if (len >= sizeof(item))
                len = sizeof(item) - 1;
            memcpy(item, p, len);
            item[len] = '\0';
            d = weekday(item);
            if (d < 0)
                return fail(err, errlen, "word '%s' is not a weekday", item);
            r->weekdays |= 1u << d;
            p += strcspn(p, ",");
        }
    }
    if (r->weekdays == 0)
        return fail(err, errlen, "missing weekdays (mon,thu...) after 'weekly'");
    return parse_time(w, i, r, err, errlen);
}

/* "+N days" or "+1 day" at w[*i]. */
static int parse_delay(struct words *w, int *i, ds_schedule_rule_t *r, char *err, size_t errlen)
{
    const char *s = w->w[*i];
    int n = num(s + 1, 3, &r->delay);

    if (n < 1 || s[n + 1] != '\0')
        return fail(err, errlen, "delay '%s' is not a number of days (+N days)", s);
    if (r->delay > DS_SCHED_MAX_DELAY)
        return fail(err, errlen, "delay +%d days is out of range 0..%d", r->delay,
                    DS_SCHED_MAX_DELAY);
    if (*i + 1 >= w->n ||
        (strcasecmp(w->w[*i + 1], "days") != 0 && strcasecmp(w->w[*i + 1], "day") != 0))
        return fail(err, errlen, "word '%s' after the delay is not 'days'",
                    *i + 1 < w->n ? w->w[*i + 1] : "");
    *i += 2;
    return 0;
}

static int parse_monthly(struct words *w, ds_schedule_rule_t *r, char *err, size_t errlen)
{
    int i = 2, n;

    if (w->n < 2)
        return fail(err, errlen, "missing 'day D', 'last' or an ordinal after 'monthly'");
    if (strcasecmp(w->w[1], "day") == 0) {
        r->kind = DS_SCHED_MONTH_DAY;
        if (w->n < 3)
            return fail(err, errlen, "missing day of the month (1..31) after 'day'");
        n = num(w->w[2], 3, &r->day);
        if (n < 1 || w->w[2][n] != '\0')
            return fail(err, errlen, "word '%s' is not a day of the month (1..31)", w->w[2]);
        if (r->day < 1 || r->day > 31)
            return fail(err, errlen, "day %d is out of range 1..31", r->day);
        return parse_time(w, 3, r, err, errlen);
    }
    r->ordinal = strcasecmp(w->w[1], "last") == 0 ? DS_SCHED_LAST : -2;
    if (r->ordinal == -2) {
        n = lookup(w->w[1], ord_long, 4);
        n = n >= 0 ? n : lookup(w->w[1], ord_short, 4);
        if (n < 0)
            return fail(err, errlen, "word '%s' is not an ordinal (first..fourth, last) or 'day'",
                        w->w[1]);
        r->ordinal = n + 1;
    }
    if (w->n < 3)
        return fail(err, errlen, "missing weekday after '%s'", w->w[1]);
    if (r->ordinal == DS_SCHED_LAST && strcasecmp(w->w[2], "day") == 0) {
        r->kind = DS_SCHED_LAST_DAY;
        r->ordinal = 0;
        return parse_time(w, 3, r, err, errlen);
    }
    r->kind = DS_SCHED_NTH_WEEKDAY;
    r->weekday = weekday(w->w[2]);
    if (r->weekday < 0)
        return fail(err, errlen, "word '%s' is not a weekday", w->w[2]);
    i = 3;
    if (i < w->n && w->w[i][0] == '+') {
        int e = parse_delay(w, &i, r, err, errlen);

        if (e < 0)
            return e;
    }
    return parse_time(w, i, r, err, errlen);
}

/* Parses rule text; see schedule.h. */
int ds_schedule_parse_rule(const char *when, ds_schedule_rule_t *rule, char *err, size_t errlen)
{
    struct words w;
    ds_schedule_rule_t r = {0};
    int e;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    e = split(when, &w, err, errlen);
    if (e < 0)
        return e;
    if (w.n == 0)
        return fail(err, errlen, "empty rule");
    if (strcasecmp(w.w[0], "once") == 0) {
        r.kind = DS_SCHED_ONCE;
        e = parse_once(&w, &r, err, errlen);
    } else if (strcasecmp(w.w[0], "daily") == 0) {
        r.kind = DS_SCHED_DAILY;
        e = parse_time(&w, 1, &r, err, errlen);
    } else if (strcasecmp(w.w[0], "weekly") == 0) {
        r.kind = DS_SCHED_WEEKLY;
        e = parse_weekly(&w, &r, err, errlen);
    } else if (strcasecmp(w.w[0], "monthly") == 0) {
        e = parse_monthly(&w, &r, err, errlen);
    } else {
        e = fail(err, errlen, "word '%s' is not a rule (once, daily, weekly, monthly)", w.w[0]);
    }
    if (e == 0)
        *rule = r;
    return e;
}

/* Canonical text; see schedule.h. */
int ds_schedule_format_rule(const ds_schedule_rule_t *r, char *buf, size_t len)
{
    char days[64] = "";
    int n = -1;

    switch (r->kind) {
    case DS_SCHED_ONCE:
        n = snprintf(buf, len, "once %04d-%02d-%02d %02d:%02d", r->year, r->month, r->day, r->hour,
                     r->minute);
        break;
    case DS_SCHED_DAILY:
        n = snprintf(buf, len, "daily %02d:%02d", r->hour, r->minute);
        break;
    case DS_SCHED_WEEKLY:
        for (int d = 0; d < 7; d++) {
            if (r->weekdays & (1u << d)) {
                if (days[0])
                    strcat(days, ",");
                strcat(days, wday_short[d]);
            }
        }
        n = snprintf(buf, len, "weekly %s %02d:%02d", days, r->hour, r->minute);
        break;
    case DS_SCHED_MONTH_DAY:
        n = snprintf(buf, len, "monthly day %d %02d:%02d", r->day, r->hour, r->minute);
        break;
    case DS_SCHED_LAST_DAY:
        n = snprintf(buf, len, "monthly last day %02d:%02d", r->hour, r->minute);
        break;
    case DS_SCHED_NTH_WEEKDAY:
        if (r->delay > 0)
            snprintf(days, sizeof(days), " +%d day%s", r->delay, r->delay == 1 ? "" : "s");
        n = snprintf(buf, len, "monthly %s %s%s %02d:%02d",
                     r->ordinal == DS_SCHED_LAST ? "last" : ord_long[(r->ordinal - 1) & 3],
                     wday_long[r->weekday % 7], days, r->hour, r->minute);
        break;
    }
    return n < 0 || (size_t)n >= len ? DS_ETOOBIG : 0;
}

/* Parses "90m", "4h", "2d"; see schedule.h. */
int ds_schedule_parse_window(const char *window, int64_t *secs, char *err, size_t errlen)
{
    int v, n = num(window, 6, &v);
    int64_t unit;

    if (n < 1)
        return fail(err, errlen, "window '%s' is not a duration (e.g. 90m, 4h, 2d)", window);
    if (strcmp(window + n, "m") == 0)
        unit = 60;
    else if (strcmp(window + n, "h") == 0)
        unit = 3600;
    else if (strcmp(window + n, "d") == 0)
        unit = 86400;
    else
        return fail(err, errlen, "window '%s': unit must be m, h or d", window);
    if (v == 0 || (int64_t)v * unit > 366 * 86400)
        return fail(err, errlen, "window '%s' is out of range 1m..366d", window);
    *secs = (int64_t)v * unit;
    return 0;
}

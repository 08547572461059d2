/*
 * Schedule engine: cycles, fire times, anchors. Pure: time comes in as an
 * argument. See include/distsync/schedule.h for the semantics.
 *
 * Every rule is a sequence of cycles indexed by an integer k: the local day
 * number for daily and weekly rules, year * 12 + month - 1 for monthly rules.
 * A cycle has an anchor day and a fire day (equal unless delayed); its fire
 * instant is the resolution of fire day + wall time in the zone. Fire days
 * strictly increase with k (delayed monthly cycles are >= 28 days apart)
 * and resolution is monotonic, so the first cycle past an instant is the
 * next fire, whatever the overlap between delayed cycles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/schedule.h"

#define SCAN_CYCLES 800 /* far more than any rule needs between two fires */

struct ds_schedule {
    ds_schedule_rule_t rule;
    ds_tz_t *tz;
    int64_t window;
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int rule_valid(const ds_schedule_rule_t *r)
{
    if (r->hour < 0 || r->hour > 23 || r->minute < 0 || r->minute > 59)
        return 0;
    switch (r->kind) {
    case DS_SCHED_ONCE:
        return r->year >= 1 && r->year <= 9999 && r->month >= 1 && r->month <= 12 && r->day >= 1 &&
               r->day <= ds_tz_days_in_month(r->year, r->month);
    case DS_SCHED_DAILY:
    case DS_SCHED_LAST_DAY:
        return 1;
    case DS_SCHED_WEEKLY:
        return r->weekdays != 0 && r->weekdays < 128;
    case DS_SCHED_MONTH_DAY:
        return r->day >= 1 && r->day <= 31;
    case DS_SCHED_NTH_WEEKDAY:
        return (r->ordinal == DS_SCHED_LAST || (r->ordinal >= 1 && r->ordinal <= 4)) &&
               r->weekday >= 0 && r->weekday <= 6 && r->delay >= 0 &&
               r->delay <= DS_SCHED_MAX_DELAY;
    }
    return 0;
}

/* Builds a schedule; takes tz. See schedule.h. */
int ds_schedule_new(const ds_schedule_rule_t *rule, ds_tz_t *tz, int64_t window,
                    ds_schedule_t **out)
{
    ds_schedule_t *s;

    *out = NULL;
    if (!rule_valid(rule) || window < 0) {
        ds_tz_free(tz);
        return DS_ESCHEDULE;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        ds_tz_free(tz);
        return DS_ENOMEM;
    }
    s->rule = *rule;
    s->tz = tz;
    s->window = window;
    *out = s;
    return 0;
}

/* Parses rule, zone and window; see schedule.h. */
int ds_schedule_parse(const char *when, const char *tz_name, const char *window,
                      ds_schedule_t **out, char *err, size_t errlen)
{
    ds_schedule_rule_t rule;
    ds_tz_t *tz = NULL;
    int64_t win = 0;
    int e;

    *out = NULL;
    e = ds_schedule_parse_rule(when, &rule, err, errlen);
    if (e == 0 && window != NULL && *window != '\0')
        e = ds_schedule_parse_window(window, &win, err, errlen);
    if (e < 0)
        return e;
    e = ds_tz_load(tz_name, &tz);
    if (e < 0) {
        if (e == DS_ECORRUPT)
            snprintf(err, errlen, "time zone '%s' is not a valid TZif file", tz_name);
        else if (e == DS_ENOMEM)
            snprintf(err, errlen, "out of memory loading time zone '%s'", tz_name);
        else
            snprintf(err, errlen, "unknown time zone '%s'", tz_name ? tz_name : "");
        return e == DS_ENOMEM || e == DS_ECORRUPT ? e : DS_ETZ;
    }
    return ds_schedule_new(&rule, tz, win, out);
}

void ds_schedule_free(ds_schedule_t *s)
{
    if (s == NULL)
        return;
    ds_tz_free(s->tz);
    free(s);
}

const ds_schedule_rule_t *ds_schedule_rule(const ds_schedule_t *s)
{
    return &s->rule;
}

const ds_tz_t *ds_schedule_tz(const ds_schedule_t *s)
{
    return s->tz;
}

int64_t ds_schedule_window(const ds_schedule_t *s)
{
    return s->window;
}

/* Window end for a fire; see schedule.h. */
int64_t ds_schedule_window_end(const ds_schedule_t *s, int64_t fire)
{
    return s->window > 0 ? fire + s->window : INT64_MAX;
}

static int monthly(const ds_schedule_rule_t *r)
{
    return r->kind == DS_SCHED_MONTH_DAY || r->kind == DS_SCHED_LAST_DAY ||
           r->kind == DS_SCHED_NTH_WEEKDAY;
}

/* The Nth (or last) weekday wd of month m of year y, as a day number. */
static int64_t nth_weekday(int64_t y, int m, int ordinal, int wd)
{
    int64_t first = ds_tz_days_from_civil(y, m, 1), last;

    if (ordinal != DS_SCHED_LAST)
        return first + (wd - ds_tz_weekday(first) + 7) % 7 + (int64_t)(ordinal - 1) * 7;
    last = first + ds_tz_days_in_month(y, m) - 1;
    return last - (ds_tz_weekday(last) - wd + 7) % 7;
}

/* Anchor and fire day of cycle k. Returns 1 if cycle k runs, 0 if the rule
 * skips it (a weekday not listed, a month without day D). */
static int cycle_days(const ds_schedule_rule_t *r, int64_t k, int64_t *anchor, int64_t *fire)
{
    int64_t y = floor_div(k, 12);
    int m = (int)(k - y * 12) + 1;

    switch (r->kind) {
    case DS_SCHED_ONCE:
        *anchor = *fire = ds_tz_days_from_civil(r->year, r->month, r->day);
        return k == *fire;
    case DS_SCHED_DAILY:
        *anchor = *fire = k;
        return 1;
    case DS_SCHED_WEEKLY:
        *anchor = *fire = k;
        return (r->weekdays >> ds_tz_weekday(k)) & 1;
    case DS_SCHED_MONTH_DAY:
        *anchor = *fire = ds_tz_days_from_civil(y, m, r->day);
        return r->day <= ds_tz_days_in_month(y, m);
    case DS_SCHED_LAST_DAY:
        *anchor = *fire = ds_tz_days_from_civil(y, m, ds_tz_days_in_month(y, m));
        return 1;
    case DS_SCHED_NTH_WEEKDAY:
        *anchor = nth_weekday(y, m, r->ordinal, r->weekday);
        *fire = *anchor + r->delay;
        return 1;
    }
    return 0;
}

/* Resolves day + the rule's wall time to its first valid instant. */
static int wall_instant(const ds_schedule_t *s, int64_t day, int64_t *t)
{
    ds_tz_local_t loc;
    int e = ds_tz_resolve(s->tz, day * 86400 + s->rule.hour * 3600 + s->rule.minute * 60, &loc);

    if (e == 0)
        *t = loc.first;
    return e;
}

/* The snapshot anchor of a cycle whose anchor day is `day`: the end of that
 * day (local midnight after it), or the fire instant if that comes first.
 * Patch Tuesday content is released during the day, so a run delayed by N
 * days must ship what was approved by the end of the anchor day, not by the
 * rule's wall time on it. Rules without a delay anchor at their fire. */
static int anchor_instant(const ds_schedule_t *s, int64_t day, int64_t fire, int64_t *anchor)
{
    ds_tz_local_t loc;
    int e;

    if (s->rule.kind != DS_SCHED_NTH_WEEKDAY) {
        *anchor = fire;
        return 0;
    }
    e = ds_tz_resolve(s->tz, (day + 1) * 86400, &loc);
    if (e == 0)
        *anchor = loc.first < fire ? loc.first : fire;
    return e;
}

/* Fire (and anchor, may be NULL) instant of cycle k: 1 if it runs, 0 if
 * skipped, <0 on error (DS_ERANGE past the supported years). */
static int cycle_fire(const ds_schedule_t *s, int64_t k, int64_t *fire, int64_t *anchor)
{
    int64_t ad, fd;
    int e;

    if (!cycle_days(&s->rule, k, &ad, &fd))
        return 0;
    e = wall_instant(s, fd, fire);
    if (e == 0 && anchor != NULL)
        e = anchor_instant(s, ad, *fire, anchor);
    return e < 0 ? e : 1;
}

/* The cycle index holding instant t's local date, moved by margin days
 * (daily rules) or months (monthly rules). */
static int cycle_near(const ds_schedule_t *s, int64_t t, int margin, int64_t *k)
{
    int32_t off;
    int64_t day, y;
    int m, d, e = ds_tz_offset(s->tz, t, &off, NULL);

    if (e < 0)
        return e;
    day = floor_div(t + off, 86400);
    if (s->rule.kind == DS_SCHED_ONCE) {
        *k = ds_tz_days_from_civil(s->rule.year, s->rule.month, s->rule.day);
        return 0;
    }
    if (!monthly(&s->rule)) {
        *k = day + margin;
        return 0;
    }
    ds_tz_civil_from_days(day, &y, &m, &d);
    *k = y * 12 + m - 1 + margin;
    return 0;
}

/* Next fire strictly after `after`; see schedule.h. */
int ds_schedule_next(const ds_schedule_t *s, int64_t after, int64_t *fire)
{
    int64_t k, f = 0;
    int e = cycle_near(s, after, s->rule.kind == DS_SCHED_NTH_WEEKDAY ? -3 : -2, &k);

    if (e < 0)
        return e;
    for (int i = 0; i < SCAN_CYCLES; i++, k++) {
        e = cycle_fire(s, k, &f, NULL);
        if (e < 0)
            return e == DS_ERANGE ? DS_ENOTFOUND : e;
        if (e == 1 && f > after) {
            *fire = f;
            return 0;
        }
        if (s->rule.kind == DS_SCHED_ONCE)
            break;
    }
    return DS_ENOTFOUND;
}

/* Latest cycle firing at or before `at`: its fire and anchor. */
static int prev_cycle(const ds_schedule_t *s, int64_t at, int64_t *fire, int64_t *anchor)
{
    int64_t k, f = 0, a = 0;
    int e = cycle_near(s, at, 2, &k);

    if (e < 0)
        return e;
    for (int i = 0; i < SCAN_CYCLES; i++, k--) {
        e = cycle_fire(s, k, &f, &a);
        if (e < 0)
            return e == DS_ERANGE ? DS_ENOTFOUND : e;
        if (e == 1 && f <= at) {
            *fire = f;
            *anchor = a;
            return 0;
        }
        if (s->rule.kind == DS_SCHED_ONCE)
            break;
    }
    return DS_ENOTFOUND;
}

/* Latest fire at or before `at`; see schedule.h. */
int ds_schedule_prev(const ds_schedule_t *s, int64_t at, int64_t *fire)
{
    int64_t a;

    return prev_cycle(s, at, fire, &a);
}

/* Anchor of the cycle firing at `fire`; see schedule.h. */
int ds_schedule_anchor(const ds_schedule_t *s, int64_t fire, int64_t *anchor)
{
    int64_t f;
    int e = prev_cycle(s, fire, &f, anchor);

    if (e < 0)
        return e;
    return f == fire ? 0 : DS_ENOTFOUND;
}

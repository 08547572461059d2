/*
 * Bandwidth tables at an instant: which window holds, and when the rate
 * next changes. Pure: the zone and the instant are arguments.
 *
 * Each window edge is a wall-clock time on a given local day, mapped to the
 * first instant whose wall time reaches it (ds_tz_resolve's `first`). That
 * map is non-decreasing, so windows that do not overlap on the clock do not
 * overlap in time either; an edge in a skipped hour lands on the jump, an
 * edge in a repeated hour on its first occurrence (see bandwidth.h).
 */
#include "distsync/bandwidth.h"
#include "distsync/error.h"

#define DAY 86400

/* Local day number of instant t in tz. */
static int local_day(const ds_tz_t *tz, int64_t t, int64_t *day)
{
    int32_t off;
    int rc = ds_tz_offset(tz, t, &off, NULL);
    int64_t l = t + off;

    if (rc < 0)
        return rc;
    *day = l >= 0 ? l / DAY : -((-l + DAY - 1) / DAY);
    return 0;
}

/* Instants [*s, *e) of window w started on local day d. */
static int window_span(const ds_bw_window_t *w, const ds_tz_t *tz, int64_t d, int64_t *s,
                       int64_t *e)
{
    int64_t a = d * DAY + (int64_t)w->start * 60;
    int64_t b = d * DAY + (int64_t)(w->end > w->start ? w->end : w->end + 1440) * 60;
    ds_tz_local_t ls, le;
    int rc = ds_tz_resolve(tz, a, &ls);

    if (rc == 0)
        rc = ds_tz_resolve(tz, b, &le);
    if (rc < 0)
        return rc;
    *s = ls.first;
    *e = le.first;
    return 0;
}

/* The rate at instant t: a window starting on day D-2..D holds it, if any
 * (a window lasts at most a day; a civil day at most 25 hours). */
static int rate_at(const ds_bw_table_t *t, const ds_tz_t *tz, int64_t now, uint64_t *bps)
{
    int64_t day, s, e;
    int rc = local_day(tz, now, &day);

    *bps = t->dflt;
    for (int64_t d = day - 2; rc == 0 && d <= day; d++) {
        for (size_t i = 0; i < t->n; i++) {
            if (!(t->w[i].days >> ds_tz_weekday(d) & 1))
                continue;
            if ((rc = window_span(&t->w[i], tz, d, &s, &e)) < 0)
                return rc;
            if (s <= now && now < e) {
                *bps = t->w[i].bps;
                return 0;
            }
        }
    }
    return rc;
}

/* The first window edge after instant now within the next 8 days, or
 * DS_BW_NEVER when the table has no windows. */
static int edge_after(const ds_bw_table_t *t, const ds_tz_t *tz, int64_t now, int64_t *edge)
{
    int64_t day, s, e;
    int rc = local_day(tz, now, &day);

    *edge = DS_BW_NEVER;
    for (int64_t d = day - 2; rc == 0 && d <= day + 8; d++) {
        for (size_t i = 0; i < t->n; i++) {
            if (!(t->w[i].days >> ds_tz_weekday(d) & 1))
                continue;
            if ((rc = window_span(&t->w[i], tz, d, &s, &e)) < 0)
                return rc;
            if (s > now && s < *edge)
                *edge = s;
            if (e > now && e < *edge)
                *edge = e;
        }
    }
    return rc;
}

int ds_bw_rate_at(const ds_bw_table_t *t, const ds_tz_t *tz, int64_t now, uint64_t *bps,
                  int64_t *next)
{
    int64_t at = now;
    uint64_t r;
    int rc;

    if (now < DS_TZ_MIN + 3 * DAY || now > DS_TZ_MAX - 10 * DAY)
        return DS_ERANGE;
    if ((rc = rate_at(t, tz, now, bps)) < 0 || next == NULL)
        return rc;
    /* Adjacent windows may share a rate: walk edges until one changes it. A
     * week of edges without a change means the rate never changes. */
    for (size_t k = 0; k <= 2 * 7 * t->n + 1; k++) {
        if ((rc = edge_after(t, tz, at, &at)) < 0)
            return rc;
        if (at == DS_BW_NEVER || at > DS_TZ_MAX - 10 * DAY)
            break;
        if ((rc = rate_at(t, tz, at, &r)) < 0)
            return rc;
        if (r != *bps) {
            *next = at;
            return 0;
        }
    }
    *next = DS_BW_NEVER;
    return 0;
}

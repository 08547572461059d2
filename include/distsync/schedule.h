/*
 * Schedules: when a sync entry fires. A pure engine: every function takes
 * the time as an argument (int64 seconds since the epoch, UTC) and none
 * reads the clock. Only ds_schedule_parse() does I/O (it loads the zone).
 *
 * Rule text (keywords and weekday names are case-insensitive):
 *   once 2026-12-01 02:00
 *   daily 02:00
 *   weekly mon,thu 02:00               days: sun..sat or sunday..saturday
 *   monthly day 15 02:00               months without day D are skipped
 *   monthly last day 22:00
 *   monthly second tuesday +4 days 02:00
 *   monthly last friday 23:30          ordinals: first..fourth, 1st..4th, last
 * The delay ("+N days", "+1 day", N in 0..31) counts calendar days from the
 * anchor day (the Nth weekday) and rolls into the next month; it is never
 * clamped. Each monthly cycle fires exactly once, even when delayed cycles
 * overlap.
 *
 * Wall times are resolved in the schedule's zone: a fire time is the first
 * instant whose local wall-clock reading is at or after the rule's date and
 * time. So a time in the spring-forward gap fires at the end of the gap
 * (the first valid instant after it), and a repeated autumn time fires once,
 * at its first occurrence.
 *
 * Every monthly cycle, day or week occurrence is a "cycle"; its anchor
 * instant (snapshot pinning) for "monthly ORDINAL WEEKDAY" rules is the end
 * of the anchor day (the local midnight after the Nth weekday) or the fire
 * time if that comes first (a delay of 0); for every other rule it is the
 * fire time itself.
 */
#ifndef DISTSYNC_SCHEDULE_H
#define DISTSYNC_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/tz.h"
#include "distsync/error.h"

typedef enum ds_schedule_kind {
    DS_SCHED_ONCE = 1,
    DS_SCHED_DAILY,
    DS_SCHED_WEEKLY,
    DS_SCHED_MONTH_DAY,  /* monthly day D */
    DS_SCHED_LAST_DAY,   /* monthly last day */
    DS_SCHED_NTH_WEEKDAY /* monthly ORDINAL WEEKDAY [+N days] */
} ds_schedule_kind_t;

#define DS_SCHED_MAX_DELAY 31
#define DS_SCHED_LAST      (-1) /* ordinal "last" */

typedef struct ds_schedule_rule {
    ds_schedule_kind_t kind;
    int hour, minute;     /* wall time */
    int year, month, day; /* ONCE: the date; MONTH_DAY: day (1..31) */
    unsigned weekdays;    /* WEEKLY: bit 0 = Sunday .. bit 6 = Saturday */
    int ordinal;          /* NTH_WEEKDAY: 1..4 or DS_SCHED_LAST */
    int weekday;          /* NTH_WEEKDAY: 0 = Sunday .. 6 = Saturday */
    int delay;            /* NTH_WEEKDAY: days after the anchor, 0..31 */
} ds_schedule_rule_t;

typedef struct ds_schedule ds_schedule_t;

/*
 * Parses rule text (pure; the fuzz target). Returns 0, or DS_ESCHEDULE with
 * a message naming the offending word in err (e.g. "word 'tuesdya' is not a
 * weekday", "delay +40 days is out of range 0..31").
 */
DS_MUST_CHECK int ds_schedule_parse_rule(const char *when, ds_schedule_rule_t *rule, char *err,
                                         size_t errlen);

/* Writes the canonical text of rule into buf (parses back to the same
 * rule). Returns 0 or DS_ETOOBIG. */
DS_MUST_CHECK int ds_schedule_format_rule(const ds_schedule_rule_t *rule, char *buf, size_t len);

/* Parses a window: a positive number with unit m, h or d ("90m", "4h",
 * "2d"), at most 366 days. Returns 0 and seconds, or DS_ESCHEDULE. */
DS_MUST_CHECK int ds_schedule_parse_window(const char *window, int64_t *secs, char *err,
                                           size_t errlen);

/*
 * Parses a schedule: rule text when, zone tz_name (NULL or "": the console's
 * zone, see ds_tz_load) and window (NULL or "": none). Returns 0 and a new
 * schedule in *out (free with ds_schedule_free); DS_ESCHEDULE for a bad rule
 * or window, DS_ETZ for an unknown zone ("unknown time zone
 * 'Europe/Pariss'"), with the message in err.
 */
DS_MUST_CHECK int ds_schedule_parse(const char *when, const char *tz_name, const char *window,
                                    ds_schedule_t **out, char *err, size_t errlen);

/* Builds a schedule from a parsed rule; takes ownership of tz (also on
 * failure). window in seconds, 0 = none. Returns 0, DS_ESCHEDULE for an
 * invalid rule, DS_ENOMEM. */
DS_MUST_CHECK int ds_schedule_new(const ds_schedule_rule_t *rule, ds_tz_t *tz, int64_t window,
                                  ds_schedule_t **out);

void ds_schedule_free(ds_schedule_t *s);

/* Borrowed views, valid as long as s. */
const ds_schedule_rule_t *ds_schedule_rule(const ds_schedule_t *s);
const ds_tz_t *ds_schedule_tz(const ds_schedule_t *s);
int64_t ds_schedule_window(const ds_schedule_t *s); /* seconds, 0 = none */

/* The first fire time strictly after `after`. Returns 0, DS_ENOTFOUND when
 * there is none (a past "once"), DS_ERANGE outside years 1..9999. */
DS_MUST_CHECK int ds_schedule_next(const ds_schedule_t *s, int64_t after, int64_t *fire);

/* The latest fire time at or before `at` (to catch up a run missed during
 * downtime). Returns 0, DS_ENOTFOUND, DS_ERANGE. */
DS_MUST_CHECK int ds_schedule_prev(const ds_schedule_t *s, int64_t at, int64_t *fire);

/* The anchor instant of the cycle that fires at `fire` (for snapshot
 * pinning). Returns 0, or DS_ENOTFOUND if fire is not a fire time of s. */
DS_MUST_CHECK int ds_schedule_anchor(const ds_schedule_t *s, int64_t fire, int64_t *anchor);

/* End of the run window for a fire time: fire + window, or INT64_MAX when
 * the schedule has no window. */
int64_t ds_schedule_window_end(const ds_schedule_t *s, int64_t fire);

#endif

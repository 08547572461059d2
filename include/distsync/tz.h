/*
 * Time zones: an in-memory reader for TZif files (RFC 8536, versions 1 to
 * 4, with the POSIX TZ footer rule for instants past the last transition)
 * and conversions between instants and local wall-clock time.
 *
 * Instants are int64 seconds since 1970-01-01T00:00:00Z (leap seconds are
 * not counted). A "local time" is the wall-clock reading expressed the same
 * way: seconds since 1970-01-01T00:00:00 on the local calendar.
 *
 * Only ds_tz_load() touches the system (files, $TZ); everything else is pure
 * and thread-safe on a const ds_tz_t. Supported years: 1 to 9999.
 */
#ifndef DISTSYNC_TZ_H
#define DISTSYNC_TZ_H

#include <stddef.h>
#include <stdint.h>
#include "distsync/error.h"

typedef struct ds_tz ds_tz_t;

/* Instants outside [DS_TZ_MIN, DS_TZ_MAX] (years 1..9999) are refused. */
#define DS_TZ_MIN (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define DS_TZ_MAX (253402300799LL) /* 9999-12-31T23:59:59Z */

/*
 * Loads zone name from /usr/share/zoneinfo. name NULL or "" means the
 * console's zone: $TZ when it names a zone (an optional leading ':' is
 * ignored), else /etc/localtime, else UTC. "UTC" and "Etc/UTC" work even
 * without tzdata. Returns 0 and a new zone in *out (free with ds_tz_free),
 * DS_ETZ for a malformed or unknown name (no '..', no leading '/'), or
 * DS_ECORRUPT when the file is not valid TZif.
 */
DS_MUST_CHECK int ds_tz_load(const char *name, ds_tz_t **out);

/*
 * Parses TZif bytes (pure, bounds-checked; the fuzz target). name is copied
 * and only used for display (NULL: ""). Returns 0 and a new zone in *out,
 * DS_ECORRUPT for malformed input, DS_ENOMEM.
 */
DS_MUST_CHECK int ds_tz_parse(const void *buf, size_t len, const char *name, ds_tz_t **out);

/* Returns a new fixed UTC zone in *out. 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds_tz_utc(ds_tz_t **out);

/* Frees tz; NULL is a no-op. */
void ds_tz_free(ds_tz_t *tz);

/* The zone's name as given to load/parse ("UTC" for ds_tz_utc, the resolved
 * name for the console's zone). Lives as long as tz. */
const char *ds_tz_name(const ds_tz_t *tz);

/* UTC offset in seconds east of Greenwich at instant t, and whether DST is in
 * effect (isdst may be NULL). Returns 0, or DS_ERANGE outside the years. */
DS_MUST_CHECK int ds_tz_offset(const ds_tz_t *tz, int64_t t, int32_t *utoff, int *isdst);

/* How a local wall time maps to instants. */
typedef enum ds_tz_kind {
    DS_TZ_UNIQUE = 0, /* exactly one instant: first == second */
    DS_TZ_GAP = 1,    /* skipped (spring forward): first == second == the
                         transition, i.e. the first valid instant after it */
    DS_TZ_FOLD = 2,   /* repeated (fall back): first < second */
} ds_tz_kind_t;

typedef struct ds_tz_local {
    ds_tz_kind_t kind;
    int64_t first;  /* earliest instant whose wall time is >= local */
    int64_t second; /* the later occurrence in a fold, else == first */
} ds_tz_local_t;

/* Resolves local wall time local (see above) in tz. Returns 0, DS_ERANGE
 * outside the years, DS_ECORRUPT if the zone data is inconsistent. */
DS_MUST_CHECK int ds_tz_resolve(const ds_tz_t *tz, int64_t local, ds_tz_local_t *out);

/* Calendar helpers (proleptic Gregorian). Days since 1970-01-01. */
int64_t ds_tz_days_from_civil(int64_t y, int m, int d);
void ds_tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/* Weekday of a day number: 0 = Sunday .. 6 = Saturday. */
DS_MUST_CHECK int ds_tz_weekday(int64_t days);
/* Days in month m (1..12) of year y. */
DS_MUST_CHECK int ds_tz_days_in_month(int64_t y, int m);

/*
 * Formats instant t as RFC 3339 with tz's local offset, e.g.
 * "2026-12-12T02:00:00+01:00" (offsets with seconds, only found before
 * 1900, are truncated to the minute and the local time shifted so the
 * string still denotes t). Returns 0, DS_ERANGE, or DS_ETOOBIG if len < 26.
 */
DS_MUST_CHECK int ds_tz_format_rfc3339(const ds_tz_t *tz, int64_t t, char *buf, size_t len);

/*
 * Formats instant t (seconds since the epoch) as RFC 3339 UTC with second
 * precision, e.g. "2026-11-22T02:00:48Z" (gmtime_r and strftime). Returns
 * 0, DS_ERANGE when gmtime_r cannot represent t, or DS_ETOOBIG when the
 * text and its NUL do not fit in len bytes; on failure buf is untouched.
 */
DS_MUST_CHECK int ds_tz_format_utc(int64_t t, char *buf, size_t len);

/* Parses RFC 3339 "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" (a space
 * may replace 'T'; fractions are dropped). Returns 0 or DS_EUSAGE. */
DS_MUST_CHECK int ds_tz_parse_rfc3339(const char *s, int64_t *t);

#endif

/*
 * Calendar arithmetic (proleptic Gregorian) and RFC 3339 text for the time
 * zone module. Pure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "distsync/error.h"
#include "distsync/tz.h"

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Calendar arithmetic: days since 1970-01-01 from a proleptic Gregorian
 * date, computed over 400-year eras so that it is exact for any year. */
int64_t ds_tz_days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = floor_div(y, 400);
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Inverse of ds_tz_days_from_civil. */
void ds_tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + 719468, era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;

    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* 0 = Sunday. 1970-01-01 was a Thursday. */
int ds_tz_weekday(int64_t days)
{
    return (int)(((days % 7) + 11) % 7);
}

/* Days in month m of year y. */
int ds_tz_days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 ? 28 + leap : dim[m - 1];
}

/* ---- RFC 3339 -------------------------------------------------------- */

/* Formats t with tz's offset; see tz.h. */
int ds_tz_format_rfc3339(const ds_tz_t *tz, int64_t t, char *buf, size_t len)
{
    int32_t off;
    int64_t local, days, secs, y;
    int m, d, rc;

    if (t < DS_TZ_MIN || t > DS_TZ_MAX)
        return DS_ERANGE;
    if (len < 26)
        return DS_ETOOBIG;
    rc = ds_tz_offset(tz, t, &off, NULL);
    if (rc < 0)
        return rc;
    off -= off % 60;
    local = t + off;
    days = floor_div(local, 86400);
    secs = local - days * 86400;
    ds_tz_civil_from_days(days, &y, &m, &d);
    snprintf(buf, len, "%04lld-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", (long long)y, m, d,
             (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60), off < 0 ? '-' : '+',
             (int)(labs(off) / 3600), (int)(labs(off) / 60 % 60));
    return 0;
}

/* Formats t as UTC; see tz.h. */
int ds_tz_format_utc(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    char text[64];
    size_t n;

    if (gmtime_r(&tt, &tm) == NULL)
        return DS_ERANGE;
    n = strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (n == 0 || n >= len)
        return DS_ETOOBIG;
    memcpy(buf, text, n + 1);
    return 0;
}

/* Reads exactly n digits. */
static int digits(const char **sp, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if ((*sp)[i] < '0' || (*sp)[i] > '9')
            return -1;
        v = v * 10 + ((*sp)[i] - '0');
    }
    *sp += n;
    *out = v;
    return 0;
}

/* Parses RFC 3339; see tz.h. */
int ds_tz_parse_rfc3339(const char *s, int64_t *t)
{
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;

    if (digits(&s, 4, &y) < 0 || *s++ != '-' || digits(&s, 2, &mo) < 0 || *s++ != '-' ||
        digits(&s, 2, &d) < 0 || (*s != 'T' && *s != 't' && *s != ' '))
        return DS_EUSAGE;
    s++;
    if (digits(&s, 2, &h) < 0 || *s++ != ':' || digits(&s, 2, &mi) < 0 || *s++ != ':' ||
        digits(&s, 2, &sec) < 0)
        return DS_EUSAGE;
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return DS_EUSAGE;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        sign = *s++ == '-' ? -1 : 1;
        if (digits(&s, 2, &oh) < 0 || *s++ != ':' || digits(&s, 2, &om) < 0 || oh > 23 || om > 59)
            return DS_EUSAGE;
    } else {
        return DS_EUSAGE;
    }
    if (*s != '\0' || y < 1 || mo < 1 || mo > 12 || d < 1 || d > ds_tz_days_in_month(y, mo) ||
        h > 23 || mi > 59 || sec > 59)
        return DS_EUSAGE;
    *t = ds_tz_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
         sign * (oh * 3600 + om * 60);
    return 0;
}

/* Unit tests: TZif reader, POSIX footer rules, gap/fold resolution, RFC 3339. */
#include "check.h"
#include "distsync/error.h"
#include "distsync/tz.h"

#define H 3600

static int64_t utc(int y, int mo, int d, int h, int mi)
{
    return ds_tz_days_from_civil(y, mo, d) * 86400 + h * H + mi * 60;
}

static ds_tz_t *zone(const char *name)
{
    ds_tz_t *tz = NULL;
    int rc = ds_tz_load(name, &tz);

    CHECK_INT(rc, 0);
    if (tz == NULL) {
        fprintf(stderr, "cannot load %s\n", name);
        exit(1);
    }
    return tz;
}

static int32_t off_at(const ds_tz_t *tz, int64_t t)
{
    int32_t off = -1;

    CHECK_INT(ds_tz_offset(tz, t, &off, NULL), 0);
    return off;
}

/* A v2 TZif image with no transitions, one type and a footer rule. */
static size_t footer_only(const char *footer, int32_t utoff0, uint8_t *buf)
{
    size_t n = 0;

    for (int pass = 0; pass < 2; pass++) {
        memset(buf + n, 0, 44);
        memcpy(buf + n, "TZif2", 5);
        buf[n + 39] = 1; /* typecnt */
        buf[n + 43] = 4; /* charcnt */
        n += 44;
        buf[n++] = (uint8_t)(utoff0 >> 24), buf[n++] = (uint8_t)(utoff0 >> 16);
        buf[n++] = (uint8_t)(utoff0 >> 8), buf[n++] = (uint8_t)utoff0;
        buf[n++] = 0, buf[n++] = 0;
        memcpy(buf + n, "STD", 4);
        n += 4;
    }
    n += (size_t)sprintf((char *)buf + n, "\n%s\n", footer);
    return n;
}

static void test_civil(void)
{
    int64_t y;
    int m, d;

    CHECK_INT(ds_tz_days_from_civil(1970, 1, 1), 0);
    CHECK_INT(ds_tz_days_from_civil(2000, 3, 1), 11017);
    CHECK_INT(ds_tz_days_from_civil(1, 1, 1), -719162);
    CHECK_INT(ds_tz_weekday(0), 4); /* Thursday */
    CHECK_INT(ds_tz_weekday(ds_tz_days_from_civil(2026, 4, 14)), 2);
    CHECK_INT(ds_tz_days_in_month(2024, 2), 29);
    CHECK_INT(ds_tz_days_in_month(2100, 2), 28);
    CHECK_INT(ds_tz_days_in_month(2000, 2), 29);
    CHECK_INT(ds_tz_days_in_month(2026, 4), 30);
    for (int64_t day = -719162; day < 2932897; day += 97) {
        ds_tz_civil_from_days(day, &y, &m, &d);
        if (ds_tz_days_from_civil(y, m, d) != day || d > ds_tz_days_in_month(y, m)) {
            CHECK_INT(ds_tz_days_from_civil(y, m, d), day);
            break;
        }
    }
}

static void test_paris(void)
{
    ds_tz_t *tz = zone("Europe/Paris");
    ds_tz_local_t r;
    int dst = -1;
    int32_t off;

    CHECK_STR(ds_tz_name(tz), "Europe/Paris");
    CHECK_INT(off_at(tz, utc(2026, 1, 15, 12, 0)), H);
    CHECK_INT(ds_tz_offset(tz, utc(2026, 7, 15, 12, 0), &off, &dst), 0);
    CHECK_INT(off, 2 * H);
    CHECK_INT(dst, 1);
    /* transitions at 01:00Z on the last Sundays of March and October */
    CHECK_INT(off_at(tz, utc(2026, 3, 29, 1, 0) - 1), H);
    CHECK_INT(off_at(tz, utc(2026, 3, 29, 1, 0)), 2 * H);
    CHECK_INT(off_at(tz, utc(2026, 10, 25, 1, 0) - 1), 2 * H);
    CHECK_INT(off_at(tz, utc(2026, 10, 25, 1, 0)), H);
    /* gap: 02:30 does not exist; the first valid instant after is 03:00+02 */
    CHECK_INT(ds_tz_resolve(tz, utc(2026, 3, 29, 2, 30), &r), 0);
    CHECK_INT(r.kind, DS_TZ_GAP);
    CHECK_INT(r.first, utc(2026, 3, 29, 1, 0));
    CHECK_INT(r.second, r.first);
    /* fold: 02:30 happens at 00:30Z and 01:30Z */
    CHECK_INT(ds_tz_resolve(tz, utc(2026, 10, 25, 2, 30), &r), 0);
    CHECK_INT(r.kind, DS_TZ_FOLD);
    CHECK_INT(r.first, utc(2026, 10, 25, 0, 30));
    CHECK_INT(r.second, utc(2026, 10, 25, 1, 30));
    CHECK_INT(ds_tz_resolve(tz, utc(2026, 10, 25, 3, 0), &r), 0);
    CHECK_INT(r.kind, DS_TZ_UNIQUE);
    CHECK_INT(r.first, utc(2026, 10, 25, 2, 0));
    /* beyond the table (2037): the footer rule */
    CHECK_INT(off_at(tz, utc(2040, 7, 1, 0, 0)), 2 * H);
    CHECK_INT(off_at(tz, utc(2040, 12, 1, 0, 0)), H);
    CHECK_INT(ds_tz_resolve(tz, utc(2040, 3, 25, 2, 30), &r), 0);
    CHECK_INT(r.kind, DS_TZ_GAP);
    CHECK_INT(r.first, utc(2040, 3, 25, 1, 0));
    CHECK_INT(ds_tz_offset(tz, DS_TZ_MAX + 1, &off, NULL), DS_ERANGE);
    CHECK_INT(ds_tz_resolve(tz, DS_TZ_MIN - 1, &r), DS_ERANGE);
    ds_tz_free(tz);
}

static void test_new_york_lord_howe_tokyo(void)
{
    ds_tz_t *ny = zone("America/New_York"), *lh = zone("Australia/Lord_Howe");
    ds_tz_t *tk = zone("Asia/Tokyo");
    ds_tz_local_t r;

    CHECK_INT(ds_tz_resolve(ny, utc(2026, 3, 8, 2, 30), &r), 0);
    CHECK_INT(r.kind, DS_TZ_GAP);
    CHECK_INT(r.first, utc(2026, 3, 8, 7, 0)); /* 03:00-04:00 */
    CHECK_INT(ds_tz_resolve(ny, utc(2026, 11, 1, 1, 30), &r), 0);
    CHECK_INT(r.kind, DS_TZ_FOLD);
    CHECK_INT(r.first, utc(2026, 11, 1, 5, 30));
    CHECK_INT(r.second, utc(2026, 11, 1, 6, 30));
    /* Lord Howe: +10:30 standard, +11 summer, a 30-minute shift */
    CHECK_INT(off_at(lh, utc(2026, 7, 1, 0, 0)), 10 * H + 1800);
    CHECK_INT(off_at(lh, utc(2026, 1, 1, 0, 0)), 11 * H);
    CHECK_INT(ds_tz_resolve(lh, utc(2026, 10, 4, 2, 15), &r), 0);
    CHECK_INT(r.kind, DS_TZ_GAP);
    CHECK_INT(r.first, utc(2026, 10, 3, 15, 30)); /* 02:00+10:30 == 02:30+11 */
    CHECK_INT(ds_tz_resolve(lh, utc(2026, 4, 5, 1, 45), &r), 0);
    CHECK_INT(r.kind, DS_TZ_FOLD);
    CHECK_INT(r.second - r.first, 1800);
    CHECK_INT(off_at(lh, utc(2040, 1, 1, 0, 0)), 11 * H);
    /* Tokyo: no DST, every wall time is unique */
    for (int64_t l = utc(2024, 1, 1, 0, 0); l < utc(2041, 1, 1, 0, 0); l += 7 * 3607) {
        CHECK_INT(ds_tz_resolve(tk, l, &r), 0);
        if (r.kind != DS_TZ_UNIQUE || r.first != l - 9 * H) {
            CHECK_INT(r.first, l - 9 * H);
            break;
        }
    }
    ds_tz_free(ny);
    ds_tz_free(lh);
    ds_tz_free(tk);
}

/* For every quarter hour 2024..2041: resolve() agrees with offset(). */
static void test_resolve_property(void)
{
    const char *names[] = {"Europe/Paris", "America/New_York", "Australia/Lord_Howe", "UTC"};
    int gaps = 0, folds = 0;

    for (int z = 0; z < 4; z++) {
        ds_tz_t *tz = zone(names[z]);
        int bad = 0;

        for (int64_t l = utc(2024, 1, 1, 0, 0); l < utc(2041, 1, 1, 0, 0) && !bad; l += 900) {
            ds_tz_local_t r;

            CHECK_INT(ds_tz_resolve(tz, l, &r), 0);
            if (r.kind == DS_TZ_GAP) {
                gaps++;
                bad = !(r.first + off_at(tz, r.first) > l &&
                        r.first - 1 + off_at(tz, r.first - 1) < l);
            } else {
                folds += r.kind == DS_TZ_FOLD;
                bad = r.first + off_at(tz, r.first) != l || r.second + off_at(tz, r.second) != l ||
                      r.first - 1 + off_at(tz, r.first - 1) >= l;
            }
            if (bad)
                fprintf(stderr, "%s: local %lld kind %d first %lld\n", names[z], (long long)l,
                        r.kind, (long long)r.first);
        }
        CHECK(!bad);
        ds_tz_free(tz);
    }
    /* 17 years x (Paris 4 + NY 4 + Lord Howe 2) quarter hours per shift */
    CHECK_INT(gaps, 17 * (4 + 4 + 2));
    CHECK_INT(folds, 17 * (4 + 4 + 2));
}

/* The footer rule alone must agree with the full table it summarises. */
static void test_footer_matches_table(void)
{
    static const struct {
        const char *name, *footer;
        int32_t std;
    } z[] = {
        {"Europe/Paris", "CET-1CEST,M3.5.0,M10.5.0/3", H},
        {"America/New_York", "EST5EDT,M3.2.0,M11.1.0", -5 * H},
        {"Australia/Lord_Howe", "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", 10 * H + 1800},
        {"Asia/Tokyo", "JST-9", 9 * H},
    };
    uint8_t buf[256];

    for (size_t i = 0; i < sizeof(z) / sizeof(z[0]); i++) {
        ds_tz_t *full = zone(z[i].name), *rule = NULL;
        size_t len = footer_only(z[i].footer, z[i].std, buf);

        CHECK_INT(ds_tz_parse(buf, len, "rule", &rule), 0);
        if (rule == NULL) {
            ds_tz_free(full);
            continue;
        }
        for (int64_t t = utc(2008, 1, 1, 0, 0); t < utc(2042, 1, 1, 0, 0); t += 1799) {
            if (off_at(full, t) != off_at(rule, t)) {
                fprintf(stderr, "%s at %lld\n", z[i].name, (long long)t);
                CHECK_INT(off_at(full, t), off_at(rule, t));
                break;
            }
        }
        ds_tz_free(rule);
        ds_tz_free(full);
    }
}

static void test_parse_rejects(void)
{
    uint8_t buf[256], *file;
    ds_tz_t *tz = NULL;
    FILE *f = fopen("/usr/share/zoneinfo/Europe/Paris", "rb");
    size_t len, n, ok = 0;

    len = footer_only("CET-1CEST,M3.5.0,M10.5.0/3", H, buf);
    buf[0] = 'X';
    CHECK_INT(ds_tz_parse(buf, len, NULL, &tz), DS_ECORRUPT);
    CHECK(tz == NULL);
    len = footer_only("CET-1CEST,M13.5.0,M10.5.0/3", H, buf);
    CHECK_INT(ds_tz_parse(buf, len, NULL, &tz), DS_ECORRUPT);
    len = footer_only("CET-1CEST", H, buf); /* DST without a rule */
    CHECK_INT(ds_tz_parse(buf, len, NULL, &tz), DS_ECORRUPT);
    len = footer_only("", H, buf); /* empty footer: type 0 forever */
    CHECK_INT(ds_tz_parse(buf, len, NULL, &tz), 0);
    if (tz != NULL)
        CHECK_INT(off_at(tz, utc(2030, 7, 1, 0, 0)), H);
    ds_tz_free(tz);
    CHECK_INT(ds_tz_parse(buf, 43, NULL, &tz), DS_ECORRUPT);
    /* every truncation of a real file fails cleanly (ASan watches reads) */
    CHECK(f != NULL);
    if (f == NULL)
        return;
    file = malloc(8192);
    n = fread(file, 1, 8192, f);
    fclose(f);
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *copy = malloc(cut + 1);

        memcpy(copy, file, cut);
        if (ds_tz_parse(copy, cut, NULL, &tz) == 0) {
            ok++;
            ds_tz_free(tz);
        }
        free(copy);
    }
    CHECK_INT(ok, 0);
    CHECK_INT(ds_tz_parse(file, n, NULL, &tz), 0);
    ds_tz_free(tz);
    free(file);
}

static void test_load_names(void)
{
    ds_tz_t *tz = NULL;

    CHECK_INT(ds_tz_load("../../etc/passwd", &tz), DS_ETZ);
    CHECK_INT(ds_tz_load("/etc/localtime", &tz), DS_ETZ);
    CHECK_INT(ds_tz_load("Europe/Pariss", &tz), DS_ETZ);
    CHECK_INT(ds_tz_load("Europe/Paris;rm", &tz), DS_ETZ);
    CHECK(tz == NULL);
    CHECK_INT(ds_tz_load("zone.tab", &tz), DS_ECORRUPT); /* exists, not TZif */
    setenv("TZ", ":Asia/Tokyo", 1);
    CHECK_INT(ds_tz_load(NULL, &tz), 0);
    CHECK_STR(ds_tz_name(tz), "Asia/Tokyo");
    ds_tz_free(tz);
    setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
    CHECK_INT(ds_tz_load("", &tz), 0);
    CHECK_INT(off_at(tz, utc(2030, 7, 1, 0, 0)), 2 * H);
    CHECK_INT(off_at(tz, utc(2030, 1, 1, 0, 0)), H);
    ds_tz_free(tz);
    unsetenv("TZ");
    CHECK_INT(ds_tz_load(NULL, &tz), 0); /* /etc/localtime or UTC */
    CHECK(tz != NULL && ds_tz_name(tz)[0] != '\0');
    ds_tz_free(tz);
    ds_tz_free(NULL);
}

static void test_rfc3339(void)
{
    ds_tz_t *tz = zone("Europe/Paris"), *lh = zone("Australia/Lord_Howe"), *ny;
    char buf[64];
    int64_t t = 0;

    ny = zone("America/New_York");
    CHECK_INT(ds_tz_format_rfc3339(tz, utc(2026, 12, 12, 1, 0), buf, sizeof(buf)), 0);
    CHECK_STR(buf, "2026-12-12T02:00:00+01:00");
    CHECK_INT(ds_tz_format_rfc3339(lh, utc(2026, 7, 1, 0, 0), buf, sizeof(buf)), 0);
    CHECK_STR(buf, "2026-07-01T10:30:00+10:30");
    CHECK_INT(ds_tz_format_rfc3339(ny, utc(2026, 1, 1, 3, 0), buf, sizeof(buf)), 0);
    CHECK_STR(buf, "2025-12-31T22:00:00-05:00");
    CHECK_INT(ds_tz_format_rfc3339(tz, 0, buf, 10), DS_ETOOBIG);
    CHECK_INT(ds_tz_parse_rfc3339("2026-12-12T02:00:00+01:00", &t), 0);
    CHECK_INT(t, utc(2026, 12, 12, 1, 0));
    CHECK_INT(ds_tz_parse_rfc3339("2026-12-12 01:00:00.123Z", &t), 0);
    CHECK_INT(t, utc(2026, 12, 12, 1, 0));
    CHECK_INT(ds_tz_parse_rfc3339("2025-12-31T22:00:00-05:00", &t), 0);
    CHECK_INT(t, utc(2026, 1, 1, 3, 0));
    CHECK_INT(ds_tz_parse_rfc3339("2026-02-29T00:00:00Z", &t), DS_EUSAGE);
    CHECK_INT(ds_tz_parse_rfc3339("2026-12-12T02:00:00", &t), DS_EUSAGE);
    CHECK_INT(ds_tz_parse_rfc3339("2026-12-12T24:00:00Z", &t), DS_EUSAGE);
    CHECK_INT(ds_tz_parse_rfc3339("2026-12-12T02:00:00Zx", &t), DS_EUSAGE);
    CHECK_INT(ds_tz_parse_rfc3339("", &t), DS_EUSAGE);
    ds_tz_free(tz);
    ds_tz_free(lh);
    ds_tz_free(ny);
}

/* ds_tz_format_utc: the UTC text the CLI, reports and messages print. */
static void test_format_utc(void)
{
    char buf[64] = "untouched";

    CHECK_INT(ds_tz_format_utc(0, buf, sizeof(buf)), 0);
    CHECK_STR(buf, "1970-01-01T00:00:00Z");
    CHECK_INT(ds_tz_format_utc(utc(2025, 11, 22, 2, 0) + 48, buf, sizeof(buf)), 0);
    CHECK_STR(buf, "2025-11-22T02:00:48Z");
    CHECK_INT(ds_tz_format_utc(-1, buf, sizeof(buf)), 0);
    CHECK_STR(buf, "1969-12-31T23:59:59Z");
    CHECK_INT(ds_tz_format_utc(0, buf, 21), 0); /* 20 characters and the NUL */
    snprintf(buf, sizeof(buf), "untouched");
    CHECK_INT(ds_tz_format_utc(0, buf, 20), DS_ETOOBIG);
    CHECK_STR(buf, "untouched");
    CHECK_INT(ds_tz_format_utc(INT64_MAX, buf, sizeof(buf)), DS_ERANGE);
    CHECK_STR(buf, "untouched");
}

int main(void)
{
    RUN(test_civil);
    RUN(test_paris);
    RUN(test_new_york_lord_howe_tokyo);
    RUN(test_resolve_property);
    RUN(test_footer_matches_table);
    RUN(test_parse_rejects);
    RUN(test_load_names);
    RUN(test_rfc3339);
    RUN(test_format_utc);
    return CHECK_DONE();
}

/* Unit tests: schedule rule parsing, next/prev/anchor semantics. */
#include "check.h"
#include "distsync/error.h"
#include "distsync/schedule.h"

static ds_schedule_t *sched(const char *when, const char *tz, const char *window)
{
    ds_schedule_t *s = NULL;
    char err[256] = "";
    int rc = ds_schedule_parse(when, tz, window, &s, err, sizeof(err));

    if (rc != 0) {
        fprintf(stderr, "'%s' %s: %s\n", when, tz, err);
        CHECK_INT(rc, 0);
        exit(1);
    }
    return s;
}

static int64_t at(const char *rfc3339)
{
    int64_t t = 0;

    CHECK_INT(ds_tz_parse_rfc3339(rfc3339, &t), 0);
    return t;
}

/* Fire times after from, formatted, joined by spaces (static buffer). */
static const char *nexts(const ds_schedule_t *s, const char *from, int count)
{
    static char out[2048];
    int64_t t = at(from), f;
    size_t n = 0;

    out[0] = '\0';
    for (int i = 0; i < count && ds_schedule_next(s, t, &f) == 0; i++, t = f) {
        n += (size_t)snprintf(out + n, sizeof(out) - n, "%s", n ? " " : "");
        CHECK_INT(ds_tz_format_rfc3339(ds_schedule_tz(s), f, out + n, sizeof(out) - n), 0);
        n = strlen(out);
    }
    return out;
}

static void expect_error(const char *when, const char *msg)
{
    ds_schedule_rule_t r;
    char err[256] = "";

    CHECK_INT(ds_schedule_parse_rule(when, &r, err, sizeof(err)), DS_ESCHEDULE);
    if (strstr(err, msg) == NULL)
        fprintf(stderr, "rule '%s': error '%s' lacks '%s'\n", when, err, msg);
    CHECK(strstr(err, msg) != NULL);
}

static void test_parse_forms(void)
{
    static const char *const ok[][2] = {
        {"once 2026-12-01 02:00", "once 2026-12-01 02:00"},
        {"daily 2:05", "daily 02:05"},
        {"weekly mon,thu 02:00", "weekly mon,thu 02:00"},
        {"Weekly Thursday, MON sat 23:59", "weekly mon,thu,sat 23:59"},
        {"monthly day 15 02:00", "monthly day 15 02:00"},
        {"monthly last day 22:00", "monthly last day 22:00"},
        {"monthly second tuesday +4 days 02:00", "monthly second tuesday +4 days 02:00"},
        {"monthly 2nd TUE +1 day 02:00", "monthly second tuesday +1 day 02:00"},
        {"monthly 4th sun +0 days 00:00", "monthly fourth sunday 00:00"},
        {"monthly last friday 23:30", "monthly last friday 23:30"},
        {"  monthly\tfirst  mon +31 days   06:00 ", "monthly first monday +31 days 06:00"},
    };
    ds_schedule_rule_t r, r2;
    char err[256], buf[128];

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        CHECK_INT(ds_schedule_parse_rule(ok[i][0], &r, err, sizeof(err)), 0);
        CHECK_INT(ds_schedule_format_rule(&r, buf, sizeof(buf)), 0);
        CHECK_STR(buf, ok[i][1]);
        CHECK_INT(ds_schedule_parse_rule(buf, &r2, err, sizeof(err)), 0);
        CHECK(memcmp(&r, &r2, sizeof(r)) == 0);
    }
    CHECK_INT(ds_schedule_parse_rule("monthly second tuesday +4 days 02:00", &r, err, 256), 0);
    CHECK_INT(r.kind, DS_SCHED_NTH_WEEKDAY);
    CHECK_INT(r.ordinal, 2);
    CHECK_INT(r.weekday, 2);
    CHECK_INT(r.delay, 4);
    CHECK_INT(r.hour * 60 + r.minute, 120);
    CHECK_INT(ds_schedule_parse_rule("monthly last friday 23:30", &r, err, 256), 0);
    CHECK_INT(r.ordinal, DS_SCHED_LAST);
    CHECK_INT(r.weekday, 5);
    CHECK_INT(ds_schedule_parse_rule("weekly mon,thu 02:00", &r, err, 256), 0);
    CHECK_INT(r.weekdays, (1 << 1) | (1 << 4));
    CHECK_INT(ds_schedule_format_rule(&r, buf, 8), DS_ETOOBIG);
}

static void test_parse_errors(void)
{
    expect_error("monthly second tuesdya 02:00", "word 'tuesdya' is not a weekday");
    expect_error("monthly second tuesday +40 days 02:00", "delay +40 days is out of range 0..31");
    expect_error("monthly second tuesday +4 weeks 02:00", "word 'weeks'");
    expect_error("monthly second tuesday +x days 02:00", "delay '+x'");
    expect_error("monthly fifth monday 02:00", "word 'fifth' is not an ordinal");
    expect_error("monthly day 32 02:00", "day 32 is out of range 1..31");
    expect_error("monthly day x 02:00", "word 'x' is not a day of the month");
    expect_error("hourly 02:00", "word 'hourly' is not a rule");
    expect_error("daily 25:00", "time '25:00' is out of range");
    expect_error("daily 2pm", "word '2pm' is not a time");
    expect_error("daily 02:00 sharp", "unexpected word 'sharp'");
    expect_error("daily", "missing time");
    expect_error("weekly 02:00", "missing weekdays");
    expect_error("weekly mon,fry 02:00", "word 'fry' is not a weekday");
    expect_error("once 2026-02-30 02:00", "date '2026-02-30' does not exist");
    expect_error("once 26-02-01 02:00", "word '26-02-01' is not a date");
    expect_error("monthly", "missing");
    expect_error("monthly second", "missing weekday");
    expect_error("", "empty rule");
    expect_error("daily 02:00\x01", "control");
}

static void test_window_and_zone(void)
{
    ds_schedule_t *s = NULL;
    int64_t w = 0;
    char err[256] = "";

    CHECK_INT(ds_schedule_parse_window("4h", &w, err, sizeof(err)), 0);
    CHECK_INT(w, 4 * 3600);
    CHECK_INT(ds_schedule_parse_window("90m", &w, err, sizeof(err)), 0);
    CHECK_INT(w, 5400);
    CHECK_INT(ds_schedule_parse_window("2d", &w, err, sizeof(err)), 0);
    CHECK_INT(w, 2 * 86400);
    CHECK_INT(ds_schedule_parse_window("4x", &w, err, sizeof(err)), DS_ESCHEDULE);
    CHECK(strstr(err, "'4x'") != NULL);
    CHECK_INT(ds_schedule_parse_window("0h", &w, err, sizeof(err)), DS_ESCHEDULE);
    CHECK_INT(ds_schedule_parse_window("400d", &w, err, sizeof(err)), DS_ESCHEDULE);
    CHECK_INT(ds_schedule_parse_window("h", &w, err, sizeof(err)), DS_ESCHEDULE);
    CHECK_INT(ds_schedule_parse("daily 02:00", "Europe/Pariss", NULL, &s, err, sizeof(err)),
              DS_ETZ);
    CHECK_STR(err, "unknown time zone 'Europe/Pariss'");
    CHECK(s == NULL);
    CHECK_INT(ds_schedule_parse("daily 02:00", "UTC", "4y", &s, err, sizeof(err)), DS_ESCHEDULE);
    s = sched("daily 02:00", "Europe/Paris", "4h");
    CHECK_INT(ds_schedule_window(s), 4 * 3600);
    CHECK_INT(ds_schedule_window_end(s, at("2026-06-01T02:00:00+02:00")),
              at("2026-06-01T06:00:00+02:00"));
    ds_schedule_free(s);
    s = sched("daily 02:00", "UTC", NULL);
    CHECK_INT(ds_schedule_window_end(s, 0), INT64_MAX);
    ds_schedule_free(s);
    ds_schedule_free(NULL);
}

static void test_dst_gap_and_fold(void)
{
    ds_schedule_t *s = sched("daily 02:30", "Europe/Paris", NULL);
    ds_schedule_t *ny = sched("daily 01:30", "America/New_York", NULL);
    ds_schedule_t *lh = sched("daily 02:15", "Australia/Lord_Howe", NULL);

    CHECK_STR(nexts(s, "2026-03-28T12:00:00Z", 2),
              "2026-03-29T03:00:00+02:00 2026-03-30T02:30:00+02:00");
    CHECK_STR(nexts(s, "2026-10-24T12:00:00Z", 2),
              "2026-10-25T02:30:00+02:00 2026-10-26T02:30:00+01:00");
    /* after the first occurrence, the repeat is not a second run */
    CHECK_STR(nexts(s, "2026-10-25T02:30:00+02:00", 1), "2026-10-26T02:30:00+01:00");
    CHECK_STR(nexts(ny, "2026-10-31T12:00:00Z", 2),
              "2026-11-01T01:30:00-04:00 2026-11-02T01:30:00-05:00");
    CHECK_STR(nexts(lh, "2026-10-03T00:00:00Z", 2),
              "2026-10-04T02:30:00+11:00 2026-10-05T02:15:00+11:00");
    ds_schedule_free(s);
    ds_schedule_free(ny);
    ds_schedule_free(lh);
    s = sched("monthly second sunday 02:30", "America/New_York", NULL);
    CHECK_STR(nexts(s, "2026-03-01T00:00:00Z", 1), "2026-03-08T03:00:00-04:00");
    ds_schedule_free(s);
}

/* Patch Tuesday on the 14th (April 2026) with delays of 17 and 31 days:
 * the run rolls into May, and May's own cycle still runs. */
static void test_delay_rolls_over(void)
{
    ds_schedule_t *d17 = sched("monthly second tuesday +17 days 02:00", "Europe/Paris", NULL);
    ds_schedule_t *d31 = sched("monthly second tuesday +31 days 02:00", "Europe/Paris", NULL);
    int64_t a;

    CHECK_STR(nexts(d17, "2026-04-01T00:00:00Z", 3),
              "2026-05-01T02:00:00+02:00 2026-05-29T02:00:00+02:00 2026-06-26T02:00:00+02:00");
    CHECK_INT(ds_schedule_anchor(d17, at("2026-05-01T02:00:00+02:00"), &a), 0);
    CHECK_INT(a, at("2026-04-15T00:00:00+02:00")); /* end of Patch Tuesday */
    /* April's cycle (anchor 04-14) fires 05-15, after May's anchor (05-12) */
    CHECK_STR(nexts(d31, "2026-04-11T00:00:00Z", 2),
              "2026-05-15T02:00:00+02:00 2026-06-12T02:00:00+02:00");
    CHECK_INT(ds_schedule_anchor(d31, at("2026-05-15T02:00:00+02:00"), &a), 0);
    CHECK_INT(a, at("2026-04-15T00:00:00+02:00"));
    CHECK_INT(ds_schedule_anchor(d31, at("2026-06-12T02:00:00+02:00"), &a), 0);
    CHECK_INT(a, at("2026-05-13T00:00:00+02:00"));
    /* December's cycle rolls into January of the next year */
    CHECK_STR(nexts(d31, "2026-12-31T00:00:00Z", 1), "2027-01-08T02:00:00+01:00");
    CHECK_INT(ds_schedule_anchor(d31, at("2026-05-15T03:00:00+02:00"), &a), DS_ENOTFOUND);
    ds_schedule_free(d17);
    ds_schedule_free(d31);
}

static void test_month_days(void)
{
    ds_schedule_t *d31 = sched("monthly day 31 02:00", "UTC", NULL);
    ds_schedule_t *d29 = sched("monthly day 29 02:00", "UTC", NULL);
    ds_schedule_t *last = sched("monthly last day 22:00", "Asia/Tokyo", NULL);

    CHECK_STR(nexts(d31, "2026-01-01T00:00:00Z", 7),
              "2026-01-31T02:00:00+00:00 2026-03-31T02:00:00+00:00 2026-05-31T02:00:00+00:00 "
              "2026-07-31T02:00:00+00:00 2026-08-31T02:00:00+00:00 2026-10-31T02:00:00+00:00 "
              "2026-12-31T02:00:00+00:00");
    CHECK_STR(nexts(d29, "2024-01-30T00:00:00Z", 2),
              "2024-02-29T02:00:00+00:00 2024-03-29T02:00:00+00:00");
    CHECK_STR(nexts(d29, "2025-01-30T00:00:00Z", 1), "2025-03-29T02:00:00+00:00");
    CHECK_STR(nexts(d29, "2099-01-30T00:00:00Z", 2),
              "2099-03-29T02:00:00+00:00 2099-04-29T02:00:00+00:00");
    CHECK_STR(nexts(last, "2024-02-01T00:00:00Z", 2),
              "2024-02-29T22:00:00+09:00 2024-03-31T22:00:00+09:00");
    CHECK_STR(nexts(last, "2100-02-01T00:00:00Z", 1), "2100-02-28T22:00:00+09:00");
    ds_schedule_free(d31);
    ds_schedule_free(d29);
    ds_schedule_free(last);
}

static void test_once_weekly(void)
{
    ds_schedule_t *once = sched("once 2026-12-01 02:00", "Europe/Paris", NULL);
    ds_schedule_t *wk = sched("weekly mon,thu 02:00", "Asia/Tokyo", NULL);
    int64_t f = 0;

    CHECK_STR(nexts(once, "2026-01-01T00:00:00Z", 3), "2026-12-01T02:00:00+01:00");
    CHECK_INT(ds_schedule_next(once, at("2026-12-01T02:00:00+01:00"), &f), DS_ENOTFOUND);
    CHECK_INT(ds_schedule_prev(once, at("2026-12-01T01:59:59+01:00"), &f), DS_ENOTFOUND);
    CHECK_INT(ds_schedule_prev(once, at("2030-01-01T00:00:00Z"), &f), 0);
    CHECK_INT(f, at("2026-12-01T02:00:00+01:00"));
    CHECK_STR(nexts(wk, "2026-06-01T00:00:00+09:00", 3),
              "2026-06-01T02:00:00+09:00 2026-06-04T02:00:00+09:00 2026-06-08T02:00:00+09:00");
    CHECK_INT(ds_schedule_next(wk, DS_TZ_MAX + 1, &f), DS_ERANGE);
    CHECK_INT(ds_schedule_next(wk, at("9999-12-31T00:00:00Z"), &f), DS_ENOTFOUND);
    ds_schedule_free(once);
    ds_schedule_free(wk);
}

/* Over 2024..2040: prev(next(t)) == next(t); nothing fires between prev(t)
 * and next(t); a monthly rule fires exactly 12 times a year; anchors sit on
 * the Nth weekday, delay days before the fire. */
static void test_properties(void)
{
    static const char *const rules[] = {
        "monthly second tuesday +4 days 02:00",
        "monthly second tuesday +31 days 02:00",
        "monthly last sunday 02:30",
        "monthly first sunday +17 days 01:30",
        "monthly last friday 23:30",
        "daily 02:30",
        "weekly sun 02:15",
        "monthly day 31 02:00",
    };
    static const char *const zones[] = {"Europe/Paris", "America/New_York", "Australia/Lord_Howe",
                                        "Asia/Tokyo", "UTC"};
    int64_t start = at("2024-01-01T00:00:00Z"), end = at("2041-01-01T00:00:00Z");
    long checked = 0;

    for (size_t r = 0; r < sizeof(rules) / sizeof(rules[0]); r++) {
        for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
            ds_schedule_t *s = sched(rules[r], zones[z], NULL);
            const ds_schedule_rule_t *rule = ds_schedule_rule(s);
            int64_t t, f, p, p2, a, pf;
            int fires = 0, bad = 0;

            for (t = start; t < end && !bad; t += 86400 * 3 + 4321) {
                bad |= ds_schedule_next(s, t, &f) != 0 || f <= t;
                bad |= ds_schedule_prev(s, f, &p) != 0 || p != f;
                bad |= ds_schedule_prev(s, t, &p2) != 0 || p2 > t;
                bad |= ds_schedule_next(s, p2, &pf) != 0 || pf != f;
                checked++;
            }
            CHECK(!bad);
            for (t = at("2030-01-01T00:00:00Z");
                 ds_schedule_next(s, t, &f) == 0 && f < at("2031-01-01T00:00:00Z"); t = f) {
                fires++;
                CHECK_INT(ds_schedule_anchor(s, f, &a), 0);
                if (rule->kind != DS_SCHED_NTH_WEEKDAY) {
                    CHECK_INT(a, f);
                    continue;
                }
                int32_t off;
                int64_t ad, y;
                int m, d;

                /* a delayed cycle anchors at the midnight ending its day */
                CHECK_INT(ds_tz_offset(ds_schedule_tz(s), a, &off, NULL), 0);
                ad = (a + off - (rule->delay > 0)) / 86400;
                if (rule->delay > 0)
                    CHECK_INT((a + off) % 86400, 0);
                else
                    CHECK_INT(a, f);
                ds_tz_civil_from_days(ad, &y, &m, &d);
                CHECK_INT(ds_tz_weekday(ad), rule->weekday);
                if (rule->ordinal > 0)
                    CHECK_INT((d - 1) / 7 + 1, rule->ordinal);
                else
                    CHECK(d + 7 > ds_tz_days_in_month(y, m));
                int64_t want = rule->delay > 0 ? (rule->delay - 1) * 86400LL + rule->hour * 3600 +
                                                     rule->minute * 60
                                               : 0;

                CHECK(f - a >= want - 3600 && f - a <= want + 3600);
            }
            if (rule->kind == DS_SCHED_NTH_WEEKDAY || rule->kind == DS_SCHED_LAST_DAY)
                CHECK_INT(fires, 12);
            if (rule->kind == DS_SCHED_MONTH_DAY)
                CHECK_INT(fires, 7);
            ds_schedule_free(s);
        }
    }
    CHECK(checked > 80000);
}

/* Hand-built rules are validated; a schedule can take any ds_tz_t. */
static void test_new(void)
{
    ds_schedule_rule_t r = {.kind = DS_SCHED_NTH_WEEKDAY, .ordinal = 5, .weekday = 2, .hour = 2};
    ds_schedule_t *s = NULL;
    ds_tz_t *tz = NULL;

    CHECK_INT(ds_tz_utc(&tz), 0);
    CHECK_INT(ds_schedule_new(&r, tz, 0, &s), DS_ESCHEDULE); /* frees tz */
    CHECK(s == NULL);
    r.ordinal = 1;
    r.delay = 32;
    CHECK_INT(ds_tz_utc(&tz), 0);
    CHECK_INT(ds_schedule_new(&r, tz, 0, &s), DS_ESCHEDULE);
    r.delay = 0;
    CHECK_INT(ds_tz_utc(&tz), 0);
    CHECK_INT(ds_schedule_new(&r, tz, 3600, &s), 0);
    CHECK_STR(nexts(s, "2026-09-01T00:00:00Z", 1), "2026-09-01T02:00:00+00:00");
    CHECK_STR(ds_tz_name(ds_schedule_tz(s)), "UTC");
    ds_schedule_free(s);
}

int main(void)
{
    RUN(test_parse_forms);
    RUN(test_parse_errors);
    RUN(test_window_and_zone);
    RUN(test_dst_gap_and_fold);
    RUN(test_delay_rolls_over);
    RUN(test_month_days);
    RUN(test_once_weekly);
    RUN(test_properties);
    RUN(test_new);
    return CHECK_DONE();
}

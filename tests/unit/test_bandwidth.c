/*
 * Unit tests for bandwidth tables: the grammar (rates, windows, overlaps,
 * every error naming its word), canonical formatting, and the rate at an
 * instant with its next change, across midnight and both 2026 DST changes
 * in Europe/Paris.
 */
#include "check.h"
#include "distsync/bandwidth.h"
#include "distsync/error.h"

#define H 3600

static ds_tz_t *paris, *utc;

/* Instant of a UTC date and time. */
static int64_t at(int y, int mo, int d, int h, int mi)
{
    return ds_tz_days_from_civil(y, mo, d) * 86400 + h * H + mi * 60;
}

static uint64_t rate(const char *text, const ds_tz_t *tz, int64_t t, int64_t *next)
{
    ds_bw_table_t tb;
    char msg[256];
    uint64_t bps = 12345;

    CHECK_INT(ds_bw_parse(text, &tb, msg, sizeof(msg)), 0);
    CHECK_INT(ds_bw_rate_at(&tb, tz, t, &bps, next), 0);
    return bps;
}

static void test_rates(void)
{
    static const struct {
        const char *s;
        uint64_t bps;
    } ok[] = {
        {"512kbit", 512000}, {"20Mbit", 20000000},        {"1Gbit", 1000000000},
        {"2MB", 16000000},   {"1.5MiB", 12582912},        {"off", DS_BW_OFF},
        {"0", DS_BW_PAUSED}, {"20Mbit/s", 20000000},      {"64kbit", 64000},
        {"1KiB", 8192},      {"0.5Gbit", 500000000},      {"10Tbit", 10000000000000ull},
        {"1kbit", 1000},     {"12.582912Mbit", 12582912}, {"0Mbit", DS_BW_PAUSED},
    };
    static const struct {
        const char *s, *msg;
    } bad[] = {
        {"20", "rate '20' has no unit (write e.g. 20Mbit or 20MB"},
        {"20mb", "unknown unit 'mb'"},
        {"500bit", "rate '500bit' is below 1kbit (use 0 to pause)"},
        {"11Tbit", "rate '11Tbit' is too large"},
        {"fast", "expected a rate such as 20Mbit, 2MB, off or 0, got 'fast'"},
        {"1.Mbit", "expected digits after '.'"},
        {"-1Mbit", "expected a rate"},
        {"", "expected a rate"},
    };
    char msg[256], buf[32];
    uint64_t bps;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        bps = 1;
        CHECK_INT(ds_bw_parse_rate(ok[i].s, &bps, msg, sizeof(msg)), 0);
        CHECK(bps == ok[i].bps);
        CHECK_INT(ds_bw_format_rate(bps, buf, sizeof(buf)), 0);
        CHECK_INT(ds_bw_parse_rate(buf, &bps, msg, sizeof(msg)), 0);
        CHECK(bps == ok[i].bps);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        msg[0] = '\0';
        CHECK_INT(ds_bw_parse_rate(bad[i].s, &bps, msg, sizeof(msg)), DS_ECONFIG);
        if (strstr(msg, bad[i].msg) == NULL)
            fprintf(stderr, "'%s': got '%s'\n", bad[i].s, msg);
        CHECK(strstr(msg, bad[i].msg) != NULL);
    }
    CHECK_INT(ds_bw_format_rate(1500000, buf, sizeof(buf)), 0);
    CHECK_STR(buf, "1.5Mbit");
}

static void test_table(void)
{
    const char *text = "20Mbit; Mon-Fri 08:00-18:00 512kbit; Fri 22:00-06:00 200Mbit; Sun off";
    ds_bw_table_t t, t2;
    char msg[256], out[2 * DS_BW_TEXT_MAX];

    CHECK_INT(ds_bw_parse(text, &t, msg, sizeof(msg)), 0);
    CHECK(t.dflt == 20000000);
    CHECK_INT(t.n, 3);
    CHECK_INT(t.w[0].days, 0x3e); /* Mon..Fri */
    CHECK_INT(t.w[0].start, 480);
    CHECK_INT(t.w[0].end, 1080);
    CHECK(t.w[0].bps == 512000);
    CHECK_INT(t.w[1].days, 1 << 5);
    CHECK_INT(t.w[1].start, 1320);
    CHECK_INT(t.w[1].end, 360);
    CHECK_INT(t.w[2].days, 1);
    CHECK_INT(t.w[2].start, 0);
    CHECK_INT(t.w[2].end, 1440);
    CHECK(t.w[2].bps == DS_BW_OFF);
    CHECK_INT(ds_bw_format(&t, out, sizeof(out)), 0);
    CHECK_STR(out, text);
    /* other spellings of the same windows; no default means off */
    CHECK_INT(ds_bw_parse("  mon-FRI 08:00-18:00 64KB ;22:00-24:00 0; sat,Sun,tue 1MiB/s", &t, msg,
                          sizeof(msg)),
              DS_ECONFIG); /* all of Tuesday collides with Tuesday's working hours */
    CHECK(strstr(msg, "window 'Mon-Fri 08:00-18:00 512kbit' overlaps window 'Tue,Sat-Sun "
                      "8.388608Mbit' (both cover Tue 08:00-18:00)") != NULL);
    CHECK_INT(ds_bw_parse("  mon-FRI 08:00-18:00 64KB ;22:00-24:00 0; sat,Sun 1MiB/s", &t, msg,
                          sizeof(msg)),
              DS_ECONFIG);
    CHECK(strstr(msg, "window '22:00-24:00 0' overlaps window 'Sat-Sun 8.388608Mbit' (both cover "
                      "Sun 22:00-24:00)") != NULL);
    CHECK_INT(ds_bw_parse("Mon-Fri 08:00-18:00 64KB; Fri-Mon 20:00-24:00 0", &t, msg, sizeof(msg)),
              0);
    CHECK(t.dflt == DS_BW_OFF);
    CHECK_INT(t.w[1].days, 0x63); /* Fri, Sat, Sun, Mon */
    CHECK_INT(ds_bw_format(&t, out, sizeof(out)), 0);
    CHECK_STR(out, "off; Mon-Fri 08:00-18:00 512kbit; Mon,Fri-Sun 20:00-24:00 0");
    CHECK_INT(ds_bw_parse(out, &t2, msg, sizeof(msg)), 0);
    CHECK(memcmp(&t, &t2, sizeof(t)) == 0);
}

static void expect_error(const char *text, const char *want)
{
    ds_bw_table_t t;
    char msg[512] = "";

    CHECK_INT(ds_bw_parse(text, &t, msg, sizeof(msg)), DS_ECONFIG);
    if (strstr(msg, want) == NULL)
        fprintf(stderr, "'%s': got '%s', expected '%s'\n", text, msg, want);
    CHECK(strstr(msg, want) != NULL);
}

static void test_errors(void)
{
    char many[DS_BW_TEXT_MAX + 16];
    size_t n = 0;

    /* the issue's own example: Friday night runs into Saturday */
    expect_error("20Mbit; Mon-Fri 08:00-18:00 512kbit; Fri 22:00-06:00 200Mbit; Sat-Sun off",
                 "window 'Fri 22:00-06:00 200Mbit' overlaps window 'Sat-Sun off' (both cover Sat "
                 "00:00-06:00)");
    expect_error("1Mbit; Sun 22:00-06:00 0; Mon 05:00-07:00 2Mbit",
                 "window 'Sun 22:00-06:00 0' overlaps window 'Mon 05:00-07:00 2Mbit' (both "
                 "cover Mon 05:00-06:00)");
    expect_error("1Mbit; Sat 23:00-01:00 0; 00:30-00:45 2Mbit", "(both cover Sun 00:30-00:45)");
    expect_error("1Mbit; Mon 08:00-18:00 0; Mon 12:00-20:00 2Mbit", "both cover Mon 12:00-18:00");
    expect_error("20", "rate '20' has no unit");
    expect_error("1Mbit; Mon-Fri 08:00-18:00 512", "rate '512' has no unit");
    expect_error("1Mbit;; Mon 512kbit", "entry 2 is empty");
    expect_error("1Mbit; 2Mbit", "entry 2 '2Mbit' is not a window");
    expect_error("1Mbit; Mon-Fry 512kbit",
                 "expected days such as Mon-Fri or Sat,Sun, got 'Mon-Fry'");
    expect_error("1Mbit; Mon 25:00-26:00 512kbit", "expected a time range such as 08:00-18:00");
    expect_error("1Mbit; Mon 08:00-08:00 512kbit", "time range '08:00-08:00' is empty");
    expect_error("1Mbit; Mon 08:00-18:00 512kbit extra", "got more words");
    expect_error("1Mbit; Mon Tue 512kbit", "expected a time range");
    expect_error("1Mbit\x01", "control or non-ASCII");
    expect_error("", "empty value");
    expect_error("  ", "entry 1 is empty");
    for (int i = 0; i <= DS_BW_MAX_WINDOWS; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "; Mon %02d:%02d-%02d:%02d 1Mbit", i / 2,
                              i % 2 * 30, i / 2, i % 2 * 30 + 10);
    expect_error(many + 2, "more than 32 windows");
    memset(many, 'a', sizeof(many) - 1);
    many[sizeof(many) - 1] = '\0';
    expect_error(many, "longer than");
}

/* Friday 2026-11-27 in UTC: windows, midnight, the week's wrap. */
static void test_eval_utc(void)
{
    const char *t = "20Mbit; Mon-Fri 08:00-18:00 512kbit; Fri 22:00-06:00 200Mbit; Sun off";
    int64_t next;

    CHECK_INT(ds_tz_weekday(ds_tz_days_from_civil(2026, 11, 27)), 5);
    CHECK(rate(t, utc, at(2026, 11, 27, 7, 59), &next) == 20000000);
    CHECK_INT(next, at(2026, 11, 27, 8, 0));
    CHECK(rate(t, utc, at(2026, 11, 27, 8, 0), &next) == 512000);
    CHECK_INT(next, at(2026, 11, 27, 18, 0));
    CHECK(rate(t, utc, at(2026, 11, 27, 21, 0), &next) == 20000000);
    CHECK_INT(next, at(2026, 11, 27, 22, 0));
    /* Friday's night window runs into Saturday morning */
    CHECK(rate(t, utc, at(2026, 11, 28, 5, 59), &next) == 200000000);
    CHECK_INT(next, at(2026, 11, 28, 6, 0));
    CHECK(rate(t, utc, at(2026, 11, 28, 6, 0), &next) == 20000000);
    CHECK_INT(next, at(2026, 11, 29, 0, 0)); /* Sunday: off */
    CHECK(rate(t, utc, at(2026, 11, 29, 12, 0), &next) == DS_BW_OFF);
    CHECK_INT(next, at(2026, 11, 30, 0, 0));
    /* a window starting Saturday night ends Sunday; one on Sunday night
     * ends Monday, across the week's wrap */
    CHECK(rate("1Mbit; Sat 22:00-02:00 0; Sun 23:00-01:00 5Mbit", utc, at(2026, 11, 29, 1, 59),
               &next) == 0);
    CHECK_INT(next, at(2026, 11, 29, 2, 0));
    CHECK(rate("1Mbit; Sat 22:00-02:00 0; Sun 23:00-01:00 5Mbit", utc, at(2026, 11, 30, 0, 30),
               &next) == 5000000);
    CHECK_INT(next, at(2026, 11, 30, 1, 0));
    /* no windows, or windows that change nothing: never */
    CHECK(rate("5Mbit", utc, at(2026, 11, 27, 0, 0), &next) == 5000000);
    CHECK(next == DS_BW_NEVER);
    CHECK(rate("5Mbit; Mon-Sun 5Mbit", utc, at(2026, 11, 27, 0, 0), &next) == 5000000);
    CHECK(next == DS_BW_NEVER);
    /* adjacent windows with one rate are one change */
    CHECK(rate("1Mbit; Mon 08:00-12:00 5Mbit; Mon 12:00-18:00 5Mbit", utc, at(2026, 11, 30, 9, 0),
               &next) == 5000000);
    CHECK_INT(next, at(2026, 11, 30, 18, 0));
}

/* 2026-03-29, Paris: 02:00 CET (01:00 UTC) jumps to 03:00 CEST. */
static void test_eval_spring_forward(void)
{
    int64_t next, jump = at(2026, 3, 29, 1, 0);

    /* an edge in the skipped hour takes effect at the jump */
    CHECK(rate("10Mbit; Sun 02:30-05:00 1Mbit", paris, jump - 1, &next) == 10000000);
    CHECK_INT(next, jump);
    CHECK(rate("10Mbit; Sun 02:30-05:00 1Mbit", paris, jump, &next) == 1000000);
    CHECK_INT(next, at(2026, 3, 29, 3, 0)); /* 05:00 CEST */
    /* a window wholly in the skipped hour does not run that day */
    CHECK(rate("10Mbit; Sun 02:00-02:30 0", paris, at(2026, 3, 28, 12, 0), &next) == 10000000);
    CHECK_INT(next, at(2026, 4, 5, 0, 0)); /* next Sunday 02:00 CEST */
    /* a night window across the change is an hour shorter */
    CHECK(rate("10Mbit; Sat 22:00-06:00 200Mbit", paris, at(2026, 3, 28, 21, 0), &next) ==
          200000000);
    CHECK_INT(next, at(2026, 3, 29, 4, 0)); /* 06:00 CEST: 7 hours */
    CHECK(rate("10Mbit; Sat 22:00-06:00 200Mbit", paris, at(2026, 3, 28, 20, 59), &next) ==
          10000000);
    CHECK_INT(next, at(2026, 3, 28, 21, 0));
}

/* 2026-10-25, Paris: 03:00 CEST (01:00 UTC) falls back to 02:00 CET. */
static void test_eval_fall_back(void)
{
    int64_t next;

    /* edges in the repeated hour take effect at their first occurrence */
    CHECK(rate("10Mbit; Sun 02:30-04:00 1Mbit", paris, at(2026, 10, 25, 0, 29), &next) == 10000000);
    CHECK_INT(next, at(2026, 10, 25, 0, 30)); /* 02:30 CEST */
    CHECK(rate("10Mbit; Sun 02:30-04:00 1Mbit", paris, at(2026, 10, 25, 1, 15), &next) == 1000000);
    CHECK_INT(next, at(2026, 10, 25, 3, 0)); /* 04:00 CET: 2.5 hours */
    /* a window in the repeated hour runs once */
    CHECK(rate("10Mbit; Sun 02:00-02:30 0", paris, at(2026, 10, 25, 0, 10), &next) == 0);
    CHECK_INT(next, at(2026, 10, 25, 0, 30));
    CHECK(rate("10Mbit; Sun 02:00-02:30 0", paris, at(2026, 10, 25, 1, 10), &next) == 10000000);
    CHECK_INT(next, at(2026, 11, 1, 1, 0)); /* next Sunday 02:00 CET */
    /* a night window across the change is an hour longer */
    CHECK(rate("10Mbit; Sat 22:00-06:00 200Mbit", paris, at(2026, 10, 24, 20, 0), &next) ==
          200000000);
    CHECK_INT(next, at(2026, 10, 25, 5, 0)); /* 06:00 CET: 9 hours */
}

/* Walks both DST weeks edge by edge: each next change really changes the
 * rate, and nothing changes before it. */
static void test_eval_walk(void)
{
    const char *text = "20Mbit; Mon-Fri 08:00-18:00 512kbit; Sat 22:00-02:00 0; Sun 02:15-02:45 "
                       "1Gbit; Sun 05:00-24:00 off";
    static const int64_t starts[2][3] = {{2026, 3, 25}, {2026, 10, 21}};
    ds_bw_table_t t;
    char msg[256];

    CHECK_INT(ds_bw_parse(text, &t, msg, sizeof(msg)), 0);
    for (int k = 0; k < 2; k++) {
        int64_t now = at((int)starts[k][0], (int)starts[k][1], (int)starts[k][2], 0, 0);
        int64_t end = now + 8 * 86400;
        int edges = 0;

        while (now < end) {
            uint64_t r, r1, r2;
            int64_t next, n2;

            CHECK_INT(ds_bw_rate_at(&t, paris, now, &r, &next), 0);
            CHECK(next > now && next != DS_BW_NEVER);
            if (next <= now || next == DS_BW_NEVER)
                break;
            for (int64_t p = now; p < next; p += 599) {
                CHECK_INT(ds_bw_rate_at(&t, paris, p, &r1, &n2), 0);
                CHECK(r1 == r && n2 == next);
            }
            CHECK_INT(ds_bw_rate_at(&t, paris, next, &r2, NULL), 0);
            CHECK(r2 != r);
            now = next;
            edges++;
        }
        CHECK(edges >= 12);
    }
}

int main(void)
{
    if (ds_tz_load("Europe/Paris", &paris) != 0 || ds_tz_utc(&utc) != 0) {
        fprintf(stderr, "need tzdata (Europe/Paris)\n");
        return 1;
    }
    RUN(test_rates);
    RUN(test_table);
    RUN(test_errors);
    RUN(test_eval_utc);
    RUN(test_eval_spring_forward);
    RUN(test_eval_fall_back);
    RUN(test_eval_walk);
    ds_tz_free(paris);
    ds_tz_free(utc);
    return CHECK_DONE();
}

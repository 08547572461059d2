/*
 * libFuzzer target for schedule rule text: parses the input as a rule and
 * as a window; a rule that parses must format to canonical text that parses
 * back to the same rule, and next/prev/anchor on it (in UTC) must agree:
 * prev(next(t)) == next(t) and anchor(fire) <= fire.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/schedule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_engine(const ds_schedule_rule_t *rule)
{
    static const int64_t probes[] = {0, 1767225600, 2000000000, 4102444800, -2208988800};
    ds_schedule_t *s = NULL;
    ds_tz_t *tz = NULL;

    if (ds_tz_utc(&tz) != 0 || ds_schedule_new(rule, tz, 0, &s) != 0)
        abort();
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        int64_t f, p, a;

        if (ds_schedule_next(s, probes[i], &f) != 0)
            continue;
        if (f <= probes[i] || ds_schedule_prev(s, f, &p) != 0 || p != f)
            abort();
        if (ds_schedule_anchor(s, f, &a) != 0 || a > f || f - a > 32 * 86400)
            abort();
    }
    ds_schedule_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[512], err[256], canon[256], err2[256];
    ds_schedule_rule_t r, r2;
    int64_t w;

    if (size >= sizeof(text))
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    (void)ds_schedule_parse_window(text, &w, err, sizeof(err));
    if (ds_schedule_parse_rule(text, &r, err, sizeof(err)) != 0) {
        if (err[0] == '\0')
            abort(); /* every error has a message */
        return 0;
    }
    if (ds_schedule_format_rule(&r, canon, sizeof(canon)) != 0 ||
        ds_schedule_parse_rule(canon, &r2, err2, sizeof(err2)) != 0 ||
        memcmp(&r, &r2, sizeof(r)) != 0)
        abort();
    check_engine(&r);
    return 0;
}

/*
 * libFuzzer target for bandwidth tables (config text, so outside bytes):
 * parses the input as a rate and as a table. Every error has a message; a
 * table that parses formats to canonical text that parses back to the same
 * table, and its evaluation in UTC is consistent: the rate just before the
 * next change is the rate now, and the rate at the change differs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/bandwidth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_eval(const ds_bw_table_t *t, const ds_tz_t *utc)
{
    static const int64_t probes[] = {0, 1774745999, 1792886400, 1800000000, 4102444800};

    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        uint64_t r, r1, r2;
        int64_t next;

        if (ds_bw_rate_at(t, utc, probes[i], &r, &next) != 0)
            abort();
        if (next == DS_BW_NEVER)
            continue;
        if (next <= probes[i] || next - probes[i] > 8 * 86400)
            abort();
        if (ds_bw_rate_at(t, utc, next - 1, &r1, NULL) != 0 ||
            ds_bw_rate_at(t, utc, next, &r2, NULL) != 0 || r1 != r || r2 == r)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ds_tz_t *utc;
    char text[DS_BW_TEXT_MAX + 8], msg[512], canon[2 * DS_BW_TEXT_MAX], msg2[512];
    ds_bw_table_t t, t2;
    uint64_t bps;

    if (utc == NULL && ds_tz_utc(&utc) != 0)
        abort();
    if (size >= sizeof(text))
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    msg[0] = '\0';
    if (ds_bw_parse_rate(text, &bps, msg, sizeof(msg)) != 0 && msg[0] == '\0')
        abort();
    msg[0] = '\0';
    if (ds_bw_parse(text, &t, msg, sizeof(msg)) != 0) {
        if (msg[0] == '\0')
            abort(); /* every error has a message */
        return 0;
    }
    if (ds_bw_format(&t, canon, sizeof(canon)) != 0 ||
        ds_bw_parse(canon, &t2, msg2, sizeof(msg2)) != 0 || memcmp(&t, &t2, sizeof(t)) != 0)
        abort();
    check_eval(&t, utc);
    return 0;
}

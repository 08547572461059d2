/*
 * libFuzzer target for the TZif reader (ds_tz_parse): any input must be
 * rejected or yield a zone whose conversions stay consistent: a resolved
 * wall time maps back to itself (or, in a gap, to a later wall time).
 */
#include <stdint.h>
#include <stdlib.h>

#include "distsync/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t probes[] = {-2208988800, 0,          1774746000,  2000000000,
                                     2300000000,  4102444800, 253402214400};
    ds_tz_t *tz = NULL;
    char buf[64];

    if (ds_tz_parse(data, size, "fuzz", &tz) != 0)
        return 0;
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        ds_tz_local_t r;
        int32_t off, off2;
        int dst;

        if (ds_tz_offset(tz, probes[i], &off, &dst) != 0 ||
            ds_tz_format_rfc3339(tz, probes[i], buf, sizeof(buf)) != 0)
            abort();
        if (ds_tz_resolve(tz, probes[i], &r) != 0)
            continue; /* inconsistent data may be reported, never crash */
        if (ds_tz_offset(tz, r.first, &off2, NULL) != 0)
            abort();
        if (r.kind == DS_TZ_GAP ? r.first + off2 <= probes[i] : r.first + off2 != probes[i])
            abort();
    }
    ds_tz_free(tz);
    return 0;
}

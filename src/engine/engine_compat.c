/*
 * The sender-session calls the engine needs from a parallel change
 * (control frames ahead of data, rate-sized frames): no-ops until it
 * lands, then one line each.
 */
#include "engine_int.h"

size_t ds__compat_ctl_pending(const ds_session_t *ss)
{
    (void)ss;
    return 0;
}

void ds__compat_set_rate(ds_session_t *ss, uint64_t bytes_per_s)
{
    (void)ss;
    (void)bytes_per_s;
}

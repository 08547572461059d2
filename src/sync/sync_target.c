/*
 * Small helpers of the runs: the monotonic clock, and a run's first
 * failure as "server NAME: ...".
 */
#include <stdio.h>
#include <time.h>

#include "distsync/error.h"

#include "sync_int.h"

int64_t ds__sync_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int ds__sync_vfail(int *res_rc, char *error, size_t errlen, const char *server, int rc,
                   const char *fmt, va_list ap)
{
    char msg[900];

    if (*res_rc < 0)
        return *res_rc;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    snprintf(error, errlen, "server %s: %s", server, msg);
    *res_rc = rc < 0 ? rc : DS_EINTERNAL;
    return *res_rc;
}

/* fsutil: timespec to nanoseconds saturates instead of overflowing. */
#include <stdint.h>

#include "check.h"
#include "distsync/fsutil.h"

static int64_t ns(int64_t sec, long nsec)
{
    struct timespec ts = {.tv_sec = (time_t)sec, .tv_nsec = nsec};

    return ds_timespec_ns(&ts);
}

static void test_timespec_ns(void)
{
    CHECK_INT(ns(0, 0), 0);
    CHECK_INT(ns(1700000000, 5), 1700000000000000005LL);
    CHECK_INT(ns(-1, 999999999), -1);
    CHECK_INT(ns(-2, 0), -2000000000LL);
    /* the last representable values on both ends */
    CHECK_INT(ns(9223372036, 854775807), INT64_MAX);
    CHECK_INT(ns(-9223372037, 145224193), INT64_MIN + 1);
    /* past them: saturated, never INT64_MIN (DS_PROTO_NO_MTIME) */
    CHECK_INT(ns(9223372036, 854775808), INT64_MAX);
    CHECK_INT(ns(9223372037, 0), INT64_MAX);
    CHECK_INT(ns(INT64_MAX, 999999999), INT64_MAX);
    CHECK_INT(ns(-9223372037, 145224192), INT64_MIN + 1);
    CHECK_INT(ns(-9223372037, 0), INT64_MIN + 1);
    CHECK_INT(ns(INT64_MIN, 0), INT64_MIN + 1);
    CHECK_INT(ns(INT64_MIN, 999999999), INT64_MIN + 1);
}

int main(void)
{
    RUN(test_timespec_ns);
    return CHECK_DONE();
}

/* File-system helpers: mkdir -p, timespec to nanoseconds. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "distsync/fsutil.h"

int ds_mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;

            *p = '\0';
            if (mkdir(buf, 0750) < 0 && errno != EEXIST)
                return -errno;
            *p = c;
            if (c == '\0')
                break;
        }
    }
    return 0;
}

int64_t ds_timespec_ns(const struct timespec *ts)
{
    int64_t r;

    if (__builtin_mul_overflow((int64_t)ts->tv_sec, (int64_t)1000000000, &r) ||
        __builtin_add_overflow(r, (int64_t)ts->tv_nsec, &r))
        return ts->tv_sec < 0 ? INT64_MIN + 1 : INT64_MAX;
    return r == INT64_MIN ? INT64_MIN + 1 : r;
}

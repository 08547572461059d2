/* File-system helpers: mkdir -p, timespec to nanoseconds, write-all and
 * atomic replace. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "distsync/fsutil.h"
#include "distsync/pathsafe.h"

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

int ds_write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;

    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ds_write_all through fs. */
static int write_all_fs(const ds_fs_t *fs, int fd, const void *p, size_t n)
{
    const char *b = p;

    while (n > 0) {
        ssize_t w = ds_fs_write(fs, fd, b, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int ds_atomic_write_fs(const ds_fs_t *fs, int dirfd, const char *name, const void *p, size_t n)
{
    char tmp[256];
    int fd, rc;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    rc = ds_pathsafe_create_tmp_fs(fs, dirfd, tmp, 0600, &fd);
    if (rc < 0)
        return rc;
    rc = write_all_fs(fs, fd, p, n);
    if (rc == 0 && ds_fs_fsync(fs, fd) < 0)
        rc = -errno;
    if (ds_fs_close(fs, fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && ds_fs_renameat(fs, dirfd, tmp, dirfd, name) < 0)
        rc = -errno;
    if (rc == 0 && ds_fs_fsync(fs, dirfd) < 0)
        rc = -errno;
    if (rc < 0)
        ds_fs_unlinkat(fs, dirfd, tmp, 0);
    return rc;
}

int ds_atomic_write(int dirfd, const char *name, const void *p, size_t n)
{
    return ds_atomic_write_fs(&ds_fs_posix, dirfd, name, p, n);
}

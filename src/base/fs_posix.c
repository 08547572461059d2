/* The filesystem seam's POSIX backend (include/distsync/fs.h): each op is
 * the system call, so a receiver on it behaves as it did before the seam. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "distsync/fs.h"

static int px_openat(const ds_fs_t *fs, int dirfd, const char *name, int flags, mode_t mode)
{
    (void)fs;
    return openat(dirfd, name, flags, mode);
}

static ssize_t px_read(const ds_fs_t *fs, int fd, void *buf, size_t n)
{
    (void)fs;
    return read(fd, buf, n);
}

static ssize_t px_pread(const ds_fs_t *fs, int fd, void *buf, size_t n, off_t off)
{
    (void)fs;
    return pread(fd, buf, n, off);
}

static ssize_t px_write(const ds_fs_t *fs, int fd, const void *buf, size_t n)
{
    (void)fs;
    return write(fd, buf, n);
}

static int px_close(const ds_fs_t *fs, int fd)
{
    (void)fs;
    return close(fd);
}

static int px_fsync(const ds_fs_t *fs, int fd)
{
    (void)fs;
    return fsync(fd);
}

static int px_fstat(const ds_fs_t *fs, int fd, struct stat *st)
{
    (void)fs;
    return fstat(fd, st);
}

static int px_fstatat(const ds_fs_t *fs, int dirfd, const char *name, struct stat *st, int flags)
{
    (void)fs;
    return fstatat(dirfd, name, st, flags);
}

static int px_futimens(const ds_fs_t *fs, int fd, const struct timespec ts[2])
{
    (void)fs;
    return futimens(fd, ts);
}

static int px_fchmod(const ds_fs_t *fs, int fd, mode_t mode)
{
    (void)fs;
    return fchmod(fd, mode);
}

static int px_renameat(const ds_fs_t *fs, int od, const char *on, int nd, const char *nn)
{
    (void)fs;
    return renameat(od, on, nd, nn);
}

static int px_unlinkat(const ds_fs_t *fs, int dirfd, const char *name, int flags)
{
    (void)fs;
    return unlinkat(dirfd, name, flags);
}

static int px_mkdirat(const ds_fs_t *fs, int dirfd, const char *name, mode_t mode)
{
    (void)fs;
    return mkdirat(dirfd, name, mode);
}

static int px_dup(const ds_fs_t *fs, int fd)
{
    (void)fs;
    return fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

static int px_lock(const ds_fs_t *fs, int fd)
{
    (void)fs;
    return flock(fd, LOCK_EX | LOCK_NB);
}

static ds_fs_dir_t *px_fdopendir(const ds_fs_t *fs, int fd)
{
    (void)fs;
    return (ds_fs_dir_t *)fdopendir(fd);
}

static struct dirent *px_readdir(const ds_fs_t *fs, ds_fs_dir_t *d)
{
    (void)fs;
    return readdir((DIR *)d);
}

static void px_rewinddir(const ds_fs_t *fs, ds_fs_dir_t *d)
{
    (void)fs;
    rewinddir((DIR *)d);
}

static int px_closedir(const ds_fs_t *fs, ds_fs_dir_t *d)
{
    (void)fs;
    return closedir((DIR *)d);
}

static int px_dirfd(const ds_fs_t *fs, ds_fs_dir_t *d)
{
    (void)fs;
    return dirfd((DIR *)d);
}

static const ds_fs_ops_t posix_ops = {
    .name = "posix",
    .can_syncfs = 1,
    .openat = px_openat,
    .read = px_read,
    .pread = px_pread,
    .write = px_write,
    .close = px_close,
    .fsync = px_fsync,
    .fstat = px_fstat,
    .fstatat = px_fstatat,
    .futimens = px_futimens,
    .fchmod = px_fchmod,
    .renameat = px_renameat,
    .unlinkat = px_unlinkat,
    .mkdirat = px_mkdirat,
    .dup = px_dup,
    .lock = px_lock,
    .fdopendir = px_fdopendir,
    .readdir = px_readdir,
    .rewinddir = px_rewinddir,
    .closedir = px_closedir,
    .dirfd = px_dirfd,
};

const ds_fs_t ds_fs_posix = {.ops = &posix_ops, .ctx = NULL};

/* Safe path resolution under a root: component walk with O_NOFOLLOW. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "distsync/error.h"
#include "distsync/pathsafe.h"

static int component_ok(const char *c, size_t n, const char **why)
{
    if (n == 0) {
        *why = "empty component ('//', leading or trailing '/')";
        return 0;
    }
    if (n == 1 && c[0] == '.') {
        *why = "'.' component";
        return 0;
    }
    if (n == 2 && c[0] == '.' && c[1] == '.') {
        *why = "'..' component";
        return 0;
    }
    if (n > 255) {
        *why = "component longer than 255 bytes";
        return 0;
    }
    return 1;
}

int ds_pathsafe_check(const char *rel, const char **why)
{
    const char *dummy, *start;
    size_t n;

    if (why == NULL)
        why = &dummy;
    *why = NULL;
    if (rel == NULL || rel[0] == '\0') {
        *why = "empty path";
        return DS_EPATH;
    }
    n = strlen(rel);
    if (n > DS_PATHSAFE_MAX) {
        *why = "path too long";
        return DS_EPATH;
    }
    if (rel[0] == '/') {
        *why = "absolute path";
        return DS_EPATH;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)rel[i];

        if (c == '\\') {
            *why = "backslash in path";
            return DS_EPATH;
        }
        if (c < 0x20 || c == 0x7f) {
            *why = "control character in path";
            return DS_EPATH;
        }
    }
    start = rel;
    for (;;) {
        const char *slash = strchr(start, '/');
        size_t len = slash ? (size_t)(slash - start) : strlen(start);

        if (!component_ok(start, len, why))
            return DS_EPATH;
        if (start == rel && len == strlen(DS_STATE_DIR) && memcmp(start, DS_STATE_DIR, len) == 0) {
            *why = "path inside the .distsync state directory";
            return DS_EPATH;
        }
        if (slash == NULL)
            break;
        start = slash + 1;
    }
    return 0;
}

/* Maps an ds_fs_openat(fs, ) failure on a component to our codes. */
static int walk_err(const ds_fs_t *fs, int fd, const char *name, int e)
{
    struct stat st;

    if (e == ELOOP)
        return DS_ESYMLINK;
    if (e == ENOTDIR) {
        if (ds_fs_fstatat(fs, fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
            return DS_ESYMLINK;
        return DS_ENOTREG;
    }
    return -e;
}

static int open_dir_at(const ds_fs_t *fs, int fd, const char *name, int create, int *out)
{
    int d = ds_fs_openat(fs, fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);

    if (d < 0 && errno == ENOENT && (create & DS_PATHSAFE_CREATE)) {
        if (ds_fs_mkdirat(fs, fd, name, 0755) == 0) {
            /* the new entry must reach the disk before files inside it are
             * published, or a crash can lose the directory with them */
            if ((create & DS_PATHSAFE_SYNC) && ds_fs_fsync(fs, fd) < 0)
                return -errno;
        } else if (errno != EEXIST) {
            return -errno;
        }
        d = ds_fs_openat(fs, fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
    }
    if (d < 0)
        return walk_err(fs, fd, name, errno);
    *out = d;
    return 0;
}

int ds_pathsafe_open_parent_fs(const ds_fs_t *fs, int rootfd, const char *rel, int create,
                               int *dirfd, const char **leaf)
{
    char comp[256];
    const char *start = rel;
    int cur = -1, rc;

    *dirfd = -1;
    rc = ds_pathsafe_check(rel, NULL);
    if (rc < 0)
        return rc;
    cur = ds_fs_dup(fs, rootfd);
    if (cur < 0)
        return -errno;
    for (;;) {
        const char *slash = strchr(start, '/');
        size_t len;
        int next = -1;

        if (slash == NULL)
            break;
        len = (size_t)(slash - start);
        memcpy(comp, start, len);
        comp[len] = '\0';
        rc = open_dir_at(fs, cur, comp, create, &next);
        if (rc < 0)
            goto out;
        ds_fs_close(fs, cur);
        cur = next;
        start = slash + 1;
    }
    *dirfd = cur;
    *leaf = start;
    cur = -1;
    rc = 0;
out:
    if (cur >= 0)
        ds_fs_close(fs, cur);
    return rc;
}

int ds_pathsafe_open_file_fs(const ds_fs_t *fs, int rootfd, const char *rel, int *fd,
                             struct stat *st)
{
    struct stat sb;
    const char *leaf;
    int dir = -1, f = -1, rc;

    *fd = -1;
    rc = ds_pathsafe_open_parent_fs(fs, rootfd, rel, 0, &dir, &leaf);
    if (rc < 0)
        return rc;
    /* Check the type before open(): opening a device can have side effects. */
    if (!DS_FS(fs)->ops->no_special && ds_fs_fstatat(fs, dir, leaf, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
        rc = -errno;
        goto out;
    }
    if (!DS_FS(fs)->ops->no_special && !S_ISREG(sb.st_mode)) {
        rc = S_ISLNK(sb.st_mode) ? DS_ESYMLINK : DS_ENOTREG;
        goto out;
    }
    f = ds_fs_openat(fs, dir, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0);
    if (f < 0) {
        rc = errno == ELOOP ? DS_ESYMLINK : -errno;
        goto out;
    }
    if (ds_fs_fstat(fs, f, &sb) < 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = DS_ENOTREG;
        goto out;
    }
    if (st)
        *st = sb;
    *fd = f;
    f = -1;
out:
    if (f >= 0)
        ds_fs_close(fs, f);
    ds_fs_close(fs, dir);
    return rc;
}

int ds_pathsafe_open_state_fs(const ds_fs_t *fs, int dirfd, const char *name, int flags, int *fd)
{
    struct stat st;
    int f = -1, rc = 0, writing = (flags & O_ACCMODE) != O_RDONLY;

    *fd = -1;
    if (DS_FS(fs)->ops->no_special) {
        /* nothing to check before open() */
    } else if (ds_fs_fstatat(fs, dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode))
            return DS_ESYMLINK;
        if (!S_ISREG(st.st_mode))
            return DS_ENOTREG;
    } else if (errno != ENOENT || !(flags & O_CREAT)) {
        return -errno;
    }
    f = ds_fs_openat(fs, dirfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0644);
    if (f < 0)
        return errno == ELOOP ? DS_ESYMLINK : errno == ENXIO ? DS_ENOTREG : -errno;
    if (ds_fs_fstat(fs, f, &st) < 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode))
        rc = DS_ENOTREG;
    else if (writing && st.st_nlink != 1)
        rc = DS_EEXISTS;
    else if (DS_FS(fs) == &ds_fs_posix && fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK) < 0)
        rc = -errno;
    if (rc < 0) {
        ds_fs_close(fs, f);
        return rc;
    }
    *fd = f;
    return 0;
}

int ds_pathsafe_create_tmp_fs(const ds_fs_t *fs, int dirfd, const char *name, mode_t mode, int *fd)
{
    struct stat st;
    int f;

    *fd = -1;
    /* the create first: a stale tmp file of this name is rare, and each
     * call is a round trip over SMB */
    for (int again = 0;; again = 1) {
        f = ds_fs_openat(fs, dirfd, name,
                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode);
        if (f >= 0 || errno != EEXIST || again)
            break;
        if (ds_fs_unlinkat(fs, dirfd, name, 0) < 0 && errno != ENOENT)
            return errno == EISDIR ? DS_ENOTREG : -errno;
    }
    if (f < 0)
        return -errno;
    if (DS_FS(fs)->ops->no_special) { /* an exclusive create made a fresh file, and no link */
        *fd = f;
        return 0;
    }
    if (ds_fs_fstat(fs, f, &st) < 0) {
        int e = errno;

        ds_fs_close(fs, f);
        return -e;
    }
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1) { /* linked meanwhile */
        ds_fs_close(fs, f);
        return DS_EEXISTS;
    }
    *fd = f;
    return 0;
}

int ds_pathsafe_open_parent(int rootfd, const char *rel, int create, int *dirfd, const char **leaf)
{
    return ds_pathsafe_open_parent_fs(&ds_fs_posix, rootfd, rel, create, dirfd, leaf);
}

int ds_pathsafe_open_file(int rootfd, const char *rel, int *fd, struct stat *st)
{
    return ds_pathsafe_open_file_fs(&ds_fs_posix, rootfd, rel, fd, st);
}

int ds_pathsafe_open_state(int dirfd, const char *name, int flags, int *fd)
{
    return ds_pathsafe_open_state_fs(&ds_fs_posix, dirfd, name, flags, fd);
}

int ds_pathsafe_create_tmp(int dirfd, const char *name, mode_t mode, int *fd)
{
    return ds_pathsafe_create_tmp_fs(&ds_fs_posix, dirfd, name, mode, fd);
}

const char *ds_pathsafe_reason(int err)
{
    switch (err) {
    case DS_EPATH:
        return "unsafe path";
    case DS_ESYMLINK:
        return "path goes through a symbolic link";
    case DS_ENOTREG:
        return "not a regular file or directory (device, FIFO, socket or wrong type)";
    case DS_EEXISTS:
        return "has more than one hard link";
    default:
        return "cannot resolve path";
    }
}

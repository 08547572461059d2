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

/* Maps an openat() failure on a component to our codes. */
static int walk_err(int fd, const char *name, int e)
{
    struct stat st;

    if (e == ELOOP)
        return DS_ESYMLINK;
    if (e == ENOTDIR) {
        if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
            return DS_ESYMLINK;
        return DS_ENOTREG;
    }
    return -e;
}

static int open_dir_at(int fd, const char *name, int create, int *out)
{
    int d = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (d < 0 && errno == ENOENT && create) {
        if (mkdirat(fd, name, 0755) < 0 && errno != EEXIST)
            return -errno;
        d = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (d < 0)
        return walk_err(fd, name, errno);
    *out = d;
    return 0;
}

int ds_pathsafe_open_parent(int rootfd, const char *rel, int create, int *dirfd, const char **leaf)
{
    char comp[256];
    const char *start = rel;
    int cur = -1, rc;

    *dirfd = -1;
    rc = ds_pathsafe_check(rel, NULL);
    if (rc < 0)
        return rc;
    cur = dup(rootfd);
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
        rc = open_dir_at(cur, comp, create, &next);
        if (rc < 0)
            goto out;
        close(cur);
        cur = next;
        start = slash + 1;
    }
    *dirfd = cur;
    *leaf = start;
    cur = -1;
    rc = 0;
out:
    if (cur >= 0)
        close(cur);
    return rc;
}

int ds_pathsafe_open_file(int rootfd, const char *rel, int *fd, struct stat *st)
{
    struct stat sb;
    const char *leaf;
    int dir = -1, f = -1, rc;

    *fd = -1;
    rc = ds_pathsafe_open_parent(rootfd, rel, 0, &dir, &leaf);
    if (rc < 0)
        return rc;
    /* Check the type before open(): opening a device can have side effects. */
    if (fstatat(dir, leaf, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = S_ISLNK(sb.st_mode) ? DS_ESYMLINK : DS_ENOTREG;
        goto out;
    }
    f = openat(dir, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (f < 0) {
        rc = errno == ELOOP ? DS_ESYMLINK : -errno;
        goto out;
    }
    if (fstat(f, &sb) < 0) {
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
        close(f);
    close(dir);
    return rc;
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
    default:
        return "cannot resolve path";
    }
}

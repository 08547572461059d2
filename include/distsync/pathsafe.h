/*
 * Safe path resolution under a root directory. Paths from the wire are
 * relative, '/'-separated, and resolved one component at a time with
 * openat(O_NOFOLLOW | O_DIRECTORY) from a root fd, so a symlink anywhere on
 * the way (even one swapped in concurrently) cannot lead outside the root.
 */
#ifndef DISTSYNC_PATHSAFE_H
#define DISTSYNC_PATHSAFE_H

#include <stddef.h>
#include <sys/stat.h>

#define DS_PATHSAFE_MAX 4095 /* bytes, without the NUL */
#define DS_STATE_DIR    ".distsync"

/*
 * Syntax check of a relative path: non-empty, at most DS_PATHSAFE_MAX bytes,
 * no leading '/', no empty, '.' or '..' component, no trailing '/', no
 * backslash, no control character, not under DS_STATE_DIR. Returns 0 or
 * DS_EPATH; *why (may be NULL) gets a static reason ("'..' component").
 */
int ds_pathsafe_check(const char *rel, const char **why);

/*
 * Opens the directory holding rel's last component, walking from rootfd
 * without following symlinks. With create, missing directories are made
 * (mode 0755). On success *dirfd is an O_DIRECTORY fd (caller closes) and
 * *leaf points into rel at the last component. Returns 0, DS_EPATH,
 * DS_ESYMLINK (a component is a symlink), DS_ENOTREG (a component is not a
 * directory), or -errno (-ENOENT when missing and !create).
 */
int ds_pathsafe_open_parent(int rootfd, const char *rel, int create, int *dirfd, const char **leaf);

/*
 * Opens an existing regular file rel for reading (O_NOFOLLOW, O_NONBLOCK so a
 * FIFO cannot block). *fd gets the fd, *st (may be NULL) its fstat. Returns
 * 0, DS_EPATH, DS_ESYMLINK, DS_ENOTREG (device, FIFO, directory...) or -errno.
 */
int ds_pathsafe_open_file(int rootfd, const char *rel, int *fd, struct stat *st);

/* Static text for a pathsafe error code, naming the reason. */
const char *ds_pathsafe_reason(int err);

#endif

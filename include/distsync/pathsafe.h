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
#include "distsync/error.h"
#include "distsync/fs.h"

#define DS_PATHSAFE_MAX 4095 /* bytes, without the NUL */
#define DS_STATE_DIR    ".distsync"

/*
 * Syntax check of a relative path: non-empty, at most DS_PATHSAFE_MAX bytes,
 * no leading '/', no empty, '.' or '..' component, no trailing '/', no
 * backslash, no control character, not under DS_STATE_DIR. Returns 0 or
 * DS_EPATH; *why (may be NULL) gets a static reason ("'..' component").
 */
DS_MUST_CHECK int ds_pathsafe_check(const char *rel, const char **why);

/* Flags for ds_pathsafe_open_parent's create argument. */
#define DS_PATHSAFE_CREATE 1 /* make missing directories (mode 0755) */
#define DS_PATHSAFE_SYNC   2 /* with CREATE: fsync the parent of each new one */

/*
 * Opens the directory holding rel's last component, walking from rootfd
 * without following symlinks. create is 0 or DS_PATHSAFE_CREATE, optionally
 * | DS_PATHSAFE_SYNC: each directory made is then made durable in its own
 * parent (fsync of the parent), so a crash cannot lose a directory whose
 * files were published into it. On success *dirfd is an O_DIRECTORY fd (caller closes) and
 * *leaf points into rel at the last component. Returns 0, DS_EPATH,
 * DS_ESYMLINK (a component is a symlink), DS_ENOTREG (a component is not a
 * directory), or -errno (-ENOENT when missing and !create).
 */
DS_MUST_CHECK int ds_pathsafe_open_parent(int rootfd, const char *rel, int create, int *dirfd,
                                          const char **leaf);

/*
 * Opens an existing regular file rel for reading (O_NOFOLLOW, O_NONBLOCK so a
 * FIFO cannot block). *fd gets the fd, *st (may be NULL) its fstat. Returns
 * 0, DS_EPATH, DS_ESYMLINK, DS_ENOTREG (device, FIFO, directory...) or -errno.
 */
DS_MUST_CHECK int ds_pathsafe_open_file(int rootfd, const char *rel, int *fd, struct stat *st);

/*
 * Opens name inside the state directory dirfd (<root>/.distsync) without
 * blocking and without following a symlink: O_NOFOLLOW | O_NONBLOCK |
 * O_CLOEXEC | O_NOCTTY are added to flags (O_RDONLY, O_RDWR | O_CREAT, ...).
 * The type is checked with fstatat before the open (opening a device can
 * have side effects) and with fstat after it; anything but a regular file is
 * refused, and so is a writable open of a file with more than one hard link
 * (it would write outside the directory). O_NONBLOCK is cleared before
 * returning. Returns 0 and *fd, -ENOENT, DS_ESYMLINK, DS_ENOTREG (FIFO,
 * device, socket, directory), DS_EEXISTS (hard-linked), or -errno.
 */
DS_MUST_CHECK int ds_pathsafe_open_state(int dirfd, const char *name, int flags, int *fd);

/*
 * Creates a fresh temporary file name in dirfd for writing: whatever is
 * there (a stale temp file, a planted hard link, a FIFO, a symlink) is
 * unlinked first, then it is created with O_CREAT | O_EXCL | O_NOFOLLOW, so
 * the write can only land in a new inode inside dirfd. Returns 0 and *fd,
 * DS_ENOTREG when name is a directory, or -errno (-EEXIST when another
 * process recreated it in between).
 */
DS_MUST_CHECK int ds_pathsafe_create_tmp(int dirfd, const char *name, mode_t mode, int *fd);

/*
 * The same four through a filesystem backend (include/distsync/fs.h): the
 * receiver passes its own, so it walks an SMB share as it walks a local
 * directory; the functions above use ds_fs_posix. fd numbers are fs's.
 */
DS_MUST_CHECK int ds_pathsafe_open_parent_fs(const ds_fs_t *fs, int rootfd, const char *rel,
                                             int create, int *dirfd, const char **leaf);
DS_MUST_CHECK int ds_pathsafe_open_file_fs(const ds_fs_t *fs, int rootfd, const char *rel, int *fd,
                                           struct stat *st);
DS_MUST_CHECK int ds_pathsafe_open_state_fs(const ds_fs_t *fs, int dirfd, const char *name,
                                            int flags, int *fd);
DS_MUST_CHECK int ds_pathsafe_create_tmp_fs(const ds_fs_t *fs, int dirfd, const char *name,
                                            mode_t mode, int *fd);

/* Static text for a pathsafe error code, naming the reason. */
const char *ds_pathsafe_reason(int err);

#endif

/* Small file-system helpers shared by the library and its front ends. */
#ifndef DISTSYNC_FSUTIL_H
#define DISTSYNC_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "distsync/error.h"
#include "distsync/fs.h"

/* Creates path and any missing parents ("mkdir -p"), new directories with
 * mode 0750 (state directories hold the catalog: not world-readable).
 * Returns 0, or -errno of the first mkdir that failed (-ENAMETOOLONG when
 * path does not fit PATH_MAX). */
DS_MUST_CHECK int ds_mkdir_p(const char *path);

/* Nanoseconds since the epoch of *ts (st_mtim and the like), saturated to
 * [INT64_MIN + 1, INT64_MAX]: a file system can hold times whose nanosecond
 * count does not fit 64 bits, and INT64_MIN means "no mtime" on the wire
 * (DS_PROTO_NO_MTIME). Pure; never overflows. */
int64_t ds_timespec_ns(const struct timespec *ts);

/* Writes p[0, n) to fd, retrying short writes and EINTR. Returns 0 or
 * -errno. */
DS_MUST_CHECK int ds_write_all(int fd, const void *p, size_t n);

/* Replaces dirfd/name atomically: writes name.tmp (unlinked, then made with
 * O_EXCL: never written through a planted link; ds_pathsafe_create_tmp),
 * fsyncs it, renames it over name and fsyncs the directory; the tmp file is
 * removed on failure. A reader sees the old file or the new one. Used for
 * the target's manifest and lease, so name is made mode 0600 (the receiving
 * account's state, as SFTP mode writes it: not for whoever serves the
 * tree). Returns 0 or -errno (-ENOSPC on a full disk). */
DS_MUST_CHECK int ds_atomic_write(int dirfd, const char *name, const void *p, size_t n);
/* The same through a filesystem backend (fs.h); dirfd is fs's. */
DS_MUST_CHECK int ds_atomic_write_fs(const ds_fs_t *fs, int dirfd, const char *name, const void *p,
                                     size_t n);

#endif

/* Small file-system helpers shared by the library and its front ends. */
#ifndef DISTSYNC_FSUTIL_H
#define DISTSYNC_FSUTIL_H

#include <stdint.h>
#include <time.h>

/* Creates path and any missing parents ("mkdir -p"), new directories with
 * mode 0750 (state directories hold the catalog: not world-readable).
 * Returns 0, or -errno of the first mkdir that failed (-ENAMETOOLONG when
 * path does not fit PATH_MAX). */
int ds_mkdir_p(const char *path);

/* Nanoseconds since the epoch of *ts (st_mtim and the like), saturated to
 * [INT64_MIN + 1, INT64_MAX]: a file system can hold times whose nanosecond
 * count does not fit 64 bits, and INT64_MIN means "no mtime" on the wire
 * (DS_PROTO_NO_MTIME). Pure; never overflows. */
int64_t ds_timespec_ns(const struct timespec *ts);

#endif

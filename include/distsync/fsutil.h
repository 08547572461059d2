/* Small file-system helpers shared by the library and its front ends. */
#ifndef DISTSYNC_FSUTIL_H
#define DISTSYNC_FSUTIL_H

/* Creates path and any missing parents ("mkdir -p"), new directories with
 * mode 0750 (state directories hold the catalog: not world-readable).
 * Returns 0, or -errno of the first mkdir that failed (-ENAMETOOLONG when
 * path does not fit PATH_MAX). */
int ds_mkdir_p(const char *path);

#endif

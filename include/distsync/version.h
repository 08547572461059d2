/* Library version. */
#ifndef DISTSYNC_VERSION_H
#define DISTSYNC_VERSION_H

#define DS_VERSION_STRING "0.1.0"

/* Returns the library's version string (static). */
const char *ds_version(void);

#endif

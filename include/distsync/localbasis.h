/*
 * The console's copies of basis versions for the SMB worker's computed
 * SHA-256 (distsync/apply.h, ds_apply_local_t): versions are read from the
 * console's retain store (STATE/retain), found by their SHA-256. Each
 * version is read whole and checked against its SHA-256 the first time it
 * is opened in a process; ranges are then read chunk by chunk (each chunk
 * checked by its XXH3-128). Local disk only. One thread.
 */
#ifndef DISTSYNC_LOCALBASIS_H
#define DISTSYNC_LOCALBASIS_H

#include "distsync/apply.h"
#include "distsync/error.h"

/*
 * Opens the retain store in directory dir and fills *out (its arg owns the
 * store). Returns 0, or < 0 (the retain store's error; *out is then
 * zeroed). Free with ds_localbasis_close.
 */
DS_MUST_CHECK int ds_localbasis_open(const char *dir, ds_apply_local_t *out);

/* Closes what ds_localbasis_open opened; every version opened through it
 * must be closed first. A zeroed *l is a no-op. */
void ds_localbasis_close(ds_apply_local_t *l);

#endif

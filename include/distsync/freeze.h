/*
 * Freeze windows (distsync freeze / thaw): servers that no run writes to,
 * for migrations and server upgrades, recorded in the catalog (table
 * freeze). A freeze lasts until thawed, or until its end time passes.
 * The engine checks it before it starts a server's run (DS_EFROZEN).
 */
#ifndef DISTSYNC_FREEZE_H
#define DISTSYNC_FREEZE_H

#include <stdint.h>

#include "distsync/catalog.h"
#include "distsync/error.h"

typedef struct ds_freeze {
    char server[256];
    int64_t until;     /* seconds since the epoch; 0: until thawed */
    int64_t frozen_at; /* when it was frozen */
    char reason[512];  /* "" if none */
} ds_freeze_t;

/* Freezes server until `until` (0: until thawed) with reason (may be
 * NULL), replacing an earlier freeze of it. Returns 0 or a catalog error. */
DS_MUST_CHECK int ds_freeze_put(ds_catalog_t *cat, const char *server, int64_t until,
                                const char *reason, int64_t now);

/* Thaws server. Returns 0, DS_ENOTFOUND when it was not frozen, or a
 * catalog error. */
DS_MUST_CHECK int ds_freeze_del(ds_catalog_t *cat, const char *server);

/* Whether server is frozen at now: 0 with *out filled, DS_ENOTFOUND when
 * not (never frozen, or the freeze ended), or a catalog error. */
DS_MUST_CHECK int ds_freeze_get(ds_catalog_t *cat, const char *server, int64_t now,
                                ds_freeze_t *out);

/* Formats "server NAME is frozen until TIME|until thawed (REASON)" into buf. */
void ds_freeze_describe(const ds_freeze_t *f, char *buf, size_t len);

#endif

/*
 * Retained-version garbage collection policy: which retained versions may
 * be freed, and when none may.
 *
 * Kept: the union of the last-known manifests (catalog, events.h) of the
 * servers in the configuration. A server removed from the configuration no
 * longer pins anything: its recorded manifest stays in the catalog (history
 * still names it) but its versions are freed once no configured server
 * references them.
 *
 * "Unknown" is never "unreferenced": while the catalog has no completed
 * scan, or any configured server has no recorded manifest (never synced
 * into this catalog, or catalog.db was lost and re-created), nothing is
 * freed, because such a server may hold versions the catalog does not know
 * of, and they are its delta bases. DS_GC_FORCE overrides.
 */
#ifndef DISTSYNC_GC_H
#define DISTSYNC_GC_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/catalog.h"
#include "distsync/config.h"
#include "distsync/retain.h"
#include "distsync/error.h"

/* ds_gc_run flags. */
enum {
    DS_GC_FORCE = 1,   /* collect even when a server's manifest is unknown */
    DS_GC_DRY_RUN = 2, /* compute freed_bytes, free nothing */
    DS_GC_SHRINK = 4,  /* give every free page of the store back (DS_RETAIN_GC_SHRINK) */
};

typedef struct ds_gc_result {
    int kept_all;      /* 1: the guard held, nothing was freed */
    int unscanned;     /* the catalog has no completed scan */
    size_t nunknown;   /* configured servers without a known manifest */
    char unknown[512]; /* their names, ", "-separated (the first few) */
    char why[768];     /* kept_all: the reason, one line, no hint */
    size_t referenced; /* versions the configured servers reference */
    size_t pinned;     /* versions a pending fire pinned at its anchor (kept too) */
    uint64_t freed_bytes;
} ds_gc_result_t;

/*
 * Checks the guard: fills res->unscanned, nunknown, unknown and why, and
 * sets res->kept_all when collection must not run. cfg is read only.
 * Returns 0 or a catalog error.
 */
DS_MUST_CHECK int ds_gc_check(ds_catalog_t *cat, const ds_config_t *cfg, ds_gc_result_t *res);

/*
 * Collects retained versions in r that no configured server references
 * (see above): clears *res, checks the guard (unless DS_GC_FORCE), and when
 * it holds returns 0 with res->kept_all set and nothing freed. Otherwise
 * runs ds_retain_gc with the keep list (r NULL: no store, nothing to free;
 * res->referenced is still counted). Returns 0, DS_ENOMEM, or a catalog
 * or retain store error.
 */
DS_MUST_CHECK int ds_gc_run(ds_catalog_t *cat, ds_retain_t *r, const ds_config_t *cfg, int flags,
                            ds_gc_result_t *res);

#endif

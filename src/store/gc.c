/*
 * Retained-version garbage collection policy (include/distsync/gc.h): the
 * guard that keeps everything while a configured server's holdings are
 * unknown, and the keep list of the configured servers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/events.h"
#include "distsync/gc.h"

#define NAMES_SHOWN 8

/* Appends name to res->unknown (the first NAMES_SHOWN, then "and N more"
 * is added by describe()). */
static void note_unknown(ds_gc_result_t *res, const char *name)
{
    size_t len = strlen(res->unknown);

    if (res->nunknown++ < NAMES_SHOWN)
        snprintf(res->unknown + len, sizeof(res->unknown) - len, "%s%s", len ? ", " : "", name);
}

static void describe(ds_gc_result_t *res)
{
    size_t len = 0;

    res->why[0] = '\0';
    if (res->unscanned)
        len = (size_t)snprintf(res->why, sizeof(res->why), "the catalog has no completed scan");
    if (res->nunknown > 0 && len < sizeof(res->why))
        len += (size_t)snprintf(res->why + len, sizeof(res->why) - len, "%s%s %s", len ? "; " : "",
                                res->nunknown == 1 ? "server" : "servers", res->unknown);
    if (res->nunknown > NAMES_SHOWN && len < sizeof(res->why))
        len += (size_t)snprintf(res->why + len, sizeof(res->why) - len, " and %zu more",
                                res->nunknown - NAMES_SHOWN);
    if (res->nunknown > 0 && len < sizeof(res->why))
        snprintf(res->why + len, sizeof(res->why) - len, " %s no known manifest",
                 res->nunknown == 1 ? "has" : "have");
}

int ds_gc_check(ds_catalog_t *cat, const ds_config_t *cfg, ds_gc_result_t *res)
{
    int rc = ds_catalog_scanned(cat, NULL);

    if (rc < 0)
        return rc;
    res->unscanned = rc == 0;
    res->nunknown = 0;
    res->unknown[0] = '\0';
    for (size_t i = 0; i < cfg->nservers; i++) {
        rc = ds_catalog_server_manifest_known(cat, cfg->servers[i].name);
        if (rc < 0)
            return rc;
        if (rc == 0)
            note_unknown(res, cfg->servers[i].name);
    }
    res->kept_all = res->unscanned || res->nunknown > 0;
    describe(res);
    return 0;
}

/* The union of the configured servers' last-known manifests. */
static int keep_list(ds_catalog_t *cat, const ds_config_t *cfg, uint8_t **shas, size_t *n)
{
    const char **names = malloc((cfg->nservers + 1) * sizeof(*names));
    int rc;

    if (names == NULL)
        return DS_ENOMEM;
    for (size_t i = 0; i < cfg->nservers; i++)
        names[i] = cfg->servers[i].name;
    rc = ds_catalog_server_manifest_refs_of(cat, names, cfg->nservers, shas, n);
    free(names);
    return rc;
}

/* Appends to keep what the fires pending since their anchor pinned
 * (catalog.h, ds_catalog_pinned_refs): snapshot pinning. */
static int keep_pinned(ds_catalog_t *cat, uint8_t **keep, size_t *n, size_t *npinned)
{
    uint8_t *pin = NULL, *all;
    int rc = ds_catalog_pinned_refs(cat, &pin, npinned);

    if (rc == 0 && *npinned > 0) {
        all = realloc(*keep, (*n + *npinned) * DS_SHA256_LEN);
        if (all == NULL) {
            rc = DS_ENOMEM;
        } else {
            memcpy(all + *n * DS_SHA256_LEN, pin, *npinned * DS_SHA256_LEN);
            *keep = all;
            *n += *npinned;
        }
    }
    free(pin);
    return rc;
}

int ds_gc_run(ds_catalog_t *cat, ds_retain_t *r, const ds_config_t *cfg, int flags,
              ds_gc_result_t *res)
{
    uint8_t *keep = NULL;
    size_t nkeep = 0;
    int rc;

    memset(res, 0, sizeof(*res));
    rc = ds_gc_check(cat, cfg, res);
    if (rc < 0)
        return rc;
    if (flags & DS_GC_FORCE)
        res->kept_all = 0;
    rc = keep_list(cat, cfg, &keep, &nkeep);
    res->referenced = nkeep;
    if (rc == 0)
        rc = keep_pinned(cat, &keep, &nkeep, &res->pinned);
    if (rc == 0 && !res->kept_all && r != NULL)
        rc = ds_retain_gc_ex(r, keep, nkeep,
                             ((flags & DS_GC_DRY_RUN) ? DS_RETAIN_GC_DRY_RUN : 0) |
                                 ((flags & DS_GC_SHRINK) ? DS_RETAIN_GC_SHRINK : 0),
                             &res->freed_bytes);
    free(keep);
    return rc;
}

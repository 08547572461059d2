/*
 * Snapshot pinning in the daemon (README: Daemon, snapshot pinning): a
 * delayed fire ships the store as scanned at its anchor. At the anchor a
 * scan dated there, its generation recorded as the fire's pin and its
 * versions retained; at the fire, the batch pinned to that generation
 * (the sync layer, src/sync/sync_pin.c, does the rest). A run-now with
 * "as_of" (sync --as-of) is pinned the same way to the scan by its time,
 * or to the scan generation it names ("scan:42").
 */
#include <stdint.h>
#include <stdio.h>

#include "daemon_int.h"
#include "distsync/catalog.h"
#include "distsync/log.h"

/* A delayed fire plans against the latest scan started by its anchor,
 * which is its anchor scan's when the daemon ran at the anchor. */
int ds__daemon_pin(ds_daemon_t *d, const struct dsched *sc, int64_t fire, const char *id)
{
    int64_t anchor = fire;
    int rc = ds_schedule_anchor(sc->s, fire, &anchor);

    if (rc < 0 || anchor >= fire)
        return rc < 0 ? rc : 0;
    rc = ds_sync_pin_at(d->o.sync, anchor, id);
    return rc < 0 ? rc : 0;
}

/* At the anchor of a delayed schedule's next fire: a scan dated at the
 * anchor, its generation recorded as the fire's pin, and the versions of
 * that generation put in the retain store (the store may change before
 * the fire). Skipped when the daemon was not running at the anchor. */
static void anchor_scan(ds_daemon_t *d, const struct dsched *sc, int64_t fire, int64_t anchor)
{
    ds_catalog_t *cat = ds_sync_catalog(d->o.sync);
    int64_t gen = 0;
    uint64_t kept = 0;
    char id[256];
    int rc;

    ds__daemon_run_id(sc, fire, id, sizeof(id));
    ds__daemon_run_context(id); /* until the anchor's lines are out */
    if (ds_daemon_now(d) - anchor > 2 * DS_DAEMON_RECHECK_S) {
        ds_log(DS_LOG_WARN,
               "run %s: the daemon was not running at the anchor: the fire ships "
               "the last scan before it",
               id);
        ds_log_context(NULL);
        return;
    }
    ds_log(DS_LOG_INFO, "run %s: anchor: scanning the store", id);
    rc = d->o.no_scan ? 0 : ds__daemon_scan(d, id, anchor);
    if (rc == 0 && (rc = ds_sync_pin_at(d->o.sync, anchor, id)) == 1) {
        gen = ds_sync_pinned(d->o.sync);
        rc = ds_catalog_pin_put(cat, sc->cfg->name, fire, anchor, gen);
        if (rc == 0)
            rc = ds_sync_pin_retain(d->o.sync, gen, &kept);
    }
    (void)ds_sync_pin(d->o.sync, 0, NULL);
    if (rc < 0)
        ds_log(DS_LOG_ERROR, "run %s: anchor: %s", id, ds_strerror(rc));
    else
        ds_log(DS_LOG_INFO, "run %s: anchor: scan generation %lld pinned, %llu version%s retained",
               id, (long long)gen, (unsigned long long)kept, kept == 1 ? "" : "s");
    ds_log_context(NULL);
}

int ds__daemon_pin_as_of(ds_daemon_t *d, const struct drun *r, char *reason, size_t rlen)
{
    char what[128];
    int rc = r->as_of_gen != 0
                 ? ds_sync_pin_gen(d->o.sync, r->as_of_gen, what, sizeof(what), reason, rlen)
                 : ds_sync_pin_as_of(d->o.sync, r->as_of, what, sizeof(what), reason, rlen);

    if (rc < 0)
        ds_log(DS_LOG_ERROR, "run %s: %s", r->id, reason);
    else
        ds_log(DS_LOG_INFO, "run %s: pinned to the store %s", r->id, what);
    return rc;
}

int64_t ds__daemon_anchor(ds_daemon_t *d, struct dsched *sc, int64_t fire)
{
    int64_t anchor = fire, gen;

    if (sc->anchored == fire || ds_schedule_anchor(sc->s, fire, &anchor) < 0 || anchor >= fire)
        return INT64_MAX;
    if (ds_daemon_now(d) < anchor)
        return anchor;
    sc->anchored = fire;
    if (ds_catalog_pin_get(ds_sync_catalog(d->o.sync), sc->cfg->name, fire, &gen) == 0)
        anchor_scan(d, sc, fire, anchor); /* not done before a restart */
    return INT64_MAX;
}

/*
 * Reports: what the CLI's status, plan and sync print, and the daemon's
 * API will serve, derived from a plan (plan.h) or a run's result (sync.h).
 *
 * The file status report puts every file of a server in exactly one
 * category (the counts add up to the total): missing, outdated, drifted
 * (changed on the target behind our back), unrecorded (the right content
 * is there but not in the target's manifest: the next sync records it
 * without sending data), extra (on the target, not wanted), unreadable (in
 * the store, but the scan could not read it: not shipped) or in sync.
 *
 * The JSON writers emit one object each (the caller wraps them, e.g. in a
 * "servers" array); their keys are a stable interface, documented in the
 * README.
 */
#ifndef DISTSYNC_REPORT_H
#define DISTSYNC_REPORT_H

#include <stdint.h>

#include "distsync/json.h"
#include "distsync/plan.h"
#include "distsync/retain.h"
#include "distsync/sync.h"

typedef enum ds_fstatus {
    DS_FS_MISSING = 0,
    DS_FS_OUTDATED,
    DS_FS_DRIFTED,
    DS_FS_UNRECORDED,
    DS_FS_EXTRA,
    DS_FS_UNREADABLE,
    DS_FS_IN_SYNC,
    DS_FS__N,
    DS_FS_NONE = DS_FS__N, /* a manifest record of a file gone and not wanted */
} ds_fstatus_t;

/* Categories listed file by file (all but in sync). */
#define DS_FS_LISTED DS_FS_IN_SYNC

/* "missing", "outdated", ... "in_sync" (the JSON keys). */
const char *ds_fstatus_name(ds_fstatus_t s);

/* The one category of a plan item (DS_FS_NONE: not a file). */
ds_fstatus_t ds_report_fstatus(const ds_plan_item_t *it);

typedef struct ds_status_counts {
    uint64_t n[DS_FS__N], bytes[DS_FS__N];
    uint64_t total; /* files in every category */
} ds_status_counts_t;

/* Counts and bytes per category of a plan. */
void ds_report_count(const ds_plan_t *p, ds_status_counts_t *c);

typedef enum ds_verdict {
    DS_VERDICT_IN_SYNC = 0, /* nothing to do */
    DS_VERDICT_PENDING = 1, /* a sync would change something (missing,
                               outdated, unrecorded, unreadable, or an extra
                               file prune would delete) */
    DS_VERDICT_DRIFT = 2,   /* files changed on the target behind our back */
} ds_verdict_t;

/* The verdict of one server's plan; drift outranks pending work. */
ds_verdict_t ds_report_verdict(const ds_plan_t *p);

/* A verdict's word in the API ("in_sync", "pending", "drift"). */
const char *ds_verdict_name(ds_verdict_t v);
/* The verdict named name into *v. Returns 0, or DS_ENOTFOUND for another word
 * (e.g. "failed": no report). */
DS_MUST_CHECK int ds_verdict_parse(const char *name, ds_verdict_t *v);

/* A run's outcome word: "ok", "held" (a prune guard held deletions back),
 * "busy" (another console holds the lease), "cancelled" or "failed". */
const char *ds_report_result_status(const ds_sync_result_t *r);

/* {"server", "status": "ok", "error": null, "console_retain": {...},
 *  "missing": [{path, class, size}...], ... "counts": {...}, "bytes": {...}} */
void ds_report_status_json(ds_json_t *j, const char *server, const ds_plan_t *p,
                           const ds_retain_usage_t *retain);

/* {"server", "status": "failed", "error"}: a server that could not be read. */
void ds_report_failed_json(ds_json_t *j, const char *server, const char *error);

/* {"server", "items": [{action, path, class, size, basis, method, est_bytes,
 *  drifted, unknown, held}...], "totals": {...}} */
void ds_report_plan_json(ds_json_t *j, const char *server, const ds_plan_t *p);

/* {"server", "status", "error", "created", "updated", ... "elapsed_s"} */
void ds_report_result_json(ds_json_t *j, const char *server, const ds_sync_result_t *r);

#endif

/*
 * Verify: the receiver on a server hashes (SHA-256) every file of the
 * server's manifest where it runs, and the console compares each with the
 * manifest. It finds what size-and-mtime checks miss: a file changed in
 * place with its size kept and its mtime put back. Repair sends the
 * drifted and missing files again through the normal sync path (a delta
 * when the console knows what the target holds).
 *
 * Verify is read-only: no lease, nothing written on the target. It records
 * a run of kind "verify" in the catalog (status "ok", "drift", "failed" or
 * "cancelled") with one event per drifted or missing file; repair records a
 * run of kind "repair". Threads: as ds_sync_t.
 */
#ifndef DISTSYNC_VERIFY_H
#define DISTSYNC_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/digest.h"
#include "distsync/sync.h"
#include "distsync/error.h"

/* A manifest entry whose file on the target has other content. */
typedef struct ds_verify_drift {
    char *path;
    uint64_t want_size, have_size;
    uint8_t want_sha256[DS_SHA256_LEN], have_sha256[DS_SHA256_LEN];
} ds_verify_drift_t;

/* A manifest entry the target could not hash (other than missing). */
typedef struct ds_verify_error {
    char *path;
    char *message;
} ds_verify_error_t;

typedef struct ds_verify_result {
    int rc;            /* 0: verified (drift or not); < 0: failed (see error) */
    char error[1024];  /* names the server and what failed */
    uint64_t files;    /* manifest entries */
    uint64_t verified; /* entries whose file matches */
    uint64_t bytes_hashed;
    ds_verify_drift_t *drifted;
    size_t ndrifted;
    char **missing; /* entries with no regular file on the target */
    size_t nmissing;
    ds_verify_error_t *errors; /* entries the target could not hash */
    size_t nerrors;
    double elapsed_s;
} ds_verify_result_t;

/*
 * Verifies server srv: HASH for every manifest entry (pipelined, queued
 * as a sync's HASH phase), a batch of one on s's engine, progress through the ds_sync_opts_t
 * callback (files and bytes hashed). Fills *res (zeroed first; free with ds_verify_result_clear).
 * Returns res->rc: 0 when the check ran (look at ndrifted, nmissing, nerrors), or a negative code
 * (-ECANCELED after ds_sync_cancel) with the message in res->error.
 */
int ds_sync_verify(ds_sync_t *s, const ds_server_cfg_t *srv, ds_verify_result_t *res);

/*
 * Verifies n servers as one batch on s's engine, as ds_sync_verify each,
 * up to max_servers ([console] and [site NAME]) at once; their agents run
 * under the engine's loop. res[i] (n of them, zeroed first; free each with
 * ds_verify_result_clear) is srv[i]'s. Returns 0 when every server was
 * verified (drift or not), else the first failed server's code.
 */
int ds_sync_verify_all(ds_sync_t *s, const ds_server_cfg_t *const *srv, size_t n,
                       ds_verify_result_t *res);

/* 1 when v found drifted, missing or unhashable files. */
DS_MUST_CHECK int ds_verify_found(const ds_verify_result_t *v);

/*
 * Repairs what v (from ds_sync_verify on srv) found: a sync run (kind
 * "repair", under the lease) that hashes v's drifted paths again even when
 * their size and mtime agree with the manifest, so the planner sees them as
 * drifted and rewrites them (delta or whole); missing files are created.
 * Returns as ds_sync_server().
 */
int ds_sync_repair(ds_sync_t *s, const ds_server_cfg_t *srv, const ds_verify_result_t *v,
                   ds_sync_result_t *res);

/* Frees what res holds. */
void ds_verify_result_clear(ds_verify_result_t *res);

#endif

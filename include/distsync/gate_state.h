/*
 * The upgrade gate's state interface: what the gate (distsync/gate.h)
 * persists, behind one table of functions, so a backend other than SQLite
 * (PostgreSQL, shared by several consoles) can be added without touching
 * the admission logic. The SQLite backend lives in the catalog
 * (src/store/gate_state.c, catalog migration 6).
 *
 * The gate keeps everything in memory and writes each change through put_*
 * calls; the backend may buffer them, but must make them durable when flush
 * returns 0. The gate's caller flushes before it answers the clients whose
 * decisions wrote (group commit), so a decision a client saw is never lost.
 * The SQLite backend holds the catalog's write lock from the first put of a
 * batch to its flush: keep batches short (one turn of the event loop), or
 * other writers (runs, freezes) wait on it.
 */
#ifndef DISTSYNC_GATE_STATE_H
#define DISTSYNC_GATE_STATE_H

#include <stdint.h>

#include "distsync/catalog.h"
#include "distsync/error.h"

/* A client's standing in a rollout. */
typedef enum ds_gate_status {
    DS_GATE_ST_IDLE = 0,  /* known, neither waiting nor granted */
    DS_GATE_ST_WAITING,   /* in its site's queue (seq orders it) */
    DS_GATE_ST_GRANTED,   /* holds a slot until expires_at */
    DS_GATE_ST_SUCCEEDED, /* reported success (version, at) */
    DS_GATE_ST_FAILED,    /* reported failure */
    DS_GATE_ST_EXPIRED,   /* its lease ran out without a report */
} ds_gate_status_t;

/* One client row: (rollout, client) is the key. Strings are borrowed for
 * the call (put) or the callback (load). */
typedef struct ds_gate_row {
    const char *rollout, *client;
    ds_gate_status_t status;
    const char *site;    /* its site */
    const char *server;  /* granted: the server it downloads from */
    const char *from;    /* the version it had when it asked */
    const char *version; /* granted: the version granted; else the last reported */
    const char *token;   /* the last grant's token ("" when none) */
    int64_t seq;         /* queue order: lower first */
    int64_t granted_at;  /* when the last grant was made */
    int64_t expires_at;  /* the lease's end */
    int64_t at;          /* when the status was last set */
    int reported;        /* 1: the last grant's outcome is recorded */
    const char *detail;  /* the last report's detail ("" when none) */
} ds_gate_row_t;

/* A rollout's control row: paused (with why), rings opened by promote. */
typedef struct ds_gate_ctl {
    const char *rollout;
    int paused;
    const char *reason; /* "" when none */
    int promoted;       /* rings [0, promoted) are open whatever their thresholds */
    int64_t at;
} ds_gate_ctl_t;

typedef int (*ds_gate_row_fn)(void *arg, const ds_gate_row_t *row);
typedef int (*ds_gate_ctl_fn)(void *arg, const ds_gate_ctl_t *ctl);

typedef struct ds_gate_state {
    void *ctx;
    /* Calls fn for every client row, then ctl for every rollout row.
     * Returns 0, fn's non-zero value, or a negative error. */
    int (*load)(void *ctx, ds_gate_row_fn fn, ds_gate_ctl_fn ctl, void *arg);
    /* Calls ctl for every rollout row (the CLI's pause/promote, read back by a
     * running gate). */
    int (*load_ctl)(void *ctx, ds_gate_ctl_fn ctl, void *arg);
    /* Inserts or replaces a client row. */
    int (*put_row)(void *ctx, const ds_gate_row_t *row);
    /* Appends an outcome (success/failure/expired) to the history. */
    int (*put_outcome)(void *ctx, const ds_gate_row_t *row, const char *outcome, int late);
    /* Inserts or replaces a rollout's control row. */
    int (*put_ctl)(void *ctx, const ds_gate_ctl_t *ctl);
    /* Makes every put since the last flush durable. */
    int (*flush)(void *ctx);
    /* Drops buffered puts (not flushed) and frees ctx. */
    void (*close)(void *ctx);
} ds_gate_state_t;

/*
 * The SQLite backend: its own connection to the catalog at path (created
 * and migrated as ds_catalog_open does; tables gate_client, gate_outcome,
 * gate_rollout of migration 6). Puts join one transaction, committed by
 * flush (WAL with synchronous=NORMAL: a commit survives kill -9 of the
 * process). Returns 0 and fills *out (close frees it), or an error with err
 * naming the file.
 */
DS_MUST_CHECK int ds_gate_state_sqlite(const char *path, ds_gate_state_t *out, char *err,
                                       size_t errlen);

/* Pre-staging and server choice: whether server holds the store's current
 * content at path, per the console's last-known manifest of it (server_file
 * against file). *holds is 1 or 0. Returns 0 or a catalog error. */
DS_MUST_CHECK int ds_catalog_server_holds(ds_catalog_t *cat, const char *server, const char *path,
                                          int *holds);

#endif

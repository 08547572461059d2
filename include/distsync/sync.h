/*
 * Sync: one server at a time, from the catalog to a target, over a
 * transport and a sender session. Three modes share the path up to the
 * plan: RUN applies it, PLAN and STATUS stop there (read-only sessions: no
 * lease, nothing written on the target).
 *
 * Per server: open the transport, start the session (HELLO, LEASE, manifest,
 * listing), HASH the target files whose state is uncertain, plan, then send
 * creates and updates (whole with zstd, or a delta from the per-pair delta
 * cache), deletes, MANIFEST_COMMIT, LEASE release and BYE. After a
 * successful run every version the server's manifest references is put in
 * the retain store and the server's last-known manifest is recorded in the
 * catalog; ds_sync_gc() then collects retained versions no configured server
 * references (never while a configured server's manifest is unknown).
 *
 * A ds_sync_t holds what servers share (catalog, retain store, delta cache,
 * the desired-set snapshot), so fan-out computes each delta once.
 * Threads: one thread at a time.
 */
#ifndef DISTSYNC_SYNC_H
#define DISTSYNC_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/catalog.h"
#include "distsync/config.h"
#include "distsync/delta.h"
#include "distsync/plan.h"
#include "distsync/retain.h"
#include "distsync/error.h"

typedef struct ds_sync ds_sync_t;

typedef enum ds_sync_mode {
    DS_SYNC_RUN = 0,    /* apply the plan */
    DS_SYNC_PLAN = 1,   /* plan only (read-only session) */
    DS_SYNC_STATUS = 2, /* same as PLAN: the file status report is derived from it */
} ds_sync_mode_t;

typedef struct ds_sync_progress {
    const char *server;
    uint64_t files_done, files_total; /* operations answered / planned */
    uint64_t bytes_done, bytes_total; /* target bytes of files done / planned */
    uint64_t bytes_wire;              /* bytes sent so far */
    int finished;                     /* 1 on the server's last call: its run ended */
} ds_sync_progress_t;

/* Called on the syncing thread, often; p valid only during the call. */
typedef void (*ds_sync_progress_fn)(void *ctx, const ds_sync_progress_t *p);

typedef struct ds_sync_opts {
    const ds_config_t *cfg;        /* borrowed: must outlive the ds_sync_t */
    uint64_t delta_cache_cap;      /* 0: 2 GiB */
    int zstd_level;                /* 0: 3; < 0: no compression */
    int delta_level;               /* zpatch zstd level, e.g. a run-now's --fast (0: the
                                      config's delta_level); see ds_delta_cache_get */
    int no_fsync;                  /* local receiver without fsync (tests only) */
    unsigned test_retain_delay_ms; /* tests only: a pause per version retained */
    unsigned test_dns_delay_ms;    /* tests only: ssh:// DNS lookups wait this long first */
    const char *trigger;           /* run trigger recorded in the catalog: NULL: "manual" */
    int force;                     /* prune past max_delete (never without a completed scan) */
    /* NULL: every class of each server; else only these classes (of those
     * the server receives) are planned, sent, reported and pruned */
    const ds_strlist_t *only_classes;
    ds_sync_progress_fn progress;
    void *progress_ctx;
    /* tests only: SFTP mode flips a byte of this path's upload on the
     * server before verifying it (verify = readback must catch it) */
    const char *test_sftp_corrupt;
} ds_sync_opts_t;

typedef struct ds_sync_result {
    int rc;           /* 0: ok; < 0: the server failed (see error) */
    char error[1024]; /* names the server and what failed */
    uint64_t created, updated, deleted, adopted, failed_files;
    uint64_t bytes_wire;     /* bytes sent to the target (protocol included) */
    uint64_t bytes_received; /* bytes received from it (listing, manifest,
                                signatures of unknown files...) */
    uint64_t bytes_literal;  /* literal bytes sent (before zstd) */
    uint64_t bytes_delta;    /* delta stream bytes sent (before zstd) */
    uint64_t bytes_copied;   /* target bytes rebuilt from data it already had */
    uint64_t bytes_target;   /* bytes of the files written on the target */
    uint64_t quick_deltas;   /* files committed from a quick delta: computed
                                while the link was idle (DS_DELTA_QUICK,
                                README "Quick deltas") */
    double elapsed_s;
    ds_plan_t *plan; /* the plan (all modes); owned, see ds_sync_result_clear */
} ds_sync_result_t;

/*
 * Opens the shared state under cfg->state (catalog.db, retain/, deltas/).
 * Returns 0 with *out set, or a negative code with a message in err.
 */
DS_MUST_CHECK int ds_sync_open(const ds_sync_opts_t *o, ds_sync_t **out, char *err, size_t errlen);

/* Closes everything. NULL is a no-op. */
void ds_sync_close(ds_sync_t *s);

/* This console's id for state directory state, as ds_sync_console_id()
 * gives it: "<host>:<12 hex of SHA-256(state)>", without opening the state.
 * host (hostlen bytes) receives the host name ("localhost" when unknown).
 * Returns 0 or a negative error of the hash. */
DS_MUST_CHECK int ds_sync_make_console_id(const char *state, char *host, size_t hostlen, char *id,
                                          size_t idlen);
/* The console id used for leases: "<host>:<12 hex of SHA-256(state dir)>". */
const char *ds_sync_console_id(const ds_sync_t *s);

/* How long a refused server-side copy is remembered (see
 * ds_sync_srvcopy_off): then the next run probes the share again. */
#define DS_SYNC_SRVCOPY_RECHECK_S (24 * 3600)

/*
 * Whether srv's share is remembered not to copy on its side (an smb://
 * server whose worker refused server-side copy in an earlier run, under
 * the same url, less than DS_SYNC_SRVCOPY_RECHECK_S before now): 1 with
 * *since (when it was seen) and *until (when it is probed again), else 0
 * (or a catalog error < 0). While it is, runs send whole files from the
 * start, without the probe.
 */
DS_MUST_CHECK int ds_sync_srvcopy_off(ds_sync_t *s, const ds_server_cfg_t *srv, int64_t now,
                                      int64_t *since, int64_t *until);

/* The catalog the sync uses (borrowed). */
ds_catalog_t *ds_sync_catalog(ds_sync_t *s);

/*
 * Snapshot pinning: the batches that follow plan against the file versions
 * current in scan generation gen (ds_catalog_gen_at), not the newest scan;
 * gen 0 unpins. what describes the pin in messages ("as of
 * 2026-03-11T00:00Z (scan generation 4)"). A pinned version the store's
 * file no longer holds ships from the retain store; one the retain store
 * lacks is gone: that file fails (an event, the history's failed count),
 * nothing is sent for it and the server keeps what it has. Returns 0 or
 * DS_ENOMEM.
 */
DS_MUST_CHECK int ds_sync_pin(ds_sync_t *s, int64_t gen, const char *what);
/* Pins to the latest scan generation that completed at or before anchor
 * (ds_sync_pin), logging it with run's name; with none that old, unpins and
 * warns that the newest scan ships. Returns 1 (pinned), 0 or < 0. */
DS_MUST_CHECK int ds_sync_pin_at(ds_sync_t *s, int64_t anchor, const char *run);
/* Puts in the retain store every version of generation gen that the
 * store's files still hold and that is not retained yet, so that the fire
 * pinning gen can ship it after the store moved on; *nretained counts
 * them. A file that cannot be retained (changed since the scan,
 * unreadable) is logged and skipped. Runs on the calling thread. Returns 0
 * or < 0 (catalog, retain store, memory). */
DS_MUST_CHECK int ds_sync_pin_retain(ds_sync_t *s, int64_t gen, uint64_t *nretained);
/* Pins to the store as of t for a run that asks for it (sync --as-of, a
 * run-now's as_of): the latest scan generation that started at or before t
 * and completed. Unlike ds_sync_pin_at, a time older than every kept scan
 * is an error (nothing is shipped in its place). what receives the pin's
 * words ("as of 2026-03-11T00:00:00Z (scan generation 4)"). Returns 0,
 * DS_ENOTFOUND (no such scan) or < 0; err says why, naming the time. */
DS_MUST_CHECK int ds_sync_pin_as_of(ds_sync_t *s, int64_t t, char *what, size_t wlen, char *err,
                                    size_t errlen);
/* "scan:N" (sync --as-of scan:42, a run-now's "as_of"): the scan
 * generation N (> 0) into *gen. Returns 1, 0 (s does not start with
 * "scan:": a time, maybe), or -1 ("scan:" then no positive number). */
int ds_sync_gen_parse(const char *s, int64_t *gen);
/* Pins to scan generation gen exactly (ds_sync_pin), as
 * ds_sync_pin_as_of does for a time: a generation that is not kept, or
 * did not complete, is an error naming it and the kept range. what
 * receives the pin's words ("as of scan:42 (scan generation 42, started
 * 2026-03-10T14:02:00Z)"). Returns 0, DS_ENOTFOUND or < 0; err says why. */
DS_MUST_CHECK int ds_sync_pin_gen(ds_sync_t *s, int64_t gen, char *what, size_t wlen, char *err,
                                  size_t errlen);
/* The pinned generation, 0 when none. */
int64_t ds_sync_pinned(const ds_sync_t *s);

/*
 * Asks the runs of s to stop: async-signal-safe (it only sets a flag), so a
 * SIGINT/SIGTERM handler may call it. The running server's session aborts
 * the file being sent (FILE_ABORT), lets the files already committed finish,
 * records them (MANIFEST_COMMIT), releases the lease and says BYE; its run
 * ends as "cancelled" and ds_sync_server() returns -ECANCELED. Later
 * ds_sync_server() calls return -ECANCELED at once, recording nothing.
 * The flag is seen within about a second (the poll timeout), or when the
 * file being read or delta computed is done.
 */
void ds_sync_cancel(ds_sync_t *s);

/* 1 once ds_sync_cancel() was called. */
DS_MUST_CHECK int ds_sync_cancelled(const ds_sync_t *s);

/*
 * Runs one server in mode. Fills *res (zeroed first; clear it with
 * ds_sync_result_clear). Returns res->rc: 0 when the server is in sync (or
 * the plan was made), else a negative code; the message is in res->error.
 * When a prune guard held deletions back (res->plan->guard, see plan.h), a
 * run applies everything else and then returns DS_EHELD, its message naming
 * the reason; plan and status modes return 0.
 */
int ds_sync_server(ds_sync_t *s, const ds_server_cfg_t *srv, ds_sync_mode_t mode,
                   ds_sync_result_t *res);

/* The console's retain store (STATE/retain): its size and versions, for
 * reports (status). Returns 0 or < 0. */
DS_MUST_CHECK int ds_sync_retain_usage(ds_sync_t *s, ds_retain_usage_t *u);

/* Copies the counters of the delta cache the runs of s share (hits,
 * computes...): what the runs so far cost in delta computations. */
void ds_sync_delta_stats(ds_sync_t *s, ds_delta_cache_stats_t *st);

typedef struct ds_sync_precompute_stats {
    uint64_t servers;   /* servers planned (their last-known manifest is in the catalog) */
    uint64_t pairs;     /* distinct (basis, new) pairs their next runs need */
    uint64_t computed;  /* deltas computed now */
    uint64_t cached;    /* pairs the delta cache already held */
    uint64_t failed;    /* not computed (logged; each run computes its own) */
    uint64_t new_bytes; /* new-version bytes of the pairs */
    unsigned threads;   /* threads that computed (the caller's included) */
} ds_sync_precompute_stats_t;

/*
 * Idle precompute (after a scan): plans every configured server against
 * its last-known manifest (the target as this console left it; servers
 * never synced are skipped) and computes each distinct (basis, new) pair
 * the plans would send as a delta into the delta cache, at the ds_sync_t's
 * level (zpatch format), on up to threads threads (0: one per online CPU;
 * the calling thread is one of them). A later sync of an unchanged target
 * then finds every delta cached. Blocks until done; ds_sync_cancel stops
 * it after the deltas under way. Fills *st. Returns 0 (also when some
 * pairs failed: counted, logged), -ECANCELED, or a catalog / planning
 * error (logged).
 */
int ds_sync_precompute(ds_sync_t *s, unsigned threads, ds_sync_precompute_stats_t *st);

/*
 * The file status plan of srv as this console last left it: the current
 * catalog snapshot planned against srv's last-known manifest (no
 * connection; drift on the target is not seen). *out is NULL when the
 * catalog knows no manifest of srv (never synced). Free with
 * ds_plan_free. Returns 0 or a catalog error / DS_ENOMEM.
 */
DS_MUST_CHECK int ds_sync_plan_known(ds_sync_t *s, const ds_server_cfg_t *srv, ds_plan_t **out);

/* Frees res->plan. */
void ds_sync_result_clear(ds_sync_result_t *res);

/*
 * Garbage-collects retained versions that no configured server's last-known
 * manifest references (ds_gc_run, gc.h). ds_sync_server() does not collect:
 * callers run this once after a batch of servers, so a fan-out to N servers
 * pays for one collection. While a configured server's manifest is unknown
 * (or the catalog has no completed scan) it frees nothing and logs why at
 * info level. *freed (may be NULL) gets the bytes freed. Returns 0 (also
 * when it skipped) or < 0.
 */
DS_MUST_CHECK int ds_sync_gc(ds_sync_t *s, uint64_t *freed);

/* What an imported manifest changed in the console's view of a server. */
typedef struct ds_sync_import {
    uint64_t files;                     /* entries in the imported manifest */
    uint64_t created, updated, deleted; /* against the manifest known before */
    int64_t run_id;                     /* the run recording the import */
} ds_sync_import_t;

/*
 * Makes the manifest file `file` srv's last-known manifest in the catalog:
 * the one `distsync agent --import` leaves in <root>/.distsync/manifest on
 * an offline server, carried back. The file is untrusted: it must be a
 * regular file of at most DS_MANIFEST_MAX bytes that the manifest decoder
 * accepts (paths checked, trailer SHA-256 verified) before anything is
 * recorded. Records a run (kind sync, trigger manual: the bundle applied
 * on the server was a sync) whose start event names the file and whose
 * totals are the difference from the manifest known before. Returns 0 with
 * *out set, or < 0 with err naming the file and the reason.
 */
DS_MUST_CHECK int ds_sync_import_manifest(ds_sync_t *s, const ds_server_cfg_t *srv,
                                          const char *file, int64_t now, ds_sync_import_t *out,
                                          char *err, size_t errlen);

/*
 * DS_SYNC_STATUS without reading the target: the plan against srv's
 * last-known manifest in the catalog (an offline server's, after
 * import-manifest), each entry taken as present and unchanged on the
 * target, so drift cannot show. Fills *res as ds_sync_server does and
 * returns res->rc: DS_ENOTFOUND when the catalog knows no manifest for srv.
 */
DS_MUST_CHECK int ds_sync_status_known(ds_sync_t *s, const ds_server_cfg_t *srv,
                                       ds_sync_result_t *res);

#endif

/* The daemon's internals, shared by daemon.c and daemon_fire.c. */
#ifndef DS_DAEMON_INT_H
#define DS_DAEMON_INT_H

#include <signal.h>

#include "distsync/daemon.h"
#include "distsync/engine.h"
#include "distsync/schedule.h"
#include "distsync/json.h"
#include "sync/sync_int.h"

struct dsched {
    const ds_schedule_cfg_t *cfg; /* borrowed from d->cfg */
    ds_schedule_t *s;
    int64_t after;    /* fires at or before this are handled */
    int64_t anchored; /* the fire whose anchor was handled (daemon_fire.c) */
};

/* A server of a run, with its progress (the sync's progress callback)
 * and, once it ended, its result (the fields ds_report_result_json
 * writes; error NULL when none). */
struct drun_srv {
    char *name;
    uint64_t files_done, files_total, bytes_done, bytes_total, bytes_wire;
    int ended;
    ds_sync_result_t *res; /* ended: the result without its plan, owned */
    struct json_t *report; /* loaded from the catalog: res's report as written then, owned */
    int rc;                /* loaded: res's rc, when report is set */
    const char *result; /* NULL while not ended; else ds_report_result_status's word, or "frozen" */
};

/* A run the daemon knows of (GET /v1/runs): a schedule's fire or a
 * run-now, queued, running, or one of the last DS_DAEMON_RUNS_KEPT ended. */
struct drun {
    char id[96];
    char trigger[320]; /* "schedule NAME" or "manual" */
    const char *state; /* queued running ok failed cancelled interrupted skipped */
    char reason[1024]; /* why it failed, was skipped or cancelled ("" if none) */
    int64_t queued_at, started_at, ended_at; /* daemon clock, 0: not yet */
    int64_t mono_start_ms;                   /* daemon mono clock at the start, 0: not started */
    int64_t run_ms;                          /* ended: from its start to its end (the rate) */
    struct drun_srv *srv;
    size_t n;
    ds_strlist_t classes; /* run-now: these classes only (n 0: every class) */
    int64_t as_of;        /* run-now: the store as of this time (0: the newest scan) */
    int64_t as_of_gen;    /* run-now: "as_of": "scan:GEN", that scan generation (0: none) */
    int cancel;           /* POST /v1/runs/ID/cancel was called */
    /* the delta cache's counters over the run (as sync --json's "deltas") */
    uint64_t deltas_computed, deltas_cached, deltas_relevelled;
};

#define DS_DAEMON_RUNS_KEPT  50 /* ended runs GET /v1/runs lists */
#define DS_DAEMON_RUNS_QUEUE 64 /* run-now requests waiting at most */

#define DS_API_LIVE_MAX 4 /* live status requests under way at most */

struct ds_api;
struct api_live;
struct ds_dgate;
struct ds_dpkg;
struct ds_dpc;

struct ds_daemon {
    ds_daemon_opts_t o;
    ds_engine_t *eng;
    const ds_config_t *cfg; /* newest good configuration */
    struct dsched *v;
    size_t n;
    struct dsched *next_v; /* a reload's schedules, applied between fires */
    size_t next_n;
    const ds_config_t *next_cfg;
    int64_t mono0; /* test clock origin (ms) */
    volatile sig_atomic_t stop;
    /* runs: oldest first; cur is the running one (NULL between runs) */
    struct drun **runs;
    size_t nruns;
    struct drun *cur;
    unsigned seq; /* run-now ids */
    int waiting;  /* in sleep_until: a run-now wakes it */
    struct ds_api *api;
    struct ds_dgate *gate; /* the upgrade gate (api_gate.c), built on first use */
    struct ds_dpkg *pkg;   /* its downloads' limiter (api_package.c) */
    unsigned gate_epoch;   /* moves when the gate drops uncommitted decisions */
    /* GET /v1/status?live=1 under way, each on a thread (api_status_live.c) */
    struct api_live *live[DS_API_LIVE_MAX];
    struct ds_dpc *pc; /* [console] precompute = yes: the child (daemon_precompute.c) */
};

/* ---- runs (daemon_runs.c) ---- */

/* A new run over the named servers (copied), appended to d's runs in
 * state; NULL on ENOMEM. Ended runs past DS_DAEMON_RUNS_KEPT go. */
struct drun *ds__drun_add(ds_daemon_t *d, const char *id, const char *trigger, const char *state,
                          const char *const *servers, size_t n);
/* The run with that id, or NULL. */
struct drun *ds__drun_find(ds_daemon_t *d, const char *id);
/* The oldest queued run, or NULL. */
struct drun *ds__drun_queued(ds_daemon_t *d);
/* How many runs are queued. */
size_t ds__drun_nqueued(ds_daemon_t *d);
/* Marks r ended with state and reason (may be NULL); r stays valid until
 * the next run is added or ended. */
void ds__drun_end(ds_daemon_t *d, struct drun *r, const char *state, const char *reason);
/* Server srv of r ended with res (copied without its plan). */
void ds__drun_result(struct drun *r, const char *srv, const ds_sync_result_t *res);
/* The sync's progress callback: updates d->cur's server. */
void ds__drun_progress(void *ctx, const ds_sync_progress_t *p);
/* Writes r as one JSON object (progress totals, rate, ETA). */
void ds__drun_json(ds_json_t *j, const ds_daemon_t *d, const struct drun *r);
/* At start-up: the ended runs recorded in the catalog, oldest first.
 * Returns 0 or a catalog error (logged; the daemon goes on without them). */
int ds__druns_load(ds_daemon_t *d);
/* Frees every run. */
void ds__druns_free(ds_daemon_t *d);
/* Runs the oldest queued run-now: scan, batch, outcome. Returns 0 or a
 * catalog error (daemon_fire.c). */
int ds__daemon_run_now(ds_daemon_t *d, struct drun *r);
/* A wall-clock instant as RFC 3339 UTC ("2026-03-29T02:00:00Z"). */
void ds__daemon_iso(int64_t t, char *buf, size_t len);
/* key, then t as ds__daemon_iso writes it, or null when t is 0 (never). */
void ds__daemon_kiso(ds_json_t *j, const char *key, int64_t t);
int64_t ds__daemon_mono_ms(void);

/* ---- the HTTP API (daemon_api.c, api_routes.c) ---- */

/* One request, as the HTTP server hands it over (borrowed). */
struct api_req {
    const char *method;
    size_t method_len;
    const char *path; /* with the query string */
    size_t path_len;
    const char *body;
    size_t body_len;
    /* the upgrade gate's client calls over TCP: the enrolment token the
     * request carried (NULL over the Unix socket: any rollout) */
    const char *bearer;
    size_t bearer_len;
};

/* The reply: a status and a JSON document (malloc'd, owned by the caller). */
struct api_res {
    int status;
    char *body;
    size_t len;
    const char *allow; /* 405: the methods the path takes */
    int defer;         /* the upgrade gate: reply after the turn's commit */
};

#define DS_API_BODY_MAX (64 * 1024) /* request bodies past this: 413 */

/* Routes one authenticated request; never fails (errors are 4xx/5xx
 * replies with {"error": "..."}). */
void ds__api_route(ds_daemon_t *d, const struct api_req *rq, struct api_res *rs);

/* Query parameter name of path's query string into buf (percent-decoded,
 * NUL-terminated). Returns 1 when present, 0 when absent, -1 when too long
 * or badly encoded. */
int ds__api_query(const char *path, size_t path_len, const char *name, char *buf, size_t len);

/* The listeners (daemon_api.c): the Unix socket, and TCP when configured.
 * Returns 0 or < 0 with err naming the socket, key or file. */
int ds__api_start(ds_daemon_t *d, char *err, size_t errlen);
void ds__api_stop(ds_daemon_t *d);
/* A reload (loop thread) to cfg: the TCP listener's token is read
 * again from cfg's api_token_file (a bad file keeps the old token); a
 * changed listen = or TLS pair is not applied (the listeners stay) and
 * says so with an error line. Logs only. */
void ds__api_reconfigure(ds_daemon_t *d, const ds_config_t *cfg);

/* Runs (or skips, past its window) sc's fire; catch_up tells the logs why.
 * Records the outcome. Returns 0, or < 0 when it cannot be recorded. */
int ds__daemon_fire(ds_daemon_t *d, struct dsched *sc, int64_t fire, int catch_up);

/* daemon_fire.c: the run id of a fire ("NAME@2026-03-29T02:00Z"). */
void ds__daemon_run_id(const struct dsched *sc, int64_t fire, char *buf, size_t len);
/* Every line logged on this thread names run id ("run=ID") until it is
 * cleared (ds_log_context(NULL)); the engine's jobs and threads inherit it. */
void ds__daemon_run_context(const char *id);

/* The incremental scan before run id, and the anchor scan of pinning
 * (daemon_scan.c): on a libuv worker with a catalog connection of its own,
 * so the loop serves the API until it ends; its generation is dated at (0:
 * now). Waits first for a scan running on the state directory (its lock).
 * Returns 0, -ECANCELED when stopped while waiting, or the scan's error
 * (logged). */
int ds__daemon_scan(ds_daemon_t *d, const char *id, int64_t at);
/* o for a scan of cfg's store as `distsync scan` makes it (its store,
 * classes, chunker and threads; every callback NULL, now 0). */
struct ds_scan_opts;
void ds__daemon_scan_opts(const ds_config_t *cfg, struct ds_scan_opts *o);

/* daemon_precompute.c: after a scan of the daemon's that changed the
 * catalog, when [console] precompute = yes: spawns `distsync
 * precompute-worker` on the loop (or, while one runs, another after it).
 * Loop thread; logs its failures, the daemon goes on. */
void ds__daemon_precompute(ds_daemon_t *d);
/* At the daemon's stop: kills a running worker (SIGKILL) and runs the loop
 * until it is reaped. Then _free. */
void ds__daemon_precompute_stop(ds_daemon_t *d);
void ds__daemon_precompute_free(ds_daemon_t *d);

/* daemon_pin.c: pins the batch of a delayed fire to the store as scanned at
 * its anchor (a fire anchored at itself is left unpinned). Returns 0 or < 0. */
int ds__daemon_pin(ds_daemon_t *d, const struct dsched *sc, int64_t fire, const char *id);
/* The same for run-now r with "as_of": pinned to scan generation
 * r->as_of_gen, or to the latest scan that started by r->as_of (logged).
 * Returns 0, or < 0 with reason saying why (the generation is not kept, no
 * scan that old is: nothing newer is shipped in its place). */
int ds__daemon_pin_as_of(ds_daemon_t *d, const struct drun *r, char *reason, size_t rlen);

/* Snapshot pinning: once the clock passed the anchor of a delayed fire,
 * scans the store, records the generation as the fire's pin and retains its
 * versions (once per fire). Returns the instant to wake for the anchor, or
 * INT64_MAX when nothing is ahead. */
int64_t ds__daemon_anchor(ds_daemon_t *d, struct dsched *sc, int64_t fire);

/* At start-up: each schedule's latest fire, run once when it was missed
 * and is within catch_up. Returns 0 or a catalog error. */
int ds__daemon_catch_up(ds_daemon_t *d);

#endif

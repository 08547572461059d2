/*
 * Runs and events: the catalog's record of every sync (catalog migration 2),
 * and each server's last-known manifest (what the console believes a server
 * holds; the garbage collector of retained versions keeps its union).
 *
 * Tables (migration 2):
 *   server(id, name UNIQUE, url, first_seen, last_sync_at, last_status)
 *   run(id, server_id, trigger, started_at, ended_at, status, files_created,
 *       files_updated, files_deleted, files_failed, bytes_wire, bytes_literal,
 *       bytes_copied, error, pid)
 *       trigger: 'manual' | 'schedule' | 'gate';
 *       status: 'running' | 'ok' | 'failed' | 'interrupted' | 'cancelled'
 *       | 'drift'.
 *   Migration 4 adds run.host (where pid ran) and run.kind: 'sync' |
 *   'verify' | 'repair'.
 *   event(id, run_id, at, level, kind, path, outcome, bytes_literal,
 *         bytes_copied, bytes_wire, message)
 *   server_file(server_id, path, sha256, size) WITHOUT ROWID
 *   meta 'manifest_at:NAME' (catalog.h, migration 3): when NAME's manifest
 *   was last recorded (set with server_file; tells a known empty manifest
 *   from an unknown one).
 * Indexes: run(server_id, started_at), run(started_at), event(run_id),
 * server_file(sha256). History by server and time, the events of a run and
 * the referenced-version union are index scans at 10,000 servers.
 *
 * Retention: events grow with files x runs. ds_run_prune() deletes runs
 * started before a cut-off with their events (in bounded batches so a
 * writer is never blocked long); call it from `distsync gc` or the daemon.
 *
 * Durability: every call that writes runs in its own short transaction
 * (unless the caller holds one, see ds_catalog_begin, in which case it joins
 * it). In WAL mode a kill -9 never loses a committed event and never
 * corrupts the database. A run left 'running' by a killed console is marked
 * 'interrupted' (its totals summed from its events) when the catalog is
 * next opened (ds_run_reap) and at the next ds_run_begin() for that server,
 * once the process that began it is gone from this host (kill(pid, 0) says
 * ESRCH; runs begun on another host are left alone).
 *
 * Time: every function takes the current time (seconds since the epoch) as
 * an argument; none reads the clock. Threads: as ds_catalog_t (one thread at
 * a time).
 */
#ifndef DISTSYNC_EVENTS_H
#define DISTSYNC_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/catalog.h"
#include "distsync/digest.h"
#include "distsync/log.h"
#include "distsync/error.h"

typedef enum ds_event_kind {
    DS_EV_START = 0,
    DS_EV_FILE,   /* one file's outcome (created, updated, failed...) */
    DS_EV_DELETE, /* a file deleted on the target */
    DS_EV_ERROR,  /* an error not tied to one file */
    DS_EV_END,
    DS_EV_LEASE,   /* lease taken, refused, released */
    DS_EV_WARNING, /* e.g. unlink+rename on shell-less SFTP, drift found */
} ds_event_kind_t;

/* Returns "start", "file", "delete", "error", "end", "lease", "warning"
 * (static), or "?" for an unknown kind. */
const char *ds_event_kind_name(ds_event_kind_t kind);

/* One event. Strings are borrowed for the duration of the call; NULL means
 * none. */
typedef struct ds_event {
    ds_event_kind_t kind;
    ds_log_level_t level;
    int64_t at;          /* seconds since the epoch */
    const char *path;    /* target-relative path, or NULL */
    const char *outcome; /* "created", "updated", "deleted", "failed",
                            "unchanged"... or NULL */
    uint64_t bytes_literal, bytes_copied, bytes_wire;
    const char *message; /* human text, or NULL */
} ds_event_t;

typedef struct ds_run_totals {
    uint64_t files_created, files_updated; /* updated: adopted files included */
    uint64_t files_deleted, files_failed;
    uint64_t bytes_wire, bytes_literal, bytes_copied;
} ds_run_totals_t;

/* A run as listed. Strings are valid only during the callback. */
typedef struct ds_run_info {
    int64_t id;
    const char *server;
    const char *url;
    const char *trigger;
    int64_t started_at;
    int64_t ended_at; /* 0 while running */
    const char *status;
    ds_run_totals_t totals;
    const char *error; /* NULL if none */
    const char *kind;  /* "sync", "verify" or "repair" */
} ds_run_info_t;

/* An event as listed: ev's strings are valid only during the callback. */
typedef struct ds_event_info {
    int64_t id;
    int64_t run_id;
    ds_event_t ev;
    const char *kind; /* the stored kind name */
} ds_event_info_t;

/* Callbacks: return 0 to go on; any other value stops the listing and is
 * returned by the listing function. */
typedef int (*ds_run_fn)(void *ctx, const ds_run_info_t *run);
typedef int (*ds_event_fn)(void *ctx, const ds_event_info_t *ev);

/*
 * Starts a run for server_name (created in the server table if new; its url
 * updated when url is not NULL). trigger is "manual", "schedule" or "gate".
 * First marks the server's runs still 'running' as 'interrupted' when the
 * process that began them is gone. Writes a 'start' event. On success sets
 * *run_id and returns 0; returns DS_EUSAGE (bad trigger or empty name) or a
 * catalog error.
 */
DS_MUST_CHECK int ds_run_begin(ds_catalog_t *cat, const char *server_name, const char *url,
                               const char *trigger, int64_t now, int64_t *run_id);

/* As ds_run_begin, for a run of kind "sync", "verify" or "repair". */
DS_MUST_CHECK int ds_run_begin_kind(ds_catalog_t *cat, const char *server_name, const char *url,
                                    const char *trigger, const char *kind, int64_t now,
                                    int64_t *run_id);

/*
 * Marks every run still 'running' whose process is gone from this host as
 * 'interrupted' (as ds_run_begin does for one server). A run of this very
 * process is left alone. ds_catalog_open() calls it. *marked (may be NULL)
 * receives how many. Reads first, and takes the write lock only when a run
 * must be marked. Returns 0 or a catalog error.
 */
DS_MUST_CHECK int ds_run_reap(ds_catalog_t *cat, int64_t now, uint64_t *marked);

/* Appends one event to run_id (committed before returning unless the caller
 * holds a transaction). Returns 0, DS_EUSAGE (bad kind or level) or a
 * catalog error. */
DS_MUST_CHECK int ds_run_event(ds_catalog_t *cat, int64_t run_id, const ds_event_t *ev);

/*
 * Ends run_id with status "ok", "failed", "interrupted", "cancelled" or
 * "drift", the totals (NULL: summed from the run's events; adopted files
 * count as updated) and an error text (NULL if none). Writes an 'end' event
 * carrying the run's byte totals and updates the server's last_sync_at and
 * last_status.
 * Returns 0, DS_ENOTFOUND (no such run), DS_EUSAGE (bad status) or a catalog
 * error.
 */
DS_MUST_CHECK int ds_run_end(ds_catalog_t *cat, int64_t run_id, const char *status,
                             const ds_run_totals_t *totals, const char *error, int64_t now);

/* Lists runs newest first (by start time, then id), only those of server
 * (NULL: all), at most limit (0: no limit). Returns 0, the callback's
 * non-zero value, or a catalog error. */
DS_MUST_CHECK int ds_run_list(ds_catalog_t *cat, const char *server, int64_t limit, ds_run_fn fn,
                              void *ctx);

/* Lists the events of run_id in the order they were written. Returns 0 (also
 * for an unknown run: no events), the callback's value, or a catalog error. */
DS_MUST_CHECK int ds_run_events(ds_catalog_t *cat, int64_t run_id, ds_event_fn fn, void *ctx);

/* Deletes the runs started before `before` (not those still 'running') and
 * their events. *deleted (may be NULL) receives the number of runs. Returns
 * 0 or a catalog error. */
DS_MUST_CHECK int ds_run_prune(ds_catalog_t *cat, int64_t before, uint64_t *deleted);

/* --- Last-known server manifests (table server_file) --- */

typedef struct ds_server_file {
    const char *path; /* target-relative */
    uint8_t sha256[DS_SHA256_LEN];
    uint64_t size;
} ds_server_file_t;

typedef int (*ds_server_file_fn)(void *ctx, const ds_server_file_t *f);

/* Replaces the whole last-known manifest of server (created if new) with
 * files[0, n), in one transaction (joining the caller's if open).
 * Returns 0, DS_EUSAGE or a catalog error. */
DS_MUST_CHECK int ds_catalog_server_manifest_put(ds_catalog_t *cat, const char *server,
                                                 const ds_server_file_t *files, size_t n,
                                                 int64_t now);

/* Records one entry of server's last-known manifest: inserts or replaces
 * path, or deletes it when sha256 is NULL. Returns 0 or a catalog error. */
DS_MUST_CHECK int ds_catalog_server_manifest_set(ds_catalog_t *cat, const char *server,
                                                 const char *path, const uint8_t *sha256,
                                                 uint64_t size, int64_t now);

/* Lists server's last-known manifest in path order (f is valid during the
 * callback only). Returns 0 (also for an unknown server: nothing), the
 * callback's value or a catalog error. */
DS_MUST_CHECK int ds_catalog_server_manifest_get(ds_catalog_t *cat, const char *server,
                                                 ds_server_file_fn fn, void *ctx);

/* The union over all servers of the referenced SHA-256 digests, distinct:
 * *shas (malloc'ed, caller frees; NULL when *n is 0) holds *n digests of
 * DS_SHA256_LEN bytes. Returns 0, DS_ENOMEM or a catalog error. */
DS_MUST_CHECK int ds_catalog_server_manifest_refs(ds_catalog_t *cat, uint8_t **shas, size_t *n);

/* The same union over servers[0, nservers) only (names; unknown ones add
 * nothing): the versions the servers of a configuration still reference.
 * Returns 0, DS_ENOMEM or a catalog error. */
DS_MUST_CHECK int ds_catalog_server_manifest_refs_of(ds_catalog_t *cat, const char *const *servers,
                                                     size_t nservers, uint8_t **shas, size_t *n);

/*
 * Whether the catalog knows server's manifest: 1 once a manifest was
 * recorded for it (ds_catalog_server_manifest_put or _set, even an empty
 * one), 0 when none was (never synced into this catalog, or the catalog
 * was re-created after catalog.db was lost), or a negative error. What
 * such a server holds is unknown, so retained versions must not be
 * collected on its account.
 */
DS_MUST_CHECK int ds_catalog_server_manifest_known(ds_catalog_t *cat, const char *server);

/* Records the protocol version server's receiver spoke in its last session
 * (meta key 'protocol:NAME'), so that work done ahead of a run (precompute)
 * is in the format that receiver applies. Returns 0, DS_EUSAGE or a
 * catalog error. */
DS_MUST_CHECK int ds_catalog_server_protocol_set(ds_catalog_t *cat, const char *server,
                                                 unsigned version);

/* The protocol version recorded for server in *version, 0 when none was.
 * Returns 0 or a catalog error. */
DS_MUST_CHECK int ds_catalog_server_protocol_get(ds_catalog_t *cat, const char *server,
                                                 unsigned *version);

/* An smb:// server that refused server-side copy (its share does not copy
 * on the server side): when (unix seconds) and a fingerprint of what
 * identified the share then (meta keys 'srvcopy_off:NAME' and
 * 'srvcopy_cfg:NAME'). at 0 forgets it. Returns 0, DS_EUSAGE or a catalog
 * error. */
DS_MUST_CHECK int ds_catalog_server_srvcopy_set(ds_catalog_t *cat, const char *server, int64_t at,
                                                int64_t fingerprint);

/* What ds_catalog_server_srvcopy_set recorded for server: *at 0 when
 * nothing. Returns 0 or a catalog error. */
DS_MUST_CHECK int ds_catalog_server_srvcopy_get(ds_catalog_t *cat, const char *server, int64_t *at,
                                                int64_t *fingerprint);

/*
 * The run history as one JSON array (`distsync history --json`, the
 * daemon's GET /v1/history; src/store/events_json.c): runs newest first,
 * only those of servers[0, nservers) (servers NULL: every run), at most
 * limit (0: no limit), each with its events when events is set. cat NULL:
 * an empty history. Returns 0 or a catalog error (the array is closed).
 */
struct ds_json;
DS_MUST_CHECK int ds_history_json(struct ds_json *j, ds_catalog_t *cat, const char *const *servers,
                                  size_t nservers, int64_t limit, int events);

/* "error", "warning", "info", "debug" (static); "?" for another value. */
const char *ds_log_level_name(ds_log_level_t l);

/* One fire of a schedule, as the daemon recorded it (schedule_fire.c). */
typedef struct ds_schedule_fire {
    int64_t fire;     /* the fire time, seconds since the epoch */
    char outcome[16]; /* ok, failed, skipped, interrupted, cancelled */
    char reason[512]; /* why it was skipped or failed ("" if none) */
} ds_schedule_fire_t;

/* Records what the daemon did with schedule's fire (outcome one of the
 * above; reason may be NULL), replacing an earlier record of the same
 * fire. Returns 0, DS_EUSAGE for an unknown outcome, or a catalog error. */
DS_MUST_CHECK int ds_schedule_fire_put(ds_catalog_t *cat, const char *schedule, int64_t fire,
                                       const char *outcome, const char *reason, int64_t now);

/* The latest recorded fire of schedule into *out. Returns 0, DS_ENOTFOUND
 * when none is recorded, or a catalog error. */
DS_MUST_CHECK int ds_schedule_fire_last(ds_catalog_t *cat, const char *schedule,
                                        ds_schedule_fire_t *out);

/* One server of a daemon run, as kept after the run ended (borrowed). */
typedef struct ds_drun_rec_srv {
    const char *server;
    const char *result; /* NULL: none */
    uint64_t files_done, files_total, bytes_done, bytes_total, bytes_wire;
    const char *report; /* its report as JSON text (sync --json's object); NULL: none */
    int rc;             /* its sync's return code, when report is not NULL */
} ds_drun_rec_srv_t;

/* A daemon run that ended (GET /v1/runs after a restart), borrowed. */
typedef struct ds_drun_rec {
    const char *id, *trigger, *state, *reason; /* reason NULL: none */
    int64_t queued_at, started_at, ended_at;
    const char *classes; /* a JSON array of the run's classes; NULL: every class */
    int64_t as_of;       /* a run-now's as_of (sync --as-of): > 0 a time, < 0 the scan
                            generation -as_of ("scan:GEN"), 0: none */
    uint64_t deltas_computed, deltas_cached, deltas_relevelled;
    int64_t run_ms; /* from its start to its end (its rate), 0: unknown */
    const ds_drun_rec_srv_t *srv;
    size_t n;
} ds_drun_rec_t;

/* Records an ended daemon run (daemon_run.c) and keeps only the newest
 * keep runs. Returns 0 or a catalog error (nothing recorded). */
DS_MUST_CHECK int ds_daemon_run_put(ds_catalog_t *cat, const ds_drun_rec_t *r, size_t keep);

/* Calls fn for each recorded daemon run, oldest first (at most the newest
 * limit); fn's record lives for the call only. Returns 0, fn's error, or a
 * catalog error. */
DS_MUST_CHECK int ds_daemon_run_list(ds_catalog_t *cat, size_t limit,
                                     int (*fn)(void *ctx, const ds_drun_rec_t *r), void *ctx);

#endif

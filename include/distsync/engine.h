/*
 * The engine: one libuv loop drives every active server session of a
 * batch at once, under the nested bandwidth caps (caps.h) and the
 * concurrency limits (max_servers on [console] and on [site NAME],
 * max_files on [server NAME]).
 *
 * Each server's run is a phase machine (connect, HELLO, lease, manifest,
 * listing, hash, plan, send, commit, bye) stepped from the loop's fd and
 * timer callbacks; nothing on the loop thread blocks for long: delta
 * computation and the reading and zstd of data blocks run on worker
 * threads, the in-process receiver on its own thread, transports are
 * opened and closed on worker threads; agents are started under uv_spawn
 * on the loop and their exit comes back through uv's exit callback.
 *
 * ds_sync_server() (sync.h) is a batch of one. The CLI's sync, plan and
 * status, and later the daemon, hand the engine a batch.
 *
 * Threads: the engine's functions are called from one thread, except
 * ds_engine_cancel() and ds_engine_reload(), which any thread or a signal
 * handler may call.
 */
#ifndef DISTSYNC_ENGINE_H
#define DISTSYNC_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/config.h"
#include "distsync/sync.h"
#include "distsync/error.h"

/* Defaults of the concurrency limits (README, distsync.conf(5)). */
#define DS_ENGINE_MAX_SERVERS      8u  /* [console] max_servers = */
#define DS_ENGINE_SITE_MAX_SERVERS 4u  /* [site NAME] max_servers = */
#define DS_ENGINE_MAX_FILES        64u /* [server NAME] max_files = */

typedef struct ds_engine ds_engine_t;

/*
 * Live reload (SIGHUP): called on the loop thread after ds_engine_reload().
 * Returns a freshly loaded configuration (ownership passes to the engine,
 * which keeps it until ds_engine_free) or NULL with a message in err (the
 * old caps stay).
 */
typedef ds_config_t *(*ds_engine_reload_fn)(void *ctx, char *err, size_t errlen);

/*
 * A server of the running batch has its final result: res is srv[i]'s
 * (ds_engine_run's arrays), complete, borrowed for the call (the caller of
 * ds_engine_run still owns and clears it). Called on the loop thread as
 * each server ends, in the order they end, before ds_engine_run returns.
 */
typedef void (*ds_engine_done_fn)(void *ctx, size_t i, const ds_sync_result_t *res);

typedef struct ds_engine_opts {
    ds_sync_t *sync; /* borrowed: catalog, retain store, delta cache, options */
    ds_engine_reload_fn reload;
    void *reload_ctx;
    ds_engine_done_fn done; /* NULL: none */
    void *done_ctx;
} ds_engine_opts_t;

/* Creates an engine (its loop, the caps of sync's configuration). Returns
 * 0 with *out set, or < 0 with a message in err. */
DS_MUST_CHECK int ds_engine_new(const ds_engine_opts_t *o, ds_engine_t **out, char *err,
                                size_t errlen);

/* Frees the engine. NULL is a no-op. */
void ds_engine_free(ds_engine_t *e);

/*
 * Runs n servers in mode, at most the configured number at once, and
 * returns when every one has ended. Each batch reads a new catalog
 * snapshot (a long-lived engine sees new scans). res[i] is srv[i]'s result (as
 * ds_sync_server fills it; clear each with ds_sync_result_clear). Progress
 * is reported per server through the sync options' progress callback, on
 * the calling thread. Returns 0 when every server succeeded, else the
 * first failed server's code (each result has its own).
 */
int ds_engine_run(ds_engine_t *e, const ds_server_cfg_t *const *srv, size_t n, ds_sync_mode_t mode,
                  ds_sync_result_t *res);

/*
 * The trigger recorded with the next batches' runs ("manual", "schedule
 * NAME"...; NULL: the sync options' trigger) and, when set_classes, the
 * classes they act on (NULL: every class of each server; else those of
 * the server's classes in the list), instead of the sync options' only_classes.
 * Both are properties of each run, so a long-lived engine (the daemon)
 * runs batches with different triggers and classes. Borrowed until the
 * next call.
 */
void ds_engine_set_batch(ds_engine_t *e, const char *trigger, const ds_strlist_t *classes,
                         int set_classes);

/* The longest time the loop thread went without polling (callbacks, and
 * work done in them) during the last batch, in nanoseconds: what every
 * other server waited at worst. Logged at debug level after each batch. */
uint64_t ds_engine_max_stall_ns(const ds_engine_t *e);

/* Sleeps on the engine's loop (a one-shot timer) for ms milliseconds, or
 * until ds_engine_cancel() or ds_engine_reload() is called (a reload is
 * applied first). Between batches only (the daemon's wait for a fire). */
void ds_engine_wait(ds_engine_t *e, uint64_t ms);

/* Ends a ds_engine_wait() early (a batch goes on). Async-signal-safe. */
void ds_engine_wake(ds_engine_t *e);

/* After a batch that ds_engine_cancel() stopped: the next batches run
 * again (the sync's cancel flag is cleared). Loop thread, between batches. */
void ds_engine_uncancel(ds_engine_t *e);

/* The engine's libuv loop (a uv_loop_t), for handles that live beside the
 * batches (the daemon's API listeners). Such handles must be unreferenced
 * (uv_unref) so a batch ends when its runs do; their callbacks run during
 * batches and waits, on the loop thread. Lives as long as e. */
struct uv_loop_s *ds_engine_loop(ds_engine_t *e);

/* Asks the running batch to stop (see ds_sync_cancel): servers in flight
 * wind down, servers not started end as "cancelled before it started".
 * Async-signal-safe. */
void ds_engine_cancel(ds_engine_t *e);

/* Asks the loop to call the reload callback and apply the new caps to
 * running transfers (within one second). Async-signal-safe. */
void ds_engine_reload(ds_engine_t *e);

#endif

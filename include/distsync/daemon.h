/*
 * The daemon: fires the configuration's [schedule NAME] sections on the
 * engine's loop (distsync daemon). It sits above the engine: each due fire
 * becomes one engine batch (the schedule's servers and sites, its classes,
 * trigger "schedule") under the engine's caps.
 *
 * Timing: the next fire of every schedule is recomputed from the wall clock
 * after each fire and each wake-up; the loop sleeps on a one-shot timer at
 * most DS_DAEMON_RECHECK_S ahead, so a clock jump or a suspend is noticed
 * within that, and nothing drifts.
 *
 * Fires, recorded per schedule in the catalog (ds_schedule_fire_put):
 *  - due: the incremental scan runs (waiting for a scan already running
 *    on the state directory), then the batch; recorded "ok" or "failed";
 *  - not started by fire + window: recorded "skipped" with the reason;
 *  - a fire missed while the daemon was down: run once at start-up when it
 *    is at most catch_up seconds old (and its window is open); a recorded
 *    fire never runs again, so restarts do not repeat it;
 *  - stopped (ds_daemon_stop) mid-batch: recorded "interrupted", which the
 *    next start's catch-up runs again.
 *
 * Threads: one thread calls everything, except ds_daemon_stop() and
 * ds_daemon_reload(), which a signal handler may call.
 */
#ifndef DISTSYNC_DAEMON_H
#define DISTSYNC_DAEMON_H

#include <stdint.h>

#include "distsync/config.h"
#include "distsync/error.h"
#include "distsync/sync.h"

#define DS_DAEMON_RECHECK_S  60    /* longest sleep before the wall clock is read again */
#define DS_DAEMON_CATCH_UP_S 86400 /* default catch-up horizon (24 h) */

typedef struct ds_daemon ds_daemon_t;

typedef struct ds_daemon_opts {
    ds_sync_t *sync;         /* borrowed: state, options; its config is the first one */
    const char *config_path; /* re-read on ds_daemon_reload() */
    int64_t catch_up_s;      /* 0: DS_DAEMON_CATCH_UP_S; < 0: no catch-up */
    int no_scan;             /* do not scan before a run */
    /* Test clock (set only by DS_TEST_HOOKS builds): when test_now0 > 0 the
     * wall clock reads test_now0 + (elapsed real time) * test_speed, and the
     * daemon sleeps real time / test_speed. */
    int64_t test_now0;
    double test_speed;
    unsigned test_scan_pause_ms; /* test builds: the scan worker waits this first */
} ds_daemon_opts_t;

/* Creates the daemon and its engine, parses every schedule of the sync's
 * configuration. Returns 0 with *out, or < 0 with a message in err naming
 * the schedule and what is wrong. */
DS_MUST_CHECK int ds_daemon_new(const ds_daemon_opts_t *o, ds_daemon_t **out, char *err,
                                size_t errlen);

/* Runs until ds_daemon_stop(): catch-up first, then each fire as it comes.
 * Returns 0 after a stop, or < 0 when the state cannot be recorded. */
DS_MUST_CHECK int ds_daemon_run(ds_daemon_t *d);

/* Asks the daemon to stop: a running batch winds down (its files aborted,
 * leases released, the fire recorded "interrupted"). Async-signal-safe. */
void ds_daemon_stop(ds_daemon_t *d);

/* Asks the daemon to re-read its configuration file: on success the new
 * schedules and caps apply; a bad file is logged (file:line: key) and the
 * old configuration stays. Async-signal-safe. */
void ds_daemon_reload(ds_daemon_t *d);

/* The daemon's wall clock (the test clock in test builds), seconds. */
int64_t ds_daemon_now(const ds_daemon_t *d);

void ds_daemon_free(ds_daemon_t *d);

#endif

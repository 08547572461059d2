/* The daemon's internals, shared by daemon.c and daemon_fire.c. */
#ifndef DS_DAEMON_INT_H
#define DS_DAEMON_INT_H

#include <signal.h>

#include "distsync/daemon.h"
#include "distsync/engine.h"
#include "distsync/schedule.h"
#include "sync/sync_int.h"

struct dsched {
    const ds_schedule_cfg_t *cfg; /* borrowed from d->cfg */
    ds_schedule_t *s;
    int64_t after; /* fires at or before this are handled */
};

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
};

/* Runs (or skips, past its window) sc's fire; catch_up tells the logs why.
 * Records the outcome. Returns 0, or < 0 when it cannot be recorded. */
int ds__daemon_fire(ds_daemon_t *d, struct dsched *sc, int64_t fire, int catch_up);

/* At start-up: each schedule's latest fire, run once when it was missed
 * and is within catch_up. Returns 0 or a catalog error. */
int ds__daemon_catch_up(ds_daemon_t *d);

#endif

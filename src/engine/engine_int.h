/*
 * Engine internals: scheduling of a batch under the concurrency limits
 * (engine_sched.c, pure), caps pacing (engine_pace.c), child processes
 * (engine_spawn.c) and DNS lookups (engine_dns.c) on the loop.
 */
#ifndef DS_ENGINE_INT_H
#define DS_ENGINE_INT_H

#include <stddef.h>
#include <signal.h>
#include <stdint.h>

#include <uv.h>

#include "distsync/ratelimit.h"
#include "distsync/session.h"
#include "distsync/engine.h"
#include "distsync/transport.h"
#include "distsync/verify.h"
#include "sync/sync_run_int.h"
#include "distsync/error.h"

/* ---- scheduling (pure) ---- */

typedef struct ds_sched {
    size_t n;
    const int *site;    /* per server: its site's index, -1: none */
    unsigned *site_max; /* per site: servers at once */
    unsigned *site_active;
    size_t nsites;
    unsigned max, active;
    uint8_t *state; /* per server: 0 queued, 1 running, 2 ended */
} ds_sched_t;

/* Sets up the schedule of n servers (site[i]: the site index of server i
 * or -1; site_max[k]: site k's limit; max: the global limit; all >= 1).
 * Returns 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds__sched_init(ds_sched_t *s, size_t n, const int *site, size_t nsites,
                                 const unsigned *site_max, unsigned max);
void ds__sched_free(ds_sched_t *s);
/* The first queued server that may start now (marked running), or -1. */
long ds__sched_next(ds_sched_t *s);
/* Server i ended (running or never started). */
void ds__sched_end(ds_sched_t *s, size_t i);
/* 1 when every server ended. */
DS_MUST_CHECK int ds__sched_all_ended(const ds_sched_t *s);

/* ---- pacing ---- */

/* A run's pacing state; its first member is the transport the session
 * writes to (see ds__pace_wrap). */
struct ds_pace {
    ds_transport_t base;
    ds_transport_ops_t ops; /* base's: close_step only when inner has one */
    ds_transport_t *inner;
    ds_rl_t *rl;        /* NULL: no caps */
    ds_rl_node_t *leaf; /* the server's leaf, NULL: not capped */
    ds_session_t *ss;
    int throttled;     /* a write was cut short by the cap ... */
    int64_t wake;      /* ... until this instant */
    int idle_told;     /* ds_rl_idle was called since the last write */
    uint64_t rate_bps; /* last rate given to the session */
    uint64_t charged;  /* bytes charged to the leaf (grants and settled overhead) */
    int rate_set;
    /* the sync's cancel flag: a run winding down passes the cap */
    const volatile sig_atomic_t *cancel;
};

/* How many of want bytes leaf may write at now (ctl: control bytes at the
 * head of the output, which pass a cap that holds them). *wake is when to
 * ask again when fewer than want (DS_RL_NEVER: none known); *charged is
 * what the limiter counted (it may be less than the answer when control
 * bytes pass). Pure. */
uint64_t ds__pace_allow(ds_rl_t *rl, ds_rl_node_t *leaf, int64_t now, uint64_t want, uint64_t ctl,
                        int64_t *wake, uint64_t *charged);
/* The link took only wrote bytes of a write the limiter charged charged
 * for: the rest goes back to leaf's buckets. Pure. */
void ds__pace_wrote(ds_rl_t *rl, ds_rl_node_t *leaf, int64_t now, uint64_t charged, uint64_t wrote);
/* The ds_run_pace_t hooks; ctx is a struct ds_pace. */
ds_transport_t *ds__pace_wrap(void *ctx, ds_transport_t *t);
void ds__pace_bind(void *ctx, ds_session_t *ss);
DS_MUST_CHECK int ds__pace_throttled(void *ctx, int64_t *wake);
void ds__pace_idle(void *ctx, int64_t now);
/* The server's path cap in bytes/s: 0 none, 1 paused (or under 8 bit/s). */
uint64_t ds__pace_link_rate(void *ctx);
/* Gives the session the leaf's effective rate when it changed. */
void ds__pace_rate(struct ds_pace *pc);

/* ---- child processes (engine_spawn.c) ---- */

/* A run's spawner context: the loop, and how to wake the run when one of
 * its children exits. */
struct ds_spawn_ctx {
    uv_loop_t *loop;
    void (*wake)(void *arg);
    void *arg;
};

/* Fills *sp with the engine's spawner over sc (both owned by the caller,
 * living as long as the transports that use them). */
void ds__spawner_init(ds_spawner_t *sp, struct ds_spawn_ctx *sc, uv_loop_t *loop,
                      void (*wake)(void *arg), void *arg);

/* ---- DNS lookups (engine_dns.c) ---- */

/* Fills *rv with the engine's resolver over sc (uv_getaddrinfo on
 * sc->loop; an answer calls sc->wake). Both owned by the caller, living as
 * long as the openings that use them. */
void ds__resolver_init(ds_resolver_t *rv, struct ds_spawn_ctx *sc);

/* ---- verify and the ds_sync_t's own engine (engine.c) ---- */

/* Verifies n servers as one batch on e (verify runs, sync_run_verify.c),
 * at most the configured number at once; vres[i] (zeroed here) is
 * srv[i]'s. Returns 0 when every server was verified (drift or not), else
 * the first failed server's code. */
DS_MUST_CHECK int ds__engine_verify(ds_engine_t *e, const ds_server_cfg_t *const *srv, size_t n,
                                    ds_verify_result_t *vres);
/* s's own engine (made on first use, freed by ds_sync_close): *out, or
 * < 0 with a message in err. */
DS_MUST_CHECK int ds__sync_engine(ds_sync_t *s, ds_engine_t **out, char *err, size_t errlen);

#endif

/*
 * The daemon (daemon.h): one-shot waits on the engine's loop until the
 * next fire, recomputed from the wall clock at every wake-up; each due
 * fire is a scan then an engine batch (daemon_fire.c).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_int.h"
#include "daemon_int.h"
#include "distsync/log.h"

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ds_daemon_now(const ds_daemon_t *d)
{
    if (d->o.test_now0 > 0)
        return d->o.test_now0 + (int64_t)((double)(mono_ms() - d->mono0) * d->o.test_speed / 1000);
    return (int64_t)time(NULL);
}

static void scheds_free(struct dsched *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ds_schedule_free(v[i].s);
    free(v);
}

/* Parses cfg's schedules into *out, each with its cursor at now. */
static int scheds_load(const ds_config_t *cfg, int64_t now, struct dsched **out, char *err,
                       size_t errlen)
{
    struct dsched *v = calloc(cfg->nschedules + 1, sizeof(*v));

    *out = NULL;
    if (v == NULL)
        return DS_ENOMEM;
    for (size_t i = 0; i < cfg->nschedules; i++) {
        const ds_schedule_cfg_t *sc = &cfg->schedules[i];
        char e[512];
        int rc = ds_schedule_parse(sc->when, sc->tz, sc->window, &v[i].s, e, sizeof(e));

        if (rc < 0) {
            snprintf(err, errlen, "%s:%d: [schedule %s]: %s", cfg->path, sc->line, sc->name, e);
            scheds_free(v, i);
            return rc;
        }
        v[i].cfg = sc;
        v[i].after = now;
    }
    *out = v;
    return 0;
}

/* The engine's reload callback (SIGHUP), on the loop thread: the new file's
 * schedules replace the old ones only when the whole file is good. */
static ds_config_t *reload_cfg(void *ctx, char *err, size_t errlen)
{
    ds_daemon_t *d = ctx;
    ds_config_t *cfg = NULL;
    struct dsched *v = NULL;

    if (ds_config_load(d->o.config_path, &cfg, err, errlen) < 0 ||
        scheds_load(cfg, ds_daemon_now(d), &v, err, errlen) < 0) {
        /* the engine logs err once; this line says what else stays */
        ds_log(DS_LOG_WARN, "daemon: the schedules stay as they were");
        ds_config_free(cfg);
        return NULL;
    }
    ds__api_reconfigure(d, cfg);       /* the listeners stay; the token is read again */
    scheds_free(d->next_v, d->next_n); /* an earlier reload not applied yet */
    d->next_v = v;
    d->next_n = cfg->nschedules;
    d->next_cfg = cfg; /* the engine owns it until ds_engine_free */
    ds_log(DS_LOG_INFO, "daemon: reloaded %s: %zu schedule%s", cfg->path, d->next_n,
           d->next_n == 1 ? "" : "s");
    return cfg;
}

/* Between fires: a reload's schedules replace the old ones; a schedule of
 * the same name keeps its cursor (its fires are not run again). */
static void apply_reload(ds_daemon_t *d)
{
    if (d->next_v == NULL)
        return;
    for (size_t i = 0; i < d->next_n; i++)
        for (size_t k = 0; k < d->n; k++)
            if (strcmp(d->v[k].cfg->name, d->next_v[i].cfg->name) == 0)
                d->next_v[i].after = d->v[k].after;
    scheds_free(d->v, d->n);
    d->v = d->next_v;
    d->n = d->next_n;
    d->cfg = d->next_cfg;
    d->next_v = NULL;
    d->next_n = 0;
}

int ds_daemon_new(const ds_daemon_opts_t *o, ds_daemon_t **out, char *err, size_t errlen)
{
    ds_daemon_t *d = calloc(1, sizeof(*d));
    ds_engine_opts_t eo = {.sync = o->sync, .reload = reload_cfg};
    int rc;

    *out = NULL;
    if (d == NULL)
        return DS_ENOMEM;
    d->o = *o;
    if (d->o.test_speed <= 0)
        d->o.test_speed = 1;
    d->mono0 = mono_ms();
    d->cfg = o->sync->o.cfg;
    /* the runs' progress (GET /v1/runs) */
    d->o.sync->o.progress = ds__drun_progress;
    d->o.sync->o.progress_ctx = d;
    eo.reload_ctx = d;
    rc = scheds_load(d->cfg, ds_daemon_now(d), &d->v, err, errlen);
    if (rc == 0) {
        d->n = d->cfg->nschedules;
        rc = ds_engine_new(&eo, &d->eng, err, errlen);
    }
    if (rc < 0) {
        ds_daemon_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void ds_daemon_free(ds_daemon_t *d)
{
    if (d == NULL)
        return;
    ds__api_stop(d);
    ds__daemon_precompute_stop(d);
    ds__daemon_precompute_free(d);
    ds__api_gate_free(d);
    ds__api_package_free(d);
    ds_engine_free(d->eng);
    ds__druns_free(d);
    scheds_free(d->v, d->n);
    scheds_free(d->next_v, d->next_n);
    free(d);
}

void ds_daemon_stop(ds_daemon_t *d)
{
    d->stop = 1;
    ds_engine_cancel(d->eng); /* wakes the loop; a batch winds down */
}

void ds_daemon_reload(ds_daemon_t *d)
{
    ds_engine_reload(d->eng);
}

/* Sleeps until at, at most DS_DAEMON_RECHECK_S (test clock: scaled). */
static void sleep_until(ds_daemon_t *d, int64_t at)
{
    int64_t now = ds_daemon_now(d), s = at - now;

    if (s > DS_DAEMON_RECHECK_S)
        s = DS_DAEMON_RECHECK_S;
    if (s < 0)
        s = 0;
    if (ds__drun_queued(d) != NULL)
        return; /* a run-now came in since the check */
    d->waiting = 1;
    ds_engine_wait(d->eng, (uint64_t)((double)s * 1000 / d->o.test_speed) + 1);
    d->waiting = 0;
}

/* One pass over the schedules: runs what is due, returns the next fire. */
static int64_t tick(ds_daemon_t *d, int *rc)
{
    int64_t next = INT64_MAX;

    apply_reload(d);
    for (size_t i = 0; i < d->n && !d->stop && *rc == 0; i++) {
        struct dsched *sc = &d->v[i];
        int64_t now = ds_daemon_now(d), fire, latest, anchor;

        if (sc->after > now) /* the clock went back: fires count from now */
            sc->after = now;
        if (ds_schedule_next(sc->s, sc->after, &fire) < 0)
            continue; /* a past "once" */
        if (fire <= now) {
            /* a jump forward over several fires runs the latest once */
            if (ds_schedule_prev(sc->s, now, &latest) == 0 && latest > fire) {
                ds_log(DS_LOG_WARN, "schedule %s: the clock jumped over fires; running the latest",
                       sc->cfg->name);
                fire = latest;
            }
            sc->after = fire; /* before: stopped mid-run, catch-up runs it again */
            *rc = ds__daemon_fire(d, sc, fire, 0);
            if (d->stop)
                break;
            apply_reload(d);
            i = (size_t)-1; /* the time moved on: look at every schedule again */
            next = INT64_MAX;
            continue;
        }
        if (fire < next)
            next = fire;
        anchor = ds__daemon_anchor(d, sc, fire); /* snapshot pinning: wake at the anchor */
        if (anchor < next)
            next = anchor;
    }
    return next;
}

int ds_daemon_run(ds_daemon_t *d)
{
    char err[1024];
    int rc = ds__api_start(d, err, sizeof(err));

    if (rc < 0) {
        ds_log(DS_LOG_ERROR, "daemon: %s", err);
        return rc;
    }
    (void)ds__druns_load(d); /* logged; past runs are not needed to run */
    rc = ds__daemon_catch_up(d);
    ds_log(DS_LOG_INFO, "daemon: %zu schedule%s from %s", d->n, d->n == 1 ? "" : "s", d->cfg->path);
    while (rc == 0 && !d->stop) {
        int64_t next = tick(d, &rc);
        struct drun *r = ds__drun_queued(d);

        /* run-nows wait for the schedules' due fires, then go one at a
         * time: one batch at a time never writes a server twice at once */
        if (rc == 0 && !d->stop && r != NULL)
            rc = ds__daemon_run_now(d, r);
        else if (rc == 0 && !d->stop)
            sleep_until(d, next);
    }
    for (struct drun *r; (r = ds__drun_queued(d)) != NULL;)
        ds__drun_end(d, r, "interrupted", "the daemon was stopped before the run");
    ds__daemon_precompute_stop(d); /* killed: its deltas under way would take minutes */
    ds_log(DS_LOG_INFO, "daemon: stopped");
    return rc;
}

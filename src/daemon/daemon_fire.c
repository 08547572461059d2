/*
 * One fire of a schedule (daemon.h): the window check, the incremental
 * scan (queued behind a scan already running), the engine batch over the
 * schedule's servers and sites, and the record of the outcome; and the
 * start-up catch-up.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon_int.h"
#include "distsync/events.h"
#include "distsync/log.h"
#include "distsync/report.h"

/* "NAME@2026-03-29T02:00Z": the run id on every log line of one fire. */
static void run_id(const struct dsched *sc, int64_t fire, char *buf, size_t len)
{
    time_t t = (time_t)fire;
    struct tm tm;
    char when[32] = "?";

    if (gmtime_r(&t, &tm) != NULL)
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%MZ", &tm);
    snprintf(buf, len, "%s@%s", sc->cfg->name, when);
}

/* The run id of a fire, for daemon_pin.c (daemon_int.h). */
void ds__daemon_run_id(const struct dsched *sc, int64_t fire, char *buf, size_t len)
{
    run_id(sc, fire, buf, len);
}

static int record(ds_daemon_t *d, const char *id, const struct dsched *sc, int64_t fire,
                  const char *outcome, const char *reason)
{
    int rc = ds_schedule_fire_put(ds_sync_catalog(d->o.sync), sc->cfg->name, fire, outcome, reason,
                                  ds_daemon_now(d));

    if (rc < 0)
        ds_log(DS_LOG_ERROR, "run %s: could not record the outcome '%s': %s", id, outcome,
               ds_strerror(rc));
    return rc;
}

static int listed(const ds_strlist_t *l, const char *name)
{
    for (size_t i = 0; name != NULL && i < l->n; i++)
        if (strcmp(l->v[i], name) == 0)
            return 1;
    return 0;
}

/* The schedule's servers: those named, and those of the sites named, in
 * the configuration's order. Returns the count (*out may be NULL on ENOMEM). */
static size_t targets(const ds_config_t *cfg, const ds_schedule_cfg_t *sc,
                      const ds_server_cfg_t ***out)
{
    size_t n = 0;

    *out = calloc(cfg->nservers + 1, sizeof(**out));
    for (size_t i = 0; *out != NULL && i < cfg->nservers; i++) {
        const ds_server_cfg_t *s = &cfg->servers[i];

        if (listed(&sc->servers, s->name) || listed(&sc->sites, s->site))
            (*out)[n++] = s;
    }
    return *out ? n : 0;
}

static const char *word(const ds_sync_result_t *r)
{
    return r->rc == 0            ? "ok"
           : r->rc == -ECANCELED ? "interrupted"
           : r->rc == DS_ELEASE  ? "busy"
           : r->rc == DS_EHELD   ? "deletions held"
           : r->rc == DS_EFROZEN ? "skipped (frozen)"
                                 : "failed";
}

void ds__daemon_run_context(const char *id)
{
    char ctx[300];

    snprintf(ctx, sizeof(ctx), "run=%s", id); /* ids are at most 96 bytes (drun) */
    ds_log_context(ctx);
}

/* One server's line and its share of the outcome. */
static const char *server_done(const char *id, const ds_server_cfg_t *srv,
                               const ds_sync_result_t *r, const char *outcome, char *reason,
                               size_t rlen)
{
    char a[48] = "";

    if (r->adopted > 0) /* as sync's summary line: apart from what was sent */
        snprintf(a, sizeof(a), ", %llu adopted", (unsigned long long)r->adopted);
    ds_log_server(srv->name); /* the line names the server (log.h) */
    ds_log(r->rc == 0            ? DS_LOG_INFO
           : r->rc == DS_EFROZEN ? DS_LOG_WARN
                                 : DS_LOG_ERROR,
           "run %s server %s: %s, %llu new, %llu updated%s, %llu deleted, %llu bytes on the "
           "wire%s%s",
           id, srv->name, word(r), (unsigned long long)r->created, (unsigned long long)r->updated,
           a, (unsigned long long)r->deleted, (unsigned long long)r->bytes_wire,
           r->rc < 0 ? ": " : "", r->rc < 0 ? r->error : "");
    ds_log_server(NULL);
    if (r->rc == -ECANCELED && strcmp(outcome, "ok") == 0)
        return "interrupted";
    if (r->rc < 0 && r->rc != -ECANCELED && r->rc != DS_EFROZEN && strcmp(outcome, "failed") != 0) {
        snprintf(reason, rlen, "%s", r->error);
        return "failed";
    }
    return outcome;
}

/* The engine batch of run r over srv[0, n) (trigger and classes for the
 * catalog); logs one line per server. Returns the outcome word and the
 * first failure in reason. */
static const char *batch(ds_daemon_t *d, struct drun *r, const ds_server_cfg_t **srv, size_t n,
                         const ds_strlist_t *classes, char *reason, size_t rlen)
{
    ds_sync_result_t *res = calloc(n + 1, sizeof(*res));
    ds_delta_cache_stats_t before, after;
    const char *outcome = "ok";

    if (res == NULL) {
        snprintf(reason, rlen, "out of memory");
        return "failed";
    }
    r->state = "running";
    r->started_at = ds_daemon_now(d);
    r->mono_start_ms = ds__daemon_mono_ms();
    d->cur = r;
    ds_engine_set_batch(d->eng, strncmp(r->trigger, "schedule", 8) == 0 ? "schedule" : "manual",
                        classes, classes->n > 0);
    ds_log(DS_LOG_INFO, "run %s: syncing %zu server%s", r->id, n, n == 1 ? "" : "s");
    ds_sync_delta_stats(d->o.sync, &before);
    ds_engine_run(d->eng, srv, n, DS_SYNC_RUN, res);
    ds_sync_delta_stats(d->o.sync, &after);
    r->deltas_computed = after.computes - before.computes;
    r->deltas_cached = after.hits - before.hits;
    r->deltas_relevelled = after.relevelled - before.relevelled;
    for (size_t i = 0; i < n; i++) {
        outcome = server_done(r->id, srv[i], &res[i], outcome, reason, rlen);
        ds__drun_result(r, srv[i]->name, &res[i]);
        ds_sync_result_clear(&res[i]);
    }
    free(res);
    if (r->cancel && !d->stop) {
        ds_engine_uncancel(d->eng); /* the daemon goes on */
        snprintf(reason, rlen, "cancelled through the API");
        return "cancelled";
    }
    if (d->stop)
        outcome = "interrupted";
    if (strcmp(outcome, "interrupted") == 0)
        snprintf(reason, rlen, "the daemon was stopped during the run");
    return outcome;
}

/* The names of srv[0, n), borrowed from them (NULL on ENOMEM). */
static const char **names(const ds_server_cfg_t **srv, size_t n)
{
    const char **v = calloc(n + 1, sizeof(*v));

    for (size_t i = 0; v != NULL && i < n; i++)
        v[i] = srv[i]->name;
    return v;
}

/* The scan, then the batch of r; ends r. Returns the outcome word with
 * the reason, or NULL when the run is past sched's window after the scan
 * (sched NULL: no window). */
static const char *run_scanned(ds_daemon_t *d, struct drun *r, const ds_server_cfg_t **srv,
                               size_t n, const ds_strlist_t *classes, const ds_schedule_t *sched,
                               int64_t fire, char *reason, size_t rlen)
{
    const char *outcome;
    int rc = d->o.no_scan ? 0 : ds__daemon_scan(d, r->id, 0);

    if (rc == -ECANCELED || d->stop) {
        snprintf(reason, rlen, "the daemon was stopped before the run");
        outcome = "interrupted";
    } else if (rc < 0) {
        snprintf(reason, rlen, "the scan of the store failed: %s", ds_strerror(rc));
        outcome = "failed";
    } else if (sched != NULL && ds_daemon_now(d) > ds_schedule_window_end(sched, fire)) {
        return NULL; /* a long scan */
    } else {
        outcome = batch(d, r, srv, n, classes, reason, rlen);
        ds_log(strcmp(outcome, "ok") == 0 ? DS_LOG_INFO : DS_LOG_WARN, "run %s: %s%s%s", r->id,
               outcome, reason[0] ? ": " : "", reason);
        if (strcmp(outcome, "interrupted") != 0 && ds_sync_gc(d->o.sync, NULL) < 0)
            ds_log(DS_LOG_WARN, "run %s: could not collect unreferenced retained versions", r->id);
    }
    ds__drun_end(d, r, outcome, reason[0] ? reason : NULL);
    return outcome;
}

int ds__daemon_run_now(ds_daemon_t *d, struct drun *r)
{
    const ds_server_cfg_t **srv = calloc(r->n + 1, sizeof(*srv));
    char reason[1024] = "";
    size_t n = 0;

    if (srv == NULL) {
        ds__drun_end(d, r, "failed", "out of memory");
        return 0;
    }
    ds__daemon_run_context(r->id);
    for (size_t i = 0; i < r->n; i++) {
        const ds_server_cfg_t *s = ds_config_server(d->cfg, r->srv[i].name);

        if (s != NULL)
            srv[n++] = s;
        else /* a reload took it out */
            r->srv[i].result = "failed";
    }
    ds_log(DS_LOG_INFO, "run %s: run-now of %zu server%s", r->id, n, n == 1 ? "" : "s");
    if ((r->as_of != 0 || r->as_of_gen != 0) &&
        ds__daemon_pin_as_of(d, r, reason, sizeof(reason)) < 0)
        ds__drun_end(d, r, "failed", reason);
    else
        (void)run_scanned(d, r, srv, n, &r->classes, NULL, 0, reason, sizeof(reason));
    (void)ds_sync_pin(d->o.sync, 0, NULL); /* the next run ships the newest scan */
    ds_log_context(NULL);
    free(srv);
    return 0;
}

/* Skipped past its window: recorded with the reason. */
static int skip_late(ds_daemon_t *d, const struct dsched *sc, struct drun *r, int64_t fire)
{
    char reason[256];

    snprintf(reason, sizeof(reason),
             "not started by fire + window (window %s; %lld s after the fire time)",
             sc->cfg->window, (long long)(ds_daemon_now(d) - fire));
    ds_log(DS_LOG_WARN, "run %s: skipped: %s", r->id, reason);
    ds__drun_end(d, r, "skipped", reason);
    return record(d, r->id, sc, fire, "skipped", reason);
}

int ds__daemon_fire(ds_daemon_t *d, struct dsched *sc, int64_t fire, int catch_up)
{
    char id[256], trig[320], reason[1024] = "";
    const ds_server_cfg_t **srv = NULL;
    const char **nm = NULL;
    const char *outcome;
    struct drun *r = NULL;
    size_t n;
    int rc;

    run_id(sc, fire, id, sizeof(id));
    ds__daemon_run_context(id);
    snprintf(trig, sizeof(trig), "schedule %s", sc->cfg->name);
    n = targets(d->cfg, sc->cfg, &srv);
    nm = srv ? names(srv, n) : NULL;
    r = nm ? ds__drun_add(d, id, trig, "running", nm, n) : NULL;
    if (r == NULL) {
        rc = record(d, id, sc, fire, "failed", "out of memory");
        goto out;
    }
    if (ds_daemon_now(d) > ds_schedule_window_end(sc->s, fire)) {
        rc = skip_late(d, sc, r, fire);
        goto out;
    }
    ds_log(DS_LOG_INFO, "run %s: %s", id,
           catch_up ? "catch-up of a fire missed while down" : "due");
    if ((rc = ds__daemon_pin(d, sc, fire, id)) < 0) {
        snprintf(reason, sizeof(reason), "cannot pin the store as of the anchor: %s",
                 ds_strerror(rc));
        ds__drun_end(d, r, "failed", reason);
        rc = record(d, id, sc, fire, "failed", reason);
        goto out;
    }
    outcome = run_scanned(d, r, srv, n, &sc->cfg->classes, sc->s, fire, reason, sizeof(reason));
    /* unpinned again: a run-now ships the newest scan */
    (void)ds_sync_pin(d->o.sync, 0, NULL);
    if (outcome == NULL) { /* past its window after the scan */
        rc = skip_late(d, sc, r, fire);
        goto out;
    }
    rc = record(d, id, sc, fire, outcome, reason[0] ? reason : NULL);
out:
    ds_log_context(NULL);
    free(nm);
    free(srv);
    return rc;
}

/* One schedule at start-up. A schedule with no record yet notes its latest
 * past fire as "skipped" (it came before the daemon ran the schedule), so
 * only fires missed while the daemon was down are caught up. */
static int catch_up_one(ds_daemon_t *d, struct dsched *sc, int64_t horizon)
{
    ds_catalog_t *cat = ds_sync_catalog(d->o.sync);
    int64_t now = ds_daemon_now(d), prev;
    ds_schedule_fire_t last;
    char id[256];
    int rc;

    if (ds_schedule_prev(sc->s, now, &prev) < 0)
        return 0; /* no fire yet */
    run_id(sc, prev, id, sizeof(id));
    rc = ds_schedule_fire_last(cat, sc->cfg->name, &last);
    if (rc == DS_ENOTFOUND)
        return record(d, id, sc, prev, "skipped",
                      "before the daemon first ran this schedule (not caught up)");
    if (rc < 0)
        return rc;
    if (last.fire > prev || (last.fire == prev && strcmp(last.outcome, "interrupted") != 0))
        return 0; /* done already: never twice */
    if (horizon < 0 || now - prev > horizon) {
        char reason[128];

        snprintf(reason, sizeof(reason),
                 "missed while the daemon was down, %lld s ago (catch_up %s)",
                 (long long)(now - prev), horizon < 0 ? "off" : "exceeded");
        ds_log(DS_LOG_WARN, "run %s: not caught up: %s", id, reason);
        return record(d, id, sc, prev, "skipped", reason);
    }
    return ds__daemon_fire(d, sc, prev, 1);
}

int ds__daemon_catch_up(ds_daemon_t *d)
{
    int64_t h = d->o.catch_up_s != 0      ? d->o.catch_up_s
                : d->cfg->catch_up_s != 0 ? d->cfg->catch_up_s
                                          : DS_DAEMON_CATCH_UP_S;
    int rc = 0;

    for (size_t i = 0; i < d->n && rc == 0 && !d->stop; i++)
        rc = catch_up_one(d, &d->v[i], h);
    return rc;
}

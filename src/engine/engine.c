/*
 * The engine (engine.h): one libuv loop steps every active run of a batch
 * (sync_run.c). Per run: uv_poll handles on its transport fds (directions
 * from the session), a uv_timer for its wake-up (cap throttling, lease
 * renewals, timeouts, the cancel flag), a uv_idle while a transport
 * without fds has work; an ssh:// open stepped on the same handles, its
 * DNS lookup through uv_getaddrinfo (engine_dns.c); worker jobs (other
 * transports' open, close, deltas) through uv_queue_work. uv_async
 * handles carry ds_engine_cancel() and ds_engine_reload() from any thread
 * or a signal handler; a caps timer re-evaluates the bandwidth tables at
 * their edges.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "distsync/caps.h"
#include "distsync/engine.h"
#include "distsync/error.h"
#include "distsync/freeze.h"
#include "distsync/log.h"
#include "engine_int.h"

#define NS_PER_MS 1000000LL
/* Longest caps timer: tables are re-evaluated at least this often (ms). */
#define CAPS_TICK_MAX_MS 1000

struct slot;

struct ds_engine {
    ds_engine_opts_t o;
    uv_loop_t loop;
    uv_async_t async; /* cancel and reload */
    uv_timer_t caps_timer;
    /* the loop thread's longest stretch between two polls in this batch
     * (ds_engine_max_stall_ns): measured at each prepare, less the time
     * the loop slept in poll (UV_METRICS_IDLE_TIME) */
    uv_prepare_t probe;
    uint64_t probe_at, probe_idle, max_stall;
    int cancel_probed;     /* the cancel's poll was left out of the stalls */
    uv_timer_t wait_timer; /* ds_engine_wait() */
    int waiting;
    volatile sig_atomic_t want_cancel, want_reload;
    ds_caps_t *caps;
    ds_config_t **cfgs; /* reloaded configurations, kept until free */
    size_t ncfgs;
    /* the batch */
    const ds_server_cfg_t *const *srv;
    ds_sync_mode_t mode;
    ds_sync_result_t *res;
    ds_sched_t sched;
    int *site;
    unsigned *site_max;
    struct slot **slots;      /* per server: its slot while running */
    ds_verify_result_t *vres; /* a verify batch: per server (ds__engine_verify) */
    int in_batch;
    /* the next batches' trigger and classes (ds_engine_set_batch) */
    const char *trigger;
    const ds_strlist_t *classes;
    int classes_set;
};

struct slot {
    ds_engine_t *e;
    size_t idx;
    ds_run_t *run;
    struct ds_pace pace;
    uv_poll_t *prd, *pwr; /* rfd, and wfd when it differs; NULL: none */
    int prd_fd, pwr_fd;   /* the fd each one watches, -1 with NULL */
    uv_timer_t timer;
    uv_idle_t idle;
    struct ds_spawn_ctx spawn_ctx; /* agents under uv_spawn, DNS lookups */
    ds_spawner_t spawner;
    ds_resolver_t resolver;
    int jobs;    /* worker jobs not yet back */
    int ended;   /* the run is DONE */
    int handles; /* handles not yet closed */
};

struct work {
    uv_work_t req;
    struct slot *s;
    ds_run_job_t *j;
    ds_log_scope_t scope; /* the lines of the job name the run and server */
};

static int64_t mono_ns(void)
{
    return ds__sync_mono_ns();
}

static int64_t wall_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void slot_step(struct slot *s);
static void start_more(ds_engine_t *e);

/* A child of the run exited. */
static void slot_wake(void *arg)
{
    slot_step(arg);
}

/* The run asked to be stepped soon (another run's job it waited for is
 * back): on the next loop turn, not inside the step that asked. */
static void slot_poke(void *arg);

/* ---- per-run handles ---- */

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    slot_step(h->data);
}

static void on_timer(uv_timer_t *h)
{
    slot_step(h->data);
}

static void on_idle(uv_idle_t *h)
{
    slot_step(h->data);
}

static void slot_poke(void *arg)
{
    struct slot *s = arg;

    if (!s->ended)
        uv_timer_start(&s->timer, on_timer, 0, 0);
}

static void on_closed(uv_handle_t *h)
{
    struct slot *s = h->data;

    if (--s->handles == 0)
        free(s);
}

static void on_poll_closed(uv_handle_t *h)
{
    struct slot *s = h->data;

    free(h);
    if (--s->handles == 0)
        free(s);
}

/* Closes a fd watcher and forgets it. libuv finishes a close on a later
 * loop turn, so its memory is never initialised again meanwhile (a run
 * whose fds went away while a job was out, and came back when the job did
 * in the same turn, re-initialised the closing handle: libuv aborted in
 * uv__finish_close); the next watch gets a new handle. */
static void unwatch_fd(uv_poll_t **h, int *hfd)
{
    if (*h != NULL)
        uv_close((uv_handle_t *)*h, on_poll_closed);
    *h = NULL;
    *hfd = -1;
}

/* Watches fd for events (0: stop); one handle per distinct fd. */
static void watch_fd(struct slot *s, uv_poll_t **h, int *hfd, int fd, int events)
{
    if (*h != NULL && fd >= 0 && fd != *hfd)
        unwatch_fd(h, hfd); /* another fd under the same role */
    if (fd < 0 || events == 0) {
        if (*h != NULL)
            uv_poll_stop(*h);
        return;
    }
    if (*h == NULL) {
        uv_poll_t *p = malloc(sizeof(*p));

        if (p == NULL || uv_poll_init(&s->e->loop, p, fd) < 0) {
            free(p);
            return; /* unwatched: the run's timer still steps it */
        }
        p->data = s;
        *h = p;
        *hfd = fd;
        s->handles++;
    }
    uv_poll_start(*h, events, on_poll);
}

/* Closes the fd watchers (before the transport closes its fds). */
static void unwatch(struct slot *s)
{
    unwatch_fd(&s->prd, &s->prd_fd);
    unwatch_fd(&s->pwr, &s->pwr_fd);
}

/* Server i's result is final: tell the caller. */
static void server_done(ds_engine_t *e, size_t i)
{
    if (e->o.done != NULL)
        e->o.done(e->o.done_ctx, i, &e->res[i]);
}

/* The run ended and no job is out: free it, let the next server start. */
static void slot_finish(struct slot *s)
{
    ds_engine_t *e = s->e;

    ds__run_free(s->run);
    s->run = NULL;
    e->slots[s->idx] = NULL;
    ds__sched_end(&e->sched, s->idx);
    server_done(e, s->idx);
    unwatch(s);
    uv_close((uv_handle_t *)&s->timer, on_closed);
    uv_close((uv_handle_t *)&s->idle, on_closed);
    start_more(e);
}

static void work_run(uv_work_t *req)
{
    struct work *w = req->data;

    ds_log_scope_set(&w->scope);
    w->j->fn(w->j);
    ds_log_scope_set(NULL);
}

static void work_done(uv_work_t *req, int status)
{
    struct work *w = req->data;
    struct slot *s = w->s;

    (void)status;
    w->j->done = 1;
    free(w);
    s->jobs--;
    if (s->ended) {
        if (s->jobs == 0)
            slot_finish(s);
        return;
    }
    slot_step(s);
}

static void queue_jobs(struct slot *s, ds_run_job_t *const *jobs)
{
    for (size_t i = 0; jobs[i] != NULL; i++) {
        struct work *w = calloc(1, sizeof(*w));

        if (w != NULL) {
            w->req.data = w;
            w->s = s;
            w->j = jobs[i];
            ds_log_scope_save(&w->scope);
        }
        if (w == NULL || uv_queue_work(&s->e->loop, &w->req, work_run, work_done) < 0) {
            free(w);
            ds__run_job_inline(jobs[i]); /* cannot hand it over: do it here */
            continue;
        }
        s->jobs++;
    }
}

static void slot_step(struct slot *s)
{
    ds_run_wait_t w;
    int64_t now = mono_ns(), ms;
    const char *prev;
    int rev, wev;

    if (s->ended)
        return;
    s->pace.throttled = 0;
    prev = ds_log_server_get();
    ds_log_server(s->e->srv[s->idx]->name); /* its lines name the server */
    ds__run_step(s->run, now, &w);
    queue_jobs(s, w.jobs);
    ds_log_server(prev);
    if (w.done) {
        s->ended = 1;
        uv_idle_stop(&s->idle);
        uv_timer_stop(&s->timer);
        unwatch(s);
        if (s->jobs == 0)
            slot_finish(s);
        return;
    }
    if (w.rfd < 0 && w.wfd < 0) /* the transport is closing: its fds go away */
        unwatch(s);
    rev = w.rfd >= 0 ? UV_READABLE : 0;
    wev = w.wfd >= 0 && (w.wev & POLLOUT) ? UV_WRITABLE : 0;
    if (w.rfd >= 0 && w.rfd == w.wfd) {
        watch_fd(s, &s->prd, &s->prd_fd, w.rfd, rev | wev);
        unwatch_fd(&s->pwr, &s->pwr_fd);
    } else {
        watch_fd(s, &s->prd, &s->prd_fd, w.rfd, rev);
        watch_fd(s, &s->pwr, &s->pwr_fd, w.wfd, wev);
    }
    if (w.again)
        uv_idle_start(&s->idle, on_idle);
    else
        uv_idle_stop(&s->idle);
    ms = w.wake_ns <= now ? 0 : (w.wake_ns - now + NS_PER_MS - 1) / NS_PER_MS;
    uv_timer_start(&s->timer, on_timer, (uint64_t)ms, 0);
}

/* ---- the batch ---- */

static void not_started(ds_engine_t *e, size_t i)
{
    ds_sync_result_t *r = &e->res[i];

    memset(r, 0, sizeof(*r));
    snprintf(r->error, sizeof(r->error), "server %s: cancelled before it started", e->srv[i]->name);
    r->rc = -ECANCELED;
    ds__sched_end(&e->sched, i);
    server_done(e, i);
}

static int slot_start(ds_engine_t *e, size_t i)
{
    struct slot *s = calloc(1, sizeof(*s));
    ds_run_pace_t pace = {.wrap = ds__pace_wrap,
                          .bind = ds__pace_bind,
                          .throttled = ds__pace_throttled,
                          .idle = ds__pace_idle,
                          .rate = ds__pace_link_rate};
    int rc;

    if (s == NULL)
        return DS_ENOMEM;
    s->e = e;
    s->idx = i;
    s->prd_fd = s->pwr_fd = -1;
    pace.ctx = &s->pace;
    s->pace.cancel = &e->o.sync->cancel;
    if (e->caps != NULL) {
        s->pace.rl = ds_caps_limiter(e->caps);
        s->pace.leaf = ds_caps_server(e->caps, e->srv[i]->name);
    }
    rc = ds__run_new(e->o.sync, e->srv[i], e->mode, e->trigger ? e->trigger : e->o.sync->o.trigger,
                     e->classes_set ? e->classes : e->o.sync->o.only_classes, &e->res[i], &pace,
                     &s->run);
    if (rc < 0) {
        free(s);
        return rc;
    }
    ds__spawner_init(&s->spawner, &s->spawn_ctx, &e->loop, slot_wake, s);
    ds__run_set_spawner(s->run, &s->spawner);
    ds__resolver_init(&s->resolver, &s->spawn_ctx);
    ds__run_set_resolver(s->run, &s->resolver);
    ds__run_set_wake(s->run, slot_poke, s);
    if (e->vres != NULL)
        ds__run_set_verify(s->run, &e->vres[i]);
    uv_timer_init(&e->loop, &s->timer);
    uv_idle_init(&e->loop, &s->idle);
    s->timer.data = s->idle.data = s;
    s->handles = 2;
    e->slots[i] = s;
    slot_step(s);
    return 0;
}

/* A frozen server (freeze.h) is not written to: its run ends before it
 * starts, saying so. Plans read only, so they go on. Returns 1 if frozen. */
static int frozen(ds_engine_t *e, size_t i)
{
    ds_sync_result_t *r = &e->res[i];
    ds_freeze_t f;
    int rc;

    if (e->mode != DS_SYNC_RUN)
        return 0;
    rc = ds_freeze_get(e->o.sync->cat, e->srv[i]->name, wall_ns() / 1000000000, &f);
    if (rc == DS_ENOTFOUND)
        return 0;
    memset(r, 0, sizeof(*r));
    if (rc == 0) {
        ds_freeze_describe(&f, r->error, sizeof(r->error));
        snprintf(r->error + strlen(r->error), sizeof(r->error) - strlen(r->error),
                 ": not synced (distsync thaw %s)", e->srv[i]->name);
        r->rc = DS_EFROZEN;
    } else {
        snprintf(r->error, sizeof(r->error), "server %s: cannot read its freeze state: %s",
                 e->srv[i]->name, ds_strerror(rc));
        r->rc = rc;
    }
    ds__sched_end(&e->sched, i);
    return 1;
}

static void start_more(ds_engine_t *e)
{
    long i;

    if (e->o.sync->cancel) {
        for (size_t k = 0; k < e->sched.n; k++)
            if (e->sched.state[k] == 0)
                not_started(e, k);
        return;
    }
    while ((i = ds__sched_next(&e->sched)) >= 0) {
        int rc = frozen(e, (size_t)i) ? 0 : slot_start(e, (size_t)i);

        if (rc < 0) {
            snprintf(e->res[i].error, sizeof(e->res[i].error), "server %s: %s", e->srv[i]->name,
                     ds_strerror(rc));
            e->res[i].rc = rc;
            ds__sched_end(&e->sched, (size_t)i);
            server_done(e, (size_t)i);
        }
    }
}

static void step_all(ds_engine_t *e)
{
    for (size_t i = 0; e->in_batch && i < e->sched.n; i++)
        if (e->slots[i] != NULL)
            slot_step(e->slots[i]);
}

/* ---- caps: table edges and reload ---- */

static void rates_changed(ds_engine_t *e)
{
    for (size_t i = 0; e->in_batch && i < e->sched.n; i++) {
        struct slot *s = e->slots[i];

        if (s == NULL)
            continue;
        s->pace.leaf = ds_caps_server(e->caps, e->srv[i]->name);
        ds__pace_rate(&s->pace);
    }
    step_all(e); /* wake times were computed at the old rates */
}

static void on_caps(uv_timer_t *h)
{
    ds_engine_t *e = h->data;
    int64_t due = DS_RL_NEVER, ms, now;

    if (e->caps == NULL)
        return;
    if (ds_caps_tick(e->caps, wall_ns(), mono_ns(), &due) == 1)
        rates_changed(e);
    now = mono_ns();
    ms = due <= now ? 0 : (due - now) / NS_PER_MS + 1;
    if (ms > CAPS_TICK_MAX_MS)
        ms = CAPS_TICK_MAX_MS;
    uv_timer_start(&e->caps_timer, on_caps, (uint64_t)ms, 0);
}

static void reload(ds_engine_t *e)
{
    char err[1024] = "";
    ds_config_t *cfg = e->o.reload ? e->o.reload(e->o.reload_ctx, err, sizeof(err)) : NULL;
    ds_config_t **v;
    int rc;

    if (e->o.reload == NULL)
        return;
    if (cfg == NULL) {
        ds_log(DS_LOG_ERROR, "reload: %s; the bandwidth caps stay as they were", err);
        return;
    }
    v = realloc(e->cfgs, (e->ncfgs + 1) * sizeof(*v));
    if (v == NULL) {
        ds_config_free(cfg);
        ds_log(DS_LOG_ERROR, "reload: out of memory; the bandwidth caps stay as they were");
        return;
    }
    e->cfgs = v;
    e->cfgs[e->ncfgs++] = cfg;
    rc = e->caps ? ds_caps_reload(e->caps, cfg, wall_ns(), mono_ns(), err, sizeof(err))
                 : ds_caps_new(cfg, wall_ns(), mono_ns(), &e->caps, err, sizeof(err));
    if (rc < 0) {
        ds_log(DS_LOG_ERROR, "reload: %s: %s; the bandwidth caps stay as they were", cfg->path,
               err);
        return;
    }
    ds_log(DS_LOG_INFO, "reload: bandwidth caps of %s applied", cfg->path);
    rates_changed(e);
    on_caps(&e->caps_timer);
}

static void on_async(uv_async_t *h)
{
    ds_engine_t *e = h->data;

    if (e->waiting) /* a cancel or reload ends ds_engine_wait() */
        uv_stop(&e->loop);

    if (e->want_reload) {
        e->want_reload = 0;
        reload(e);
    }
    if (e->want_cancel) {
        if (!e->cancel_probed && e->probe_at != 0) {
            /* a signal's cancel cut the poll short: libuv 1.44 loses that
             * poll's idle time (EINTR), which is no stall; the cancel's
             * work from here on is */
            e->probe_at = uv_hrtime();
            e->probe_idle = uv_metrics_idle_time(&e->loop);
        }
        e->cancel_probed = 1;
        step_all(e); /* they see the cancel flag and wind down */
        if (e->in_batch)
            start_more(e);
    }
}

/* ---- the loop's stalls ---- */

static void on_prepare(uv_prepare_t *h)
{
    ds_engine_t *e = h->data;
    uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(&e->loop);

    if (e->probe_at != 0 && now - e->probe_at > idle - e->probe_idle &&
        now - e->probe_at - (idle - e->probe_idle) > e->max_stall)
        e->max_stall = now - e->probe_at - (idle - e->probe_idle);
    e->probe_at = now;
    e->probe_idle = idle;
}

uint64_t ds_engine_max_stall_ns(const ds_engine_t *e)
{
    return e->max_stall;
}

/* ---- API ---- */

int ds_engine_new(const ds_engine_opts_t *o, ds_engine_t **out, char *err, size_t errlen)
{
    ds_engine_t *e = calloc(1, sizeof(*e));
    int rc;

    *out = NULL;
    if (e == NULL)
        return DS_ENOMEM;
    e->o = *o;
    rc = uv_loop_init(&e->loop);
    if (rc < 0) {
        snprintf(err, errlen, "event loop: %s", uv_strerror(rc));
        free(e);
        return DS_ENOMEM;
    }
    uv_loop_configure(&e->loop, UV_METRICS_IDLE_TIME); /* the stall probe; best effort */
    rc = ds_caps_new(o->sync->o.cfg, wall_ns(), mono_ns(), &e->caps, err, errlen);
    if (rc < 0) {
        uv_loop_close(&e->loop);
        free(e);
        return rc;
    }
    rc = uv_async_init(&e->loop, &e->async, on_async);
    if (rc < 0) { /* an eventfd: EMFILE, ENFILE */
        snprintf(err, errlen, "event loop: %s", uv_strerror(rc));
        ds_caps_free(e->caps);
        uv_loop_close(&e->loop);
        free(e);
        return rc; /* libuv's codes are -errno on Unix */
    }
    uv_prepare_init(&e->loop, &e->probe);
    e->probe.data = e;
    uv_prepare_start(&e->probe, on_prepare);
    uv_unref((uv_handle_t *)&e->probe);
    e->async.data = e;
    uv_unref((uv_handle_t *)&e->async); /* the loop runs while runs do */
    uv_timer_init(&e->loop, &e->caps_timer);
    e->caps_timer.data = e;
    uv_unref((uv_handle_t *)&e->caps_timer);
    uv_timer_init(&e->loop, &e->wait_timer);
    *out = e;
    return 0;
}

void ds_engine_free(ds_engine_t *e)
{
    if (e == NULL)
        return;
    uv_close((uv_handle_t *)&e->async, NULL);
    uv_close((uv_handle_t *)&e->caps_timer, NULL);
    uv_close((uv_handle_t *)&e->probe, NULL);
    uv_close((uv_handle_t *)&e->wait_timer, NULL);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    uv_loop_close(&e->loop);
    ds_caps_free(e->caps);
    for (size_t i = 0; i < e->ncfgs; i++)
        ds_config_free(e->cfgs[i]);
    free(e->cfgs);
    free(e);
}

/* Site index and limit of each server of the batch. */
static int batch_sites(ds_engine_t *e, size_t n)
{
    const ds_config_t *cfg = e->o.sync->o.cfg;

    e->site = calloc(n + 1, sizeof(*e->site));
    e->site_max = calloc(cfg->nsites + 1, sizeof(*e->site_max));
    if (e->site == NULL || e->site_max == NULL)
        return DS_ENOMEM;
    for (size_t k = 0; k < cfg->nsites; k++)
        e->site_max[k] =
            cfg->sites[k].max_servers ? cfg->sites[k].max_servers : DS_ENGINE_SITE_MAX_SERVERS;
    for (size_t i = 0; i < n; i++) {
        e->site[i] = -1;
        for (size_t k = 0; e->srv[i]->site && k < cfg->nsites; k++)
            if (strcmp(cfg->sites[k].name, e->srv[i]->site) == 0)
                e->site[i] = (int)k;
    }
    return 0;
}

static void batch_end(ds_engine_t *e)
{
    uv_timer_stop(&e->caps_timer);
    ds__sync_retain_drain(e->o.sync); /* every job is back: the idle list is all */
    ds__sched_free(&e->sched);
    free(e->site);
    free(e->site_max);
    free(e->slots);
    e->site = NULL;
    e->site_max = NULL;
    e->slots = NULL;
    e->in_batch = 0;
}

/* ds_engine_run; fresh: take a new catalog snapshot first. */
static int engine_run(ds_engine_t *e, const ds_server_cfg_t *const *srv, size_t n,
                      ds_sync_mode_t mode, ds_sync_result_t *res, int fresh);

int ds_engine_run(ds_engine_t *e, const ds_server_cfg_t *const *srv, size_t n, ds_sync_mode_t mode,
                  ds_sync_result_t *res)
{
    return engine_run(e, srv, n, mode, res, 1);
}

static int engine_run(ds_engine_t *e, const ds_server_cfg_t *const *srv, size_t n,
                      ds_sync_mode_t mode, ds_sync_result_t *res, int fresh)
{
    const ds_config_t *cfg = e->o.sync->o.cfg;
    unsigned max = cfg->max_servers ? cfg->max_servers : DS_ENGINE_MAX_SERVERS;
    int rc;

    e->srv = srv;
    e->mode = mode;
    e->res = res;
    for (size_t i = 0; i < n; i++)
        memset(&res[i], 0, sizeof(res[i]));
    e->slots = calloc(n + 1, sizeof(*e->slots));
    rc = e->slots ? batch_sites(e, n) : DS_ENOMEM;
    if (rc == 0)
        rc = ds__sched_init(&e->sched, n, e->site, cfg->nsites, e->site_max, max);
    if (rc < 0) {
        for (size_t i = 0; i < n; i++) {
            snprintf(res[i].error, sizeof(res[i].error), "server %s: out of memory", srv[i]->name);
            res[i].rc = rc;
        }
        batch_end(e);
        return rc;
    }
    e->in_batch = 1;
    if (fresh)
        ds__sync_snapshot_reset(e->o.sync); /* each batch sees the newest scan */
    /* time outside uv_run is not a stall */
    e->probe_at = 0;
    e->max_stall = 0;
    on_caps(&e->caps_timer);
    start_more(e);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    ds_log(DS_LOG_DEBUG, "engine: %zu server%s: the loop's longest stall %.1f ms", n,
           n == 1 ? "" : "s", (double)e->max_stall / 1e6);
    batch_end(e);
    for (size_t i = 0; i < n; i++)
        if (res[i].rc < 0)
            return res[i].rc;
    return 0;
}

void ds_engine_set_batch(ds_engine_t *e, const char *trigger, const ds_strlist_t *classes,
                         int set_classes)
{
    e->trigger = trigger;
    e->classes = classes;
    e->classes_set = set_classes;
}

static void on_wait_timer(uv_timer_t *h)
{
    uv_stop(h->loop);
}

void ds_engine_wait(ds_engine_t *e, uint64_t ms)
{
    e->waiting = 1;
    uv_timer_start(&e->wait_timer, on_wait_timer, ms, 0);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&e->wait_timer);
    e->waiting = 0;
}

void ds_engine_cancel(ds_engine_t *e)
{
    e->want_cancel = 1;
    ds_sync_cancel(e->o.sync);
    uv_async_send(&e->async);
}

void ds_engine_wake(ds_engine_t *e)
{
    uv_async_send(&e->async); /* on_async ends a wait */
}

void ds_engine_uncancel(ds_engine_t *e)
{
    e->want_cancel = 0;
    e->cancel_probed = 0;
    e->o.sync->cancel = 0;
}

struct uv_loop_s *ds_engine_loop(ds_engine_t *e)
{
    return &e->loop;
}

void ds_engine_reload(ds_engine_t *e)
{
    e->want_reload = 1;
    uv_async_send(&e->async);
}

int ds__engine_verify(ds_engine_t *e, const ds_server_cfg_t *const *srv, size_t n,
                      ds_verify_result_t *vres)
{
    ds_sync_result_t *res = calloc(n + 1, sizeof(*res));
    int rc = 0;

    for (size_t i = 0; i < n; i++)
        memset(&vres[i], 0, sizeof(vres[i]));
    if (res == NULL) {
        for (size_t i = 0; i < n; i++) {
            snprintf(vres[i].error, sizeof(vres[i].error), "server %s: out of memory",
                     srv[i]->name);
            vres[i].rc = DS_ENOMEM;
        }
        return DS_ENOMEM;
    }
    e->vres = vres;
    (void)engine_run(e, srv, n, DS_SYNC_PLAN, res, 0); /* each result says how it went */
    e->vres = NULL;
    for (size_t i = 0; i < n; i++) {
        if (res[i].rc < 0 && vres[i].rc == 0) { /* ended before its run did (cancel, memory) */
            vres[i].rc = res[i].rc;
            memcpy(vres[i].error, res[i].error, sizeof(vres[i].error));
        }
        if (vres[i].rc < 0 && rc == 0)
            rc = vres[i].rc;
        ds_sync_result_clear(&res[i]);
    }
    free(res);
    return rc;
}

int ds__sync_engine(ds_sync_t *s, ds_engine_t **out, char *err, size_t errlen)
{
    ds_engine_opts_t eo = {.sync = s};
    int rc;

    if (s->engine == NULL && (rc = ds_engine_new(&eo, &s->engine, err, errlen)) < 0)
        return rc;
    s->engine_free = ds_engine_free;
    *out = s->engine;
    return 0;
}

/* sync.h: a batch of one on the ds_sync_t's own engine (plan, status,
 * verify's repair). */
int ds_sync_server(ds_sync_t *s, const ds_server_cfg_t *srv, ds_sync_mode_t mode,
                   ds_sync_result_t *res)
{
    ds_engine_t *e;
    char err[512];
    int rc;

    memset(res, 0, sizeof(*res));
    if (s->cancel) {
        snprintf(res->error, sizeof(res->error), "server %s: cancelled before it started",
                 srv->name);
        return res->rc = -ECANCELED;
    }
    if ((rc = ds__sync_engine(s, &e, err, sizeof(err))) < 0) {
        snprintf(res->error, sizeof(res->error), "server %s: %s", srv->name, err);
        return res->rc = rc;
    }
    /* a batch of one; the snapshot is the ds_sync_t's (plan, status and
     * verify take one per process; ds_engine_run() takes one per batch) */
    engine_run(s->engine, &srv, 1, mode, res, 0);
    return res->rc;
}

/*
 * Verify and repair (include/distsync/verify.h): a read-only session HASHes
 * every manifest entry on the target, a window of requests in flight, and
 * compares each answer with the manifest; repair is a sync run that hashes
 * the drifted paths again under the lease, so the planner treats them as
 * drifted. Records a "verify" run and its findings in the catalog.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "distsync/error.h"
#include "distsync/events.h"
#include "distsync/log.h"
#include "distsync/transport.h"
#include "distsync/verify.h"
#include "sync/sync_int.h"

#define VERIFY_WINDOW  64   /* HASH requests in flight */
#define VERIFY_POLL_MS 1000 /* a cancel is seen within this */

struct vrun {
    ds_sync_t *sy;
    const ds_server_cfg_t *srv;
    ds_verify_result_t *res;
    ds_transport_t *t;
    ds_session_t *ss;
    int64_t run_id;
    const ds_manifest_entry_t **man; /* sorted manifest entries */
    size_t n, next, answered;
    uint64_t bytes_total;
    int cancelled;
    ds_sync_wait_t wait; /* inactivity watchdog */
};

static int vfail(struct vrun *v, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int vfail(struct vrun *v, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    rc = ds__sync_vfail(&v->res->rc, v->res->error, sizeof(v->res->error), v->srv->name, rc, fmt,
                        ap);
    va_end(ap);
    return rc;
}

static void vevent(struct vrun *v, ds_log_level_t level, const char *path, const char *outcome,
                   const char *msg)
{
    ds_event_t ev = {.kind = DS_EV_WARNING,
                     .level = level,
                     .at = time(NULL),
                     .path = path,
                     .outcome = outcome,
                     .message = msg};

    if (v->run_id > 0 && ds_run_event(v->sy->cat, v->run_id, &ev) < 0)
        ds_log(DS_LOG_WARN, "server %s: cannot record an event", v->srv->name);
}

static void vprogress(struct vrun *v)
{
    ds_sync_progress_t p = {.server = v->srv->name};

    if (v->sy->o.progress == NULL)
        return;
    p.files_done = v->answered;
    p.files_total = v->n;
    p.bytes_done = v->res->bytes_hashed;
    p.bytes_total = v->bytes_total;
    p.bytes_wire = v->ss ? ds_session_stats(v->ss)->bytes_out : 0;
    v->sy->o.progress(v->sy->o.progress_ctx, &p);
}

static int add_drift(struct vrun *v, const ds_manifest_entry_t *m, const ds_session_result_t *x)
{
    ds_verify_drift_t *d;
    void *p = realloc(v->res->drifted, (v->res->ndrifted + 1) * sizeof(*d));
    char want[2 * DS_SHA256_LEN + 1], have[2 * DS_SHA256_LEN + 1], msg[300];

    if (p == NULL)
        return DS_ENOMEM;
    v->res->drifted = p;
    d = &v->res->drifted[v->res->ndrifted];
    memset(d, 0, sizeof(*d));
    if ((d->path = strdup(m->path)) == NULL)
        return DS_ENOMEM;
    v->res->ndrifted++;
    d->want_size = m->size;
    d->have_size = x->size;
    memcpy(d->want_sha256, m->sha256, DS_SHA256_LEN);
    memcpy(d->have_sha256, x->sha256, DS_SHA256_LEN);
    ds_hex(m->sha256, DS_SHA256_LEN, want);
    ds_hex(x->sha256, DS_SHA256_LEN, have);
    snprintf(msg, sizeof(msg), "sha256 %s size %llu, manifest says sha256 %s size %llu", have,
             (unsigned long long)x->size, want, (unsigned long long)m->size);
    vevent(v, DS_LOG_WARN, m->path, "drifted", msg);
    return 0;
}

static int add_missing(struct vrun *v, const ds_manifest_entry_t *m, const char *why)
{
    void *p = realloc(v->res->missing, (v->res->nmissing + 1) * sizeof(char *));

    if (p == NULL)
        return DS_ENOMEM;
    v->res->missing = p;
    if ((v->res->missing[v->res->nmissing] = strdup(m->path)) == NULL)
        return DS_ENOMEM;
    v->res->nmissing++;
    vevent(v, DS_LOG_WARN, m->path, "missing", why);
    return 0;
}

static int add_error(struct vrun *v, const ds_manifest_entry_t *m, const char *why)
{
    ds_verify_error_t *e;
    void *p = realloc(v->res->errors, (v->res->nerrors + 1) * sizeof(*e));

    if (p == NULL)
        return DS_ENOMEM;
    v->res->errors = p;
    e = &v->res->errors[v->res->nerrors];
    e->path = strdup(m->path);
    e->message = strdup(why);
    if (e->path == NULL || e->message == NULL) {
        free(e->path);
        free(e->message);
        return DS_ENOMEM;
    }
    v->res->nerrors++;
    vevent(v, DS_LOG_ERROR, m->path, "failed", why);
    return 0;
}

/* One HASH answer against its manifest entry. */
static int compare(struct vrun *v, const ds_session_result_t *x)
{
    const ds_manifest_entry_t *m;

    if (x->kind != DS_SRES_HASH || x->tag >= v->n)
        return 0;
    m = v->man[x->tag];
    v->answered++;
    if (x->rc == -ENOENT || x->rc == DS_ENOTREG)
        return add_missing(v, m, x->message);
    if (x->rc < 0)
        return add_error(v, m, x->message[0] ? x->message : ds_strerror(x->rc));
    v->res->bytes_hashed += x->size;
    if (x->size != m->size || memcmp(x->sha256, m->sha256, DS_SHA256_LEN) != 0)
        return add_drift(v, m, x);
    v->res->verified++;
    return 0;
}

/* Waits on the target under the server's inactivity timeout. */
static int wait_poll(struct vrun *v)
{
    unsigned tmo = v->srv->timeout_s ? v->srv->timeout_s : DS_CONFIG_TIMEOUT_DEFAULT;
    int rc = ds__sync_wait(&v->wait, v->ss, v->t, tmo, VERIFY_POLL_MS);

    if (rc == -ETIMEDOUT)
        return vfail(v, rc, "no response from the target for %u s (during %s)", tmo,
                     ds_session_waiting_for(v->ss));
    return rc;
}

/* Queues HASH requests while the window has room. */
static int feed(struct vrun *v)
{
    int rc = 0;

    while (rc == 0 && !v->cancelled && v->next < v->n && v->next - v->answered < VERIFY_WINDOW) {
        rc = ds_session_hash(v->ss, v->man[v->next]->path, v->next);
        v->next++;
    }
    return rc;
}

typedef int (*vdone_fn)(struct vrun *v);

/* Steps the session until done(v); on a cancel, stops queueing and lets the
 * requests in flight drain. */
static int vdrive(struct vrun *v, vdone_fn done)
{
    ds_session_result_t x;
    int rc;

    for (;;) {
        if (v->sy->cancel && !v->cancelled) {
            v->cancelled = 1;
            vfail(v, -ECANCELED, "cancelled");
            if (ds_session_phase(v->ss) != DS_SESSION_READY)
                return v->res->rc; /* still connecting: nothing to drain */
            /* HASH requests not yet sent; on failure (memory) they are sent
             * and answered, and the run still ends as cancelled */
            (void)ds_session_cancel_sends(v->ss);
        }
        rc = ds_session_step(v->ss, time(NULL));
        if (rc < 0)
            return vfail(v, rc, "%s", ds_session_error(v->ss));
        while (ds_session_next_result(v->ss, &x))
            if ((rc = compare(v, &x)) < 0)
                return vfail(v, rc, "%s", ds_strerror(rc));
        if (ds_session_phase(v->ss) == DS_SESSION_READY && (rc = feed(v)) < 0)
            return vfail(v, rc, "cannot queue HASH: %s", ds_strerror(rc));
        vprogress(v);
        if (done(v))
            return 0;
        if (ds_session_phase(v->ss) == DS_SESSION_DONE)
            return vfail(v, DS_EPROTO, "session ended early");
        if ((rc = wait_poll(v)) < 0)
            return vfail(v, rc, "poll: %s", strerror(-rc));
    }
}

static int until_ready(struct vrun *v)
{
    return ds_session_phase(v->ss) == DS_SESSION_READY;
}

static int until_hashed(struct vrun *v)
{
    return (v->cancelled || v->next == v->n) && ds_session_idle(v->ss);
}

static int until_closed(struct vrun *v)
{
    return ds_session_phase(v->ss) == DS_SESSION_DONE;
}

static int vconnect(struct vrun *v)
{
    char err[512];
    int rc = ds__sync_open_target(v->sy, v->srv, 0, &v->t, &v->ss, err, sizeof(err));

    if (rc < 0)
        return vfail(v, rc, "%s", err);
    return vdrive(v, until_ready);
}

/* 1 when path's top-level folder is in only (NULL: every class). */
static int in_only(const ds_strlist_t *only, const char *path)
{
    size_t len = strcspn(path, "/");

    for (size_t i = 0; only != NULL && i < only->n; i++)
        if (strlen(only->v[i]) == len && memcmp(only->v[i], path, len) == 0)
            return 1;
    return only == NULL;
}

static int vcheck(struct vrun *v)
{
    const ds_manifest_t *man = ds_session_manifest(v->ss);
    size_t n = 0, k = 0;

    if (man != NULL && ds_manifest_sorted(man, &v->man, &n) < 0)
        return vfail(v, DS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) /* verify --class: those classes only */
        if (in_only(v->sy->o.only_classes, v->man[i]->path))
            v->man[k++] = v->man[i];
    n = k;
    ds_log(DS_LOG_DEBUG, "server %s: connected (protocol version %u); hashing %zu files",
           v->srv->name, ds_session_version(v->ss), n);
    v->n = n;
    v->res->files = n;
    for (size_t i = 0; i < n; i++)
        v->bytes_total += v->man[i]->size;
    return vdrive(v, until_hashed);
}

static void vfinish(struct vrun *v)
{
    ds_verify_result_t *res = v->res;
    const char *status = res->rc == -ECANCELED  ? "cancelled"
                         : res->rc < 0          ? "failed"
                         : ds_verify_found(res) ? "drift"
                                                : "ok";
    ds_run_totals_t tot = {.files_failed = res->ndrifted + res->nmissing + res->nerrors};
    char msg[200];

    if (v->ss != NULL) {
        if (ds_session_phase(v->ss) == DS_SESSION_READY && ds_session_close(v->ss) == 0)
            vdrive(v, until_closed);
        tot.bytes_wire = ds_session_stats(v->ss)->bytes_out;
    }
    if (v->t != NULL && v->cancelled &&
        (v->ss == NULL || ds_session_phase(v->ss) != DS_SESSION_DONE))
        ds_transport_kill(v->t); /* cancelled: do not wait for the target to end */
    if (v->t != NULL && ds_transport_close(v->t) < 0 && res->rc == 0)
        vfail(v, DS_ETRANSPORT, "%s", ds_transport_error(v->t));
    ds_session_free(v->ss);
    ds_transport_free(v->t);
    free(v->man);
    snprintf(msg, sizeof(msg), "%llu drifted, %llu missing, %llu unreadable of %llu",
             (unsigned long long)res->ndrifted, (unsigned long long)res->nmissing,
             (unsigned long long)res->nerrors, (unsigned long long)res->files);
    if (v->run_id > 0) {
        int rc = ds_run_end(v->sy->cat, v->run_id, status, &tot,
                            res->rc < 0            ? res->error
                            : strcmp(status, "ok") ? msg
                                                   : NULL,
                            time(NULL));

        if (rc < 0 && res->rc == 0) /* as a sync run's record (report_record) */
            vfail(v, rc, "catalog %s: cannot record the verify run: %s",
                  ds_catalog_name(v->sy->cat), ds_strerror(rc));
    }
}

int ds_sync_verify(ds_sync_t *s, const ds_server_cfg_t *srv, ds_verify_result_t *res)
{
    struct vrun v = {.sy = s, .srv = srv, .res = res};
    struct timespec t0, t1;
    int rc;

    memset(res, 0, sizeof(*res));
    if (s->cancel) {
        snprintf(res->error, sizeof(res->error), "server %s: cancelled before it started",
                 srv->name);
        return res->rc = -ECANCELED;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (ds_run_begin_kind(s->cat, srv->name, srv->url, s->o.trigger ? s->o.trigger : "manual",
                          "verify", time(NULL), &v.run_id) < 0) {
        ds_log(DS_LOG_WARN, "server %s: cannot record the verify run in the catalog", srv->name);
        v.run_id = 0;
    }
    rc = vconnect(&v);
    if (rc == 0)
        vcheck(&v);
    vfinish(&v);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    res->elapsed_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    return res->rc;
}

int ds_verify_found(const ds_verify_result_t *v)
{
    return v->ndrifted > 0 || v->nmissing > 0 || v->nerrors > 0;
}

int ds_sync_repair(ds_sync_t *s, const ds_server_cfg_t *srv, const ds_verify_result_t *v,
                   ds_sync_result_t *res)
{
    const char **paths = calloc(v->ndrifted + v->nerrors + 1, sizeof(*paths));
    size_t n = 0;
    int rc;

    if (paths == NULL) {
        memset(res, 0, sizeof(*res));
        snprintf(res->error, sizeof(res->error), "server %s: out of memory", srv->name);
        return res->rc = DS_ENOMEM;
    }
    for (size_t i = 0; i < v->ndrifted; i++)
        paths[n++] = v->drifted[i].path;
    for (size_t i = 0; i < v->nerrors; i++)
        paths[n++] = v->errors[i].path;
    s->force_hash = paths;
    s->nforce_hash = n;
    s->run_kind = "repair";
    rc = ds_sync_server(s, srv, DS_SYNC_RUN, res);
    s->force_hash = NULL;
    s->nforce_hash = 0;
    s->run_kind = NULL;
    free(paths);
    return rc;
}

void ds_verify_result_clear(ds_verify_result_t *res)
{
    for (size_t i = 0; i < res->ndrifted; i++)
        free(res->drifted[i].path);
    for (size_t i = 0; i < res->nmissing; i++)
        free(res->missing[i]);
    for (size_t i = 0; i < res->nerrors; i++) {
        free(res->errors[i].path);
        free(res->errors[i].message);
    }
    free(res->drifted);
    free(res->missing);
    free(res->errors);
    res->drifted = NULL;
    res->missing = NULL;
    res->errors = NULL;
    res->ndrifted = res->nmissing = res->nerrors = 0;
}

/*
 * GET /v1/status?live=1[&scan=0][&servers=A,B]: plain `distsync status`
 * (each server contacted, read-only: no lease) through the daemon. A run
 * can hold the daemon's engine for hours, so the request never waits for
 * it: each one gets a thread of its own with a ds_sync_t of its own (its
 * catalog connection, its engine and loop), as a standalone `status` is a
 * process of its own. The thread scans the store first (scan=0: not),
 * under the state directory's scan lock as `distsync scan` takes it, then
 * writes the document of GET /v1/status (api_status.c); the loop thread
 * replies when a uv_async says the thread ended. The daemon's state is
 * never touched off the loop thread: the thread reads only its job, the
 * configuration (kept until the engine is freed) and its own handles.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <h2o.h>
#include <uv.h>

#include "api_int.h"
#include "distsync/log.h"

/* The request's side of a job, in its pool: gone with the request (a
 * client that left is not answered). */
struct live_ref {
    struct api_live *job; /* NULL once answered or dropped */
};

struct api_live {
    ds_daemon_t *d;
    h2o_req_t *req; /* NULL: the client left, or the daemon stops */
    struct live_ref *ref;
    uv_thread_t tid;
    uv_async_t done; /* the thread ended (unreferenced: holds no batch open) */
    uv_mutex_t mu;   /* guards sy against the stop's cancel */
    ds_sync_t *sy;
    int stop; /* under mu: the daemon stops */
    const ds_config_t *cfg;
    const ds_server_cfg_t *srv[DS_API_STATUS_MAX];
    size_t n;
    int scan;
    int changed; /* its scan changed the catalog (precompute = yes follows) */
    size_t slot; /* in d->live */
    struct api_res rs;
};

int ds__api_status_live_path(const h2o_req_t *req)
{
    static const char pre[] = "/v1/status";
    char v[8];

    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
        req->path.len < sizeof(pre) - 1 || memcmp(req->path.base, pre, sizeof(pre) - 1) != 0 ||
        (req->path.len > sizeof(pre) - 1 && req->path.base[sizeof(pre) - 1] != '?'))
        return 0;
    return ds__api_query(req->path.base, req->path.len, "live", v, sizeof(v)) == 1 &&
           strcmp(v, "1") == 0;
}

static int stopping(struct api_live *j)
{
    int stop;

    uv_mutex_lock(&j->mu);
    stop = j->stop;
    uv_mutex_unlock(&j->mu);
    return stop;
}

/* The incremental scan on sy's catalog under the scan lock (waiting for a
 * scan under way, as `distsync status` does). Returns 0 or < 0 with the
 * error reply in j->rs. */
static int live_scan(struct api_live *j, ds_scan_stats_t *st)
{
    ds_scan_opts_t o;
    char path[PATH_MAX];
    int fd, rc;

    snprintf(path, sizeof(path), "%s/scan.lock", j->cfg->state);
    if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0) {
        rc = -errno;
        ds__api_error(&j->rs, 500, "%s: %s", path, ds_strerror(rc));
        return rc;
    }
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (stopping(j)) {
            close(fd);
            ds__api_error(&j->rs, 503, "the daemon is stopping");
            return -ECANCELED;
        }
        usleep(100 * 1000);
    }
    ds__daemon_scan_opts(j->cfg, &o);
    rc = ds_scan_run(&o, ds_sync_catalog(j->sy), st);
    close(fd);
    if (rc < 0)
        ds__api_error(&j->rs, 500,
                      "scan of %s failed: %s (catalog %s); nothing done (--no-scan "
                      "uses the catalog as it is)",
                      j->cfg->store, ds_strerror(rc), ds_catalog_name(ds_sync_catalog(j->sy)));
    return rc;
}

/* The job's thread: open, scan, report, close. */
static void live_thread(void *arg)
{
    struct api_live *j = arg;
    ds_sync_opts_t o = {.cfg = j->cfg};
    ds_scan_stats_t st = {0};
    ds_sync_t *sy = NULL;
    char err[1024];
    sigset_t all;

    sigfillset(&all); /* signals stay with the loop thread */
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    ds_log_context("status=live"); /* its lines are no run's */
    if (ds_sync_open(&o, &sy, err, sizeof(err)) < 0) {
        ds__api_error(&j->rs, 500, "%s", err);
        goto out;
    }
    uv_mutex_lock(&j->mu);
    j->sy = sy;
    if (j->stop)
        ds_sync_cancel(sy);
    uv_mutex_unlock(&j->mu);
    if (j->scan && live_scan(j, &st) < 0)
        goto out;
    j->changed = st.added + st.changed + st.removed > 0;
    ds__api_status_doc(sy, j->cfg, j->srv, j->n, 1, j->scan ? &st : NULL, &j->rs);
out:
    uv_mutex_lock(&j->mu);
    j->sy = NULL;
    uv_mutex_unlock(&j->mu);
    ds_sync_close(sy);
    uv_async_send(&j->done);
}

static void live_free(uv_handle_t *h)
{
    struct api_live *j = h->data;

    uv_mutex_destroy(&j->mu);
    free(j->rs.body);
    free(j);
}

/* Loop thread: the thread ended; the reply goes to a client still there. */
static void live_done(uv_async_t *h)
{
    struct api_live *j = h->data;

    uv_thread_join(&j->tid);
    j->d->live[j->slot] = NULL;
    if (j->ref != NULL)
        j->ref->job = NULL;
    if (j->req != NULL)
        ds__api_reply(j->req, &j->rs);
    if (j->changed)
        ds__daemon_precompute(j->d);
    uv_close((uv_handle_t *)&j->done, live_free);
}

static void ref_dispose(void *arg)
{
    struct live_ref *r = arg;

    if (r->job != NULL) {
        r->job->req = NULL;
        r->job->ref = NULL;
    }
}

int ds__api_status_live(ds_daemon_t *d, h2o_req_t *req, const struct api_req *rq,
                        struct api_res *rs)
{
    struct api_live *j = NULL;
    char v[8];
    size_t slot = 0;

    while (slot < DS_API_LIVE_MAX && d->live[slot] != NULL)
        slot++;
    if (slot == DS_API_LIVE_MAX) {
        ds__api_error(rs, 503, "%d live status requests are under way: retry when one ended",
                      DS_API_LIVE_MAX);
        return -1;
    }
    if ((j = calloc(1, sizeof(*j))) == NULL) {
        ds__api_error(rs, 500, "out of memory");
        return -1;
    }
    if (ds__api_status_servers(d, rq, j->srv, &j->n, rs) < 0) {
        free(j);
        return -1;
    }
    j->scan =
        !(ds__api_query(rq->path, rq->path_len, "scan", v, sizeof(v)) == 1 && strcmp(v, "0") == 0);
    j->d = d;
    j->cfg = d->cfg;
    j->slot = slot;
    j->done.data = j;
    if (uv_mutex_init(&j->mu) < 0) {
        free(j);
        ds__api_error(rs, 500, "out of memory");
        return -1;
    }
    if (uv_async_init(ds_engine_loop(d->eng), &j->done, live_done) < 0) {
        uv_mutex_destroy(&j->mu);
        free(j);
        ds__api_error(rs, 500, "cannot start a live status: out of handles");
        return -1;
    }
    uv_unref((uv_handle_t *)&j->done);
    if (uv_thread_create(&j->tid, live_thread, j) < 0) {
        uv_close((uv_handle_t *)&j->done, live_free);
        ds__api_error(rs, 503, "cannot start a live status: no thread");
        return -1;
    }
    j->req = req;
    j->ref = h2o_mem_alloc_shared(&req->pool, sizeof(*j->ref), ref_dispose);
    j->ref->job = j;
    d->live[slot] = j;
    return 0;
}

void ds__api_status_live_stop(ds_daemon_t *d)
{
    for (size_t i = 0; i < DS_API_LIVE_MAX; i++) {
        struct api_live *j = d->live[i];

        if (j == NULL)
            continue;
        uv_mutex_lock(&j->mu);
        j->stop = 1;
        if (j->sy != NULL)
            ds_sync_cancel(j->sy); /* seen within about a second */
        uv_mutex_unlock(&j->mu);
        uv_thread_join(&j->tid);
        if (j->ref != NULL)
            j->ref->job = NULL;
        if (j->req != NULL) { /* the client hears why, not an empty reply */
            ds__api_error(&j->rs, 503, "the daemon is stopping: the live status was cancelled");
            ds__api_reply(j->req, &j->rs);
        }
        d->live[i] = NULL;
        uv_close((uv_handle_t *)&j->done, live_free);
    }
}

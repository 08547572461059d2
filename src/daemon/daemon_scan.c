/*
 * The incremental scan before a run (daemon_int.h), on a libuv worker
 * thread so that the loop goes on serving the API while the store is read.
 * The worker writes through a catalog connection of its own (SQLite's WAL:
 * the loop's connection reads the last committed state meanwhile, and a
 * write of the loop waits on the busy timeout for the scan's batch commit).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <uv.h>

#include "daemon_int.h"
#include "distsync/catalog.h"
#include "distsync/log.h"
#include "distsync/scan.h"

struct scan_job {
    uv_work_t req;
    ds_daemon_t *d;
    const char *id;
    char path[PATH_MAX]; /* the catalog */
    ds_scan_opts_t o;
    ds_scan_stats_t st;
    char err[1024]; /* the catalog's open error, when rc says so */
    int rc;
    int done;             /* set on the loop thread */
    ds_log_scope_t scope; /* the run's, for the scan's lines */
};

static void on_scan_warn(void *ctx, const char *path, int err, const char *what)
{
    (void)err;
    ds_log(DS_LOG_WARN, "run %s: scan: %s: %s", (const char *)ctx, path, what);
}

/* Worker thread: opens the catalog, scans, closes it. */
static void scan_work(uv_work_t *w)
{
    struct scan_job *j = w->data;
    ds_catalog_t *cat = NULL;

    ds_log_scope_set(&j->scope);
    if (j->d->o.test_scan_pause_ms > 0) /* test builds: a scan as long as asked */
        usleep(j->d->o.test_scan_pause_ms * 1000u);
    j->rc = ds_catalog_open(j->path, &cat, j->err, sizeof(j->err));
    if (j->rc == 0)
        j->rc = ds_scan_run(&j->o, cat, &j->st);
    ds_catalog_free(cat);
    ds_log_scope_set(NULL);
}

/* Loop thread: the scan ended; the waiting ds__daemon_scan goes on. */
static void scan_after(uv_work_t *w, int status)
{
    struct scan_job *j = w->data;

    if (status == UV_ECANCELED)
        j->rc = -ECANCELED;
    j->done = 1;
    ds_engine_wake(j->d->eng);
}

/* Waits for the state directory's scan lock (the one 'distsync scan'
 * takes): a due run waits for a scan that is running, checking for a stop
 * every second. Returns the locked fd or < 0. */
static int lock_scan(ds_daemon_t *d, const char *id)
{
    const ds_config_t *cfg = d->o.sync->o.cfg;
    char path[PATH_MAX];
    int fd, said = 0;

    snprintf(path, sizeof(path), "%s/scan.lock", cfg->state);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        int rc = -errno;

        ds_log(DS_LOG_ERROR, "run %s: %s: %s", id, path, ds_strerror(rc));
        return rc;
    }
    while (flock(fd, LOCK_EX | LOCK_NB) < 0 && !d->stop) {
        if (!said++)
            ds_log(DS_LOG_INFO, "run %s: waiting for the scan running on %s", id, cfg->state);
        ds_engine_wait(d->eng, 1000);
    }
    if (d->stop) {
        close(fd);
        return -ECANCELED;
    }
    return fd;
}

void ds__daemon_scan_opts(const ds_config_t *cfg, ds_scan_opts_t *o)
{
    *o = (ds_scan_opts_t){.store = cfg->store,
                          .classes = (const char *const *)cfg->classes.v,
                          .nclasses = cfg->classes.n,
                          .chunk = cfg->chunk,
                          .threads = cfg->scan_threads};
}

int ds__daemon_scan(ds_daemon_t *d, const char *id, int64_t at)
{
    const ds_config_t *cfg = d->o.sync->o.cfg;
    struct scan_job *j = calloc(1, sizeof(*j));
    int fd = -1, rc;

    if (j == NULL)
        return DS_ENOMEM;
    rc = fd = lock_scan(d, id);
    if (fd < 0)
        goto out;
    rc = ds_catalog_path(cfg->state, j->path, sizeof(j->path));
    if (rc < 0)
        goto out;
    j->d = d;
    j->id = id;
    j->req.data = j;
    ds__daemon_scan_opts(cfg, &j->o);
    j->o.warn = on_scan_warn;
    j->o.ctx = (void *)id;
    ds_log_scope_save(&j->scope);
    j->o.now = at ? at : ds_daemon_now(d); /* generations on the daemon's clock (anchors) */
    ds_log(DS_LOG_DEBUG, "run %s: scanning %s", id, cfg->store);
    rc = uv_queue_work(ds_engine_loop(d->eng), &j->req, scan_work, scan_after);
    if (rc < 0) {
        ds_log(DS_LOG_ERROR, "run %s: cannot start the scan: %s", id, uv_strerror(rc));
        goto out;
    }
    /* the loop serves the API meanwhile; a stop waits for the scan's end
     * (its batches are committed whole or rolled back) */
    while (!j->done)
        ds_engine_wait(d->eng, 1000);
    rc = j->rc;
    if (rc < 0 && j->err[0])
        ds_log(DS_LOG_ERROR, "run %s: %s", id, j->err);
    else if (rc < 0)
        ds_log(DS_LOG_ERROR, "run %s: scan of %s failed: %s", id, cfg->store, ds_strerror(rc));
    else if (j->st.added + j->st.changed + j->st.removed > 0) {
        ds_log(DS_LOG_INFO, "run %s: scan: %llu new, %llu changed, %llu removed", id,
               (unsigned long long)j->st.added, (unsigned long long)j->st.changed,
               (unsigned long long)j->st.removed);
        ds__daemon_precompute(d); /* precompute = yes: the next runs' deltas, ahead */
    }
out:
    if (fd >= 0)
        close(fd);
    free(j);
    return rc;
}

/*
 * Retaining what a server references, after its run committed: the store
 * files of every version its manifest names are copied into the retain
 * store (GBs of reading, compressing and writing for a big release). The
 * work is split so that none of that I/O runs on the engine's loop thread:
 *
 *   - plan (loop thread): which versions are not retained yet and which
 *     store file and catalog chunk list provide each (catalog lookups);
 *   - work (a worker thread): open, read, compress, write into retain.db
 *     through the ds_sync_t's worker handle of the retain store;
 *   - end (loop thread): the memo learns what is retained now, and what
 *     could not be retained is logged.
 *
 * A run starts retaining the new versions its plan sends early
 * (ds__sync_retain_plan_new): while it connects, those of the warm-up's
 * plan (against the manifest the target confirmed last), and as it starts
 * sending, those of its own plan not retained yet; on a worker beside the
 * deltas and the link, rather than after its commit, when the run would
 * wait for it (0.25 s of the first server's 0.6 s on the libc6 update);
 * the commit then retains what is left of the manifest. A version retained for a
 * run that fails is kept as any other until gc. Such a job stops between
 * versions once its run failed or was cancelled (ds__sync_retain_stop).
 * Until the manifest naming them is recorded, no server references the
 * versions such a job retains, and a gc of another process may free them
 * (cmd_gc.c): the memo learns none of them (neither as retained already
 * when planned nor once retained), so the commit's job asks the retain
 * store again and retains what is gone.
 *
 * One retain job runs at a time per ds_sync_t (so per engine): the loop
 * hands the worker handle to one job and takes it back when the job is
 * done (ds__sync_retain_begin/_end). Two runs retaining the same version
 * thus never write at once; the second one's ds_retain_put finds it
 * present and does nothing. A job waiting for its turn waits in its run's
 * phase, not on a worker thread, so it never holds a thread of the pool.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "distsync/error.h"
#include "distsync/log.h"
#include "sync_int.h"

struct retain_item {
    char *path;  /* store file (absolute) */
    char *mpath; /* the manifest path it serves (for messages) */
    uint8_t sha256[DS_SHA256_LEN];
    ds_content_t c; /* size and chunk list from the catalog */
    int rc;         /* the put's result (worker) */
};

struct ds_sync_retain {
    ds_sync_t *sy;
    char *server;
    struct retain_item *it;
    size_t n;
    int open_rc;      /* opening the worker handle failed */
    int early;        /* the plan's new versions (ds__sync_retain_plan_new) */
    _Atomic int stop; /* its run failed: the versions not begun are left */
    int64_t ns;       /* the work's duration (for the debug log) */
};

void ds__sync_retain_free(ds_sync_retain_t *j)
{
    if (j == NULL)
        return;
    for (size_t i = 0; i < j->n; i++) {
        free(j->it[i].path);
        free(j->it[i].mpath);
        ds_content_clear(&j->it[i].c);
    }
    free(j->it);
    free(j->server);
    free(j);
}

/* Adds version sha (for path) when the store can provide it and it is not
 * retained yet. Returns 0 or < 0 (a catalog or memory failure: stop). */
static int plan_one(ds_sync_retain_t *j, const char *mpath, const uint8_t *sha)
{
    ds_sync_t *s = j->sy;
    struct retain_item *x = &j->it[j->n];
    const struct sfile_row *row;
    char path[8192];
    int64_t id;
    int rc = j->early ? ds__sync_retained_peek(s, sha) : ds__sync_retained(s, sha);

    if (rc != 0)
        return rc < 0 ? rc : 0;
    id = ds__sync_content_id(s, sha);
    if ((row = ds__sync_row_by_content(s, id)) == NULL) {
        ds_log(DS_LOG_DEBUG, "server %s: %s: version not in the store, cannot retain it", j->server,
               mpath);
        return 0;
    }
    memset(x, 0, sizeof(*x));
    if ((rc = ds_catalog_content_get(s->cat, id, &x->c)) < 0)
        return rc;
    if (ds__sync_row_file(s, row, NULL, path, sizeof(path)) < 0 || (x->path = strdup(path)) == NULL)
        x->path = NULL;
    x->mpath = strdup(mpath);
    if (x->path == NULL || x->mpath == NULL) {
        free(x->path);
        free(x->mpath);
        ds_content_clear(&x->c);
        return DS_ENOMEM;
    }
    memcpy(x->sha256, sha, DS_SHA256_LEN);
    j->n++;
    return 0;
}

/* A job for server with room for n versions; NULL without the retain
 * store (nothing to do) or memory (*rc). */
static ds_sync_retain_t *job_new(ds_sync_t *s, const char *server, size_t n, int *rc)
{
    ds_sync_retain_t *j;

    *rc = 0;
    if (s->ret == NULL)
        return NULL;
    j = calloc(1, sizeof(*j));
    if (j == NULL || (j->server = strdup(server)) == NULL ||
        (j->it = calloc(n + 1, sizeof(*j->it))) == NULL) {
        *rc = DS_ENOMEM;
        ds__sync_retain_free(j);
        return NULL;
    }
    j->sy = s;
    return j;
}

/* Hands out j (rc: the planning's result). */
static int job_done(ds_sync_retain_t *j, const char *server, int rc, ds_sync_retain_t **out)
{
    if (rc < 0)
        ds_log(DS_LOG_WARN, "server %s: cannot retain its versions: %s", server, ds_strerror(rc));
    if (rc < 0 || j == NULL || j->n == 0) {
        ds__sync_retain_free(j);
        return rc;
    }
    *out = j;
    return 0;
}

int ds__sync_retain_plan(ds_sync_t *s, const ds_manifest_t *man, const char *server,
                         ds_sync_retain_t **out)
{
    const ds_manifest_entry_t **v = NULL;
    ds_sync_retain_t *j = NULL;
    size_t n = 0;
    int rc;

    *out = NULL;
    if ((rc = ds_manifest_sorted(man, &v, &n)) == 0 && (j = job_new(s, server, n, &rc)) != NULL)
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = plan_one(j, v[i]->path, v[i]->sha256);
    free(v);
    return job_done(j, server, rc, out);
}

int ds__sync_retain_plan_new(ds_sync_t *s, const ds_plan_t *p, const char *server,
                             ds_sync_retain_t **out)
{
    ds_sync_retain_t *j;
    int rc;

    *out = NULL;
    if ((j = job_new(s, server, p->n, &rc)) != NULL)
        j->early = 1;
    for (size_t i = 0; j != NULL && rc == 0 && i < p->n; i++)
        if (p->items[i].action == DS_PLAN_CREATE || p->items[i].action == DS_PLAN_UPDATE)
            rc = plan_one(j, p->items[i].path, p->items[i].sha256);
    return job_done(j, server, rc, out);
}

void ds__sync_retain_stop(ds_sync_retain_t *j)
{
    if (j != NULL)
        atomic_store(&j->stop, 1);
}

int ds__sync_retain_begin(ds_sync_t *s)
{
    if (s->retain_busy)
        return 0;
    s->retain_busy = 1;
    return 1;
}

/* Test builds: a pause per version retained (ds_sync_opts_t). */
static void test_delay(const ds_sync_t *s)
{
    struct timespec ts = {.tv_sec = s->o.test_retain_delay_ms / 1000,
                          .tv_nsec = (long)(s->o.test_retain_delay_ms % 1000) * 1000000};

    while (s->o.test_retain_delay_ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Versions retained per transaction: one commit for many small files, yet
 * a pin's put (another connection) never waits long for the write lock. */
#define RETAIN_BATCH 64

/* Retains it[0..n) in one retain-store transaction (ds_retain_batch_begin);
 * each item's rc says how its version went. */
static void retain_batch(ds_sync_t *s, struct retain_item *it, size_t n, const _Atomic int *stop)
{
    int brc = ds_retain_batch_begin(s->ret_w);

    for (size_t i = 0; i < n; i++) {
        struct retain_item *x = &it[i];
        int fd;

        if (atomic_load(stop)) {
            x->rc = -ECANCELED; /* left for a later run */
            continue;
        }
        if (ds_retain_has(s->ret_w, x->sha256) == 1)
            continue; /* a path before, or another run's job, retained it */
        test_delay(s);
        fd = open(x->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        x->rc = fd < 0 ? -errno
                       : ds_retain_put(s->ret_w, fd, x->sha256, x->c.size, x->c.chunks,
                                       x->c.nchunks, 0);
        if (fd >= 0)
            close(fd);
    }
    /* without a batch (begin failed) each put committed on its own */
    int erc = brc == 0 ? ds_retain_batch_end(s->ret_w) : 0;

    for (size_t i = 0; erc < 0 && i < n; i++)
        if (it[i].rc == 0)
            it[i].rc = erc; /* the commit failed: nothing of the batch is stored */
}

void ds__sync_retain_work(ds_sync_retain_t *j)
{
    ds_sync_t *s = j->sy;
    int64_t t0 = ds__sync_mono_ns();
    char dir[4096];

    if (s->ret_w == NULL) {
        snprintf(dir, sizeof(dir), "%s/retain", s->o.cfg->state);
        j->open_rc = ds_retain_open(dir, &s->ret_w);
        if (j->open_rc < 0)
            return;
    }
    for (size_t i = 0; i < j->n; i += RETAIN_BATCH)
        retain_batch(s, j->it + i, j->n - i < RETAIN_BATCH ? j->n - i : RETAIN_BATCH, &j->stop);
    j->ns = ds__sync_mono_ns() - t0;
}

void ds__sync_retain_end(ds_sync_retain_t *j)
{
    ds_sync_t *s = j->sy;

    s->retain_busy = 0;
    ds_log(DS_LOG_DEBUG, "server %s: retain job of %zu versions: %.3f s", j->server, j->n,
           (double)j->ns / 1e9);
    if (j->open_rc < 0)
        ds_log(DS_LOG_WARN, "server %s: cannot open the retain store %s/retain: %s", j->server,
               s->o.cfg->state, ds_strerror(j->open_rc));
    for (size_t i = 0; j->open_rc == 0 && i < j->n; i++) {
        struct retain_item *x = &j->it[i];

        if (x->rc == -ECANCELED)
            continue;
        if (x->rc < 0)
            ds_log(DS_LOG_WARN, "server %s: retaining %s from %s: %s", j->server, x->mpath, x->path,
                   ds_strerror(x->rc));
        else if (!j->early) /* see the top of this file */
            ds__sync_note_retained(s, x->sha256);
    }
    ds__sync_retain_free(j);
}

/*
 * The worker jobs' retain handles: a delta job whose basis only the retain
 * store holds takes a handle from the ds_sync_t's idle list (or opens one
 * when the list is empty) and gives it back when its delta is computed, so
 * a batch opens at most as many handles as jobs ran at once (the worker
 * threads), not one per retained-basis delta (SQLite open, WAL and shm
 * files, schema check: 277 per cold libc6 update before).
 *
 * A kept handle sees later writes: SQLite's WAL readers take their
 * snapshot when a read transaction starts, and a handle goes back to the
 * list only when ds_retain_idle() says it has no statement or transaction
 * open (else it is closed), so the next job's first read starts a fresh
 * snapshot that holds every version the retain job committed meanwhile.
 * An idle handle holds no read mark, so it never holds a checkpoint back.
 * The batch's end (the engine) and ds_sync_close() close the idle handles:
 * the daemon holds none between runs.
 */
#include <pthread.h>
#include <stdio.h>

#include "distsync/log.h"
#include "sync_int.h"

int ds__sync_retain_take(ds_sync_t *s, ds_retain_t **out)
{
    int rc;

    *out = NULL;
    pthread_mutex_lock(&s->rpool_mu);
    if (s->nrpool > 0)
        *out = s->rpool[--s->nrpool];
    s->rpool_takes++;
    pthread_mutex_unlock(&s->rpool_mu);
    if (*out != NULL)
        return 0;
    rc = ds_retain_open(s->retain_dir, out);
    if (rc == 0) {
        pthread_mutex_lock(&s->rpool_mu);
        s->rpool_opens++;
        pthread_mutex_unlock(&s->rpool_mu);
    }
    return rc;
}

void ds__sync_retain_give(ds_sync_t *s, ds_retain_t *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&s->rpool_mu);
    if (s->nrpool < DS_SYNC_RPOOL && ds_retain_idle(r)) {
        s->rpool[s->nrpool++] = r;
        r = NULL;
    }
    pthread_mutex_unlock(&s->rpool_mu);
    ds_retain_close(r); /* not idle (a reader left open), or the list is full */
}

void ds__sync_retain_drain(ds_sync_t *s)
{
    ds_retain_t *idle[DS_SYNC_RPOOL];
    unsigned opens, takes;
    size_t n;

    pthread_mutex_lock(&s->rpool_mu);
    n = s->nrpool;
    for (size_t i = 0; i < n; i++)
        idle[i] = s->rpool[i];
    s->nrpool = 0;
    opens = s->rpool_opens;
    takes = s->rpool_takes;
    s->rpool_opens = s->rpool_takes = 0;
    pthread_mutex_unlock(&s->rpool_mu);
    for (size_t i = 0; i < n; i++)
        ds_retain_close(idle[i]);
    if (takes > 0)
        ds_log(DS_LOG_DEBUG, "retain store %s: %u handle%s opened for the workers, taken %u time%s",
               s->retain_dir, opens, opens == 1 ? "" : "s", takes, takes == 1 ? "" : "s");
}

/*
 * Delta prefetch: the deltas of the next plan items are computed on worker
 * threads (ds__sender_prefetch) while the current file streams, so the
 * link does not idle while a delta computes. The catalog lookups (which
 * store file holds the basis) are done here, on the loop thread; the
 * sender's gate holds an item back until its job is done, and then finds
 * the delta in the cache.
 */
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "sync_run_int.h"

static void prefetch_work(ds_run_job_t *j)
{
    struct ds_run_prefetch *p = (struct ds_run_prefetch *)j;

    p->dropped = ds__sender_prefetch(p->r->sy, p->fmt, &p->r->res->plan->items[p->idx], p->target,
                                     p->tsize, p->basis, p->bsize);
}

int ds__run_prefetch_ready(void *ctx, size_t idx)
{
    struct ds_run *r = ctx;

    return r->pf_state[idx] != 1;
}

int ds__run_prefetch(struct ds_run *r, ds_run_wait_t *w)
{
    const ds_plan_t *p = r->res->plan;
    size_t first = ds__sender_next(r->sd);

    for (size_t s = 0; s < DS_RUN_PREFETCH; s++) {
        struct ds_run_prefetch *x = &r->pf[s];

        if (x->job.queued && x->job.done) {
            r->pf_state[x->idx] = 2;
            if (x->dropped)
                ds__sender_note_dropped(r->sd, x->idx);
            free(x->target);
            free(x->basis);
            x->target = x->basis = NULL;
            x->job.queued = 0;
        }
    }
    if (r->pf_next < first)
        r->pf_next = first;
    for (size_t s = 0; s < DS_RUN_PREFETCH && r->pf_next < p->n; s++) {
        struct ds_run_prefetch *x = &r->pf[s];
        const ds_plan_item_t *it;
        int rc;

        if (x->job.queued)
            continue;
        while (r->pf_next < p->n && p->items[r->pf_next].method != DS_PLAN_DELTA)
            r->pf_next++;
        if (r->pf_next >= p->n || r->pf_next >= first + 4 * DS_RUN_PREFETCH)
            break;
        it = &p->items[r->pf_next];
        memset(x, 0, sizeof(*x));
        x->r = r;
        x->idx = r->pf_next++;
        rc = ds__sender_prefetch_plan(r->sy, r->ss, it, &x->fmt, &x->target, &x->tsize, &x->basis,
                                      &x->bsize);
        if (rc < 0)
            return ds__run_fail(r, rc, "out of memory");
        if (rc == 0)
            continue; /* no readable basis: the sender finds out inline */
        x->job.fn = prefetch_work;
        r->pf_state[x->idx] = 1;
        ds__run_queue_job(w, &x->job);
    }
    return 0;
}

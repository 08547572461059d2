/*
 * Delta prefetch: the deltas of the next plan items are computed on worker
 * threads (ds__sender_prefetch) while the current file streams, so the
 * link does not idle while a delta computes. The catalog lookups (which
 * store file holds the basis) are done here, on the loop thread; the
 * sender's gate holds an item back until its job is done, and then finds
 * the delta in the cache.
 *
 * The servers of a fan-out reach their send phase together and want the
 * same deltas: a slot whose delta another slot's job is computing waits
 * for that job (its run woken when it lands) and then queues its own,
 * which finds the delta in the cache. The ds_sync_t keeps the list of
 * those slots (pf_fly), on the loop thread only.
 *
 * Warm-up: a run that is still connecting (the TCP and SSH handshakes,
 * HELLO, LIST) has no plan yet, but the manifest its target confirmed last
 * is in the catalog; the deltas a plan against it wants are started then
 * (the first server of a run waits for its link and its deltas at the same
 * time, not one after the other). A guess that misses (the target
 * drifted, another agent version) only computed a delta nobody sends.
 *
 * A run's end waits for its jobs: once it is past sending (failed, ended,
 * cancelled), its jobs nobody waits for give up at their next read
 * (ds__run_prefetch_stop), and none of the batch's survives a cancel.
 *
 * Quick deltas: a job queued while its run's link is idle computes a
 * quick delta (DS_DELTA_QUICK: zstd level 3, no BSDIFF), as the link
 * would otherwise wait on the console's CPU: on the libc6 update a full
 * delta costs 1.26 CPU-s (level 12, BSDIFF) against 0.16 for a quick one,
 * for 283 KB against 950 KB. Idle: no cap under QUICK_MIN_RATE, and less
 * than QUICK_BACKLOG queued or unread (still connecting: nothing is).
 * Once more is waiting, the link has work while the full delta computes.
 * zstd's --adapt picks its level by the same signal. A full delta already
 * cached is still what a quick request takes (ds_delta_cache_get).
 */
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/log.h"
#include "sync_run_int.h"

/* A cap under this (bytes/s) is a slow link: its deltas are never quick. */
#define QUICK_MIN_RATE (100000000u / 8)
/* Bytes queued for a link, or written and not yet read at the far end,
 * under which it is about to idle. */
#define QUICK_BACKLOG (256u << 10)

/* 1 when a delta r needs now should be quick (above). */
static int link_idle(const struct ds_run *r)
{
    uint64_t rate = r->has_pace && r->pace.rate ? r->pace.rate(r->pace.ctx) : 0;

    if (r->srv->quick_off || (rate != 0 && rate < QUICK_MIN_RATE))
        return 0;
    if (r->ss == NULL || r->t == NULL)
        return 1; /* connecting: nothing is on its way yet */
    return ds_session_unsent(r->ss) + ds_transport_unread(r->t) < QUICK_BACKLOG;
}

/* fmt, made quick when the link is idle (a librsync delta never is). */
static int job_fmt(const struct ds_run *r, int fmt)
{
    return fmt != DS_DELTA_FMT_RSYNC && link_idle(r) ? fmt | DS_DELTA_QUICK : fmt;
}

static int same_delta(const struct ds_run_prefetch *a, const struct ds_run_prefetch *b)
{
    return a->fmt == b->fmt && memcmp(a->bsha, b->bsha, DS_SHA256_LEN) == 0 &&
           memcmp(a->tsha, b->tsha, DS_SHA256_LEN) == 0;
}

/* 1 when a queued job (of any run) computes x's delta. */
static int computing(const ds_sync_t *sy, const struct ds_run_prefetch *x)
{
    for (size_t i = 0; i < sy->npf_fly; i++)
        if (!sy->pf_fly[i]->waiting && same_delta(sy->pf_fly[i], x))
            return 1;
    return 0;
}

/* Lists x; returns 0 or DS_ENOMEM (then x is not deduplicated). */
static int fly_add(ds_sync_t *sy, struct ds_run_prefetch *x)
{
    if (sy->npf_fly == sy->pf_fly_cap) {
        size_t cap = sy->pf_fly_cap ? 2 * sy->pf_fly_cap : 16;
        struct ds_run_prefetch **v = realloc(sy->pf_fly, cap * sizeof(*v));

        if (v == NULL)
            return DS_ENOMEM;
        sy->pf_fly = v;
        sy->pf_fly_cap = cap;
    }
    sy->pf_fly[sy->npf_fly++] = x;
    x->flying = 1;
    return 0;
}

/* x leaves the list; when its job computed a delta, the slots waiting for
 * it may queue theirs now, and their runs are woken. */
static void fly_land(ds_sync_t *sy, struct ds_run_prefetch *x)
{
    int owner = !x->waiting;
    size_t i = 0;

    if (!x->flying)
        return;
    x->flying = 0;
    x->waiting = 0;
    while (i < sy->npf_fly) {
        struct ds_run_prefetch *y = sy->pf_fly[i];

        if (y != x && !(owner && y->waiting && same_delta(x, y))) {
            i++;
            continue;
        }
        sy->pf_fly[i] = sy->pf_fly[--sy->npf_fly];
        if (y == x)
            continue;
        y->flying = 0;
        y->waiting = 0;
        if (y->r->wake != NULL)
            y->r->wake(y->r->wake_arg);
    }
}

static void prefetch_work(ds_run_job_t *j)
{
    struct ds_run_prefetch *p = (struct ds_run_prefetch *)j;

    p->news = ds__sender_prefetch(p->r->sy, p->fmt, p->it, &p->src, &p->stop);
}

/* Queues x's job, listed as computing its delta. */
static void queue(struct ds_run *r, struct ds_run_prefetch *x, ds_run_wait_t *w)
{
    x->held = 0;
    (void)fly_add(r->sy, x); /* out of memory: computed without waiting for others */
    x->job.fn = prefetch_work;
    ds__run_queue_job(w, &x->job);
}

/* Slot x now serves item it (format fmt), keyed by its pair. */
static void slot_init(struct ds_run *r, struct ds_run_prefetch *x, const ds_plan_item_t *it,
                      int fmt)
{
    memset(x, 0, sizeof(*x));
    x->r = r;
    x->it = it;
    x->fmt = fmt;
    memcpy(x->bsha, it->basis_sha256, DS_SHA256_LEN);
    memcpy(x->tsha, it->sha256, DS_SHA256_LEN);
}

/* x's store paths are dropped (no job is queued for it). */
static void slot_clear(struct ds_run_prefetch *x)
{
    ds__sender_prefetch_clear(&x->src);
}

void ds__run_prefetch_collect(struct ds_run *r)
{
    for (size_t s = 0; s < DS_RUN_PREFETCH; s++) {
        struct ds_run_prefetch *x = &r->pf[s];

        if (!x->job.queued || !x->job.done)
            continue;
        fly_land(r->sy, x);
        if (x->warm) {
            x->warm = 0;
            r->sy->warm_fly--;
            r->warm_landed++;
        } else {
            r->pf_state[x->idx] = 2;
            if (x->news && r->sd != NULL)
                ds__sender_note_prefetch(r->sd, x->idx, x->news);
        }
        slot_clear(x);
        x->job.queued = 0;
    }
}

void ds__run_prefetch_forget(struct ds_run *r)
{
    for (size_t s = 0; s < DS_RUN_PREFETCH; s++) {
        fly_land(r->sy, &r->pf[s]);
        if (r->pf[s].warm) /* the job is not counted once nobody collects it */
            r->sy->warm_fly--;
        r->pf[s].warm = 0;
    }
}

/* 1 when a slot (of any run) waits for x's job. */
static int awaited(const ds_sync_t *sy, const struct ds_run_prefetch *x)
{
    for (size_t i = 0; i < sy->npf_fly; i++)
        if (sy->pf_fly[i]->waiting && same_delta(sy->pf_fly[i], x))
            return 1;
    return 0;
}

void ds__run_prefetch_stop(struct ds_run *r)
{
    int ph = r->phase;

    if (!r->cancelling && !r->sy->cancel &&
        (ph < RP_COMMIT || ph == RP_RETRY || ph == RP_RETRY_WAIT))
        return;
    for (size_t s = 0; s < DS_RUN_PREFETCH; s++) {
        struct ds_run_prefetch *x = &r->pf[s];

        if (x->job.queued && !x->job.done && !x->waiting && !awaited(r->sy, x))
            atomic_store(&x->stop, 1);
    }
}

/* Plan items a warm-up step looks at, at most (each cached one costs an
 * open of its cache entry on the loop thread); the next step goes on. */
#define WARM_LOOKS 256

/* Fills x with the warm-up plan's next DELTA item that is not cached and
 * not computing: 1, or 0 when none is left, or -1 when *looks ran out. */
static int warm_next(struct ds_run *r, struct ds_run_prefetch *x, unsigned *looks)
{
    while (r->warm_next < r->warm->n) {
        const ds_plan_item_t *it = &r->warm->items[r->warm_next];

        if ((*looks)-- == 0)
            return -1;
        r->warm_next++;
        int fmt = job_fmt(r, r->warm_fmt);

        if (it->method != DS_PLAN_DELTA || (r->only && !ds_config_list_has(r->only, it->klass)) ||
            ds_delta_cache_ready(r->sy->dc, fmt, it->basis_sha256, it->sha256))
            continue;
        slot_init(r, x, it, fmt);
        if (!computing(r->sy, x) && ds__sender_prefetch_plan(r->sy, it, &x->src) == 1) {
            ds__sender_prefetch_chunks(r->sy, it, &x->src);
            return 1;
        }
        slot_clear(x); /* another run's job, or no basis (or no memory): the sender sees */
    }
    return 0;
}

/* 1 when r's plan sends no delta whatever its target holds (sync_run.c's
 * whole_only): an SFTP transport (transport = sftp, or auto once it fell
 * back), or a share remembered to refuse server-side copy. */
static int whole_only(const struct ds_run *r)
{
    const char *t = r->srv->transport;

    return r->no_basis || (r->raw != NULL && (r->raw->caps & DS_TRANSPORT_WHOLE_ONLY)) ||
           (strncmp(r->srv->url, "ssh://", 6) == 0 && t != NULL && strcmp(t, "sftp") == 0);
}

void ds__run_warm(struct ds_run *r, ds_run_wait_t *w)
{
    unsigned looks = WARM_LOOKS;
    int ph = r->phase, rc;

    if (r->mode != DS_SYNC_RUN || r->sd != NULL || r->warm_done || r->sy->cancel ||
        (ph != RP_OPEN && ph != RP_READY && ph != RP_HASH))
        return;
    if (whole_only(r)) {
        r->warm_done = 1; /* its jobs in flight finish; nobody would send what they compute */
        return;
    }
    if (r->warm == NULL) {
        if (ds_sync_plan_known(r->sy, r->srv, &r->warm) < 0 || r->warm == NULL) {
            r->warm_done = 1; /* no manifest known (a first sync): nothing to guess from */
            return;
        }
        r->warm_fmt = ds__sync_server_fmt(r->sy, r->srv);
    }
    ds__run_retain_early(r, r->warm, RT_WARM, ds__sync_mono_ns(), w);
    for (size_t s = 0; s < DS_RUN_PREFETCH && r->sy->warm_fly < DS_SYNC_WARM; s++) {
        struct ds_run_prefetch *x = &r->pf[s];

        if (x->job.queued || x->held)
            continue;
        if ((rc = warm_next(r, x, &looks)) <= 0) {
            r->warm_done = rc == 0;
            return;
        }
        x->warm = 1;
        r->sy->warm_fly++;
        queue(r, x, w);
    }
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

    ds__run_prefetch_collect(r);
    if (ds__sender_whole(r->sd))
        return 0; /* whole files from now on: no delta is wanted */
    for (size_t s = 0; s < DS_RUN_PREFETCH; s++)
        if (r->pf[s].held && !r->pf[s].waiting) /* the job it waited for landed */
            queue(r, &r->pf[s], w);
    if (r->pf_next < first)
        r->pf_next = first;
    for (size_t s = 0; s < DS_RUN_PREFETCH && r->pf_next < p->n; s++) {
        struct ds_run_prefetch *x = &r->pf[s];
        const ds_plan_item_t *it;
        int rc;

        if (x->job.queued || x->held)
            continue;
        while (r->pf_next < p->n && p->items[r->pf_next].method != DS_PLAN_DELTA)
            r->pf_next++;
        if (r->pf_next >= p->n || r->pf_next >= first + 4 * DS_RUN_PREFETCH)
            break;
        it = &p->items[r->pf_next];
        slot_init(r, x, it, job_fmt(r, ds__sender_delta_fmt(r->ss)));
        x->idx = r->pf_next++;
        rc = ds__sender_prefetch_plan(r->sy, it, &x->src);
        if (rc < 0) {
            slot_clear(x);
            return ds__run_fail(r, rc, "out of memory");
        }
        if (rc == 0)
            continue; /* no readable basis: the sender finds out inline */
        if (x->fmt & DS_DELTA_QUICK)
            ds__sender_set_quick(r->sd, x->idx);
        if (ds_delta_cache_ready(r->sy->dc, x->fmt, it->basis_sha256, it->sha256)) {
            slot_clear(x); /* cached: the sender reads it inline, no job */
            continue;
        }
        r->pf_state[x->idx] = 1;
        if (computing(r->sy, x) && fly_add(r->sy, x) == 0) {
            x->held = x->waiting = 1; /* fly_land wakes the run */
            continue;
        }
        ds__sender_prefetch_chunks(r->sy, it, &x->src);
        queue(r, x, w);
    }
    return 0;
}

void ds__run_warm_end(struct ds_run *r)
{
    r->warm_done = 1;
    if (r->warm != NULL)
        ds_log(DS_LOG_DEBUG, "server %s: %zu deltas computed while it connected", r->srv->name,
               r->warm_landed);
}

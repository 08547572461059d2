/*
 * Caps pacing: a transport decorator that writes only what the server's
 * leaf of the limiter grants (ratelimit.h). When the grant is short, the
 * write stops there and the run is throttled until the grant's wake time:
 * the engine then stops polling for POLLOUT and arms the run's timer
 * instead. Control bytes at the head of the session's output (lease
 * renewals, cancels: ds_session_ctl_pending) pass a cap that holds them
 * back, even a paused one, so a slow or paused link never costs the lease.
 * Once the sync is cancelled every byte passes: the wind-down (FILE_ABORT,
 * MANIFEST_COMMIT, lease release, BYE) is small, and a paused window must
 * not keep a cancelled run from ending. Control bytes let through are
 * charged as debt all the same, and so is what the inner transport's link
 * sent beyond the grants (its wire_out: SSH framing, MACs, padding, window
 * adjusts), so the cap holds for what crosses the link. A grant the link
 * does not take (a full pipe or socket) goes back to the limiter
 * (ds_rl_return): lost, it would cost the run its rate whenever the link
 * is the shorter queue.
 */
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "engine_int.h"

uint64_t ds__pace_allow(ds_rl_t *rl, ds_rl_node_t *leaf, int64_t now, uint64_t want, uint64_t ctl,
                        int64_t *wake, uint64_t *charged)
{
    ds_rl_grant_t g;

    *wake = DS_RL_NEVER;
    *charged = 0;
    if (rl == NULL || leaf == NULL || want == 0)
        return want;
    ds_rl_request(rl, leaf, now, want, &g);
    *charged = g.bytes;
    if (g.bytes < want)
        *wake = g.wake;
    if (g.bytes < ctl) { /* control frames jump a cap that holds them: as debt */
        uint64_t pass = ctl < want ? ctl : want;

        ds_rl_charge(rl, leaf, now, pass - g.bytes); /* *charged: the grant only */
        return pass;
    }
    return g.bytes;
}

void ds__pace_wrote(ds_rl_t *rl, ds_rl_node_t *leaf, int64_t now, uint64_t charged, uint64_t wrote)
{
    if (rl != NULL && leaf != NULL && charged > wrote)
        ds_rl_return(rl, leaf, now, charged - wrote);
}

static struct ds_pace *of(ds_transport_t *t)
{
    return (struct ds_pace *)t;
}

/* Keeps the inner transport's last error visible through the wrapper. */
static void copy_err(struct ds_pace *pc)
{
    memcpy(pc->base.err, pc->inner->err, sizeof(pc->base.err));
}

/* Charges what the link sent beyond what was charged (SSH overhead). */
static void settle(struct ds_pace *pc, int64_t now)
{
    uint64_t wire = pc->inner->wire_out;

    if (pc->rl == NULL || pc->leaf == NULL || wire <= pc->charged)
        return;
    ds_rl_charge(pc->rl, pc->leaf, now, wire - pc->charged);
    pc->charged = wire;
}

static long pace_write(ds_transport_t *t, const void *p, size_t n)
{
    struct ds_pace *pc = of(t);
    int64_t now = ds__sync_mono_ns(), wake;
    uint64_t ctl = pc->cancel != NULL && *pc->cancel ? n
                   : pc->ss != NULL                  ? ds_session_ctl_pending(pc->ss)
                                                     : 0;
    uint64_t charged, ok = ds__pace_allow(pc->rl, pc->leaf, now, n, ctl, &wake, &charged);
    long w;

    if (ok < n) {
        pc->throttled = 1;
        pc->wake = wake;
    }
    if (ok == 0)
        return 0;
    pc->idle_told = 0;
    w = ds_transport_write(pc->inner, p, (size_t)ok);
    if (w < 0) {
        copy_err(pc);
        return w;
    }
    pc->charged += (uint64_t)w;
    if ((uint64_t)w < ok) {
        /* the link (a full pipe or socket), not the cap, holds the rest:
         * what it did not take goes back to the buckets, and the run waits
         * for the link to drain, not for the cap's timer */
        ds__pace_wrote(pc->rl, pc->leaf, now, charged, (uint64_t)w);
        pc->throttled = 0;
    }
    settle(pc, now);
    return w;
}

static long pace_read(ds_transport_t *t, void *buf, size_t cap)
{
    struct ds_pace *pc = of(t);
    long r = ds_transport_read(pc->inner, buf, cap);

    if (r < 0)
        copy_err(pc);
    settle(pc, ds__sync_mono_ns()); /* a read may flush a pending packet */
    return r;
}

static int pace_close(ds_transport_t *t)
{
    struct ds_pace *pc = of(t);
    int rc = ds_transport_close(pc->inner);

    copy_err(pc);
    return rc;
}

static int pace_close_step(ds_transport_t *t, int64_t now_ns, int *fd, unsigned *waits,
                           int64_t *wake_ns, int *rc)
{
    struct ds_pace *pc = of(t);
    int done = ds_transport_close_step(pc->inner, now_ns, fd, waits, wake_ns, rc);

    if (done)
        copy_err(pc);
    return done;
}

static void pace_kill(ds_transport_t *t)
{
    ds_transport_kill(of(t)->inner);
}

/* The wrapper's memory belongs to the engine's slot: free only the inner
 * transport. */
static void pace_free(ds_transport_t *t)
{
    struct ds_pace *pc = of(t);

    ds_transport_free(pc->inner);
    pc->inner = NULL;
}

/* The inner transport decides which directions it waits on (libssh2 may
 * need to read to be able to write). */
static unsigned pace_waits(const ds_transport_t *t, int have_output)
{
    const struct ds_pace *pc = (const struct ds_pace *)t;

    return ds_transport_waits(pc->inner, have_output);
}

static uint64_t pace_unread(const ds_transport_t *t)
{
    return ds_transport_unread(((const struct ds_pace *)t)->inner);
}

static const ds_transport_ops_t pace_ops = {
    .name = "paced",
    .unread = pace_unread,
    .write = pace_write,
    .read = pace_read,
    .close = pace_close,
    .kill = pace_kill,
    .free = pace_free,
    .waits = pace_waits,
    .close_step = pace_close_step,
};

ds_transport_t *ds__pace_wrap(void *ctx, ds_transport_t *t)
{
    struct ds_pace *pc = ctx;

    memset(&pc->base, 0, sizeof(pc->base));
    pc->ops = pace_ops;
    if (!ds_transport_close_steps(t))
        pc->ops.close_step = NULL; /* stepped only when the inner close is */
    pc->base.ops = &pc->ops;
    pc->base.rfd = t->rfd;
    pc->base.wfd = t->wfd;
    pc->inner = t;
    pc->charged = 0; /* the connect's bytes are charged with the first write */
    return &pc->base;
}

void ds__pace_bind(void *ctx, ds_session_t *ss)
{
    struct ds_pace *pc = ctx;

    pc->ss = ss;
    pc->rate_set = 0;
    ds__pace_rate(pc);
}

int ds__pace_throttled(void *ctx, int64_t *wake)
{
    struct ds_pace *pc = ctx;

    *wake = pc->wake;
    return pc->throttled;
}

void ds__pace_idle(void *ctx, int64_t now)
{
    struct ds_pace *pc = ctx;

    if (pc->idle_told || pc->rl == NULL || pc->leaf == NULL)
        return;
    ds_rl_idle(pc->rl, pc->leaf, now);
    pc->idle_told = 1;
}

uint64_t ds__pace_link_rate(void *ctx)
{
    struct ds_pace *pc = ctx;
    uint64_t bps = pc->leaf ? ds_rl_path_cap(pc->leaf) : DS_BW_OFF;

    return bps == DS_BW_OFF ? 0 : bps == 0 ? 1 : bps / 8 ? bps / 8 : 1;
}

void ds__pace_rate(struct ds_pace *pc)
{
    uint64_t bps = pc->leaf ? ds_rl_path_cap(pc->leaf) : DS_BW_OFF;

    if (pc->ss == NULL || bps == 0 || (pc->rate_set && bps == pc->rate_bps))
        return; /* a paused cap is not a rate: keep the last one */
    ds_session_set_rate(pc->ss, bps == DS_BW_OFF ? 0 : bps / 8);
    ds_transport_rate(pc->inner, bps == DS_BW_OFF ? 0 : bps / 8); /* the pipe's size */
    pc->rate_bps = bps;
    pc->rate_set = 1;
}

/*
 * The bandwidth limiter (see include/distsync/ratelimit.h): hard buckets
 * hold every cap, share buckets divide a parent's rate fairly among its
 * active children, and borrowing from a parent's unused pool keeps the
 * sharing work-conserving. Rates here are bytes per second as doubles;
 * INFINITY means "no limit".
 */
#include <math.h>
#include <stdlib.h>

#include "distsync/bandwidth.h"
#include "distsync/error.h"
#include "distsync/ratelimit.h"

/* Borrowing takes only what a pool holds above this fraction of its depth:
 * a pool that full is not being used by the children it belongs to. */
#define RESERVE 0.75
/* How far below empty a leaf within its share may take the buckets above it. */
#define DEBT 0.5
#define EPS  1e-6
/* A leaf asking again within this of its wake-up was waiting on us. */
#define PROMPT_NS 20000000LL /* bytes: float slack when a refill lands exactly on a need */

struct bucket {
    double rate;    /* bytes per second, INFINITY: no limit */
    double depth;   /* most tokens held */
    double tokens;  /* bytes that may be sent now */
    int64_t last;   /* instant tokens were last brought up to date */
    double spilled; /* tokens lost to a full bucket this period */
};

struct ds_rl_node {
    ds_rl_node_t *parent, *child, *sibling, *next_all;
    uint64_t cap;         /* bits per second, DS_BW_OFF or 0 */
    int64_t until;        /* the caller's next change of cap */
    struct bucket hard;   /* at cap */
    struct bucket share;  /* at the fair share (children of the root and below) */
    double dcap;          /* most this subtree can use: cap, or less when its children are capped */
    double used;          /* bytes granted this period (leaves) */
    double demand;        /* bytes/s a leaf can use: its cap, or what it used when it left its
                             share unused last period */
    int64_t active_until; /* active while now <= active_until */
    int64_t due;          /* wake-up a leaf was given, 0: none pending */
    int prompt;           /* it came back by due + PROMPT_NS this period */
    int active, placed, joined;
};

struct ds_rl {
    ds_rl_node_t root;
    ds_rl_node_t *all;  /* every node but the root, newest first */
    int64_t expiry;     /* earliest active_until of an active node */
    int64_t period_end; /* next review of the leaves' demands */
    int dirty;          /* shares need recomputing */
};

static double depth_of(double rate)
{
    double d = rate * (double)DS_RL_BURST_NS / 1e9;

    return d > DS_RL_MIN_DEPTH ? d : DS_RL_MIN_DEPTH;
}

static void refill(struct bucket *b, int64_t now)
{
    if (isinf(b->rate))
        b->tokens = INFINITY;
    else if (now > b->last) {
        double t = b->tokens + b->rate * (double)(now - b->last) / 1e9;

        b->spilled += t > b->depth ? t - b->depth : 0;
        b->tokens = fmin(b->depth, t);
    }
    if (now > b->last)
        b->last = now;
}

/* Changes b's rate at now; a bucket that was unlimited starts full. */
static void set_bucket(struct bucket *b, double rate, int64_t now)
{
    refill(b, now);
    if (b->rate == rate)
        return;
    b->rate = rate;
    b->depth = isinf(rate) ? INFINITY : depth_of(rate);
    b->tokens = isinf(rate) ? INFINITY : fmin(isinf(b->tokens) ? b->depth : b->tokens, b->depth);
}

/* Seconds until b holds x bytes (0 now, INFINITY never). */
static double time_to(const struct bucket *b, double x)
{
    if (b->tokens + EPS >= x)
        return 0;
    if (b->rate <= 0 || x > b->depth + EPS)
        return INFINITY;
    return (x - b->tokens) / b->rate;
}

static void node_init(ds_rl_node_t *n)
{
    n->cap = DS_BW_OFF;
    n->until = DS_RL_NEVER;
    n->hard = (struct bucket){.rate = INFINITY, .depth = INFINITY, .tokens = INFINITY};
    n->share = n->hard;
    n->demand = INFINITY;
}

int ds_rl_new(ds_rl_t **out)
{
    ds_rl_t *rl = calloc(1, sizeof(*rl));

    *out = rl;
    if (rl == NULL)
        return DS_ENOMEM;
    node_init(&rl->root);
    rl->expiry = DS_RL_NEVER;
    return 0;
}

void ds_rl_free(ds_rl_t *rl)
{
    ds_rl_node_t *n, *next;

    if (rl == NULL)
        return;
    for (n = rl->all; n != NULL; n = next) {
        next = n->next_all;
        free(n);
    }
    free(rl);
}

ds_rl_node_t *ds_rl_root(ds_rl_t *rl)
{
    return &rl->root;
}

int ds_rl_add(ds_rl_t *rl, ds_rl_node_t *parent, ds_rl_node_t **out)
{
    ds_rl_node_t *n = calloc(1, sizeof(*n));

    *out = n;
    if (n == NULL)
        return DS_ENOMEM;
    node_init(n);
    n->parent = parent;
    n->sibling = parent->child;
    parent->child = n;
    n->next_all = rl->all;
    rl->all = n;
    return 0;
}

static double cap_rate(uint64_t bps)
{
    return bps == DS_BW_OFF ? INFINITY : (double)bps / 8.0;
}

void ds_rl_set_rate(ds_rl_t *rl, ds_rl_node_t *n, int64_t now, uint64_t bps, int64_t until)
{
    n->until = until;
    if (n->cap == bps)
        return;
    n->cap = bps;
    set_bucket(&n->hard, cap_rate(bps), now);
    rl->dirty = 1;
}

uint64_t ds_rl_cap(const ds_rl_node_t *n)
{
    return n->cap;
}

uint64_t ds_rl_path_cap(const ds_rl_node_t *n)
{
    uint64_t bps = DS_BW_OFF;

    for (; n != NULL; n = n->parent)
        if (n->cap < bps)
            bps = n->cap;
    return bps;
}

/* Bottom-up: what each subtree can use at most, given its active leaves. */
static double demand(ds_rl_node_t *n)
{
    double sum = 0;
    int any = 0;

    for (ds_rl_node_t *c = n->child; c != NULL; c = c->sibling) {
        if (!c->active)
            continue;
        sum += demand(c);
        any = 1;
    }
    n->dcap = any ? fmin(cap_rate(n->cap), sum) : fmin(cap_rate(n->cap), n->demand);
    return n->dcap;
}

/* Top-down: water-fills rate among n's active children (max-min: a child
 * that can use less than an equal share keeps what it can use, the others
 * share the rest equally), then recurses. */
static void share_out(ds_rl_node_t *n, double rate, int64_t now)
{
    double left = rate, fair = rate;
    int m = 0, fixed = 1;
    ds_rl_node_t *c;

    for (c = n->child; c != NULL; c = c->sibling) {
        c->placed = !c->active;
        m += c->active;
    }
    while (fixed && m > 0 && !isinf(rate)) {
        fixed = 0;
        fair = left / m;
        for (c = n->child; c != NULL; c = c->sibling) {
            if (c->placed || !(c->dcap < fair))
                continue;
            set_bucket(&c->share, c->dcap, now);
            left -= c->dcap;
            m--;
            c->placed = fixed = 1;
        }
    }
    for (c = n->child; c != NULL; c = c->sibling) {
        if (!c->active) {
            set_bucket(&c->share, 0, now);
            continue;
        }
        if (!c->placed || isinf(rate))
            set_bucket(&c->share, isinf(rate) ? INFINITY : fair, now);
        share_out(c, fmin(c->share.rate, cap_rate(c->cap)), now);
    }
}

/* Marks which nodes are active at now and recomputes every share. */
static void recompute(ds_rl_t *rl, int64_t now)
{
    ds_rl_node_t *n;

    rl->expiry = DS_RL_NEVER;
    for (n = rl->all; n != NULL; n = n->next_all) {
        int was = n->active;

        n->active = n->active_until >= now;
        n->joined = n->active && !was;
        if (n->active && n->active_until < rl->expiry)
            rl->expiry = n->active_until;
    }
    rl->root.active = 1;
    demand(&rl->root);
    share_out(&rl->root, cap_rate(rl->root.cap), now);
    for (n = rl->all; n != NULL; n = n->next_all) {
        if (!n->joined || isinf(n->share.rate))
            continue;
        n->share.tokens = n->share.depth; /* a (re)joining child starts with a full share */
        n->share.spilled = 0;
    }
    rl->dirty = 0;
}

/* Every DS_RL_PERIOD_NS: a leaf that let a quarter of its share spill and
 * never came back promptly when woken (it asks less than it is given: a
 * slow link, small files) is held to 1.5 times what it used, so its
 * siblings share the rest fairly instead of racing to borrow it; any other
 * leaf may use its cap again. */
static void review(ds_rl_t *rl, int64_t now)
{
    double secs = (double)(now - (rl->period_end - DS_RL_PERIOD_NS)) / 1e9;

    for (ds_rl_node_t *n = rl->all; n != NULL; n = n->next_all) {
        if (n->child != NULL)
            continue;
        refill(&n->share, now);
        if (n->active && !n->prompt && !isinf(n->share.rate) && secs > 0 &&
            n->share.spilled > 0.25 * n->share.rate * secs)
            n->demand = fmax(1.5 * n->used / secs, DS_RL_MIN_DEPTH / secs);
        else
            n->demand = INFINITY;
        n->used = 0;
        n->prompt = 0;
        n->share.spilled = 0;
    }
    rl->period_end = now + DS_RL_PERIOD_NS;
    rl->dirty = 1;
}

static void touch(ds_rl_t *rl, ds_rl_node_t *leaf, int64_t until)
{
    for (ds_rl_node_t *n = leaf; n != &rl->root; n = n->parent) {
        if (!n->active)
            rl->dirty = 1;
        if (until > n->active_until)
            n->active_until = until;
    }
}

/* The pool a child of p borrows from: p's share bucket, or for the root
 * its hard bucket. NULL when unlimited. */
static struct bucket *pool_of(ds_rl_t *rl, ds_rl_node_t *p)
{
    struct bucket *b = p == &rl->root ? &p->hard : &p->share;

    return isinf(b->rate) ? NULL : b;
}

/* Borrow mode: the leaf's share is used up; each level takes its own share
 * or what its parent's pool holds above RESERVE; nothing goes below empty.
 * Returns what the path from leaf allows now. */
static double allowed_borrow(ds_rl_t *rl, ds_rl_node_t *leaf)
{
    double a = INFINITY;

    for (ds_rl_node_t *n = leaf; n != NULL; n = n->parent) {
        a = fmin(a, n->hard.tokens);
        if (n != &rl->root && !isinf(n->share.rate)) {
            struct bucket *p = pool_of(rl, n->parent);
            double borrow = p ? fmax(0, p->tokens - RESERVE * p->depth) : INFINITY;

            a = fmin(a, fmax(n->share.tokens, borrow));
        }
    }
    return a;
}

/* Share mode: the leaf sends within its own cap and share; the buckets above
 * it may go DEBT of their depth below empty, so the order in which siblings
 * wake does not decide who gets the parent's tokens (their shares already
 * add up to no more than the parent's rate). */
static double allowed_share(ds_rl_t *rl, ds_rl_node_t *leaf)
{
    double a = fmin(leaf->hard.tokens, leaf->share.tokens);

    for (ds_rl_node_t *n = leaf->parent; n != NULL; n = n->parent) {
        a = fmin(a, n->hard.tokens + DEBT * n->hard.depth);
        if (n != &rl->root)
            a = fmin(a, n->share.tokens + DEBT * n->share.depth);
    }
    return a;
}

/* The smallest grant worth waking for: half the leaf's smallest depth, so a
 * wake-up up to half a depth late loses nothing. */
static double quantum(const ds_rl_node_t *leaf)
{
    double q = fmin(leaf->hard.depth, leaf->share.depth);

    for (const ds_rl_node_t *n = leaf->parent; n != NULL; n = n->parent)
        q = fmin(q, fmin(n->hard.depth, n->share.depth));
    return q / 2;
}

/* Seconds until the path from leaf allows x bytes, if nobody else asks. */
static double wait_for(ds_rl_t *rl, ds_rl_node_t *leaf, double x)
{
    double wb = 0, ws = fmax(time_to(&leaf->hard, x), time_to(&leaf->share, x));

    for (ds_rl_node_t *n = leaf; n != NULL; n = n->parent) {
        wb = fmax(wb, time_to(&n->hard, x));
        if (n != leaf) {
            ws = fmax(ws, time_to(&n->hard, x - DEBT * n->hard.depth));
            ws = fmax(ws, time_to(&n->share, x - DEBT * n->share.depth));
        }
        if (n != &rl->root && !isinf(n->share.rate)) {
            struct bucket *p = pool_of(rl, n->parent);
            double tb = INFINITY;

            if (p != NULL && x + RESERVE * p->depth <= p->depth + EPS)
                tb = time_to(p, x + RESERVE * p->depth);
            wb = fmax(wb, fmin(time_to(&n->share, x), tb));
        }
    }
    return fmin(ws, wb);
}

/* Takes g bytes from every bucket on the path: the leaf's own down to
 * empty, the others down to DEBT below. */
static void take(ds_rl_node_t *leaf, double g)
{
    for (ds_rl_node_t *n = leaf; n != NULL; n = n->parent) {
        double floor_h = n == leaf ? 0 : -DEBT * n->hard.depth;
        double floor_s = n == leaf ? 0 : -DEBT * n->share.depth;

        if (!isinf(n->hard.tokens))
            n->hard.tokens = fmax(floor_h, n->hard.tokens - g);
        if (!isinf(n->share.tokens))
            n->share.tokens = fmax(floor_s, n->share.tokens - g);
    }
}

/* The earliest change of a paused node on the path, or 0 when none is paused. */
static int64_t paused_until(ds_rl_node_t *leaf)
{
    int64_t until = 0;

    for (ds_rl_node_t *n = leaf; n != NULL; n = n->parent)
        if (n->cap == DS_BW_PAUSED && (until == 0 || n->until < until))
            until = n->until;
    return until;
}

void ds_rl_request(ds_rl_t *rl, ds_rl_node_t *n, int64_t now, uint64_t want, ds_rl_grant_t *g)
{
    double a, qd, need, w;
    int64_t pause = paused_until(n);

    g->bytes = 0;
    g->wake = now;
    if (pause != 0) {
        g->wake = pause > now ? pause : DS_RL_NEVER;
        touch(rl, n, g->wake == DS_RL_NEVER ? now + DS_RL_IDLE_NS : now);
        return;
    }
    touch(rl, n, now + DS_RL_IDLE_NS);
    if (n->due != 0 && now <= n->due + PROMPT_NS)
        n->prompt = 1;
    n->due = 0;
    if (now >= rl->period_end)
        review(rl, now);
    if (rl->dirty || now > rl->expiry)
        recompute(rl, now);
    for (ds_rl_node_t *x = n; x != NULL; x = x->parent) {
        refill(&x->hard, now);
        refill(&x->share, now);
    }
    a = fmax(allowed_share(rl, n), allowed_borrow(rl, n));
    qd = quantum(n);
    if (a + EPS >= fmin((double)want, qd)) {
        g->bytes = a + EPS >= (double)want ? want : (uint64_t)(a + EPS);
        n->used += (double)g->bytes;
        take(n, (double)g->bytes);
    }
    if (g->bytes == want)
        return;
    need = fmin((double)(want - g->bytes), qd);
    w = wait_for(rl, n, need);
    g->wake = isinf(w) || w > 1e9 ? DS_RL_NEVER : now + (int64_t)ceil(w * 1e9);
    if (g->wake == now)
        g->wake = now + 1;
    n->due = g->wake == DS_RL_NEVER ? 0 : g->wake;
    touch(rl, n, (g->wake == DS_RL_NEVER ? now : g->wake) + DS_RL_IDLE_NS);
}

/* Takes x from b, down to one second of its rate below empty at most. */
static void charge(struct bucket *b, double x)
{
    if (!isinf(b->tokens))
        b->tokens = fmax(fmin(b->tokens, 0) - b->rate, b->tokens - x);
}

void ds_rl_charge(ds_rl_t *rl, ds_rl_node_t *n, int64_t now, uint64_t bytes)
{
    (void)rl;
    n->used += (double)bytes;
    for (ds_rl_node_t *x = n; x != NULL; x = x->parent) {
        refill(&x->hard, now);
        refill(&x->share, now);
        charge(&x->hard, (double)bytes);
        charge(&x->share, (double)bytes);
    }
}

void ds_rl_return(ds_rl_t *rl, ds_rl_node_t *n, int64_t now, uint64_t bytes)
{
    double b = (double)bytes;

    (void)rl;
    n->used = fmax(0, n->used - b);
    for (ds_rl_node_t *x = n; x != NULL; x = x->parent) {
        refill(&x->hard, now);
        refill(&x->share, now);
        if (!isinf(x->hard.tokens))
            x->hard.tokens = fmin(x->hard.depth, x->hard.tokens + b);
        if (!isinf(x->share.tokens))
            x->share.tokens = fmin(x->share.depth, x->share.tokens + b);
    }
}

void ds_rl_idle(ds_rl_t *rl, ds_rl_node_t *n, int64_t now)
{
    n->active_until = now - 1;
    n->due = 0;
    rl->dirty = 1;
}

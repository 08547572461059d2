/*
 * The bandwidth limiter: nested token buckets (global > site > server) that
 * pace every byte a server sends. Pure: time is an argument (nanoseconds on
 * whatever monotonic clock the caller uses), nothing here reads a clock or
 * blocks, so its tests run on a simulated clock.
 *
 * The limiter is a tree. The root is the global cap; its children are the
 * sites (and servers that belong to no site); a site's children are its
 * servers. Only leaves (servers) ask for bytes, and every byte granted
 * counts against each node on the way to the root.
 *
 * Each capped node has a hard bucket at its cap, DS_RL_BURST_NS deep (at
 * least DS_RL_MIN_DEPTH bytes). Grants may be smaller than asked: a sender
 * writes what it was granted and asks again for the rest, so bursts stay a
 * few milliseconds long at every rate. A sender is told to wake when half
 * a depth is available, so a wake-up up to half a depth late loses nothing.
 *
 * Fair sharing: a parent's effective rate is divided among its active
 * children by max-min (water-filling): a child that can use less than an
 * equal share (its own cap, or what it used) keeps that, and the rest is
 * shared equally by the others. Each child has a share bucket at that rate.
 * A leaf sending within its share may take the buckets above it down to
 * half a depth below empty, so which sibling wakes first does not decide
 * who gets the parent's tokens (over any interval T a capped node sends at
 * most cap * T + 1.5 depths). A leaf whose share is used up may borrow what
 * its parent's pool holds above three quarters of its depth: tokens that
 * slower or stalled siblings leave unused. Every DS_RL_PERIOD_NS, a leaf
 * that let a quarter of its share spill without coming back when woken (a
 * slow link) is held to 1.5 times what it used. A child is active from its
 * first request until DS_RL_IDLE_NS after it was last due to ask again (or
 * ds_rl_idle); then its share returns to the others.
 *
 * Not thread-safe: one limiter per event loop.
 */
#ifndef DISTSYNC_RATELIMIT_H
#define DISTSYNC_RATELIMIT_H

#include <stdint.h>
#include "distsync/error.h"

#define DS_RL_NEVER     INT64_MAX   /* "no wake-up time is known" */
#define DS_RL_BURST_NS  5000000LL   /* bucket depth: 5 ms of the rate ... */
#define DS_RL_MIN_DEPTH 256         /* ... and at least this many bytes */
#define DS_RL_IDLE_NS   100000000LL /* a child silent this long is inactive */
#define DS_RL_PERIOD_NS 200000000LL /* how often leaves' demands are reviewed */

typedef struct ds_rl ds_rl_t;
typedef struct ds_rl_node ds_rl_node_t;

typedef struct ds_rl_grant {
    uint64_t bytes; /* granted now, 0..want: send exactly this many */
    int64_t wake;   /* when bytes < want: ask again at this instant (a later
                       ask may be granted less if others asked first), or
                       DS_RL_NEVER when paused with no change known */
} ds_rl_grant_t;

/* Returns a new limiter with an uncapped root in *out. 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds_rl_new(ds_rl_t **out);

/* Frees rl and every node; NULL is a no-op. */
void ds_rl_free(ds_rl_t *rl);

/* The root (global cap). Lives as long as rl. */
ds_rl_node_t *ds_rl_root(ds_rl_t *rl);

/* Adds an uncapped child of parent (a node of rl) into *out; it lives as
 * long as rl. Returns 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds_rl_add(ds_rl_t *rl, ds_rl_node_t *parent, ds_rl_node_t **out);

/*
 * Sets node n's cap to bps bits per second (DS_BW_OFF: none, 0: paused)
 * from instant now; bytes already granted stay counted, so a lower rate
 * applies to the very next request. until is when the caller will next
 * change it (a table's next edge, DS_RL_NEVER if none): a paused node's
 * requests are told to wake then. Wake times already handed out were
 * computed at the old rates: the caller asks again at once for the leaves
 * waiting below n. now must not go backwards.
 */
void ds_rl_set_rate(ds_rl_t *rl, ds_rl_node_t *n, int64_t now, uint64_t bps, int64_t until);

/* Node n's cap in bits per second (DS_BW_OFF, 0, or a rate). */
uint64_t ds_rl_cap(const ds_rl_node_t *n);

/* The lowest cap on the path from n to the root (DS_BW_OFF when none):
 * the most n may send, before sharing. */
uint64_t ds_rl_path_cap(const ds_rl_node_t *n);

/*
 * Leaf n asks to send want (> 0) bytes at instant now. Fills *g (see
 * ds_rl_grant_t); the caller sends g->bytes and, when fewer than want,
 * waits until g->wake before asking again. now must not go backwards.
 */
void ds_rl_request(ds_rl_t *rl, ds_rl_node_t *n, int64_t now, uint64_t want, ds_rl_grant_t *g);

/* Leaf n sent bytes it was not granted (SSH framing and encryption counted
 * after the write, control frames let through a cap that held them): they
 * are taken from every bucket on the path at now, below empty if need be
 * (at most one second of each bucket's rate), so later requests wait
 * until the debt is paid and the cap holds for what crossed the link. */
void ds_rl_charge(ds_rl_t *rl, ds_rl_node_t *n, int64_t now, uint64_t bytes);

/*
 * Leaf n sent only part of a grant: bytes (at most what its last request
 * was granted, at instant now) go back to every bucket they were taken
 * from, so a sender whose link took less than granted (a full pipe or
 * socket) loses no rate. Returned tokens never fill a bucket past its
 * depth.
 */
void ds_rl_return(ds_rl_t *rl, ds_rl_node_t *n, int64_t now, uint64_t bytes);

/* Leaf n will not ask again for now (its transfer ended or stalled): its
 * share returns to its siblings at once. */
void ds_rl_idle(ds_rl_t *rl, ds_rl_node_t *n, int64_t now);

#endif

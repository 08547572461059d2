/* Upgrade gate internals shared by gate.c (life cycle, facts, status),
 * gate_admit.c (the decisions) and gate_map.c (string maps). */
#ifndef DS_GATE_INT_H
#define DS_GATE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/gate.h"

/* A string-keyed open-addressing map (linear probing, backward-shift
 * deletion). Keys are borrowed: they must live as long as their entry. */
struct gmap {
    const char **keys;
    void **vals;
    size_t cap, n;
};

void *ds__gmap_get(const struct gmap *m, const char *key);
/* Inserts or replaces. Returns 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds__gmap_put(struct gmap *m, const char *key, void *val);
void ds__gmap_del(struct gmap *m, const char *key);
void ds__gmap_free(struct gmap *m);

struct client {
    char *id;
    int rollout;
    ds_gate_status_t st;
    int site, server, ring; /* -1: none */
    int at_target;          /* reached the rollout's version (counted once) */
    int reported;           /* the last grant's outcome is recorded */
    int in_granted;         /* index in g->granted + 1, 0: not there */
    char from[DS_VERSION_MAX], version[DS_VERSION_MAX];
    char token[DS_GATE_TOKEN_LEN + 1];
    int64_t seq, granted_at, expires_at, at, last_seen;
    uint64_t rate; /* bandwidth reserved by its grant */
};

struct ring {
    const ds_ring_cfg_t *cfg;
    unsigned seen_glob;                 /* clients seen matching members = but not in the file */
    unsigned n[DS_GATE_ST_EXPIRED + 1]; /* clients per status */
    unsigned at_target;
};

struct queue {
    struct client **v;
    size_t n, cap;
};

struct rollout {
    const ds_rollout_cfg_t *cfg;
    struct gmap clients;
    struct ring *rings;
    ds_gate_ring_status_t *outs; /* ds_gate_status's answer, per ring */
    size_t nrings;
    const ds_package_cfg_t **chain; /* the product's packages up to the target, oldest first */
    size_t nchain;
    struct queue *queues; /* one per site */
    int paused;
    char reason[256];
    int opened; /* rings [0, opened) are open */
    int64_t seq_lo, seq_hi;
};

struct ds_gate {
    const ds_config_t *cfg;
    ds_gate_state_t st;
    struct rollout *ro;
    size_t nro;
    struct gmap tokens;      /* token -> client */
    struct client **granted; /* clients holding a slot */
    size_t ngranted, capgranted;
    int64_t next_expiry;
    unsigned used;       /* global slots */
    uint64_t bw;         /* global bandwidth reserved */
    unsigned *site_used; /* per site */
    uint64_t *site_bw;
    unsigned *server_used; /* per server */
    uint8_t *holds;        /* [server * npackages + package] */
    uint8_t *frozen;       /* per server */
    int failed;            /* a write failed: refuse until flushed */
};

/* gate.c */
DS_MUST_CHECK int ds__gate_write(ds_gate_t *g, const struct client *c, const char *detail);
DS_MUST_CHECK int ds__gate_write_ctl(ds_gate_t *g, const struct rollout *r, int64_t now);
struct client *ds__gate_client(ds_gate_t *g, int ri, const char *id);
/* The index in g->ro of the rollout named name, or -1. */
int ds__gate_rollout_index(const ds_gate_t *g, const char *name);
void ds__gate_set_status(ds_gate_t *g, struct client *c, ds_gate_status_t st);
/* Counts c's grant at every level. Returns 0 or DS_ENOMEM (nothing counted). */
DS_MUST_CHECK int ds__gate_take(ds_gate_t *g, struct client *c);
void ds__gate_release(ds_gate_t *g, struct client *c);
DS_MUST_CHECK int ds__queue_push(struct queue *q, struct client *c);
void ds__queue_del(struct queue *q, struct client *c);
unsigned ds__ring_members(const struct ring *r);
/* Whether ring i of r is open at now (latches it open, written through);
 * why says why not. */
DS_MUST_CHECK int ds__gate_ring_open(ds_gate_t *g, struct rollout *r, int i, int64_t now, char *why,
                                     size_t len);

/* c's row as the state interface takes it (detail NULL: ""); its strings
 * are borrowed from g and c. */
ds_gate_row_t ds__gate_row(const ds_gate_t *g, const struct client *c, const char *detail);
/* Instant t as RFC 3339 UTC in buf, or its number of seconds when it has
 * no such text. */
void ds__gate_fmt_time(int64_t t, char *buf, size_t len);

/* gate_admit.c */
void ds__gate_expire(ds_gate_t *g, int64_t now);

#endif

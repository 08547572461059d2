/*
 * The client-upgrade gate: admission of client upgrades under rollouts
 * ([rollout NAME] in the configuration), rings, version chains, leases and
 * caps on concurrent upgrades and their bandwidth, at every level (global,
 * site, distribution server). Each function is one JSON request of the
 * daemon's API (POST /v1/upgrade/request, heartbeat, report, priority;
 * GET /v1/rollouts).
 *
 * Pure: the time is an argument (seconds since the epoch), the state lives
 * in memory with every change written through a ds_gate_state_t
 * (distsync/gate_state.h). The caller calls ds_gate_flush before it answers
 * the clients of the decisions made since the last flush (group commit).
 * The per-server facts (holds the package verified, frozen) are set by
 * ds_gate_server_set, or read from the catalog by ds_gate_refresh.
 *
 * Threads: a ds_gate_t is used by one thread at a time.
 */
#ifndef DISTSYNC_GATE_H
#define DISTSYNC_GATE_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/catalog.h"
#include "distsync/config.h"
#include "distsync/error.h"
#include "distsync/gate_state.h"
#include "distsync/json.h"

typedef struct ds_gate ds_gate_t;

#define DS_GATE_TOKEN_LEN 32 /* hex characters of a grant token */

typedef enum ds_gate_kind {
    DS_GATE_GRANT = 0,
    DS_GATE_WAIT,
    DS_GATE_NONE,
} ds_gate_kind_t;

typedef struct ds_gate_request {
    const char *client;  /* required: ds_client_id_ok */
    const char *product; /* required */
    const char *version; /* required: the client's current version */
    const char *site;    /* NULL: from [site] clients = */
} ds_gate_request_t;

/* A decision. grant: token, version, server, path, expires_in. wait:
 * position (1: next), retry_after, reason (why not now). none: reason
 * ("up to date", "ring closed until ...", "rollout paused: ..."). */
typedef struct ds_gate_decision {
    ds_gate_kind_t kind;
    char token[DS_GATE_TOKEN_LEN + 1];
    char version[DS_VERSION_MAX];
    char server[129];
    char path[1024];
    unsigned expires_in;
    unsigned position;
    unsigned retry_after;
    char reason[256];
} ds_gate_decision_t;

/*
 * Builds a gate over cfg (borrowed, must outlive the gate) and state (its
 * functions copied; the gate closes it in ds_gate_free), loading what state
 * holds: grants with their leases, queues in their order, outcomes,
 * paused rollouts. Leases that ran out by now expire (written through, not
 * flushed: a reader that never flushes writes nothing). Every server
 * starts as holding no package and not frozen (ds_gate_refresh /
 * ds_gate_server_set). Returns 0 and *out, or
 * DS_ENOMEM / the state's error with err naming what failed.
 */
DS_MUST_CHECK int ds_gate_new(const ds_config_t *cfg, const ds_gate_state_t *state, int64_t now,
                              ds_gate_t **out, char *err, size_t errlen);

/* Frees the gate and closes its state (unflushed changes are dropped).
 * NULL is a no-op. */
void ds_gate_free(ds_gate_t *g);

/* Makes every change since the last flush durable (the state's flush).
 * Returns 0 or the state's error. After a write through the state failed,
 * every flush fails (DS_ECATALOG): the decisions since the last flush must
 * not be answered, and the gate must be rebuilt from its state
 * (ds_gate_free, ds_gate_new). */
DS_MUST_CHECK int ds_gate_flush(ds_gate_t *g);

/* Facts about a server: holds = it holds rollout's package of version
 * verified, frozen = no run may write to it (freeze.h). Unknown names are
 * DS_ENOTFOUND. */
DS_MUST_CHECK int ds_gate_server_set(ds_gate_t *g, const char *server, const char *product,
                                     const char *version, int holds, int frozen);

/* Sets every server's facts from the catalog: the last-known manifests
 * against the store (ds_catalog_server_holds) for every package of every
 * rollout, and the freezes at now. Returns 0 or a catalog error. */
DS_MUST_CHECK int ds_gate_refresh(ds_gate_t *g, ds_catalog_t *cat, int64_t now);

/* Reads the rollouts' control rows back from the state (a pause, resume or
 * promote made by another process). Returns 0 or the state's error. */
DS_MUST_CHECK int ds_gate_reload_ctl(ds_gate_t *g);

/*
 * POST /v1/upgrade/request. Fills *out. A client holding a grant gets the
 * same grant again (its remaining time): no second slot. Returns 0, or
 * DS_EUSAGE (an invalid client ID or version, an unknown product or site,
 * no site for the client) with err saying what is wrong (a 4xx).
 */
DS_MUST_CHECK int ds_gate_request(ds_gate_t *g, const ds_gate_request_t *req, int64_t now,
                                  ds_gate_decision_t *out, char *err, size_t errlen);

/* POST /v1/upgrade/heartbeat: extends the lease of token's grant to now +
 * lease; *expires_in (may be NULL) gets the lease. client, when not NULL,
 * must be the token's. Returns 0, DS_ENOTFOUND (unknown token, or its lease
 * expired or was reported), -EACCES (another client's token). */
DS_MUST_CHECK int ds_gate_heartbeat(ds_gate_t *g, const char *token, const char *client,
                                    int64_t now, unsigned *expires_in, char *err, size_t errlen);

/* Which rollout a request is about, for its enrolment token: the rollout
 * of product (the one ds_gate_request would use), or of token's grant
 * (whatever its lease's state). Returns its index in cfg->rollouts, or
 * DS_ENOTFOUND. */
int ds_gate_product_rollout(const ds_gate_t *g, const char *product);
int ds_gate_token_rollout(const ds_gate_t *g, const char *token);

/* A grant's download (GET /v1/upgrade/package/TOKEN): what token's lease
 * lets its client fetch. Strings are borrowed from the configuration
 * (client: from the gate, until its next call). */
typedef struct ds_gate_lease {
    const char *rollout, *client, *site, *server, *path;
    int site_index; /* in cfg->sites */
    int rollout_index;
    int64_t expires_at;
} ds_gate_lease_t;

/* The lease of token at now into *out. Returns 0, DS_ENOTFOUND (unknown
 * token), -ESTALE (its lease expired or ended with a report), DS_ECONFIG
 * (its version is no longer a configured package), with err. */
DS_MUST_CHECK int ds_gate_lease(ds_gate_t *g, const char *token, int64_t now, ds_gate_lease_t *out,
                                char *err, size_t errlen);

/*
 * POST /v1/upgrade/report: the outcome ("success" or "failure") of token's
 * grant, the version the client now runs and a detail (may be NULL). Frees
 * the slot and counts the outcome; after the lease expired it is still
 * recorded (late). client, when not NULL, must be the token's. A failure
 * that puts a ring's failures over max_failure pauses the rollout. Returns
 * 0, DS_ENOTFOUND (unknown token), -EACCES (another client's token),
 * DS_EUSAGE (bad outcome, already reported) with err.
 */
DS_MUST_CHECK int ds_gate_report(ds_gate_t *g, const char *token, const char *client,
                                 const char *outcome, const char *version, const char *detail,
                                 int64_t now, char *err, size_t errlen);

/* POST /v1/upgrade/priority: moves a waiting client to the front of its
 * queue (in every rollout it waits in). Returns 0, or DS_ENOTFOUND when it
 * waits nowhere. */
DS_MUST_CHECK int ds_gate_priority(ds_gate_t *g, const char *client, int64_t now, char *err,
                                   size_t errlen);

/* distsync rollout pause|resume|promote. pause records reason; resume
 * clears a pause (operator's or a tripped threshold's); promote opens the
 * next closed ring whatever its thresholds and time. Returns 0,
 * DS_ENOTFOUND (unknown rollout), DS_EUSAGE (promote: every ring is open). */
DS_MUST_CHECK int ds_gate_pause(ds_gate_t *g, const char *rollout, const char *reason, int64_t now);
DS_MUST_CHECK int ds_gate_resume(ds_gate_t *g, const char *rollout, int64_t now);
DS_MUST_CHECK int ds_gate_promote(ds_gate_t *g, const char *rollout, int64_t now, char *err,
                                  size_t errlen);

/* A ring's counts (GET /v1/rollouts/NAME). */
typedef struct ds_gate_ring_status {
    const char *name;
    unsigned members; /* the thresholds' denominator */
    unsigned granted, waiting, succeeded, failed, expired;
    int open;
    char why[256]; /* closed: why ("opens at ...", "pilot at 12/20 ...") */
} ds_gate_ring_status_t;

typedef struct ds_gate_rollout_status {
    const char *name, *product, *version;
    int paused;
    char reason[256];
    unsigned granted, waiting, succeeded, failed, expired;
    size_t nrings;
    const ds_gate_ring_status_t *rings; /* valid until the next gate call */
    unsigned staged, servers;           /* servers of the sites holding the target package */
} ds_gate_rollout_status_t;

/* The status of rollout at now into *out (rings borrowed from the gate
 * until its next call). Returns 0 or DS_ENOTFOUND. */
DS_MUST_CHECK int ds_gate_status(ds_gate_t *g, const char *rollout, int64_t now,
                                 ds_gate_rollout_status_t *out);

/* Pre-staging of rollout's target package on server i (cfg->servers):
 * 1 it holds the package verified, 0 not yet, -1 the server belongs to no
 * site (it serves no client) or the rollout is unknown. */
int ds_gate_staged(const ds_gate_t *g, const char *rollout, size_t i);

/* Slots and bandwidth in use against each cap: level "global", "site" or
 * "server" and name (NULL for global). *used, *cap (0: no cap), *bw_used,
 * *bw_cap (bits/s; UINT64_MAX: no cap). Returns 0 or DS_ENOTFOUND. */
DS_MUST_CHECK int ds_gate_usage(const ds_gate_t *g, const char *level, const char *name,
                                unsigned *used, unsigned *cap, uint64_t *bw_used, uint64_t *bw_cap);

/* Writes st as one JSON object (GET /v1/rollouts/NAME and rollout status
 * --json): name, product, version, state ("active"|"paused"), reason,
 * counts, staged/servers, rings [{name, members, open, why, counts}]; with
 * g (may be NULL): caps [{level, name, used, cap, bw_used, bw_cap}] (the
 * slots in use against every cap, shared by all rollouts) and queues
 * [{site, waiting}] (this rollout's queue at each site). */
void ds_gate_status_json(const ds_gate_t *g, const ds_gate_rollout_status_t *st, ds_json_t *j);

#endif

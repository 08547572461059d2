/* A rollout's status as JSON (the API's GET /v1/rollouts, the CLI's
 * rollout status --json and, through the API, the web status page). */

#include "gate_int.h"

static void counts(ds_json_t *j, unsigned granted, unsigned waiting, unsigned succeeded,
                   unsigned failed, unsigned expired)
{
    ds_json_kuint(j, "granted", granted);
    ds_json_kuint(j, "waiting", waiting);
    ds_json_kuint(j, "succeeded", succeeded);
    ds_json_kuint(j, "failed", failed);
    ds_json_kuint(j, "expired", expired);
}

/* {"level", "name", "used", "cap", "bw_used", "bw_cap"}: cap null when
 * none, bandwidth in bits/s (bw_cap null when none). */
static void cap_json(const ds_gate_t *g, ds_json_t *j, const char *level, const char *name)
{
    unsigned used = 0, cap = 0;
    uint64_t bw_used = 0, bw_cap = DS_BW_OFF;

    if (ds_gate_usage(g, level, name, &used, &cap, &bw_used, &bw_cap) < 0)
        return;
    ds_json_obj_begin(j);
    ds_json_kstr(j, "level", level);
    ds_json_kstr(j, "name", name ? name : "");
    ds_json_kuint(j, "used", used);
    ds_json_key(j, "cap");
    if (cap == 0)
        ds_json_null(j);
    else
        ds_json_uint(j, cap);
    ds_json_kuint(j, "bw_used", bw_used);
    ds_json_key(j, "bw_cap");
    if (bw_cap == DS_BW_OFF)
        ds_json_null(j);
    else
        ds_json_uint(j, bw_cap);
    ds_json_obj_end(j);
}

/* "caps": slots in use against each cap (shared by every rollout);
 * "queues": this rollout's clients waiting per site. */
static void caps_queues(const ds_gate_t *g, const char *rollout, ds_json_t *j)
{
    const ds_config_t *cfg = g->cfg;
    int ri = ds__gate_rollout_index(g, rollout);
    const struct rollout *r = ri < 0 ? NULL : &g->ro[ri];

    ds_json_key(j, "caps");
    ds_json_arr_begin(j);
    cap_json(g, j, "global", NULL);
    for (size_t i = 0; i < cfg->nsites; i++)
        cap_json(g, j, "site", cfg->sites[i].name);
    for (size_t i = 0; i < cfg->nservers; i++)
        if (cfg->servers[i].site != NULL)
            cap_json(g, j, "server", cfg->servers[i].name);
    ds_json_arr_end(j);
    ds_json_key(j, "queues");
    ds_json_arr_begin(j);
    for (size_t i = 0; r != NULL && i < cfg->nsites; i++) {
        ds_json_obj_begin(j);
        ds_json_kstr(j, "site", cfg->sites[i].name);
        ds_json_kuint(j, "waiting", r->queues[i].n);
        ds_json_obj_end(j);
    }
    ds_json_arr_end(j);
}

/* "staging": [{"server", "site", "staged"}]: pre-staging, server by server. */
static void staging(const ds_gate_t *g, const char *rollout, ds_json_t *j)
{
    ds_json_key(j, "staging");
    ds_json_arr_begin(j);
    for (size_t i = 0; i < g->cfg->nservers; i++) {
        int s = ds_gate_staged(g, rollout, i);

        if (s < 0)
            continue;
        ds_json_obj_begin(j);
        ds_json_kstr(j, "server", g->cfg->servers[i].name);
        ds_json_kstr(j, "site", g->cfg->servers[i].site);
        ds_json_kbool(j, "staged", s);
        ds_json_obj_end(j);
    }
    ds_json_arr_end(j);
}

void ds_gate_status_json(const ds_gate_t *g, const ds_gate_rollout_status_t *st, ds_json_t *j)
{
    ds_json_obj_begin(j);
    ds_json_kstr(j, "name", st->name);
    ds_json_kstr(j, "product", st->product);
    ds_json_kstr(j, "version", st->version);
    ds_json_kstr(j, "state", st->paused ? "paused" : "active");
    ds_json_kstr(j, "reason", st->reason);
    counts(j, st->granted, st->waiting, st->succeeded, st->failed, st->expired);
    ds_json_kuint(j, "staged", st->staged);
    ds_json_kuint(j, "servers", st->servers);
    ds_json_key(j, "rings");
    ds_json_arr_begin(j);
    for (size_t i = 0; i < st->nrings; i++) {
        const ds_gate_ring_status_t *r = &st->rings[i];

        ds_json_obj_begin(j);
        ds_json_kstr(j, "name", r->name);
        ds_json_kuint(j, "members", r->members);
        ds_json_kbool(j, "open", r->open);
        ds_json_kstr(j, "why", r->open ? "" : r->why);
        counts(j, r->granted, r->waiting, r->succeeded, r->failed, r->expired);
        ds_json_obj_end(j);
    }
    ds_json_arr_end(j);
    if (g != NULL) {
        caps_queues(g, st->name, j);
        staging(g, st->name, j);
    }
    ds_json_obj_end(j);
}

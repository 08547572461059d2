/* A rollout's status as JSON (the API's GET /v1/rollouts and the CLI). */
#include "distsync/gate.h"

static void counts(ds_json_t *j, unsigned granted, unsigned waiting, unsigned succeeded,
                   unsigned failed, unsigned expired)
{
    ds_json_kuint(j, "granted", granted);
    ds_json_kuint(j, "waiting", waiting);
    ds_json_kuint(j, "succeeded", succeeded);
    ds_json_kuint(j, "failed", failed);
    ds_json_kuint(j, "expired", expired);
}

void ds_gate_status_json(const ds_gate_rollout_status_t *st, ds_json_t *j)
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
    ds_json_obj_end(j);
}

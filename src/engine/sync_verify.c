/*
 * Verify and repair (include/distsync/verify.h) on the ds_sync_t's engine:
 * a batch of verify runs (src/sync/sync_run_verify.c), up to max_servers
 * at once, each a read-only session that HASHes every manifest entry on
 * the target and compares the answers with the manifest, its agent under
 * the engine's loop; repair is a sync run that hashes the drifted paths
 * again under the lease, so the planner treats them as drifted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/verify.h"
#include "engine_int.h"

int ds_sync_verify_all(ds_sync_t *s, const ds_server_cfg_t *const *srv, size_t n,
                       ds_verify_result_t *res)
{
    ds_engine_t *e;
    char err[512];
    int rc = s->cancel ? -ECANCELED : ds__sync_engine(s, &e, err, sizeof(err));

    if (rc == 0)
        return ds__engine_verify(e, srv, n, res);
    for (size_t i = 0; i < n; i++) {
        memset(&res[i], 0, sizeof(res[i]));
        snprintf(res[i].error, sizeof(res[i].error), "server %s: %s", srv[i]->name,
                 rc == -ECANCELED ? "cancelled before it started" : err);
        res[i].rc = rc;
    }
    return rc;
}

int ds_sync_verify(ds_sync_t *s, const ds_server_cfg_t *srv, ds_verify_result_t *res)
{
    (void)ds_sync_verify_all(s, &srv, 1, res);
    return res->rc;
}

int ds_sync_repair(ds_sync_t *s, const ds_server_cfg_t *srv, const ds_verify_result_t *v,
                   ds_sync_result_t *res)
{
    const char **paths = calloc(v->ndrifted + v->nerrors + 1, sizeof(*paths));
    size_t n = 0;
    int rc;

    if (paths == NULL) {
        memset(res, 0, sizeof(*res));
        snprintf(res->error, sizeof(res->error), "server %s: out of memory", srv->name);
        return res->rc = DS_ENOMEM;
    }
    for (size_t i = 0; i < v->ndrifted; i++)
        paths[n++] = v->drifted[i].path;
    for (size_t i = 0; i < v->nerrors; i++)
        paths[n++] = v->errors[i].path;
    s->force_hash = paths;
    s->nforce_hash = n;
    s->run_kind = "repair";
    rc = ds_sync_server(s, srv, DS_SYNC_RUN, res);
    s->force_hash = NULL;
    s->nforce_hash = 0;
    s->run_kind = NULL;
    free(paths);
    return rc;
}

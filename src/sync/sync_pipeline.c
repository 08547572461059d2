/*
 * A run's session options, made before its transport opens, and the
 * requests that go with HELLO. When the catalog records that the server's
 * receiver spoke protocol version 4 or later in its last session and the
 * target cache holds its manifest or listing, the session pipelines:
 * HELLO (offering versions 4..max), LEASE, MANIFEST_GET and LIST with
 * their digests leave in one write and the agent answers them in order (a
 * cached sync waits one round trip less). transport = agent writes them on
 * the agent's channel; transport = auto has its probe of the agent write
 * them (the prelude), and the session's identical bytes are taken by the
 * transport. An agent that refuses that HELLO (older than version 4, or
 * not our protocol) acts on nothing after it, so the run starts over at
 * once without pipelining and ends as it did before; a pipelined attempt
 * that ends before HELLO_OK otherwise forgets the recorded version, so the
 * next run asks HELLO alone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "distsync/error.h"
#include "distsync/events.h"
#include "distsync/log.h"
#include "distsync/proto.h"
#include "sync_run_int.h"

/* ssh:// with the agent (transport = agent or auto). */
static int agent_link(const struct ds_run *r, int *automatic)
{
    const char *mode = r->srv->transport ? r->srv->transport : "auto";

    *automatic = strcmp(mode, "auto") == 0;
    return strncmp(r->srv->url, "ssh://", 6) == 0 && (*automatic || strcmp(mode, "agent") == 0);
}

/* Whether this attempt may pipeline: an agent link, a recorded version
 * of 4 or later, a known copy, and no refusal earlier in the run. */
static int may_pipeline(const struct ds_run *r, int *automatic)
{
    unsigned v = 0;

    if (r->no_pipeline || !agent_link(r, automatic) ||
        (r->so.known_manifest == NULL && r->so.known_list == NULL))
        return 0;
    if (ds_catalog_server_protocol_get(r->sy->cat, r->srv->name, &v) < 0)
        return 0; /* logged by the catalog: ask as on a first sync */
    return v >= DS_PROTO_VERSION_COND;
}

/* See sync_run_int.h. */
void ds__run_opts_drop(struct ds_run *r)
{
    if (r->so.fetched_free)
        r->so.fetched_free(r->so.fetched_arg);
    memset(&r->so, 0, sizeof(r->so));
    free(r->prelude);
    r->prelude = NULL;
    r->nprelude = 0;
}

/* See sync_run_int.h. */
void ds__run_opts_prepare(struct ds_run *r)
{
    ds_sync_t *sy = r->sy;
    int write = r->mode == DS_SYNC_RUN, automatic = 0;

    ds__run_opts_drop(r);
    r->so = (ds_session_opts_t){.console_id = sy->console_id,
                                .host = sy->host,
                                .pid = (uint32_t)getpid(),
                                .write = write,
                                .zstd_level = write ? sy->o.zstd_level : -1,
                                .lease_ttl_s = sy->o.cfg->lease_ttl,
                                .window_files = r->srv->max_files,
                                .zcache = write ? sy->zcache : NULL};
    (void)ds__target_cache_attach(sy->o.cfg->state, r->srv->name, &r->so); /* none: DS_ENOMEM */
    r->pipeline = may_pipeline(r, &automatic);
    r->so.pipeline = r->pipeline;
    if (r->pipeline && automatic &&
        ds_session_prelude(&r->so, &r->prelude, &r->nprelude) < 0) /* only DS_ENOMEM */
        r->pipeline = r->so.pipeline = 0;
}

/* See sync_run_int.h. */
void ds__run_opts_take(struct ds_run *r, ds_session_opts_t *so)
{
    int automatic = 0;

    *so = r->so;
    if (r->pipeline && agent_link(r, &automatic) && automatic)
        r->pipeline = !!(r->raw->caps & DS_TRANSPORT_PRELUDE); /* else SFTP, or no prelude */
    so->pipeline = r->pipeline;
    memset(&r->so, 0, sizeof(r->so)); /* the session owns the target cache now */
    free(r->prelude);
    r->prelude = NULL;
    r->nprelude = 0;
}

/* The attempt's agent refused the pipelined HELLO: the open's probe (auto)
 * or the session (agent) says so. */
static int refused(const struct ds_run *r)
{
    if (r->ss != NULL)
        return ds_session_refused(r->ss);
    return r->res->rc == DS_EVERSION; /* only a refused prelude fails an open so */
}

/* See sync_run_int.h. */
int ds__run_pipeline_failed(struct ds_run *r, int64_t now)
{
    char msg[1200];

    if (!r->pipeline || r->res->rc == 0 || (r->ss != NULL && ds_session_version(r->ss) != 0))
        return 0;
    r->pipeline = 0;
    if (!refused(r) || r->cancelling || r->sy->cancel) {
        /* the agent had the requests and ended, or fell silent, before
         * HELLO_OK (an open that failed otherwise never reached it): the
         * next run asks HELLO alone */
        if ((r->ss != NULL || r->res->rc == -ETIMEDOUT) &&
            ds_catalog_server_protocol_set(r->sy->cat, r->srv->name, 0) < 0)
            ds_log(DS_LOG_WARN, "server %s: cannot forget its recorded protocol version",
                   r->srv->name);
        return 0;
    }
    snprintf(msg, sizeof(msg),
             "the agent refused HELLO for protocol versions %u..%u, sent with the first requests "
             "as its last session spoke one of them (%.700s); it acted on nothing after it: "
             "asking again with every version",
             DS_PROTO_VERSION_COND, DS_PROTO_VERSION_MAX, r->res->error);
    ds_log(DS_LOG_INFO, "server %s: %s", r->srv->name, msg);
    ds__run_event(r, DS_EV_WARNING, DS_LOG_INFO, NULL, "restarting", msg);
    r->no_pipeline = 1;
    r->retry_at = now;
    r->res->rc = 0;
    r->res->error[0] = '\0';
    if (r->ss != NULL)
        ds_transport_kill(r->t); /* the agent has ended its session */
    return 1;
}

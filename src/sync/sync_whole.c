/*
 * Whole files after a server-side copy fallback (smb://). An SMB worker
 * whose server does not copy on its side (it refuses FSCTL_SRV_COPYCHUNK,
 * or smbc_splice silently copied through the worker) refuses every later
 * file that would copy from a basis, with DS_ESRVCOPY (apply_scopy.c),
 * instead of reading the basis across the link. The run then sends that
 * file again whole, and every later file whole: no delta and no COPY of a
 * file on the target, so no basis is read across the link for the rest of
 * the run, and a reconnect within the run plans whole files from the
 * start. The events say so once ("whole files").
 *
 * The refusal is remembered in the catalog (ds_catalog_server_srvcopy_set:
 * when, and a fingerprint of the server's url), so the next runs send whole
 * files from the start instead of paying the probe (up to 256 KiB read
 * across the link) again; after DS_SYNC_SRVCOPY_RECHECK_S, or once the
 * url changed, the record is dropped and the next run probes again.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "distsync/error.h"
#include "distsync/events.h"
#include "distsync/log.h"
#include "distsync/sync.h"
#include "sync_run_int.h"

/* What identified the share when the refusal was seen (FNV-1a of the url,
 * 63 bits): another url (host, share or directory) is probed again. */
static int64_t fingerprint(const ds_server_cfg_t *srv)
{
    uint64_t h = 1469598103934665603ull;

    for (const char *p = srv->url ? srv->url : ""; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return (int64_t)(h >> 1);
}

int ds_sync_srvcopy_off(ds_sync_t *s, const ds_server_cfg_t *srv, int64_t now, int64_t *since,
                        int64_t *until)
{
    int64_t fp;
    int rc;

    *since = *until = 0;
    if (s->cat == NULL || srv->url == NULL || strncmp(srv->url, "smb://", 6) != 0)
        return 0;
    rc = ds_catalog_server_srvcopy_get(s->cat, srv->name, since, &fp);
    if (rc < 0 || *since == 0)
        return rc;
    *until = *since + DS_SYNC_SRVCOPY_RECHECK_S;
    return fp == fingerprint(srv) && now >= *since && now < *until;
}

void ds__run_srvcopy_recall(struct ds_run *r)
{
    int64_t since, until, now = (int64_t)time(NULL);
    char msg[400], a[32], b[32];
    int rc = ds_sync_srvcopy_off(r->sy, r->srv, now, &since, &until);

    if (rc < 0 || since == 0)
        return;
    if (rc == 0) { /* expired, or another share: probed again in this run */
        if (ds_catalog_server_srvcopy_set(r->sy->cat, r->srv->name, 0, 0) < 0)
            ds_log(DS_LOG_WARN, "server %s: cannot forget its server-side copy fallback",
                   r->srv->name);
        ds__run_event(r, DS_EV_WARNING, DS_LOG_INFO, NULL, "server-side copy",
                      "server-side copy refused by this server in an earlier run: tried again");
        return;
    }
    strftime(a, sizeof(a), "%Y-%m-%d %H:%M:%S UTC", gmtime(&(time_t){(time_t)since}));
    strftime(b, sizeof(b), "%Y-%m-%d %H:%M:%S UTC", gmtime(&(time_t){(time_t)until}));
    snprintf(msg, sizeof(msg),
             "server-side copy unavailable on this server (refused at %s, remembered): this run "
             "sends whole files; tried again after %s",
             a, b);
    r->no_basis = 1;
    ds__run_event(r, DS_EV_WARNING, DS_LOG_INFO, NULL, "whole files", msg);
}

int ds__run_srvcopy_refused(struct ds_run *r, const ds_session_result_t *x)
{
    const char *msg = "server-side copy unavailable on this server (its worker refused a file "
                      "rather than read the basis across the link): the rest of the run sends "
                      "whole files";

    if (x->rc != DS_ESRVCOPY || r->sd == NULL || r->cancelling || r->sy->cancel ||
        x->tag >= r->res->plan->n)
        return 0;
    if (ds__sender_resend_whole(r->sd, x->tag) < 0)
        return 0; /* refused again (or out of memory): a failure */
    r->sender_done = 0;
    if (!r->no_basis) {
        r->no_basis = 1;
        ds_log(DS_LOG_WARN, "server %s: %s", r->srv->name, msg);
        ds__run_event(r, DS_EV_WARNING, DS_LOG_WARN, NULL, "whole files", msg);
        if (ds_catalog_server_srvcopy_set(r->sy->cat, r->srv->name, (int64_t)time(NULL),
                                          fingerprint(r->srv)) < 0)
            ds_log(DS_LOG_WARN, "server %s: cannot remember that it refused server-side copy",
                   r->srv->name);
    }
    return 1;
}

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
 */
#include <stdio.h>

#include "distsync/error.h"
#include "distsync/events.h"
#include "distsync/log.h"
#include "sync_run_int.h"

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
    }
    return 1;
}

/*
 * Reconnect after a dropped link (ssh://) or a lost SMB worker (smb://: the
 * worker crashed or was killed, or hung and was killed past the server's
 * timeout): a run whose connection died (the transport failed, or the
 * target fell silent past its timeout) once a session had been up is not
 * failed while retries = is not used up. Its
 * transport closes on a worker, everything the attempt built (session,
 * sender, plan, target listing) is dropped, and after a backoff (the
 * retry_backoff = wait, doubled per attempt up to
 * DS_CONFIG_RETRY_BACKOFF_MAX_S) the run opens a new connection and starts
 * over from HELLO. The resume unit is the file: every file the receiver
 * renamed into place is complete and verified; it is in the manifest (the
 * agent writes it when its input ends) or, when the agent died first,
 * listed and confirmed by HASH and recorded with ADOPT (PROTOCOL.md,
 * section 8), so the new plan does not send it again. A file in flight at
 * the drop is sent again from its start.
 *
 * The lease: the new session asks for it with the same console id. The old
 * agent drops its lock when its input ends (an SMB worker's share-mode
 * lock goes with its connection when it dies), and a lease naming this
 * console is then granted again at once; while the old agent still holds
 * the lock the receiver answers BUSY, which a reconnect counts as one more
 * failed attempt (only when the holder is this console).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/events.h"
#include "distsync/log.h"
#include "sync_run_int.h"

/* The failure of r (res->rc) is a dropped link worth another attempt. */
static int link_dropped(const struct ds_run *r)
{
    int rc = r->res->rc;

    if (rc == DS_ETRANSPORT || rc == -ETIMEDOUT)
        return 1;
    /* the previous attempt's agent still holds the lock: ours */
    return rc == DS_ELEASE && r->attempt > 0 && r->res->failed_files == 0 &&
           strstr(r->res->error, r->sy->console_id) != NULL;
}

/* The wait before reconnect number n (1-based), in milliseconds. */
static int64_t backoff_ms(const struct ds_run *r, unsigned n)
{
    int64_t ms = (int64_t)(r->srv->retry_backoff_s ? r->srv->retry_backoff_s : 1) * 1000;

    for (unsigned i = 1; i < n && ms < DS_CONFIG_RETRY_BACKOFF_MAX_S * 1000LL; i++)
        ms *= 2;
    return ms < DS_CONFIG_RETRY_BACKOFF_MAX_S * 1000LL ? ms
                                                       : DS_CONFIG_RETRY_BACKOFF_MAX_S * 1000LL;
}

/* Whether r's server reconnects: a link (ssh://) or a worker (smb://). */
static int reconnects(const struct ds_run *r)
{
    return strncmp(r->srv->url, "ssh://", 6) == 0 || strncmp(r->srv->url, "smb://", 6) == 0;
}

int ds__run_retry_begin(struct ds_run *r, int64_t now)
{
    char msg[1200];
    int64_t ms;

    if (ds__run_pipeline_failed(r, now))
        return 1; /* at once, not counted: the agent refused our pipelined HELLO */
    if (!reconnects(r) || !r->linked_once || r->cancelling || r->sy->cancel || r->res->rc == 0 ||
        !link_dropped(r))
        return 0;
    if (r->attempt >= r->srv->retries) {
        size_t n = strlen(r->res->error);

        if (r->attempt > 0) /* the last of them failed too: say the bound was reached */
            snprintf(r->res->error + n, sizeof(r->res->error) - n,
                     " (gave up after %u reconnects, retries = %u)", r->attempt, r->srv->retries);
        return 0;
    }
    r->attempt++;
    ms = backoff_ms(r, r->attempt);
    r->retry_at = now + ms * 1000000;
    snprintf(msg, sizeof(msg), "connection lost (%s): reconnecting in %.1f s (retry %u of %u)",
             r->res->error, (double)ms / 1000, r->attempt, r->srv->retries);
    ds_log(DS_LOG_WARN, "server %s: %s", r->srv->name, msg);
    ds__run_event(r, DS_EV_WARNING, DS_LOG_WARN, NULL, "reconnecting", msg);
    r->res->rc = 0;
    r->res->error[0] = '\0';
    r->res->failed_files = 0; /* the new plan tries them again */
    r->first_fail[0] = '\0';
    if (r->ss != NULL && ds_session_phase(r->ss) != DS_SESSION_DONE)
        ds_transport_kill(r->t); /* nothing to wind down on a dead link */
    return 1;
}

int ds__run_retry_idle(const struct ds_run *r)
{
    for (size_t s = 0; s < DS_RUN_PREFETCH; s++)
        if (r->pf[s].job.queued && !r->pf[s].job.done)
            return 0;
    return 1;
}

/* Frees what one attempt built and zeroes its counters. */
static void drop_attempt(struct ds_run *r)
{
    ds__sender_free(r->sd);
    r->sd = NULL;
    r->prog_acked = 0; /* the next sender counts from 0 */
    ds_session_free(r->ss);
    r->ss = NULL;
    if (r->t == NULL)
        r->t = r->raw;
    ds_transport_free(r->t);
    r->t = r->raw = NULL;
    ds__run_prefetch_forget(r);
    for (size_t s = 0; s < DS_RUN_PREFETCH; s++)
        ds__sender_prefetch_clear(&r->pf[s].src);
    memset(r->pf, 0, sizeof(r->pf));
    r->pf_next = 0;
    free(r->pf_state);
    r->pf_state = NULL;
    for (size_t i = 0; i < r->nhashes; i++)
        free((char *)r->hashes[i].path);
    free(r->hashes);
    r->hashes = NULL;
    r->nhashes = r->hash_cap = 0;
    for (size_t i = 0; r->sig && r->res->plan && i < r->res->plan->n; i++)
        free(r->sig[i]);
    free(r->sig);
    free(r->siglen);
    r->sig = NULL;
    r->siglen = NULL;
    ds_plan_free(r->res->plan);
    r->res->plan = NULL;
    free(r->have);
    free(r->want);
    free(r->cls);
    free(r->absent);
    r->have = NULL;
    r->want = NULL;
    r->cls = r->absent = NULL;
    r->nhave = r->nwant = r->ncls = r->nabsent = 0;
}

void ds__run_retry_reset(struct ds_run *r)
{
    const ds_transport_t *t = r->t != NULL ? r->t : r->raw;

    ds__run_notes(r); /* what the old agent said */
    if (r->job_rc < 0 && t != NULL && ds_transport_error(t)[0] != '\0') {
        /* how the old connection or worker ended (an SMB worker's signal) */
        ds_log(DS_LOG_WARN, "server %s: %s", r->srv->name, ds_transport_error(t));
        ds__run_event(r, DS_EV_WARNING, DS_LOG_WARN, NULL, "connection ended",
                      ds_transport_error(t));
    }
    if (r->ss != NULL) {
        const ds_session_stats_t *st = ds_session_stats(r->ss);

        r->prev.out += st->bytes_out;
        r->prev.in += st->bytes_in;
        r->prev.literal += st->literal_raw + st->delta_raw;
        r->prev.delta += st->delta_raw;
    }
    if (r->raw != NULL) {
        r->prev.wire_out += r->raw->wire_out;
        r->prev.wire_in += r->raw->wire_in;
    }
    if (r->has_pace)
        r->pace.bind(r->pace.ctx, NULL); /* the session goes away */
    drop_attempt(r);
    r->sender_done = r->manifest_done = 0;
    r->files_done = r->files_total = r->bytes_done = r->bytes_total = 0;
    r->moved = 0;
    r->silent_ns = r->wait_since = 0;
    r->job_rc = 0;
    r->job_err[0] = '\0';
    r->open_job.queued = r->close_job.queued = r->send_job.queued = 0;
    r->reaped = 0;
    r->close_cancel_at = 0;
    r->close_killed = 0;
}

int ds__run_retry_wait(struct ds_run *r, int64_t now, ds_run_wait_t *w)
{
    if (r->sy->cancel) {
        r->cancelling = 1;
        ds__run_fail(r, -ECANCELED, "cancelled");
        return -1;
    }
    if (now >= r->retry_at)
        return 1;
    if (r->retry_at < w->wake_ns)
        w->wake_ns = r->retry_at;
    return 0;
}

void ds__run_retry_resumed(struct ds_run *r)
{
    char msg[160];

    r->linked_once = 1;
    if (r->attempt == 0)
        return;
    snprintf(msg, sizeof(msg), "reconnected (retry %u of %u): the run resumes", r->attempt,
             r->srv->retries);
    ds_log(DS_LOG_INFO, "server %s: %s", r->srv->name, msg);
    ds__run_event(r, DS_EV_WARNING, DS_LOG_INFO, NULL, "reconnected", msg);
}

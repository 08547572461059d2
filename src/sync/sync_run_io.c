/*
 * A run's transport and worker jobs (sync_run.c drives them): the
 * transport opened step by step on the loop (ssh://: the socket it waits
 * for and its deadline go into the run's wait) or on a worker, the agent
 * started on the loop thread (the engine's spawner) and reaped there after
 * the close on a worker; the retain job; the sender's next block, read and
 * compressed on a worker.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "distsync/error.h"
#include "distsync/events.h"
#include "distsync/log.h"
#include "sync_run_int.h"

#define fail ds__run_fail

/* How often a run whose retain job waits for another run's looks again. */
#define RETAIN_POLL_NS 50000000LL

/* What the run's transport connects to (strings borrowed from the run's
 * server and sync, which outlive it). */
static void transport_cfg(const struct ds_run *r, ds_transport_cfg_t *tc)
{
    *tc = (ds_transport_cfg_t){.url = r->srv->url,
                               .mode = r->srv->transport,
                               .agent = r->srv->agent,
                               .no_fsync = r->sy->o.no_fsync,
                               .timeout_s = r->srv->timeout_s,
                               .create_root = r->srv->create_root,
                               .server = r->srv->name,
                               .identity = r->srv->identity,
                               .known_hosts = r->srv->known_hosts,
                               .connect_timeout_s = r->srv->connect_timeout_s,
                               .test_dns_delay_ms = r->sy->o.test_dns_delay_ms,
                               .verify_readback = r->srv->verify_readback,
                               .smb_credentials = r->srv->credentials,
                               .smb_encrypt = r->srv->encrypt,
                               .smb_retain = r->sy->retain_dir,
                               .smb_connections = ds_config_smb_connections(r->srv),
                               .test_sftp_corrupt = r->sy->o.test_sftp_corrupt,
                               .spawner = r->spawner,
                               .resolver = r->resolver};
}

static void open_work(ds_run_job_t *j)
{
    struct ds_run *r = (struct ds_run *)((char *)j - offsetof(struct ds_run, open_job));
    ds_transport_cfg_t tc;

    transport_cfg(r, &tc);
    r->job_rc = ds_transport_open(&tc, &r->raw, r->job_err, sizeof(r->job_err));
}

void ds__run_send_work(ds_run_job_t *j)
{
    struct ds_run *r = (struct ds_run *)((char *)j - offsetof(struct ds_run, send_job));

    ds__sender_work(r->sd);
}

void ds__run_close_work(ds_run_job_t *j)
{
    struct ds_run *r = (struct ds_run *)((char *)j - offsetof(struct ds_run, close_job));

    r->job_rc = ds_transport_close(r->t);
}

static void retain_work(ds_run_job_t *j)
{
    struct ds_run *r = (struct ds_run *)((char *)j - offsetof(struct ds_run, retain_job));

    ds__sync_retain_work(r->rt);
}

void ds__run_queue_job(ds_run_wait_t *w, ds_run_job_t *j)
{
    size_t n = 0;

    while (w->jobs[n] != NULL)
        n++;
    j->queued = 1;
    j->done = 0;
    w->jobs[n] = j;
}

/* Checks the target, then starts the open: stepped on the loop when the
 * transport can (ssh://), else on a worker. */
int ds__run_connect_begin(struct ds_run *r, ds_run_wait_t *w)
{
    ds_transport_cfg_t tc;
    int rc = ds_config_check_target(r->sy->o.cfg, r->srv, r->job_err, sizeof(r->job_err));

    if (rc < 0)
        return fail(r, rc, "%s", r->job_err); /* never sync the store into itself */
    ds__run_opts_prepare(r);
    transport_cfg(r, &tc);
    tc.prelude = r->prelude;
    tc.prelude_len = r->nprelude;
    r->job_rc = 0;
    rc = ds_transport_open_begin(&tc, ds__sync_mono_ns(), &r->opening, r->job_err,
                                 sizeof(r->job_err));
    if (rc < 0)
        return fail(r, rc, "%s", r->job_err);
    if (rc == 0) {
        r->open_job.fn = open_work;
        ds__run_queue_job(w, &r->open_job);
    }
    return 0;
}

/* What a stepped open or close waits for: fd (DS_TRANSPORT_WAIT_* in
 * waits) or wake. The socket is watched for reading throughout (as the open
 * transport's is): one poll handle from the connect on, never a second one
 * on the same fd while the first is still registered. */
static void wait_transport(ds_run_wait_t *w, int fd, unsigned waits, int64_t wake)
{
    w->rfd = fd;
    w->wfd = (waits & DS_TRANSPORT_WAIT_WRITE) ? fd : -1;
    w->wev = (waits & DS_TRANSPORT_WAIT_WRITE) ? POLLOUT : 0;
    if (wake < w->wake_ns)
        w->wake_ns = wake;
}

/* See sync_run_int.h. A cancel stops a stepped open at once (a worker's
 * open is waited for). */
int ds__run_open_step(struct ds_run *r, int64_t now, ds_run_wait_t *w)
{
    int64_t wake;
    unsigned waits;
    int fd, rc;

    if (r->open_job.queued) { /* a worker opens (a mode that is not stepped) */
        if (!r->open_job.done)
            return 0;
        r->open_job.queued = 0;
        return 1;
    }
    if (r->sy->cancel) { /* nothing sent yet: the open just stops */
        r->cancelling = 1;
        r->job_rc = -ECANCELED;
        snprintf(r->job_err, sizeof(r->job_err), "cancelled");
        return 1;
    }
    rc = ds_transport_open_step(r->opening, now, &fd, &waits, &wake, &r->raw, r->job_err,
                                sizeof(r->job_err));
    if (rc == 0) {
        wait_transport(w, fd, waits, wake);
        return 0;
    }
    r->job_rc = rc < 0 ? rc : 0;
    return 1;
}

/* The transport is open: start a session on it. */
int ds__run_connect_end(struct ds_run *r)
{
    int write = r->mode == DS_SYNC_RUN;
    ds_session_opts_t so;
    int rc = r->job_rc;

    ds_transport_open_free(r->opening);
    r->opening = NULL;
    if (rc < 0)
        return fail(r, rc, "%s", r->job_err);
    if (r->raw->note[0] && write)
        ds__run_event(r, DS_EV_WARNING,
                      r->raw->caps & DS_TRANSPORT_REPLACE_GAP ? DS_LOG_WARN : DS_LOG_INFO, NULL,
                      "transport", r->raw->note);
    r->t = r->raw;
    rc = ds_transport_start(r->raw); /* an agent: spawned here, on the loop */
    if (rc < 0)
        return fail(r, rc, "%s", ds_transport_error(r->raw));
    if (r->has_pace) {
        ds_transport_t *p = r->pace.wrap(r->pace.ctx, r->raw);

        if (p == NULL)
            return fail(r, DS_ENOMEM, "out of memory");
        r->t = p;
    }
    ds__run_opts_take(r, &so); /* the target cache: the session's from here on */
    so.remote_basis = !!(r->raw->caps & DS_TRANSPORT_REMOTE_BASIS);
    so.remote_conns = ds_config_smb_connections(r->srv);
    if (r->raw->caps & (DS_TRANSPORT_WHOLE_ONLY | DS_TRANSPORT_PLAIN))
        so.zstd_level = -1; /* an in-process receiver or the SMB worker: only costs CPU */
    rc = ds_session_new(r->t, &so, &r->ss);
    if (rc == 0)
        rc = ds_session_start(r->ss);
    if (rc < 0)
        return fail(r, rc, "cannot start the session: %s", ds_strerror(rc));
    if (r->has_pace)
        r->pace.bind(r->pace.ctx, r->ss);
    return 0;
}

/* The retain job (ds__run_remember or, as sending starts, ds__run_retain_early
 * planned it): queued once the engine's retain handle is free, collected
 * when done; an early one stops once its run failed or was cancelled, and
 * the versions of the committed manifest it left are planned after it.
 * Returns 1 when nothing is left to retain, 0 while the run waits for it. */
int ds__run_retain_step(struct ds_run *r, int64_t now, ds_run_wait_t *w)
{
    if (r->rt == NULL)
        return 1;
    if (r->rt_early && (r->res->rc < 0 || r->cancelling || r->sy->cancel))
        ds__sync_retain_stop(r->rt);
    if (!r->retain_job.queued) {
        if (!ds__sync_retain_begin(r->sy)) { /* another run's job holds it */
            if (now + RETAIN_POLL_NS < w->wake_ns)
                w->wake_ns = now + RETAIN_POLL_NS;
            return 0;
        }
        r->retain_job.fn = retain_work;
        ds__run_queue_job(w, &r->retain_job);
        return 0;
    }
    if (!r->retain_job.done)
        return 0;
    r->retain_job.queued = 0;
    ds__sync_retain_end(r->rt);
    r->rt = NULL;
    r->rt_early = 0;
    if (r->rt_again) { /* committed meanwhile: what the manifest holds besides */
        r->rt_again = 0;
        (void)ds__sync_retain_plan(r->sy, ds_session_manifest(r->ss), r->srv->name, &r->rt);
        return ds__run_retain_step(r, now, w);
    }
    return 1;
}

void ds__run_retain_collect(struct ds_run *r, int64_t now, ds_run_wait_t *w)
{
    if (r->rt != NULL && r->retain_job.queued && r->retain_job.done)
        (void)ds__run_retain_step(r, now, w); /* the handle goes back at once */
}

void ds__run_retain_early(struct ds_run *r, const ds_plan_t *plan, int which, int64_t now,
                          ds_run_wait_t *w)
{
    if (r->rt != NULL) {
        (void)ds__run_retain_step(r, now, w); /* queued once the handle is free */
        return;
    }
    if (r->mode != DS_SYNC_RUN || (r->rt_planned & which) || plan == NULL)
        return;
    r->rt_planned |= which;
    (void)ds__sync_retain_plan_new(r->sy, plan, r->srv->name, &r->rt); /* logged */
    r->rt_early = r->rt != NULL;
    (void)ds__run_retain_step(r, now, w);
}

/* See sync_run_int.h. */
int ds__run_close_step(struct ds_run *r, int64_t now, ds_run_wait_t *w)
{
    int64_t wake = now + DS_RUN_TICK_NS;
    unsigned waits = 0;
    int fd = -1, rc = 0;

    r->close_job.queued = 1;
    r->close_job.fn = NULL; /* stepped here, never a worker's */
    if (r->sy->cancel && r->close_cancel_at == 0)
        r->close_cancel_at = now;
    if (r->close_cancel_at > 0 && !r->close_killed &&
        now >= r->close_cancel_at + DS_RUN_CLOSE_GRACE_NS) {
        ds_transport_kill(r->t); /* a cancelled run does not wait out a hung peer */
        r->close_killed = 1;
    }
    if (ds_transport_close_step(r->t, now, &fd, &waits, &wake, &rc)) {
        r->close_job.done = 1;
        r->job_rc = rc;
        return 1;
    }
    if (r->close_cancel_at > 0 && !r->close_killed &&
        r->close_cancel_at + DS_RUN_CLOSE_GRACE_NS < wake)
        wake = r->close_cancel_at + DS_RUN_CLOSE_GRACE_NS;
    wait_transport(w, fd, waits, wake);
    return 0;
}

/* After the close: waits for the transport's child to exit (its exit
 * wakes the run). Returns 1 once it has, 0 while the run waits. */
int ds__run_reap(struct ds_run *r, int64_t now, ds_run_wait_t *w)
{
    int64_t wake = now + DS_RUN_TICK_NS;
    int rc = ds_transport_reap(r->raw, now, &wake);

    if (rc == 0) {
        if (wake < w->wake_ns)
            w->wake_ns = wake;
        return 0;
    }
    r->reaped = 1;
    if (rc < 0 && r->job_rc == 0) {
        r->job_rc = rc;
        if (r->t != r->raw)
            memcpy(r->t->err, r->raw->err, sizeof(r->t->err));
    }
    return 1;
}

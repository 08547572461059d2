/*
 * One server's run as a phase machine: CONNECT (transport opened on a
 * worker), READY (HELLO, LEASE, MANIFEST_GET, LIST), HASH, PLAN, SIGS,
 * SEND, COMMIT (with the REFRESH and BYE behind it), CLOSE, WIND_DOWN on cancel, the transport
 * closed on a worker, DONE. ds__run_step() advances as far as it can without blocking and says what
 * the run waits for; the engine (engine.c) calls it from its fd, timer and worker callbacks.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "distsync/error.h"
#include "distsync/events.h"
#include "distsync/log.h"
#include "distsync/proto.h"
#include "sync_run_int.h"

#define fail ds__run_fail

/* Iterations of one step before the run yields to the others. */
#define STEP_ROUNDS 64

typedef int (*until_fn)(struct ds_run *r);

static int until_ready(struct ds_run *r)
{
    return ds_session_phase(r->ss) == DS_SESSION_READY;
}

static int until_idle(struct ds_run *r)
{
    return ds_session_idle(r->ss);
}

static int until_sent(struct ds_run *r)
{
    return r->sender_done && ds_session_idle(r->ss);
}

static int until_manifest(struct ds_run *r)
{
    return r->manifest_done && ds_session_idle(r->ss);
}

/* The commit answered, and the refresh and (when sent) BYE behind it. */
static int until_committed(struct ds_run *r)
{
    int ph = ds_session_phase(r->ss);

    return r->manifest_done &&
           (ph == DS_SESSION_DONE || (ph == DS_SESSION_READY && ds_session_idle(r->ss)));
}

static int until_closed(struct ds_run *r)
{
    return ds_session_phase(r->ss) == DS_SESSION_DONE;
}

/* ---- waiting on the target ---- */

static unsigned timeout_s(const struct ds_run *r)
{
    unsigned tmo = r->srv->timeout_s ? r->srv->timeout_s : DS_CONFIG_TIMEOUT_DEFAULT;

    if (r->cancelling && tmo > DS_RUN_WIND_DOWN_S)
        tmo = DS_RUN_WIND_DOWN_S; /* an interrupted user waits seconds, not minutes */
    return tmo;
}

/* Counts the time since the last wait on the target as silence unless a
 * byte moved. Time throttled by a cap or spent on the console's own work
 * is not the target's silence. */
static void watch(struct ds_run *r, int64_t now)
{
    const ds_session_stats_t *st = ds_session_stats(r->ss);

    if (r->wait_since > 0 && now > r->wait_since)
        r->silent_ns += now - r->wait_since;
    r->wait_since = 0;
    if (st->bytes_in + st->bytes_out != r->moved) {
        r->moved = st->bytes_in + st->bytes_out;
        r->silent_ns = 0;
    }
}

/* Fills w with the session's fds; past the server's timeout with no byte
 * moving, the transport is killed and the run fails naming what it waited
 * for. Returns 0 or < 0. */
static int wait_target(struct ds_run *r, int64_t now, ds_run_wait_t *w)
{
    unsigned tmo = timeout_s(r);
    int64_t wake = 0, left;
    int nofds = ds_session_poll(r->ss, &w->rfd, &w->wfd, &w->wev);

    if (r->has_pace && r->pace.throttled(r->pace.ctx, &wake)) {
        w->wev = 0; /* the cap holds the writes: wake at its instant */
        if (wake < w->wake_ns)
            w->wake_ns = wake;
        return 0;
    }
    if (nofds) {
        w->again = 1;
        return 0;
    }
    if (r->silent_ns >= (int64_t)tmo * 1000000000) {
        ds_transport_kill(r->t);
        return fail(r, -ETIMEDOUT, "no response from the target for %u s (during %s)", tmo,
                    ds_session_waiting_for(r->ss));
    }
    r->wait_since = now;
    left = (int64_t)tmo * 1000000000 - r->silent_ns;
    if (now + left < w->wake_ns)
        w->wake_ns = now + left;
    return 0;
}

/* ds_sync_cancel() was called: stop sending, fail the run as cancelled;
 * the WIND_* phases wind the session down. */
static int cancel_run(struct ds_run *r)
{
    r->cancelling = 1;
    if (r->sd)
        ds__sender_cancel(r->sd);
    if (ds_session_phase(r->ss) == DS_SESSION_READY && ds_session_cancel_sends(r->ss) < 0)
        ds_log(DS_LOG_WARN, "server %s: cannot cancel the queued sends", r->srv->name);
    r->sender_done = 1;
    return fail(r, -ECANCELED, "cancelled");
}

/*
 * Steps the session (and the sender) toward done(r). Returns 1 when it
 * holds, 0 when the run waits (w filled), < 0 when the run failed.
 */
static int drive(struct ds_run *r, until_fn done, int64_t now, ds_run_wait_t *w)
{
    int rc;

    watch(r, now);
    for (int i = 0; i < STEP_ROUNDS; i++) {
        if (r->sy->cancel && !r->cancelling)
            return cancel_run(r);
        rc = ds_session_step(r->ss, time(NULL));
        ds__run_notes(r);
        if (rc < 0) {
            if (ds_session_busy(r->ss))
                return ds__run_fail_busy(r, ds_session_error(r->ss));
            return fail(r, rc, "%s", ds_session_error(r->ss));
        }
        watch(r, now);
        if ((rc = ds__run_take_results(r)) < 0)
            return rc;
        ds__run_progress(r);
        if (done(r))
            return 1;
        if (r->sd && !r->sender_done) {
            int room = ds_session_room(r->ss);

            if ((rc = ds__run_prefetch(r, w)) < 0)
                return rc;
            if (r->send_job.queued && r->send_job.done) {
                r->send_job.queued = 0;
                ds__sender_work_back(r->sd);
            }
            rc = ds__sender_pump(r->sd);
            if (rc < 0)
                return fail(r, rc, "sending: %s", ds_strerror(rc));
            r->sender_done = rc == 1;
            if (ds__sender_take_work(r->sd)) {
                r->send_job.fn = ds__run_send_work;
                ds__run_queue_job(w, &r->send_job);
            }
            if ((room && !ds__sender_blocked(r->sd)) || done(r))
                continue; /* new output to write, or finished: no waiting */
        }
        if (ds_session_phase(r->ss) == DS_SESSION_DONE)
            return done(r) ? 1 : fail(r, DS_EPROTO, "session ended early");
        if (r->has_pace && ds_session_idle(r->ss))
            r->pace.idle(r->pace.ctx, now);
        if (ds_session_idle(r->ss) && r->sd && !r->sender_done && ds__sender_blocked(r->sd)) {
            /* a delta computes or a block is read on a worker: its job
             * wakes the run; the fds stay watched (the engine closes the
             * watchers of a run that has none, and one being closed cannot
             * be watched again at once) */
            (void)ds_session_poll(r->ss, &w->rfd, &w->wfd, &w->wev); /* none: -1 */
            w->wev = 0;
            return 0;
        }
        if (ds_session_idle(r->ss) && (r->sd == NULL || r->sender_done) && !done(r))
            return fail(r, DS_EINTERNAL, "sync stalled (nothing in flight)");
        rc = wait_target(r, now, w);
        return rc < 0 ? rc : 0;
    }
    w->again = 1;
    return 0;
}

/* ---- phases ---- */

/* The classes r acts on: the server's, limited to the run's classes. */
static int run_classes(struct ds_run *r)
{
    const ds_strlist_t *c = &r->srv->classes, *only = r->only;
    char path[PATH_MAX];
    struct stat st;

    r->cls = calloc(c->n + 1, sizeof(*r->cls));
    r->absent = calloc(c->n + 1, sizeof(*r->absent));
    if (r->cls == NULL || r->absent == NULL)
        return fail(r, DS_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->n; i++) {
        if (only != NULL && !ds_config_list_has(only, c->v[i]))
            continue;
        r->cls[r->ncls++] = c->v[i];
        /* a class folder gone from the store (renamed, unmounted) is not
         * "every file removed": prune holds back (plan.h) */
        snprintf(path, sizeof(path), "%s/%s", r->sy->o.cfg->store, c->v[i]);
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
            r->absent[r->nabsent++] = c->v[i];
    }
    return 0;
}

static int in_run_classes(const struct ds_run *r, const char *klass)
{
    for (size_t i = 0; i < r->ncls; i++)
        if (strcmp(r->cls[i], klass) == 0)
            return 1;
    return 0;
}

static int desired(struct ds_run *r)
{
    ds_sync_t *s = r->sy;
    int rc = run_classes(r);

    if (rc < 0)
        return rc;
    rc = ds__sync_load(s);
    if (rc == 0 && (rc = ds_catalog_scanned(s->cat, NULL)) >= 0) {
        r->scanned = rc;
        rc = 0;
    }
    if (rc < 0)
        return fail(r, rc, "reading the catalog: %s", ds_strerror(rc));
    r->want = calloc(s->nrows + 1, sizeof(*r->want));
    if (r->want == NULL)
        return fail(r, DS_ENOMEM, "out of memory");
    for (size_t i = 0; i < s->nrows; i++) {
        const struct sfile_row *x = &s->rows[i];
        ds_plan_want_t *wt;

        if (!in_run_classes(r, x->klass))
            continue;
        wt = &r->want[r->nwant++];
        wt->path = x->path;
        wt->klass = x->klass;
        wt->size = x->size;
        wt->mtime_ns = x->mtime_ns;
        wt->content_id = x->content_id;
        wt->unreadable = x->content_id <= 0;
        wt->gone = x->gone;
        memcpy(wt->sha256, x->sha256, DS_SHA256_LEN);
    }
    return 0;
}

static void input(struct ds_run *r, ds_plan_input_t *in)
{
    memset(in, 0, sizeof(*in));
    in->want = r->want;
    in->nwant = r->nwant;
    in->manifest = ds_session_manifest(r->ss);
    in->have = r->have;
    in->nhave = r->nhave;
    in->hashes = r->hashes;
    in->nhashes = r->nhashes;
    in->classes = r->cls; /* prune never touches a class outside them */
    in->nclasses = r->ncls;
    in->prune = r->srv->prune;
    in->scanned = r->scanned;
    in->max_delete = r->srv->max_delete;
    in->max_delete_pct = r->srv->max_delete_pct;
    in->force = r->sy->o.force;
    in->absent_classes = r->absent;
    in->nabsent = r->nabsent;
    in->whole_only = (r->raw != NULL && (r->raw->caps & DS_TRANSPORT_WHOLE_ONLY)) || r->no_basis;
    ds__sync_oracle(r->sy, &in->oracle);
}

/* Target state known: queues HASH of the uncertain files. Returns the
 * count queued or < 0. */
static int hash_begin(struct ds_run *r)
{
    const ds_session_entry_t *e;
    const char **paths = NULL;
    ds_plan_input_t in;
    size_t n = 0, ne;
    int rc = desired(r);

    if (rc < 0)
        return rc;
    ds_session_listing(r->ss, &e, &ne);
    r->have = calloc(ne + 1, sizeof(*r->have));
    if (r->have == NULL)
        return fail(r, DS_ENOMEM, "out of memory");
    for (size_t i = 0; i < ne; i++)
        r->have[r->nhave++] = (ds_plan_have_t){.path = e[i].path,
                                               .is_file = e[i].type == DS_PROTO_T_FILE,
                                               .size = e[i].size,
                                               .mtime_ns = e[i].mtime_ns};
    input(r, &in);
    rc = ds_plan_need_hash(&in, &paths, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = ds_session_hash(r->ss, paths[i], i);
    for (size_t i = 0; rc == 0 && i < r->sy->nforce_hash; i++, n++) /* repair */
        rc = ds_session_hash(r->ss, r->sy->force_hash[i], n);
    free(paths);
    if (rc < 0)
        return fail(r, rc, "cannot queue HASH: %s", ds_strerror(rc));
    return n > 0;
}

static int plan(struct ds_run *r)
{
    ds_plan_input_t in;
    int rc;

    input(r, &in);
    rc = ds_plan_build(&in, &r->res->plan);
    if (rc < 0)
        return fail(r, rc, "planning: %s", ds_strerror(rc));
    ds__run_warm_end(r);
    for (size_t i = 0; i < r->res->plan->n; i++) {
        const ds_plan_item_t *it = &r->res->plan->items[i];

        if (it->action == DS_PLAN_CREATE || it->action == DS_PLAN_UPDATE ||
            it->action == DS_PLAN_DELETE) {
            r->files_total++;
            r->bytes_total += it->action == DS_PLAN_DELETE ? 0 : it->size;
        }
        if (it->drifted && r->mode == DS_SYNC_RUN)
            ds__run_event(r, DS_EV_WARNING, DS_LOG_WARN, it->path, "drifted",
                          "changed on the target behind our back: repaired");
        if (it->action == DS_PLAN_UNREADABLE && r->mode == DS_SYNC_RUN)
            ds__run_unreadable(r, it);
    }
    return 0;
}

/* rsync fallback: queues SIG for target files the console cannot read.
 * Returns the count queued or < 0. */
static int sigs_begin(struct ds_run *r)
{
    const ds_plan_t *p = r->res->plan;
    size_t n = 0;
    int rc = 0;

    r->sig = calloc(p->n + 1, sizeof(*r->sig));
    r->siglen = calloc(p->n + 1, sizeof(*r->siglen));
    if (r->sig == NULL || r->siglen == NULL)
        return fail(r, DS_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < p->n; i++) {
        const ds_plan_item_t *it = &p->items[i];

        if (it->method != DS_PLAN_RSYNC)
            continue;
        rc = ds_session_sig(r->ss, it->basis, it->target_size, ds__sync_sig_block(it->target_size),
                            8, i);
        n++;
    }
    if (rc < 0)
        return fail(r, rc, "cannot queue SIG: %s", ds_strerror(rc));
    return n > 0;
}

static int send_begin(struct ds_run *r)
{
    int rc = ds__sender_new(r->sy, r->ss, r->res->plan, &r->sd);

    if (rc < 0)
        return fail(r, rc, "out of memory");
    r->pf_state = calloc(r->res->plan->n + 1, 1);
    if (r->pf_state == NULL)
        return fail(r, DS_ENOMEM, "out of memory");
    ds__sender_set_gate(r->sd, ds__run_prefetch_ready, r);
    if (r->no_basis)
        ds__sender_set_whole(r->sd);
    for (size_t i = 0; i < r->res->plan->n; i++) {
        ds__sender_set_sig(r->sd, i, r->sig[i], r->siglen[i]);
        r->sig[i] = NULL;
    }
    return 0;
}

/* ---- the machine ---- */

/* Steps the transport's close on the loop, or queues it on a worker
 * (once); 1 when it is closed (or was never opened) and the retain job is
 * back. */
static int closed(struct ds_run *r, int64_t now, ds_run_wait_t *w)
{
    if (r->t != NULL && (r->close_job.queued ? !r->close_job.done && r->close_job.fn == NULL
                                             : ds_transport_close_steps(r->t)))
        (void)ds__run_close_step(r, now, w);
    else if (r->t != NULL && !r->close_job.queued) {
        r->close_job.fn = ds__run_close_work;
        ds__run_queue_job(w, &r->close_job);
    }
    /* the sender's block in flight comes back before the sender is freed */
    if (!ds__run_retain_step(r, now, w) || (r->t != NULL && !r->close_job.done) ||
        (r->send_job.queued && !r->send_job.done))
        return 0;
    return r->raw == NULL || r->reaped || ds__run_reap(r, now, w); /* the child's exit */
}

/* A failed or cancelled run goes on to reconnect (a dropped link), to
 * wind down or to close. */
static void failed(struct ds_run *r, int64_t now)
{
    if (ds__run_retry_begin(r, now))
        r->phase = RP_RETRY;
    else if (r->cancelling && r->ss)
        r->phase = RP_WIND_READY;
    else
        r->phase = RP_TCLOSE;
}

/* The transport is closed (or was never opened): collect and finish. */
static void end(struct ds_run *r)
{
    if (r->t) {
        int rc = r->job_rc;
        size_t n = strlen(r->res->error);

        if (rc < 0 && r->res->rc == 0)
            fail(r, rc, "%s", ds_transport_error(r->t));
        else if (rc < 0 && strstr(r->res->error, ds_transport_error(r->t)) == NULL)
            snprintf(r->res->error + n, sizeof(r->res->error) - n, " (%s)",
                     ds_transport_error(r->t));
    }
    r->res->bytes_wire = r->prev.wire_out ? r->prev.wire_out : r->prev.out; /* earlier attempts */
    r->res->bytes_received = r->prev.wire_out ? r->prev.wire_in : r->prev.in;
    r->res->bytes_literal = r->prev.literal;
    r->res->bytes_delta = r->prev.delta;
    if (r->ss) {
        const ds_session_stats_t *st = ds_session_stats(r->ss);

        r->res->bytes_wire = r->prev.out + st->bytes_out;
        r->res->bytes_received = r->prev.in + st->bytes_in;
        r->res->bytes_literal += st->literal_raw + st->delta_raw;
        r->res->bytes_delta += st->delta_raw;
    }
    if (r->raw && r->raw->wire_out > 0) { /* a link (ssh): what crossed it, SSH included */
        r->res->bytes_wire = r->prev.wire_out + r->raw->wire_out;
        r->res->bytes_received = r->prev.wire_in + r->raw->wire_in;
    }
    ds__run_notes(r); /* what the agent said as it ended */
    ds__sender_free(r->sd);
    r->sd = NULL;
    ds__run_finish(r);
    r->phase = RP_DONE;
}

/* Steps a winding-down phase: 1 done, 0 waiting, < 0 gave up. */
static int wind(struct ds_run *r, int64_t now, ds_run_wait_t *w)
{
    int rc;

    switch (r->phase) {
    case RP_WIND_READY:
        if (ds_session_phase(r->ss) == DS_SESSION_CLOSING) { /* BYE went with the commit */
            r->phase = RP_WIND_BYE;
            return drive(r, until_closed, now, w);
        }
        if (ds_session_phase(r->ss) == DS_SESSION_CONNECTING &&
            (rc = drive(r, until_ready, now, w)) <= 0)
            return rc;
        if (ds_session_phase(r->ss) != DS_SESSION_READY)
            return -1;
        r->phase = RP_WIND_IDLE;
        /* fall through */
    case RP_WIND_IDLE:
        if ((rc = drive(r, until_idle, now, w)) <= 0)
            return rc;
        r->phase = RP_WIND_BYE;
        if (r->mode == DS_SYNC_RUN && r->sd != NULL) {
            r->manifest_done = 0;
            if (ds_session_commit_manifest(r->ss) < 0)
                return -1;
            r->phase = RP_WIND_COMMIT;
        }
        if (r->phase == RP_WIND_BYE)
            goto bye;
        /* fall through */
    case RP_WIND_COMMIT:
        if ((rc = drive(r, until_manifest, now, w)) <= 0)
            return rc;
        if (ds_session_refresh_manifest(r->ss) < 0)
            goto bye;
        r->phase = RP_WIND_REFRESH;
        /* fall through */
    case RP_WIND_REFRESH:
        if ((rc = drive(r, until_idle, now, w)) == 0)
            return 0;
        if (rc == 1) {
            ds__run_remember(r);
            (void)ds__run_retain_step(r, now, w); /* queued; collected in TCLOSE */
        }
    bye:
        if (ds_session_close(r->ss) < 0)
            return -1;
        r->phase = RP_WIND_BYE;
        /* fall through */
    case RP_WIND_BYE:
        return drive(r, until_closed, now, w);
    default:
        return -1;
    }
}

/* Moves to the next phase once the current one is done. Returns 1 when
 * it moved (step again), 0 when the run waits. */
static int advance(struct ds_run *r, int64_t now, ds_run_wait_t *w)
{
    int rc = 0;

    switch (r->phase) {
    case RP_START:
        if (r->vres != NULL)
            ds__run_verify_record(r);
        else if (r->mode == DS_SYNC_RUN && ds__run_record_begin(r) < 0) {
            r->phase = RP_TCLOSE;
            return 1;
        } else if (r->mode == DS_SYNC_RUN) {
            ds__run_srvcopy_recall(r); /* a share remembered not to copy: whole files */
        }
        rc = ds__run_connect_begin(r, w);
        r->phase = rc < 0 ? RP_TCLOSE : RP_OPEN;
        return 1; /* a stepped open takes its first step now */
    case RP_OPEN:
        if (!ds__run_open_step(r, now, w))
            return 0;
        rc = ds__run_connect_end(r);
        r->phase = RP_READY;
        if (rc == 0)
            rc = 1;
        break;
    case RP_READY:
        rc = drive(r, until_ready, now, w);
        if (rc <= 0)
            break;
        ds_log(DS_LOG_DEBUG, "server %s: connected (protocol version %u, %s)", r->srv->name,
               ds_session_version(r->ss), r->mode == DS_SYNC_RUN ? "lease held" : "read-only");
        ds__run_retry_resumed(r);
        rc = r->vres ? ds__run_verify_begin(r) : hash_begin(r);
        if (rc >= 0) {
            r->phase = rc || r->vres ? RP_HASH : RP_PLAN;
            rc = 1;
        }
        break;
    case RP_HASH:
        rc = drive(r, until_idle, now, w);
        if (rc == 1 && r->vres != NULL) /* verified */
            goto close;
        if (rc == 1)
            r->phase = RP_PLAN;
        break;
    case RP_PLAN:
        rc = plan(r);
        if (rc == 0 && r->mode != DS_SYNC_RUN) {
            r->phase = RP_CLOSE;
            goto close;
        }
        if (rc == 0 && (rc = sigs_begin(r)) >= 0)
            r->phase = rc ? RP_SIGS : RP_SEND;
        if (rc == 0 && (rc = send_begin(r)) == 0)
            rc = 1;
        break;
    case RP_SIGS:
        rc = drive(r, until_idle, now, w);
        if (rc == 1 && (rc = send_begin(r)) == 0) {
            r->phase = RP_SEND;
            rc = 1;
        }
        break;
    case RP_SEND:
        ds__run_retain_early(r, r->res->plan, RT_SEND, now, w);
        rc = drive(r, until_sent, now, w);
        if (rc == 1) { /* commit, refresh and BYE in one round trip, answered in order */
            if ((rc = ds_session_commit_manifest(r->ss)) < 0 ||
                (rc = ds_session_refresh_manifest(r->ss)) < 0)
                rc = fail(r, rc, "manifest commit: %s", ds_strerror(rc));
            else {
                if (r->res->rc == 0) /* else no BYE: RP_CLOSE decides */
                    (void)ds_session_close(r->ss);
                r->phase = RP_COMMIT, rc = 1;
            }
        }
        break;
    case RP_COMMIT:
        rc = drive(r, until_committed, now, w);
        if (rc == 1) {
            ds__run_remember(r);
            (void)ds__run_retain_step(r, now, w); /* the target closes meanwhile */
            if (ds_session_phase(r->ss) == DS_SESSION_DONE) {
                r->phase = RP_TCLOSE;
                return 1;
            }
            r->phase = RP_CLOSE;
            goto close;
        }
        break;
    close:
    case RP_CLOSE:
        r->phase = RP_TCLOSE;
        if (r->res->rc == 0 && ds_session_close(r->ss) == 0)
            r->phase = RP_CLOSING;
        return 1;
    case RP_CLOSING:
        if ((rc = drive(r, until_closed, now, w)) == 0)
            return 0;
        /* a link dropped at BYE: the retry finds nothing left to send */
        r->phase = rc < 0 && ds__run_retry_begin(r, now) ? RP_RETRY : RP_TCLOSE;
        return 1;
    case RP_WIND_READY:
    case RP_WIND_IDLE:
    case RP_WIND_COMMIT:
    case RP_WIND_REFRESH:
    case RP_WIND_BYE:
        rc = wind(r, now, w);
        if (rc == 0)
            return 0;
        if (ds_session_phase(r->ss) != DS_SESSION_DONE)
            ds_transport_kill(r->t); /* do not wait again for it to end */
        r->phase = RP_TCLOSE;
        return 1;
    case RP_RETRY: /* the dead link closes, the attempt's jobs come back */
        if (!closed(r, now, w) || !ds__run_retry_idle(r))
            return 0;
        ds__run_retry_reset(r);
        r->phase = RP_RETRY_WAIT;
        /* fall through */
    case RP_RETRY_WAIT:
        if ((rc = ds__run_retry_wait(r, now, w)) == 0)
            return 0;
        if (rc > 0 && (rc = ds__run_connect_begin(r, w)) == 0)
            r->phase = RP_OPEN;
        else
            r->phase = RP_TCLOSE;
        return 1;
    case RP_TCLOSE:
        if (closed(r, now, w))
            end(r);
        return 0;
    case RP_DONE:
        return 0;
    }
    if (rc < 0) {
        failed(r, now);
        return 1;
    }
    return rc > 0;
}

void ds__run_step(ds_run_t *r, int64_t now, ds_run_wait_t *w)
{
    memset(w, 0, sizeof(*w));
    w->rfd = w->wfd = -1;
    w->wake_ns = now + DS_RUN_TICK_NS;
    ds__run_prefetch_collect(r);       /* in any phase: other runs may wait for them */
    ds__run_retain_collect(r, now, w); /* likewise for the retain handle */
    for (int i = 0; i < 32 && r->phase != RP_DONE; i++) {
        if (!advance(r, now, w))
            break;
        /* moved on: what the old phase waited for no longer holds (the
         * jobs it queued stay) */
        w->rfd = w->wfd = -1;
        w->wake_ns = now + DS_RUN_TICK_NS;
        w->wev = 0;
        w->again = 0;
        if (i == 31)
            w->again = 1;
    }
    ds__run_prefetch_stop(r);
    ds__run_warm(r, w);
    w->done = r->phase == RP_DONE;
}

int ds__run_new(ds_sync_t *sy, const ds_server_cfg_t *srv, ds_sync_mode_t mode, const char *trigger,
                const ds_strlist_t *only, ds_sync_result_t *res, const ds_run_pace_t *pace,
                ds_run_t **out)
{
    struct ds_run *r = calloc(1, sizeof(*r));

    *out = NULL;
    if (r == NULL)
        return DS_ENOMEM;
    r->sy = sy;
    r->srv = srv;
    r->res = res;
    r->mode = mode;
    r->trigger = trigger;
    r->only = only;
    r->t0 = ds__sync_mono_ns();
    if (pace != NULL) {
        r->pace = *pace;
        r->has_pace = 1;
    }
    memset(res, 0, sizeof(*res));
    *out = r;
    return 0;
}

void ds__run_set_spawner(ds_run_t *r, const ds_spawner_t *sp)
{
    r->spawner = sp;
}

void ds__run_set_resolver(ds_run_t *r, const ds_resolver_t *rv)
{
    r->resolver = rv;
}

void ds__run_set_wake(ds_run_t *r, void (*wake)(void *arg), void *arg)
{
    r->wake = wake;
    r->wake_arg = arg;
}

const ds_server_cfg_t *ds__run_server(const ds_run_t *r)
{
    return r->srv;
}

void ds__run_job_inline(ds_run_job_t *j)
{
    j->fn(j);
    j->done = 1;
}

void ds__run_free(ds_run_t *r)
{
    if (r == NULL)
        return;
    ds__run_prefetch_forget(r);
    for (size_t s = 0; s < DS_RUN_PREFETCH; s++)
        ds__sender_prefetch_clear(&r->pf[s].src);
    if (r->rt != NULL && r->retain_job.queued)
        ds__sync_retain_end(r->rt); /* the engine frees a run once its jobs are back */
    else
        ds__sync_retain_free(r->rt);
    ds__sender_free(r->sd);
    ds_session_free(r->ss);
    ds_transport_open_free(r->opening);
    ds__run_opts_drop(r);
    if (r->t == NULL && r->raw != NULL)
        r->t = r->raw;
    if (r->phase != RP_DONE)
        ds_transport_kill(r->t);
    ds_transport_free(r->t);
    for (size_t i = 0; i < r->nhashes; i++)
        free((char *)r->hashes[i].path);
    free(r->hashes);
    for (size_t i = 0; r->sig && i < r->res->plan->n; i++)
        free(r->sig[i]);
    free(r->sig);
    free(r->siglen);
    free(r->pf_state);
    ds_plan_free(r->warm);
    free(r->have);
    free(r->want);
    free(r->cls);
    free(r->absent);
    free(r->vman);
    free(r);
}

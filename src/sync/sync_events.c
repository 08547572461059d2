/*
 * A run's failures, events and records: the first failure is the run's
 * error; events go to the catalog in one transaction per batch of
 * results; the run's record is begun and ended here.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "distsync/error.h"
#include "distsync/events.h"
#include "distsync/log.h"
#include "distsync/proto.h"
#include "sync_run_int.h"

/* ---- failure and events ---- */

int ds__run_fail(struct ds_run *r, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    rc = ds__sync_vfail(&r->res->rc, r->res->error, sizeof(r->res->error), r->srv->name, rc, fmt,
                        ap);
    va_end(ap);
    return rc;
}

/* A failure to write the catalog fails the run, whose record would
 * otherwise lie: the first is kept; report_record() names the catalog. */
static void record_failed(struct ds_run *r, int rc, const char *what)
{
    if (r->rec_rc == 0) {
        r->rec_rc = rc;
        r->rec_what = what;
    }
}

static void report_record(struct ds_run *r)
{
    size_t n = strlen(r->res->error);

    if (r->rec_rc == 0)
        return;
    if (r->res->rc == 0)
        ds__run_fail(r, r->rec_rc, "catalog %s: cannot record the run (%s): %s",
                     ds_catalog_name(r->sy->cat), r->rec_what, ds_strerror(r->rec_rc));
    else
        snprintf(r->res->error + n, sizeof(r->res->error) - n,
                 "; catalog %s: cannot record the run (%s): %s", ds_catalog_name(r->sy->cat),
                 r->rec_what, ds_strerror(r->rec_rc));
    r->rec_rc = 0;
}

static void event(struct ds_run *r, ds_event_kind_t kind, ds_log_level_t level, const char *path,
                  const char *outcome, uint64_t lit, uint64_t copied, const char *msg);

int ds__run_fail_busy(struct ds_run *r, const char *msg)
{
    if (strncmp(msg, "server ", 7) == 0)
        msg += 7;
    snprintf(r->res->error, sizeof(r->res->error), "server %s %s", r->srv->name, msg);
    r->res->rc = DS_ELEASE;
    event(r, DS_EV_LEASE, DS_LOG_ERROR, NULL, "refused", 0, 0, r->res->error);
    return DS_ELEASE;
}

static void event_wire(struct ds_run *r, ds_event_kind_t kind, ds_log_level_t level,
                       const char *path, const char *outcome, uint64_t lit, uint64_t copied,
                       uint64_t wire, const char *msg)
{
    ds_event_t ev = {.kind = kind,
                     .level = level,
                     .at = time(NULL),
                     .path = path,
                     .outcome = outcome,
                     .bytes_literal = lit,
                     .bytes_copied = copied,
                     .bytes_wire = wire,
                     .message = msg};

    int rc = r->run_id > 0 ? ds_run_event(r->sy->cat, r->run_id, &ev) : 0;

    if (rc < 0)
        record_failed(r, rc, "an event");
}

static void event(struct ds_run *r, ds_event_kind_t kind, ds_log_level_t level, const char *path,
                  const char *outcome, uint64_t lit, uint64_t copied, const char *msg)
{
    event_wire(r, kind, level, path, outcome, lit, copied, 0, msg);
}

/* Reports r's counters; finished: its last call (the session is gone, the
 * wire bytes are the result's). bytes_done counts the files done and what
 * the sender queued of the files in flight, so a big file moves too, less
 * what has not reached the receiver: the session's unsent bytes and what
 * the transport holds (its socket, pipe or SSH window: ds_transport_unread),
 * so progress follows the far end, not the hand-over. */
static void progress_report(struct ds_run *r, int finished)
{
    ds_sync_progress_t p = {.server = r->srv->name, .finished = finished};
    uint64_t fly = 0;

    if (r->sy->o.progress == NULL)
        return;
    if (r->sd != NULL && !finished && ds__sender_progress(r->sd) > r->prog_acked)
        fly = ds__sender_progress(r->sd) - r->prog_acked;
    if (r->ss != NULL) { /* queued is not sent (about 2 s of a capped rate) */
        uint64_t held = ds_session_unsent(r->ss) + (r->t ? ds_transport_unread(r->t) : 0);

        fly -= fly < held ? fly : held;
    }
    p.files_done = r->files_done;
    p.files_total = r->files_total;
    p.bytes_done = r->bytes_done + fly;
    if (fly > 0 && p.bytes_done > r->bytes_total) /* never past the total */
        p.bytes_done = r->bytes_done > r->bytes_total ? r->bytes_done : r->bytes_total;
    p.bytes_total = r->bytes_total;
    p.bytes_wire = r->ss ? ds_session_stats(r->ss)->bytes_out : r->res->bytes_wire;
    r->sy->o.progress(r->sy->o.progress_ctx, &p);
}

#define PROGRESS_EVERY_NS (100 * 1000 * 1000LL)

void ds__run_progress(struct ds_run *r)
{
    struct timespec ts;
    int64_t now;

    /* called at every step: at most ten reports a second, and one when a
     * file ends, keep it cheap for the callback (a TTY, the daemon) */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    if (r->files_done == r->prog_files && now - r->prog_ns < PROGRESS_EVERY_NS)
        return;
    r->prog_files = r->files_done;
    r->prog_ns = now;
    progress_report(r, 0);
}

/* ---- results ---- */

static int add_hash(struct ds_run *r, const ds_session_result_t *x)
{
    ds_plan_hash_t *h;

    if (r->nhashes == r->hash_cap) {
        size_t nc = r->hash_cap ? r->hash_cap * 2 : 64;
        void *p = realloc(r->hashes, nc * sizeof(*r->hashes));

        if (p == NULL)
            return DS_ENOMEM;
        r->hashes = p;
        r->hash_cap = nc;
    }
    h = &r->hashes[r->nhashes];
    memset(h, 0, sizeof(*h));
    h->path = strdup(x->path);
    if (h->path == NULL)
        return DS_ENOMEM;
    h->ok = x->rc == 0;
    h->size = x->size;
    memcpy(h->sha256, x->sha256, DS_SHA256_LEN);
    r->nhashes++;
    return 0;
}

/* Counts a failed file and keeps the first one's path and reason for the
 * run's closing message (a reason that names the path already is kept as
 * it is). */
static void failed_file(struct ds_run *r, const char *path, const char *msg)
{
    if (r->res->failed_files++ > 0)
        return;
    msg = msg ? msg : "failed";
    if (path == NULL || strstr(msg, path) != NULL)
        snprintf(r->first_fail, sizeof(r->first_fail), "%s", msg);
    else
        snprintf(r->first_fail, sizeof(r->first_fail), "%s: %s", path, msg);
}

static void file_done(struct ds_run *r, const ds_session_result_t *x)
{
    const ds_plan_item_t *it = &r->res->plan->items[x->tag];
    const char *lmsg = r->sd ? ds__sender_item_msg(r->sd, x->tag) : NULL;
    uint64_t delta = r->sd ? ds__sender_item_delta(r->sd, x->tag) : 0, lit = 0, copied = 0;
    int copy = it->method == DS_PLAN_COPY && !(r->sd && ds__sender_item_whole(r->sd, x->tag));
    const char *outcome;

    if (ds__run_srvcopy_refused(r, x))
        return; /* sent again whole: its result comes later */
    r->files_done++;
    r->bytes_done += it->size;
    if (r->sd != NULL)
        r->prog_acked += ds__sender_item_progress(r->sd, x->tag);
    if (r->sd && ds__sender_item_cache_dropped(r->sd, x->tag))
        event(r, DS_EV_WARNING, DS_LOG_WARN, it->path, "cache dropped", 0, 0,
              "the cached delta was corrupt: dropped and recomputed");
    if (x->rc < 0 && it->method == DS_PLAN_DELTA && (x->rc == DS_EHASH || x->rc == DS_EDELTA)) {
        int drc = ds_delta_cache_drop(r->sy->dc, it->basis_sha256, it->sha256); /* not again */

        if (drc < 0)
            event(r, DS_EV_WARNING, DS_LOG_WARN, it->path, "cache kept", 0, 0,
                  "the rejected delta could not be dropped from the delta cache: the next run "
                  "may send it again");
    }
    if (x->rc < 0 && r->cancelling && x->rc == DS_EABORTED) {
        event(r, DS_EV_FILE, DS_LOG_INFO, it->path, "cancelled", 0, 0, "not sent: run cancelled");
        return;
    }
    if (x->rc < 0) {
        failed_file(r, it->path, lmsg ? lmsg : x->message);
        event(r, DS_EV_FILE, DS_LOG_ERROR, it->path, "failed", 0, 0, lmsg ? lmsg : x->message);
        ds_log(DS_LOG_WARN, "server %s: %s: %s", r->srv->name, it->path, lmsg ? lmsg : x->message);
        return;
    }
    if (it->method == DS_PLAN_ADOPT) { /* version 1 receivers copy it onto itself */
        copied = ds_session_version(r->ss) >= DS_PROTO_VERSION_ADOPT ? 0 : it->size;
        r->res->adopted++;
        outcome = "adopted";
    } else {
        lit = copy ? 0 : delta ? delta : it->size;
        copied = copy ? it->size : 0;
        copied += delta && it->size > delta ? it->size - delta : 0;
        outcome = it->action == DS_PLAN_CREATE ? "created" : "updated";
        r->res->quick_deltas += delta && r->sd && ds__sender_item_quick(r->sd, x->tag);
        if (it->action == DS_PLAN_CREATE)
            r->res->created++;
        else
            r->res->updated++;
    }
    r->res->bytes_copied += copied;
    r->res->bytes_target += it->method == DS_PLAN_ADOPT ? copied : it->size;
    event_wire(r, DS_EV_FILE, DS_LOG_INFO, it->path, outcome, lit, copied,
               r->sd ? ds__sender_item_wire(r->sd, x->tag) : 0,
               delta                         ? "delta"
               : it->method == DS_PLAN_ADOPT ? "adopted in place"
               : copy                        ? "copy of a file on the target"
                                             : "whole");
}

static int handle_result(struct ds_run *r, const ds_session_result_t *x)
{
    switch (x->kind) {
    case DS_SRES_HASH:
        return r->vres ? ds__run_verify_result(r, x) : add_hash(r, x);
    case DS_SRES_FILE:
        file_done(r, x);
        return 0;
    case DS_SRES_DELETE:
        r->files_done++;
        if (x->rc < 0) {
            failed_file(r, x->path, x->message);
            event(r, DS_EV_DELETE, DS_LOG_ERROR, x->path, "failed", 0, 0, x->message);
        } else if (x->value) {
            r->res->deleted++;
            event(r, DS_EV_DELETE, DS_LOG_INFO, x->path, "deleted", 0, 0, NULL);
        }
        return 0;
    case DS_SRES_SIG:
        if (x->rc < 0 || r->sig == NULL || x->tag >= r->res->plan->n) {
            ds_log(DS_LOG_INFO, "server %s: %s: no signature (%s): it will be sent whole",
                   r->srv->name, x->path, x->message);
            return 0;
        }
        r->sig[x->tag] = malloc(x->len + 1);
        if (r->sig[x->tag] == NULL)
            return ds__run_fail(r, DS_ENOMEM, "out of memory");
        memcpy(r->sig[x->tag], x->data, x->len);
        r->siglen[x->tag] = x->len;
        return 0;
    case DS_SRES_MANIFEST:
        r->manifest_done = 1;
        if (x->rc < 0)
            return ds__run_fail(r, x->rc, "manifest commit: %s", x->message);
        return 0;
    default:
        return 0;
    }
}

void ds__run_notes(struct ds_run *r)
{
    char line[256];

    while (r->raw != NULL && ds_transport_note(r->raw, line, sizeof(line)))
        event(r, DS_EV_WARNING, DS_LOG_WARN, NULL,
              strcmp(r->raw->ops->name, "sftp") == 0 ? "transport" : "agent stderr", 0, 0, line);
}

void ds__run_event(struct ds_run *r, int kind, int level, const char *path, const char *outcome,
                   const char *msg)
{
    event(r, (ds_event_kind_t)kind, (ds_log_level_t)level, path, outcome, 0, 0, msg);
}

int ds__run_record_begin(struct ds_run *r)
{
    ds_sync_t *s = r->sy;
    int rc =
        ds_run_begin_kind(s->cat, r->srv->name, r->srv->url, r->trigger ? r->trigger : "manual",
                          s->run_kind ? s->run_kind : "sync", time(NULL), &r->run_id);

    if (rc < 0) { /* nothing is done on a target without a record */
        record_failed(r, rc, "starting it");
        report_record(r);
    }
    return rc;
}

/* Opens a catalog transaction for a batch of events (one commit for the
 * batch instead of one per event) unless one is open. 1 when opened. */
static int events_begin(struct ds_run *r)
{
    if (r->run_id <= 0 || ds_catalog_in_txn(r->sy->cat))
        return 0;
    return ds_catalog_begin(r->sy->cat) == 0;
}

static void events_end(struct ds_run *r, int own)
{
    int rc = own ? ds_catalog_commit(r->sy->cat) : 0;

    if (rc < 0) {
        ds_catalog_rollback(r->sy->cat);
        record_failed(r, rc, "events");
    }
}

/* Handles the session's results and the sender's console-side failures,
 * their events in one transaction. Returns 0 or < 0 (run failed). */
int ds__run_take_results(struct ds_run *r)
{
    ds_session_result_t x;
    size_t idx;
    const char *msg;
    int rc = 0, own = 0, any = 0;

    while (rc == 0 && ds_session_next_result(r->ss, &x)) {
        if (!any++ && (x.kind == DS_SRES_FILE || x.kind == DS_SRES_DELETE || r->vres))
            own = events_begin(r);
        rc = handle_result(r, &x);
    }
    while (rc == 0 && r->sd && ds__sender_local_failure(r->sd, &idx, &msg)) {
        r->files_done++;
        failed_file(r, r->res->plan->items[idx].path, msg);
        event(r, DS_EV_FILE, DS_LOG_ERROR, r->res->plan->items[idx].path, "failed", 0, 0, msg);
        ds_log(DS_LOG_WARN, "server %s: %s", r->srv->name, msg);
    }
    events_end(r, own);
    return rc;
}

/* A store file the scan could not read: not shipped, so the run fails. */
void ds__run_unreadable(struct ds_run *r, const ds_plan_item_t *it)
{
    char msg[768];

    if (it->gone) {
        snprintf(msg, sizeof(msg),
                 "pinned version %s is gone (the store file changed since and the retain store "
                 "does not hold it): not shipped, the server keeps what it has",
                 r->sy->pin_what ? r->sy->pin_what : "");
        failed_file(r, it->path, msg);
        event(r, DS_EV_FILE, DS_LOG_ERROR, it->path, "failed", 0, 0, msg);
        ds_log(DS_LOG_WARN, "server %s: %s: %s", r->srv->name, it->path, msg);
        return;
    }
    failed_file(r, it->path,
                "unreadable in the store: not shipped (fix it, then run distsync scan)");
    event(r, DS_EV_FILE, DS_LOG_ERROR, it->path, "failed", 0, 0,
          "unreadable in the store: not shipped (fix it, then run distsync scan)");
    ds_log(DS_LOG_WARN, "server %s: %s: unreadable in the store, not shipped", r->srv->name,
           it->path);
}

/* Records the manifest the target now has and the protocol version it
 * spoke, and retains its versions. */
void ds__run_remember(struct ds_run *r)
{
    const ds_manifest_t *man = ds_session_manifest(r->ss);
    const ds_manifest_entry_t **v = NULL;
    ds_server_file_t *f = NULL;
    size_t n = 0;
    int rc;

    if (man == NULL || ds_manifest_sorted(man, &v, &n) < 0)
        return;
    f = calloc(n + 1, sizeof(*f));
    for (size_t i = 0; f && i < n; i++) {
        f[i].path = v[i]->path;
        f[i].size = v[i]->size;
        memcpy(f[i].sha256, v[i]->sha256, DS_SHA256_LEN);
    }
    rc = f ? ds_catalog_server_manifest_put(r->sy->cat, r->srv->name, f, n, time(NULL)) : DS_ENOMEM;
    if (rc == 0) /* what precompute builds for this server */
        rc = ds_catalog_server_protocol_set(r->sy->cat, r->srv->name, ds_session_version(r->ss));
    if (rc < 0)
        record_failed(r, rc, "the server's manifest");
    free(f);
    free(v);
    if (r->rt == NULL)
        (void)ds__sync_retain_plan(r->sy, man, r->srv->name, &r->rt); /* failures logged */
    else if (r->rt_early)
        r->rt_again = 1; /* planned once the early job is back */
}

void ds__run_finish(struct ds_run *r)
{
    ds_sync_result_t *res = r->res;
    const char *status;

    if (res->rc == 0 && res->failed_files > 0) {
        snprintf(res->error, sizeof(res->error), "server %s: %llu file%s failed (%s%s)",
                 r->srv->name, (unsigned long long)res->failed_files,
                 res->failed_files == 1 ? "" : "s",
                 res->failed_files == 1 ? "" : "first: ", r->first_fail);
        res->rc = DS_EABORTED;
    }
    if (res->rc == 0 && r->mode == DS_SYNC_RUN && res->plan && res->plan->guard) {
        char msg[512];

        ds_plan_guard_msg(res->plan, msg, sizeof(msg));
        ds__run_fail(r, DS_EHELD, "%s", msg);
    }
    report_record(r);
    progress_report(r, 1);
    status = res->rc == 0 ? "ok" : r->cancelling ? "cancelled" : "failed";
    res->elapsed_s = (double)(ds__sync_mono_ns() - r->t0) / 1e9;
    if (r->vres != NULL) {
        ds__run_verify_end(r);
        return;
    }
    if (r->run_id > 0) {
        /* as sync reports them: adopted files are updated */
        ds_run_totals_t tot = {.files_created = res->created,
                               .files_updated = res->updated + res->adopted,
                               .files_deleted = res->deleted,
                               .files_failed = res->failed_files,
                               .bytes_wire = res->bytes_wire,
                               .bytes_literal = res->bytes_literal,
                               .bytes_copied = res->bytes_copied};

        if (res->rc < 0 && res->failed_files == 0 && !r->cancelling)
            event(r, DS_EV_ERROR, DS_LOG_ERROR, NULL, "failed", 0, 0, res->error);
        int rc = ds_run_end(r->sy->cat, r->run_id, status, &tot, res->rc == 0 ? NULL : res->error,
                            time(NULL));

        if (rc < 0) {
            record_failed(r, rc, "ending it");
            report_record(r);
        }
    }
}

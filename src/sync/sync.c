/*
 * Sync driver: one server at a time through transport, session, planner and
 * sender, driven by a poll(2) loop over the session's fds (an in-process
 * target has none: the loop just steps). Records the run and its events in
 * the catalog, the server's last-known manifest, and retains the versions
 * the server now references.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "distsync/fsutil.h"
#include "distsync/error.h"
#include "distsync/events.h"
#include "distsync/gc.h"
#include "distsync/log.h"
#include "distsync/proto.h"
#include "distsync/transport.h"
#include "sync_int.h"

#define POLL_MS 1000
/* A cancelled run waits at most this long on a silent target while it
 * winds down (seconds). */
#define WIND_DOWN_S 10

struct run {
    ds_sync_t *sy;
    const ds_server_cfg_t *srv;
    ds_sync_result_t *res;
    ds_sync_mode_t mode;
    ds_transport_t *t;
    ds_session_t *ss;
    int64_t run_id; /* 0: not recorded */
    ds_plan_want_t *want;
    size_t nwant;
    ds_plan_have_t *have;
    size_t nhave;
    ds_plan_hash_t *hashes;
    size_t nhashes, hash_cap, hash_wanted;
    struct sender *sd;
    uint8_t **sig; /* per plan item: the target file's signature (rsync) */
    size_t *siglen;
    int sender_done, manifest_done;
    int scanned;          /* the catalog has a completed scan */
    int cancelling;       /* ds_sync_cancel() seen: winding down */
    int rec_rc;           /* first failure to write the run's record, or 0 */
    const char *rec_what; /* what could not be recorded (static) */
    uint64_t files_done, files_total, bytes_done, bytes_total;
    ds_sync_wait_t wait; /* inactivity watchdog */
    const char **cls;    /* the classes acted on: the server's, within only_classes */
    size_t ncls;
    const char **absent; /* those of cls whose folder is missing from the store */
    size_t nabsent;
};

static void make_console_id(ds_sync_t *s)
{
    uint8_t sum[DS_SHA256_LEN];
    char hex[2 * DS_SHA256_LEN + 1];

    if (gethostname(s->host, sizeof(s->host) - 1) < 0 || s->host[0] == '\0')
        snprintf(s->host, sizeof(s->host), "localhost");
    ds_sha256(s->o.cfg->state, strlen(s->o.cfg->state), sum);
    ds_hex(sum, DS_SHA256_LEN, hex);
    snprintf(s->console_id, sizeof(s->console_id), "%.200s:%.12s", s->host, hex);
}

int ds_sync_open(const ds_sync_opts_t *o, ds_sync_t **out, char *err, size_t errlen)
{
    ds_sync_t *s = calloc(1, sizeof(*s));
    ds_delta_opts_t dopts = {0};
    char path[PATH_MAX];
    int rc;

    *out = NULL;
    if (s == NULL)
        return DS_ENOMEM;
    s->o = *o;
    rc = ds_mkdir_p(o->cfg->state);
    if (rc < 0) {
        snprintf(err, errlen, "state directory %s: %s", o->cfg->state, ds_strerror(rc));
        goto fail;
    }
    make_console_id(s);
    rc = ds_catalog_path(o->cfg->state, path, sizeof(path));
    if (rc < 0) {
        snprintf(err, errlen, "state directory %s: path is too long", o->cfg->state);
        goto fail;
    }
    rc = ds_catalog_open(path, &s->cat, err, errlen);
    if (rc < 0)
        goto fail;
    snprintf(path, sizeof(path), "%s/retain", o->cfg->state);
    rc = ds_retain_open(path, &s->ret);
    if (rc < 0) {
        snprintf(err, errlen, "retain store %s: %s", path, ds_strerror(rc));
        goto fail;
    }
    snprintf(path, sizeof(path), "%s/deltas", o->cfg->state);
    dopts.zpatch_level = o->cfg->delta_level;
    rc = ds_delta_cache_open(path, o->delta_cache_cap ? o->delta_cache_cap : (2ull << 30), &dopts,
                             &s->dc);
    if (rc < 0) {
        snprintf(err, errlen, "delta cache %s: %s", path, ds_strerror(rc));
        goto fail;
    }
    if (o->zstd_level >= 0 && ds_session_zcache_new(0, &s->zcache) < 0) {
        rc = DS_ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    ds_sync_close(s);
    return rc;
}

void ds_sync_close(ds_sync_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nrows; i++) {
        free(s->rows[i].path);
        free(s->rows[i].klass);
    }
    free(s->rows);
    free(s->by_content);
    ds__sync_memo_free(s);
    free(s->send_buf);
    ds_session_zcache_free(s->zcache);
    ds_delta_cache_close(s->dc);
    ds_retain_close(s->ret);
    ds_catalog_free(s->cat);
    free(s);
}

const char *ds_sync_console_id(const ds_sync_t *s)
{
    return s->console_id;
}

ds_catalog_t *ds_sync_catalog(ds_sync_t *s)
{
    return s->cat;
}

void ds_sync_cancel(ds_sync_t *s)
{
    s->cancel = 1;
}

int ds_sync_cancelled(const ds_sync_t *s)
{
    return s->cancel != 0;
}

void ds_sync_result_clear(ds_sync_result_t *res)
{
    ds_plan_free(res->plan);
    res->plan = NULL;
}

/* ---- failure and events ---- */

static int fail(struct run *r, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct run *r, int rc, const char *fmt, ...)
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
static void record_failed(struct run *r, int rc, const char *what)
{
    if (r->rec_rc == 0) {
        r->rec_rc = rc;
        r->rec_what = what;
    }
}

static void report_record(struct run *r)
{
    size_t n = strlen(r->res->error);

    if (r->rec_rc == 0)
        return;
    if (r->res->rc == 0)
        fail(r, r->rec_rc, "catalog %s: cannot record the run (%s): %s",
             ds_catalog_name(r->sy->cat), r->rec_what, ds_strerror(r->rec_rc));
    else
        snprintf(r->res->error + n, sizeof(r->res->error) - n,
                 "; catalog %s: cannot record the run (%s): %s", ds_catalog_name(r->sy->cat),
                 r->rec_what, ds_strerror(r->rec_rc));
    r->rec_rc = 0;
}

/* A busy lease: "server X is being synced by console Y ..." */
static void event(struct run *r, ds_event_kind_t kind, ds_log_level_t level, const char *path,
                  const char *outcome, uint64_t lit, uint64_t copied, const char *msg);

static int fail_busy(struct run *r, const char *msg)
{
    if (strncmp(msg, "server ", 7) == 0)
        msg += 7;
    snprintf(r->res->error, sizeof(r->res->error), "server %s %s", r->srv->name, msg);
    r->res->rc = DS_ELEASE;
    event(r, DS_EV_LEASE, DS_LOG_ERROR, NULL, "refused", 0, 0, r->res->error);
    return DS_ELEASE;
}

static void event_wire(struct run *r, ds_event_kind_t kind, ds_log_level_t level, const char *path,
                       const char *outcome, uint64_t lit, uint64_t copied, uint64_t wire,
                       const char *msg)
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

static void event(struct run *r, ds_event_kind_t kind, ds_log_level_t level, const char *path,
                  const char *outcome, uint64_t lit, uint64_t copied, const char *msg)
{
    event_wire(r, kind, level, path, outcome, lit, copied, 0, msg);
}

/* Reports r's counters; finished: its last call (the session is gone, the
 * wire bytes are the result's). */
static void progress_report(struct run *r, int finished)
{
    ds_sync_progress_t p = {.server = r->srv->name, .finished = finished};

    if (r->sy->o.progress == NULL)
        return;
    p.files_done = r->files_done;
    p.files_total = r->files_total;
    p.bytes_done = r->bytes_done;
    p.bytes_total = r->bytes_total;
    p.bytes_wire = r->ss ? ds_session_stats(r->ss)->bytes_out : r->res->bytes_wire;
    r->sy->o.progress(r->sy->o.progress_ctx, &p);
}

static void progress(struct run *r)
{
    progress_report(r, 0);
}

/* ---- results ---- */

static int add_hash(struct run *r, const ds_session_result_t *x)
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

static void file_done(struct run *r, const ds_session_result_t *x)
{
    const ds_plan_item_t *it = &r->res->plan->items[x->tag];
    const char *lmsg = r->sd ? ds__sender_item_msg(r->sd, x->tag) : NULL;
    uint64_t delta = r->sd ? ds__sender_item_delta(r->sd, x->tag) : 0, lit = 0, copied = 0;
    const char *outcome;

    r->files_done++;
    r->bytes_done += it->size;
    if (r->sd && ds__sender_item_cache_dropped(r->sd, x->tag))
        event(r, DS_EV_WARNING, DS_LOG_WARN, it->path, "cache dropped", 0, 0,
              "the cached delta was corrupt: dropped and recomputed");
    if (x->rc < 0 && it->method == DS_PLAN_DELTA && (x->rc == DS_EHASH || x->rc == DS_EDELTA))
        ds_delta_cache_drop(r->sy->dc, it->basis_sha256, it->sha256); /* not again */
    if (x->rc < 0 && r->cancelling && x->rc == DS_EABORTED) {
        event(r, DS_EV_FILE, DS_LOG_INFO, it->path, "cancelled", 0, 0, "not sent: run cancelled");
        return;
    }
    if (x->rc < 0) {
        r->res->failed_files++;
        event(r, DS_EV_FILE, DS_LOG_ERROR, it->path, "failed", 0, 0, lmsg ? lmsg : x->message);
        ds_log(DS_LOG_WARN, "server %s: %s: %s", r->srv->name, it->path, lmsg ? lmsg : x->message);
        return;
    }
    if (it->method == DS_PLAN_ADOPT) { /* version 1 receivers copy it onto itself */
        copied = ds_session_version(r->ss) >= DS_PROTO_VERSION_ADOPT ? 0 : it->size;
        r->res->adopted++;
        outcome = "adopted";
    } else {
        lit = delta ? delta : it->size;
        copied = delta && it->size > delta ? it->size - delta : 0;
        outcome = it->action == DS_PLAN_CREATE ? "created" : "updated";
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
                                             : "whole");
}

static int handle_result(struct run *r, const ds_session_result_t *x)
{
    switch (x->kind) {
    case DS_SRES_HASH:
        return add_hash(r, x);
    case DS_SRES_FILE:
        file_done(r, x);
        return 0;
    case DS_SRES_DELETE:
        r->files_done++;
        if (x->rc < 0) {
            r->res->failed_files++;
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
            return fail(r, DS_ENOMEM, "out of memory");
        memcpy(r->sig[x->tag], x->data, x->len);
        r->siglen[x->tag] = x->len;
        return 0;
    case DS_SRES_MANIFEST:
        r->manifest_done = 1;
        if (x->rc < 0)
            return fail(r, x->rc, "manifest commit: %s", x->message);
        return 0;
    default:
        return 0;
    }
}

/* ---- the loop ---- */

typedef int (*until_fn)(struct run *r);

/* Waits on the target; past the server's timeout with no byte moving, the
 * agent is killed and the run fails naming what it waited for. */
static int wait_poll(struct run *r)
{
    unsigned tmo = r->srv->timeout_s ? r->srv->timeout_s : DS_CONFIG_TIMEOUT_DEFAULT;
    int rc;

    if (r->cancelling && tmo > WIND_DOWN_S)
        tmo = WIND_DOWN_S; /* an interrupted user waits seconds, not minutes */
    rc = ds__sync_wait(&r->wait, r->ss, r->t, tmo, POLL_MS);

    if (rc == -ETIMEDOUT)
        return fail(r, rc, "no response from the target for %u s (during %s)", tmo,
                    ds_session_waiting_for(r->ss));
    return rc;
}

/* Opens a catalog transaction for a batch of events (one commit for the
 * batch instead of one per event) unless one is open. 1 when opened. */
static int events_begin(struct run *r)
{
    if (r->run_id <= 0 || ds_catalog_in_txn(r->sy->cat))
        return 0;
    return ds_catalog_begin(r->sy->cat) == 0;
}

static void events_end(struct run *r, int own)
{
    int rc = own ? ds_catalog_commit(r->sy->cat) : 0;

    if (rc < 0) {
        ds_catalog_rollback(r->sy->cat);
        record_failed(r, rc, "events");
    }
}

/* Handles the session's results and the sender's console-side failures,
 * their events in one transaction. Returns 0 or < 0 (run failed). */
static int take_results(struct run *r)
{
    ds_session_result_t x;
    size_t idx;
    const char *msg;
    int rc = 0, own = 0, any = 0;

    while (rc == 0 && ds_session_next_result(r->ss, &x)) {
        if (!any++ && (x.kind == DS_SRES_FILE || x.kind == DS_SRES_DELETE))
            own = events_begin(r);
        rc = handle_result(r, &x);
    }
    while (rc == 0 && r->sd && ds__sender_local_failure(r->sd, &idx, &msg)) {
        r->files_done++;
        r->res->failed_files++;
        event(r, DS_EV_FILE, DS_LOG_ERROR, r->res->plan->items[idx].path, "failed", 0, 0, msg);
        ds_log(DS_LOG_WARN, "server %s: %s", r->srv->name, msg);
    }
    events_end(r, own);
    return rc;
}

/* ds_sync_cancel() was called: stop sending, fail the run as cancelled;
 * cleanup() winds the session down. */
static int cancel_run(struct run *r)
{
    r->cancelling = 1;
    if (r->sd)
        ds__sender_cancel(r->sd);
    if (ds_session_phase(r->ss) == DS_SESSION_READY && ds_session_cancel_sends(r->ss) < 0)
        ds_log(DS_LOG_WARN, "server %s: cannot cancel the queued sends", r->srv->name);
    r->sender_done = 1;
    return fail(r, -ECANCELED, "cancelled");
}

/* Steps the session (and the sender) until done(r) holds. */
static int drive(struct run *r, until_fn done)
{
    int rc;

    for (;;) {
        if (r->sy->cancel && !r->cancelling)
            return cancel_run(r);
        rc = ds_session_step(r->ss, time(NULL));
        if (rc < 0) {
            if (ds_session_busy(r->ss))
                return fail_busy(r, ds_session_error(r->ss));
            return fail(r, rc, "%s", ds_session_error(r->ss));
        }
        if ((rc = take_results(r)) < 0)
            return rc;
        progress(r);
        if (done(r))
            return 0;
        if (r->sd && !r->sender_done) {
            rc = ds__sender_pump(r->sd);
            if (rc < 0)
                return fail(r, rc, "sending: %s", ds_strerror(rc));
            r->sender_done = rc == 1;
            if (!ds_session_idle(r->ss) || done(r))
                continue; /* new output to write, or finished: no polling */
        }
        if (ds_session_phase(r->ss) == DS_SESSION_DONE)
            return done(r) ? 0 : fail(r, DS_EPROTO, "session ended early");
        if (ds_session_idle(r->ss) && (r->sd == NULL || r->sender_done) && !done(r))
            return fail(r, DS_EINTERNAL, "sync stalled (nothing in flight)");
        rc = wait_poll(r);
        if (rc < 0)
            return fail(r, rc, "poll: %s", strerror(-rc));
    }
}

static int until_ready(struct run *r)
{
    return ds_session_phase(r->ss) == DS_SESSION_READY;
}

static int until_idle(struct run *r)
{
    return ds_session_idle(r->ss);
}

static int until_sent(struct run *r)
{
    return r->sender_done && ds_session_idle(r->ss);
}

static int until_manifest(struct run *r)
{
    return r->manifest_done && ds_session_idle(r->ss);
}

static int until_closed(struct run *r)
{
    return ds_session_phase(r->ss) == DS_SESSION_DONE;
}

/* ---- phases ---- */

static int connect(struct run *r)
{
    char err[512];
    int rc = ds__sync_open_target(r->sy, r->srv, r->mode == DS_SYNC_RUN, &r->t, &r->ss, err,
                                  sizeof(err));

    if (rc < 0)
        return fail(r, rc, "%s", err);
    return drive(r, until_ready);
}

/* The classes r acts on: the server's, limited to o.only_classes. */
static int run_classes(struct run *r)
{
    const ds_strlist_t *c = &r->srv->classes, *only = r->sy->o.only_classes;

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

static int in_run_classes(const struct run *r, const char *klass)
{
    for (size_t i = 0; i < r->ncls; i++)
        if (strcmp(r->cls[i], klass) == 0)
            return 1;
    return 0;
}

static int desired(struct run *r)
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
        ds_plan_want_t *w;

        if (!in_run_classes(r, x->klass))
            continue;
        w = &r->want[r->nwant++];
        w->path = x->path;
        w->klass = x->klass;
        w->size = x->size;
        w->mtime_ns = x->mtime_ns;
        w->content_id = x->content_id;
        w->unreadable = x->content_id <= 0;
        memcpy(w->sha256, x->sha256, DS_SHA256_LEN);
    }
    return 0;
}

static void input(struct run *r, ds_plan_input_t *in)
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
    ds__sync_oracle(r->sy, &in->oracle);
}

/* A store file the scan could not read: not shipped, so the run fails. */
static void unreadable(struct run *r, const ds_plan_item_t *it)
{
    r->res->failed_files++;
    event(r, DS_EV_FILE, DS_LOG_ERROR, it->path, "failed", 0, 0,
          "unreadable in the store: not shipped (fix it, then run distsync scan)");
    ds_log(DS_LOG_WARN, "server %s: %s: unreadable in the store, not shipped", r->srv->name,
           it->path);
}

/* Target state, hashes of uncertain files, then the plan. */
static int make_plan(struct run *r)
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
    if (n > 0 && (rc = drive(r, until_idle)) < 0)
        return rc;
    input(r, &in);
    rc = ds_plan_build(&in, &r->res->plan);
    if (rc < 0)
        return fail(r, rc, "planning: %s", ds_strerror(rc));
    for (size_t i = 0; i < r->res->plan->n; i++) {
        const ds_plan_item_t *it = &r->res->plan->items[i];

        if (it->action == DS_PLAN_CREATE || it->action == DS_PLAN_UPDATE ||
            it->action == DS_PLAN_DELETE) {
            r->files_total++;
            r->bytes_total += it->action == DS_PLAN_DELETE ? 0 : it->size;
        }
        if (it->drifted && r->mode == DS_SYNC_RUN)
            event(r, DS_EV_WARNING, DS_LOG_WARN, it->path, "drifted", 0, 0,
                  "changed on the target behind our back: repaired");
        if (it->action == DS_PLAN_UNREADABLE && r->mode == DS_SYNC_RUN)
            unreadable(r, it);
    }
    return 0;
}

/* rsync fallback: the signatures of target files the console cannot read. */
static int fetch_sigs(struct run *r)
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
    return n > 0 ? drive(r, until_idle) : 0;
}

/* Records the manifest the target now has and retains its versions. */
static void remember(struct run *r)
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
    if (rc < 0)
        record_failed(r, rc, "the server's manifest");
    free(f);
    free(v);
    ds__sync_retain(r->sy, man, r->srv->name);
}

static int apply_plan(struct run *r)
{
    int rc = fetch_sigs(r);

    if (rc < 0)
        return rc;
    rc = ds__sender_new(r->sy, r->ss, r->res->plan, &r->sd);
    if (rc < 0)
        return fail(r, rc, "out of memory");
    for (size_t i = 0; i < r->res->plan->n; i++) {
        ds__sender_set_sig(r->sd, i, r->sig[i], r->siglen[i]);
        r->sig[i] = NULL;
    }
    rc = drive(r, until_sent);
    if (rc < 0)
        return rc;
    rc = ds_session_commit_manifest(r->ss);
    if (rc == 0)
        rc = drive(r, until_manifest);
    if (rc == 0 && (rc = ds_session_refresh_manifest(r->ss)) == 0)
        rc = drive(r, until_idle);
    if (rc < 0)
        return fail(r, rc, "manifest commit: %s", ds_strerror(rc));
    remember(r);
    return 0;
}

static void finish(struct run *r, int64_t t0)
{
    ds_sync_result_t *res = r->res;
    const char *status;

    if (res->rc == 0 && res->failed_files > 0) {
        snprintf(res->error, sizeof(res->error), "server %s: %llu file%s failed", r->srv->name,
                 (unsigned long long)res->failed_files, res->failed_files == 1 ? "" : "s");
        res->rc = DS_EABORTED;
    }
    if (res->rc == 0 && r->mode == DS_SYNC_RUN && res->plan && res->plan->guard) {
        char msg[512];

        ds_plan_guard_msg(res->plan, msg, sizeof(msg));
        fail(r, DS_EHELD, "%s", msg);
    }
    report_record(r);
    progress_report(r, 1);
    status = res->rc == 0 ? "ok" : r->cancelling ? "cancelled" : "failed";
    res->elapsed_s = (double)(ds__sync_mono_ns() - t0) / 1e9;
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

/* A cancelled run: let the operations in flight finish, record what was
 * published (MANIFEST_COMMIT), then LEASE release and BYE. */
static void wind_down(struct run *r)
{
    if (ds_session_phase(r->ss) == DS_SESSION_CONNECTING && drive(r, until_ready) < 0)
        return;
    if (ds_session_phase(r->ss) != DS_SESSION_READY || drive(r, until_idle) < 0)
        return;
    if (r->mode == DS_SYNC_RUN && r->sd != NULL) {
        r->manifest_done = 0;
        if (ds_session_commit_manifest(r->ss) < 0 || drive(r, until_manifest) < 0)
            return;
        if (ds_session_refresh_manifest(r->ss) == 0 && drive(r, until_idle) == 0)
            remember(r);
    }
    if (ds_session_close(r->ss) == 0)
        drive(r, until_closed);
}

static void cleanup(struct run *r)
{
    if (r->ss && r->cancelling) {
        wind_down(r);
        if (ds_session_phase(r->ss) != DS_SESSION_DONE)
            ds_transport_kill(r->t); /* do not wait again for it to end */
    } else if (r->ss && r->res->rc == 0 && ds_session_close(r->ss) == 0)
        drive(r, until_closed);
    if (r->t) {
        int rc = ds_transport_close(r->t);
        size_t n = strlen(r->res->error);

        if (rc < 0 && r->res->rc == 0)
            fail(r, rc, "%s", ds_transport_error(r->t));
        else if (rc < 0 && strstr(r->res->error, ds_transport_error(r->t)) == NULL)
            snprintf(r->res->error + n, sizeof(r->res->error) - n, " (%s)",
                     ds_transport_error(r->t));
    }
    if (r->ss) {
        const ds_session_stats_t *st = ds_session_stats(r->ss);

        r->res->bytes_wire = st->bytes_out;
        r->res->bytes_received = st->bytes_in;
        r->res->bytes_literal = st->literal_raw + st->delta_raw;
        r->res->bytes_delta = st->delta_raw;
    }
    ds__sender_free(r->sd);
    ds_session_free(r->ss);
    r->sd = NULL;
    r->ss = NULL;
    ds_transport_free(r->t);
    for (size_t i = 0; i < r->nhashes; i++)
        free((char *)r->hashes[i].path);
    free(r->hashes);
    for (size_t i = 0; r->sig && i < r->res->plan->n; i++)
        free(r->sig[i]);
    free(r->sig);
    free(r->siglen);
    free(r->have);
    free(r->want);
    free(r->cls);
    free(r->absent);
}

int ds_sync_server(ds_sync_t *s, const ds_server_cfg_t *srv, ds_sync_mode_t mode,
                   ds_sync_result_t *res)
{
    struct run r = {.sy = s, .srv = srv, .res = res, .mode = mode};
    int64_t t0 = ds__sync_mono_ns();
    int rc;

    memset(res, 0, sizeof(*res));
    if (s->cancel) {
        snprintf(res->error, sizeof(res->error), "server %s: cancelled before it started",
                 srv->name);
        return res->rc = -ECANCELED;
    }
    rc = 0;
    if (mode == DS_SYNC_RUN)
        rc = ds_run_begin_kind(s->cat, srv->name, srv->url, s->o.trigger ? s->o.trigger : "manual",
                               s->run_kind ? s->run_kind : "sync", time(NULL), &r.run_id);
    if (rc < 0) { /* nothing is done on a target without a record */
        record_failed(&r, rc, "starting it");
        report_record(&r);
    }
    if (rc == 0)
        rc = connect(&r);
    if (rc == 0)
        rc = make_plan(&r);
    if (rc == 0 && mode == DS_SYNC_RUN)
        rc = apply_plan(&r);
    cleanup(&r);
    finish(&r, t0);
    return res->rc;
}

int ds_sync_retain_usage(ds_sync_t *s, ds_retain_usage_t *u)
{
    memset(u, 0, sizeof(*u));
    return s->ret != NULL ? ds_retain_usage(s->ret, u) : 0;
}

int ds_sync_gc(ds_sync_t *s, uint64_t *freed)
{
    ds_gc_result_t g;
    int rc = ds_gc_run(s->cat, s->ret, s->o.cfg, 0, &g);

    if (rc == 0 && g.kept_all)
        ds_log(DS_LOG_INFO,
               "retained versions: nothing collected: %s (sync every server, or run"
               " distsync gc --force)",
               g.why);
    if (freed != NULL)
        *freed = rc == 0 ? g.freed_bytes : 0;
    ds__sync_memo_reset(s); /* retained versions may be gone */
    return rc;
}

/*
 * The daemon's runs (GET /v1/runs): each schedule fire and each run-now,
 * queued, running (with per-server progress from the sync's progress
 * callback) and the last DS_DAEMON_RUNS_KEPT that ended. Ended runs are
 * recorded in the catalog (ds_daemon_run_put) with their classes and each
 * server's rc and report, and loaded back at start-up: GET /v1/runs/ID
 * reads the same before and after a restart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "daemon_int.h"
#include "distsync/events.h"
#include "distsync/log.h"
#include "distsync/report.h"
#include "distsync/tz.h"

int64_t ds__daemon_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ds__daemon_iso(int64_t t, char *buf, size_t len)
{
    if (ds_tz_format_utc(t, buf, len) < 0)
        snprintf(buf, len, "%lld", (long long)t);
}

void ds__daemon_kiso(ds_json_t *j, const char *key, int64_t t)
{
    char buf[64];

    if (t != 0)
        ds__daemon_iso(t, buf, sizeof(buf));
    ds_json_kstr(j, key, t != 0 ? buf : NULL);
}

static void run_free(struct drun *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->srv[i].name);
        free(r->srv[i].res);
        json_decref(r->srv[i].report);
    }
    free(r->srv);
    for (size_t i = 0; i < r->classes.n; i++)
        free(r->classes.v[i]);
    free(r->classes.v);
    free(r);
}

static int ended(const struct drun *r)
{
    return strcmp(r->state, "queued") != 0 && strcmp(r->state, "running") != 0;
}

/* Drops the oldest ended runs past DS_DAEMON_RUNS_KEPT, never keep (the
 * run the caller still uses). */
static void trim(ds_daemon_t *d, const struct drun *keep)
{
    size_t nended = 0, k = 0;

    for (size_t i = 0; i < d->nruns; i++)
        nended += ended(d->runs[i]);
    for (size_t i = 0; i < d->nruns; i++) {
        if (nended > DS_DAEMON_RUNS_KEPT && ended(d->runs[i]) && d->runs[i] != keep) {
            run_free(d->runs[i]);
            nended--;
            continue;
        }
        d->runs[k++] = d->runs[i];
    }
    d->nruns = k;
}

struct drun *ds__drun_add(ds_daemon_t *d, const char *id, const char *trigger, const char *state,
                          const char *const *servers, size_t n)
{
    struct drun *r = calloc(1, sizeof(*r)), **v;

    if (r == NULL || (r->srv = calloc(n + 1, sizeof(*r->srv))) == NULL)
        goto fail;
    for (; r->n < n; r->n++)
        if ((r->srv[r->n].name = strdup(servers[r->n])) == NULL)
            goto fail;
    v = realloc(d->runs, (d->nruns + 1) * sizeof(*v));
    if (v == NULL)
        goto fail;
    d->runs = v;
    snprintf(r->id, sizeof(r->id), "%s", id);
    snprintf(r->trigger, sizeof(r->trigger), "%s", trigger);
    r->state = state;
    r->queued_at = ds_daemon_now(d);
    d->runs[d->nruns++] = r;
    trim(d, r);
    return r;
fail:
    run_free(r);
    return NULL;
}

struct drun *ds__drun_find(ds_daemon_t *d, const char *id)
{
    for (size_t i = d->nruns; i-- > 0;) /* a fire run again: its newest run */
        if (strcmp(d->runs[i]->id, id) == 0)
            return d->runs[i];
    return NULL;
}

struct drun *ds__drun_queued(ds_daemon_t *d)
{
    for (size_t i = 0; i < d->nruns; i++)
        if (strcmp(d->runs[i]->state, "queued") == 0)
            return d->runs[i];
    return NULL;
}

size_t ds__drun_nqueued(ds_daemon_t *d)
{
    size_t n = 0;

    for (size_t i = 0; i < d->nruns; i++)
        n += strcmp(d->runs[i]->state, "queued") == 0;
    return n;
}

/* What fn writes as JSON text (malloc'd; NULL: no memory). */
static char *json_text(void (*fn)(ds_json_t *j, const void *arg), const void *arg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ds_json_t j;

    if (f == NULL)
        return NULL;
    ds_json_init(&j, f);
    fn(&j, arg);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void classes_json(ds_json_t *j, const void *arg)
{
    const ds_strlist_t *c = arg;

    ds_json_arr_begin(j);
    for (size_t i = 0; i < c->n; i++)
        ds_json_str(j, c->v[i]);
    ds_json_arr_end(j);
}

static void report_json(ds_json_t *j, const void *arg)
{
    const struct drun_srv *s = arg;

    ds_report_result_json(j, s->name, s->res);
}

/* Server s of a run that just ended as the catalog keeps it; its report
 * is malloc'd into *report (the caller frees it; NULL: none, or no memory). */
static ds_drun_rec_srv_t rec_srv(const struct drun_srv *s, char **report)
{
    *report = s->res != NULL ? json_text(report_json, s) : NULL;
    return (ds_drun_rec_srv_t){
        .server = s->name,
        .result = s->result,
        .files_done = s->files_done,
        .files_total = s->files_total,
        .bytes_done = s->bytes_done,
        .bytes_total = s->bytes_total,
        .bytes_wire = s->bytes_wire,
        .report = *report,
        .rc = s->res != NULL ? s->res->rc : 0,
    };
}

/* Records ended run r in the catalog (a failure is logged: the run is
 * still listed until the daemon stops). */
static void persist(ds_daemon_t *d, const struct drun *r)
{
    ds_drun_rec_srv_t *v = calloc(r->n + 1, sizeof(*v));
    char **reports = calloc(r->n + 1, sizeof(*reports));
    char *classes = r->classes.n > 0 ? json_text(classes_json, &r->classes) : NULL;
    ds_drun_rec_t rec = {.id = r->id,
                         .trigger = r->trigger,
                         .state = r->state,
                         .reason = r->reason[0] ? r->reason : NULL,
                         .queued_at = r->queued_at,
                         .started_at = r->started_at,
                         .ended_at = r->ended_at,
                         .classes = classes,
                         .as_of = r->as_of_gen != 0 ? -r->as_of_gen : r->as_of,
                         .deltas_computed = r->deltas_computed,
                         .deltas_cached = r->deltas_cached,
                         .deltas_relevelled = r->deltas_relevelled,
                         .run_ms = r->run_ms,
                         .srv = v,
                         .n = r->n};
    int rc = DS_ENOMEM;

    for (size_t i = 0; v != NULL && reports != NULL && i < r->n; i++)
        v[i] = rec_srv(&r->srv[i], &reports[i]);
    if (v != NULL && reports != NULL && (r->classes.n == 0 || classes != NULL))
        rc = ds_daemon_run_put(ds_sync_catalog(d->o.sync), &rec, DS_DAEMON_RUNS_KEPT);
    if (rc < 0)
        ds_log(DS_LOG_WARN, "run %s: could not record the run: %s", r->id, ds_strerror(rc));
    for (size_t i = 0; reports != NULL && i < r->n; i++)
        free(reports[i]);
    free(reports);
    free(classes);
    free(v);
}

/* A state word of the catalog as one of the static words r->state holds. */
static const char *state_word(const char *s)
{
    static const char *const words[] = {"ok", "failed", "cancelled", "interrupted", "skipped"};

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcmp(s, words[i]) == 0)
            return words[i];
    return "failed";
}

/* The same for a server's result (ds_report_result_status's words). */
static const char *result_word(const char *s)
{
    static const char *const words[] = {"ok",          "partial", "failed", "cancelled",
                                        "interrupted", "frozen",  "busy",   "held"};

    for (size_t i = 0; s != NULL && i < sizeof(words) / sizeof(words[0]); i++)
        if (strcmp(s, words[i]) == 0)
            return words[i];
    return s != NULL ? "failed" : NULL;
}

/* A recorded run's classes (a JSON array of strings) into c. */
static int load_classes(ds_strlist_t *c, const char *text)
{
    json_t *a = json_loads(text, JSON_DECODE_ANY, NULL), *v;
    size_t i;
    int rc = 0;

    if (!json_is_array(a) || (c->v = calloc(json_array_size(a) + 1, sizeof(*c->v))) == NULL) {
        rc = json_is_array(a) ? DS_ENOMEM : 0; /* not an array: every class, as before */
        goto out;
    }
    json_array_foreach(a, i, v)
    {
        if (json_is_string(v) && (c->v[c->n] = strdup(json_string_value(v))) == NULL) {
            rc = DS_ENOMEM;
            goto out;
        }
        c->n += json_is_string(v);
    }
out:
    json_decref(a);
    return rc;
}

static int load_one(void *ctx, const ds_drun_rec_t *rec)
{
    ds_daemon_t *d = ctx;
    const char **names = calloc(rec->n + 1, sizeof(*names));
    struct drun *r;

    for (size_t i = 0; names != NULL && i < rec->n; i++)
        names[i] = rec->srv[i].server;
    r = names ? ds__drun_add(d, rec->id, rec->trigger, state_word(rec->state), names, rec->n)
              : NULL;
    free(names);
    if (r == NULL)
        return DS_ENOMEM;
    if (rec->reason != NULL)
        snprintf(r->reason, sizeof(r->reason), "%s", rec->reason);
    r->queued_at = rec->queued_at;
    r->started_at = rec->started_at;
    r->ended_at = rec->ended_at;
    r->as_of = rec->as_of > 0 ? rec->as_of : 0;
    r->as_of_gen = rec->as_of < 0 ? -rec->as_of : 0;
    r->deltas_computed = rec->deltas_computed;
    r->deltas_cached = rec->deltas_cached;
    r->deltas_relevelled = rec->deltas_relevelled;
    r->run_ms = rec->run_ms > 0 ? rec->run_ms : 0;
    if (rec->classes != NULL && load_classes(&r->classes, rec->classes) < 0)
        return DS_ENOMEM;
    for (size_t i = 0; i < rec->n; i++) {
        struct drun_srv *s = &r->srv[i];

        s->ended = 1;
        s->result = result_word(rec->srv[i].result);
        s->files_done = rec->srv[i].files_done;
        s->files_total = rec->srv[i].files_total;
        s->bytes_done = rec->srv[i].bytes_done;
        s->bytes_total = rec->srv[i].bytes_total;
        s->bytes_wire = rec->srv[i].bytes_wire;
        s->rc = rec->srv[i].rc;
        if (rec->srv[i].report != NULL)
            s->report = json_loads(rec->srv[i].report, JSON_DECODE_ANY, NULL);
    }
    return 0;
}

int ds__druns_load(ds_daemon_t *d)
{
    int rc = ds_daemon_run_list(ds_sync_catalog(d->o.sync), DS_DAEMON_RUNS_KEPT, load_one, d);

    if (rc < 0)
        ds_log(DS_LOG_WARN, "daemon: could not read the past runs: %s", ds_strerror(rc));
    return rc;
}

void ds__drun_end(ds_daemon_t *d, struct drun *r, const char *state, const char *reason)
{
    r->state = state;
    r->ended_at = ds_daemon_now(d);
    r->run_ms = r->mono_start_ms ? ds__daemon_mono_ms() - r->mono_start_ms : 0;
    if (reason != NULL && r->reason[0] == '\0')
        snprintf(r->reason, sizeof(r->reason), "%s", reason);
    if (d->cur == r)
        d->cur = NULL;
    persist(d, r);
    trim(d, r);
}

void ds__drun_result(struct drun *r, const char *srv, const ds_sync_result_t *res)
{
    for (size_t i = 0; i < r->n; i++) {
        struct drun_srv *s = &r->srv[i];

        if (strcmp(s->name, srv) != 0)
            continue;
        s->result = res->rc == DS_EFROZEN ? "frozen" : ds_report_result_status(res);
        s->ended = 1;
        free(s->res);
        s->res = malloc(sizeof(*s->res)); /* NULL: the result is not kept */
        if (s->res != NULL) {
            *s->res = *res;
            s->res->plan = NULL;
        }
        return;
    }
}

void ds__drun_progress(void *ctx, const ds_sync_progress_t *p)
{
    ds_daemon_t *d = ctx;
    struct drun *r = d->cur;

    for (size_t i = 0; r != NULL && p->server != NULL && i < r->n; i++) {
        struct drun_srv *s = &r->srv[i];

        if (strcmp(s->name, p->server) != 0)
            continue;
        s->files_done = p->files_done;
        s->files_total = p->files_total;
        s->bytes_done = p->bytes_done;
        s->bytes_total = p->bytes_total;
        s->bytes_wire = p->bytes_wire;
        return;
    }
}

/* Totals, rate (target bytes per second since the start) and ETA. */
static void progress_json(ds_json_t *j, const struct drun *r)
{
    uint64_t fd = 0, ft = 0, bd = 0, bt = 0, bw = 0;
    int64_t ms = r->ended_at        ? r->run_ms
                 : r->mono_start_ms ? ds__daemon_mono_ms() - r->mono_start_ms
                                    : 0;
    double secs = (double)ms / 1000, rate;

    for (size_t i = 0; i < r->n; i++) {
        fd += r->srv[i].files_done;
        ft += r->srv[i].files_total;
        bd += r->srv[i].bytes_done;
        bt += r->srv[i].bytes_total;
        bw += r->srv[i].bytes_wire;
    }
    rate = secs > 0 ? (double)bd / secs : 0;
    ds_json_key(j, "progress");
    ds_json_obj_begin(j);
    ds_json_kuint(j, "files_done", fd);
    ds_json_kuint(j, "files_total", ft);
    ds_json_kuint(j, "bytes_done", bd);
    ds_json_kuint(j, "bytes_total", bt);
    ds_json_kuint(j, "bytes_wire", bw);
    ds_json_kdouble(j, "rate_bps", rate * 8);
    ds_json_key(j, "eta_s");
    if (strcmp(r->state, "running") == 0 && rate > 0 && bt >= bd)
        ds_json_double(j, (double)(bt - bd) / rate);
    else
        ds_json_null(j);
    ds_json_obj_end(j);
}

void ds__drun_json(ds_json_t *j, const ds_daemon_t *d, const struct drun *r)
{
    (void)d;
    ds_json_obj_begin(j);
    ds_json_kstr(j, "id", r->id);
    ds_json_kstr(j, "trigger", r->trigger);
    ds_json_kstr(j, "state", r->state);
    ds_json_kstr(j, "reason", r->reason[0] ? r->reason : NULL);
    ds__daemon_kiso(j, "queued_at", r->queued_at);
    ds__daemon_kiso(j, "started_at", r->started_at);
    ds__daemon_kiso(j, "ended_at", r->ended_at);
    if (r->as_of_gen != 0) {
        char gen[32];

        snprintf(gen, sizeof(gen), "scan:%lld", (long long)r->as_of_gen);
        ds_json_kstr(j, "as_of", gen);
    } else {
        ds__daemon_kiso(j, "as_of", r->as_of);
    }
    ds_json_key(j, "classes");
    if (r->classes.n == 0) {
        ds_json_null(j);
    } else {
        ds_json_arr_begin(j);
        for (size_t i = 0; i < r->classes.n; i++)
            ds_json_str(j, r->classes.v[i]);
        ds_json_arr_end(j);
    }
    progress_json(j, r);
    ds_json_key(j, "servers");
    ds_json_arr_begin(j);
    for (size_t i = 0; i < r->n; i++) {
        const struct drun_srv *s = &r->srv[i];

        ds_json_obj_begin(j);
        ds_json_kstr(j, "server", s->name);
        ds_json_kstr(j, "result", s->result);
        ds_json_kuint(j, "files_done", s->files_done);
        ds_json_kuint(j, "files_total", s->files_total);
        ds_json_kuint(j, "bytes_done", s->bytes_done);
        ds_json_kuint(j, "bytes_total", s->bytes_total);
        ds_json_kuint(j, "bytes_wire", s->bytes_wire);
        /* ended: rc and the object sync --json prints for the server (after
         * a restart: as the catalog kept it) */
        ds_json_key(j, "rc");
        if (s->res != NULL || s->report != NULL)
            ds_json_int(j, s->res != NULL ? s->res->rc : s->rc);
        else
            ds_json_null(j);
        ds_json_key(j, "report");
        if (s->res != NULL)
            ds_report_result_json(j, s->name, s->res);
        else if (s->report != NULL)
            ds_json_value(j, s->report);
        else
            ds_json_null(j);
        ds_json_obj_end(j);
    }
    ds_json_arr_end(j);
    ds_json_key(j, "deltas");
    ds_json_obj_begin(j);
    ds_json_kuint(j, "computed", r->deltas_computed);
    ds_json_kuint(j, "cached", r->deltas_cached);
    ds_json_kuint(j, "relevelled", r->deltas_relevelled);
    ds_json_obj_end(j);
    ds_json_obj_end(j);
}

void ds__druns_free(ds_daemon_t *d)
{
    for (size_t i = 0; i < d->nruns; i++)
        run_free(d->runs[i]);
    free(d->runs);
    d->runs = NULL;
    d->nruns = 0;
    d->cur = NULL;
}

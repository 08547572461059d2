/*
 * A verify run (verify.h) on the engine: the run's read-only session (no
 * lease) HASHes every manifest entry on the target once it is READY (the
 * HASH phase of sync_run.c), each answer is compared here with its entry,
 * and the run's record is a "verify" run with one event per drifted,
 * missing or unreadable file. Connect, the agent under the engine's loop,
 * the inactivity timeout, cancel and close are the sync run's own. Also
 * the verify result's helpers (ds_verify_found, ds_verify_result_clear).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "distsync/error.h"
#include "distsync/events.h"
#include "distsync/log.h"
#include "sync_run_int.h"

void ds__run_set_verify(ds_run_t *r, ds_verify_result_t *v)
{
    r->vres = v;
}

void ds__run_verify_record(struct ds_run *r)
{
    ds_sync_t *s = r->sy;

    if (ds_run_begin_kind(s->cat, r->srv->name, r->srv->url, r->trigger ? r->trigger : "manual",
                          "verify", time(NULL), &r->run_id) < 0) {
        ds_log(DS_LOG_WARN, "server %s: cannot record the verify run in the catalog", r->srv->name);
        r->run_id = 0;
    }
}

/* 1 when path's top-level folder is one of the run's classes (NULL:
 * every class). */
static int in_only(const ds_strlist_t *only, const char *path)
{
    size_t len = strcspn(path, "/");

    for (size_t i = 0; only != NULL && i < only->n; i++)
        if (strlen(only->v[i]) == len && memcmp(only->v[i], path, len) == 0)
            return 1;
    return only == NULL;
}

int ds__run_verify_begin(struct ds_run *r)
{
    const ds_manifest_t *man = ds_session_manifest(r->ss);
    ds_verify_result_t *v = r->vres;
    size_t n = 0, k = 0;
    int rc = 0;

    ds_verify_result_clear(v); /* a reconnect hashes everything again */
    v->files = v->verified = v->bytes_hashed = 0;
    free(r->vman);
    r->vman = NULL;
    r->files_done = r->bytes_done = r->bytes_total = 0;
    if (man != NULL && ds_manifest_sorted(man, &r->vman, &n) < 0)
        return ds__run_fail(r, DS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) /* verify --class: those classes only */
        if (in_only(r->only, r->vman[i]->path))
            r->vman[k++] = r->vman[i];
    r->vn = k;
    ds_log(DS_LOG_DEBUG, "server %s: hashing %zu files", r->srv->name, k);
    v->files = r->files_total = k;
    for (size_t i = 0; rc == 0 && i < k; i++) {
        r->bytes_total += r->vman[i]->size;
        rc = ds_session_hash(r->ss, r->vman[i]->path, i);
    }
    if (rc < 0)
        return ds__run_fail(r, rc, "cannot queue HASH: %s", ds_strerror(rc));
    return 0;
}

static int add_drift(struct ds_run *r, const ds_manifest_entry_t *m, const ds_session_result_t *x)
{
    ds_verify_result_t *v = r->vres;
    ds_verify_drift_t *d;
    void *p = realloc(v->drifted, (v->ndrifted + 1) * sizeof(*d));
    char want[2 * DS_SHA256_LEN + 1], have[2 * DS_SHA256_LEN + 1], msg[300];

    if (p == NULL)
        return DS_ENOMEM;
    v->drifted = p;
    d = &v->drifted[v->ndrifted];
    memset(d, 0, sizeof(*d));
    if ((d->path = strdup(m->path)) == NULL)
        return DS_ENOMEM;
    v->ndrifted++;
    d->want_size = m->size;
    d->have_size = x->size;
    memcpy(d->want_sha256, m->sha256, DS_SHA256_LEN);
    memcpy(d->have_sha256, x->sha256, DS_SHA256_LEN);
    ds_hex(m->sha256, DS_SHA256_LEN, want);
    ds_hex(x->sha256, DS_SHA256_LEN, have);
    snprintf(msg, sizeof(msg), "sha256 %s size %llu, manifest says sha256 %s size %llu", have,
             (unsigned long long)x->size, want, (unsigned long long)m->size);
    ds__run_event(r, DS_EV_WARNING, DS_LOG_WARN, m->path, "drifted", msg);
    return 0;
}

static int add_missing(struct ds_run *r, const ds_manifest_entry_t *m, const char *why)
{
    ds_verify_result_t *v = r->vres;
    void *p = realloc(v->missing, (v->nmissing + 1) * sizeof(char *));

    if (p == NULL)
        return DS_ENOMEM;
    v->missing = p;
    if ((v->missing[v->nmissing] = strdup(m->path)) == NULL)
        return DS_ENOMEM;
    v->nmissing++;
    ds__run_event(r, DS_EV_WARNING, DS_LOG_WARN, m->path, "missing", why);
    return 0;
}

static int add_error(struct ds_run *r, const ds_manifest_entry_t *m, const char *why)
{
    ds_verify_result_t *v = r->vres;
    ds_verify_error_t *e;
    void *p = realloc(v->errors, (v->nerrors + 1) * sizeof(*e));

    if (p == NULL)
        return DS_ENOMEM;
    v->errors = p;
    e = &v->errors[v->nerrors];
    e->path = strdup(m->path);
    e->message = strdup(why);
    if (e->path == NULL || e->message == NULL) {
        free(e->path);
        free(e->message);
        return DS_ENOMEM;
    }
    v->nerrors++;
    ds__run_event(r, DS_EV_WARNING, DS_LOG_ERROR, m->path, "failed", why);
    return 0;
}

int ds__run_verify_result(struct ds_run *r, const ds_session_result_t *x)
{
    ds_verify_result_t *v = r->vres;
    const ds_manifest_entry_t *m;
    int rc;

    if (x->tag >= r->vn)
        return 0;
    m = r->vman[x->tag];
    r->files_done++;
    r->bytes_done += m->size;
    if (x->rc == -ENOENT || x->rc == DS_ENOTREG)
        rc = add_missing(r, m, x->message);
    else if (x->rc < 0)
        rc = add_error(r, m, x->message[0] ? x->message : ds_strerror(x->rc));
    else if (v->bytes_hashed += x->size,
             x->size != m->size || memcmp(x->sha256, m->sha256, DS_SHA256_LEN) != 0)
        rc = add_drift(r, m, x);
    else
        rc = 0, v->verified++;
    return rc < 0 ? ds__run_fail(r, rc, "%s", ds_strerror(rc)) : 0;
}

void ds__run_verify_end(struct ds_run *r)
{
    ds_verify_result_t *v = r->vres;
    const ds_sync_result_t *res = r->res;
    const char *status;
    ds_run_totals_t tot = {.files_failed = v->ndrifted + v->nmissing + v->nerrors,
                           .bytes_wire = res->bytes_wire};
    char msg[200];
    int rc;

    v->rc = res->rc;
    snprintf(v->error, sizeof(v->error), "%s", res->error);
    v->elapsed_s = res->elapsed_s;
    status = v->rc == -ECANCELED  ? "cancelled"
             : v->rc < 0          ? "failed"
             : ds_verify_found(v) ? "drift"
                                  : "ok";
    snprintf(msg, sizeof(msg), "%llu drifted, %llu missing, %llu unreadable of %llu",
             (unsigned long long)v->ndrifted, (unsigned long long)v->nmissing,
             (unsigned long long)v->nerrors, (unsigned long long)v->files);
    if (r->run_id <= 0)
        return;
    rc = ds_run_end(r->sy->cat, r->run_id, status, &tot,
                    v->rc < 0              ? v->error
                    : strcmp(status, "ok") ? msg
                                           : NULL,
                    time(NULL));
    if (rc < 0 && v->rc == 0) { /* as a sync run's record (report_record) */
        v->rc = rc;
        snprintf(v->error, sizeof(v->error),
                 "server %s: catalog %s: cannot record the verify run: %s", r->srv->name,
                 ds_catalog_name(r->sy->cat), ds_strerror(rc));
    }
}

int ds_verify_found(const ds_verify_result_t *v)
{
    return v->ndrifted > 0 || v->nmissing > 0 || v->nerrors > 0;
}

void ds_verify_result_clear(ds_verify_result_t *res)
{
    for (size_t i = 0; i < res->ndrifted; i++)
        free(res->drifted[i].path);
    for (size_t i = 0; i < res->nmissing; i++)
        free(res->missing[i]);
    for (size_t i = 0; i < res->nerrors; i++) {
        free(res->errors[i].path);
        free(res->errors[i].message);
    }
    free(res->drifted);
    free(res->missing);
    free(res->errors);
    res->drifted = NULL;
    res->missing = NULL;
    res->errors = NULL;
    res->ndrifted = res->nmissing = res->nerrors = 0;
}

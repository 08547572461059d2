/* Reports from plans and run results: the file status categories, the
 * server's verdict, and their JSON (see include/distsync/report.h). */
#include <errno.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/report.h"

static const char *const fs_names[DS_FS__N] = {"missing", "outdated",   "drifted", "unrecorded",
                                               "extra",   "unreadable", "in_sync"};

const char *ds_fstatus_name(ds_fstatus_t s)
{
    return s < DS_FS__N ? fs_names[s] : "none";
}

ds_fstatus_t ds_report_fstatus(const ds_plan_item_t *it)
{
    if (it->drifted)
        return DS_FS_DRIFTED;
    switch (it->action) {
    case DS_PLAN_KEEP:
        return DS_FS_IN_SYNC;
    case DS_PLAN_CREATE:
        return DS_FS_MISSING;
    case DS_PLAN_UPDATE:
        return it->method == DS_PLAN_ADOPT ? DS_FS_UNRECORDED : DS_FS_OUTDATED;
    case DS_PLAN_EXTRA:
        return DS_FS_EXTRA;
    case DS_PLAN_UNREADABLE: /* in the store, but the scan could not read it */
        return DS_FS_UNREADABLE;
    case DS_PLAN_DELETE:
        return it->present ? DS_FS_EXTRA : DS_FS_NONE;
    }
    return DS_FS_NONE;
}

void ds_report_count(const ds_plan_t *p, ds_status_counts_t *c)
{
    *c = (ds_status_counts_t){0};
    for (size_t i = 0; i < p->n; i++) {
        ds_fstatus_t s = ds_report_fstatus(&p->items[i]);

        if (s == DS_FS_NONE)
            continue;
        c->n[s]++;
        c->bytes[s] += p->items[i].size;
        c->total++;
    }
}

ds_verdict_t ds_report_verdict(const ds_plan_t *p)
{
    ds_verdict_t v = DS_VERDICT_IN_SYNC;

    for (size_t i = 0; i < p->n; i++) {
        const ds_plan_item_t *it = &p->items[i];
        ds_fstatus_t s = ds_report_fstatus(it);

        if (s == DS_FS_DRIFTED)
            return DS_VERDICT_DRIFT;
        /* an unreadable store file: the server lacks what it should get,
         * and every sync fails until a scan can read it; an extra file is
         * work only when prune would delete it */
        if (s == DS_FS_MISSING || s == DS_FS_OUTDATED || s == DS_FS_UNRECORDED ||
            s == DS_FS_UNREADABLE || (s == DS_FS_EXTRA && it->action == DS_PLAN_DELETE))
            v = DS_VERDICT_PENDING;
    }
    return v;
}

static const char *const verdict_names[] = {
    [DS_VERDICT_IN_SYNC] = "in_sync",
    [DS_VERDICT_PENDING] = "pending",
    [DS_VERDICT_DRIFT] = "drift",
};

const char *ds_verdict_name(ds_verdict_t v)
{
    return (unsigned)v < sizeof(verdict_names) / sizeof(verdict_names[0]) ? verdict_names[v]
                                                                          : "in_sync";
}

int ds_verdict_parse(const char *name, ds_verdict_t *v)
{
    for (size_t k = 0; name != NULL && k < sizeof(verdict_names) / sizeof(verdict_names[0]); k++) {
        if (strcmp(name, verdict_names[k]) == 0) {
            *v = (ds_verdict_t)k;
            return 0;
        }
    }
    return DS_ENOTFOUND;
}

const char *ds_report_result_status(const ds_sync_result_t *r)
{
    return r->rc == 0            ? "ok"
           : r->rc == DS_EHELD   ? "held"
           : r->rc == DS_ELEASE  ? "busy"
           : r->rc == -ECANCELED ? "cancelled"
                                 : "failed";
}

static void retain_json(ds_json_t *j, const ds_retain_usage_t *ru)
{
    /* the console's retain store, shared by every server (the same in each
     * entry, so an array of servers stays an array of servers) */
    ds_json_key(j, "console_retain");
    ds_json_obj_begin(j);
    ds_json_kuint(j, "versions", ru->versions);
    ds_json_kuint(j, "stored_bytes", ru->stored_bytes);
    ds_json_kuint(j, "file_bytes", ru->file_bytes);
    ds_json_obj_end(j);
}

/* "missing": [{path, class, size}...] for one category. */
static void category_json(ds_json_t *j, const ds_plan_t *p, ds_fstatus_t s)
{
    ds_json_key(j, ds_fstatus_name(s));
    ds_json_arr_begin(j);
    for (size_t i = 0; i < p->n; i++) {
        const ds_plan_item_t *it = &p->items[i];

        if (ds_report_fstatus(it) != s)
            continue;
        ds_json_obj_begin(j);
        ds_json_kstr(j, "path", it->path);
        ds_json_kstr(j, "class", it->klass);
        ds_json_kuint(j, "size", it->size);
        ds_json_obj_end(j);
    }
    ds_json_arr_end(j);
}

void ds_report_status_json(ds_json_t *j, const char *server, const ds_plan_t *p,
                           const ds_retain_usage_t *retain)
{
    ds_status_counts_t c;

    ds_report_count(p, &c);
    ds_json_obj_begin(j);
    ds_json_kstr(j, "server", server);
    ds_json_kstr(j, "status", "ok");
    ds_json_key(j, "error");
    ds_json_null(j);
    retain_json(j, retain);
    for (int s = 0; s < DS_FS_LISTED; s++)
        category_json(j, p, (ds_fstatus_t)s);
    ds_json_key(j, "counts");
    ds_json_obj_begin(j);
    for (int s = 0; s < DS_FS__N; s++)
        ds_json_kuint(j, fs_names[s], c.n[s]);
    ds_json_kuint(j, "total", c.total);
    ds_json_obj_end(j);
    ds_json_key(j, "bytes");
    ds_json_obj_begin(j);
    for (int s = 0; s < DS_FS_LISTED; s++)
        ds_json_kuint(j, fs_names[s], c.bytes[s]);
    ds_json_obj_end(j);
    ds_json_obj_end(j);
}

void ds_report_failed_json(ds_json_t *j, const char *server, const char *error)
{
    ds_json_obj_begin(j);
    ds_json_kstr(j, "server", server);
    ds_json_kstr(j, "status", "failed");
    ds_json_kstr(j, "error", error);
    ds_json_obj_end(j);
}

static void item_json(ds_json_t *j, const ds_plan_item_t *it)
{
    ds_json_obj_begin(j);
    ds_json_kstr(j, "action", ds_plan_action_name(it->action));
    ds_json_kstr(j, "path", it->path);
    ds_json_kstr(j, "class", it->klass);
    ds_json_kuint(j, "size", it->size);
    ds_json_key(j, "basis");
    if (it->basis)
        ds_json_str(j, it->basis);
    else
        ds_json_null(j);
    ds_json_kstr(j, "method", ds_plan_method_name(it->method));
    ds_json_kuint(j, "est_bytes", it->est_bytes);
    ds_json_kbool(j, "drifted", it->drifted);
    ds_json_kbool(j, "unknown", it->unknown);
    ds_json_kbool(j, "held", it->held);
    ds_json_obj_end(j);
}

static void totals_json(ds_json_t *j, const ds_plan_totals_t *t)
{
    ds_json_key(j, "totals");
    ds_json_obj_begin(j);
    ds_json_kuint(j, "create", t->create);
    ds_json_kuint(j, "update", t->update);
    ds_json_kuint(j, "delete", t->del);
    ds_json_kuint(j, "keep", t->keep);
    ds_json_kuint(j, "extra", t->extra);
    ds_json_kuint(j, "drifted", t->drifted);
    ds_json_kuint(j, "held", t->held);
    ds_json_kuint(j, "unreadable", t->unreadable);
    ds_json_kuint(j, "bytes_new", t->bytes_new);
    ds_json_kuint(j, "est_bytes", t->est_bytes);
    ds_json_obj_end(j);
}

void ds_report_plan_json(ds_json_t *j, const char *server, const ds_plan_t *p)
{
    ds_json_obj_begin(j);
    ds_json_kstr(j, "server", server);
    ds_json_key(j, "items");
    ds_json_arr_begin(j);
    for (size_t i = 0; i < p->n; i++)
        item_json(j, &p->items[i]);
    ds_json_arr_end(j);
    totals_json(j, &p->totals);
    ds_json_obj_end(j);
}

void ds_report_result_json(ds_json_t *j, const char *server, const ds_sync_result_t *r)
{
    ds_json_obj_begin(j);
    ds_json_kstr(j, "server", server);
    ds_json_kstr(j, "status", ds_report_result_status(r));
    ds_json_key(j, "error");
    if (r->rc < 0)
        ds_json_str(j, r->error);
    else
        ds_json_null(j);
    ds_json_kuint(j, "created", r->created);
    ds_json_kuint(j, "updated", r->updated + r->adopted);
    ds_json_kuint(j, "adopted", r->adopted);
    ds_json_kuint(j, "deleted", r->deleted);
    ds_json_kuint(j, "failed_files", r->failed_files);
    ds_json_kuint(j, "bytes_wire", r->bytes_wire);
    ds_json_kuint(j, "bytes_received", r->bytes_received);
    ds_json_kuint(j, "bytes_literal", r->bytes_literal);
    ds_json_kuint(j, "bytes_copied", r->bytes_copied);
    ds_json_kuint(j, "quick_deltas", r->quick_deltas);
    ds_json_kuint(j, "bytes_target", r->bytes_target);
    ds_json_kdouble(j, "elapsed_s", r->elapsed_s);
    ds_json_obj_end(j);
}

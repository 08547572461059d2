/*
 * The run history as JSON (events.h: ds_history_json): the document
 * `distsync history --json` prints and the daemon's GET /v1/history
 * serves, one writer for both.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "distsync/events.h"
#include "distsync/json.h"
#include "distsync/tz.h"

struct hj {
    ds_json_t *j;
    ds_catalog_t *cat;
    const char *const *servers;
    size_t nservers;
    int64_t limit;
    int events, nruns;
};

/* RFC 3339 UTC; "-" for 0. */
static void fmt_time(char *buf, size_t len, int64_t s)
{
    if (s == 0 || ds_tz_format_utc(s, buf, len) < 0)
        snprintf(buf, len, "-");
}

const char *ds_log_level_name(ds_log_level_t l)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};

    return (int)l >= 0 && (int)l < 4 ? names[l] : "?";
}

static void kstr_null(ds_json_t *j, const char *key, const char *s)
{
    ds_json_key(j, key);
    if (s != NULL)
        ds_json_str(j, s);
    else
        ds_json_null(j);
}

static int event_json(void *ctx, const ds_event_info_t *e)
{
    ds_json_t *j = ((struct hj *)ctx)->j;
    char at[40];

    fmt_time(at, sizeof(at), e->ev.at);
    ds_json_obj_begin(j);
    ds_json_kint(j, "id", e->id);
    ds_json_kstr(j, "at", at);
    ds_json_kint(j, "at_unix", e->ev.at);
    ds_json_kstr(j, "level", ds_log_level_name(e->ev.level));
    ds_json_kstr(j, "kind", e->kind);
    kstr_null(j, "path", e->ev.path);
    kstr_null(j, "outcome", e->ev.outcome);
    ds_json_kuint(j, "bytes_literal", e->ev.bytes_literal);
    ds_json_kuint(j, "bytes_copied", e->ev.bytes_copied);
    ds_json_kuint(j, "bytes_wire", e->ev.bytes_wire);
    kstr_null(j, "message", e->ev.message);
    ds_json_obj_end(j);
    return 0;
}

static void run_fields(ds_json_t *j, const ds_run_info_t *r)
{
    char start[40], end[40];

    fmt_time(start, sizeof(start), r->started_at);
    fmt_time(end, sizeof(end), r->ended_at);
    ds_json_kint(j, "id", r->id);
    ds_json_kstr(j, "server", r->server);
    kstr_null(j, "url", r->url);
    ds_json_kstr(j, "trigger", r->trigger);
    ds_json_kstr(j, "started_at", start);
    ds_json_kint(j, "started_at_unix", r->started_at);
    kstr_null(j, "ended_at", r->ended_at ? end : NULL);
    ds_json_key(j, "duration_s");
    if (r->ended_at)
        ds_json_int(j, r->ended_at - r->started_at);
    else
        ds_json_null(j);
    ds_json_kstr(j, "status", r->status);
    ds_json_kstr(j, "kind", r->kind ? r->kind : "sync");
    ds_json_kuint(j, "files_created", r->totals.files_created);
    ds_json_kuint(j, "files_updated", r->totals.files_updated);
    ds_json_kuint(j, "files_deleted", r->totals.files_deleted);
    ds_json_kuint(j, "files_failed", r->totals.files_failed);
    ds_json_kuint(j, "bytes_wire", r->totals.bytes_wire);
    ds_json_kuint(j, "bytes_literal", r->totals.bytes_literal);
    ds_json_kuint(j, "bytes_copied", r->totals.bytes_copied);
    kstr_null(j, "error", r->error);
}

static int run_json(void *ctx, const ds_run_info_t *r)
{
    struct hj *h = ctx;
    int wanted = h->servers == NULL, rc = 0;

    for (size_t i = 0; !wanted && i < h->nservers; i++)
        wanted = strcmp(h->servers[i], r->server) == 0;
    if (!wanted)
        return 0;
    if (h->limit > 0 && h->nruns >= h->limit)
        return 1; /* enough: stops the listing */
    h->nruns++;
    ds_json_obj_begin(h->j);
    run_fields(h->j, r);
    if (h->events) {
        ds_json_key(h->j, "events");
        ds_json_arr_begin(h->j);
        rc = ds_run_events(h->cat, r->id, event_json, h);
        ds_json_arr_end(h->j);
    }
    ds_json_obj_end(h->j);
    return rc;
}

int ds_history_json(ds_json_t *j, ds_catalog_t *cat, const char *const *servers, size_t nservers,
                    int64_t limit, int events)
{
    struct hj h = {.j = j,
                   .cat = cat,
                   .servers = servers,
                   .nservers = nservers,
                   .limit = limit,
                   .events = events};
    int rc = 0;

    ds_json_arr_begin(j);
    if (cat != NULL)
        rc = ds_run_list(cat, nservers == 1 ? servers[0] : NULL, nservers == 1 ? limit : 0,
                         run_json, &h);
    ds_json_arr_end(j);
    return rc > 0 ? 0 : rc;
}

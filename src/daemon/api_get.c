/*
 * The API's GET handlers: servers (with the file status report as this
 * console last left each one), sites (the caps in effect now), schedules
 * (next and last fire), schedule previews, runs (live and past, with
 * progress). Read-only: they change nothing.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_int.h"
#include "distsync/bandwidth.h"
#include "distsync/events.h"
#include "distsync/freeze.h"
#include "distsync/report.h"
#include "distsync/tz.h"

static void strlist(ds_json_t *j, const char *key, const ds_strlist_t *l)
{
    ds_json_key(j, key);
    ds_json_arr_begin(j);
    for (size_t i = 0; i < l->n; i++)
        ds_json_str(j, l->v[i]);
    ds_json_arr_end(j);
}

/* ---- servers ---- */

struct last {
    ds_json_t *j;
    int n;
};

static int last_run(void *ctx, const ds_run_info_t *r)
{
    struct last *l = ctx;
    ds_json_t *j = l->j;

    l->n = 1;
    ds_json_obj_begin(j);
    ds_json_kint(j, "id", r->id);
    ds_json_kstr(j, "trigger", r->trigger);
    ds_json_kstr(j, "status", r->status);
    ds__daemon_kiso(j, "started_at", r->started_at);
    ds__daemon_kiso(j, "ended_at", r->ended_at);
    ds_json_kstr(j, "error", r->error);
    ds_json_obj_end(j);
    return 0;
}

static void server_json(ds_daemon_t *d, const ds_server_cfg_t *s, const ds_retain_usage_t *ru,
                        ds_json_t *j)
{
    ds_catalog_t *cat = ds_sync_catalog(d->o.sync);
    ds_plan_t *plan = NULL;
    struct last l = {.j = j, .n = 0};
    ds_freeze_t f;
    char err[256];
    int rc;

    ds_json_obj_begin(j);
    ds_json_kstr(j, "server", s->name);
    ds_json_kstr(j, "site", s->site);
    ds_json_kstr(j, "url", s->url);
    strlist(j, "classes", &s->classes);
    ds_json_key(j, "frozen"); /* on the real clock, as the engine reads it */
    if (ds_freeze_get(cat, s->name, (int64_t)time(NULL), &f) == 0) {
        ds_json_obj_begin(j);
        ds__daemon_kiso(j, "until", f.until);
        ds__daemon_kiso(j, "frozen_at", f.frozen_at);
        ds_json_kstr(j, "reason", f.reason[0] ? f.reason : NULL);
        ds_json_obj_end(j);
    } else {
        ds_json_null(j);
    }
    ds_json_key(j, "last_run");
    (void)ds_run_list(cat, s->name, 1, last_run, &l); /* an error: null */
    if (!l.n)
        ds_json_null(j);
    ds_json_key(j, "report");
    rc = ds_sync_plan_known(d->o.sync, s, &plan);
    if (rc == 0 && plan != NULL) {
        ds_report_status_json(j, s->name, plan, ru);
    } else if (rc < 0) {
        snprintf(err, sizeof(err), "server %s: cannot plan from the catalog: %s", s->name,
                 ds_strerror(rc));
        ds_report_failed_json(j, s->name, err);
    } else {
        ds_json_null(j); /* never synced: its files are not known */
    }
    ds_plan_free(plan);
    ds_json_obj_end(j);
}

void ds__api_get_servers(ds_daemon_t *d, struct api_res *rs)
{
    ds_retain_usage_t ru = {0};
    struct api_out o;

    if (ds__api_begin(&o) < 0) {
        ds__api_error(rs, 500, "out of memory");
        return;
    }
    (void)ds_sync_retain_usage(d->o.sync, &ru); /* zeros when unreadable */
    ds_json_obj_begin(&o.j);
    ds_json_key(&o.j, "servers");
    ds_json_arr_begin(&o.j);
    for (size_t i = 0; i < d->cfg->nservers; i++)
        server_json(d, &d->cfg->servers[i], &ru, &o.j);
    ds_json_arr_end(&o.j);
    ds_json_obj_end(&o.j);
    ds__api_end(&o, rs, 200);
}

/* ---- sites ---- */

/* {"table": TEXT|null, "now": RATE, "next_change": TIME|null} of cap b at
 * now in zone tz_name (NULL: the console's). */
static void cap_json(ds_json_t *j, const char *key, const ds_bw_cfg_t *b, const char *tz_name,
                     int64_t now)
{
    char text[2 * DS_BW_TEXT_MAX], rate[64];
    uint64_t bps = DS_BW_OFF;
    int64_t next = DS_BW_NEVER;
    ds_tz_t *tz = NULL;
    int rc = 0;

    ds_json_key(j, key);
    ds_json_obj_begin(j);
    if (b->line == 0) {
        ds_json_key(j, "table");
        ds_json_null(j);
    } else {
        rc = ds_bw_format(&b->table, text, sizeof(text));
        ds_json_kstr(j, "table", rc == 0 ? text : NULL);
        rc = ds_tz_load(tz_name, &tz);
        if (rc == 0)
            rc = ds_bw_rate_at(&b->table, tz, now, &bps, &next);
    }
    if (rc < 0) {
        ds_json_kstr(j, "error", ds_strerror(rc));
    } else {
        (void)ds_bw_format_rate(bps, rate, sizeof(rate)); /* 64 bytes always fit */
        ds_json_kstr(j, "now", rate);
        ds_json_key(j, "now_bps");
        if (bps == DS_BW_OFF)
            ds_json_null(j);
        else
            ds_json_uint(j, bps);
        ds__daemon_kiso(j, "next_change", next == DS_BW_NEVER ? 0 : next);
    }
    ds_tz_free(tz);
    ds_json_obj_end(j);
}

void ds__api_get_sites(ds_daemon_t *d, struct api_res *rs)
{
    const ds_config_t *cfg = d->cfg;
    int64_t now = ds_daemon_now(d);
    struct api_out o;
    uint64_t up_bytes;
    unsigned up_active;

    if (ds__api_begin(&o) < 0) {
        ds__api_error(rs, 500, "out of memory");
        return;
    }
    ds_json_obj_begin(&o.j);
    ds_json_key(&o.j, "console");
    ds_json_obj_begin(&o.j);
    ds_json_kuint(&o.j, "max_servers", cfg->max_servers ? cfg->max_servers : DS_ENGINE_MAX_SERVERS);
    cap_json(&o.j, "bandwidth", &cfg->bandwidth, NULL, now);
    ds_json_obj_end(&o.j);
    ds_json_key(&o.j, "sites");
    ds_json_arr_begin(&o.j);
    for (size_t i = 0; i < cfg->nsites; i++) {
        const ds_site_cfg_t *st = &cfg->sites[i];

        ds_json_obj_begin(&o.j);
        ds_json_kstr(&o.j, "site", st->name);
        ds_json_kstr(&o.j, "tz", st->tz);
        ds_json_kuint(&o.j, "max_servers",
                      st->max_servers ? st->max_servers : DS_ENGINE_SITE_MAX_SERVERS);
        cap_json(&o.j, "bandwidth", &st->bandwidth, st->tz, now);
        (void)ds__api_package_site(d, st->name, &up_bytes, &up_active);
        ds_json_kuint(&o.j, "upgrade_bytes", up_bytes); /* GET /v1/upgrade/package, measured */
        ds_json_kuint(&o.j, "upgrade_downloads", up_active);
        ds_json_key(&o.j, "servers");
        ds_json_arr_begin(&o.j);
        for (size_t k = 0; k < cfg->nservers; k++)
            if (cfg->servers[k].site && strcmp(cfg->servers[k].site, st->name) == 0)
                ds_json_str(&o.j, cfg->servers[k].name);
        ds_json_arr_end(&o.j);
        ds_json_obj_end(&o.j);
    }
    ds_json_arr_end(&o.j);
    ds_json_obj_end(&o.j);
    ds__api_end(&o, rs, 200);
}

/* ---- schedules ---- */

void ds__api_get_schedules(ds_daemon_t *d, struct api_res *rs)
{
    ds_catalog_t *cat = ds_sync_catalog(d->o.sync);
    struct api_out o;

    if (ds__api_begin(&o) < 0) {
        ds__api_error(rs, 500, "out of memory");
        return;
    }
    ds_json_obj_begin(&o.j);
    ds_json_key(&o.j, "schedules");
    ds_json_arr_begin(&o.j);
    for (size_t i = 0; i < d->n; i++) {
        const struct dsched *sc = &d->v[i];
        ds_schedule_fire_t last;
        int64_t next = 0;

        if (ds_schedule_next(sc->s, sc->after, &next) < 0)
            next = 0; /* a past "once" */
        ds_json_obj_begin(&o.j);
        ds_json_kstr(&o.j, "schedule", sc->cfg->name);
        ds_json_kstr(&o.j, "when", sc->cfg->when);
        ds_json_kstr(&o.j, "tz", sc->cfg->tz);
        ds_json_kstr(&o.j, "window", sc->cfg->window);
        strlist(&o.j, "servers", &sc->cfg->servers);
        strlist(&o.j, "sites", &sc->cfg->sites);
        strlist(&o.j, "classes", &sc->cfg->classes);
        ds__daemon_kiso(&o.j, "next_fire", next);
        ds_json_key(&o.j, "last_fire");
        if (ds_schedule_fire_last(cat, sc->cfg->name, &last) == 0) {
            ds_json_obj_begin(&o.j);
            ds__daemon_kiso(&o.j, "fire", last.fire);
            ds_json_kstr(&o.j, "outcome", last.outcome);
            ds_json_kstr(&o.j, "reason", last.reason[0] ? last.reason : NULL);
            ds_json_obj_end(&o.j);
        } else {
            ds_json_null(&o.j);
        }
        ds_json_obj_end(&o.j);
    }
    ds_json_arr_end(&o.j);
    ds_json_obj_end(&o.j);
    ds__api_end(&o, rs, 200);
}

/* ?count=N (1..10000, default 10) and ?from=RFC3339 (default: now).
 * Returns 0, or replies 400 and returns -1. */
static int preview_args(ds_daemon_t *d, const struct api_req *rq, long *count, int64_t *from,
                        struct api_res *rs)
{
    char buf[128], *end;
    int q = ds__api_query(rq->path, rq->path_len, "count", buf, sizeof(buf));

    *count = 10;
    *from = ds_daemon_now(d);
    if (q < 0 || (q == 1 && ((*count = strtol(buf, &end, 10)) < 1 || *count > 10000 ||
                             *end != '\0' || buf[0] == '\0'))) {
        ds__api_error(rs, 400, "count: expected a number from 1 to 10000");
        return -1;
    }
    q = ds__api_query(rq->path, rq->path_len, "from", buf, sizeof(buf));
    if (q < 0 || (q == 1 && ds_tz_parse_rfc3339(buf, from) < 0)) {
        ds__api_error(rs, 400, "from: expected an RFC 3339 time such as 2026-12-01T02:00:00Z");
        return -1;
    }
    return 0;
}

/* ["TIME", ...]: as `distsync schedule next NAME --json` prints. */
static int fires_json(ds_json_t *j, const struct dsched *sc, long count, int64_t from)
{
    int64_t t = from, fire;
    char buf[64];
    int rc = 0;

    ds_json_arr_begin(j);
    for (long i = 0; i < count; i++) {
        rc = ds_schedule_next(sc->s, t, &fire);
        if (rc == DS_ENOTFOUND) {
            rc = 0;
            break;
        }
        if (rc == 0)
            rc = ds_tz_format_rfc3339(ds_schedule_tz(sc->s), fire, buf, sizeof(buf));
        if (rc < 0)
            break;
        ds_json_str(j, buf);
        t = fire;
    }
    ds_json_arr_end(j);
    return rc;
}

void ds__api_get_preview(ds_daemon_t *d, const struct api_req *rq, const char *name,
                         struct api_res *rs)
{
    struct api_out o;
    int64_t from;
    long count;
    int found = 0, rc = 0;

    if (preview_args(d, rq, &count, &from, rs) < 0)
        return;
    if (ds__api_begin(&o) < 0) {
        ds__api_error(rs, 500, "out of memory");
        return;
    }
    if (name == NULL)
        ds_json_obj_begin(&o.j);
    for (size_t i = 0; i < d->n && rc == 0; i++) {
        if (name != NULL && strcmp(name, d->v[i].cfg->name) != 0)
            continue;
        found = 1;
        if (name == NULL)
            ds_json_key(&o.j, d->v[i].cfg->name);
        rc = fires_json(&o.j, &d->v[i], count, from);
    }
    if (name == NULL)
        ds_json_obj_end(&o.j);
    ds__api_end(&o, rs, 200);
    if (name != NULL && !found)
        ds__api_error(rs, 404, "no schedule named '%s' in %s", name, d->cfg->path);
    else if (rc < 0)
        ds__api_error(rs, 400, "preview from that time: %s", ds_strerror(rc));
}

/* ---- runs ---- */

void ds__api_get_runs(ds_daemon_t *d, const struct api_req *rq, const char *id, struct api_res *rs)
{
    const struct drun *one = id ? ds__drun_find(d, id) : NULL;
    char live[8] = "";
    struct api_out o;
    int q = ds__api_query(rq->path, rq->path_len, "live", live, sizeof(live));

    if (q < 0 || (q == 1 && strcmp(live, "0") != 0 && strcmp(live, "1") != 0)) {
        ds__api_error(rs, 400, "live: expected 0 or 1");
        return;
    }
    if (id != NULL && one == NULL) {
        ds__api_error(rs, 404, "no run '%s' (the daemon keeps the last %d that ended)", id,
                      DS_DAEMON_RUNS_KEPT);
        return;
    }
    if (ds__api_begin(&o) < 0) {
        ds__api_error(rs, 500, "out of memory");
        return;
    }
    if (one != NULL) {
        ds__drun_json(&o.j, d, one);
    } else { /* newest first */
        ds_json_obj_begin(&o.j);
        ds_json_key(&o.j, "runs");
        ds_json_arr_begin(&o.j);
        for (size_t i = d->nruns; i-- > 0;) {
            const char *st = d->runs[i]->state;

            if (strcmp(live, "1") != 0 || strcmp(st, "queued") == 0 || strcmp(st, "running") == 0)
                ds__drun_json(&o.j, d, d->runs[i]);
        }
        ds_json_arr_end(&o.j);
        ds_json_obj_end(&o.j);
    }
    ds__api_end(&o, rs, 200);
}

/* ---- history ---- */

void ds__api_get_history(ds_daemon_t *d, const struct api_req *rq, struct api_res *rs)
{
    char list[4096], num[32], ev[8] = "", *end;
    const char *names[128];
    size_t n = 0;
    long long limit = 0;
    struct api_out o;
    int q, rc;

    if (ds__api_names(rq, list, sizeof(list), names, sizeof(names) / sizeof(names[0]), &n, rs) < 0)
        return;
    q = ds__api_query(rq->path, rq->path_len, "limit", num, sizeof(num));
    if (q < 0 || (q == 1 && ((limit = strtoll(num, &end, 10)) < 0 || *end != '\0' || !num[0]))) {
        ds__api_error(rs, 400, "limit: expected a number (0: no limit)");
        return;
    }
    q = ds__api_query(rq->path, rq->path_len, "events", ev, sizeof(ev));
    if (q < 0 || (q == 1 && strcmp(ev, "0") != 0 && strcmp(ev, "1") != 0)) {
        ds__api_error(rs, 400, "events: expected 0 or 1");
        return;
    }
    if (ds__api_begin(&o) < 0) {
        ds__api_error(rs, 500, "out of memory");
        return;
    }
    rc = ds_history_json(&o.j, ds_sync_catalog(d->o.sync), n ? names : NULL, n, limit,
                         strcmp(ev, "1") == 0);
    ds__api_end(&o, rs, 200);
    if (rc < 0)
        ds__api_error(rs, 500, "reading the history: %s", ds_strerror(rc));
}

/* ---- scans ---- */

void ds__api_get_scans(ds_daemon_t *d, struct api_res *rs)
{
    struct api_out o;
    int rc;

    if (ds__api_begin(&o) < 0) {
        ds__api_error(rs, 500, "out of memory");
        return;
    }
    rc = ds_catalog_gen_json(&o.j, ds_sync_catalog(d->o.sync));
    ds__api_end(&o, rs, 200);
    if (rc < 0)
        ds__api_error(rs, 500, "reading the scan generations: %s", ds_strerror(rc));
}

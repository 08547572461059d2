/*
 * GET /v1/status?servers=A,B: the file status report of `distsync status
 * --offline` (every server planned against the manifest the catalog last
 * recorded for it; no connection, so it answers at once, also while a run
 * holds the engine). With live=1 it is plain `status` (each server
 * contacted), made on a thread of its own (api_status_live.c), whose
 * document this file writes too. The CLI prints it
 * (src/cli/status_daemon.c). The reply:
 *   {"servers": [{"report": <status --json's object>, "verdict": V,
 *                 "frozen": <ds_freeze_describe's text>|null}, ...],
 *    "console_retain": {"versions", "stored_bytes", "file_bytes"},
 *    "scan": {"added", "changed", "removed"} (live, when it scanned)}
 * with V one of in_sync, pending, drift, failed, in the order asked.
 */
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "distsync/freeze.h"
#include "distsync/report.h"

static void one(ds_sync_t *sy, const ds_server_cfg_t *s, int live, const ds_retain_usage_t *ru,
                ds_json_t *j)
{
    ds_sync_result_t r;
    char line[1024];
    ds_freeze_t f;

    ds_json_obj_begin(j);
    ds_json_key(j, "report");
    if ((live ? ds_sync_server(sy, s, DS_SYNC_STATUS, &r) : ds_sync_status_known(sy, s, &r)) < 0) {
        ds_report_failed_json(j, s->name, r.error);
        ds_json_kstr(j, "verdict", "failed");
    } else {
        ds_report_status_json(j, s->name, r.plan, ru);
        ds_json_kstr(j, "verdict", ds_verdict_name(ds_report_verdict(r.plan)));
    }
    ds_sync_result_clear(&r);
    ds_json_key(j, "frozen"); /* on the real clock, as status reads it */
    if (ds_freeze_get(ds_sync_catalog(sy), s->name, (int64_t)time(NULL), &f) == 0) {
        ds_freeze_describe(&f, line, sizeof(line));
        ds_json_str(j, line);
    } else {
        ds_json_null(j);
    }
    ds_json_obj_end(j);
}

void ds__api_status_doc(ds_sync_t *sy, const ds_config_t *cfg, const ds_server_cfg_t *const *srv,
                        size_t n, int live, const ds_scan_stats_t *scan, struct api_res *rs)
{
    ds_retain_usage_t ru = {0};
    struct api_out o;

    if (ds__api_begin(&o) < 0) {
        ds__api_error(rs, 500, "out of memory");
        return;
    }
    (void)ds_sync_retain_usage(sy, &ru); /* zeros when unreadable, as status warns */
    ds_json_obj_begin(&o.j);
    ds_json_key(&o.j, "servers");
    ds_json_arr_begin(&o.j);
    for (size_t i = 0; i < (n ? n : cfg->nservers); i++)
        one(sy, n ? srv[i] : &cfg->servers[i], live, &ru, &o.j);
    ds_json_arr_end(&o.j);
    ds_json_key(&o.j, "console_retain");
    ds_json_obj_begin(&o.j);
    ds_json_kuint(&o.j, "versions", ru.versions);
    ds_json_kuint(&o.j, "stored_bytes", ru.stored_bytes);
    ds_json_kuint(&o.j, "file_bytes", ru.file_bytes);
    ds_json_obj_end(&o.j);
    if (scan != NULL) {
        ds_json_key(&o.j, "scan");
        ds_json_obj_begin(&o.j);
        ds_json_kuint(&o.j, "added", scan->added);
        ds_json_kuint(&o.j, "changed", scan->changed);
        ds_json_kuint(&o.j, "removed", scan->removed);
        ds_json_obj_end(&o.j);
    }
    ds_json_obj_end(&o.j);
    ds__api_end(&o, rs, 200);
}

int ds__api_status_servers(ds_daemon_t *d, const struct api_req *rq,
                           const ds_server_cfg_t *srv[DS_API_STATUS_MAX], size_t *n,
                           struct api_res *rs)
{
    const char *names[DS_API_STATUS_MAX];
    char list[4096];

    if (ds__api_names(rq, list, sizeof(list), names, DS_API_STATUS_MAX, n, rs) < 0)
        return -1;
    for (size_t i = 0; i < *n; i++) {
        if ((srv[i] = ds_config_server(d->cfg, names[i])) == NULL) {
            ds__api_error(rs, 404,
                          "no server named '%s' in the daemon's configuration (as it last loaded "
                          "it; after an edit, reload the daemon: SIGHUP or POST /v1/reload)",
                          names[i]);
            return -1;
        }
    }
    return 0;
}

void ds__api_get_status(ds_daemon_t *d, const struct api_req *rq, struct api_res *rs)
{
    const ds_server_cfg_t *srv[DS_API_STATUS_MAX];
    size_t n = 0;

    if (ds__api_status_servers(d, rq, srv, &n, rs) == 0)
        ds__api_status_doc(d->o.sync, d->cfg, srv, n, 0, NULL, rs);
}

/*
 * GET /v1/status?servers=A,B: the file status report of `distsync status
 * --offline` (every server planned against the manifest the catalog last
 * recorded for it; no connection, so it answers at once, also while a run
 * holds the engine). `status --offline` through a running daemon prints
 * it (src/cli/status_daemon.c). The reply:
 *   {"servers": [{"report": <status --json's object>, "verdict": V,
 *                 "frozen": <ds_freeze_describe's text>|null}, ...],
 *    "console_retain": {"versions", "stored_bytes", "file_bytes"}}
 * with V one of in_sync, pending, drift, failed, in the order asked.
 */
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "distsync/freeze.h"
#include "distsync/report.h"

static const char *verdict_name(ds_verdict_t v)
{
    return v == DS_VERDICT_DRIFT ? "drift" : v == DS_VERDICT_PENDING ? "pending" : "in_sync";
}

static void one(ds_daemon_t *d, const ds_server_cfg_t *s, const ds_retain_usage_t *ru, ds_json_t *j)
{
    ds_sync_result_t r;
    char line[1024];
    ds_freeze_t f;

    ds_json_obj_begin(j);
    ds_json_key(j, "report");
    if (ds_sync_status_known(d->o.sync, s, &r) < 0) {
        ds_report_failed_json(j, s->name, r.error);
        ds_json_kstr(j, "verdict", "failed");
    } else {
        ds_report_status_json(j, s->name, r.plan, ru);
        ds_json_kstr(j, "verdict", verdict_name(ds_report_verdict(r.plan)));
    }
    ds_sync_result_clear(&r);
    ds_json_key(j, "frozen"); /* on the real clock, as status reads it */
    if (ds_freeze_get(ds_sync_catalog(d->o.sync), s->name, (int64_t)time(NULL), &f) == 0) {
        ds_freeze_describe(&f, line, sizeof(line));
        ds_json_str(j, line);
    } else {
        ds_json_null(j);
    }
    ds_json_obj_end(j);
}

void ds__api_get_status(ds_daemon_t *d, const struct api_req *rq, struct api_res *rs)
{
    const ds_server_cfg_t *srv[128];
    const char *names[128];
    ds_retain_usage_t ru = {0};
    char list[4096];
    size_t n = 0;
    struct api_out o;

    if (ds__api_names(rq, list, sizeof(list), names, sizeof(names) / sizeof(names[0]), &n, rs) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if ((srv[i] = ds_config_server(d->cfg, names[i])) == NULL) {
            ds__api_error(rs, 404, "no server named '%s' in the daemon's configuration", names[i]);
            return;
        }
    }
    if (ds__api_begin(&o) < 0) {
        ds__api_error(rs, 500, "out of memory");
        return;
    }
    (void)ds_sync_retain_usage(d->o.sync, &ru); /* zeros when unreadable, as status warns */
    ds_json_obj_begin(&o.j);
    ds_json_key(&o.j, "servers");
    ds_json_arr_begin(&o.j);
    for (size_t i = 0; i < (n ? n : d->cfg->nservers); i++)
        one(d, n ? srv[i] : &d->cfg->servers[i], &ru, &o.j);
    ds_json_arr_end(&o.j);
    ds_json_key(&o.j, "console_retain");
    ds_json_obj_begin(&o.j);
    ds_json_kuint(&o.j, "versions", ru.versions);
    ds_json_kuint(&o.j, "stored_bytes", ru.stored_bytes);
    ds_json_kuint(&o.j, "file_bytes", ru.file_bytes);
    ds_json_obj_end(&o.j);
    ds_json_obj_end(&o.j);
    ds__api_end(&o, rs, 200);
}

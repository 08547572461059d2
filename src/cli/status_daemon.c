/*
 * distsync status [--offline] through the running daemon (GET /v1/status):
 * offline, the daemon plans each server against the manifest its catalog
 * last recorded, as a standalone `status --offline` does, and answers at
 * once; live (live=1), it scans and contacts each server on a thread of
 * its own, as a standalone `status` does, never queued behind one of its
 * runs (which hold its engine for hours). This file prints the reply
 * as the standalone command prints its plans: the --json array through
 * the same writer, the text report by rebuilding each server's plan
 * from its categories and handing it to the same printer.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_client.h"
#include "distsync/report.h"
#include "sync_cli.h"

static uint64_t num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

/* The plan whose categories the report lists (path, class and size of
 * each item, in the daemon's order; the files in sync as that many
 * nameless items). Returns 0, or DS_ENOMEM. */
static int plan_of(const json_t *rep, ds_plan_t *p)
{
    static const struct {
        ds_plan_action_t action;
        ds_plan_method_t method;
        int drifted;
    } as[DS_FS_LISTED] = {
        [DS_FS_MISSING] = {DS_PLAN_CREATE, DS_PLAN_WHOLE, 0},
        [DS_FS_OUTDATED] = {DS_PLAN_UPDATE, DS_PLAN_DELTA, 0},
        [DS_FS_DRIFTED] = {DS_PLAN_UPDATE, DS_PLAN_WHOLE, 1},
        [DS_FS_UNRECORDED] = {DS_PLAN_UPDATE, DS_PLAN_ADOPT, 0},
        [DS_FS_EXTRA] = {DS_PLAN_EXTRA, DS_PLAN_NONE, 0},
        [DS_FS_UNREADABLE] = {DS_PLAN_UNREADABLE, DS_PLAN_NONE, 0},
    };
    uint64_t in_sync = num(json_object_get(rep, "counts"), "in_sync");
    size_t total = (size_t)in_sync, k;
    json_t *x;

    memset(p, 0, sizeof(*p));
    for (int s = 0; s < DS_FS_LISTED; s++)
        total += json_array_size(json_object_get(rep, ds_fstatus_name((ds_fstatus_t)s)));
    if ((p->items = calloc(total + 1, sizeof(*p->items))) == NULL)
        return DS_ENOMEM;
    for (int s = 0; s < DS_FS_LISTED; s++) {
        json_array_foreach(json_object_get(rep, ds_fstatus_name((ds_fstatus_t)s)), k, x)
        {
            ds_plan_item_t *it = &p->items[p->n++];

            it->action = as[s].action;
            it->method = as[s].method;
            it->drifted = as[s].drifted;
            it->path = (char *)json_string_value(json_object_get(x, "path")); /* borrowed */
            it->klass = (char *)json_string_value(json_object_get(x, "class"));
            it->size = num(x, "size");
        }
    }
    for (uint64_t i = 0; i < in_sync; i++)
        p->items[p->n++].action = DS_PLAN_KEEP;
    return 0;
}

/* "?servers=A,B" for srv[0, n) and then more, or NULL on ENOMEM. */
static char *query(const ds_server_cfg_t **srv, size_t n, const char *more)
{
    size_t len = sizeof("/v1/status?servers=") + strlen(more), at;
    char **esc = calloc(n + 1, sizeof(*esc)), *path = NULL;

    for (size_t i = 0; esc != NULL && i < n; i++) {
        if ((esc[i] = cli_daemon_escape(srv[i]->name)) == NULL)
            goto out;
        len += strlen(esc[i]) + 1;
    }
    if (esc == NULL || (path = malloc(len)) == NULL)
        goto out;
    at = (size_t)sprintf(path, "/v1/status?servers=");
    for (size_t i = 0; i < n; i++)
        at += (size_t)sprintf(path + at, "%s%s", i ? "," : "", esc[i]);
    strcpy(path + at, more);
out:
    for (size_t i = 0; esc != NULL && i < n; i++)
        free(esc[i]);
    free(esc);
    return path;
}

/* The scan's line, as sync_prepare.c's autoscan says it. */
static void scan_line(struct cli *cli, const json_t *scan)
{
    uint64_t a = num(scan, "added"), c = num(scan, "changed"), r = num(scan, "removed");

    if (!cli->quiet && a + c + r > 0)
        cli_err("scan: %llu new, %llu changed, %llu removed in the store (catalog updated)",
                (unsigned long long)a, (unsigned long long)c, (unsigned long long)r);
}

int status_cli_daemon(struct cli *cli, const ds_config_t *cfg, const ds_server_cfg_t **srv,
                      size_t n, int json, int offline, int no_scan)
{
    char *path = query(srv, n,
                       offline   ? ""
                       : no_scan ? "&live=1&scan=0"
                                 : "&live=1"),
         failed[512] = "";
    const json_t *servers, *x;
    json_t *reply = NULL;
    int rc = CLI_EXIT_FAIL, worst = CLI_EXIT_OK, nfail = 0;
    long status;
    ds_json_t j;
    size_t i;

    if (path == NULL) {
        cli_err("status: out of memory");
        return CLI_EXIT_FAIL;
    }
    status = cli_daemon_call(cfg, "GET", path, NULL, &reply);
    servers = json_object_get(reply, "servers");
    if (status != 200 || json_array_size(servers) != n) {
        if (status != 0)
            cli_err("status: %s", cli_esc(cli_daemon_error(reply, status)));
        goto out;
    }
    scan_line(cli, json_object_get(reply, "scan"));
    if (json) {
        ds_json_init(&j, stdout);
        ds_json_arr_begin(&j);
    }
    json_array_foreach(servers, i, x)
    {
        const json_t *rep = json_object_get(x, "report");
        const char *v = json_string_value(json_object_get(x, "verdict"));
        const char *err = json_string_value(json_object_get(rep, "error"));
        const char *frozen = json_string_value(json_object_get(x, "frozen"));
        ds_verdict_t verdict;
        ds_plan_t p;

        if (ds_verdict_parse(v, &verdict) < 0) { /* "failed" */
            size_t k = strlen(failed);

            nfail++;
            snprintf(failed + k, sizeof(failed) - k, "%s%s", k ? ", " : "", srv[i]->name);
            if (json)
                cli_err("%s", err ? err : "no report");
            else
                printf("status %s: FAILED: %s\n", cli_esc(srv[i]->name),
                       cli_esc(err ? cli_hint(cli, err) : "no report"));
        } else {
            worst = status_cli_worse(worst, status_cli_exit(verdict));
            if (!json && plan_of(rep, &p) == 0) {
                status_cli_text(srv[i]->name, &p);
                free(p.items);
            }
        }
        if (json)
            ds_json_value(&j, rep);
        else if (frozen != NULL)
            printf("  frozen: %s\n", cli_esc(frozen));
    }
    if (json) {
        ds_json_arr_end(&j);
        ds_json_end(&j);
    } else {
        const json_t *ru = json_object_get(reply, "console_retain");

        status_cli_retain(cfg, &(ds_retain_usage_t){.versions = num(ru, "versions"),
                                                    .stored_bytes = num(ru, "stored_bytes"),
                                                    .file_bytes = num(ru, "file_bytes")});
    }
    if (nfail > 0 && !json)
        cli_err("%d of %zu server%s failed: %s", nfail, n, n == 1 ? "" : "s", failed);
    rc = nfail ? CLI_EXIT_SERVER : worst;
out:
    json_decref(reply);
    free(path);
    return rc;
}

/* distsync plan SERVER... | --site S | --all [--class C] [--json] [--no-scan]:
 * what a sync would do (after the incremental scan), read-only on the target.
 * --json: plan SERVER gives its plan object, any other selection an array;
 * a server that failed is {"server", "status": "failed", "error"} there. */
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/report.h"
#include "progress.h"
#include "sync_cli.h"

#define PLAN_USAGE                                                                                 \
    "usage: distsync plan SERVER... | --site S | --all [--class C] [--json] [--no-scan]\n"

static void item_text(const ds_plan_item_t *it)
{
    char sz[32], est[32];

    progress_fmt_bytes(sz, sizeof(sz), it->size);
    progress_fmt_bytes(est, sizeof(est), it->est_bytes);
    printf("  %-6s %s  %s", it->held ? "held" : ds_plan_action_name(it->action), cli_esc(it->path),
           sz);
    if (it->method == DS_PLAN_DELTA)
        printf("  delta from %s", cli_esc(it->basis));
    else if (it->action == DS_PLAN_UNREADABLE)
        printf("  not shipped: unreadable in the store (the target keeps what it has)");
    else if (it->method == DS_PLAN_ADOPT)
        printf("  adopt (already on the target)");
    else if (it->method == DS_PLAN_COPY)
        printf("  copy of %s (same content)", cli_esc(it->basis));
    else if (it->method == DS_PLAN_RSYNC)
        printf("  rsync (delta against the signature of the target's file)");
    else if (it->method == DS_PLAN_WHOLE)
        printf("  whole");
    if (it->drifted)
        printf("  [drifted]");
    if (it->action != DS_PLAN_EXTRA && it->action != DS_PLAN_UNREADABLE)
        printf("  ~%s", est);
    putchar('\n');
}

void sync_cli_print_guard(const char *server, const ds_plan_t *p)
{
    char msg[512];

    if (p->guard == DS_PLAN_GUARD_NONE)
        return;
    ds_plan_guard_msg(p, msg, sizeof(msg));
    cli_err("warning: server %s: %s", server, msg);
}

void sync_cli_print_plan(ds_json_t *j, const char *server, const ds_plan_t *p)
{
    const ds_plan_totals_t *t = &p->totals;
    char nb[32], est[32];

    if (j == NULL) {
        progress_fmt_bytes(nb, sizeof(nb), t->bytes_new);
        progress_fmt_bytes(est, sizeof(est), t->est_bytes);
        printf("plan %s: %" PRIu64 " to create, %" PRIu64 " to update, %" PRIu64
               " to delete, %" PRIu64 " unchanged, %" PRIu64 " extra, %" PRIu64
               " drifted; %s of new content, ~%s on the wire",
               cli_esc(server), t->create, t->update, t->del, t->keep, t->extra, t->drifted, nb,
               est);
        if (t->unreadable > 0)
            printf("; %" PRIu64 " unreadable in the store", t->unreadable);
        putchar('\n');
        for (size_t i = 0; i < p->n; i++)
            if (p->items[i].action != DS_PLAN_KEEP)
                item_text(&p->items[i]);
        return;
    }
    ds_report_plan_json(j, server, p);
}

int cmd_plan(struct cli *cli, int argc, char **argv)
{
    int json = 0, no_scan = 0, nfail = 0;
    const struct cli_flag flags[] = {
        {"json", 'j', &json, NULL, 0, NULL},
        {"no-scan", 0, &no_scan, NULL, 0, NULL},
        {NULL, 0, NULL, NULL, 0, NULL},
    };
    const ds_server_cfg_t **srv = NULL;
    struct cli_select sel;
    ds_config_t *cfg = NULL;
    ds_sync_t *sy = NULL;
    ds_strlist_t only;
    ds_json_t j;
    size_t n = 0;
    int rc = cli_select_parse(PLAN_USAGE, argc, argv, flags, &sel), arr;

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    signal(SIGPIPE, SIG_IGN);
    rc = cli_config_load(cli, &cfg);
    if (rc == 0)
        rc = cli_select_resolve("plan", cfg, &sel, 0, &srv, &n);
    if (rc == 0)
        rc = sync_cli_open(cfg, NULL, NULL, 0, cli_select_classes(&sel, &only), &sy);
    if (rc == 0)
        rc = sync_cli_prepare(cli, cfg, sy, no_scan);
    if (rc != 0)
        goto out;
    /* plan SERVER --json: that plan's object, as before; any other selection:
     * an array of them, whatever the count */
    arr = !(sel.nnames == 1 && sel.nsites == 0 && !sel.all);
    if (json) {
        ds_json_init(&j, stdout);
        if (arr)
            ds_json_arr_begin(&j);
    }
    for (size_t i = 0; i < n; i++) {
        ds_sync_result_t res;

        if (ds_sync_server(sy, srv[i], DS_SYNC_PLAN, &res) < 0) {
            cli_err("%s", cli_hint(cli, res.error));
            if (json) /* as status --json: a script sees the failure, not nothing */
                ds_report_failed_json(&j, srv[i]->name, res.error);
            nfail++;
        } else {
            sync_cli_print_plan(json ? &j : NULL, srv[i]->name, res.plan);
            sync_cli_print_guard(srv[i]->name, res.plan);
        }
        fflush(stdout);
        ds_sync_result_clear(&res);
    }
    if (json) {
        if (arr)
            ds_json_arr_end(&j);
        ds_json_end(&j);
    }
    rc = nfail ? CLI_EXIT_SERVER : CLI_EXIT_OK;
out:
    ds_sync_close(sy);
    free(srv);
    ds_config_free(cfg);
    cli_select_free(&sel);
    return rc;
}

/* distsync plan SERVER [--json] [--no-scan]: what a sync would do (after the
 * incremental scan), read-only on the target. */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "progress.h"
#include "sync_cli.h"

#define PLAN_USAGE "usage: distsync plan SERVER [--json] [--no-scan]\n"

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

static void item_json(struct json *j, const ds_plan_item_t *it)
{
    json_obj_begin(j);
    json_kstr(j, "action", ds_plan_action_name(it->action));
    json_kstr(j, "path", it->path);
    json_kstr(j, "class", it->klass);
    json_kuint(j, "size", it->size);
    json_key(j, "basis");
    if (it->basis)
        json_str(j, it->basis);
    else
        json_null(j);
    json_kstr(j, "method", ds_plan_method_name(it->method));
    json_kuint(j, "est_bytes", it->est_bytes);
    json_kbool(j, "drifted", it->drifted);
    json_kbool(j, "unknown", it->unknown);
    json_kbool(j, "held", it->held);
    json_obj_end(j);
}

void sync_cli_print_guard(const char *server, const ds_plan_t *p)
{
    char msg[512];

    if (p->guard == DS_PLAN_GUARD_NONE)
        return;
    ds_plan_guard_msg(p, msg, sizeof(msg));
    cli_err("warning: server %s: %s", server, msg);
}

void sync_cli_print_plan(struct json *j, const char *server, const ds_plan_t *p)
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
    json_obj_begin(j);
    json_kstr(j, "server", server);
    json_key(j, "items");
    json_arr_begin(j);
    for (size_t i = 0; i < p->n; i++)
        item_json(j, &p->items[i]);
    json_arr_end(j);
    json_key(j, "totals");
    json_obj_begin(j);
    json_kuint(j, "create", t->create);
    json_kuint(j, "update", t->update);
    json_kuint(j, "delete", t->del);
    json_kuint(j, "keep", t->keep);
    json_kuint(j, "extra", t->extra);
    json_kuint(j, "drifted", t->drifted);
    json_kuint(j, "held", t->held);
    json_kuint(j, "unreadable", t->unreadable);
    json_kuint(j, "bytes_new", t->bytes_new);
    json_kuint(j, "est_bytes", t->est_bytes);
    json_obj_end(j);
    json_obj_end(j);
}

int cmd_plan(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"no-scan", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const ds_server_cfg_t *srv[1];
    ds_config_t *cfg = NULL;
    ds_sync_t *sy = NULL;
    ds_sync_result_t res = {0};
    struct json j;
    size_t n = 0;
    int ch, json = 0, no_scan = 0, rc;

    while ((ch = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
        if (ch == 'j') {
            json = 1;
        } else if (ch == 'S') {
            no_scan = 1;
        } else if (ch == 'h') {
            fputs(PLAN_USAGE, stdout);
            return CLI_EXIT_OK;
        } else {
            fputs(PLAN_USAGE, stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        fputs(PLAN_USAGE, stderr);
        return CLI_EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    rc = cli_config_load(cli, &cfg);
    if (rc == 0)
        rc = sync_cli_servers(cfg, argv + optind, 1, 0, srv, &n);
    if (rc == 0)
        rc = sync_cli_open(cfg, NULL, NULL, &sy);
    if (rc == 0)
        rc = sync_cli_prepare(cli, cfg, sy, no_scan);
    if (rc != 0)
        goto out;
    if (ds_sync_server(sy, srv[0], DS_SYNC_PLAN, &res) < 0) {
        cli_err("%s", res.error);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (json)
        json_init(&j, stdout);
    sync_cli_print_plan(json ? &j : NULL, srv[0]->name, res.plan);
    if (json)
        json_end(&j);
    sync_cli_print_guard(srv[0]->name, res.plan);
out:
    ds_sync_result_clear(&res);
    ds_sync_close(sy);
    ds_config_free(cfg);
    return rc;
}

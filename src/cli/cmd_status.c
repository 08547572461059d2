/*
 * distsync status [SERVER...] [--json]: the file status report. For each
 * server and every class it receives: files missing, outdated, drifted
 * (changed on the target behind our back) and extra, with counts and
 * bytes. Read-only: no lease is taken and nothing is written on a target.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "progress.h"
#include "sync_cli.h"

#define STATUS_USAGE "usage: distsync status [SERVER...] [--json] [--no-scan]\n"

enum { ST_MISSING, ST_OUTDATED, ST_DRIFTED, ST_EXTRA, ST_UNREADABLE, ST__N };
static const char *const st_names[ST__N] = {"missing", "outdated", "drifted", "extra",
                                            "unreadable"};

/* Which report lists an item belongs to (bit mask of 1 << ST_*). */
static unsigned lists_of(const ds_plan_item_t *it)
{
    unsigned m = 0;

    if (it->drifted)
        m |= 1u << ST_DRIFTED;
    if (it->action == DS_PLAN_CREATE)
        m |= 1u << ST_MISSING;
    if (it->action == DS_PLAN_UPDATE && it->method != DS_PLAN_ADOPT && !it->drifted)
        m |= 1u << ST_OUTDATED;
    if (it->action == DS_PLAN_EXTRA || (it->action == DS_PLAN_DELETE && it->present))
        m |= 1u << ST_EXTRA;
    if (it->action == DS_PLAN_UNREADABLE) /* in the store, but the scan could not read it */
        m |= 1u << ST_UNREADABLE;
    return m;
}

static void count(const ds_plan_t *p, uint64_t n[ST__N], uint64_t bytes[ST__N])
{
    for (size_t i = 0; i < p->n; i++) {
        unsigned m = lists_of(&p->items[i]);

        for (int k = 0; k < ST__N; k++) {
            if (m & (1u << k)) {
                n[k]++;
                bytes[k] += p->items[i].size;
            }
        }
    }
}

static void print_text(const char *server, const ds_plan_t *p)
{
    uint64_t n[ST__N] = {0}, b[ST__N] = {0};
    char s[ST__N][32], sz[32];

    count(p, n, b);
    for (int k = 0; k < ST__N; k++)
        progress_fmt_bytes(s[k], sizeof(s[k]), b[k]);
    printf("status %s: %" PRIu64 " missing (%s), %" PRIu64 " outdated (%s), %" PRIu64
           " drifted (%s), %" PRIu64 " extra (%s), %" PRIu64 " in sync",
           cli_esc(server), n[0], s[0], n[1], s[1], n[2], s[2], n[3], s[3], p->totals.keep);
    if (n[ST_UNREADABLE] > 0)
        printf(", %" PRIu64 " unreadable in the store (%s)", n[ST_UNREADABLE], s[ST_UNREADABLE]);
    putchar('\n');
    for (int k = 0; k < ST__N; k++) {
        for (size_t i = 0; i < p->n; i++) {
            if (!(lists_of(&p->items[i]) & (1u << k)))
                continue;
            progress_fmt_bytes(sz, sizeof(sz), p->items[i].size);
            printf("  %-8s %s  %s  %s%s\n", st_names[k], cli_esc(p->items[i].klass),
                   cli_esc(p->items[i].path), sz,
                   k == ST_UNREADABLE ? "  (unreadable in the store: not shipped)" : "");
        }
    }
}

static void print_json(struct json *j, const char *server, const ds_plan_t *p)
{
    uint64_t n[ST__N] = {0}, b[ST__N] = {0};

    count(p, n, b);
    json_obj_begin(j);
    json_kstr(j, "server", server);
    for (int k = 0; k < ST__N; k++) {
        json_key(j, st_names[k]);
        json_arr_begin(j);
        for (size_t i = 0; i < p->n; i++) {
            const ds_plan_item_t *it = &p->items[i];

            if (!(lists_of(it) & (1u << k)))
                continue;
            json_obj_begin(j);
            json_kstr(j, "path", it->path);
            json_kstr(j, "class", it->klass);
            json_kuint(j, "size", it->size);
            json_obj_end(j);
        }
        json_arr_end(j);
    }
    json_key(j, "counts");
    json_obj_begin(j);
    for (int k = 0; k < ST__N; k++)
        json_kuint(j, st_names[k], n[k]);
    json_kuint(j, "in_sync", p->totals.keep);
    json_obj_end(j);
    json_key(j, "bytes");
    json_obj_begin(j);
    for (int k = 0; k < ST__N; k++)
        json_kuint(j, st_names[k], b[k]);
    json_obj_end(j);
    json_obj_end(j);
}

static int parse(int argc, char **argv, int *json, int *no_scan)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"no-scan", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
        if (ch == 'j') {
            *json = 1;
        } else if (ch == 'S') {
            *no_scan = 1;
        } else if (ch == 'h') {
            fputs(STATUS_USAGE, stdout);
            return -1;
        } else {
            fputs(STATUS_USAGE, stderr);
            return CLI_EXIT_USAGE;
        }
    }
    return 0;
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
    const ds_server_cfg_t **srv = NULL;
    ds_config_t *cfg = NULL;
    ds_sync_t *sy = NULL;
    struct json j;
    size_t n = 0;
    int json = 0, no_scan = 0, nfail = 0, rc = parse(argc, argv, &json, &no_scan);

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    signal(SIGPIPE, SIG_IGN);
    rc = cli_config_load(cli, &cfg);
    if (rc != 0)
        return rc;
    srv = calloc(cfg->nservers + 1, sizeof(*srv));
    rc = srv ? sync_cli_servers(cfg, argv + optind, argc - optind, optind == argc, srv, &n)
             : CLI_EXIT_FAIL;
    if (rc == 0)
        rc = sync_cli_open(cfg, NULL, NULL, &sy);
    if (rc == 0)
        rc = sync_cli_prepare(cli, cfg, sy, no_scan);
    if (rc != 0)
        goto out;
    if (json) {
        json_init(&j, stdout);
        json_arr_begin(&j);
    }
    for (size_t i = 0; i < n; i++) {
        ds_sync_result_t r;

        if (ds_sync_server(sy, srv[i], DS_SYNC_STATUS, &r) < 0) {
            cli_err("%s", r.error);
            nfail++;
        } else if (json) {
            print_json(&j, srv[i]->name, r.plan);
        } else {
            print_text(srv[i]->name, r.plan);
        }
        ds_sync_result_clear(&r);
    }
    if (json) {
        json_arr_end(&j);
        json_end(&j);
    }
    rc = nfail ? CLI_EXIT_FAIL : CLI_EXIT_OK;
out:
    ds_sync_close(sy);
    free(srv);
    ds_config_free(cfg);
    return rc;
}

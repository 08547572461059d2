/*
 * distsync status [SERVER...] [--json]: the file status report. For each
 * server and every class it receives: files missing, outdated, drifted
 * (changed on the target behind our back), unrecorded (the right content
 * is there but not in the target's manifest, e.g. after a failed manifest
 * write: the next sync records it without sending data), extra and in
 * sync, with counts and bytes. Every file lands in exactly one category;
 * the counts add up to the total. Read-only: no lease is taken and nothing
 * is written on a target.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "progress.h"
#include "sync_cli.h"

#define STATUS_USAGE                                                                               \
    "usage: distsync status [SERVER... | --site S | --all] [--class C] [--json] [--no-scan]\n"

enum {
    ST_MISSING,
    ST_OUTDATED,
    ST_DRIFTED,
    ST_UNRECORDED,
    ST_EXTRA,
    ST_UNREADABLE,
    ST_LISTED,
    ST_IN_SYNC = ST_LISTED,
    ST__N,
    ST_NONE = ST__N
};
static const char *const st_names[ST__N] = {"missing", "outdated",   "drifted", "unrecorded",
                                            "extra",   "unreadable", "in_sync"};

/* The one category of an item; ST_NONE for a manifest entry whose file is
 * gone and not wanted (not a file: the next sync drops the record). */
static int category_of(const ds_plan_item_t *it)
{
    if (it->drifted)
        return ST_DRIFTED;
    switch (it->action) {
    case DS_PLAN_KEEP:
        return ST_IN_SYNC;
    case DS_PLAN_CREATE:
        return ST_MISSING;
    case DS_PLAN_UPDATE:
        return it->method == DS_PLAN_ADOPT ? ST_UNRECORDED : ST_OUTDATED;
    case DS_PLAN_EXTRA:
        return ST_EXTRA;
    case DS_PLAN_UNREADABLE: /* in the store, but the scan could not read it */
        return ST_UNREADABLE;
    case DS_PLAN_DELETE:
        return it->present ? ST_EXTRA : ST_NONE;
    }
    return ST_NONE;
}

/* Which report lists an item belongs to (bit mask of 1 << ST_*). */
static unsigned lists_of(const ds_plan_item_t *it)
{
    int c = category_of(it);

    return c < ST_LISTED ? 1u << c : 0;
}

/* Counts and bytes per category; returns the total number of files. */
static uint64_t count(const ds_plan_t *p, uint64_t n[ST__N], uint64_t bytes[ST__N])
{
    uint64_t total = 0;

    for (size_t i = 0; i < p->n; i++) {
        int c = category_of(&p->items[i]);

        if (c == ST_NONE)
            continue;
        n[c]++;
        bytes[c] += p->items[i].size;
        total++;
    }
    return total;
}

static void print_text(const char *server, const ds_plan_t *p)
{
    uint64_t n[ST__N] = {0}, b[ST__N] = {0}, total = count(p, n, b);
    char s[ST__N][32], sz[32];

    for (int k = 0; k < ST__N; k++)
        progress_fmt_bytes(s[k], sizeof(s[k]), b[k]);
    printf("status %s: %" PRIu64 " missing (%s), %" PRIu64 " outdated (%s), %" PRIu64
           " drifted (%s), %" PRIu64 " unrecorded (%s), %" PRIu64 " extra (%s), %" PRIu64
           " in sync",
           cli_esc(server), n[ST_MISSING], s[ST_MISSING], n[ST_OUTDATED], s[ST_OUTDATED],
           n[ST_DRIFTED], s[ST_DRIFTED], n[ST_UNRECORDED], s[ST_UNRECORDED], n[ST_EXTRA],
           s[ST_EXTRA], n[ST_IN_SYNC]);
    if (n[ST_UNREADABLE] > 0)
        printf(", %" PRIu64 " unreadable in the store (%s)", n[ST_UNREADABLE], s[ST_UNREADABLE]);
    printf(", %" PRIu64 " files\n", total);
    for (int k = 0; k < ST_LISTED; k++) {
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

static void print_json(struct json *j, const char *server, const ds_plan_t *p,
                       const ds_retain_usage_t *ru)
{
    uint64_t n[ST__N] = {0}, b[ST__N] = {0}, total = count(p, n, b);

    json_obj_begin(j);
    json_kstr(j, "server", server);
    json_kstr(j, "status", "ok");
    json_key(j, "error");
    json_null(j);
    /* the console's retain store, shared by every server (the same in each
     * entry, so the array stays an array of servers) */
    json_key(j, "console_retain");
    json_obj_begin(j);
    json_kuint(j, "versions", ru->versions);
    json_kuint(j, "stored_bytes", ru->stored_bytes);
    json_kuint(j, "file_bytes", ru->file_bytes);
    json_obj_end(j);
    for (int k = 0; k < ST_LISTED; k++) {
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
    json_kuint(j, "total", total);
    json_obj_end(j);
    json_key(j, "bytes");
    json_obj_begin(j);
    for (int k = 0; k < ST_LISTED; k++)
        json_kuint(j, st_names[k], b[k]);
    json_obj_end(j);
    json_obj_end(j);
}

/* A server that could not be read: {"server", "status": "failed", "error"}. */
static void print_failed_json(struct json *j, const char *server, const char *error)
{
    json_obj_begin(j);
    json_kstr(j, "server", server);
    json_kstr(j, "status", "failed");
    json_kstr(j, "error", error);
    json_obj_end(j);
}

/* The exit status one server's report calls for: CLI_EXIT_DRIFT when files
 * drifted, CLI_EXIT_PENDING when a sync would change something (files
 * missing, outdated or unrecorded, or an extra file prune would delete;
 * extra files a sync leaves alone are not work), else CLI_EXIT_OK. */
static int plan_exit(const ds_plan_t *p)
{
    int rc = CLI_EXIT_OK;

    for (size_t i = 0; i < p->n; i++) {
        const ds_plan_item_t *it = &p->items[i];
        int c = category_of(it);

        if (c == ST_DRIFTED)
            return CLI_EXIT_DRIFT;
        /* an unreadable store file: the server lacks what it should get,
         * and every sync fails until a scan can read it */
        if (c == ST_MISSING || c == ST_OUTDATED || c == ST_UNRECORDED || c == ST_UNREADABLE ||
            (c == ST_EXTRA && it->action == DS_PLAN_DELETE))
            rc = CLI_EXIT_PENDING;
    }
    return rc;
}

/* Drift outranks pending work. */
static int worse(int a, int b)
{
    return a == CLI_EXIT_DRIFT || b == CLI_EXIT_DRIFT ? CLI_EXIT_DRIFT : a ? a : b;
}

/* The console's own disk: the retain store (versions servers hold, their
 * delta bases), bounded by gc (see README "Retained versions and gc"). */
static void print_retain(const ds_config_t *cfg, const ds_retain_usage_t *ru)
{
    char st[32], disk[32];

    progress_fmt_bytes(st, sizeof(st), ru->stored_bytes);
    progress_fmt_bytes(disk, sizeof(disk), ru->file_bytes);
    printf("console: retain store %s/retain: %" PRIu64 " versions, %s stored, %s on disk\n",
           cli_esc(cfg->state), ru->versions, st, disk);
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
    int json = 0, no_scan = 0, nfail = 0, worst = CLI_EXIT_OK;
    ds_retain_usage_t ru = {0};
    const struct cli_flag flags[] = {
        {"json", 'j', &json, NULL, 0},
        {"no-scan", 0, &no_scan, NULL, 0},
        {NULL, 0, NULL, NULL, 0},
    };
    const ds_server_cfg_t **srv = NULL;
    struct cli_select sel;
    ds_config_t *cfg = NULL;
    ds_sync_t *sy = NULL;
    ds_strlist_t only;
    struct json j;
    size_t n = 0;
    int rc = cli_select_parse(STATUS_USAGE, argc, argv, flags, &sel);

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    signal(SIGPIPE, SIG_IGN);
    rc = cli_config_load(cli, &cfg);
    if (rc == 0)
        rc = cli_select_resolve("status", cfg, &sel, 1, &srv, &n);
    if (rc == 0)
        rc = sync_cli_open(cfg, NULL, NULL, 0, cli_select_classes(&sel, &only), &sy);
    if (rc == 0)
        rc = sync_cli_prepare(cli, cfg, sy, no_scan);
    if (rc != 0)
        goto out;
    if (ds_sync_retain_usage(sy, &ru) < 0)
        cli_err("warning: cannot read the retain store under %s", cfg->state);
    if (json) {
        json_init(&j, stdout);
        json_arr_begin(&j);
    }
    for (size_t i = 0; i < n; i++) {
        ds_sync_result_t r;

        if (ds_sync_server(sy, srv[i], DS_SYNC_STATUS, &r) < 0) {
            cli_err("%s", r.error);
            nfail++;
            if (json)
                print_failed_json(&j, srv[i]->name, r.error);
            else /* the report names every server, also one it cannot read */
                printf("status %s: FAILED: %s\n", cli_esc(srv[i]->name), cli_esc(r.error));
        } else {
            worst = worse(worst, plan_exit(r.plan));
            if (json)
                print_json(&j, srv[i]->name, r.plan, &ru);
            else
                print_text(srv[i]->name, r.plan);
        }
        ds_sync_result_clear(&r);
    }
    if (json) {
        json_arr_end(&j);
        json_end(&j);
    } else {
        print_retain(cfg, &ru);
    }
    rc = nfail ? CLI_EXIT_SERVER : worst;
out:
    ds_sync_close(sy);
    free(srv);
    ds_config_free(cfg);
    cli_select_free(&sel);
    return rc;
}

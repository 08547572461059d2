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
#include <time.h>

#include "daemon_client.h"
#include "distsync/error.h"
#include "distsync/freeze.h"
#include "distsync/report.h"
#include "progress.h"
#include "sync_cli.h"

#define STATUS_USAGE                                                                               \
    "usage: distsync status [SERVER... | --site S | --all] [--class C] [--json] [--no-scan] "      \
    "[--offline]\n"

/* One server's text report: the counts line, then each listed file by
 * category (also status_daemon.c's printer). */
void status_cli_text(const char *server, const ds_plan_t *p)
{
    ds_status_counts_t c;
    char s[DS_FS__N][32], sz[32];

    ds_report_count(p, &c);
    for (int k = 0; k < DS_FS__N; k++)
        progress_fmt_bytes(s[k], sizeof(s[k]), c.bytes[k]);
    printf("status %s: %" PRIu64 " missing (%s), %" PRIu64 " outdated (%s), %" PRIu64
           " drifted (%s), %" PRIu64 " unrecorded (%s), %" PRIu64 " extra (%s), %" PRIu64
           " in sync",
           cli_esc(server), c.n[DS_FS_MISSING], s[DS_FS_MISSING], c.n[DS_FS_OUTDATED],
           s[DS_FS_OUTDATED], c.n[DS_FS_DRIFTED], s[DS_FS_DRIFTED], c.n[DS_FS_UNRECORDED],
           s[DS_FS_UNRECORDED], c.n[DS_FS_EXTRA], s[DS_FS_EXTRA], c.n[DS_FS_IN_SYNC]);
    if (c.n[DS_FS_UNREADABLE] > 0)
        printf(", %" PRIu64 " unreadable in the store (%s)", c.n[DS_FS_UNREADABLE],
               s[DS_FS_UNREADABLE]);
    printf(", %" PRIu64 " files\n", c.total);
    for (int k = 0; k < DS_FS_LISTED; k++) {
        for (size_t i = 0; i < p->n; i++) {
            if (ds_report_fstatus(&p->items[i]) != (ds_fstatus_t)k)
                continue;
            progress_fmt_bytes(sz, sizeof(sz), p->items[i].size);
            printf("  %-8s %s  %s  %s%s\n", ds_fstatus_name((ds_fstatus_t)k),
                   cli_esc(p->items[i].klass), cli_esc(p->items[i].path), sz,
                   k == DS_FS_UNREADABLE ? "  (unreadable in the store: not shipped)" : "");
        }
    }
}

int status_cli_exit(ds_verdict_t v)
{
    switch (v) {
    case DS_VERDICT_DRIFT:
        return CLI_EXIT_DRIFT;
    case DS_VERDICT_PENDING:
        return CLI_EXIT_PENDING;
    default:
        return CLI_EXIT_OK;
    }
}

/* Drift outranks pending work. */
int status_cli_worse(int a, int b)
{
    return a == CLI_EXIT_DRIFT || b == CLI_EXIT_DRIFT ? CLI_EXIT_DRIFT : a ? a : b;
}

/* The console's own disk: the retain store (versions servers hold, their
 * delta bases), bounded by gc (see README "Retained versions and gc"). */
void status_cli_retain(const ds_config_t *cfg, const ds_retain_usage_t *ru)
{
    char st[32], disk[32];

    progress_fmt_bytes(st, sizeof(st), ru->stored_bytes);
    progress_fmt_bytes(disk, sizeof(disk), ru->file_bytes);
    printf("console: retain store %s/retain: %" PRIu64 " versions, %s stored, %s on disk\n",
           cli_esc(cfg->state), ru->versions, st, disk);
}

/* A frozen server (distsync freeze): one line under its report. */
static void print_frozen(ds_sync_t *sy, const char *server)
{
    char line[1024];
    ds_freeze_t f;

    if (ds_freeze_get(ds_sync_catalog(sy), server, (int64_t)time(NULL), &f) != 0)
        return; /* not frozen (a catalog error is logged) */
    ds_freeze_describe(&f, line, sizeof(line));
    printf("  frozen: %s\n", cli_esc(line));
}

/* An smb:// server remembered not to copy on its side: one line. */
static void print_srvcopy(ds_sync_t *sy, const ds_server_cfg_t *srv)
{
    int64_t since, until;
    char a[32], b[32];

    if (ds_sync_srvcopy_off(sy, srv, (int64_t)time(NULL), &since, &until) != 1)
        return; /* not remembered (a catalog error is logged) */
    strftime(a, sizeof(a), "%Y-%m-%d %H:%M:%S UTC", gmtime(&(time_t){(time_t)since}));
    strftime(b, sizeof(b), "%Y-%m-%d %H:%M:%S UTC", gmtime(&(time_t){(time_t)until}));
    printf("  server-side copy: refused by the share at %s; syncs send whole files until %s, "
           "then try it again\n",
           a, b);
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
    int json = 0, no_scan = 0, offline = 0, nfail = 0, worst = CLI_EXIT_OK;
    char failed[512] = "";
    ds_retain_usage_t ru = {0};
    const struct cli_flag flags[] = {
        {"json", 'j', &json, NULL, 0, NULL},
        {"no-scan", 0, &no_scan, NULL, 0, NULL},
        {"offline", 0, &offline, NULL, 0, NULL},
        {NULL, 0, NULL, NULL, 0, NULL},
    };
    const ds_server_cfg_t **srv = NULL;
    struct cli_select sel;
    ds_config_t *cfg = NULL;
    ds_sync_t *sy = NULL;
    ds_strlist_t only;
    ds_json_t j;
    size_t n = 0;
    int rc = cli_select_parse(STATUS_USAGE, argc, argv, flags, &sel);

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    signal(SIGPIPE, SIG_IGN);
    rc = cli_config_load(cli, &cfg);
    if (rc == 0)
        rc = cli_select_resolve("status", cfg, &sel, 1, &srv, &n);
    /* with a daemon running, through it, at once even during its run:
     * --offline from its catalog, live on a thread of its own */
    if (rc == 0 && cli_select_classes(&sel, &only) == NULL && cli_daemon_up(cfg)) {
        rc = status_cli_daemon(cli, cfg, srv, n, json, offline, no_scan);
        goto out;
    }
    if (rc == 0)
        rc = sync_cli_open(cfg, NULL, NULL, 0, cli_select_classes(&sel, &only), &sy);
    if (rc == 0)
        rc = sync_cli_prepare(cli, cfg, sy, no_scan);
    if (rc != 0)
        goto out;
    if (ds_sync_retain_usage(sy, &ru) < 0)
        cli_err("warning: cannot read the retain store under %s", cfg->state);
    if (json) {
        ds_json_init(&j, stdout);
        ds_json_arr_begin(&j);
    }
    for (size_t i = 0; i < n; i++) {
        ds_sync_result_t r;

        /* --offline: from the catalog's last-known manifest (import-manifest) */
        if ((offline ? ds_sync_status_known(sy, srv[i], &r)
                     : ds_sync_server(sy, srv[i], DS_SYNC_STATUS, &r)) < 0) {
            size_t k = strlen(failed);

            nfail++;
            snprintf(failed + k, sizeof(failed) - k, "%s%s", k ? ", " : "", srv[i]->name);
            /* the reason once: in the report (text) or on stderr next to the JSON */
            if (json) {
                cli_err("%s", r.error);
                ds_report_failed_json(&j, srv[i]->name, r.error);
            } else { /* the report names every server, also one it cannot read */
                printf("status %s: FAILED: %s\n", cli_esc(srv[i]->name),
                       cli_esc(cli_hint(cli, r.error)));
            }
        } else {
            worst = status_cli_worse(worst, status_cli_exit(ds_report_verdict(r.plan)));
            if (json)
                ds_report_status_json(&j, srv[i]->name, r.plan, &ru);
            else
                status_cli_text(srv[i]->name, r.plan);
        }
        if (!json) {
            print_frozen(sy, srv[i]->name);
            print_srvcopy(sy, srv[i]);
        }
        ds_sync_result_clear(&r);
    }
    if (json) {
        ds_json_arr_end(&j);
        ds_json_end(&j);
    } else {
        status_cli_retain(cfg, &ru);
    }
    if (nfail > 0 && !json) /* as sync says it */
        cli_err("%d of %zu server%s failed: %s", nfail, n, n == 1 ? "" : "s", failed);
    rc = nfail ? CLI_EXIT_SERVER : worst;
out:
    ds_sync_close(sy);
    free(srv);
    ds_config_free(cfg);
    cli_select_free(&sel);
    return rc;
}

/*
 * distsync export SERVER --out FILE [--since-manifest MANIFEST] [--full]
 * [--force] [--no-scan]: the bundle that brings an offline server to the
 * desired set (include/distsync/bundle.h), to carry on removable media and
 * apply there with `distsync agent --root DIR --import FILE`. After the
 * incremental scan, as sync and plan do.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/bundle.h"
#include "distsync/error.h"
#include "progress.h"
#include "sync_cli.h"

#define EXPORT_USAGE                                                                               \
    "usage: distsync export SERVER --out FILE [--since-manifest MANIFEST] [--full] [--force] "     \
    "[--no-scan]"

static void print_stats(const char *server, const char *out, const ds_bundle_export_stats_t *st)
{
    char nb[32], db[32], bb[32];

    progress_fmt_bytes(nb, sizeof(nb), st->new_bytes);
    progress_fmt_bytes(db, sizeof(db), st->data_bytes);
    progress_fmt_bytes(bb, sizeof(bb), st->bundle_bytes);
    printf("export %s: %s: %" PRIu64 " whole, %" PRIu64 " delta%s, %" PRIu64 " cop%s, %" PRIu64
           " delete%s, %" PRIu64 " unchanged; %s of new content as %s of data, a %s bundle\n",
           cli_esc(server), cli_esc(out), st->lit, st->delta, st->delta == 1 ? "" : "s", st->copy,
           st->copy == 1 ? "y" : "ies", st->del, st->del == 1 ? "" : "s", st->keep, nb, db, bb);
}

int cmd_export(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"since-manifest", required_argument, NULL, 'm'},
        {"full", no_argument, NULL, 'F'},
        {"force", no_argument, NULL, 'f'},
        {"no-scan", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ds_bundle_export_opts_t eo = {0};
    ds_bundle_export_stats_t st;
    ds_config_t *cfg = NULL;
    ds_sync_t *sy = NULL;
    char err[1024];
    int ch, force = 0, no_scan = 0, rc;

    while ((ch = getopt_long(argc, argv, "o:m:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'o':
            eo.out = optarg;
            break;
        case 'm':
            eo.since_manifest = optarg;
            break;
        case 'F':
            eo.full = 1;
            break;
        case 'f':
            force = 1;
            break;
        case 'n':
            no_scan = 1;
            break;
        case 'h':
            printf("%s\n", EXPORT_USAGE);
            return CLI_EXIT_OK;
        default:
            cli_err("%s", EXPORT_USAGE);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc || eo.out == NULL || (eo.full && eo.since_manifest)) {
        cli_err("%s%s", EXPORT_USAGE,
                eo.full && eo.since_manifest ? " (--full and --since-manifest exclude each other)"
                                             : "");
        return CLI_EXIT_USAGE;
    }
    eo.server = argv[optind];
    signal(SIGPIPE, SIG_IGN);
    rc = cli_config_load(cli, &cfg);
    if (rc == 0 && ds_config_server(cfg, eo.server) == NULL) {
        cli_err("export: no server named %s in the configuration", eo.server);
        rc = CLI_EXIT_USAGE;
    }
    if (rc == 0)
        rc = sync_cli_open(cfg, NULL, NULL, force, NULL, &sy);
    if (rc == 0)
        rc = sync_cli_prepare(cli, cfg, sy, no_scan);
#ifdef DS_TEST_HOOKS /* test builds only: a slow export, to stop it mid-way */
    if (getenv("DISTSYNC_TEST_EXPORT_PAUSE_MS") != NULL)
        eo.test_pause_ms = (unsigned)atoi(getenv("DISTSYNC_TEST_EXPORT_PAUSE_MS"));
#endif
    sync_cli_signals(); /* a cancel removes FILE.tmp-PID */
    sync_cli_cancel_target(sy);
    if (rc == 0 && ds_sync_export(sy, &eo, &st, err, sizeof(err)) < 0) {
        cli_err("export: %s", err);
        rc = sync_cli_cancelled() ? sync_cli_cancelled() : CLI_EXIT_FAIL;
    } else if (rc == 0) {
        if (!cli->quiet)
            print_stats(eo.server, eo.out, &st);
        if (st.held)
            cli_err("warning: server %s: a prune guard held deletions back (see distsync plan "
                    "%s; --force allows them)",
                    eo.server, eo.server);
    }
    sync_cli_cancel_target(NULL);
    ds_sync_close(sy);
    ds_config_free(cfg);
    return rc;
}

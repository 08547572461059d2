/*
 * distsync scans [--json]: the scan generations the catalog keeps, with
 * their times (oldest first), so that an operator can pin a sync to the
 * exact scan they approved: sync --as-of scan:GEN (README: Daemon,
 * sync --as-of). Reads the catalog (a running daemon's too: SQLite lets a
 * reader in beside it).
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "distsync/catalog.h"
#include "distsync/error.h"
#include "distsync/json.h"

#define SCANS_USAGE "usage: distsync scans [--json]\n"

static void when(char *buf, size_t len, int64_t s)
{
    time_t t = (time_t)s;
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "?");
}

static int print_gen(void *ctx, const ds_catalog_gen_info_t *g)
{
    char start[32], done[32] = "did not complete";

    (void)ctx;
    when(start, sizeof(start), g->started_at);
    if (g->done_at != 0)
        when(done, sizeof(done), g->done_at);
    printf("scan:%-8lld %-22s %-22s %s\n", (long long)g->id, start, done,
           g->pinned_by[0] ? cli_esc(g->pinned_by) : "-");
    return 0;
}

static int list(ds_catalog_t *cat, int json)
{
    ds_json_t j;
    int rc;

    if (json) {
        ds_json_init(&j, stdout);
        rc = ds_catalog_gen_json(&j, cat);
        ds_json_end(&j);
        return rc;
    }
    printf("%-13s %-22s %-22s %s\n", "SCAN", "STARTED", "COMPLETED", "PINNED BY");
    return ds_catalog_gen_each(cat, print_gen, NULL);
}

int cmd_scans(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ds_config_t *cfg = NULL;
    ds_catalog_t *cat = NULL;
    char path[PATH_MAX];
    int ch, json = 0, rc;

    while ((ch = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
        if (ch == 'j')
            json = 1;
        else {
            fputs(SCANS_USAGE, ch == 'h' ? stdout : stderr);
            return ch == 'h' ? CLI_EXIT_OK : CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_err("scans: unexpected argument '%s'", cli_esc(argv[optind]));
        return CLI_EXIT_USAGE;
    }
    if ((rc = cli_config_load(cli, &cfg)) != 0)
        return rc;
    if ((rc = cli_catalog_open_existing(cfg, path, sizeof(path), &cat)) != 0)
        goto out;
    rc = list(cat, json);
    if (rc < 0)
        cli_err("scans: reading %s failed: %s", path, ds_strerror(rc));
    rc = rc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
out:
    ds_catalog_free(cat);
    ds_config_free(cfg);
    return rc;
}

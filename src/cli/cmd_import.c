/*
 * distsync import-manifest SERVER FILE: an offline server's manifest (the
 * <root>/.distsync/manifest that `distsync agent --import` writes there),
 * carried back on removable media, becomes the catalog's last-known
 * manifest of SERVER, so `status --offline`, gc and the next bundle see
 * what the server really holds (ds_sync_import_manifest, distsync/sync.h).
 */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "distsync/error.h"
#include "sync_cli.h"

#define IMPORT_USAGE "usage: distsync import-manifest SERVER FILE\n"

static int parse(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        fputs(IMPORT_USAGE, ch == 'h' ? stdout : stderr);
        return ch == 'h' ? -1 : CLI_EXIT_USAGE;
    }
    if (argc - optind != 2) {
        fputs(IMPORT_USAGE, stderr);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* "unknown server 'X'; servers in FILE: a, b" */
static void unknown_server(const ds_config_t *cfg, const char *name)
{
    char list[512] = "";

    for (size_t i = 0; i < cfg->nservers; i++) {
        size_t k = strlen(list);

        snprintf(list + k, sizeof(list) - k, "%s%s", k ? ", " : "", cfg->servers[i].name);
    }
    cli_err("import-manifest: unknown server '%s'; servers in %s: %s", name, cfg->path,
            cfg->nservers ? list : "(none)");
}

int cmd_import_manifest(struct cli *cli, int argc, char **argv)
{
    const ds_server_cfg_t *srv;
    ds_config_t *cfg = NULL;
    ds_sync_import_t im;
    ds_sync_t *sy = NULL;
    char err[1024];
    int rc = parse(argc, argv);

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    if ((rc = cli_config_load(cli, &cfg)) != 0)
        return rc;
    if ((srv = ds_config_server(cfg, argv[optind])) == NULL) {
        unknown_server(cfg, argv[optind]);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if ((rc = sync_cli_open(cfg, NULL, NULL, 0, NULL, &sy)) != 0)
        goto out;
    if (ds_sync_import_manifest(sy, srv, argv[optind + 1], (int64_t)time(NULL), &im, err,
                                sizeof(err)) < 0) {
        cli_err("import-manifest: %s", err);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    printf("import-manifest %s: %s: %" PRIu64 " files recorded as the server's manifest; against "
           "the one known before: %" PRIu64 " created, %" PRIu64 " updated, %" PRIu64
           " deleted (run %" PRId64 ")\n",
           cli_esc(srv->name), cli_esc(argv[optind + 1]), im.files, im.created, im.updated,
           im.deleted, im.run_id);
out:
    ds_sync_close(sy);
    ds_config_free(cfg);
    return rc;
}

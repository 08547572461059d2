/*
 * distsync backup --out FILE [--include-secrets]: the console's config,
 * catalog (an online copy) and known_hosts in one tar + zstd archive
 * (src/backup/, include/distsync/backup.h); src/cli/cmd_restore.c puts
 * them back.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "distsync/backup.h"
#include "distsync/error.h"
#include "distsync/sync.h"
#include "progress.h"

#define BACKUP_USAGE "usage: distsync backup --out FILE [--include-secrets]\n"

/* The id ds_sync_console_id() gives this console, without opening the
 * state; "<host>:unknown" when it cannot be computed. */
static void console_id(const ds_config_t *cfg, char *out, size_t cap)
{
    char host[256];

    if (ds_sync_make_console_id(cfg->state, host, sizeof(host), out, cap) < 0)
        snprintf(out, cap, "%s:unknown", host);
}

static void print_file(const ds_backup_file_t *f, const char *verb)
{
    char sz[32];

    progress_fmt_bytes(sz, sizeof(sz), f->size);
    printf("  %s %-11s %s  %s  mode %04o\n", verb, ds_backup_role_name(f->role), cli_esc(f->dest),
           sz, f->mode);
}

static int parse(int argc, char **argv, const char **out, int *secrets)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"include-secrets", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        if (ch == 'o') {
            *out = optarg;
        } else if (ch == 's') {
            *secrets = 1;
        } else {
            fputs(BACKUP_USAGE, ch == 'h' ? stdout : stderr);
            return ch == 'h' ? -1 : CLI_EXIT_USAGE;
        }
    }
    if (argc != optind || *out == NULL) {
        fputs(BACKUP_USAGE, stderr);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

static int do_backup(struct cli *cli, const char *out, int secrets)
{
    char err[1024], id[300];
    ds_backup_manifest_t m;
    ds_config_t *cfg = NULL;
    int rc = cli_config_load(cli, &cfg);
    ds_backup_opts_t o = {.cfg = cfg,
                          .out = out,
                          .include_secrets = secrets,
                          .console_id = id,
                          .now = (int64_t)time(NULL)};

    if (rc != 0)
        return rc;
    console_id(cfg, id, sizeof(id));
    if ((rc = ds_backup_write(&o, &m, err, sizeof(err))) < 0) {
        cli_err("backup: %s", err);
        ds_config_free(cfg);
        return CLI_EXIT_FAIL;
    }
    printf("backup %s: console %s, distsync %s\n", cli_esc(out), cli_esc(m.console), m.version);
    for (size_t i = 0; i < m.nfiles; i++)
        print_file(&m.files[i], "saved");
    for (size_t i = 0; i < m.nomitted; i++)
        cli_err("backup: left out %s %s (secrets are saved only with --include-secrets)",
                ds_backup_role_name(m.omitted[i].role), m.omitted[i].dest);
    ds_backup_manifest_clear(&m);
    ds_config_free(cfg);
    return CLI_EXIT_OK;
}

int cmd_backup(struct cli *cli, int argc, char **argv)
{
    const char *out = NULL;
    int secrets = 0, rc = parse(argc, argv, &out, &secrets);

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    return do_backup(cli, out, secrets);
}

/*
 * distsync backup --out FILE [--include-secrets] and distsync restore FILE
 * [--force]: the console's config, catalog (an online copy) and known_hosts
 * in one tar + zstd archive, and back (src/backup/, include/distsync/backup.h).
 * One file for both: argv[0] tells them apart, as freeze and thaw.
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
#include "distsync/digest.h"
#include "distsync/error.h"
#include "progress.h"

#define BACKUP_USAGE  "usage: distsync backup --out FILE [--include-secrets]\n"
#define RESTORE_USAGE "usage: distsync restore FILE [--force]\n"

/* The id ds_sync_console_id() gives this console (distsync/sync.h):
 * "<host>:<12 hex of SHA-256(state dir)>", without opening the state. */
static void console_id(const ds_config_t *cfg, char *out, size_t cap)
{
    uint8_t sum[DS_SHA256_LEN];
    char host[256] = "", hex[2 * DS_SHA256_LEN + 1];

    if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "localhost");
    if (ds_sha256(cfg->state, strlen(cfg->state), sum) < 0) {
        snprintf(out, cap, "%s:unknown", host);
        return;
    }
    ds_hex(sum, DS_SHA256_LEN, hex);
    snprintf(out, cap, "%.200s:%.12s", host, hex);
}

static void print_file(const ds_backup_file_t *f, const char *verb)
{
    char sz[32];

    progress_fmt_bytes(sz, sizeof(sz), f->size);
    printf("  %s %-11s %s  %s  mode %04o\n", verb, ds_backup_role_name(f->role), cli_esc(f->dest),
           sz, f->mode);
}

/* Parses [--out FILE] [--include-secrets] [--force] and one or no operand. */
static int parse(const char *usage, int argc, char **argv, const char **out, int *flag,
                 const char **operand)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"include-secrets", no_argument, NULL, 's'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int backup = strcmp(argv[0], "backup") == 0, ch;

    while ((ch = getopt_long(argc, argv, backup ? "o:h" : "h", opts, NULL)) != -1) {
        if (backup && ch == 'o')
            *out = optarg;
        else if ((backup && ch == 's') || (!backup && ch == 'f'))
            *flag = 1;
        else {
            fputs(usage, ch == 'h' ? stdout : stderr);
            return ch == 'h' ? -1 : CLI_EXIT_USAGE;
        }
    }
    if (backup ? (argc != optind || *out == NULL) : argc - optind != 1) {
        fputs(usage, stderr);
        return CLI_EXIT_USAGE;
    }
    if (!backup)
        *operand = argv[optind];
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

static void restored(void *ctx, const ds_backup_file_t *f, const char *bak)
{
    (void)ctx;
    print_file(f, "restored");
    if (bak)
        printf("    (the file it replaced is %s)\n", cli_esc(bak));
}

static int do_restore(const char *file, int force)
{
    char err[1024], when[64];
    ds_backup_manifest_t m = {0};
    time_t t;
    int fd = open(file, O_RDONLY | O_CLOEXEC), rc;

    if (fd < 0) {
        cli_err("restore: %s: %s", file, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    rc = ds_backup_check_fd(fd, &m, err, sizeof(err));
    if (rc < 0) {
        cli_err("restore: %s: refused: %s", file, err);
        goto out;
    }
    t = (time_t)m.created;
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    printf("restore %s: backup of console %s by distsync %s at %s; every SHA-256 checked\n",
           cli_esc(file), cli_esc(m.console), cli_esc(m.version), when);
    rc = ds_backup_restore(fd, &m, force, restored, NULL, err, sizeof(err));
    if (rc < 0)
        cli_err("restore: %s: %s", file, err);
    for (size_t i = 0; rc == 0 && i < m.nomitted; i++)
        cli_err("restore: the backup left out %s %s: put it back by hand",
                ds_backup_role_name(m.omitted[i].role), m.omitted[i].dest);
out:
    close(fd);
    ds_backup_manifest_clear(&m);
    return rc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cmd_backup(struct cli *cli, int argc, char **argv)
{
    int restore = strcmp(argv[0], "restore") == 0, flag = 0;
    const char *out = NULL, *file = NULL;
    int rc = parse(restore ? RESTORE_USAGE : BACKUP_USAGE, argc, argv, &out, &flag, &file);

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    return restore ? do_restore(file, flag) : do_backup(cli, out, flag);
}

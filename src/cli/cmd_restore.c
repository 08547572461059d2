/*
 * distsync restore FILE [--force] [--dry-run]: a backup archive (distsync backup)
 * checked whole, then put back where its config says (ds_backup_check_fd,
 * ds_backup_restore; include/distsync/backup.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "distsync/backup.h"
#include "distsync/error.h"
#include "distsync/tz.h"
#include "progress.h"

#define RESTORE_USAGE "usage: distsync restore FILE [--force] [--dry-run]\n"

static int parse(int argc, char **argv, unsigned *flags)
{
    static const struct option opts[] = {
        {"force", no_argument, NULL, 'f'},
        {"dry-run", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "nh", opts, NULL)) != -1) {
        if (ch == 'f' || ch == 'n') {
            *flags |= ch == 'f' ? DS_BACKUP_FORCE : DS_BACKUP_DRY_RUN;
            continue;
        }
        fputs(RESTORE_USAGE, ch == 'h' ? stdout : stderr);
        return ch == 'h' ? -1 : CLI_EXIT_USAGE;
    }
    if (argc - optind != 1) {
        fputs(RESTORE_USAGE, stderr);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

struct told {
    unsigned flags;
    size_t existing; /* destinations that exist (a dry run without --force) */
};

static void restored(void *ctx, const ds_backup_file_t *f, const char *bak)
{
    struct told *t = ctx;
    int dry = !!(t->flags & DS_BACKUP_DRY_RUN), force = !!(t->flags & DS_BACKUP_FORCE);
    char sz[32];

    progress_fmt_bytes(sz, sizeof(sz), f->size);
    printf("  %s %-11s %s  %s  mode %04o\n", dry ? "would restore" : "restored",
           ds_backup_role_name(f->role), cli_esc(f->dest), sz, f->mode);
    if (bak && dry && !force)
        printf("    (it exists: restore refuses it without --force, which keeps it as %s)\n",
               cli_esc(bak));
    else if (bak)
        printf("    (the file it %s %s)\n", dry ? "would replace would be kept as" : "replaced is",
               cli_esc(bak));
    t->existing += bak != NULL;
}

static int do_restore(const char *file, unsigned flags)
{
    char err[1024], when[64] = "an unknown date";
    ds_backup_manifest_t m = {0};
    struct told told = {.flags = flags};
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
    (void)ds_tz_format_utc(m.created, when, sizeof(when)); /* else "an unknown date" */
    printf("restore %s: backup of console %s by distsync %s at %s; every SHA-256 checked\n",
           cli_esc(file), cli_esc(m.console), cli_esc(m.version), when);
    rc = ds_backup_restore(fd, &m, flags, restored, &told, err, sizeof(err));
    if (rc < 0)
        cli_err("restore: %s: %s", file, err);
    else if (told.existing > 0 && !(flags & DS_BACKUP_FORCE))
        cli_err("restore: %zu of these exist: a restore without --force refuses them",
                told.existing);
    for (size_t i = 0; rc == 0 && i < m.nomitted; i++)
        cli_err("restore: the backup left out %s %s: put it back by hand",
                ds_backup_role_name(m.omitted[i].role), m.omitted[i].dest);
out:
    close(fd);
    ds_backup_manifest_clear(&m);
    return rc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cmd_restore(struct cli *cli, int argc, char **argv)
{
    unsigned flags = 0;
    int rc = parse(argc, argv, &flags);

    (void)cli; /* restore needs no config: the archive carries it */
    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    return do_restore(argv[optind], flags);
}

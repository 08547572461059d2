/* distsync scan: bring the catalog up to date with the content store. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "distsync/fsutil.h"
#include "distsync/catalog.h"
#include "distsync/error.h"
#include "distsync/scan.h"
#include "distsync/json.h"
#include "progress.h"
#include "sync_cli.h"

struct scan_ui {
    struct progress pr;
    struct cli_not_copied nc;
};

static void on_not_copied(void *ctx, const char *path, int err, const char *what)
{
    (void)err;
    cli_not_copied_add(&((struct scan_ui *)ctx)->nc, path, what);
}

static void on_warn(void *ctx, const char *path, int err, const char *what)
{
    struct scan_ui *ui = ctx;

    progress_clear(&ui->pr);
    fprintf(stderr, "distsync: warning: %s: %s\n", cli_esc(path), what);
}

static void on_error(void *ctx, const char *path, int err, const char *what)
{
    struct scan_ui *ui = ctx;

    progress_clear(&ui->pr);
    fprintf(stderr, "distsync: error: %s: %s (%s)\n", cli_esc(path), what, ds_strerror(err));
}

/* ETA: over the bytes of the files queued so far. The walk runs well ahead
 * of the hashing (it only stats), so the total soon covers the whole store. */
static void on_progress(void *ctx, const ds_scan_stats_t *st, int done)
{
    struct scan_ui *ui = ctx;

    if (done)
        progress_clear(&ui->pr);
    else
        progress_update(&ui->pr, progress_now(), st->files, "files", st->bytes_hashed,
                        st->bytes_queued, 0);
}

/* One scan at a time per state directory: two would race over the same
 * rows. */
int scan_cli_lock(const char *state, int wait)
{
    char path[PATH_MAX];
    int fd;

    snprintf(path, sizeof(path), "%s/scan.lock", state);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        cli_err("%s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        return fd;
    if (wait) {
        cli_err("%s: waiting for the scan running on this state directory", path);
        if (flock(fd, LOCK_EX) == 0)
            return fd;
    }
    cli_err("%s: another 'distsync scan' is running on this state directory", path);
    close(fd);
    return -1;
}

static void print_json(const ds_scan_stats_t *st, const char *catalog,
                       const struct scan_precompute *pc)
{
    ds_json_t j;
    double secs = (double)st->elapsed_ns / 1e9;

    ds_json_init(&j, stdout);
    ds_json_obj_begin(&j);
    ds_json_kstr(&j, "catalog", catalog);
    ds_json_kuint(&j, "files", st->files);
    ds_json_kuint(&j, "new", st->added);
    ds_json_kuint(&j, "changed", st->changed);
    ds_json_kuint(&j, "touched", st->touched);
    ds_json_kuint(&j, "unchanged", st->unchanged);
    ds_json_kuint(&j, "removed", st->removed);
    ds_json_kuint(&j, "hashed", st->hashed);
    ds_json_kuint(&j, "bytes_hashed", st->bytes_hashed);
    ds_json_kuint(&j, "contents_new", st->contents_new);
    ds_json_kuint(&j, "warnings", st->warnings);
    ds_json_kuint(&j, "skipped", st->skipped);
    ds_json_kuint(&j, "unreadable", st->unreadable);
    ds_json_kuint(&j, "not_copied", st->not_copied);
    ds_json_kdouble(&j, "elapsed_s", secs);
    ds_json_kdouble(&j, "bytes_per_s", secs > 0 ? (double)st->bytes_hashed / secs : 0);
    if (pc != NULL)
        scan_cli_precompute_json(&j, pc);
    ds_json_obj_end(&j);
    ds_json_end(&j);
}

static void print_summary(const ds_scan_stats_t *st)
{
    double secs = (double)st->elapsed_ns / 1e9;
    char b[32], r[32], d[32], touched[48] = "", unread[48] = "", skipped[48] = "";

    progress_fmt_bytes(b, sizeof(b), st->bytes_hashed);
    progress_fmt_rate(r, sizeof(r), secs > 0 ? (double)st->bytes_hashed / secs : 0);
    progress_fmt_duration(d, sizeof(d), secs);
    if (st->touched > 0)
        snprintf(touched, sizeof(touched), ", %llu touched", (unsigned long long)st->touched);
    if (st->unreadable > 0)
        snprintf(unread, sizeof(unread), ", %llu unreadable", (unsigned long long)st->unreadable);
    if (st->skipped > 0)
        snprintf(skipped, sizeof(skipped), ", %llu skipped (bad name)",
                 (unsigned long long)st->skipped);
    printf("scan: %llu files (%llu new, %llu changed%s, %llu removed, %llu unchanged), "
           "%s hashed in %s (%s), %llu warning%s%s%s\n",
           (unsigned long long)st->files, (unsigned long long)st->added,
           (unsigned long long)st->changed, touched, (unsigned long long)st->removed,
           (unsigned long long)st->unchanged, b, d, r, (unsigned long long)st->warnings,
           st->warnings == 1 ? "" : "s", unread, skipped);
}

#define SCAN_USAGE "usage: distsync scan [--json] [--threads N] [--precompute]\n"

static int parse_args(int argc, char **argv, int *json, unsigned *threads, int *precompute)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"threads", required_argument, NULL, 't'},
        {"precompute", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "jt:h", opts, NULL)) != -1) {
        char *end;
        long v;

        switch (ch) {
        case 'j':
            *json = 1;
            break;
        case 't':
            errno = 0;
            v = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || v < 1 || v > 256) {
                cli_err("scan: --threads '%s': expected a number from 1 to 256", optarg);
                return CLI_EXIT_USAGE;
            }
            *threads = (unsigned)v;
            break;
        case 'P':
            *precompute = 1;
            break;
        case 'h':
            printf(SCAN_USAGE);
            return -1;
        default:
            fprintf(stderr, SCAN_USAGE);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_err("scan: unexpected argument '%s'", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

int cmd_scan(struct cli *cli, int argc, char **argv)
{
    ds_config_t *cfg = NULL;
    ds_catalog_t *cat = NULL;
    ds_scan_stats_t st = {0};
    struct scan_ui ui = {0};
    ds_scan_opts_t o = {0};
    char path[PATH_MAX], err[1024];
    struct scan_precompute pc = {0};
    unsigned threads = 0;
    int json = 0, lockfd = -1, precompute = 0, rc;

    rc = parse_args(argc, argv, &json, &threads, &precompute);
    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    rc = cli_config_load(cli, &cfg);
    if (rc != 0)
        return rc;
    rc = ds_mkdir_p(cfg->state);
    if (rc < 0) {
        cli_err("state directory %s: %s", cfg->state, ds_strerror(rc));
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    lockfd = scan_cli_lock(cfg->state, 0);
    if (lockfd < 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (ds_catalog_path(cfg->state, path, sizeof(path)) < 0) {
        cli_err("state directory %s: path is too long", cfg->state);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if (ds_catalog_open(path, &cat, err, sizeof(err)) < 0) {
        cli_err("%s", err);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    progress_init(&ui.pr, stderr, cli->tty && !cli->quiet && !json, "scan", progress_now());
    o.store = cfg->store;
    o.classes = (const char *const *)cfg->classes.v;
    o.nclasses = cfg->classes.n;
    o.chunk = cfg->chunk;
    o.threads = threads ? threads : cfg->scan_threads;
    o.progress = on_progress;
    o.warn = on_warn;
    o.error = on_error;
    o.not_copied = on_not_copied;
    o.ctx = &ui;
    rc = ds_scan_run(&o, cat, &st);
    if (rc < 0) {
        cli_err("scan of %s failed: %s (catalog %s)", cfg->store, ds_strerror(rc), path);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    cli_not_copied_report(&ui.nc, cli->quiet);
    precompute |= cfg->precompute;
    if (precompute) { /* the catalog is complete: other scans may start */
        close(lockfd);
        lockfd = -1;
        rc = scan_cli_precompute(cfg, &pc);
        if (rc != 0)
            goto out;
    }
    if (json)
        print_json(&st, path, precompute ? &pc : NULL);
    else /* a result: printed with -q too, as sync's summary is */
        print_summary(&st);
    if (precompute && !json)
        scan_cli_precompute_print(&pc);
    rc = CLI_EXIT_OK;
    if (st.unreadable > 0) {
        cli_err("scan: %llu file%s in %s could not be read (named above): they will not ship",
                (unsigned long long)st.unreadable, st.unreadable == 1 ? "" : "s", cfg->store);
        rc = CLI_EXIT_PARTIAL;
    }
out:
    ds_catalog_free(cat);
    ds_config_free(cfg);
    if (lockfd >= 0)
        close(lockfd);
    return rc;
}

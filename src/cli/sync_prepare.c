/*
 * What sync, plan and status do before they plan: warn, loudly, about a
 * catalog that has no completed scan (new, or lost and re-created), and
 * run the incremental scan so they never work from a stale store.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "distsync/error.h"
#include "distsync/scan.h"
#include "progress.h"
#include "sync_cli.h"

void cli_catalog_warn(ds_catalog_t *cat, const char *state)
{
    char path[PATH_MAX];

    if (ds_catalog_scanned(cat, NULL) != 0)
        return; /* scanned, or unreadable (that error is reported where it bites) */
    if (ds_catalog_path(state, path, sizeof(path)) < 0)
        return;
    cli_err("WARNING: catalog %s has no completed scan (it is new, or was lost and re-created): "
            "nothing will be pruned until a scan completes; run distsync scan",
            path);
}

int cli_catalog_path_made(const ds_config_t *cfg, char *path, size_t len)
{
    if (mkdir(cfg->state, 0750) < 0 && errno != EEXIST) {
        cli_err("state directory %s: %s", cli_esc(cfg->state), strerror(errno));
        return CLI_EXIT_FAIL;
    }
    if (ds_catalog_path(cfg->state, path, len) < 0) {
        cli_err("state directory %s: path is too long", cli_esc(cfg->state));
        return CLI_EXIT_USAGE;
    }
    return 0;
}

int cli_catalog_open_existing(const ds_config_t *cfg, char *path, size_t len, ds_catalog_t **cat)
{
    char err[1024];

    if (ds_catalog_path(cfg->state, path, len) < 0) {
        cli_err("state directory %s: path is too long", cfg->state);
        return CLI_EXIT_USAGE;
    }
    if (access(path, F_OK) != 0) {
        cli_err("no catalog at %s: run 'distsync scan' first", path);
        return CLI_EXIT_FAIL;
    }
    if (ds_catalog_open(path, cat, err, sizeof(err)) < 0) {
        cli_err("%s", err);
        return CLI_EXIT_FAIL;
    }
    return 0;
}

void cli_not_copied_add(struct cli_not_copied *nc, const char *path, const char *what)
{
    if (nc->n < CLI_NOT_COPIED_SHOWN)
        snprintf(nc->first[nc->n], sizeof(nc->first[nc->n]), "%s%s (%s)", cli_esc(path),
                 strcmp(what, "empty folder") == 0 ? "/" : "", what);
    nc->n++;
}

void cli_not_copied_report(const struct cli_not_copied *nc, int quiet)
{
    char list[3 * 330] = "";

    if (nc->n == 0 || quiet)
        return;
    for (unsigned long long i = 0; i < nc->n && i < CLI_NOT_COPIED_SHOWN; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                 nc->first[i]);
    /* the names are escaped already: print them as they are */
    fprintf(stderr,
            "distsync: note: %llu store entr%s not copied (empty folders and symbolic links are "
            "never copied): %s%s\n",
            nc->n, nc->n == 1 ? "y" : "ies", list, nc->n > CLI_NOT_COPIED_SHOWN ? ", ..." : "");
}

struct autoscan {
    struct progress pr;
    struct cli_not_copied nc;
};

static void on_not_copied(void *ctx, const char *path, int err, const char *what)
{
    (void)err;
    cli_not_copied_add(&((struct autoscan *)ctx)->nc, path, what);
}

static void on_warn(void *ctx, const char *path, int err, const char *what)
{
    struct autoscan *a = ctx;

    (void)err;
    progress_clear(&a->pr);
    cli_err("warning: %s: %s", path, what);
}

static void on_error(void *ctx, const char *path, int err, const char *what)
{
    struct autoscan *a = ctx;

    progress_clear(&a->pr);
    cli_err("error: %s: %s (%s)", path, what, ds_strerror(err));
}

static void on_progress(void *ctx, const ds_scan_stats_t *st, int done)
{
    struct autoscan *a = ctx;

    if (done)
        progress_clear(&a->pr);
    else
        progress_update(&a->pr, progress_now(), st->files, "files", st->bytes_hashed,
                        st->bytes_queued, 0);
}

/* The incremental scan (see cmd_scan.c). Returns 0 or CLI_EXIT_FAIL after
 * printing why. */
static int autoscan(struct cli *cli, const ds_config_t *cfg, ds_catalog_t *cat)
{
    ds_scan_opts_t o = {0};
    ds_scan_stats_t st = {0};
    struct autoscan a = {0};
    int lockfd = scan_cli_lock(cfg->state, 1), rc;

    if (lockfd < 0)
        return CLI_EXIT_FAIL;
    progress_init(&a.pr, stderr, cli->tty && !cli->quiet, "scan", progress_now());
    o.store = cfg->store;
    o.classes = (const char *const *)cfg->classes.v;
    o.nclasses = cfg->classes.n;
    o.chunk = cfg->chunk;
    o.threads = cfg->scan_threads;
    o.progress = on_progress;
    o.warn = on_warn;
    o.error = on_error;
    o.not_copied = on_not_copied;
    o.ctx = &a;
    rc = ds_scan_run(&o, cat, &st);
    close(lockfd);
    if (rc < 0) {
        cli_err("scan of %s failed: %s (catalog %s); nothing done (--no-scan uses the catalog as "
                "it is)",
                cfg->store, ds_strerror(rc), ds_catalog_name(cat));
        return CLI_EXIT_FAIL;
    }
    cli_not_copied_report(&a.nc, cli->quiet);
    if (!cli->quiet && st.added + st.changed + st.removed > 0)
        cli_err("scan: %llu new, %llu changed, %llu removed in the store (catalog updated)",
                (unsigned long long)st.added, (unsigned long long)st.changed,
                (unsigned long long)st.removed);
    return 0;
}

int sync_cli_prepare(struct cli *cli, const ds_config_t *cfg, ds_sync_t *sy, int no_scan)
{
    ds_catalog_t *cat = ds_sync_catalog(sy);

    cli_catalog_warn(cat, cfg->state);
    return no_scan ? 0 : autoscan(cli, cfg, cat);
}

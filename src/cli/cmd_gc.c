/*
 * distsync gc: frees retained versions that no server references and
 * reports the space used by retained versions and the delta cache.
 *
 * Kept: the union of the configured servers' last-known manifests (catalog
 * table server_file), the same rule as the gc a sync runs (ds_sync_gc; the
 * policy is ds_gc_run, gc.h). A sync records a server's manifest before it
 * retains the manifest's versions; the new versions a run retains early,
 * before it committed, a gc running beside it may free, and the run then
 * retains them again after the record (sync_retain.c), so a version just
 * sent ends up retained. A server removed from the configuration pins
 * nothing. While a configured server has no known manifest, or the catalog
 * no completed scan, nothing is freed and the reason is printed; --force
 * overrides.
 * Layout: <state>/catalog.db, <state>/retain/ (retain.db), <state>/deltas/.
 */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "distsync/catalog.h"
#include "distsync/delta.h"
#include "distsync/error.h"
#include "distsync/events.h"
#include "distsync/gc.h"
#include "distsync/retain.h"
#include "distsync/json.h"
#include "progress.h"

/* History younger than this survives --keep-history without --force. */
#define MIN_KEEP_S 86400

#define GC_USAGE "usage: distsync gc [--keep-history DAYS] [--force] [--json]\n"

struct gc_args {
    int json;
    int force;
    int dry;           /* --dry-run: report what would be freed, change nothing */
    int64_t keep_days; /* < 0: do not prune history */
};

struct gc_report {
    ds_gc_result_t res; /* the guard's verdict, referenced, freed bytes */
    ds_retain_usage_t before, after;
    uint64_t runs_pruned;
    ds_delta_cache_stats_t deltas;
};

static int is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Runs the retained-version GC (ds_gc_run) on the store under state, if
 * there is one. */
static int gc_retain(const char *state, ds_catalog_t *cat, const ds_config_t *cfg,
                     const struct gc_args *a, struct gc_report *g)
{
    char dir[PATH_MAX];
    ds_retain_t *r = NULL;
    int rc = 0;

    snprintf(dir, sizeof(dir), "%s/retain", state);
    if (is_dir(dir)) {
        rc = ds_retain_open(dir, &r);
        if (rc == 0)
            rc = ds_retain_usage(r, &g->before);
    }
    if (rc == 0)
        rc = ds_gc_run(cat, r, cfg, /* asked for: the file shrinks, whatever was freed */
                       DS_GC_SHRINK | (a->force ? DS_GC_FORCE : 0) | (a->dry ? DS_GC_DRY_RUN : 0),
                       &g->res);
    if (rc == 0 && r != NULL)
        rc = ds_retain_usage(r, &g->after);
    if (rc < 0)
        cli_err("gc: retained versions in %s: %s", dir, ds_strerror(rc));
    ds_retain_close(r);
    return rc;
}

/* Says why nothing was freed, and what to do. */
static void explain_kept(const ds_gc_result_t *res)
{
    const char *todo = res->nunknown == 0 ? "run distsync scan first"
                       : !res->unscanned
                           ? (res->nunknown == 1 ? "sync it first" : "sync them first")
                           : "run distsync scan and sync them first";

    cli_err("gc: kept everything: %s (%s, or gc --force)", res->why, todo);
}

static int delta_usage(const char *state, struct gc_report *g)
{
    char dir[PATH_MAX];
    ds_delta_cache_t *c = NULL;
    int rc;

    snprintf(dir, sizeof(dir), "%s/deltas", state);
    if (!is_dir(dir))
        return 0;
    rc = ds_delta_cache_open(dir, UINT64_MAX, NULL, &c);
    if (rc < 0) {
        cli_err("gc: delta cache %s: %s", dir, ds_strerror(rc));
        return rc;
    }
    ds_delta_cache_stats(c, &g->deltas);
    ds_delta_cache_close(c);
    return 0;
}

static int collect(const struct cli *cli, const ds_config_t *cfg, const struct gc_args *a,
                   struct gc_report *g)
{
    char path[PATH_MAX], err[1024];
    ds_catalog_t *cat = NULL;
    int rc;

    rc = ds_catalog_path(cfg->state, path, sizeof(path));
    if (rc < 0) {
        cli_err("state directory %s: path is too long", cfg->state);
        return rc;
    }
    if (access(path, F_OK) != 0)
        return delta_usage(cfg->state, g); /* nothing synced: nothing retained */
    rc = ds_catalog_open(path, &cat, err, sizeof(err));
    if (rc < 0) {
        cli_err("%s", err);
        return rc;
    }
    cli_catalog_warn(cat, cfg->state);
    rc = gc_retain(cfg->state, cat, cfg, a, g);
    if (rc == 0 && g->res.kept_all)
        explain_kept(&g->res);
    if (rc == 0 && a->keep_days >= 0 && a->dry && !cli->quiet)
        cli_err("gc: --dry-run: history not pruned");
    if (rc == 0 && a->keep_days >= 0 && !a->dry) {
        int64_t now = (int64_t)time(NULL), before = now - a->keep_days * 86400;

        /* a run younger than a day is only deleted with --force */
        if (before > now - MIN_KEEP_S && !a->force) {
            before = now - MIN_KEEP_S;
            if (!cli->quiet)
                cli_err("gc: runs younger than a day are kept (--keep-history %" PRId64
                        " --force deletes them too)",
                        a->keep_days);
        }
        rc = ds_run_prune(cat, before, &g->runs_pruned);
        if (rc < 0)
            cli_err("gc: pruning history in %s: %s", path, ds_strerror(rc));
    }
    if (rc == 0)
        rc = delta_usage(cfg->state, g);
    ds_catalog_free(cat);
    return rc;
}

static void report(const struct gc_args *a, const struct gc_report *g)
{
    ds_json_t j;

    if (!a->json) {
        char st[32], disk[32], lg[32], fr[32], dc[32];

        /* IEC units, as every command prints sizes; --json has bytes */
        progress_fmt_bytes(st, sizeof(st), g->after.stored_bytes);
        progress_fmt_bytes(disk, sizeof(disk), g->after.file_bytes);
        progress_fmt_bytes(lg, sizeof(lg), g->after.logical_bytes);
        progress_fmt_bytes(fr, sizeof(fr), g->res.freed_bytes);
        progress_fmt_bytes(dc, sizeof(dc), g->deltas.bytes);
        printf("retained versions: %" PRIu64 " (freed %" PRIu64 "), referenced by servers: %zu\n",
               g->after.versions, g->before.versions - g->after.versions, g->res.referenced);
        printf("stored bytes:      %s (compressed chunks; %s on disk)\n", st, disk);
        printf("logical bytes:     %s\n", lg);
        printf("%s%s%s\n", a->dry ? "would free:        " : "freed bytes:       ", fr,
               g->res.kept_all ? " (kept everything, see above)" : "");
        printf("delta cache:       %" PRIu64 " entries, %s\n", g->deltas.entries, dc);
        if (a->keep_days >= 0 && !a->dry)
            printf("history:           %" PRIu64 " runs pruned\n", g->runs_pruned);
        return;
    }
    ds_json_init(&j, stdout);
    ds_json_obj_begin(&j);
    ds_json_kuint(&j, "referenced_versions", g->res.referenced);
    ds_json_kuint(&j, "pinned_versions", g->res.pinned);
    ds_json_kuint(&j, "retained_versions", g->after.versions);
    ds_json_kuint(&j, "freed_versions", g->before.versions - g->after.versions);
    ds_json_kuint(&j, "chunks", g->after.chunks);
    ds_json_kuint(&j, "stored_bytes", g->after.stored_bytes);
    ds_json_kuint(&j, "unique_bytes", g->after.unique_bytes);
    ds_json_kuint(&j, "logical_bytes", g->after.logical_bytes);
    ds_json_kuint(&j, "file_bytes", g->after.file_bytes);
    ds_json_kuint(&j, "freed_bytes", g->res.freed_bytes);
    ds_json_kbool(&j, "dry_run", a->dry);
    ds_json_kbool(&j, "kept_all", g->res.kept_all);
    ds_json_key(&j, "kept_reason");
    if (g->res.kept_all)
        ds_json_str(&j, g->res.why);
    else
        ds_json_null(&j);
    ds_json_kuint(&j, "unknown_servers", g->res.nunknown);
    ds_json_kuint(&j, "delta_cache_entries", g->deltas.entries);
    ds_json_kuint(&j, "delta_cache_bytes", g->deltas.bytes);
    ds_json_kuint(&j, "runs_pruned", g->runs_pruned);
    ds_json_obj_end(&j);
    ds_json_end(&j);
}

static int parse_args(int argc, char **argv, struct gc_args *a)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},  {"keep-history", required_argument, NULL, 'k'},
        {"force", no_argument, NULL, 'f'}, {"dry-run", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},  {NULL, 0, NULL, 0},
    };
    char *end;
    int ch;

    a->keep_days = -1;
    while ((ch = getopt_long(argc, argv, "jk:fnh", opts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            a->dry = 1;
            break;
        case 'j':
            a->json = 1;
            break;
        case 'f':
            a->force = 1;
            break;
        case 'k':
            a->keep_days = strtoll(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || a->keep_days < 0 || a->keep_days > 100000) {
                cli_err("gc: --keep-history '%s': expected a number of days", optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'h':
            fputs(GC_USAGE, stdout);
            return -1;
        default:
            fputs(GC_USAGE, stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_err("gc: unexpected argument '%s'", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

int cmd_gc(struct cli *cli, int argc, char **argv)
{
    struct gc_args a = {0};
    struct gc_report g = {0};
    ds_config_t *cfg = NULL;
    int rc = parse_args(argc, argv, &a);

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    rc = cli_config_load(cli, &cfg);
    if (rc != 0)
        return rc;
    rc = collect(cli, cfg, &a, &g);
    if (rc == 0)
        report(&a, &g);
    ds_config_free(cfg);
    return rc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

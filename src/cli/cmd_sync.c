/*
 * distsync sync SERVER... | --all [--as-of TIME|scan:GEN] [--dry-run] [--json] [--force]
 * [--no-scan] [--delta-level N | --fast]: run-now sync of the servers in parallel (up to
 * max_servers, in one engine batch), after the incremental scan. SIGHUP
 * re-reads the caps. Live progress on a terminal; each server's summary line
 * as it ends (above the board on a terminal; --json: one document at the
 * end); exit 1 when any server failed, naming each failure, else 25 when a
 * prune guard held deletions back (--force lifts max_delete). SIGINT or SIGTERM cancels
 * (src/cli/cancel.c): the run ends as "cancelled", later servers are not
 * started, and the exit status is 128 + the signal.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "distsync/error.h"
#include "distsync/report.h"
#include "distsync/zpatch.h"
#include "board.h"
#include "daemon_client.h"
#include "progress.h"
#include "sync_cli.h"

#define SYNC_USAGE                                                                                 \
    "usage: distsync sync SERVER... | --site S | --all [--class C] [--as-of TIME|scan:GEN] "       \
    "[--dry-run] "                                                                                 \
    "[--json] [--force] [--no-scan] [--wait[=SECONDS]] [--delta-level N | --fast]\n"

struct sync_ui {
    struct board board; /* one line per active server, and a total */
    const struct cli *cli;
    /* result lines as each server ends (not --json, not --dry-run) */
    int stream, wait;
    const ds_server_cfg_t **srv; /* the whole selection */
    const size_t *map;           /* the running batch's index -> srv's (NULL: the same) */
    uint8_t *printed;            /* per server of srv: its line is out */
};

int sync_cli_open(const ds_config_t *cfg, ds_sync_progress_fn fn, void *ctx, int force,
                  const ds_strlist_t *only, ds_sync_t **out)
{
    return sync_cli_open_level(cfg, fn, ctx, force, only, 0, out);
}

int sync_cli_open_level(const ds_config_t *cfg, ds_sync_progress_fn fn, void *ctx, int force,
                        const ds_strlist_t *only, int delta_level, ds_sync_t **out)
{
    ds_sync_opts_t o = {.cfg = cfg,
                        .progress = fn,
                        .progress_ctx = ctx,
                        .force = force,
                        .only_classes = only,
                        .delta_level = delta_level};
    char err[1024];

#ifdef DS_TEST_HOOKS /* test builds only (cmake -DDS_TEST_HOOKS=ON): never in a release */
    if (getenv("DISTSYNC_TEST_NO_FSYNC") != NULL)
        o.no_fsync = 1;
    if (getenv("DISTSYNC_TEST_ZSTD_LEVEL") != NULL) /* a slow zstd, to see where it runs */
        o.zstd_level = atoi(getenv("DISTSYNC_TEST_ZSTD_LEVEL"));
    if (getenv("DISTSYNC_TEST_RETAIN_DELAY_MS") != NULL)
        o.test_retain_delay_ms = (unsigned)atoi(getenv("DISTSYNC_TEST_RETAIN_DELAY_MS"));
    if (getenv("DISTSYNC_TEST_DNS_DELAY_MS") != NULL)
        o.test_dns_delay_ms = (unsigned)atoi(getenv("DISTSYNC_TEST_DNS_DELAY_MS"));
    o.test_sftp_corrupt = getenv("DISTSYNC_TEST_SFTP_CORRUPT");
#endif
    if (ds_sync_open(&o, out, err, sizeof(err)) < 0) {
        cli_err("%s", err);
        return CLI_EXIT_FAIL;
    }
    return 0;
}

static void on_progress(void *ctx, const ds_sync_progress_t *p)
{
    struct sync_ui *ui = ctx;

    board_update(&ui->board, p, progress_now(), 0);
}

static const char *status_word(const ds_sync_result_t *r)
{
    return r->rc == 0            ? "ok"
           : r->rc == DS_EHELD   ? "DELETIONS HELD"
           : r->rc == DS_ELEASE  ? "BUSY"
           : r->rc == DS_EFROZEN ? "FROZEN"
           : r->rc == -ECANCELED ? "CANCELLED"
                                 : "FAILED";
}

void sync_cli_summary(const struct cli *cli, const char *name, const ds_sync_result_t *r)
{
    char w[32], l[32], c[32], d[32], q[48] = "", a[40] = "";

    progress_fmt_bytes(w, sizeof(w), r->bytes_wire);
    progress_fmt_bytes(l, sizeof(l), r->bytes_literal);
    progress_fmt_bytes(c, sizeof(c), r->bytes_copied);
    progress_fmt_duration(d, sizeof(d), r->elapsed_s);
    if (r->quick_deltas > 0) /* README "Quick deltas" */
        snprintf(q, sizeof(q), ", %" PRIu64 " quick delta%s", r->quick_deltas,
                 r->quick_deltas == 1 ? "" : "s");
    /* adopted files moved nothing (the target held their content): apart
     * from updated, which counts only what was sent (JSON's "updated"
     * still includes them) */
    if (r->adopted > 0)
        snprintf(a, sizeof(a), ", %" PRIu64 " adopted", r->adopted);
    printf("sync %s: %s, %" PRIu64 " files (%" PRIu64 " new, %" PRIu64 " updated%s, %" PRIu64
           " deleted%s), %s on the wire (literal %s, copied %s%s), %s",
           cli_esc(name), status_word(r), r->created + r->updated + r->adopted + r->deleted,
           r->created, r->updated, a, r->deleted, r->failed_files ? ", some failed" : "", w, l, c,
           q, d);
    if (r->rc < 0)
        printf(": %s", cli_esc(cli_hint(cli, r->error)));
    putchar('\n');
}

/* The engine's done callback: a server's result line as soon as it ends,
 * above the board on a terminal (the board redraws below it at its next
 * update); one another console holds waits for --wait's retries. */
static void on_done(void *ctx, size_t i, const ds_sync_result_t *r)
{
    struct sync_ui *ui = ctx;
    size_t k = ui->map ? ui->map[i] : i;

    if (!ui->stream || ui->printed == NULL || (r->rc == DS_ELEASE && ui->wait))
        return;
    board_clear(&ui->board);
    sync_cli_summary(ui->cli, ui->srv[k]->name, r);
    fflush(stdout);
    ui->printed[k] = 1;
}

#define WAIT_DEFAULT_S  600 /* --wait without a value */
#define WAIT_STEP_MAX_S 30  /* longest pause between two tries */

struct sync_args {
    int json, dry, force, no_scan, fast;
    int64_t wait_s;          /* --wait: how long a busy server is waited for; 0: not */
    int64_t level;           /* --delta-level: zpatch zstd level of this run (0: the config's) */
    struct sync_as_of as_of; /* --as-of: a time or scan:GEN (both 0: the newest scan) */
};

/* --delta-level N or --fast: the level, 0 for the config's, -1 after printing
 * why the options are wrong. */
static int run_level(const struct sync_args *a, int have_level)
{
    if (have_level && a->fast) {
        cli_err("sync: --fast and --delta-level exclude each other");
        return -1;
    }
    if (have_level && (a->level < 1 || a->level > 22)) {
        cli_err("sync: --delta-level %lld: expected a zstd level from 1 to 22",
                (long long)a->level);
        return -1;
    }
    return a->fast ? DS_ZPATCH_LEVEL_FAST : (int)a->level;
}

/* The batch's delta cache counters, after "servers" in --json. */
static void json_deltas(ds_json_t *j, ds_sync_t *sy, const ds_delta_cache_stats_t *before)
{
    ds_delta_cache_stats_t st;

    ds_sync_delta_stats(sy, &st);
    ds_json_key(j, "deltas");
    ds_json_obj_begin(j);
    ds_json_kuint(j, "computed", st.computes - before->computes);
    ds_json_kuint(j, "cached", st.hits - before->hits);
    ds_json_kuint(j, "relevelled", st.relevelled - before->relevelled);
    ds_json_obj_end(j);
}

/* SIGHUP: the same file, read again (the engine applies its caps). */
static ds_config_t *reload_config(void *ctx, char *err, size_t errlen)
{
    ds_config_t *cfg = NULL;

    return ds_config_load(ctx, &cfg, err, errlen) < 0 ? NULL : cfg;
}

/* Syncs (or plans) every server in one engine batch, in parallel up to
 * max_servers; with --wait, servers another console holds are tried again
 * (as a smaller batch) after pauses of 1, 2, 4... up to WAIT_STEP_MAX_S
 * seconds until wait_s have passed (or a signal cancels). */
static void run_batch(ds_sync_t *sy, ds_engine_t *e, const ds_server_cfg_t **srv, size_t n,
                      const struct sync_args *a, struct cli *cli, struct sync_ui *ui,
                      ds_sync_result_t *res)
{
    ds_sync_mode_t mode = a->dry ? DS_SYNC_PLAN : DS_SYNC_RUN;
    time_t deadline = time(NULL) + a->wait_s;
    const ds_server_cfg_t **again = calloc(n + 1, sizeof(*again));
    ds_sync_result_t *r2 = calloc(n + 1, sizeof(*r2));
    size_t *pos = calloc(n + 1, sizeof(*pos));
    long step = 1;

    ds_engine_run(e, srv, n, mode, res);
    while (again && r2 && pos && a->wait_s > 0 && !ds_sync_cancelled(sy)) {
        size_t m = 0;

        for (size_t i = 0; i < n; i++)
            if (res[i].rc == DS_ELEASE) {
                pos[m] = i;
                again[m++] = srv[i];
            }
        if (m == 0 || time(NULL) >= deadline)
            break;
        for (size_t k = 0; k < m && !cli->quiet; k++)
            cli_err("%s; waiting (up to %lld s in all)", res[pos[k]].error, (long long)a->wait_s);
        for (long t = 0; t < step && time(NULL) < deadline && !ds_sync_cancelled(sy); t++)
            sleep(1);
        if (ds_sync_cancelled(sy))
            break;
        ui->map = pos;
        ds_engine_run(e, again, m, mode, r2);
        ui->map = NULL;
        for (size_t k = 0; k < m; k++) {
            ds_sync_result_clear(&res[pos[k]]);
            res[pos[k]] = r2[k];
        }
        step = step * 2 > WAIT_STEP_MAX_S ? WAIT_STEP_MAX_S : step * 2;
    }
    free(again);
    free(r2);
    free(pos);
}

/* Syncs (or plans) the servers; prints each result. Returns the failures;
 * *nheld counts the servers whose deletions a prune guard held back,
 * *nbusy those another console held (not failures). */
static int run_all(ds_sync_t *sy, ds_engine_t *e, const ds_server_cfg_t **srv, size_t n,
                   const struct sync_args *a, struct cli *cli, struct sync_ui *ui, ds_json_t *j,
                   char *failed, size_t flen, int *nheld, int *nbusy)
{
    ds_sync_result_t *res = calloc(n + 1, sizeof(*res));
    int nfail = 0;

    if (res == NULL) {
        cli_err("sync: out of memory");
        return (int)n;
    }
    ui->srv = srv;
    ui->wait = a->wait_s > 0;
    ui->stream = !a->dry && j == NULL;
    ui->printed = calloc(n + 1, 1);
    run_batch(sy, e, srv, n, a, cli, ui, res);
    board_clear(&ui->board);
    for (size_t i = 0; i < n; i++) {
        ds_sync_result_t *r = &res[i];
        /* a cancel came first: reported as cancelled, not counted failed */
        int unstarted = r->rc == -ECANCELED && strstr(r->error, "before it started") != NULL;

        *nheld += r->rc == DS_EHELD;
        *nbusy += r->rc == DS_ELEASE;
        if (r->rc == DS_ELEASE) /* names the server and the console holding it */
            cli_err("%s", r->error);
        /* DS_EFROZEN: skipped as the freeze asks (its summary says so), not a failure */
        if (r->rc < 0 && r->rc != DS_EHELD && r->rc != DS_ELEASE && r->rc != DS_EFROZEN &&
            !unstarted) {
            nfail++;
            snprintf(failed + strlen(failed), flen - strlen(failed), "%s%s", nfail > 1 ? ", " : "",
                     srv[i]->name);
        }
        if (a->dry && r->plan) {
            sync_cli_print_plan(j, srv[i]->name, r->plan);
            sync_cli_print_guard(srv[i]->name, r->plan);
        } else if (a->dry)
            cli_err("%s", cli_hint(cli, r->error));
        else if (j)
            ds_report_result_json(j, srv[i]->name, r);
        else if (ui->printed == NULL || !ui->printed[i])
            sync_cli_summary(cli, srv[i]->name, r); /* not yet printed as it ended */
        fflush(stdout);
        ds_sync_result_clear(r);
    }
    free(res);
    free(ui->printed);
    ui->printed = NULL;
    /* once per batch, not per server: a fan-out pays for one collection */
    if (!a->dry && nfail < (int)n && ds_sync_gc(sy, NULL) < 0)
        cli_err("warning: could not collect unreferenced retained versions (run 'distsync gc')");
    return nfail;
}

static int open_engine(ds_sync_t *sy, const ds_config_t *cfg, struct sync_ui *ui, ds_engine_t **out)
{
    ds_engine_opts_t eo = {.sync = sy,
                           .reload = reload_config,
                           .reload_ctx = cfg->path,
                           .done = on_done,
                           .done_ctx = ui};
    char err[1024];

    if (ds_engine_new(&eo, out, err, sizeof(err)) < 0) {
        cli_err("%s", err);
        return CLI_EXIT_FAIL;
    }
    return 0;
}

/* -1 when a daemon runs and takes this sync (the options it takes: the
 * servers, --class, --json; --no-scan, as the daemon scans as it is
 * configured to); 0 to sync here (no daemon, or an option only a
 * standalone sync has: the servers' leases still keep one writer). */
static int through_daemon(struct cli *cli, const ds_config_t *cfg, const struct sync_args *a,
                          int level, int wait)
{
    const char *only_here = a->dry     ? "--dry-run"
                            : a->force ? "--force"
                            : level    ? (a->fast ? "--fast" : "--delta-level")
                            : wait     ? "--wait"
                                       : NULL;

    if (!cli_daemon_up(cfg))
        return 0;
    if (only_here == NULL)
        return -1;
    if (!cli->quiet && !a->dry)
        cli_err("sync: %s: syncing here, not through the running daemon (the servers' leases "
                "keep one writer at a time)",
                only_here);
    return 0;
}

int cmd_sync(struct cli *cli, int argc, char **argv)
{
    struct sync_args a = {.wait_s = WAIT_DEFAULT_S};
    int wait = 0, have_level = 0, level = 0, have_as_of = 0;
    const char *as_of_text = NULL;
    const struct cli_flag flags[] = {
        {"json", 'j', &a.json, NULL, 0, NULL},  {"dry-run", 'n', &a.dry, NULL, 0, NULL},
        {"force", 0, &a.force, NULL, 0, NULL},  {"no-scan", 0, &a.no_scan, NULL, 0, NULL},
        {"wait", 0, &wait, &a.wait_s, 1, NULL}, {"delta-level", 0, &have_level, &a.level, 0, NULL},
        {"fast", 0, &a.fast, NULL, 0, NULL},    {"as-of", 0, &have_as_of, NULL, 0, &as_of_text},
        {NULL, 0, NULL, NULL, 0, NULL},
    };
    ds_delta_cache_stats_t dbefore;
    struct sync_ui ui = {.cli = cli};
    struct cli_select sel;
    const ds_server_cfg_t **srv = NULL;
    ds_config_t *cfg = NULL;
    ds_sync_t *sy = NULL;
    ds_engine_t *eng = NULL;
    ds_strlist_t only;
    ds_json_t j;
    char failed[2048] = "";
    size_t n = 0;
    int rc = cli_select_parse(SYNC_USAGE, argc, argv, flags, &sel), nfail, nheld = 0, nbusy = 0;

    if (rc == 0 && wait && (a.wait_s < 1 || a.wait_s > 86400)) {
        cli_err("sync: --wait=%lld: expected seconds from 1 to 86400", (long long)a.wait_s);
        rc = CLI_EXIT_USAGE;
    }
    if (rc == 0 && (level = run_level(&a, have_level)) < 0)
        rc = CLI_EXIT_USAGE;
    if (rc == 0 && have_as_of)
        rc = sync_cli_as_of_parse(as_of_text, &a.as_of);
    if (rc != 0) {
        cli_select_free(&sel);
        return rc < 0 ? CLI_EXIT_OK : rc;
    }
    if (!wait)
        a.wait_s = 0;
    signal(SIGPIPE, SIG_IGN);
    sync_cli_signals();
    rc = cli_config_load(cli, &cfg);
    if (rc == 0)
        rc = cli_select_resolve("sync", cfg, &sel, 0, &srv, &n);
    if (rc == 0 && (rc = through_daemon(cli, cfg, &a, level, wait)) != 0) {
        /* a running daemon does the run: never two writers at once */
        rc = rc < 0 ? sync_cli_daemon(cli, cfg, srv, n, cli_select_classes(&sel, &only), a.json,
                                      &a.as_of)
                    : 0;
        goto out;
    }
    board_init(&ui.board, stderr, cli->tty && !cli->quiet && !a.json && !a.dry, progress_now());
    if (rc == 0)
        rc = sync_cli_open_level(cfg, on_progress, &ui, a.force, NULL, level, &sy);
    if (rc == 0)
        rc = sync_cli_prepare(cli, cfg, sy, a.no_scan);
    if (rc == 0 && (a.as_of.t != 0 || a.as_of.gen != 0))
        rc = sync_cli_as_of_pin(cli, sy, &a.as_of);
    if (rc == 0)
        rc = open_engine(sy, cfg, &ui, &eng);
    if (rc != 0)
        goto out;
    sync_cli_cancel_target(sy);
    sync_cli_engine(eng);
    /* --class: a property of the batch's runs */
    ds_engine_set_batch(eng, NULL, cli_select_classes(&sel, &only), 1);
    ds_sync_delta_stats(sy, &dbefore);
    if (a.json) {
        ds_json_init(&j, stdout);
        ds_json_obj_begin(&j);
        ds_json_key(&j, "servers");
        ds_json_arr_begin(&j);
    }
    nfail = run_all(sy, eng, srv, n, &a, cli, &ui, a.json ? &j : NULL, failed, sizeof(failed),
                    &nheld, &nbusy);
    if (a.json) {
        ds_json_arr_end(&j);
        json_deltas(&j, sy, &dbefore);
        ds_json_obj_end(&j);
        ds_json_end(&j);
    }
    if (nfail > 0)
        cli_err("%d of %zu server%s failed: %s", nfail, n, n == 1 ? "" : "s", failed);
    if (nbusy > 0)
        cli_err("%d of %zu server%s busy (another console holds the lease; --wait waits for it)",
                nbusy, n, n == 1 ? "" : "s");
    rc = nfail > 0   ? CLI_EXIT_SERVER
         : nbusy > 0 ? CLI_EXIT_BUSY
         : nheld > 0 ? CLI_EXIT_HELD
                     : CLI_EXIT_OK;
    if (sync_cli_cancelled()) {
        cli_err("sync cancelled by a signal: the lease was released, what was published is "
                "recorded");
        rc = sync_cli_cancelled();
    }
out:
    sync_cli_engine(NULL);
    sync_cli_cancel_target(NULL);
    ds_engine_free(eng);
    ds_sync_close(sy);
    board_free(&ui.board);
    free(srv);
    ds_config_free(cfg);
    cli_select_free(&sel);
    return rc;
}

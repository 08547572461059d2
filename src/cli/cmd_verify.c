/*
 * distsync verify SERVER... | --all [--repair] [--json]: the receiver hashes
 * every file of each server's manifest (SHA-256) and the console compares.
 * Exit 0: every file matches; 3 (CLI_EXIT_DRIFT): drifted, missing or
 * unreadable files were found (with --repair: and repaired, re-verified
 * clean); 4 (CLI_EXIT_SERVER): a server could not be verified, or repair failed or left
 * drift; 130/143: cancelled by SIGINT/SIGTERM.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/scan.h"
#include "distsync/verify.h"
#include "board.h"
#include "progress.h"
#include "sync_cli.h"

#define VERIFY_USAGE                                                                               \
    "usage: distsync verify SERVER... | --site S | --all [--class C] [--repair] [--json]\n"

struct verify_args {
    int json, repair;
};

struct verify_ui {
    struct board board; /* one line per server verifying */
    const struct cli *cli;
};

static void on_progress(void *ctx, const ds_sync_progress_t *p)
{
    struct verify_ui *ui = ctx;

    board_update(&ui->board, p, progress_now(), 0);
}

static const char *vstatus(const ds_verify_result_t *v)
{
    return v->rc == -ECANCELED  ? "cancelled"
           : v->rc < 0          ? "failed"
           : ds_verify_found(v) ? "drift"
                                : "ok";
}

static void print_text(const struct cli *cli, const char *name, const ds_verify_result_t *v)
{
    char b[32], d[32], h1[2 * DS_SHA256_LEN + 1], h2[2 * DS_SHA256_LEN + 1];

    progress_fmt_bytes(b, sizeof(b), v->bytes_hashed);
    progress_fmt_duration(d, sizeof(d), v->elapsed_s);
    if (v->rc < 0) {
        printf("verify %s: %s: %s\n", name, v->rc == -ECANCELED ? "CANCELLED" : "FAILED",
               cli_esc(cli_hint(cli, v->error)));
        return;
    }
    printf("verify %s: %s, %" PRIu64 " of %" PRIu64 " files match, %zu drifted, %zu missing, "
           "%zu unreadable (%s hashed, %s)\n",
           name, ds_verify_found(v) ? "DRIFT" : "ok", v->verified, v->files, v->ndrifted,
           v->nmissing, v->nerrors, b, d);
    for (size_t i = 0; i < v->ndrifted; i++) {
        const ds_verify_drift_t *x = &v->drifted[i];

        ds_hex(x->have_sha256, DS_SHA256_LEN, h1);
        ds_hex(x->want_sha256, DS_SHA256_LEN, h2);
        printf("  drifted %s: sha256 %.16s size %" PRIu64 ", expected sha256 %.16s size %" PRIu64
               "\n",
               cli_esc(x->path), h1, x->have_size, h2, x->want_size);
    }
    for (size_t i = 0; i < v->nmissing; i++)
        printf("  missing %s\n", cli_esc(v->missing[i]));
    for (size_t i = 0; i < v->nerrors; i++)
        printf("  unreadable %s: %s\n", cli_esc(v->errors[i].path), cli_esc(v->errors[i].message));
}

static void print_json(ds_json_t *j, const char *name, const ds_verify_result_t *v,
                       const ds_sync_result_t *rep, const ds_verify_result_t *after)
{
    char h[2 * DS_SHA256_LEN + 1];

    ds_json_obj_begin(j);
    ds_json_kstr(j, "server", name);
    ds_json_kstr(j, "status", vstatus(v));
    ds_json_key(j, "error");
    v->rc < 0 ? ds_json_str(j, v->error) : ds_json_null(j);
    ds_json_kuint(j, "files", v->files);
    ds_json_kuint(j, "verified", v->verified);
    ds_json_kuint(j, "bytes_hashed", v->bytes_hashed);
    ds_json_key(j, "drifted");
    ds_json_arr_begin(j);
    for (size_t i = 0; i < v->ndrifted; i++) {
        const ds_verify_drift_t *x = &v->drifted[i];

        ds_json_obj_begin(j);
        ds_json_kstr(j, "path", x->path);
        ds_hex(x->want_sha256, DS_SHA256_LEN, h);
        ds_json_kstr(j, "expected_sha256", h);
        ds_hex(x->have_sha256, DS_SHA256_LEN, h);
        ds_json_kstr(j, "actual_sha256", h);
        ds_json_kuint(j, "expected_size", x->want_size);
        ds_json_kuint(j, "actual_size", x->have_size);
        ds_json_obj_end(j);
    }
    ds_json_arr_end(j);
    ds_json_key(j, "missing");
    ds_json_arr_begin(j);
    for (size_t i = 0; i < v->nmissing; i++)
        ds_json_str(j, v->missing[i]);
    ds_json_arr_end(j);
    ds_json_key(j, "unreadable");
    ds_json_arr_begin(j);
    for (size_t i = 0; i < v->nerrors; i++) {
        ds_json_obj_begin(j);
        ds_json_kstr(j, "path", v->errors[i].path);
        ds_json_kstr(j, "message", v->errors[i].message);
        ds_json_obj_end(j);
    }
    ds_json_arr_end(j);
    ds_json_kdouble(j, "elapsed_s", v->elapsed_s);
    ds_json_key(j, "repair");
    if (rep == NULL) {
        ds_json_null(j);
    } else {
        ds_json_obj_begin(j);
        ds_json_kstr(j, "status", rep->rc == 0 ? "ok" : "failed");
        ds_json_key(j, "error");
        rep->rc < 0 ? ds_json_str(j, rep->error) : ds_json_null(j);
        ds_json_kuint(j, "created", rep->created);
        ds_json_kuint(j, "updated", rep->updated + rep->adopted);
        ds_json_kuint(j, "bytes_wire", rep->bytes_wire);
        ds_json_kstr(j, "reverify", after ? vstatus(after) : "skipped");
        ds_json_obj_end(j);
    }
    ds_json_obj_end(j);
}

/* Repairs what v found, then verifies again. Returns the server's exit
 * status: CLI_EXIT_DRIFT when repaired clean, else CLI_EXIT_SERVER. */
static int repair(ds_sync_t *sy, const ds_server_cfg_t *srv, const ds_verify_result_t *v,
                  struct verify_ui *ui, ds_json_t *j)
{
    ds_sync_result_t r;
    ds_verify_result_t after = {0};
    int status = CLI_EXIT_SERVER, ran = 0;

    ds_sync_repair(sy, srv, v, &r);
    if (r.rc == 0) {
        ds_sync_verify(sy, srv, &after);
        ran = 1;
        status = after.rc == 0 && !ds_verify_found(&after) ? CLI_EXIT_DRIFT : CLI_EXIT_SERVER;
    }
    board_clear(&ui->board);
    if (j != NULL) {
        print_json(j, srv->name, v, &r, ran ? &after : NULL);
    } else {
        print_text(ui->cli, srv->name, v);
        if (r.rc < 0)
            printf("repair %s: FAILED: %s\n", srv->name, r.error);
        else
            printf("repair %s: %" PRIu64 " recreated, %" PRIu64 " rewritten; verified again: %s\n",
                   srv->name, r.created, r.updated + r.adopted,
                   status == CLI_EXIT_DRIFT ? "ok" : vstatus(&after));
        if (ran && status != CLI_EXIT_DRIFT)
            print_text(ui->cli, srv->name, &after);
    }
    ds_sync_result_clear(&r);
    ds_verify_result_clear(&after);
    return status;
}

/* Reports (and repairs) one verified server; returns its exit status. */
static int one(ds_sync_t *sy, const ds_server_cfg_t *srv, ds_verify_result_t *v,
               const struct verify_args *a, struct verify_ui *ui, ds_json_t *j)
{
    int status = v->rc < 0 ? CLI_EXIT_SERVER : ds_verify_found(v) ? CLI_EXIT_DRIFT : CLI_EXIT_OK;

    board_clear(&ui->board);
    if (status == CLI_EXIT_DRIFT && a->repair && !ds_sync_cancelled(sy))
        status = repair(sy, srv, v, ui, j);
    else if (j != NULL)
        print_json(j, srv->name, v, NULL, NULL);
    else
        print_text(ui->cli, srv->name, v);
    fflush(stdout);
    return status;
}

int cmd_verify(struct cli *cli, int argc, char **argv)
{
    struct verify_args a = {0};
    const struct cli_flag flags[] = {
        {"json", 'j', &a.json, NULL, 0, NULL},
        {"repair", 'r', &a.repair, NULL, 0, NULL},
        {NULL, 0, NULL, NULL, 0, NULL},
    };
    struct verify_ui ui = {.cli = cli};
    struct cli_select sel;
    const ds_server_cfg_t **srv = NULL;
    ds_config_t *cfg = NULL;
    ds_sync_t *sy = NULL;
    ds_verify_result_t *vs = NULL;
    ds_strlist_t only;
    ds_json_t j;
    size_t n = 0;
    int rc = cli_select_parse(VERIFY_USAGE, argc, argv, flags, &sel), worst = CLI_EXIT_OK;

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    signal(SIGPIPE, SIG_IGN);
    sync_cli_signals();
    rc = cli_config_load(cli, &cfg);
    if (rc == 0)
        rc = cli_select_resolve("verify", cfg, &sel, 0, &srv, &n);
    board_init(&ui.board, stderr, cli->tty && !cli->quiet && !a.json, progress_now());
    if (rc == 0)
        rc = sync_cli_open(cfg, on_progress, &ui, 0, cli_select_classes(&sel, &only), &sy);
    if (rc == 0 && a.repair) /* the repair syncs: from an up-to-date catalog */
        rc = sync_cli_prepare(cli, cfg, sy, 0);
    if (rc != 0)
        goto out;
    sync_cli_cancel_target(sy);
    if (a.json) {
        ds_json_init(&j, stdout);
        ds_json_obj_begin(&j);
        ds_json_key(&j, "servers");
        ds_json_arr_begin(&j);
    }
    /* every server at once (up to max_servers), then each one's report
     * and repair in the order named */
    vs = calloc(n + 1, sizeof(*vs));
    if (vs == NULL) {
        cli_err("verify: out of memory");
        worst = CLI_EXIT_FAIL;
    } else {
        (void)ds_sync_verify_all(sy, srv, n, vs); /* each result says how it went */
    }
    for (size_t i = 0; vs != NULL && i < n; i++) {
        int st = one(sy, srv[i], &vs[i], &a, &ui, a.json ? &j : NULL);

        /* a failure outranks drift: both are reported per server */
        if (st == CLI_EXIT_SERVER || worst == CLI_EXIT_OK)
            worst = st;
        ds_verify_result_clear(&vs[i]);
    }
    if (a.json) {
        ds_json_arr_end(&j);
        ds_json_obj_end(&j);
        ds_json_end(&j);
    }
    rc = sync_cli_cancelled() ? sync_cli_cancelled() : worst;
    if (worst == CLI_EXIT_DRIFT && !a.repair)
        cli_err("drift found: files on a server differ from what distsync put there "
                "(distsync verify --repair rewrites them)");
out:
    free(vs);
    board_free(&ui.board);
    sync_cli_cancel_target(NULL);
    ds_sync_close(sy);
    free(srv);
    ds_config_free(cfg);
    cli_select_free(&sel);
    return rc;
}

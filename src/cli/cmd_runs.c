/*
 * distsync runs [--json]: the running daemon's live runs (queued and
 * running) with their progress: bytes done of the total, the rate, the
 * ETA, per server. distsync cancel RUN: cancels one (a queued run at once;
 * a running one winds down: files in flight aborted, leases released, the
 * run recorded "cancelled"). Both ask the daemon (GET /v1/runs?live=1,
 * POST /v1/runs/RUN/cancel); with no daemon running, runs lists none and
 * cancel fails.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_client.h"
#include "progress.h"
#include "sync_cli.h"

static uint64_t num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "-";
}

/* "1.2 MiB of 4.0 MiB (30%)" */
static void done_of(char *buf, size_t len, uint64_t done, uint64_t total)
{
    char d[32], t[32];

    progress_fmt_bytes(d, sizeof(d), done);
    progress_fmt_bytes(t, sizeof(t), total);
    snprintf(buf, len, "%s of %s (%d%%)", d, t, total ? (int)(done * 100 / total) : done ? 100 : 0);
}

static void print_run(const json_t *r)
{
    const json_t *p = json_object_get(r, "progress"), *srv = json_object_get(r, "servers"), *s;
    double rate = json_number_value(json_object_get(p, "rate_bps")) / 8;
    const json_t *eta = json_object_get(p, "eta_s");
    char of[96], rt[32], e[32] = "-", w[32];
    size_t i;

    done_of(of, sizeof(of), num(p, "bytes_done"), num(p, "bytes_total"));
    progress_fmt_rate(rt, sizeof(rt), rate);
    progress_fmt_bytes(w, sizeof(w), num(p, "bytes_wire"));
    if (json_is_number(eta))
        progress_fmt_duration(e, sizeof(e), json_number_value(eta));
    printf("run %s: %s (%s), %zu server%s, %s, %s on the wire, %s, ETA %s\n", cli_esc(str(r, "id")),
           str(r, "state"), cli_esc(str(r, "trigger")), json_array_size(srv),
           json_array_size(srv) == 1 ? "" : "s", of, w, rt, e);
    json_array_foreach(srv, i, s)
    {
        done_of(of, sizeof(of), num(s, "bytes_done"), num(s, "bytes_total"));
        printf("  %s: %s, %s\n", cli_esc(str(s, "server")),
               json_is_string(json_object_get(s, "result"))     ? str(s, "result")
               : num(s, "bytes_total") || num(s, "files_total") ? "syncing"
                                                                : "waiting",
               of);
    }
}

static int parse(int argc, char **argv, const char *usage, int *json)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int ch;

    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ch == 'j' && json != NULL) {
            *json = 1;
            continue;
        }
        fputs(usage, ch == 'h' ? stdout : stderr);
        return ch == 'h' ? -1 : CLI_EXIT_USAGE;
    }
    return 0;
}

int cmd_runs(struct cli *cli, int argc, char **argv)
{
    static const char usage[] = "usage: distsync runs [--json]\n";
    ds_config_t *cfg = NULL;
    json_t *reply = NULL;
    int json = 0, rc = parse(argc, argv, usage, &json);
    long status;
    size_t i;
    json_t *r;

    if (rc == 0 && optind < argc) {
        cli_err("runs: unexpected argument '%s'", cli_esc(argv[optind]));
        rc = CLI_EXIT_USAGE;
    }
    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    rc = cli_config_load(cli, &cfg);
    if (rc != 0)
        return rc;
    if (!cli_daemon_up(cfg)) {
        if (json) {
            ds_json_t j;

            ds_json_init(&j, stdout);
            ds_json_obj_begin(&j);
            ds_json_key(&j, "runs");
            ds_json_arr_begin(&j);
            ds_json_arr_end(&j);
            ds_json_obj_end(&j);
            ds_json_end(&j);
        } else if (!cli->quiet)
            cli_err("no daemon is running on %s/distsync.sock: no live runs", cli_esc(cfg->state));
        goto out;
    }
    status = cli_daemon_call(cfg, "GET", "/v1/runs?live=1", NULL, &reply);
    if (status != 200 || !json_is_array(json_object_get(reply, "runs"))) {
        if (status != 0)
            cli_err("runs: %s", cli_esc(cli_daemon_error(reply, status)));
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (json) { /* through the one writer: the bytes the daemon wrote */
        ds_json_t j;

        ds_json_init(&j, stdout);
        ds_json_value(&j, reply);
        ds_json_end(&j);
        goto out;
    }
    json_array_foreach(json_object_get(reply, "runs"), i, r) print_run(r);
    if (json_array_size(json_object_get(reply, "runs")) == 0 && !cli->quiet)
        cli_err("no live runs");
out:
    json_decref(reply);
    ds_config_free(cfg);
    return rc;
}

int cmd_cancel(struct cli *cli, int argc, char **argv)
{
    static const char usage[] = "usage: distsync cancel RUN\n";
    ds_config_t *cfg = NULL;
    json_t *reply = NULL;
    char path[1024], *id = NULL;
    int rc = parse(argc, argv, usage, NULL);
    long status;

    if (rc == 0 && optind + 1 != argc) {
        fputs(usage, stderr);
        rc = CLI_EXIT_USAGE;
    }
    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    rc = cli_config_load(cli, &cfg);
    if (rc != 0)
        return rc;
    if (!cli_daemon_up(cfg)) {
        cli_err("cancel: no daemon is running on %s/distsync.sock (a standalone sync is "
                "cancelled with Ctrl-C)",
                cli_esc(cfg->state));
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    id = cli_daemon_escape(argv[optind]);
    snprintf(path, sizeof(path), "/v1/runs/%s/cancel", id ? id : "");
    status = cli_daemon_call(cfg, "POST", path, NULL, &reply);
    if (status == 200 || status == 202) {
        printf("run %s: %s\n", cli_esc(argv[optind]),
               status == 200 ? "cancelled before it started"
                             : "cancelling (its servers wind down)");
    } else {
        if (status != 0)
            cli_err("cancel: %s", cli_esc(cli_daemon_error(reply, status)));
        rc = CLI_EXIT_FAIL;
    }
out:
    free(id);
    json_decref(reply);
    ds_config_free(cfg);
    return rc;
}

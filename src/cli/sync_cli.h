/*
 * Shared by the sync, plan and status commands (src/cli/cmd_sync.c,
 * cmd_plan.c, cmd_status.c): opening the sync state, choosing servers and
 * printing plans.
 */
#ifndef DS_CLI_SYNC_CLI_H
#define DS_CLI_SYNC_CLI_H

#include "cli.h"
#include "distsync/engine.h"
#include "distsync/sync.h"
#include "distsync/json.h"
#include "distsync/report.h"
#include "select.h"

/* Opens the sync state for cfg; force: prune past max_delete (sync
 * --force); only: the classes acted on (--class, NULL: all; must outlive
 * *out). Prints the error and returns CLI_EXIT_FAIL on failure, else 0. */
int sync_cli_open(const ds_config_t *cfg, ds_sync_progress_fn fn, void *ctx, int force,
                  const ds_strlist_t *only, ds_sync_t **out);
/* sync_cli_open with the zpatch zstd level of a run-now (sync --delta-level,
 * --fast; 0: the config's delta_level). */
int sync_cli_open_level(const ds_config_t *cfg, ds_sync_progress_fn fn, void *ctx, int force,
                        const ds_strlist_t *only, int delta_level, ds_sync_t **out);

/* Before planning (src/cli/sync_prepare.c): warns about a catalog without a
 * completed scan, then, unless no_scan, runs the incremental scan of the
 * store into the sync's catalog. Returns 0, or CLI_EXIT_FAIL after printing
 * why the scan failed. */
int sync_cli_prepare(struct cli *cli, const ds_config_t *cfg, ds_sync_t *sy, int no_scan);

/* Prints a server's result line ("sync NAME: ok, N files ..."). */
void sync_cli_summary(const struct cli *cli, const char *name, const ds_sync_result_t *r);

/* sync --as-of: a time, or a scan generation (scan:GEN); both 0: the
 * newest scan. */
struct sync_as_of {
    int64_t t, gen;
};

/* sync_daemon.c: the servers synced by the running daemon (a run-now it
 * queues behind its running run), followed until it ends, printed as a
 * standalone sync prints them. Returns the exit status. */
int sync_cli_daemon(struct cli *cli, const ds_config_t *cfg, const ds_server_cfg_t **srv, size_t n,
                    const ds_strlist_t *only, int json, const struct sync_as_of *as_of);

/* sync_as_of.c: sync --as-of into *o: scan:GEN (a scan generation, as
 * distsync scans lists them), an RFC 3339 time (not in the future) or a
 * duration back from now. Returns 0, or CLI_EXIT_USAGE after saying why. */
int sync_cli_as_of_parse(const char *s, struct sync_as_of *o);
/* Pins sy's batches to that scan generation (ds_sync_pin_gen) or to the
 * store as of that time (ds_sync_pin_as_of), saying so unless quiet.
 * Returns 0, or CLI_EXIT_FAIL after printing why (a generation not kept,
 * no scan that old). */
int sync_cli_as_of_pin(struct cli *cli, ds_sync_t *sy, const struct sync_as_of *o);

/* cmd_status.c: a server's text report, the console's retain line, the
 * exit status of a verdict, and of two exit statuses together (drift
 * outranks pending). */
void status_cli_text(const char *server, const ds_plan_t *p);
void status_cli_retain(const ds_config_t *cfg, const ds_retain_usage_t *ru);
int status_cli_exit(ds_verdict_t v);
int status_cli_worse(int a, int b);
/* status_daemon.c: status of srv[0, n) from the running daemon (GET
 * /v1/status), printed as the standalone command prints it: live (each
 * server contacted, after a scan unless no_scan) or, offline, from the
 * daemon's catalog. Returns the exit status. */
int status_cli_daemon(struct cli *cli, const ds_config_t *cfg, const ds_server_cfg_t **srv,
                      size_t n, int json, int offline, int no_scan);

/* Prints the held-deletions line of a plan (nothing when none). */
void sync_cli_print_guard(const char *server, const ds_plan_t *p);

/* cancel.c: installs the SIGINT/SIGTERM handlers (first signal: cancel the
 * run through ds_sync_cancel on the target set below; second: exit at once
 * with 128 + signal). */
void sync_cli_signals(void);
/* The ds_sync_t the handler cancels (NULL: none yet). */
void sync_cli_cancel_target(ds_sync_t *sy);
/* The engine the handlers cancel (ds_engine_cancel) and SIGHUP reloads
 * (ds_engine_reload); NULL: none, SIGHUP back to its default. */
void sync_cli_engine(ds_engine_t *e);
/* 0, or the exit status for the signal that cancelled (128 + signo). */
int sync_cli_cancelled(void);

/* scan_precompute.c: scan --precompute (or [console] precompute = yes). */
struct scan_precompute {
    ds_sync_precompute_stats_t st;
    double elapsed_s;
};
/* Computes the deltas the servers' next syncs need (ds_sync_precompute).
 * Returns 0, or an exit status after printing why. */
int scan_cli_precompute(const ds_config_t *cfg, struct scan_precompute *pc);
/* The "precompute" member of scan --json, and the text line. */
void scan_cli_precompute_json(ds_json_t *j, const struct scan_precompute *pc);
void scan_cli_precompute_print(const struct scan_precompute *pc);

/* Prints a plan as text (one line per item that changes something, then
 * totals) or as one JSON object (j != NULL). */
void sync_cli_print_plan(ds_json_t *j, const char *server, const ds_plan_t *p);

#endif

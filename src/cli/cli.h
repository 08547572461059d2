/*
 * CLI front end: shared state and the subcommand contract. The CLI uses only
 * include/distsync/ headers; it is the only part of distsync that prints.
 */
#ifndef DS_CLI_H
#define DS_CLI_H

#include <stdio.h>

#include "distsync/catalog.h"
#include "distsync/config.h"
#include "distsync/json.h"
#include "distsync/log.h"

/* Exit statuses. */
#define CLI_EXIT_OK    0
#define CLI_EXIT_FAIL  1 /* the operation failed (a server, a file...) */
#define CLI_EXIT_USAGE 2 /* bad command line or bad configuration */
/* verify: files on a server differ from its manifest */
#define CLI_EXIT_DRIFT 3
/* scan: completed, but some store files could not be read (rsync's "partial
 * transfer due to error" status) */
#define CLI_EXIT_PARTIAL 23
/* sync: a prune guard held deletions back (rsync's --max-delete status) */
#define CLI_EXIT_HELD 25
/* a server failed or could not be reached (sync, plan, status, verify) */
#define CLI_EXIT_SERVER 4
/* sync: a server is busy (another console holds its lease) */
#define CLI_EXIT_BUSY 5
/* status: work pending (a sync would change a server) */
#define CLI_EXIT_PENDING 6

/* The configuration search order after -c and $DISTSYNC_CONFIG. */
#define CLI_LOCAL_CONFIG  "distsync.conf"
#define CLI_SYSTEM_CONFIG "/etc/distsync/distsync.conf"

struct cli {
    /* -c FILE, else $DISTSYNC_CONFIG, else ./distsync.conf, else
     * /etc/distsync/distsync.conf, the first that exists; NULL: none */
    const char *config_path;
    const char *config_flag; /* -c FILE as given (NULL: none): hints name it */
    int quiet;               /* -q: no progress or notes; warnings and errors stay */
    int verbose;             /* -v: debug log */
    int tty;                 /* stderr is a terminal: show live progress */
};

/* A subcommand: argv[0] is the subcommand name. Returns an exit status. */
typedef int (*cli_cmd_fn)(struct cli *cli, int argc, char **argv);

/* Prints "distsync: <fmt>" to stderr, escaped with cli_esc(). */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The library's log sink (ds_log_set) for front ends: "distsync: LEVEL: msg"
 * on stderr, escaped; ctx is the struct cli (debug only with -v, info not
 * with -q). Thread-safe: the local receiver logs from its own thread. */
void cli_log_stderr(void *ctx, ds_log_level_t level, const char *msg);
/* The daemon's log sink (cmd_daemon.c) for this process: its line prefix
 * (the logging thread's context), or the journal's priority under
 * systemd; also for the workers the daemon spawns. */
void cli_log_daemon_set(struct cli *cli);

/* Subcommands, one file each: src/cli/cmd_<name>.c. */
int cmd_version(struct cli *cli, int argc, char **argv);
int cmd_config(struct cli *cli, int argc, char **argv);
int cmd_schedule(struct cli *cli, int argc, char **argv);
int cmd_scan(struct cli *cli, int argc, char **argv);
int cmd_files(struct cli *cli, int argc, char **argv);
int cmd_scans(struct cli *cli, int argc, char **argv);
int cmd_agent(struct cli *cli, int argc, char **argv);
int cmd_smb_worker(struct cli *cli, int argc, char **argv);
int cmd_precompute_worker(struct cli *cli, int argc, char **argv);
int cmd_export(struct cli *cli, int argc, char **argv);
int cmd_history(struct cli *cli, int argc, char **argv);
int cmd_gc(struct cli *cli, int argc, char **argv);
int cmd_sync(struct cli *cli, int argc, char **argv);
int cmd_plan(struct cli *cli, int argc, char **argv);
int cmd_daemon(struct cli *cli, int argc, char **argv);
int cmd_freeze(struct cli *cli, int argc, char **argv); /* freeze and thaw */
int cmd_runs(struct cli *cli, int argc, char **argv);   /* the daemon's live runs */
int cmd_cancel(struct cli *cli, int argc, char **argv); /* cmd_runs.c */
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_verify(struct cli *cli, int argc, char **argv);
int cmd_trust(struct cli *cli, int argc, char **argv);
int cmd_backup(struct cli *cli, int argc, char **argv);
int cmd_restore(struct cli *cli, int argc, char **argv);
int cmd_import_manifest(struct cli *cli, int argc, char **argv);
int cmd_rollout(struct cli *cli, int argc, char **argv);
int cmd_help(struct cli *cli, int argc, char **argv);     /* src/cli/main.c */
int cmd_complete(struct cli *cli, int argc, char **argv); /* hidden, for bash completion */

/* s as it may be printed: control characters (C0, DEL, C1), '\' and bytes
 * that are not UTF-8 escaped C-style (\n, \t, \r, \\, \xNN; see
 * ds_escape_name). Returns one of 8 static buffers used in turn (valid until
 * 8 more calls), so several results can go into one printf; NULL gives "-".
 * Every path and message the CLI prints as text goes through it. */
const char *cli_esc(const char *s);

/* s as a time into *t: RFC 3339, or a duration (90m, 4h, 2d) from now,
 * back (dir < 0) or ahead (dir > 0). Returns 0; 1 when s is a time on the
 * wrong side of now (ahead of it for dir < 0; now or before for dir > 0);
 * -1 when s is neither. Prints nothing: the caller names its flag.
 * src/cli/cli_when.c */
int cli_parse_when(const char *s, int dir, int64_t *t);

/* msg, a library message, as the CLI prints it: its hint
 * "'distsync trust NAME'" names -c FILE (quoted for a shell when it needs
 * it) when the user gave one, so pasting it acts on the same
 * configuration. Returns msg itself, or a static buffer valid until the
 * next call. src/cli/cli_config.c */
const char *cli_hint(const struct cli *cli, const char *msg);

/* Loads cli->config_path into *out (free with ds_config_free). On failure
 * prints the one-line error and returns CLI_EXIT_USAGE; returns 0 on success. */
int cli_config_load(struct cli *cli, ds_config_t **out);

/* config check: writes cap b as one JSON value (null when absent)
 * through j; prints one line per configured cap of cfg. */
void caps_json(ds_json_t *j, const ds_bw_cfg_t *b);
void caps_text(const ds_config_t *cfg);

/* config check --connect [SERVER...] (config_connect.c): connects to each
 * smb:// server of cfg (argv: only those, each must be one) and checks its
 * share and directory, printing a line per server; errors name the server.
 * Returns CLI_EXIT_OK, CLI_EXIT_SERVER when one failed, CLI_EXIT_USAGE for
 * an unknown or non-smb:// name. */
int cli_config_connect(const struct cli *cli, const ds_config_t *cfg, int argc, char **argv);

/* Prints a loud warning naming the catalog of state and "run distsync scan"
 * when cat has no completed scan (src/cli/sync_prepare.c). */
void cli_catalog_warn(ds_catalog_t *cat, const char *state);

/* Makes cfg's state directory if it is missing and puts its catalog's path
 * in path (len bytes), saying what failed (src/cli/sync_prepare.c).
 * Returns 0, CLI_EXIT_FAIL (mkdir) or CLI_EXIT_USAGE (path too long). */
int cli_catalog_path_made(const ds_config_t *cfg, char *path, size_t len);

/* Opens the existing catalog of cfg's state directory into *cat (its path
 * in path, len bytes), saying what failed: the path too long
 * (CLI_EXIT_USAGE), no catalog yet or an open error (CLI_EXIT_FAIL).
 * Returns 0 or that exit status (src/cli/sync_prepare.c). */
int cli_catalog_open_existing(const ds_config_t *cfg, char *path, size_t len, ds_catalog_t **cat);

/* Store entries a scan found but never copies (empty folders, symbolic
 * links inside the store): counted, the first few named, and reported in
 * one line at the end of the scan (src/cli/sync_prepare.c). */
#define CLI_NOT_COPIED_SHOWN 3
struct cli_not_copied {
    unsigned long long n;
    char first[CLI_NOT_COPIED_SHOWN][320]; /* "path (what)", escaped */
};
/* Records one entry (a ds_scan_opts_t.not_copied callback's arguments). */
void cli_not_copied_add(struct cli_not_copied *nc, const char *path, const char *what);
/* The one line (nothing when none; nothing with quiet). */
void cli_not_copied_report(const struct cli_not_copied *nc, int quiet);

/* Takes the scan lock of state (one scan per state directory); with wait,
 * says so and waits when another scan holds it. Returns the fd to close,
 * or -1 after printing why (src/cli/cmd_scan.c). */
int scan_cli_lock(const char *state, int wait);

#endif

/* distsync CLI: global options and subcommand dispatch. */
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "distsync/log.h"

struct command {
    const char *name;
    cli_cmd_fn fn;
    const char *summary;
};

static const struct command commands[] = {
    {"version", cmd_version, "print the version"},
    {"config", cmd_config, "check the configuration: config check [--json]"},
    {"schedule", cmd_schedule, "preview fire times: schedule next [NAME] [--rule RULE]"},
    {"scan", cmd_scan, "scan the content store into the catalog: scan [--json] [--threads N]"},
    {"files", cmd_files, "list the catalog: files [--json] [--class C] [PATH_PREFIX]"},
    {"agent", cmd_agent, "receive a sync session on stdin/stdout: agent --root DIR"},
    {"plan", cmd_plan, "what a sync would do: plan SELECTION [--json] [--no-scan]"},
    {"sync", cmd_sync, "sync now: sync SELECTION [--dry-run] [--json] [--force] [--no-scan]"},
    {"status", cmd_status, "file status report: status [SELECTION] [--json] [--no-scan]"},
    {"verify", cmd_verify, "hash every file on servers: verify SELECTION [--repair] [--json]"},
    {"history", cmd_history, "sync runs: history [SELECTION] [--limit N] [--events] [--json]"},
    {"gc", cmd_gc, "free unreferenced retained versions: gc [--keep-history D] [--force] [--json]"},
};

void cli_err(const char *fmt, ...)
{
    va_list ap;
    char msg[4096];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "distsync: %s\n", cli_esc(msg));
}

static void log_to_stderr(void *ctx, ds_log_level_t level, const char *msg)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    struct cli *cli = ctx;

    if (level == DS_LOG_DEBUG && !cli->verbose)
        return;
    if (level == DS_LOG_INFO && cli->quiet)
        return;
    fprintf(stderr, "distsync: %s: %s\n", names[level], cli_esc(msg));
}

static void usage(FILE *f)
{
    fputs("usage: distsync [-c FILE] [-q] [-v] COMMAND [ARGS]\n\ncommands:\n", f);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\nSELECTION: SERVER... | --site S (repeatable) | --all, and --class C (repeatable)\n"
          "Run 'distsync COMMAND --help' for a command's options.\n",
          f);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli cli = {0};
    int ch, sub;

    cli.tty = isatty(STDERR_FILENO);
    while ((ch = getopt_long(argc, argv, "+c:qvh", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            cli.config_path = optarg;
            break;
        case 'q':
            cli.quiet = 1;
            break;
        case 'v':
            cli.verbose = 1;
            break;
        case 'h':
            usage(stdout);
            return CLI_EXIT_OK;
        default:
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (cli.config_path == NULL)
        cli.config_path = getenv("DISTSYNC_CONFIG");
    if (cli.config_path == NULL && access(CLI_LOCAL_CONFIG, F_OK) == 0)
        cli.config_path = CLI_LOCAL_CONFIG;
    if (cli.config_path == NULL && access(CLI_SYSTEM_CONFIG, F_OK) == 0)
        cli.config_path = CLI_SYSTEM_CONFIG; /* NULL: cli_config_load says where it looked */
    if (optind >= argc) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    ds_log_set(log_to_stderr, &cli);
    sub = optind;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[sub], commands[i].name) == 0) {
            optind = 0; /* full getopt reset for the subcommand's own parsing */
            return commands[i].fn(&cli, argc - sub, argv + sub);
        }
    }
    cli_err("unknown command '%s'", argv[sub]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}

/* distsync CLI: global options and subcommand dispatch. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "distsync/smbcred.h"
#include "help.h"
#include "distsync/log.h"

/* The functions behind the commands; names, usage and options are in
 * help_cmds (src/cli/help.c). */
struct command {
    const char *name;
    cli_cmd_fn fn;
};

static const struct command commands[] = {
    {"help", cmd_help},
    {"version", cmd_version},
    {"config", cmd_config},
    {"schedule", cmd_schedule},
    {"scan", cmd_scan},
    {"files", cmd_files},
    {"scans", cmd_scans},
    {"agent", cmd_agent},
    {"plan", cmd_plan},
    {"sync", cmd_sync},
    {"status", cmd_status},
    {"verify", cmd_verify},
    {"history", cmd_history},
    {"gc", cmd_gc},
    {"daemon", cmd_daemon},
    {"freeze", cmd_freeze},
    {"thaw", cmd_freeze}, /* the same file: argv[0] tells them apart */
    {"trust", cmd_trust},
    {"complete", cmd_complete},
    {"backup", cmd_backup},
    {"restore", cmd_restore},
    {"import-manifest", cmd_import_manifest},
    {"runs", cmd_runs},
    {"cancel", cmd_cancel},
    {"export", cmd_export},
    {"smb-worker", cmd_smb_worker}, /* hidden: spawned by sync for each smb:// server */
    {"precompute-worker", cmd_precompute_worker}, /* hidden: spawned by the daemon */
    {"rollout", cmd_rollout},
};

/* "unknown command 'X'", the closest command, and where the list is. */
static void unknown_command(const char *name)
{
    const char *near = help_suggest(name);

    if (near)
        cli_err("unknown command '%s'; did you mean '%s'?", name, near);
    else
        cli_err("unknown command '%s'", name);
    fputs("Run 'distsync help' for the list of commands.\n", stderr);
}

int cmd_help(struct cli *cli, int argc, char **argv)
{
    const struct help_cmd *c;

    if (argc < 2) {
        help_print_main(stdout);
        return CLI_EXIT_OK;
    }
    if ((c = help_find(argv[1])) == NULL || c->hidden) {
        unknown_command(argv[1]);
        return CLI_EXIT_USAGE;
    }
    help_print_cmd(stdout, c);
    return CLI_EXIT_OK;
}

/* 1 when argv (a command's arguments) asks for help: -h or --help before
 * "--", not as the value of an option that takes one. */
static int wants_help(const struct help_cmd *c, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--") == 0)
            return 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return 1;
        for (const struct help_opt *o = c->opts; o->lng; o++) {
            int takes = o->arg && o->arg[0] != '[';

            if (takes && ((a[0] == '-' && a[1] == '-' && strcmp(a + 2, o->lng) == 0) ||
                          (o->shrt && a[0] == '-' && a[1] == o->shrt && a[2] == '\0')))
                i++; /* skip the option's value */
        }
    }
    return 0;
}

/* After a usage error: a global option given after the command (distsync
 * sync -q s1, which getopt calls an invalid option) gets a line saying
 * where it goes. */
static void global_after_command(int argc, char **argv)
{
    static const char *const global[] = {"-q", "-v", "-c", "--quiet", "--verbose", "--config"};

    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        for (size_t k = 0; k < sizeof(global) / sizeof(global[0]); k++)
            if (strcmp(argv[i], global[k]) == 0 || (k == 2 && strncmp(argv[i], "-c", 2) == 0) ||
                (k == 5 && strncmp(argv[i], "--config=", 9) == 0)) {
                cli_err("%s is a global option: give it before the command (distsync %s%s %s ...)",
                        global[k], global[k], k == 2 || k == 5 ? " FILE" : "", argv[0]);
                return;
            }
}

/* Parses the global options and runs the command; returns its exit status. */
static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},      {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
    };
    struct cli cli = {0};
    int ch, sub, rc;

    cli.tty = isatty(STDERR_FILENO);
    while ((ch = getopt_long(argc, argv, "+c:qvh", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            cli.config_path = cli.config_flag = optarg;
            break;
        case 'q':
            cli.quiet = 1;
            break;
        case 'v':
            cli.verbose = 1;
            break;
        case 'h':
            help_print_main(stdout);
            return CLI_EXIT_OK;
        case 'V':
            return cmd_version(&cli, 0, argv);
        default:
            help_print_main(stderr);
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
        help_print_main(stderr);
        return CLI_EXIT_USAGE;
    }
    ds_log_set(cli_log_stderr, &cli);
    sub = optind;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[sub], commands[i].name) == 0) {
            const struct help_cmd *c = help_find(commands[i].name);

            if (c && wants_help(c, argc - sub, argv + sub)) {
                help_print_cmd(stdout, c);
                return CLI_EXIT_OK;
            }
            optind = 0; /* full getopt reset for the subcommand's own parsing */
            rc = commands[i].fn(&cli, argc - sub, argv + sub);
            if (rc == CLI_EXIT_USAGE)
                global_after_command(argc - sub, argv + sub);
            return rc;
        }
    }
    unknown_command(argv[sub]);
    return CLI_EXIT_USAGE;
}

/* A result that did not reach stdout (a full disk, /dev/full, an I/O error)
 * is a failure: printf's errors stay in the stream until this flush. */
static int finish_output(int status)
{
    int e = 0;

    if (fflush(stdout) != 0)
        e = errno;
    else if (ferror(stdout))
        e = EIO;
    if (e == 0 || e == EPIPE) /* EPIPE: the reader stopped (| head), as it chose */
        return status;
    cli_err("cannot write the output: %s", strerror(e));
    return status == CLI_EXIT_OK ? CLI_EXIT_FAIL : status;
}

int main(int argc, char **argv)
{
    ds_smbcred_t env_cred;
    char err[160];

    /* DISTSYNC_SMB_PASSWORD is copied and scrubbed from the environment
     * before anything else runs: no child and no `ps e` sees it */
    (void)ds_smbcred_from_env(&env_cred, err, sizeof(err));
    ds_smbcred_clear(&env_cred);
    return finish_output(run(argc, argv));
}

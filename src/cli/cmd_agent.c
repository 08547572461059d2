/*
 * distsync agent --root DIR: the receiver of the apply protocol on
 * stdin/stdout (exec'd by the console over SSH, or over a pipe). Exit 0 on
 * BYE or end of input at a frame boundary, 1 when the session ended on a
 * protocol error or mid-frame, 2 on bad usage. Diagnostics go to stderr.
 */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "distsync/apply.h"
#include "distsync/error.h"

/*
 * Serves the session (ds_apply_serve: bounded memory, whatever the console
 * pipelines), then ends it: at end of input the manifest is written and the
 * lease released. Returns the exit status.
 */
static int agent_serve(ds_apply_t *ap)
{
    char err[512] = "";
    int rc = ds_apply_serve(ap, STDIN_FILENO, STDOUT_FILENO, err, sizeof(err));
    int frc = ds_apply_finish(ap);

    if (rc < 0) {
        cli_err("agent: %s", err);
        return CLI_EXIT_FAIL;
    }
    return frc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cmd_agent(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"root", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *root = NULL;
    char err[512];
    ds_apply_t *ap = NULL;
    ds_apply_opts_t ao = {.peer_reports = 1}; /* the console prints FILE_ERR and ERR */
    int ch, status;

    while ((ch = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'r':
            root = optarg;
            break;
        case 'h':
            printf("usage: distsync agent --root DIR\n"
                   "Speaks the apply protocol (src/PROTOCOL.md) on stdin/stdout.\n");
            return CLI_EXIT_OK;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (root == NULL || optind != argc) {
        cli_err("usage: distsync agent --root DIR");
        return CLI_EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    /* tests only: act as an older agent (protocol version negotiation) */
    if (getenv("DISTSYNC_TEST_MAX_PROTOCOL") != NULL)
        ao.max_version = (unsigned)atoi(getenv("DISTSYNC_TEST_MAX_PROTOCOL"));
    if (ds_apply_new(root, &ao, &ap, err, sizeof(err)) < 0) {
        cli_err("agent: %s", err);
        return CLI_EXIT_FAIL;
    }
    status = agent_serve(ap);
    ds_apply_free(ap);
    return status;
}

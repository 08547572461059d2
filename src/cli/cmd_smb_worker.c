/*
 * distsync smb-worker --url URL --server NAME [--timeout S] [--encrypt]
 * [--readback] [--retain DIR] [--connections N]: hidden; the engine spawns it for each smb://
 * server and speaks the apply protocol on its stdin/stdout, after the
 * credentials preamble (distsync/smbworker.h). --retain: the console's
 * retain store, whose copies of basis versions check the files built with
 * server-side copies (distsync/localbasis.h). --connections: SMB
 * connections, each in a process of its own (smb_worker.c). Exit 0 at the end of a session, 1 on
 * failure, 2 on bad usage; diagnostics on stderr, which the console collects.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "distsync/localbasis.h"
#include "distsync/smbworker.h"

int cmd_smb_worker(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},         {"server", required_argument, NULL, 's'},
        {"timeout", required_argument, NULL, 't'},     {"encrypt", no_argument, NULL, 'e'},
        {"readback", no_argument, NULL, 'b'},          {"retain", required_argument, NULL, 'r'},
        {"connections", required_argument, NULL, 'c'}, {NULL, 0, NULL, 0},
    };
    ds_smb_worker_opts_t o = {0};
    char err[1024] = "";
    int ch, rc, out;

    (void)cli;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'u':
            o.url = optarg;
            break;
        case 's':
            o.server = optarg;
            break;
        case 't':
            o.timeout_s = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'e':
            o.encrypt = 1;
            break;
        case 'b':
            o.readback = 1;
            break;
        case 'r':
            o.retain = optarg;
            break;
        case 'c':
            o.connections = (unsigned)strtoul(optarg, NULL, 10);
            if (o.connections < 1 || o.connections > DS_SMB_WORKER_CONNECTIONS_MAX)
                return CLI_EXIT_USAGE;
            break;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (o.url == NULL || optind != argc) {
        cli_err("usage: distsync smb-worker --url URL --server NAME (spawned by distsync sync)");
        return CLI_EXIT_USAGE;
    }
    if (o.server == NULL)
        o.server = o.url;
    signal(SIGPIPE, SIG_IGN);
#ifdef DS_TEST_HOOKS /* test builds only: a shorter wait for a target held open */
    if (getenv("DISTSYNC_TEST_SMB_REPLACE_WAIT_MS") != NULL)
        o.replace_wait_ms =
            (unsigned)strtoul(getenv("DISTSYNC_TEST_SMB_REPLACE_WAIT_MS"), NULL, 10);
    o.test_splice_share = getenv("DISTSYNC_TEST_SMB_SPLICE_SHARE");
    o.test_replace_pause = getenv("DISTSYNC_TEST_SMB_REPLACE_PAUSE");
#endif
    o.local_open = ds_localbasis_open;
    o.local_close = ds_localbasis_close;
    /* libsmbclient prints some messages on stdout (d_printf, e.g. "Could
     * not resolve \\dir\\*" for an MS-DFS link): the protocol moves off
     * it, and stdout joins stderr, which the console collects */
    out = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    if (out < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
        cli_err("smb-worker: cannot move the protocol off stdout: %s", strerror(errno));
        return CLI_EXIT_FAIL;
    }
    rc = ds_smb_worker_serve(&o, STDIN_FILENO, out, err, sizeof(err));
    if (rc < 0) {
        cli_err("smb-worker: %s", err);
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

/*
 * distsync-agent --root DIR: the receiver alone, the same code as
 * `distsync agent` (cmd_agent.c), in a binary that links only the base,
 * proto and target layers: no SQLite, no libuv, no console delta side
 * (tests/func/agent_links.sh checks it). It is what SSH hosts and SMB
 * workers will run; the pipe transport still runs `distsync agent` unless
 * a server's `agent =` names this binary. Its command line is the same as
 * `distsync agent`'s, the word "agent" included or not, so the console may
 * exec either binary as `AGENT agent --root DIR`.
 */
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "distsync/log.h"

int main(int argc, char **argv)
{
    struct cli cli = {0};

    cli.tty = isatty(STDERR_FILENO);
    ds_log_set(cli_log_stderr, &cli);
    if (argc > 1 && strcmp(argv[1], "agent") == 0) {
        argv[1] = argv[0];
        return cmd_agent(&cli, argc - 1, argv + 1);
    }
    return cmd_agent(&cli, argc, argv);
}

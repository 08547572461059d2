/* distsync version */
#include "cli.h"
#include "distsync/version.h"

int cmd_version(struct cli *cli, int argc, char **argv)
{
    printf("distsync %s\n", ds_version());
    return CLI_EXIT_OK;
}

/* distsync version */
#include "cli.h"
#include "distsync/version.h"

int cmd_version(struct cli *cli, int argc, char **argv)
{
    printf("distsync %s\n", ds_version());
#ifdef DS_TEST_HOOKS
    printf("test hooks: on (DISTSYNC_TEST_NO_FSYNC, DISTSYNC_TEST_RETAIN_DELAY_MS, "
           "DISTSYNC_TEST_IMPORT_PAUSE_MS are honoured; not a release build)\n");
#endif
    return CLI_EXIT_OK;
}

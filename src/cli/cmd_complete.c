/* distsync complete servers|sites|classes|rollouts: the configured server,
 * site, content class or rollout names, one a line, for the bash completion (doc/gen_doc.c
 * writes the script). Hidden: not in the command list. Prints nothing and
 * exits 2 without a valid config. */
#include <string.h>

#include "cli.h"

int cmd_complete(struct cli *cli, int argc, char **argv)
{
    ds_config_t *cfg = NULL;
    int rc;

    if (argc != 2 || (strcmp(argv[1], "servers") != 0 && strcmp(argv[1], "sites") != 0 &&
                      strcmp(argv[1], "classes") != 0 && strcmp(argv[1], "rollouts") != 0)) {
        cli_err("usage: distsync complete servers|sites|classes|rollouts");
        return CLI_EXIT_USAGE;
    }
    cli->quiet = 1;
    cli->verbose = 0;
    rc = cli_config_load(cli, &cfg);
    if (rc != 0)
        return rc;
    if (strcmp(argv[1], "servers") == 0)
        for (size_t i = 0; i < cfg->nservers; i++)
            printf("%s\n", cfg->servers[i].name);
    else if (strcmp(argv[1], "sites") == 0)
        for (size_t i = 0; i < cfg->nsites; i++)
            printf("%s\n", cfg->sites[i].name);
    else if (strcmp(argv[1], "rollouts") == 0)
        for (size_t i = 0; i < cfg->nrollouts; i++)
            printf("%s\n", cfg->rollouts[i].name);
    else
        for (size_t i = 0; i < cfg->classes.n; i++)
            printf("%s\n", cfg->classes.v[i]);
    ds_config_free(cfg);
    return CLI_EXIT_OK;
}

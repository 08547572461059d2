/* Loading the configuration for any subcommand that needs it. */
#include "cli.h"
#include "distsync/config.h"

int cli_config_load(struct cli *cli, ds_config_t **out)
{
    char err[512];

    if (cli->config_path == NULL) {
        cli_err(
            "no configuration: give -c FILE, set $DISTSYNC_CONFIG, or create ./" CLI_LOCAL_CONFIG
            " or " CLI_SYSTEM_CONFIG " (see conf/distsync.conf)");
        return CLI_EXIT_USAGE;
    }
    if (ds_config_load(cli->config_path, out, err, sizeof(err)) < 0) {
        cli_err("%s", err);
        return CLI_EXIT_USAGE;
    }
    if (cli->verbose) /* which of the four places it came from */
        cli_err("debug: configuration %s", cli->config_path);
    return 0;
}

/*
 * sync --as-of TIME: the desired set as the store was at TIME (snapshot
 * pinning, as a delayed schedule's fire ships it): TIME is RFC 3339 or a
 * duration back from now (90m, 2d). Standalone, the sync pins its batch to
 * the latest scan generation that started by TIME; through a daemon, the
 * run-now carries "as_of" and the daemon pins it. A version no longer
 * held anywhere (the store's file changed and the retain store lacks it)
 * is reported per file and never replaced by newer content.
 */
#include <stdio.h>

#include "sync_cli.h"

int sync_cli_as_of_parse(const char *s, int64_t *t)
{
    int rc = cli_parse_when(s, -1, t);

    if (rc == 0)
        return 0;
    if (rc > 0)
        cli_err("sync: --as-of '%s' is in the future (the store as of then is not known)",
                cli_esc(s));
    else
        cli_err("sync: --as-of '%s': expected an RFC 3339 time (2026-03-11T00:00:00Z) or a "
                "duration back from now (90m, 4h, 2d)",
                cli_esc(s));
    return CLI_EXIT_USAGE;
}

int sync_cli_as_of_pin(struct cli *cli, ds_sync_t *sy, int64_t t)
{
    char what[128], err[1024];

    if (ds_sync_pin_as_of(sy, t, what, sizeof(what), err, sizeof(err)) < 0) {
        cli_err("sync: %s: nothing synced", err);
        return CLI_EXIT_FAIL;
    }
    if (!cli->quiet)
        cli_err("sync: shipping the store %s; a version no longer held is reported, never "
                "replaced",
                what);
    return 0;
}

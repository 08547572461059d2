/*
 * sync --as-of TIME|scan:GEN: the desired set as the store was at TIME
 * (snapshot pinning, as a delayed schedule's fire ships it), or exactly as
 * scan generation GEN recorded it (distsync scans lists them: "the scan of
 * Tuesday 14:02" an operator approved). TIME is RFC 3339 or a duration
 * back from now (90m, 2d). Standalone, the sync pins its batch to GEN, or
 * to the latest scan generation that started by TIME; through a daemon,
 * the run-now carries "as_of" and the daemon pins it. A version no longer
 * held anywhere (the store's file changed and the retain store lacks it)
 * is reported per file and never replaced by newer content.
 */
#include <stdio.h>

#include "sync_cli.h"

#define AS_OF_FORMS                                                                                \
    "an RFC 3339 time (2026-03-11T00:00:00Z), a duration back from now (90m, 4h, 2d) or a scan "   \
    "generation (scan:42; distsync scans lists them)"

int sync_cli_as_of_parse(const char *s, struct sync_as_of *o)
{
    int g = ds_sync_gen_parse(s, &o->gen), rc;

    if (g > 0)
        return 0;
    rc = g < 0 ? -1 : cli_parse_when(s, -1, &o->t);
    if (rc == 0)
        return 0;
    if (rc > 0)
        cli_err("sync: --as-of '%s' is in the future (the store as of then is not known)",
                cli_esc(s));
    else
        cli_err("sync: --as-of '%s': expected " AS_OF_FORMS, cli_esc(s));
    return CLI_EXIT_USAGE;
}

int sync_cli_as_of_pin(struct cli *cli, ds_sync_t *sy, const struct sync_as_of *o)
{
    char what[128], err[1024];

    if ((o->gen != 0 ? ds_sync_pin_gen(sy, o->gen, what, sizeof(what), err, sizeof(err))
                     : ds_sync_pin_as_of(sy, o->t, what, sizeof(what), err, sizeof(err))) < 0) {
        cli_err("sync: %s: nothing synced", err);
        return CLI_EXIT_FAIL;
    }
    if (!cli->quiet)
        cli_err("sync: shipping the store %s; a version no longer held is reported, never "
                "replaced",
                what);
    return 0;
}

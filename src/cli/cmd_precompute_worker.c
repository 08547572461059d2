/*
 * distsync precompute-worker --parent PID [--scan scan:N]: hidden; `distsync daemon`
 * spawns it after a scan of its own that changed the catalog when
 * [console] precompute = yes (src/daemon/daemon_precompute.c). It computes
 * the deltas the servers' next runs need (ds_sync_precompute, one thread
 * per CPU) ten nice levels below the daemon (nice +10: a thread of a run
 * the daemon fires meanwhile weighs about nine times one of its threads
 * on a busy core), and writes `scan --json`'s
 * "precompute" object on stdout: {"precompute": {...}}.
 *
 * A process of its own, so that the daemon's stop ends it at once with
 * SIGKILL: a level-19 delta is up to minutes of zstd that cannot be stopped
 * half-way, and the delta cache publishes an entry by rename, so a killed
 * computation leaves only its tmp file, which the next open of the cache
 * reaps. It dies with the daemon (PR_SET_PDEATHSIG). Its lines go through
 * the daemon's log sink, named "precompute=scan:N". Exit 0, 1 on failure
 * (said on stderr), 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "distsync/json.h"
#include "distsync/log.h"
#include "sync_cli.h"

int cmd_precompute_worker(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"scan", required_argument, NULL, 's'},
                                         {"parent", required_argument, NULL, 'p'},
                                         {NULL, 0, NULL, 0}};
    struct scan_precompute pc = {0};
    const char *scan = NULL;
    long parent = 0;
    ds_config_t *cfg = NULL;
    char ctx[128];
    ds_json_t j;
    int ch, rc;

    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 's')
            scan = optarg;
        else if (ch == 'p')
            parent = strtol(optarg, NULL, 10);
        else
            return CLI_EXIT_USAGE;
    }
    if (optind < argc || parent <= 0) {
        cli_err("usage: distsync precompute-worker --parent PID [--scan scan:N] (spawned by "
                "distsync daemon)");
        return CLI_EXIT_USAGE;
    }
    /* gone with the daemon, even after a kill -9 of it (also one that died
     * before the request was made) */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != (pid_t)parent)
        return CLI_EXIT_FAIL;
    errno = 0;
    if (nice(10) == -1 && errno != 0) /* the runs first; never fatal */
        ds_log(DS_LOG_DEBUG, "nice: %s", strerror(errno));
    cli_log_daemon_set(cli);
    snprintf(ctx, sizeof(ctx), "precompute=%s", scan ? scan : "?");
    ds_log_context(ctx);
    rc = cli_config_load(cli, &cfg);
    if (rc == 0)
        rc = scan_cli_precompute(cfg, &pc);
    if (rc == 0) {
        ds_json_init(&j, stdout);
        ds_json_obj_begin(&j);
        scan_cli_precompute_json(&j, &pc);
        ds_json_obj_end(&j);
        ds_json_end(&j);
        rc = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    }
    ds_log_context(NULL);
    ds_config_free(cfg);
    return rc;
}

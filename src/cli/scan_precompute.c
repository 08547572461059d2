/*
 * distsync scan --precompute (or [console] precompute = yes): after the
 * scan, the deltas the servers' next syncs need are computed into the
 * delta cache (ds_sync_precompute, on every core), so those syncs only
 * send. SIGINT/SIGTERM stop it after the deltas under way.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "distsync/error.h"
#include "distsync/json.h"
#include "progress.h"
#include "sync_cli.h"

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int scan_cli_precompute(const ds_config_t *cfg, struct scan_precompute *pc)
{
    ds_sync_t *sy = NULL;
    double t0 = now_s();
    int rc = sync_cli_open(cfg, NULL, NULL, 0, NULL, &sy);

    if (rc != 0)
        return rc;
    sync_cli_signals();
    sync_cli_cancel_target(sy);
    rc = ds_sync_precompute(sy, 0, &pc->st);
    sync_cli_cancel_target(NULL);
    pc->elapsed_s = now_s() - t0;
    ds_sync_close(sy);
    if (rc == -ECANCELED || sync_cli_cancelled()) {
        cli_err("precompute cancelled by a signal: the deltas done so far are cached");
        return sync_cli_cancelled() ? sync_cli_cancelled() : CLI_EXIT_FAIL;
    }
    if (rc < 0) {
        cli_err("precompute: %s (the scan itself is complete)", ds_strerror(rc));
        return CLI_EXIT_FAIL;
    }
    return 0;
}

void scan_cli_precompute_json(ds_json_t *j, const struct scan_precompute *pc)
{
    ds_json_key(j, "precompute");
    ds_json_obj_begin(j);
    ds_json_kuint(j, "servers", pc->st.servers);
    ds_json_kuint(j, "pairs", pc->st.pairs);
    ds_json_kuint(j, "computed", pc->st.computed);
    ds_json_kuint(j, "cached", pc->st.cached);
    ds_json_kuint(j, "failed", pc->st.failed);
    ds_json_kuint(j, "new_bytes", pc->st.new_bytes);
    ds_json_kuint(j, "threads", pc->st.threads);
    ds_json_kdouble(j, "elapsed_s", pc->elapsed_s);
    ds_json_obj_end(j);
}

void scan_cli_precompute_print(const struct scan_precompute *pc)
{
    char b[32], d[32];

    progress_fmt_bytes(b, sizeof(b), pc->st.new_bytes);
    progress_fmt_duration(d, sizeof(d), pc->elapsed_s);
    printf("precompute: %llu server%s, %llu delta%s for %s of new versions: %llu computed, %llu "
           "already cached, %llu failed, %s on %u thread%s\n",
           (unsigned long long)pc->st.servers, pc->st.servers == 1 ? "" : "s",
           (unsigned long long)pc->st.pairs, pc->st.pairs == 1 ? "" : "s", b,
           (unsigned long long)pc->st.computed, (unsigned long long)pc->st.cached,
           (unsigned long long)pc->st.failed, d, pc->st.threads, pc->st.threads == 1 ? "" : "s");
}

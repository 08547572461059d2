/*
 * Sync: the state servers share (catalog, retain store, delta cache, the
 * catalog snapshot) and cancel. Each server's run is a phase machine
 * (sync_run.c, records in sync_events.c) that the engine steps
 * (src/engine/engine.c, also ds_sync_server() as a batch of one).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "distsync/fsutil.h"
#include "distsync/error.h"
#include "distsync/zpatch.h"
#include "distsync/events.h"
#include "distsync/gc.h"
#include "distsync/log.h"
#include "distsync/proto.h"
#include "distsync/transport.h"
#include "sync_int.h"

int ds_sync_make_console_id(const char *state, char *host, size_t hostlen, char *id, size_t idlen)
{
    uint8_t sum[DS_SHA256_LEN];
    char hex[2 * DS_SHA256_LEN + 1];
    int rc;

    host[0] = '\0';
    if (gethostname(host, hostlen - 1) < 0 || host[0] == '\0')
        snprintf(host, hostlen, "localhost");
    host[hostlen - 1] = '\0';
    rc = ds_sha256(state, strlen(state), sum);
    if (rc < 0)
        return rc;
    ds_hex(sum, DS_SHA256_LEN, hex);
    snprintf(id, idlen, "%.200s:%.12s", host, hex);
    return 0;
}

/* See sync_int.h. */
int ds__sync_ahead_level(const ds_config_t *cfg)
{
    return cfg->delta_level > 0 ? cfg->delta_level : DS_ZPATCH_LEVEL_DEFAULT;
}

/* See sync_int.h. */
int ds__sync_run_level(const ds_config_t *cfg)
{
    int ahead = ds__sync_ahead_level(cfg);

    if (cfg->sync_delta_level > 0)
        return cfg->sync_delta_level;
    return ahead < DS_SYNC_LEVEL_DEFAULT ? ahead : DS_SYNC_LEVEL_DEFAULT;
}

static int make_console_id(ds_sync_t *s)
{
    return ds_sync_make_console_id(s->o.cfg->state, s->host, sizeof(s->host), s->console_id,
                                   sizeof(s->console_id));
}

int ds_sync_open(const ds_sync_opts_t *o, ds_sync_t **out, char *err, size_t errlen)
{
    ds_sync_t *s = calloc(1, sizeof(*s));
    ds_delta_opts_t dopts = {0};
    char path[PATH_MAX];
    int rc;

    *out = NULL;
    if (s == NULL)
        return DS_ENOMEM;
    pthread_mutex_init(&s->rpool_mu, NULL);
    s->o = *o;
    rc = ds_mkdir_p(o->cfg->state);
    if (rc < 0) {
        snprintf(err, errlen, "state directory %s: %s", o->cfg->state, ds_strerror(rc));
        goto fail;
    }
    rc = make_console_id(s);
    if (rc < 0) {
        snprintf(err, errlen, "console id: %s", ds_strerror(rc));
        goto fail;
    }
    rc = ds_catalog_path(o->cfg->state, path, sizeof(path));
    if (rc < 0) {
        snprintf(err, errlen, "state directory %s: path is too long", o->cfg->state);
        goto fail;
    }
    rc = ds_catalog_open(path, &s->cat, err, errlen);
    if (rc < 0)
        goto fail;
    snprintf(path, sizeof(path), "%s/retain", o->cfg->state);
    snprintf(s->retain_dir, sizeof(s->retain_dir), "%s", path);
    rc = ds_retain_open(path, &s->ret);
    if (rc < 0) {
        snprintf(err, errlen, "retain store %s: %s", path, ds_strerror(rc));
        goto fail;
    }
    snprintf(path, sizeof(path), "%s/deltas", o->cfg->state);
    dopts.zpatch_level = o->delta_level > 0 ? o->delta_level : ds__sync_run_level(o->cfg);
    rc = ds_delta_cache_open(path, o->delta_cache_cap ? o->delta_cache_cap : (2ull << 30), &dopts,
                             &s->dc);
    if (rc < 0) {
        snprintf(err, errlen, "delta cache %s: %s", path, ds_strerror(rc));
        goto fail;
    }
    if (o->zstd_level >= 0 && ds_session_zcache_new(0, &s->zcache) < 0) {
        rc = DS_ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    ds_sync_close(s);
    return rc;
}

void ds_sync_close(ds_sync_t *s)
{
    if (s == NULL)
        return;
    if (s->engine_free != NULL)
        s->engine_free(s->engine);
    for (size_t i = 0; i < s->nrows; i++) {
        free(s->rows[i].path);
        free(s->rows[i].klass);
        ds__sync_pin_drop(&s->rows[i]);
    }
    free(s->rows);
    free(s->pin_what);
    free(s->by_content);
    ds__sync_memo_free(s);
    free(s->send_buf);
    free(s->pf_fly);
    if (s->zcache != NULL) {
        uint64_t hits, misses;

        ds_session_zcache_stats(s->zcache, &hits, &misses);
        if (hits + misses > 0)
            ds_log(DS_LOG_DEBUG,
                   "zstd frame cache: %" PRIu64 " frames compressed, %" PRIu64
                   " served from the cache",
                   misses, hits);
    }
    ds_session_zcache_free(s->zcache);
    ds_delta_cache_close(s->dc);
    ds__sync_retain_drain(s);
    pthread_mutex_destroy(&s->rpool_mu);
    ds_retain_close(s->ret);
    ds_retain_close(s->ret_w);
    ds_catalog_free(s->cat);
    free(s);
}

const char *ds_sync_console_id(const ds_sync_t *s)
{
    return s->console_id;
}

ds_catalog_t *ds_sync_catalog(ds_sync_t *s)
{
    return s->cat;
}

void ds_sync_cancel(ds_sync_t *s)
{
    s->cancel = 1;
}

void ds_sync_delta_stats(ds_sync_t *s, ds_delta_cache_stats_t *st)
{
    ds_delta_cache_stats(s->dc, st);
}

int ds_sync_cancelled(const ds_sync_t *s)
{
    return s->cancel != 0;
}

void ds_sync_result_clear(ds_sync_result_t *res)
{
    ds_plan_free(res->plan);
    res->plan = NULL;
}

int ds_sync_retain_usage(ds_sync_t *s, ds_retain_usage_t *u)
{
    memset(u, 0, sizeof(*u));
    return s->ret != NULL ? ds_retain_usage(s->ret, u) : 0;
}

int ds_sync_gc(ds_sync_t *s, uint64_t *freed)
{
    ds_gc_result_t g;
    int rc = ds_gc_run(s->cat, s->ret, s->o.cfg, 0, &g);

    if (rc == 0 && g.kept_all)
        ds_log(DS_LOG_INFO,
               "retained versions: nothing collected: %s (sync every server, or run"
               " distsync gc --force)",
               g.why);
    if (freed != NULL)
        *freed = rc == 0 ? g.freed_bytes : 0;
    ds__sync_memo_reset(s); /* retained versions may be gone */
    return rc;
}

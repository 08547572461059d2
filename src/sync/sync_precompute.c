/*
 * Idle precompute: after a scan, the deltas the servers' next runs will
 * need go into the delta cache, on worker threads, so those runs only send.
 *
 * For each configured server whose last-known manifest the catalog holds,
 * the planner runs against that manifest, taken as the target's state (the
 * target as this console last left it): its DS_PLAN_DELTA items are the
 * (basis, new) pairs a sync would compute, with the same basis choice
 * (chunk overlap, the path's previous version, a close name). Each distinct
 * pair is computed once, whatever the number of servers that need it, the
 * largest first, by up to `threads` workers, each with its own retain
 * store handle (taken from sync_rpool.c's, given back when it ends). The
 * format is the one the server's receiver applies: the
 * catalog records the protocol version it spoke in its last run (an older
 * agent gets its version 1 zpatch or librsync delta), and the newest
 * protocol's (zpatch stream version 2) when none is recorded. An smb://
 * server's pairs are computed in the format its SMB worker gets
 * (DS_DELTA_FMT_ZPATCH_COPY: its basis reads cross the WAN).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "distsync/error.h"
#include "distsync/events.h"
#include "distsync/log.h"
#include "distsync/proto.h"
#include "sync_int.h"

#define PC_THREADS_MAX 64
/* What a receiver of DS_PROTO_VERSION_MAX applies (sync_send.c's delta_fmt):
 * for a server whose protocol version the catalog does not record. */
#define PC_FORMAT DS_DELTA_FMT_ZPATCH2
/* Version 6 (FILE_ONE) added framing, not a delta format. */
_Static_assert(DS_PROTO_VERSION_MAX == DS_PROTO_VERSION_ONE,
               "precompute's format is not the newest protocol's");

struct pc_job {
    uint8_t bsha[DS_SHA256_LEN], tsha[DS_SHA256_LEN];
    int fmt;              /* PC_FORMAT, or DS_DELTA_FMT_ZPATCH_COPY for an smb:// server */
    struct ds_pf_src src; /* what it reads (basis NULL: the retain store's) */
    int rc;
};

struct pc {
    ds_sync_t *s;
    struct pc_job *jobs;
    size_t n, cap, next;
    pthread_mutex_t mu;
    ds_log_scope_t scope; /* the caller's: its workers' lines name what it does */
};

static int put_entry(void *ctx, const ds_server_file_t *f)
{
    return ds_manifest_put(ctx, f->path, f->size, 0, f->sha256);
}

/* See sync_int.h. */
int ds__sync_have_of(const ds_manifest_t *m, ds_plan_have_t **have, size_t *nhave)
{
    const ds_manifest_entry_t **e = NULL;
    int rc = ds_manifest_sorted(m, &e, nhave);

    if (rc == 0 && (*have = calloc(*nhave + 1, sizeof(**have))) == NULL)
        rc = DS_ENOMEM;
    for (size_t i = 0; rc == 0 && i < *nhave; i++)
        (*have)[i] = (ds_plan_have_t){
            .path = e[i]->path, .is_file = 1, .size = e[i]->size, .mtime_ns = e[i]->mtime_ns};
    free(e);
    return rc;
}

int ds__sync_last_known(ds_sync_t *s, const ds_server_cfg_t *srv, ds_manifest_t **m,
                        ds_plan_have_t **have, size_t *nhave)
{
    int rc = ds_catalog_server_manifest_known(s->cat, srv->name);

    *m = NULL;
    *have = NULL;
    *nhave = 0;
    if (rc <= 0)
        return rc;
    rc = ds_manifest_new(m);
    if (rc == 0)
        rc = ds_catalog_server_manifest_get(s->cat, srv->name, put_entry, *m);
    if (rc == 0)
        rc = ds__sync_have_of(*m, have, nhave);
    return rc;
}

/* Queues item it's pair, unless neither the store nor the retain store
 * holds its basis (its sync sends the file whole). */
static int add_job(struct pc *pc, const ds_plan_item_t *it, int fmt)
{
    struct pc_job *j;
    int rc;

    if (pc->n == pc->cap) {
        size_t cap = pc->cap ? 2 * pc->cap : 64;
        struct pc_job *v = realloc(pc->jobs, cap * sizeof(*v));

        if (v == NULL)
            return DS_ENOMEM;
        pc->jobs = v;
        pc->cap = cap;
    }
    j = &pc->jobs[pc->n];
    memset(j, 0, sizeof(*j));
    rc = ds__sender_prefetch_plan(pc->s, it, &j->src);
    if (rc <= 0) {
        ds__sender_prefetch_clear(&j->src);
        return rc;
    }
    ds__sender_prefetch_chunks(pc->s, it, &j->src);
    j->fmt = fmt;
    memcpy(j->bsha, it->basis_sha256, DS_SHA256_LEN);
    memcpy(j->tsha, it->sha256, DS_SHA256_LEN);
    j->rc = -ECANCELED; /* until a worker runs it */
    pc->n++;
    return 0;
}

/* Plans srv against its last-known manifest into *out (NULL: the catalog
 * knows none), the snapshot loaded. */
static int plan_known(ds_sync_t *s, const ds_server_cfg_t *srv, ds_plan_t **out)
{
    ds_plan_want_t *want = calloc(s->nrows + 1, sizeof(*want));
    ds_plan_input_t in = {0};
    ds_plan_have_t *have = NULL;
    ds_manifest_t *m = NULL;
    size_t nhave = 0;
    int rc = want ? ds__sync_last_known(s, srv, &m, &have, &nhave) : DS_ENOMEM;

    *out = NULL;
    if (rc < 0 || m == NULL)
        goto out;
    for (size_t i = 0; i < s->nrows; i++) {
        const struct sfile_row *x = &s->rows[i];

        if (!ds_config_list_has(&srv->classes, x->klass))
            continue;
        want[in.nwant++] = (ds_plan_want_t){.path = x->path,
                                            .klass = x->klass,
                                            .size = x->size,
                                            .mtime_ns = x->mtime_ns,
                                            .content_id = x->content_id,
                                            .unreadable = x->content_id <= 0};
        memcpy(want[in.nwant - 1].sha256, x->sha256, DS_SHA256_LEN);
    }
    in.want = want;
    in.manifest = m;
    in.have = have;
    in.nhave = nhave;
    in.classes = (const char *const *)srv->classes.v;
    in.nclasses = srv->classes.n;
    in.scanned = 1; /* prune is off: nothing here deletes */
    ds__sync_oracle(s, &in.oracle);
    rc = ds_plan_build(&in, out);
out:
    ds_manifest_free(m);
    free(have);
    free(want);
    return rc;
}

int ds_sync_plan_known(ds_sync_t *s, const ds_server_cfg_t *srv, ds_plan_t **out)
{
    int rc = ds__sync_load(s);

    *out = NULL;
    return rc < 0 ? rc : plan_known(s, srv, out);
}

/* See sync_int.h. */
int ds__sync_server_fmt(ds_sync_t *s, const ds_server_cfg_t *srv)
{
    unsigned v = 0;

    if (strncmp(srv->url, "smb://", 6) == 0)
        return DS_DELTA_FMT_ZPATCH_COPY;
    if (ds_catalog_server_protocol_get(s->cat, srv->name, &v) < 0 || v == 0)
        return PC_FORMAT;
    return ds__sync_delta_fmt(v, 0);
}

/* Plans srv against its last-known manifest; queues its delta pairs. */
static int plan_server(struct pc *pc, const ds_server_cfg_t *srv, uint64_t *planned)
{
    ds_plan_t *plan = NULL;
    int fmt = ds__sync_server_fmt(pc->s, srv), rc = plan_known(pc->s, srv, &plan);

    for (size_t i = 0; rc == 0 && plan != NULL && i < plan->n; i++)
        if (plan->items[i].method == DS_PLAN_DELTA)
            rc = add_job(pc, &plan->items[i], fmt);
    *planned += rc == 0 && plan != NULL;
    ds_plan_free(plan);
    return rc;
}

/* Largest first (the longest jobs start early); equal pairs adjacent. */
static int cmp_job(const void *a, const void *b)
{
    const struct pc_job *x = a, *y = b;
    int c;

    if (x->src.tsize != y->src.tsize)
        return x->src.tsize > y->src.tsize ? -1 : 1;
    c = memcmp(x->tsha, y->tsha, DS_SHA256_LEN);
    c = c ? c : memcmp(x->bsha, y->bsha, DS_SHA256_LEN);
    return c ? c : x->fmt - y->fmt;
}

static void job_free(struct pc_job *j)
{
    ds__sender_prefetch_clear(&j->src);
}

/* Sorts the jobs and drops repeated pairs. */
static void unique_jobs(struct pc *pc)
{
    size_t k = 0;

    qsort(pc->jobs, pc->n, sizeof(*pc->jobs), cmp_job);
    for (size_t i = 0; i < pc->n; i++) {
        if (k > 0 && cmp_job(&pc->jobs[k - 1], &pc->jobs[i]) == 0) {
            job_free(&pc->jobs[i]);
            continue;
        }
        pc->jobs[k++] = pc->jobs[i];
    }
    pc->n = k;
}

/* Computes one pair into the cache: basis from its store file, else from
 * the retain store (*ret: this worker's handle, taken on first use). */
static int run_job(struct pc *pc, struct pc_job *j, ds_retain_t **ret)
{
    ds_delta_src_t bsrc, tsrc;
    ds_retain_reader_t *rd = NULL;
    const struct ds_pf_src *s = &j->src;
    int tfd = ds__sync_open_sized(s->target, s->tsize), bfd = -1, dfd = -1, rc;
    uint64_t dsize;

    if (tfd < 0)
        return DS_ECHANGED; /* changed since the scan: the run will see it */
    ds__pf_target_src(&tsrc, s, tfd);
    if (s->basis != NULL && (bfd = ds__sync_open_sized(s->basis, s->bsize)) >= 0) {
        ds_delta_src_fd(&bsrc, bfd, s->bsize);
    } else {
        rc = *ret ? 0 : ds__sync_retain_take(pc->s, ret);
        if (rc == 0)
            rc = ds_retain_open_version(*ret, j->bsha, 0, &rd);
        if (rc < 0) {
            close(tfd);
            return rc;
        }
        ds_delta_src_retain(&bsrc, rd);
    }
    rc = ds_delta_cache_get(pc->s->dc, j->fmt, j->bsha, j->tsha, &bsrc, &tsrc, &dfd, &dsize);
    if (dfd >= 0)
        close(dfd);
    ds_retain_reader_free(rd);
    if (bfd >= 0)
        close(bfd);
    close(tfd);
    return rc;
}

static void *worker(void *arg)
{
    struct pc *pc = arg;
    ds_retain_t *ret = NULL;

    ds_log_scope_set(&pc->scope);
    for (;;) {
        struct pc_job *j = NULL;

        pthread_mutex_lock(&pc->mu);
        if (pc->next < pc->n && !pc->s->cancel)
            j = &pc->jobs[pc->next++];
        pthread_mutex_unlock(&pc->mu);
        if (j == NULL)
            break;
        j->rc = run_job(pc, j, &ret);
        if (j->rc < 0)
            ds_log(DS_LOG_WARN, "precompute: the delta for %s: %s (its sync computes it)",
                   j->src.target, ds_strerror(j->rc));
    }
    ds__sync_retain_give(pc->s, ret);
    return NULL;
}

/* Runs the jobs on up to threads workers (the calling thread is one). */
static unsigned run_jobs(struct pc *pc, unsigned threads)
{
    pthread_t t[PC_THREADS_MAX];
    unsigned n = 0;

    if (threads == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);

        threads = cpus > 0 ? (unsigned)cpus : 1;
    }
    threads = threads > PC_THREADS_MAX ? PC_THREADS_MAX : threads;
    threads = threads > pc->n ? (unsigned)pc->n : threads;
    while (n + 1 < threads && pthread_create(&t[n], NULL, worker, pc) == 0)
        n++;
    worker(pc);
    for (unsigned i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    return n + (pc->n > 0);
}

int ds_sync_precompute(ds_sync_t *s, unsigned threads, ds_sync_precompute_stats_t *st)
{
    struct pc pc = {.s = s};
    ds_delta_cache_stats_t before, after;
    int rc;

    memset(st, 0, sizeof(*st));
    /* ahead of the syncs: the high level (a run-now's own level stays) */
    if (s->o.delta_level <= 0)
        ds_delta_cache_set_level(s->dc, ds__sync_ahead_level(s->o.cfg));
    ds__sync_snapshot_reset(s); /* the scan just changed the catalog */
    rc = ds__sync_load(s);
    for (size_t i = 0; rc == 0 && i < s->o.cfg->nservers; i++)
        rc = plan_server(&pc, &s->o.cfg->servers[i], &st->servers);
    if (rc < 0) {
        ds_log(DS_LOG_ERROR, "precompute: planning the servers' next runs: %s", ds_strerror(rc));
        goto out;
    }
    unique_jobs(&pc);
    pthread_mutex_init(&pc.mu, NULL);
    ds_log_scope_save(&pc.scope);
    ds_delta_cache_stats(s->dc, &before);
    st->threads = run_jobs(&pc, threads);
    ds__sync_retain_drain(s);
    ds_delta_cache_stats(s->dc, &after);
    pthread_mutex_destroy(&pc.mu);
    st->pairs = pc.n;
    for (size_t i = 0; i < pc.n; i++) {
        st->new_bytes += pc.jobs[i].src.tsize;
        st->failed += pc.jobs[i].rc < 0;
    }
    st->computed = after.computes - before.computes;
    st->cached = st->pairs - st->failed - (st->computed < st->pairs ? st->computed : st->pairs);
    if (s->cancel)
        rc = -ECANCELED;
out:
    for (size_t i = 0; i < pc.n; i++)
        job_free(&pc.jobs[i]);
    free(pc.jobs);
    return rc;
}

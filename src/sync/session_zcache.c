/*
 * zstd of data frames (ds_session_zstd) and the compressed-frame cache
 * shared by the sessions of a fan-out (see ds_session_zcache_new in
 * session.h): open addressing on XXH3-64 of the frame, each entry keeping
 * the raw bytes (a hit is compared in full, so it is exact) and the zstd
 * output, or none when compression did not pay.
 *
 * Threads: senders compress on worker threads, each with its own context
 * (ds_session_zctx_t). The cache is guarded by one mutex, held only to
 * look up and to record, never while compressing; a frame being
 * compressed is in the cache as pending, and a second thread asking for
 * it waits for the first one's output, so a fan-out still compresses each
 * frame once.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "distsync/error.h"
#include "session_int.h"

#define ZC_DEFAULT_CAP (64u << 20)

struct ds_session_zctx {
    ZSTD_CCtx *zc;
    uint8_t *buf;
    size_t cap;
};

struct zentry {
    uint64_t h;
    int level;
    int pending;    /* being compressed by some thread */
    size_t n, zlen; /* zlen 0: compression does not pay */
    uint8_t *raw;   /* NULL: empty slot */
    uint8_t *z;
};

struct ds_session_zcache {
    pthread_mutex_t mu;
    pthread_cond_t done; /* a pending entry was completed */
    struct zentry *v;
    size_t cap, used; /* slots (a power of two), entries */
    size_t bytes, max_bytes;
    ds_session_zctx_t *own; /* ds_session_zcache_compress's context */
    uint64_t hits, misses;
};

int ds_session_zctx_new(ds_session_zctx_t **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : DS_ENOMEM;
}

void ds_session_zctx_free(ds_session_zctx_t *x)
{
    if (x == NULL)
        return;
    ZSTD_freeCCtx(x->zc);
    free(x->buf);
    free(x);
}

int ds_session_zcache_new(size_t cap_bytes, ds_session_zcache_t **out)
{
    ds_session_zcache_t *c = calloc(1, sizeof(*c));

    *out = NULL;
    if (c == NULL || ds_session_zctx_new(&c->own) < 0) {
        free(c);
        return DS_ENOMEM;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->done, NULL);
    c->max_bytes = cap_bytes ? cap_bytes : ZC_DEFAULT_CAP;
    *out = c;
    return 0;
}

void ds_session_zcache_free(ds_session_zcache_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->cap; i++) {
        free(c->v[i].raw);
        free(c->v[i].z);
    }
    free(c->v);
    ds_session_zctx_free(c->own);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->done);
    free(c);
}

void ds_session_zcache_stats(const ds_session_zcache_t *c, uint64_t *hits, uint64_t *misses)
{
    *hits = 0;
    *misses = 0;
    if (c == NULL)
        return;
    pthread_mutex_lock((pthread_mutex_t *)&c->mu);
    *hits = c->hits;
    *misses = c->misses;
    pthread_mutex_unlock((pthread_mutex_t *)&c->mu);
}

/* The entry of (p, n, level), or the empty slot where it would go. */
static struct zentry *slot(const ds_session_zcache_t *c, uint64_t h, int level, const void *p,
                           size_t n)
{
    for (size_t i = h & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
        struct zentry *e = &c->v[i];

        if (e->raw == NULL ||
            (e->h == h && e->n == n && e->level == level && memcmp(e->raw, p, n) == 0))
            return e;
    }
}

static int grow(ds_session_zcache_t *c)
{
    size_t nc = c->cap ? c->cap * 2 : 64;
    struct zentry *nv = calloc(nc, sizeof(*nv)), *old = c->v;
    size_t ocap = c->cap;

    if (nv == NULL)
        return DS_ENOMEM;
    c->v = nv;
    c->cap = nc;
    for (size_t i = 0; i < ocap; i++) {
        if (old[i].raw == NULL)
            continue;
        for (size_t k = old[i].h & (nc - 1);; k = (k + 1) & (nc - 1)) {
            if (nv[k].raw == NULL) {
                nv[k] = old[i];
                break;
            }
        }
    }
    free(old);
    return 0;
}

/* Compresses p into x->buf; returns the size when it pays, else 0. */
static size_t squeeze(ds_session_zctx_t *x, int level, const void *p, size_t n)
{
    size_t need = ZSTD_compressBound(n), z;

    if (x->zc == NULL && (x->zc = ZSTD_createCCtx()) == NULL)
        return 0;
    if (x->cap < need) {
        uint8_t *b = realloc(x->buf, need);

        if (b == NULL)
            return 0;
        x->buf = b;
        x->cap = need;
    }
    z = ZSTD_compressCCtx(x->zc, x->buf, x->cap, p, n, level);
    if (ZSTD_isError(z) || z * 100 >= n * COMP_MIN_WIN)
        return 0;
    return z;
}

/* Under the lock: records (p, n, level) as pending when under the cap.
 * Returns 1 when recorded; best effort. */
static int reserve(ds_session_zcache_t *c, uint64_t h, int level, const void *p, size_t n)
{
    struct zentry *e;
    uint8_t *raw;

    if (c->bytes + n > c->max_bytes || ((c->used + 1) * 4 > c->cap * 3 && grow(c) < 0))
        return 0;
    raw = malloc(n ? n : 1);
    if (raw == NULL)
        return 0;
    memcpy(raw, p, n);
    e = slot(c, h, level, p, n);
    *e = (struct zentry){.h = h, .level = level, .pending = 1, .n = n, .raw = raw};
    c->used++;
    c->bytes += n;
    return 1;
}

/* Completes the pending entry of (p, n, level) with the output x->buf[0,
 * zlen) (0: does not pay); wakes the threads waiting for it. Returns the
 * cached copy (NULL: none). */
static const uint8_t *complete(ds_session_zcache_t *c, uint64_t h, int level, const void *p,
                               size_t n, const ds_session_zctx_t *x, size_t zlen)
{
    uint8_t *z = zlen ? malloc(zlen) : NULL;
    struct zentry *e;

    if (z != NULL)
        memcpy(z, x->buf, zlen);
    pthread_mutex_lock(&c->mu);
    e = slot(c, h, level, p, n);
    e->z = z;
    e->zlen = z ? zlen : 0; /* out of memory: sent whole from now on */
    e->pending = 0;
    c->bytes += e->zlen;
    pthread_cond_broadcast(&c->done);
    pthread_mutex_unlock(&c->mu);
    return z;
}

size_t ds_session_zstd(ds_session_zcache_t *c, ds_session_zctx_t *x, int level, const void *p,
                       size_t n, const uint8_t **z)
{
    uint64_t h;
    const struct zentry *e = NULL;
    size_t zlen;
    int mine;

    *z = NULL;
    if (c == NULL) {
        zlen = squeeze(x, level, p, n);
        *z = zlen ? x->buf : NULL;
        return zlen;
    }
    h = XXH3_64bits(p, n);
    pthread_mutex_lock(&c->mu);
    for (;;) {
        e = c->used ? slot(c, h, level, p, n) : NULL;
        if (e == NULL || e->raw == NULL || !e->pending)
            break;
        pthread_cond_wait(&c->done, &c->mu); /* another thread compresses it */
    }
    if (e != NULL && e->raw != NULL) {
        c->hits++;
        *z = e->zlen ? e->z : NULL;
        zlen = e->zlen;
        pthread_mutex_unlock(&c->mu);
        return zlen;
    }
    c->misses++;
    mine = reserve(c, h, level, p, n);
    pthread_mutex_unlock(&c->mu);
    zlen = squeeze(x, level, p, n);
    *z = zlen ? x->buf : NULL;
    if (mine)
        complete(c, h, level, p, n, x, zlen);
    return zlen;
}

int ds_session_zcache_compress(ds_session_zcache_t *c, int level, const void *p, size_t n,
                               const uint8_t **z, size_t *zlen)
{
    uint64_t hits, hits2, misses;

    ds_session_zcache_stats(c, &hits, &misses);
    *zlen = ds_session_zstd(c, c->own, level, p, n, z);
    ds_session_zcache_stats(c, &hits2, &misses);
    return hits2 > hits;
}

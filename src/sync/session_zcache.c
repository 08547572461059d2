/*
 * Compressed-frame cache shared by the sessions of a fan-out (see
 * ds_session_zcache_new in session.h): open addressing on XXH3-64 of the
 * frame, each entry keeping the raw bytes (a hit is compared in full, so
 * it is exact) and the zstd output, or none when compression did not pay.
 */
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "distsync/error.h"
#include "session_int.h"

#define ZC_DEFAULT_CAP (64u << 20)

struct zentry {
    uint64_t h;
    int level;
    size_t n, zlen; /* zlen 0: compression does not pay */
    uint8_t *raw;   /* NULL: empty slot */
    uint8_t *z;
};

struct ds_session_zcache {
    struct zentry *v;
    size_t cap, used; /* slots (a power of two), entries */
    size_t bytes, max_bytes;
    ZSTD_CCtx *zc;
    uint8_t *zbuf; /* a miss not admitted is compressed here */
    size_t zbuf_cap;
    uint64_t hits, misses;
};

int ds_session_zcache_new(size_t cap_bytes, ds_session_zcache_t **out)
{
    ds_session_zcache_t *c = calloc(1, sizeof(*c));

    *out = NULL;
    if (c == NULL)
        return DS_ENOMEM;
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
    ZSTD_freeCCtx(c->zc);
    free(c->zbuf);
    free(c);
}

void ds_session_zcache_stats(const ds_session_zcache_t *c, uint64_t *hits, uint64_t *misses)
{
    *hits = c ? c->hits : 0;
    *misses = c ? c->misses : 0;
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

/* Compresses p into c->zbuf; returns the size when it pays, else 0. */
static size_t squeeze(ds_session_zcache_t *c, int level, const void *p, size_t n)
{
    size_t need = ZSTD_compressBound(n), z;

    if (c->zc == NULL && (c->zc = ZSTD_createCCtx()) == NULL)
        return 0;
    if (c->zbuf_cap < need) {
        uint8_t *b = realloc(c->zbuf, need);

        if (b == NULL)
            return 0;
        c->zbuf = b;
        c->zbuf_cap = need;
    }
    z = ZSTD_compressCCtx(c->zc, c->zbuf, c->zbuf_cap, p, n, level);
    if (ZSTD_isError(z) || z * 100 >= n * COMP_MIN_WIN)
        return 0;
    return z;
}

/* Keeps a copy of the frame and its output when under the cap; best effort. */
static void admit(ds_session_zcache_t *c, uint64_t h, int level, const void *p, size_t n,
                  size_t zlen, const uint8_t **z)
{
    struct zentry *e;
    uint8_t *raw, *zc = NULL;

    if (c->bytes + n + zlen > c->max_bytes || ((c->used + 1) * 4 > c->cap * 3 && grow(c) < 0))
        return;
    raw = malloc(n ? n : 1);
    if (zlen > 0 && (zc = malloc(zlen)) == NULL) {
        free(raw);
        return;
    }
    if (raw == NULL) {
        free(zc);
        return;
    }
    memcpy(raw, p, n);
    if (zlen > 0) {
        memcpy(zc, c->zbuf, zlen);
        *z = zc;
    }
    e = slot(c, h, level, p, n);
    *e = (struct zentry){.h = h, .level = level, .n = n, .zlen = zlen, .raw = raw, .z = zc};
    c->used++;
    c->bytes += n + zlen;
}

int ds_session_zcache_compress(ds_session_zcache_t *c, int level, const void *p, size_t n,
                               const uint8_t **z, size_t *zlen)
{
    uint64_t h = XXH3_64bits(p, n);
    const struct zentry *e = c->used ? slot(c, h, level, p, n) : NULL;

    if (e != NULL && e->raw != NULL) {
        c->hits++;
        *z = e->zlen ? e->z : NULL;
        *zlen = e->zlen;
        return 1;
    }
    c->misses++;
    *zlen = squeeze(c, level, p, n);
    *z = *zlen ? c->zbuf : NULL;
    admit(c, h, level, p, n, *zlen, z);
    return 0;
}

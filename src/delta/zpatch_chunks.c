/*
 * zpatch encoder, first pass: identical chunks become COPY ranges, so only
 * the rest goes through zstd's fine matcher. Both versions are cut by the
 * content-defined chunker (finer than the catalog's chunks: 4/16/64 KiB);
 * a target chunk whose XXH3-64 is in the basis index, and whose bytes are
 * equal (compared, never trusted), is copied; neighbouring copies that are
 * contiguous in the basis merge into one range. See src/delta/zpatch_int.h.
 */
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "distsync/chunker.h"
#include "distsync/error.h"
#include "zpatch_int.h"

#define BLOCK  (4u << 20) /* read size; a chunk never exceeds CH_MAX */
#define CH_MIN (4u << 10)
#define CH_AVG (16u << 10)
#define CH_MAX (64u << 10)

struct slot {
    uint64_t h, off; /* off + 1: 0 marks an empty slot */
    uint32_t len;
};

struct index {
    struct slot *t;
    size_t cap;       /* power of two */
    ds_sha256_t *sha; /* the basis bytes, in order (NULL: not hashed) */
};

typedef int (*chunk_fn)(void *ctx, uint64_t off, const uint8_t *p, uint32_t len);

int ds__zp_read_exact(const ds_delta_src_t *src, uint64_t off, uint8_t *buf, size_t len)
{
    while (len > 0) {
        long n = src->read(src->ctx, off, buf, len);

        if (n < 0)
            return (int)n;
        if (n == 0)
            return DS_ECHANGED; /* shorter than announced */
        buf += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

/* Calls fn for each chunk of src, in order; buf holds BLOCK + CH_MAX. */
static int for_each_chunk(const ds_delta_src_t *src, uint8_t *buf, chunk_fn fn, void *ctx)
{
    ds_chunker_params_t pr = {CH_MIN, CH_AVG, CH_MAX};
    ds_chunker_t ck;
    uint64_t base = 0, start = 0; /* file offsets of buf[0] and of the chunk in progress */
    size_t have = 0, pos = 0;     /* valid bytes in buf; next byte to scan */
    int rc = ds_chunker_init(&ck, &pr);

    while (rc == 0) {
        int cut = 0;
        size_t k;

        if (pos == have) { /* keep the chunk in progress (<= CH_MAX), refill */
            uint64_t off = base + pos;
            size_t keep = (size_t)(off - start);
            size_t n = src->size - off < BLOCK ? (size_t)(src->size - off) : BLOCK;

            if (n == 0)
                break;
            memmove(buf, buf + (pos - keep), keep);
            base = start;
            pos = have = keep;
            rc = ds__zp_read_exact(src, off, buf + have, n);
            have += n;
            continue;
        }
        k = ds_chunker_next(&ck, buf + pos, have - pos, &cut);
        pos += k;
        if (cut) {
            uint64_t end = base + pos;

            rc = fn(ctx, start, buf + (start - base), (uint32_t)(end - start));
            start = end;
        }
    }
    if (rc == 0 && base + pos > start)
        rc = fn(ctx, start, buf + (start - base), (uint32_t)(base + pos - start));
    return rc;
}

static int index_put(void *ctx, uint64_t off, const uint8_t *p, uint32_t len)
{
    struct index *ix = ctx;
    uint64_t h = XXH3_64bits(p, len);
    size_t i = (size_t)h & (ix->cap - 1);

    if (ix->sha)
        ds_sha256_update(ix->sha, p, len);
    while (ix->t[i].off != 0) {
        if (ix->t[i].h == h)
            return 0; /* keep the first */
        i = (i + 1) & (ix->cap - 1);
    }
    ix->t[i] = (struct slot){h, off + 1, len};
    return 0;
}

struct match {
    struct index *ix;
    const ds_delta_src_t *basis;
    ds_sha256_t *sha;
    uint8_t *cmp;
    ds_zp_span_t *v;
    size_t n, cap;
    uint64_t copied;
};

static int add_span(struct match *m, uint64_t toff, uint64_t len, int copy, uint64_t boff)
{
    ds_zp_span_t *l = m->n ? &m->v[m->n - 1] : NULL;

    if (l && l->copy == copy && l->toff + l->len == toff && (!copy || l->boff + l->len == boff)) {
        l->len += len;
        return 0;
    }
    if (m->n == m->cap) {
        size_t nc = m->cap ? 2 * m->cap : 256;
        ds_zp_span_t *nv = realloc(m->v, nc * sizeof(*nv));

        if (nv == NULL)
            return DS_ENOMEM;
        m->v = nv;
        m->cap = nc;
    }
    m->v[m->n++] = (ds_zp_span_t){toff, len, boff, copy};
    return 0;
}

static int match_chunk(void *ctx, uint64_t off, const uint8_t *p, uint32_t len)
{
    struct match *m = ctx;
    uint64_t h = XXH3_64bits(p, len);
    size_t i = (size_t)h & (m->ix->cap - 1);

    if (m->sha)
        ds_sha256_update(m->sha, p, len);
    while (m->ix->t[i].off != 0) {
        const struct slot *s = &m->ix->t[i];

        if (s->h == h && s->len == len) {
            int rc = ds__zp_read_exact(m->basis, s->off - 1, m->cmp, len);

            if (rc < 0)
                return rc;
            if (memcmp(m->cmp, p, len) != 0)
                break; /* a collision: send it through zstd */
            m->copied += len;
            return add_span(m, off, len, 1, s->off - 1);
        }
        i = (i + 1) & (m->ix->cap - 1);
    }
    return add_span(m, off, len, 0, 0);
}

int ds__zp_spans(const ds_delta_src_t *basis, const ds_delta_src_t *target, ds_sha256_t *bsha,
                 ds_sha256_t *tsha, ds_zp_span_t **spans, size_t *n, uint64_t *copied)
{
    struct index ix = {.sha = bsha};
    struct match m = {.ix = &ix, .basis = basis, .sha = tsha};
    uint8_t *buf = malloc(BLOCK + CH_MAX);
    int rc = DS_ENOMEM;

    *spans = NULL;
    *n = 0;
    *copied = 0;
    ix.cap = 1024;
    while (ix.cap < 2 * (basis->size / CH_MIN + 1))
        ix.cap *= 2;
    ix.t = calloc(ix.cap, sizeof(*ix.t));
    m.cmp = malloc(CH_MAX);
    if (buf == NULL || ix.t == NULL || m.cmp == NULL)
        goto out;
    rc = for_each_chunk(basis, buf, index_put, &ix);
    if (rc == 0)
        rc = for_each_chunk(target, buf, match_chunk, &m);
    if (rc == 0) {
        *spans = m.v;
        *n = m.n;
        *copied = m.copied;
        m.v = NULL;
    }
out:
    free(m.v);
    free(m.cmp);
    free(ix.t);
    free(buf);
    return rc;
}

/* --- from the catalog's chunk lists --- */

#define REC 20 /* XXH3-128, then the length (u32 LE): ds_delta_src_t chunks */

static uint32_t rec_len(const uint8_t *r)
{
    return (uint32_t)r[16] | (uint32_t)r[17] << 8 | (uint32_t)r[18] << 16 | (uint32_t)r[19] << 24;
}

static uint64_t rec_key(const uint8_t *r)
{
    uint64_t k;

    memcpy(&k, r, sizeof(k));
    return k;
}

/* 1 when src's list covers exactly its size. */
static int list_fits(const ds_delta_src_t *src)
{
    uint64_t sum = 0;

    for (size_t i = 0; src->chunks != NULL && i < src->nchunks; i++) {
        uint32_t len = rec_len(src->chunks + i * REC);

        if (len == 0)
            return 0;
        sum += len;
    }
    return src->chunks != NULL && sum == src->size;
}

/* Slot of the basis chunk with record r's hash and length, or of the
 * empty slot where it goes (t: basis record index + 1, 0 empty). */
static size_t known_slot(const size_t *t, size_t cap, const uint8_t *chunks, const uint8_t *r)
{
    size_t i = (size_t)rec_key(r) & (cap - 1);

    while (t[i] != 0 && memcmp(chunks + (t[i] - 1) * REC, r, REC) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

int ds__zp_spans_known(const ds_delta_src_t *basis, const ds_delta_src_t *target,
                       ds_zp_span_t **spans, size_t *n, uint64_t *copied)
{
    struct match m = {0};
    uint64_t *boff = NULL, off = 0;
    size_t cap = 1024, *t = NULL;
    int rc = 0;

    *spans = NULL;
    *n = 0;
    *copied = 0;
    if (!list_fits(basis) || !list_fits(target))
        return 1;
    while (cap < 2 * basis->nchunks)
        cap *= 2;
    t = calloc(cap, sizeof(*t));
    boff = malloc((basis->nchunks + 1) * sizeof(*boff));
    if (t == NULL || boff == NULL) {
        rc = DS_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < basis->nchunks; i++) {
        size_t k = known_slot(t, cap, basis->chunks, basis->chunks + i * REC);

        if (t[k] == 0)
            t[k] = i + 1; /* the first of equal chunks */
        boff[i] = off;
        off += rec_len(basis->chunks + i * REC);
    }
    off = 0;
    for (size_t i = 0; rc == 0 && i < target->nchunks; i++) {
        const uint8_t *r = target->chunks + i * REC;
        size_t k = known_slot(t, cap, basis->chunks, r);
        uint32_t len = rec_len(r);

        m.copied += t[k] ? len : 0;
        rc = add_span(&m, off, len, t[k] != 0, t[k] ? boff[t[k] - 1] : 0);
        off += len;
    }
    if (rc == 0) {
        *spans = m.v;
        *n = m.n;
        *copied = m.copied;
        m.v = NULL;
    }
out:
    free(m.v);
    free(boff);
    free(t);
    return rc;
}

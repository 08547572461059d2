/*
 * Sync state on the console: the catalog snapshot (desired files and which
 * store file provides each content), the planner's oracle over the catalog
 * and the retain store (retaining itself is in sync_retain.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "distsync/error.h"
#include "distsync/log.h"
#include "sync_int.h"

/* ---- memo: answers that hold for the whole batch ----
 *
 * Servers of a fan-out usually hold the same versions, so the planner asks
 * the same questions for each: the content id of a SHA-256 (a catalog
 * query), the best basis of a content among the same candidates (a chunk
 * index walk, the costliest part of a plan), whether a version is
 * retained. The catalog's contents and chunk index do not change while a
 * ds_sync_t lives (its desired set is a snapshot too), so those answers are
 * kept here, keyed by their exact inputs. Only positive retain answers are
 * kept (a version may be retained later in the batch); a gc resets it all.
 */

enum { MEMO_CONTENT = 'C', MEMO_BEST = 'B', MEMO_RETAINED = 'R' };

struct memo_slot {
    uint64_t h;
    uint8_t *key; /* NULL: empty slot */
    size_t klen;
    int64_t a;
    uint64_t b;
};

struct sync_memo {
    struct memo_slot *v;
    size_t cap, n; /* cap: a power of two */
};

static struct memo_slot *memo_find(struct sync_memo *m, const void *key, size_t klen, uint64_t h)
{
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        struct memo_slot *x = &m->v[i];

        if (x->key == NULL || (x->h == h && x->klen == klen && memcmp(x->key, key, klen) == 0))
            return x;
    }
}

static int memo_grow(struct sync_memo *m)
{
    struct sync_memo g = {.cap = m->cap ? m->cap * 2 : 256};

    g.v = calloc(g.cap, sizeof(*g.v));
    if (g.v == NULL)
        return DS_ENOMEM;
    for (size_t i = 0; i < m->cap; i++)
        if (m->v[i].key != NULL)
            *memo_find(&g, m->v[i].key, m->v[i].klen, m->v[i].h) = m->v[i];
    g.n = m->n;
    free(m->v);
    *m = g;
    return 0;
}

/* 1 with *a, *b set when key is known, else 0. */
static int memo_get(const ds_sync_t *s, const void *key, size_t klen, int64_t *a, uint64_t *b)
{
    const struct memo_slot *x;

    if (s->memo == NULL || s->memo->n == 0)
        return 0;
    x = memo_find(s->memo, key, klen, XXH3_64bits(key, klen));
    if (x->key == NULL)
        return 0;
    *a = x->a;
    if (b != NULL)
        *b = x->b;
    return 1;
}

/* Records key's answer; best effort (out of memory: not recorded). */
static void memo_put(ds_sync_t *s, const void *key, size_t klen, int64_t a, uint64_t b)
{
    uint64_t h = XXH3_64bits(key, klen);
    struct memo_slot *x;

    if (s->memo == NULL && (s->memo = calloc(1, sizeof(*s->memo))) == NULL)
        return;
    if ((s->memo->n + 1) * 4 > s->memo->cap * 3 && memo_grow(s->memo) < 0)
        return;
    x = memo_find(s->memo, key, klen, h);
    if (x->key == NULL) {
        if ((x->key = malloc(klen)) == NULL)
            return;
        memcpy(x->key, key, klen);
        x->klen = klen;
        x->h = h;
        s->memo->n++;
    }
    x->a = a;
    x->b = b;
}

void ds__sync_memo_reset(ds_sync_t *s)
{
    struct sync_memo *m = s->memo;

    for (size_t i = 0; m != NULL && i < m->cap; i++)
        free(m->v[i].key);
    if (m != NULL) {
        memset(m->v, 0, m->cap * sizeof(*m->v));
        m->n = 0;
    }
}

void ds__sync_memo_free(ds_sync_t *s)
{
    if (s == NULL || s->memo == NULL)
        return;
    ds__sync_memo_reset(s);
    free(s->memo->v);
    free(s->memo);
    s->memo = NULL;
}

/* A tagged SHA-256 key. */
static void sha_key(uint8_t k[1 + DS_SHA256_LEN], int tag, const uint8_t sha[DS_SHA256_LEN])
{
    k[0] = (uint8_t)tag;
    memcpy(k + 1, sha, DS_SHA256_LEN);
}

_Static_assert(DS_RETAIN_REC_LEN == DS_CATALOG_CHUNK_REC, "one packed chunk list format");

/* A version the catalog does not know but the retain store holds: the
 * catalog keeps content rows forever, so this means it was re-created
 * (catalog.db lost). Records the version's chunk list from the store so
 * that it serves as a delta basis again. Returns its content id, or 0. */
static int64_t relearn(ds_sync_t *s, const uint8_t sha[DS_SHA256_LEN])
{
    ds_retain_reader_t *rd = NULL;
    const uint8_t *chunks;
    int64_t id = 0;
    size_t n;

    if (s->ret == NULL || ds__sync_retained(s, sha) != 1 ||
        ds_retain_open_version(s->ret, sha, 0, &rd) < 0)
        return 0;
    chunks = ds_retain_reader_chunks(rd, &n);
    if (n > UINT32_MAX || ds_catalog_content_put(s->cat, sha, ds_retain_reader_size(rd), chunks,
                                                 (uint32_t)n, &id, NULL) < 0)
        id = 0;
    ds_retain_reader_free(rd);
    return id;
}

int64_t ds__sync_content_id(ds_sync_t *s, const uint8_t sha[DS_SHA256_LEN])
{
    uint8_t k[1 + DS_SHA256_LEN];
    int64_t id = 0;
    int rc;

    sha_key(k, MEMO_CONTENT, sha);
    if (memo_get(s, k, sizeof(k), &id, NULL))
        return id;
    rc = ds_catalog_content_find(s->cat, sha, &id);
    if (rc == DS_ENOTFOUND) {
        id = relearn(s, sha);
        rc = 0;
    }
    if (rc == 0)
        memo_put(s, k, sizeof(k), id, 0);
    return rc == 0 ? id : 0;
}

int ds__sync_retained(ds_sync_t *s, const uint8_t sha[DS_SHA256_LEN])
{
    uint8_t k[1 + DS_SHA256_LEN];
    int64_t a;
    int rc;

    sha_key(k, MEMO_RETAINED, sha);
    if (memo_get(s, k, sizeof(k), &a, NULL))
        return 1;
    rc = ds_retain_has(s->ret, sha);
    if (rc == 1)
        memo_put(s, k, sizeof(k), 1, 0);
    return rc;
}

int ds__sync_retained_peek(ds_sync_t *s, const uint8_t sha[DS_SHA256_LEN])
{
    uint8_t k[1 + DS_SHA256_LEN];
    int64_t a;

    sha_key(k, MEMO_RETAINED, sha);
    return memo_get(s, k, sizeof(k), &a, NULL) ? 1 : ds_retain_has(s->ret, sha);
}

void ds__sync_note_retained(ds_sync_t *s, const uint8_t sha[DS_SHA256_LEN])
{
    uint8_t k[1 + DS_SHA256_LEN];

    sha_key(k, MEMO_RETAINED, sha);
    memo_put(s, k, sizeof(k), 1, 0);
}

static int cmp_content(const void *a, const void *b)
{
    int64_t x = (*(struct sfile_row *const *)a)->content_id;
    int64_t y = (*(struct sfile_row *const *)b)->content_id;

    return x < y ? -1 : x > y;
}

static int add_row(ds_sync_t *s, const ds_file_row_t *r, size_t *cap)
{
    struct sfile_row *x;

    if (s->nrows == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        void *p = realloc(s->rows, nc * sizeof(*s->rows));

        if (p == NULL)
            return DS_ENOMEM;
        s->rows = p;
        *cap = nc;
    }
    x = &s->rows[s->nrows];
    x->path = strdup(r->path);
    x->klass = strdup(r->klass);
    if (x->path == NULL || x->klass == NULL) {
        free(x->path);
        free(x->klass);
        return DS_ENOMEM;
    }
    x->src = NULL;
    x->gone = 0;
    x->stale = s->pin_gen > 0 && r->id == 0; /* a pinned load's version moved on */
    x->size = r->size;
    x->mtime_ns = r->mtime_ns;
    x->content_id = r->content_id;
    memcpy(x->sha256, r->sha256, DS_SHA256_LEN);
    s->nrows++;
    return 0;
}

/* The rows of the snapshot: the newest scan's, or a pinned generation's
 * (whose versions the store no longer holds get their source then). */
static int load_rows(ds_sync_t *s)
{
    ds_catalog_cursor_t *cur = NULL;
    size_t cap = 0;
    ds_file_row_t r;
    int rc = s->pin_gen > 0 ? ds_catalog_cursor_open_gen(s->cat, "", s->pin_gen, &cur)
                            : ds_catalog_cursor_open(s->cat, "", &cur);

    while (rc == 0 && (rc = ds_catalog_cursor_next(cur, &r)) == 1)
        rc = (r.has_sha && r.content_id > 0) || r.content_id == 0 ? add_row(s, &r, &cap) : 0;
    ds_catalog_cursor_free(cur);
    if (rc == 0 && s->pin_gen > 0)
        rc = ds__sync_pin_sources(s);
    return rc;
}

int ds__sync_load(ds_sync_t *s)
{
    size_t n = 0;
    int rc;

    if (s->loaded)
        return 0;
    if ((rc = load_rows(s)) < 0)
        return rc;
    s->by_content = malloc((s->nrows + 1) * sizeof(*s->by_content));
    if (s->by_content == NULL)
        return DS_ENOMEM;
    for (size_t i = 0; i < s->nrows; i++)
        if (!s->rows[i].gone) /* no bytes: never a source */
            s->by_content[n++] = &s->rows[i];
    s->nby_content = n;
    qsort(s->by_content, n, sizeof(*s->by_content), cmp_content);
    s->loaded = 1;
    return 0;
}

void ds__sync_snapshot_reset(ds_sync_t *s)
{
    for (size_t i = 0; i < s->nrows; i++) {
        free(s->rows[i].path);
        free(s->rows[i].klass);
        ds__sync_pin_drop(&s->rows[i]);
    }
    free(s->rows);
    free(s->by_content);
    s->rows = NULL;
    s->by_content = NULL;
    s->nrows = s->nby_content = 0;
    s->loaded = 0;
    ds__sync_memo_reset(s); /* content ids and bases may have changed */
}

const struct sfile_row *ds__sync_row_by_content(const ds_sync_t *s, int64_t id)
{
    struct sfile_row k = {.content_id = id}, *kp = &k;
    struct sfile_row *const *r;

    if (id <= 0 || s->by_content == NULL)
        return NULL;
    r = bsearch(&kp, s->by_content, s->nby_content, sizeof(*s->by_content), cmp_content);
    return r ? *r : NULL;
}

static int cmp_path(const void *key, const void *row)
{
    return strcmp(key, ((const struct sfile_row *)row)->path);
}

const struct sfile_row *ds__sync_row_by_path(const ds_sync_t *s, const char *path)
{
    if (s->rows == NULL)
        return NULL;
    return bsearch(path, s->rows, s->nrows, sizeof(*s->rows), cmp_path); /* in path order */
}

/* ---- oracle ---- */

static int64_t o_content_id(void *ctx, const uint8_t sha[DS_SHA256_LEN])
{
    return ds__sync_content_id(ctx, sha);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* ds_catalog_best_basis() depends on the candidate set only (not on its
 * order or repeats): the memo key is the content id and the sorted,
 * deduplicated candidates. */
static int o_best(void *ctx, int64_t content_id, const int64_t *cand, size_t n, int64_t *best,
                  uint64_t *shared)
{
    ds_sync_t *s = ctx;
    int64_t *k = malloc((n + 2) * sizeof(*k));
    size_t m = 0;
    int rc;

    if (k == NULL)
        return ds_catalog_best_basis(s->cat, content_id, cand, n, best, shared);
    k[0] = MEMO_BEST;
    k[1] = content_id;
    memcpy(k + 2, cand, n * sizeof(*k));
    qsort(k + 2, n, sizeof(*k), cmp_i64);
    for (size_t i = 0; i < n; i++)
        if (m == 0 || k[2 + m - 1] != k[2 + i])
            k[2 + m++] = k[2 + i];
    if (memo_get(s, k, (m + 2) * sizeof(*k), best, shared)) {
        free(k);
        return 0;
    }
    rc = ds_catalog_best_basis(s->cat, content_id, cand, n, best, shared);
    if (rc == 0)
        memo_put(s, k, (m + 2) * sizeof(*k), *best, *shared);
    free(k);
    return rc;
}

static int o_readable(void *ctx, const uint8_t sha[DS_SHA256_LEN])
{
    ds_sync_t *s = ctx;

    if (ds__sync_row_by_content(s, ds__sync_content_id(s, sha)) != NULL)
        return 1;
    return s->ret != NULL && ds__sync_retained(s, sha) == 1;
}

void ds__sync_oracle(ds_sync_t *s, ds_plan_oracle_t *o)
{
    o->content_id = o_content_id;
    o->best_basis = o_best;
    o->readable = o_readable;
    o->ctx = s;
}

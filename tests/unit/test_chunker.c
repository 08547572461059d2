/* Unit tests for the content-defined chunker (src/store/chunker.c). */
#include "check.h"

#include "distsync/chunker.h"
#include "distsync/digest.h"
#include "distsync/error.h"

#define MAX_CUTS (1u << 20)

static const ds_chunker_params_t small = {64, 256, 1024};

/* Test data PRNG: splitmix64 (Steele, Lea, Flood), bytes little-endian. */
static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint8_t *random_buf(size_t len, uint64_t seed)
{
    uint8_t *p = malloc(len ? len : 1);

    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(splitmix64(&seed) >> 56);
    return p;
}

/* Cut offsets (chunk ends, the last one = len) of buf fed in pieces: each
 * piece is `piece` bytes, or random 1..piece bytes if rng is not NULL. */
struct cuts {
    size_t n;
    uint64_t *end;
};

static void chunk_split(const ds_chunker_params_t *prm, const uint8_t *buf, size_t len,
                        size_t piece, uint64_t *rng, struct cuts *out)
{
    ds_chunker_t c;
    size_t off = 0;
    uint64_t total = 0;
    int cut;

    out->n = 0;
    if (ds_chunker_init(&c, prm) != 0)
        abort();
    while (off < len) {
        size_t want = rng ? 1 + splitmix64(rng) % piece : piece;
        size_t end = len - off < want ? len : off + want;

        while (off < end) {
            size_t k = ds_chunker_next(&c, buf + off, end - off, &cut);

            off += k;
            total += k;
            if (cut)
                out->end[out->n++] = total;
        }
    }
    if (c.pos > 0)
        out->end[out->n++] = total;
}

static void chunk_all(const ds_chunker_params_t *prm, const uint8_t *buf, size_t len,
                      struct cuts *out)
{
    chunk_split(prm, buf, len, len ? len : 1, NULL, out);
}

static struct cuts cuts_new(void)
{
    struct cuts c = {0, malloc(MAX_CUTS * sizeof(uint64_t))};

    return c;
}

static int cuts_equal(const struct cuts *a, const struct cuts *b)
{
    return a->n == b->n && memcmp(a->end, b->end, a->n * sizeof(uint64_t)) == 0;
}

static int has_cut(const struct cuts *c, uint64_t off)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->end[i] == off)
            return 1;
    return 0;
}

static void test_params(void)
{
    ds_chunker_t c;
    ds_chunker_params_t p;

    CHECK_INT(ds_chunker_init(&c, NULL), 0);
    CHECK_INT(c.avg_size, DS_CHUNK_AVG_DEFAULT);
    CHECK_INT(ds_chunker_init(&c, &small), 0);
    p = (ds_chunker_params_t){64, 64, 64};
    CHECK_INT(ds_chunker_init(&c, &p), 0);
    p = (ds_chunker_params_t){1024, 3000, 8192}; /* avg not a power of two */
    CHECK_INT(ds_chunker_init(&c, &p), DS_ERANGE);
    p = (ds_chunker_params_t){8192, 4096, 16384}; /* min > avg */
    CHECK_INT(ds_chunker_init(&c, &p), DS_ERANGE);
    p = (ds_chunker_params_t){1024, 4096, 2048}; /* avg > max */
    CHECK_INT(ds_chunker_init(&c, &p), DS_ERANGE);
    p = (ds_chunker_params_t){1024, 4096, DS_CHUNK_MAX_LIMIT + 1};
    CHECK_INT(ds_chunker_init(&c, &p), DS_ERANGE);
    p = (ds_chunker_params_t){DS_CHUNK_MIN_LIMIT - 1, 4096, 8192};
    CHECK_INT(ds_chunker_init(&c, &p), DS_ERANGE);
    p = (ds_chunker_params_t){0, 0, 0};
    CHECK_INT(ds_chunker_init(&c, &p), DS_ERANGE);
}

/* The gear table is the documented splitmix64 sequence. */
static void test_gear_table(void)
{
    const uint64_t *g = ds__chunker_gear();
    uint64_t s = 0x6469737473796e63ULL; /* "distsync" */
    int bad = 0;

    for (int i = 0; i < 256; i++)
        bad += g[i] != splitmix64(&s);
    CHECK_INT(bad, 0);
}

/* The documented rule, computed naively: the hash of the 64 bytes ending at
 * each candidate position, recomputed from scratch. */
static int ref_is_cut(const ds_chunker_params_t *p, const uint8_t *buf, uint64_t start, uint64_t L)
{
    const uint64_t *g = ds__chunker_gear();
    unsigned bits = 0;
    uint64_t h = 0, mask;

    while ((1u << bits) < p->avg_size)
        bits++;
    if (L == p->max_size)
        return 1;
    if (L < p->min_size)
        return 0;
    for (uint64_t j = start + L - 64; j < start + L; j++)
        h = (h << 1) + g[buf[j]];
    mask = ~0ULL << (64 - (L <= p->avg_size ? bits + 2 : bits - 2));
    return (h & mask) == 0;
}

static void ref_cuts(const ds_chunker_params_t *p, const uint8_t *buf, size_t len, struct cuts *out)
{
    uint64_t start = 0;

    out->n = 0;
    while (start < len) {
        uint64_t L = 1;

        while (start + L < len && !ref_is_cut(p, buf, start, L))
            L++;
        start += L;
        out->end[out->n++] = start;
    }
}

static void test_reference(void)
{
    size_t len = 2u << 20;
    uint8_t *buf = random_buf(len, 5);
    struct cuts fast = cuts_new(), ref = cuts_new();
    ds_chunker_params_t def = {DS_CHUNK_MIN_DEFAULT, DS_CHUNK_AVG_DEFAULT, DS_CHUNK_MAX_DEFAULT};
    ds_chunker_params_t tight = {64, 64, 128}, strict_only = {128, 512, 512};
    const ds_chunker_params_t *prm[] = {&def, &small, &tight, &strict_only};

    for (int k = 0; k < 4; k++) {
        chunk_all(prm[k], buf, len, &fast);
        ref_cuts(prm[k], buf, len, &ref);
        CHECK(fast.n > 2);
        CHECK(cuts_equal(&fast, &ref));
    }
    free(fast.end);
    free(ref.end);
    free(buf);
}

/* Sizes within [min, max] except the last chunk; mean within 0.5x..2x avg. */
static void check_sizes(const ds_chunker_params_t *p, const uint8_t *buf, size_t len)
{
    struct cuts c = cuts_new();
    uint64_t prev = 0;
    int bad = 0;

    chunk_all(p, buf, len, &c);
    CHECK(c.n > 1);
    CHECK_INT(c.end[c.n - 1], len);
    for (size_t i = 0; i + 1 < c.n; i++) {
        uint64_t sz = c.end[i] - prev;

        bad += sz < p->min_size || sz > p->max_size;
        prev = c.end[i];
    }
    CHECK_INT(bad, 0);
    CHECK(c.end[c.n - 1] - prev <= p->max_size);
    CHECK(len / c.n >= p->avg_size / 2 && len / c.n <= p->avg_size * 2);
    free(c.end);
}

static void test_sizes_and_mean(void)
{
    size_t len = 8u << 20;
    uint8_t *buf = random_buf(len, 1);
    ds_chunker_params_t def = {DS_CHUNK_MIN_DEFAULT, DS_CHUNK_AVG_DEFAULT, DS_CHUNK_MAX_DEFAULT};
    ds_chunker_params_t wide = {1024, 8192, 16384};

    check_sizes(&def, buf, len);
    check_sizes(&small, buf, len);
    check_sizes(&wide, buf, len);
    free(buf);
}

/* All-zero input never matches a mask: every chunk is max_size. */
static void test_zero_buffer(void)
{
    size_t len = (1u << 20) + 100;
    uint8_t *buf = calloc(1, len);
    struct cuts c = cuts_new();

    chunk_all(NULL, buf, len, &c);
    CHECK_INT(c.n, 5);
    for (size_t i = 0; i < 4; i++)
        CHECK_INT(c.end[i], (i + 1) * DS_CHUNK_MAX_DEFAULT);
    CHECK_INT(c.end[4], len);
    free(c.end);
    free(buf);
}

/* Random splits and 1-byte feeding give the one-shot cut points. */
static void test_streaming(void)
{
    size_t len = 2u << 20;
    uint8_t *buf = random_buf(len, 2);
    struct cuts one = cuts_new(), split = cuts_new();
    uint64_t rng = 42;
    int bad = 0;
    const ds_chunker_params_t *prm[] = {NULL, &small};

    for (int k = 0; k < 2; k++) {
        chunk_all(prm[k], buf, len, &one);
        CHECK(one.n > 10);
        for (int it = 0; it < 50; it++) {
            size_t maxpiece = it % 2 ? 300 : 70000;

            chunk_split(prm[k], buf, len, maxpiece, &rng, &split);
            bad += !cuts_equal(&one, &split);
        }
        chunk_split(prm[k], buf, len, 1, NULL, &split);
        CHECK(cuts_equal(&one, &split));
        chunk_split(prm[k], buf, len, 63, NULL, &split);
        CHECK(cuts_equal(&one, &split));
    }
    CHECK_INT(bad, 0);
    free(one.end);
    free(split.end);
    free(buf);
}

/* Every single split point of a small stream, skipped region included. */
static void test_every_split(void)
{
    size_t len = 6000;
    uint8_t *buf = random_buf(len, 3);
    struct cuts one = cuts_new(), two = cuts_new();
    ds_chunker_t c;
    int bad = 0, cut;

    chunk_all(&small, buf, len, &one);
    CHECK(one.n > 5);
    for (size_t s = 0; s <= len; s++) {
        size_t off = 0;

        CHECK_INT(ds_chunker_init(&c, &small), 0);
        two.n = 0;
        while (off < len) {
            size_t end = off < s ? s : len;

            off += ds_chunker_next(&c, buf + off, end - off, &cut);
            if (cut)
                two.end[two.n++] = off;
        }
        if (c.pos > 0)
            two.end[two.n++] = off;
        bad += !cuts_equal(&one, &two);
    }
    CHECK_INT(bad, 0);
    free(one.end);
    free(two.end);
    free(buf);
}

/* A cut at the very end of a buffer is reported, and the state is reset. */
static void test_cut_at_buffer_end(void)
{
    uint8_t *buf = calloc(1, 2048);
    ds_chunker_t c;
    int cut = -1;

    CHECK_INT(ds_chunker_init(&c, &small), 0);
    CHECK_INT(ds_chunker_next(&c, buf, 1000, &cut), 1000);
    CHECK_INT(cut, 0);
    CHECK_INT(c.pos, 1000);
    CHECK_INT(ds_chunker_next(&c, buf, 24, &cut), 24);
    CHECK_INT(cut, 1);
    CHECK_INT(c.pos, 0);
    CHECK_INT(ds_chunker_next(&c, buf, 0, &cut), 0);
    CHECK_INT(cut, 0);
    ds_chunker_next(&c, buf, 10, &cut);
    ds_chunker_reset(&c);
    CHECK_INT(c.pos, 0);
    free(buf);
}

/* Inserting bytes early changes only the chunks around the edit. */
static void test_insertion_locality(void)
{
    size_t len = 8u << 20, at = 100000, ins = 7;
    uint8_t *a = random_buf(len, 4), *b = malloc(len + ins);
    struct cuts ca = cuts_new(), cb = cuts_new();
    uint8_t(*ha)[DS_XXH128_LEN], (*hb)[DS_XXH128_LEN];
    size_t lost = 0, moved = 0, prev = 0;

    memcpy(b, a, at);
    memcpy(b + at, "INSERT!", ins);
    memcpy(b + at + ins, a + at, len - at);
    chunk_all(NULL, a, len, &ca);
    chunk_all(NULL, b, len + ins, &cb);
    CHECK(ca.n > 64);
    ha = malloc(ca.n * sizeof(*ha));
    hb = malloc(cb.n * sizeof(*hb));
    for (size_t i = 0; i < ca.n; prev = ca.end[i++])
        ds_xxh128(a + prev, ca.end[i] - prev, ha[i]);
    prev = 0;
    for (size_t i = 0; i < cb.n; prev = cb.end[i++])
        ds_xxh128(b + prev, cb.end[i] - prev, hb[i]);
    for (size_t i = 0; i < ca.n; i++) {
        int found = 0;

        for (size_t j = 0; j < cb.n && !found; j++)
            found = memcmp(ha[i], hb[j], DS_XXH128_LEN) == 0;
        lost += !found;
        /* Boundaries: same before the edit, shifted by ins after it. */
        moved += !has_cut(&cb, ca.end[i] < at ? ca.end[i] : ca.end[i] + ins);
    }
    CHECK(lost >= 1 && lost <= 2);
    CHECK(moved <= 2);
    CHECK(cb.n >= ca.n - 2 && cb.n <= ca.n + 2);
    free(ha);
    free(hb);
    free(ca.end);
    free(cb.end);
    free(a);
    free(b);
}

/* Cut points of fixed inputs, pinned: they are the identity of every stored
 * chunk. If this fails, the gear table or the cut rule changed. */
static void pin(const ds_chunker_params_t *p, size_t len, uint64_t seed, const char *want)
{
    uint8_t *buf = random_buf(len, seed), d[DS_XXH128_LEN];
    struct cuts c = cuts_new();
    char hex[2 * DS_XXH128_LEN + 1];
    uint8_t le[8], *ser;

    chunk_all(p, buf, len, &c);
    ser = malloc(c.n * 8);
    for (size_t i = 0; i < c.n; i++) {
        for (int k = 0; k < 8; k++)
            le[k] = (uint8_t)(c.end[i] >> (8 * k));
        memcpy(ser + 8 * i, le, 8);
    }
    ds_xxh128(ser, c.n * 8, d);
    ds_hex(d, sizeof(d), hex);
    printf("     pinned cuts n=%zu xxh128=%s\n", c.n, hex);
    CHECK_STR(hex, want);
    free(ser);
    free(c.end);
    free(buf);
}

static void test_pinned_cut_points(void)
{
    pin(NULL, 16u << 20, 0x5eed, "bafa1792cbe82e8c0af8221fff1091f0");
    pin(&small, 1u << 20, 0x5eed, "a584e57be342461f9bfe24b5535f6a9b");
}

int main(void)
{
    RUN(test_params);
    RUN(test_gear_table);
    RUN(test_reference);
    RUN(test_sizes_and_mean);
    RUN(test_zero_buffer);
    RUN(test_streaming);
    RUN(test_every_split);
    RUN(test_cut_at_buffer_end);
    RUN(test_insertion_locality);
    RUN(test_pinned_cut_points);
    return CHECK_DONE();
}

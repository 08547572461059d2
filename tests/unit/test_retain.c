/* Unit tests for the retained-version chunk store (src/store/retain.c). */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include <sqlite3.h>

/* check.h's check_tmpdir() trips gcc 12's -Wformat-truncation at -O2. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include "check.h"
#include "distsync/chunker.h"
#include "distsync/digest.h"
#include "distsync/catalog.h"
#include "distsync/config.h"
#include "distsync/error.h"
#include "distsync/events.h"
#include "distsync/gc.h"
#include "distsync/retain.h"

static const ds_chunker_params_t small_chunks = {2048, 8192, 32768};

struct version {
    uint8_t *data;
    size_t size;
    uint8_t sha[DS_SHA256_LEN];
    uint8_t *chunks; /* packed records */
    size_t n;
    int fd;
};

static uint64_t rng = 88172645463325252ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)next_rand();
}

/* Fills p with compressible, text-like bytes. */
static void fill_text(uint8_t *p, size_t n)
{
    static const char *words[] = {"alpha ",  "signature ", "engine ", "definition\n",
                                  "update ", "0x7f3a ",    "virus ",  "patch "};

    for (size_t i = 0; i < n;) {
        const char *w = words[next_rand() % 8];

        for (size_t j = 0; w[j] && i < n; j++)
            p[i++] = (uint8_t)w[j];
    }
}

/* Chunks, hashes and writes v->data to dir/name; keeps the fd open. */
static void version_make(struct version *v, const char *dir, const char *name)
{
    ds_chunker_t ck;
    char path[4200];
    size_t pos = 0, start = 0, cap = 64;
    int cut;

    v->chunks = malloc(cap * DS_RETAIN_REC_LEN);
    v->n = 0;
    CHECK_INT(ds_chunker_init(&ck, &small_chunks), 0);
    while (pos <= v->size) {
        size_t used = ds_chunker_next(&ck, v->data + pos, v->size - pos, &cut);

        pos += used;
        if (!cut && pos < v->size)
            continue;
        if (pos > start) {
            uint8_t *rec;
            uint32_t len = (uint32_t)(pos - start);

            if (v->n == cap)
                v->chunks = realloc(v->chunks, (cap *= 2) * DS_RETAIN_REC_LEN);
            rec = v->chunks + v->n++ * DS_RETAIN_REC_LEN;
            ds_xxh128(v->data + start, len, rec);
            for (int k = 0; k < 4; k++)
                rec[16 + k] = (uint8_t)(len >> (8 * k));
        }
        start = pos;
        if (!cut)
            break;
    }
    CHECK_INT(ds_sha256(v->data, v->size, v->sha), 0);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    v->fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(v->fd >= 0);
    CHECK(write(v->fd, v->data, v->size) == (ssize_t)v->size);
}

/* v->size random bytes, made into dir/name (version_make). */
static void random_version(struct version *v, const char *dir, const char *name)
{
    v->data = malloc(v->size);
    fill_random(v->data, v->size);
    version_make(v, dir, name);
}

static void version_free(struct version *v)
{
    free(v->data);
    free(v->chunks);
    if (v->fd >= 0)
        close(v->fd);
}

/* The edit pattern: two 4 KiB overwrites, a 1 KiB insertion and a
 * 512 B deletion. Returns a new buffer in *out. */
static size_t edit(const uint8_t *src, size_t n, uint8_t **out)
{
    uint8_t *d = malloc(n + 1024);
    size_t a = n / 5, b = 2 * n / 5, ins = 3 * n / 5, del = 4 * n / 5;

    memcpy(d, src, ins);
    fill_random(d + a, 4096);
    fill_random(d + b, 4096);
    fill_random(d + ins, 1024);
    memcpy(d + ins + 1024, src + ins, del - ins);
    memcpy(d + ins + 1024 + (del - ins), src + del + 512, n - del - 512);
    *out = d;
    return n + 1024 - 512;
}

static int put(ds_retain_t *r, struct version *v, int flags)
{
    return ds_retain_put(r, v->fd, v->sha, v->size, v->chunks, v->n, flags);
}

/* Reads [off, off+len) through the reader and compares with v. */
static int range_ok(ds_retain_reader_t *rd, const struct version *v, uint64_t off, size_t len)
{
    uint8_t *buf = malloc(len + 1);
    size_t want = off >= v->size ? 0 : (len < v->size - off ? len : v->size - off);
    long n = ds_retain_read(rd, off, buf, len);
    int ok = n == (long)want && (want == 0 || memcmp(buf, v->data + off, want) == 0);

    free(buf);
    return ok;
}

static void test_roundtrip(void)
{
    const char *dir = check_tmpdir("retain_rt");
    struct version v = {.size = 3 * 1024 * 1024 + 77};
    ds_retain_t *r = NULL;
    ds_retain_reader_t *rd = NULL;
    ds_retain_usage_t u1, u2;
    uint64_t off = 0;

    v.data = malloc(v.size);
    fill_random(v.data, v.size);
    version_make(&v, dir, "v");
    CHECK_INT(ds_retain_open(dir, &r), 0);
    CHECK_INT(ds_retain_has(r, v.sha), 0);
    CHECK_INT(put(r, &v, DS_RETAIN_PUT_VERIFY), 0);
    CHECK_INT(ds_retain_has(r, v.sha), 1);
    CHECK_INT(ds_retain_usage(r, &u1), 0);
    CHECK_INT(put(r, &v, 0), 0); /* idempotent */
    CHECK_INT(ds_retain_usage(r, &u2), 0);
    CHECK_INT(u2.versions, 1);
    CHECK_INT(u2.stored_bytes, u1.stored_bytes);
    CHECK_INT(u2.logical_bytes, v.size);
    CHECK_INT(ds_retain_open_version(r, v.sha, 0, &rd), 0);
    CHECK_INT(ds_retain_reader_size(rd), v.size);
    for (size_t i = 0; rd && i < v.n; i++) {
        off += (uint32_t)(v.chunks[i * 20 + 16] | v.chunks[i * 20 + 17] << 8 |
                          v.chunks[i * 20 + 18] << 16);
        CHECK(range_ok(rd, &v, off - 1, 2));       /* across a boundary */
        CHECK(range_ok(rd, &v, off, 1));           /* at a boundary */
        CHECK(range_ok(rd, &v, off - 100, 70000)); /* over several chunks */
    }
    for (int i = 0; rd && i < 200; i++)
        CHECK(range_ok(rd, &v, next_rand() % v.size, 1 + next_rand() % 100000));
    CHECK(rd && range_ok(rd, &v, 0, v.size + 10));
    CHECK(rd && range_ok(rd, &v, v.size, 10));
    ds_retain_reader_free(rd);
    CHECK_INT(ds_retain_verify(r, v.sha), 0);
    ds_retain_close(r);
    /* Reopen: the data persisted. */
    CHECK_INT(ds_retain_open(dir, &r), 0);
    CHECK_INT(ds_retain_verify(r, v.sha), 0);
    ds_retain_close(r);
    version_free(&v);
}

static void test_dedup(void)
{
    const char *dir = check_tmpdir("retain_dedup");
    struct version v1 = {.size = 8 * 1024 * 1024}, v2 = {0}, t = {.size = 2 * 1024 * 1024};
    ds_retain_t *r = NULL;
    ds_retain_usage_t u0, u1, u2;

    v1.data = malloc(v1.size);
    fill_random(v1.data, v1.size);
    v2.size = edit(v1.data, v1.size, &v2.data);
    version_make(&v1, dir, "v1");
    version_make(&v2, dir, "v2");
    CHECK_INT(ds_retain_open(dir, &r), 0);
    CHECK_INT(ds_retain_usage(r, &u0), 0);
    CHECK_INT(put(r, &v1, 0), 0);
    CHECK_INT(ds_retain_usage(r, &u1), 0);
    CHECK_INT(put(r, &v2, 0), 0);
    CHECK_INT(ds_retain_usage(r, &u2), 0);
    printf("     dedup: v1 %zu B stored %llu B; + v2 (4 edits, %zu chunks) stored +%llu B\n",
           v1.size, (unsigned long long)(u1.stored_bytes - u0.stored_bytes), v2.n,
           (unsigned long long)(u2.stored_bytes - u1.stored_bytes));
    /* Each edit dirties one or two 8 KiB-average chunks (max 32 KiB). */
    CHECK(u2.stored_bytes - u1.stored_bytes <= 8 * 32768);
    CHECK(u2.stored_bytes - u1.stored_bytes >= 9216);
    CHECK_INT(u2.logical_bytes, v1.size + v2.size);
    CHECK_INT(ds_retain_verify(r, v1.sha), 0);
    CHECK_INT(ds_retain_verify(r, v2.sha), 0);
    /* Compressible content is stored compressed. */
    t.data = malloc(t.size);
    fill_text(t.data, t.size);
    version_make(&t, dir, "t");
    CHECK_INT(put(r, &t, DS_RETAIN_PUT_VERIFY), 0);
    CHECK_INT(ds_retain_usage(r, &u1), 0);
    printf("     text: %zu B stored as %llu B\n", t.size,
           (unsigned long long)(u1.stored_bytes - u2.stored_bytes));
    CHECK(u1.stored_bytes - u2.stored_bytes < t.size / 3);
    CHECK_INT(ds_retain_verify(r, t.sha), 0);
    ds_retain_close(r);
    version_free(&v1);
    version_free(&v2);
    version_free(&t);
}

static size_t distinct_chunks(const struct version *v)
{
    size_t n = 0;

    for (size_t i = 0; i < v->n; i++) {
        int seen = 0;

        for (size_t j = 0; j < i && !seen; j++)
            seen = memcmp(v->chunks + i * 20, v->chunks + j * 20, 16) == 0;
        n += !seen;
    }
    return n;
}

static void test_gc(void)
{
    const char *dir = check_tmpdir("retain_gc");
    struct version v1 = {.size = 1024 * 1024}, v2 = {0}, v3 = {.size = 300000};
    ds_retain_t *r = NULL;
    ds_retain_usage_t before, after;
    uint64_t freed = 1;
    uint8_t keep[2 * DS_SHA256_LEN];

    random_version(&v1, dir, "v1");
    v2.size = edit(v1.data, v1.size, &v2.data);
    version_make(&v2, dir, "v2");
    random_version(&v3, dir, "v3");
    CHECK_INT(ds_retain_open(dir, &r), 0);
    CHECK_INT(put(r, &v1, 0), 0);
    CHECK_INT(put(r, &v2, 0), 0);
    CHECK_INT(put(r, &v3, 0), 0);
    CHECK_INT(ds_retain_usage(r, &before), 0);
    /* Keep v2 and an unknown digest. */
    memcpy(keep, v2.sha, DS_SHA256_LEN);
    memset(keep + DS_SHA256_LEN, 0xab, DS_SHA256_LEN);
    /* A dry run says what the gc frees and changes nothing. */
    {
        uint64_t would = 0;
        ds_retain_usage_t same;

        CHECK_INT(ds_retain_gc_ex(r, keep, 2, DS_RETAIN_GC_DRY_RUN, &would), 0);
        CHECK_INT(ds_retain_usage(r, &same), 0);
        CHECK_INT(same.versions, before.versions);
        CHECK_INT(same.stored_bytes, before.stored_bytes);
        CHECK_INT(ds_retain_has(r, v1.sha), 1);
        CHECK_INT(ds_retain_gc(r, keep, 2, &freed), 0);
        CHECK_INT(freed, would);
    }
    CHECK_INT(ds_retain_usage(r, &after), 0);
    CHECK_INT(after.versions, 1);
    CHECK_INT(after.chunks, distinct_chunks(&v2));
    CHECK_INT(after.unique_bytes, v2.size);
    CHECK_INT(freed, before.stored_bytes - after.stored_bytes);
    CHECK(freed > v3.size);
    CHECK_INT(ds_retain_has(r, v1.sha), 0);
    CHECK_INT(ds_retain_has(r, v3.sha), 0);
    CHECK_INT(ds_retain_verify(r, v2.sha), 0);
    CHECK_INT(ds_retain_verify(r, v1.sha), DS_ENOTFOUND);
    /* Same keep set again: nothing to free. */
    CHECK_INT(ds_retain_gc(r, keep, 1, &freed), 0);
    CHECK_INT(freed, 0);
    /* Empty keep set: everything goes. */
    CHECK_INT(ds_retain_gc(r, NULL, 0, &freed), 0);
    CHECK_INT(freed, after.stored_bytes);
    CHECK_INT(ds_retain_usage(r, &after), 0);
    CHECK_INT(after.versions + after.chunks + after.stored_bytes, 0);
    ds_retain_close(r);
    version_free(&v1);
    version_free(&v2);
    version_free(&v3);
}

static uint64_t db_size(const char *dir)
{
    char path[4200];
    struct stat st;

    snprintf(path, sizeof(path), "%s/retain.db", dir);
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* A gc that frees a small part of the store leaves the pages free for the
 * next versions retained (the file keeps its size and does not grow when
 * they come); one asked to shrink (distsync gc), or that frees a quarter
 * or more, gives the space back. */
static void test_gc_reclaim(void)
{
    const char *dir = check_tmpdir("retain_gc_reclaim");
    struct version v1 = {.size = 4u << 20}, v3 = {.size = 300000}, v4 = {.size = 300000};
    ds_retain_t *r = NULL;
    uint64_t freed = 0, s0, s1, s2;

    random_version(&v1, dir, "v1");
    random_version(&v3, dir, "v3");
    random_version(&v4, dir, "v4");
    CHECK_INT(ds_retain_open(dir, &r), 0);
    CHECK_INT(put(r, &v1, 0), 0);
    CHECK_INT(put(r, &v3, 0), 0);
    ds_retain_close(r); /* the last connection checkpoints into retain.db */
    s0 = db_size(dir);
    CHECK_INT(ds_retain_open(dir, &r), 0);
    CHECK_INT(ds_retain_gc(r, v1.sha, 1, &freed), 0);
    CHECK(freed >= v3.size);
    ds_retain_close(r);
    s1 = db_size(dir);
    CHECK_INT(s1, s0);
    CHECK_INT(ds_retain_open(dir, &r), 0);
    CHECK_INT(put(r, &v4, 0), 0);
    ds_retain_close(r);
    s2 = db_size(dir);
    CHECK(s2 <= s1 + (64u << 10));
    CHECK_INT(ds_retain_open(dir, &r), 0); /* asked to shrink (distsync gc): it does */
    CHECK_INT(ds_retain_verify(r, v4.sha), 0);
    CHECK_INT(ds_retain_gc_ex(r, v1.sha, 1, DS_RETAIN_GC_SHRINK, &freed), 0);
    CHECK(freed >= v4.size);
    ds_retain_close(r);
    CHECK(db_size(dir) <= s2 - v4.size);
    CHECK_INT(ds_retain_open(dir, &r), 0);
    CHECK_INT(ds_retain_gc(r, NULL, 0, &freed), 0);
    ds_retain_close(r);
    CHECK(db_size(dir) < s0 / 4);
    version_free(&v1);
    version_free(&v3);
    version_free(&v4);
}

/* distsync gc's shrink gives back the free pages an earlier gc left (one
 * that freed less than a quarter of the file), even when it frees nothing
 * itself: the shrink is what it was asked for. */
static void test_gc_shrink_leftover(void)
{
    const char *dir = check_tmpdir("retain_gc_shrink_leftover");
    struct version v1 = {.size = 4u << 20}, v3 = {.size = 300000};
    ds_retain_t *r = NULL;
    uint64_t freed = 0, s0, s1;

    random_version(&v1, dir, "v1");
    random_version(&v3, dir, "v3");
    CHECK_INT(ds_retain_open(dir, &r), 0);
    CHECK_INT(put(r, &v1, 0), 0);
    CHECK_INT(put(r, &v3, 0), 0);
    ds_retain_close(r);
    s0 = db_size(dir);
    CHECK_INT(ds_retain_open(dir, &r), 0); /* the gc after a sync: v3's pages stay free */
    CHECK_INT(ds_retain_gc(r, v1.sha, 1, &freed), 0);
    CHECK(freed >= v3.size);
    ds_retain_close(r);
    s1 = db_size(dir);
    CHECK_INT(s1, s0);
    CHECK_INT(ds_retain_open(dir, &r), 0); /* then distsync gc, nothing more to free */
    CHECK_INT(ds_retain_gc_ex(r, v1.sha, 1, DS_RETAIN_GC_SHRINK, &freed), 0);
    CHECK_INT(freed, 0);
    CHECK_INT(ds_retain_verify(r, v1.sha), 0);
    ds_retain_close(r);
    CHECK(db_size(dir) <= s1 - v3.size);
    version_free(&v1);
    version_free(&v3);
}

/* A config naming servers (space-separated), all file:// targets. */
static ds_config_t *config_of(const char *servers)
{
    char text[2048], name[64], err[512];
    ds_config_t *cfg = NULL;
    size_t len;
    int off = 0, used;

    len = (size_t)snprintf(text, sizeof(text), "[console]\nstore = /s\nstate = /st\n");
    while (sscanf(servers + off, "%63s%n", name, &used) == 1) {
        len += (size_t)snprintf(text + len, sizeof(text) - len, "[server %s]\nurl = file:///t/%s\n",
                                name, name);
        off += used;
    }
    if (ds_config_parse(text, "gc.conf", "/", &cfg, err, sizeof(err)) < 0)
        fprintf(stderr, "config: %s\n", err);
    return cfg;
}

/* The server's manifest is the one version v. */
static int holds(ds_catalog_t *cat, const char *server, const struct version *v)
{
    ds_server_file_t f = {"patches/f", {0}, v->size};

    memcpy(f.sha256, v->sha, DS_SHA256_LEN);
    return ds_catalog_server_manifest_put(cat, server, &f, 1, 1);
}

/* ds_gc_run: nothing is freed while the catalog is unscanned or a
 * configured server's manifest is unknown; --force; removed servers. */
static void test_gc_guard(void)
{
    const char *dir = check_tmpdir("retain_gc_guard");
    struct version v[3] = {{.size = 200000}, {.size = 150000}, {.size = 100000}};
    ds_config_t *both = config_of("lyon paris"), *lyon = config_of("lyon"),
                *many = config_of("a b c d e f g h i j lyon");
    ds_catalog_t *cat = NULL;
    ds_retain_t *r = NULL;
    ds_gc_result_t g;
    const uint8_t *chunks;
    char path[4200], err[512];
    size_t n;

    for (int i = 0; i < 3; i++) {
        char name[8];

        v[i].data = malloc(v[i].size);
        fill_random(v[i].data, v[i].size);
        snprintf(name, sizeof(name), "v%d", i);
        version_make(&v[i], dir, name);
    }
    snprintf(path, sizeof(path), "%s/catalog.db", dir);
    CHECK_INT(ds_catalog_open(path, &cat, err, sizeof(err)), 0);
    CHECK_INT(ds_retain_open(dir, &r), 0);
    if (cat == NULL || r == NULL || both == NULL || lyon == NULL || many == NULL)
        goto out;
    for (int i = 0; i < 3; i++)
        CHECK_INT(put(r, &v[i], 0), 0);
    /* the packed chunk list a reader gives back is the one put */
    {
        ds_retain_reader_t *rd = NULL;

        CHECK_INT(ds_retain_open_version(r, v[1].sha, 0, &rd), 0);
        chunks = rd ? ds_retain_reader_chunks(rd, &n) : NULL;
        CHECK(chunks != NULL && n == v[1].n &&
              memcmp(chunks, v[1].chunks, n * DS_RETAIN_REC_LEN) == 0);
        ds_retain_reader_free(rd);
    }
    /* a new catalog: unscanned, no manifest known */
    CHECK_INT(ds_gc_run(cat, r, both, 0, &g), 0);
    CHECK(g.kept_all && g.unscanned);
    CHECK_INT(g.nunknown, 2);
    CHECK_STR(g.why,
              "the catalog has no completed scan; servers lyon, paris have no known manifest");
    CHECK_INT(g.freed_bytes, 0);
    CHECK_INT(ds_catalog_mark_scanned(cat, 1), 0);
    CHECK_INT(holds(cat, "lyon", &v[0]), 0);
    CHECK_INT(ds_gc_run(cat, r, both, 0, &g), 0);
    CHECK(g.kept_all && !g.unscanned);
    CHECK_STR(g.why, "server paris has no known manifest");
    for (int i = 0; i < 3; i++)
        CHECK_INT(ds_retain_has(r, v[i].sha), 1);
    /* eleven servers, ten unknown: the message names eight */
    CHECK_INT(ds_gc_run(cat, r, many, 0, &g), 0);
    CHECK_INT(g.nunknown, 10);
    CHECK_STR(g.why, "servers a, b, c, d, e, f, g, h and 2 more have no known manifest");
    /* paris known: v[2] (nobody's) goes, v[0] and v[1] stay */
    CHECK_INT(holds(cat, "paris", &v[1]), 0);
    CHECK_INT(ds_gc_run(cat, r, both, 0, &g), 0);
    CHECK(!g.kept_all && g.freed_bytes > 0);
    CHECK_INT(g.referenced, 2);
    CHECK_INT(ds_retain_has(r, v[0].sha), 1);
    CHECK_INT(ds_retain_has(r, v[1].sha), 1);
    CHECK_INT(ds_retain_has(r, v[2].sha), 0);
    /* --force overrides an unknown server; known ones still pin */
    CHECK_INT(put(r, &v[2], 0), 0);
    CHECK_INT(ds_gc_run(cat, r, many, DS_GC_FORCE, &g), 0);
    CHECK(!g.kept_all && g.nunknown == 10);
    CHECK_INT(ds_retain_has(r, v[0].sha), 1);
    CHECK_INT(ds_retain_has(r, v[1].sha), 0); /* paris is not in "many" */
    CHECK_INT(ds_retain_has(r, v[2].sha), 0);
    /* paris removed from the configuration: its manifest pins nothing */
    CHECK_INT(put(r, &v[1], 0), 0);
    CHECK_INT(ds_gc_run(cat, r, lyon, 0, &g), 0);
    CHECK(!g.kept_all);
    CHECK_INT(g.referenced, 1);
    CHECK_INT(ds_retain_has(r, v[0].sha), 1);
    CHECK_INT(ds_retain_has(r, v[1].sha), 0);
    /* no store: the verdict and the count only */
    CHECK_INT(ds_gc_run(cat, NULL, both, 0, &g), 0);
    CHECK(!g.kept_all && g.referenced == 2 && g.freed_bytes == 0);
out:
    ds_retain_close(r);
    ds_catalog_free(cat);
    ds_config_free(both);
    ds_config_free(lyon);
    ds_config_free(many);
    for (int i = 0; i < 3; i++)
        version_free(&v[i]);
}

static void db_exec(const char *dir, const char *sql)
{
    char path[4200];
    sqlite3 *db = NULL;

    snprintf(path, sizeof(path), "%s/retain.db", dir);
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_corrupt(void)
{
    const char *dir = check_tmpdir("retain_corrupt");
    struct version v = {.size = 512 * 1024}, t = {.size = 256 * 1024};
    ds_retain_t *r = NULL;
    ds_retain_reader_t *rd = NULL;
    uint8_t *buf = malloc(v.size), other[DS_SHA256_LEN];
    char sql[512], hex[65];
    uint32_t len0;

    v.data = malloc(v.size);
    fill_random(v.data, v.size);
    version_make(&v, dir, "v");
    t.data = malloc(t.size);
    fill_text(t.data, t.size);
    version_make(&t, dir, "t");
    CHECK_INT(ds_retain_open(dir, &r), 0);
    CHECK_INT(put(r, &v, 0), 0);
    CHECK_INT(put(r, &t, 0), 0);
    ds_retain_close(r);
    /* Flip one byte in the middle of v's first chunk (stored raw) and of
     * t's first chunk (zstd). */
    len0 = v.chunks[16] | v.chunks[17] << 8 | (uint32_t)v.chunks[18] << 16;
    ds_hex(v.chunks, 16, hex);
    snprintf(sql, sizeof(sql),
             "UPDATE blob SET data = substr(data, 1, 99) || x'00' || substr(data, 101)"
             " WHERE id IN (SELECT id FROM chunk WHERE hash IN (x'%s'));",
             hex);
    db_exec(dir, sql);
    ds_hex(t.chunks, 16, hex);
    snprintf(sql, sizeof(sql),
             "UPDATE blob SET data = substr(data, 1, 99) || x'ff' || substr(data, 101)"
             " WHERE id IN (SELECT id FROM chunk WHERE hash IN (x'%s'));",
             hex);
    db_exec(dir, sql);
    CHECK_INT(ds_retain_open(dir, &r), 0);
    CHECK_INT(ds_retain_open_version(r, v.sha, 0, &rd), 0);
    CHECK_INT(ds_retain_read(rd, 0, buf, 100), DS_ECORRUPT);
    CHECK_INT(ds_retain_read(rd, len0 - 10, buf, 20), DS_ECORRUPT);
    CHECK(range_ok(rd, &v, len0, v.size - len0)); /* other chunks still read */
    ds_retain_reader_free(rd);
    CHECK_INT(ds_retain_verify(r, v.sha), DS_ECORRUPT);
    CHECK_INT(ds_retain_verify(r, t.sha), DS_ECORRUPT);
    /* A version whose chunks are intact but whose SHA-256 is wrong. */
    CHECK_INT(ds_retain_gc(r, v.sha, 1, NULL), 0); /* drop t */
    CHECK_INT(put(r, &t, 0), 0);                   /* re-put t: fresh chunks */
    CHECK_INT(ds_retain_verify(r, t.sha), 0);
    ds_retain_close(r);
    ds_hex(t.sha, 32, hex);
    snprintf(sql, sizeof(sql), "UPDATE version SET sha256 = x'%.62s00' WHERE sha256 = x'%s';", hex,
             hex);
    db_exec(dir, sql);
    memcpy(other, t.sha, 32);
    other[31] = 0;
    CHECK_INT(ds_retain_open(dir, &r), 0);
    CHECK_INT(ds_retain_verify(r, other), DS_EHASH);
    CHECK_INT(ds_retain_open_version(r, other, DS_RETAIN_READ_VERIFY, &rd), 0);
    CHECK_INT(ds_retain_read(rd, 0, buf, 1000), 1000);
    CHECK_INT(ds_retain_read(rd, 1000, buf, t.size), DS_EHASH);
    ds_retain_reader_free(rd);
    ds_retain_close(r);
    free(buf);
    version_free(&v);
    version_free(&t);
}

static void test_put_errors(void)
{
    const char *dir = check_tmpdir("retain_err");
    struct version v = {.size = 400000}, e = {.size = 0};
    ds_retain_t *r = NULL;
    ds_retain_usage_t u;
    ds_retain_reader_t *rd = NULL;
    uint8_t b;

    v.data = malloc(v.size);
    fill_random(v.data, v.size);
    version_make(&v, dir, "v");
    e.data = malloc(1);
    version_make(&e, dir, "e");
    CHECK_INT(ds_retain_open(dir, &r), 0);
    CHECK_INT(ds_retain_put(r, v.fd, v.sha, v.size + 1, v.chunks, v.n, 0), DS_EUSAGE);
    /* The file changed after chunking: a late chunk no longer matches. */
    b = v.data[v.size - 5] ^ 1;
    CHECK(pwrite(v.fd, &b, 1, (off_t)v.size - 5) == 1);
    CHECK_INT(put(r, &v, 0), DS_ECHANGED);
    CHECK_INT(ds_retain_has(r, v.sha), 0);
    CHECK_INT(ds_retain_usage(r, &u), 0);
    CHECK_INT(u.chunks + u.versions, 0); /* rolled back whole */
    /* Truncated file. */
    CHECK(ftruncate(v.fd, 1000) == 0);
    CHECK_INT(put(r, &v, 0), DS_ECHANGED);
    /* Empty version. */
    CHECK_INT(put(r, &e, DS_RETAIN_PUT_VERIFY), 0);
    CHECK_INT(ds_retain_verify(r, e.sha), 0);
    CHECK_INT(ds_retain_open_version(r, e.sha, 0, &rd), 0);
    CHECK_INT(ds_retain_read(rd, 0, &b, 1), 0);
    ds_retain_reader_free(rd);
    CHECK_INT(ds_retain_open_version(r, v.sha, 0, &rd), DS_ENOTFOUND);
    CHECK(rd == NULL);
    ds_retain_close(r);
    version_free(&v);
    version_free(&e);
}

/* A batch: the puts share one transaction, each still all or nothing (a
 * changed file's put is rolled back, the good ones before and after it
 * stay); nothing is visible to another connection before the end, all of
 * it after; a second begin is refused. */
static void test_batch(void)
{
    const char *dir = check_tmpdir("retain_batch");
    struct version a = {.size = 300000}, bad = {.size = 300000}, c = {.size = 300000};
    ds_retain_t *r = NULL, *other = NULL;
    ds_retain_usage_t u;
    uint8_t x;

    a.data = malloc(a.size);
    fill_random(a.data, a.size);
    version_make(&a, dir, "a");
    bad.data = malloc(bad.size);
    fill_random(bad.data, bad.size);
    version_make(&bad, dir, "bad");
    c.data = malloc(c.size);
    fill_random(c.data, c.size);
    version_make(&c, dir, "c");
    x = bad.data[bad.size - 5] ^ 1; /* changed after chunking */
    CHECK(pwrite(bad.fd, &x, 1, (off_t)bad.size - 5) == 1);
    CHECK_INT(ds_retain_open(dir, &r), 0);
    CHECK_INT(ds_retain_open(dir, &other), 0);
    CHECK_INT(ds_retain_batch_begin(r), 0);
    CHECK_INT(ds_retain_batch_begin(r), DS_EUSAGE);
    CHECK_INT(put(r, &a, 0), 0);
    CHECK_INT(put(r, &bad, 0), DS_ECHANGED);
    CHECK_INT(put(r, &c, 0), 0);
    CHECK_INT(put(r, &a, 0), 0); /* again: a no-op inside the batch too */
    CHECK_INT(ds_retain_has(r, a.sha), 1);
    CHECK_INT(ds_retain_has(r, bad.sha), 0);
    CHECK_INT(ds_retain_has(other, a.sha), 0); /* not committed yet */
    CHECK_INT(ds_retain_batch_end(r), 0);
    CHECK_INT(ds_retain_batch_end(r), 0); /* no batch: nothing to do */
    CHECK_INT(ds_retain_has(other, a.sha), 1);
    CHECK_INT(ds_retain_has(other, c.sha), 1);
    CHECK_INT(ds_retain_has(other, bad.sha), 0);
    CHECK_INT(ds_retain_verify(other, a.sha), 0);
    CHECK_INT(ds_retain_verify(other, c.sha), 0);
    CHECK_INT(ds_retain_usage(other, &u), 0);
    CHECK(u.versions == 2);
    ds_retain_close(other);
    ds_retain_close(r);
    version_free(&a);
    version_free(&bad);
    version_free(&c);
}

/* kill -9 during puts: afterwards every retained version verifies and no
 * chunk is unreferenced. */
static void test_crash(void)
{
    const char *dir = check_tmpdir("retain_crash");
    struct version v = {.size = 16 * 1024 * 1024};
    ds_retain_t *r = NULL;
    ds_retain_usage_t u;
    uint64_t freed = 1;

    v.data = malloc(v.size);
    fill_random(v.data, v.size);
    version_make(&v, dir, "v");
    for (int i = 0; i < 4; i++) {
        pid_t pid = fork();

        if (pid == 0) {
            ds_retain_t *cr = NULL;

            if (ds_retain_open(dir, &cr) == 0)
                put(cr, &v, 0);
            _exit(0);
        }
        usleep(20000 + 15000 * i);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        CHECK_INT(ds_retain_open(dir, &r), 0);
        CHECK_INT(ds_retain_usage(r, &u), 0);
        if (u.versions == 1)
            CHECK_INT(ds_retain_verify(r, v.sha), 0);
        else
            CHECK_INT(u.chunks, 0);
        CHECK_INT(ds_retain_gc(r, v.sha, 1, &freed), 0);
        CHECK_INT(freed, 0);
        CHECK_INT(ds_retain_gc(r, NULL, 0, NULL), 0); /* start over */
        ds_retain_close(r);
    }
    version_free(&v);
}

/* An open of an existing store beside a writer (another connection in a
 * write transaction, as the retain writer is while delta workers open the
 * store to read a basis) neither waits for it nor fails. */
static void test_open_beside_writer(void)
{
    const char *dir = check_tmpdir("retain_beside");
    struct version v = {.size = 64 * 1024};
    ds_retain_t *r = NULL;
    ds_retain_reader_t *rd = NULL;
    sqlite3 *db = NULL;
    char path[4096];
    struct timespec t0, t1;
    double secs;

    v.data = malloc(v.size);
    fill_random(v.data, v.size);
    version_make(&v, dir, "v");
    CHECK_INT(ds_retain_open(dir, &r), 0);
    CHECK_INT(put(r, &v, 0), 0);
    ds_retain_close(r);
    r = NULL;
    snprintf(path, sizeof(path), "%s/retain.db", dir);
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_INT(ds_retain_open(dir, &r), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(secs < 5.0); /* it waited for the writer: up to the 30 s busy timeout */
    if (r != NULL) {
        CHECK_INT(ds_retain_open_version(r, v.sha, 0, &rd), 0);
        ds_retain_reader_free(rd);
    }
    ds_retain_close(r);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    version_free(&v);
}

/* A handle kept open between jobs (the sync's worker pool keeps one per
 * thread) sees a version another connection retained after it was opened
 * and read, holds no snapshot while idle (ds_retain_idle), and does not
 * hold back the garbage collector's WAL checkpoint. */
static void test_kept_handle(void)
{
    const char *dir = check_tmpdir("retain_kept");
    struct version v1 = {.size = 200 * 1024}, v2 = {.size = 300 * 1024 + 5};
    ds_retain_t *w = NULL, *k = NULL;
    ds_retain_reader_t *rd = NULL;
    char wal[4200];
    struct stat st;

    v1.data = malloc(v1.size);
    fill_text(v1.data, v1.size);
    v2.data = malloc(v2.size);
    fill_random(v2.data, v2.size);
    version_make(&v1, dir, "v1");
    version_make(&v2, dir, "v2");
    CHECK_INT(ds_retain_open(dir, &w), 0);
    CHECK_INT(put(w, &v1, 0), 0);
    CHECK_INT(ds_retain_open(dir, &k), 0);
    CHECK_INT(ds_retain_idle(k), 1);
    CHECK_INT(ds_retain_open_version(k, v1.sha, 0, &rd), 0);
    CHECK_INT(ds_retain_idle(k), 0); /* a reader is open */
    CHECK(rd && range_ok(rd, &v1, 0, v1.size));
    ds_retain_reader_free(rd);
    rd = NULL;
    CHECK_INT(ds_retain_has(k, v2.sha), 0);
    CHECK_INT(ds_retain_idle(k), 1);
    /* the writer retains v2 after k read: k's next job sees it */
    CHECK_INT(ds_retain_batch_begin(w), 0);
    CHECK_INT(ds_retain_idle(w), 0);
    CHECK_INT(put(w, &v2, 0), 0);
    CHECK_INT(ds_retain_batch_end(w), 0);
    CHECK_INT(ds_retain_idle(w), 1);
    CHECK_INT(ds_retain_open_version(k, v2.sha, 0, &rd), 0);
    CHECK(rd && range_ok(rd, &v2, 0, v2.size));
    ds_retain_reader_free(rd);
    CHECK_INT(ds_retain_idle(k), 1);
    /* two readers at once on one handle (its kept statements go to the
     * first; the second prepares its own): both read, and the handle is
     * idle only once both are freed, in either order */
    {
        ds_retain_reader_t *a = NULL, *b = NULL;

        CHECK_INT(ds_retain_open_version(k, v1.sha, 0, &a), 0);
        CHECK_INT(ds_retain_open_version(k, v2.sha, 0, &b), 0);
        CHECK(a && b && range_ok(b, &v2, 0, v2.size) && range_ok(a, &v1, 0, v1.size));
        ds_retain_reader_free(a);
        CHECK_INT(ds_retain_idle(k), 0);
        CHECK(range_ok(b, &v2, 1000, 5000));
        ds_retain_reader_free(b);
        CHECK_INT(ds_retain_idle(k), 1);
        CHECK_INT(ds_retain_open_version(k, v2.sha, 0, &a), 0);
        CHECK(a && range_ok(a, &v2, 0, v2.size));
        ds_retain_reader_free(a);
    }
    /* a gc drops v1 and truncates the WAL beside the idle handle */
    CHECK_INT(ds_retain_gc(w, v2.sha, 1, NULL), 0);
    snprintf(wal, sizeof(wal), "%s/retain.db-wal", dir);
    CHECK_INT(stat(wal, &st), 0);
    CHECK_INT(st.st_size, 0);
    CHECK_INT(ds_retain_has(k, v1.sha), 0);
    CHECK_INT(ds_retain_verify(k, v2.sha), 0);
    ds_retain_close(k);
    ds_retain_close(w);
    version_free(&v1);
    version_free(&v2);
}

int main(void)
{
    RUN(test_roundtrip);
    RUN(test_dedup);
    RUN(test_gc);
    RUN(test_gc_reclaim);
    RUN(test_gc_shrink_leftover);
    RUN(test_gc_guard);
    RUN(test_corrupt);
    RUN(test_put_errors);
    RUN(test_batch);
    RUN(test_crash);
    RUN(test_open_beside_writer);
    RUN(test_kept_handle);
    return CHECK_DONE();
}

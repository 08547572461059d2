/* Unit tests for librsync deltas and the delta cache (src/delta*.c). Deltas
 * are applied with `rdiff patch`, an independent reader of the format. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#if defined(__GNUC__) && !defined(__clang__)
/* check.h's check_tmpdir() trips gcc 12's -Wformat-truncation at -O2. */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include "check.h"
#include "distsync/delta.h"
#include "distsync/zpatch.h"
#include "distsync/error.h"
#include "distsync/retain.h"

static const char *tmp;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

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

struct buf {
    uint8_t *p;
    size_t n;
};

static struct buf random_buf(size_t n)
{
    struct buf b = {malloc(n ? n : 1), n};

    fill_random(b.p, n);
    return b;
}

/* The issue's edit pattern on a copy of src. */
static struct buf issue_edit(struct buf src)
{
    size_t n = src.n, a = n / 5, b = 2 * n / 5 + 13, ins = 3 * n / 5 + 7, del = 4 * n / 5 + 3;
    struct buf d = {malloc(n + 1024), n + 512};

    memcpy(d.p, src.p, ins);
    fill_random(d.p + a, 4096);
    fill_random(d.p + b, 4096);
    fill_random(d.p + ins, 1024);
    memcpy(d.p + ins + 1024, src.p + ins, del - ins);
    memcpy(d.p + ins + 1024 + (del - ins), src.p + del + 512, n - del - 512);
    return d;
}

static int write_file(const char *name, struct buf b)
{
    char path[4200];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", tmp, name);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, b.p, b.n) == (ssize_t)b.n);
    return fd;
}

/* Computes basis -> target, applies it with rdiff and compares. Returns the
 * delta size, or -1. */
static long delta_roundtrip(struct buf basis, struct buf target, const ds_delta_opts_t *o)
{
    int bfd = write_file("basis", basis), tfd = write_file("target", target);
    int dfd = write_file("delta", (struct buf){NULL, 0});
    ds_delta_src_t bs, ts;
    ds_delta_stats_t st;
    char cmd[13000];
    struct buf out = {malloc(target.n + 1), 0};
    int rc, ofd;

    ds_delta_src_fd(&bs, bfd, basis.n);
    ds_delta_src_fd(&ts, tfd, target.n);
    rc = ds_delta_compute(&bs, &ts, o, dfd, &st);
    CHECK_INT(rc, 0);
    CHECK_INT(st.delta_bytes, lseek(dfd, 0, SEEK_END));
    CHECK_INT(st.literal_bytes + st.copy_bytes, target.n);
    snprintf(cmd, sizeof(cmd), "rdiff -f patch '%s/basis' '%s/delta' '%s/out'", tmp, tmp, tmp);
    CHECK_INT(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "%s/out", tmp);
    ofd = open(cmd, O_RDONLY);
    CHECK(ofd >= 0);
    out.n = (size_t)read(ofd, out.p, target.n + 1);
    CHECK_INT(out.n, target.n);
    CHECK(out.n == target.n && (target.n == 0 || memcmp(out.p, target.p, target.n) == 0));
    close(bfd);
    close(tfd);
    close(dfd);
    close(ofd);
    free(out.p);
    return rc == 0 ? (long)st.delta_bytes : -1;
}

static void test_patterns(void)
{
    struct buf a = random_buf(1 << 20), b = {malloc((1 << 20) + 4096), 0}, e = {NULL, 0};
    struct buf u = random_buf(700000);

    /* Insertion. */
    memcpy(b.p, a.p, 5000);
    fill_random(b.p + 5000, 3000);
    memcpy(b.p + 8000, a.p + 5000, a.n - 5000);
    b.n = a.n + 3000;
    CHECK(delta_roundtrip(a, b, NULL) < 3000 + 1024);
    /* Deletion. */
    memcpy(b.p, a.p, 70000);
    memcpy(b.p + 70000, a.p + 71111, a.n - 71111);
    b.n = a.n - 1111;
    CHECK(delta_roundtrip(a, b, NULL) < 1024);
    /* Overwrite. */
    memcpy(b.p, a.p, a.n);
    fill_random(b.p + 333333, 2000);
    b.n = a.n;
    CHECK(delta_roundtrip(a, b, NULL) < 2000 + 1024);
    /* Unrelated, empty and identical files. */
    CHECK(delta_roundtrip(a, u, NULL) >= (long)u.n);
    CHECK(delta_roundtrip(e, u, NULL) >= (long)u.n);
    CHECK(delta_roundtrip(u, e, NULL) < 16);
    CHECK(delta_roundtrip(e, e, NULL) < 16);
    CHECK(delta_roundtrip(a, a, NULL) < 32);
    /* Odd sizes around the block length, several block lengths. */
    for (uint32_t bl = 256; bl <= 2048; bl *= 2) {
        ds_delta_opts_t o = {.block_len = bl};
        struct buf s = {a.p + 17, bl * 3 + 5};
        struct buf t = {a.p + 19, bl * 3 + 1};

        CHECK(delta_roundtrip(s, t, &o) >= 0);
        CHECK(delta_roundtrip(t, s, &o) >= 0);
    }
    free(a.p);
    free(b.p);
    free(u.p);
}

static void test_issue_size(void)
{
    struct buf a = random_buf(8u << 20), b = issue_edit(a);
    long n = delta_roundtrip(a, b, NULL);

    printf("     issue edit on 8 MiB at block %u: delta %ld B for 9216 changed B\n",
           DS_DELTA_BLOCK_DEFAULT, n);
    /* Within 10% of the changed bytes plus a small header overhead. */
    CHECK(n > 9216);
    CHECK(n <= 9216 * 11 / 10 + 64);
    free(a.p);
    free(b.p);
}

static void test_sha_and_check(void)
{
    struct buf a = random_buf(300000), b = issue_edit(a);
    int bfd = write_file("basis", a), tfd = write_file("target", b);
    int dfd = write_file("delta", (struct buf){NULL, 0});
    uint8_t asha[32], bsha[32], bad[32];
    ds_delta_opts_t o = {.basis_sha256 = asha, .target_sha256 = bsha};
    ds_delta_src_t bs, ts;
    ds_delta_stats_t st;

    CHECK_INT(ds_sha256(a.p, a.n, asha), 0);
    CHECK_INT(ds_sha256(b.p, b.n, bsha), 0);
    ds_delta_src_fd(&bs, bfd, a.n);
    ds_delta_src_fd(&ts, tfd, b.n);
    CHECK_INT(ds_delta_compute(&bs, &ts, &o, dfd, &st), 0);
    CHECK_INT(ds_delta_check(&bs, dfd, st.delta_bytes, b.n, bsha), 0);
    memcpy(bad, bsha, 32);
    bad[0] ^= 1;
    CHECK_INT(ds_delta_check(&bs, dfd, st.delta_bytes, b.n, bad), DS_EHASH);
    CHECK_INT(ds_delta_check(&bs, dfd, st.delta_bytes, b.n + 1, bsha), DS_EHASH);
    CHECK_INT(ds_delta_check(&bs, dfd, st.delta_bytes / 2, b.n, bsha), DS_ECORRUPT);
    /* A source that is not what the caller says it is. */
    o.target_sha256 = bad;
    CHECK_INT(ds_delta_compute(&bs, &ts, &o, dfd, NULL), DS_ECHANGED);
    o.target_sha256 = bsha;
    o.basis_sha256 = bad;
    CHECK_INT(ds_delta_compute(&bs, &ts, &o, dfd, NULL), DS_ECHANGED);
    ts.size++; /* shorter than announced */
    CHECK_INT(ds_delta_compute(&bs, &ts, NULL, dfd, NULL), DS_ECHANGED);
    close(bfd);
    close(tfd);
    close(dfd);
    free(a.p);
    free(b.p);
}

/* The basis comes from the retain store (fixed 64 KiB chunks here). */
static void test_retain_basis(void)
{
    struct buf a = random_buf(1000000), b = issue_edit(a), out = {0};
    int bfd = write_file("basis", a), tfd = write_file("target", b);
    size_t n = (a.n + 65535) / 65536;
    uint8_t *recs = malloc(n * DS_RETAIN_REC_LEN), sha[32], bsha[32];
    ds_retain_t *r = NULL;
    ds_retain_reader_t *rd = NULL;
    ds_delta_src_t bs, ts, fs;
    ds_delta_stats_t st;
    char dir[4200];
    int dfd = write_file("delta", out);

    for (size_t i = 0; i < n; i++) {
        uint32_t len = (uint32_t)(i + 1 < n ? 65536 : a.n - i * 65536);

        ds_xxh128(a.p + i * 65536, len, recs + i * 20);
        memcpy(recs + i * 20 + 16, (uint8_t[4]){len, len >> 8, len >> 16, 0}, 4);
    }
    CHECK_INT(ds_sha256(a.p, a.n, sha), 0);
    CHECK_INT(ds_sha256(b.p, b.n, bsha), 0);
    snprintf(dir, sizeof(dir), "%s/retain", tmp);
    CHECK_INT(ds_retain_open(dir, &r), 0);
    CHECK_INT(ds_retain_put(r, bfd, sha, a.n, recs, n, 0), 0);
    CHECK_INT(ds_retain_open_version(r, sha, 0, &rd), 0);
    ds_delta_src_retain(&bs, rd);
    ds_delta_src_fd(&ts, tfd, b.n);
    CHECK_INT(ds_delta_compute(&bs, &ts, &(ds_delta_opts_t){.basis_sha256 = sha}, dfd, &st), 0);
    CHECK(st.delta_bytes < 12000);
    /* Apply with the retained basis as the copy source, and with the file. */
    CHECK_INT(ds_delta_check(&bs, dfd, st.delta_bytes, b.n, bsha), 0);
    ds_delta_src_fd(&fs, bfd, a.n);
    CHECK_INT(ds_delta_check(&fs, dfd, st.delta_bytes, b.n, bsha), 0);
    ds_retain_reader_free(rd);
    ds_retain_close(r);
    close(bfd);
    close(tfd);
    close(dfd);
    free(recs);
    free(a.p);
    free(b.p);
}

static int count_files(const char *dir, const char *prefix)
{
    char cmd[4400];
    FILE *f;
    int n = -1;

    snprintf(cmd, sizeof(cmd), "ls '%s' | grep -c '^%s'", dir, prefix);
    f = popen(cmd, "r");
    if (f && fscanf(f, "%d", &n) != 1)
        n = -1;
    if (f)
        pclose(f);
    return n;
}

struct pair {
    struct buf a, b;
    uint8_t asha[32], bsha[32];
    int afd, bfd;
    ds_delta_src_t as, bs;
};

static void pair_make(struct pair *p, size_t n, int id)
{
    char name[32];

    p->a = random_buf(n);
    p->b = issue_edit(p->a);
    CHECK_INT(ds_sha256(p->a.p, p->a.n, p->asha), 0);
    CHECK_INT(ds_sha256(p->b.p, p->b.n, p->bsha), 0);
    snprintf(name, sizeof(name), "pa%d", id);
    p->afd = write_file(name, p->a);
    snprintf(name, sizeof(name), "pb%d", id);
    p->bfd = write_file(name, p->b);
    ds_delta_src_fd(&p->as, p->afd, p->a.n);
    ds_delta_src_fd(&p->bs, p->bfd, p->b.n);
}

static void pair_free(struct pair *p)
{
    close(p->afd);
    close(p->bfd);
    free(p->a.p);
    free(p->b.p);
}

static uint64_t get(ds_delta_cache_t *c, struct pair *p, int expect)
{
    uint64_t size = 0;
    int fd = -1;

    CHECK_INT(ds_delta_cache_get_or_compute(c, p->asha, p->bsha, &p->as, &p->bs, &fd, &size),
              expect);
    if (fd >= 0) {
        char head[4];

        CHECK_INT(lseek(fd, 0, SEEK_CUR), 0);
        CHECK(read(fd, head, 4) == 4 && memcmp(head, "rs\x02\x36", 4) == 0);
        CHECK_INT(ds_delta_check(&p->as, fd, size, p->b.n, p->bsha), 0);
        close(fd);
    }
    return size;
}

static void test_cache(void)
{
    struct pair p[5];
    char dir[4200], junk[4300];
    ds_delta_cache_t *c = NULL;
    ds_delta_cache_stats_t st;
    uint64_t s0, s1;

    snprintf(dir, sizeof(dir), "%s/deltas", tmp);
    CHECK_INT(ds_delta_cache_open(dir, 1 << 20, NULL, &c), 0);
    for (int i = 0; i < 5; i++)
        pair_make(&p[i], 200000 + 10000 * i, i);
    s0 = get(c, &p[0], 0);
    s1 = get(c, &p[0], 0);
    ds_delta_cache_stats(c, &st);
    CHECK_INT(st.computes, 1);
    CHECK_INT(st.hits, 1);
    CHECK_INT(s0, s1);
    CHECK(s0 > 9216 && s0 < 12000);
    CHECK_INT(count_files(dir, "tmp"), 0);
    /* A wrong SHA-256 fails and publishes nothing. */
    p[1].bsha[0] ^= 1;
    get(c, &p[1], DS_ECHANGED);
    p[1].bsha[0] ^= 1;
    CHECK_INT(count_files(dir, "tmp"), 0);
    CHECK_INT(count_files(dir, "[0-9a-f]"), 1);
    ds_delta_cache_close(c);
    /* Reopen with a cap of ~2.5 entries; a dead computation's tmp file is
     * reaped. */
    snprintf(junk, sizeof(junk), "%s/tmp.999999999.7", dir);
    close(open(junk, O_CREAT | O_WRONLY, 0600));
    CHECK_INT(ds_delta_cache_open(dir, s0 * 5 / 2, NULL, &c), 0);
    CHECK_INT(count_files(dir, "tmp"), 0);
    get(c, &p[0], 0); /* hit, from disk */
    get(c, &p[1], 0);
    get(c, &p[0], 0); /* p[0] is now the most recently used */
    get(c, &p[2], 0); /* evicts p[1] */
    ds_delta_cache_stats(c, &st);
    CHECK_INT(st.hits, 2);
    CHECK_INT(st.computes, 2);
    CHECK_INT(st.evictions, 1);
    CHECK_INT(st.entries, 2);
    CHECK(st.bytes <= s0 * 5 / 2);
    get(c, &p[0], 0);
    get(c, &p[1], 0);
    ds_delta_cache_stats(c, &st);
    CHECK_INT(st.hits, 3);
    CHECK_INT(st.computes, 3);
    CHECK_INT(count_files(dir, "[0-9a-f]"), 2);
    CHECK_INT(ds_delta_cache_drop(c, p[1].asha, p[1].bsha), 0);
    CHECK_INT(ds_delta_cache_drop(c, p[1].asha, p[1].bsha), 0);
    CHECK_INT(count_files(dir, "[0-9a-f]"), 1);
    ds_delta_cache_close(c);
    for (int i = 0; i < 5; i++)
        pair_free(&p[i]);
}

static void entry_name(const char *dir, const struct pair *p, char *out, size_t cap)
{
    char a[65], b[65];

    ds_hex(p->asha, 32, a);
    ds_hex(p->bsha, 32, b);
    snprintf(out, cap, "%s/%s-%s.rsd", dir, a, b);
}

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    uint8_t x = 0;

    CHECK(fd >= 0 && pread(fd, &x, 1, at) == 1);
    x ^= 0x20;
    CHECK(pwrite(fd, &x, 1, at) == 1);
    close(fd);
}

/* zpatch entries: one per pair next to the librsync one (.zpd), checked on
 * every hit like it (a flipped byte is dropped and recomputed), both
 * dropped together; a zpatch of the issue edit is smaller than its rsd. */
static void test_cache_zpatch(void)
{
    struct pair p;
    char dir[4200], path[4400], a[65], b[65];
    ds_delta_cache_t *c = NULL;
    ds_delta_cache_stats_t st;
    ds_delta_opts_t o = {.zpatch_level = 3};
    uint64_t zs = 0, zs2 = 0, rs;
    char head[4];
    int fd = -1;

    snprintf(dir, sizeof(dir), "%s/deltas-zp", tmp);
    CHECK_INT(ds_delta_cache_open(dir, 1 << 30, &o, &c), 0);
    pair_make(&p, 400000, 11);
    rs = get(c, &p, 0);
    CHECK_INT(ds_delta_cache_get(c, DS_DELTA_FMT_ZPATCH, p.asha, p.bsha, &p.as, &p.bs, &fd, &zs),
              0);
    CHECK(fd >= 0 && read(fd, head, 4) == 4 && memcmp(head, "DSZP", 4) == 0);
    CHECK(fd >= 0 && ds_zpatch_check(&p.as, fd, zs, p.b.n, p.bsha) == 0);
    CHECK(zs > 0 && zs < rs);
    close(fd);
    ds_hex(p.asha, 32, a);
    ds_hex(p.bsha, 32, b);
    snprintf(path, sizeof(path), "%s/%s-%s.zpd", dir, a, b);
    flip_byte(path, (off_t)(zs / 2));
    CHECK_INT(ds_delta_cache_get(c, DS_DELTA_FMT_ZPATCH, p.asha, p.bsha, &p.as, &p.bs, &fd, &zs2),
              0);
    CHECK(fd >= 0 && ds_zpatch_check(&p.as, fd, zs2, p.b.n, p.bsha) == 0);
    close(fd);
    ds_delta_cache_stats(c, &st);
    CHECK_INT(st.dropped, 1);
    CHECK_INT(st.computes, 3);
    CHECK_INT(count_files(dir, "[0-9a-f]"), 2);
    /* A target that is not the version asked for (changed since its scan)
     * fails as changed, not as a bad delta, and publishes nothing: the
     * encoder leaves hashing it to the check. */
    p.bsha[0] ^= 1;
    CHECK_INT(ds_delta_cache_get(c, DS_DELTA_FMT_ZPATCH2, p.asha, p.bsha, &p.as, &p.bs, &fd, &zs2),
              DS_ECHANGED);
    p.bsha[0] ^= 1;
    CHECK_INT(count_files(dir, "[0-9a-f]"), 2);
    CHECK_INT(count_files(dir, "tmp"), 0);
    CHECK_INT(ds_delta_cache_drop(c, p.asha, p.bsha), 0);
    CHECK_INT(count_files(dir, "[0-9a-f]"), 0);
    ds_delta_cache_close(c);
    pair_free(&p);
}

/* Corrupt entries (a flipped byte, a lying or missing trailer, the format
 * before checksums, a truncated file) are dropped and recomputed, never
 * returned; a corrupt one is counted once. */
static void test_cache_corrupt(void)
{
    struct pair p;
    char dir[4200], path[4400];
    ds_delta_cache_t *c = NULL;
    ds_delta_cache_stats_t st;
    struct stat sb;
    uint64_t s0;

    snprintf(dir, sizeof(dir), "%s/deltas-corrupt", tmp);
    CHECK_INT(ds_delta_cache_open(dir, 1 << 30, NULL, &c), 0);
    pair_make(&p, 300000, 9);
    entry_name(dir, &p, path, sizeof(path));
    s0 = get(c, &p, 0);
    CHECK(stat(path, &sb) == 0 && (uint64_t)sb.st_size == s0 + 32);
    /* a flipped byte in the middle of the delta */
    flip_byte(path, (off_t)(s0 / 2));
    CHECK_INT(get(c, &p, 0), s0); /* get() applies it: the result is right */
    ds_delta_cache_stats(c, &st);
    CHECK_INT(st.computes, 2);
    CHECK_INT(st.hits, 0);
    CHECK_INT(st.dropped, 1);
    get(c, &p, 0); /* the recomputed entry is sound: a hit, nothing new dropped */
    ds_delta_cache_stats(c, &st);
    CHECK_INT(st.hits, 1);
    CHECK_INT(st.dropped, 1);
    /* a flipped bit in the checksum itself, then in the length */
    flip_byte(path, (off_t)(s0 + 20));
    get(c, &p, 0);
    flip_byte(path, (off_t)(s0 + 15));
    get(c, &p, 0);
    ds_delta_cache_stats(c, &st);
    CHECK_INT(st.dropped, 3);
    CHECK_INT(st.computes, 4);
    /* an entry of the format before checksums (the bare delta): recomputed,
     * not counted as corrupt */
    CHECK_INT(truncate(path, (off_t)s0), 0);
    CHECK_INT(get(c, &p, 0), s0);
    ds_delta_cache_stats(c, &st);
    CHECK_INT(st.computes, 5);
    CHECK_INT(st.dropped, 3);
    /* torn: cut in the middle, and empty */
    CHECK_INT(truncate(path, (off_t)(s0 / 2)), 0);
    get(c, &p, 0);
    CHECK_INT(truncate(path, 0), 0);
    get(c, &p, 0);
    ds_delta_cache_stats(c, &st);
    CHECK_INT(st.computes, 7);
    CHECK(stat(path, &sb) == 0 && (uint64_t)sb.st_size == s0 + 32);
    ds_delta_cache_close(c);
    pair_free(&p);
}

/* Gets the pair's zpatch from a cache at level (0: default); returns its size. */
static uint64_t zget(const char *dir, int level, struct pair *p, ds_delta_cache_stats_t *st)
{
    ds_delta_opts_t o = {.zpatch_level = level};
    ds_delta_cache_t *c = NULL;
    uint64_t zs = 0;
    int fd = -1;

    CHECK_INT(ds_delta_cache_open(dir, 1 << 30, &o, &c), 0);
    CHECK_INT(
        ds_delta_cache_get(c, DS_DELTA_FMT_ZPATCH, p->asha, p->bsha, &p->as, &p->bs, &fd, &zs), 0);
    CHECK(fd >= 0 && ds_zpatch_check(&p->as, fd, zs, p->b.n, p->bsha) == 0);
    if (fd >= 0)
        close(fd);
    ds_delta_cache_stats(c, st);
    ds_delta_cache_close(c);
    return zs;
}

/* The trailer's level (DSDCSUM2), -1 if none. */
static int entry_level(const char *path)
{
    uint8_t t[32];
    int fd = open(path, O_RDONLY), level = -1;
    off_t end = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;

    if (end >= 32 && pread(fd, t, 32, end - 32) == 32 && memcmp(t, "DSDCSUM2", 8) == 0)
        level = t[31] | t[30] << 8;
    if (fd >= 0)
        close(fd);
    return level;
}

/* The zstd level of zpatch entries: an entry serves its level and lower
 * ones; a higher level recomputes and replaces it (relevelled); an entry
 * of the 24-byte trailer without a level counts as the default level. */
static void test_cache_levels(void)
{
    struct pair p;
    char dir[4200], path[4400], a[65], b[65];
    ds_delta_cache_stats_t st;
    uint64_t zs;

    snprintf(dir, sizeof(dir), "%s/deltas-levels", tmp);
    pair_make(&p, 300000, 13);
    ds_hex(p.asha, 32, a);
    ds_hex(p.bsha, 32, b);
    snprintf(path, sizeof(path), "%s/%s-%s.zpd", dir, a, b);
    zget(dir, 3, &p, &st);
    CHECK_INT(st.computes, 1);
    CHECK_INT(entry_level(path), 3);
    zget(dir, 1, &p, &st); /* a lower level: served */
    CHECK(st.hits == 1 && st.computes == 0);
    zs = zget(dir, 0, &p, &st); /* the default (19): recomputed */
    CHECK(st.hits == 0 && st.computes == 1 && st.relevelled == 1);
    CHECK_INT(entry_level(path), DS_ZPATCH_LEVEL_DEFAULT);
    zget(dir, 3, &p, &st);
    CHECK(st.hits == 1 && st.computes == 0 && st.relevelled == 0);
    CHECK_INT(entry_level(path), DS_ZPATCH_LEVEL_DEFAULT);
    /* an older entry: "DSDCSUM1", length, XXH3-64 (no level) */
    {
        uint8_t t[32];
        int fd = open(path, O_RDWR);

        CHECK(fd >= 0 && pread(fd, t, 32, (off_t)zs) == 32);
        memcpy(t, "DSDCSUM1", 8);
        CHECK(pwrite(fd, t, 24, (off_t)zs) == 24 && ftruncate(fd, (off_t)zs + 24) == 0);
        close(fd);
    }
    zget(dir, 0, &p, &st);
    CHECK(st.hits == 1 && st.computes == 0 && st.dropped == 0);
    zget(dir, 22, &p, &st);
    CHECK(st.hits == 0 && st.computes == 1 && st.relevelled == 1);
    CHECK_INT(entry_level(path), 22);
    pair_free(&p);
}

/* One get of the pair in fmt from c; returns the delta's size, its stream
 * version in *version (the zpatch header's fifth byte) and c's counters
 * for this get alone in *st. */
static uint64_t qget(ds_delta_cache_t *c, int fmt, struct pair *p, int *version,
                     ds_delta_cache_stats_t *st)
{
    ds_delta_cache_stats_t before;
    uint8_t head[5] = {0};
    uint64_t zs = 0;
    int fd = -1;

    ds_delta_cache_stats(c, &before);
    CHECK_INT(ds_delta_cache_get(c, fmt, p->asha, p->bsha, &p->as, &p->bs, &fd, &zs), 0);
    CHECK(fd >= 0 && pread(fd, head, 5, 0) == 5 && memcmp(head, "DSZP", 4) == 0);
    CHECK(fd >= 0 && ds_zpatch_check(&p->as, fd, zs, p->b.n, p->bsha) == 0);
    if (fd >= 0)
        close(fd);
    *version = head[4];
    ds_delta_cache_stats(c, st);
    st->hits -= before.hits;
    st->computes -= before.computes;
    st->quick -= before.quick;
    st->dropped -= before.dropped;
    st->relevelled -= before.relevelled;
    return zs;
}

/* Quick deltas (DS_DELTA_QUICK): computed at level 3 as stream version 1
 * (no BSDIFF record) into their own entry (.zpq), which never serves a
 * full request; a quick request takes the full entry first, at any level;
 * a corrupt quick entry is dropped and recomputed; drop removes it. */
static void test_cache_quick(void)
{
    const int q2 = DS_DELTA_FMT_ZPATCH2 | DS_DELTA_QUICK;
    struct pair p;
    char dir[4200], path[4400], full[4400], a[65], b[65];
    ds_delta_opts_t o = {.zpatch_level = 12};
    ds_delta_cache_t *c = NULL;
    ds_delta_cache_stats_t st;
    uint64_t qs, fs;
    int v = 0;

    snprintf(dir, sizeof(dir), "%s/deltas-quick", tmp);
    CHECK_INT(ds_delta_cache_open(dir, 1 << 30, &o, &c), 0);
    pair_make(&p, 300000, 17);
    ds_hex(p.asha, 32, a);
    ds_hex(p.bsha, 32, b);
    snprintf(path, sizeof(path), "%s/%s-%s.zpq", dir, a, b);
    snprintf(full, sizeof(full), "%s/%s-%s.zpb", dir, a, b);
    CHECK_INT(ds_delta_cache_ready(c, q2, p.asha, p.bsha), 0);
    {
        uint64_t n = 0;
        int fd = -1;

        CHECK_INT(ds_delta_cache_lookup(c, q2, p.asha, p.bsha, &fd, &n), DS_ENOTFOUND);
        CHECK_INT(fd, -1);
    }
    qs = qget(c, q2, &p, &v, &st);
    { /* a lookup serves what get would, without sources */
        uint64_t n = 0;
        int fd = -1;

        CHECK_INT(ds_delta_cache_lookup(c, q2, p.asha, p.bsha, &fd, &n), 0);
        CHECK(fd >= 0 && n == qs && ds_zpatch_check(&p.as, fd, n, p.b.n, p.bsha) == 0);
        if (fd >= 0)
            close(fd);
        CHECK_INT(ds_delta_cache_lookup(c, DS_DELTA_FMT_ZPATCH2, p.asha, p.bsha, &fd, &n),
                  DS_ENOTFOUND);
    }
    CHECK(st.computes == 1 && st.quick == 1 && st.hits == 0 && v == 1);
    CHECK_INT(entry_level(path), DS_ZPATCH_LEVEL_FAST);
    CHECK_INT(count_files(dir, "[0-9a-f].*zpq$"), 1);
    CHECK_INT(count_files(dir, "[0-9a-f].*zpb$"), 0);
    CHECK_INT(ds_delta_cache_ready(c, q2, p.asha, p.bsha), 1);
    CHECK_INT(ds_delta_cache_ready(c, DS_DELTA_FMT_ZPATCH2, p.asha, p.bsha), 0);
    CHECK(qget(c, q2, &p, &v, &st) == qs && st.hits == 1 && st.computes == 0);
    /* a full request is not served by the quick entry */
    fs = qget(c, DS_DELTA_FMT_ZPATCH2, &p, &v, &st);
    CHECK(st.computes == 1 && st.quick == 0 && st.hits == 0);
    CHECK_INT(entry_level(full), 12);
    /* now a quick request takes the full entry, even below the cache's
     * level: with the quick entry set aside, it is a hit */
    ds_delta_cache_set_level(c, 19);
    { /* a full lookup misses the level-12 entry without counting a relevel
       * (the get that follows counts it, once) */
        ds_delta_cache_stats_t b4, af;
        uint64_t n = 0;
        int fd = -1;

        ds_delta_cache_stats(c, &b4);
        CHECK_INT(ds_delta_cache_lookup(c, DS_DELTA_FMT_ZPATCH2, p.asha, p.bsha, &fd, &n),
                  DS_ENOTFOUND);
        ds_delta_cache_stats(c, &af);
        CHECK(af.relevelled == b4.relevelled && af.hits == b4.hits);
    }
    CHECK_INT(unlink(path), 0);
    CHECK(qget(c, q2, &p, &v, &st) == fs && st.hits == 1 && st.computes == 0 && st.quick == 0);
    CHECK_INT(st.relevelled, 0);
    CHECK_INT(ds_delta_cache_ready(c, q2, p.asha, p.bsha), 1);
    CHECK_INT(count_files(dir, "[0-9a-f].*zpq$"), 0);
    /* a version 1 request has its own full entry; the quick one is shared */
    qs = qget(c, DS_DELTA_FMT_ZPATCH | DS_DELTA_QUICK, &p, &v, &st);
    CHECK(st.computes == 1 && st.quick == 1 && v == 1);
    CHECK(qget(c, q2, &p, &v, &st) == fs && st.hits == 1); /* still the full one */
    /* a flipped byte in the quick entry: dropped, recomputed */
    flip_byte(path, (off_t)(qs / 2));
    CHECK(qget(c, DS_DELTA_FMT_ZPATCH | DS_DELTA_QUICK, &p, &v, &st) == qs);
    CHECK(st.dropped == 1 && st.quick == 1 && v == 1);
    CHECK_INT(ds_delta_cache_drop(c, p.asha, p.bsha), 0);
    CHECK_INT(count_files(dir, "[0-9a-f]"), 0);
    ds_delta_cache_close(c);
    pair_free(&p);
}

/* DS_DELTA_QUICK is ignored with DS_DELTA_FMT_RSYNC (delta.h): a librsync
 * delta, computed once, never counted as a quick one. */
static void test_cache_quick_rsync(void)
{
    const int qr = DS_DELTA_FMT_RSYNC | DS_DELTA_QUICK;
    struct pair p;
    char dir[4200];
    ds_delta_cache_t *c = NULL;
    ds_delta_cache_stats_t st;
    uint64_t zs = 0;
    int fd = -1;
    char head[4] = {0};

    snprintf(dir, sizeof(dir), "%s/deltas-quick-rsync", tmp);
    CHECK_INT(ds_delta_cache_open(dir, 1 << 30, NULL, &c), 0);
    pair_make(&p, 100000, 19);
    CHECK_INT(ds_delta_cache_ready(c, qr, p.asha, p.bsha), 0);
    CHECK_INT(ds_delta_cache_get(c, qr, p.asha, p.bsha, &p.as, &p.bs, &fd, &zs), 0);
    CHECK(fd >= 0 && read(fd, head, 4) == 4 && memcmp(head, "rs\x02\x36", 4) == 0);
    if (fd >= 0)
        close(fd);
    ds_delta_cache_stats(c, &st);
    CHECK(st.computes == 1 && st.hits == 0);
    CHECK_INT((int)st.quick, 0);
    CHECK_INT(count_files(dir, "[0-9a-f].*rsd$"), 1);
    CHECK_INT(ds_delta_cache_ready(c, qr, p.asha, p.bsha), 1);
    CHECK(get(c, &p, 0) == zs); /* the plain request's entry */
    ds_delta_cache_close(c);
    pair_free(&p);
}

static long mem_src_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    memcpy(buf, (const uint8_t *)ctx + off, len);
    return (long)len;
}

static long eio_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    (void)ctx;
    (void)off;
    (void)buf;
    (void)len;
    return -EIO;
}

/* A delta whose check fails, on a target that then cannot be read again
 * (cancelled, an I/O error): the cache returns that error, not DS_ECHANGED
 * (which tells its callers the store file is not the version scanned). The
 * target's lying chunk list (the basis's own) makes every chunk a copy, so
 * the encoder reads none of the target and the check fails. */
static void test_cache_check_unreadable(void)
{
    size_t n = DS_ZPATCH_KNOWN_MIN, nrec = n / (64u << 10);
    uint8_t *b = malloc(n), *recs = calloc(nrec, 20), bsha[DS_SHA256_LEN], tsha[DS_SHA256_LEN];
    ds_delta_src_t bs = {.read = mem_src_read, .ctx = b, .size = n, .verified = 1};
    ds_delta_src_t ts = {.read = eio_read, .size = n};
    char dir[4200];
    ds_delta_cache_t *c = NULL;
    ds_delta_opts_t o = {.zpatch_level = 1};
    uint64_t zs = 0;
    int fd = -1;

    CHECK(b != NULL && recs != NULL);
    fill_random(b, n);
    for (size_t i = 0; i < nrec; i++) {
        memcpy(recs + i * 20, &i, sizeof(i));
        recs[i * 20 + 18] = 1; /* 64 KiB, little endian */
    }
    bs.chunks = ts.chunks = recs;
    bs.nchunks = ts.nchunks = nrec;
    CHECK_INT(ds_sha256(b, n, bsha), 0);
    b[n / 2] ^= 1; /* the target is the basis but for one byte */
    CHECK_INT(ds_sha256(b, n, tsha), 0);
    b[n / 2] ^= 1;
    snprintf(dir, sizeof(dir), "%s/deltas-eio", tmp);
    CHECK_INT(ds_delta_cache_open(dir, 1 << 30, &o, &c), 0);
    CHECK_INT(ds_delta_cache_get(c, DS_DELTA_FMT_ZPATCH, bsha, tsha, &bs, &ts, &fd, &zs), -EIO);
    CHECK_INT(fd, -1);
    CHECK_INT(count_files(dir, "[0-9a-f]"), 0);
    ds_delta_cache_close(c);
    free(recs);
    free(b);
}

int main(void)
{
    tmp = check_tmpdir("delta");
    RUN(test_patterns);
    RUN(test_issue_size);
    RUN(test_sha_and_check);
    RUN(test_retain_basis);
    RUN(test_cache);
    RUN(test_cache_corrupt);
    RUN(test_cache_zpatch);
    RUN(test_cache_levels);
    RUN(test_cache_quick);
    RUN(test_cache_quick_rsync);
    RUN(test_cache_check_unreadable);
    return CHECK_DONE();
}

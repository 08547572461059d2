/* Target manifest: round trip, corruption, version, atomic store. */
#include <fcntl.h>

#include "check.h"
#include "distsync/error.h"
#include "distsync/manifest.h"

static void sha_of(int i, uint8_t out[32])
{
    memset(out, 0, 32);
    out[0] = (uint8_t)i;
    out[31] = (uint8_t)(i >> 8);
}

static ds_manifest_t *sample(int n)
{
    ds_manifest_t *m = NULL;
    uint8_t sha[32];
    char path[64];

    CHECK_INT(ds_manifest_new(&m), 0);
    for (int i = n - 1; i >= 0; i--) {
        snprintf(path, sizeof(path), "cls/dir%d/file-%d.bin", i % 7, i);
        sha_of(i, sha);
        CHECK_INT(ds_manifest_put(m, path, (uint64_t)i * 1000, (int64_t)i * 7, sha), 0);
    }
    return m;
}

static void test_roundtrip(void)
{
    ds_manifest_t *m = sample(1000), *d = NULL;
    uint8_t *buf, *buf2, sha[32];
    size_t len, len2;
    const ds_manifest_entry_t *e;
    char err[256];

    CHECK_INT(ds_manifest_count(m), 1000);
    CHECK_INT(ds_manifest_encode(m, &buf, &len), 0);
    CHECK_INT(ds_manifest_decode(buf, len, &d, err, sizeof(err)), 0);
    CHECK_INT(ds_manifest_count(d), 1000);
    e = ds_manifest_get(d, "cls/dir3/file-500.bin");
    sha_of(500, sha);
    CHECK(e && e->size == 500000 && e->mtime_ns == 3500 && memcmp(e->sha256, sha, 32) == 0);
    CHECK(ds_manifest_get(d, "cls/dir3/nope") == NULL);
    /* encoding is canonical: same bytes again */
    CHECK_INT(ds_manifest_encode(d, &buf2, &len2), 0);
    CHECK(len == len2 && memcmp(buf, buf2, len) == 0);
    free(buf);
    free(buf2);
    ds_manifest_free(m);
    ds_manifest_free(d);
}

static void test_put_remove(void)
{
    ds_manifest_t *m = sample(300);
    uint8_t sha[32] = {9};
    const ds_manifest_entry_t **v;
    size_t n;

    for (int i = 0; i < 300; i += 2) {
        char path[64];

        snprintf(path, sizeof(path), "cls/dir%d/file-%d.bin", i % 7, i);
        CHECK_INT(ds_manifest_remove(m, path), 0);
        CHECK_INT(ds_manifest_remove(m, path), DS_ENOTFOUND);
    }
    CHECK_INT(ds_manifest_count(m), 150);
    CHECK(ds_manifest_get(m, "cls/dir1/file-1.bin") != NULL);
    CHECK(ds_manifest_get(m, "cls/dir0/file-0.bin") == NULL);
    CHECK_INT(ds_manifest_put(m, "cls/dir1/file-1.bin", 5, 6, sha), 0);
    CHECK_INT(ds_manifest_count(m), 150);
    CHECK_INT(ds_manifest_get(m, "cls/dir1/file-1.bin")->size, 5);
    CHECK_INT(ds_manifest_put(m, "../evil", 1, 1, sha), DS_EPATH);
    CHECK_INT(ds_manifest_put(m, ".distsync/x", 1, 1, sha), DS_EPATH);
    CHECK_INT(ds_manifest_sorted(m, &v, &n), 0);
    CHECK_INT(n, 150);
    for (size_t i = 1; i < n; i++)
        CHECK(strcmp(v[i - 1]->path, v[i]->path) < 0);
    free(v);
    ds_manifest_free(m);
}

static void test_corruption(void)
{
    ds_manifest_t *m = sample(20), *d = NULL;
    uint8_t *buf;
    size_t len;
    char err[256];

    CHECK_INT(ds_manifest_encode(m, &buf, &len), 0);
    /* every truncation fails */
    for (size_t i = 0; i < len; i++) {
        CHECK(ds_manifest_decode(buf, i, &d, err, sizeof(err)) < 0);
        CHECK(d == NULL);
    }
    /* every single-byte flip fails (checksum or header) */
    for (size_t i = 0; i < len; i += 3) {
        buf[i] ^= 0x40;
        CHECK(ds_manifest_decode(buf, len, &d, err, sizeof(err)) < 0);
        buf[i] ^= 0x40;
    }
    CHECK(strstr(err, "manifest") != NULL);
    /* a newer version is reported as such */
    buf[11] = 2;
    CHECK_INT(ds_manifest_decode(buf, len, &d, err, sizeof(err)), DS_EVERSION);
    buf[11] = 1;
    CHECK_INT(ds_manifest_decode(buf, len, &d, err, sizeof(err)), 0);
    ds_manifest_free(d);
    free(buf);
    ds_manifest_free(m);
}

/* Re-seals a hand-edited manifest with a fresh checksum. */
static void reseal(uint8_t *buf, size_t len)
{
    CHECK_INT(ds_sha256(buf, len - 32, buf + len - 32), 0);
}

static void test_semantic_checks(void)
{
    ds_manifest_t *m = NULL, *d = NULL;
    uint8_t sha[32] = {0}, *buf;
    size_t len;
    char err[256];

    CHECK_INT(ds_manifest_new(&m), 0);
    CHECK_INT(ds_manifest_put(m, "aa", 1, 1, sha), 0);
    CHECK_INT(ds_manifest_put(m, "bb", 1, 1, sha), 0);
    CHECK_INT(ds_manifest_encode(m, &buf, &len), 0);
    /* swap order: "bb" before "aa" -> unsorted */
    buf[24 + 2] = 'b';
    buf[24 + 3] = 'b';
    buf[24 + 2 + 2 + 48 + 2] = 'a';
    buf[24 + 2 + 2 + 48 + 3] = 'a';
    reseal(buf, len);
    CHECK_INT(ds_manifest_decode(buf, len, &d, err, sizeof(err)), DS_ECORRUPT);
    CHECK(strstr(err, "sorted") != NULL);
    /* duplicate */
    buf[24 + 2 + 2 + 48 + 2] = 'b';
    buf[24 + 2 + 2 + 48 + 3] = 'b';
    reseal(buf, len);
    CHECK_INT(ds_manifest_decode(buf, len, &d, err, sizeof(err)), DS_ECORRUPT);
    /* unsafe path */
    buf[24 + 2] = '.';
    buf[24 + 3] = '.';
    reseal(buf, len);
    CHECK_INT(ds_manifest_decode(buf, len, &d, err, sizeof(err)), DS_ECORRUPT);
    CHECK(strstr(err, "unsafe") != NULL);
    /* count larger than the file */
    buf[16] = 0x7f;
    reseal(buf, len);
    CHECK_INT(ds_manifest_decode(buf, len, &d, err, sizeof(err)), DS_ECORRUPT);
    free(buf);
    ds_manifest_free(m);
}

/* The decoder fed in slices: same result at every slice size, the caps on
 * size and entry count, truncation, trailing bytes, use after an error. */
static void test_stream(void)
{
    ds_manifest_t *m = sample(500), *d = NULL;
    ds_manifest_decoder_t *dec = NULL;
    uint8_t *buf;
    size_t len;

    CHECK_INT(ds_manifest_encode(m, &buf, &len), 0);
    for (size_t slice = 1; slice <= len; slice = slice * 3 + 1) {
        CHECK_INT(ds_manifest_decoder_new(len, 500, &dec), 0);
        for (size_t off = 0; off < len; off += slice)
            CHECK_INT(
                ds_manifest_decoder_feed(dec, buf + off, off + slice > len ? len - off : slice), 0);
        CHECK_INT(ds_manifest_decoder_finish(dec, &d), 0);
        CHECK(d != NULL && ds_manifest_count(d) == 500);
        ds_manifest_free(d);
        d = NULL;
        ds_manifest_decoder_free(dec);
    }
    /* one byte over the size cap */
    CHECK_INT(ds_manifest_decoder_new(len - 1, 0, &dec), 0);
    CHECK_INT(ds_manifest_decoder_feed(dec, buf, len - 1), 0);
    CHECK_INT(ds_manifest_decoder_feed(dec, buf + len - 1, 1), DS_ETOOBIG);
    CHECK(strstr(ds_manifest_decoder_error(dec), "larger than the") != NULL);
    CHECK_INT(ds_manifest_decoder_finish(dec, &d), DS_ETOOBIG);
    ds_manifest_decoder_free(dec);
    /* more entries announced than allowed: refused at the header */
    CHECK_INT(ds_manifest_decoder_new(0, 499, &dec), 0);
    CHECK_INT(ds_manifest_decoder_feed(dec, buf, 24), DS_ETOOBIG);
    CHECK(strstr(ds_manifest_decoder_error(dec), "500 entries, more than the limit of 499") !=
          NULL);
    ds_manifest_decoder_free(dec);
    /* truncated, then trailing bytes */
    CHECK_INT(ds_manifest_decoder_new(0, 0, &dec), 0);
    CHECK_INT(ds_manifest_decoder_feed(dec, buf, len - 1), 0);
    CHECK_INT(ds_manifest_decoder_finish(dec, &d), DS_ECORRUPT);
    CHECK(strstr(ds_manifest_decoder_error(dec), "truncated") != NULL);
    ds_manifest_decoder_free(dec);
    CHECK_INT(ds_manifest_decoder_new(0, 0, &dec), 0);
    CHECK_INT(ds_manifest_decoder_feed(dec, buf, len), 0);
    CHECK_INT(ds_manifest_decoder_feed(dec, "x", 1), DS_ECORRUPT);
    CHECK(strstr(ds_manifest_decoder_error(dec), "trailing bytes") != NULL);
    CHECK(d == NULL);
    ds_manifest_decoder_free(dec);
    free(buf);
    ds_manifest_free(m);
}

static void test_store_load(void)
{
    const char *dir = check_tmpdir("manifest");
    ds_manifest_t *m = sample(50), *d = NULL;
    char err[256], p[4200];
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);

    CHECK_INT(ds_manifest_load(dfd, &d, err, sizeof(err)), 0); /* missing: empty */
    CHECK(d && ds_manifest_count(d) == 0);
    ds_manifest_free(d);
    CHECK_INT(ds_manifest_store(dfd, m), 0);
    CHECK_INT(ds_manifest_load(dfd, &d, err, sizeof(err)), 0);
    CHECK(d && ds_manifest_count(d) == 50);
    ds_manifest_free(d);
    snprintf(p, sizeof(p), "%s/manifest.tmp", dir);
    CHECK(access(p, F_OK) != 0); /* no temp left behind */
    snprintf(p, sizeof(p), "%s/manifest", dir);
    truncate(p, 100);
    CHECK_INT(ds_manifest_load(dfd, &d, err, sizeof(err)), DS_ECORRUPT);
    CHECK(d == NULL);
    close(dfd);
    ds_manifest_free(m);
}

/* A replace that died between its delete and its rename (SMB) leaves only
 * manifest.tmp: the loader takes it (1) when it is whole, and starts empty
 * (0) when it was cut short while written. */
static void test_load_interrupted_replace(void)
{
    const char *dir = check_tmpdir("manifest-tmp");
    ds_manifest_t *m = sample(40), *d = NULL;
    char err[256], p[4200], t[4200];
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);

    CHECK_INT(ds_manifest_store(dfd, m), 0);
    snprintf(p, sizeof(p), "%s/manifest", dir);
    snprintf(t, sizeof(t), "%s/manifest.tmp", dir);
    CHECK_INT(rename(p, t), 0);
    CHECK_INT(ds_manifest_load(dfd, &d, err, sizeof(err)), 1);
    CHECK(d && ds_manifest_count(d) == 40);
    ds_manifest_free(d);
    CHECK_INT(truncate(t, 100), 0);
    CHECK_INT(ds_manifest_load(dfd, &d, err, sizeof(err)), 0);
    CHECK(d && ds_manifest_count(d) == 0);
    ds_manifest_free(d);
    close(dfd);
    ds_manifest_free(m);
}

int main(void)
{
    RUN(test_roundtrip);
    RUN(test_put_remove);
    RUN(test_corruption);
    RUN(test_semantic_checks);
    RUN(test_stream);
    RUN(test_store_load);
    RUN(test_load_interrupted_replace);
    return CHECK_DONE();
}

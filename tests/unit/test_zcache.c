/* Compressed-frame cache (ds_session_zcache_*) and a fan-out through it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "check.h"
#include "distsync/config.h"
#include "distsync/error.h"
#include "distsync/scan.h"
#include "distsync/session.h"
#include "distsync/sync.h"

/* Text-like bytes: compressible, seed-dependent. */
static void fill_text(uint8_t *p, size_t n, uint32_t seed)
{
    static const char *const words[] = {"alpha ", "beta ", "gamma ", "delta ", "signature\n"};

    for (size_t i = 0; i < n;) {
        const char *w;

        seed = seed * 1103515245u + 12345u;
        w = words[(seed >> 16) % 5];
        for (size_t k = 0; w[k] && i < n; k++)
            p[i++] = (uint8_t)w[k];
    }
}

static void fill_random(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* 1 when z[0, zlen) decompresses to exactly p[0, n). */
static int unpacks_to(const uint8_t *z, size_t zlen, const uint8_t *p, size_t n)
{
    uint8_t *out = malloc(n + 1);
    size_t r = out ? ZSTD_decompress(out, n + 1, z, zlen) : 0;
    int ok = out && !ZSTD_isError(r) && r == n && memcmp(out, p, n) == 0;

    free(out);
    return ok;
}

static void test_reuse(void)
{
    size_t n = 300000, zlen = 0, zlen2 = 0;
    uint8_t *p = malloc(n), *first = NULL;
    const uint8_t *z = NULL;
    ds_session_zcache_t *c = NULL;
    uint64_t hits, misses;

    CHECK_INT(ds_session_zcache_new(0, &c), 0);
    if (p == NULL || c == NULL)
        goto out;
    fill_text(p, n, 1);
    CHECK_INT(ds_session_zcache_compress(c, 3, p, n, &z, &zlen), 0);
    CHECK(z != NULL && zlen > 0 && zlen < n / 2);
    CHECK(unpacks_to(z, zlen, p, n));
    first = malloc(zlen);
    if (first == NULL || z == NULL)
        goto out;
    memcpy(first, z, zlen);
    /* the same bytes from another buffer: a hit, identical output */
    {
        uint8_t *q = malloc(n);

        CHECK(q != NULL);
        if (q != NULL) {
            memcpy(q, p, n);
            CHECK_INT(ds_session_zcache_compress(c, 3, q, n, &z, &zlen2), 1);
            CHECK(zlen2 == zlen && z != NULL && memcmp(z, first, zlen) == 0);
            free(q);
        }
    }
    ds_session_zcache_stats(c, &hits, &misses);
    CHECK_INT(hits, 1);
    CHECK_INT(misses, 1);
    /* one byte changed: a miss, and the output is that of the new bytes */
    p[n / 2] ^= 0x55;
    CHECK_INT(ds_session_zcache_compress(c, 3, p, n, &z, &zlen2), 0);
    CHECK(z != NULL && unpacks_to(z, zlen2, p, n));
    /* another level is another entry */
    CHECK_INT(ds_session_zcache_compress(c, 1, p, n, &z, &zlen2), 0);
    CHECK(z != NULL && unpacks_to(z, zlen2, p, n));
    CHECK_INT(ds_session_zcache_compress(c, 1, p, n, &z, &zlen2), 1);
    /* incompressible: "does not pay", cached as such */
    fill_random(p, n, 7);
    CHECK_INT(ds_session_zcache_compress(c, 3, p, n, &z, &zlen2), 0);
    CHECK(z == NULL && zlen2 == 0);
    CHECK_INT(ds_session_zcache_compress(c, 3, p, n, &z, &zlen2), 1);
    CHECK(z == NULL && zlen2 == 0);
out:
    free(first);
    free(p);
    ds_session_zcache_free(c);
}

/* Past its cap the cache admits nothing, but still compresses correctly. */
static void test_cap(void)
{
    size_t n = 100000, zlen = 0;
    uint8_t *p = malloc(n);
    const uint8_t *z = NULL;
    ds_session_zcache_t *c = NULL;
    uint64_t hits, misses;

    CHECK_INT(ds_session_zcache_new(1000, &c), 0);
    if (p == NULL || c == NULL)
        goto out;
    fill_text(p, n, 3);
    for (int i = 0; i < 2; i++) {
        CHECK_INT(ds_session_zcache_compress(c, 3, p, n, &z, &zlen), 0);
        CHECK(z != NULL && unpacks_to(z, zlen, p, n));
    }
    ds_session_zcache_stats(c, &hits, &misses);
    CHECK_INT(hits, 0);
    CHECK_INT(misses, 2);
    ds_session_zcache_free(NULL);
out:
    free(p);
    ds_session_zcache_free(c);
}

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(p, 1, n, f) == n;

    if (f)
        fclose(f);
    return ok ? 0 : -1;
}

/* 1 when the two files hold the same bytes. */
static int same_file(const char *a, const char *b)
{
    char cmd[2100];

    snprintf(cmd, sizeof(cmd), "cmp -s '%.1000s' '%.1000s'", a, b);
    return system(cmd) == 0;
}

/* One ds_sync_t, three servers: each gets the same bytes on the wire
 * (frames compressed once, then reused) and the same files. */
static void test_fanout(void)
{
    char base[256], text[4096], p[2048], q[1024];
    size_t n = 2u << 20;
    uint8_t *buf = malloc(n);
    ds_config_t *cfg = NULL;
    ds_sync_opts_t o = {0};
    ds_sync_t *sy = NULL;
    ds_sync_result_t res;
    uint64_t wire[3] = {0};
    char err[1024];
    int len;

    snprintf(base, sizeof(base), "%.200s", check_tmpdir("test_zcache_fanout"));
    len =
        snprintf(text, sizeof(text), "[console]\nstore = %s/store\nstate = %s/state\n", base, base);
    for (int i = 0; i < 3; i++)
        len += snprintf(text + len, sizeof(text) - (size_t)len,
                        "[server t%d]\nurl = file://%s/t%d\nclasses = definitions\n", i, base, i);
    snprintf(p, sizeof(p), "mkdir -p %s/store/definitions %s/t0 %s/t1 %s/t2", base, base, base,
             base);
    CHECK(buf && system(p) == 0);
    CHECK_INT(ds_config_parse(text, "test.conf", NULL, &cfg, err, sizeof(err)), 0);
    if (cfg == NULL || buf == NULL)
        goto out;
    fill_text(buf, n, 11);
    snprintf(p, sizeof(p), "%s/store/definitions/d.dat", base);
    CHECK_INT(write_file(p, buf, n), 0);
    o.cfg = cfg;
    o.no_fsync = 1;
    CHECK_INT(ds_sync_open(&o, &sy, err, sizeof(err)), 0);
    if (sy == NULL)
        goto out;
    {
        ds_scan_opts_t so = {.store = cfg->store,
                             .classes = (const char *const *)cfg->classes.v,
                             .nclasses = cfg->classes.n,
                             .threads = 1};

        CHECK_INT(ds_scan_run(&so, ds_sync_catalog(sy), NULL), 0);
    }
    for (int i = 0; i < 3; i++) {
        CHECK_INT(ds_sync_server(sy, &cfg->servers[i], DS_SYNC_RUN, &res), 0);
        CHECK_INT(res.created, 1);
        wire[i] = res.bytes_wire;
        ds_sync_result_clear(&res);
        snprintf(q, sizeof(q), "%s/t%d/definitions/d.dat", base, i);
        CHECK(same_file(p, q));
    }
    CHECK(wire[0] > 0 && wire[0] < n / 2); /* compressed */
    CHECK(wire[1] == wire[0] && wire[2] == wire[0]);
out:
    ds_sync_close(sy);
    ds_config_free(cfg);
    free(buf);
}

int main(void)
{
    RUN(test_reuse);
    RUN(test_cap);
    RUN(test_fanout);
    return CHECK_DONE();
}

/* Digest primitives against known vectors. */
#include "check.h"
#include "distsync/digest.h"
#include "distsync/error.h"

static void test_sha256_vectors(void)
{
    uint8_t d[DS_SHA256_LEN];
    char hex[2 * DS_SHA256_LEN + 1];

    CHECK_INT(ds_sha256("abc", 3, d), 0);
    ds_hex(d, sizeof(d), hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK_INT(ds_sha256("", 0, d), 0);
    ds_hex(d, sizeof(d), hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_sha256_incremental_equals_oneshot(void)
{
    static uint8_t buf[100000];
    uint8_t a[DS_SHA256_LEN], b[DS_SHA256_LEN];
    ds_sha256_t s;

    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 2654435761u >> 13);
    CHECK_INT(ds_sha256(buf, sizeof(buf), a), 0);
    CHECK_INT(ds_sha256_init(&s), 0);
    for (size_t off = 0; off < sizeof(buf); off += 777)
        ds_sha256_update(&s, buf + off, off + 777 > sizeof(buf) ? sizeof(buf) - off : 777);
    ds_sha256_final(&s, b);
    CHECK(memcmp(a, b, sizeof(a)) == 0);
    ds_sha256_close(&s); /* no-op after final */
}

static void test_xxh128_empty(void)
{
    uint8_t d[DS_XXH128_LEN];
    char hex[2 * DS_XXH128_LEN + 1];

    /* XXH3-128 of the empty input, as printed by `xxhsum -H2 /dev/null`. */
    ds_xxh128("", 0, d);
    ds_hex(d, sizeof(d), hex);
    CHECK_STR(hex, "99aa06d3014798d86001c324468d497f");
}

static void test_unhex(void)
{
    uint8_t out[2];

    CHECK_INT(ds_unhex("a0Ff", out, 2), 0);
    CHECK_INT(out[0], 0xa0);
    CHECK_INT(out[1], 0xff);
    CHECK_INT(ds_unhex("a0F", out, 2), DS_ECORRUPT);
    CHECK_INT(ds_unhex("a0Fg", out, 2), DS_ECORRUPT);
    CHECK_INT(ds_unhex("a0Ff0", out, 2), DS_ECORRUPT);
}

static void test_error_names(void)
{
    CHECK_STR(ds_err_name(DS_ECONFIG), "DS_ECONFIG");
    CHECK_STR(ds_strerror(DS_EPATH), "path is unsafe (absolute, '..', or escapes the root)");
    CHECK_STR(ds_err_name(-2), "ENOENT");
}

static void test_errf(void)
{
    char err[16];

    CHECK_INT(ds_errf(err, sizeof(err), DS_ECONFIG, "key '%s': %d", "url", 42), DS_ECONFIG);
    CHECK_STR(err, "key 'url': 42");
    CHECK_INT(ds_errf(err, 8, DS_ESCHEDULE, "%s", "truncated here"), DS_ESCHEDULE);
    CHECK_STR(err, "truncat");
    CHECK_INT(ds_errf(NULL, 0, DS_ERANGE, "%s", "nowhere"), DS_ERANGE);
}

int main(void)
{
    RUN(test_sha256_vectors);
    RUN(test_sha256_incremental_equals_oneshot);
    RUN(test_xxh128_empty);
    RUN(test_unhex);
    RUN(test_error_names);
    RUN(test_errf);
    return CHECK_DONE();
}

/* The bundle's text parts (src/target/bundle_fmt.c): header and index
 * round trips, and the lines a hostile bundle could carry refused. */
#include "check.h"
#include "distsync/bundle.h"
#include "distsync/error.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void test_hdr_roundtrip(void)
{
    ds_bundle_hdr_t h = {.version = 1,
                         .has_basis = 1,
                         .created = 1700000000,
                         .items = 3,
                         .data_bytes = 12345},
                    g;
    char err[256], *txt = NULL;
    size_t len = 0;

    snprintf(h.server, sizeof(h.server), "lyon vault");
    snprintf(h.console, sizeof(h.console), "host:0123456789ab");
    memset(h.basis, 0x11, sizeof(h.basis));
    memset(h.result, 0x22, sizeof(h.result));
    CHECK_INT(ds_bundle_hdr_encode(&h, &txt, &len), 0);
    CHECK_INT(ds_bundle_hdr_parse(txt, len, &g, err, sizeof(err)), 0);
    CHECK_STR(g.server, "lyon vault");
    CHECK_STR(g.console, "host:0123456789ab");
    CHECK(g.has_basis && memcmp(g.basis, h.basis, DS_SHA256_LEN) == 0);
    CHECK(memcmp(g.result, h.result, DS_SHA256_LEN) == 0);
    CHECK_INT(g.items, 3);
    CHECK_INT(g.data_bytes, 12345);
    free(txt);
    h.has_basis = 0; /* --full */
    CHECK_INT(ds_bundle_hdr_encode(&h, &txt, &len), 0);
    CHECK(strstr(txt, "basis none\n") != NULL);
    CHECK_INT(ds_bundle_hdr_parse(txt, len, &g, err, sizeof(err)), 0);
    CHECK_INT(g.has_basis, 0);
    free(txt);
}

static void test_hdr_refused(void)
{
    static const char *bad[] = {
        "",
        "distsync-bundle 1\n",                     /* fields missing */
        "not-a-bundle 1\nserver s\n",              /* magic */
        "distsync-bundle 1\nserver s\nserver t\n", /* repeated */
        "distsync-bundle 1\nserver a\x01"
        "b\nconsole c\n",              /* control byte */
        "distsync-bundle 1\nserver s", /* no newline */
        "distsync-bundle 1\nserver s\nconsole c\nbasis none\nresult " SHA_A
        "\ncreated 1\nitems 99999999999\ndata 0\n", /* items over the cap */
        "distsync-bundle 1\nserver s\nconsole c\nbasis zz\nresult " SHA_A
        "\ncreated 1\nitems 1\ndata 0\n", /* not hex */
    };
    ds_bundle_hdr_t g;
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK_INT(ds_bundle_hdr_parse(bad[i], strlen(bad[i]), &g, err, sizeof(err)), DS_ECORRUPT);
        CHECK(err[0] != '\0');
    }
    CHECK_INT(ds_bundle_hdr_parse("distsync-bundle 2\n", 18, &g, err, sizeof(err)), DS_EVERSION);
    CHECK(strstr(err, "version 2") != NULL);
}

static void test_index_roundtrip(void)
{
    ds_bundle_item_t in[3] = {
        {.op = DS_BUNDLE_PUT,
         .how = DS_BUNDLE_LIT,
         .path = "a/b c.bin",
         .size = 5,
         .mode = 0755,
         .mtime_ns = -7,
         .data_len = 5},
        {.op = DS_BUNDLE_PUT,
         .how = DS_BUNDLE_DELTA,
         .path = "x",
         .size = 900,
         .mode = 0644,
         .mtime_ns = 1,
         .basis = "a/b c.bin",
         .data_len = 40},
        {.op = DS_BUNDLE_DEL, .path = "old/gone"},
    };
    ds_bundle_item_t *out = NULL;
    char *buf = NULL, err[256];
    size_t len = 0, cap = 0, n = 0;

    memset(in[0].sha256, 1, DS_SHA256_LEN);
    memset(in[0].data_sha256, 1, DS_SHA256_LEN);
    memset(in[1].sha256, 2, DS_SHA256_LEN);
    memset(in[1].basis_sha256, 1, DS_SHA256_LEN);
    memset(in[1].data_sha256, 3, DS_SHA256_LEN);
    for (int i = 0; i < 3; i++)
        CHECK_INT(ds_bundle_item_encode(&in[i], &buf, &len, &cap), 0);
    CHECK_INT(ds_bundle_index_parse(buf, len, &out, &n, err, sizeof(err)), 0);
    CHECK_INT(n, 3);
    if (n == 3) {
        CHECK_STR(out[0].path, "a/b c.bin");
        CHECK_INT(out[0].how, DS_BUNDLE_LIT);
        CHECK_INT(out[0].mode, 0755);
        CHECK_INT(out[0].mtime_ns, -7);
        CHECK(out[0].basis == NULL);
        CHECK_INT(out[1].how, DS_BUNDLE_DELTA);
        CHECK_STR(out[1].basis, "a/b c.bin");
        CHECK_INT(out[1].data_len, 40);
        CHECK(memcmp(out[1].data_sha256, in[1].data_sha256, DS_SHA256_LEN) == 0);
        CHECK_INT(out[2].op, DS_BUNDLE_DEL);
        CHECK_STR(out[2].path, "old/gone");
    }
    ds_bundle_items_free(out, n);
    free(buf);
}

static void test_index_refused(void)
{
    static const struct {
        const char *line;
        int rc;
    } bad[] = {
        {"del\t../etc/passwd\n", DS_EPATH},
        {"del\t/abs\n", DS_EPATH},
        {"del\t.distsync/manifest\n", DS_EPATH},
        {"put\t../x\t1\t644\t0\t" SHA_A "\tlit\t-\t-\t1\t" SHA_A "\n", DS_EPATH},
        {"put\tx\t1\t644\t0\t" SHA_A "\tdelta\t../y\t" SHA_B "\t1\t" SHA_A "\n", DS_EPATH},
        /* a lit item whose data is not its size: the size lies */
        {"put\tx\t10\t644\t0\t" SHA_A "\tlit\t-\t-\t9\t" SHA_A "\n", DS_ECORRUPT},
        /* a lit item with a basis, a delta without one */
        {"put\tx\t1\t644\t0\t" SHA_A "\tlit\ty\t" SHA_B "\t1\t" SHA_A "\n", DS_ECORRUPT},
        {"put\tx\t1\t644\t0\t" SHA_A "\tdelta\t-\t-\t1\t" SHA_A "\n", DS_ECORRUPT},
        /* a copy with data */
        {"put\tx\t1\t644\t0\t" SHA_A "\tcopy\ty\t" SHA_A "\t1\t" SHA_A "\n", DS_ECORRUPT},
        {"put\tx\t1\t7777\t0\t" SHA_A "\tlit\t-\t-\t1\t" SHA_A "\n", DS_ECORRUPT},
        {"put\tx\t1\t644\t0\t" SHA_A "\tlit\t-\t-\t1\t" SHA_A "\textra\n", DS_ECORRUPT},
        {"put\tx\t2199023255553\t644\t0\t" SHA_A "\tcopy\ty\t" SHA_A "\t0\t-\n", DS_ECORRUPT},
        {"del\tx\ndel\tx\n", DS_ECORRUPT}, /* twice */
        {"del\tx", DS_ECORRUPT},           /* no newline */
        {"rm\tx\n", DS_ECORRUPT},
    };
    ds_bundle_item_t *out = NULL;
    char err[256];
    size_t n = 0;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK_INT(
            ds_bundle_index_parse(bad[i].line, strlen(bad[i].line), &out, &n, err, sizeof(err)),
            bad[i].rc);
        CHECK(out == NULL && n == 0 && err[0] != '\0');
    }
}

int main(void)
{
    RUN(test_hdr_roundtrip);
    RUN(test_hdr_refused);
    RUN(test_index_roundtrip);
    RUN(test_index_refused);
    return CHECK_DONE();
}

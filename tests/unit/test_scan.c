/*
 * Scan: incremental decisions (modify, delete, rename, touch), hashes
 * against one-shot digests, walk order against the catalog order, and the
 * per-file warnings. Unreadable files (EACCES) are not tested: the tests
 * run as root, which reads everything.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "check.h"
#include "distsync/catalog.h"
#include "distsync/error.h"
#include "distsync/scan.h"
#include "store/scan_int.h"

static char root[4200], store[4300], dbpath[4300];
static char warnings[8192];

/* Paths reach the callback raw; the test escapes them as the CLI does. */
static void on_warn(void *ctx, const char *path, int err, const char *what)
{
    size_t n = strlen(warnings);
    char esc[2048];

    ds_escape_name(path, strlen(path), esc, sizeof(esc));
    snprintf(warnings + n, sizeof(warnings) - n, "%s: %s\n", esc, what);
}

static void setup(const char *name)
{
    snprintf(root, sizeof(root), "%s", check_tmpdir(name));
    snprintf(store, sizeof(store), "%s/store", root);
    snprintf(dbpath, sizeof(dbpath), "%s/catalog.db", root);
    mkdir(store, 0755);
}

static void mkdirs(const char *rel)
{
    char p[8192], cmd[8300];

    snprintf(p, sizeof(p), "%s/%s", store, rel);
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", p);
    CHECK_INT(system(cmd), 0);
}

/* Writes size pseudo-random bytes (seeded) to store/rel. */
static void write_file(const char *rel, size_t size, unsigned seed)
{
    char p[8192];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", store, rel);
    f = fopen(p, "wb");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    for (size_t i = 0; i < size; i++) {
        seed = seed * 1103515245u + 12345u;
        fputc((int)(seed >> 16), f);
    }
    fclose(f);
}

static int scan(unsigned threads, ds_scan_stats_t *st)
{
    static const char *const classes[] = {"patches", "engines", "definitions"};
    ds_scan_opts_t o = {.store = store, .classes = classes, .nclasses = 3, .threads = threads};
    ds_catalog_t *cat = NULL;
    char err[512];
    int rc;

    /* Small chunks, so that test files have many of them. */
    o.chunk.min_size = 1024;
    o.chunk.avg_size = 4096;
    o.chunk.max_size = 16384;
    o.warn = on_warn;
    warnings[0] = '\0';
    CHECK_INT(ds_catalog_open(dbpath, &cat, err, sizeof(err)), 0);
    rc = ds_scan_run(&o, cat, st);
    ds_catalog_free(cat);
    return rc;
}

/* Loads the file row at rel, or returns DS_ENOTFOUND. */
static int get_row(const char *rel, ds_file_row_t *row, ds_content_t *c)
{
    static char buf[8192];
    ds_catalog_t *cat = NULL;
    char err[512];
    int rc;

    CHECK_INT(ds_catalog_open(dbpath, &cat, err, sizeof(err)), 0);
    rc = ds_catalog_file_get(cat, rel, row, buf, sizeof(buf));
    if (rc == 0 && c != NULL)
        rc = ds_catalog_content_get(cat, row->content_id, c);
    ds_catalog_free(cat);
    return rc;
}

/* ds_catalog_scanned() of the catalog at dbpath. */
static int scanned(void)
{
    ds_catalog_t *cat = NULL;
    char err[512];
    int rc;

    CHECK_INT(ds_catalog_open(dbpath, &cat, err, sizeof(err)), 0);
    rc = ds_catalog_scanned(cat, NULL);
    ds_catalog_free(cat);
    return rc;
}

static uint64_t count_contents(void)
{
    ds_catalog_t *cat = NULL;
    uint64_t nf = 0, nc = 0;
    char err[512];

    CHECK_INT(ds_catalog_open(dbpath, &cat, err, sizeof(err)), 0);
    CHECK_INT(ds_catalog_counts(cat, &nf, &nc), 0);
    ds_catalog_free(cat);
    return nc;
}

/* Checks the row's SHA-256 and every chunk's XXH3-128 against the file. */
static void verify_hashes(const char *rel)
{
    char p[8192];
    ds_file_row_t row;
    ds_content_t c = {0};
    uint8_t *data, d[DS_SHA256_LEN];
    struct stat st;
    size_t off = 0;
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", store, rel);
    CHECK_INT(stat(p, &st), 0);
    data = malloc((size_t)st.st_size + 1);
    f = fopen(p, "rb");
    CHECK_INT(fread(data, 1, (size_t)st.st_size, f), st.st_size);
    fclose(f);
    CHECK_INT(get_row(rel, &row, &c), 0);
    CHECK_INT(ds_sha256(data, (size_t)st.st_size, d), 0);
    CHECK(memcmp(d, c.sha256, DS_SHA256_LEN) == 0);
    CHECK_INT(c.size, st.st_size);
    for (uint32_t i = 0; i < c.nchunks; i++) {
        const uint8_t *rec = c.chunks + (size_t)i * DS_CATALOG_CHUNK_REC;
        uint32_t len = rec[16] | rec[17] << 8 | rec[18] << 16 | (uint32_t)rec[19] << 24;

        CHECK(len <= 16384);
        CHECK(off + len <= (size_t)st.st_size);
        if (off + len > (size_t)st.st_size)
            break;
        ds_xxh128(data + off, len, d);
        CHECK(memcmp(d, rec, DS_XXH128_LEN) == 0);
        off += len;
    }
    CHECK_INT(off, st.st_size);
    ds_content_clear(&c);
    free(data);
}

static void test_first_scan_hashes(void)
{
    ds_scan_stats_t st;

    setup("scan_first");
    mkdirs("patches/kb1");
    mkdirs("engines");
    write_file("patches/kb1/big.msu", 300000, 1);
    write_file("patches/small", 10, 2);
    write_file("engines/empty", 0, 3);
    CHECK_INT(scanned(), 0);
    CHECK_INT(scan(2, &st), 0);
    CHECK_INT(scanned(), 1); /* a completed scan marks the catalog */
    CHECK_INT(st.files, 3);
    CHECK_INT(st.added, 3);
    CHECK_INT(st.hashed, 3);
    CHECK_INT(st.bytes_hashed, 300010);
    CHECK_INT(st.contents_new, 3);
    /* definitions/ does not exist: one warning. */
    CHECK_INT(st.warnings, 1);
    CHECK(strstr(warnings, "definitions: class folder is missing") != NULL);
    verify_hashes("patches/kb1/big.msu");
    verify_hashes("patches/small");
    verify_hashes("engines/empty");
    /* Nothing changed: nothing is read. */
    CHECK_INT(scan(1, &st), 0);
    CHECK_INT(st.unchanged, 3);
    CHECK_INT(st.hashed, 0);
    CHECK_INT(st.bytes_hashed, 0);
}

static void test_incremental(void)
{
    ds_file_row_t row;
    ds_scan_stats_t st;
    struct timespec ts[2] = {{0, UTIME_OMIT}, {1000000, 5}};
    char p[8192], q[8192];
    int64_t old_id;
    uint64_t contents;

    setup("scan_incr");
    mkdirs("patches");
    mkdirs("definitions");
    write_file("patches/a", 50000, 1);
    write_file("patches/b", 50000, 2);
    write_file("definitions/d-2026-01-01", 20000, 3);
    write_file("definitions/gone", 20000, 4);
    CHECK_INT(scan(2, &st), 0);
    CHECK_INT(st.added, 4);
    contents = count_contents();
    CHECK_INT(get_row("patches/a", &row, NULL), 0);
    old_id = row.content_id;

    /* modify, touch (mtime only), delete, rename */
    write_file("patches/b", 50001, 2);
    snprintf(p, sizeof(p), "%s/patches/a", store);
    CHECK_INT(utimensat(AT_FDCWD, p, ts, 0), 0);
    snprintf(p, sizeof(p), "%s/definitions/gone", store);
    CHECK_INT(unlink(p), 0);
    snprintf(p, sizeof(p), "%s/definitions/d-2026-01-01", store);
    snprintf(q, sizeof(q), "%s/definitions/d-2026-01-02", store);
    CHECK_INT(rename(p, q), 0);
    CHECK_INT(scan(2, &st), 0);
    CHECK_INT(st.files, 3);
    CHECK_INT(st.changed, 1);
    CHECK_INT(st.touched, 1);
    CHECK_INT(st.added, 1);
    CHECK_INT(st.removed, 2);
    CHECK_INT(st.unchanged, 0);
    CHECK_INT(st.contents_new, 1); /* only b's new version */
    CHECK_INT(st.warnings, 1);     /* engines/ is missing */
    CHECK_INT(count_contents(), contents + 1);
    CHECK_INT(get_row("patches/a", &row, NULL), 0);
    CHECK_INT(row.content_id, old_id);
    CHECK_INT(row.mtime_ns, 1000000LL * 1000000000LL + 5);
    CHECK_INT(get_row("definitions/gone", &row, NULL), DS_ENOTFOUND);
    CHECK_INT(get_row("definitions/d-2026-01-01", &row, NULL), DS_ENOTFOUND);
    CHECK_INT(get_row("definitions/d-2026-01-02", &row, NULL), 0);
    verify_hashes("patches/b");
    CHECK_INT(scan(2, &st), 0);
    CHECK_INT(st.unchanged, 3);
    CHECK_INT(st.removed, 0);
}

/* The walk visits paths in the catalog's byte order, even where '.', '-'
 * and '0' sort around '/': a rescan must find every row, remove none. */
static void test_walk_order(void)
{
    static const char *const files[] = {"patches/a/x", "patches/a.b",   "patches/a-",
                                        "patches/a0",  "patches/a/y/z", "patches/a b",
                                        "patches/é",   "patches/a/é/1", "patches/A"};
    ds_scan_stats_t st;

    setup("scan_order");
    mkdirs("patches/a/y");
    mkdirs("patches/a/é");
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        write_file(files[i] + 0, 100 + i, (unsigned)i);
    CHECK_INT(scan(2, &st), 0);
    CHECK_INT(st.added, 9);
    CHECK_INT(scan(2, &st), 0);
    CHECK_INT(st.unchanged, 9);
    CHECK_INT(st.removed, 0);
    CHECK_INT(st.added, 0);
}

static void test_warnings(void)
{
    ds_scan_stats_t st;
    ds_file_row_t row;
    char p[8192], q[8192];

    setup("scan_warn");
    mkdirs("patches/sub");
    mkdirs("engines");
    mkdirs("definitions");
    write_file("patches/ok", 1000, 1);
    snprintf(p, sizeof(p), "%s/patches/out", store);
    CHECK_INT(symlink("/etc/hostname", p), 0);
    snprintf(p, sizeof(p), "%s/patches/up", store);
    CHECK_INT(symlink("../../outside", p), 0);
    snprintf(p, sizeof(p), "%s/patches/sub/in", store);
    CHECK_INT(symlink("../ok", p), 0);
    snprintf(p, sizeof(p), "%s/patches/abs-in", store);
    snprintf(q, sizeof(q), "%s/engines", store);
    CHECK_INT(symlink(q, p), 0);
    snprintf(p, sizeof(p), "%s/engines/fifo", store);
    CHECK_INT(mkfifo(p, 0644), 0);
    write_file("engines/bad\xff\xfe name", 10, 2);
    write_file("engines/overlong\xc0\xaf", 10, 2);
    write_file("definitions/caf\xc3\xa9", 10, 3); /* valid UTF-8: "café" */
    CHECK_INT(scan(2, &st), 0);
    CHECK_INT(st.files, 2);
    CHECK_INT(st.warnings, 5);
    CHECK(strstr(warnings, "patches/out: symlink leaves the store, skipped") != NULL);
    CHECK(strstr(warnings, "patches/up: symlink leaves the store, skipped") != NULL);
    CHECK(strstr(warnings, "patches/sub/in") == NULL);
    CHECK(strstr(warnings, "patches/abs-in") == NULL);
    CHECK(strstr(warnings, "engines/fifo: is a FIFO, skipped") != NULL);
    CHECK(strstr(warnings, "engines/bad\\xff\\xfe name: name is not valid UTF-8") != NULL);
    CHECK(strstr(warnings, "engines/overlong\\xc0\\xaf: name is not valid UTF-8") != NULL);
    CHECK_INT(get_row("definitions/caf\xc3\xa9", &row, NULL), 0);
    /* A file replaced by a FIFO leaves the catalog. */
    snprintf(p, sizeof(p), "%s/patches/ok", store);
    CHECK_INT(unlink(p), 0);
    CHECK_INT(mkfifo(p, 0644), 0);
    CHECK_INT(scan(2, &st), 0);
    CHECK_INT(st.removed, 1);
    CHECK_INT(get_row("patches/ok", &row, NULL), DS_ENOTFOUND);
}

static void test_missing_class_keeps_rows(void)
{
    ds_scan_stats_t st;
    ds_file_row_t row;
    char cmd[8300];

    setup("scan_missing");
    mkdirs("engines");
    write_file("engines/e", 100, 1);
    CHECK_INT(scan(1, &st), 0);
    CHECK_INT(st.added, 1);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/engines'", store);
    CHECK_INT(system(cmd), 0);
    CHECK_INT(scan(1, &st), 0);
    CHECK_INT(st.removed, 0);
    CHECK(strstr(warnings, "engines: class folder is missing") != NULL);
    CHECK_INT(get_row("engines/e", &row, NULL), 0);
}

static void test_store_missing_is_fatal(void)
{
    ds_scan_stats_t st;

    setup("scan_nostore");
    rmdir(store);
    CHECK_INT(scan(1, &st), -ENOENT);
    CHECK_INT(scanned(), 0); /* a failed scan does not */
}

/* The worker reports a file that vanished, or stopped being regular,
 * between the walk and the read. */
static void test_worker_vanished(void)
{
    ds_chunker_params_t params = {1024, 4096, 16384};
    struct scan_pool pool;
    struct scan_job *j[3], *done;
    int rootfd, seen = 0;

    setup("scan_vanish");
    mkdirs("patches");
    write_file("patches/ok", 5000, 1);
    {
        char p[8192];

        snprintf(p, sizeof(p), "%s/patches/fifo", store);
        CHECK_INT(mkfifo(p, 0644), 0);
    }
    rootfd = open(store, O_RDONLY | O_DIRECTORY);
    CHECK_INT(ds__scan_pool_start(&pool, rootfd, &params, 2), 0);
    for (int i = 0; i < 3; i++) {
        j[i] = calloc(1, sizeof(*j[i]));
        j[i]->path = strdup(i == 0 ? "patches/gone" : i == 1 ? "patches/fifo" : "patches/ok");
        ds__scan_pool_submit(&pool, j[i]);
    }
    while ((done = ds__scan_pool_collect(&pool, 10000)) != NULL) {
        if (strcmp(done->path, "patches/gone") == 0) {
            CHECK_INT(done->err, -ENOENT);
            CHECK_STR(done->what, "vanished during the scan");
        } else if (strcmp(done->path, "patches/fifo") == 0) {
            CHECK_INT(done->err, DS_ENOTREG);
        } else {
            CHECK_INT(done->err, 0);
            CHECK_INT(done->bytes, 5000);
            CHECK(done->nchunks >= 1);
        }
        seen++;
        ds__scan_job_free(done);
    }
    CHECK_INT(seen, 3);
    ds__scan_pool_stop(&pool);
    ds__scan_pool_stop(&pool); /* idempotent */
    close(rootfd);
}

static void test_utf8(void)
{
    char out[64];

    CHECK_INT(ds_utf8_valid("abc", 3), 1);
    CHECK_INT(ds_utf8_valid("caf\xc3\xa9", 5), 1);
    CHECK_INT(ds_utf8_valid("\xf0\x9f\x98\x80", 4), 1); /* U+1F600 */
    CHECK_INT(ds_utf8_valid("\xc3", 1), 0);             /* truncated */
    CHECK_INT(ds_utf8_valid("\xc0\xaf", 2), 0);         /* overlong '/' */
    CHECK_INT(ds_utf8_valid("\xe0\x80\xaf", 3), 0);     /* overlong */
    CHECK_INT(ds_utf8_valid("\xed\xa0\x80", 3), 0);     /* surrogate */
    CHECK_INT(ds_utf8_valid("\xf4\x90\x80\x80", 4), 0); /* > U+10FFFF */
    CHECK_INT(ds_utf8_valid("\xff", 1), 0);
    ds_escape_name("a\xff\xc3\xa9\n\\", 6, out, sizeof(out));
    CHECK_STR(out, "a\\xff\xc3\xa9\\n\\\\");
    ds_escape_name("\t\r\x01\x7f\xc2\x9b\xc2\xa0", 8, out, sizeof(out)); /* C1 CSI, then NBSP */
    CHECK_STR(out, "\\t\\r\\x01\\x7f\\xc2\\x9b\xc2\xa0");
    ds_escape_name("\xff\xff\xff\xff", 4, out, 10);
    CHECK(strlen(out) < 10);
}

/* Names the receiver refuses never enter the catalog (issue 7 item 4). */
static void test_bad_names(void)
{
    ds_scan_stats_t st;
    ds_file_row_t row;

    setup("scan_badname");
    mkdirs("patches/dir\nx");
    mkdirs("engines");
    mkdirs("definitions");
    write_file("patches/ok", 10, 1);
    write_file("patches/new\nline", 10, 2);
    write_file("patches/back\\slash", 10, 3);
    write_file("patches/dir\nx/inside", 10, 4);
    write_file("engines/esc\x1b[0m", 10, 5);
    warnings[0] = '\0';
    CHECK_INT(scan(2, &st), 0);
    CHECK_INT(st.files, 1);
    CHECK_INT(st.skipped, 4);
    CHECK_INT(st.unreadable, 0);
    CHECK_INT(get_row("patches/ok", &row, NULL), 0);
    CHECK_INT(get_row("patches/new\nline", &row, NULL), DS_ENOTFOUND);
    CHECK_INT(get_row("patches/dir\nx/inside", &row, NULL), DS_ENOTFOUND);
    CHECK(strstr(warnings, "patches/new\\nline: control character in path") != NULL);
    CHECK(strstr(warnings, "patches/back\\\\slash: backslash in path") != NULL);
    CHECK(strstr(warnings, "patches/dir\\nx: control character in path") != NULL);
    CHECK(strstr(warnings, "directory and everything under it") != NULL);
    CHECK(strstr(warnings, "engines/esc\\x1b[0m: control character") != NULL);
    /* A row an older scan recorded for such a name leaves the catalog. */
    {
        ds_file_row_t old = {.path = "patches/new\nline", .klass = "patches", .size = 10};
        ds_catalog_t *cat = NULL;
        char err[512];

        CHECK_INT(ds_catalog_open(dbpath, &cat, err, sizeof(err)), 0);
        CHECK_INT(ds_catalog_file_put(cat, &old), 0);
        ds_catalog_free(cat);
    }
    CHECK_INT(scan(2, &st), 0);
    CHECK_INT(st.removed, 1);
    CHECK_INT(get_row("patches/new\nline", &row, NULL), DS_ENOTFOUND);
}

int main(void)
{
    RUN(test_utf8);
    RUN(test_first_scan_hashes);
    RUN(test_incremental);
    RUN(test_walk_order);
    RUN(test_warnings);
    RUN(test_bad_names);
    RUN(test_missing_class_keeps_rows);
    RUN(test_store_missing_is_fatal);
    RUN(test_worker_vanished);
    return CHECK_DONE();
}

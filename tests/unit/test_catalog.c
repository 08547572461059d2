/* Catalog: migrations, content/file rows, cursors, basis choice. */
#include <sqlite3.h>

#include "check.h"
#include "distsync/catalog.h"
#include "distsync/error.h"
#include "store/catalog_int.h"

static char dbpath[4200];

static ds_catalog_t *open_fresh(const char *name)
{
    ds_catalog_t *cat = NULL;
    char err[512];

    snprintf(dbpath, sizeof(dbpath), "%s/catalog.db", check_tmpdir(name));
    CHECK_INT(ds_catalog_open(dbpath, &cat, err, sizeof(err)), 0);
    return cat;
}

/* A chunk record whose hash starts with byte tag (so h64 differs per tag). */
static void mkrec(uint8_t *rec, uint8_t tag, uint32_t len)
{
    memset(rec, 0, DS_CATALOG_CHUNK_REC);
    rec[0] = tag;
    rec[15] = (uint8_t)(tag * 7);
    for (int i = 0; i < 4; i++)
        rec[DS_XXH128_LEN + i] = (uint8_t)(len >> (8 * i));
}

static int64_t put_content(ds_catalog_t *cat, uint8_t shatag, const uint8_t *tags,
                           const uint32_t *lens, uint32_t n)
{
    uint8_t sha[DS_SHA256_LEN] = {0}, recs[16 * DS_CATALOG_CHUNK_REC];
    uint64_t size = 0;
    int64_t id = 0;
    int created = -1;

    sha[0] = shatag;
    for (uint32_t i = 0; i < n; i++) {
        mkrec(recs + i * DS_CATALOG_CHUNK_REC, tags[i], lens[i]);
        size += lens[i];
    }
    CHECK_INT(ds_catalog_content_put(cat, sha, size, recs, n, &id, &created), 0);
    CHECK_INT(created, 1);
    return id;
}

static void test_migrations_idempotent(void)
{
    ds_catalog_t *cat = open_fresh("cat_mig");
    char err[512];

    CHECK(ds_catalog_schema_latest() >= 1);
    CHECK_INT(ds_catalog_schema_version(cat), ds_catalog_schema_latest());
    ds_catalog_free(cat);
    cat = NULL;
    /* Re-opening does not re-run migrations (they would fail: tables exist). */
    CHECK_INT(ds_catalog_open(dbpath, &cat, err, sizeof(err)), 0);
    CHECK_INT(ds_catalog_schema_version(cat), ds_catalog_schema_latest());
    ds_catalog_free(cat);
    ds_catalog_free(NULL);
}

static void test_newer_schema_refused(void)
{
    ds_catalog_t *cat = open_fresh("cat_newer");
    sqlite3 *db = NULL;
    char sql[64], err[512] = "";

    ds_catalog_free(cat);
    cat = NULL;
    CHECK_INT(sqlite3_open(dbpath, &db), SQLITE_OK);
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", ds_catalog_schema_latest() + 1);
    CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    CHECK_INT(ds_catalog_open(dbpath, &cat, err, sizeof(err)), DS_ESCHEMA);
    CHECK(cat == NULL);
    CHECK(strstr(err, "newer") != NULL);
    CHECK(strstr(err, dbpath) != NULL);
}

static void test_not_a_database(void)
{
    const char *dir = check_tmpdir("cat_junk");
    ds_catalog_t *cat = NULL;
    char err[512] = "";
    FILE *f;

    snprintf(dbpath, sizeof(dbpath), "%s/catalog.db", dir);
    f = fopen(dbpath, "w");
    fputs("this is not an SQLite database, not even close, it is just text\n", f);
    fclose(f);
    CHECK(ds_catalog_open(dbpath, &cat, err, sizeof(err)) < 0);
    CHECK(cat == NULL);
    CHECK(strstr(err, dbpath) != NULL);
}

/* Makes the catalog at dbpath look as a schema-2 build left it. */
static void downgrade_to_2(void)
{
    sqlite3 *db = NULL;

    CHECK_INT(sqlite3_open(dbpath, &db), SQLITE_OK);
    /* with the tables of the migrations after 2 that add tables (3, 5, 6, 7, 8) */
    CHECK_INT(sqlite3_exec(db,
                           "DROP TABLE meta; DROP TABLE schedule_fire; DROP TABLE freeze;"
                           " DROP TABLE gate_client; DROP TABLE gate_outcome;"
                           " DROP TABLE gate_rollout; DROP TRIGGER file_version_insert;"
                           " DROP TRIGGER file_version_change; DROP TRIGGER file_version_touch;"
                           " DROP TRIGGER file_version_delete; DROP TABLE file_version;"
                           " DROP TABLE scan_gen; DROP TABLE schedule_pin;"
                           " DROP TABLE daemon_run_server; DROP TABLE daemon_run;"
                           " PRAGMA user_version = 2",
                           NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(db);
}

static void test_scan_mark(void)
{
    ds_catalog_t *cat = open_fresh("cat_scanmark");
    ds_file_row_t row = {.path = "patches/a", .klass = "patches", .size = 1, .scanned_at = 4242};
    char err[512];
    int64_t at = -1;
    FILE *f;

    /* new: created, not scanned; the mark is written once */
    CHECK_INT(ds_catalog_created(cat), 1);
    CHECK_INT(ds_catalog_scanned(cat, &at), 0);
    CHECK_INT(ds_catalog_mark_scanned(cat, 100), 0);
    CHECK_INT(ds_catalog_mark_scanned(cat, 200), 0);
    CHECK_INT(ds_catalog_scanned(cat, &at), 1);
    CHECK_INT(at, 100);
    ds_catalog_free(cat);
    cat = NULL;
    CHECK_INT(ds_catalog_open(dbpath, &cat, err, sizeof(err)), 0);
    CHECK_INT(ds_catalog_created(cat), 0);
    CHECK_INT(ds_catalog_scanned(cat, NULL), 1);
    CHECK_INT(ds_catalog_file_put(cat, &row), 0);
    ds_catalog_free(cat);
    cat = NULL;

    /* migration 3: a catalog with files was scanned (its newest row's time) */
    downgrade_to_2();
    CHECK_INT(ds_catalog_open(dbpath, &cat, err, sizeof(err)), 0);
    CHECK_INT(ds_catalog_created(cat), 0);
    CHECK_INT(ds_catalog_scanned(cat, &at), 1);
    CHECK_INT(at, 4242);
    CHECK_INT(ds_catalog_file_delete(cat, "patches/a"), 0);
    ds_catalog_free(cat);
    cat = NULL;

    /* ... an empty one was not */
    downgrade_to_2();
    CHECK_INT(ds_catalog_open(dbpath, &cat, err, sizeof(err)), 0);
    CHECK_INT(ds_catalog_scanned(cat, NULL), 0);
    ds_catalog_free(cat);
    cat = NULL;

    /* truncated to 0 bytes: re-created from nothing, not scanned */
    f = fopen(dbpath, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    CHECK_INT(ds_catalog_open(dbpath, &cat, err, sizeof(err)), 0);
    CHECK_INT(ds_catalog_created(cat), 1);
    CHECK_INT(ds_catalog_scanned(cat, NULL), 0);
    ds_catalog_free(cat);
}

static void test_content_dedup(void)
{
    ds_catalog_t *cat = open_fresh("cat_content");
    uint8_t tags[] = {1, 2, 3};
    uint32_t lens[] = {100, 200, 300};
    uint8_t sha[DS_SHA256_LEN] = {0}, other[DS_SHA256_LEN] = {0};
    ds_content_t c;
    int64_t id, id2 = 0, found = 0;
    int created = -1;

    CHECK_INT(ds_catalog_begin(cat), 0);
    id = put_content(cat, 9, tags, lens, 3);
    sha[0] = 9;
    CHECK_INT(ds_catalog_content_put(cat, sha, 600, NULL, 0, &id2, &created), 0);
    CHECK_INT(created, 0);
    CHECK_INT(id2, id);
    CHECK_INT(ds_catalog_commit(cat), 0);
    CHECK_INT(ds_catalog_content_find(cat, sha, &found), 0);
    CHECK_INT(found, id);
    other[0] = 10;
    CHECK_INT(ds_catalog_content_find(cat, other, &found), DS_ENOTFOUND);
    CHECK_INT(ds_catalog_content_get(cat, id, &c), 0);
    CHECK_INT(c.size, 600);
    CHECK_INT(c.nchunks, 3);
    CHECK_INT(c.chunks[DS_CATALOG_CHUNK_REC], 2);
    CHECK_INT(c.chunks[2 * DS_CATALOG_CHUNK_REC + DS_XXH128_LEN], 300 & 0xff);
    CHECK_INT(c.chunks[2 * DS_CATALOG_CHUNK_REC + DS_XXH128_LEN + 1], 300 >> 8);
    ds_content_clear(&c);
    CHECK_INT(ds_catalog_content_get(cat, id + 100, &c), DS_ENOTFOUND);
    ds_catalog_free(cat);
}

static void test_file_upsert_delete(void)
{
    ds_catalog_t *cat = open_fresh("cat_file");
    uint8_t tags[] = {1};
    uint32_t lens[] = {5};
    ds_file_row_t row = {0}, got;
    uint64_t nf = 0, nc = 0;
    char buf[512];
    int64_t id;

    id = put_content(cat, 1, tags, lens, 1);
    row.path = "patches/kb1/x.msu";
    row.klass = "patches";
    row.size = 5;
    row.mtime_ns = 1700000000123456789LL;
    row.inode = 42;
    row.dev = 7;
    row.content_id = id;
    row.scanned_at = 1700000000;
    CHECK_INT(ds_catalog_file_put(cat, &row), 0);
    CHECK_INT(ds_catalog_file_get(cat, row.path, &got, buf, sizeof(buf)), 0);
    CHECK_STR(got.path, "patches/kb1/x.msu");
    CHECK_STR(got.klass, "patches");
    CHECK_INT(got.mtime_ns, 1700000000123456789LL);
    CHECK_INT(got.inode, 42);
    CHECK_INT(got.content_id, id);
    CHECK_INT(got.has_sha, 1);
    CHECK_INT(got.sha256[0], 1);
    CHECK_INT(got.nchunks, 1);
    /* Upsert by path: same row, new values. */
    row.size = 6;
    CHECK_INT(ds_catalog_file_put(cat, &row), 0);
    CHECK_INT(ds_catalog_file_get(cat, row.path, &got, buf, sizeof(buf)), 0);
    CHECK_INT(got.size, 6);
    CHECK_INT(ds_catalog_file_get(cat, row.path, &got, buf, 4), DS_ERANGE);
    CHECK_INT(ds_catalog_counts(cat, &nf, &nc), 0);
    CHECK_INT(nf, 1);
    /* A content id that does not exist violates the foreign key. */
    row.path = "patches/bad";
    row.content_id = id + 1000;
    CHECK(ds_catalog_file_put(cat, &row) < 0);
    CHECK_INT(ds_catalog_file_delete(cat, "patches/kb1/x.msu"), 0);
    CHECK_INT(ds_catalog_file_delete(cat, "patches/kb1/x.msu"), DS_ENOTFOUND);
    CHECK_INT(ds_catalog_file_get(cat, "patches/kb1/x.msu", &got, buf, sizeof(buf)), DS_ENOTFOUND);
    /* The content row outlives the file row. */
    CHECK_INT(ds_catalog_counts(cat, &nf, &nc), 0);
    CHECK_INT(nf, 0);
    CHECK_INT(nc, 1);
    ds_catalog_free(cat);
}

static void put_path(ds_catalog_t *cat, const char *path, const char *klass)
{
    ds_file_row_t row = {.path = path, .klass = klass, .size = 1};

    CHECK_INT(ds_catalog_file_put(cat, &row), 0);
}

static void test_cursor_order_prefix_snapshot(void)
{
    ds_catalog_t *cat = open_fresh("cat_cursor");
    static const char *const want[] = {"patches/a.b", "patches/a/x", "patches/a0", "patches/b"};
    ds_catalog_cursor_t *cur = NULL, *cur2 = NULL;
    ds_file_row_t r;
    size_t n = 0;
    int rc;

    put_path(cat, "patches/b", "patches");
    put_path(cat, "patches/a/x", "patches");
    put_path(cat, "patches/a0", "patches");
    put_path(cat, "patches/a.b", "patches");
    put_path(cat, "patchesX/z", "patchesX");
    put_path(cat, "engines/e", "engines");
    CHECK_INT(ds_catalog_cursor_open(cat, "patches/", &cur), 0);
    CHECK_INT(ds_catalog_cursor_open(cat, "", &cur2), DS_EINTERNAL); /* one at a time */
    CHECK(cur2 == NULL);
    while ((rc = ds_catalog_cursor_next(cur, &r)) > 0) {
        if (n < 4)
            CHECK_STR(r.path, want[n]);
        CHECK_INT(r.has_sha, 0);
        n++;
        /* Writes during the walk are not seen by the cursor's snapshot. */
        if (n == 1) {
            put_path(cat, "patches/zz", "patches");
            CHECK_INT(ds_catalog_file_delete(cat, "patches/b"), 0);
        }
    }
    CHECK_INT(rc, 0);
    CHECK_INT(n, 4);
    ds_catalog_cursor_free(cur);
    /* A fresh cursor sees them; the empty prefix lists everything. */
    CHECK_INT(ds_catalog_cursor_open(cat, "", &cur), 0);
    n = 0;
    while (ds_catalog_cursor_next(cur, &r) > 0)
        n++;
    CHECK_INT(n, 6);
    ds_catalog_cursor_free(cur);
    ds_catalog_cursor_free(NULL);
    ds_catalog_free(cat);
}

static void test_best_basis(void)
{
    ds_catalog_t *cat = open_fresh("cat_basis");
    uint8_t tx[] = {1, 2, 3, 4, 4}, ty[] = {1, 2, 9}, tz[] = {3, 8}, tw[] = {7};
    uint32_t lx[] = {100, 250, 300, 400, 400}, ly[] = {100, 200, 50}, lz[] = {300, 10}, lw[] = {5};
    int64_t x, y, z, w, best = -1, cands[4];
    uint64_t shared = 99;

    CHECK_INT(ds_catalog_begin(cat), 0);
    x = put_content(cat, 1, tx, lx, 5);
    y = put_content(cat, 2, ty, ly, 3);
    z = put_content(cat, 3, tz, lz, 2);
    w = put_content(cat, 4, tw, lw, 1);
    CHECK_INT(ds_catalog_commit(cat), 0);
    cands[0] = z, cands[1] = y, cands[2] = w, cands[3] = y;
    CHECK_INT(ds_catalog_best_basis(cat, x, cands, 4, &best, &shared), 0);
    CHECK_INT(best, y);
    CHECK_INT(shared, 350);
    CHECK_INT(ds_catalog_best_basis(cat, x, &z, 1, &best, &shared), 0);
    CHECK_INT(best, z);
    CHECK_INT(shared, 300);
    /* The repeated chunk 4 counts once; x itself shares everything. */
    CHECK_INT(ds_catalog_best_basis(cat, x, &x, 1, &best, &shared), 0);
    CHECK_INT(best, x);
    CHECK_INT(shared, 1050);
    CHECK_INT(ds_catalog_best_basis(cat, x, &w, 1, &best, &shared), 0);
    CHECK_INT(best, 0);
    CHECK_INT(shared, 0);
    CHECK_INT(ds_catalog_best_basis(cat, x, NULL, 0, &best, &shared), 0);
    CHECK_INT(best, 0);
    CHECK_INT(ds_catalog_best_basis(cat, x + 100, cands, 4, &best, &shared), DS_ENOTFOUND);
    ds_catalog_free(cat);
}

static void test_rollback(void)
{
    ds_catalog_t *cat = open_fresh("cat_rollback");
    uint64_t nf = 9, nc = 9;

    CHECK_INT(ds_catalog_begin(cat), 0);
    CHECK_INT(ds_catalog_in_txn(cat), 1);
    CHECK_INT(ds_catalog_begin(cat), DS_EINTERNAL);
    put_path(cat, "patches/a", "patches");
    CHECK_INT(ds_catalog_rollback(cat), 0);
    CHECK_INT(ds_catalog_in_txn(cat), 0);
    CHECK_INT(ds_catalog_counts(cat, &nf, &nc), 0);
    CHECK_INT(nf, 0);
    /* An open transaction is rolled back on free. */
    CHECK_INT(ds_catalog_begin(cat), 0);
    put_path(cat, "patches/b", "patches");
    ds_catalog_free(cat);
    {
        char err[512];

        CHECK_INT(ds_catalog_open(dbpath, &cat, err, sizeof(err)), 0);
        CHECK_INT(ds_catalog_counts(cat, &nf, &nc), 0);
        CHECK_INT(nf, 0);
        ds_catalog_free(cat);
    }
}

/* A COMMIT that fails (here a deferred foreign key, a temp table on the
 * catalog's own connection: SQLite keeps the transaction open, as after a
 * busy or a full disk at COMMIT) rolls back: the catalog is out of its
 * transaction, the next BEGIN works, and what the failed one wrote is not
 * there (before: in_txn stayed set and every later BEGIN said "internal
 * error"). */
static void test_commit_fails(void)
{
    ds_catalog_t *cat = open_fresh("cat_commit_fails");
    uint64_t nf = 9, nc = 9;

    CHECK_INT(sqlite3_exec(cat->db,
                           "PRAGMA foreign_keys = ON;"
                           "CREATE TEMP TABLE p(id INTEGER PRIMARY KEY);"
                           "CREATE TEMP TABLE c(pid INTEGER REFERENCES p(id)"
                           " DEFERRABLE INITIALLY DEFERRED);",
                           NULL, NULL, NULL),
              SQLITE_OK);
    CHECK_INT(ds_catalog_begin(cat), 0);
    put_path(cat, "patches/a", "patches");
    CHECK_INT(sqlite3_exec(cat->db, "INSERT INTO c VALUES (5)", NULL, NULL, NULL), SQLITE_OK);
    CHECK(ds_catalog_commit(cat) < 0);
    CHECK_INT(ds_catalog_in_txn(cat), 0);
    CHECK_INT(sqlite3_get_autocommit(cat->db), 1);
    CHECK_INT(ds_catalog_begin(cat), 0);
    put_path(cat, "patches/b", "patches");
    CHECK_INT(ds_catalog_commit(cat), 0);
    CHECK_INT(ds_catalog_counts(cat, &nf, &nc), 0);
    CHECK_INT(nf, 1);
    ds_catalog_free(cat);
}

/* The content id of path as of generation gen (0: absent then; -1: its
 * bytes are still the store's, flagged by id > 0, so *cur tells). */
static int64_t asof(ds_catalog_t *cat, int64_t gen, const char *path, int *cur)
{
    ds_catalog_cursor_t *c = NULL;
    ds_file_row_t r;
    int64_t id = 0;

    CHECK_INT(ds_catalog_cursor_open_gen(cat, "", gen, &c), 0);
    while (ds_catalog_cursor_next(c, &r) == 1)
        if (strcmp(r.path, path) == 0) {
            id = r.content_id;
            if (cur)
                *cur = r.id > 0;
        }
    ds_catalog_cursor_free(c);
    return id;
}

static void put(ds_catalog_t *cat, const char *path, int64_t content)
{
    ds_file_row_t row = {.path = path, .klass = "p", .size = 1, .content_id = content};

    CHECK_INT(ds_catalog_file_put(cat, &row), 0);
}

/* Scan generations: each version knows the generations it was current in;
 * the desired set as of a time is the latest generation started by then. */
static void test_generations(void)
{
    ds_catalog_t *cat = open_fresh("cat_gen");
    uint8_t sha[DS_SHA256_LEN] = {0}, rec[DS_CATALOG_CHUNK_REC];
    int64_t g1, g2, g3, g, c1, c2;
    int cur = -1;

    mkrec(rec, 1, 1);
    sha[0] = 1;
    CHECK_INT(ds_catalog_content_put(cat, sha, 1, rec, 1, &c1, NULL), 0);
    sha[0] = 2;
    CHECK_INT(ds_catalog_content_put(cat, sha, 1, rec, 1, &c2, NULL), 0);
    CHECK_INT(ds_catalog_gen_begin(cat, 1000, &g1), 0);
    put(cat, "p/a", c1);
    put(cat, "p/b", c1);
    CHECK_INT(ds_catalog_gen_end(cat, g1, 1010), 0);
    CHECK_INT(ds_catalog_gen_begin(cat, 2000, &g2), 0);
    put(cat, "p/a", c2);                              /* changed */
    CHECK_INT(ds_catalog_file_delete(cat, "p/b"), 0); /* removed */
    put(cat, "p/c", c2);                              /* added */
    CHECK_INT(ds_catalog_gen_end(cat, g2, 2010), 0);
    CHECK_INT(ds_catalog_gen_begin(cat, 3000, &g3), 0); /* never completed */
    put(cat, "p/a", c1);

    CHECK_INT(asof(cat, g1, "p/a", &cur), c1);
    CHECK_INT(cur, 1); /* the store holds c1 at p/a again (g3's write) */
    CHECK_INT(asof(cat, g1, "p/b", NULL), c1);
    CHECK_INT(asof(cat, g1, "p/c", NULL), 0);
    CHECK_INT(asof(cat, g2, "p/a", &cur), c2);
    CHECK_INT(cur, 0); /* c2 is not the store's any more */
    CHECK_INT(asof(cat, g2, "p/b", NULL), 0);
    CHECK_INT(asof(cat, g2, "p/c", &cur), c2);
    CHECK_INT(cur, 1);
    /* as of an instant: the latest completed generation started by then */
    CHECK_INT(ds_catalog_gen_at(cat, 999, &g, NULL), 0);
    CHECK_INT(ds_catalog_gen_at(cat, 1000, &g, NULL), 1);
    CHECK_INT(g, g1);
    CHECK_INT(ds_catalog_gen_at(cat, 2500, &g, NULL), 1);
    CHECK_INT(g, g2);
    CHECK_INT(ds_catalog_gen_at(cat, 9999, &g, NULL), 1); /* g3 did not complete */
    CHECK_INT(g, g2);
    /* generations older than the keep time go, unless a pin younger than
     * that needs them */
    CHECK_INT(ds_catalog_pin_put(cat, "pt", 5000, 3500, g1), 0);
    CHECK_INT(ds_catalog_gen_end(cat, g3, 3000 + DS_CATALOG_GEN_KEEP_S), 0);
    CHECK_INT(asof(cat, g1, "p/b", NULL), c1);
    CHECK_INT(ds_catalog_gen_end(cat, g3, 3600 + DS_CATALOG_GEN_KEEP_S), 0);
    CHECK_INT(asof(cat, g1, "p/b", NULL), 0);  /* forgotten with its pin */
    CHECK_INT(asof(cat, g2, "p/c", NULL), c2); /* the newest that old stays */
    CHECK_INT(ds_catalog_gen_at(cat, 9999, &g, NULL), 1);
    CHECK_INT(g, g3);
    ds_catalog_free(cat);
}

int main(void)
{
    RUN(test_migrations_idempotent);
    RUN(test_newer_schema_refused);
    RUN(test_not_a_database);
    RUN(test_scan_mark);
    RUN(test_content_dedup);
    RUN(test_file_upsert_delete);
    RUN(test_cursor_order_prefix_snapshot);
    RUN(test_best_basis);
    RUN(test_rollback);
    RUN(test_commit_fails);
    RUN(test_generations);
    return CHECK_DONE();
}

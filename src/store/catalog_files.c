/* Catalog: content, chunk index and file rows; cursors; basis choice. */
#include <stdlib.h>
#include <string.h>

#include "catalog_int.h"
#include "distsync/error.h"
#include "distsync/log.h"

static const char *const stmt_sql[ST__COUNT] = {
    [ST_CONTENT_INSERT] = "INSERT INTO content(sha256, size, nchunks, chunks) VALUES(?1,?2,?3,?4) "
                          "ON CONFLICT(sha256) DO NOTHING",
    [ST_CONTENT_FIND] = "SELECT id FROM content WHERE sha256 = ?1",
    [ST_CONTENT_GET] = "SELECT sha256, size, nchunks, chunks FROM content WHERE id = ?1",
    [ST_CHUNK_INSERT] = "INSERT OR IGNORE INTO chunk_index(h64, content_id) VALUES(?1, ?2)",
    [ST_FILE_PUT] = "INSERT INTO file(path, class, size, mtime_ns, inode, dev, content_id, "
                    "scanned_at) VALUES(?1,?2,?3,?4,?5,?6,?7,?8) ON CONFLICT(path) DO UPDATE SET "
                    "class=excluded.class, size=excluded.size, mtime_ns=excluded.mtime_ns, "
                    "inode=excluded.inode, dev=excluded.dev, content_id=excluded.content_id, "
                    "scanned_at=excluded.scanned_at",
    [ST_FILE_DELETE] = "DELETE FROM file WHERE path = ?1",
    [ST_FILE_GET] = "SELECT f.id, f.path, f.class, f.size, f.mtime_ns, f.inode, f.dev, "
                    "f.content_id, f.scanned_at, c.sha256, c.nchunks FROM file f "
                    "LEFT JOIN content c ON c.id = f.content_id WHERE f.path = ?1",
    [ST_CHUNK_LOOKUP] = "SELECT content_id FROM chunk_index WHERE h64 = ?1",
};

/* The cursor's query; ?1 and ?2 bound the path range. */
static const char cursor_sql[] =
    "SELECT f.id, f.path, f.class, f.size, f.mtime_ns, f.inode, f.dev, f.content_id, "
    "f.scanned_at, c.sha256, c.nchunks FROM file f LEFT JOIN content c ON c.id = f.content_id "
    "WHERE f.path >= ?1 AND (?2 IS NULL OR f.path < ?2) ORDER BY f.path";

/* The same shape over the versions current in generation ?3 (migration 7):
 * id is the file row's when the store's file (as last scanned) still holds
 * that version, else 0; scanned_at is the version's first generation. */
static const char asof_sql[] =
    "SELECT CASE WHEN f.content_id IS v.content_id THEN f.id ELSE 0 END, v.path, v.class, "
    "v.size, v.mtime_ns, 0, 0, v.content_id, v.first_gen, c.sha256, c.nchunks "
    "FROM file_version v LEFT JOIN content c ON c.id = v.content_id "
    "LEFT JOIN file f ON f.path = v.path "
    "WHERE v.path >= ?1 AND (?2 IS NULL OR v.path < ?2) AND v.first_gen <= ?3 "
    "AND (v.last_gen IS NULL OR v.last_gen >= ?3) ORDER BY v.path";

struct ds_catalog_cursor {
    ds_catalog_t *cat;
    sqlite3_stmt *st;
    char *hi; /* exclusive upper bound of the prefix range, NULL: none */
};

sqlite3_stmt *ds__catalog_stmt(ds_catalog_t *cat, enum cat_stmt id)
{
    sqlite3_stmt *st = cat->st[id];
    int rc;

    if (st == NULL) {
        rc = sqlite3_prepare_v3(cat->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
        if (rc != SQLITE_OK) {
            ds__catalog_err(cat, cat->db, rc, stmt_sql[id]);
            return NULL;
        }
        cat->st[id] = st;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Steps a write statement to completion. Returns 0 or < 0 (logged). */
static int step_done(ds_catalog_t *cat, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : ds__catalog_err(cat, cat->db, rc, what);
}

static int64_t h64_of(const uint8_t *h)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | h[i];
    return (int64_t)v;
}

static uint32_t rec_len(const uint8_t *rec)
{
    const uint8_t *p = rec + DS_XXH128_LEN;

    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int index_chunks(ds_catalog_t *cat, int64_t id, const uint8_t *chunks, uint32_t n)
{
    sqlite3_stmt *st = ds__catalog_stmt(cat, ST_CHUNK_INSERT);
    int rc;

    if (st == NULL)
        return DS_ECATALOG;
    for (uint32_t i = 0; i < n; i++) {
        sqlite3_bind_int64(st, 1, h64_of(chunks + (size_t)i * DS_CATALOG_CHUNK_REC));
        sqlite3_bind_int64(st, 2, id);
        rc = step_done(cat, st, "indexing chunks");
        if (rc < 0)
            return rc;
    }
    return 0;
}

int ds_catalog_content_find(ds_catalog_t *cat, const uint8_t sha256[DS_SHA256_LEN], int64_t *id)
{
    sqlite3_stmt *st = ds__catalog_stmt(cat, ST_CONTENT_FIND);
    int rc;

    if (st == NULL)
        return DS_ECATALOG;
    sqlite3_bind_blob(st, 1, sha256, DS_SHA256_LEN, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? DS_ENOTFOUND : ds__catalog_err(cat, cat->db, rc, "finding content");
}

int ds_catalog_content_put(ds_catalog_t *cat, const uint8_t sha256[DS_SHA256_LEN], uint64_t size,
                           const uint8_t *chunks, uint32_t nchunks, int64_t *id, int *created)
{
    sqlite3_stmt *st = ds__catalog_stmt(cat, ST_CONTENT_INSERT);
    int rc;

    if (created != NULL)
        *created = 0;
    if (st == NULL)
        return DS_ECATALOG;
    sqlite3_bind_blob(st, 1, sha256, DS_SHA256_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)size);
    sqlite3_bind_int64(st, 3, nchunks);
    sqlite3_bind_blob64(st, 4, nchunks ? (const void *)chunks : "",
                        (sqlite3_uint64)nchunks * DS_CATALOG_CHUNK_REC, SQLITE_STATIC);
    rc = step_done(cat, st, "inserting content");
    if (rc < 0)
        return rc;
    if (sqlite3_changes(cat->db) == 0)
        return ds_catalog_content_find(cat, sha256, id);
    *id = sqlite3_last_insert_rowid(cat->db);
    if (created != NULL)
        *created = 1;
    return index_chunks(cat, *id, chunks, nchunks);
}

int ds_catalog_content_get(ds_catalog_t *cat, int64_t id, ds_content_t *out)
{
    sqlite3_stmt *st = ds__catalog_stmt(cat, ST_CONTENT_GET);
    size_t len;
    int rc;

    memset(out, 0, sizeof(*out));
    if (st == NULL)
        return DS_ECATALOG;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? DS_ENOTFOUND
                                 : ds__catalog_err(cat, cat->db, rc, "reading content");
    }
    out->id = id;
    if (sqlite3_column_bytes(st, 0) == DS_SHA256_LEN)
        memcpy(out->sha256, sqlite3_column_blob(st, 0), DS_SHA256_LEN);
    out->size = (uint64_t)sqlite3_column_int64(st, 1);
    out->nchunks = (uint32_t)sqlite3_column_int64(st, 2);
    len = (size_t)sqlite3_column_bytes(st, 3);
    rc = 0;
    if (len != (size_t)out->nchunks * DS_CATALOG_CHUNK_REC) {
        ds_log(DS_LOG_ERROR, "catalog %s: content %lld: chunk list is %zu bytes for %u chunks",
               cat->path, (long long)id, len, out->nchunks);
        rc = DS_ECORRUPT;
    } else if (len > 0 && (out->chunks = malloc(len)) == NULL) {
        rc = DS_ENOMEM;
    } else if (len > 0) {
        memcpy(out->chunks, sqlite3_column_blob(st, 3), len);
    }
    sqlite3_reset(st);
    if (rc < 0)
        ds_content_clear(out);
    return rc;
}

void ds_content_clear(ds_content_t *c)
{
    if (c == NULL)
        return;
    free(c->chunks);
    memset(c, 0, sizeof(*c));
}

int ds_catalog_file_put(ds_catalog_t *cat, const ds_file_row_t *row)
{
    sqlite3_stmt *st = ds__catalog_stmt(cat, ST_FILE_PUT);

    if (st == NULL)
        return DS_ECATALOG;
    sqlite3_bind_text(st, 1, row->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, row->klass, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)row->size);
    sqlite3_bind_int64(st, 4, row->mtime_ns);
    sqlite3_bind_int64(st, 5, (int64_t)row->inode);
    sqlite3_bind_int64(st, 6, (int64_t)row->dev);
    if (row->content_id > 0)
        sqlite3_bind_int64(st, 7, row->content_id);
    sqlite3_bind_int64(st, 8, row->scanned_at);
    return step_done(cat, st, row->path);
}

int ds_catalog_file_delete(ds_catalog_t *cat, const char *path)
{
    sqlite3_stmt *st = ds__catalog_stmt(cat, ST_FILE_DELETE);
    int rc;

    if (st == NULL)
        return DS_ECATALOG;
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    rc = step_done(cat, st, path);
    if (rc < 0)
        return rc;
    return sqlite3_changes(cat->db) > 0 ? 0 : DS_ENOTFOUND;
}

/* Fills row from a statement shaped like cursor_sql. Strings point into
 * the statement. */
static void row_from(sqlite3_stmt *st, ds_file_row_t *row)
{
    memset(row, 0, sizeof(*row));
    row->id = sqlite3_column_int64(st, 0);
    row->path = (const char *)sqlite3_column_text(st, 1);
    row->klass = (const char *)sqlite3_column_text(st, 2);
    row->size = (uint64_t)sqlite3_column_int64(st, 3);
    row->mtime_ns = sqlite3_column_int64(st, 4);
    row->inode = (uint64_t)sqlite3_column_int64(st, 5);
    row->dev = (uint64_t)sqlite3_column_int64(st, 6);
    row->content_id = sqlite3_column_int64(st, 7);
    row->scanned_at = sqlite3_column_int64(st, 8);
    if (sqlite3_column_bytes(st, 9) == DS_SHA256_LEN) {
        memcpy(row->sha256, sqlite3_column_blob(st, 9), DS_SHA256_LEN);
        row->nchunks = (uint32_t)sqlite3_column_int64(st, 10);
        row->has_sha = 1;
    }
    if (row->path == NULL)
        row->path = "";
    if (row->klass == NULL)
        row->klass = "";
}

int ds_catalog_file_get(ds_catalog_t *cat, const char *path, ds_file_row_t *row, char *buf,
                        size_t bufsize)
{
    sqlite3_stmt *st = ds__catalog_stmt(cat, ST_FILE_GET);
    size_t lp, lc;
    int rc;

    if (st == NULL)
        return DS_ECATALOG;
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? DS_ENOTFOUND : ds__catalog_err(cat, cat->db, rc, path);
    }
    row_from(st, row);
    lp = strlen(row->path) + 1;
    lc = strlen(row->klass) + 1;
    rc = 0;
    if (lp + lc > bufsize) {
        rc = DS_ERANGE;
    } else {
        memcpy(buf, row->path, lp);
        memcpy(buf + lp, row->klass, lc);
        row->path = buf;
        row->klass = buf + lp;
    }
    sqlite3_reset(st);
    return rc;
}

/* The smallest string greater than every string starting with prefix, or
 * NULL when there is none (empty prefix, or only 0xff bytes). */
static char *prefix_end(const char *prefix)
{
    size_t n = strlen(prefix);
    char *hi;

    while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
        n--;
    if (n == 0)
        return NULL;
    hi = strndup(prefix, n);
    if (hi != NULL)
        hi[n - 1] = (char)((unsigned char)hi[n - 1] + 1);
    return hi;
}

/* A cursor over sql (cursor_sql's shape) for prefix, in generation gen
 * (bound to ?3 when > 0). */
static int cursor_open(ds_catalog_t *cat, const char *sql, const char *prefix, int64_t gen,
                       ds_catalog_cursor_t **out)
{
    ds_catalog_cursor_t *cur = NULL;
    int rc;

    *out = NULL;
    if (cat->cursor_open)
        return DS_EINTERNAL;
    rc = ds__catalog_reader(cat);
    if (rc < 0)
        return rc;
    cur = calloc(1, sizeof(*cur));
    if (cur == NULL)
        return DS_ENOMEM;
    cur->cat = cat;
    cur->hi = prefix_end(prefix);
    /* The read transaction pins the snapshot for the cursor's lifetime. */
    rc = sqlite3_exec(cat->rdb, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(cat->rdb, sql, -1, &cur->st, NULL);
    if (rc == SQLITE_OK) /* copied (the cursor outlives prefix), so it may fail */
        rc = sqlite3_bind_text(cur->st, 1, prefix, -1, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK && cur->hi != NULL)
        rc = sqlite3_bind_text(cur->st, 2, cur->hi, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && gen > 0)
        rc = sqlite3_bind_int64(cur->st, 3, gen);
    if (rc != SQLITE_OK) {
        rc = ds__catalog_err(cat, cat->rdb, rc, "opening a cursor");
        sqlite3_exec(cat->rdb, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_finalize(cur->st);
        free(cur->hi);
        free(cur);
        return rc;
    }
    cat->cursor_open = 1;
    *out = cur;
    return 0;
}

int ds_catalog_cursor_open(ds_catalog_t *cat, const char *prefix, ds_catalog_cursor_t **out)
{
    return cursor_open(cat, cursor_sql, prefix, 0, out);
}

int ds_catalog_cursor_open_gen(ds_catalog_t *cat, const char *prefix, int64_t gen,
                               ds_catalog_cursor_t **out)
{
    if (gen <= 0) {
        *out = NULL;
        return DS_EUSAGE;
    }
    return cursor_open(cat, asof_sql, prefix, gen, out);
}

int ds_catalog_cursor_next(ds_catalog_cursor_t *cur, ds_file_row_t *row)
{
    int rc = sqlite3_step(cur->st);

    if (rc == SQLITE_ROW) {
        row_from(cur->st, row);
        return 1;
    }
    if (rc == SQLITE_DONE)
        return 0;
    return ds__catalog_err(cur->cat, cur->cat->rdb, rc, "reading files");
}

void ds_catalog_cursor_free(ds_catalog_cursor_t *cur)
{
    if (cur == NULL)
        return;
    sqlite3_finalize(cur->st);
    sqlite3_exec(cur->cat->rdb, "ROLLBACK", NULL, NULL, NULL);
    cur->cat->cursor_open = 0;
    free(cur->hi);
    free(cur);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* Sorted, deduplicated copy of candidates. Returns its length or < 0. */
static long sorted_ids(const int64_t *ids, size_t n, int64_t **out)
{
    int64_t *v = malloc((n ? n : 1) * sizeof(*v));
    size_t m = 0;

    if (v == NULL)
        return DS_ENOMEM;
    if (n > 0)
        memcpy(v, ids, n * sizeof(*v));
    qsort(v, n, sizeof(*v), cmp_i64);
    for (size_t i = 0; i < n; i++)
        if (m == 0 || v[m - 1] != v[i])
            v[m++] = v[i];
    *out = v;
    return (long)m;
}

/* Sorts chunk records by h64 so duplicates are adjacent. */
static int cmp_rec(const void *a, const void *b)
{
    return memcmp(a, b, 8);
}

/* Adds len to the score of every candidate holding a chunk with this h64. */
static int score_chunk(ds_catalog_t *cat, sqlite3_stmt *st, int64_t h64, uint32_t len,
                       const int64_t *ids, size_t m, uint64_t *score)
{
    int rc;

    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, h64);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const int64_t *hit = bsearch(&id, ids, m, sizeof(*ids), cmp_i64);

        if (hit != NULL)
            score[hit - ids] += len;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : ds__catalog_err(cat, cat->db, rc, "reading the chunk index");
}

int ds_catalog_best_basis(ds_catalog_t *cat, int64_t content_id, const int64_t *candidates,
                          size_t n, int64_t *best_id, uint64_t *shared_bytes)
{
    ds_content_t c = {0};
    int64_t *ids = NULL;
    uint64_t *score = NULL;
    sqlite3_stmt *st;
    long m;
    int rc;

    *best_id = 0;
    *shared_bytes = 0;
    rc = ds_catalog_content_get(cat, content_id, &c);
    if (rc < 0)
        return rc;
    m = sorted_ids(candidates, n, &ids);
    if (m < 0) {
        rc = (int)m;
        goto out;
    }
    score = calloc((size_t)m + 1, sizeof(*score));
    st = ds__catalog_stmt(cat, ST_CHUNK_LOOKUP);
    if (score == NULL || st == NULL) {
        rc = score == NULL ? DS_ENOMEM : DS_ECATALOG;
        goto out;
    }
    if (c.nchunks > 0) /* an empty file has no chunks (and c.chunks may be NULL) */
        qsort(c.chunks, c.nchunks, DS_CATALOG_CHUNK_REC, cmp_rec);
    for (uint32_t i = 0; i < c.nchunks && m > 0; i++) {
        const uint8_t *rec = c.chunks + (size_t)i * DS_CATALOG_CHUNK_REC;

        if (i > 0 && memcmp(rec - DS_CATALOG_CHUNK_REC, rec, 8) == 0)
            continue;
        rc = score_chunk(cat, st, h64_of(rec), rec_len(rec), ids, (size_t)m, score);
        if (rc < 0)
            goto out;
    }
    for (long i = 0; i < m; i++) {
        if (score[i] > 0 && score[i] >= *shared_bytes) {
            *shared_bytes = score[i];
            *best_id = ids[i];
        }
    }
out:
    free(score);
    free(ids);
    ds_content_clear(&c);
    return rc;
}

static int count(ds_catalog_t *cat, const char *sql, uint64_t *v)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(cat->db, sql, -1, &st, NULL);

    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *v = (uint64_t)sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : ds__catalog_err(cat, cat->db, rc, sql);
}

int ds_catalog_counts(ds_catalog_t *cat, uint64_t *files, uint64_t *contents)
{
    int rc = count(cat, "SELECT count(*) FROM file", files);

    return rc < 0 ? rc : count(cat, "SELECT count(*) FROM content", contents);
}

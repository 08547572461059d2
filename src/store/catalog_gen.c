/* Catalog: scan generations, the store's history for snapshot pinning
 * (catalog.h; the versions are kept by migration 7's triggers). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog_int.h"
#include "distsync/error.h"

int ds_catalog_gen_begin(ds_catalog_t *cat, int64_t now, int64_t *gen)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(cat, "INSERT INTO scan_gen(started_at) VALUES(?)", &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    rc = ds__catalog_step_done(cat, st, "opening a scan generation");
    if (rc == 0)
        *gen = sqlite3_last_insert_rowid(cat->db);
    return rc;
}

/* Forgets what only generations before the newest one that ended at or
 * before `before` knew: the versions that stopped being current before it,
 * and those generations. Inside a transaction. */
static int forget(ds_catalog_t *cat, int64_t before)
{
#define KEEP_FROM                                                                                  \
    "MIN((SELECT COALESCE(MAX(id), 0) FROM scan_gen WHERE done_at IS NOT NULL AND done_at <= ?1)," \
    " (SELECT COALESCE(MIN(gen), 1 << 62) FROM schedule_pin))"
    static const char *const sql[] = {
        "DELETE FROM schedule_pin WHERE anchor < ?1",
        "DELETE FROM file_version WHERE last_gen < " KEEP_FROM,
        "DELETE FROM scan_gen WHERE id < " KEEP_FROM,
    };
    sqlite3_stmt *st = NULL;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < sizeof(sql) / sizeof(sql[0]); i++) {
        rc = ds__catalog_prep(cat, sql[i], &st);
        if (rc < 0)
            break;
        sqlite3_bind_int64(st, 1, before);
        rc = ds__catalog_step_done(cat, st, "forgetting old scan generations");
    }
    return rc;
}

int ds_catalog_gen_end(ds_catalog_t *cat, int64_t gen, int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc = ds_catalog_begin(cat);

    if (rc < 0)
        return rc;
    rc = ds__catalog_prep(cat, "UPDATE scan_gen SET done_at = ?2 WHERE id = ?1", &st);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, gen);
        sqlite3_bind_int64(st, 2, now);
        rc = ds__catalog_step_done(cat, st, "closing a scan generation");
    }
    if (rc == 0)
        rc = forget(cat, now - DS_CATALOG_GEN_KEEP_S);
    return ds__catalog_txn_end(cat, 1, rc);
}

int ds_catalog_gen_at(ds_catalog_t *cat, int64_t at, int64_t *gen, int64_t *started_at)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(cat,
                              "SELECT id, started_at FROM scan_gen WHERE done_at IS NOT NULL"
                              " AND started_at <= ? ORDER BY id DESC LIMIT 1",
                              &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, at);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *gen = sqlite3_column_int64(st, 0);
        if (started_at != NULL)
            *started_at = sqlite3_column_int64(st, 1);
    }
    rc = rc == SQLITE_ROW    ? 1
         : rc == SQLITE_DONE ? 0
                             : ds__catalog_err(cat, cat->db, rc, "reading scan generations");
    sqlite3_finalize(st);
    return rc;
}

int ds_catalog_pin_put(ds_catalog_t *cat, const char *schedule, int64_t fire, int64_t anchor,
                       int64_t gen)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(cat,
                              "INSERT OR REPLACE INTO schedule_pin(schedule, fire, anchor, gen)"
                              " VALUES(?1, ?2, ?3, ?4)",
                              &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, schedule, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, fire);
    sqlite3_bind_int64(st, 3, anchor);
    sqlite3_bind_int64(st, 4, gen);
    return ds__catalog_step_done(cat, st, "recording a schedule's pinned generation");
}

int ds_catalog_pin_get(ds_catalog_t *cat, const char *schedule, int64_t fire, int64_t *gen)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(cat,
                              "SELECT p.gen FROM schedule_pin p JOIN scan_gen g ON g.id = p.gen"
                              " WHERE p.schedule = ?1 AND p.fire = ?2",
                              &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, schedule, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, fire);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *gen = sqlite3_column_int64(st, 0);
    rc = rc == SQLITE_ROW    ? 1
         : rc == SQLITE_DONE ? 0
                             : ds__catalog_err(cat, cat->db, rc, "reading a pinned generation");
    sqlite3_finalize(st);
    return rc;
}

int ds_catalog_pinned_refs(ds_catalog_t *cat, uint8_t **shas, size_t *n)
{
    static const char sql[] =
        "SELECT DISTINCT c.sha256 FROM schedule_pin p"
        " JOIN file_version v ON v.first_gen <= p.gen AND (v.last_gen IS NULL OR v.last_gen >= "
        "p.gen)"
        " JOIN content c ON c.id = v.content_id"
        " WHERE NOT EXISTS (SELECT 1 FROM schedule_fire f WHERE f.schedule = p.schedule"
        " AND f.fire = p.fire AND f.outcome != 'interrupted')";
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    uint8_t *v = NULL;
    int rc = ds__catalog_prep(cat, sql, &st);

    *shas = NULL;
    *n = 0;
    if (rc < 0)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != DS_SHA256_LEN)
            continue;
        if (*n == cap) {
            uint8_t *p = realloc(v, (cap = cap ? 2 * cap : 64) * DS_SHA256_LEN);

            if (p == NULL) {
                rc = SQLITE_NOMEM;
                break;
            }
            v = p;
        }
        memcpy(v + *n * DS_SHA256_LEN, sqlite3_column_blob(st, 0), DS_SHA256_LEN);
        (*n)++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(v);
        *n = 0;
        return rc == SQLITE_NOMEM ? DS_ENOMEM : ds__catalog_err(cat, cat->db, rc, sql);
    }
    *shas = v;
    return 0;
}

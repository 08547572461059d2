/* Catalog: scan generations, the store's history for snapshot pinning
 * (catalog.h; the versions are kept by migration 7's triggers). */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog_int.h"
#include "distsync/error.h"
#include "distsync/json.h"

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

/* One scan_gen row of st (id, started_at, done_at, pins) into *g. */
static void gen_row(sqlite3_stmt *st, ds_catalog_gen_info_t *g)
{
    const unsigned char *pins = sqlite3_column_text(st, 3);

    g->id = sqlite3_column_int64(st, 0);
    g->started_at = sqlite3_column_int64(st, 1);
    g->done_at = sqlite3_column_type(st, 2) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 2);
    snprintf(g->pinned_by, sizeof(g->pinned_by), "%s", pins ? (const char *)pins : "");
}

#define GEN_COLS                                                                                   \
    "SELECT g.id, g.started_at, g.done_at, (SELECT GROUP_CONCAT(p.schedule || '@' ||"              \
    " strftime('%Y-%m-%dT%H:%MZ', p.fire, 'unixepoch'), ', ') FROM schedule_pin p"                 \
    " WHERE p.gen = g.id) FROM scan_gen g"

int ds_catalog_gen_each(ds_catalog_t *cat, int (*cb)(void *ctx, const ds_catalog_gen_info_t *g),
                        void *ctx)
{
    sqlite3_stmt *st = NULL;
    ds_catalog_gen_info_t g;
    int rc = ds__catalog_prep(cat, GEN_COLS " ORDER BY g.id", &st);

    if (rc < 0)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        gen_row(st, &g);
        if (cb(ctx, &g) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    rc = rc == SQLITE_DONE ? 0 : ds__catalog_err(cat, cat->db, rc, "listing scan generations");
    sqlite3_finalize(st);
    return rc;
}

int ds_catalog_gen_get(ds_catalog_t *cat, int64_t gen, ds_catalog_gen_info_t *g)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(cat, GEN_COLS " WHERE g.id = ?", &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, gen);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        gen_row(st, g);
    rc = rc == SQLITE_ROW    ? 1
         : rc == SQLITE_DONE ? 0
                             : ds__catalog_err(cat, cat->db, rc, "reading a scan generation");
    sqlite3_finalize(st);
    return rc;
}

int ds_catalog_gen_range(ds_catalog_t *cat, int64_t *lo, int64_t *hi)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(
        cat, "SELECT MIN(id), MAX(id) FROM scan_gen WHERE done_at IS NOT NULL", &st);

    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *lo = sqlite3_column_int64(st, 0);
        *hi = sqlite3_column_int64(st, 1);
        rc = 1;
    } else {
        rc = rc == SQLITE_ROW ? 0 : ds__catalog_err(cat, cat->db, rc, "reading scan generations");
    }
    sqlite3_finalize(st);
    return rc;
}

/* RFC 3339 UTC of s into buf ("" for 0). */
static const char *iso(int64_t s, char *buf, size_t len)
{
    time_t t = (time_t)s;
    struct tm tm;

    buf[0] = '\0';
    if (s != 0 && gmtime_r(&t, &tm) != NULL)
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

static int gen_json(void *ctx, const ds_catalog_gen_info_t *g)
{
    ds_json_t *j = ctx;
    char when[32], id[32];
    const char *p = g->pinned_by, *sep;

    snprintf(id, sizeof(id), "scan:%lld", (long long)g->id);
    ds_json_obj_begin(j);
    ds_json_kstr(j, "scan", id);
    ds_json_kint(j, "generation", g->id);
    ds_json_kstr(j, "started_at", iso(g->started_at, when, sizeof(when)));
    ds_json_kstr(j, "completed_at", g->done_at ? iso(g->done_at, when, sizeof(when)) : NULL);
    ds_json_key(j, "pinned_by");
    ds_json_arr_begin(j);
    while (*p != '\0') {
        sep = strstr(p, ", ");
        ds_json_strn(j, p, sep ? (size_t)(sep - p) : strlen(p));
        p = sep ? sep + 2 : p + strlen(p);
    }
    ds_json_arr_end(j);
    ds_json_obj_end(j);
    return 0;
}

int ds_catalog_gen_json(ds_json_t *j, ds_catalog_t *cat)
{
    int rc;

    ds_json_obj_begin(j);
    ds_json_kint(j, "keep_days", DS_CATALOG_GEN_KEEP_S / 86400);
    ds_json_key(j, "scans");
    ds_json_arr_begin(j);
    rc = ds_catalog_gen_each(cat, gen_json, j);
    ds_json_arr_end(j);
    ds_json_obj_end(j);
    return rc;
}

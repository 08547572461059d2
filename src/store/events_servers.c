/*
 * Last-known server manifests in the catalog (table server_file, migration
 * 2). Recording a manifest also writes meta key 'manifest_at:NAME' (the
 * time), so that "this server holds nothing" (no rows, but recorded) is
 * told apart from "the catalog knows nothing of this server" (re-created
 * catalog, or never synced): only the second must stop garbage collection.
 * Meta key 'protocol:NAME' holds the protocol version the server's receiver
 * spoke last.
 */
#include <stdlib.h>
#include <string.h>

#include "catalog_int.h"
#include "distsync/error.h"
#include "distsync/events.h"

static int put_all(ds_catalog_t *cat, int64_t sid, const ds_server_file_t *files, size_t n)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(cat, "DELETE FROM server_file WHERE server_id = ?1", &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, sid);
    rc = ds__catalog_step_done(cat, st, "clearing a server manifest");
    if (rc == 0)
        rc = ds__catalog_prep(cat,
                              "INSERT OR REPLACE INTO server_file(server_id, path, sha256, size)"
                              " VALUES(?1, ?2, ?3, ?4)",
                              &st);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, sid);
        sqlite3_bind_text(st, 2, files[i].path, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, files[i].sha256, DS_SHA256_LEN, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (int64_t)files[i].size);
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? 0 : ds__catalog_err(cat, cat->db, rc, "storing a manifest entry");
    }
    sqlite3_finalize(st);
    return rc;
}

/* Records that server's manifest is known as of now. */
static int mark_known(ds_catalog_t *cat, const char *server, int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(cat,
                              "INSERT OR REPLACE INTO meta(key, value)"
                              " VALUES('manifest_at:' || ?1, ?2)",
                              &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, server, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    return ds__catalog_step_done(cat, st, "recording that a manifest is known");
}

int ds_catalog_server_manifest_put(ds_catalog_t *cat, const char *server,
                                   const ds_server_file_t *files, size_t n, int64_t now)
{
    int own, rc;
    int64_t sid;

    if (server == NULL || server[0] == '\0')
        return DS_EUSAGE;
    rc = ds__catalog_txn_begin(cat, &own);
    if (rc < 0)
        return rc;
    rc = ds__events_server_id(cat, server, NULL, now, 1, &sid);
    if (rc == 0)
        rc = put_all(cat, sid, files, n);
    if (rc == 0)
        rc = mark_known(cat, server, now);
    return ds__catalog_txn_end(cat, own, rc);
}

int ds_catalog_server_manifest_set(ds_catalog_t *cat, const char *server, const char *path,
                                   const uint8_t *sha256, uint64_t size, int64_t now)
{
    sqlite3_stmt *st = NULL;
    int64_t sid;
    int rc;

    if (server == NULL || server[0] == '\0' || path == NULL)
        return DS_EUSAGE;
    rc = ds__events_server_id(cat, server, NULL, now, 1, &sid);
    if (rc == 0)
        rc = mark_known(cat, server, now);
    if (rc == 0)
        rc = ds__catalog_prep(cat,
                              sha256 != NULL
                                  ? "INSERT OR REPLACE INTO server_file(server_id, path, sha256,"
                                    " size) VALUES(?1, ?2, ?3, ?4)"
                                  : "DELETE FROM server_file WHERE server_id = ?1 AND path = ?2",
                              &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, sid);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    if (sha256 != NULL) {
        sqlite3_bind_blob(st, 3, sha256, DS_SHA256_LEN, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (int64_t)size);
    }
    return ds__catalog_step_done(cat, st, "recording a manifest entry");
}

int ds_catalog_server_manifest_get(ds_catalog_t *cat, const char *server, ds_server_file_fn fn,
                                   void *ctx)
{
    sqlite3_stmt *st = NULL;
    ds_server_file_t f;
    int rc = ds__catalog_prep(cat,
                              "SELECT f.path, f.sha256, f.size FROM server_file f JOIN server s"
                              " ON s.id = f.server_id WHERE s.name = ?1 ORDER BY f.path",
                              &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, server, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&f, 0, sizeof(f));
        f.path = (const char *)sqlite3_column_text(st, 0);
        if (sqlite3_column_bytes(st, 1) == DS_SHA256_LEN)
            memcpy(f.sha256, sqlite3_column_blob(st, 1), DS_SHA256_LEN);
        f.size = (uint64_t)sqlite3_column_int64(st, 2);
        rc = fn(ctx, &f);
        if (rc != 0)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : ds__catalog_err(cat, cat->db, rc, "reading a server manifest");
out:
    sqlite3_finalize(st);
    return rc;
}

int ds_catalog_server_manifest_known(ds_catalog_t *cat, const char *server)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(cat,
                              "SELECT EXISTS(SELECT 1 FROM meta WHERE key = 'manifest_at:' || ?1)"
                              " OR EXISTS(SELECT 1 FROM server_file f JOIN server s"
                              " ON s.id = f.server_id WHERE s.name = ?1)",
                              &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, server, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    rc = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) != 0
                          : ds__catalog_err(cat, cat->db, rc, "checking for a known manifest");
    sqlite3_finalize(st);
    return rc;
}

int ds_catalog_server_protocol_set(ds_catalog_t *cat, const char *server, unsigned version)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (server == NULL || server[0] == '\0')
        return DS_EUSAGE;
    rc = ds__catalog_prep(
        cat, "INSERT OR REPLACE INTO meta(key, value) VALUES('protocol:' || ?1, ?2)", &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, server, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)version);
    return ds__catalog_step_done(cat, st, "recording a server's protocol version");
}

int ds_catalog_server_protocol_get(ds_catalog_t *cat, const char *server, unsigned *version)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(cat, "SELECT value FROM meta WHERE key = 'protocol:' || ?1", &st);

    *version = 0;
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, server, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *version = (unsigned)sqlite3_column_int64(st, 0);
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE
             ? 0
             : ds__catalog_err(cat, cat->db, rc, "reading a server's protocol version");
    sqlite3_finalize(st);
    return rc;
}

/* meta row KEY || server := v, or removed when del. */
static int meta_set(ds_catalog_t *cat, const char *key, const char *server, int64_t v, int del)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(cat,
                              del ? "DELETE FROM meta WHERE key = ?1 || ?2"
                                  : "INSERT OR REPLACE INTO meta(key, value) VALUES(?1 || ?2, ?3)",
                              &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, server, -1, SQLITE_STATIC);
    if (!del)
        sqlite3_bind_int64(st, 3, v);
    return ds__catalog_step_done(cat, st, "recording a server's server-side copy fallback");
}

/* meta row KEY || server into *v (0 when none). */
static int meta_get(ds_catalog_t *cat, const char *key, const char *server, int64_t *v)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(cat, "SELECT value FROM meta WHERE key = ?1 || ?2", &st);

    *v = 0;
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, server, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int64(st, 0);
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE
             ? 0
             : ds__catalog_err(cat, cat->db, rc, "reading a server's server-side copy fallback");
    sqlite3_finalize(st);
    return rc;
}

int ds_catalog_server_srvcopy_set(ds_catalog_t *cat, const char *server, int64_t at,
                                  int64_t fingerprint)
{
    int rc;

    if (server == NULL || server[0] == '\0')
        return DS_EUSAGE;
    rc = meta_set(cat, "srvcopy_off:", server, at, at == 0);
    if (rc == 0)
        rc = meta_set(cat, "srvcopy_cfg:", server, fingerprint, at == 0);
    return rc;
}

int ds_catalog_server_srvcopy_get(ds_catalog_t *cat, const char *server, int64_t *at,
                                  int64_t *fingerprint)
{
    int rc = meta_get(cat, "srvcopy_off:", server, at);

    *fingerprint = 0;
    if (rc == 0 && *at != 0)
        rc = meta_get(cat, "srvcopy_cfg:", server, fingerprint);
    return rc;
}

/* Steps st (one SHA-256 blob column) into a malloc'ed array; finalizes st. */
static int collect_shas(ds_catalog_t *cat, sqlite3_stmt *st, uint8_t **shas, size_t *n)
{
    uint8_t *v = NULL, *nv;
    size_t len = 0, cap = 0;
    int rc;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != DS_SHA256_LEN)
            continue;
        if (len == cap) {
            cap = cap ? cap * 2 : 256;
            nv = realloc(v, cap * DS_SHA256_LEN);
            if (nv == NULL) {
                rc = DS_ENOMEM;
                goto out;
            }
            v = nv;
        }
        memcpy(v + len++ * DS_SHA256_LEN, sqlite3_column_blob(st, 0), DS_SHA256_LEN);
    }
    rc = rc == SQLITE_DONE ? 0 : ds__catalog_err(cat, cat->db, rc, "listing referenced versions");
out:
    sqlite3_finalize(st);
    if (rc < 0) {
        free(v);
        return rc;
    }
    *shas = v;
    *n = len;
    return 0;
}

int ds_catalog_server_manifest_refs(ds_catalog_t *cat, uint8_t **shas, size_t *n)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(cat, "SELECT DISTINCT sha256 FROM server_file ORDER BY sha256", &st);

    *shas = NULL;
    *n = 0;
    return rc < 0 ? rc : collect_shas(cat, st, shas, n);
}

/* Fills temp.ref_server with servers[0, nservers). */
static int fill_servers(ds_catalog_t *cat, const char *const *servers, size_t nservers)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_exec(cat->db,
                          "CREATE TEMP TABLE IF NOT EXISTS ref_server(name TEXT PRIMARY KEY)"
                          " WITHOUT ROWID; DELETE FROM temp.ref_server;",
                          NULL, NULL, NULL);

    if (rc != SQLITE_OK)
        return ds__catalog_err(cat, cat->db, rc, "listing servers");
    rc = ds__catalog_prep(cat, "INSERT OR IGNORE INTO temp.ref_server(name) VALUES(?1)", &st);
    for (size_t i = 0; rc == 0 && i < nservers; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, servers[i], -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? 0 : ds__catalog_err(cat, cat->db, rc, "listing servers");
    }
    sqlite3_finalize(st);
    return rc;
}

int ds_catalog_server_manifest_refs_of(ds_catalog_t *cat, const char *const *servers,
                                       size_t nservers, uint8_t **shas, size_t *n)
{
    sqlite3_stmt *st = NULL;
    int rc, drc;

    *shas = NULL;
    *n = 0;
    rc = fill_servers(cat, servers, nservers);
    if (rc == 0)
        rc = ds__catalog_prep(cat,
                              "SELECT DISTINCT f.sha256 FROM server_file f JOIN server s"
                              " ON s.id = f.server_id WHERE s.name IN"
                              " (SELECT name FROM temp.ref_server) ORDER BY f.sha256",
                              &st);
    if (rc == 0)
        rc = collect_shas(cat, st, shas, n);
    /* left over, the names would count as referenced by the next call */
    drc = sqlite3_exec(cat->db, "DELETE FROM temp.ref_server", NULL, NULL, NULL);
    if (drc != SQLITE_OK && rc == 0)
        rc = ds__catalog_err(cat, cat->db, drc, "clearing temp.ref_server");
    return rc;
}

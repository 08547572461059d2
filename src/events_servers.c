/* Last-known server manifests in the catalog (table server_file, migration 2). */
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

int ds_catalog_server_manifest_put(ds_catalog_t *cat, const char *server,
                                   const ds_server_file_t *files, size_t n, int64_t now)
{
    int own = !ds_catalog_in_txn(cat), rc;
    int64_t sid;

    if (server == NULL || server[0] == '\0')
        return DS_EUSAGE;
    rc = own ? ds_catalog_begin(cat) : 0;
    if (rc < 0)
        return rc;
    rc = ds__events_server_id(cat, server, NULL, now, 1, &sid);
    if (rc == 0)
        rc = put_all(cat, sid, files, n);
    if (!own)
        return rc;
    if (rc < 0) {
        ds_catalog_rollback(cat);
        return rc;
    }
    return ds_catalog_commit(cat);
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
        rc = ds__catalog_prep(cat,
                              sha256 != NULL
                                  ? "INSERT OR REPLACE INTO server_file(server_id, path, sha256,"
                                    " size) VALUES(?1, ?2, ?3, ?4)"
                                  : "DELETE FROM server_file WHERE server_id = ?1 AND path = ?2",
                              &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, sid);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_TRANSIENT);
    if (sha256 != NULL) {
        sqlite3_bind_blob(st, 3, sha256, DS_SHA256_LEN, SQLITE_TRANSIENT);
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
    sqlite3_bind_text(st, 1, server, -1, SQLITE_TRANSIENT);
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

int ds_catalog_server_manifest_refs(ds_catalog_t *cat, uint8_t **shas, size_t *n)
{
    sqlite3_stmt *st = NULL;
    uint8_t *v = NULL, *nv;
    size_t len = 0, cap = 0;
    int rc = ds__catalog_prep(cat, "SELECT DISTINCT sha256 FROM server_file ORDER BY sha256", &st);

    *shas = NULL;
    *n = 0;
    if (rc < 0)
        return rc;
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

/* Freeze windows in the catalog (freeze.h; table freeze, migration 5). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "catalog_int.h"
#include "distsync/freeze.h"
#include "distsync/tz.h"

int ds_freeze_put(ds_catalog_t *cat, const char *server, int64_t until, const char *reason,
                  int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (server == NULL || server[0] == '\0' || until < 0)
        return DS_EUSAGE;
    rc = ds__catalog_prep(cat,
                          "INSERT OR REPLACE INTO freeze(server, until, reason, frozen_at)"
                          " VALUES(?1, ?2, ?3, ?4)",
                          &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, server, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, until);
    if (reason != NULL && reason[0] != '\0')
        sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    return ds__catalog_step_done(cat, st, "recording a freeze");
}

int ds_freeze_del(ds_catalog_t *cat, const char *server)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(cat, "DELETE FROM freeze WHERE server = ?1", &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, server, -1, SQLITE_STATIC);
    rc = ds__catalog_step_done(cat, st, "thawing a server");
    if (rc == 0 && sqlite3_changes(cat->db) == 0)
        rc = DS_ENOTFOUND;
    return rc;
}

int ds_freeze_get(ds_catalog_t *cat, const char *server, int64_t now, ds_freeze_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(cat,
                              "SELECT until, frozen_at, COALESCE(reason, '') FROM freeze"
                              " WHERE server = ?1 AND (until = 0 OR until > ?2)",
                              &st);

    memset(out, 0, sizeof(*out));
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, server, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(out->server, sizeof(out->server), "%s", server);
        out->until = sqlite3_column_int64(st, 0);
        out->frozen_at = sqlite3_column_int64(st, 1);
        snprintf(out->reason, sizeof(out->reason), "%s", (const char *)sqlite3_column_text(st, 2));
        rc = 0;
    } else
        rc = rc == SQLITE_DONE ? DS_ENOTFOUND
                               : ds__catalog_err(cat, cat->db, rc, "reading a freeze");
    sqlite3_finalize(st);
    return rc;
}

void ds_freeze_describe(const ds_freeze_t *f, char *buf, size_t len)
{
    char when[40] = "until thawed", iso[32];

    if (f->until > 0 && ds_tz_format_utc(f->until, iso, sizeof(iso)) == 0)
        snprintf(when, sizeof(when), "until %s", iso);
    snprintf(buf, len, "server %s is frozen %s%s%s%s", f->server, when, f->reason[0] ? " (" : "",
             f->reason, f->reason[0] ? ")" : "");
}

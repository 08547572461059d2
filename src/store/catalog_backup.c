/*
 * The catalog's online copy (SQLite's backup API) and its integrity check,
 * for `distsync backup` and `distsync restore` (src/backup/).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "catalog_int.h"

int ds_catalog_backup(const char *src, const char *dst, char *err, size_t errlen)
{
    sqlite3 *s = NULL, *d = NULL;
    sqlite3_backup *b = NULL;
    const char *who = src;
    int rc, fd;

    /* the destination is made here, so a planted file or link is refused */
    fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: cannot create: %s", dst, strerror(errno));
        return rc;
    }
    close(fd);
    rc = sqlite3_open_v2(src, &s, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(s, 10000);
        who = dst;
        rc = sqlite3_open_v2(dst, &d, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    }
    if (rc != SQLITE_OK)
        goto out;
    b = sqlite3_backup_init(d, "main", s, "main");
    if (b == NULL) {
        rc = sqlite3_errcode(d);
        goto out;
    }
    who = src;
    /* -1: every page in one step, under one read transaction */
    do {
        rc = sqlite3_backup_step(b, -1);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
            sqlite3_sleep(20);
    } while (rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    rc = sqlite3_backup_finish(b) == SQLITE_OK && rc == SQLITE_DONE ? SQLITE_OK : rc;
    b = NULL;
    if (rc == SQLITE_OK) /* the copy stands alone: no -wal beside it */
        rc = sqlite3_exec(d, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
    who = dst;
out:
    if (rc != SQLITE_OK) {
        /* open errors are on their own connection; backup errors on d's */
        sqlite3 *db = d ? d : s;

        snprintf(err, errlen, "%s: online backup failed: %s", who,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        rc = ds__catalog_rc(rc);
    }
    sqlite3_close_v2(d);
    sqlite3_close_v2(s);
    if (rc != 0)
        unlink(dst);
    return rc;
}

int ds_catalog_integrity(ds_catalog_t *cat, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    const char *v;
    int rc = ds__catalog_prep(cat, "PRAGMA integrity_check", &st);

    if (rc < 0) {
        snprintf(err, errlen, "%s: cannot run integrity_check", cat->path);
        return rc;
    }
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = ds__catalog_err(cat, cat->db, rc, "integrity_check");
        snprintf(err, errlen, "%s: integrity_check failed: %s", cat->path, ds_strerror(rc));
        goto out;
    }
    v = (const char *)sqlite3_column_text(st, 0);
    if (v != NULL && strcmp(v, "ok") == 0) {
        rc = 0;
    } else {
        snprintf(err, errlen, "%s: integrity_check: %.300s", cat->path, v ? v : "(no answer)");
        rc = DS_ECORRUPT;
    }
out:
    sqlite3_finalize(st);
    return rc;
}

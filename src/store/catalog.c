/* Catalog: opening the SQLite database, schema migrations, transactions. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "catalog_int.h"
#include "distsync/error.h"
#include "distsync/events.h"
#include "distsync/log.h"

/*
 * Migrations. migrations[i] brings the schema from version i to i + 1; its
 * statements run in one transaction together with the user_version bump.
 * To extend the schema, append an array; never edit a published one.
 */
static const char *const migration_1[] = {
    "CREATE TABLE content("
    " id INTEGER PRIMARY KEY,"
    " sha256 BLOB NOT NULL UNIQUE,"
    " size INTEGER NOT NULL,"
    " nchunks INTEGER NOT NULL,"
    " chunks BLOB NOT NULL)",
    /* No foreign key to content: the GC deletes entries by h64, from the
     * chunk list of the content it drops, which needs no extra index. */
    "CREATE TABLE chunk_index("
    " h64 INTEGER NOT NULL,"
    " content_id INTEGER NOT NULL,"
    " PRIMARY KEY(h64, content_id)) WITHOUT ROWID",
    "CREATE TABLE file("
    " id INTEGER PRIMARY KEY,"
    " path TEXT NOT NULL UNIQUE,"
    " class TEXT NOT NULL,"
    " size INTEGER NOT NULL,"
    " mtime_ns INTEGER NOT NULL,"
    " inode INTEGER NOT NULL,"
    " dev INTEGER NOT NULL,"
    " content_id INTEGER REFERENCES content(id),"
    " scanned_at INTEGER NOT NULL)",
    "CREATE INDEX file_content ON file(content_id)",
    NULL,
};

/* Migration 2: servers, runs, events and last-known server manifests
 * (include/distsync/events.h, src/store/events.c). */
static const char *const migration_2[] = {
    "CREATE TABLE server("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " url TEXT,"
    " first_seen INTEGER NOT NULL,"
    " last_sync_at INTEGER,"
    " last_status TEXT)",
    "CREATE TABLE run("
    " id INTEGER PRIMARY KEY,"
    " server_id INTEGER NOT NULL REFERENCES server(id),"
    " trigger TEXT NOT NULL CHECK(trigger IN ('manual','schedule','gate')),"
    " started_at INTEGER NOT NULL,"
    " ended_at INTEGER,"
    " status TEXT NOT NULL"
    "  CHECK(status IN ('running','ok','failed','interrupted')),"
    " files_created INTEGER NOT NULL DEFAULT 0,"
    " files_updated INTEGER NOT NULL DEFAULT 0,"
    " files_deleted INTEGER NOT NULL DEFAULT 0,"
    " files_failed INTEGER NOT NULL DEFAULT 0,"
    " bytes_wire INTEGER NOT NULL DEFAULT 0,"
    " bytes_literal INTEGER NOT NULL DEFAULT 0,"
    " bytes_copied INTEGER NOT NULL DEFAULT 0,"
    " error TEXT,"
    " pid INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX run_server_time ON run(server_id, started_at)",
    "CREATE INDEX run_time ON run(started_at)",
    "CREATE INDEX run_running ON run(server_id) WHERE status = 'running'",
    "CREATE TABLE event("
    " id INTEGER PRIMARY KEY,"
    " run_id INTEGER NOT NULL REFERENCES run(id) ON DELETE CASCADE,"
    " at INTEGER NOT NULL,"
    " level INTEGER NOT NULL,"
    " kind TEXT NOT NULL"
    "  CHECK(kind IN ('start','file','delete','error','end','lease','warning')),"
    " path TEXT,"
    " outcome TEXT,"
    " bytes_literal INTEGER NOT NULL DEFAULT 0,"
    " bytes_copied INTEGER NOT NULL DEFAULT 0,"
    " bytes_wire INTEGER NOT NULL DEFAULT 0,"
    " message TEXT)",
    "CREATE INDEX event_run ON event(run_id)",
    "CREATE TABLE server_file("
    " server_id INTEGER NOT NULL REFERENCES server(id),"
    " path TEXT NOT NULL,"
    " sha256 BLOB NOT NULL,"
    " size INTEGER NOT NULL,"
    " PRIMARY KEY(server_id, path)) WITHOUT ROWID",
    "CREATE INDEX server_file_sha ON server_file(sha256)",
    NULL,
};

/* Migration 3: facts about the catalog itself (ds_catalog_scanned). A
 * catalog that already holds files was scanned before the mark existed. */
static const char *const migration_3[] = {
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    "INSERT INTO meta(key, value) SELECT 'first_scan_at', (SELECT MAX(scanned_at) FROM file)"
    " WHERE EXISTS (SELECT 1 FROM file)",
    NULL,
};

/* Migration 4: runs get a kind (sync, verify, repair), the statuses
 * 'cancelled' (SIGINT/SIGTERM) and 'drift' (verify found tampering), and
 * the host of the process that began them (pid is only meaningful there).
 * SQLite cannot widen a CHECK: the table is rebuilt (foreign keys are off
 * while migrating, see migrate()), ids and rows unchanged. */
static const char *const migration_4[] = {
    "CREATE TABLE run_new("
    " id INTEGER PRIMARY KEY,"
    " server_id INTEGER NOT NULL REFERENCES server(id),"
    " trigger TEXT NOT NULL CHECK(trigger IN ('manual','schedule','gate')),"
    " started_at INTEGER NOT NULL,"
    " ended_at INTEGER,"
    " status TEXT NOT NULL"
    "  CHECK(status IN ('running','ok','failed','interrupted','cancelled','drift')),"
    " files_created INTEGER NOT NULL DEFAULT 0,"
    " files_updated INTEGER NOT NULL DEFAULT 0,"
    " files_deleted INTEGER NOT NULL DEFAULT 0,"
    " files_failed INTEGER NOT NULL DEFAULT 0,"
    " bytes_wire INTEGER NOT NULL DEFAULT 0,"
    " bytes_literal INTEGER NOT NULL DEFAULT 0,"
    " bytes_copied INTEGER NOT NULL DEFAULT 0,"
    " error TEXT,"
    " pid INTEGER NOT NULL DEFAULT 0,"
    " host TEXT,"
    " kind TEXT NOT NULL DEFAULT 'sync' CHECK(kind IN ('sync','verify','repair')))",
    "INSERT INTO run_new(id, server_id, trigger, started_at, ended_at, status, files_created,"
    " files_updated, files_deleted, files_failed, bytes_wire, bytes_literal, bytes_copied,"
    " error, pid) SELECT id, server_id, trigger, started_at, ended_at, status, files_created,"
    " files_updated, files_deleted, files_failed, bytes_wire, bytes_literal, bytes_copied,"
    " error, pid FROM run",
    "DROP TABLE run",
    "ALTER TABLE run_new RENAME TO run",
    "CREATE INDEX run_server_time ON run(server_id, started_at)",
    "CREATE INDEX run_time ON run(started_at)",
    "CREATE INDEX run_running ON run(server_id) WHERE status = 'running'",
    NULL,
};

/* Migration 5: what the daemon did with each fire of a schedule (catch-up
 * never repeats a recorded fire; 'interrupted' ones run again), and the
 * frozen servers (distsync freeze; until 0: until thawed). */
static const char *const migration_5[] = {
    "CREATE TABLE schedule_fire("
    " schedule TEXT NOT NULL,"
    " fire INTEGER NOT NULL,"
    " outcome TEXT NOT NULL CHECK(outcome IN ('ok','failed','skipped','interrupted')),"
    " reason TEXT,"
    " recorded_at INTEGER NOT NULL,"
    " PRIMARY KEY(schedule, fire)) WITHOUT ROWID",
    "CREATE TABLE freeze("
    " server TEXT PRIMARY KEY,"
    " until INTEGER NOT NULL DEFAULT 0,"
    " reason TEXT,"
    " frozen_at INTEGER NOT NULL) WITHOUT ROWID",
    NULL,
};

/* Migration 6: the upgrade gate (include/distsync/gate_state.h,
 * src/store/gate_state.c): one row per client of a rollout (its status, its
 * grant and lease, its place in the queue), the history of outcomes, and
 * each rollout's controls (paused and why, rings opened). */
static const char *const migration_6[] = {
    "CREATE TABLE gate_client("
    " rollout TEXT NOT NULL,"
    " client TEXT NOT NULL,"
    " status INTEGER NOT NULL,"
    " site TEXT NOT NULL,"
    " server TEXT NOT NULL,"
    " from_version TEXT NOT NULL,"
    " version TEXT NOT NULL,"
    " token TEXT NOT NULL,"
    " seq INTEGER NOT NULL,"
    " granted_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " at INTEGER NOT NULL,"
    " reported INTEGER NOT NULL,"
    " detail TEXT NOT NULL,"
    " PRIMARY KEY(rollout, client)) WITHOUT ROWID",
    "CREATE TABLE gate_outcome("
    " id INTEGER PRIMARY KEY,"
    " rollout TEXT NOT NULL,"
    " client TEXT NOT NULL,"
    " version TEXT NOT NULL,"
    " outcome TEXT NOT NULL CHECK(outcome IN ('success','failure','expired')),"
    " late INTEGER NOT NULL,"
    " server TEXT NOT NULL,"
    " at INTEGER NOT NULL,"
    " detail TEXT NOT NULL)",
    "CREATE INDEX gate_outcome_rollout ON gate_outcome(rollout, at)",
    "CREATE TABLE gate_rollout("
    " rollout TEXT PRIMARY KEY,"
    " paused INTEGER NOT NULL,"
    " reason TEXT NOT NULL,"
    " opened INTEGER NOT NULL,"
    " at INTEGER NOT NULL) WITHOUT ROWID",
    NULL,
};

/* Migration 7: scan generations (snapshot pinning, catalog_gen.c). Each
 * scan opens a generation (scan_gen: its start, and its end once it
 * completed) and every file version knows the generations in which it was
 * current: first_gen..last_gen (NULL: still current). The triggers keep
 * file_version in step with file, in the generation in progress (the
 * newest), so no writer of file can forget it. An existing catalog's files
 * form generation 1, dated by their last scan. */
#define CUR_GEN "(SELECT COALESCE(MAX(id), 0) FROM scan_gen)"
#define CLOSE_VERSION(P)                                                                           \
    "UPDATE file_version SET last_gen = " CUR_GEN " - 1 WHERE path = " P                           \
    " AND last_gen IS NULL AND first_gen < " CUR_GEN ";"                                           \
    "DELETE FROM file_version WHERE path = " P " AND first_gen = " CUR_GEN ";"
#define OPEN_VERSION                                                                               \
    "INSERT INTO file_version(path, class, size, mtime_ns, content_id, first_gen)"                 \
    " VALUES(new.path, new.class, new.size, new.mtime_ns, new.content_id, " CUR_GEN ");"
static const char *const migration_7[] = {
    "CREATE TABLE scan_gen("
    " id INTEGER PRIMARY KEY,"
    " started_at INTEGER NOT NULL,"
    " done_at INTEGER)",
    "CREATE TABLE file_version("
    " path TEXT NOT NULL,"
    " class TEXT NOT NULL,"
    " size INTEGER NOT NULL,"
    " mtime_ns INTEGER NOT NULL,"
    " content_id INTEGER,"
    " first_gen INTEGER NOT NULL,"
    " last_gen INTEGER,"
    " PRIMARY KEY(path, first_gen)) WITHOUT ROWID",
    "CREATE INDEX file_version_last ON file_version(last_gen)",
    "INSERT INTO scan_gen(id, started_at, done_at)"
    " SELECT 1, MAX(scanned_at), MAX(scanned_at) FROM file HAVING COUNT(*) > 0",
    "INSERT INTO file_version(path, class, size, mtime_ns, content_id, first_gen)"
    " SELECT path, class, size, mtime_ns, content_id, 1 FROM file",
    "CREATE TRIGGER file_version_insert AFTER INSERT ON file BEGIN " CLOSE_VERSION("new.path")
        OPEN_VERSION " END",
    "CREATE TRIGGER file_version_change AFTER UPDATE ON file"
    " WHEN new.content_id IS NOT old.content_id OR new.path IS NOT old.path"
    " OR new.class IS NOT old.class BEGIN " CLOSE_VERSION("old.path") CLOSE_VERSION("new.path")
        OPEN_VERSION " END",
    /* same content, new mtime (a touch): the version's row follows */
    "CREATE TRIGGER file_version_touch AFTER UPDATE OF size, mtime_ns ON file"
    " WHEN new.content_id IS old.content_id AND new.path IS old.path"
    " AND new.class IS old.class BEGIN"
    " UPDATE file_version SET size = new.size, mtime_ns = new.mtime_ns"
    " WHERE path = new.path AND last_gen IS NULL; END",
    "CREATE TRIGGER file_version_delete AFTER DELETE ON file BEGIN " CLOSE_VERSION(
        "old.path") " END",
    /* the generation each fire of a delayed schedule pinned at its anchor:
     * the retain store keeps its versions until the fire is recorded */
    "CREATE TABLE schedule_pin("
    " schedule TEXT NOT NULL,"
    " fire INTEGER NOT NULL,"
    " anchor INTEGER NOT NULL,"
    " gen INTEGER NOT NULL,"
    " PRIMARY KEY(schedule, fire)) WITHOUT ROWID",
    NULL,
};

/* Migration 8: a schedule fire may be 'cancelled' (through the API; like
 * every outcome but 'interrupted', catch-up never runs it again), and the
 * daemon's ended runs (GET /v1/runs after a restart), each with its servers.
 * The CHECK is widened by rebuilding the table, rows unchanged. */
static const char *const migration_8[] = {
    "CREATE TABLE schedule_fire_new("
    " schedule TEXT NOT NULL,"
    " fire INTEGER NOT NULL,"
    " outcome TEXT NOT NULL"
    "  CHECK(outcome IN ('ok','failed','skipped','interrupted','cancelled')),"
    " reason TEXT,"
    " recorded_at INTEGER NOT NULL,"
    " PRIMARY KEY(schedule, fire)) WITHOUT ROWID",
    "INSERT INTO schedule_fire_new SELECT schedule, fire, outcome, reason, recorded_at"
    " FROM schedule_fire",
    "DROP TABLE schedule_fire",
    "ALTER TABLE schedule_fire_new RENAME TO schedule_fire",
    "CREATE TABLE daemon_run("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL,"
    " trigger TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " reason TEXT,"
    " queued_at INTEGER NOT NULL,"
    " started_at INTEGER NOT NULL,"
    " ended_at INTEGER NOT NULL)",
    "CREATE TABLE daemon_run_server("
    " run INTEGER NOT NULL REFERENCES daemon_run(seq) ON DELETE CASCADE,"
    " server TEXT NOT NULL,"
    " result TEXT,"
    " files_done INTEGER NOT NULL,"
    " files_total INTEGER NOT NULL,"
    " bytes_done INTEGER NOT NULL,"
    " bytes_total INTEGER NOT NULL,"
    " bytes_wire INTEGER NOT NULL)",
    "CREATE INDEX daemon_run_server_run ON daemon_run_server(run)",
    NULL,
};

/* Migration 9: what GET /v1/runs/ID shows of an ended run that migration 8
 * did not keep, so that it reads the same after a restart: the run-now's
 * classes (a JSON array; NULL: every class), the delta cache's counters,
 * the run's length in ms (its rate), a run-now's as_of (sync --as-of: the
 * store as of then; 0: none), and each server's rc and report (the
 * object sync --json prints for it; NULL: none). Rows of migration 8 keep
 * NULL and 0. */
static const char *const migration_9[] = {
    "ALTER TABLE daemon_run ADD COLUMN classes TEXT",
    "ALTER TABLE daemon_run ADD COLUMN deltas_computed INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE daemon_run ADD COLUMN deltas_cached INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE daemon_run ADD COLUMN deltas_relevelled INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE daemon_run ADD COLUMN run_ms INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE daemon_run ADD COLUMN as_of INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE daemon_run_server ADD COLUMN rc INTEGER",
    "ALTER TABLE daemon_run_server ADD COLUMN report TEXT",
    NULL,
};

static const char *const *const migrations[] = {
    migration_1, migration_2, migration_3, migration_4, migration_5,
    migration_6, migration_7, migration_8, migration_9,
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int ds_catalog_schema_latest(void)
{
    return NMIGRATIONS;
}

/* The errno of access(W_OK) on path's directory, or 0 when it is writable. */
static int dir_unwritable(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;

    if (n == 0 || n >= sizeof(dir))
        snprintf(dir, sizeof(dir), "%s", n == 0 && slash ? "/" : ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)n, path);
    return access(dir, W_OK) < 0 ? errno : 0;
}

/* Why the database at path cannot be written: the errno of access(W_OK) on
 * the file, its -wal and -shm files (SQLite creates them with the file's
 * mode), else on its directory, else EROFS. */
static int readonly_why(const char *path)
{
    static const char *const sfx[] = {"", "-wal", "-shm"};
    char file[4096];
    int e;

    for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
        snprintf(file, sizeof(file), "%s%s", path, sfx[i]);
        if (access(file, W_OK) < 0 && errno != ENOENT)
            return errno;
    }
    e = dir_unwritable(path);
    return e ? e : EROFS;
}

int ds__catalog_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return DS_ENOMEM;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_IOERR:
        return -EIO;
    case SQLITE_CANTOPEN:
        return -ENOENT;
    case SQLITE_PERM:
        return -EACCES;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return DS_ECORRUPT;
    default:
        return DS_ECATALOG;
    }
}

int ds__catalog_err(ds_catalog_t *cat, sqlite3 *db, int rc, const char *what)
{
    ds_log(DS_LOG_ERROR, "catalog %s: %s: %s", cat->path, what,
           db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    /* SQLite opens a file it may not write read-only and says only
     * "readonly database": access() tells why (EACCES: permissions,
     * EPERM: immutable, EROFS: read-only mount). */
    if ((rc & 0xff) == SQLITE_READONLY)
        return -readonly_why(cat->path);
    return ds__catalog_rc(rc);
}

int ds_catalog_path(const char *state, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/" DS_CATALOG_FILE, state);

    return n >= 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

int ds__catalog_prep(ds_catalog_t *cat, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(cat->db, sql, -1, st, NULL);

    return rc == SQLITE_OK ? 0 : ds__catalog_err(cat, cat->db, rc, sql);
}

void ds__catalog_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s != NULL)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

const char *ds__catalog_col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

int ds__catalog_step_done(ds_catalog_t *cat, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);

    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : ds__catalog_err(cat, cat->db, rc, what);
}

static int exec(ds_catalog_t *cat, const char *sql)
{
    int rc = sqlite3_exec(cat->db, sql, NULL, NULL, NULL);

    return rc == SQLITE_OK ? 0 : ds__catalog_err(cat, cat->db, rc, sql);
}

static int user_version(sqlite3 *db, int *v)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);

    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *v = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Applies migration i (version i -> i + 1), inside an open transaction. */
static int apply_migration(ds_catalog_t *cat, int i)
{
    char sql[64];
    int rc;

    for (const char *const *s = migrations[i]; *s != NULL; s++) {
        rc = exec(cat, *s);
        if (rc < 0)
            return rc;
    }
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", i + 1);
    return exec(cat, sql);
}

/* Brings the schema to NMIGRATIONS. The version is re-read under the write
 * lock, so two processes opening a fresh database do not both migrate. */
static int migrate_locked(ds_catalog_t *cat, char *err, size_t errlen)
{
    int v = 0, rc;

    if (user_version(cat->db, &v) != SQLITE_OK)
        goto sqlfail;
    if (v == NMIGRATIONS)
        return 0;
    cat->created = v == 0;
    if (v > NMIGRATIONS)
        goto newer;
    while (v < NMIGRATIONS) {
        rc = ds_catalog_begin(cat);
        if (rc < 0)
            goto sqlfail;
        if (user_version(cat->db, &v) != SQLITE_OK) {
            ds_catalog_rollback(cat);
            goto sqlfail;
        }
        if (v > NMIGRATIONS) {
            ds_catalog_rollback(cat);
            goto newer;
        }
        if (v < NMIGRATIONS) {
            rc = apply_migration(cat, v);
            if (rc < 0) {
                ds_catalog_rollback(cat);
                snprintf(err, errlen, "%s: migration to schema version %d failed: %s", cat->path,
                         v + 1, sqlite3_errmsg(cat->db));
                return rc;
            }
            v++;
        }
        rc = ds_catalog_commit(cat);
        if (rc < 0)
            goto sqlfail;
    }
    return 0;
newer:
    snprintf(err, errlen,
             "%s: schema version %d is newer than this distsync understands (%d): "
             "upgrade distsync",
             cat->path, v, NMIGRATIONS);
    return DS_ESCHEMA;
sqlfail:
    snprintf(err, errlen, "%s: cannot read the schema version: %s", cat->path,
             sqlite3_errmsg(cat->db));
    return DS_ECATALOG;
}

/* Migrations run with foreign keys off (SQLite's recipe for rebuilding a
 * table: a DROP would otherwise cascade to the rows that reference it), and
 * checked before they are turned on again. */
static int migrate(ds_catalog_t *cat, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc, bad = 0;

    /* off, else a rebuild's DROP cascades; the message goes in err (once) */
    if (sqlite3_exec(cat->db, "PRAGMA foreign_keys = OFF", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot turn foreign keys off to migrate: %s", cat->path,
                 sqlite3_errmsg(cat->db));
        return DS_ECATALOG;
    }
    rc = migrate_locked(cat, err, errlen);
    if (rc == 0 &&
        sqlite3_prepare_v2(cat->db, "PRAGMA foreign_key_check", -1, &st, NULL) == SQLITE_OK) {
        bad = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
    }
    if (sqlite3_exec(cat->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL) != SQLITE_OK &&
        rc == 0) {
        snprintf(err, errlen, "%s: cannot turn foreign keys on again after migrating: %s",
                 cat->path, sqlite3_errmsg(cat->db));
        rc = DS_ECATALOG;
    }
    if (rc == 0 && bad) {
        snprintf(err, errlen, "%s: foreign key check failed after migrating", cat->path);
        rc = DS_ECORRUPT;
    }
    return rc;
}

static int configure(ds_catalog_t *cat, char *err, size_t errlen)
{
    static const char *const pragmas[] = {
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
        /* 16 MiB of page cache: scans touch index pages all over (SHA-256
         * keys are random); within the 64 MiB memory budget. */
        "PRAGMA cache_size = -16384",
    };
    int rc;

    sqlite3_busy_timeout(cat->db, 10000);
    for (size_t i = 0; i < sizeof(pragmas) / sizeof(pragmas[0]); i++) {
        rc = sqlite3_exec(cat->db, pragmas[i], NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            /* "unable to open database file" when the WAL cannot be made:
             * say why (a read-only mount, permissions) */
            int e = (rc & 0xff) == SQLITE_CANTOPEN ? dir_unwritable(cat->path) : 0;

            /* "disk I/O error" when the -shm cannot be made: the errno says
             * why (No space left on device) */
            if ((rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_FULL)
                e = sqlite3_system_errno(cat->db);

            snprintf(err, errlen, "%s: %s: %s%s%s", cat->path, pragmas[i], sqlite3_errmsg(cat->db),
                     e ? ": " : "", e ? strerror(e) : "");
            return (rc & 0xff) == SQLITE_NOTADB ? DS_ECORRUPT : DS_ECATALOG;
        }
    }
    return 0;
}

int ds_catalog_open(const char *path, ds_catalog_t **out, char *err, size_t errlen)
{
    ds_catalog_t *cat = calloc(1, sizeof(*cat));
    int rc;

    *out = NULL;
    if (cat == NULL || (cat->path = strdup(path)) == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        rc = DS_ENOMEM;
        goto out;
    }
    rc = sqlite3_open_v2(path, &cat->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot open: %s", path,
                 cat->db ? sqlite3_errmsg(cat->db) : sqlite3_errstr(rc));
        rc = (rc & 0xff) == SQLITE_CANTOPEN ? -ENOENT : DS_ECATALOG;
        goto out;
    }
    sqlite3_extended_result_codes(cat->db, 1);
    rc = configure(cat, err, errlen);
    if (rc < 0)
        goto out;
    rc = migrate(cat, err, errlen);
    if (rc < 0)
        goto out;
    /* runs left 'running' by a console killed with -9 (best effort: a
     * read-only catalog still opens) */
    if (ds_run_reap(cat, (int64_t)time(NULL), NULL) < 0)
        ds_log(DS_LOG_WARN, "catalog %s: cannot mark interrupted runs", path);
    *out = cat;
    cat = NULL;
out:
    ds_catalog_free(cat);
    return rc < 0 ? rc : 0;
}

const char *ds_catalog_name(const ds_catalog_t *cat)
{
    return cat->path;
}

void ds_catalog_free(ds_catalog_t *cat)
{
    if (cat == NULL)
        return;
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(cat->st[i]);
    if (cat->in_txn)
        sqlite3_exec(cat->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close_v2(cat->rdb);
    sqlite3_close_v2(cat->db);
    free(cat->path);
    free(cat);
}

int ds_catalog_schema_version(ds_catalog_t *cat)
{
    int v = -1;

    if (user_version(cat->db, &v) != SQLITE_OK)
        return ds__catalog_err(cat, cat->db, SQLITE_ERROR, "PRAGMA user_version");
    return v;
}

int ds_catalog_begin(ds_catalog_t *cat)
{
    int rc;

    if (cat->in_txn)
        return DS_EINTERNAL;
    rc = exec(cat, "BEGIN IMMEDIATE");
    if (rc == 0)
        cat->in_txn = 1;
    return rc;
}

int ds_catalog_commit(ds_catalog_t *cat)
{
    int rc;

    if (!cat->in_txn)
        return DS_EINTERNAL;
    rc = exec(cat, "COMMIT");
    if (rc < 0) /* still open after a busy or a deferred constraint: what it wrote is lost */
        (void)ds_catalog_rollback(cat);
    cat->in_txn = 0;
    return rc;
}

int ds_catalog_rollback(ds_catalog_t *cat)
{
    if (!cat->in_txn)
        return 0;
    cat->in_txn = 0;
    /* SQLite has already rolled back after SQLITE_FULL, SQLITE_IOERR or
     * SQLITE_NOMEM (the error the caller reports): a second ROLLBACK would
     * only log "no transaction is active" */
    if (sqlite3_get_autocommit(cat->db))
        return 0;
    return exec(cat, "ROLLBACK");
}

/* See catalog_int.h. */
int ds__catalog_txn_begin(ds_catalog_t *cat, int *own)
{
    *own = !cat->in_txn;
    return *own ? ds_catalog_begin(cat) : 0;
}

/* See catalog_int.h. */
int ds__catalog_txn_end(ds_catalog_t *cat, int own, int rc)
{
    if (!own)
        return rc;
    if (rc < 0) {
        (void)ds_catalog_rollback(cat); /* rc is what the caller reports */
        return rc;
    }
    return ds_catalog_commit(cat);
}

int ds_catalog_in_txn(ds_catalog_t *cat)
{
    return cat->in_txn;
}

int ds__catalog_reader(ds_catalog_t *cat)
{
    int rc;

    if (cat->rdb != NULL)
        return 0;
    rc = sqlite3_open_v2(cat->path, &cat->rdb, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = ds__catalog_err(cat, cat->rdb, rc, "opening the read connection");
        sqlite3_close_v2(cat->rdb);
        cat->rdb = NULL;
        return rc;
    }
    sqlite3_busy_timeout(cat->rdb, 10000);
    return 0;
}

int ds_catalog_created(const ds_catalog_t *cat)
{
    return cat->created;
}

int ds_catalog_scanned(ds_catalog_t *cat, int64_t *at)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(cat, "SELECT value FROM meta WHERE key = 'first_scan_at'", &st);

    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && at != NULL)
        *at = sqlite3_column_int64(st, 0);
    rc = rc == SQLITE_ROW    ? 1
         : rc == SQLITE_DONE ? 0
                             : ds__catalog_err(cat, cat->db, rc, "reading the scan mark");
    sqlite3_finalize(st);
    return rc;
}

int ds_catalog_mark_scanned(ds_catalog_t *cat, int64_t now)
{
    sqlite3_stmt *st = NULL;
    int rc = ds_catalog_scanned(cat, NULL);

    if (rc != 0)
        return rc < 0 ? rc : 0; /* already marked: no write */
    rc = ds__catalog_prep(cat, "INSERT INTO meta(key, value) VALUES('first_scan_at', ?)", &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    return ds__catalog_step_done(cat, st, "recording the scan mark");
}

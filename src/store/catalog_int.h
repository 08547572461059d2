/* Catalog internals shared by catalog.c and catalog_files.c. */
#ifndef DS_CATALOG_INT_H
#define DS_CATALOG_INT_H

#include <sqlite3.h>

#include "distsync/catalog.h"
#include "distsync/error.h"

/* Prepared statements, compiled on first use and kept for the handle's
 * lifetime. */
enum cat_stmt {
    ST_CONTENT_INSERT,
    ST_CONTENT_FIND,
    ST_CONTENT_GET,
    ST_CHUNK_INSERT,
    ST_FILE_PUT,
    ST_FILE_DELETE,
    ST_FILE_GET,
    ST_CHUNK_LOOKUP,
    ST__COUNT,
};

struct ds_catalog {
    sqlite3 *db;
    sqlite3 *rdb; /* read connection for cursors, opened on demand */
    char *path;
    int in_txn;
    int cursor_open;
    int created; /* the schema was created by this open */
    sqlite3_stmt *st[ST__COUNT];
};

/* Logs "catalog PATH: what: sqlite message" and maps an SQLite result code
 * to a distsync error code. */
int ds__catalog_err(ds_catalog_t *cat, sqlite3 *db, int rc, const char *what);
/* The store's transactions on the write connection. txn_begin opens one
 * unless the caller holds one (*own: this call opened it); txn_end then
 * ends it when own: ROLLBACK when rc < 0, else COMMIT. Returns rc, or the
 * failure of BEGIN or COMMIT (logged by ds__catalog_err, as ever). */
int ds__catalog_txn_begin(ds_catalog_t *cat, int *own);
int ds__catalog_txn_end(ds_catalog_t *cat, int own, int rc);

/* SQLite result rc as ours (DS_ENOMEM, -ENOSPC, -EIO, -ENOENT, -EACCES,
 * DS_ECORRUPT, else DS_ECATALOG), without logging. */
int ds__catalog_rc(int rc);

/* Returns the cached statement for id (compiling it on first use), reset and
 * with its bindings cleared, or NULL on error (logged). */
sqlite3_stmt *ds__catalog_stmt(ds_catalog_t *cat, enum cat_stmt id);

/* Compiles sql on the write connection into *st. Returns 0 or the mapped
 * error (logged, naming the statement). */
DS_MUST_CHECK int ds__catalog_prep(ds_catalog_t *cat, const char *sql, sqlite3_stmt **st);

/* Steps a statement that returns no row and finalizes it. Returns 0 or the
 * mapped error (logged with what). */
DS_MUST_CHECK int ds__catalog_step_done(ds_catalog_t *cat, sqlite3_stmt *st, const char *what);

/* Binds s to parameter i, or NULL when s is NULL. SQLITE_STATIC: s must
 * stay valid until the statement is stepped and finalized; nothing is copied,
 * so no bind can fail on memory and leave a NULL in the row. Shared by
 * events.c and daemon_run.c. */
void ds__catalog_bind_text(sqlite3_stmt *st, int i, const char *s);

/* Column i of the current row as text (NULL for NULL), valid until the
 * statement's next step, reset or finalize. */
const char *ds__catalog_col_text(sqlite3_stmt *st, int i);

/* events.c: server name's id in table server; creates the row when create
 * is set (updating url when not NULL). *id is 0 if absent and not created.
 * Shared by runs (events.c) and last-known manifests (events_servers.c). */
DS_MUST_CHECK int ds__events_server_id(ds_catalog_t *cat, const char *name, const char *url,
                                       int64_t now, int create, int64_t *id);

/* Opens the read-only cursor connection if needed. Returns 0 or < 0. */
DS_MUST_CHECK int ds__catalog_reader(ds_catalog_t *cat);

#endif

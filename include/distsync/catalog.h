/*
 * Catalog: the console's SQLite state database (<state>/catalog.db).
 *
 * One connection writes (the scan's main thread, later the engine); the
 * database runs in WAL mode so readers never block it. The schema is
 * versioned through PRAGMA user_version and upgraded by a static list of
 * migrations, each applied in one transaction.
 *
 * Tables (migration 1):
 *   content(id, sha256 UNIQUE, size, nchunks, chunks)
 *       One row per distinct content version. chunks is the ordered chunk
 *       list, DS_CATALOG_CHUNK_REC bytes per chunk: XXH3-128 (canonical,
 *       16 bytes) then the length as u32 little-endian. Content rows outlive
 *       the file rows that point at them (servers' manifests keep old
 *       versions alive); a later GC drops unreferenced ones.
 *   chunk_index(h64, content_id) WITHOUT ROWID
 *       h64: first 8 bytes of a chunk's XXH3-128 read as a big-endian signed
 *       int64. Finds the contents that share chunks with a given one.
 *   file(id, path UNIQUE, class, size, mtime_ns, inode, dev, content_id,
 *        scanned_at)
 *       The store as last scanned. path is relative to the store root
 *       ("patches/kb123/x.msu"); class is its first component.
 *
 * Migration 3: meta(key, value) WITHOUT ROWID, one row per fact about the
 * catalog itself. 'first_scan_at': set when a scan of the store first
 * completes (seconds since the epoch; a catalog that held files before
 * migration 3 counts as scanned, with the newest file row's time).
 * 'manifest_at:NAME': when server NAME's last-known manifest was recorded
 * (events.h).
 *
 * Threads: a ds_catalog_t is used by one thread at a time.
 */
#ifndef DISTSYNC_CATALOG_H
#define DISTSYNC_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/digest.h"
#include "distsync/error.h"

#define DS_CATALOG_CHUNK_REC (DS_XXH128_LEN + 4)

typedef struct ds_catalog ds_catalog_t;
typedef struct ds_catalog_cursor ds_catalog_cursor_t;

/* A file row joined with its content. */
typedef struct ds_file_row {
    int64_t id;
    const char *path;  /* relative to the store root */
    const char *klass; /* its class (first path component) */
    uint64_t size;
    int64_t mtime_ns; /* nanoseconds since the epoch */
    uint64_t inode, dev;
    int64_t content_id; /* 0: none */
    int64_t scanned_at; /* seconds since the epoch */
    int has_sha;        /* sha256 and nchunks are valid */
    uint8_t sha256[DS_SHA256_LEN];
    uint32_t nchunks;
} ds_file_row_t;

/* A content version. chunks is owned (free with ds_content_clear). */
typedef struct ds_content {
    int64_t id;
    uint8_t sha256[DS_SHA256_LEN];
    uint64_t size;
    uint32_t nchunks;
    uint8_t *chunks; /* nchunks * DS_CATALOG_CHUNK_REC bytes */
} ds_content_t;

/* Schema version this build writes and understands. */
DS_MUST_CHECK int ds_catalog_schema_latest(void);

/* The catalog's file name inside a state directory. */
#define DS_CATALOG_FILE "catalog.db"

/* Writes <state>/catalog.db into buf. Returns 0, or -ENAMETOOLONG when it
 * does not fit len bytes. */
DS_MUST_CHECK int ds_catalog_path(const char *state, char *buf, size_t len);

/*
 * Opens (creating if needed) the catalog at path and brings its schema up to
 * date. The parent directory must exist. On success returns 0 and stores a
 * new handle in *out (free with ds_catalog_free). On failure returns
 * DS_ESCHEMA (database newer than this binary), DS_ECATALOG, DS_ECORRUPT or
 * -errno, leaves *out NULL and writes a message naming the file into err.
 */
DS_MUST_CHECK int ds_catalog_open(const char *path, ds_catalog_t **out, char *err, size_t errlen);

/* The path the catalog was opened at (valid while cat is). */
const char *ds_catalog_name(const ds_catalog_t *cat);

/* Closes the database. NULL is a no-op. Rolls back an open transaction. */
void ds_catalog_free(ds_catalog_t *cat);

/* Current schema version of the open database (PRAGMA user_version). */
DS_MUST_CHECK int ds_catalog_schema_version(ds_catalog_t *cat);

/* Transactions (not nested). begin takes the write lock at once
 * (BEGIN IMMEDIATE). A commit that fails rolls back: the transaction is
 * over either way. Return 0 or DS_ECATALOG (message logged). */
DS_MUST_CHECK int ds_catalog_begin(ds_catalog_t *cat);
DS_MUST_CHECK int ds_catalog_commit(ds_catalog_t *cat);
/* Runs on failure paths, where the first error is what the caller reports:
 * a failed rollback is logged here, so callers may ignore the result. */
int ds_catalog_rollback(ds_catalog_t *cat);
/* 1 while a transaction is open. */
DS_MUST_CHECK int ds_catalog_in_txn(ds_catalog_t *cat);

/*
 * Records a content version, deduplicated by sha256: returns the existing
 * row's id when the hash is known (the chunk list is then not compared), or
 * inserts the row and its chunk_index entries. chunks holds nchunks records
 * of DS_CATALOG_CHUNK_REC bytes. *created (may be NULL) tells which.
 * Returns 0 or a negative error.
 */
DS_MUST_CHECK int ds_catalog_content_put(ds_catalog_t *cat, const uint8_t sha256[DS_SHA256_LEN],
                                         uint64_t size, const uint8_t *chunks, uint32_t nchunks,
                                         int64_t *id, int *created);

/* Loads content row id into *out (caller frees out->chunks with
 * ds_content_clear). Returns 0, DS_ENOTFOUND or a negative error. */
DS_MUST_CHECK int ds_catalog_content_get(ds_catalog_t *cat, int64_t id, ds_content_t *out);

/* Looks a content up by sha256 (chunks not loaded). Returns 0 or DS_ENOTFOUND. */
DS_MUST_CHECK int ds_catalog_content_find(ds_catalog_t *cat, const uint8_t sha256[DS_SHA256_LEN],
                                          int64_t *id);

/* Frees out->chunks and zeroes *c. */
void ds_content_clear(ds_content_t *c);

/* Inserts or replaces (by path) a file row. row->id, has_sha, sha256 and
 * nchunks are ignored. Returns 0 or a negative error. */
DS_MUST_CHECK int ds_catalog_file_put(ds_catalog_t *cat, const ds_file_row_t *row);

/* Deletes the file row at path (its content stays). Returns 0, or
 * DS_ENOTFOUND when there was none. */
DS_MUST_CHECK int ds_catalog_file_delete(ds_catalog_t *cat, const char *path);

/*
 * Looks up the file at path. On success fills *row; its strings point into
 * buf (bufsize bytes), valid as long as buf. Returns 0, DS_ENOTFOUND,
 * DS_ERANGE (buf too small) or a negative error.
 */
DS_MUST_CHECK int ds_catalog_file_get(ds_catalog_t *cat, const char *path, ds_file_row_t *row,
                                      char *buf, size_t bufsize);

/*
 * Opens a read cursor over the file rows whose path starts with prefix
 * ("" for all), in byte order of path (SQLite BINARY collation: memcmp).
 * The cursor reads a snapshot taken at open, on a second connection:
 * writes made through cat while it is open are not seen by it. One cursor
 * per catalog at a time. Returns 0 or a negative error.
 */
DS_MUST_CHECK int ds_catalog_cursor_open(ds_catalog_t *cat, const char *prefix,
                                         ds_catalog_cursor_t **out);

/* Fetches the next row into *row; its strings stay valid until the next
 * call or ds_catalog_cursor_free. Returns 1 (row), 0 (end) or < 0. */
DS_MUST_CHECK int ds_catalog_cursor_next(ds_catalog_cursor_t *cur, ds_file_row_t *row);

/* Ends the snapshot. NULL is a no-op. */
void ds_catalog_cursor_free(ds_catalog_cursor_t *cur);

/*
 * Scan generations (snapshot pinning, src/store/catalog_gen.c). Each scan
 * opens a generation and closes it when it completes; the catalog keeps,
 * per path, the versions it recorded and the generations in which each
 * was current, so the desired set as of a generation can be read back.
 */

/* Opens a generation started at now; *gen receives its id. Must not be
 * called inside a transaction. Returns 0 or a negative error. */
DS_MUST_CHECK int ds_catalog_gen_begin(ds_catalog_t *cat, int64_t now, int64_t *gen);

/* Marks generation gen completed at now, then forgets the generations (and
 * the versions current only in them) that ended more than
 * DS_CATALOG_GEN_KEEP_S before now, keeping the newest of those so that an
 * instant that old still resolves, and those a recorded pin
 * (ds_catalog_pin_put) needs; pins of anchors that old go too. Must not
 * be called inside a transaction.
 * Returns 0 or a negative error. */
DS_MUST_CHECK int ds_catalog_gen_end(ds_catalog_t *cat, int64_t gen, int64_t now);

/* How long completed generations are kept: the longest delay of a rule
 * (31 days) plus a month of window and catch-up. */
#define DS_CATALOG_GEN_KEEP_S (62 * 86400LL)

/* The latest completed generation that started at or before at (the store
 * as of at): returns 1 with *gen and *started_at (may be NULL), 0 when
 * there is none, or a negative error. */
DS_MUST_CHECK int ds_catalog_gen_at(ds_catalog_t *cat, int64_t at, int64_t *gen,
                                    int64_t *started_at);

/* A kept scan generation, as listed by distsync scans. */
typedef struct ds_catalog_gen_info {
    int64_t id;
    int64_t started_at;  /* the scan's start (an anchor scan's: its anchor) */
    int64_t done_at;     /* 0: it did not complete (interrupted, or running) */
    char pinned_by[512]; /* the fires that pinned it, "patch@2026-03-14T02:00Z, ..." ("" none) */
} ds_catalog_gen_info_t;

/* Calls cb for every kept generation, oldest first, until it returns
 * non-zero. Returns 0 or a negative error. */
DS_MUST_CHECK int ds_catalog_gen_each(ds_catalog_t *cat,
                                      int (*cb)(void *ctx, const ds_catalog_gen_info_t *g),
                                      void *ctx);
/* Generation gen: 1 with *g, 0 when it is not kept, or a negative error. */
DS_MUST_CHECK int ds_catalog_gen_get(ds_catalog_t *cat, int64_t gen, ds_catalog_gen_info_t *g);
/* The oldest and newest completed generation kept: 1 with *lo and *hi, 0
 * when none is, or a negative error. */
DS_MUST_CHECK int ds_catalog_gen_range(ds_catalog_t *cat, int64_t *lo, int64_t *hi);

/* The kept generations as JSON into j (distsync scans --json, GET
 * /v1/scans): {"keep_days": 62, "scans": [{"scan": "scan:42",
 * "generation": 42, "started_at", "completed_at" (null: it did not
 * complete), "pinned_by": ["patch@2026-03-14T02:00Z"]}]}, oldest first.
 * Returns 0 or a negative error (the document is closed either way). */
struct ds_json;
DS_MUST_CHECK int ds_catalog_gen_json(struct ds_json *j, ds_catalog_t *cat);

/* Records that the fire of schedule at `fire` pins generation gen (taken
 * at its anchor). Returns 0 or a negative error. */
DS_MUST_CHECK int ds_catalog_pin_put(ds_catalog_t *cat, const char *schedule, int64_t fire,
                                     int64_t anchor, int64_t gen);

/* The generation the fire of schedule at `fire` pinned: 1 with *gen, 0
 * when none is recorded (or it was forgotten), or a negative error. */
DS_MUST_CHECK int ds_catalog_pin_get(ds_catalog_t *cat, const char *schedule, int64_t fire,
                                     int64_t *gen);

/* The SHA-256s (*n of them, 32 bytes each, in *shas: caller frees) of
 * every version current in a generation that a pending fire pinned (one
 * with no recorded outcome, or recorded 'interrupted'): the retain store
 * keeps them. Returns 0 or a negative error. */
DS_MUST_CHECK int ds_catalog_pinned_refs(ds_catalog_t *cat, uint8_t **shas, size_t *n);

/*
 * Opens a read cursor (as ds_catalog_cursor_open) over the file versions
 * current in generation gen, whose path starts with prefix. In each row,
 * id is the file row's id when the store's file, as last scanned, still
 * holds that version (else 0: its bytes are not in the store any more),
 * and scanned_at is the version's first generation; inode and dev are 0.
 * Returns 0, DS_EUSAGE (gen <= 0) or a negative error.
 */
DS_MUST_CHECK int ds_catalog_cursor_open_gen(ds_catalog_t *cat, const char *prefix, int64_t gen,
                                             ds_catalog_cursor_t **out);

/*
 * Among candidates[0, n) (content ids, for example those a server holds),
 * finds the one sharing the most bytes of chunks with content_id: for each
 * distinct chunk of content_id, its length counts for every candidate that
 * holds a chunk with the same h64. Ties go to the higher id (the newer
 * version). Cost: one index probe per distinct chunk, O(n log n) for the
 * candidates. On success returns 0 and sets *best_id (0 when no candidate
 * shares anything) and *shared_bytes. Returns DS_ENOTFOUND if content_id
 * does not exist, or a negative error.
 */
DS_MUST_CHECK int ds_catalog_best_basis(ds_catalog_t *cat, int64_t content_id,
                                        const int64_t *candidates, size_t n, int64_t *best_id,
                                        uint64_t *shared_bytes);

/*
 * Whether a scan of the store has completed into this catalog. A catalog
 * without one (new, or re-created after catalog.db was lost or truncated)
 * says nothing about the store, so it must not drive prune. Returns 1 (and
 * *at, when not NULL: the time of the first completed scan), 0 (never), or
 * a negative error.
 */
DS_MUST_CHECK int ds_catalog_scanned(ds_catalog_t *cat, int64_t *at);

/* Records that a scan completed at now, unless one already had. Must not
 * be called inside a transaction. Returns 0 or a negative error. */
DS_MUST_CHECK int ds_catalog_mark_scanned(ds_catalog_t *cat, int64_t now);

/* 1 when ds_catalog_open() created this catalog's schema from nothing (the
 * file was missing or empty), else 0. */
DS_MUST_CHECK int ds_catalog_created(const ds_catalog_t *cat);

/* Number of file rows, and of content rows. Returns 0 or a negative error. */
DS_MUST_CHECK int ds_catalog_counts(ds_catalog_t *cat, uint64_t *files, uint64_t *contents);

/*
 * Copies the catalog at src into a new database file dst (which must not
 * exist) with SQLite's online backup API, in one step: the copy is one
 * read transaction's snapshot, consistent while another process writes
 * (WAL readers do not block the writer, nor it them). src is opened read
 * only: no migration, nothing written there. Returns 0, or DS_ECATALOG /
 * DS_ECORRUPT / -errno with err naming the file and SQLite's reason.
 */
DS_MUST_CHECK int ds_catalog_backup(const char *src, const char *dst, char *err, size_t errlen);

/* PRAGMA integrity_check on cat: 0 when "ok", DS_ECORRUPT with SQLite's
 * first complaint in err otherwise, or a catalog error. */
DS_MUST_CHECK int ds_catalog_integrity(ds_catalog_t *cat, char *err, size_t errlen);

#endif

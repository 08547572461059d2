/*
 * Scan: walks the content store's class folders and brings the catalog's
 * file rows up to date, incrementally and in parallel.
 *
 * - A file whose size, mtime (ns), inode and device match its catalog row
 *   is not read again. Any other regular file is read by a worker thread,
 *   cut into content-defined chunks (XXH3-128 each) and hashed whole
 *   (SHA-256); its content row is deduplicated by SHA-256, so a renamed or
 *   touched file reuses its content row.
 * - A file that left the store loses its file row (its content row stays).
 * - The calling thread walks and is the only catalog writer; it commits one
 *   transaction per batch (DS_SCAN_BATCH_FILES rows or DS_SCAN_BATCH_NS),
 *   so an interrupted scan leaves whole batches and the next scan redoes
 *   the rest.
 * - Files are never mapped: workers read DS_SCAN_BLOCK bytes at a time.
 *   Memory is bounded by threads * 2 * DS_SCAN_BLOCK (a file of 64 MiB or
 *   more may get a helper thread hashing SHA-256 from a second buffer while
 *   its worker chunks the first) plus, per file in flight
 *   (at most 4 * threads + 4), its chunk list (20 bytes per chunk: ~1.3 MB
 *   for a 4 GiB file at the default 64 KiB average), plus one directory's
 *   entry names at each level of the walk (the walk streams directory by
 *   directory; it never holds the whole tree).
 *
 * A file that cannot be read (permission denied, I/O error; also an
 * unchanged file the scanning user may no longer read) is a per-file error:
 * reported through opts->error, counted in stats->unreadable, and recorded
 * as a row with no content (content_id 0: "unreadable in the store"). It
 * ships nowhere until a scan reads it, and servers keep what they have.
 * A directory (or class folder) that cannot be read for the same reasons
 * is an error too, counted once in stats->unreadable; its rows are kept.
 *
 * Other per-file problems are warnings (the scan goes on):
 * - vanished during the scan: its row is removed;
 * - changed while read (size or mtime differ between the fstat before and
 *   after reading), or a directory that cannot be opened for another
 *   reason: the previous rows are kept as they were, the next scan retries;
 * - symbolic links are never followed: one whose target (resolved
 *   lexically) leaves the store is warned about; one that stays inside is
 *   skipped with a debug log entry only, since its target is scanned anyway;
 * - FIFOs, sockets and devices are skipped with a warning;
 * - a name that is not strict UTF-8, or whose path the receiver would refuse
 *   (ds_pathsafe_check: control characters, '\', over DS_PATHSAFE_MAX
 *   bytes) is left out of the catalog, a directory with everything under it,
 *   and counted in stats->skipped: one such name never fails a sync.
 * A class folder that does not exist is a warning and its rows are kept.
 * Rows of classes not in opts->classes are not touched.
 */
#ifndef DISTSYNC_SCAN_H
#define DISTSYNC_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/catalog.h"
#include "distsync/chunker.h"
#include "distsync/escape.h" /* ds_utf8_valid, ds_escape_name (moved to base/) */
#include "distsync/error.h"

#define DS_SCAN_BLOCK       (1u << 20)
#define DS_SCAN_BATCH_FILES 2048
#define DS_SCAN_BATCH_NS    1000000000LL

typedef struct ds_scan_stats {
    uint64_t files;      /* regular files found (valid names) */
    uint64_t added;      /* not in the catalog before */
    uint64_t changed;    /* re-read, and the content differs */
    uint64_t touched;    /* re-read (metadata changed), same content */
    uint64_t unchanged;  /* not read: size, mtime, inode unchanged */
    uint64_t removed;    /* rows removed: the file left the store */
    uint64_t warnings;   /* warnings reported */
    uint64_t skipped;    /* names left out of the catalog: not UTF-8, or a path
                            the receiver refuses (ds_pathsafe_check) */
    uint64_t unreadable; /* files that could not be read: scan errors */
    uint64_t not_copied; /* empty folders and symbolic links inside the store:
                            never in the catalog, never copied (see
                            ds_scan_opts_t.not_copied) */
    uint64_t hashed;     /* files read and hashed (added+changed+touched) */
    uint64_t bytes_hashed;
    uint64_t bytes_queued; /* bytes of the files queued for hashing so far */
    uint64_t contents_new; /* content rows created */
    int64_t elapsed_ns;
} ds_scan_stats_t;

/* Called on the scanning thread, at most every ~100 ms and once at the end
 * (done = 1). stats is valid only during the call. */
typedef void (*ds_scan_progress_fn)(void *ctx, const ds_scan_stats_t *stats, int done);

/* Called on the scanning thread for each per-file warning or error. path is
 * relative to the store root, raw (it may hold any byte: escape it before
 * printing, see ds_escape_name); err is the cause (-errno or DS_E*), what a
 * short description. Both valid only during the call. */
typedef void (*ds_scan_warn_fn)(void *ctx, const char *path, int err, const char *what);

typedef struct ds_scan_opts {
    const char *store;          /* content-store root */
    const char *const *classes; /* top-level folders to scan */
    size_t nclasses;
    ds_chunker_params_t chunk;    /* all zero: the defaults */
    unsigned threads;             /* hashing threads; 0: online CPUs */
    ds_scan_progress_fn progress; /* may be NULL */
    ds_scan_warn_fn warn;         /* may be NULL */
    ds_scan_warn_fn error;        /* per-file errors (unreadable files); NULL:
                                     they go to warn */
    ds_scan_warn_fn not_copied;   /* each empty folder ("empty folder") and
                                     symbolic link inside the store ("symbolic
                                     link"): not copied by design, err 0; may
                                     be NULL (stats count them) */
    void *ctx;                    /* passed to progress and warn */
    int64_t now;                  /* the scan's time (seconds since the epoch);
                                     0: time(NULL). The daemon passes its clock */
} ds_scan_opts_t;

/*
 * Scans the store into cat. The catalog must have no open transaction.
 * Fills *stats (may be NULL). A completed scan marks the catalog as scanned
 * (ds_catalog_mark_scanned: prune may then trust it) and closes the scan
 * generation it opened (ds_catalog_gen_begin). Returns 0 when the
 * scan completed (even with per-file warnings), or a negative error for a
 * fatal problem (store root
 * unreadable: -errno; catalog failure; bad chunk params: DS_ERANGE) after
 * rolling back the current batch; committed batches stay.
 */
DS_MUST_CHECK int ds_scan_run(const ds_scan_opts_t *opts, ds_catalog_t *cat,
                              ds_scan_stats_t *stats);

#endif

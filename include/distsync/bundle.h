/*
 * Bundles: a sync carried on removable media to a server no network
 * reaches (`distsync export`, `distsync agent --import`).
 *
 * A bundle is a tar archive compressed with zstd (libarchive), whose entries
 * come in this order and no other:
 *
 *   distsync-bundle   the header (text, "key value" lines): format version,
 *                     server, console id, the SHA-256 of the basis manifest
 *                     (the server state it was made for; "none" for --full),
 *                     of the expected manifest, the item count, the data bytes
 *   manifest          the manifest the server holds after the import
 *                     (.distsync/manifest format; mtimes of kept files are
 *                     those the basis recorded)
 *   index             one line per item, tab-separated (see bundle_fmt.c):
 *                     put PATH SIZE MODE MTIME SHA256 HOW BASIS BASIS_SHA256
 *                         DATA_LEN DATA_SHA256   (HOW: lit, delta, copy)
 *                     del PATH
 *   data/NNNNNNNN     one per lit or delta item, in index order, named after
 *                     the item's index: the file's bytes, or the delta stream
 *                     (zpatch or librsync, as a live sync sends it)
 *
 * Every entry is a regular file; anything else (a symlink or hard link, a
 * name with '..' or a leading '/', an unknown or out-of-order name, a size
 * other than the index declares, a truncated archive, an expansion past the
 * caps below) refuses the whole bundle, naming it and the entry, before a
 * byte of the server changes.
 */
#ifndef DISTSYNC_BUNDLE_H
#define DISTSYNC_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/digest.h"
#include "distsync/error.h"

#define DS_BUNDLE_VERSION  1
#define DS_BUNDLE_HEADER   "distsync-bundle"
#define DS_BUNDLE_MANIFEST "manifest"
#define DS_BUNDLE_INDEX    "index"
/* Caps on what a reader holds in memory. */
#define DS_BUNDLE_HEADER_MAX   (64u << 10)
#define DS_BUNDLE_INDEX_MAX    (256u << 20)
#define DS_BUNDLE_MANIFEST_MAX (256u << 20)
#define DS_BUNDLE_ITEMS_MAX    2097152u
/* Decompression bomb caps: the tar stream may not grow past
 * DS_BUNDLE_RATIO_MAX times the compressed bytes read (once past
 * DS_BUNDLE_RATIO_FLOOR), nor past the data bytes the header declares plus
 * the archive's own overhead, nor past DS_BUNDLE_BYTES_MAX. */
#define DS_BUNDLE_RATIO_MAX   1000u
#define DS_BUNDLE_RATIO_FLOOR (64u << 20)
#define DS_BUNDLE_BYTES_MAX   (1ull << 40)

typedef enum ds_bundle_op { DS_BUNDLE_PUT = 1, DS_BUNDLE_DEL = 2 } ds_bundle_op_t;

typedef enum ds_bundle_how {
    DS_BUNDLE_NONE = 0,  /* del */
    DS_BUNDLE_LIT = 1,   /* data entry: the file's bytes */
    DS_BUNDLE_DELTA = 2, /* data entry: a delta stream against basis */
    DS_BUNDLE_COPY = 3,  /* no data: basis holds the same content */
} ds_bundle_how_t;

typedef struct ds_bundle_item {
    ds_bundle_op_t op;
    ds_bundle_how_t how;
    char *path;
    uint64_t size;
    uint32_t mode; /* 0777 bits */
    int64_t mtime_ns;
    uint8_t sha256[DS_SHA256_LEN];
    char *basis; /* delta, copy: target path; else NULL */
    uint8_t basis_sha256[DS_SHA256_LEN];
    uint64_t data_len; /* lit, delta: bytes of the data entry */
    uint8_t data_sha256[DS_SHA256_LEN];
} ds_bundle_item_t;

typedef struct ds_bundle_hdr {
    unsigned version;
    char server[256], console[256];
    int has_basis; /* 0: made with --full (or for a server never synced) */
    uint8_t basis[DS_SHA256_LEN];
    uint8_t result[DS_SHA256_LEN];
    int64_t created; /* unix seconds */
    uint64_t items, data_bytes;
} ds_bundle_hdr_t;

/* --- format (src/target/bundle_fmt.c, pure) --- */

/* Appends the header's text to a malloc'd string (*out, caller frees).
 * Returns 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds_bundle_hdr_encode(const ds_bundle_hdr_t *h, char **out, size_t *len);

/* Parses a header. Returns 0, DS_EVERSION (a newer format) or DS_ECORRUPT
 * with the reason in err. */
DS_MUST_CHECK int ds_bundle_hdr_parse(const char *buf, size_t len, ds_bundle_hdr_t *h, char *err,
                                      size_t errlen);

/* Appends the item's index line to *buf (grown with realloc; *len, *cap).
 * Returns 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds_bundle_item_encode(const ds_bundle_item_t *it, char **buf, size_t *len,
                                        size_t *cap);

/* Parses an index: *items (caller frees with ds_bundle_items_free) holds
 * *n items. Paths pass ds_pathsafe_check, appear once, and data entries
 * are declared only for lit and delta. Returns 0, DS_ENOMEM or
 * DS_ECORRUPT / DS_EPATH with the line and reason in err. */
DS_MUST_CHECK int ds_bundle_index_parse(const char *buf, size_t len, ds_bundle_item_t **items,
                                        size_t *n, char *err, size_t errlen);

void ds_bundle_items_free(ds_bundle_item_t *items, size_t n);

/* The name of item i's data entry ("data/00000012"); out holds 32 bytes. */
void ds_bundle_data_name(size_t i, char *out, size_t outlen);

/* --- reading (src/target/bundle_read.c, libarchive) --- */

typedef struct ds_bundle_reader ds_bundle_reader_t;

/*
 * Opens the bundle at path (or, with path NULL, the len bytes at mem,
 * borrowed until ds_bundle_reader_free; name is used in messages) and
 * checks it whole: every entry's name, type, order and size, each data
 * entry's SHA-256 against the index, the decompression caps, the end of the
 * archive, the expected manifest. Nothing is written anywhere. Returns 0
 * with *out (the header, index and manifest bytes kept), or DS_ECORRUPT,
 * DS_EPATH, DS_ESYMLINK, DS_ETOOBIG, DS_EVERSION, -errno, DS_ENOMEM with a
 * message naming the bundle and the entry in err.
 */
DS_MUST_CHECK int ds_bundle_reader_open(const char *path, const void *mem, size_t len,
                                        const char *name, ds_bundle_reader_t **out, char *err,
                                        size_t errlen);

const ds_bundle_hdr_t *ds_bundle_reader_hdr(const ds_bundle_reader_t *r);
/* The index (valid as long as r). */
const ds_bundle_item_t *ds_bundle_reader_items(const ds_bundle_reader_t *r, size_t *n);
/* The expected manifest's bytes (valid as long as r). */
const uint8_t *ds_bundle_reader_manifest(const ds_bundle_reader_t *r, size_t *len);

/*
 * Second pass, for the import: rewinds to the first data entry. Then
 * ds_bundle_reader_data(r, i) positions on item i's data (items in
 * increasing order; skipped ones are read past) and ds_bundle_reader_read
 * gives its bytes (returns the count, 0 at its end, < 0 on error with the
 * message in err). The bytes are checked again against the index: a bundle
 * that changed since the first pass fails. Returns 0 or < 0 with err set.
 */
DS_MUST_CHECK int ds_bundle_reader_rewind(ds_bundle_reader_t *r, char *err, size_t errlen);
DS_MUST_CHECK int ds_bundle_reader_data(ds_bundle_reader_t *r, size_t i, char *err, size_t errlen);
long ds_bundle_reader_read(ds_bundle_reader_t *r, void *buf, size_t len, char *err, size_t errlen);

void ds_bundle_reader_free(ds_bundle_reader_t *r);

/* --- import (src/target/bundle_import.c: the receiver, in process) --- */

typedef struct ds_bundle_import_opts {
    const char *root;   /* the server's directory */
    const char *bundle; /* the bundle file */
    const char *host;   /* for the lease; NULL: "offline" */
    int no_fsync;       /* tests only */
    unsigned pause_ms;  /* tests only: a pause after each file published */
} ds_bundle_import_opts_t;

typedef struct ds_bundle_import_stats {
    uint64_t written; /* files built and published */
    uint64_t already; /* files that already held their new content */
    uint64_t adopted; /* of those, recorded in the manifest in place */
    uint64_t deleted; /* files deleted */
    uint64_t data;    /* data bytes read from the bundle */
    int noop;         /* nothing was to do: the bundle was applied before */
} ds_bundle_import_stats_t;

/*
 * Applies a bundle to root through the receiver (src/target/apply*.c), as
 * one session: takes the lease, checks the whole bundle, then every file
 * the bundle changes or uses as a basis, by SHA-256, against the state the
 * bundle was made for (a file that already holds its new content counts as
 * done, so an interrupted import resumes), refusing with nothing changed
 * on the first mismatch; then builds, verifies and publishes each file,
 * deletes, writes the manifest and checks it against the bundle's.
 * Returns 0, or < 0 with a message naming the bundle, the file and the
 * reason in err.
 */
DS_MUST_CHECK int ds_bundle_import(const ds_bundle_import_opts_t *o, ds_bundle_import_stats_t *st,
                                   char *err, size_t errlen);

/* --- export (src/sync/bundle_export.c: the planner and the delta cache) --- */

struct ds_sync;

typedef struct ds_bundle_export_opts {
    const char *server; /* a configured server */
    const char *out;    /* the bundle to write (tmp + rename) */
    /* the server's state: a manifest file (.distsync/manifest format), else
     * the catalog's last-known manifest for it; full: no state at all */
    const char *since_manifest;
    int full;
    int level;              /* zstd level of the archive; 0: 3 */
    unsigned test_pause_ms; /* tests only: a pause before each data entry */
} ds_bundle_export_opts_t;

typedef struct ds_bundle_export_stats {
    uint64_t lit, delta, copy, del, keep; /* items by kind, and files kept */
    uint64_t new_bytes;                   /* sizes of the files put */
    uint64_t data_bytes;                  /* data entries before compression */
    uint64_t bundle_bytes;                /* the bundle file */
    int held;                             /* a prune guard held deletions back */
} ds_bundle_export_stats_t;

/*
 * Writes the bundle that brings o->server from its known state to the
 * catalog's desired set: the plan a live sync would make (ds_plan_build, the
 * same basis choice and prune guards), each delta from the per-pair delta
 * cache in the newest receiver's format, sent whole when that is smaller,
 * as a live sync does. The file appears whole or not at all. Returns 0 or
 * < 0 with a message naming the server or file in err.
 */
DS_MUST_CHECK int ds_sync_export(struct ds_sync *s, const ds_bundle_export_opts_t *o,
                                 ds_bundle_export_stats_t *st, char *err, size_t errlen);

#endif

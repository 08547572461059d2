/*
 * Planner: the desired set (catalog rows of the server's classes) against
 * the target's state (its manifest, its listing and, for files whose state
 * is uncertain, their hashes) gives one item per path: create, update (with
 * a basis and a method), delete (prune only), keep, or extra.
 *
 * Pure: no I/O, no clock. The catalog-backed decisions (content ids, chunk
 * overlap, whether the console can read a version) come through an oracle
 * of callbacks, which tests replace with fakes.
 *
 * Two stages:
 *  1. ds_plan_need_hash(): the target paths whose content is uncertain:
 *     files on the target (in the server's classes) absent from the
 *     manifest, and manifest entries whose listed size or mtime differ.
 *  2. ds_plan_build() with those paths' hashes: the items.
 *
 * Target state of a path: absent (not listed as a regular file), clean
 * (manifest entry, listing agrees: the manifest's SHA-256 is trusted),
 * hashed (its HASH result is the truth, also for a path the listing calls
 * clean: `verify --repair` hashes those). A manifest entry whose hash
 * differs from its SHA-256 is drifted (changed behind our back).
 */
#ifndef DISTSYNC_PLAN_H
#define DISTSYNC_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/digest.h"
#include "distsync/manifest.h"
#include "distsync/error.h"

/* Estimated protocol bytes per file operation (headers, path, commit). */
#define DS_PLAN_FILE_OVERHEAD 160u
/* Below this size a file is always sent whole. */
#define DS_PLAN_DELTA_MIN 4096u
/* Chunk overlap under 1/DS_PLAN_NEAR_ZERO of the file is "near zero": the
 * basis is then the path's own previous version, or the file with the
 * closest name in the same folder, if any (a rebuilt binary shares almost
 * no 64 KiB chunk with its previous build, yet a zpatch against it is a
 * fraction of the file). There is no size limit and no overlap threshold:
 * the sender measures the delta and sends the file whole when that is
 * smaller. */
#define DS_PLAN_NEAR_ZERO 32u
/* New versions of files planned earlier in the same directory that may serve
 * as a basis (the receiver applies files in order). */
#define DS_PLAN_CHAIN_MAX 64u

typedef enum ds_plan_action {
    DS_PLAN_KEEP = 0,       /* target already holds the desired content */
    DS_PLAN_CREATE = 1,     /* absent on the target */
    DS_PLAN_UPDATE = 2,     /* target holds another content (or an unknown one) */
    DS_PLAN_DELETE = 3,     /* not desired, prune = yes, recorded in the manifest */
    DS_PLAN_EXTRA = 4,      /* not desired, left alone */
    DS_PLAN_UNREADABLE = 5, /* desired, but unreadable in the store (the
                               scan could not read it): nothing is sent and
                               whatever the target has there is kept */
} ds_plan_action_t;

typedef enum ds_plan_method {
    DS_PLAN_NONE = 0,  /* keep, delete, extra */
    DS_PLAN_WHOLE = 1, /* LITERAL (zstd when it pays) */
    DS_PLAN_DELTA = 2, /* librsync delta against basis */
    DS_PLAN_ADOPT = 3, /* the target's file already has the content: record it
                          (COPY of itself, no data on the wire) */
    DS_PLAN_RSYNC = 4, /* the target's file holds bytes the console cannot
                          read: fetch its signature (SIG), send a delta
                          against it, as rsync would */
    DS_PLAN_COPY = 5,  /* an earlier file of the plan (or one the target
                          keeps) has the same content: COPY it whole on the
                          target (basis), no second transfer */
} ds_plan_method_t;

/* A desired file (from the catalog). Strings borrowed for the build call. */
typedef struct ds_plan_want {
    const char *path;
    const char *klass;
    uint64_t size;
    int64_t mtime_ns;
    int64_t content_id; /* catalog content row */
    uint8_t sha256[DS_SHA256_LEN];
    int unreadable; /* in the store but unreadable: content_id and sha256
                       are not set; planned as DS_PLAN_UNREADABLE */
    int gone;       /* a pinned version whose bytes the console no longer
                       has: planned as DS_PLAN_UNREADABLE (gone set) unless
                       the target already holds it */
} ds_plan_want_t;

/* A listed target entry (regular files matter; others block a path). */
typedef struct ds_plan_have {
    const char *path;
    int is_file; /* regular file */
    uint64_t size;
    int64_t mtime_ns;
} ds_plan_have_t;

/* The hash of an uncertain target file. ok = 0: it could not be hashed
 * (vanished, unreadable): treated as absent. */
typedef struct ds_plan_hash {
    const char *path;
    int ok;
    uint64_t size;
    uint8_t sha256[DS_SHA256_LEN];
} ds_plan_hash_t;

typedef struct ds_plan_oracle {
    /* Catalog content id of a SHA-256, 0 when unknown. */
    int64_t (*content_id)(void *ctx, const uint8_t sha256[DS_SHA256_LEN]);
    /* ds_catalog_best_basis(): best of candidates for content_id. */
    int (*best_basis)(void *ctx, int64_t content_id, const int64_t *cand, size_t n, int64_t *best,
                      uint64_t *shared);
    /* 1 when the console can read that version (store file or retain). */
    int (*readable)(void *ctx, const uint8_t sha256[DS_SHA256_LEN]);
    void *ctx;
} ds_plan_oracle_t;

typedef struct ds_plan_input {
    const ds_plan_want_t *want; /* any order; paths unique */
    size_t nwant;
    const ds_manifest_t *manifest; /* may be NULL: empty */
    const ds_plan_have_t *have;    /* any order */
    size_t nhave;
    const ds_plan_hash_t *hashes; /* any order */
    size_t nhashes;
    const char *const *classes; /* the server's classes: only these top-level
                                   folders are compared */
    size_t nclasses;
    int prune;
    /* Prune guards (all zero is the safe side: nothing is deleted). */
    int scanned;         /* the catalog has a completed scan */
    uint64_t max_delete; /* a count of files, or a percentage when max_delete_pct */
    int max_delete_pct;
    int force; /* allow deletions over max_delete (never the unscanned guard) */
    /* Classes whose folder is missing from the store (renamed, unmounted):
     * their files are never pruned, even with force. */
    const char *const *absent_classes;
    size_t nabsent;
    /* The target takes whole files only (SFTP mode): no delta, no rsync
     * fallback; a matching file is still adopted. */
    int whole_only;
    ds_plan_oracle_t oracle;
} ds_plan_input_t;

typedef struct ds_plan_item {
    ds_plan_action_t action;
    ds_plan_method_t method;
    char *path, *klass;
    uint64_t size;                 /* desired size (delete/extra: the target's) */
    int64_t mtime_ns;              /* desired mtime */
    int64_t content_id;            /* desired content (0 for delete/extra) */
    uint8_t sha256[DS_SHA256_LEN]; /* desired content */
    char *basis;                   /* delta/adopt: target path of the basis, else NULL */
    uint8_t basis_sha256[DS_SHA256_LEN];
    uint64_t shared;      /* chunk bytes shared with the basis */
    uint64_t est_bytes;   /* estimated bytes on the wire */
    int drifted;          /* the target file differs from its manifest entry */
    int unknown;          /* the target file is not in the manifest */
    int present;          /* the target has a regular file at path */
    uint64_t target_size; /* size of what the target holds at path (0: absent) */
    int held;             /* extra: a delete that a prune guard held back */
    int gone;             /* unreadable: a pinned version that is gone */
} ds_plan_item_t;

/* Why the plan holds its deletions back (see ds_plan_build). */
typedef enum ds_plan_guard {
    DS_PLAN_GUARD_NONE = 0,
    DS_PLAN_GUARD_UNSCANNED = 1,   /* the catalog has no completed scan */
    DS_PLAN_GUARD_EMPTY = 2,       /* nothing of the server's classes is desired */
    DS_PLAN_GUARD_MAX_DELETE = 3,  /* more deletions than max_delete allows */
    DS_PLAN_GUARD_EMPTY_CLASS = 4, /* a class to delete from has no folder in the store */
} ds_plan_guard_t;

typedef struct ds_plan_totals {
    uint64_t create, update, del, keep, extra, drifted;
    uint64_t held;       /* deletions held back by a guard (counted in extra) */
    uint64_t unreadable; /* DS_PLAN_UNREADABLE items */
    uint64_t bytes_new;  /* sizes of created + updated files */
    uint64_t est_bytes;  /* estimated bytes on the wire */
} ds_plan_totals_t;

typedef struct ds_plan {
    ds_plan_item_t *items; /* sorted: creates/updates (path order), then
                              deletes, keeps and unreadables (path order),
                              extras */
    size_t n;
    ds_plan_totals_t totals;
    /* Prune guard: when guard is set, every deletion of a file the target
     * holds became an extra with held = 1, and manifest-only deletions were
     * left out. would_delete counts the files prune wanted to delete, of
     * target_files (regular files the target holds in the server's classes);
     * max_delete and max_delete_pct are copied from the input. */
    ds_plan_guard_t guard;
    char guard_class[128]; /* DS_PLAN_GUARD_EMPTY_CLASS: that class */
    uint64_t would_delete, target_files;
    uint64_t max_delete;
    int max_delete_pct;
} ds_plan_t;

/*
 * Stage 1: allocates in *paths (caller frees the array with free(); the
 * strings point into in->have) the paths to HASH. in->hashes is ignored.
 * Returns 0 or DS_ENOMEM.
 */
DS_MUST_CHECK int ds_plan_need_hash(const ds_plan_input_t *in, const char ***paths, size_t *n);

/*
 * Stage 2: builds the plan into *out (free with ds_plan_free). A path that
 * stage 1 named but in->hashes lacks is treated as holding unknown content.
 *
 * Prune guards, checked in this order, hold every deletion back:
 *  - in->scanned is 0 (a lost or never-scanned catalog): no deletion at all;
 *  - in->nwant is 0 (nothing of the server's classes in the catalog: an
 *    empty store or an unmounted one): no deletion at all;
 *  - a file to delete belongs to a class in in->absent_classes (its folder
 *    is missing from the store: renamed, unmounted): no deletion at all,
 *    even with in->force;
 *  - unless in->force, more files to delete than in->max_delete (a count),
 *    or than in->max_delete_pct percent of the files the target holds in
 *    the server's classes. Held, not cut short: deleting "the first N" of
 *    a wrong set would be arbitrary damage.
 * Returns 0, DS_ENOMEM or an oracle's error.
 */
DS_MUST_CHECK int ds_plan_build(const ds_plan_input_t *in, ds_plan_t **out);

void ds_plan_free(ds_plan_t *p);

/*
 * Writes why p holds its deletions back into buf (len bytes), for example
 * "would delete 84 of 118 files (71%), over max_delete 10%; rerun with
 * --force to allow". Empty when p->guard is DS_PLAN_GUARD_NONE. Pure.
 */
void ds_plan_guard_msg(const ds_plan_t *p, char *buf, size_t len);

/* "create", "update", "delete", "keep", "extra", "unreadable"; "whole",
 * "delta", "adopt", "rsync", "". */
const char *ds_plan_action_name(ds_plan_action_t a);
const char *ds_plan_method_name(ds_plan_method_t m);

#endif

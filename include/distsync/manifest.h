/*
 * Target manifest: the record, kept on each server in
 * <root>/.distsync/manifest, of what distsync committed there (path, size,
 * SHA-256, mtime). Binary, versioned, with a SHA-256 trailer over the whole
 * file; written atomically (temp + fsync + rename + directory fsync). The
 * format is specified in src/PROTOCOL.md ("Manifest format").
 *
 * In memory a manifest is a hash table keyed by path; ds_manifest_sorted()
 * gives the byte-order listing the encoder writes.
 */
#ifndef DISTSYNC_MANIFEST_H
#define DISTSYNC_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/digest.h"
#include "distsync/error.h"
#include "distsync/fs.h"

#define DS_MANIFEST_NAME     "manifest"     /* inside <root>/.distsync */
#define DS_MANIFEST_TMP_NAME "manifest.tmp" /* its next copy, before the rename */
#define DS_MANIFEST_VERSION  1
#define DS_MANIFEST_MAX      (1ull << 32) /* largest manifest file accepted: 4 GiB */

typedef struct ds_manifest_entry {
    char *path; /* relative, '/'-separated, owned by the manifest */
    uint64_t size;
    int64_t mtime_ns; /* mtime on the target after publication */
    uint8_t sha256[DS_SHA256_LEN];
} ds_manifest_entry_t;

typedef struct ds_manifest ds_manifest_t;

/* Creates an empty manifest. Returns 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds_manifest_new(ds_manifest_t **out);
void ds_manifest_free(ds_manifest_t *m);

/* Number of entries. */
size_t ds_manifest_count(const ds_manifest_t *m);

/* Entry for path, or NULL. Valid until the next put/remove/free. */
const ds_manifest_entry_t *ds_manifest_get(const ds_manifest_t *m, const char *path);

/* Inserts or replaces path's entry (path is copied). Returns 0, DS_EPATH
 * (path fails ds_pathsafe_check) or DS_ENOMEM. */
DS_MUST_CHECK int ds_manifest_put(ds_manifest_t *m, const char *path, uint64_t size,
                                  int64_t mtime_ns, const uint8_t sha256[DS_SHA256_LEN]);

/* Removes path. Returns 0 or DS_ENOTFOUND. */
DS_MUST_CHECK int ds_manifest_remove(ds_manifest_t *m, const char *path);

/* Allocates (*out, caller frees the array only) the entries sorted by path in
 * byte order. Pointers are valid until the next put/remove/free.
 * Returns 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds_manifest_sorted(const ds_manifest_t *m, const ds_manifest_entry_t ***out,
                                     size_t *n);

/* Encodes m into a malloc'd buffer (*buf, caller frees). Returns 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds_manifest_encode(const ds_manifest_t *m, uint8_t **buf, size_t *len);

/*
 * Decodes a manifest. Returns 0 with *out set, DS_EVERSION (a newer format
 * version), or DS_ECORRUPT (bad magic, checksum, truncated, unsorted or
 * duplicate paths, unsafe path) with a one-line reason in err.
 */
DS_MUST_CHECK int ds_manifest_decode(const void *buf, size_t len, ds_manifest_t **out, char *err,
                                     size_t errlen);

/*
 * The same decoder fed in slices (src/proto/manifest_stream.c), for a manifest
 * that arrives in pieces: memory is the decoded manifest plus one entry,
 * never the encoded bytes. max_len and max_entries (0: none) cap the
 * encoded size and the entry count (DS_ETOOBIG, message in error).
 * new: 0 or DS_ENOMEM. feed: 0, or the error for the first bad byte
 * (DS_ETOOBIG past max_len, DS_ECORRUPT, DS_EVERSION, DS_ENOMEM); after an
 * error every call returns it again. finish: 0 with *out (caller frees)
 * once the trailer checked out, else DS_ECORRUPT (truncated) or the earlier
 * error. error: a one-line reason ("" when none), valid as long as d.
 */
typedef struct ds_manifest_decoder ds_manifest_decoder_t;
DS_MUST_CHECK int ds_manifest_decoder_new(uint64_t max_len, uint64_t max_entries,
                                          ds_manifest_decoder_t **out);
DS_MUST_CHECK int ds_manifest_decoder_feed(ds_manifest_decoder_t *d, const void *p, size_t n);
DS_MUST_CHECK int ds_manifest_decoder_finish(ds_manifest_decoder_t *d, ds_manifest_t **out);
const char *ds_manifest_decoder_error(const ds_manifest_decoder_t *d);
void ds_manifest_decoder_free(ds_manifest_decoder_t *d);

/*
 * Reads DS_MANIFEST_NAME from the state directory fd dsdir. A missing file
 * yields its complete tmp copy DS_MANIFEST_TMP_NAME (left by a delete +
 * rename replace, as on SMB, that died between the two) or else an empty
 * manifest. A FIFO, device, socket or symlink there is refused without
 * blocking (DS_ENOTREG / DS_ESYMLINK). Returns 0, 1 (taken from the tmp
 * copy: the caller should store it again) or the decode/-errno error
 * (reason, naming the file, in err).
 */
DS_MUST_CHECK int ds_manifest_load(int dsdir, ds_manifest_t **out, char *err, size_t errlen);

/* Writes m as DS_MANIFEST_NAME in dsdir atomically. Returns 0 or -errno/DS_ENOMEM. */
DS_MUST_CHECK int ds_manifest_store(int dsdir, const ds_manifest_t *m);

/* The two above through a filesystem backend (fs.h); dsdir is fs's. */
DS_MUST_CHECK int ds_manifest_load_fs(const ds_fs_t *fs, int dsdir, ds_manifest_t **out, char *err,
                                      size_t errlen);
DS_MUST_CHECK int ds_manifest_store_fs(const ds_fs_t *fs, int dsdir, const ds_manifest_t *m);

#endif

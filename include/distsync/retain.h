/*
 * Retained versions: the console keeps every content version that some
 * server still references, because the content store drops old versions.
 * Versions are stored deduplicated by chunk (the catalog's content-defined
 * chunks, keyed by XXH3-128), each chunk zstd-compressed, so keeping v1
 * beside v2 costs about the changed chunks, not a second copy. Retained
 * versions are the basis for local delta computation.
 *
 * Storage: one SQLite database <dir>/retain.db (WAL, 16 KiB pages,
 * incremental auto-vacuum). Tables: chunk (hash -> raw length, codec,
 * compressed bytes), version (sha256 -> size, packed chunk list) and ref
 * (chunk, version) for garbage collection. A put is one transaction: after a
 * crash a version is either absent or complete with all its chunks.
 *
 * Chunk lists use the catalog's packed form: per chunk DS_RETAIN_REC_LEN
 * bytes, the 16-byte canonical XXH3-128 followed by the chunk length as a
 * little-endian u32. Chunks are in file order; their lengths sum to the size.
 *
 * Threads: a ds_retain_t and its readers belong to one thread at a time.
 * Open one ds_retain_t per worker thread (WAL lets readers run beside one
 * writer). A handle may be kept open between jobs and handed to another
 * thread while ds_retain_idle() says so: it then holds no read snapshot, so
 * its next read sees every version committed meanwhile (by any connection)
 * and it never holds back a WAL checkpoint.
 */
#ifndef DISTSYNC_RETAIN_H
#define DISTSYNC_RETAIN_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/digest.h"
#include "distsync/error.h"

#define DS_RETAIN_REC_LEN 20 /* XXH3-128 canonical (16) + u32 LE length */

typedef struct ds_retain ds_retain_t;
typedef struct ds_retain_reader ds_retain_reader_t;

/* ds_retain_put flags. */
enum {
    /* Read every byte of the version from fd (not only the new chunks) and
     * check its SHA-256 before committing. Without it, chunks already stored
     * are trusted by their XXH3-128 identity. */
    DS_RETAIN_PUT_VERIFY = 1,
};

/* ds_retain_open_version flags. */
enum {
    /* Hash the bytes as they are read; the read that reaches the end of the
     * version returns DS_EHASH if the whole version, read in order from
     * offset 0, does not match its SHA-256. Random-order reads are still
     * checked per chunk (XXH3-128) but not against the SHA-256. */
    DS_RETAIN_READ_VERIFY = 1,
};

typedef struct ds_retain_usage {
    uint64_t versions;      /* retained versions */
    uint64_t chunks;        /* distinct stored chunks */
    uint64_t stored_bytes;  /* compressed chunk bytes (payload only) */
    uint64_t unique_bytes;  /* uncompressed bytes of the distinct chunks */
    uint64_t logical_bytes; /* sum of the retained versions' sizes */
    uint64_t file_bytes;    /* size of retain.db plus its WAL on disk */
} ds_retain_usage_t;

/* Opens (creating if needed) the store in directory dir, which is created
 * too. On success *out owns the store; release it with ds_retain_close().
 * Returns 0, -errno, DS_ECATALOG (SQLite failure, logged) or DS_ENOMEM. */
DS_MUST_CHECK int ds_retain_open(const char *dir, ds_retain_t **out);

/* Closes the store. All its readers must have been freed. NULL is a no-op. */
void ds_retain_close(ds_retain_t *r);

/* 1 when r has no reader, statement, batch or transaction open: no read
 * snapshot is held, and the next read starts a fresh one. 0 otherwise. */
int ds_retain_idle(ds_retain_t *r);

/*
 * Retains the version whose content is readable from fd (pread, offsets
 * from 0) with the given SHA-256, size and packed chunk list (nchunks
 * records). Chunks not yet stored are read from fd, checked against their
 * XXH3-128 and compressed; with DS_RETAIN_PUT_VERIFY every byte is read and
 * the SHA-256 checked. Idempotent: putting a retained version again is a
 * cheap no-op. Returns 0; DS_EUSAGE if the chunk lengths do not sum to size;
 * DS_ECHANGED if fd's bytes do not match a chunk hash or the SHA-256 (the
 * file changed since it was chunked); -errno; DS_ECATALOG; DS_ENOMEM.
 * On failure nothing of this version is stored.
 */
DS_MUST_CHECK int ds_retain_put(ds_retain_t *r, int fd, const uint8_t sha256[DS_SHA256_LEN],
                                uint64_t size, const uint8_t *chunks, size_t nchunks, int flags);

/*
 * A batch: the ds_retain_put calls between ds_retain_batch_begin and
 * ds_retain_batch_end share one transaction (each put still all or nothing,
 * as a savepoint), so retaining a run's hundreds of small versions costs one
 * commit, not one each. Only puts and reads on r may run inside a batch;
 * other writers on the store wait for its end (keep batches short).
 * begin returns 0, DS_EUSAGE if a batch is open, or DS_ECATALOG; end returns
 * 0 or DS_ECATALOG, and then none of the batch's versions is stored.
 */
DS_MUST_CHECK int ds_retain_batch_begin(ds_retain_t *r);
DS_MUST_CHECK int ds_retain_batch_end(ds_retain_t *r);

/* Returns 1 if the version is retained, 0 if not, or a negative error. */
DS_MUST_CHECK int ds_retain_has(ds_retain_t *r, const uint8_t sha256[DS_SHA256_LEN]);

/* Opens a random-access reader on a retained version. *out is valid until
 * ds_retain_reader_free(), which must precede ds_retain_close(r).
 * Returns 0, DS_ENOTFOUND, DS_ECORRUPT (bad version record), DS_ECATALOG or
 * DS_ENOMEM. */
DS_MUST_CHECK int ds_retain_open_version(ds_retain_t *r, const uint8_t sha256[DS_SHA256_LEN],
                                         int flags, ds_retain_reader_t **out);

/* Size in bytes of the reader's version. */
uint64_t ds_retain_reader_size(const ds_retain_reader_t *rd);

/* The version's packed chunk list (*n records of DS_RETAIN_REC_LEN bytes,
 * file order), valid until ds_retain_reader_free(rd). */
const uint8_t *ds_retain_reader_chunks(const ds_retain_reader_t *rd, size_t *n);

/*
 * Reads up to len bytes at offset into buf. Returns the number of bytes
 * read (0 at or past the end), or DS_ECORRUPT if a stored chunk is missing,
 * does not decompress or fails its XXH3-128 check, DS_EHASH (see
 * DS_RETAIN_READ_VERIFY), DS_ECATALOG or DS_ENOMEM. Never returns wrong bytes
 * silently. The last decompressed chunk is cached, so small sequential or
 * nearby reads (a librsync copy callback) are cheap.
 */
long ds_retain_read(ds_retain_reader_t *rd, uint64_t offset, void *buf, size_t len);

/* Frees a reader. NULL is a no-op. */
void ds_retain_reader_free(ds_retain_reader_t *rd);

/* Reads a whole version and checks every chunk and its SHA-256.
 * Returns 0, DS_ENOTFOUND, DS_ECORRUPT, DS_EHASH or another error. */
DS_MUST_CHECK int ds_retain_verify(ds_retain_t *r, const uint8_t sha256[DS_SHA256_LEN]);

/*
 * Garbage collection: deletes every version whose SHA-256 is not among
 * keep[0..nkeep) (nkeep SHA-256 digests, 32 bytes each; unknown ones are
 * ignored), then every chunk no remaining version references, in one
 * transaction. The free pages go back to the file system once they are a
 * quarter of the file or more; fewer are left for the next versions
 * retained to reuse. *freed_bytes (may be NULL) receives the compressed
 * bytes of the deleted chunks. Returns 0, DS_ECATALOG or DS_ENOMEM.
 */
DS_MUST_CHECK int ds_retain_gc(ds_retain_t *r, const uint8_t *keep, size_t nkeep,
                               uint64_t *freed_bytes);

/* ds_retain_gc_ex flags. */
enum {
    /* *freed_bytes gets what it would free and the transaction is rolled
     * back: nothing changes */
    DS_RETAIN_GC_DRY_RUN = 1,
    /* every free page goes back to the file system, however few */
    DS_RETAIN_GC_SHRINK = 2,
};

/* ds_retain_gc with DS_RETAIN_GC_* flags. */
DS_MUST_CHECK int ds_retain_gc_ex(ds_retain_t *r, const uint8_t *keep, size_t nkeep, int flags,
                                  uint64_t *freed_bytes);

/* Fills *u with the space the store uses. Returns 0 or DS_ECATALOG. */
DS_MUST_CHECK int ds_retain_usage(ds_retain_t *r, ds_retain_usage_t *u);

#endif

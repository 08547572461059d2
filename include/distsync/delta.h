/*
 * Deltas: librsync signature, delta and patch run as streaming jobs with
 * bounded buffers. The console knows what each server holds, so it signs
 * the basis and computes the delta locally (no signature crosses the WAN)
 * with small blocks. Each (basis SHA-256, target SHA-256) pair is computed
 * once and kept in an on-disk cache under a size cap (ds_delta_cache_*), so
 * fan-out to N servers costs one computation.
 *
 * Output is a standard librsync delta ("rs\x02\x36"): `rdiff patch` applies
 * it. It carries no whole-file checksum; the receiver verifies SHA-256.
 * librsync serves agents of protocol versions 1 and 2 and the signature
 * fallback; version 3 agents get a zpatch (distsync/zpatch.h) from the same
 * cache (ds_delta_cache_get with DS_DELTA_FMT_ZPATCH).
 */
#ifndef DISTSYNC_DELTA_H
#define DISTSYNC_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/digest.h"
#include "distsync/retain.h"
#include "distsync/error.h"

/* Block length for the issue-3 dataset (8-64 MiB files, two 4 KiB
 * overwrites, a 1 KiB insertion, a 512 B deletion; see bench/delta.c):
 * delta 6% over the new bytes at 128, 12% at 256, 23% at 512, 91% at 2048;
 * 64 saves only 2% more and is slower. Signature memory stays small
 * (~12 bytes per block plus the hash table). */
#define DS_DELTA_BLOCK_DEFAULT 128u
/* Strong sum bytes per block (BLAKE2 truncated): enough against random
 * collisions; the receiver's SHA-256 check catches the rest. */
#define DS_DELTA_STRONG_DEFAULT 8u
/* The block length grows past the requested one so that a basis never has
 * more blocks than this (bounds signature memory). */
#define DS_DELTA_MAX_BLOCKS (512u * 1024) /* 64 MiB at 128-byte blocks */

/* Reads up to len bytes at off into buf. Returns the bytes read (0 only at
 * the end) or a negative error code. */
typedef long (*ds_delta_read_fn)(void *ctx, uint64_t off, void *buf, size_t len);

/* A random-access byte source: a file, a retained version, a buffer... */
typedef struct ds_delta_src {
    ds_delta_read_fn read;
    void *ctx;     /* borrowed; must outlive every call using the source */
    uint64_t size; /* bytes the source holds */
    /* 1: the source checks its bytes against the version it stands for
     * (a retained version: every chunk's XXH3-128, see retain.h), so the
     * encoders skip their SHA-256 pass over it as a basis. */
    int verified;
    /* The source's chunks as the catalog cut them, or NULL: nchunks
     * records of an XXH3-128 (16 bytes) then the length (32 bits, little
     * endian), as catalog.h's and retain.h's. Borrowed. With a list on both
     * sources the zpatch encoder matches a large target's chunks to the
     * basis's by them instead of chunking both again (zpatch.h). */
    const uint8_t *chunks;
    size_t nchunks;
} ds_delta_src_t;

/* A source reading fd with pread (the fd is borrowed, not closed). */
void ds_delta_src_fd(ds_delta_src_t *s, int fd, uint64_t size);

/* A source reading a retained version (the reader is borrowed). */
void ds_delta_src_retain(ds_delta_src_t *s, ds_retain_reader_t *rd);

/* The SHA-256 of all of s's bytes. Returns 0, DS_ECHANGED (shorter than
 * its size), a read's error or DS_ENOMEM. */
DS_MUST_CHECK int ds_delta_src_sha256(const ds_delta_src_t *s, uint8_t out[DS_SHA256_LEN]);

typedef struct ds_delta_opts {
    uint32_t block_len;  /* 0: DS_DELTA_BLOCK_DEFAULT */
    uint32_t strong_len; /* 0: DS_DELTA_STRONG_DEFAULT; at most 32 */
    /* Optional (NULL: unchecked): the SHA-256 the basis and target must
     * have. Both are hashed while streamed, at no extra read. */
    const uint8_t *basis_sha256;
    const uint8_t *target_sha256;
    /* zstd level of zpatch deltas (0: DS_ZPATCH_LEVEL_DEFAULT). */
    int zpatch_level;
} ds_delta_opts_t;

/* Delta formats a cache entry may hold. */
#define DS_DELTA_FMT_RSYNC   0 /* librsync delta (protocol 1, 2; signature fallback) */
#define DS_DELTA_FMT_ZPATCH  1 /* zpatch (protocol 3; include/distsync/zpatch.h) */
#define DS_DELTA_FMT_ZPATCH2 2 /* zpatch stream version 2, BSDIFF records (protocol 5) */
/* zpatch stream version 1 whose ZSTD records reference no basis range:
 * only COPY records read the basis (a receiver whose basis reads cross
 * the WAN: the SMB worker, which applies COPY by server-side copy). */
#define DS_DELTA_FMT_ZPATCH_COPY 3
#define DS_DELTA_FMT_MAX         3
/*
 * Or'ed into a zpatch format for ds_delta_cache_get/_ready: a quick delta,
 * for a receiver whose link would otherwise wait on the console's CPU. The
 * pair's entry of that format is taken at any level; else its quick entry,
 * computed when missing: zpatch stream version 1 at DS_ZPATCH_LEVEL_FAST,
 * no BSDIFF record (on the libc6 update: 0.16 CPU-s against 1.26 at level
 * 12 with BSDIFF, for 950 KB against 283 KB). A quick entry serves quick
 * requests only. Ignored with DS_DELTA_FMT_RSYNC.
 */
#define DS_DELTA_QUICK 0x100

typedef struct ds_delta_stats {
    uint64_t basis_bytes;   /* basis bytes signed */
    uint64_t target_bytes;  /* target bytes scanned */
    uint64_t delta_bytes;   /* delta bytes written */
    uint64_t literal_bytes; /* target bytes sent as literals */
    uint64_t copy_bytes;    /* target bytes copied from the basis */
    uint32_t block_len;     /* block length actually used */
} ds_delta_stats_t;

/*
 * Computes the librsync delta turning basis into target and writes it to
 * out_fd (write(2) at its current position). opts and st may be NULL.
 * Memory: the basis signature (at most DS_DELTA_MAX_BLOCKS blocks) plus
 * 512 KiB of buffers.
 * Returns 0; DS_ECHANGED if a source's bytes do not match the SHA-256 in
 * opts or its size; a source's error; -errno from writing; DS_EDELTA
 * (librsync failure, logged); DS_ENOMEM.
 */
DS_MUST_CHECK int ds_delta_compute(const ds_delta_src_t *basis, const ds_delta_src_t *target,
                                   const ds_delta_opts_t *opts, int out_fd, ds_delta_stats_t *st);

/*
 * Applies the delta in delta_fd (delta_size bytes from offset 0, pread) to
 * basis and checks that the result has target_size bytes and the SHA-256
 * target_sha256, without storing it. Returns 0, DS_EHASH on a mismatch,
 * DS_ECORRUPT if the delta does not parse, or a source's error.
 */
DS_MUST_CHECK int ds_delta_check(const ds_delta_src_t *basis, int delta_fd, uint64_t delta_size,
                                 uint64_t target_size, const uint8_t target_sha256[DS_SHA256_LEN]);

/* --- Delta cache: <state>/deltas/<basis-hex>-<target-hex>.rsd --- */

typedef struct ds_delta_cache ds_delta_cache_t;

typedef struct ds_delta_cache_stats {
    uint64_t hits;          /* requests served from the cache */
    uint64_t computes;      /* deltas computed */
    uint64_t evictions;     /* entries evicted for the cap */
    uint64_t evicted_bytes; /* their size */
    uint64_t entries;       /* entries at the last scan */
    uint64_t bytes;         /* their total size */
    uint64_t dropped;       /* corrupt entries found (checksum), removed and recomputed */
    uint64_t relevelled;    /* zpatches of a lower zstd level than asked, recomputed */
    uint64_t quick;         /* quick deltas computed (DS_DELTA_QUICK; also in computes) */
} ds_delta_cache_stats_t;

/*
 * Opens the cache in dir (created if needed) holding at most cap_bytes of
 * deltas (least recently used entries are evicted beyond it; an entry's
 * mtime is its last use). Temporary files left by dead computations are
 * removed. opts (copied; may be NULL) sets the block and strong-sum
 * lengths. Returns 0, -errno or DS_ENOMEM.
 * The cache may be shared by threads; each pair computes once per process
 * unless two threads ask for it at the same instant (both then compute and
 * publish identical bytes).
 */
DS_MUST_CHECK int ds_delta_cache_open(const char *dir, uint64_t cap_bytes,
                                      const ds_delta_opts_t *opts, ds_delta_cache_t **out);

/* Sets the zstd level c computes zpatches at, and the lowest level of an
 * entry it serves (a lower one is recomputed): the cache's opts
 * zpatch_level from now on (0: DS_ZPATCH_LEVEL_DEFAULT). Not while a
 * computation runs on c. */
void ds_delta_cache_set_level(ds_delta_cache_t *c, int zpatch_level);

/* Closes the cache. NULL is a no-op. */
void ds_delta_cache_close(ds_delta_cache_t *c);

/*
 * Returns in *fd (owned by the caller, positioned at 0; do not write) and
 * *size the delta from basis_sha256 to target_sha256, computing it from
 * basis and target when it is not cached. A computed delta is checked
 * (sources hashed against their SHA-256; the delta applied to the basis
 * and the result hashed) before it is published atomically (tmp file,
 * rename), so a concurrent computation never leaves a torn or wrong entry;
 * an entry is not fsynced (derived data): one a crash left torn fails its
 * trailer or checksum at its next hit and is computed again. The fd stays
 * readable even if the entry is evicted
 * afterwards. Entries carry an XXH3-64 of the delta, checked on every hit:
 * a corrupt entry (or one without the checksum, from an older distsync) is
 * removed and recomputed, with a warning through ds_log (counted in
 * dropped; an old-format entry only at info level, uncounted).
 * Returns 0 or the error of ds_delta_compute/ds_delta_check.
 */
DS_MUST_CHECK int ds_delta_cache_get_or_compute(ds_delta_cache_t *c,
                                                const uint8_t basis_sha256[DS_SHA256_LEN],
                                                const uint8_t target_sha256[DS_SHA256_LEN],
                                                const ds_delta_src_t *basis,
                                                const ds_delta_src_t *target, int *fd,
                                                uint64_t *size);

/*
 * ds_delta_cache_get_or_compute for a delta format (DS_DELTA_FMT_*): each
 * format has its own entry per pair (<basis>-<target>.rsd / .zpd / .zpb). A zpatch
 * is compressed at the cache's opts zpatch_level and checked by applying it
 * like a librsync delta. A cached zpatch made at that level or a higher one
 * is used; one made at a lower level is recomputed and replaced (counted in
 * relevelled and computes).
 */
DS_MUST_CHECK int ds_delta_cache_get(ds_delta_cache_t *c, int fmt,
                                     const uint8_t basis_sha256[DS_SHA256_LEN],
                                     const uint8_t target_sha256[DS_SHA256_LEN],
                                     const ds_delta_src_t *basis, const ds_delta_src_t *target,
                                     int *fd, uint64_t *size);

/* ds_delta_cache_get without computing: the entry that would serve the
 * request, checked (and a corrupt one dropped) the same way, or
 * DS_ENOTFOUND, so a caller need not open the sources of a cached pair. */
DS_MUST_CHECK int ds_delta_cache_lookup(ds_delta_cache_t *c, int fmt,
                                        const uint8_t basis_sha256[DS_SHA256_LEN],
                                        const uint8_t target_sha256[DS_SHA256_LEN], int *fd,
                                        uint64_t *size);

/* 1 when the pair has an entry in fmt that ds_delta_cache_get would most
 * likely serve without computing: its trailer is there, its length matches
 * and (a zpatch) it was made at the cache's level or higher; 0 otherwise.
 * A few system calls, no hashing (get checks the checksum and recomputes
 * an entry that fails it), so a caller may ask on its event loop. */
DS_MUST_CHECK int ds_delta_cache_ready(ds_delta_cache_t *c, int fmt,
                                       const uint8_t basis_sha256[DS_SHA256_LEN],
                                       const uint8_t target_sha256[DS_SHA256_LEN]);

/* Removes the pair's entries, every format (for example after a receiver
 * rejected the result). Returns 0 (also when absent) or -errno. */
DS_MUST_CHECK int ds_delta_cache_drop(ds_delta_cache_t *c,
                                      const uint8_t basis_sha256[DS_SHA256_LEN],
                                      const uint8_t target_sha256[DS_SHA256_LEN]);

/* Copies the cache's counters. */
void ds_delta_cache_stats(ds_delta_cache_t *c, ds_delta_cache_stats_t *st);

#endif

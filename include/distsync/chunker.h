/*
 * Content-defined chunker (FastCDC-style gear hash with normalized
 * chunking). A pure value type: bytes in, cut points out. It performs no
 * I/O and no allocation, so it can be embedded anywhere and fuzzed.
 *
 * Streaming contract: feeding a stream in any split of buffers yields the
 * same cut points as feeding it in one buffer.
 *
 * Cut rule (part of the on-disk and wire identity of chunks: it must never
 * change once released). With bits = log2(avg_size), a chunk of length L
 * ends after its byte L-1 when
 *   - L == max_size (forced cut), or
 *   - L >= min_size and the top bits of the gear hash h, taken after that
 *     byte, are all zero: the top bits+2 bits while L <= avg_size (strict
 *     mask), the top bits-2 bits once L > avg_size (loose mask).
 * h = (h << 1) + gear[byte] over the chunk's bytes from offset
 * min_size - 64 on, starting from 0. Bytes before that offset are skipped
 * without hashing; since a gear hash forgets a byte after 64 shifts, h at
 * every candidate position is the hash of exactly the last 64 bytes, so a cut
 * depends only on local content. gear[i] is the i-th output (i = 0..255) of
 * splitmix64 seeded with 0x6469737473796e63 ("distsync" in ASCII).
 */
#ifndef DISTSYNC_CHUNKER_H
#define DISTSYNC_CHUNKER_H

#include <stddef.h>
#include <stdint.h>
#include "distsync/error.h"

#define DS_CHUNK_MIN_DEFAULT (16u * 1024)
#define DS_CHUNK_AVG_DEFAULT (64u * 1024)
#define DS_CHUNK_MAX_DEFAULT (256u * 1024)
/* Bounds accepted by ds_chunker_init(). */
#define DS_CHUNK_MIN_LIMIT 64u
#define DS_CHUNK_MAX_LIMIT (64u * 1024 * 1024)

typedef struct ds_chunker_params {
    uint32_t min_size; /* no chunk is shorter, except a file's last one */
    uint32_t avg_size; /* power of two; the target mean */
    uint32_t max_size; /* no chunk is longer */
} ds_chunker_params_t;

typedef struct ds_chunker {
    uint32_t min_size, avg_size, max_size;
    uint64_t mask_s; /* stricter mask, used before avg_size */
    uint64_t mask_l; /* looser mask, used after avg_size */
    uint64_t hash;   /* rolling gear hash (meaningful from min_size - 64 on) */
    uint64_t pos;    /* bytes of the current chunk consumed so far */
} ds_chunker_t;

/* Validates params (min >= DS_CHUNK_MIN_LIMIT, min <= avg <= max <=
 * DS_CHUNK_MAX_LIMIT, avg a power of two) and resets the state.
 * Returns 0 or DS_ERANGE. A NULL params selects the defaults. */
DS_MUST_CHECK int ds_chunker_init(ds_chunker_t *c, const ds_chunker_params_t *params);

/* Starts a new stream with the same parameters. */
void ds_chunker_reset(ds_chunker_t *c);

/*
 * Scans buf[0, len) for the end of the current chunk.
 * Returns the number of bytes consumed. If a chunk ends inside buf, the
 * return value is the offset just past its last byte, *cut is set to 1, and
 * the state is reset for the next chunk; call again with the rest of buf.
 * Otherwise all len bytes are consumed and *cut is 0. At end of stream the
 * bytes consumed since the last cut (c->pos) form the final chunk.
 */
size_t ds_chunker_next(ds_chunker_t *c, const void *buf, size_t len, int *cut);

/* Internal, for tests: the 256-entry gear table described above. */
const uint64_t *ds__chunker_gear(void);

#endif

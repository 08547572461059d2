/* zpatch encoder internals shared by zpatch.c and zpatch_chunks.c. */
#ifndef DS_ZPATCH_INT_H
#define DS_ZPATCH_INT_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/digest.h"
#include "distsync/zpatch.h"
#include "distsync/error.h"

/* A run of the target: copied from the basis at boff, or left for zstd. */
typedef struct ds_zp_span {
    uint64_t toff, len, boff;
    int copy;
} ds_zp_span_t;

/*
 * Cuts basis and target into chunks and returns in *spans (malloc'ed, *n
 * entries, covering the target in order) the target's runs: identical
 * chunks as copies (bytes compared), the rest as runs for zstd. The target
 * bytes are hashed into tsha (NULL: not hashed) as they are read; *copied
 * is the bytes in copies. Memory: the basis index (48 bytes per 4 KiB of
 * basis at most), the spans and 4 MiB of buffer.
 * Returns 0, a source's error, DS_ECHANGED (a source shorter than its
 * size) or DS_ENOMEM.
 */
DS_MUST_CHECK int ds__zp_spans(const ds_delta_src_t *basis, const ds_delta_src_t *target,
                               ds_sha256_t *tsha, ds_zp_span_t **spans, size_t *n,
                               uint64_t *copied);

#endif

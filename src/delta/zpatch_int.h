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

/* Reads exactly len bytes at off of src into buf (zpatch_chunks.c; used by
 * zpatch.c and zpatch_align.c too). Returns 0, the source's error, or
 * DS_ECHANGED when src ends first (shorter than announced). */
DS_MUST_CHECK int ds__zp_read_exact(const ds_delta_src_t *src, uint64_t off, uint8_t *buf,
                                    size_t len);

/*
 * Cuts basis and target into chunks and returns in *spans (malloc'ed, *n
 * entries, covering the target in order) the target's runs: identical
 * chunks as copies (bytes compared), the rest as runs for zstd. The basis
 * and target bytes are hashed into bsha and tsha (NULL: not hashed) as the
 * chunker reads them, so checking a source costs no pass of its own; *copied
 * is the bytes in copies. Memory: the basis index (48 bytes per 4 KiB of
 * basis at most), the spans and 4 MiB of buffer.
 * Returns 0, a source's error, DS_ECHANGED (a source shorter than its
 * size) or DS_ENOMEM.
 */
DS_MUST_CHECK int ds__zp_spans(const ds_delta_src_t *basis, const ds_delta_src_t *target,
                               ds_sha256_t *bsha, ds_sha256_t *tsha, ds_zp_span_t **spans,
                               size_t *n, uint64_t *copied);

/*
 * ds__zp_spans from the chunk lists both sources carry (ds_delta_src_t
 * chunks): a target chunk whose XXH3-128 and length are a basis chunk's is
 * a copy, without reading either source (the bytes are not compared: the
 * caller checks the delta, as the delta cache does). Returns 1 when the
 * lists do not add up to their sources' sizes (nothing done: chunk the
 * sources instead), 0, or DS_ENOMEM.
 */
DS_MUST_CHECK int ds__zp_spans_known(const ds_delta_src_t *basis, const ds_delta_src_t *target,
                                     ds_zp_span_t **spans, size_t *n, uint64_t *copied);

/* BSDIFF records (zpatch_bsdiff.c): a suffix array of one basis range. */
typedef struct ds_zp_bs ds_zp_bs_t;
struct ZSTD_CCtx_s;

/*
 * Suffix-sorts old[0, on) (borrowed: must outlive the index; on at most
 * DS_ZPATCH_BS_BASIS_MAX). Memory: 4 bytes per basis byte, plus 24 MiB of
 * stream buffers. Returns 0 or DS_ENOMEM.
 */
DS_MUST_CHECK int ds__zp_bs_new(const uint8_t *old, size_t on, ds_zp_bs_t **out);

/* Frees an index. NULL is a no-op. */
void ds__zp_bs_free(ds_zp_bs_t *b);

/* The longest match of q[0, qn) in the indexed basis: its length, and its
 * basis offset in *pos. */
size_t ds__zp_bs_longest(ds_zp_bs_t *b, const uint8_t *q, size_t qn, size_t *pos);

/* One step of an alignment: target nw[at, at + add) lines up with basis
 * [from, from + add) (byte-wise differences allowed), then nw[at + add,
 * at + add + extra) has no counterpart. Returns 0 or an error, which stops
 * the alignment. */
typedef int (*ds_zp_align_fn)(void *ctx, size_t at, size_t from, size_t add, size_t extra);

/*
 * The approximate alignment BSDIFF records are built from, of target
 * nw[0, nn) (1 to DS_ZPATCH_BS_SEG_MAX bytes) against the indexed basis,
 * given step by step to fn, in target order, covering nw. Returns 0, fn's
 * error, DS_ETOOBIG or DS_ERANGE (as ds__zp_bs_record), -EINVAL.
 */
DS_MUST_CHECK int ds__zp_bs_align(ds_zp_bs_t *b, const uint8_t *nw, size_t nn, ds_zp_align_fn fn,
                                  void *ctx);

/* A COPY of the SMB worker is a server-side copy: two round trips and
 * about 580 bytes on the wire, and it cuts the literal stream, whose next
 * write costs about 200 more. A shorter agreeing stretch goes as literal. */
#define DS_ZP_ALIGN_MIN_COPY 1024

/*
 * DS_ZPATCH_COPY_ONLY (zpatch_align.c): replaces each literal run of
 * v[0, *n) by COPY and literal pieces along an approximate alignment of the
 * run with the basis old[0, on): the stretches that agree byte for byte
 * over at least DS_ZP_ALIGN_MIN_COPY bytes become COPY spans. A rebuilt
 * binary shares few identical chunks with its previous build but agrees
 * with it over long shifted stretches. *v is reallocated; *copied grows by
 * the bytes the new copies cover. buf holds DS_ZPATCH_BS_SEG_MAX bytes.
 * A run whose alignment is out of bounds (DS_ETOOBIG, DS_ERANGE) stays
 * literal. Returns 0, a source's error or DS_ENOMEM.
 */
DS_MUST_CHECK int ds__zp_align_spans(const uint8_t *old, size_t on, const ds_delta_src_t *target,
                                     uint8_t *buf, ds_zp_span_t **v, size_t *n, uint64_t *copied);

/*
 * Writes to out[0, cap) one BSDIFF record (kind byte included) turning the
 * indexed basis, found at basis offset boff, into nw[0, nn) (1 to
 * DS_ZPATCH_BS_SEG_MAX bytes); *len is its size. cap must hold three
 * frames (ZSTD_compressBound(DS_ZPATCH_BS_SEG_MAX) + 64 suffices).
 * limit (0: none): the record is given up as soon as it is known to take
 * limit bytes or more (before its diff part, the costly one, is packed).
 * Returns 0; DS_ETOOBIG (control stream over DS_ZPATCH_BS_CTRL_MAX) or
 * DS_ERANGE (inputs so repetitive that the search ran over its CPU budget,
 * or over limit): the caller drops the candidate; DS_EDELTA (zstd failed);
 * -EINVAL.
 */
DS_MUST_CHECK int ds__zp_bs_record(ds_zp_bs_t *b, uint64_t boff, const uint8_t *nw, size_t nn,
                                   struct ZSTD_CCtx_s *cctx, int level, uint64_t limit,
                                   uint8_t *out, size_t cap, size_t *len);

#endif

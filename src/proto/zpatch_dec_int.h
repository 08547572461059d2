/* zpatch decoder internals shared by zpatch_dec.c and zpatch_bsdec.c. */
#ifndef DS_ZPATCH_DEC_INT_H
#define DS_ZPATCH_DEC_INT_H

#include <stddef.h>
#include <stdint.h>

#include <bzlib.h>
#include <zstd.h>

#include "distsync/zpatch.h"

#define OUT_CAP  (256u << 10)
#define COPY_MAX (1u << 20) /* basis bytes read at once by a COPY record */

enum {
    S_HDR,
    S_HDR2, /* the rest of the header */
    S_KIND,
    S_ZW, /* version 3: a ZSTD record's field widths */
    S_CW, /* version 3: a COPY record's field widths */
    S_ZREC,
    S_CREC,
    S_FHDR,
    S_FRAME,
    S_BREC,
    S_BPART,
    S_END,
    S_FAIL
};
/* Bytes gathered first: magic, version and (version 3) the size's width. */
#define DEC_HDR_START 6

/* The current BSDIFF record (zpatch_bsdec.c). */
struct bsrec {
    uint32_t raw, len[3], comp[3]; /* parts: 0 ctrl, 1 extra, 2 diff */
    uint32_t part, consumed, made;
    uint8_t *ctrl, *extra, *mix;
    size_t ctrl_pos, extra_pos;
    uint64_t add, ext, start; /* current triple; output before the record */
    int64_t seek, pos;        /* basis position, relative to boff */
    int triple;               /* a triple is being applied */
    int codec, bz_open;       /* the diff part's codec; bz in use */
    bz_stream bz;
    ZSTD_DCtx *dctx;
};

struct ds_zpatch_dec {
    const ds_zpatch_basis_t *basis;
    ds_zpatch_out_fn out;
    void *out_ctx;
    int state, err, max_version, version;
    char why[160];
    uint8_t acc[48]; /* header / record / frame header being gathered */
    uint8_t w[4];    /* version 3: widths of the current record's fields */
    size_t have, need;
    uint64_t target_size, produced;
    /* current ZSTD or BSDIFF record */
    uint64_t boff, blen;
    uint32_t raw_len, comp_len, consumed, made;
    const void *pre;
    ZSTD_DCtx *dctx;
    uint8_t *obuf;
    struct bsrec bs;
};

/* Fails the decoder (the first failure sticks): returns code. */
int ds__zpatch_fail(ds_zpatch_dec_t *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes n output bytes (checked against the declared size). */
DS_MUST_CHECK int ds__zpatch_emit(ds_zpatch_dec_t *d, const uint8_t *p, size_t n);

/* Checks [off, off + len) against the basis. */
DS_MUST_CHECK int ds__zpatch_range(ds_zpatch_dec_t *d, uint64_t off, uint64_t len,
                                   const char *what);

/* Releases the basis range read for the current record. */
void ds__zpatch_release(ds_zpatch_dec_t *d);

/* BSDIFF record: its fields are gathered in d->acc; checks them (the basis
 * range at most DS_ZPATCH_BS_BASIS_MAX), reads the basis range, and moves
 * to its parts. Returns 0 or the failure. */
DS_MUST_CHECK int ds__zpatch_bs_start(ds_zpatch_dec_t *d);

/* Feeds n bytes (at most what the current part has left) of the record's
 * parts. Returns 0 or the failure. */
DS_MUST_CHECK int ds__zpatch_bs_feed(ds_zpatch_dec_t *d, const uint8_t *p, size_t n);

/* Frees the record's buffers and decompressor. */
void ds__zpatch_bs_free(ds_zpatch_dec_t *d);

#endif

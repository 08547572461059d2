/*
 * zpatch decoder, BSDIFF records (stream version 2; layout in
 * include/distsync/zpatch.h). The control and extra parts come first and
 * are decompressed into buffers of their declared sizes (each at most
 * 8 MiB); the diff part, the largest, is streamed: each piece zstd yields
 * is added to the basis bytes at the current position and written out,
 * with the extra bytes the triples place between. The record's basis range
 * is read once when the record starts (the basis reader's get(): pread
 * into its one reused buffer, never mmap) and held until the record ends,
 * with no other get() meanwhile; the range is at most
 * DS_ZPATCH_BS_BASIS_MAX bytes (what the encoder suffix-sorts), so a
 * record costs at most that buffer, the control and extra parts (8 MiB
 * each at most) and one zstd window. Every part's zstd window is at most
 * 2^DS_ZPATCH_BS_WINDOW_LOG bytes. Nothing is trusted: sizes against their
 * caps and the target size, the position against the basis range, every
 * part consumed exactly.
 */
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "zpatch_dec_int.h"

#define fail ds__zpatch_fail

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

void ds__zpatch_bs_free(ds_zpatch_dec_t *d)
{
    struct bsrec *b = &d->bs;

    free(b->ctrl);
    free(b->extra);
    free(b->mix);
    if (b->bz_open)
        BZ2_bzDecompressEnd(&b->bz);
    ZSTD_freeDCtx(b->dctx);
    memset(b, 0, sizeof(*b));
}

/* Reads one LEB128 varint of the control part. */
static int varint(ds_zpatch_dec_t *d, uint64_t *v)
{
    struct bsrec *b = &d->bs;

    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->ctrl_pos == b->len[0])
            return fail(d, DS_EDELTA, "BSDIFF control part ends inside a triple");
        uint8_t c = b->ctrl[b->ctrl_pos++];

        if (shift == 63 && c > 1)
            return fail(d, DS_EDELTA, "BSDIFF control value over 64 bits");
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return 0;
    }
    return fail(d, DS_EDELTA, "BSDIFF control value over 64 bits");
}

/* Parses the next triple (none left: b->triple = 0). */
static int next_triple(ds_zpatch_dec_t *d)
{
    struct bsrec *b = &d->bs;
    uint64_t z = 0;
    int rc;

    b->triple = b->ctrl_pos < b->len[0];
    if (!b->triple)
        return 0;
    rc = varint(d, &b->add);
    if (rc == 0)
        rc = varint(d, &b->ext);
    if (rc == 0)
        rc = varint(d, &z);
    b->seek = (z & 1) ? -(int64_t)(z >> 1) - 1 : (int64_t)(z >> 1);
    return rc;
}

/* Finishes triples whose add bytes are done: their extra bytes, their
 * seek; stops at a triple that needs diff bytes. */
static int drain(ds_zpatch_dec_t *d)
{
    struct bsrec *b = &d->bs;
    int rc = 0;

    while (rc == 0 && b->triple && b->add == 0) {
        if (b->ext > b->len[1] - b->extra_pos)
            return fail(d, DS_EDELTA, "BSDIFF triple takes %llu extra bytes, %llu left",
                        (unsigned long long)b->ext, (unsigned long long)(b->len[1] - b->extra_pos));
        rc = ds__zpatch_emit(d, b->extra + b->extra_pos, (size_t)b->ext);
        b->extra_pos += (size_t)b->ext;
        b->ext = 0;
        if (rc == 0 && (b->seek > (int64_t)d->blen - b->pos || b->seek < -b->pos))
            return fail(d, DS_ERANGE, "BSDIFF seek %lld from %lld leaves the basis range of %llu",
                        (long long)b->seek, (long long)b->pos, (unsigned long long)d->blen);
        b->pos += b->seek;
        if (rc == 0)
            rc = next_triple(d);
    }
    return rc;
}

/* n diff bytes: added to the basis at the position and written out. */
static int apply_diff(ds_zpatch_dec_t *d, const uint8_t *p, size_t n)
{
    struct bsrec *b = &d->bs;
    const uint8_t *base = d->pre;
    int rc = 0;

    while (rc == 0 && n > 0) {
        if (!b->triple)
            return fail(d, DS_EDELTA, "BSDIFF diff part longer than its triples' add bytes");
        size_t k = n < b->add ? n : (size_t)b->add;

        k = k < OUT_CAP ? k : OUT_CAP;
        if ((uint64_t)k > d->blen - (uint64_t)b->pos)
            return fail(d, DS_ERANGE, "BSDIFF adds %zu bytes at %lld, past the basis range of %llu",
                        k, (long long)b->pos, (unsigned long long)d->blen);
        for (size_t i = 0; i < k; i++)
            b->mix[i] = (uint8_t)(base[b->pos + (int64_t)i] + p[i]);
        rc = ds__zpatch_emit(d, b->mix, k);
        b->pos += (int64_t)k;
        b->add -= k;
        p += k;
        n -= k;
        if (rc == 0 && b->add == 0)
            rc = drain(d);
    }
    return rc;
}

/* Moves to the next part that has bytes; past the last, ends the record. */
static int next_part(ds_zpatch_dec_t *d)
{
    struct bsrec *b = &d->bs;
    int rc = 0;

    while (b->part < 3 && b->comp[b->part] == 0)
        b->part++;
    if (b->part >= 2 && !b->triple && b->ctrl_pos == 0) { /* ctrl and extra are in */
        rc = next_triple(d);
        if (rc == 0)
            rc = drain(d);
    }
    if (rc < 0 || b->part < 3) {
        b->consumed = b->made = 0;
        ZSTD_DCtx_reset(b->dctx, ZSTD_reset_session_only);
        if (rc == 0 && b->part == 2 && b->codec == DS_ZPATCH_BS_BZIP2) {
            memset(&b->bz, 0, sizeof(b->bz));
            if (BZ2_bzDecompressInit(&b->bz, 0, 0) != BZ_OK)
                return fail(d, DS_ENOMEM, "out of memory for bzip2");
            b->bz_open = 1;
        }
        return rc;
    }
    if (b->triple || b->ctrl_pos != b->len[0] || b->extra_pos != b->len[1] ||
        d->produced - b->start != b->raw)
        return fail(d, DS_EDELTA, "BSDIFF record's parts do not agree with its triples");
    ds__zpatch_release(d);
    free(b->ctrl);
    free(b->extra);
    b->ctrl = b->extra = NULL;
    d->state = S_KIND;
    d->have = 0;
    d->need = 1;
    return 0;
}

int ds__zpatch_bs_start(ds_zpatch_dec_t *d)
{
    struct bsrec *b = &d->bs;
    const uint8_t *a = d->acc;
    int rc;

    d->boff = get_be(a, 8);
    d->blen = get_be(a + 8, 8);
    b->raw = (uint32_t)get_be(a + 16, 4);
    b->len[0] = (uint32_t)get_be(a + 20, 4);
    b->comp[0] = (uint32_t)get_be(a + 24, 4);
    b->len[1] = (uint32_t)get_be(a + 28, 4);
    b->comp[1] = (uint32_t)get_be(a + 32, 4);
    b->comp[2] = (uint32_t)get_be(a + 36, 4);
    b->codec = a[40];
    b->len[2] = b->len[1] <= b->raw ? b->raw - b->len[1] : 0;
    if (b->raw == 0 || b->raw > DS_ZPATCH_BS_SEG_MAX || b->len[0] == 0 ||
        b->len[0] > DS_ZPATCH_BS_CTRL_MAX || b->len[1] > b->raw ||
        (b->codec != DS_ZPATCH_BS_ZSTD && b->codec != DS_ZPATCH_BS_BZIP2))
        return fail(d, DS_EDELTA,
                    "BSDIFF record with raw length %u, control %u, extra %u, diff codec %d", b->raw,
                    b->len[0], b->len[1], b->codec);
    for (int i = 0; i < 3; i++)
        if ((b->len[i] == 0) != (b->comp[i] == 0) ||
            b->comp[i] > ZSTD_compressBound(DS_ZPATCH_BS_SEG_MAX))
            return fail(d, DS_EDELTA, "BSDIFF part %d: %u bytes compressed to %u", i, b->len[i],
                        b->comp[i]);
    if (b->raw > d->target_size - d->produced)
        return fail(d, DS_ETOOBIG, "BSDIFF record past the declared target size");
    if (d->blen > DS_ZPATCH_BS_BASIS_MAX) /* it is read into memory whole */
        return fail(d, DS_EDELTA, "BSDIFF basis range %llu+%llu over %u bytes",
                    (unsigned long long)d->boff, (unsigned long long)d->blen,
                    DS_ZPATCH_BS_BASIS_MAX);
    rc = ds__zpatch_range(d, d->boff, d->blen, "BSDIFF basis");
    if (rc < 0)
        return rc;
    if (d->blen > 0 && (rc = d->basis->get(d->basis->ctx, d->boff, d->blen, &d->pre)) < 0) {
        d->pre = NULL;
        return fail(d, rc, "reading the basis at %llu+%llu: %s", (unsigned long long)d->boff,
                    (unsigned long long)d->blen, ds_strerror(rc));
    }
    if (b->dctx == NULL && (b->dctx = ZSTD_createDCtx()) != NULL)
        ZSTD_DCtx_setParameter(b->dctx, ZSTD_d_windowLogMax, DS_ZPATCH_BS_WINDOW_LOG);
    if (b->mix == NULL)
        b->mix = malloc(OUT_CAP);
    b->ctrl = malloc(b->len[0]);
    b->extra = malloc(b->len[1] ? b->len[1] : 1);
    if (b->dctx == NULL || b->mix == NULL || b->ctrl == NULL || b->extra == NULL)
        return fail(d, DS_ENOMEM, "out of memory for a BSDIFF record");
    b->part = 0;
    b->ctrl_pos = b->extra_pos = 0;
    b->triple = 0;
    b->pos = 0;
    b->start = d->produced;
    d->state = S_BPART;
    d->have = 0;
    return next_part(d);
}

/* Decompressed bytes of the current part: into its buffer, or applied. */
static int part_out(ds_zpatch_dec_t *d, const uint8_t *p, size_t n)
{
    struct bsrec *b = &d->bs;

    if (b->part == 2)
        return apply_diff(d, p, n);
    memcpy((b->part == 0 ? b->ctrl : b->extra) + b->made, p, n);
    return 0;
}

/* The diff part as one bzip2 stream (diff_codec 1). */
static int bz_feed(ds_zpatch_dec_t *d, const uint8_t *p, size_t n)
{
    struct bsrec *b = &d->bs;

    b->bz.next_in = (char *)p;
    b->bz.avail_in = (unsigned)n;
    for (;;) {
        b->bz.next_out = (char *)d->obuf;
        b->bz.avail_out = OUT_CAP;
        int r = BZ2_bzDecompress(&b->bz);
        size_t got = OUT_CAP - b->bz.avail_out, used = n - b->bz.avail_in;

        if (r != BZ_OK && r != BZ_STREAM_END)
            return fail(d, DS_ECORRUPT, "BSDIFF diff part: bzip2 error %d", r);
        if (got > b->len[2] - b->made)
            return fail(d, DS_ETOOBIG, "BSDIFF diff part decompresses past its %u bytes",
                        b->len[2]);
        if (got > 0 && part_out(d, d->obuf, got) < 0)
            return d->err;
        b->made += (uint32_t)got;
        if (r == BZ_STREAM_END) {
            if (b->consumed + used != b->comp[2] || b->made != b->len[2])
                return fail(d, DS_ECORRUPT, "BSDIFF diff part: bzip2 stream does not fill it");
            BZ2_bzDecompressEnd(&b->bz);
            b->bz_open = 0;
            b->part++;
            return next_part(d);
        }
        if (b->bz.avail_in == 0 && got < OUT_CAP)
            break; /* needs more input */
    }
    b->consumed += (uint32_t)n;
    if (b->consumed == b->comp[2])
        return fail(d, DS_ECORRUPT, "BSDIFF diff part: bzip2 stream truncated");
    return 0;
}

int ds__zpatch_bs_feed(ds_zpatch_dec_t *d, const uint8_t *p, size_t n)
{
    struct bsrec *b = &d->bs;
    ZSTD_inBuffer in = {p, n, 0};

    if (b->part == 2 && b->codec == DS_ZPATCH_BS_BZIP2)
        return bz_feed(d, p, n);
    while (in.pos < in.size || b->consumed + in.pos == b->comp[b->part]) {
        ZSTD_outBuffer ob = {d->obuf, OUT_CAP, 0};
        size_t r = ZSTD_decompressStream(b->dctx, &ob, &in);

        if (ZSTD_isError(r))
            return fail(d, DS_ECORRUPT, "BSDIFF part %u: zstd: %s", b->part, ZSTD_getErrorName(r));
        if (ob.pos > b->len[b->part] - b->made)
            return fail(d, DS_ETOOBIG, "BSDIFF part %u decompresses past its %u bytes", b->part,
                        b->len[b->part]);
        if (ob.pos > 0 && part_out(d, d->obuf, ob.pos) < 0)
            return d->err;
        b->made += (uint32_t)ob.pos;
        if (r == 0) { /* frame complete */
            if (b->consumed + in.pos != b->comp[b->part] || b->made != b->len[b->part])
                return fail(d, DS_ECORRUPT, "BSDIFF part %u: zstd frame does not fill it", b->part);
            b->part++;
            return next_part(d);
        }
        if (in.pos == in.size && ob.pos < ob.size)
            break; /* needs more input */
    }
    b->consumed += (uint32_t)in.pos;
    if (b->consumed == b->comp[b->part])
        return fail(d, DS_ECORRUPT, "BSDIFF part %u: zstd frame truncated", b->part);
    return 0;
}

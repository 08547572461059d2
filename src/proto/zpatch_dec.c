/*
 * zpatch decoder (receiver side): a byte-stream state machine fed with any
 * slicing of the stream. Each ZSTD record reads its basis range (through
 * ds_zpatch_basis_t: on the target, pread into one reused buffer, never
 * mmap: see ds_zpatch_basis_fd) and streams the frame through a 256 KiB
 * output buffer; zstd's window is bounded by the
 * frame's declared content size, itself at most DS_ZPATCH_SEG_MAX. Nothing
 * the stream says is trusted: ranges are checked against the basis, sizes
 * against the header, frames must declare their size and end exactly at
 * their record's length. See include/distsync/zpatch.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "distsync/error.h"
#include "distsync/fs.h"
#include "distsync/zpatch.h"
#include "zpatch_dec_int.h"

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

int ds__zpatch_fail(ds_zpatch_dec_t *d, int code, const char *fmt, ...)
{
    va_list ap;

    if (d->state == S_FAIL)
        return d->err;
    va_start(ap, fmt);
    vsnprintf(d->why, sizeof(d->why), fmt, ap);
    va_end(ap);
    d->state = S_FAIL;
    d->err = code;
    return code;
}

void ds__zpatch_release(ds_zpatch_dec_t *d)
{
    if (d->pre != NULL)
        d->basis->release(d->basis->ctx, d->pre, d->blen);
    d->pre = NULL;
}

int ds_zpatch_dec_new(const ds_zpatch_basis_t *basis, ds_zpatch_out_fn out, void *out_ctx,
                      ds_zpatch_dec_t **dp)
{
    ds_zpatch_dec_t *d = calloc(1, sizeof(*d));

    *dp = NULL;
    if (d == NULL)
        return DS_ENOMEM;
    d->basis = basis;
    d->out = out;
    d->out_ctx = out_ctx;
    d->state = S_HDR;
    d->need = DEC_HDR_START;
    d->max_version = 3;
    d->dctx = ZSTD_createDCtx();
    d->obuf = malloc(OUT_CAP);
    if (d->dctx == NULL || d->obuf == NULL) {
        ds_zpatch_dec_free(d);
        return DS_ENOMEM;
    }
    /* the window must reach the start of the prefix; the buffer zstd
     * allocates is still bounded by the declared content size (checked) */
    ZSTD_DCtx_setParameter(d->dctx, ZSTD_d_windowLogMax, ZSTD_WINDOWLOG_MAX);
    *dp = d;
    return 0;
}

void ds_zpatch_dec_free(ds_zpatch_dec_t *d)
{
    if (d == NULL)
        return;
    ds__zpatch_release(d);
    ds__zpatch_bs_free(d);
    ZSTD_freeDCtx(d->dctx);
    free(d->obuf);
    free(d);
}

void ds_zpatch_dec_max_version(ds_zpatch_dec_t *d, int version)
{
    d->max_version = version;
}

const char *ds_zpatch_dec_error(const ds_zpatch_dec_t *d)
{
    return d->why;
}

uint64_t ds_zpatch_dec_target_size(const ds_zpatch_dec_t *d)
{
    return d->target_size;
}

int ds__zpatch_emit(ds_zpatch_dec_t *d, const uint8_t *p, size_t n)
{
    int rc;

    if (n > d->target_size - d->produced)
        return ds__zpatch_fail(d, DS_ETOOBIG, "output past the declared target size %llu bytes",
                               (unsigned long long)d->target_size);
    rc = d->out(d->out_ctx, p, n);
    if (rc < 0)
        return ds__zpatch_fail(d, rc, "writing the output: %s", ds_strerror(rc));
    d->produced += n;
    return 0;
}

int ds__zpatch_range(ds_zpatch_dec_t *d, uint64_t off, uint64_t len, const char *what)
{
    if (off > d->basis->size || len > d->basis->size - off)
        return ds__zpatch_fail(d, DS_ERANGE, "%s range %llu+%llu outside the basis (%llu bytes)",
                               what, (unsigned long long)off, (unsigned long long)len,
                               (unsigned long long)d->basis->size);
    return 0;
}

/* COPY record: basis bytes out as they are, a bounded range at a time. */
static int do_copy(ds_zpatch_dec_t *d, uint64_t off, uint64_t len)
{
    int rc = ds__zpatch_range(d, off, len, "COPY");

    if (rc == 0 && len > d->target_size - d->produced)
        rc = ds__zpatch_fail(d, DS_ETOOBIG, "COPY past the declared target size");
    if (rc == 0 && len > 0 && d->basis->copy != NULL) {
        rc = d->basis->copy(d->basis->copy_ctx, off, len);
        if (rc < 0)
            return ds__zpatch_fail(d, rc, "copying the basis at %llu+%llu: %s",
                                   (unsigned long long)off, (unsigned long long)len,
                                   ds_strerror(rc));
        if (rc == 0) {
            d->produced += len;
            return 0;
        }
        rc = 0; /* declined: read and write it here */
    }
    while (rc == 0 && len > 0) {
        uint64_t n = len > COPY_MAX ? COPY_MAX : len;
        const void *p;

        rc = d->basis->get(d->basis->ctx, off, n, &p);
        if (rc < 0)
            return ds__zpatch_fail(d, rc, "reading the basis at %llu+%llu: %s",
                                   (unsigned long long)off, (unsigned long long)n, ds_strerror(rc));
        rc = ds__zpatch_emit(d, p, (size_t)n);
        d->basis->release(d->basis->ctx, p, n);
        off += n;
        len -= n;
    }
    return rc;
}

/* A ZSTD record's fields are in acc: check them, map the prefix. */
static int start_zrec(ds_zpatch_dec_t *d)
{
    int rc;

    const uint8_t *a = d->acc;
    const int v3 = d->version >= 3;

    d->boff = get_be(a, v3 ? d->w[0] : 8);
    a += v3 ? d->w[0] : 8;
    d->blen = get_be(a, v3 ? d->w[1] : 8);
    a += v3 ? d->w[1] : 8;
    d->raw_len = (uint32_t)get_be(a, v3 ? d->w[2] : 4);
    a += v3 ? d->w[2] : 4;
    d->comp_len = (uint32_t)get_be(a, v3 ? d->w[3] : 4);
    d->consumed = d->made = 0;
    if (d->raw_len == 0 || d->raw_len > DS_ZPATCH_SEG_MAX || d->comp_len == 0 ||
        d->comp_len > ZSTD_compressBound(DS_ZPATCH_SEG_MAX))
        return ds__zpatch_fail(d, DS_EDELTA, "ZSTD record with raw length %u, compressed length %u",
                               d->raw_len, d->comp_len);
    if (d->raw_len > d->target_size - d->produced)
        return ds__zpatch_fail(d, DS_ETOOBIG, "ZSTD record past the declared target size");
    rc = ds__zpatch_range(d, d->boff, d->blen, "ZSTD prefix");
    if (rc < 0)
        return rc;
    if (d->blen > 0) {
        rc = d->basis->get(d->basis->ctx, d->boff, d->blen, &d->pre);
        if (rc < 0) {
            d->pre = NULL;
            return ds__zpatch_fail(d, rc, "reading the basis at %llu+%llu: %s",
                                   (unsigned long long)d->boff, (unsigned long long)d->blen,
                                   ds_strerror(rc));
        }
    }
    ZSTD_DCtx_reset(d->dctx, ZSTD_reset_session_only);
    ZSTD_DCtx_setParameter(d->dctx, ZSTD_d_format,
                           v3 ? ZSTD_f_zstd1_magicless : ZSTD_f_zstd1); /* a valid value */
    if (d->blen > 0 && ZSTD_isError(ZSTD_DCtx_refPrefix(d->dctx, d->pre, (size_t)d->blen)))
        return ds__zpatch_fail(d, DS_ENOMEM, "zstd refused the prefix");
    d->state = S_FHDR;
    d->have = 0;
    return 0;
}

/* The frame header is gathered in acc (d->have bytes): it must be a zstd
 * frame declaring raw_len. Returns 1 when more bytes are needed. */
static int check_fhdr(ds_zpatch_dec_t *d)
{
    ZSTD_frameHeader h;
    size_t r = ZSTD_getFrameHeader_advanced(
        &h, d->acc, d->have, d->version >= 3 ? ZSTD_f_zstd1_magicless : ZSTD_f_zstd1);

    if (ZSTD_isError(r))
        return ds__zpatch_fail(d, DS_ECORRUPT, "bad zstd frame header: %s", ZSTD_getErrorName(r));
    if (r > 0)
        return d->have < d->comp_len
                   ? 1
                   : ds__zpatch_fail(d, DS_ECORRUPT, "zstd frame header truncated");
    if (h.frameType != ZSTD_frame || h.frameContentSize != d->raw_len)
        return ds__zpatch_fail(d, DS_ECORRUPT, "zstd frame does not declare its %u bytes",
                               d->raw_len);
    return 0;
}

/* Decompresses n bytes of the current frame. */
static int frame_feed(ds_zpatch_dec_t *d, const uint8_t *p, size_t n)
{
    ZSTD_inBuffer in = {p, n, 0};

    while (in.pos < in.size || d->consumed + in.pos == d->comp_len) {
        ZSTD_outBuffer ob = {d->obuf, OUT_CAP, 0};
        size_t r = ZSTD_decompressStream(d->dctx, &ob, &in);

        if (ZSTD_isError(r))
            return ds__zpatch_fail(d, DS_ECORRUPT, "zstd: %s", ZSTD_getErrorName(r));
        if (ob.pos > d->raw_len - d->made)
            return ds__zpatch_fail(d, DS_ETOOBIG, "zstd frame decompresses past its %u bytes",
                                   d->raw_len);
        d->made += (uint32_t)ob.pos;
        if (ob.pos > 0 && ds__zpatch_emit(d, d->obuf, ob.pos) < 0)
            return d->err;
        if (r == 0) { /* frame complete */
            if (d->consumed + in.pos != d->comp_len || d->made != d->raw_len)
                return ds__zpatch_fail(d, DS_ECORRUPT, "zstd frame does not fill its record");
            ds__zpatch_release(d);
            d->state = S_KIND;
            d->have = 0;
            d->need = 1;
            return 0;
        }
        if (in.pos == in.size && ob.pos < ob.size)
            break; /* needs more input */
    }
    d->consumed += (uint32_t)in.pos;
    if (d->consumed == d->comp_len)
        return ds__zpatch_fail(d, DS_ECORRUPT, "zstd frame truncated");
    return 0;
}

/* Version 3: the width bytes of a ZSTD (S_ZW) or COPY (S_CW) record are in
 * acc; checks them and gathers the fields next. */
static int widths(ds_zpatch_dec_t *d)
{
    int z = d->state == S_ZW;

    d->w[0] = d->acc[0] >> 4;
    d->w[1] = d->acc[0] & 15;
    d->w[2] = z ? d->acc[1] >> 4 : 0;
    d->w[3] = z ? d->acc[1] & 15 : 0;
    if (d->w[0] > 8 || d->w[1] > 8 ||
        (z && (d->w[2] < 1 || d->w[2] > 4 || d->w[3] < 1 || d->w[3] > 4)))
        return ds__zpatch_fail(d, DS_EDELTA, "%s record with field widths %02x%02x",
                               z ? "ZSTD" : "COPY", d->acc[0], z ? d->acc[1] : 0);
    d->have = 0;
    d->need = (size_t)d->w[0] + d->w[1] + d->w[2] + d->w[3];
    d->state = z ? S_ZREC : S_CREC;
    if (d->need > 0)
        return 0;
    d->state = S_KIND; /* a COPY of 0 bytes at 0 */
    d->need = 1;
    return do_copy(d, 0, 0);
}

/* Bytes of acc are complete for the current state: act on them. */
static int gathered(ds_zpatch_dec_t *d)
{
    switch (d->state) {
    case S_HDR:
        if (memcmp(d->acc, DS_ZPATCH_MAGIC, 4) != 0 || d->acc[4] < 1 ||
            d->acc[4] > d->max_version || (d->acc[4] < 3 && d->acc[5] != 0) ||
            (d->acc[4] >= 3 && (d->acc[5] < 1 || d->acc[5] > 8)))
            return ds__zpatch_fail(d, DS_EDELTA, "not a zpatch stream of version 1 to %d",
                                   d->max_version);
        d->version = d->acc[4];
        d->state = S_HDR2;
        d->need = d->version >= 3 ? d->acc[5] : DS_ZPATCH_HDR_LEN - DEC_HDR_START;
        break;
    case S_HDR2:
        if (d->version < 3 && (d->acc[0] != 0 || d->acc[1] != 0))
            return ds__zpatch_fail(d, DS_EDELTA, "not a zpatch stream of version 1 to %d",
                                   d->max_version);
        d->target_size = d->version >= 3 ? get_be(d->acc, (int)d->need) : get_be(d->acc + 2, 8);
        d->state = S_KIND;
        d->need = 1;
        break;
    case S_ZW:
    case S_CW:
        return widths(d);
    case S_KIND:
        if (d->acc[0] == 0) {
            if (d->produced != d->target_size)
                return ds__zpatch_fail(d, DS_EDELTA, "stream ends after %llu of %llu bytes",
                                       (unsigned long long)d->produced,
                                       (unsigned long long)d->target_size);
            d->state = S_END;
            return 0;
        }
        if (d->acc[0] == DS_ZPATCH_REC_BSDIFF && d->version >= 2) {
            d->state = S_BREC;
            d->need = DS_ZPATCH_BS_REC_LEN - 1;
            break;
        }
        if (d->acc[0] != 1 && d->acc[0] != 2)
            return ds__zpatch_fail(d, DS_EDELTA, "unknown record kind %u", d->acc[0]);
        if (d->version >= 3) {
            d->state = d->acc[0] == 1 ? S_ZW : S_CW;
            d->need = d->acc[0] == 1 ? 2 : 1;
            break;
        }
        d->state = d->acc[0] == 1 ? S_ZREC : S_CREC;
        d->need = d->acc[0] == 1 ? 24 : 16;
        break;
    case S_ZREC:
        return start_zrec(d);
    case S_BREC:
        return ds__zpatch_bs_start(d);
    case S_CREC:
        d->state = S_KIND;
        d->need = 1;
        d->have = 0;
        if (d->version >= 3)
            return do_copy(d, get_be(d->acc, d->w[0]), get_be(d->acc + d->w[0], d->w[1]));
        return do_copy(d, get_be(d->acc, 8), get_be(d->acc + 8, 8));
    }
    d->have = 0;
    return 0;
}

int ds_zpatch_dec_feed(ds_zpatch_dec_t *d, const uint8_t *p, size_t n)
{
    while (n > 0 && d->state != S_FAIL) {
        size_t k;

        if (d->state == S_END)
            return ds__zpatch_fail(d, DS_EDELTA, "data after the end of the stream");
        if (d->state == S_BPART) {
            k = d->bs.comp[d->bs.part] - d->bs.consumed;
            k = k < n ? k : n;
            if (ds__zpatch_bs_feed(d, p, k) < 0)
                return d->err;
        } else if (d->state == S_FRAME) {
            k = d->comp_len - d->consumed;
            k = k < n ? k : n;
            if (frame_feed(d, p, k) < 0)
                return d->err;
        } else if (d->state == S_FHDR) {
            k = ZSTD_FRAMEHEADERSIZE_MAX - d->have;
            k = k < d->comp_len - d->have ? k : d->comp_len - d->have;
            k = k < n ? k : n;
            memcpy(d->acc + d->have, p, k);
            d->have += k;
            int r = check_fhdr(d);

            if (r < 0)
                return r;
            if (r == 0) { /* header sound: decompress what was gathered */
                d->state = S_FRAME;
                if (frame_feed(d, d->acc, d->have) < 0)
                    return d->err;
            }
        } else {
            k = d->need - d->have < n ? d->need - d->have : n;
            memcpy(d->acc + d->have, p, k);
            d->have += k;
            if (d->have == d->need && gathered(d) < 0)
                return d->err;
        }
        p += k;
        n -= k;
    }
    return d->state == S_FAIL ? d->err : 0;
}

int ds_zpatch_dec_finish(ds_zpatch_dec_t *d)
{
    if (d->state == S_FAIL)
        return d->err;
    if (d->state != S_END)
        return ds__zpatch_fail(d, DS_EDELTA, "stream truncated");
    return 0;
}

/* --- basis access: pread of a file into a reused buffer --- */

/*
 * Why not mmap: a mapped file that another process truncates raises SIGBUS
 * on the next access to a page past its new end, and the receiver runs in
 * the console's process too (the local transport's thread): a signal there
 * kills every run. A SIGBUS handler would be process-wide state in a
 * library and would have to longjmp out of zstd. pread reports a short read
 * instead (DS_ECHANGED, the file fails cleanly), at the cost of one copy of
 * the range (README "Delta format": measured on a 1 GiB basis).
 */
static int fd_get(void *ctx, uint64_t off, uint64_t len, const void **p)
{
    ds_zpatch_basis_t *b = ctx;
    uint8_t *buf = b->buf;
    uint64_t got = 0;

    if (len > SIZE_MAX)
        return DS_ETOOBIG;
    if (b->busy || len > b->cap) {
        buf = b->busy ? malloc(len ? (size_t)len : 1) : realloc(b->buf, (size_t)len);
        if (buf == NULL)
            return DS_ENOMEM;
        if (!b->busy) {
            b->buf = buf;
            b->cap = (size_t)len;
        }
    }
    while (got < len) {
        ssize_t r = ds_fs_pread(b->fs, b->fd, buf + got, (size_t)(len - got), (off_t)(off + got));

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) { /* r == 0: the file shrank under us */
            int rc = r < 0 ? -errno : DS_ECHANGED;

            if (buf != b->buf)
                free(buf);
            return rc;
        }
        got += (uint64_t)r;
    }
    b->busy += buf == b->buf;
    *p = buf;
    return 0;
}

static void fd_release(void *ctx, const void *p, uint64_t len)
{
    ds_zpatch_basis_t *b = ctx;

    (void)len;
    if (p == b->buf)
        b->busy = 0;
    else
        free((void *)p);
}

void ds_zpatch_basis_fd(ds_zpatch_basis_t *b, int fd, uint64_t size)
{
    memset(b, 0, sizeof(*b));
    b->get = fd_get;
    b->release = fd_release;
    b->ctx = b;
    b->size = size;
    b->fd = fd;
}

void ds_zpatch_basis_close(ds_zpatch_basis_t *b)
{
    if (b == NULL)
        return;
    free(b->buf);
    b->buf = NULL;
    b->cap = 0;
}

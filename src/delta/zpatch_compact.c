/*
 * zpatch stream version 3: the records of a version 1 or 2 stream with
 * compact framing, for a protocol version 6 receiver. The delta cache keeps
 * version 2 (what a version 5 receiver applies); a small file's stream is
 * rewritten as it is sent. Most deltas of a rebuilt package are a few
 * hundred bytes, of which the fixed-width framing (a 16-byte header, 25
 * bytes a ZSTD record, 17 a COPY, 4 bytes of zstd magic per frame) was a
 * third: git's helper programs, 473 bytes each, carried 168 of framing.
 * Layout in include/distsync/zpatch.h.
 */
#include <string.h>

#include "distsync/error.h"
#include "distsync/zpatch.h"

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Bytes needed for v (0 for 0). */
static int width(uint64_t v)
{
    int w = 0;

    while (v > 0) {
        w++;
        v >>= 8;
    }
    return w;
}

struct out {
    uint8_t *p;
    size_t len, cap;
};

static int put(struct out *o, const void *p, size_t n)
{
    if (n > o->cap - o->len)
        return DS_ETOOBIG;
    memcpy(o->p + o->len, p, n);
    o->len += n;
    return 0;
}

static int put_w(struct out *o, uint64_t v, int w)
{
    uint8_t b[8];

    for (int i = w - 1; i >= 0; i--, v >>= 8)
        b[i] = (uint8_t)v;
    return put(o, b, (size_t)w);
}

/* The version 3 header: magic, version, the width of size, size. */
static int put_head(struct out *o, uint64_t size)
{
    uint8_t h[6] = {'D', 'S', 'Z', 'P', 3, (uint8_t)(width(size) ? width(size) : 1)};
    int rc = put(o, h, 6);

    return rc < 0 ? rc : put_w(o, size, h[5]);
}

/* A COPY record: kind, the widths of off and len, off, len. */
static int put_copy(struct out *o, uint64_t off, uint64_t len)
{
    uint8_t c[2] = {2, (uint8_t)(width(off) << 4 | width(len))};
    int rc = put(o, c, 2);

    if (rc == 0)
        rc = put_w(o, off, width(off));
    return rc < 0 ? rc : put_w(o, len, width(len));
}

/* A ZSTD record at in (25 bytes of fields after the kind, then the frame). */
static int zrec(struct out *o, const uint8_t *in, size_t left, size_t *used)
{
    static const uint8_t magic[4] = {0x28, 0xb5, 0x2f, 0xfd}; /* little-endian 0xFD2FB528 */
    uint64_t boff = get_be(in, 8), blen = get_be(in + 8, 8);
    uint32_t raw = (uint32_t)get_be(in + 16, 4), comp = (uint32_t)get_be(in + 20, 4);
    int wo = width(boff), wl = width(blen), wr = width(raw), wc = width(comp - 4);
    uint8_t h[3] = {1, (uint8_t)(wo << 4 | wl), 0};
    int rc;

    if (comp < 8 || comp > left - 24 || memcmp(in + 24, magic, 4) != 0 || wr < 1)
        return DS_EDELTA;
    h[2] = (uint8_t)(wr << 4 | (wc ? wc : 1));
    rc = put(o, h, 3);
    if (rc == 0)
        rc = put_w(o, boff, wo);
    if (rc == 0)
        rc = put_w(o, blen, wl);
    if (rc == 0)
        rc = put_w(o, raw, wr);
    if (rc == 0)
        rc = put_w(o, comp - 4, wc ? wc : 1);
    if (rc == 0)
        rc = put(o, in + 28, comp - 4); /* the frame without its magic */
    *used = 24 + comp;
    return rc;
}

/* A BSDIFF record at in (its fields after the kind, then its parts): as is. */
static int brec(struct out *o, const uint8_t *in, size_t left, size_t *used)
{
    uint64_t parts;

    if (left < DS_ZPATCH_BS_REC_LEN - 1)
        return DS_EDELTA;
    parts = get_be(in + 24, 4) + get_be(in + 32, 4) + get_be(in + 36, 4);
    if (parts > left - (DS_ZPATCH_BS_REC_LEN - 1))
        return DS_EDELTA;
    *used = DS_ZPATCH_BS_REC_LEN - 1 + (size_t)parts;
    return put(o, in - 1, *used + 1);
}

int ds_zpatch_compact(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    struct out o = {out, 0, cap};
    size_t i = DS_ZPATCH_HDR_LEN;
    int rc;

    *out_len = 0;
    if (n < DS_ZPATCH_HDR_LEN + 1 || memcmp(in, DS_ZPATCH_MAGIC, 4) != 0 || in[4] < 1 ||
        in[4] > 2 || in[5] || in[6] || in[7])
        return DS_EDELTA;
    rc = put_head(&o, get_be(in + 8, 8));
    while (rc == 0) {
        size_t used = 0;
        uint8_t kind = i < n ? in[i++] : 0xff;

        if (kind == 0) {
            rc = i == n ? put(&o, &kind, 1) : DS_EDELTA; /* END, and nothing after it */
            break;
        }
        if (kind == 1 && n - i >= 24) {
            rc = zrec(&o, in + i, n - i, &used);
        } else if (kind == 2 && n - i >= 16) {
            rc = put_copy(&o, get_be(in + i, 8), get_be(in + i + 8, 8));
            used = 16;
        } else if (kind == DS_ZPATCH_REC_BSDIFF && in[4] == 2) {
            rc = brec(&o, in + i, n - i, &used);
        } else {
            rc = DS_EDELTA; /* truncated or unknown */
        }
        i += used;
    }
    if (rc == 0)
        *out_len = o.len;
    return rc;
}

int ds_zpatch_copy_stream(uint64_t size, uint8_t *out, size_t cap, size_t *out_len)
{
    struct out o = {out, 0, cap};
    uint8_t end = 0;
    int rc = put_head(&o, size);

    *out_len = 0;
    if (rc == 0 && size > 0)
        rc = put_copy(&o, 0, size);
    if (rc == 0)
        rc = put(&o, &end, 1);
    if (rc == 0)
        *out_len = o.len;
    return rc;
}

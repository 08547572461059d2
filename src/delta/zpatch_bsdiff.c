/*
 * zpatch encoder, BSDIFF records (zpatch stream version 2): the method of
 * C. Percival, "Naive differences of executable code" (2003). A rebuilt
 * binary differs from its previous build mostly by small changes spread
 * over long aligned regions (addresses moved by a constant): the basis is
 * suffix-sorted (libdivsufsort), the target is scanned for exact matches,
 * and a match is only taken when it beats the current alignment by more
 * than a few bytes; each alignment is then extended forward and backward
 * while at least half of its bytes agree. The aligned regions go out as
 * byte-wise differences (mostly zeros, packed by zstd or bzip2, whichever
 * is smaller), the rest as extra bytes, and control triples say how to interleave them.
 * Written from the paper's description; record layout in
 * include/distsync/zpatch.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bzlib.h>
#include <divsufsort.h>
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "distsync/error.h"
#include "distsync/log.h"
#include "zpatch_int.h"

/* A new exact match replaces the current alignment only when it is longer
 * than the bytes the alignment already gets right by more than this. */
#define SWITCH_GAIN 8
/* Bytes compared by the suffix-array searches, per target byte, before the
 * candidate gives up (highly repetitive inputs): bounds the CPU. */
#define CMP_BUDGET 512
/* The same for ds__zp_bs_align, whose caller has a fallback as good as its
 * delta (literal bytes, compressed) and syncs at once: repetitive text
 * (short words, long common prefixes in the sorted suffixes) spent 4 s of
 * CPU on tools/gen-content's small update at 512. */
#define ALIGN_BUDGET 64
/* bzip2's bound for one diff part (1% + 600 bytes). */
#define BZ_CAP (DS_ZPATCH_BS_SEG_MAX + DS_ZPATCH_BS_SEG_MAX / 100 + 600)

struct ds_zp_bs {
    const uint8_t *old;
    size_t on;
    saidx_t *sa;
    uint8_t *ctrl, *diff, *extra, *bz;
    size_t nctrl, ndiff, nextra;
    uint64_t budget;
    ds_zp_align_fn align; /* ds__zp_bs_align: regions go here, not to the streams */
    void *align_ctx;
};

int ds__zp_bs_new(const uint8_t *old, size_t on, ds_zp_bs_t **out)
{
    ds_zp_bs_t *b = calloc(1, sizeof(*b));

    *out = NULL;
    if (b == NULL)
        return DS_ENOMEM;
    b->old = old;
    b->on = on;
    b->sa = malloc((on ? on : 1) * sizeof(*b->sa));
    b->ctrl = malloc(DS_ZPATCH_BS_CTRL_MAX);
    b->diff = malloc(DS_ZPATCH_BS_SEG_MAX);
    b->extra = malloc(DS_ZPATCH_BS_SEG_MAX);
    b->bz = malloc(BZ_CAP);
    if (b->sa == NULL || b->ctrl == NULL || b->diff == NULL || b->extra == NULL || b->bz == NULL ||
        (on > 0 && divsufsort(old, b->sa, (saidx_t)on) != 0)) {
        ds__zp_bs_free(b);
        return DS_ENOMEM;
    }
    *out = b;
    return 0;
}

void ds__zp_bs_free(ds_zp_bs_t *b)
{
    if (b == NULL)
        return;
    free(b->sa);
    free(b->ctrl);
    free(b->diff);
    free(b->extra);
    free(b->bz);
    free(b);
}

/* Length of the common prefix of x[0, xn) and y[0, yn), charged to the
 * CPU budget. */
static size_t common(ds_zp_bs_t *b, const uint8_t *x, size_t xn, const uint8_t *y, size_t yn)
{
    size_t n = xn < yn ? xn : yn, i = 0;

    while (i < n && x[i] == y[i])
        i++;
    b->budget -= b->budget > i + 1 ? i + 1 : b->budget;
    return i;
}

/* The longest match of q[0, qn) in the basis: its length, its offset in
 * *pos. The longest common prefix is with a neighbour of q's place in the
 * sorted suffixes. */
static size_t longest(ds_zp_bs_t *b, const uint8_t *q, size_t qn, size_t *pos)
{
    size_t lo = 0, hi = b->on, best = 0;

    *pos = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2, s = (size_t)b->sa[mid], l;

        l = common(b, b->old + s, b->on - s, q, qn);
        if (l == qn || (s + l < b->on && b->old[s + l] > q[l]))
            hi = mid; /* suffix >= q */
        else
            lo = mid + 1;
    }
    for (size_t i = lo > 0 ? lo - 1 : 0; i <= lo && i < b->on; i++) {
        size_t s = (size_t)b->sa[i], l = common(b, b->old + s, b->on - s, q, qn);

        if (l > best) {
            best = l;
            *pos = s;
        }
    }
    return best;
}

static int put_varint(ds_zp_bs_t *b, uint64_t v)
{
    do {
        if (b->nctrl == DS_ZPATCH_BS_CTRL_MAX)
            return DS_ETOOBIG;
        b->ctrl[b->nctrl++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v > 0);
    return 0;
}

/* Appends a control triple: add bytes (new - old from basis offset from),
 * then extra bytes of the target, then a seek of the basis position. */
static int emit(ds_zp_bs_t *b, const uint8_t *nw, size_t add_at, size_t from, size_t add,
                size_t extra, int64_t seek)
{
    int rc;

    if (b->align != NULL)
        return b->align(b->align_ctx, add_at, from, add, extra);
    for (size_t i = 0; i < add; i++)
        b->diff[b->ndiff + i] = (uint8_t)(nw[add_at + i] - b->old[from + i]);
    b->ndiff += add;
    memcpy(b->extra + b->nextra, nw + add_at + add, extra);
    b->nextra += extra;
    rc = put_varint(b, add);
    if (rc == 0)
        rc = put_varint(b, extra);
    if (rc == 0)
        rc = put_varint(b, seek < 0 ? ((uint64_t) - (seek + 1) << 1) | 1 : (uint64_t)seek << 1);
    return rc;
}

/* 1 when target byte i agrees with the basis under alignment off. */
static int agrees(const ds_zp_bs_t *b, const uint8_t *nw, size_t i, int64_t off)
{
    int64_t j = (int64_t)i + off;

    return j >= 0 && (uint64_t)j < b->on && b->old[j] == nw[i];
}

/* How far the alignment (lscan, lpos) extends forward before scan: the
 * length maximising 2 * agreeing - length. */
static size_t extend_fwd(const ds_zp_bs_t *b, const uint8_t *nw, size_t lscan, size_t lpos,
                         size_t scan)
{
    int64_t s = 0, best = 0;
    size_t len = 0;

    for (size_t i = 0; lscan + i < scan && lpos + i < b->on; i++) {
        s += b->old[lpos + i] == nw[lscan + i] ? 1 : -1;
        if (s > best) {
            best = s;
            len = i + 1;
        }
    }
    return len;
}

/* How far the match at (scan, pos) extends backward, not before lscan. */
static size_t extend_back(const ds_zp_bs_t *b, const uint8_t *nw, size_t lscan, size_t scan,
                          size_t pos)
{
    int64_t s = 0, best = 0;
    size_t len = 0;

    for (size_t i = 1; scan >= lscan + i && pos >= i; i++) {
        s += b->old[pos - i] == nw[scan - i] ? 1 : -1;
        if (s > best) {
            best = s;
            len = i;
        }
    }
    return len;
}

/* Where the forward and backward extensions overlap, the cut that keeps
 * the most agreeing bytes: returns how much to take off the forward one
 * (the backward one loses the rest of the overlap). */
static size_t split_overlap(const ds_zp_bs_t *b, const uint8_t *nw, size_t lscan, size_t lpos,
                            size_t lenf, size_t scan, size_t pos, size_t lenb)
{
    size_t overlap = (lscan + lenf) - (scan - lenb), cut = 0;
    int64_t s = 0, best = 0;

    for (size_t i = 0; i < overlap; i++) {
        s += b->old[lpos + lenf - overlap + i] == nw[lscan + lenf - overlap + i];
        s -= b->old[pos - lenb + i] == nw[scan - lenb + i];
        if (s > best) {
            best = s;
            cut = i + 1;
        }
    }
    return overlap - cut;
}

/* Scans from *scan (after a match of *len) to the next place where an exact
 * match beats alignment off; *pos is that match's basis offset. */
static void next_match(ds_zp_bs_t *b, const uint8_t *nw, size_t nn, int64_t off, size_t *scan,
                       size_t *len, size_t *pos, int64_t *score)
{
    size_t sc;

    *score = 0;
    *scan += *len;
    sc = *scan;
    for (; *scan < nn; (*scan)++) {
        *len = longest(b, nw + *scan, nn - *scan, pos);
        for (; sc < *scan + *len; sc++)
            *score += agrees(b, nw, sc, off);
        if ((*len > 0 && (int64_t)*len == *score) || (int64_t)*len > *score + SWITCH_GAIN ||
            b->budget == 0) /* spent: the caller gives up */
            break;
        *score -= agrees(b, nw, *scan, off);
    }
}

/* Fills ctrl, diff and extra for target nw[0, nn), comparing at most
 * per_byte bytes per target byte. Returns 0, DS_ETOOBIG (control stream
 * over its cap) or DS_ERANGE (CPU budget spent). */
static int diff_streams(ds_zp_bs_t *b, const uint8_t *nw, size_t nn, unsigned per_byte)
{
    size_t scan = 0, len = 0, pos = 0, lscan = 0, lpos = 0;
    int64_t off = 0, score;
    int rc = 0;

    b->nctrl = b->ndiff = b->nextra = 0;
    b->budget = (uint64_t)per_byte * nn + (1u << 20);
    while (rc == 0 && scan < nn) {
        next_match(b, nw, nn, off, &scan, &len, &pos, &score);
        if (b->budget == 0)
            return DS_ERANGE;
        if ((int64_t)len == score && scan != nn)
            continue; /* the current alignment goes on */
        size_t lenf = extend_fwd(b, nw, lscan, lpos, scan), lenb = 0;

        if (scan < nn)
            lenb = extend_back(b, nw, lscan, scan, pos);
        if (lscan + lenf > scan - lenb) {
            size_t drop = split_overlap(b, nw, lscan, lpos, lenf, scan, pos, lenb);

            lenb -= (lscan + lenf) - (scan - lenb) - drop;
            lenf -= drop;
        }
        int64_t seek = scan < nn ? (int64_t)(pos - lenb) - (int64_t)(lpos + lenf) : 0;

        rc = emit(b, nw, lscan, lpos, lenf, scan - lenb - (lscan + lenf), seek);
        lscan = scan - lenb;
        lpos = pos - lenb;
        off = (int64_t)pos - (int64_t)scan;
    }
    return rc;
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* Compresses src[0, n) as one frame at zout (0 bytes when n is 0). */
static int frame(ZSTD_CCtx *cctx, int level, const uint8_t *src, size_t n, uint8_t *zout,
                 size_t cap, size_t *z)
{
    size_t r;

    *z = 0;
    if (n == 0)
        return 0;
    ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
    r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, DS_ZPATCH_BS_WINDOW_LOG);
    if (!ZSTD_isError(r))
        r = ZSTD_compress2(cctx, zout, cap, src, n);
    if (ZSTD_isError(r)) {
        ds_log(DS_LOG_ERROR, "zpatch bsdiff: zstd: %s", ZSTD_getErrorName(r));
        return DS_EDELTA;
    }
    *z = r;
    return 0;
}

/* The diff part, mostly zeros with the same few differences at irregular
 * places, is often smaller under bzip2's block sorting than under zstd
 * (git's main program, level 19: 67 KB against 86 KB): both are measured,
 * the smaller is kept. Returns the codec (DS_ZPATCH_BS_ZSTD / _BZIP2). */
static int diff_part(ds_zp_bs_t *b, ZSTD_CCtx *cctx, int level, uint8_t *zout, size_t cap,
                     size_t *z)
{
    unsigned bn = BZ_CAP;
    int rc = frame(cctx, level, b->diff, b->ndiff, zout, cap, z);

    if (rc < 0 || b->ndiff == 0)
        return rc < 0 ? rc : DS_ZPATCH_BS_ZSTD;
    if (BZ2_bzBuffToBuffCompress((char *)b->bz, &bn, (char *)b->diff, (unsigned)b->ndiff, 9, 0,
                                 0) != BZ_OK ||
        bn >= *z)
        return DS_ZPATCH_BS_ZSTD;
    memcpy(zout, b->bz, bn);
    *z = bn;
    return DS_ZPATCH_BS_BZIP2;
}

size_t ds__zp_bs_longest(ds_zp_bs_t *b, const uint8_t *q, size_t qn, size_t *pos)
{
    return longest(b, q, qn, pos);
}

int ds__zp_bs_align(ds_zp_bs_t *b, const uint8_t *nw, size_t nn, ds_zp_align_fn fn, void *ctx)
{
    int rc;

    if (nn == 0 || nn > DS_ZPATCH_BS_SEG_MAX)
        return -EINVAL;
    b->align = fn;
    b->align_ctx = ctx;
    rc = diff_streams(b, nw, nn, ALIGN_BUDGET);
    b->align = NULL;
    return rc;
}

int ds__zp_bs_record(ds_zp_bs_t *b, uint64_t boff, const uint8_t *nw, size_t nn, ZSTD_CCtx *cctx,
                     int level, uint64_t limit, uint8_t *out, size_t cap, size_t *len)
{
    size_t zc = 0, ze = 0, zd = 0, h = DS_ZPATCH_BS_REC_LEN;
    int rc, codec = DS_ZPATCH_BS_ZSTD;

    if (nn == 0 || nn > DS_ZPATCH_BS_SEG_MAX || cap < h)
        return -EINVAL;
    rc = diff_streams(b, nw, nn, CMP_BUDGET);
    if (rc == 0)
        rc = frame(cctx, level, b->ctrl, b->nctrl, out + h, cap - h, &zc);
    if (rc == 0)
        rc = frame(cctx, level, b->extra, b->nextra, out + h + zc, cap - h - zc, &ze);
    if (rc == 0 && limit > 0 && h + zc + ze >= limit)
        return DS_ERANGE; /* cannot win: the diff part is the costly one */
    if (rc == 0)
        rc = codec = diff_part(b, cctx, level, out + h + zc + ze, cap - h - zc - ze, &zd);
    if (rc < 0)
        return rc;
    out[0] = DS_ZPATCH_REC_BSDIFF;
    put_be(out + 1, boff, 8);
    put_be(out + 9, b->on, 8);
    put_be(out + 17, nn, 4);
    put_be(out + 21, b->nctrl, 4);
    put_be(out + 25, zc, 4);
    put_be(out + 29, b->nextra, 4);
    put_be(out + 33, ze, 4);
    put_be(out + 37, zd, 4);
    out[41] = (uint8_t)codec;
    *len = h + zc + ze + zd;
    return 0;
}

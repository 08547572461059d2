/*
 * zpatch encoder (console side). First, chunks of the target identical to
 * chunks of the basis become COPY records (zpatch_chunks.c). The rest is cut
 * into segments of at most DS_ZPATCH_SEG_MAX bytes; each becomes one zstd
 * frame compressed with a basis range as its referenced prefix and
 * long-distance matching, so matches are found at any offset of the range.
 * A run between two copies takes as its prefix the basis between them (plus
 * a margin): an edit's context is there, and a small prefix is cheap to load
 * into the match finder. Runs with no copied neighbour (a rebuilt binary
 * shares no chunk) get the whole basis, or a window of a large one. See
 * include/distsync/zpatch.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "distsync/error.h"
#include "distsync/log.h"
#include "distsync/zpatch.h"
#include "distsync/fsutil.h"
#include "zpatch_int.h"

#define PREFIX_WIN DS_ZPATCH_WINDOW
/* Basis bytes either side of the copies around a run: MARGIN_PER times
 * the segment, within [MARGIN_MIN, MARGIN]. The prefix is indexed whole for
 * each segment, so a fixed 256 KiB cost a small edit 40 times its own size:
 * on bench/ssh's big file (256 edits of 4 KiB in 100 MiB) the quick delta
 * took 0.72 CPU-s with it and 0.46 with the proportional margin, the full
 * one (level 9) 1.80 and 0.58, and the deltas of the five real updates of
 * bench/wire --real came out the same size or smaller. */
#define MARGIN     (256u << 10)
#define MARGIN_MIN (16u << 10)
#define MARGIN_PER 2
/* Long-distance matching only over a prefix and segment larger than this:
 * zstd's own window already spans a smaller one, and the long-distance
 * table was the prefix's second indexing (same five updates: 0.1-0.3% fewer
 * bytes without it; big 0.2% more). */
#define LDM_MIN (1u << 20)
/* Bytes compared at a time when copies grow into their runs. */
#define GROW_STEP (64u << 10)
/* The whole-file zstd candidate is tried only on targets under this size.
 * What it can win over the COPY records and their runs is their framing
 * (about 40 bytes a record) and the context a run's narrow prefix misses;
 * on the five real updates of bench/wire --real it won 4.3 KB, all on
 * files under 1 MiB, and on the files over 1 MiB it cost 22 s of the 54 s
 * of console CPU for nothing (README "Delta format", CPU). */
#define WHOLE_MAX (1u << 20)
/* Scouting: when BSDIFF records will be tried too (few copies, a basis it
 * can index), the zstd candidates are first written at SCOUT_LEVEL. On a
 * rebuilt binary BSDIFF wins by far whatever their level, and their level
 * was most of the CPU (libc6's 275 rebuilt files at level 12: 0.80 s with
 * them at 12, 0.57 s scouted, the chosen deltas 0.04% apart). The best of
 * them is written again at the real level when it could still win: when
 * BSDIFF lost, or won by less than half (zstd's levels 3 to 19 cut text
 * edited every 3 KB by 30%, test_zpatch_bsdiff's test_scout) ... */
#define SCOUT_LEVEL    3
#define SCOUT_REDO_PCT 50
/* ... and when it is SCOUT_REDO_MIN bytes or more: a redo costs zstd's pass
 * over the file and its basis at the real level (3-4 ms at level 12 for
 * each of libc6's 100-300 KB gconv modules, whose deltas are 139-2,500
 * bytes) to save at most a few hundred bytes. */
#define SCOUT_REDO_MIN 1024

struct enc {
    const ds_delta_src_t *basis, *target;
    int fd, level, version;
    int copy_only;         /* DS_ZPATCH_COPY_ONLY: ZSTD records reference no basis */
    uint64_t beat;         /* the best candidate's size while another is tried (0: none) */
    const ds_zp_span_t *v; /* the copies and runs (encode_runs) */
    size_t nv;
    uint64_t v_copied;          /* target bytes v's copies cover */
    int scouted, redone, known; /* see ds_zpatch_stats_t */
    ZSTD_CCtx *cctx;
    uint8_t *seg, *zbuf, *pre;
    size_t zcap;
    uint64_t pre_off, pre_len; /* basis range held in pre */
    ds_zpatch_stats_t st;
};

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static int write_all(struct enc *e, const void *buf, size_t n)
{
    int rc = ds_write_all(e->fd, buf, n);

    if (rc == 0) /* after a failure the encoding is abandoned: no count read */
        e->st.delta_bytes += (uint64_t)n;
    return rc;
}

/* Starts hashing a source that must have the SHA-256 want (NULL: none). */
static ds_sha256_t *sha_begin(ds_sha256_t *sha, const uint8_t *want, int *rc)
{
    if (want == NULL || *rc < 0)
        return NULL;
    *rc = ds_sha256_init(sha);
    return *rc == 0 ? sha : NULL;
}

/* Ends it: DS_ECHANGED when the bytes read were not the version wanted. */
static int sha_end(ds_sha256_t *sha, const uint8_t *want, int rc)
{
    uint8_t got[DS_SHA256_LEN];

    if (sha == NULL)
        return rc;
    ds_sha256_final(sha, got);
    ds_sha256_close(sha);
    return rc == 0 && memcmp(got, want, DS_SHA256_LEN) != 0 ? DS_ECHANGED : rc;
}

/* The basis range segment [toff, toff + n) references: around the copies
 * next to its run (basis lo..hi, when near), else all of the basis or the
 * window at the segment's proportional position. */
static void pick_range(const struct enc *e, uint64_t toff, size_t n, int near, uint64_t lo,
                       uint64_t hi, uint64_t *off, uint64_t *len)
{
    uint64_t b = e->basis->size, t = e->target->size, mid, mg = (uint64_t)n * MARGIN_PER;

    if (e->copy_only) {
        *off = *len = 0;
        return;
    }
    mg = mg < MARGIN_MIN ? MARGIN_MIN : mg > MARGIN ? MARGIN : mg;
    lo = lo > mg ? lo - mg : 0;
    hi = hi + mg < b ? hi + mg : b;
    if (near && hi - lo <= PREFIX_WIN) {
        *off = lo;
        *len = hi - lo;
        return;
    }
    *off = 0;
    *len = b;
    if (b <= PREFIX_WIN)
        return;
    *len = PREFIX_WIN;
    mid = (uint64_t)((double)(toff + n / 2) * ((double)b / (double)(t ? t : 1)));
    *off = mid > PREFIX_WIN / 2 ? mid - PREFIX_WIN / 2 : 0;
    if (*off > b - PREFIX_WIN)
        *off = b - PREFIX_WIN;
}

/* Loads basis range [off, off + len) into e->pre (bytes already held are
 * moved, not read again). */
static int load_range(struct enc *e, uint64_t off, uint64_t len)
{
    uint64_t keep = 0;
    int rc = 0;

    if (off == e->pre_off && len == e->pre_len)
        return 0;
    if (e->pre_len && off >= e->pre_off && off < e->pre_off + e->pre_len) {
        keep = e->pre_off + e->pre_len - off;
        keep = keep < len ? keep : len;
        memmove(e->pre, e->pre + (off - e->pre_off), (size_t)keep);
    }
    if (keep < len)
        rc = ds__zp_read_exact(e->basis, off + keep, e->pre + keep, (size_t)(len - keep));
    e->pre_off = off;
    e->pre_len = rc == 0 ? len : 0;
    return rc;
}

static unsigned window_log(uint64_t span)
{
    unsigned wl = ZSTD_WINDOWLOG_MIN;

    while (wl < ZSTD_WINDOWLOG_MAX && (1ull << wl) < span)
        wl++;
    return wl;
}

/* Compresses e->seg[0, n) into one ZSTD record referencing basis
 * [boff, boff + blen). */
static int encode_segment(struct enc *e, size_t n, uint64_t boff, uint64_t blen)
{
    uint8_t rec[25];
    size_t z;
    int rc;

    rc = load_range(e, boff, blen);
    if (rc < 0)
        return rc;
    ZSTD_CCtx_reset(e->cctx, ZSTD_reset_session_and_parameters);
    z = ZSTD_CCtx_setParameter(e->cctx, ZSTD_c_compressionLevel, e->level);
    if (!ZSTD_isError(z))
        z = ZSTD_CCtx_setParameter(e->cctx, ZSTD_c_enableLongDistanceMatching,
                                   blen + n > LDM_MIN ? 1 : 0);
    if (!ZSTD_isError(z))
        z = ZSTD_CCtx_setParameter(e->cctx, ZSTD_c_windowLog, (int)window_log(blen + n));
    if (!ZSTD_isError(z) && blen > 0)
        z = ZSTD_CCtx_refPrefix(e->cctx, e->pre, (size_t)blen);
    if (!ZSTD_isError(z))
        z = ZSTD_compress2(e->cctx, e->zbuf, e->zcap, e->seg, n);
    if (ZSTD_isError(z)) {
        ds_log(DS_LOG_ERROR, "zpatch: zstd: %s", ZSTD_getErrorName(z));
        return DS_EDELTA;
    }
    rec[0] = 1;
    put_be(rec + 1, boff, 8);
    put_be(rec + 9, blen, 8);
    put_be(rec + 17, n, 4);
    put_be(rec + 21, z, 4);
    rc = write_all(e, rec, sizeof(rec));
    if (rc == 0)
        rc = write_all(e, e->zbuf, z);
    e->st.segments++;
    return rc;
}

/* Encodes the zstd run [toff, toff + len); near: copies next to it end /
 * start at basis offsets a and b. */
static int encode_run(struct enc *e, uint64_t toff, uint64_t len, int near, uint64_t a, uint64_t b)
{
    int rc = 0;

    while (rc == 0 && len > 0) {
        size_t n = len < DS_ZPATCH_SEG_MAX ? (size_t)len : DS_ZPATCH_SEG_MAX;
        uint64_t boff, blen;

        pick_range(e, toff, n, near, a < b ? a : b, a < b ? b : a, &boff, &blen);
        rc = ds__zp_read_exact(e->target, toff, e->seg, n);
        if (rc == 0)
            rc = encode_segment(e, n, boff, blen);
        toff += n;
        len -= n;
    }
    return rc;
}

static int write_copy(struct enc *e, uint64_t boff, uint64_t len)
{
    uint8_t rec[17];

    rec[0] = 2;
    put_be(rec + 1, boff, 8);
    put_be(rec + 9, len, 8);
    e->st.copies++;
    return write_all(e, rec, sizeof(rec));
}

static int write_header(struct enc *e, uint8_t version)
{
    uint8_t hdr[DS_ZPATCH_HDR_LEN] = {'D', 'S', 'Z', 'P', version, 0, 0, 0};

    put_be(hdr + 8, e->target->size, 8);
    return write_all(e, hdr, sizeof(hdr));
}

/* Writes one complete stream for the runs v[0, n). */
static int encode_spans(struct enc *e, const ds_zp_span_t *v, size_t n)
{
    int rc = write_header(e, 1);
    uint8_t end = 0;

    for (size_t i = 0; rc == 0 && i < n; i++) {
        int left = i > 0 && v[i - 1].copy, right = i + 1 < n && v[i + 1].copy;
        uint64_t a = left ? v[i - 1].boff + v[i - 1].len : 0, b = right ? v[i + 1].boff : a;

        if (v[i].copy) {
            rc = write_copy(e, v[i].boff, v[i].len);
            continue;
        }
        rc = encode_run(e, v[i].toff, v[i].len, left || right, left ? a : b, b);
    }
    return rc == 0 ? write_all(e, &end, 1) : rc;
}

/* How many bytes target [t, t + max) and basis [b, b + max) share from
 * their start (back: from their end, backwards), read GROW_STEP at a time. */
static int common_len(struct enc *e, uint64_t t, uint64_t b, uint64_t max, int back, uint64_t *got)
{
    uint8_t *tb = e->seg, *bb = e->seg + GROW_STEP;

    *got = 0;
    while (*got < max) {
        size_t n = max - *got < GROW_STEP ? (size_t)(max - *got) : GROW_STEP, k = 0;
        uint64_t skip = back ? max - *got - n : *got;
        int rc = ds__zp_read_exact(e->target, t + skip, tb, n);

        if (rc == 0)
            rc = ds__zp_read_exact(e->basis, b + skip, bb, n);
        if (rc < 0)
            return rc;
        while (k < n && (back ? tb[n - 1 - k] == bb[n - 1 - k] : tb[k] == bb[k]))
            k++;
        *got += k;
        if (k < n)
            break;
    }
    return 0;
}

/* Grows each copy byte by byte into the zstd runs next to it while the
 * target still matches the basis (a chunk boundary falls up to a chunk
 * short of an edit): without a basis prefix (DS_ZPATCH_COPY_ONLY) those
 * bytes would go as literals. A run may become empty (it writes nothing). */
static int grow_copies(struct enc *e, ds_zp_span_t *v, size_t n)
{
    uint64_t k, max;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (v[i].copy)
            continue;
        if (i > 0 && v[i - 1].copy) {
            uint64_t b = v[i - 1].boff + v[i - 1].len;

            max = e->basis->size - b < v[i].len ? e->basis->size - b : v[i].len;
            rc = common_len(e, v[i].toff, b, max, 0, &k);
            v[i - 1].len += rc == 0 ? k : 0;
            v[i].toff += rc == 0 ? k : 0;
            v[i].len -= rc == 0 ? k : 0;
            e->st.copied_bytes += rc == 0 ? k : 0;
        }
        if (rc == 0 && i + 1 < n && v[i + 1].copy) {
            max = v[i + 1].boff < v[i].len ? v[i + 1].boff : v[i].len;
            rc = common_len(e, v[i + 1].toff - max, v[i + 1].boff - max, max, 1, &k);
            v[i + 1].toff -= rc == 0 ? k : 0;
            v[i + 1].boff -= rc == 0 ? k : 0;
            v[i + 1].len += rc == 0 ? k : 0;
            v[i].len -= rc == 0 ? k : 0;
            e->st.copied_bytes += rc == 0 ? k : 0;
        }
    }
    return rc;
}

/* Moves the len bytes at from to to (to < from) in the output file. */
static int move_down(int fd, uint64_t to, uint64_t from, uint64_t len, uint8_t *buf, size_t cap)
{
    while (len > 0) {
        size_t n = len < cap ? (size_t)len : cap;

        if (pread(fd, buf, n, (off_t)from) != (ssize_t)n ||
            pwrite(fd, buf, n, (off_t)to) != (ssize_t)n)
            return errno ? -errno : DS_ECHANGED;
        to += n;
        from += n;
        len -= n;
    }
    return 0;
}

/* Writes one stream of BSDIFF records against the whole basis (stream
 * version 2). Returns DS_ETOOBIG / DS_ERANGE when the candidate does not
 * fit its bounds or its memory (nothing usable written), or an error. */
static int encode_bsdiff(struct enc *e)
{
    ds_zp_bs_t *bs = NULL;
    uint64_t toff = 0;
    uint8_t end = 0;
    int rc = load_range(e, 0, e->basis->size);

    if (rc == 0 && (rc = ds__zp_bs_new(e->pre, (size_t)e->basis->size, &bs)) == DS_ENOMEM) {
        ds_log(DS_LOG_WARN,
               "zpatch: no memory for the suffix array of a %llu-byte basis: "
               "BSDIFF candidate skipped",
               (unsigned long long)e->basis->size);
        return DS_ERANGE; /* the other candidates stand */
    }
    if (rc == 0)
        rc = write_header(e, 2);
    while (rc == 0 && toff < e->target->size) {
        uint64_t left = e->target->size - toff;
        size_t n = left < DS_ZPATCH_BS_SEG_MAX ? (size_t)left : DS_ZPATCH_BS_SEG_MAX, len = 0;
        uint64_t limit = 0;

        if (e->beat > 0) /* what this record may take and still win (1: nothing) */
            limit = e->beat > e->st.delta_bytes + 1 ? e->beat - e->st.delta_bytes - 1 : 1;
        rc = ds__zp_read_exact(e->target, toff, e->seg, n);
        if (rc == 0)
            rc = ds__zp_bs_record(bs, 0, e->seg, n, e->cctx, e->level, limit, e->zbuf, e->zcap,
                                  &len);
        if (rc == 0)
            rc = write_all(e, e->zbuf, len);
        e->st.bsdiff++;
        toff += n;
    }
    ds__zp_bs_free(bs);
    return rc == 0 ? write_all(e, &end, 1) : rc;
}

/* The candidate just written at start + best (e->st) against the best so
 * far (*best_st, best bytes at start): moves it down when smaller, else
 * restores the best's stats. */
static int keep_smaller(struct enc *e, off_t start, ds_zpatch_stats_t *best_st)
{
    uint64_t a = best_st->delta_bytes, b = e->st.delta_bytes;
    int rc = 0;

    if (b < a) {
        rc = move_down(e->fd, (uint64_t)start, (uint64_t)start + a, b, e->seg, DS_ZPATCH_SEG_MAX);
        *best_st = e->st;
    }
    e->st = *best_st;
    return rc;
}

/* Runs one more candidate after the best so far (at start + its size):
 * fn writes it with fresh stats, and may give up (DS_ERANGE) once it knows
 * it cannot get under e->beat; a candidate out of its bounds (DS_ETOOBIG,
 * DS_ERANGE) is dropped. Returns 1 when it is the best now, 0, or < 0. */
static int try_candidate(struct enc *e, off_t start, int (*fn)(struct enc *e))
{
    ds_zpatch_stats_t best = e->st;
    int rc, won;

    e->st = (ds_zpatch_stats_t){0};
    if (lseek(e->fd, start + (off_t)best.delta_bytes, SEEK_SET) < 0)
        return -errno;
    e->beat = best.delta_bytes;
    rc = fn(e);
    e->beat = 0;
    if (rc == DS_ETOOBIG || rc == DS_ERANGE) {
        e->st = best;
        return 0;
    }
    if (rc < 0)
        return rc;
    won = e->st.delta_bytes < best.delta_bytes;
    rc = keep_smaller(e, start, &best);
    return rc < 0 ? rc : won;
}

static int encode_whole(struct enc *e)
{
    ds_zp_span_t whole = {0, e->target->size, 0, 0};

    return encode_spans(e, &whole, e->target->size ? 1 : 0);
}

static int encode_runs(struct enc *e)
{
    e->st.copied_bytes = e->v_copied; /* a candidate starts with fresh stats */
    return encode_spans(e, e->v, e->nv);
}

/* The candidates after the COPY records and their runs (the best so far,
 * at start): zstd over the whole file, then BSDIFF records; scout: the
 * zstd ones were written at SCOUT_LEVEL, not level (see SCOUT_LEVEL). */
static int more_candidates(struct enc *e, off_t start, int scout, int level)
{
    int (*fast)(struct enc *) = encode_runs;
    uint64_t fast_bytes;
    int rc = 0;

    if (e->st.copied_bytes > 0 && e->target->size < WHOLE_MAX &&
        (rc = try_candidate(e, start, encode_whole)) > 0)
        fast = encode_whole;
    fast_bytes = e->st.delta_bytes;
    e->level = level;
    if (rc >= 0 && e->version >= 2 && e->basis->size > 0 &&
        e->basis->size <= DS_ZPATCH_BS_BASIS_MAX && e->target->size > 0)
        rc = try_candidate(e, start, encode_bsdiff);
    if (rc >= 0 && scout && fast_bytes * SCOUT_REDO_PCT / 100 < e->st.delta_bytes &&
        fast_bytes >= SCOUT_REDO_MIN) {
        e->redone = 1;
        rc = try_candidate(e, start, fast);
    }
    return rc < 0 ? rc : 0;
}

/* The copies and runs: from the sources' chunk lists (DS_ZPATCH_KNOWN_MIN)
 * when nothing is to be hashed and their copies cover half the target at
 * least, else by chunking both (hashing into b, t). Denser edits keep the
 * finer chunks: between edits 32 KiB apart the catalog's chunks find no
 * copy, and runs with no copied neighbour see a 64 MiB window each. */
static int find_spans(struct enc *e, ds_sha256_t *b, ds_sha256_t *t, ds_zp_span_t **v, size_t *n)
{
    int rc = 1;

    if (b == NULL && t == NULL && e->target->size >= DS_ZPATCH_KNOWN_MIN)
        rc = ds__zp_spans_known(e->basis, e->target, v, n, &e->st.copied_bytes);
    if (rc == 0 && e->st.copied_bytes < e->target->size / 2) {
        free(*v);
        *v = NULL;
        *n = 0;
        rc = 1;
    }
    e->known = rc == 0;
    return rc == 1 ? ds__zp_spans(e->basis, e->target, b, t, v, n, &e->st.copied_bytes) : rc;
}

/*
 * Candidates, smallest kept: COPY records for identical chunks with zstd
 * for the runs between them; unless copies cover nearly all of the file
 * (where the first is as good and far cheaper), zstd over the whole file
 * with the whole basis (a file under WHOLE_MAX), and (stream version 2, a basis of
 * at most DS_ZPATCH_BS_BASIS_MAX) BSDIFF records. Each is written after
 * the best so far; a smaller one moves down, and the rest is cut off.
 */
static int encode(struct enc *e, const uint8_t *bsha, const uint8_t *tsha)
{
    ds_zp_span_t *v = NULL;
    ds_sha256_t bs, ts, *b, *t;
    off_t start = lseek(e->fd, 0, SEEK_CUR);
    size_t n = 0;
    int rc = 0, few, scout, level = e->level;

    b = sha_begin(&bs, e->basis->verified ? NULL : bsha, &rc);
    t = sha_begin(&ts, tsha, &rc);
    if (rc == 0)
        rc = find_spans(e, b, t, &v, &n);
    rc = sha_end(b, bsha, rc);
    rc = sha_end(t, tsha, rc);
    if (rc == 0 && e->copy_only)
        rc = grow_copies(e, v, n);
    if (rc == 0 && e->copy_only && e->st.copied_bytes < e->target->size / 10 * 9 &&
        e->basis->size > 0 && e->basis->size <= DS_ZPATCH_BS_BASIS_MAX &&
        (rc = load_range(e, 0, e->basis->size)) == 0)
        rc = ds__zp_align_spans(e->pre, (size_t)e->basis->size, e->target, e->seg, &v, &n,
                                &e->st.copied_bytes);
    few = e->st.copied_bytes < e->target->size / 10 * 9 && !e->copy_only && start >= 0;
    scout = few && e->version >= 2 && e->basis->size > 0 &&
            e->basis->size <= DS_ZPATCH_BS_BASIS_MAX && e->level > SCOUT_LEVEL;
    e->v = v;
    e->nv = n;
    e->v_copied = e->st.copied_bytes;
    if (scout)
        e->level = SCOUT_LEVEL;
    e->scouted = scout;
    if (rc == 0)
        rc = encode_runs(e);
    if (rc == 0 && few)
        rc = more_candidates(e, start, scout, level);
    free(v);
    if (rc < 0 || !few)
        return rc;
    if (rc == 0 && (ftruncate(e->fd, start + (off_t)e->st.delta_bytes) < 0 ||
                    lseek(e->fd, start + (off_t)e->st.delta_bytes, SEEK_SET) < 0))
        rc = -errno;
    return rc;
}

int ds_zpatch_encode(const ds_delta_src_t *basis, const ds_delta_src_t *target, int level,
                     const uint8_t *basis_sha256, const uint8_t *target_sha256, int out_fd,
                     ds_zpatch_stats_t *st)
{
    return ds_zpatch_encode_v(basis, target, level, 1, basis_sha256, target_sha256, out_fd, st);
}

int ds_zpatch_encode_v(const ds_delta_src_t *basis, const ds_delta_src_t *target, int level,
                       int version, const uint8_t *basis_sha256, const uint8_t *target_sha256,
                       int out_fd, ds_zpatch_stats_t *st)
{
    struct enc e = {.basis = basis,
                    .target = target,
                    .fd = out_fd,
                    .version = version & ~DS_ZPATCH_COPY_ONLY,
                    .copy_only = !!(version & DS_ZPATCH_COPY_ONLY)};
    uint64_t plen = basis->size < PREFIX_WIN ? basis->size : PREFIX_WIN;
    int rc = DS_ENOMEM;

    e.level = level ? level : DS_ZPATCH_LEVEL_DEFAULT;
    if (e.level > ZSTD_maxCLevel())
        e.level = ZSTD_maxCLevel();
    if ((basis->size > DS_ZPATCH_WINDOW || target->size > DS_ZPATCH_WINDOW) &&
        e.level > DS_ZPATCH_LEVEL_BIG)
        e.level = DS_ZPATCH_LEVEL_BIG; /* bounded cost: see DS_ZPATCH_LEVEL_BIG */
    e.zcap = ZSTD_compressBound(DS_ZPATCH_SEG_MAX);
    e.cctx = ZSTD_createCCtx();
    e.seg = malloc(DS_ZPATCH_SEG_MAX);
    e.zbuf = malloc(e.zcap);
    e.pre = malloc(plen ? plen : 1);
    if (e.cctx == NULL || e.seg == NULL || e.zbuf == NULL || e.pre == NULL)
        goto out;
    rc = encode(&e, basis_sha256, target_sha256);
    if (rc == 0 && st != NULL) {
        *st = e.st;
        st->scouted = e.scouted;
        st->redone = e.redone;
        st->known = e.known;
    }
out:
    if (rc == DS_ECHANGED)
        ds_log(DS_LOG_ERROR, "zpatch: a source does not match its size or SHA-256");
    ZSTD_freeCCtx(e.cctx);
    free(e.seg);
    free(e.zbuf);
    free(e.pre);
    return rc;
}

/* --- check: apply to a ds_delta_src_t basis, hash the result --- */

static int src_get(void *ctx, uint64_t off, uint64_t len, const void **p)
{
    uint8_t *buf = malloc(len ? (size_t)len : 1);
    int rc;

    if (buf == NULL)
        return DS_ENOMEM;
    rc = ds__zp_read_exact(ctx, off, buf, (size_t)len);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *p = buf;
    return 0;
}

static void src_release(void *ctx, const void *p, uint64_t len)
{
    free((void *)p);
}

static int hash_out(void *ctx, const uint8_t *p, size_t n)
{
    ds_sha256_update(ctx, p, n);
    return 0;
}

int ds_zpatch_check(const ds_delta_src_t *basis, int delta_fd, uint64_t delta_size,
                    uint64_t target_size, const uint8_t target_sha256[DS_SHA256_LEN])
{
    ds_zpatch_basis_t b = {
        .get = src_get, .release = src_release, .ctx = (void *)basis, .size = basis->size};
    ds_zpatch_dec_t *d = NULL;
    ds_delta_src_t dsrc;
    uint8_t got[DS_SHA256_LEN], *buf = malloc(1u << 20);
    ds_sha256_t sha;
    uint64_t off = 0;
    int rc = buf ? ds_sha256_init(&sha) : DS_ENOMEM;

    if (rc < 0) {
        free(buf);
        return rc;
    }
    ds_delta_src_fd(&dsrc, delta_fd, delta_size);
    rc = ds_zpatch_dec_new(&b, hash_out, &sha, &d);
    while (rc == 0 && off < delta_size) {
        size_t n = delta_size - off < (1u << 20) ? (size_t)(delta_size - off) : (1u << 20);

        rc = ds__zp_read_exact(&dsrc, off, buf, n);
        if (rc == 0)
            rc = ds_zpatch_dec_feed(d, buf, n);
        off += n;
    }
    if (rc == 0)
        rc = ds_zpatch_dec_finish(d);
    if (rc < 0 && d != NULL)
        ds_log(DS_LOG_ERROR, "zpatch check: %s", ds_zpatch_dec_error(d));
    if (rc == 0) {
        ds_sha256_final(&sha, got);
        if (ds_zpatch_dec_target_size(d) != target_size ||
            memcmp(got, target_sha256, DS_SHA256_LEN) != 0)
            rc = DS_EHASH;
    }
    ds_zpatch_dec_free(d);
    ds_sha256_close(&sha);
    free(buf);
    return rc;
}

/* zpatch: encoder/decoder round trips (one and several segments, windows of
 * a large basis, any slicing), hostile streams refused with the right code,
 * and the receiver applying zpatch DELTA runs in a version 3 session, never
 * in a version 2 one, failing hostile ones cleanly (FILE_ERR, no tmp left). */
#include <dirent.h>
#include <fcntl.h>

#include "check.h"
#include "memsrc.h"
#include "distsync/apply.h"
#include "distsync/chunker.h"
#include "distsync/digest.h"
#include "distsync/error.h"
#include "distsync/lease.h"
#include "distsync/zpatch.h"
#include "session.h"
#include "apply_feed.h"

static char root[4096];
static uint8_t outcopy[1 << 20];
static ds_msg_t rep[64];
static int nrep;

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* A "rebuilt binary": 24 bytes of code then an 8-byte address, the new
 * build with shift bytes inserted up front and every address moved. */
static void binary(uint8_t *p, size_t n, const uint8_t *code, uint32_t shift)
{
    size_t o = 0;

    fill(p, shift < n ? shift : n, 99);
    o = shift;
    for (size_t i = 0; o + 32 <= n; i++, o += 32) {
        uint64_t a = 0x400000 + (i * 2654435761u) % 6000000 + shift;

        memcpy(p + o, code + i * 24, 24);
        memcpy(p + o + 24, &a, 8);
    }
    memset(p + o, 0, n - o);
}

/* ds_zpatch_encode_v's version for encode(). */
static int enc_version = 1;

/* Encodes target against basis into a malloc'ed buffer. */
static uint8_t *encode(const uint8_t *b, size_t bn, const uint8_t *t, size_t tn, int level,
                       size_t *zn)
{
    char path[8192];
    ds_delta_src_t bs, ts;
    struct mem bm, tm;
    ds_zpatch_stats_t st = {0};
    uint8_t *out;
    int fd;

    snprintf(path, sizeof(path), "%s/enc.zp", root);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    src_mem(&bs, &bm, b, bn);
    src_mem(&ts, &tm, t, tn);
    CHECK_INT(ds_zpatch_encode_v(&bs, &ts, level, enc_version, NULL, NULL, fd, &st), 0);
    out = malloc(st.delta_bytes + 1);
    CHECK(pread(fd, out, st.delta_bytes, 0) == (ssize_t)st.delta_bytes);
    close(fd);
    *zn = st.delta_bytes;
    return out;
}

struct sink {
    uint8_t *p;
    size_t n, cap;
};

static int sink_out(void *ctx, const uint8_t *p, size_t n)
{
    struct sink *s = ctx;

    if (n > s->cap - s->n)
        return DS_ETOOBIG;
    memcpy(s->p + s->n, p, n);
    s->n += n;
    return 0;
}

/* Decodes z against basis file bpath (pread) in step-sized slices. */
static int dec_max = 3; /* the decoder's highest stream version */

static int decode(const char *bpath, const uint8_t *z, size_t zn, size_t step, struct sink *out,
                  char *why, size_t whylen)
{
    int fd = open(bpath, O_RDONLY);
    struct stat sb;
    ds_zpatch_basis_t b;
    ds_zpatch_dec_t *d = NULL;
    int rc;

    CHECK(fd >= 0 && fstat(fd, &sb) == 0);
    ds_zpatch_basis_fd(&b, fd, (uint64_t)sb.st_size);
    CHECK_INT(ds_zpatch_dec_new(&b, sink_out, out, &d), 0);
    ds_zpatch_dec_max_version(d, dec_max);
    rc = 0;
    for (size_t o = 0; rc == 0 && o < zn; o += step)
        rc = ds_zpatch_dec_feed(d, z + o, zn - o < step ? zn - o : step);
    if (rc == 0)
        rc = ds_zpatch_dec_finish(d);
    snprintf(why, whylen, "%s", ds_zpatch_dec_error(d));
    ds_zpatch_dec_free(d);
    ds_zpatch_basis_close(&b);
    close(fd);
    return rc;
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

#define BN (1u << 20)

static uint8_t code[BN], basis[BN], target[BN + 4096], got[2 * BN];
static char bpath[8192];

static void test_roundtrip_small(void)
{
    struct sink out = {got, 0, sizeof(got)};
    char why[200];
    uint8_t *z;
    size_t zn;

    fill(code, sizeof(code), 1);
    binary(basis, BN, code, 0);
    binary(target, sizeof(target), code, 4096);
    snprintf(bpath, sizeof(bpath), "%s/basis.bin", root);
    CHECK_INT(write_file(bpath, basis, BN), 0);
    z = encode(basis, BN, target, sizeof(target), 19, &zn);
    /* every 128-byte block changed, yet the zpatch is a fraction of it */
    CHECK(zn > DS_ZPATCH_HDR_LEN && zn < sizeof(target) / 6);
    CHECK_INT(decode(bpath, z, zn, 1 << 20, &out, why, sizeof(why)), 0);
    CHECK(out.n == sizeof(target) && memcmp(got, target, out.n) == 0);
    /* any slicing: one byte at a time */
    out.n = 0;
    CHECK_INT(decode(bpath, z, zn, 1, &out, why, sizeof(why)), 0);
    CHECK(out.n == sizeof(target) && memcmp(got, target, out.n) == 0);
    free(z);
}

/* Counts a stream's records by kind; checks every range is inside bn. */
static void walk(const uint8_t *z, size_t zn, uint64_t bn, int count[3], uint64_t *maxblen)
{
    size_t o = DS_ZPATCH_HDR_LEN;

    memset(count, 0, 3 * sizeof(int));
    *maxblen = 0;
    while (o < zn && z[o] != 0) {
        uint64_t a = 0, b = 0;

        for (int k = 0; k < 8; k++) {
            a = a << 8 | z[o + 1 + k];
            b = b << 8 | z[o + 9 + k];
        }
        CHECK(z[o] == 1 || z[o] == 2);
        CHECK(a + b <= bn);
        count[z[o]]++;
        if (z[o] == 2) {
            o += 17;
            continue;
        }
        *maxblen = b > *maxblen ? b : *maxblen;
        o += 25 + ((size_t)z[o + 21] << 24 | (size_t)z[o + 22] << 16 | (size_t)z[o + 23] << 8 |
                   z[o + 24]);
    }
    CHECK(o + 1 == zn && z[o] == 0);
}

/* Large files at level 1 (fast): a shifted copy with an edit becomes COPY
 * records around one small zstd run; a file sharing no chunk (a byte
 * changed every 4 KiB) becomes several segments, each with its own window
 * of the 100 MiB basis. Both rebuild exactly. */
static void test_segments_and_windows(void)
{
    size_t bn = 100u << 20, tn = 70u << 20, zn, o;
    uint8_t *b = calloc(1, bn), *t = malloc(tn), *z;
    struct sink out = {NULL, 0, tn};
    char why[200], path[8192];
    uint64_t maxblen;
    int count[3];

    out.p = malloc(tn);
    fill(b, bn, 5);
    snprintf(path, sizeof(path), "%s/big.bin", root);
    CHECK_INT(write_file(path, b, bn), 0);
    memcpy(t, b + 10, tn); /* shifted by 10 bytes */
    memcpy(t + 40000000, "an edit", 7);
    z = encode(b, bn, t, tn, 1, &zn);
    CHECK(zn < 100000);
    walk(z, zn, bn, count, &maxblen);
    CHECK(count[2] >= 2 && count[1] >= 1 && maxblen <= (1u << 20));
    CHECK_INT(decode(path, z, zn, 3u << 20, &out, why, sizeof(why)), 0);
    CHECK(out.n == tn && memcmp(out.p, t, tn) == 0);
    free(z);
    for (o = 0; o < tn; o += 4096)
        t[o] ^= 0x5a;
    z = encode(b, bn, t, tn, 1, &zn);
    CHECK(zn < tn / 20);
    walk(z, zn, bn, count, &maxblen);
    CHECK(count[2] == 0 && count[1] == 3 && maxblen < bn);
    out.n = 0;
    CHECK_INT(decode(path, z, zn, 3u << 20, &out, why, sizeof(why)), 0);
    CHECK(out.n == tn && memcmp(out.p, t, tn) == 0);
    unlink(path);
    free(z);
    free(b);
    free(t);
    free(out.p);
}

/* Scattered edits (overwrites, an insertion, a deletion) in an 8 MiB file:
 * COPY records around small zstd runs, each with its own nearby prefix,
 * rebuilding the target exactly with few bytes. */
static void test_scattered_edits(void)
{
    size_t bn = 8u << 20, tn = bn + 1024 - 512, zn;
    uint8_t *b = malloc(bn), *t = malloc(tn), *z;
    struct sink out = {NULL, 0, tn};
    char why[200], path[8192];
    uint64_t maxblen;
    int count[3];

    out.p = malloc(tn);
    fill(b, bn, 77);
    /* t = b[0,3M) + 1 KiB new + b[3M, 6M) + b[6M + 512, 8M), with overwrites */
    memcpy(t, b, 3u << 20);
    fill(t + (3u << 20), 1024, 78);
    memcpy(t + (3u << 20) + 1024, b + (3u << 20), 3u << 20);
    memcpy(t + (6u << 20) + 1024, b + (6u << 20) + 512, bn - (6u << 20) - 512);
    fill(t + 100000, 4096, 79);
    fill(t + 5000000, 4096, 80);
    snprintf(path, sizeof(path), "%s/edits.bin", root);
    CHECK_INT(write_file(path, b, bn), 0);
    z = encode(b, bn, t, tn, 3, &zn);
    walk(z, zn, bn, count, &maxblen);
    CHECK(count[2] >= 4 && count[1] >= 4 && maxblen < (2u << 20));
    CHECK(zn < 9216 + 1024 + 2000);
    CHECK_INT(decode(path, z, zn, 7777, &out, why, sizeof(why)), 0);
    CHECK(out.n == tn && memcmp(out.p, t, tn) == 0);
    free(z);
    /* DS_ZPATCH_COPY_ONLY (even with version 2): copies grown to the edits'
     * bytes (the deletion leaves no run), zstd runs referencing no basis, no
     * BSDIFF record (walk checks the kinds); no bigger than with prefixes */
    enc_version = 2 | DS_ZPATCH_COPY_ONLY;
    z = encode(b, bn, t, tn, 3, &zn);
    enc_version = 1;
    walk(z, zn, bn, count, &maxblen);
    CHECK(count[2] >= 4 && count[1] == 3 && maxblen == 0);
    CHECK(zn < 9216 + 1024 + 2000);
    out.n = 0;
    CHECK_INT(decode(path, z, zn, 7777, &out, why, sizeof(why)), 0);
    CHECK(out.n == tn && memcmp(out.p, t, tn) == 0);
    unlink(path);
    free(z);
    free(b);
    free(t);
    free(out.p);
}

/* DS_ZPATCH_COPY_ONLY on a rebuilt binary (zpatch_align.c): 7 bytes
 * inserted up front and a 4-byte address moved every 3000 bytes leave no
 * content-defined chunk intact, yet the stretches between the addresses
 * become COPY records; 64 KiB of new content in the middle stays literal.
 * Before: every byte went literal (zstd finds nothing in this data). */
static void test_copy_only_aligned(void)
{
    size_t bn = 512u << 10, tn = bn + 7 + (64u << 10), zn, o;
    uint8_t *b = malloc(bn), *t = malloc(tn), *z;
    struct sink out = {NULL, 0, tn};
    char why[200], path[8192];
    uint64_t maxblen;
    int count[3];

    out.p = malloc(tn);
    fill(b, bn, 5);
    memcpy(t, b, 1000);
    fill(t + 1000, 7, 6);
    memcpy(t + 1007, b + 1000, 200000);
    fill(t + 201007, 64u << 10, 7);
    memcpy(t + 201007 + (64u << 10), b + 201000, bn - 201000);
    for (o = 3000; o + 4 <= tn; o += 3000)
        if (o < 201007 || o >= 201007 + (64u << 10))
            t[o] ^= 0x40, t[o + 2] ^= 0x01;
    snprintf(path, sizeof(path), "%s/aligned.bin", root);
    CHECK_INT(write_file(path, b, bn), 0);
    enc_version = 1 | DS_ZPATCH_COPY_ONLY;
    z = encode(b, bn, t, tn, 3, &zn);
    enc_version = 1;
    walk(z, zn, bn, count, &maxblen);
    CHECK(count[2] >= 100 && maxblen == 0);
    CHECK(zn < (64u << 10) + 16384); /* the new content, the records, the moved bytes */
    CHECK_INT(decode(path, z, zn, 4096, &out, why, sizeof(why)), 0);
    CHECK(out.n == tn && memcmp(out.p, t, tn) == 0);
    unlink(path);
    free(z);
    free(b);
    free(t);
    free(out.p);
}

/* Hostile streams: each refused with its code and a reason, no crash. */
static void test_hostile(void)
{
    struct sink out = {got, 0, sizeof(got)};
    uint8_t *z, *h;
    size_t zn;
    char why[200];
    uint8_t zero_fcs[64];
    size_t fz;
    ZSTD_CCtx *cc = ZSTD_createCCtx();

    z = encode(basis, BN, target, sizeof(target), 3, &zn);
    h = malloc(zn + 64);
#define TRY(expect_rc)                                                                             \
    do {                                                                                           \
        out.n = 0;                                                                                 \
        CHECK_INT(decode(bpath, h, hn, 4096, &out, why, sizeof(why)), expect_rc);                  \
        CHECK(why[0] != '\0');                                                                     \
        if (getenv("ZP_DEBUG"))                                                                    \
            fprintf(stderr, "%s\n", why);                                                          \
    } while (0)
    size_t hn = zn;

    /* prefix range past the end of the basis */
    memcpy(h, z, zn);
    put_be(h + DS_ZPATCH_HDR_LEN + 1, BN - 10, 8);
    TRY(DS_ERANGE);
    /* a prefix cut short: the frame's matches reach before it */
    memcpy(h, z, zn);
    put_be(h + DS_ZPATCH_HDR_LEN + 1, BN / 2, 8);
    put_be(h + DS_ZPATCH_HDR_LEN + 9, BN / 2, 8);
    TRY(DS_ECORRUPT);
    /* declared target size smaller than what the frame makes */
    memcpy(h, z, zn);
    put_be(h + 8, 1000, 8);
    TRY(DS_ETOOBIG);
    /* raw length that does not match the frame's content size */
    memcpy(h, z, zn);
    put_be(h + DS_ZPATCH_HDR_LEN + 17, 1000, 4);
    TRY(DS_ECORRUPT);
    /* raw length over one segment */
    memcpy(h, z, zn);
    put_be(h + DS_ZPATCH_HDR_LEN + 17, DS_ZPATCH_SEG_MAX + 1, 4);
    TRY(DS_EDELTA);
    /* bad magic, unknown record kind */
    memcpy(h, z, zn);
    h[0] = 'X';
    TRY(DS_EDELTA);
    memcpy(h, z, zn);
    h[DS_ZPATCH_HDR_LEN] = 7;
    TRY(DS_EDELTA);
    /* truncated, and bytes after END */
    memcpy(h, z, zn);
    hn = zn - 1;
    TRY(DS_EDELTA);
    hn = zn - 100; /* inside the frame */
    TRY(DS_EDELTA);
    memcpy(h, z, zn);
    h[zn] = 0;
    hn = zn + 1;
    TRY(DS_EDELTA);
    /* COPY outside the basis */
    memcpy(h, z, DS_ZPATCH_HDR_LEN);
    h[DS_ZPATCH_HDR_LEN] = 2;
    put_be(h + DS_ZPATCH_HDR_LEN + 1, BN - 5, 8);
    put_be(h + DS_ZPATCH_HDR_LEN + 9, 10, 8);
    hn = DS_ZPATCH_HDR_LEN + 17;
    TRY(DS_ERANGE);
    /* COPY records (an empty one, then one from the basis), then END:
     * the decoder must stay in step after a COPY (found by fuzz_zpatch) */
    put_be(h + 8, 3000, 8);
    put_be(h + DS_ZPATCH_HDR_LEN + 1, 0, 8);
    put_be(h + DS_ZPATCH_HDR_LEN + 9, 0, 8);
    h[DS_ZPATCH_HDR_LEN + 17] = 2;
    put_be(h + DS_ZPATCH_HDR_LEN + 18, 100, 8);
    put_be(h + DS_ZPATCH_HDR_LEN + 26, 3000, 8);
    h[DS_ZPATCH_HDR_LEN + 34] = 0;
    hn = DS_ZPATCH_HDR_LEN + 35;
    out.n = 0;
    CHECK_INT(decode(bpath, h, hn, 5, &out, why, sizeof(why)), 0);
    CHECK(out.n == 3000 && memcmp(got, basis + 100, 3000) == 0);
    /* a frame that does not declare its content size (unbounded window) */
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
    {
        ZSTD_outBuffer ob = {zero_fcs, sizeof(zero_fcs), 0};
        ZSTD_inBuffer ib = {"abcdefgh", 8, 0};

        CHECK(!ZSTD_isError(ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_end)));
        fz = ob.pos;
    }
    memcpy(h, z, DS_ZPATCH_HDR_LEN);
    put_be(h + 8, 8, 8);
    h[DS_ZPATCH_HDR_LEN] = 1;
    put_be(h + DS_ZPATCH_HDR_LEN + 1, 0, 8);
    put_be(h + DS_ZPATCH_HDR_LEN + 9, 0, 8);
    put_be(h + DS_ZPATCH_HDR_LEN + 17, 8, 4);
    put_be(h + DS_ZPATCH_HDR_LEN + 21, fz, 4);
    memcpy(h + DS_ZPATCH_HDR_LEN + 25, zero_fcs, fz);
    h[DS_ZPATCH_HDR_LEN + 25 + fz] = 0;
    hn = DS_ZPATCH_HDR_LEN + 26 + fz;
    TRY(DS_ECORRUPT);
#undef TRY
    ZSTD_freeCCtx(cc);
    free(h);
    free(z);
}

/* ---- through the receiver ---- */

static int feed(ds_apply_t *ap, struct sess *s)
{
    size_t total;
    long rc = s_feed(ap, s, SIZE_MAX, outcopy, sizeof(outcopy), &total);

    nrep = s_replies(outcopy, total, rep, 64);
    return rc < 0 ? (int)rc : 0;
}

static int64_t clock_fn(void *ctx)
{
    return 1700000000;
}

static ds_apply_t *ready(struct sess *s, unsigned max_version)
{
    ds_apply_opts_t o = {.now = clock_fn, .no_fsync = 1, .max_version = max_version};
    ds_apply_t *ap = NULL;
    char err[256];
    uint32_t h;

    CHECK_INT(ds_apply_new(root, &o, &ap, err, sizeof(err)), 0);
    h = s_hello(s, "c1");
    s_lease(s, DS_LEASE_OP_ACQUIRE, "c1", 600);
    CHECK_INT(feed(ap, s), 0);
    CHECK(s_find(rep, nrep, h) && s_find(rep, nrep, h)->u.hello_ok.version ==
                                      (max_version ? max_version : DS_PROTO_VERSION_MAX));
    return ap;
}

static int tmp_count(void)
{
    char path[8192];
    DIR *d;
    struct dirent *de;
    int n = 0;

    snprintf(path, sizeof(path), "%s/.distsync/tmp", root);
    d = opendir(path);
    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Sends z as a DELTA run of file fid in three frames; returns the commit's reply. */
static const ds_msg_t *send_zpatch(ds_apply_t *ap, struct sess *s, uint32_t fid, const uint8_t *z,
                                   size_t zn, const uint8_t *sha)
{
    uint32_t c;

    s_begin(s, fid, "new.bin", sizeof(target));
    s_data(s, fid, "basis.bin", z, zn / 3, 0);
    s_data(s, fid, "basis.bin", z + zn / 3, zn / 3, 1);
    s_data(s, fid, "basis.bin", z + 2 * (zn / 3), zn - 2 * (zn / 3), 0);
    s_file(s, DS_MSG_DELTA_END, fid);
    c = s_commit(s, fid, sizeof(target), sha);
    CHECK_INT(feed(ap, s), 0);
    return s_find(rep, nrep, c);
}

static void test_receiver(void)
{
    struct sess s = {0};
    ds_apply_t *ap;
    uint8_t sha[DS_SHA256_LEN], *z;
    const ds_msg_t *r;
    char path[8192];
    struct stat st;
    size_t zn;

    CHECK_INT(ds_sha256(target, sizeof(target), sha), 0);
    z = encode(basis, BN, target, sizeof(target), 19, &zn);
    /* version 3: applied, verified, published */
    ap = ready(&s, 0);
    r = send_zpatch(ap, &s, 1, z, zn, sha);
    CHECK(r && r->type == DS_MSG_FILE_OK);
    snprintf(path, sizeof(path), "%s/new.bin", root);
    CHECK(stat(path, &st) == 0 && (size_t)st.st_size == sizeof(target));
    CHECK_INT(ds_apply_stats(ap)->bytes_delta, zn);
    /* hostile: a prefix outside the basis fails the file, not the session */
    unlink(path);
    put_be(z + DS_ZPATCH_HDR_LEN + 1, BN, 8);
    r = send_zpatch(ap, &s, 2, z, zn, sha);
    CHECK(r && r->type == DS_MSG_FILE_ERR && r->u.err.code == DS_ERANGE);
    CHECK(nrep == 2 && rep[0].type == DS_MSG_FILE_ERR); /* early FILE_ERR, then the final one */
    CHECK(stat(path, &st) < 0);
    CHECK_INT(tmp_count(), 0);
    ds_apply_free(ap);
    /* version 2: a zpatch is not a librsync delta; refused cleanly */
    put_be(z + DS_ZPATCH_HDR_LEN + 1, 0, 8);
    ap = ready(&s, 2);
    r = send_zpatch(ap, &s, 3, z, zn, sha);
    CHECK(r && r->type == DS_MSG_FILE_ERR && r->u.err.code == DS_EDELTA);
    CHECK(stat(path, &st) < 0);
    CHECK_INT(tmp_count(), 0);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
    free(z);
}

/* The console-side check catches a stream that does not rebuild the target. */
/* Stream version 3 (protocol 6): a version 1 and a version 2 stream (ZSTD,
 * COPY and BSDIFF records) rewritten in compact framing decode to the same
 * bytes, smaller; a version 2 decoder refuses it; hostile widths, a frame
 * with its magic (not magicless) and a truncated stream are refused. */
static void test_compact(void)
{
    struct sink out = {got, 0, sizeof(got)};
    char why[200];
    uint8_t *z, *c, cs[32];
    size_t zn, cn = 0;

    for (int v = 1; v <= 2; v++) {
        /* v1: an edit in place (COPY records around ZSTD); v2: BSDIFF */
        memcpy(target, basis, BN);
        memcpy(target + BN / 3, "an edit in place", 16);
        if (v == 2)
            binary(target, sizeof(target), code, 4096); /* every block moved */
        enc_version = v;
        z = encode(basis, BN, target, v == 1 ? BN : sizeof(target), 19, &zn);
        c = malloc(zn + 64);
        CHECK_INT(ds_zpatch_compact(z, zn, c, zn + 64, &cn), 0);
        CHECK(cn < zn && c[4] == 3);
        CHECK(c[6 + c[5]] == (v == 1 ? 2 : DS_ZPATCH_REC_BSDIFF)); /* the first record */
        out.n = 0;
        CHECK_INT(decode(bpath, c, cn, 1, &out, why, sizeof(why)), 0);
        CHECK(out.n == (v == 1 ? BN : sizeof(target)) && memcmp(got, target, out.n) == 0);
        dec_max = 2;
        CHECK_INT(decode(bpath, c, cn, 4096, &out, why, sizeof(why)), DS_EDELTA);
        dec_max = 3;
        if (v == 1) {
            size_t o = 6 + c[5]; /* the first record */

            CHECK(c[o] == 1 || c[o] == 2);
            c[o + 1] = 0x9f; /* a 9-byte offset */
            CHECK_INT(decode(bpath, c, cn, 4096, &out, why, sizeof(why)), DS_EDELTA);
            CHECK_INT(ds_zpatch_compact(z, zn, c, zn + 64, &cn), 0);
            CHECK_INT(decode(bpath, c, cn - 1, 4096, &out, why, sizeof(why)), DS_EDELTA);
            /* not a stream: nothing rewritten; too small an output */
            CHECK_INT(ds_zpatch_compact(z + 1, zn - 1, c, zn + 64, &cn), DS_EDELTA);
            CHECK_INT(ds_zpatch_compact(z, zn - 1, c, zn + 64, &cn), DS_EDELTA);
            CHECK_INT(ds_zpatch_compact(z, zn, c, 8, &cn), DS_ETOOBIG);
        }
        free(z);
        free(c);
    }
    enc_version = 1;
    /* a ZSTD record whose frame keeps its magic: refused as a bad header */
    {
        ZSTD_CCtx *cc = ZSTD_createCCtx();
        uint8_t h[256] = {'D', 'S', 'Z', 'P', 3, 1, 5, 1, 0x00, 0x11}, f[128];
        size_t fz = ZSTD_compressCCtx(cc, f, sizeof(f), "hello", 5, 3);

        CHECK(!ZSTD_isError(fz) && fz < 128);
        h[10] = 5;
        h[11] = (uint8_t)fz;
        memcpy(h + 12, f, fz);
        h[12 + fz] = 0;
        CHECK(decode(bpath, h, 13 + fz, 4096, &out, why, sizeof(why)) < 0);
        /* the same frame without its magic: "hello" */
        h[11] = (uint8_t)(fz - 4);
        memcpy(h + 12, f + 4, fz - 4);
        h[12 + fz - 4] = 0;
        out.n = 0;
        CHECK_INT(decode(bpath, h, 13 + fz - 4, 1, &out, why, sizeof(why)), 0);
        CHECK(out.n == 5 && memcmp(got, "hello", 5) == 0);
        ZSTD_freeCCtx(cc);
    }
    /* a whole-basis copy stream */
    CHECK_INT(ds_zpatch_copy_stream(BN, cs, sizeof(cs), &cn), 0);
    CHECK(cn < 16);
    out.n = 0;
    CHECK_INT(decode(bpath, cs, cn, 1, &out, why, sizeof(why)), 0);
    CHECK(out.n == BN && memcmp(got, basis, BN) == 0);
    CHECK_INT(ds_zpatch_copy_stream(BN, cs, 4, &cn), DS_ETOOBIG);
}

static void test_check(void)
{
    char path[8192];
    ds_delta_src_t bs;
    struct mem bm;
    uint8_t sha[DS_SHA256_LEN], *z;
    size_t zn;
    int fd;

    z = encode(basis, BN, target, sizeof(target), 3, &zn);
    snprintf(path, sizeof(path), "%s/check.zp", root);
    CHECK_INT(write_file(path, z, zn), 0);
    fd = open(path, O_RDONLY);
    src_mem(&bs, &bm, basis, BN);
    CHECK_INT(ds_sha256(target, sizeof(target), sha), 0);
    CHECK_INT(ds_zpatch_check(&bs, fd, zn, sizeof(target), sha), 0);
    sha[0] ^= 1;
    CHECK_INT(ds_zpatch_check(&bs, fd, zn, sizeof(target), sha), DS_EHASH);
    close(fd);
    free(z);
}

/* Encodes t (tn bytes: b with one byte in every KiB changed past its first
 * 64 KiB) against b at stream version v; st filled. */
static void cutoff_case(const uint8_t *b, uint8_t *t, size_t tn, int v, ds_zpatch_stats_t *st)
{
    char path[8192];
    ds_delta_src_t bs, ts;
    struct mem bm, tm;
    int fd;

    memcpy(t, b, tn);
    for (size_t o = 64u << 10; o < tn; o += 1024)
        t[o] ^= 0x5a;
    snprintf(path, sizeof(path), "%s/cutoff.zp", root);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    src_mem(&bs, &bm, b, tn);
    src_mem(&ts, &tm, t, tn);
    *st = (ds_zpatch_stats_t){0};
    CHECK_INT(ds_zpatch_encode_v(&bs, &ts, 3, v, NULL, NULL, fd, st), 0);
    close(fd);
    unlink(path);
}

/* The whole-file zstd candidate (the whole basis as its prefix) is tried
 * only on targets under WHOLE_MAX, 1 MiB (faa2686: console CPU; bench
 * only until this test). Edits every KiB leave one COPY record (the first
 * 64 KiB) and runs whose narrow prefix misses their basis bytes: under
 * 1 MiB the whole candidate wins (no COPY record, a few KB), from 1 MiB
 * on the COPY records and runs are kept (hundreds of KB) at version 1,
 * and at version 2 the BSDIFF candidate makes it small again. */
static void test_whole_cutoff(void)
{
    size_t n = (1u << 20) + (64u << 10);
    uint8_t *b = malloc(n), *t = malloc(n);
    ds_zpatch_stats_t st;

    fill(b, n, 4242);
    cutoff_case(b, t, (1u << 20) - 4096, 1, &st);
    CHECK_INT(st.copies, 0);
    CHECK(st.delta_bytes < (16u << 10));
    cutoff_case(b, t, 1u << 20, 1, &st);
    CHECK(st.copies >= 1);
    CHECK(st.delta_bytes > (256u << 10));
    cutoff_case(b, t, n, 1, &st);
    CHECK(st.copies >= 1);
    cutoff_case(b, t, n, 2, &st);
    CHECK(st.delta_bytes < (16u << 10));
    free(b);
    free(t);
}

/* Counts the bytes read through it from an inner source. */
struct counted {
    ds_delta_src_t in;
    uint64_t read;
};

static long counted_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    struct counted *c = ctx;
    long n = c->in.read(c->in.ctx, off, buf, len);

    c->read += n > 0 ? (uint64_t)n : 0;
    return n;
}

/* The SHA-256 the encoder is given for the basis is checked in the pass
 * that indexes it, not in a pass of its own (a 4 MiB basis with one edit is
 * read about twice: indexed, then compared where chunks match); a verified
 * source (a retained version) is not hashed; a target is checked when the
 * encoder is given its SHA-256. */
static void test_source_checks(void)
{
    size_t n = 4u << 20;
    uint8_t *b = malloc(n), *t = malloc(n), bsha[DS_SHA256_LEN], tsha[DS_SHA256_LEN];
    struct mem bm, tm;
    struct counted cb;
    ds_delta_src_t bs, ts;
    char path[8192];
    int fd;

    CHECK(b != NULL && t != NULL);
    fill(b, n, 5);
    memcpy(t, b, n);
    fill(t + n / 2, 4096, 6);
    CHECK_INT(ds_sha256(b, n, bsha), 0);
    CHECK_INT(ds_sha256(t, n, tsha), 0);
    snprintf(path, sizeof(path), "%s/checks.zp", root);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    src_mem(&cb.in, &bm, b, n);
    bs = (ds_delta_src_t){.read = counted_read, .ctx = &cb, .size = n};
    src_mem(&ts, &tm, t, n);
    cb.read = 0;
    CHECK_INT(ds_zpatch_encode_v(&bs, &ts, 3, 1, bsha, tsha, fd, NULL), 0);
    CHECK(cb.read >= 2 * (uint64_t)n - (256u << 10) && cb.read < 2 * (uint64_t)n + (1u << 20));
    bsha[0] ^= 1;
    CHECK_INT(ftruncate(fd, 0), 0);
    CHECK_INT(lseek(fd, 0, SEEK_SET), 0);
    CHECK_INT(ds_zpatch_encode_v(&bs, &ts, 3, 1, bsha, tsha, fd, NULL), DS_ECHANGED);
    bs.verified = 1; /* trusted as the version it stands for */
    CHECK_INT(lseek(fd, 0, SEEK_SET), 0);
    CHECK_INT(ds_zpatch_encode_v(&bs, &ts, 3, 1, bsha, tsha, fd, NULL), 0);
    bsha[0] ^= 1;
    tsha[0] ^= 1;
    CHECK_INT(lseek(fd, 0, SEEK_SET), 0);
    CHECK_INT(ds_zpatch_encode_v(&bs, &ts, 3, 1, bsha, tsha, fd, NULL), DS_ECHANGED);
    close(fd);
    free(b);
    free(t);
}

/* p[0, n)'s chunk list as the catalog cuts it (default parameters). */
static uint8_t *chunk_list(const uint8_t *p, size_t n, size_t *nrec)
{
    ds_chunker_params_t prm = {DS_CHUNK_MIN_DEFAULT, DS_CHUNK_AVG_DEFAULT, DS_CHUNK_MAX_DEFAULT};
    uint8_t *v = malloc(n / DS_CHUNK_MIN_DEFAULT * 20 + 40);
    size_t pos = 0, start = 0;
    ds_chunker_t ck;
    int cut;

    CHECK(v != NULL);
    CHECK_INT(ds_chunker_init(&ck, &prm), 0);
    *nrec = 0;
    while (pos < n) {
        pos += ds_chunker_next(&ck, p + pos, n - pos, &cut);
        if (!cut && pos < n)
            continue;
        ds_xxh128(p + start, pos - start, v + *nrec * 20);
        for (int k = 0; k < 4; k++)
            v[*nrec * 20 + 16 + k] = (uint8_t)((pos - start) >> (8 * k));
        (*nrec)++;
        start = pos;
    }
    return v;
}

/* Encodes against counted sources carrying lists; returns the stats. */
static ds_zpatch_stats_t enc_known(struct counted *cb, struct counted *ct, const uint8_t *tsha,
                                   int fd)
{
    ds_delta_src_t bs = {.read = counted_read,
                         .ctx = cb,
                         .size = cb->in.size,
                         .chunks = cb->in.chunks,
                         .nchunks = cb->in.nchunks};
    ds_delta_src_t ts = {.read = counted_read,
                         .ctx = ct,
                         .size = ct->in.size,
                         .chunks = ct->in.chunks,
                         .nchunks = ct->in.nchunks};
    ds_zpatch_stats_t st = {0};

    cb->read = ct->read = 0;
    CHECK_INT(ftruncate(fd, 0), 0);
    CHECK_INT(lseek(fd, 0, SEEK_SET), 0);
    CHECK_INT(ds_zpatch_encode_v(&bs, &ts, 3, 1, NULL, tsha, fd, &st), 0);
    return st;
}

/* A large target whose sources carry the catalog's chunk lists: its copies
 * come from the lists, so neither source is chunked (a fraction of each is
 * read), and the delta is right. Lists that do not add up to their
 * source, edits too dense for the lists' chunks, or a target SHA-256 to
 * check: both are chunked. A stale list is trusted, and the delta check
 * catches what it got wrong. */
static void test_known_lists(void)
{
    size_t n = DS_ZPATCH_KNOWN_MIN + (8u << 20), nb, nt, nt0;
    uint8_t *b = malloc(n), *t = malloc(n), tsha[DS_SHA256_LEN], *lb, *lt;
    struct mem bm, tm, cm;
    struct counted cb, ct;
    ds_zpatch_stats_t st;
    ds_delta_src_t check;
    char path[8192];
    int fd;

    CHECK(b != NULL && t != NULL);
    fill(b, n, 21);
    memcpy(t, b, n);
    for (size_t i = 0; i < 64; i++)
        fill(t + (i * 2654435761u) % (n - 4096), 4096, (uint32_t)(100 + i));
    CHECK_INT(ds_sha256(t, n, tsha), 0);
    lb = chunk_list(b, n, &nb);
    lt = chunk_list(t, n, &nt);
    snprintf(path, sizeof(path), "%s/known.zp", root);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    src_mem(&cb.in, &bm, b, n);
    src_mem(&ct.in, &tm, t, n);
    src_mem(&check, &cm, b, n);
    cb.in.chunks = lb;
    cb.in.nchunks = nb;
    ct.in.chunks = lt;
    ct.in.nchunks = nt;
    st = enc_known(&cb, &ct, NULL, fd);
    CHECK_INT(st.known, 1);
    CHECK(cb.read < n && ct.read < n / 2); /* chunking reads each whole, the basis twice */
    CHECK(st.delta_bytes < 64 * 4096 * 3 / 2);
    CHECK_INT(ds_zpatch_check(&check, fd, st.delta_bytes, n, tsha), 0);
    nt0 = nt;
    ct.in.nchunks = nt - 1; /* short of the target's size */
    st = enc_known(&cb, &ct, NULL, fd);
    CHECK_INT(st.known, 0);
    CHECK(ct.read >= n);
    CHECK_INT(ds_zpatch_check(&check, fd, st.delta_bytes, n, tsha), 0);
    ct.in.nchunks = nt0;
    st = enc_known(&cb, &ct, tsha, fd); /* a SHA-256 to check: read whole */
    CHECK_INT(st.known, 0);
    CHECK_INT(ds_zpatch_check(&check, fd, st.delta_bytes, n, tsha), 0);
    for (size_t o = 4096; o < n; o += 32768) /* dense: no list chunk is copied */
        t[o] ^= 0x5a;
    CHECK_INT(ds_sha256(t, n, tsha), 0);
    free(lt);
    ct.in.chunks = lt = chunk_list(t, n, &nt);
    ct.in.nchunks = nt;
    st = enc_known(&cb, &ct, NULL, fd);
    CHECK_INT(st.known, 0);
    CHECK_INT(ds_zpatch_check(&check, fd, st.delta_bytes, n, tsha), 0);
    memcpy(t, b, n); /* the target back as the basis, its list stale */
    CHECK_INT(ds_sha256(t, n, tsha), 0);
    free(lt);
    ct.in.chunks = lt = chunk_list(t, n, &nt);
    ct.in.nchunks = nt;
    t[n / 3] ^= 1;
    CHECK_INT(ds_sha256(t, n, tsha), 0);
    st = enc_known(&cb, &ct, NULL, fd);
    CHECK_INT(st.known, 1);
    CHECK_INT(ds_zpatch_check(&check, fd, st.delta_bytes, n, tsha), DS_EHASH);
    close(fd);
    free(lb);
    free(lt);
    free(b);
    free(t);
}

int main(void)
{
    snprintf(root, sizeof(root), "%s", check_tmpdir("zpatch"));
    RUN(test_roundtrip_small);
    RUN(test_hostile);
    RUN(test_check);
    RUN(test_compact);
    RUN(test_receiver);
    RUN(test_scattered_edits);
    RUN(test_segments_and_windows);
    RUN(test_copy_only_aligned);
    RUN(test_whole_cutoff);
    RUN(test_source_checks);
    RUN(test_known_lists);
    return CHECK_DONE();
}

/* zpatch stream version 2 (BSDIFF records): on a rebuilt binary whose
 * addresses all moved, the BSDIFF candidate wins and is smaller than the
 * version 1 zpatch (zstd with the basis as prefix); round trips in any
 * slicing and over several records; hostile records (ranges outside the
 * basis, part lengths that lie, output past the declared size, a version 2
 * stream where only version 1 is allowed) refused with their code. */
#include <fcntl.h>

#include <bzlib.h>
#include <zstd.h>

#include "check.h"
#include "memsrc.h"
#include "distsync/error.h"
#include "distsync/zpatch.h"
#include "delta/zpatch_int.h"

static char root[4096];

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* A "rebuilt binary": 24 bytes of code then an 8-byte absolute address;
 * the new build has shift bytes inserted up front, every address moved by
 * shift, and a few code bytes changed every 64 KiB. */
static void binary(uint8_t *p, size_t n, const uint8_t *code, uint32_t shift)
{
    size_t o;

    fill(p, shift < n ? shift : n, 99);
    o = shift;
    for (size_t i = 0; o + 32 <= n; i++, o += 32) {
        uint64_t a = 0x400000 + (i * 2654435761u) % 6000000 + shift;

        memcpy(p + o, code + i % 43690 * 24, 24); /* within code[1 MiB] */
        memcpy(p + o + 24, &a, 8);
        if (shift && i % 2048 == 7)
            p[o + 3] ^= 0x21;
    }
    memset(p + o, 0, n - o);
}

/* Encodes t against b as stream version v into a malloc'ed buffer. */
static uint8_t *encode(const uint8_t *b, size_t bn, const uint8_t *t, size_t tn, int level, int v,
                       size_t *zn, ds_zpatch_stats_t *st)
{
    char path[8192];
    struct mem bm = {b}, tm = {t};
    ds_delta_src_t bs = {.read = mem_read, .ctx = &bm, .size = bn};
    ds_delta_src_t ts = {.read = mem_read, .ctx = &tm, .size = tn};
    uint8_t *out;
    int fd;

    snprintf(path, sizeof(path), "%s/enc.zp", root);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK_INT(ds_zpatch_encode_v(&bs, &ts, level, v, NULL, NULL, fd, st), 0);
    out = malloc(st->delta_bytes + 64);
    CHECK(pread(fd, out, st->delta_bytes, 0) == (ssize_t)st->delta_bytes);
    close(fd);
    *zn = st->delta_bytes;
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

/* Decodes z against basis file bpath, declared extra bytes longer than it
 * is, in step-sized slices, accepting stream versions up to maxv. */
static int decode_x(const char *bpath, uint64_t extra, const uint8_t *z, size_t zn, size_t step,
                    int maxv, struct sink *out, char *why, size_t whylen)
{
    int fd = open(bpath, O_RDONLY);
    struct stat sb;
    ds_zpatch_basis_t b;
    ds_zpatch_dec_t *d = NULL;
    int rc = 0;

    CHECK(fd >= 0 && fstat(fd, &sb) == 0);
    ds_zpatch_basis_fd(&b, fd, (uint64_t)sb.st_size + extra);
    CHECK_INT(ds_zpatch_dec_new(&b, sink_out, out, &d), 0);
    ds_zpatch_dec_max_version(d, maxv);
    out->n = 0;
    for (size_t o = 0; rc == 0 && o < zn; o += step)
        rc = ds_zpatch_dec_feed(d, z + o, zn - o < step ? zn - o : step);
    if (rc == 0)
        rc = ds_zpatch_dec_finish(d);
    snprintf(why, whylen, "%s", ds_zpatch_dec_error(d));
    if (getenv("ZP_DEBUG"))
        fprintf(stderr, "decode: %d %s\n", rc, why);
    ds_zpatch_dec_free(d);
    ds_zpatch_basis_close(&b);
    close(fd);
    return rc;
}

static int decode(const char *bpath, const uint8_t *z, size_t zn, size_t step, int maxv,
                  struct sink *out, char *why, size_t whylen)
{
    return decode_x(bpath, 0, z, zn, step, maxv, out, why, whylen);
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

#define BN (1u << 20)

static uint8_t code[BN], basis[BN], target[BN + 4096], got[2 * BN];
static char bpath[8192];

/* The rebuilt binary pair in basis and target; the basis also at bpath. */
static void rebuilt(void)
{
    fill(code, sizeof(code), 1);
    binary(basis, BN, code, 0);
    binary(target, sizeof(target), code, 4096);
    snprintf(bpath, sizeof(bpath), "%s/basis.bin", root);
    CHECK_INT(write_file(bpath, basis, BN), 0);
}

/* The rebuilt binary: version 2 keeps BSDIFF and is well below version 1
 * (which gets no BSDIFF record); both rebuild the target, in any slicing. */
static void test_beats_zstd(void)
{
    struct sink out = {got, 0, sizeof(got)};
    ds_zpatch_stats_t s1, s2;
    char why[200];
    uint8_t *z1, *z2;
    size_t n1, n2;

    rebuilt();
    z1 = encode(basis, BN, target, sizeof(target), 19, 1, &n1, &s1);
    z2 = encode(basis, BN, target, sizeof(target), 19, 2, &n2, &s2);
    printf("  rebuilt binary of %zu bytes: zpatch v1 %zu bytes, v2 (bsdiff) %zu bytes\n",
           sizeof(target), n1, n2);
    CHECK_INT(s1.bsdiff, 0);
    CHECK_INT(s2.bsdiff, 1);
    CHECK(z2[4] == 2 && z2[DS_ZPATCH_HDR_LEN] == DS_ZPATCH_REC_BSDIFF);
    CHECK(n2 * 2 < n1); /* at least twice smaller */
    CHECK_INT(decode(bpath, z2, n2, 1 << 20, 2, &out, why, sizeof(why)), 0);
    CHECK(out.n == sizeof(target) && memcmp(got, target, out.n) == 0);
    CHECK_INT(decode(bpath, z2, n2, 1, 2, &out, why, sizeof(why)), 0);
    CHECK(out.n == sizeof(target) && memcmp(got, target, out.n) == 0);
    CHECK_INT(decode(bpath, z1, n1, 4096, 1, &out, why, sizeof(why)), 0);
    CHECK(out.n == sizeof(target) && memcmp(got, target, out.n) == 0);
    /* a version 1 receiver refuses the version 2 stream cleanly */
    CHECK_INT(decode(bpath, z2, n2, 4096, 1, &out, why, sizeof(why)), DS_EDELTA);
    CHECK(strstr(why, "version") != NULL);
    free(z1);
    free(z2);
}

/* A target over one record (8 MiB): several BSDIFF records, rebuilt. */
static void test_records(void)
{
    size_t bn = 9u << 20, tn = bn + 4096, zn;
    uint8_t *b = malloc(bn), *t = malloc(tn), *z;
    struct sink out = {malloc(tn), 0, tn};
    ds_zpatch_stats_t st;
    char why[200], path[8192];

    binary(b, bn, code, 0);
    binary(t, tn, code, 4096);
    snprintf(path, sizeof(path), "%s/big.bin", root);
    CHECK_INT(write_file(path, b, bn), 0);
    z = encode(b, bn, t, tn, 1, 2, &zn, &st);
    CHECK_INT(st.bsdiff, 2);
    CHECK(zn < tn / 20);
    CHECK_INT(decode(path, z, zn, 100000, 2, &out, why, sizeof(why)), 0);
    CHECK(out.n == tn && memcmp(out.p, t, tn) == 0);
    unlink(path);
    free(z);
    free(b);
    free(t);
    free(out.p);
}

/* Data files with scattered edits: some chunks copy, the whole-file zstd
 * and BSDIFF candidates are both tried after the copies; whichever wins,
 * the stream rebuilds the target exactly (a winner moved down over a
 * loser must land at the stream's start). */
static void test_three_candidates(void)
{
    struct sink out = {got, 0, sizeof(got)};
    ds_zpatch_stats_t st;
    char why[200];
    uint8_t *z;
    size_t zn;

    for (uint32_t every = 3000; every <= 48000; every *= 4) {
        fill(basis, BN, every);
        memcpy(target, basis, BN);
        for (size_t o = 1000; o + 16 < BN; o += every)
            fill(target + o, 16, (uint32_t)o);
        CHECK_INT(write_file(bpath, basis, BN), 0);
        z = encode(basis, BN, target, BN, 3, 2, &zn, &st);
        CHECK(zn < BN / 4);
        CHECK_INT(decode(bpath, z, zn, 65536, 2, &out, why, sizeof(why)), 0);
        CHECK(out.n == BN && memcmp(got, target, BN) == 0);
        free(z);
    }
}

/* Text-like data: words from a small vocabulary (zstd's kind of input,
 * where the level matters and BSDIFF's byte-wise differences do not). */
static void words(uint8_t *p, size_t n, uint32_t seed)
{
    static const char *w[] = {"patch ", "engine ", "definition ", "server\n", "site ",
                              "ring ",  "pilot ",  "delta ",      "chunk ",   "manifest\n"};
    size_t o = 0;

    while (o < n) {
        const char *x;
        size_t k;

        seed = seed * 1103515245u + 12345u;
        x = w[(seed >> 16) % 10];
        k = strlen(x) < n - o ? strlen(x) : n - o;
        memcpy(p + o, x, k);
        o += k;
    }
}

/* Scouting (zpatch.c, SCOUT_LEVEL): with BSDIFF tried too, the zstd
 * candidates are first written at level 3. On the rebuilt binary BSDIFF
 * wins by far and they are not written again at 19; on text edited every
 * 3 KB they win, are written again at 19, and the stream is the very one
 * the level-19 encoding without BSDIFF (version 1, no scouting) writes.
 * Both rebuild their target. */
static void test_scout(void)
{
    struct sink out = {got, 0, sizeof(got)};
    ds_zpatch_stats_t s1, s2;
    char why[200];
    uint8_t *z1, *z2;
    size_t n1, n2;

    rebuilt();
    z2 = encode(basis, BN, target, sizeof(target), 19, 2, &n2, &s2);
    CHECK(s2.scouted == 1 && s2.redone == 0 && s2.bsdiff == 1);
    CHECK_INT(decode(bpath, z2, n2, 65536, 2, &out, why, sizeof(why)), 0);
    CHECK(out.n == sizeof(target) && memcmp(got, target, out.n) == 0);
    free(z2);

    words(basis, BN, 7);
    memcpy(target, basis, BN);
    for (size_t o = 500; o + 40 < BN; o += 3000)
        words(target + o, 40, (uint32_t)o);
    CHECK_INT(write_file(bpath, basis, BN), 0);
    z1 = encode(basis, BN, target, BN, 19, 1, &n1, &s1);
    z2 = encode(basis, BN, target, BN, 19, 2, &n2, &s2);
    printf("  text edited every 3 KB: level 19 %zu bytes, scouted %zu bytes (BSDIFF %s)\n", n1, n2,
           s2.bsdiff ? "won" : "lost");
    CHECK(s1.scouted == 0 && s1.redone == 0);
    CHECK(s2.scouted == 1 && s2.redone == 1 && s2.bsdiff == 0);
    CHECK(n1 == n2 && memcmp(z1, z2, n1) == 0);
    CHECK_INT(decode(bpath, z2, n2, 4096, 2, &out, why, sizeof(why)), 0);
    CHECK(out.n == BN && memcmp(got, target, BN) == 0);
    free(z1);
    free(z2);
}

/* A redone COPY-and-runs candidate (over 1 MiB: no whole-file one) that
 * beats BSDIFF: its stats are its own, copied_bytes included (the scouted
 * encoding's, and the one without BSDIFF's), and it decodes. */
static void test_scout_copies(void)
{
    struct sink out = {got, 0, sizeof(got)};
    size_t tn = sizeof(target), n1, n2;
    ds_zpatch_stats_t s1, s2;
    char why[200];
    uint8_t *z1, *z2;

    words(basis, BN, 7);
    memcpy(target, basis, BN / 2);
    words(target + BN / 2, tn - BN / 2, 11);
    CHECK_INT(write_file(bpath, basis, BN), 0);
    z1 = encode(basis, BN, target, tn, 19, 1, &n1, &s1);
    z2 = encode(basis, BN, target, tn, 19, 2, &n2, &s2);
    printf("  half copied, half new text: level 19 %zu bytes, scouted %zu bytes (BSDIFF %s, "
           "%llu bytes copied)\n",
           n1, n2, s2.bsdiff ? "won" : "lost", (unsigned long long)s2.copied_bytes);
    CHECK(s2.scouted == 1 && s2.redone == 1 && s2.bsdiff == 0);
    CHECK(n1 == n2 && memcmp(z1, z2, n1) == 0);
    CHECK(s1.copies > 0 && s2.copies == s1.copies && s2.segments == s1.segments);
    CHECK(s1.copied_bytes >= BN / 4 && s2.copied_bytes == s1.copied_bytes);
    CHECK_INT(decode(bpath, z2, n2, 4096, 2, &out, why, sizeof(why)), 0);
    CHECK(out.n == tn && memcmp(got, target, tn) == 0);
    free(z1);
    free(z2);
}

static size_t varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;

    do {
        p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v > 0);
    return n;
}

/* A hand-made version 2 stream of one BSDIFF record: triples (add, extra,
 * seek) of the control part, extra bytes, diff bytes; target_size tsz,
 * basis range [boff, boff + blen). Returns its length. */
static size_t handmade(uint8_t *h, uint64_t tsz, uint64_t boff, uint64_t blen, const int64_t *tr,
                       int ntr, const uint8_t *extra, size_t en, const uint8_t *diff, size_t dn)
{
    uint8_t ctrl[256];
    size_t cn = 0, o = DS_ZPATCH_HDR_LEN + DS_ZPATCH_BS_REC_LEN, zc, ze, zd = 0;

    for (int i = 0; i < ntr; i++) {
        cn += varint(ctrl + cn, (uint64_t)tr[3 * i]);
        cn += varint(ctrl + cn, (uint64_t)tr[3 * i + 1]);
        cn += varint(ctrl + cn, tr[3 * i + 2] < 0 ? ((uint64_t) - (tr[3 * i + 2] + 1) << 1) | 1
                                                  : (uint64_t)tr[3 * i + 2] << 1);
    }
    memcpy(h, "DSZP\2\0\0\0", 8);
    put_be(h + 8, tsz, 8);
    zc = ZSTD_compress(h + o, 4096, ctrl, cn, 1);
    ze = en ? ZSTD_compress(h + o + zc, 4096, extra, en, 1) : 0;
    if (dn)
        zd = ZSTD_compress(h + o + zc + ze, 4096, diff, dn, 1);
    h += DS_ZPATCH_HDR_LEN;
    h[0] = DS_ZPATCH_REC_BSDIFF;
    put_be(h + 1, boff, 8);
    put_be(h + 9, blen, 8);
    put_be(h + 17, en + dn, 4);
    put_be(h + 21, cn, 4);
    put_be(h + 25, zc, 4);
    put_be(h + 29, en, 4);
    put_be(h + 33, ze, 4);
    put_be(h + 37, zd, 4);
    h[41] = DS_ZPATCH_BS_ZSTD;
    h[DS_ZPATCH_BS_REC_LEN + zc + ze + zd] = 0; /* END */
    return o + zc + ze + zd + 1;
}

/* Hostile records: each refused with its code and a reason. */
static void test_hostile(void)
{
    static uint8_t h[1 << 16];
    struct sink out = {got, 0, sizeof(got)};
    uint8_t diff[100] = {0}, extra[10] = "0123456789";
    char why[200];
    size_t hn;
    const size_t r = DS_ZPATCH_HDR_LEN; /* the record */

#define TRY(expect_rc)                                                                             \
    do {                                                                                           \
        CHECK_INT(decode(bpath, h, hn, 7, 2, &out, why, sizeof(why)), expect_rc);                  \
        CHECK(why[0] != '\0');                                                                     \
    } while (0)
    /* sound: a seek to 500, 100 basis bytes, 10 extra */
    {
        int64_t tr[] = {0, 0, 500, 100, 10, 0};

        hn = handmade(h, 110, 0, BN, tr, 2, extra, 10, diff, 100);
        CHECK_INT(decode(bpath, h, hn, 3, 2, &out, why, sizeof(why)), 0);
        CHECK(out.n == 110 && memcmp(got, basis + 500, 100) == 0 &&
              memcmp(got + 100, extra, 10) == 0);
    }
    /* the basis range outside the basis */
    {
        int64_t tr[] = {100, 10, 0};

        hn = handmade(h, 110, BN - 50, 100, tr, 1, extra, 10, diff, 100);
        TRY(DS_ERANGE);
        /* add bytes past the record's basis range */
        hn = handmade(h, 110, 0, 60, tr, 1, extra, 10, diff, 100);
        TRY(DS_ERANGE);
    }
    /* a seek before the range's start, and past its end */
    {
        int64_t tr[] = {0, 0, -1, 100, 10, 0};

        hn = handmade(h, 110, 0, BN, tr, 2, extra, 10, diff, 100);
        TRY(DS_ERANGE);
        tr[2] = (int64_t)BN + 1;
        hn = handmade(h, 110, 0, BN, tr, 2, extra, 10, diff, 100);
        TRY(DS_ERANGE);
        tr[2] = INT64_MIN; /* no overflow either */
        hn = handmade(h, 110, 0, BN, tr, 2, extra, 10, diff, 100);
        TRY(DS_ERANGE);
    }
    /* triples that ask for more extra or diff bytes than the parts hold */
    {
        int64_t tr[] = {100, 11, 0};

        hn = handmade(h, 111, 0, BN, tr, 1, extra, 10, diff, 100);
        put_be(h + r + 17, 110, 4);
        TRY(DS_EDELTA);
        tr[0] = 101, tr[1] = 10;
        hn = handmade(h, 110, 0, BN, tr, 1, extra, 10, diff, 100);
        TRY(DS_EDELTA);
        tr[0] = 99; /* fewer: a diff byte left over */
        hn = handmade(h, 110, 0, BN, tr, 1, extra, 10, diff, 100);
        TRY(DS_EDELTA);
    }
    /* lengths that lie: control, extra, raw; output past the target size */
    {
        int64_t tr[] = {100, 10, 0};

        hn = handmade(h, 110, 0, BN, tr, 1, extra, 10, diff, 100);
        put_be(h + r + 21, 2, 4); /* ctrl is 3 bytes */
        TRY(DS_ETOOBIG);
        hn = handmade(h, 110, 0, BN, tr, 1, extra, 10, diff, 100);
        put_be(h + r + 21, 4, 4);
        TRY(DS_ECORRUPT);
        hn = handmade(h, 110, 0, BN, tr, 1, extra, 10, diff, 100);
        put_be(h + r + 29, 11, 4); /* extra 10, diff then 99 */
        TRY(DS_ECORRUPT);
        hn = handmade(h, 110, 0, BN, tr, 1, extra, 10, diff, 100);
        put_be(h + r + 17, DS_ZPATCH_BS_SEG_MAX + 1, 4);
        TRY(DS_EDELTA);
        hn = handmade(h, 110, 0, BN, tr, 1, extra, 10, diff, 100);
        put_be(h + r + 21, DS_ZPATCH_BS_CTRL_MAX + 1, 4);
        TRY(DS_EDELTA);
        hn = handmade(h, 100, 0, BN, tr, 1, extra, 10, diff, 100);
        TRY(DS_ETOOBIG);
        hn = handmade(h, 110, 0, BN, tr, 1, extra, 10, diff, 100);
        put_be(h + r + 37, 2, 4); /* the diff frame cut short */
        TRY(DS_ECORRUPT);
        hn = handmade(h, 110, 0, BN, tr, 1, extra, 10, diff, 100);
        hn -= 5; /* truncated stream */
        TRY(DS_EDELTA);
    }
    /* the diff part as bzip2 (diff_codec 1): sound, corrupt, lying */
    {
        int64_t tr[] = {100, 10, 0};
        char bz[1024];
        unsigned bn = sizeof(bz);
        size_t at;

        for (int i = 0; i < 100; i++)
            diff[i] = (uint8_t)(i % 7 == 3);
        CHECK_INT(BZ2_bzBuffToBuffCompress(bz, &bn, (char *)diff, 100, 9, 0, 0), BZ_OK);
        hn = handmade(h, 110, 0, BN, tr, 1, extra, 10, diff, 100);
        at = hn - 1 - (size_t)((h[r + 37] << 24 | h[r + 38] << 16 | h[r + 39] << 8 | h[r + 40]));
        memcpy(h + at, bz, bn);
        put_be(h + r + 37, bn, 4);
        h[r + 41] = DS_ZPATCH_BS_BZIP2;
        h[at + bn] = 0;
        hn = at + bn + 1;
        CHECK_INT(decode(bpath, h, hn, 5, 2, &out, why, sizeof(why)), 0);
        CHECK(out.n == 110 && got[3] == (uint8_t)(basis[3] + 1) && got[4] == basis[4]);
        h[at + bn / 2] ^= 0x55; /* corrupt */
        TRY(DS_ECORRUPT);
        h[at + bn / 2] ^= 0x55;
        put_be(h + r + 37, bn - 3, 4); /* cut short */
        h[at + bn - 3] = 0;
        hn = at + bn - 2;
        TRY(DS_ECORRUPT);
        put_be(h + r + 37, bn, 4);
        h[at + bn] = 0;
        hn = at + bn + 1;
        put_be(h + r + 17, 109, 4); /* raw 109: the diff part is then 99 */
        TRY(DS_ETOOBIG);
        put_be(h + r + 17, 110, 4);
        h[r + 41] = 2; /* unknown codec */
        TRY(DS_EDELTA);
    }
#undef TRY
}

/* The basis range of a BSDIFF record is read (pread) into memory: at most
 * DS_ZPATCH_BS_BASIS_MAX bytes of it, and a basis shorter than declared (a
 * file truncated under the receiver) fails the file, naming the range. */
static void test_basis_reads(void)
{
    static uint8_t h[1 << 16];
    struct sink out = {got, 0, sizeof(got)};
    uint8_t diff[100] = {0}, extra[10] = "0123456789";
    int64_t tr[] = {100, 10, 0};
    char why[200], big[8192], want[80];
    const uint64_t cap = DS_ZPATCH_BS_BASIS_MAX;
    size_t hn;
    int fd;

    snprintf(big, sizeof(big), "%s/big_basis", root); /* sparse: costs no disk */
    fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)cap + (8u << 20)) == 0);
    close(fd);
    hn = handmade(h, 110, 0, cap, tr, 1, extra, 10, diff, 100);
    CHECK_INT(decode(big, h, hn, 4096, 2, &out, why, sizeof(why)), 0);
    CHECK(out.n == 110 && got[0] == 0 && memcmp(got + 100, extra, 10) == 0);
    hn = handmade(h, 110, 0, cap + 1, tr, 1, extra, 10, diff, 100);
    CHECK_INT(decode(big, h, hn, 4096, 2, &out, why, sizeof(why)), DS_EDELTA);
    CHECK(strstr(why, "over") != NULL);
    hn = handmade(h, 110, cap + (8u << 20), 1000, tr, 1, extra, 10, diff, 100);
    CHECK_INT(decode_x(big, 1000, h, hn, 4096, 2, &out, why, sizeof(why)), DS_ECHANGED);
    snprintf(want, sizeof(want), "reading the basis at %llu+1000",
             (unsigned long long)(cap + (8u << 20)));
    CHECK(strstr(why, want) != NULL);
    unlink(big);
}

/* A run of DS_ZPATCH_COPY_ONLY longer than one alignment piece
 * (zpatch_align.c): the second piece starts with new bytes, whose literal
 * joins the first piece's literal tail, then runs out of its search budget
 * on repetitive content (DS_ERANGE) and goes literal as a whole. The spans
 * must still tile the target once each: the literal the piece had grown
 * before giving up is cut back too, not only the spans it had added. */
static void test_align_gives_up_after_merge(void)
{
    const size_t seg = DS_ZPATCH_BS_SEG_MAX, p = seg - 4096, r = 16u << 10, q = 256u << 10;
    const size_t on = p + r + q, nn = seg + (64u << 10), blk = 512;
    uint8_t *old = malloc(on), *nw = malloc(nn), *buf = malloc(seg), b[512];
    ds_zp_span_t *v = malloc(sizeof(*v));
    size_t n = 1, at = 0;
    uint64_t copied = 0;
    ds_delta_src_t src;
    struct mem m;

    CHECK(old != NULL && nw != NULL && buf != NULL && v != NULL);
    /* basis: P (random), R1 R2 (random), Q (a 512-byte block repeated,
     * its first byte numbering the copies) */
    fill(old, p + r, 1);
    fill(b, blk, 7);
    for (size_t i = 0; i < q; i++)
        old[p + r + i] = b[i % blk] ^ (i % blk == 0 ? (uint8_t)(i / blk) : 0);
    /* target: P and 4 KiB of new bytes (piece 1); 2 KiB of new bytes, R2,
     * R1 and Q numbered otherwise (piece 2) */
    memcpy(nw, old, p);
    fill(nw + p, 4096 + 2048, 3);
    memcpy(nw + seg + 2048, old + p + r / 2, r / 2);
    memcpy(nw + seg + 2048 + r / 2, old + p, r / 2);
    for (size_t i = 0, o = seg + 2048 + r; o < nn; i++, o++)
        nw[o] = b[i % blk] ^ (i % blk == 0 ? (uint8_t)(i / blk * 7 + 3) : 0);
    src_mem(&src, &m, nw, nn);
    v[0] = (ds_zp_span_t){.toff = 0, .len = nn, .boff = 0, .copy = 0};
    CHECK_INT(ds__zp_align_spans(old, on, &src, buf, &v, &n, &copied), 0);
    CHECK(n >= 2 && v[0].copy && v[0].len >= p - 1024);
    for (size_t i = 0; i < n; i++) {
        CHECK_INT(v[i].toff, at);
        at += v[i].len;
    }
    CHECK_INT(at, nn);
    free(v);
    free(buf);
    free(nw);
    free(old);
}

int main(void)
{
    snprintf(root, sizeof(root), "%s", check_tmpdir("zpatch_bsdiff"));
    RUN(test_beats_zstd);
    RUN(test_hostile);
    RUN(test_basis_reads);
    RUN(test_three_candidates);
    RUN(test_scout);
    RUN(test_scout_copies);
    RUN(test_records);
    RUN(test_align_gives_up_after_merge);
    return CHECK_DONE();
}

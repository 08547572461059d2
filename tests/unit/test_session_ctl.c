/* Control frames and rate sizing in the sender session, against the real
 * in-process receiver behind the "throttled" transport (throttled.h), which
 * paces the writes and logs the frames in wire order:
 *  - renewals inserted between queued frames keep the reply FIFO in wire
 *    order (every result comes out with its own tag);
 *  - a paused link lets ds_session_ctl_pending() bytes through: the
 *    renewal crosses, the data waits;
 *  - ds_session_set_rate() sizes the data frames and room();
 *  - what smaller frames cost in compression (printed, and ordered). */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "check.h"
#include "testdata.h"
#include "distsync/delta.h"
#include "distsync/error.h"
#include "distsync/session.h"
#include "throttled.h"

static char root[4096];

/* A write session on root over a throttled in-process receiver, READY. */
static ds_session_t *open_thr(uint64_t rate, size_t out_high, struct throttled **h)
{
    ds_session_opts_t so = {.console_id = "console-ctl",
                            .host = "testhost",
                            .pid = 77,
                            .write = 1,
                            .out_high = out_high};
    ds_session_t *s = thr_session(root, "local", rate, &so, h);

    if (s != NULL)
        CHECK_INT(ds_session_phase(s), DS_SESSION_READY);
    return s;
}

/* Steps with the clock at now until idle; renew: the clock moves a third of
 * the lease per step, so a renewal goes whenever the last one was answered. */
static int settle(ds_session_t *s, int64_t *now, int renew)
{
    for (int i = 0; i < 200000 && !ds_session_idle(s); i++, nap()) {
        *now += renew ? 101 : 0;
        if (ds_session_step(s, *now) < 0)
            return -1;
    }
    return ds_session_idle(s) ? 0 : -1;
}

static void finish(ds_session_t *s, struct throttled *h, int64_t now)
{
    if (s != NULL) {
        CHECK_INT(ds_session_close(s), 0);
        thr_set_rate(h, THR_UNLIMITED);
        CHECK_INT(settle(s, &now, 0), 0);
        CHECK_INT(ds_session_phase(s), DS_SESSION_DONE);
        CHECK_INT(ds_transport_close(&h->t), 0);
    }
    ds_session_free(s);
    if (h)
        ds_transport_free(&h->t);
}

static void send_file(ds_session_t *s, const char *path, const uint8_t *p, size_t n, uint64_t tag)
{
    uint8_t sum[DS_SHA256_LEN];
    uint32_t fid;

    CHECK_INT(ds_sha256(p, n, sum), 0);
    CHECK_INT(ds_session_file_begin(s, path, n, 0644, DS_PROTO_NO_MTIME, tag, &fid), 0);
    CHECK_INT(ds_session_file_data(s, fid, NULL, p, n), 0);
    CHECK_INT(ds_session_file_commit(s, fid, n, sum), 0);
}

/* LEASE renewals in the wire log. */
static size_t renewals(const struct throttled *h)
{
    size_t n = 0;

    for (size_t i = 0; i < h->nfr; i++)
        n += h->fr[i].type == DS_MSG_LEASE && h->fr[i].lease_op == DS_LEASE_OP_RENEW;
    return n;
}

/* 1 when a LEASE renewal sits on the wire between two data frames (type)
 * of fid (all of which were queued by one ds_session_file_data call). */
static int renewal_inside(const struct throttled *h, uint32_t fid, uint8_t type)
{
    int data_before = 0, lease = 0;

    for (size_t i = 0; i < h->nfr; i++) {
        const struct thr_frame *f = &h->fr[i];

        if (f->type == type && f->fid == fid) {
            if (lease)
                return 1;
            data_before = 1;
        }
        if (f->type == DS_MSG_LEASE && f->lease_op == DS_LEASE_OP_RENEW && data_before)
            lease = 1;
    }
    return 0;
}

/* A tmpfile holding p[0, n), rewound; NULL on failure. */
static FILE *mem_file(const void *p, size_t n)
{
    FILE *f = tmpfile();

    if (f != NULL && (fwrite(p, 1, n, f) != n || fflush(f) != 0)) {
        fclose(f);
        return NULL;
    }
    return f;
}

/* The librsync delta turning old into nw (n bytes each), malloc'd. */
static uint8_t *make_delta(const uint8_t *old, const uint8_t *nw, size_t n, size_t *dn)
{
    FILE *fo = mem_file(old, n), *fn = mem_file(nw, n), *fd = tmpfile();
    ds_delta_src_t bs, ts;
    uint8_t *d = NULL;
    long len;

    if (fo && fn && fd) {
        ds_delta_src_fd(&bs, fileno(fo), n);
        ds_delta_src_fd(&ts, fileno(fn), n);
        if (ds_delta_compute(&bs, &ts, NULL, fileno(fd), NULL) == 0 &&
            (len = lseek(fileno(fd), 0, SEEK_END)) > 0 && (d = malloc((size_t)len)) != NULL) {
            *dn = (size_t)len;
            if (pread(fileno(fd), d, *dn, 0) != len) {
                free(d);
                d = NULL;
            }
        }
    }
    if (fo)
        fclose(fo);
    if (fn)
        fclose(fn);
    if (fd)
        fclose(fd);
    return d;
}

/* Renewals inserted between queued frames: every request still gets its
 * own reply, in order, with its tag. */
static void test_pend_order(void)
{
    static uint8_t a[20000], b[256 << 10], b2[sizeof(b)], c[64 << 10];
    uint8_t *delta = NULL, sum[DS_SHA256_LEN];
    size_t dn = 0;
    struct throttled *h = NULL;
    ds_session_result_t r;
    ds_session_t *s;
    int64_t now = time(NULL);
    static const struct {
        int kind;
        uint64_t tag;
    } want[] = {{DS_SRES_FILE, 1},   {DS_SRES_HASH, 2}, {DS_SRES_FILE, 3},
                {DS_SRES_DELETE, 4}, {DS_SRES_HASH, 5}, {DS_SRES_FILE, 6},
                {DS_SRES_SIG, 7},    {DS_SRES_FILE, 8}, {DS_SRES_MANIFEST, 0}};
    size_t n = 0;
    uint32_t bfid = 0, fid;
    char path[4400];

    snprintf(root, sizeof(root), "%s", check_tmpdir("test_session_ctl_order"));
    fill(a, sizeof(a), 1);
    fill(b, sizeof(b), 2);
    fill(c, sizeof(c), 3);
    memcpy(b2, b, 64u << 10); /* b's next version: 64 KiB kept, 192 KiB new */
    fill(b2 + (64u << 10), sizeof(b2) - (64u << 10), 4);
    delta = make_delta(b, b2, sizeof(b), &dn);
    CHECK(delta != NULL && dn > (160u << 10)); /* a dozen DELTA frames */
    s = open_thr(512u << 10, 0, &h);
    CHECK(s != NULL);
    if (s == NULL || delta == NULL)
        goto out;
    CHECK_INT(ds_session_set_rate(s, 32u << 10), 0); /* 16 KiB frames */
    CHECK_INT(ds_session_step(s, now), 0);
    send_file(s, "patches/a.bin", a, sizeof(a), 1);
    CHECK_INT(ds_session_hash(s, "patches/a.bin", 2), 0);
    send_file(s, "patches/b.bin", b, sizeof(b), 3);
    bfid = 2;
    CHECK_INT(ds_session_delete(s, "patches/a.bin", 4), 0);
    CHECK_INT(ds_session_hash(s, "patches/b.bin", 5), 0);
    send_file(s, "patches/c.bin", c, sizeof(c), 6);
    CHECK_INT(ds_session_sig(s, "patches/c.bin", sizeof(c), 4096, 8, 7), 0);
    CHECK_INT(ds_sha256(b2, sizeof(b2), sum), 0);
    CHECK_INT(
        ds_session_file_begin(s, "patches/b.bin", sizeof(b2), 0644, DS_PROTO_NO_MTIME, 8, &fid), 0);
    CHECK_INT(ds_session_file_data(s, fid, "patches/b.bin", delta, dn), 0);
    CHECK_INT(ds_session_file_delta_end(s, fid), 0);
    CHECK_INT(ds_session_file_commit(s, fid, sizeof(b2), sum), 0);
    CHECK_INT(ds_session_commit_manifest(s), 0);
    CHECK_INT(settle(s, &now, 1), 0);
    CHECK_STR(ds_session_error(s), "");
    while (ds_session_next_result(s, &r)) {
        if (n < sizeof(want) / sizeof(want[0])) {
            CHECK_INT(r.kind, want[n].kind);
            CHECK_INT(r.tag, want[n].tag);
        }
        CHECK_INT(r.rc, 0);
        if (r.kind == DS_SRES_HASH)
            CHECK_INT(r.size, r.tag == 2 ? sizeof(a) : sizeof(b));
        if (r.kind == DS_SRES_DELETE)
            CHECK_INT(r.value, 1);
        if (r.kind == DS_SRES_SIG)
            CHECK_INT(r.len, 12 + (sizeof(c) / 4096) * 12);
        if (r.kind == DS_SRES_MANIFEST)
            CHECK_INT(r.value, 2);
        n++;
    }
    CHECK_INT(n, sizeof(want) / sizeof(want[0]));
    CHECK(renewals(h) >= 3);
    CHECK(renewal_inside(h, bfid, DS_MSG_LITERAL));
    CHECK(renewal_inside(h, fid, DS_MSG_DELTA));
    snprintf(path, sizeof(path), "%s/patches/b.bin", root);
    CHECK(file_is(path, b2, sizeof(b2)));
    snprintf(path, sizeof(path), "%s/patches/c.bin", root);
    CHECK(file_is(path, c, sizeof(c)));
out:
    free(delta);
    finish(s, h, now);
}

/* A paused link (a cap at 0) lets through only ds_session_ctl_pending()
 * bytes: the rest of the frame begun, then the renewal; the data waits. */
static void test_paused_window(void)
{
    static uint8_t d[32 << 10];
    struct throttled *h = NULL;
    ds_session_result_t r;
    ds_session_t *s;
    int64_t now = time(NULL);
    size_t p, lease_len, nfr0;
    uint64_t sent0;
    char path[4400];

    snprintf(root, sizeof(root), "%s", check_tmpdir("test_session_ctl_paused"));
    fill(d, sizeof(d), 4);
    s = open_thr(THR_UNLIMITED, 0, &h);
    CHECK(s != NULL);
    if (s == NULL)
        goto out;
    CHECK_INT(ds_session_set_rate(s, 8000), 0); /* 64 kbit/s: 4 KiB frames */
    CHECK_INT(ds_session_step(s, now), 0);
    thr_set_rate(h, 0);
    sent0 = h->sent; /* the handshake */
    nfr0 = h->nfr;
    send_file(s, "patches/d.bin", d, sizeof(d), 9);
    CHECK_INT(ds_session_ctl_pending(s), 0);
    thr_let(h, 100); /* FILE_BEGIN and the head of the first data frame */
    CHECK_INT(ds_session_step(s, now), 0);
    CHECK_INT(h->sent - sent0, 100);
    now += 101;
    CHECK_INT(ds_session_step(s, now), 0); /* queues the renewal */
    p = ds_session_ctl_pending(s);
    CHECK(p > 0 && p < 4096 + 512);
    thr_let(h, p);
    for (int i = 0; i < 100; i++, nap())
        CHECK_INT(ds_session_step(s, now), 0);
    CHECK_INT(h->sent - sent0, 100 + p);
    CHECK_INT(h->nfr - nfr0, 3); /* FILE_BEGIN, a data frame, the renewal */
    CHECK(h->fr[h->nfr - 1].type == DS_MSG_LEASE &&
          h->fr[h->nfr - 1].lease_op == DS_LEASE_OP_RENEW);
    CHECK_INT(ds_session_ctl_pending(s), 0);
    CHECK_STR(ds_session_waiting_for(s), "FILE_COMMIT"); /* the renewal was answered */
    lease_len = (size_t)(h->sent - h->fr[h->nfr - 1].at);
    now += 101;
    CHECK_INT(ds_session_step(s, now), 0); /* next renewal: at the next frame start */
    CHECK_INT(ds_session_ctl_pending(s), lease_len);
    thr_set_rate(h, THR_UNLIMITED);
    CHECK_INT(settle(s, &now, 0), 0);
    CHECK(ds_session_next_result(s, &r) && r.tag == 9 && r.rc == 0);
    CHECK_STR(ds_session_error(s), "");
    snprintf(path, sizeof(path), "%s/patches/d.bin", root);
    CHECK(file_is(path, d, sizeof(d)));
out:
    finish(s, h, now);
}

/* A cancel after a renewal was inserted ahead of the data: the offsets the
 * insertion moved (file starts, the FIFO) still tell what reached the wire:
 * x.bin, begun, is aborted; y.bin, queued only, vanishes; the renewal
 * stays and is answered. */
static void test_cancel_after_renewal(void)
{
    static uint8_t x[16 << 10], y[16 << 10];
    struct throttled *h = NULL;
    ds_session_result_t r;
    ds_session_t *s;
    int64_t now = time(NULL);
    int nres = 0;
    char path[4400];

    snprintf(root, sizeof(root), "%s", check_tmpdir("test_session_ctl_cancel"));
    fill(x, sizeof(x), 6);
    fill(y, sizeof(y), 7);
    s = open_thr(THR_UNLIMITED, 0, &h);
    CHECK(s != NULL);
    if (s == NULL)
        goto out;
    CHECK_INT(ds_session_set_rate(s, 8000), 0);
    CHECK_INT(ds_session_step(s, now), 0);
    thr_set_rate(h, 0);
    send_file(s, "patches/x.bin", x, sizeof(x), 11);
    send_file(s, "patches/y.bin", y, sizeof(y), 12);
    thr_let(h, 100); /* x's FILE_BEGIN and the head of its first frame */
    CHECK_INT(ds_session_step(s, now), 0);
    now += 101;
    CHECK_INT(ds_session_step(s, now), 0); /* the renewal, after that frame */
    CHECK_INT(ds_session_cancel_sends(s), 0);
    CHECK(ds_session_ctl_pending(s) > 0);
    thr_set_rate(h, THR_UNLIMITED);
    CHECK_INT(settle(s, &now, 0), 0);
    CHECK_STR(ds_session_error(s), "");
    while (ds_session_next_result(s, &r)) {
        nres++;
        CHECK_INT(r.tag, 11);
        CHECK_INT(r.rc, DS_EABORTED);
    }
    CHECK_INT(nres, 1);
    CHECK_INT(thr_find(h, 0, DS_MSG_FILE_COMMIT), h->nfr); /* neither commit left */
    CHECK(thr_find(h, 0, DS_MSG_LEASE) < h->nfr);
    now += 101;
    CHECK_INT(ds_session_step(s, now), 0);
    CHECK_INT(settle(s, &now, 0), 0);
    CHECK_INT(renewals(h), 2); /* renewing still: the first one was answered */
    snprintf(path, sizeof(path), "%s/patches/x.bin", root);
    CHECK(access(path, F_OK) != 0);
    snprintf(path, sizeof(path), "%s/patches/y.bin", root);
    CHECK(access(path, F_OK) != 0);
out:
    finish(s, h, now);
}

/* Queues 64 KiB pieces of one file while room() says yes; the count. */
static int pieces_until_full(ds_session_t *s, const uint8_t *p, size_t n)
{
    uint32_t fid;
    int k = 0;

    CHECK_INT(ds_session_file_begin(s, "patches/full.bin", n, 0644, DS_PROTO_NO_MTIME, 1, &fid), 0);
    while (ds_session_room(s) && (size_t)(k + 1) * (64u << 10) <= n)
        CHECK_INT(ds_session_file_data(s, fid, NULL, p + (size_t)k++ * (64u << 10), 64u << 10), 0);
    CHECK_INT(ds_session_cancel_sends(s), 0); /* nothing left: the pause held it all */
    return k;
}

/* set_rate sizes the frames (data_block, and what reaches the wire) and the
 * queued output room() allows. */
static void test_set_rate(void)
{
    static uint8_t buf[2 << 20];
    static const struct {
        uint64_t rate;
        size_t block;
        int pieces; /* of 64 KiB before room() says no, with out_high 1 MiB */
    } cases[] = {{0, 4u << 20, 16},          {1000, 4u << 10, 1},       {8000, 4u << 10, 1},
                 {16384, 8u << 10, 1},       {131072, 64u << 10, 4},    {400000, 200000, 13},
                 {1000000000, 4u << 20, 16}, {UINT64_MAX, 4u << 20, 16}};
    struct throttled *h = NULL;
    ds_session_result_t r;
    ds_session_t *s;
    int64_t now = time(NULL);
    size_t lit = 0, big = 0, i;
    uint32_t fid;
    char path[4400];

    snprintf(root, sizeof(root), "%s", check_tmpdir("test_session_ctl_rate"));
    fill(buf, sizeof(buf), 5);
    s = open_thr(THR_UNLIMITED, 1u << 20, &h);
    CHECK(s != NULL);
    if (s == NULL)
        goto out;
    CHECK_INT(ds_session_data_block(s), 4u << 20);
    thr_set_rate(h, 0);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_INT(ds_session_set_rate(s, cases[i].rate), 0);
        CHECK_INT(ds_session_data_block(s), cases[i].block);
        CHECK_INT(pieces_until_full(s, buf, sizeof(buf)), cases[i].pieces);
    }
    /* one call is cut into frames of the block; a new rate applies to the
     * next call */
    thr_set_rate(h, THR_UNLIMITED);
    CHECK_INT(ds_session_set_rate(s, 32u << 10), 0);
    CHECK_INT(ds_session_file_begin(s, "patches/f.bin", 200000, 0644, DS_PROTO_NO_MTIME, 5, &fid),
              0);
    CHECK_INT(ds_session_file_data(s, fid, NULL, buf, 100000), 0);
    CHECK_INT(ds_session_set_rate(s, 0), 0);
    CHECK_INT(ds_session_file_data(s, fid, NULL, buf + 100000, 100000), 0);
    {
        uint8_t sum[DS_SHA256_LEN];

        CHECK_INT(ds_sha256(buf, 200000, sum), 0);
        CHECK_INT(ds_session_file_commit(s, fid, 200000, sum), 0);
    }
    CHECK_INT(settle(s, &now, 0), 0);
    CHECK(ds_session_next_result(s, &r) && r.tag == 5 && r.rc == 0);
    for (i = 0; i < h->nfr; i++) {
        if (h->fr[i].type != DS_MSG_LITERAL || h->fr[i].fid != fid)
            continue;
        lit++;
        CHECK(h->fr[i].raw_len <= (16u << 10) || h->fr[i].raw_len == 100000);
        big += h->fr[i].raw_len == 100000;
    }
    CHECK_INT(lit, 7 + 1); /* 6 x 16 KiB + 1696 B, then 100000 B whole */
    CHECK_INT(big, 1);
    snprintf(path, sizeof(path), "%s/patches/f.bin", root);
    CHECK(file_is(path, buf, 200000));
out:
    finish(s, h, now);
}

/* Small frames of incompressible data: zstd is tried on the first MiB of
 * the file only (counted by the frame cache's compressions), as with one
 * 4 MiB frame; a compressible file goes on being compressed. */
static void test_small_frames_nocomp(void)
{
    static uint8_t rnd[4 << 20], txt[2 << 20];
    ds_session_zcache_t *zc = NULL;
    ds_session_opts_t so = {.console_id = "console-ctl", .write = 1};
    ds_transport_cfg_t tc = {.mode = "local", .no_fsync = 1};
    ds_transport_t *t = NULL;
    ds_session_t *s = NULL;
    uint64_t hits, misses;
    uint32_t fid;
    char url[4200], err[512];

    snprintf(root, sizeof(root), "%s", check_tmpdir("test_session_ctl_nocomp"));
    snprintf(url, sizeof(url), "file://%s", root);
    tc.url = url;
    fill(rnd, sizeof(rnd), 8);
    for (size_t i = 0; i < sizeof(txt); i++)
        txt[i] = "small frames still compress\n"[i % 28];
    CHECK_INT(ds_session_zcache_new(0, &zc), 0);
    so.zcache = zc;
    CHECK_INT(ds_transport_open(&tc, &t, err, sizeof(err)), 0);
    CHECK_INT(ds_session_new(t, &so, &s), 0);
    if (s == NULL)
        goto out;
    CHECK_INT(ds_session_set_rate(s, 8000), 0); /* 4 KiB frames */
    CHECK_INT(ds_session_start(s), 0);
    /* the local receiver answers from its own thread: nap between steps */
    for (int i = 0; i < 20000 && ds_session_phase(s) != DS_SESSION_READY; i++, nap())
        if (ds_session_step(s, time(NULL)) < 0)
            break;
    CHECK_INT(ds_session_file_begin(s, "patches/r", sizeof(rnd), 0644, DS_PROTO_NO_MTIME, 1, &fid),
              0);
    CHECK_INT(ds_session_file_data(s, fid, NULL, rnd, sizeof(rnd)), 0);
    ds_session_zcache_stats(zc, &hits, &misses);
    CHECK_INT(hits + misses, (1u << 20) / (4u << 10));
    CHECK_INT(ds_session_file_begin(s, "patches/t", sizeof(txt), 0644, DS_PROTO_NO_MTIME, 2, &fid),
              0);
    CHECK_INT(ds_session_file_data(s, fid, NULL, txt, sizeof(txt)), 0);
    ds_session_zcache_stats(zc, &hits, &misses);
    CHECK_INT(hits + misses, (1u << 20) / (4u << 10) + sizeof(txt) / (4u << 10));
    CHECK(ds_session_stats(s)->literal_wire < sizeof(rnd) + sizeof(txt) / 10);
    CHECK_INT(ds_session_cancel_sends(s), 0);
    CHECK_INT(ds_session_close(s), 0);
    for (int i = 0; i < 20000 && ds_session_phase(s) != DS_SESSION_DONE; i++, nap())
        if (ds_session_step(s, time(NULL)) < 0)
            break;
    CHECK_INT(ds_session_phase(s), DS_SESSION_DONE);
out:
    ds_session_free(s);
    ds_transport_free(t);
    ds_session_zcache_free(zc);
}

/* literal_wire / literal_raw of file at a rate (its frame size). */
static double ratio_at(const uint8_t *p, size_t n, uint64_t rate, const char *name)
{
    struct throttled *h = NULL;
    ds_session_t *s = open_thr(THR_UNLIMITED, 0, &h);
    int64_t now = time(NULL);
    const ds_session_stats_t *st;
    ds_session_result_t r;
    uint8_t sum[DS_SHA256_LEN];
    double q = 0;
    uint32_t fid;

    if (s == NULL) {
        CHECK(s != NULL);
        finish(s, h, now);
        return 0;
    }
    CHECK_INT(ds_sha256(p, n, sum), 0);
    CHECK_INT(ds_session_set_rate(s, rate), 0);
    CHECK_INT(ds_session_file_begin(s, name, n, 0644, DS_PROTO_NO_MTIME, 1, &fid), 0);
    for (size_t off = 0; off < n;) {
        size_t k = ds_session_data_block(s) < n - off ? ds_session_data_block(s) : n - off;

        CHECK_INT(ds_session_file_data(s, fid, NULL, p + off, k), 0);
        off += k;
        if (!ds_session_room(s))
            CHECK_INT(settle(s, &now, 0), 0);
    }
    CHECK_INT(ds_session_file_commit(s, fid, n, sum), 0);
    CHECK_INT(settle(s, &now, 0), 0);
    CHECK(ds_session_next_result(s, &r) && r.rc == 0);
    st = ds_session_stats(s);
    q = (double)st->literal_wire / (double)st->literal_raw;
    finish(s, h, now);
    return q;
}

/* Smaller frames compress worse (zstd per frame): measured on a real binary
 * ($DS_FRAME_COST_FILE, else the distsync CLI), printed, and ordered. */
static void test_frame_cost(void)
{
    const char *file =
        getenv("DS_FRAME_COST_FILE") ? getenv("DS_FRAME_COST_FILE") : getenv("DISTSYNC");
    double q4k, q64k, q4m;
    uint8_t *p = NULL;
    struct stat st;
    FILE *f;

    if (file == NULL || stat(file, &st) != 0 || st.st_size < (1 << 20)) {
        printf("skip test_frame_cost: no binary of 1 MiB or more ($DISTSYNC)\n");
        return;
    }
    snprintf(root, sizeof(root), "%s", check_tmpdir("test_session_ctl_cost"));
    p = malloc((size_t)st.st_size);
    f = fopen(file, "rb");
    CHECK(p && f && fread(p, 1, (size_t)st.st_size, f) == (size_t)st.st_size);
    if (f)
        fclose(f);
    if (p == NULL)
        return;
    q4k = ratio_at(p, (size_t)st.st_size, 8192, "patches/f4k");
    q64k = ratio_at(p, (size_t)st.st_size, 131072, "patches/f64k");
    q4m = ratio_at(p, (size_t)st.st_size, 0, "patches/f4m");
    printf("frame cost: %s (%lld bytes): wire/raw %.3f at 4 KiB frames, %.3f at 64 KiB, "
           "%.3f at 4 MiB\n",
           file, (long long)st.st_size, q4k, q64k, q4m);
    CHECK(q4k > q64k && q64k > q4m && q4m > 0);
    free(p);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(test_pend_order);
    RUN(test_paused_window);
    RUN(test_cancel_after_renewal);
    RUN(test_set_rate);
    RUN(test_small_frames_nocomp);
    RUN(test_frame_cost);
    return CHECK_DONE();
}

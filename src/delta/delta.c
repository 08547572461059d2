/*
 * librsync delta computation and checking, streamed through bounded
 * buffers (see include/distsync/delta.h). Jobs run through the one pump in
 * rsjob.c (stall guard, librsync's log routed to ds_log).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librsync.h>

#include "distsync/delta.h"
#include "distsync/error.h"
#include "distsync/log.h"
#include "distsync/fsutil.h"
#include "proto/rsjob.h"

#define IN_CAP  (256u * 1024)
#define OUT_CAP (256u * 1024)

/* One streaming librsync job: input comes from fill(), output goes to
 * drain(). Both return 0 or a negative error. */
struct pump {
    rs_job_t *job;
    int (*fill)(void *ctx, char *buf, size_t cap, size_t *got);
    int (*drain)(void *ctx, const char *p, size_t n);
    void *ctx;
    uint64_t in_total; /* bytes fill() produced */
    char *in, *out;
};

struct src_hash {
    const ds_delta_src_t *src;
    uint64_t off;
    ds_sha256_t sha;
    int hashing;
};

static long fd_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    ssize_t n;

    do
        n = pread((int)(intptr_t)ctx, buf, len, (off_t)off);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : (long)n;
}

void ds_delta_src_fd(ds_delta_src_t *s, int fd, uint64_t size)
{
    s->read = fd_read;
    s->ctx = (void *)(intptr_t)fd;
    s->size = size;
    s->verified = 0;
    s->chunks = NULL;
    s->nchunks = 0;
}

static long retain_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    return ds_retain_read(ctx, off, buf, len);
}

void ds_delta_src_retain(ds_delta_src_t *s, ds_retain_reader_t *rd)
{
    s->read = retain_read;
    s->ctx = rd;
    s->size = ds_retain_reader_size(rd);
    s->verified = 1;
    s->chunks = ds_retain_reader_chunks(rd, &s->nchunks);
}

int ds_delta_src_sha256(const ds_delta_src_t *s, uint8_t out[DS_SHA256_LEN])
{
    uint8_t buf[64u << 10];
    ds_sha256_t sha;
    uint64_t off = 0;
    int rc = ds_sha256_init(&sha);

    while (rc == 0 && off < s->size) {
        size_t want = s->size - off < sizeof(buf) ? (size_t)(s->size - off) : sizeof(buf);
        long n = s->read(s->ctx, off, buf, want);

        rc = n > 0 ? 0 : n < 0 ? (int)n : DS_ECHANGED;
        if (rc == 0)
            ds_sha256_update(&sha, buf, (size_t)n);
        off += n > 0 ? (uint64_t)n : 0;
    }
    if (rc == 0)
        ds_sha256_final(&sha, out);
    ds_sha256_close(&sha);
    return rc;
}

/* Runs p->job to completion. Returns 0 or a negative error. */
static int pump_run(struct pump *p)
{
    rs_buffers_t b = {0};
    size_t made, inlen;
    int rc;

    for (;;) {
        if (b.avail_in == 0 && !b.eof_in) {
            rc = p->fill(p->ctx, p->in, IN_CAP, &inlen);
            if (rc < 0)
                return rc;
            b.next_in = p->in;
            b.avail_in = inlen;
            b.eof_in = inlen == 0;
            p->in_total += inlen;
        }
        rc = ds__rsjob_pump(p->job, &b, p->out, OUT_CAP, &made);
        if (made > 0) {
            int drc = p->drain(p->ctx, p->out, made);

            if (drc < 0)
                return drc;
        }
        if (rc == 1)
            return 0;
        if (rc < 0)
            return rc == DS_ENOMEM ? rc : DS_EDELTA; /* refused, or truncated / stuck */
    }
}

/* Reads the next piece of a source, hashing it. */
static int src_fill(struct src_hash *s, char *buf, size_t cap, size_t *got)
{
    long n = 0;

    *got = 0;
    if (s->off < s->src->size) {
        if (cap > s->src->size - s->off)
            cap = (size_t)(s->src->size - s->off);
        n = s->src->read(s->src->ctx, s->off, buf, cap);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return DS_ECHANGED; /* shorter than announced */
    }
    if (s->hashing)
        ds_sha256_update(&s->sha, buf, (size_t)n);
    s->off += (uint64_t)n;
    *got = (size_t)n;
    return 0;
}

/* Closes the hash and compares it to want (NULL: no check). */
static int src_check(struct src_hash *s, const uint8_t *want)
{
    uint8_t got[DS_SHA256_LEN];

    if (!s->hashing)
        return 0;
    s->hashing = 0;
    ds_sha256_final(&s->sha, got);
    return memcmp(got, want, DS_SHA256_LEN) == 0 ? 0 : DS_ECHANGED;
}

static int src_hash_init(struct src_hash *s, const ds_delta_src_t *src, const uint8_t *want)
{
    memset(s, 0, sizeof(*s));
    s->src = src;
    if (want == NULL)
        return 0;
    s->hashing = 1;
    return ds_sha256_init(&s->sha);
}

/* --- signature: basis -> rs_sig job -> rs_loadsig job -> rs_signature_t --- */

struct sig_ctx {
    struct src_hash src;
    rs_job_t *load;
};

static int sig_fill(void *ctx, char *buf, size_t cap, size_t *got)
{
    return src_fill(&((struct sig_ctx *)ctx)->src, buf, cap, got);
}

/* Feeds signature bytes to the loader job (which only consumes). */
static int load_feed(rs_job_t *load, const char *p, size_t n, int eof)
{
    char dummy[64];
    rs_buffers_t b = {.next_in = (char *)p, .avail_in = n, .eof_in = eof};
    size_t made;
    int rc;

    do
        rc = ds__rsjob_pump(load, &b, dummy, sizeof(dummy), &made);
    while (rc == 0 && made == sizeof(dummy));
    if (rc < 0)
        return rc == DS_ENOMEM ? rc : DS_EDELTA;
    return rc == 1 || !eof ? 0 : DS_EDELTA;
}

static int sig_drain(void *ctx, const char *p, size_t n)
{
    return load_feed(((struct sig_ctx *)ctx)->load, p, n, 0);
}

static int build_signature(const ds_delta_src_t *basis, const ds_delta_opts_t *o, size_t block,
                           char *bufs, rs_signature_t **sig)
{
    struct sig_ctx sc = {0};
    struct pump p = {.fill = sig_fill, .drain = sig_drain, .ctx = &sc};
    int rc;

    p.in = bufs;
    p.out = bufs + IN_CAP;
    rc = src_hash_init(&sc.src, basis, o->basis_sha256);
    if (rc < 0)
        return rc;
    p.job = rs_sig_begin(block, o->strong_len, RS_RK_BLAKE2_SIG_MAGIC);
    sc.load = rs_loadsig_begin(sig);
    rc = (p.job && sc.load) ? pump_run(&p) : DS_ENOMEM;
    if (rc == 0)
        rc = load_feed(sc.load, "", 0, 1);
    if (rc == 0)
        rc = src_check(&sc.src, o->basis_sha256);
    if (rc == 0 && rs_build_hash_table(*sig) != RS_DONE)
        rc = DS_ENOMEM;
    if (p.job)
        rs_job_free(p.job);
    if (sc.load)
        rs_job_free(sc.load);
    ds_sha256_close(&sc.src.sha);
    return rc;
}

/* --- delta: target -> rs_delta job -> out_fd --- */

struct delta_ctx {
    struct src_hash src;
    int fd;
    uint64_t written;
};

static int delta_fill(void *ctx, char *buf, size_t cap, size_t *got)
{
    return src_fill(&((struct delta_ctx *)ctx)->src, buf, cap, got);
}

static int delta_drain(void *ctx, const char *p, size_t n)
{
    struct delta_ctx *d = ctx;
    int rc = ds_write_all(d->fd, p, n);

    if (rc == 0) /* after a failure the delta is abandoned: no count read */
        d->written += (uint64_t)n;
    return rc;
}

static size_t pick_block(const ds_delta_opts_t *o, uint64_t basis_size)
{
    uint64_t block = o->block_len ? o->block_len : DS_DELTA_BLOCK_DEFAULT;
    uint64_t min = (basis_size + DS_DELTA_MAX_BLOCKS - 1) / DS_DELTA_MAX_BLOCKS;

    if (block < min)
        block = (min + 63) & ~(uint64_t)63;
    return (size_t)block;
}

static void fill_stats(ds_delta_stats_t *st, rs_job_t *job, const struct delta_ctx *d,
                       uint64_t basis_bytes, size_t block)
{
    const rs_stats_t *rs = rs_job_statistics(job);

    st->basis_bytes = basis_bytes;
    st->target_bytes = d->src.off;
    st->delta_bytes = d->written;
    st->literal_bytes = (uint64_t)rs->lit_bytes;
    st->copy_bytes = (uint64_t)rs->copy_bytes;
    st->block_len = (uint32_t)block;
}

int ds_delta_compute(const ds_delta_src_t *basis, const ds_delta_src_t *target,
                     const ds_delta_opts_t *opts, int out_fd, ds_delta_stats_t *st)
{
    ds_delta_opts_t o = opts ? *opts : (ds_delta_opts_t){0};
    struct delta_ctx dc = {.fd = out_fd};
    struct pump p = {.fill = delta_fill, .drain = delta_drain, .ctx = &dc};
    rs_signature_t *sig = NULL;
    char *bufs = malloc(IN_CAP + OUT_CAP);
    size_t block = pick_block(&o, basis->size);
    int rc;

    if (o.strong_len == 0)
        o.strong_len = DS_DELTA_STRONG_DEFAULT;
    if (o.strong_len > RS_MAX_STRONG_SUM_LENGTH)
        o.strong_len = RS_MAX_STRONG_SUM_LENGTH;
    if (bufs == NULL)
        return DS_ENOMEM;
    rc = build_signature(basis, &o, block, bufs, &sig);
    if (rc < 0)
        goto out;
    p.in = bufs;
    p.out = bufs + IN_CAP;
    rc = src_hash_init(&dc.src, target, o.target_sha256);
    if (rc < 0)
        goto out;
    p.job = rs_delta_begin(sig);
    rc = p.job ? pump_run(&p) : DS_ENOMEM;
    if (rc == 0)
        rc = src_check(&dc.src, o.target_sha256);
    if (rc == 0 && st != NULL)
        fill_stats(st, p.job, &dc, basis->size, block);
out:
    if (rc == DS_ECHANGED)
        ds_log(DS_LOG_ERROR, "delta: %s does not match its size or SHA-256",
               dc.src.src ? "target" : "basis");
    if (p.job)
        rs_job_free(p.job);
    if (sig)
        rs_free_sumset(sig);
    ds_sha256_close(&dc.src.sha);
    free(bufs);
    return rc;
}

/* --- check: basis + delta -> rs_patch job -> SHA-256 --- */

struct check_ctx {
    const ds_delta_src_t *basis;
    int fd;
    uint64_t off, size, out_bytes;
    ds_sha256_t sha;
    int err;
};

static rs_result check_copy(void *opaque, rs_long_t pos, size_t *len, void **buf)
{
    struct check_ctx *c = opaque;
    long n;

    if (pos < 0 || (uint64_t)pos >= c->basis->size) {
        c->err = DS_ECORRUPT;
        return RS_CORRUPT;
    }
    n = c->basis->read(c->basis->ctx, (uint64_t)pos, *buf, *len);
    if (n <= 0) {
        c->err = n < 0 ? (int)n : DS_ECHANGED;
        return RS_IO_ERROR;
    }
    *len = (size_t)n;
    return RS_DONE;
}

static int check_fill(void *ctx, char *buf, size_t cap, size_t *got)
{
    struct check_ctx *c = ctx;
    ds_delta_src_t s;
    long n = 0;

    ds_delta_src_fd(&s, c->fd, c->size);
    if (c->off < c->size) {
        n = fd_read(s.ctx, c->off, buf, cap < c->size - c->off ? cap : c->size - c->off);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return DS_ECHANGED;
    }
    c->off += (uint64_t)n;
    *got = (size_t)n;
    return 0;
}

static int check_drain(void *ctx, const char *p, size_t n)
{
    struct check_ctx *c = ctx;

    ds_sha256_update(&c->sha, p, n);
    c->out_bytes += n;
    return 0;
}

int ds_delta_check(const ds_delta_src_t *basis, int delta_fd, uint64_t delta_size,
                   uint64_t target_size, const uint8_t target_sha256[DS_SHA256_LEN])
{
    struct check_ctx c = {.basis = basis, .fd = delta_fd, .size = delta_size};
    struct pump p = {.fill = check_fill, .drain = check_drain, .ctx = &c};
    uint8_t got[DS_SHA256_LEN];
    char *bufs = malloc(IN_CAP + OUT_CAP);
    int rc = bufs ? ds_sha256_init(&c.sha) : DS_ENOMEM;

    if (rc < 0)
        goto out;
    p.in = bufs;
    p.out = bufs + IN_CAP;
    p.job = rs_patch_begin(check_copy, &c);
    rc = p.job ? pump_run(&p) : DS_ENOMEM;
    if (rc == DS_EDELTA)
        rc = c.err ? c.err : DS_ECORRUPT;
    if (rc == 0) {
        ds_sha256_final(&c.sha, got);
        if (c.out_bytes != target_size || memcmp(got, target_sha256, DS_SHA256_LEN) != 0)
            rc = DS_EHASH;
    }
out:
    if (p.job)
        rs_job_free(p.job);
    ds_sha256_close(&c.sha);
    free(bufs);
    return rc;
}

/*
 * Test helper: the "throttled" transport, a wrapper that paces the writes
 * of a real transport (the in-process receiver, or `distsync agent` over a
 * pipe) to a rate, like a slow link or a cap would: it does not fake the
 * receiver, every byte still reaches it. It also decodes the frames it lets
 * through, so a test sees the wire order (frame type, id, lease op, file id,
 * raw data length, stream offset).
 *
 * Rate: bytes per second from a token bucket on CLOCK_MONOTONIC, holding at
 * most 4 KiB (bursts stay short); rate 0 means paused: nothing goes but the
 * bytes granted with thr_let(), the way a paced driver lets control frames
 * through. THR_UNLIMITED: no pacing.
 */
#ifndef DS_TEST_THROTTLED_H
#define DS_TEST_THROTTLED_H

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "distsync/proto.h"
#include "distsync/session.h"
#include "distsync/transport.h"

#define THR_UNLIMITED UINT64_MAX
#define THR_BUCKET    4096.0

struct thr_frame {
    uint64_t at; /* stream offset of the frame */
    uint8_t type, lease_op;
    uint32_t id, fid, raw_len;
};

struct throttled {
    ds_transport_t t; /* first: the common head */
    ds_transport_t *inner;
    uint64_t rate;   /* bytes per second; 0: paused; THR_UNLIMITED */
    double tokens;   /* bytes that may go now */
    uint64_t let;    /* bytes granted while paused (thr_let) */
    int64_t last_ns; /* when tokens were last refilled */
    uint64_t sent;   /* bytes let through */
    ds_proto_buf_t acc;
    struct thr_frame *fr;
    size_t nfr, fr_cap;
};

static inline int64_t thr_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Decodes the complete frames in acc into the frame log. */
static inline void thr_log(struct throttled *h)
{
    size_t off = 0;
    long fl;

    while ((fl = ds_proto_frame_len(h->acc.p + off, h->acc.len - off)) > 0) {
        struct thr_frame *f;
        ds_msg_t m;

        if (h->nfr == h->fr_cap) {
            h->fr_cap = h->fr_cap ? h->fr_cap * 2 : 256;
            h->fr = realloc(h->fr, h->fr_cap * sizeof(*h->fr));
            if (h->fr == NULL)
                abort();
        }
        f = &h->fr[h->nfr++];
        memset(f, 0, sizeof(*f));
        f->at = h->sent - (h->acc.len - off);
        if (ds_proto_decode(h->acc.p + off, (size_t)fl, &m) != 0)
            abort(); /* the session wrote a malformed frame */
        f->type = m.type;
        f->id = m.id;
        if (m.type == DS_MSG_LEASE)
            f->lease_op = m.u.lease.op;
        if (m.type == DS_MSG_LITERAL || m.type == DS_MSG_DELTA) {
            f->fid = m.u.data.file_id;
            f->raw_len = m.u.data.raw_len;
        }
        if (m.type == DS_MSG_FILE_BEGIN)
            f->fid = m.u.begin.file_id;
        if (m.type == DS_MSG_FILE_COMMIT)
            f->fid = m.u.commit.file_id;
        if (m.type == DS_MSG_FILE_ABORT || m.type == DS_MSG_DELTA_END)
            f->fid = m.u.file.file_id;
        off += (size_t)fl;
    }
    ds_proto_buf_consume(&h->acc, off);
}

static inline long thr_write(ds_transport_t *t, const void *p, size_t n)
{
    struct throttled *h = (struct throttled *)t;
    int64_t now = thr_now_ns();
    size_t may = n;
    long w;

    if (h->rate != THR_UNLIMITED) {
        h->tokens += (double)h->rate * (double)(now - h->last_ns) / 1e9;
        if (h->tokens > THR_BUCKET)
            h->tokens = THR_BUCKET;
        h->last_ns = now;
        may = h->tokens < 1 ? 0 : (size_t)h->tokens;
        if (may < h->let)
            may = (size_t)h->let;
        if (may > n)
            may = n;
    }
    if (may == 0)
        return 0;
    w = ds_transport_write(h->inner, p, may);
    if (w < 0) {
        snprintf(t->err, sizeof(t->err), "%s", ds_transport_error(h->inner));
        return w;
    }
    if (h->rate != THR_UNLIMITED) {
        h->let = h->let > (uint64_t)w ? h->let - (uint64_t)w : 0;
        h->tokens = h->tokens > (double)w ? h->tokens - (double)w : 0;
    }
    if (ds_proto_buf_append(&h->acc, p, (size_t)w) < 0)
        abort();
    h->sent += (uint64_t)w;
    thr_log(h);
    return w;
}

static inline long thr_read(ds_transport_t *t, void *buf, size_t cap)
{
    struct throttled *h = (struct throttled *)t;
    long r = ds_transport_read(h->inner, buf, cap);

    if (r < 0)
        snprintf(t->err, sizeof(t->err), "%s", ds_transport_error(h->inner));
    return r;
}

static inline int thr_close(ds_transport_t *t)
{
    struct throttled *h = (struct throttled *)t;
    int rc = ds_transport_close(h->inner);

    if (rc < 0)
        snprintf(t->err, sizeof(t->err), "%s", ds_transport_error(h->inner));
    return rc;
}

static inline void thr_kill(ds_transport_t *t)
{
    ds_transport_kill(((struct throttled *)t)->inner);
}

static inline void thr_free(ds_transport_t *t)
{
    struct throttled *h = (struct throttled *)t;

    ds_transport_free(h->inner);
    ds_proto_buf_free(&h->acc);
    free(h->fr);
    free(h);
}

static const ds_transport_ops_t thr_ops = {
    .name = "throttled",
    .write = thr_write,
    .read = thr_read,
    .close = thr_close,
    .kill = thr_kill,
    .free = thr_free,
};

/* Wraps inner (owned from now on) at rate bytes per second. NULL: no memory. */
static inline struct throttled *thr_wrap(ds_transport_t *inner, uint64_t rate)
{
    struct throttled *h = calloc(1, sizeof(*h));

    if (h == NULL) {
        ds_transport_free(inner);
        return NULL;
    }
    h->t.ops = &thr_ops;
    h->t.rfd = -1; /* always ready: the test's loop sleeps between steps */
    h->t.wfd = -1;
    h->inner = inner;
    h->rate = rate;
    h->last_ns = thr_now_ns();
    return h;
}

/* Changes the rate (0: paused) from now on. */
static inline void thr_set_rate(struct throttled *h, uint64_t rate)
{
    h->last_ns = thr_now_ns();
    h->tokens = 0;
    h->rate = rate;
}

/* While paused, lets n more bytes through (a driver's allowance). */
static inline void thr_let(struct throttled *h, uint64_t n)
{
    h->let += n;
}

/* Index of the first frame of type at or after index i, or nfr. */
static inline size_t thr_find(const struct throttled *h, size_t i, uint8_t type)
{
    while (i < h->nfr && h->fr[i].type != type)
        i++;
    return i;
}

/* A session (opts so) over a throttled transport (mode: local or agent,
 * the agent being $DISTSYNC) on root at rate, stepped to READY for up to
 * 20 s. Returns the session, or NULL (message on stderr); *h is the wrapper
 * (NULL when the transport did not open). */
static inline ds_session_t *thr_session(const char *root, const char *mode, uint64_t rate,
                                        const ds_session_opts_t *so, struct throttled **h)
{
    ds_transport_cfg_t tc = {.mode = mode, .agent = getenv("DISTSYNC"), .no_fsync = 1};
    ds_transport_t *t = NULL;
    ds_session_t *s = NULL;
    struct timespec nap = {0, 1000000};
    char url[4200], err[512];

    snprintf(url, sizeof(url), "file://%s", root);
    tc.url = url;
    *h = NULL;
    if (ds_transport_open(&tc, &t, err, sizeof(err)) != 0) {
        fprintf(stderr, "transport: %s\n", err);
        return NULL;
    }
    *h = thr_wrap(t, rate);
    if (*h == NULL || ds_session_new(&(*h)->t, so, &s) != 0 || ds_session_start(s) != 0) {
        ds_session_free(s);
        return NULL;
    }
    for (int64_t end = time(NULL) + 20; time(NULL) < end; nanosleep(&nap, NULL))
        if (ds_session_step(s, time(NULL)) < 0 || ds_session_phase(s) == DS_SESSION_READY)
            break;
    return s;
}

#endif

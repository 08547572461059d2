/*
 * The local transport (file://, transport = local) through its public API:
 * the receiver runs on its own thread behind a real fd, so a write returns
 * without having applied anything, a stalled receiver makes writes return
 * 0 (never block), kill ends a stalled receiver, and a sender session runs
 * over it from a poll(2) loop. SIGPIPE is left at its default on purpose:
 * the transport must not raise it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <time.h>

#include "check.h"
#include "distsync/error.h"
#include "distsync/session.h"
#include "distsync/transport.h"
#include "session.h"

#define BIG_SIZE (32u << 20) /* SIG of it (256-byte blocks): a 4.7 MB reply */

static char root[4096];

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int exists(const char *rel)
{
    char p[8192];

    snprintf(p, sizeof(p), "%s/%s", root, rel);
    return access(p, F_OK) == 0;
}

static int file_is(const char *rel, const void *want, size_t n)
{
    char p[8192], buf[256];
    FILE *f;
    size_t got;

    snprintf(p, sizeof(p), "%s/%s", root, rel);
    f = fopen(p, "rb");
    if (f == NULL)
        return 0;
    got = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    return got == n && memcmp(buf, want, n) == 0;
}

/* SIG of path with the smallest blocks: the largest reply. */
static uint32_t s_sig(struct sess *s, const char *path)
{
    ds_msg_t m = {.type = DS_MSG_SIG};

    m.u.sig.path = ds_pstr(path);
    m.u.sig.block_len = 256;
    m.u.sig.strong_len = 32;
    return s_put(s, &m);
}

/* A fresh root holding a sparse BIG_SIZE file "big". */
static void make_root(const char *name)
{
    char p[8192];
    int fd;

    snprintf(root, sizeof(root), "%s", check_tmpdir(name));
    snprintf(p, sizeof(p), "%s/big", root);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, BIG_SIZE) < 0)
        exit(2);
    close(fd);
}

static ds_transport_t *open_local(void)
{
    ds_transport_cfg_t tc = {.mode = "local", .no_fsync = 1};
    ds_transport_t *t = NULL;
    char url[4200], err[512];

    snprintf(url, sizeof(url), "file://%s", root);
    tc.url = url;
    if (ds_transport_open(&tc, &t, err, sizeof(err)) != 0)
        fprintf(stderr, "transport: %s\n", err);
    return t;
}

/* Writes all of b (small: it fits the socket), waiting at most 5 s for
 * room. Returns the bytes taken. */
static size_t write_small(ds_transport_t *t, const ds_proto_buf_t *b)
{
    size_t off = 0;
    int64_t t0 = now_ms();

    while (off < b->len && now_ms() - t0 < 5000) {
        struct pollfd p = {.fd = t->wfd, .events = POLLOUT};
        long w = ds_transport_write(t, b->p + off, b->len - off);

        if (w < 0)
            break;
        off += (size_t)w;
        if (w == 0 && t->wfd >= 0)
            poll(&p, 1, 100);
    }
    return off;
}

/* Replies read so far, and what they showed. */
struct replies {
    uint8_t *p;
    size_t len, cap, off; /* off: first byte not decoded */
    uint32_t sig_id, commit_id, bye_id;
    int sig_done, file_ok, bye_ok, bad;
};

/* Reads what is there and decodes every complete frame. Returns the bytes
 * read, or -1 at the end of the stream. */
static long take_replies(ds_transport_t *t, struct replies *r)
{
    long total = 0;

    for (;;) {
        long got;

        if (r->cap - r->len < 65536) {
            r->cap = r->cap ? 2 * r->cap : 1 << 20;
            r->p = realloc(r->p, r->cap);
        }
        got = ds_transport_read(t, r->p + r->len, r->cap - r->len);
        if (got <= 0) {
            if (got < 0 && total == 0)
                return -1;
            break;
        }
        r->len += (size_t)got;
        total += got;
    }
    for (;;) {
        long fl = ds_proto_frame_len(r->p + r->off, r->len - r->off);
        ds_msg_t m;

        if (fl <= 0)
            break;
        if (ds_proto_decode(r->p + r->off, (size_t)fl, &m) != 0) {
            r->bad = 1;
            break;
        }
        r->off += (size_t)fl;
        if (m.id == r->sig_id && m.type == DS_MSG_SIG_DATA && !(m.flags & DS_PROTO_F_MORE))
            r->sig_done = 1;
        if (m.id == r->commit_id)
            r->file_ok = m.type == DS_MSG_FILE_OK;
        if (m.id == r->bye_id)
            r->bye_ok = m.type == DS_MSG_OK;
    }
    return total;
}

/* Writes HASH requests until the stream is full: write returns 0 and the
 * fd stays unwritable for 300 ms. Each write must return at once. Leaves
 * the bytes not taken in *rest. Returns the bytes taken, or 0 when write
 * failed or the stream never filled. */
static size_t fill_until_stalled(ds_transport_t *t, ds_proto_buf_t *rest)
{
    struct sess s = {.id = 1000};
    size_t queued = 0, off = 0;
    int64_t slowest = 0;
    int stalled = 0;

    for (int i = 0; i < 4000; i++)
        s_path(&s, DS_MSG_HASH, "missing");
    for (int round = 0; round < 4096 && !stalled; round++) {
        for (off = 0; off < s.b.len && !stalled;) {
            struct pollfd p = {.fd = t->wfd, .events = POLLOUT};
            int64_t t0 = now_ms();
            long w = ds_transport_write(t, s.b.p + off, s.b.len - off);

            if (now_ms() - t0 > slowest)
                slowest = now_ms() - t0;
            if (w < 0)
                goto out;
            off += (size_t)w;
            queued += (size_t)w;
            stalled = w == 0 && poll(&p, 1, 300) == 0;
        }
    }
    CHECK(slowest < 1000);
    if (stalled)
        CHECK_INT(ds_proto_buf_append(rest, s.b.p + off, s.b.len - off), 0);
out:
    ds_proto_buf_free(&s.b);
    return stalled ? queued : 0;
}

/* Reads every reply and writes rest as the stream takes it, until the
 * BYE's reply (at most 60 s). */
static void drain_until_bye(ds_transport_t *t, const ds_proto_buf_t *rest, struct replies *r)
{
    int64_t t0 = now_ms();
    size_t off = 0;

    while (!r->bye_ok && !r->bad && now_ms() - t0 < 60000) {
        struct pollfd p = {.fd = t->rfd, .events = POLLIN | (off < rest->len ? POLLOUT : 0)};

        poll(&p, 1, 1000);
        if (take_replies(t, r) < 0)
            break;
        if (off < rest->len) {
            long w = ds_transport_write(t, rest->p + off, rest->len - off);

            CHECK(w >= 0);
            off += w > 0 ? (size_t)w : 0;
        }
    }
}

/* The receiver works on its own thread: the console's writes only queue
 * bytes. Frames behind a SIG whose reply is not read yet are taken by the
 * write but not applied; writing on, the stream fills and write returns 0
 * at once, the fd unwritable (a poll loop sleeps, it does not spin);
 * reading the replies lets the receiver go on, and the file shows up. */
static void test_write_does_not_apply(void)
{
    ds_proto_buf_t rest = {0};
    struct sess s = {0};
    struct replies r = {0};
    ds_transport_t *t;
    size_t queued;

    make_root("test_transport_async");
    t = open_local();
    CHECK(t != NULL);
    if (t == NULL)
        return;
    CHECK(t->rfd >= 0 && t->wfd >= 0);
    if (t->rfd < 0 || t->wfd < 0) /* the old in-process receiver: nothing to poll */
        goto out;
    s_hello(&s, "async-console");
    s_lease(&s, DS_LEASE_OP_ACQUIRE, "async-console", 60);
    r.sig_id = s_sig(&s, "big");
    r.commit_id = s_whole(&s, 1, "new.txt", "written by the thread", 21);
    CHECK_INT(write_small(t, &s.b), s.b.len);
    /* Deterministic: the receiver cannot pass the SIG before its 4.7 MB
     * reply is read, and nobody reads it. */
    CHECK(!exists("new.txt"));

    queued = fill_until_stalled(t, &rest);
    CHECK(queued > 0);
    CHECK(queued < (16u << 20)); /* bounded by the socket, not the caller's memory */
    CHECK(!exists("new.txt"));
    CHECK_INT(ds_transport_waits(t, 1), DS_TRANSPORT_WAIT_READ | DS_TRANSPORT_WAIT_WRITE);
    CHECK_INT(ds_transport_waits(t, 0), DS_TRANSPORT_WAIT_READ);

    s.b.len = 0;
    r.bye_id = s_empty(&s, DS_MSG_BYE);
    CHECK_INT(ds_proto_buf_append(&rest, s.b.p, s.b.len), 0);
    drain_until_bye(t, &rest, &r);
    CHECK(!r.bad);
    CHECK(r.sig_done);
    CHECK(r.file_ok);
    CHECK(r.bye_ok);
    CHECK(file_is("new.txt", "written by the thread", 21));
out:
    CHECK_INT(ds_transport_close(t), 0);
    ds_transport_free(t);
    ds_proto_buf_free(&s.b);
    ds_proto_buf_free(&rest);
    free(r.p);
}

/* A receiver blocked sending a reply nobody reads: kill ends it (no
 * SIGPIPE), and close returns instead of waiting forever. */
static void test_kill_stalled(void)
{
    ds_transport_t *t;
    struct sess s = {0};
    int64_t t0;

    make_root("test_transport_kill");
    t = open_local();
    CHECK(t != NULL);
    if (t == NULL)
        return;
    s_hello(&s, "kill-console");
    s_sig(&s, "big");
    CHECK_INT(write_small(t, &s.b), s.b.len);
    {
        struct pollfd p = {.fd = t->rfd, .events = POLLIN};

        CHECK_INT(poll(&p, 1, 5000), 1); /* the reply is coming: the thread is in it */
    }
    t0 = now_ms();
    ds_transport_kill(t);
    (void)ds_transport_close(t);
    CHECK(now_ms() - t0 < 5000);
    ds_transport_free(t);
    ds_proto_buf_free(&s.b);
}

/* A sender session over the local transport, driven by poll(2) on the
 * fds the session names, as sync's driver and a libuv loop do. */
static void test_session_poll_loop(void)
{
    ds_session_opts_t so = {.console_id = "poll-console", .host = "h", .pid = 1, .write = 1};
    ds_session_t *ss = NULL;
    ds_session_result_t res;
    ds_transport_t *t;
    uint8_t sha[DS_SHA256_LEN];
    uint32_t fid;
    int polled = 0, steps = 0;

    make_root("test_transport_session");
    t = open_local();
    CHECK(t != NULL);
    if (t == NULL || ds_session_new(t, &so, &ss) != 0 || ds_session_start(ss) != 0)
        goto out;
    CHECK_INT(ds_sha256("over the socket", 15, sha), 0);
    for (int phase = 0; phase < 3 && steps < 100000; steps++) {
        int rfd, wfd;
        short wev;
        struct pollfd p[2];
        nfds_t n = 0;

        if (ds_session_step(ss, time(NULL)) < 0)
            break;
        if (phase == 0 && ds_session_phase(ss) == DS_SESSION_READY) {
            CHECK_INT(ds_session_file_begin(ss, "poll.txt", 15, 0644, DS_PROTO_NO_MTIME, 7, &fid),
                      0);
            CHECK_INT(ds_session_file_data(ss, fid, NULL, "over the socket", 15), 0);
            CHECK_INT(ds_session_file_commit(ss, fid, 15, sha), 0);
            phase = 1;
            continue;
        }
        if (phase == 1 && ds_session_next_result(ss, &res)) {
            CHECK_INT(res.rc, 0);
            CHECK_INT(ds_session_close(ss), 0);
            phase = 2;
            continue;
        }
        if (phase == 2 && ds_session_phase(ss) == DS_SESSION_DONE)
            phase = 3;
        if (phase == 3)
            break;
        CHECK_INT(ds_session_poll(ss, &rfd, &wfd, &wev), 0); /* real fds to wait on */
        if (rfd >= 0)
            p[n++] = (struct pollfd){.fd = rfd, .events = POLLIN};
        if (wfd >= 0 && wev)
            p[n++] = (struct pollfd){.fd = wfd, .events = wev};
        if (n == 0 || poll(p, n, 5000) <= 0)
            break;
        polled++;
    }
    CHECK_INT(ds_session_phase(ss), DS_SESSION_DONE);
    CHECK(polled > 0);
    CHECK(file_is("poll.txt", "over the socket", 15));
out:
    ds_session_free(ss);
    if (t)
        CHECK_INT(ds_transport_close(t), 0);
    ds_transport_free(t);
}

/* The wait directions: the default for fd transports (agent) and local. */
static void test_waits_default(void)
{
    ds_transport_cfg_t tc = {.mode = "agent", .agent = getenv("DISTSYNC"), .no_fsync = 1};
    ds_transport_t *t = NULL;
    char url[4200], err[512];

    if (tc.agent == NULL) {
        printf("skip test_waits_default: $DISTSYNC not set\n");
        return;
    }
    snprintf(root, sizeof(root), "%s", check_tmpdir("test_transport_waits"));
    snprintf(url, sizeof(url), "file://%s", root);
    tc.url = url;
    CHECK_INT(ds_transport_open(&tc, &t, err, sizeof(err)), 0);
    if (t == NULL)
        return;
    CHECK_INT(ds_transport_waits(t, 0), DS_TRANSPORT_WAIT_READ);
    CHECK_INT(ds_transport_waits(t, 1), DS_TRANSPORT_WAIT_READ | DS_TRANSPORT_WAIT_WRITE);
    CHECK_INT(ds_transport_close(t), 0);
    ds_transport_free(t);
}

int main(void)
{
    alarm(120); /* a blocking write would hang here: fail instead */
    RUN(test_write_does_not_apply);
    RUN(test_kill_stalled);
    RUN(test_session_poll_loop);
    RUN(test_waits_default);
    return CHECK_DONE();
}

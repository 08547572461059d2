/*
 * ssh:// backend, SFTP mode (transport = sftp, or auto when the server has
 * no agent): an in-process receiver (sftp_recv.c) speaks the apply
 * protocol to the console and SFTP to the server with libssh2,
 * non-blocking, on the caller's thread: the console's frames go into the
 * receiver's input as the session writes them, its replies come out as
 * the session reads them, and every write or read first steps the
 * receiver as far as it goes without waiting (its files in flight on
 * SFTP_SLOTS channels of their own, its requests resumed). The fds to
 * poll are the SSH socket's, in the directions libssh2 blocks on, as in
 * agent mode: one loop thread drives any number of SFTP servers, with no
 * thread per server. A peer that stops answering is caught by the
 * caller's silence timeout (the engine's `timeout`, which io_timeout
 * sets). The console's session, plan, status and history are the agent
 * mode's; the transport says DS_TRANSPORT_WHOLE_ONLY so that no delta is
 * planned, and leaves a note for the run's events saying why SFTP was
 * chosen and how files are replaced.
 *
 * The start (SFTP up, the root checked, the shell probe) is a set of
 * non-blocking steps within connect_timeout (ds__sftp_start_step: the
 * engine steps it on its loop, a blocking caller with poll(2)). The close
 * is stepped too (sftp_close_step): the end of the console's input, the
 * session's end (sftp_end.c: files dropped, the manifest written, the
 * channels closed, the disconnect), then the socket cut and closed; close
 * drives the same steps with poll(2).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <zstd.h>

#include "distsync/error.h"
#include "distsync/log.h"

#include "sftp_int.h"

#define SHELL_PROBE  "echo distsync-shell-ok"
#define IO_TIMEOUT_S 30 /* timeout_s unset */
/* The receiver's input: this much, or the whole of a longer first frame.
 * Small, so that bytes stop moving soon after the server stops answering
 * (the run's silence timeout counts from then); the files' data waits in
 * their slots (up to SFTP_INFLIGHT each), not here. */
#define SFTP_IN_LOW (256u << 10)

/* The stepped close's states. */
enum { CL_INPUT, CL_END, CL_FDS, CL_RELEASE, CL_DONE };

/* The start's steps (ds__sftp_start_step). */
enum {
    ST_INIT,
    ST_STAT,
    ST_SH_OPEN,
    ST_SH_EXEC,
    ST_SH_EOF,
    ST_SH_READ,
    ST_SH_CLOSE,
    ST_SH_WAIT,
    ST_SH_FREE,
    ST_RUN
};

struct sftp_t {
    ds_transport_t t; /* first: the common head; rfd = wfd = the SSH socket */
    struct ds__sftp_recv r;
    int dead;     /* the session ended: read reports it once the replies are read */
    int serve_rc; /* how it ended */
    int running;  /* started: the receiver serves */
    int closed, killed;
    int close_rc, end_rc;
    int remote_ended; /* end_remote ran */
    int cst;          /* the stepped close: CL_* */
    int64_t close_deadline;
    /* the start */
    int st;
    LIBSSH2_CHANNEL *sh; /* the shell probe's channel */
    char sh_out[64];     /* its stdout */
    size_t sh_n;
    char why[360];
    ds_log_scope_t scope; /* the opener's: the receiver's lines name its run */
};

static void counts(struct sftp_t *s)
{
    ds__sftp_counts(&s->r.fs);
    s->t.wire_in = s->r.fs.c.wire_in;
    s->t.wire_out = s->r.fs.c.wire_out;
}

/* Which way libssh2 waits: POLLIN always (an answer, or the window adjust
 * a full remote window waits for), POLLOUT only while an outgoing packet
 * is half sent. */
static int outbound(const struct sftp_t *s)
{
    return s->r.fs.c.s != NULL &&
           (libssh2_session_block_directions(s->r.fs.c.s) & LIBSSH2_SESSION_BLOCK_OUTBOUND);
}

static void update_fds(struct sftp_t *s)
{
    s->t.rfd = s->r.fs.c.sock;
    s->t.wfd = outbound(s) ? s->r.fs.c.sock : -1;
    counts(s);
}

static unsigned sftp_waits(const ds_transport_t *t, int have_output)
{
    (void)have_output; /* the receiver takes input as the server answers */
    return DS_TRANSPORT_WAIT_READ |
           (outbound((const struct sftp_t *)t) ? DS_TRANSPORT_WAIT_WRITE : 0);
}

/* Steps the receiver as far as it goes (its lines in the opener's log
 * scope). */
static void step(struct sftp_t *s)
{
    ds_log_scope_t prev;
    int rc;

    if (s->dead || s->r.fs.c.s == NULL)
        return;
    ds_log_scope_save(&prev);
    ds_log_scope_set(&s->scope);
    rc = ds__sftp_recv_step(&s->r);
    ds_log_scope_set(&prev);
    if (rc != 0) {
        s->dead = 1;
        s->serve_rc = rc < 0 ? rc : 0;
    }
    update_fds(s);
}

/* What the receiver's input takes now (SFTP_IN_LOW). */
static size_t in_room(const ds_proto_buf_t *in)
{
    size_t want = SFTP_IN_LOW;

    if (in->len >= DS_PROTO_HDR_LEN && ds_proto_frame_len(in->p, in->len) == 0) {
        size_t flen = DS_PROTO_HDR_LEN + ((size_t)in->p[0] << 24 | (size_t)in->p[1] << 16 |
                                          (size_t)in->p[2] << 8 | in->p[3]);

        if (flen > want) /* its header was checked: at most DS_PROTO_MAX_PAYLOAD */
            want = flen;
    }
    return in->len < want ? want - in->len : 0;
}

static long sftp_write(ds_transport_t *t, const void *p, size_t n)
{
    struct sftp_t *s = (struct sftp_t *)t;
    size_t room;

    if (s->dead || s->closed)
        return (long)n; /* the session's end is reported by read */
    step(s);
    room = in_room(&s->r.in);
    if (n > room)
        n = room;
    if (n > 0 && ds_proto_buf_append(&s->r.in, p, n) < 0) {
        snprintf(t->err, sizeof(t->err), "SFTP on %s: out of memory", s->r.fs.u.where);
        return DS_ENOMEM;
    }
    if (n > 0)
        step(s);
    return (long)n;
}

static long sftp_read(ds_transport_t *t, void *buf, size_t cap)
{
    struct sftp_t *s = (struct sftp_t *)t;
    size_t n;

    step(s);
    n = s->r.out.len < cap ? s->r.out.len : cap;
    if (n > 0) {
        memcpy(buf, s->r.out.p, n);
        ds_proto_buf_consume(&s->r.out, n);
        return (long)n;
    }
    if (!s->dead)
        return 0;
    if (s->r.fs.err[0])
        snprintf(t->err, sizeof(t->err), "SFTP: %.480s", s->r.fs.err);
    else
        snprintf(t->err, sizeof(t->err), "SFTP on %s: the receiver ended the session",
                 s->r.fs.u.where);
    return DS_ETRANSPORT;
}

/* The SFTP handles still open (a session cut mid-file or mid-request):
 * closed after the cut, which frees them in libssh2 at once (the close
 * cannot be sent). */
static void drop_handles(struct ds__sftp_recv *r)
{
    LIBSSH2_SFTP_HANDLE **h[] = {&r->lck.h, &r->mst.h};

    for (int k = 0; k < SFTP_SLOTS; k++)
        if (r->slot[k].h != NULL) {
            libssh2_sftp_close_handle(r->slot[k].h);
            r->slot[k].h = NULL;
        }
    for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++)
        if (*h[i] != NULL) {
            libssh2_sftp_close_handle(*h[i]);
            *h[i] = NULL;
        }
    ds__sftp_req_drop(r); /* their handles lost, */
    ds__sftp_lq_drop(r);
    ds__sftp_lost_cut(&r->fs); /* and freed with the others */
}

/* Frees what is left of the connection and closes the socket. The socket
 * is cut first: every libssh2 call below then fails at once (send gets
 * EPIPE, recv the end of the stream), so the blocking mode the frees need
 * (libssh2_session_free would return EAGAIN otherwise) never waits. */
static void end_remote(struct sftp_t *s)
{
    struct ds__sftp_fs *fs = &s->r.fs;

    if (s->remote_ended)
        return;
    s->remote_ended = 1;
    if (fs->c.sock >= 0)
        shutdown(fs->c.sock, SHUT_RDWR);
    if (fs->c.s != NULL) {
        libssh2_session_set_blocking(fs->c.s, 1);
        drop_handles(&s->r); /* the cut socket fails their close at once */
    }
    ds__sftp_slots_free(&s->r, 0);
    fs->sftp = NULL;
    counts(s);
    ds__ssh_conn_close(&fs->c, 0);
    s->t.rfd = s->t.wfd = -1;
}

/* The close's result, the message naming the failure. */
static int closed_end(struct sftp_t *s)
{
    end_remote(s);
    s->close_rc = s->serve_rc < 0 ? s->serve_rc : s->end_rc;
    if (s->close_rc < 0)
        snprintf(s->t.err, sizeof(s->t.err), "SFTP: %.480s",
                 s->r.fs.err[0] ? s->r.fs.err : ds_strerror(s->close_rc));
    s->cst = CL_DONE;
    return s->close_rc;
}

/* See ds_transport_ops_t.close_step: the end of the console's input, the
 * frames still in hand served, the session's end (sftp_end.c), each
 * waited for on the loop within timeout; then the socket. */
static int sftp_close_step(ds_transport_t *t, int64_t now, int *fd, unsigned *waits,
                           int64_t *wake_ns, int *rc)
{
    struct sftp_t *s = (struct sftp_t *)t;
    ds_log_scope_t prev;
    int w = 0;

    *fd = -1;
    *waits = 0;
    if (!s->closed) {
        s->closed = 1;
        s->r.eof = 1;
        s->cst = CL_INPUT;
        s->close_deadline = now + (int64_t)s->r.io_timeout_s * 1000000000LL;
    }
    if (s->cst < CL_FDS && (s->killed || now >= s->close_deadline || s->r.fs.c.s == NULL)) {
        if (s->cst == CL_INPUT && s->serve_rc == 0)
            s->serve_rc = s->killed ? DS_ETRANSPORT : -ETIMEDOUT;
        if (s->cst == CL_END && !ds__sftp_end_past_manifest(&s->r) && s->end_rc == 0)
            s->end_rc = s->killed ? DS_ETRANSPORT : -ETIMEDOUT;
        if (s->serve_rc < 0 || s->end_rc < 0)
            ds__sftp_errf(&s->r.fs, "SFTP on %s: the session did not end within %d s%s",
                          s->r.fs.u.where, s->r.io_timeout_s, s->killed ? " (cut)" : "");
        s->dead = 1;
        s->cst = CL_FDS;
    }
    if (s->cst == CL_INPUT) {
        step(s);
        if (s->dead)
            s->cst = CL_END;
    }
    if (s->cst == CL_END) {
        ds_log_scope_save(&prev);
        ds_log_scope_set(&s->scope);
        w = ds__sftp_end_step(&s->r, s->serve_rc == 0, &s->end_rc);
        ds_log_scope_set(&prev);
        update_fds(s);
        if (w == 0)
            s->cst = CL_FDS;
    }
    if (s->cst == CL_FDS) { /* stepped again once the caller stopped polling */
        s->cst = CL_RELEASE;
        *wake_ns = now;
        return 0;
    }
    if (s->cst >= CL_RELEASE) {
        *rc = s->cst == CL_DONE ? s->close_rc : closed_end(s);
        return 1;
    }
    *fd = s->r.fs.c.sock;
    *waits = sftp_waits(t, 0);
    *wake_ns = s->close_deadline;
    return 0;
}

/* Blocking close: the same steps, waiting in poll(2). */
static int sftp_close(ds_transport_t *t)
{
    struct ds__ssh_wait w;
    int rc = 0;

    while (sftp_close_step(t, ds__ssh_mono_ns(), &w.fd, &w.waits, &w.wake_ns, &rc) == 0)
        ds__ssh_wait_for(&w);
    return rc;
}

/* Cuts the connection: every libssh2 call then fails at once, and the
 * close does not wait on a hung server. */
static void sftp_kill(ds_transport_t *t)
{
    struct sftp_t *s = (struct sftp_t *)t;

    if (s->r.fs.c.sock >= 0)
        shutdown(s->r.fs.c.sock, SHUT_RDWR);
    s->killed = 1;
}

static void sftp_free(ds_transport_t *t)
{
    struct sftp_t *s = (struct sftp_t *)t;

    if (s->running)
        sftp_close(t);
    else
        end_remote(s);
    ds_proto_buf_free(&s->r.in);
    ds_proto_buf_free(&s->r.out);
    ds_manifest_free(s->r.man);
    ds__sftp_slots_free(&s->r, 0);
    ds__sftp_lq_drop(&s->r);
    free(s->r.mst.buf);
    ZSTD_freeDCtx(s->r.zd);
    free(s->r.zbuf);
    free(s->r.fs.rbuf);
    free(s);
}

/* See ds_transport_ops_t.note: once, when the mv loop could not start and
 * replaces went by unlink + rename instead. */
static int sftp_note(ds_transport_t *t, char *buf, size_t cap)
{
    struct sftp_t *s = (struct sftp_t *)t;

    if (!s->r.mvq.unmv || s->r.mvq.noted)
        return 0;
    s->r.mvq.noted = 1;
    snprintf(buf, cap,
             "SFTP mode: the mv -f loop could not start (%s): a file is replaced by unlink + "
             "rename instead (its path is absent for an instant, never partial)",
             s->r.mvq.nomv);
    return 1;
}

static const ds_transport_ops_t sftp_ops = {
    .name = "sftp",
    .write = sftp_write,
    .read = sftp_read,
    .close = sftp_close,
    .kill = sftp_kill,
    .waits = sftp_waits,
    .free = sftp_free,
    .close_step = sftp_close_step,
    .note = sftp_note,
};

static void note(struct sftp_t *s, const char *why)
{
    if (s->r.fs.shell)
        snprintf(s->t.note, sizeof(s->t.note),
                 "SFTP mode (%s): files go whole to .distsync/tmp and are moved into place with "
                 "mv -f (atomic)",
                 why);
    else
        s->t.caps |= DS_TRANSPORT_REPLACE_GAP;
    if (!s->r.fs.shell)
        snprintf(s->t.note, sizeof(s->t.note),
                 "SFTP mode (%s): the account runs no commands, so a file is replaced by unlink + "
                 "rename (its path is absent for an instant, never partial)",
                 why);
}

static uint64_t session_id(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)getpid() << 40 ^ (uint64_t)ts.tv_sec << 20 ^ (uint64_t)ts.tv_nsec;
}

/* A failed start: the message from fs->err and, when transport = auto
 * chose SFTP, why (an agent that exited says why there, e.g. a missing
 * root, which SFTP then reports in its own words). */
static int start_failed(struct sftp_t *s, int rc, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s%s%s%s", s->r.fs.err, s->why[0] ? " (SFTP mode after " : "", s->why,
             s->why[0] ? ")" : "");
    return rc;
}

static int sh_again(struct sftp_t *s, long rc)
{
    return rc == LIBSSH2_ERROR_EAGAIN ||
           (rc == 0 && libssh2_session_last_errno(s->r.fs.c.s) == LIBSSH2_ERROR_EAGAIN);
}

/* The shell probe's output: stdout kept (up to sh_out), stderr dropped.
 * Returns 0 to wait, 1 to go on. */
static int sh_read(struct sftp_t *s)
{
    char drop[1024];
    int moved = 0;
    ssize_t r;

    while (libssh2_channel_read_stderr(s->sh, drop, sizeof(drop)) > 0)
        moved = 1; /* libssh2 sees the end only once every stream is read */
    if (s->sh_n + 1 < sizeof(s->sh_out))
        r = libssh2_channel_read(s->sh, s->sh_out + s->sh_n, sizeof(s->sh_out) - 1 - s->sh_n);
    else
        r = libssh2_channel_read(s->sh, drop, sizeof(drop));
    if (r > 0 && s->sh_n + 1 < sizeof(s->sh_out))
        s->sh_n += (size_t)r;
    if (r < 0 && r != LIBSSH2_ERROR_EAGAIN)
        s->st = ST_SH_FREE;
    else if (r == 0 && libssh2_channel_eof(s->sh))
        s->st = ST_SH_CLOSE;
    return r != LIBSSH2_ERROR_EAGAIN || moved || s->st != ST_SH_READ;
}

/* The shell probe (echo on an exec channel): whether the account runs
 * commands. A failure only says it does not. Returns 0 to wait, 1 to go
 * on. */
static int sh_step(struct sftp_t *s)
{
    LIBSSH2_SESSION *ss = s->r.fs.c.s;
    long rc;

    switch (s->st) {
    case ST_SH_OPEN:
        s->sh = libssh2_channel_open_session(ss);
        if (s->sh == NULL && sh_again(s, 0))
            return 0;
        s->st = s->sh != NULL ? ST_SH_EXEC : ST_RUN;
        return 1;
    case ST_SH_EXEC:
        if ((rc = libssh2_channel_exec(s->sh, SHELL_PROBE)) == LIBSSH2_ERROR_EAGAIN)
            return 0;
        s->st = rc == 0 ? ST_SH_EOF : ST_SH_FREE;
        return 1;
    case ST_SH_EOF:
        if ((rc = libssh2_channel_send_eof(s->sh)) == LIBSSH2_ERROR_EAGAIN)
            return 0;
        s->st = rc == 0 ? ST_SH_READ : ST_SH_FREE;
        return 1;
    case ST_SH_READ:
        return sh_read(s);
    case ST_SH_CLOSE:
        if ((rc = libssh2_channel_close(s->sh)) == LIBSSH2_ERROR_EAGAIN)
            return 0;
        s->st = rc == 0 ? ST_SH_WAIT : ST_SH_FREE;
        return 1;
    case ST_SH_WAIT:
        if ((rc = libssh2_channel_wait_closed(s->sh)) == LIBSSH2_ERROR_EAGAIN)
            return 0;
        s->sh_out[s->sh_n] = '\0';
        s->r.fs.shell = rc == 0 && libssh2_channel_get_exit_status(s->sh) == 0 &&
                        strncmp(s->sh_out, "distsync-shell-ok", 17) == 0;
        s->st = ST_SH_FREE;
        return 1;
    default: /* ST_SH_FREE */
        if (libssh2_channel_free(s->sh) == LIBSSH2_ERROR_EAGAIN)
            return 0;
        s->sh = NULL;
        s->st = ST_RUN;
        return 1;
    }
}

/* SFTP up and the root a directory. Returns 0 to wait, 1 to go on, or a
 * failure (message in err). */
static int sftp_step(struct sftp_t *s, char *err, size_t errlen)
{
    struct ds__sftp_fs *fs = &s->r.fs;
    LIBSSH2_SFTP_ATTRIBUTES a;
    int rc;

    if (s->st == ST_INIT) {
        fs->sftp = libssh2_sftp_init(fs->c.s);
        if (fs->sftp == NULL && libssh2_session_last_errno(fs->c.s) == LIBSSH2_ERROR_EAGAIN)
            return 0;
        if (fs->sftp == NULL) {
            snprintf(err, errlen, "%s: cannot start SFTP: %s (is the sftp subsystem enabled?)",
                     fs->u.where, ds__ssh_errmsg(fs->c.s));
            return DS_ETRANSPORT;
        }
        s->st = ST_STAT;
    }
    rc = libssh2_sftp_stat(fs->sftp, fs->root, &a);
    if (rc == LIBSSH2_ERROR_EAGAIN)
        return 0;
    if (rc != 0)
        return start_failed(s, ds__sftp_fail(fs, "target root", fs->root), err, errlen);
    if (!LIBSSH2_SFTP_S_ISDIR(a.permissions)) {
        snprintf(err, errlen, "target root %s on %s is not a directory", fs->root, fs->u.where);
        return -ENOTDIR;
    }
    s->st = ST_SH_OPEN;
    return 1;
}

/* The started SFTP: the receiver runs, non-blocking, on the caller's
 * thread from now on (its lines in the opener's log scope). */
static int run(struct sftp_t *s)
{
    libssh2_session_set_blocking(s->r.fs.c.s, 0); /* for good: no call waits on the loop */
    note(s, s->why[0] ? s->why : "transport = sftp");
    ds_log_scope_save(&s->scope);
    s->running = 1;
    update_fds(s);
    return 0;
}

/* See ssh_int.h. */
int ds__sftp_start_step(ds_transport_t *t, int64_t now, struct ds__ssh_wait *w, char *err,
                        size_t errlen)
{
    struct sftp_t *s = (struct sftp_t *)t;
    int rc = 1;

    while (rc == 1 && s->st != ST_RUN) {
        if (now >= s->r.fs.c.deadline_ns) {
            snprintf(err, errlen, "%s: starting SFTP: no answer within connect_timeout",
                     s->r.fs.u.where);
            return DS_ETRANSPORT;
        }
        rc = s->st <= ST_STAT ? sftp_step(s, err, errlen) : sh_step(s);
    }
    if (rc < 0)
        return rc;
    if (rc == 0)
        return ds__ssh_conn_wait(&s->r.fs.c, s->r.fs.c.deadline_ns, w);
    run(s);
    return 1;
}

/* See ssh_int.h. */
int ds__sftp_start_new(const ds_transport_cfg_t *cfg, struct ds__ssh_conn *c,
                       const struct ds__ssh_url *u, const char *why, ds_transport_t **out,
                       char *err, size_t errlen)
{
    struct sftp_t *s = calloc(1, sizeof(*s));
    size_t n;

    *out = NULL;
    if (s == NULL || (s->r.fs.rbuf = malloc(SFTP_READ_BUF)) == NULL) {
        free(s);
        ds__ssh_conn_close(c, 0);
        snprintf(err, errlen, "%s: out of memory", cfg->url);
        return DS_ENOMEM;
    }
    s->t.ops = &sftp_ops;
    s->t.rfd = s->t.wfd = -1;
    s->t.caps = DS_TRANSPORT_WHOLE_ONLY;
    ds__ssh_conn_move(&s->r.fs.c, c);
    s->r.fs.u = *u;
    s->r.fs.readback = cfg->verify_readback;
    s->r.session = session_id();
    s->r.corrupt = cfg->test_sftp_corrupt;
    s->r.owner = -1;
    s->r.max_slots = SFTP_SLOTS;
    s->r.io_timeout_s = cfg->timeout_s ? cfg->timeout_s : IO_TIMEOUT_S;
    snprintf(s->why, sizeof(s->why), "%.359s", why ? why : "");
    snprintf(s->r.fs.root, sizeof(s->r.fs.root), "%s", u->path);
    n = strlen(s->r.fs.root);
    while (n > 1 && s->r.fs.root[n - 1] == '/')
        s->r.fs.root[--n] = '\0';
    libssh2_session_set_blocking(s->r.fs.c.s, 0);
    *out = &s->t;
    return 0;
}

/* See ssh_int.h: the stepped start driven by poll(2). */
int ds__transport_sftp_attach(const ds_transport_cfg_t *cfg, struct ds__ssh_conn *c,
                              const struct ds__ssh_url *u, const char *why, ds_transport_t **out,
                              char *err, size_t errlen)
{
    ds_transport_t *t;
    struct ds__ssh_wait w;
    int rc = ds__sftp_start_new(cfg, c, u, why, &t, err, errlen);

    *out = NULL;
    if (rc < 0)
        return rc;
    while ((rc = ds__sftp_start_step(t, ds__ssh_mono_ns(), &w, err, errlen)) == 0)
        ds__ssh_wait_for(&w);
    if (rc < 0) {
        ds_transport_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* See ssh_int.h. */
int ds__transport_sftp_open_conn(const ds_transport_cfg_t *cfg, int automatic,
                                 struct ds__ssh_conn *c, const struct ds__ssh_url *u,
                                 ds_transport_t **out, char *err, size_t errlen)
{
    char why[400];
    int rc = 0;

    *out = NULL;
    if (automatic)
        rc = ds__ssh_agent_probe(c, cfg->agent, u->path,
                                 cfg->timeout_s ? cfg->timeout_s : IO_TIMEOUT_S, why, sizeof(why));
    if (rc < 0) {
        ds__ssh_conn_close(c, 0);
        return rc;
    }
    if (rc == 1)
        return ds__transport_ssh_attach(cfg, c, u, out, err, errlen);
    if (automatic) {
        char buf[450];

        snprintf(buf, sizeof(buf), "transport = auto: %s", why);
        return ds__transport_sftp_attach(cfg, c, u, buf, out, err, errlen);
    }
    return ds__transport_sftp_attach(cfg, c, u, NULL, out, err, errlen);
}

/* See transport.h: transport = sftp, and auto (the agent when it answers,
 * else SFTP on the same connection). */
int ds__transport_sftp_open(const ds_transport_cfg_t *cfg, int automatic, ds_transport_t **out,
                            char *err, size_t errlen)
{
    struct ds__ssh_conn c;
    struct ds__ssh_url u;
    int rc = ds__ssh_connect(cfg, &c, &u, err, errlen);

    *out = NULL;
    if (rc < 0)
        return rc;
    return ds__transport_sftp_open_conn(cfg, automatic, &c, &u, out, err, errlen);
}

/*
 * ssh:// backend, SFTP mode (transport = sftp, or auto when the server has
 * no agent): an in-process receiver (sftp_recv.c) runs on a thread of its
 * own and speaks the apply protocol to the console over one end of an
 * AF_UNIX socketpair, exactly as the file:// backend's receiver does, and
 * SFTP to the server with libssh2 (each call or wait bounded by
 * io_timeout): blocking for the session's requests, non-blocking for the
 * files in flight, SFTP_SLOTS at once on channels of their own
 * (sftp_slot.c). The console's session, plan, status and history are the
 * agent mode's; the transport says DS_TRANSPORT_WHOLE_ONLY so that no
 * delta is planned, and leaves a note for the run's events saying why
 * SFTP was chosen and how files are replaced.
 *
 * The start (SFTP up, the root checked, the shell probe) is a set of
 * non-blocking steps within connect_timeout (ds__sftp_start_step: the
 * engine steps it on its loop, a blocking caller with poll(2)); then the
 * thread starts. The thread ends the SFTP connection itself before it
 * ends, so that the close (sftp_close_step on the loop) only waits for
 * it; the TCP socket is closed after the thread, so that kill can always
 * cut it. The console's end is non-blocking: rfd = wfd = it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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
#include "sock_end.h"

#define SHELL_PROBE  "echo distsync-shell-ok"
#define IO_TIMEOUT_S 30 /* timeout_s unset */

/* The stepped close's states. */
enum { CL_INPUT, CL_RELEASE, CL_DONE };

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
    ds_transport_t t; /* first: the common head; rfd = wfd = our end */
    struct ds__sftp_recv r;
    pthread_t thread;
    int started, dead, closed;
    int serve_rc, close_rc;
    int remote_ended; /* end_remote ran */
    int sock;         /* the TCP socket: closed only after the thread, so kill may cut it */
    atomic_int ended; /* the thread is about to return: join does not wait */
    int cst;          /* the stepped close: CL_* */
    /* the start */
    int st;
    LIBSSH2_CHANNEL *sh; /* the shell probe's channel */
    char sh_out[64];     /* its stdout */
    size_t sh_n;
    char why[360];
    ds_log_scope_t scope; /* the opener's: the receiver's lines name its run */
};

static void end_remote(struct sftp_t *s, int graceful);

/* The receiver: the session, then the end of the SFTP connection (so that
 * the console's close, stepped on its loop, waits for nothing but this
 * thread's end), then the end of the stream. */
static void *serve_thread(void *arg)
{
    struct sftp_t *s = arg;

    ds_log_scope_set(&s->scope);
    s->serve_rc = ds__sftp_serve(&s->r);
    end_remote(s, s->serve_rc == 0);
    atomic_store(&s->ended, 1);
    close(s->r.fd); /* the console reads the end of the session */
    s->r.fd = -1;
    return NULL;
}

static void counts(struct sftp_t *s)
{
    s->t.wire_in = atomic_load(&s->r.fs.wire_in);
    s->t.wire_out = atomic_load(&s->r.fs.wire_out);
}

static long sftp_write(ds_transport_t *t, const void *p, size_t n)
{
    struct sftp_t *s = (struct sftp_t *)t;

    counts(s);
    if (s->dead || s->closed)
        return (long)n; /* the session's end is reported by read */
    return ds__sock_send(t, p, n, &s->dead, "sftp receiver");
}

static long sftp_read(ds_transport_t *t, void *buf, size_t cap)
{
    struct sftp_t *s = (struct sftp_t *)t;
    ssize_t r;

    counts(s);
    r = ds__sock_recv(t->rfd, buf, cap);
    if (r >= 0)
        return (long)r;
    s->dead = 1;
    if (s->r.fs.err[0])
        snprintf(t->err, sizeof(t->err), "SFTP: %.480s", s->r.fs.err);
    else
        snprintf(t->err, sizeof(t->err), "SFTP on %s: the receiver ended the session",
                 s->r.fs.u.where);
    return DS_ETRANSPORT;
}

static void end_remote(struct sftp_t *s, int graceful)
{
    struct ds__sftp_fs *fs = &s->r.fs;

    if (s->remote_ended)
        return;
    s->remote_ended = 1;
    if (!graceful && s->sock >= 0) /* nothing for the frees below to wait for */
        shutdown(s->sock, SHUT_RDWR);
    fs->c.sock = -1; /* s->sock: closed by closed_end, after the thread */
    if (fs->c.s != NULL)
        libssh2_session_set_blocking(fs->c.s, 1);
    ds__sftp_slots_free(&s->r, graceful && fs->sftp != NULL);
    if (fs->sftp != NULL) {
        if (graceful)
            libssh2_sftp_shutdown(fs->sftp);
        fs->sftp = NULL;
    }
    if (fs->c.s != NULL) {
        libssh2_session_set_timeout(fs->c.s, 1000);
        ds__ssh_conn_close(&fs->c, graceful);
    }
    ds__sftp_counts(fs);
}

static void sftp_kill(ds_transport_t *t);

/* After the thread: the result, the console's end and the socket closed. */
static int closed_end(struct sftp_t *s)
{
    ds_transport_t *t = &s->t;

    end_remote(s, 0); /* the thread ended it, or never ran: nothing to end politely */
    counts(s);
    if (t->rfd >= 0)
        close(t->rfd);
    if (s->sock >= 0)
        close(s->sock);
    t->rfd = t->wfd = s->sock = -1;
    if (s->close_rc < 0)
        snprintf(t->err, sizeof(t->err), "SFTP: %.480s",
                 s->r.fs.err[0] ? s->r.fs.err : ds_strerror(s->close_rc));
    s->cst = CL_DONE;
    return s->close_rc;
}

static int sftp_close(ds_transport_t *t)
{
    struct sftp_t *s = (struct sftp_t *)t;

    if (s->closed && s->cst != CL_DONE) { /* a stepped close cut short */
        if (s->started)
            sftp_kill(t);
        s->closed = 0;
    }
    if (s->closed)
        return s->close_rc;
    s->closed = 1;
    if (s->started) {
        shutdown(t->wfd, SHUT_WR);
        ds__sock_drain(t->rfd);
        pthread_join(s->thread, NULL);
        s->started = 0;
        s->close_rc = s->serve_rc;
    }
    return closed_end(s);
}

/* See ds_transport_ops_t.close_step: the end of the console's input, then
 * the thread's end (it writes the manifest and ends the SFTP connection;
 * its end of the socketpair closes last), each waited for on the loop. */
static int sftp_close_step(ds_transport_t *t, int64_t now, int *fd, unsigned *waits,
                           int64_t *wake_ns, int *rc)
{
    struct sftp_t *s = (struct sftp_t *)t;
    char buf[4096];
    ssize_t n;

    *fd = -1;
    *waits = 0;
    if (!s->closed) {
        s->closed = 1;
        s->cst = s->started ? CL_INPUT : CL_RELEASE;
        if (s->started)
            shutdown(t->wfd, SHUT_WR);
    }
    while (s->cst == CL_INPUT && (n = recv(t->rfd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        ; /* what the receiver still says is dropped */
    if (s->cst == CL_INPUT && !atomic_load(&s->ended)) {
        *fd = t->rfd; /* its end closes last */
        *waits = DS_TRANSPORT_WAIT_READ;
        *wake_ns = now + 20000000LL; /* after a kill, our end reads EOF first */
        return 0;
    }
    if (s->cst == CL_INPUT) {
        pthread_join(s->thread, NULL); /* it has returned, or is about to */
        s->started = 0;
        s->close_rc = s->serve_rc;
        s->cst = CL_RELEASE;
        *wake_ns = now; /* the caller stops polling our end first */
        return 0;
    }
    *rc = closed_end(s);
    return 1;
}

/* Both ends: the thread, blocked in libssh2 or on the socketpair, fails
 * its call and ends. */
static void sftp_kill(ds_transport_t *t)
{
    struct sftp_t *s = (struct sftp_t *)t;

    if (t->rfd >= 0)
        shutdown(t->rfd, SHUT_RDWR);
    if (s->sock >= 0)
        shutdown(s->sock, SHUT_RDWR);
}

static void sftp_free(ds_transport_t *t)
{
    struct sftp_t *s = (struct sftp_t *)t;

    sftp_close(t);
    ds_proto_buf_free(&s->r.in);
    ds_proto_buf_free(&s->r.out);
    ds_manifest_free(s->r.man);
    ds__sftp_slots_free(&s->r, 0);
    ZSTD_freeDCtx(s->r.zd);
    free(s->r.zbuf);
    free(s->r.fs.rbuf);
    free(s);
}

static const ds_transport_ops_t sftp_ops = {
    .name = "sftp",
    .write = sftp_write,
    .read = sftp_read,
    .close = sftp_close,
    .kill = sftp_kill,
    .free = sftp_free,
    .close_step = sftp_close_step,
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

/* Starts the thread with every signal blocked. Returns 0 or -errno. */
static int start_thread(struct sftp_t *s)
{
    sigset_t all, old;
    int rc;

    ds_log_scope_save(&s->scope);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = -pthread_create(&s->thread, NULL, serve_thread, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    s->started = rc == 0;
    return rc;
}

static uint64_t session_id(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)getpid() << 40 ^ (uint64_t)ts.tv_sec << 20 ^ (uint64_t)ts.tv_nsec;
}

static int socket_pair(struct sftp_t *s, char *err, size_t errlen)
{
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        snprintf(err, errlen, "%s: socketpair: %s", s->r.fs.u.where, strerror(errno));
        return -errno;
    }
    s->t.rfd = s->t.wfd = sv[0];
    s->r.fd = sv[1];
    if (fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "%s: fcntl: %s", s->r.fs.u.where, strerror(errno));
        return -errno;
    }
    return 0;
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

/* The receiver's thread on the started SFTP: the session blocking from
 * now on (each call bounded by io_timeout), the socketpair, the note. */
static int run(struct sftp_t *s, char *err, size_t errlen)
{
    int rc;

    libssh2_session_set_blocking(s->r.fs.c.s, 1);
    libssh2_session_set_timeout(s->r.fs.c.s, 1000L * s->r.io_timeout_s);
    note(s, s->why[0] ? s->why : "transport = sftp");
    rc = socket_pair(s, err, errlen);
    if (rc == 0 && (rc = start_thread(s)) < 0)
        snprintf(err, errlen, "%s: cannot start the SFTP receiver thread: %s", s->r.fs.u.where,
                 strerror(-rc));
    if (rc == 0)
        counts(s);
    return rc;
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
    rc = run(s, err, errlen);
    return rc < 0 ? rc : 1;
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
    s->t.rfd = s->t.wfd = s->r.fd = -1;
    s->t.caps = DS_TRANSPORT_WHOLE_ONLY;
    ds__ssh_conn_move(&s->r.fs.c, c);
    s->sock = s->r.fs.c.sock;
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

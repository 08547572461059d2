/*
 * ssh:// backend, agent mode: the agent command (`distsync agent` unless
 * agent = says otherwise) runs with --root PATH on an SSH exec channel and
 * the protocol flows over the channel's stdin/stdout, exactly as over the
 * pipe of transport_pipe.c. The open (ssh_open.c, bounded by
 * connect_timeout) is stepped by the caller's loop, or driven by poll(2)
 * for a blocking caller; afterwards the session is non-blocking and the
 * transport's fds are the socket. The agent's stderr is drained on every
 * call, so that it never fills the channel window; its lines go to the log
 * and to the run's events (ds_transport_note: at most LOG_LINES_MAX lines
 * of at most NOTE_LEN bytes per connection, in a fixed array, so a peer
 * flooding its stderr costs nothing more) and its last ones into error
 * messages.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "distsync/error.h"
#include "distsync/log.h"
#include "distsync/proto.h"

#include "ssh_int.h"

#define DEFAULT_AGENT "distsync agent"
#define CLOSE_WAIT_S  30
#define TAIL_MAX      1024 /* last bytes of the agent's stderr kept for messages */
#define LOG_LINES_MAX 100  /* stderr lines logged per connection (a peer may flood) */
#define NOTE_LEN      240  /* bytes of a stderr line kept for the run's events */
/* exit status 127 from the remote shell */
#define NOT_FOUND                                                                                  \
    "the agent command was not found on the server (install distsync there, or set agent = to "    \
    "its path)"

struct ssh_t {
    ds_transport_t t; /* first: the common head */
    struct ds__ssh_conn c;
    LIBSSH2_CHANNEL *ch;
    struct ds__ssh_url u;
    unsigned close_wait_s;
    char tail[TAIL_MAX + 1]; /* stderr's last bytes */
    size_t ntail;
    char line[512]; /* stderr's current line, for the log */
    size_t nline;
    unsigned nlogged; /* stderr lines logged, at most LOG_LINES_MAX + 1 */
    /* the logged lines, for the run's events: notes[nread..nnotes) wait */
    char notes[LOG_LINES_MAX + 1][NOTE_LEN];
    unsigned nnotes, nread;
    int closed, killed;
    /* the close stepped on the loop (ssh_close_step) */
    int cst, close_rc;
    int64_t close_deadline, bye_deadline;
    size_t drained;
    /* greeted by auto's probe (ds__transport_ssh_greeted): the session's
     * HELLO is taken (hdr, then hello_left payload bytes), the probe's
     * reply read first */
    int swallow;
    uint8_t hdr[DS_PROTO_HDR_LEN];
    size_t nhdr, hello_left;
    uint8_t *pre;
    size_t npre, pre_off;
    /* after auto's prelude: the bytes the session must write first,
     * expect[exp_off, nexpect) not yet seen (NULL: the HELLO frame) */
    uint8_t *expect;
    size_t nexpect, exp_off;
    unsigned long win_max; /* the largest channel window seen: the initial one */
};

/* The stepped close's states. */
enum { CS_EOF, CS_DRAIN, CS_CLOSE, CS_WAIT, CS_BYE, CS_FDS, CS_RELEASE, CS_DONE };

/* Keeps the wire counters of the head up to date (the engine reads them). */
static void sync_counts(struct ssh_t *st)
{
    st->t.wire_in = st->c.wire_in;
    st->t.wire_out = st->c.wire_out;
}

/* Which way libssh2 waits: POLLIN always (data, or the window adjust a
 * full remote window waits for), POLLOUT only while an outgoing packet is
 * half sent, so that a poll(2) driver never spins on a writable socket. */
static int ssh_wait_events(const ds_transport_t *t)
{
    const struct ssh_t *st = (const struct ssh_t *)t;
    int dirs = st->c.s ? libssh2_session_block_directions(st->c.s) : 0;

    return POLLIN | ((dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND) ? POLLOUT : 0);
}

#ifdef DS_TRANSPORT_WAIT_READ
/* The wait-directions op, once transport.h has it: the same answer as the
 * fds update_fds() exposes. have_output does not matter: libssh2 says
 * whether a pending write waits for the socket or for the peer. */
static unsigned ssh_waits(const ds_transport_t *t, int have_output)
{
    (void)have_output;
    return DS_TRANSPORT_WAIT_READ | ((ssh_wait_events(t) & POLLOUT) ? DS_TRANSPORT_WAIT_WRITE : 0);
}
#endif

static void update_fds(struct ssh_t *st)
{
    st->t.rfd = st->c.sock;
    st->t.wfd = (ssh_wait_events(&st->t) & POLLOUT) ? st->c.sock : -1;
    sync_counts(st);
}

/* A whole stderr line: logged and kept for the run's events, up to
 * LOG_LINES_MAX lines, then one line saying the rest is dropped. */
static void line_done(struct ssh_t *st)
{
    const char *text = st->line;

    if (st->nlogged > LOG_LINES_MAX)
        return;
    if (st->nlogged == LOG_LINES_MAX)
        text = "more on its stderr, not logged";
    ds_log(DS_LOG_WARN, "agent on %s: %s", st->u.where, text);
    snprintf(st->notes[st->nnotes++], NOTE_LEN, "%.*s", NOTE_LEN - 1, text); /* cut */
    st->nlogged++;
}

static int ssh_note(ds_transport_t *t, char *buf, size_t cap)
{
    struct ssh_t *st = (struct ssh_t *)t;

    if (st->nread >= st->nnotes)
        return 0;
    snprintf(buf, cap, "%s", st->notes[st->nread++]);
    return 1;
}

/* Keeps the last TAIL_MAX bytes of stderr, for messages. */
static void keep_tail(struct ssh_t *st, const char *p, size_t n)
{
    if (n >= TAIL_MAX) {
        p += n - TAIL_MAX;
        n = TAIL_MAX;
    }
    if (st->ntail + n > TAIL_MAX) {
        size_t drop = st->ntail + n - TAIL_MAX;

        memmove(st->tail, st->tail + drop, st->ntail - drop);
        st->ntail -= drop;
    }
    memcpy(st->tail + st->ntail, p, n);
    st->ntail += n;
    st->tail[st->ntail] = '\0';
}

/* Every byte read goes through the line splitter (a read longer than the
 * tail must not skip the lines at its start). */
static void keep_stderr(struct ssh_t *st, const char *p, size_t n)
{
    keep_tail(st, p, n);
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n' && st->nline < sizeof(st->line) - 1) {
            st->line[st->nline++] = p[i];
            continue;
        }
        if (p[i] != '\n')
            continue; /* an over-long line is cut */
        st->line[st->nline] = '\0';
        if (st->nline > 0)
            line_done(st);
        st->nline = 0;
    }
}

/* Reads whatever the agent wrote to stderr (never blocks). */
static void drain_stderr(struct ssh_t *st)
{
    char buf[4096];
    ssize_t n;

    while (st->ch != NULL && (n = libssh2_channel_read_stderr(st->ch, buf, sizeof(buf))) > 0)
        keep_stderr(st, buf, (size_t)n);
}

/* The last line of the agent's stderr (for messages), "" when none. */
static const char *last_words(struct ssh_t *st, char *out, size_t cap)
{
    size_t end = st->ntail, start;

    while (end > 0 && (st->tail[end - 1] == '\n' || st->tail[end - 1] == '\r'))
        end--;
    for (start = end; start > 0 && st->tail[start - 1] != '\n';)
        start--;
    if (end == start) {
        out[0] = '\0';
        return out;
    }
    snprintf(out, cap, " (agent said: %.*s)", (int)(end - start), st->tail + start);
    return out;
}

static int fail(struct ssh_t *st, const char *what)
{
    char words[400];

    snprintf(st->t.err, sizeof(st->t.err), "agent on %s: %s%s", st->u.where, what,
             last_words(st, words, sizeof(words)));
    return DS_ETRANSPORT;
}

/* Greeted: takes the session's HELLO frame (its header, then its payload),
 * which the probe's HELLO stood for. Returns the bytes taken or < 0. */
static long take_hello(struct ssh_t *st, const uint8_t *p, size_t n)
{
    size_t k;

    if (st->nhdr < DS_PROTO_HDR_LEN) {
        k = n < DS_PROTO_HDR_LEN - st->nhdr ? n : DS_PROTO_HDR_LEN - st->nhdr;
        memcpy(st->hdr + st->nhdr, p, k);
        if ((st->nhdr += k) < DS_PROTO_HDR_LEN)
            return (long)k;
        if (st->hdr[4] != DS_MSG_HELLO || memcmp(st->hdr + 8, "\0\0\0\1", 4) != 0)
            return fail(st, "the first frame is not HELLO (id 1), which the probe answered");
        st->hello_left = (size_t)st->hdr[0] << 24 | (size_t)st->hdr[1] << 16 |
                         (size_t)st->hdr[2] << 8 | st->hdr[3];
    } else {
        k = n < st->hello_left ? n : st->hello_left;
        st->hello_left -= k;
    }
    st->swallow = st->hello_left > 0;
    return (long)k;
}

/* Greeted after a prelude: takes the session's first bytes, which must
 * be the prelude the probe wrote. Returns the bytes taken or < 0. */
static long take_prelude(struct ssh_t *st, const uint8_t *p, size_t n)
{
    size_t k = n < st->nexpect - st->exp_off ? n : st->nexpect - st->exp_off;

    if (memcmp(p, st->expect + st->exp_off, k) != 0)
        return fail(st, "the session's first frames differ from those the probe sent");
    st->exp_off += k;
    if (st->exp_off == st->nexpect) {
        st->swallow = 0;
        free(st->expect);
        st->expect = NULL;
    }
    return (long)k;
}

static long ssh_write(ds_transport_t *t, const void *p, size_t n)
{
    struct ssh_t *st = (struct ssh_t *)t;
    unsigned long win;
    ssize_t w;

    if (st->closed || st->ch == NULL) {
        snprintf(t->err, sizeof(t->err), "agent on %s: stream already closed", st->u.where);
        return DS_ETRANSPORT;
    }
    win = libssh2_channel_window_write_ex(st->ch, NULL);
    if (win > st->win_max) /* before the first write: the initial window */
        st->win_max = win;
    if (st->swallow && n > 0)
        return st->expect ? take_prelude(st, p, n) : take_hello(st, p, n);
    w = libssh2_channel_write(st->ch, p, n);
    drain_stderr(st);
    update_fds(st);
    if (w == LIBSSH2_ERROR_EAGAIN)
        return 0;
    if (w < 0) {
        char what[300];

        snprintf(what, sizeof(what), "write: %s", ds__ssh_errmsg(st->c.s));
        return fail(st, what);
    }
    return (long)w;
}

static long ssh_read(ds_transport_t *t, void *buf, size_t cap)
{
    struct ssh_t *st = (struct ssh_t *)t;
    ssize_t r;

    if (st->closed || st->ch == NULL) {
        snprintf(t->err, sizeof(t->err), "agent on %s: stream already closed", st->u.where);
        return DS_ETRANSPORT;
    }
    if (st->pre_off < st->npre) { /* the probe's reply first */
        r = (ssize_t)(st->npre - st->pre_off < cap ? st->npre - st->pre_off : cap);
        memcpy(buf, st->pre + st->pre_off, (size_t)r);
        st->pre_off += (size_t)r;
        return (long)r;
    }
    r = libssh2_channel_read(st->ch, buf, cap);
    drain_stderr(st);
    update_fds(st);
    if (r > 0)
        return (long)r;
    if (r == LIBSSH2_ERROR_EAGAIN || (r == 0 && !libssh2_channel_eof(st->ch)))
        return 0;
    if (r == 0) {
        int code = libssh2_channel_get_exit_status(st->ch);

        if (code == 127)
            return fail(st, NOT_FOUND);
        return fail(st, "the agent closed the stream");
    }
    {
        char what[300];

        snprintf(what, sizeof(what), "read: %s", ds__ssh_errmsg(st->c.s));
        return fail(st, what);
    }
}

/* After EOF, how much of the agent's output close reads and drops: a real
 * agent has answered everything by then; a hostile one may stream forever. */
#define DRAIN_MAX (4u << 20)

/* The agent's exit, once its channel is closed: 0 or the failure. */
static int exit_result(struct ssh_t *st)
{
    char buf[300], *sig = NULL;
    int code;

    drain_stderr(st);
    code = libssh2_channel_get_exit_status(st->ch);
    libssh2_channel_get_exit_signal(st->ch, &sig, NULL, NULL, NULL, NULL, NULL);
    if (sig != NULL) {
        snprintf(buf, sizeof(buf), "the agent was killed by signal SIG%s", sig);
        libssh2_free(st->c.s, sig);
        return fail(st, buf);
    }
    if (code == 127)
        return fail(st, NOT_FOUND);
    if (code != 0) {
        snprintf(buf, sizeof(buf), "the agent exited with status %d", code);
        return fail(st, buf);
    }
    return 0;
}

/* The stepped close failed or was cut: nothing is waited for any more
 * (the socket shut down, so that libssh2's frees below never wait). */
static void close_cut(struct ssh_t *st, int rc)
{
    if (rc < 0 && st->close_rc == 0)
        st->close_rc = rc;
    if (st->c.sock >= 0)
        shutdown(st->c.sock, SHUT_RDWR);
    st->cst = CS_BYE;
}

/* The agent's end: EOF sent, its output read and dropped to its EOF
 * (within close_wait_s and DRAIN_MAX), its channel closed. Returns 0 to
 * wait, 1 to go on. */
static int end_step(struct ssh_t *st, int64_t now)
{
    char buf[16384];
    ssize_t n;

    if (now >= st->close_deadline) {
        char what[160];

        snprintf(what, sizeof(what), "the agent did not exit within %u s of the end of its input",
                 st->close_wait_s);
        close_cut(st, fail(st, what));
        return 1;
    }
    switch (st->cst) {
    case CS_EOF:
        if ((n = libssh2_channel_send_eof(st->ch)) == LIBSSH2_ERROR_EAGAIN)
            return 0;
        if (n != 0)
            close_cut(st, fail(st, "cannot end the stream"));
        else
            st->cst = CS_DRAIN;
        return 1;
    case CS_DRAIN:
        n = libssh2_channel_read(st->ch, buf, sizeof(buf));
        drain_stderr(st);
        if (n > 0 && (st->drained += (size_t)n) > DRAIN_MAX)
            close_cut(st, fail(st, "the agent kept sending after the end of its input"));
        else if (libssh2_channel_eof(st->ch))
            st->cst = CS_CLOSE;
        else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN)
            close_cut(st, fail(st, "the connection failed at the end of the agent's input"));
        return n != LIBSSH2_ERROR_EAGAIN || st->cst != CS_DRAIN;
    default: /* CS_CLOSE, CS_WAIT */
        n = st->cst == CS_CLOSE ? libssh2_channel_close(st->ch)
                                : libssh2_channel_wait_closed(st->ch);
        if (n == LIBSSH2_ERROR_EAGAIN)
            return 0;
        if (n != 0) {
            snprintf(buf, sizeof(buf), "closing the channel: %s", ds__ssh_errmsg(st->c.s));
            close_cut(st, fail(st, buf));
        } else if (st->cst++ == CS_WAIT) {
            st->close_rc = exit_result(st);
            st->cst = CS_BYE;
            st->bye_deadline = now + 2000000000LL; /* as ds__ssh_conn_close */
        }
        return 1;
    }
}

/* The channel freed, SSH_MSG_DISCONNECT sent when all went well, the
 * session freed. The socket stays open: closing it is CS_FDS's, once the
 * caller stopped polling it. Returns 0 to wait, 1 to go on. */
static int bye_step(struct ssh_t *st, int64_t now)
{
    int polite = st->close_rc == 0 && !st->killed && now < st->bye_deadline;

    if (polite && libssh2_channel_free(st->ch) == LIBSSH2_ERROR_EAGAIN)
        return 0;
    if (!polite && st->ch != NULL) {
        shutdown(st->c.sock, SHUT_RDWR);
        libssh2_session_set_blocking(st->c.s, 1);
        libssh2_session_set_timeout(st->c.s, 1000);
        libssh2_channel_free(st->ch);
    }
    st->ch = NULL;
    if (polite && libssh2_session_disconnect(st->c.s, "distsync: done") == LIBSSH2_ERROR_EAGAIN)
        return 0;
    shutdown(st->c.sock, SHUT_RDWR); /* nothing for the free below to wait for */
    libssh2_session_set_blocking(st->c.s, 1);
    libssh2_session_set_timeout(st->c.s, 1000);
    libssh2_session_free(st->c.s);
    st->c.s = NULL;
    sync_counts(st); /* the disconnect message included */
    st->cst = CS_FDS;
    return 1;
}

/* See ds_transport_ops_t.close_step. */
static int ssh_close_step(ds_transport_t *t, int64_t now, int *fd, unsigned *waits,
                          int64_t *wake_ns, int *rc)
{
    struct ssh_t *st = (struct ssh_t *)t;
    int go = 1;

    if (!st->closed) {
        st->closed = 1;
        st->close_deadline = now + (int64_t)st->close_wait_s * 1000000000LL;
        st->cst = st->ch != NULL && !st->killed ? CS_EOF : CS_BYE;
        st->bye_deadline = now;
        if (st->killed)
            close_cut(st, 0);
    }
    if (st->killed && st->cst < CS_BYE)
        close_cut(st, 0);
    while (go && st->cst < CS_FDS)
        go = st->cst < CS_BYE ? end_step(st, now) : bye_step(st, now);
    *fd = -1;
    *waits = 0;
    if (st->cst == CS_FDS) { /* stepped again once the caller stopped polling */
        st->cst = CS_RELEASE;
        *wake_ns = now;
        return 0;
    }
    if (st->cst == CS_RELEASE) {
        if (st->c.sock >= 0)
            close(st->c.sock);
        st->c.sock = -1;
        t->rfd = t->wfd = -1;
        st->cst = CS_DONE;
        *rc = st->close_rc;
        return 1;
    }
    *fd = st->c.sock;
    *waits = (ssh_wait_events(t) & POLLOUT) ? DS_TRANSPORT_WAIT_READ | DS_TRANSPORT_WAIT_WRITE
                                            : DS_TRANSPORT_WAIT_READ;
    *wake_ns = st->cst < CS_BYE ? st->close_deadline : st->bye_deadline;
    return 0;
}

/* Blocking close: the stepped close driven by poll(2), bounded by
 * close_wait_s (then about 2 s for the goodbye). A stepped close cut short
 * goes on as after a kill: nothing more is waited for. */
static int ssh_close(ds_transport_t *t)
{
    struct ssh_t *st = (struct ssh_t *)t;
    struct ds__ssh_wait w;
    int rc = 0;

    if (st->closed && st->cst == CS_DONE)
        return st->close_rc;
    if (st->closed) /* a stepped close cut short */
        st->killed = 1;
    while (!ssh_close_step(t, ds__ssh_mono_ns(), &w.fd, &w.waits, &w.wake_ns, &rc))
        ds__ssh_wait_for(&w);
    return rc;
}

/* Cuts the connection: sshd then ends the agent's input, and close does not
 * wait on a hung server. */
static void ssh_kill(ds_transport_t *t)
{
    struct ssh_t *st = (struct ssh_t *)t;

    if (st->c.sock >= 0)
        shutdown(st->c.sock, SHUT_RDWR);
    st->killed = 1;
}

static void ssh_free(ds_transport_t *t)
{
    ssh_close(t);
    free(((struct ssh_t *)t)->pre);
    free(((struct ssh_t *)t)->expect);
    free(t);
}

/* What the agent has not been given: the channel window the far end has
 * not given back (sshd returns it once it wrote the bytes to the agent's
 * stdin, in steps of about 96 KiB, so this is a little over). */
static uint64_t ssh_unread(const ds_transport_t *t)
{
    const struct ssh_t *st = (const struct ssh_t *)t;
    unsigned long init = 0, now;

    if (st->ch == NULL || st->closed)
        return 0;
    now = libssh2_channel_window_write_ex(st->ch, &init);
    if (init < st->win_max) /* libssh2 1.10 leaves the remote's initial window 0 */
        init = st->win_max;
    return init > now ? (uint64_t)(init - now) : 0;
}

static const ds_transport_ops_t ssh_ops = {
    .unread = ssh_unread,
    .name = "ssh",
    .write = ssh_write,
    .read = ssh_read,
    .close = ssh_close,
    .kill = ssh_kill,
#ifdef DS_TRANSPORT_WAIT_READ
    .waits = ssh_waits,
#endif
    .free = ssh_free,
    .note = ssh_note,
    .close_step = ssh_close_step,
};

/* See ssh_int.h: the path single-quoted for the remote shell (a ' inside
 * becomes '\''); agent NULL is the default. */
int ds__ssh_agent_command(const char *agent, const char *path, char **out)
{
    size_t n;
    char *c, *w;

    agent = agent ? agent : DEFAULT_AGENT;
    n = strlen(agent) + 16 + 4 * strlen(path);
    c = malloc(n);
    if (c == NULL)
        return DS_ENOMEM;
    w = c + sprintf(c, "%s --root '", agent);
    for (const char *p = path; *p != '\0'; p++)
        w += *p == '\'' ? sprintf(w, "'\\''") : sprintf(w, "%c", *p);
    strcpy(w, "'");
    *out = c;
    return 0;
}

/* The agent command on an exec channel of the connected st->c. */
static int exec_agent(struct ssh_t *st, const ds_transport_cfg_t *cfg, char *err, size_t errlen)
{
    char *cmd = NULL;
    int rc = ds__ssh_agent_command(cfg->agent, st->u.path, &cmd);

    if (rc < 0)
        return rc;
    ds__ssh_conn_budget(&st->c);
    st->ch = libssh2_channel_open_session(st->c.s);
    if (st->ch == NULL || libssh2_channel_exec(st->ch, cmd) != 0) {
        snprintf(err, errlen, "%s: cannot run the agent command '%s': %s", st->u.where, cmd,
                 ds__ssh_errmsg(st->c.s));
        rc = DS_ETRANSPORT;
    }
    free(cmd);
    return rc;
}

static struct ssh_t *ssh_alloc(const ds_transport_cfg_t *cfg)
{
    struct ssh_t *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return NULL;
    st->t.ops = &ssh_ops;
    st->t.rfd = st->t.wfd = -1;
    st->c.sock = -1;
    st->close_wait_s = cfg->timeout_s ? cfg->timeout_s : CLOSE_WAIT_S;
    return st;
}

/* The end of both opens: the stream goes non-blocking, or st is freed. */
static int opened(struct ssh_t *st, int rc, ds_transport_t **out)
{
    if (rc < 0) {
        st->killed = 1; /* nothing to end politely */
        ssh_free(&st->t);
        return rc;
    }
    libssh2_session_set_blocking(st->c.s, 0);
    update_fds(st);
    *out = &st->t;
    return 0;
}

/* See ssh_int.h. */
int ds__transport_ssh_attach(const ds_transport_cfg_t *cfg, struct ds__ssh_conn *c,
                             const struct ds__ssh_url *u, ds_transport_t **out, char *err,
                             size_t errlen)
{
    struct ssh_t *st = ssh_alloc(cfg);

    *out = NULL;
    if (st == NULL) {
        ds__ssh_conn_close(c, 0);
        snprintf(err, errlen, "%s: out of memory", cfg->url);
        return DS_ENOMEM;
    }
    ds__ssh_conn_move(&st->c, c);
    st->u = *u;
    return opened(st, exec_agent(st, cfg, err, errlen), out);
}

/* See ssh_int.h. */
int ds__transport_ssh_adopt(const ds_transport_cfg_t *cfg, struct ds__ssh_conn *c,
                            LIBSSH2_CHANNEL *ch, const struct ds__ssh_url *u, ds_transport_t **out,
                            char *err, size_t errlen)
{
    struct ssh_t *st = ssh_alloc(cfg);

    *out = NULL;
    if (st == NULL) {
        ds__ssh_conn_drop(c, ch);
        snprintf(err, errlen, "%s: out of memory", cfg->url);
        return DS_ENOMEM;
    }
    ds__ssh_conn_move(&st->c, c);
    st->ch = ch;
    st->u = *u;
    return opened(st, 0, out);
}

/* See ssh_int.h. */
int ds__transport_ssh_greeted(ds_transport_t *t, struct ds__ssh_greeting *g)
{
    struct ssh_t *st = (struct ssh_t *)t;

    st->swallow = 1;
    st->pre = g->reply;
    st->npre = g->n;
    keep_stderr(st, g->err ? g->err : "", g->nerr); /* past 100 lines: "not logged" */
    free(g->err);
    if (g->prelude == NULL || g->nprelude == 0)
        return 0;
    st->expect = malloc(g->nprelude);
    if (st->expect == NULL)
        return DS_ENOMEM;
    memcpy(st->expect, g->prelude, g->nprelude);
    st->nexpect = g->nprelude;
    t->caps |= DS_TRANSPORT_PRELUDE;
    return 0;
}

/* See transport.h. Blocks (bounded by cfg->connect_timeout_s): the
 * stepped open driven by poll(2). */
int ds__transport_ssh_open(const ds_transport_cfg_t *cfg, ds_transport_t **out, char *err,
                           size_t errlen)
{
    struct ds__ssh_opened r;
    int rc = ds__ssh_open_blocking(cfg, DS__SSH_GOAL_AGENT, &r, err, errlen);

    *out = NULL;
    if (rc < 0)
        return rc;
    return ds__transport_ssh_adopt(cfg, &r.c, r.ch, &r.u, out, err, errlen);
}

/*
 * transport = auto's probe of the agent, as steps that never block: the
 * agent command on an exec channel of the connected (non-blocking)
 * session, HELLO sent, its first frame read (stderr dropped meanwhile: a
 * flood there must not fill the window), its output read to the end and
 * the channel closed. Each step waits on the socket in the directions
 * libssh2_session_block_directions names; one deadline bounds them all.
 * A kept probe (ds__ssh_probe_keep, the engine's open) reads the first
 * frame before it ends the agent's input: an agent that answered HELLO_OK
 * keeps running on its channel, which ds__ssh_probe_take hands to the
 * transport with the reply, and the session's own HELLO is not sent again
 * (transport_ssh.c): the agent's channel costs no second open, exec and
 * HELLO (three round trips, four with the HELLO).
 * The engine steps it on its loop (transport_opening.c); the blocking
 * open drives it with poll(2) (ssh_connect.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/escape.h"
#include "distsync/proto.h"

#include "ssh_int.h"

#define PROBE_REPLY_MAX 65536
/* A kept probe keeps the agent's first stderr lines for the transport's
 * log and events (transport_ssh.c logs 100, then says the rest was not
 * logged): 101 lines, each cut to 511 bytes. */
#define PROBE_ERR_LINES 101
#define PROBE_ERR_LINE  511
#define PROBE_ERR_MAX   (PROBE_ERR_LINES * (PROBE_ERR_LINE + 1))

enum { P_OPEN, P_EXEC, P_HELLO, P_EOF, P_READ, P_DRAIN, P_CLOSE, P_WAIT, P_FREE, P_DONE };

struct ds__ssh_probe {
    const struct ds__ssh_conn *c; /* the caller's, outlives p */
    LIBSSH2_SESSION *s;
    char *cmd;
    int st, got, answered, keep;
    int64_t deadline;
    LIBSSH2_CHANNEL *ch;
    ds_proto_buf_t hello;
    size_t off; /* hello[off, len) not yet written */
    uint8_t *buf;
    size_t n;  /* buf[0, n): the agent's output so far */
    char *err; /* kept: the agent's first stderr lines, nerr bytes (ecut more) */
    size_t nerr, ecut, eline, elines;
    ds_msg_t m;
    const uint8_t *pre; /* the prelude written instead of HELLO (NULL: none) */
    size_t npre;
    int refused; /* the prelude's HELLO answered ERR */
    char why[400];
    char said[160]; /* the start of the agent's stderr (why it ended) */
    size_t nsaid;
    int said_end; /* its first line ended */
};

/* HELLO, as the session would send it. */
static int hello(struct ds__ssh_probe *p)
{
    ds_msg_t m = {.type = DS_MSG_HELLO, .id = 1};

    m.u.hello.magic = DS_PROTO_MAGIC;
    m.u.hello.min_version = DS_PROTO_VERSION_MIN;
    m.u.hello.max_version = DS_PROTO_VERSION_MAX;
    m.u.hello.console_id = ds_pstr("probe");
    m.u.hello.software = ds_pstr("distsync probe");
    return ds_proto_encode(&p->hello, &m);
}

/* See ssh_int.h. */
int ds__ssh_probe_new(struct ds__ssh_conn *c, const char *agent, const char *path,
                      int64_t deadline_ns, struct ds__ssh_probe **out)
{
    struct ds__ssh_probe *p = calloc(1, sizeof(*p));
    int rc = DS_ENOMEM;

    *out = NULL;
    if (p == NULL || (p->buf = malloc(PROBE_REPLY_MAX)) == NULL ||
        (rc = ds__ssh_agent_command(agent, path, &p->cmd)) < 0 || (rc = hello(p)) < 0) {
        ds__ssh_probe_free(p);
        return rc;
    }
    p->c = c;
    p->s = c->s;
    p->deadline = deadline_ns;
    *out = p;
    return 0;
}

static int again(const struct ds__ssh_probe *p, long rc)
{
    return rc == LIBSSH2_ERROR_EAGAIN ||
           (rc == 0 && libssh2_session_last_errno(p->s) == LIBSSH2_ERROR_EAGAIN);
}

/* The length of b[0, n)'s first line, without its end. */
static size_t first_line(const char *b, size_t n)
{
    size_t i = 0;

    while (i < n && b[i] != '\n' && b[i] != '\r')
        i++;
    return i;
}

/* why for an agent whose output is not the protocol: its start quoted
 * (a shell startup file or a banner writing to stdout, most likely). */
static void began(struct ds__ssh_probe *p, int status)
{
    char out[200];
    size_t n = first_line((const char *)p->buf, p->n > 60 ? 60 : p->n);

    ds_escape_name((const char *)p->buf, n, out, sizeof(out));
    snprintf(
        p->why, sizeof(p->why),
        "'%s' did not answer as a distsync agent: its output began '%s%s', not the "
        "protocol (does a shell startup file or a banner write to stdout?) (exit status %d%s%.*s)",
        p->cmd, out, p->n > n ? "..." : "", status, p->nsaid ? ", it said: " : "", (int)p->nsaid,
        p->said);
}

/* What the probe found, in why. */
static void judge(struct ds__ssh_probe *p)
{
    int status = libssh2_channel_get_exit_status(p->ch);
    const ds_msg_t *m = &p->m;

    p->refused = p->got && m->type == DS_MSG_ERR && p->pre != NULL;
    if (p->got && m->type == DS_MSG_HELLO_OK)
        p->answered = 1;
    else if (p->refused)
        snprintf(p->why, sizeof(p->why),
                 "the agent '%s' refused our HELLO for protocol versions %d..%d, which its last "
                 "session spoke: %.*s",
                 p->cmd, DS_PROTO_VERSION_COND, DS_PROTO_VERSION_MAX, (int)m->u.err.message.n,
                 m->u.err.message.p);
    else if (p->got && m->type == DS_MSG_ERR)
        snprintf(p->why, sizeof(p->why),
                 "the agent '%s' is too old or refused our protocol (versions %d..%d): %.*s",
                 p->cmd, DS_PROTO_VERSION_MIN, DS_PROTO_VERSION_MAX, (int)m->u.err.message.n,
                 m->u.err.message.p);
    else if (status == 127)
        snprintf(p->why, sizeof(p->why),
                 "the agent command '%s' was not found on the server (exit status 127)", p->cmd);
    else if (!libssh2_channel_eof(p->ch))
        snprintf(p->why, sizeof(p->why),
                 "'%s' did not answer as a distsync agent within the timeout", p->cmd);
    else if (!p->got && p->n > 0)
        began(p, status);
    else
        snprintf(p->why, sizeof(p->why),
                 "'%s' did not answer as a distsync agent (exit status %d%s%.*s)", p->cmd, status,
                 p->nsaid ? ", it said: " : "", (int)p->nsaid, p->said);
}

/* Keeps the first line of the agent's stderr (printable bytes only, at
 * most sizeof(said) - 1): the reason an agent that exits gives. */
static void keep_said(struct ds__ssh_probe *p, const char *b, ssize_t n)
{
    for (ssize_t i = 0; i < n && !p->said_end && p->nsaid < sizeof(p->said) - 1; i++) {
        if (b[i] == '\n' || b[i] == '\r')
            p->said_end = p->nsaid > 0; /* leading blank lines skipped */
        else
            p->said[p->nsaid++] = (unsigned char)b[i] < 0x20 || b[i] == 0x7f ? '?' : b[i];
    }
}

/* Kept: the agent's first stderr lines into p->err, each cut to
 * PROBE_ERR_LINE bytes; the rest counted in ecut. */
static void keep_err(struct ds__ssh_probe *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p->err == NULL || p->elines >= PROBE_ERR_LINES)
            p->ecut++;
        else if (s[i] == '\n')
            p->err[p->nerr++] = '\n', p->elines++, p->eline = 0;
        else if (p->eline < PROBE_ERR_LINE)
            p->err[p->nerr++] = s[i], p->eline++;
    }
}

/* The agent's stdout into buf (its first frame, then dropped), stderr
 * dropped (a kept probe keeps its first lines). Returns 1 when something moved, 0 when libssh2
 * waits, -1 at the end of its output (EOF or failure). */
static int read_out(struct ds__ssh_probe *p)
{
    char junk[4096];
    int moved = 0;
    ssize_t r;

    while ((r = libssh2_channel_read_stderr(p->ch, junk, sizeof(junk))) > 0) {
        keep_err(p, junk, (size_t)r);
        keep_said(p, junk, r);
        moved = 1;
    }
    if (p->st == P_READ)
        r = libssh2_channel_read(p->ch, (char *)p->buf + p->n, PROBE_REPLY_MAX - p->n);
    else
        r = libssh2_channel_read(p->ch, junk, sizeof(junk));
    if (r > 0 && p->st == P_READ)
        p->n += (size_t)r;
    if (r > 0)
        return 1;
    if ((r < 0 && r != LIBSSH2_ERROR_EAGAIN) || libssh2_channel_eof(p->ch))
        return -1;
    return moved;
}

/* Reading: the first frame (P_READ), then the rest to the end (P_DRAIN).
 * Returns 1 to go on, 0 to wait. */
static int reading(struct ds__ssh_probe *p)
{
    int rc = read_out(p);

    if (p->st == P_READ) {
        long fl = ds_proto_frame_len(p->buf, p->n);

        if (fl > 0) {
            p->got = ds_proto_decode(p->buf, (size_t)fl, &p->m) == 0;
            p->answered = p->keep && p->got && p->m.type == DS_MSG_HELLO_OK;
            p->st = p->answered ? P_DONE : p->keep ? P_EOF : P_DRAIN; /* kept: running */
            return 1;
        }
        if (fl < 0 || p->n == PROBE_REPLY_MAX)
            p->st = p->keep ? P_EOF : P_DRAIN;
    }
    if (rc < 0)
        p->st = libssh2_channel_eof(p->ch) ? P_CLOSE : P_FREE;
    return rc != 0 || p->st != P_READ;
}

/* One state. Returns 1 to go on, 0 to wait on the socket. */
static int step(struct ds__ssh_probe *p)
{
    long rc;

    switch (p->st) {
    case P_OPEN:
        p->ch = libssh2_channel_open_session(p->s);
        if (p->ch == NULL && again(p, 0))
            return 0;
        p->st = p->ch ? P_EXEC : P_DONE;
        break;
    case P_EXEC:
        if ((rc = libssh2_channel_exec(p->ch, p->cmd)) == LIBSSH2_ERROR_EAGAIN)
            return 0;
        if (rc != 0)
            snprintf(p->why, sizeof(p->why), "the server runs no commands for this account (%s)",
                     ds__ssh_errmsg(p->s));
        p->st = rc == 0 ? P_HELLO : P_FREE;
        break;
    case P_HELLO:
        rc = libssh2_channel_write(p->ch, (const char *)p->hello.p + p->off, p->hello.len - p->off);
        if (rc == LIBSSH2_ERROR_EAGAIN)
            return 0;
        if (rc < 0)
            p->st = P_FREE;
        else if ((p->off += (size_t)rc) == p->hello.len)
            p->st = p->keep ? P_READ : P_EOF;
        break;
    case P_EOF:
        if ((rc = libssh2_channel_send_eof(p->ch)) == LIBSSH2_ERROR_EAGAIN)
            return 0;
        p->st = rc != 0 ? P_FREE : p->keep ? P_DRAIN : P_READ;
        break;
    case P_READ:
    case P_DRAIN:
        return reading(p);
    case P_CLOSE:
        if ((rc = libssh2_channel_close(p->ch)) == LIBSSH2_ERROR_EAGAIN)
            return 0;
        p->st = rc == 0 ? P_WAIT : P_FREE;
        break;
    case P_WAIT:
        if (libssh2_channel_wait_closed(p->ch) == LIBSSH2_ERROR_EAGAIN)
            return 0;
        p->st = P_FREE;
        break;
    case P_FREE: /* judged before the channel goes */
        if (p->why[0] == '\0' && !p->answered)
            judge(p);
        if (libssh2_channel_free(p->ch) == LIBSSH2_ERROR_EAGAIN)
            return 0;
        p->ch = NULL;
        p->st = P_DONE;
        break;
    }
    return 1;
}

/* See ssh_int.h. */
int ds__ssh_probe_step(struct ds__ssh_probe *p, int64_t now, struct ds__ssh_wait *w)
{
    while (p->st != P_DONE) {
        if (now >= p->deadline && p->st <= P_DRAIN) {
            if (p->ch == NULL) {
                snprintf(p->why, sizeof(p->why),
                         "the server runs no commands for this account (no answer in time)");
                p->st = P_DONE;
                break;
            }
            judge(p); /* the command still runs: its channel is left to the connection */
            p->st = P_DONE;
            break;
        }
        if (now >= p->deadline) { /* closing: left to the connection */
            p->st = P_DONE;
            break;
        }
        if (!step(p))
            return ds__ssh_conn_wait(p->c, p->deadline, w);
        if (p->st == P_DONE && p->ch == NULL && p->why[0] == '\0' && !p->answered)
            snprintf(p->why, sizeof(p->why), "the server runs no commands for this account (%s)",
                     ds__ssh_errmsg(p->s));
    }
    return 1;
}

/* See ssh_int.h. */
int ds__ssh_probe_prelude(struct ds__ssh_probe *p, const uint8_t *pre, size_t n)
{
    p->hello.len = 0;
    if (ds_proto_buf_append(&p->hello, pre, n) < 0)
        return DS_ENOMEM;
    p->pre = pre;
    p->npre = n;
    return 0;
}

/* See ssh_int.h. A probe that stopped before its channel saw EOF (the
 * deadline) left an agent running that has the prelude, or part of it. */
int ds__ssh_probe_prelude_fate(const struct ds__ssh_probe *p)
{
    if (p->pre == NULL || p->answered)
        return 0;
    if (p->refused)
        return DS__PROBE_REFUSED;
    return p->off > 0 && p->ch != NULL && !libssh2_channel_eof(p->ch) ? DS__PROBE_MUTE : 0;
}

/* See ssh_int.h. */
const char *ds__ssh_probe_cmd(const struct ds__ssh_probe *p)
{
    return p->cmd;
}

/* See ssh_int.h. */
void ds__ssh_probe_keep(struct ds__ssh_probe *p)
{
    p->keep = 1;
    p->err = malloc(PROBE_ERR_MAX); /* NULL: its stderr is dropped, as unkept */
}

/* See ssh_int.h. */
int ds__ssh_probe_take(struct ds__ssh_probe *p, struct ds__ssh_greeting *g)
{
    if (!p->keep || !p->answered || p->ch == NULL)
        return 0;
    g->ch = p->ch;
    g->reply = p->buf;
    g->n = p->n;
    g->err = p->err;
    g->nerr = p->nerr;
    g->ecut = p->ecut;
    g->prelude = p->pre;
    g->nprelude = p->npre;
    p->ch = NULL;
    p->buf = NULL;
    p->err = NULL;
    return 1;
}

/* See ssh_int.h. */
int ds__ssh_probe_answered(const struct ds__ssh_probe *p, char *why, size_t whylen)
{
    if (!p->answered)
        snprintf(why, whylen, "%s", p->why);
    return p->answered;
}

/* See ssh_int.h. */
void ds__ssh_probe_free(struct ds__ssh_probe *p)
{
    if (p == NULL)
        return;
    /* a channel still open is the connection's: its close ends it */
    ds_proto_buf_free(&p->hello);
    free(p->buf);
    free(p->err);
    free(p->cmd);
    free(p);
}

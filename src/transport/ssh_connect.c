/*
 * The blocking start of an ssh:// transport and of `distsync trust`: the
 * stepped open (ssh_open.c) driven with poll(2); the refusal of a host key
 * known_hosts does not hold; the hand-over of a connection between
 * backends; and, for transport = auto, the probe that tells whether the
 * agent command runs and speaks our protocol.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/proto.h"

#include "ssh_int.h"

#define PROBE_REPLY_MAX 65536

/* See ssh_int.h. */
int ds__ssh_refuse_hostkey(const ds_transport_cfg_t *cfg, const struct ds__ssh_url *u,
                           const char *kh, const struct ds__ssh_hostkey *hk, char *err,
                           size_t errlen)
{
    const char *name = cfg->server ? cfg->server : "SERVER";

    if (hk->state == DS__HK_UNKNOWN)
        snprintf(err, errlen,
                 "%s: host key unknown: %s %s is not in %s; check that fingerprint, then run "
                 "'distsync trust %s'",
                 u->where, hk->type, hk->fp, kh, name);
    else
        snprintf(err, errlen,
                 "%s: HOST KEY CHANGED, refusing to connect (this can be an attack): the server "
                 "now has %s %s, %s records %s for %s; if the change is expected, remove the old "
                 "entry (ssh-keygen -R '%s' -f %s) and run 'distsync trust %s'",
                 u->where, hk->type, hk->fp, kh, hk->old_fp, hk->entry, hk->entry, kh, name);
    return DS_EHOSTKEY;
}

/* Sleeps in poll(2) until w's socket moves or its time comes. */
static void wait_for(const struct ds__ssh_wait *w)
{
    struct pollfd p = {.fd = w->fd, .events = 0};
    int64_t ms = (w->wake_ns - ds__ssh_mono_ns() + 999999) / 1000000;

    if (w->waits & DS_TRANSPORT_WAIT_READ)
        p.events |= POLLIN;
    if (w->waits & DS_TRANSPORT_WAIT_WRITE)
        p.events |= POLLOUT;
    poll(&p, w->fd >= 0 ? 1 : 0, ms < 0 ? 0 : ms > 1000 ? 1000 : (int)ms);
}

/* See ssh_int.h. */
int ds__ssh_open_blocking(const ds_transport_cfg_t *cfg, enum ds__ssh_goal goal,
                          struct ds__ssh_opened *r, char *err, size_t errlen)
{
    ds_transport_cfg_t c = *cfg;
    struct ds__ssh_open *o = NULL;
    struct ds__ssh_wait w;
    int rc;

    c.resolver = NULL; /* a loop's resolver answers only while its loop runs */
    rc = ds__ssh_open_new(&c, goal, ds__ssh_mono_ns(), &o, err, errlen);

    memset(r, 0, sizeof(*r));
    r->c.sock = -1;
    while (rc == 0 && (rc = ds__ssh_open_step(o, ds__ssh_mono_ns(), &w, err, errlen)) == 0)
        wait_for(&w);
    if (rc > 0) {
        ds__ssh_open_take(o, r);
        libssh2_session_set_blocking(r->c.s, 1);
        ds__ssh_conn_budget(&r->c);
        rc = 0;
    }
    ds__ssh_open_free(o);
    return rc;
}

/* See ssh_int.h. */
int ds__ssh_connect(const ds_transport_cfg_t *cfg, struct ds__ssh_conn *c, struct ds__ssh_url *u,
                    char *err, size_t errlen)
{
    struct ds__ssh_opened r;
    int rc = ds__ssh_open_blocking(cfg, DS__SSH_GOAL_AUTH, &r, err, errlen);

    memset(c, 0, sizeof(*c));
    c->sock = -1;
    if (rc < 0)
        return rc;
    ds__ssh_conn_move(c, &r.c);
    *u = r.u;
    return 0;
}

void ds__ssh_conn_move(struct ds__ssh_conn *dst, struct ds__ssh_conn *src)
{
    *dst = *src;
    if (dst->s != NULL)
        *libssh2_session_abstract(dst->s) = dst; /* the byte counters */
    src->s = NULL;
    src->sock = -1;
}

/* HELLO, as the session would send it, then the end of the probe's input. */
static int send_hello(LIBSSH2_CHANNEL *ch)
{
    ds_msg_t m = {.type = DS_MSG_HELLO, .id = 1};
    ds_proto_buf_t b = {0};
    int rc;

    m.u.hello.magic = DS_PROTO_MAGIC;
    m.u.hello.min_version = DS_PROTO_VERSION_MIN;
    m.u.hello.max_version = DS_PROTO_VERSION_MAX;
    m.u.hello.console_id = ds_pstr("probe");
    m.u.hello.software = ds_pstr("distsync probe");
    rc = ds_proto_encode(&b, &m);
    if (rc == 0 && libssh2_channel_write(ch, (const char *)b.p, b.len) != (ssize_t)b.len)
        rc = DS_ETRANSPORT;
    if (rc == 0 && libssh2_channel_send_eof(ch) != 0)
        rc = DS_ETRANSPORT;
    ds_proto_buf_free(&b);
    return rc;
}

/* One read of the command's stdout into buf, non-blocking: what it wrote
 * to stderr is dropped meanwhile (a flood there must not fill the window,
 * and libssh2 reports the end only once every stream is read); waits on
 * the socket while nothing moves, until c's deadline. Returns the bytes
 * read (> 0), or 0 at the end (EOF, failure, deadline). */
static size_t probe_read(struct ds__ssh_conn *c, LIBSSH2_CHANNEL *ch, uint8_t *buf, size_t cap)
{
    for (;;) {
        char junk[4096];
        ssize_t r = libssh2_channel_read(ch, (char *)buf, cap), e;
        int moved = 0, dirs;
        long ms;
        struct pollfd p = {.fd = c->sock, .events = POLLIN};

        while ((e = libssh2_channel_read_stderr(ch, junk, sizeof(junk))) > 0)
            moved = 1;
        if (r > 0)
            return (size_t)r;
        if ((r < 0 && r != LIBSSH2_ERROR_EAGAIN) || libssh2_channel_eof(ch))
            return 0;
        if (moved)
            continue;
        if ((ms = ds__ssh_conn_budget(c)) <= 0)
            return 0;
        dirs = libssh2_session_block_directions(c->s);
        if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
            p.events |= POLLOUT;
        poll(&p, 1, (int)(ms > 1000 ? 1000 : ms));
    }
}

/* The agent's first frame (at most PROBE_REPLY_MAX bytes, within c's
 * deadline). Returns 1 with m decoded from buf, 0 when the output ended
 * without one. */
static int read_reply(struct ds__ssh_conn *c, LIBSSH2_CHANNEL *ch, uint8_t *buf, ds_msg_t *m)
{
    size_t n = 0, r;

    for (;;) {
        long fl = ds_proto_frame_len(buf, n);

        if (fl > 0)
            return ds_proto_decode(buf, (size_t)fl, m) == 0;
        if (fl < 0 || n == PROBE_REPLY_MAX)
            return 0;
        r = probe_read(c, ch, buf + n, PROBE_REPLY_MAX - n);
        if (r == 0)
            return 0;
        n += r;
    }
}

/* What the probe found, in why. */
static void judge(LIBSSH2_CHANNEL *ch, int got, const ds_msg_t *m, const char *cmd, char *why,
                  size_t whylen)
{
    int status = libssh2_channel_get_exit_status(ch);

    if (got && m->type == DS_MSG_ERR)
        snprintf(why, whylen,
                 "the agent '%s' is too old or refused our protocol (versions %d..%d): %.*s", cmd,
                 DS_PROTO_VERSION_MIN, DS_PROTO_VERSION_MAX, (int)m->u.err.message.n,
                 m->u.err.message.p);
    else if (status == 127)
        snprintf(why, whylen,
                 "the agent command '%s' was not found on the server (exit status 127)", cmd);
    else if (!libssh2_channel_eof(ch))
        snprintf(why, whylen, "'%s' did not answer as a distsync agent within the timeout", cmd);
    else
        snprintf(why, whylen, "'%s' did not answer as a distsync agent (exit status %d)", cmd,
                 status);
}

/* See ssh_int.h. */
int ds__ssh_agent_probe(struct ds__ssh_conn *c, const char *cmd, unsigned wait_s, char *why,
                        size_t whylen)
{
    LIBSSH2_CHANNEL *ch;
    uint8_t *buf = malloc(PROBE_REPLY_MAX);
    int64_t deadline = c->deadline_ns;
    ds_msg_t m;
    int rc = 0, got = 0;

    if (buf == NULL)
        return DS_ENOMEM;
    ds__ssh_conn_deadline(c, wait_s); /* the shorter of wait_s and the connect's */
    if (c->deadline_ns > deadline)
        c->deadline_ns = deadline;
    ds__ssh_conn_budget(c);
    ch = libssh2_channel_open_session(c->s);
    if (ch == NULL || libssh2_channel_exec(ch, cmd) != 0) {
        snprintf(why, whylen, "the server runs no commands for this account (%s)",
                 ds__ssh_errmsg(c->s));
        goto out;
    }
    if (send_hello(ch) == 0) {
        libssh2_session_set_blocking(c->s, 0);
        got = read_reply(c, ch, buf, &m);
        while (probe_read(c, ch, buf, PROBE_REPLY_MAX) > 0) /* to its exit */
            ;
        libssh2_session_set_blocking(c->s, 1);
    }
    if (libssh2_channel_eof(ch)) {
        ds__ssh_conn_budget(c);
        libssh2_channel_close(ch);
        libssh2_channel_wait_closed(ch);
    }
    if (got && m.type == DS_MSG_HELLO_OK)
        rc = 1;
    else
        judge(ch, got, &m, cmd, why, whylen);
out:
    if (ch != NULL)
        libssh2_channel_free(ch);
    c->deadline_ns = deadline;
    ds__ssh_conn_budget(c);
    free(buf);
    return rc;
}

/*
 * The open of an ssh:// server as a state machine that never blocks: the
 * DNS lookup (through the caller's resolver, the engine's uv_getaddrinfo),
 * the TCP connect (ssh_dial.c), the SSH handshake, the host-key check, the
 * user authentication (ssh_auth.c) and, for the agent, its exec channel.
 * Each state goes as far as the socket allows and then says what it waits
 * for: the socket in the directions libssh2_session_block_directions names,
 * or a time. One deadline, connect_timeout from the start, bounds them
 * all; the caller's loop turns it into a timer. ssh_connect.c drives the
 * same machine with poll(2) for the blocking callers.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "distsync/error.h"

#include "ssh_int.h"

#define NS_PER_S  1000000000LL
#define NS_PER_MS 1000000LL

enum state { S_DNS, S_DIAL, S_HANDSHAKE, S_AUTH, S_CHANNEL, S_DONE };

struct ds__ssh_open {
    ds_transport_cfg_t cfg;
    enum ds__ssh_goal goal;
    enum state st;
    unsigned connect_s;
    int64_t deadline;
    int64_t dns_at; /* tests: the lookup starts then (a slow resolver) */
    void *dns;      /* the resolver's request, NULL: none out */
    struct ds__ssh_dial dial;
    struct ds__ssh_auth auth;
    const char *identity; /* idbuf, or NULL: ssh-agent */
    char *cmd;            /* GOAL_AGENT: the agent's command line */
    char kh[4096], idbuf[4096];
    struct ds__ssh_opened r;
};

/* The paths of known_hosts and identity, "~/" expanded. */
static int paths(struct ds__ssh_open *o, char *err, size_t errlen)
{
    const char *id = o->cfg.identity;

    if (ds__ssh_kh_path(o->cfg.known_hosts, o->kh, sizeof(o->kh)) < 0 ||
        (id != NULL && ds__ssh_kh_path(id, o->idbuf, sizeof(o->idbuf)) < 0)) {
        snprintf(err, errlen, "%s: HOME is not set (needed for ~/ paths)", o->r.u.where);
        return DS_EUSAGE;
    }
    o->identity = id != NULL ? o->idbuf : NULL;
    return 0;
}

/* See ssh_int.h. */
int ds__ssh_open_new(const ds_transport_cfg_t *cfg, enum ds__ssh_goal goal, int64_t now,
                     struct ds__ssh_open **out, char *err, size_t errlen)
{
    struct ds__ssh_open *o = calloc(1, sizeof(*o));
    int rc;

    *out = NULL;
    if (o == NULL) {
        snprintf(err, errlen, "%s: out of memory", cfg->url);
        return DS_ENOMEM;
    }
    o->cfg = *cfg;
    o->goal = goal;
    o->dial.fd = o->r.c.sock = -1;
    o->connect_s = cfg->connect_timeout_s ? cfg->connect_timeout_s : DS__SSH_CONNECT_TIMEOUT_S;
    o->deadline = o->r.c.deadline_ns = now + (int64_t)o->connect_s * NS_PER_S;
    o->dns_at = now + (int64_t)cfg->test_dns_delay_ms * NS_PER_MS;
    rc = ds__ssh_url_parse(cfg->url, &o->r.u, err, errlen);
    o->r.u.test_dns_delay_ms = cfg->test_dns_delay_ms; /* the blocking lookup's */
    if (rc == 0)
        rc = paths(o, err, errlen);
    if (rc == 0 && goal == DS__SSH_GOAL_AGENT &&
        (rc = ds__ssh_agent_command(cfg->agent, o->r.u.path, &o->cmd)) < 0)
        snprintf(err, errlen, "%s: out of memory", cfg->url);
    if (rc < 0) {
        ds__ssh_open_free(o);
        return rc;
    }
    *out = o;
    return 0;
}

/* libssh2 would block: wait for the socket in its directions. */
static int wait_session(struct ds__ssh_open *o, struct ds__ssh_wait *w)
{
    int dirs = libssh2_session_block_directions(o->r.c.s);

    w->fd = o->r.c.sock;
    w->waits = (dirs & LIBSSH2_SESSION_BLOCK_INBOUND) ? DS_TRANSPORT_WAIT_READ : 0;
    if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
        w->waits |= DS_TRANSPORT_WAIT_WRITE;
    if (w->waits == 0)
        w->waits = DS_TRANSPORT_WAIT_READ;
    return 0;
}

/* The lookup through the caller's resolver: started once the test delay
 * is over, its answer taken when the resolver wakes the caller. Returns
 * 1 with *res (NULL: failed, err set), 0 while it runs. */
static int lookup(struct ds__ssh_open *o, int64_t now, struct ds__ssh_wait *w,
                  struct addrinfo **res, char *err, size_t errlen)
{
    const ds_resolver_t *rv = o->cfg.resolver;
    const char *why = "no answer";
    char port[8], msg[256];

    if (now < o->dns_at) {
        w->wake_ns = o->dns_at;
        return 0;
    }
    snprintf(port, sizeof(port), "%d", o->r.u.port);
    if (o->dns == NULL && rv->start(rv->ctx, o->r.u.host, port, &o->dns, msg, sizeof(msg)) < 0) {
        o->dns = NULL;
        why = msg;
    } else if (!rv->result(rv->ctx, o->dns, res, &why)) {
        return 0;
    }
    if (o->dns != NULL)
        rv->release(rv->ctx, o->dns);
    o->dns = NULL;
    if (*res == NULL)
        snprintf(err, errlen, "%s: cannot resolve host '%s': %s", o->r.u.where, o->r.u.host, why);
    return 1;
}

static int dns_step(struct ds__ssh_open *o, int64_t now, struct ds__ssh_wait *w, char *err,
                    size_t errlen)
{
    struct addrinfo *res = NULL;
    int rc;

    if (o->cfg.resolver == NULL) { /* the blocking open: a thread bounded by the deadline */
        rc = ds__ssh_resolve(&o->r.u, o->deadline, o->connect_s, &res, err, errlen);
        if (rc < 0)
            return rc;
    } else if (!lookup(o, now, w, &res, err, errlen)) {
        return 0;
    } else if (res == NULL) {
        return DS_ETRANSPORT;
    }
    ds__ssh_dial_init(&o->dial, res);
    o->st = S_DIAL;
    return 1;
}

static int dial_step(struct ds__ssh_open *o, int64_t now, struct ds__ssh_wait *w, char *err,
                     size_t errlen)
{
    int rc = ds__ssh_dial_step(&o->dial);

    (void)now;
    if (rc == 0) {
        w->fd = o->dial.fd;
        w->waits = DS_TRANSPORT_WAIT_WRITE;
        return 0;
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s: connect: %s", o->r.u.where, strerror(-rc));
        return DS_ETRANSPORT;
    }
    o->r.c.sock = o->dial.fd;
    o->dial.fd = -1;
    ds__ssh_dial_end(&o->dial);
    rc = ds__ssh_session_new(&o->r.c, &o->r.u, o->kh, err, errlen);
    if (rc < 0)
        return rc;
    o->st = S_HANDSHAKE;
    return 1;
}

/* The handshake, then the server's key against known_hosts: refused
 * unless known (GOAL_HOSTKEY stops here and lets the caller judge). */
static int handshake_step(struct ds__ssh_open *o, int64_t now, struct ds__ssh_wait *w, char *err,
                          size_t errlen)
{
    int rc = libssh2_session_handshake(o->r.c.s, o->r.c.sock);

    (void)now;
    if (rc == LIBSSH2_ERROR_EAGAIN)
        return wait_session(o, w);
    if (rc != 0) {
        snprintf(err, errlen, "%s: SSH handshake failed: %s%s", o->r.u.where,
                 ds__ssh_errmsg(o->r.c.s),
                 rc == LIBSSH2_ERROR_KEX_FAILURE
                     ? " (no algorithm in common; the usual cause: a server with only an RSA host "
                       "key, whose SHA-1 signatures, all libssh2 1.10 checks, OpenSSH 8.8 and "
                       "later no longer make: give it an ed25519 host key)"
                     : "");
        return DS_ETRANSPORT;
    }
    rc = ds__ssh_hostkey_lookup(o->r.c.s, o->kh, &o->r.u, &o->r.hk, err, errlen);
    if (rc < 0)
        return rc;
    o->st = o->goal == DS__SSH_GOAL_HOSTKEY ? S_DONE : S_AUTH;
    if (o->goal == DS__SSH_GOAL_HOSTKEY)
        return 1;
    free(o->r.hk.key);
    o->r.hk.key = NULL;
    if (o->r.hk.state != DS__HK_MATCH)
        return ds__ssh_refuse_hostkey(&o->cfg, &o->r.u, o->kh, &o->r.hk, err, errlen);
    return 1;
}

static int auth_step(struct ds__ssh_open *o, int64_t now, struct ds__ssh_wait *w, char *err,
                     size_t errlen)
{
    int rc = ds__ssh_auth_step(o->r.c.s, &o->auth, &o->r.u, o->identity, err, errlen);

    (void)now;
    if (rc == 1)
        return wait_session(o, w);
    if (rc < 0)
        return rc;
    ds__ssh_auth_end(&o->auth);
    o->st = o->goal == DS__SSH_GOAL_AGENT ? S_CHANNEL : S_DONE;
    return 1;
}

/* See ssh_int.h. */
int ds__ssh_exec_step(struct ds__ssh_opened *r, const char *cmd, char *err, size_t errlen)
{
    int rc;

    if (r->ch == NULL) {
        r->ch = libssh2_channel_open_session(r->c.s);
        if (r->ch == NULL && libssh2_session_last_errno(r->c.s) == LIBSSH2_ERROR_EAGAIN)
            return 0;
        if (r->ch == NULL)
            goto failed;
    }
    rc = libssh2_channel_exec(r->ch, cmd);
    if (rc == LIBSSH2_ERROR_EAGAIN)
        return 0;
    if (rc == 0)
        return 1;
failed:
    snprintf(err, errlen, "%s: cannot run the agent command '%s': %s", r->u.where, cmd,
             ds__ssh_errmsg(r->c.s));
    return DS_ETRANSPORT;
}

/* The agent's channel: opened, then its command started. */
static int channel_step(struct ds__ssh_open *o, int64_t now, struct ds__ssh_wait *w, char *err,
                        size_t errlen)
{
    int rc = ds__ssh_exec_step(&o->r, o->cmd, err, errlen);

    (void)now;
    if (rc == 0)
        return wait_session(o, w);
    if (rc == 1)
        o->st = S_DONE;
    return rc;
}

/* connect_timeout is over in the state the open is in. */
static int timed_out(const struct ds__ssh_open *o, char *err, size_t errlen)
{
    const struct ds__ssh_url *u = &o->r.u;
    unsigned s = o->connect_s;

    switch (o->st) {
    case S_DNS:
        snprintf(err, errlen,
                 "%s: cannot resolve host '%s': no answer within connect_timeout = %us", u->where,
                 u->host, s);
        return DS_ETRANSPORT;
    case S_DIAL:
        snprintf(err, errlen, "%s: connect: no answer within connect_timeout = %us", u->where, s);
        return DS_ETRANSPORT;
    case S_HANDSHAKE:
        snprintf(err, errlen, "%s: SSH handshake: no answer within connect_timeout = %us", u->where,
                 s);
        return DS_ETRANSPORT;
    case S_AUTH:
        snprintf(err, errlen,
                 "authentication as user '%s' on %s: no answer within connect_timeout = %us",
                 u->user, u->hostport, s);
        return DS_EAUTH;
    default:
        snprintf(err, errlen,
                 "%s: cannot run the agent command '%s': no answer within connect_timeout = %us",
                 u->where, o->cmd, s);
        return DS_ETRANSPORT;
    }
}

typedef int (*state_fn)(struct ds__ssh_open *o, int64_t now, struct ds__ssh_wait *w, char *err,
                        size_t errlen);

/* See ssh_int.h. */
int ds__ssh_open_step(struct ds__ssh_open *o, int64_t now, struct ds__ssh_wait *w, char *err,
                      size_t errlen)
{
    static const state_fn fn[] = {
        [S_DNS] = dns_step,   [S_DIAL] = dial_step,       [S_HANDSHAKE] = handshake_step,
        [S_AUTH] = auth_step, [S_CHANNEL] = channel_step,
    };
    int rc = 1;

    while (rc == 1 && o->st != S_DONE) {
        w->fd = -1;
        w->waits = 0;
        w->wake_ns = o->deadline;
        if (now >= o->deadline)
            return timed_out(o, err, errlen);
        rc = fn[o->st](o, now, w, err, errlen);
    }
    return rc < 0 ? rc : o->st == S_DONE;
}

/* See ssh_int.h. */
void ds__ssh_open_take(struct ds__ssh_open *o, struct ds__ssh_opened *r)
{
    ds__ssh_conn_move(&r->c, &o->r.c);
    r->u = o->r.u;
    r->hk = o->r.hk;
    r->ch = o->r.ch;
    o->r.hk.key = NULL;
    o->r.ch = NULL;
}

/* See ssh_int.h. */
void ds__ssh_open_free(struct ds__ssh_open *o)
{
    if (o == NULL)
        return;
    if (o->dns != NULL)
        o->cfg.resolver->release(o->cfg.resolver->ctx, o->dns);
    ds__ssh_dial_end(&o->dial);
    ds__ssh_auth_end(&o->auth);
    ds__ssh_conn_drop(&o->r.c, o->r.ch);
    free(o->r.hk.key);
    free(o->cmd);
    free(o);
}

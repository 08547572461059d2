/*
 * The blocking start of an ssh:// transport and of `distsync trust`: the
 * stepped open (ssh_open.c) driven with poll(2); the refusal of a host key
 * known_hosts does not hold; the hand-over of a connection between
 * backends; and, for transport = auto, the probe of the agent
 * (ssh_probe.c's steps) driven with poll(2).
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/proto.h"

#include "ssh_int.h"

/* See ssh_int.h. */
int ds__ssh_refuse_hostkey(const ds_transport_cfg_t *cfg, const struct ds__ssh_url *u,
                           const char *kh, const struct ds__ssh_hostkey *hk, char *err,
                           size_t errlen)
{
    const char *name = cfg->server ? cfg->server : "SERVER";

    if (hk->state == DS__HK_UNKNOWN && hk->others[0] != '\0')
        snprintf(err, errlen,
                 "%s: host key unknown: %s %s is not in %s, which holds only %s for this host%s; "
                 "check that fingerprint, then run 'distsync trust %s'",
                 u->where, hk->type, hk->fp, kh, hk->others,
                 strstr(hk->others, "ssh-rsa") != NULL
                     ? " (libssh2 1.10 checks ssh-rsa host keys by SHA-1 signatures only, which "
                       "OpenSSH 8.8 and later no longer make)"
                     : "",
                 name);
    else if (hk->state == DS__HK_UNKNOWN)
        snprintf(err, errlen,
                 "%s: host key unknown: %s %s is not in %s; check that fingerprint, then run "
                 "'distsync trust %s'",
                 u->where, hk->type, hk->fp, kh, name);
    else if (hk->state == DS__HK_REVOKED)
        snprintf(err, errlen,
                 "%s: HOST KEY REVOKED, refusing to connect (this can be an attack): the server "
                 "presents %s %s, which %s marks @revoked; never trust it again: ask the "
                 "server's administrator for its new key",
                 u->where, hk->type, hk->fp, kh);
    else
        snprintf(err, errlen,
                 "%s: HOST KEY CHANGED, refusing to connect (this can be an attack): the server "
                 "now has %s %s, %s records %s for %s; if the change is expected, remove the old "
                 "entry (ssh-keygen -R '%s' -f %s) and run 'distsync trust %s'",
                 u->where, hk->type, hk->fp, kh, hk->old_fp, hk->entry, hk->entry, kh, name);
    return DS_EHOSTKEY;
}

/* See ssh_int.h. */
void ds__ssh_wait_for(const struct ds__ssh_wait *w)
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
        ds__ssh_wait_for(&w);
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

/* See ssh_int.h. */
int ds__ssh_agent_probe(struct ds__ssh_conn *c, const char *agent, const char *path,
                        unsigned wait_s, char *why, size_t whylen)
{
    int64_t deadline = ds__ssh_mono_ns() + (int64_t)wait_s * 1000000000LL;
    struct ds__ssh_probe *p = NULL;
    struct ds__ssh_wait w;
    int rc;

    if (deadline > c->deadline_ns)
        deadline = c->deadline_ns; /* the shorter of wait_s and the connect's */
    rc = ds__ssh_probe_new(c, agent, path, deadline, &p);
    if (rc < 0)
        return rc;
    libssh2_session_set_blocking(c->s, 0);
    while (ds__ssh_probe_step(p, ds__ssh_mono_ns(), &w) == 0)
        ds__ssh_wait_for(&w);
    libssh2_session_set_blocking(c->s, 1);
    rc = ds__ssh_probe_answered(p, why, whylen);
    ds__ssh_probe_free(p);
    return rc;
}

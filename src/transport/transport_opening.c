/*
 * The stepped open of a transport (transport.h: ds_transport_open_begin),
 * for a caller whose event loop must not block: ssh:// servers, through
 * the state machine of ssh_open.c (DNS, connect, handshake, host key,
 * login; the agent's exec channel for transport = agent), then for auto
 * the probe of the agent (ssh_probe.c) and the agent's own channel when it
 * answered, and for sftp (or auto without an agent) SFTP's start
 * (transport_sftp.c). Every step waits on the socket; none blocks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/transport.h"

#include "ssh_int.h"

#define NS_PER_S     1000000000LL
#define IO_TIMEOUT_S 30 /* timeout_s unset: the probe's wait */

enum { OP_OPEN, OP_PROBE, OP_AGENT, OP_SFTP };

struct ds_transport_opening {
    ds_transport_cfg_t cfg;
    int agent, automatic, st;
    struct ds__ssh_open *o;
    struct ds__ssh_opened r; /* once connected */
    struct ds__ssh_probe *probe;
    const char *cmd;   /* OP_AGENT: the agent's command line (the probe's) */
    ds_transport_t *t; /* OP_SFTP: the transport starting */
    char why[450];     /* auto: why SFTP */
};

/* See transport.h. */
int ds_transport_open_begin(const ds_transport_cfg_t *cfg, int64_t now_ns,
                            ds_transport_opening_t **op, char *err, size_t errlen)
{
    const char *mode = cfg->mode ? cfg->mode : "auto";
    int agent = strcmp(mode, "agent") == 0, automatic = strcmp(mode, "auto") == 0;
    struct ds_transport_opening *p;
    int rc;

    *op = NULL;
    if (strncmp(cfg->url, "ssh://", 6) != 0 || (!agent && !automatic && strcmp(mode, "sftp") != 0))
        return 0; /* ds_transport_open does it, or says what is wrong */
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(err, errlen, "%s: out of memory", cfg->url);
        return DS_ENOMEM;
    }
    p->cfg = *cfg;
    p->automatic = automatic;
    p->agent = agent;
    p->r.c.sock = -1;
    rc = ds__ssh_open_new(cfg, agent ? DS__SSH_GOAL_AGENT : DS__SSH_GOAL_AUTH, now_ns, &p->o, err,
                          errlen);
    if (rc < 0) {
        free(p);
        return rc;
    }
    *op = p;
    return 1;
}

/* Connected and logged in: auto probes the agent, sftp starts. */
static int connected(ds_transport_opening_t *op, int64_t now, char *err, size_t errlen)
{
    unsigned wait_s = op->cfg.timeout_s ? op->cfg.timeout_s : IO_TIMEOUT_S;
    int64_t deadline = now + (int64_t)wait_s * NS_PER_S;
    int rc;

    ds__ssh_open_take(op->o, &op->r);
    if (!op->automatic) {
        op->st = OP_SFTP;
        rc = ds__sftp_start_new(&op->cfg, &op->r.c, &op->r.u, NULL, &op->t, err, errlen);
        return rc < 0 ? rc : 1;
    }
    if (deadline > op->r.c.deadline_ns)
        deadline = op->r.c.deadline_ns; /* the shorter of timeout and connect_timeout */
    rc = ds__ssh_probe_new(&op->r.c, op->cfg.agent, op->r.u.path, deadline, &op->probe);
    if (rc == 0 && op->cfg.prelude != NULL)
        rc = ds__ssh_probe_prelude(op->probe, op->cfg.prelude, op->cfg.prelude_len);
    if (rc < 0) {
        snprintf(err, errlen, "%s: out of memory", op->cfg.url);
        return rc;
    }
    ds__ssh_probe_keep(op->probe); /* an agent that answers stays on its channel */
    op->st = OP_PROBE;
    return 1;
}

/* A prelude the agent did not answer: refused (it acted on nothing after
 * its HELLO: DS_EVERSION, the caller opens again without one), or written
 * to an agent still running that did not answer in time (it may yet take
 * the lease: SFTP beside it could lose its files, so the open fails with
 * -ETIMEDOUT). Returns 0 when neither (SFTP may go on). */
static int prelude_unanswered(ds_transport_opening_t *op, const char *why, char *err, size_t errlen)
{
    switch (ds__ssh_probe_prelude_fate(op->probe)) {
    case DS__PROBE_REFUSED:
        snprintf(err, errlen, "%s: transport = auto: %s", op->r.u.where, why);
        return DS_EVERSION;
    case DS__PROBE_MUTE:
        snprintf(err, errlen,
                 "%s: transport = auto: %s; SFTP is not tried, as that agent was sent the lease "
                 "request with HELLO and may still act on it (the next run asks HELLO alone)",
                 op->r.u.where, why);
        return -ETIMEDOUT;
    default:
        return 0;
    }
}

/* The probe is over: the agent that answered on the probe's channel (2
 * with *out), else on a channel of its own, else SFTP. */
static int probed(ds_transport_opening_t *op, ds_transport_t **out, char *err, size_t errlen)
{
    struct ds__ssh_greeting g;
    char why[400];
    int rc;

    if (ds__ssh_probe_take(op->probe, &g)) {
        rc = ds__transport_ssh_adopt(&op->cfg, &op->r.c, g.ch, &op->r.u, out, err, errlen);
        if (rc < 0) {
            free(g.reply);
            free(g.err);
            return rc;
        }
        if (ds__transport_ssh_greeted(*out, &g) < 0) {
            ds_transport_free(*out);
            *out = NULL;
            snprintf(err, errlen, "%s: out of memory", op->cfg.url);
            return DS_ENOMEM;
        }
        return 2;
    }
    if (ds__ssh_probe_answered(op->probe, why, sizeof(why))) {
        op->st = OP_AGENT;
        op->cmd = ds__ssh_probe_cmd(op->probe);
        return 1;
    }
    rc = prelude_unanswered(op, why, err, errlen);
    if (rc < 0)
        return rc;
    snprintf(op->why, sizeof(op->why), "transport = auto: %s", why);
    op->st = OP_SFTP;
    return ds__sftp_start_new(&op->cfg, &op->r.c, &op->r.u, op->why, &op->t, err, errlen) < 0
               ? DS_ENOMEM
               : 1;
}

/* auto, the agent answered: its own channel, as transport = agent opens
 * it. Returns 0 to wait, 1 with *out, or a failure. */
static int agent_step(ds_transport_opening_t *op, struct ds__ssh_wait *w, ds_transport_t **out,
                      char *err, size_t errlen)
{
    int rc = ds__ssh_exec_step(&op->r, op->cmd, err, errlen);

    if (rc == 0)
        return ds__ssh_conn_wait(&op->r.c, op->r.c.deadline_ns, w);
    if (rc < 0)
        return rc;
    rc = ds__transport_ssh_adopt(&op->cfg, &op->r.c, op->r.ch, &op->r.u, out, err, errlen);
    op->r.ch = NULL;
    return rc < 0 ? rc : 1;
}

/* One state. Returns 0 to wait (*w), 1 to go on, 2 with *out, or a
 * failure. */
static int step(ds_transport_opening_t *op, int64_t now, struct ds__ssh_wait *w,
                ds_transport_t **out, char *err, size_t errlen)
{
    int rc;

    switch (op->st) {
    case OP_OPEN:
        rc = ds__ssh_open_step(op->o, now, w, err, errlen);
        if (rc <= 0)
            return rc;
        if (!op->agent)
            return connected(op, now, err, errlen);
        ds__ssh_open_take(op->o, &op->r);
        rc = ds__transport_ssh_adopt(&op->cfg, &op->r.c, op->r.ch, &op->r.u, out, err, errlen);
        op->r.ch = NULL;
        return rc < 0 ? rc : 2;
    case OP_PROBE:
        if (ds__ssh_probe_step(op->probe, now, w) == 0)
            return 0;
        return probed(op, out, err, errlen);
    case OP_AGENT:
        if (now >= op->r.c.deadline_ns) {
            snprintf(err, errlen,
                     "%s: cannot run the agent command '%s': no answer within connect_timeout",
                     op->r.u.where, op->cmd);
            return DS_ETRANSPORT;
        }
        rc = agent_step(op, w, out, err, errlen);
        return rc == 1 ? 2 : rc;
    default: /* OP_SFTP */
        rc = ds__sftp_start_step(op->t, now, w, err, errlen);
        if (rc == 1) {
            *out = op->t;
            op->t = NULL;
            return 2;
        }
        return rc;
    }
}

/* See transport.h. */
int ds_transport_open_step(ds_transport_opening_t *op, int64_t now_ns, int *fd, unsigned *waits,
                           int64_t *wake_ns, ds_transport_t **out, char *err, size_t errlen)
{
    struct ds__ssh_wait w = {.fd = -1};
    int rc = 1;

    *out = NULL;
    while (rc == 1)
        rc = step(op, now_ns, &w, out, err, errlen);
    *fd = w.fd;
    *waits = w.waits;
    *wake_ns = w.wake_ns;
    return rc == 2 ? 1 : rc;
}

/* See transport.h. */
void ds_transport_open_free(ds_transport_opening_t *op)
{
    if (op == NULL)
        return;
    ds__ssh_open_free(op->o);
    ds__ssh_probe_free(op->probe);
    ds_transport_free(op->t);
    ds__ssh_conn_drop(&op->r.c, op->r.ch);
    free(op);
}

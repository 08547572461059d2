/*
 * The stepped open of a transport (transport.h: ds_transport_open_begin),
 * for a caller whose event loop must not block: ssh:// servers, through
 * the state machine of ssh_open.c. transport = agent ends on the loop with
 * the agent running on its channel; sftp and auto end their connection on
 * the loop and leave the rest (auto's probe of the agent, the SFTP start)
 * to a worker, as a blocking open would do it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/transport.h"

#include "ssh_int.h"

struct ds_transport_opening {
    ds_transport_cfg_t cfg;
    int automatic;
    struct ds__ssh_open *o;
    struct ds__ssh_opened r; /* once connected: what finish hands on */
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

/* See transport.h. */
int ds_transport_open_step(ds_transport_opening_t *op, int64_t now_ns, int *fd, unsigned *waits,
                           int64_t *wake_ns, ds_transport_t **out, char *err, size_t errlen)
{
    struct ds__ssh_wait w = {.fd = -1};
    LIBSSH2_CHANNEL *ch;
    int rc = ds__ssh_open_step(op->o, now_ns, &w, err, errlen);

    *out = NULL;
    *fd = w.fd;
    *waits = w.waits;
    *wake_ns = w.wake_ns;
    if (rc <= 0)
        return rc;
    ds__ssh_open_take(op->o, &op->r);
    ch = op->r.ch;
    op->r.ch = NULL;
    if (ch != NULL) {
        rc = ds__transport_ssh_adopt(&op->cfg, &op->r.c, ch, &op->r.u, out, err, errlen);
        return rc < 0 ? rc : 1;
    }
    libssh2_session_set_blocking(op->r.c.s, 1); /* the rest blocks, on a worker */
    return 2;
}

/* See transport.h. */
int ds_transport_open_finish(ds_transport_opening_t *op, ds_transport_t **out, char *err,
                             size_t errlen)
{
    return ds__transport_sftp_open_conn(&op->cfg, op->automatic, &op->r.c, &op->r.u, out, err,
                                        errlen);
}

/* See transport.h. */
void ds_transport_open_free(ds_transport_opening_t *op)
{
    if (op == NULL)
        return;
    ds__ssh_open_free(op->o);
    ds__ssh_conn_drop(&op->r.c, NULL);
    free(op);
}

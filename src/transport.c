/* Transport: URL dispatch and the vtable wrappers. Backends live in
 * transport_local.c (in-process receiver) and transport_pipe.c (agent). */
#include <stdio.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/transport.h"

int ds_transport_file_root(const char *url, char *buf, size_t cap)
{
    const char *p;

    if (strncmp(url, "file://", 7) != 0)
        return DS_EUSAGE;
    p = url + 7;
    if (p[0] != '/' || strlen(p) >= cap)
        return DS_EUSAGE;
    memcpy(buf, p, strlen(p) + 1);
    return 0;
}

int ds_transport_open(const ds_transport_cfg_t *cfg, ds_transport_t **out, char *err, size_t errlen)
{
    char root[4096];
    const char *mode = cfg->mode ? cfg->mode : "local";

    *out = NULL;
    if (ds_transport_file_root(cfg->url, root, sizeof(root)) < 0) {
        snprintf(err, errlen, "%s: unsupported URL (this build syncs to file:// targets only)",
                 cfg->url);
        return DS_EUSAGE;
    }
    if (strcmp(mode, "local") == 0)
        return ds__transport_local_open(root, cfg->no_fsync, out, err, errlen);
    if (strcmp(mode, "agent") == 0)
        return ds__transport_pipe_open(root, cfg->agent, cfg->timeout_s, out, err, errlen);
    snprintf(err, errlen, "%s: unknown transport '%s' (use local or agent)", cfg->url, mode);
    return DS_EUSAGE;
}

long ds_transport_write(ds_transport_t *t, const void *p, size_t n)
{
    return t->ops->write(t, p, n);
}

long ds_transport_read(ds_transport_t *t, void *buf, size_t cap)
{
    return t->ops->read(t, buf, cap);
}

int ds_transport_close(ds_transport_t *t)
{
    return t->ops->close(t);
}

void ds_transport_kill(ds_transport_t *t)
{
    if (t->ops->kill != NULL)
        t->ops->kill(t);
}

void ds_transport_fds(const ds_transport_t *t, int *rfd, int *wfd)
{
    *rfd = t->rfd;
    *wfd = t->wfd;
}

const char *ds_transport_error(const ds_transport_t *t)
{
    return t->err;
}

void ds_transport_free(ds_transport_t *t)
{
    if (t != NULL)
        t->ops->free(t);
}

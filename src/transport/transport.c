/* Transport: URL dispatch and the vtable wrappers. Backends live in
 * transport_local.c (in-process receiver), transport_pipe.c (agent) and
 * transport_ssh.c (agent over SSH), transport_sftp.c (SFTP mode). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* mkdir -p path (0755). Returns 0 or -errno. */
static int mkdirs(char *path)
{
    for (char *s = strchr(path + 1, '/');; s = strchr(s + 1, '/')) {
        if (s != NULL)
            *s = '\0';
        int rc = mkdir(path, 0755) < 0 && errno != EEXIST ? -errno : 0;
        if (s != NULL)
            *s = '/';
        if (rc < 0 || s == NULL)
            return rc;
    }
}

/* The root exists (or is created, with create) and is a directory.
 * Returns 0, or < 0 with a message naming root in err. */
static int check_root(char *root, int create, char *err, size_t errlen)
{
    struct stat st;
    int rc = stat(root, &st) < 0 ? -errno : 0;

    if (rc == -ENOENT && !create) {
        snprintf(err, errlen, "target root %s does not exist (create it, or set create_root = yes)",
                 root);
        return rc;
    }
    if (rc == -ENOENT) {
        rc = mkdirs(root);
        if (rc < 0) {
            snprintf(err, errlen, "cannot create target root %s: %s", root, ds_strerror(rc));
            return rc;
        }
        rc = stat(root, &st) < 0 ? -errno : 0;
    }
    if (rc == 0 && !S_ISDIR(st.st_mode))
        rc = -ENOTDIR;
    if (rc < 0)
        snprintf(err, errlen, "target root %s: %s", root, ds_strerror(rc));
    return rc;
}

/* ssh:// takes transport = agent, sftp or auto (the agent when it
 * answers, else SFTP: transport_sftp.c). */
static int ssh_open(const ds_transport_cfg_t *cfg, ds_transport_t **out, char *err, size_t errlen)
{
    const char *mode = cfg->mode ? cfg->mode : "auto";

    if (strcmp(mode, "agent") == 0)
        return ds__transport_ssh_open(cfg, out, err, errlen);
    if (strcmp(mode, "sftp") == 0 || strcmp(mode, "auto") == 0)
        return ds__transport_sftp_open(cfg, strcmp(mode, "auto") == 0, out, err, errlen);
    snprintf(err, errlen, "%s: transport '%s' does not apply to ssh:// (use agent, sftp or auto)",
             cfg->url, mode);
    return DS_EUSAGE;
}

int ds_transport_open(const ds_transport_cfg_t *cfg, ds_transport_t **out, char *err, size_t errlen)
{
    char root[4096];
    const char *mode = cfg->mode ? cfg->mode : "local";
    int rc;

    *out = NULL;
    if (strncmp(cfg->url, "ssh://", 6) == 0)
        return ssh_open(cfg, out, err, errlen);
    if (strncmp(cfg->url, "smb://", 6) == 0)
        return ds__transport_smb_open(cfg, out, err, errlen);
    if (ds_transport_file_root(cfg->url, root, sizeof(root)) < 0) {
        snprintf(
            err, errlen,
            "%s: unsupported URL (this build syncs to file://, ssh:// and smb:// targets only)",
            cfg->url);
        return DS_EUSAGE;
    }
    rc = check_root(root, cfg->create_root, err, errlen);
    if (rc < 0)
        return rc;
    if (strcmp(mode, "local") == 0)
        return ds__transport_local_open(root, cfg->no_fsync, out, err, errlen);
    if (strcmp(mode, "agent") == 0)
        return ds__transport_pipe_open(root, cfg->agent, cfg->timeout_s, cfg->spawner, out, err,
                                       errlen);
    snprintf(err, errlen, "%s: unknown transport '%s' (use local or agent)", cfg->url, mode);
    return DS_EUSAGE;
}

long ds_transport_write(ds_transport_t *t, const void *p, size_t n)
{
    return t->ops->write(t, p, n);
}

uint64_t ds_transport_unread(const ds_transport_t *t)
{
    return t->ops->unread ? t->ops->unread(t) : 0;
}

long ds_transport_read(ds_transport_t *t, void *buf, size_t cap)
{
    return t->ops->read(t, buf, cap);
}

int ds_transport_close(ds_transport_t *t)
{
    return t->ops->close(t);
}

int ds_transport_close_steps(const ds_transport_t *t)
{
    return t->ops->close_step != NULL;
}

int ds_transport_close_step(ds_transport_t *t, int64_t now_ns, int *fd, unsigned *waits,
                            int64_t *wake_ns, int *rc)
{
    return t->ops->close_step(t, now_ns, fd, waits, wake_ns, rc);
}

void ds_transport_kill(ds_transport_t *t)
{
    if (t->ops->kill != NULL)
        t->ops->kill(t);
}

int ds_transport_start(ds_transport_t *t)
{
    return t->ops->start != NULL ? t->ops->start(t) : 0;
}

void ds_transport_rate(ds_transport_t *t, uint64_t bytes_per_s)
{
    if (t->ops->rate != NULL)
        t->ops->rate(t, bytes_per_s);
}

int ds_transport_reap(ds_transport_t *t, int64_t now_ns, int64_t *wake_ns)
{
    return t->ops->reap != NULL ? t->ops->reap(t, now_ns, wake_ns) : 1;
}

void ds_transport_fds(const ds_transport_t *t, int *rfd, int *wfd)
{
    *rfd = t->rfd;
    *wfd = t->wfd;
}

unsigned ds_transport_waits(const ds_transport_t *t, int have_output)
{
    if (t->ops->waits != NULL)
        return t->ops->waits(t, have_output);
    return DS_TRANSPORT_WAIT_READ | (have_output ? DS_TRANSPORT_WAIT_WRITE : 0);
}

const char *ds_transport_error(const ds_transport_t *t)
{
    return t->err;
}

int ds_transport_note(ds_transport_t *t, char *buf, size_t cap)
{
    return t->ops->note != NULL && cap > 0 ? t->ops->note(t, buf, cap) : 0;
}

void ds_transport_free(ds_transport_t *t)
{
    if (t != NULL)
        t->ops->free(t);
}

/*
 * The checks of `distsync config check` that go beyond the file itself:
 * the store exists, no target lies inside the store or the state
 * directory, no two servers share a URL, an smb:// server's credentials
 * can be read (the file's mode is 0600, its lines parse; or the
 * environment has them), an ssh:// server's identity = is a private key
 * libssh2 can use, each rollout's enrolment token is readable by its
 * owner only.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "distsync/config.h"
#include "distsync/error.h"
#include "distsync/smbcred.h"
#include "distsync/sshkey.h"

/* A config check error (ds_errf, error.h). */
#define check_fail(err, errlen, ...) ds_errf(err, errlen, DS_ECONFIG, __VA_ARGS__)

/* path with repeated and trailing slashes dropped ("/" stays "/"). */
static void squeeze(const char *path, char *out, size_t len)
{
    size_t n = 0;

    for (const char *s = path; *s != '\0' && n + 1 < len; s++)
        if (!(*s == '/' && n > 0 && out[n - 1] == '/'))
            out[n++] = *s;
    while (n > 1 && out[n - 1] == '/')
        n--;
    out[n] = '\0';
}

/* path made canonical: realpath(3) of its longest existing prefix, the
 * rest (not created yet) appended, so a target reached through a symlink
 * is seen where it will be written even before it exists. */
static void norm_path(const char *path, char *out, size_t len)
{
    char sq[PATH_MAX], head[PATH_MAX], real[PATH_MAX], joined[2 * PATH_MAX + 2];
    char *cut;

    squeeze(path, sq, sizeof(sq));
    snprintf(head, sizeof(head), "%s", sq);
    for (;;) {
        if (realpath(head[0] ? head : "/", real) != NULL) {
            /* the rest starts with '/' (or is empty): "//x" squeezes to "/x" */
            snprintf(joined, sizeof(joined), "%s%s", real, sq + strlen(head));
            squeeze(joined, out, len);
            return;
        }
        if ((cut = strrchr(head, '/')) == NULL) {
            snprintf(out, len, "%s", sq);
            return;
        }
        *cut = '\0';
    }
}

/* A URL as compared for sameness: trailing slashes dropped; file:// paths
 * canonical. */
static void norm_url(const char *url, char *out, size_t len)
{
    size_t n;

    if (strncmp(url, "file://", 7) == 0) {
        memcpy(out, "file://", 8);
        norm_path(url + 7, out + 7, len - 7);
        return;
    }
    snprintf(out, len, "%s", url);
    for (n = strlen(out); n > 1 && out[n - 1] == '/'; n--)
        out[n - 1] = '\0';
}

/* 1 when path is dir or below it (both normalised). */
static int inside(const char *path, const char *dir)
{
    size_t n = strlen(dir);

    if (strcmp(dir, "/") == 0)
        return 1;
    return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* See config.h. */
int ds_config_check_target(const ds_config_t *cfg, const ds_server_cfg_t *s, char *err,
                           size_t errlen)
{
    char root[PATH_MAX], store[PATH_MAX], state[PATH_MAX];

    if (strncmp(s->url, "file://", 7) != 0)
        return 0;
    norm_path(s->url + 7, root, sizeof(root));
    norm_path(cfg->store, store, sizeof(store));
    norm_path(cfg->state, state, sizeof(state));
    if (inside(root, store))
        return check_fail(err, errlen,
                          "%s:%d: [server %s] key 'url': target %s is inside the store %s "
                          "(a sync would copy the store into itself)",
                          cfg->path, s->url_line, s->name, root, cfg->store);
    if (inside(root, state))
        return check_fail(err, errlen,
                          "%s:%d: [server %s] key 'url': target %s is inside the state "
                          "directory %s",
                          cfg->path, s->url_line, s->name, root, cfg->state);
    return 0;
}

/* An smb:// server's credentials load (never shown: only the file named). */
static int check_creds(const ds_config_t *cfg, const ds_server_cfg_t *s, char *err, size_t errlen)
{
    ds_smbcred_t cred;
    char msg[1024];
    int rc;

    if (strncmp(s->url, "smb://", 6) != 0)
        return 0;
    rc = s->credentials != NULL ? ds_smbcred_load(s->credentials, &cred, msg, sizeof(msg))
                                : ds_smbcred_from_env(&cred, msg, sizeof(msg));
    ds_smbcred_clear(&cred);
    if (rc == DS_ENOMEM)
        return rc;
    if (rc < 0 && s->credentials != NULL)
        return check_fail(err, errlen, "%s:%d: [server %s] key 'credentials': %s", cfg->path,
                          s->credentials_line, s->name, msg);
    if (rc < 0)
        return check_fail(err, errlen,
                          "%s:%d: [server %s]: no credentials (%s): set credentials = FILE, or "
                          "%s and %s in the environment",
                          cfg->path, s->line, s->name, msg, DS_SMBCRED_ENV_USER,
                          DS_SMBCRED_ENV_PASSWORD);
    return 0;
}

/* An ssh:// server's identity = file: what the login would find wrong
 * with it (a .pub, a passphrase, RSA, missing), said before a sync. */
static int check_identity(const ds_config_t *cfg, const ds_server_cfg_t *s, char *err,
                          size_t errlen)
{
    char why[512];

    if (s->identity == NULL || strncmp(s->url, "ssh://", 6) != 0 ||
        ds_sshkey_check(s->identity, why, sizeof(why)) == 0)
        return 0;
    return check_fail(err, errlen, "%s:%d: [server %s] key 'identity': %s: %s", cfg->path,
                      s->identity_line, s->name, s->identity, why);
}

/* See config.h. */
int ds_config_check(const ds_config_t *cfg, char *err, size_t errlen)
{
    char a[PATH_MAX + 8], b[PATH_MAX + 8];
    struct stat st;
    int rc = 0;

    if (stat(cfg->store, &st) < 0)
        return check_fail(err, errlen, "%s:%d: [console] key 'store': %s: %s", cfg->path,
                          cfg->store_line, cfg->store, ds_strerror(-errno));
    if (!S_ISDIR(st.st_mode))
        return check_fail(err, errlen, "%s:%d: [console] key 'store': %s: not a directory",
                          cfg->path, cfg->store_line, cfg->store);
    for (size_t i = 0; rc == 0 && i < cfg->nservers; i++) {
        rc = ds_config_check_target(cfg, &cfg->servers[i], err, errlen);
        if (rc == 0)
            rc = check_creds(cfg, &cfg->servers[i], err, errlen);
        if (rc == 0)
            rc = check_identity(cfg, &cfg->servers[i], err, errlen);
        norm_url(cfg->servers[i].url, a, sizeof(a));
        for (size_t k = 0; rc == 0 && k < i; k++) {
            norm_url(cfg->servers[k].url, b, sizeof(b));
            if (strcmp(a, b) == 0)
                rc = check_fail(err, errlen,
                                "%s:%d: [server %s] key 'url': same target as [server %s] "
                                "(line %d): %s",
                                cfg->path, cfg->servers[i].url_line, cfg->servers[i].name,
                                cfg->servers[k].name, cfg->servers[k].url_line, a);
        }
    }
    if (rc == 0 && cfg->api_token_file != NULL) {
        char tok[DS_API_TOKEN_MAX];

        /* what the daemon refuses to start with: the same reader */
        if (ds_config_api_token(cfg, tok, sizeof(tok), err, errlen) < 0)
            rc = DS_ECONFIG;
        explicit_bzero(tok, sizeof(tok));
    }
    for (size_t i = 0; rc == 0 && i < cfg->nrollouts; i++) {
        const ds_rollout_cfg_t *r = &cfg->rollouts[i];
        char tok[256], why[PATH_MAX + 256];

        if (ds_config_rollout_token(r, tok, sizeof(tok), why, sizeof(why)) < 0)
            rc = check_fail(err, errlen, "%s:%d: [rollout %s] key 'token_file': %s", cfg->path,
                            r->token_file_line, r->name, why);
        explicit_bzero(tok, sizeof(tok));
    }
    return rc;
}

int ds_config_api_token(const ds_config_t *cfg, char *buf, size_t len, char *err, size_t errlen)
{
    char why[PATH_MAX + 256];
    int rc = ds_config_token_file(cfg->api_token_file, buf, len, why, sizeof(why));

    if (rc < 0)
        ds_errf(err, errlen, rc, "%s:%d: [console] key 'api_token_file': %s", cfg->path,
                cfg->api_token_file_line, why);
    return rc;
}

size_t ds_config_warnings(const ds_config_t *cfg, ds_config_warn_fn fn, void *arg)
{
    char msg[1024];
    size_t n = 0;

    for (size_t i = 0; i < cfg->nrings; i++) {
        const ds_ring_cfg_t *g = &cfg->rings[i];

        if (g->members.n == 0 || g->size != 0)
            continue;
        snprintf(msg, sizeof(msg),
                 "%s:%d: [ring %s] members = globs without size =: the ring's min_success and "
                 "max_failure count only the clients seen so far (the first few to succeed can "
                 "open the next ring); set size = the number of clients in the ring",
                 cfg->path, g->members_line, g->name);
        fn(arg, msg);
        n++;
    }
    for (size_t i = 0; i < cfg->nservers; i++) {
        const ds_server_cfg_t *sv = &cfg->servers[i];

        if (!sv->create_root || strncmp(sv->url, "file://", 7) == 0)
            continue;
        snprintf(msg, sizeof(msg),
                 "%s:%d: [server %s] create_root = yes has no effect on this server: it creates "
                 "a missing file:// root only; create the root on the server",
                 cfg->path, sv->line, sv->name);
        fn(arg, msg);
        n++;
    }
    return n;
}

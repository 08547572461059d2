/*
 * The files a console's config names besides itself: the known_hosts
 * files and the identity (private key) files of its ssh:// servers, the
 * credentials files of its smb:// servers, the daemon's API token and TLS
 * files and the rollouts' enrolment token files (secrets, like identities). Backup
 * collects them; restore accepts a destination only when the restored
 * config names it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup_int.h"

void ds__backup_wants_free(ds__backup_want_t *w, size_t n)
{
    for (size_t i = 0; w && i < n; i++)
        free(w[i].path);
    free(w);
}

/* v resolved ("~/" against $HOME; NULL: $HOME/.ssh/known_hosts) and
 * normalised into out. */
static int resolve(const char *v, char *out, size_t cap)
{
    const char *home = getenv("HOME");
    char tmp[PATH_MAX];

    if (v != NULL && strncmp(v, "~/", 2) != 0)
        return ds__backup_normalize(v, out, cap);
    if (home == NULL || home[0] != '/')
        return DS_EPATH;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s", home, v ? v + 2 : ".ssh/known_hosts") >=
        sizeof(tmp))
        return -ENAMETOOLONG;
    return ds__backup_normalize(tmp, out, cap);
}

static int add(ds__backup_want_t **w, size_t *n, ds_backup_role_t role, const char *path)
{
    ds__backup_want_t *x;

    for (size_t i = 0; i < *n; i++)
        if ((*w)[i].role == role && strcmp((*w)[i].path, path) == 0)
            return 0;
    if ((x = realloc(*w, (*n + 1) * sizeof(*x))) == NULL)
        return DS_ENOMEM;
    *w = x;
    x[*n].role = role;
    if ((x[*n].path = strdup(path)) == NULL)
        return DS_ENOMEM;
    (*n)++;
    return 0;
}

/* The files server s names: its credentials (smb://), known_hosts and
 * identity (ssh://), added to w. */
static int server_files(const ds_server_cfg_t *s, ds__backup_want_t **w, size_t *k)
{
    char p[PATH_MAX];
    int rc = 0;

    if (strncmp(s->url, "smb://", 6) == 0 && s->credentials != NULL &&
        (rc = resolve(s->credentials, p, sizeof(p))) == 0)
        return add(w, k, DS_BACKUP_SECRET, p);
    if (rc < 0 || strncmp(s->url, "ssh://", 6) != 0)
        return rc;
    rc = resolve(s->known_hosts, p, sizeof(p));
    if (rc == 0)
        rc = add(w, k, DS_BACKUP_KNOWN_HOSTS, p);
    if (rc == 0 && s->identity != NULL && (rc = resolve(s->identity, p, sizeof(p))) == 0)
        rc = add(w, k, DS_BACKUP_SECRET, p);
    return rc;
}

/* The console's secrets: the API token file, the TLS certificate and key
 * (a pair: the certificate is kept with its key), and every rollout's
 * enrolment token file, added to w. Paths are absolute in the config. */
static int console_files(const ds_config_t *cfg, ds__backup_want_t **w, size_t *k)
{
    const char *one[] = {cfg->api_token_file, cfg->api_tls_cert, cfg->api_tls_key};
    char p[PATH_MAX];
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < sizeof(one) / sizeof(one[0]); i++)
        if (one[i] != NULL && (rc = ds__backup_normalize(one[i], p, sizeof(p))) == 0)
            rc = add(w, k, DS_BACKUP_SECRET, p);
    for (size_t i = 0; rc == 0 && i < cfg->nrollouts; i++)
        if (cfg->rollouts[i].token_file != NULL &&
            (rc = ds__backup_normalize(cfg->rollouts[i].token_file, p, sizeof(p))) == 0)
            rc = add(w, k, DS_BACKUP_SECRET, p);
    return rc;
}

int ds__backup_config_files(const ds_config_t *cfg, ds__backup_want_t **out, size_t *n, char *err,
                            size_t errlen)
{
    ds__backup_want_t *w = NULL;
    size_t k = 0;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < cfg->nservers; i++) {
        const ds_server_cfg_t *s = &cfg->servers[i];

        rc = server_files(s, &w, &k);
        if (rc < 0 && rc != DS_ENOMEM)
            snprintf(err, errlen,
                     "%s: [server %s]: cannot resolve its known_hosts, identity or credentials "
                     "path (is $HOME set?)",
                     cfg->path, s->name);
    }
    if (rc == 0 && (rc = console_files(cfg, &w, &k)) < 0 && rc != DS_ENOMEM)
        snprintf(err, errlen, "%s: cannot resolve an API token, TLS or enrolment token path",
                 cfg->path);
    if (rc == DS_ENOMEM)
        snprintf(err, errlen, "out of memory");
    if (rc < 0) {
        ds__backup_wants_free(w, k);
        return rc;
    }
    *out = w;
    *n = k;
    return 0;
}

/*
 * The SMB backend's directory cache (smb_dircache.h). A session writes a
 * few hundred directories at most, so a plain array searched linearly
 * costs nothing next to the round trip it saves; past DIRCACHE_MAX entries
 * nothing more is remembered.
 */
#include <stdlib.h>
#include <string.h>

#include "smb_dircache.h"

#define DIRCACHE_MAX 65536

int ds__smb_dircache_has(const ds_smb_dircache_t *c, const char *url)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i], url) == 0)
            return 1;
    return 0;
}

void ds__smb_dircache_add(ds_smb_dircache_t *c, const char *url)
{
    char *u;

    if (ds__smb_dircache_has(c, url) || c->n >= DIRCACHE_MAX)
        return;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        char **v = realloc(c->v, cap * sizeof(*v));

        if (v == NULL)
            return;
        c->v = v;
        c->cap = cap;
    }
    if ((u = strdup(url)) != NULL)
        c->v[c->n++] = u;
}

/* Whether u is url or lies under it. */
static int under(const char *u, const char *url, size_t len)
{
    return strncmp(u, url, len) == 0 && (u[len] == '\0' || u[len] == '/');
}

void ds__smb_dircache_forget(ds_smb_dircache_t *c, const char *url)
{
    size_t len = strlen(url), i = 0;

    while (len > 0 && url[len - 1] == '/')
        len--;
    while (i < c->n) {
        if (!under(c->v[i], url, len)) {
            i++;
            continue;
        }
        free(c->v[i]);
        c->v[i] = c->v[--c->n];
    }
}

void ds__smb_dircache_close(ds_smb_dircache_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i]);
    free(c->v);
    c->v = NULL;
    c->n = c->cap = 0;
}

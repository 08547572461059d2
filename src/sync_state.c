/*
 * Sync state on the console: the catalog snapshot (desired files and which
 * store file provides each content), the planner's oracle over the catalog
 * and the retain store, and retaining what servers reference.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "distsync/error.h"
#include "distsync/log.h"
#include "sync_int.h"

static int cmp_content(const void *a, const void *b)
{
    int64_t x = (*(struct sfile_row *const *)a)->content_id;
    int64_t y = (*(struct sfile_row *const *)b)->content_id;

    return x < y ? -1 : x > y;
}

static int add_row(ds_sync_t *s, const ds_file_row_t *r, size_t *cap)
{
    struct sfile_row *x;

    if (s->nrows == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        void *p = realloc(s->rows, nc * sizeof(*s->rows));

        if (p == NULL)
            return DS_ENOMEM;
        s->rows = p;
        *cap = nc;
    }
    x = &s->rows[s->nrows];
    x->path = strdup(r->path);
    x->klass = strdup(r->klass);
    if (x->path == NULL || x->klass == NULL) {
        free(x->path);
        free(x->klass);
        return DS_ENOMEM;
    }
    x->size = r->size;
    x->mtime_ns = r->mtime_ns;
    x->content_id = r->content_id;
    memcpy(x->sha256, r->sha256, DS_SHA256_LEN);
    s->nrows++;
    return 0;
}

int ds__sync_load(ds_sync_t *s)
{
    ds_catalog_cursor_t *cur = NULL;
    ds_file_row_t r;
    size_t cap = 0;
    int rc;

    if (s->loaded)
        return 0;
    rc = ds_catalog_cursor_open(s->cat, "", &cur);
    while (rc == 0 && (rc = ds_catalog_cursor_next(cur, &r)) == 1)
        rc = r.has_sha && r.content_id > 0 ? add_row(s, &r, &cap) : 0;
    ds_catalog_cursor_free(cur);
    if (rc < 0)
        return rc;
    s->by_content = malloc((s->nrows + 1) * sizeof(*s->by_content));
    if (s->by_content == NULL)
        return DS_ENOMEM;
    for (size_t i = 0; i < s->nrows; i++)
        s->by_content[i] = &s->rows[i];
    qsort(s->by_content, s->nrows, sizeof(*s->by_content), cmp_content);
    s->loaded = 1;
    return 0;
}

const struct sfile_row *ds__sync_row_by_content(const ds_sync_t *s, int64_t id)
{
    struct sfile_row k = {.content_id = id}, *kp = &k;
    struct sfile_row *const *r;

    if (id <= 0 || s->by_content == NULL)
        return NULL;
    r = bsearch(&kp, s->by_content, s->nrows, sizeof(*s->by_content), cmp_content);
    return r ? *r : NULL;
}

/* ---- oracle ---- */

static int64_t o_content_id(void *ctx, const uint8_t sha[DS_SHA256_LEN])
{
    ds_sync_t *s = ctx;
    int64_t id = 0;

    return ds_catalog_content_find(s->cat, sha, &id) == 0 ? id : 0;
}

static int o_best(void *ctx, int64_t content_id, const int64_t *cand, size_t n, int64_t *best,
                  uint64_t *shared)
{
    ds_sync_t *s = ctx;

    return ds_catalog_best_basis(s->cat, content_id, cand, n, best, shared);
}

static int o_readable(void *ctx, const uint8_t sha[DS_SHA256_LEN])
{
    ds_sync_t *s = ctx;

    if (ds__sync_row_by_content(s, o_content_id(s, sha)) != NULL)
        return 1;
    return s->ret != NULL && ds_retain_has(s->ret, sha) == 1;
}

void ds__sync_oracle(ds_sync_t *s, ds_plan_oracle_t *o)
{
    o->content_id = o_content_id;
    o->best_basis = o_best;
    o->readable = o_readable;
    o->worth = ds_delta_worth;
    o->ctx = s;
}

/* ---- retain ---- */

static int retain_one(ds_sync_t *s, const ds_manifest_entry_t *e, const char *server)
{
    const struct sfile_row *row;
    ds_content_t c = {0};
    char path[8192];
    int64_t id = 0;
    int fd = -1, rc;

    rc = ds_retain_has(s->ret, e->sha256);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (ds_catalog_content_find(s->cat, e->sha256, &id) < 0 ||
        (row = ds__sync_row_by_content(s, id)) == NULL) {
        ds_log(DS_LOG_DEBUG, "server %s: %s: version not in the store, cannot retain it", server,
               e->path);
        return 0;
    }
    rc = ds_catalog_content_get(s->cat, id, &c);
    if (rc < 0)
        return rc;
    snprintf(path, sizeof(path), "%s/%s", s->o.cfg->store, row->path);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    rc = fd < 0 ? -errno : ds_retain_put(s->ret, fd, e->sha256, c.size, c.chunks, c.nchunks, 0);
    if (rc < 0)
        ds_log(DS_LOG_WARN, "server %s: retaining %s from %s: %s", server, e->path, path,
               ds_strerror(rc));
    if (fd >= 0)
        close(fd);
    ds_content_clear(&c);
    return 0;
}

void ds__sync_retain(ds_sync_t *s, const ds_manifest_t *man, const char *server)
{
    const ds_manifest_entry_t **v = NULL;
    size_t n = 0;

    if (s->ret == NULL || ds_manifest_sorted(man, &v, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (retain_one(s, v[i], server) < 0)
            break;
    free(v);
}

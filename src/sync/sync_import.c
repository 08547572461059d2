/*
 * Offline servers: a manifest carried back from the server becomes its
 * last-known manifest in the catalog (distsync import-manifest), and the
 * file status report is made from that manifest without reading the
 * target (distsync status --known).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "distsync/events.h"
#include "distsync/manifest.h"
#include "sync_int.h"

#define IMPORT_BLOCK (64u << 10)

/* Decodes the manifest file at path (untrusted) into *out. */
static int read_manifest(const char *path, ds_manifest_t **out, char *err, size_t errlen)
{
    ds_manifest_decoder_t *d = NULL;
    struct stat st;
    char *buf = NULL;
    ssize_t k;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY), rc;

    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: cannot read it: %s", path, strerror(errno));
        return rc;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        rc = DS_ENOTREG;
        goto out;
    }
    if ((rc = ds_manifest_decoder_new(DS_MANIFEST_MAX, 0, &d)) < 0 ||
        (buf = malloc(IMPORT_BLOCK)) == NULL) {
        rc = DS_ENOMEM;
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    while (rc == 0 && (k = read(fd, buf, IMPORT_BLOCK)) > 0)
        rc = ds_manifest_decoder_feed(d, buf, (size_t)k);
    if (rc == 0 && k < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: read failed: %s", path, strerror(errno));
        goto out;
    }
    if (rc == 0)
        rc = ds_manifest_decoder_finish(d, out);
    if (rc < 0)
        snprintf(err, errlen, "%s: not a valid distsync manifest: %s", path,
                 ds_manifest_decoder_error(d)[0] ? ds_manifest_decoder_error(d) : ds_strerror(rc));
out:
    ds_manifest_decoder_free(d);
    free(buf);
    close(fd);
    return rc;
}

struct diff {
    const ds_manifest_t *m;
    ds_sync_import_t *out;
    size_t kept; /* old paths still in m */
};

static int diff_old(void *ctx, const ds_server_file_t *f)
{
    struct diff *d = ctx;
    const ds_manifest_entry_t *e = ds_manifest_get(d->m, f->path);

    if (e == NULL) {
        d->out->deleted++;
        return 0;
    }
    d->kept++;
    if (e->size != f->size || memcmp(e->sha256, f->sha256, DS_SHA256_LEN) != 0)
        d->out->updated++;
    return 0;
}

/* The run recording the import: its start event names the file. */
static int record(ds_sync_t *s, const ds_server_cfg_t *srv, const char *file,
                  const ds_server_file_t *files, size_t n, int64_t now, ds_sync_import_t *out,
                  char *err, size_t errlen)
{
    ds_run_totals_t t = {.files_created = out->created,
                         .files_updated = out->updated,
                         .files_deleted = out->deleted};
    char msg[1200];
    ds_event_t ev = {.kind = DS_EV_WARNING, .level = DS_LOG_INFO, .at = now, .message = msg};
    int rc = ds_run_begin(s->cat, srv->name, srv->url, "manual", now, &out->run_id);

    snprintf(msg, sizeof(msg), "manifest imported from %s (%zu files): the server is offline", file,
             n);
    if (rc == 0)
        rc = ds_run_event(s->cat, out->run_id, &ev);
    if (rc == 0)
        rc = ds_catalog_server_manifest_put(s->cat, srv->name, files, n, now);
    if (out->run_id > 0) {
        int e = ds_run_end(s->cat, out->run_id, rc == 0 ? "ok" : "failed", rc == 0 ? &t : NULL,
                           rc == 0 ? NULL : ds_strerror(rc), now);

        rc = rc < 0 ? rc : e;
    }
    if (rc < 0)
        snprintf(err, errlen, "server %s: cannot record the manifest of %s in the catalog: %s",
                 srv->name, file, ds_strerror(rc));
    return rc;
}

int ds_sync_import_manifest(ds_sync_t *s, const ds_server_cfg_t *srv, const char *file, int64_t now,
                            ds_sync_import_t *out, char *err, size_t errlen)
{
    const ds_manifest_entry_t **e = NULL;
    ds_server_file_t *files = NULL;
    ds_manifest_t *m = NULL;
    struct diff d = {.out = out};
    size_t n = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = read_manifest(file, &m, err, errlen)) < 0)
        return rc;
    d.m = m;
    rc = ds_manifest_sorted(m, &e, &n);
    if (rc == 0 && (files = calloc(n + 1, sizeof(*files))) == NULL)
        rc = DS_ENOMEM;
    if (rc < 0) {
        snprintf(err, errlen, "%s: out of memory", file);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        files[i].path = e[i]->path;
        files[i].size = e[i]->size;
        memcpy(files[i].sha256, e[i]->sha256, DS_SHA256_LEN);
    }
    rc = ds_catalog_server_manifest_get(s->cat, srv->name, diff_old, &d);
    if (rc < 0) {
        snprintf(err, errlen, "server %s: cannot read its known manifest: %s", srv->name,
                 ds_strerror(rc));
        goto out;
    }
    out->files = n;
    out->created = n - d.kept;
    rc = record(s, srv, file, files, n, now, out, err, errlen);
out:
    free(files);
    free(e);
    ds_manifest_free(m);
    return rc;
}

/* ---- the status report from the last-known manifest ---- */

struct known {
    ds_manifest_t *m;
    int rc;
};

static int add_known(void *ctx, const ds_server_file_t *f)
{
    struct known *k = ctx;

    return (k->rc = ds_manifest_put(k->m, f->path, f->size, 0, f->sha256)) < 0;
}

/* Every entry of m as a file on the target that agrees with it. */
static int haves(const ds_manifest_t *m, ds_plan_have_t **have, size_t *n)
{
    const ds_manifest_entry_t **e = NULL;
    int rc = ds_manifest_sorted(m, &e, n);

    if (rc == 0 && (*have = calloc(*n + 1, sizeof(**have))) == NULL)
        rc = DS_ENOMEM;
    for (size_t i = 0; rc == 0 && i < *n; i++)
        (*have)[i] = (ds_plan_have_t){.path = e[i]->path, .is_file = 1, .size = e[i]->size};
    free(e);
    return rc;
}

static int has(const ds_strlist_t *l, const char *s)
{
    return l == NULL || ds_config_list_has(l, s);
}

/* The server's classes (within the run's) and the desired files of them. */
static int wants(ds_sync_t *s, const ds_server_cfg_t *srv, const char **cls, size_t *ncls,
                 ds_plan_want_t *w, size_t *nw)
{
    for (size_t i = 0; i < srv->classes.n; i++)
        if (has(s->o.only_classes, srv->classes.v[i]))
            cls[(*ncls)++] = srv->classes.v[i];
    for (size_t i = 0; i < s->nrows; i++) {
        const struct sfile_row *x = &s->rows[i];
        int in = 0;

        for (size_t c = 0; c < *ncls; c++)
            in |= strcmp(cls[c], x->klass) == 0;
        if (!in)
            continue;
        w[*nw] = (ds_plan_want_t){.path = x->path,
                                  .klass = x->klass,
                                  .size = x->size,
                                  .mtime_ns = x->mtime_ns,
                                  .content_id = x->content_id,
                                  .unreadable = x->content_id <= 0};
        memcpy(w[(*nw)++].sha256, x->sha256, DS_SHA256_LEN);
    }
    return 0;
}

int ds_sync_status_known(ds_sync_t *s, const ds_server_cfg_t *srv, ds_sync_result_t *res)
{
    struct known k = {0};
    ds_plan_have_t *have = NULL;
    ds_plan_want_t *w = NULL;
    const char **cls = NULL;
    ds_plan_input_t in = {0};
    size_t nw = 0, ncls = 0, nhave = 0;
    int rc;

    memset(res, 0, sizeof(*res));
    if ((rc = ds_catalog_server_manifest_known(s->cat, srv->name)) <= 0) {
        snprintf(res->error, sizeof(res->error),
                 rc == 0 ? "server %s: the catalog knows no manifest of it (sync it, or run "
                           "distsync import-manifest)"
                         : "server %s: cannot read its known manifest",
                 srv->name);
        return res->rc = rc == 0 ? DS_ENOTFOUND : rc;
    }
    if ((rc = ds__sync_load(s)) < 0 || (rc = ds_manifest_new(&k.m)) < 0)
        goto out;
    w = calloc(s->nrows + 1, sizeof(*w));
    cls = calloc(srv->classes.n + 1, sizeof(*cls));
    if (w == NULL || cls == NULL) {
        rc = DS_ENOMEM;
        goto out;
    }
    if ((rc = ds_catalog_server_manifest_get(s->cat, srv->name, add_known, &k)) != 0) {
        rc = rc < 0 ? rc : k.rc;
        goto out;
    }
    if ((rc = haves(k.m, &have, &nhave)) < 0)
        goto out;
    (void)wants(s, srv, cls, &ncls, w, &nw);
    in = (ds_plan_input_t){.want = w,
                           .nwant = nw,
                           .manifest = k.m,
                           .have = have,
                           .nhave = nhave,
                           .classes = cls,
                           .nclasses = ncls,
                           .prune = srv->prune,
                           .max_delete = srv->max_delete,
                           .max_delete_pct = srv->max_delete_pct};
    if ((rc = ds_catalog_scanned(s->cat, NULL)) >= 0) {
        in.scanned = rc;
        ds__sync_oracle(s, &in.oracle);
        rc = ds_plan_build(&in, &res->plan);
    }
out:
    if (rc < 0)
        snprintf(res->error, sizeof(res->error), "server %s: status from the known manifest: %s",
                 srv->name, ds_strerror(rc));
    free(w);
    free(cls);
    free(have);
    ds_manifest_free(k.m);
    return res->rc = rc < 0 ? rc : 0;
}

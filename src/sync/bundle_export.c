/*
 * `distsync export SERVER --out FILE`: the plan a live sync would make for
 * SERVER, against the state it is known to hold (a manifest file, the
 * catalog's last-known manifest, or nothing with --full), turned into a
 * bundle (include/distsync/bundle.h) that `distsync agent --import` applies
 * on the server. The same planner (ds_plan_build: basis choice, one transfer
 * per content, prune and its guards) and the same deltas (the per-pair delta
 * cache, in the format the newest receivers apply, sent whole when that is
 * smaller, as sync_send.c does). Writing the archive is bundle_write.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bundle_exp.h"
#include "distsync/events.h"
#include "distsync/log.h"

int ds__exp_fail(struct exp *x, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(x->err, x->errlen, fmt, ap);
    va_end(ap);
    return rc;
}

int ds__exp_open_store(struct exp *x, const char *rel, uint64_t size, int *fd, uint32_t *mode)
{
    char path[8192];
    struct stat st;

    *fd = -1;
    if (snprintf(path, sizeof(path), "%s/%s", x->s->o.cfg->store, rel) >= (int)sizeof(path))
        return ds__exp_fail(x, -ENAMETOOLONG, "store file %s: name too long", rel);
    *fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (*fd < 0)
        return ds__exp_fail(x, -errno, "store file %s: %s (run distsync scan)", path,
                            strerror(errno));
    if (fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != size) {
        close(*fd);
        *fd = -1;
        return ds__exp_fail(x, DS_ECHANGED,
                            "store file %s: changed since the last scan (run "
                            "distsync scan)",
                            path);
    }
    if (mode)
        *mode = (uint32_t)st.st_mode & 0777;
    return 0;
}

/* The state the bundle starts from, as a manifest and a listing. */
static int basis_state(struct exp *x, ds_plan_have_t **have, size_t *nhave)
{
    char why[512] = "";
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;

    *have = NULL;
    *nhave = 0;
    if (x->o->full)
        return ds_manifest_new(&x->basis);
    if (x->o->since_manifest == NULL) {
        rc = ds__sync_last_known(x->s, x->srv, &x->basis, have, nhave);
        if (rc == 0 && x->basis == NULL)
            rc = ds__exp_fail(x, DS_ENOTFOUND,
                              "server %s: the catalog knows no manifest for it (never synced from "
                              "this console): give --since-manifest FILE or --full",
                              x->srv->name);
        return rc;
    }
    rc = ds__exp_read_file(x, x->o->since_manifest, DS_BUNDLE_MANIFEST_MAX, &buf, &len);
    if (rc == 0 && (rc = ds_manifest_decode(buf, len, &x->basis, why, sizeof(why))) < 0)
        ds__exp_fail(x, rc, "%s: %s", x->o->since_manifest, why);
    free(buf);
    if (rc == 0)
        rc = ds__sync_have_of(x->basis, have, nhave);
    return rc;
}

/* The desired set of the server's classes, and the classes whose folder
 * left the store (prune holds back for them, as sync_run.c does). */
static int desired(struct exp *x, ds_plan_input_t *in)
{
    ds_sync_t *s = x->s;
    const ds_strlist_t *c = &x->srv->classes;
    ds_plan_want_t *want = calloc(s->nrows + 1, sizeof(*want));
    const char **absent = calloc(c->n + 1, sizeof(*absent));
    char path[8192];
    struct stat st;

    x->want = want;
    x->absent = absent;
    if (want == NULL || absent == NULL)
        return DS_ENOMEM;
    for (size_t i = 0; i < c->n; i++) {
        snprintf(path, sizeof(path), "%s/%s", s->o.cfg->store, c->v[i]);
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
            absent[in->nabsent++] = c->v[i];
    }
    for (size_t i = 0; i < s->nrows; i++) {
        const struct sfile_row *r = &s->rows[i];
        ds_plan_want_t *w;

        if (!ds_config_list_has(c, r->klass))
            continue;
        w = &want[in->nwant++];
        *w = (ds_plan_want_t){.path = r->path,
                              .klass = r->klass,
                              .size = r->size,
                              .mtime_ns = r->mtime_ns,
                              .content_id = r->content_id,
                              .unreadable = r->content_id <= 0};
        memcpy(w->sha256, r->sha256, DS_SHA256_LEN);
    }
    in->want = want;
    in->absent_classes = absent;
    return 0;
}

static int plan(struct exp *x)
{
    ds_plan_input_t in = {0};
    ds_plan_have_t *have = NULL;
    size_t nhave = 0;
    int rc = ds__sync_load(x->s), scanned = 0;

    if (rc == 0 && (rc = ds_catalog_scanned(x->s->cat, NULL)) >= 0) {
        scanned = rc;
        rc = 0;
    }
    if (rc == 0)
        rc = basis_state(x, &have, &nhave);
    if (rc == 0)
        rc = desired(x, &in);
    in.manifest = x->basis;
    in.have = have;
    in.nhave = nhave;
    in.classes = (const char *const *)x->srv->classes.v;
    in.nclasses = x->srv->classes.n;
    in.prune = x->srv->prune;
    in.scanned = scanned;
    in.max_delete = x->srv->max_delete;
    in.max_delete_pct = x->srv->max_delete_pct;
    in.force = x->s->o.force;
    ds__sync_oracle(x->s, &in.oracle);
    if (rc == 0)
        rc = ds_plan_build(&in, &x->plan);
    if (rc < 0 && x->err[0] == '\0')
        ds__exp_fail(x, rc, "server %s: planning: %s", x->srv->name, ds_strerror(rc));
    free(have);
    return rc;
}

/* Hashes the n bytes of fd from its start. */
static int hash_fd(int fd, uint64_t n, uint8_t out[DS_SHA256_LEN])
{
    ds_delta_src_t src;

    ds_delta_src_fd(&src, fd, n);
    return ds_delta_src_sha256(&src, out);
}

int ds__exp_delta(struct exp *x, const ds_plan_item_t *it, int *dfd, uint64_t *dsize)
{
    int tfd = -1, rc = ds__exp_open_store(x, it->path, it->size, &tfd, NULL);

    *dfd = -1;
    if (rc == 0)
        rc = ds__sync_delta_get(x->s, DS_BUNDLE_DELTA_FMT, it, tfd, dfd, dsize);
    if (tfd >= 0)
        close(tfd);
    return rc;
}

/* A create or update as an item: lit, delta (when smaller) or copy. */
static int put_item(struct exp *x, const ds_plan_item_t *it, ds_bundle_item_t *b)
{
    uint64_t dsize = 0;
    int fd = -1, dfd = -1, rc;

    *b = (ds_bundle_item_t){.op = DS_BUNDLE_PUT, .size = it->size, .mtime_ns = it->mtime_ns};
    memcpy(b->sha256, it->sha256, DS_SHA256_LEN);
    if ((b->path = strdup(it->path)) == NULL)
        return DS_ENOMEM;
    if ((rc = ds__exp_open_store(x, it->path, it->size, &fd, &b->mode)) < 0)
        return rc;
    close(fd);
    if (it->method == DS_PLAN_COPY || it->method == DS_PLAN_ADOPT) {
        b->how = DS_BUNDLE_COPY;
        memcpy(b->basis_sha256, it->sha256, DS_SHA256_LEN);
        return (b->basis = strdup(it->basis)) ? 0 : DS_ENOMEM;
    }
    b->how = DS_BUNDLE_LIT;
    b->data_len = it->size;
    memcpy(b->data_sha256, it->sha256, DS_SHA256_LEN);
    if (it->method != DS_PLAN_DELTA)
        return 0; /* whole, or rsync: no signature to ask an offline server for */
    rc = ds__exp_delta(x, it, &dfd, &dsize);
    if (rc < 0)
        ds_log(DS_LOG_WARN, "%s: no delta from %s (%s): exporting it whole", it->path, it->basis,
               ds_strerror(rc));
    x->err[0] = '\0';
    if (rc == 0 && dsize < it->size && (rc = hash_fd(dfd, dsize, b->data_sha256)) == 0) {
        b->how = DS_BUNDLE_DELTA;
        b->data_len = dsize;
        memcpy(b->basis_sha256, it->basis_sha256, DS_SHA256_LEN);
        b->basis = strdup(it->basis);
        rc = b->basis ? 0 : DS_ENOMEM;
    } else if (rc != DS_ENOMEM) {
        memcpy(b->data_sha256, it->sha256, DS_SHA256_LEN);
        rc = 0;
    }
    if (dfd >= 0)
        close(dfd);
    return rc;
}

/* The plan's items as bundle items, and the manifest they lead to. */
static int build(struct exp *x, ds_bundle_export_stats_t *st)
{
    int rc = ds_manifest_new(&x->result);

    x->items = calloc(x->plan->n + 1, sizeof(*x->items));
    if (x->items == NULL)
        rc = DS_ENOMEM;
    for (size_t i = 0; rc == 0 && i < x->basis_n; i++)
        rc = ds_manifest_put(x->result, x->basis_e[i]->path, x->basis_e[i]->size,
                             x->basis_e[i]->mtime_ns, x->basis_e[i]->sha256);
    for (size_t i = 0; rc == 0 && i < x->plan->n; i++) {
        const ds_plan_item_t *it = &x->plan->items[i];
        ds_bundle_item_t *b = &x->items[x->n];

        st->keep += it->action == DS_PLAN_KEEP;
        if (it->action == DS_PLAN_DELETE) {
            *b = (ds_bundle_item_t){.op = DS_BUNDLE_DEL, .path = strdup(it->path)};
            x->n++;
            rc = b->path ? ds_manifest_remove(x->result, it->path) : DS_ENOMEM;
            rc = rc == DS_ENOTFOUND ? 0 : rc;
            st->del++;
            continue;
        }
        if (it->action != DS_PLAN_CREATE && it->action != DS_PLAN_UPDATE)
            continue;
        rc = put_item(x, it, b);
        x->n++;
        if (rc == 0)
            rc = ds_manifest_put(x->result, b->path, b->size, b->mtime_ns, b->sha256);
        st->lit += b->how == DS_BUNDLE_LIT;
        st->delta += b->how == DS_BUNDLE_DELTA;
        st->copy += b->how == DS_BUNDLE_COPY;
        st->new_bytes += b->size;
        st->data_bytes += b->data_len;
    }
    st->held = x->plan->guard != DS_PLAN_GUARD_NONE;
    if (rc < 0 && x->err[0] == '\0')
        ds__exp_fail(x, rc, "server %s: %s", x->srv->name, ds_strerror(rc));
    return rc;
}

int ds_sync_export(ds_sync_t *s, const ds_bundle_export_opts_t *o, ds_bundle_export_stats_t *st,
                   char *err, size_t errlen)
{
    struct exp x = {.s = s, .o = o, .err = err, .errlen = errlen};
    int rc = 0;

    memset(st, 0, sizeof(*st));
    err[0] = '\0';
    x.srv = ds_config_server(s->o.cfg, o->server);
    if (x.srv == NULL)
        return ds__exp_fail(&x, DS_EUSAGE, "no server named %s in the configuration", o->server);
    rc = plan(&x);
    if (rc == 0)
        rc = ds_manifest_sorted(x.basis, &x.basis_e, &x.basis_n);
    if (rc == 0)
        rc = build(&x, st);
    if (rc == 0)
        rc = ds__exp_write(&x, st);
    ds_bundle_items_free(x.items, x.n);
    free(x.basis_e);
    ds_manifest_free(x.basis);
    ds_manifest_free(x.result);
    ds_plan_free(x.plan);
    free(x.want);
    free(x.absent);
    return rc;
}

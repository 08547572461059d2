/*
 * The import's two steps after the session is up (see bundle_import.c):
 * the state check, which changes nothing, and the items, sent to the
 * receiver as a console sends a plan: FILE_BEGIN, the data as LITERAL or
 * DELTA frames (or a COPY of the basis), FILE_COMMIT, each file's FILE_OK
 * awaited; ADOPT for a done file the manifest lacks; DELETE;
 * MANIFEST_COMMIT.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bundle_int.h"

/* What a path holds, by its HASH (ok 0: no regular file to read). */
struct state {
    const char *path;
    int ok;
    uint8_t sha256[DS_SHA256_LEN];
};

static int cmp_state(const void *a, const void *b)
{
    return strcmp(((const struct state *)a)->path, ((const struct state *)b)->path);
}

static struct state *find(struct state *v, size_t n, const char *path)
{
    struct state key = {.path = path};

    return bsearch(&key, v, n, sizeof(*v), cmp_state);
}

/* HASH of every path the bundle writes or reads, sorted by path. */
static int hash_paths(struct imp *im, struct state **out, size_t *nout)
{
    struct state *v = calloc(2 * im->n + 1, sizeof(*v));
    size_t n = 0, k = 0;
    int rc = 0;

    if (v == NULL)
        return DS_ENOMEM;
    for (size_t i = 0; i < im->n; i++) {
        if (im->items[i].op != DS_BUNDLE_PUT)
            continue;
        v[n++].path = im->items[i].path;
        if (im->items[i].basis)
            v[n++].path = im->items[i].basis;
    }
    qsort(v, n, sizeof(*v), cmp_state);
    for (size_t i = 0; i < n; i++)
        if (k == 0 || strcmp(v[k - 1].path, v[i].path) != 0)
            v[k++] = v[i];
    for (size_t i = 0; i < k && rc == 0; i++) {
        ds_msg_t m = {.type = DS_MSG_HASH};
        struct reply rp;

        m.u.path.path = ds_pstr(v[i].path);
        rc = ds__bundle_send(im, &m);
        if (rc == 0)
            rc = ds__bundle_await(im, m.id, &rp);
        if (rc == 0 && rp.type == DS_MSG_HASH_OK) {
            v[i].ok = 1;
            memcpy(v[i].sha256, rp.sha256, DS_SHA256_LEN);
        }
    }
    *out = v;
    *nout = k;
    return rc;
}

static void short_hex(const uint8_t *sha, char *out)
{
    ds_hex(sha, 6, out); /* 12 hex digits name a content well enough */
}

/*
 * Plays the puts against the hashes: done[i] when the file already holds
 * its new content; a basis that does not hold the content the bundle needs
 * refuses the bundle.
 */
static int play(struct imp *im, struct state *v, size_t n, uint8_t *done)
{
    char want[16], got[16];

    for (size_t i = 0; i < im->n; i++) {
        const ds_bundle_item_t *it = &im->items[i];
        struct state *d, *b;

        if (it->op != DS_BUNDLE_PUT)
            continue;
        d = find(v, n, it->path);
        if (d->ok && memcmp(d->sha256, it->sha256, DS_SHA256_LEN) == 0) {
            done[i] = 1;
            continue;
        }
        if (it->basis && !((b = find(v, n, it->basis))->ok &&
                           memcmp(b->sha256, it->basis_sha256, DS_SHA256_LEN) == 0)) {
            short_hex(it->basis_sha256, want);
            if (b->ok)
                short_hex(b->sha256, got);
            return ds__bundle_fail(
                im, DS_EHASH,
                "made for another state of the server: %s/%s holds %s%s, the bundle needs content "
                "%s (for %s); nothing was changed",
                im->o->root, it->basis, b->ok ? "content " : "no regular file", b->ok ? got : "",
                want, it->path);
        }
        d->ok = 1;
        memcpy(d->sha256, it->sha256, DS_SHA256_LEN);
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The server's manifest holds the files the bundle keeps as it expects them,
 * and no file the bundle does not know. */
static int check_kept(struct imp *im, const ds_manifest_t *cur, const ds_manifest_t *want)
{
    const ds_manifest_entry_t **e = NULL;
    const char **listed = calloc(im->n + 1, sizeof(*listed));
    size_t n = 0;
    int rc = listed ? ds_manifest_sorted(want, &e, &n) : DS_ENOMEM;

    for (size_t j = 0; rc == 0 && j < im->n; j++)
        listed[j] = im->items[j].path;
    if (rc == 0)
        qsort(listed, im->n, sizeof(*listed), cmp_str);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const ds_manifest_entry_t *x = ds_manifest_get(cur, e[i]->path);

        if (bsearch(&e[i]->path, listed, im->n, sizeof(*listed), cmp_str) != NULL ||
            (x && x->size == e[i]->size && memcmp(x->sha256, e[i]->sha256, DS_SHA256_LEN) == 0))
            continue;
        rc = ds__bundle_fail(im, DS_EHASH,
                             "made for another state of the server: %s/%s is %s in its manifest, "
                             "the bundle expects it unchanged; nothing was changed",
                             im->o->root, e[i]->path, x ? "another content" : "not");
    }
    free(e);
    e = NULL;
    /* and nothing else: a file the bundle neither keeps nor deletes */
    if (rc == 0)
        rc = ds_manifest_sorted(cur, &e, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (ds_manifest_get(want, e[i]->path) != NULL ||
            bsearch(&e[i]->path, listed, im->n, sizeof(*listed), cmp_str) != NULL)
            continue;
        rc = ds__bundle_fail(im, DS_EHASH,
                             "made for another state of the server: its manifest names %s/%s, "
                             "which the bundle does not know; nothing was changed",
                             im->o->root, e[i]->path);
    }
    free(e);
    free(listed);
    return rc;
}

/* Streams item i's data entry as LITERAL or DELTA frames. */
static int send_data(struct imp *im, size_t i, uint32_t fid)
{
    const ds_bundle_item_t *it = &im->items[i];
    int rc = ds_bundle_reader_data(im->r, i, im->err, im->errlen), end = 0;

    while (rc == 0 && !end) {
        size_t len = 0;
        ds_msg_t m = {.type = it->how == DS_BUNDLE_LIT ? DS_MSG_LITERAL : DS_MSG_DELTA};

        while (len < IMP_FRAME) {
            long k =
                ds_bundle_reader_read(im->r, im->buf + len, IMP_FRAME - len, im->err, im->errlen);
            if (k < 0)
                return (int)k;
            if (k == 0) {
                end = 1;
                break;
            }
            len += (size_t)k;
        }
        if (len == 0)
            break;
        m.u.data.file_id = fid;
        if (it->how == DS_BUNDLE_DELTA)
            m.u.data.basis = ds_pstr(it->basis);
        m.u.data.comp = DS_PROTO_COMP_NONE;
        m.u.data.raw_len = (uint32_t)len;
        m.u.data.data = im->buf;
        m.u.data.data_len = (uint32_t)len;
        rc = ds__bundle_send(im, &m);
    }
    if (rc == 0 && it->how == DS_BUNDLE_DELTA) {
        ds_msg_t m = {.type = DS_MSG_DELTA_END};

        m.u.file.file_id = fid;
        rc = ds__bundle_send(im, &m);
    }
    return rc;
}

/* Builds, verifies and publishes item i through the receiver. */
static int put(struct imp *im, size_t i)
{
    const ds_bundle_item_t *it = &im->items[i];
    ds_msg_t m = {.type = DS_MSG_FILE_BEGIN};
    struct reply rp;
    int rc;

    m.u.begin.file_id = 1;
    m.u.begin.path = ds_pstr(it->path);
    m.u.begin.size = it->size;
    m.u.begin.mode = it->mode;
    m.u.begin.mtime_ns = it->mtime_ns;
    rc = ds__bundle_send(im, &m);
    if (rc == 0 && it->how == DS_BUNDLE_COPY && it->size > 0) {
        m = (ds_msg_t){.type = DS_MSG_COPY};
        m.u.copy.file_id = 1;
        m.u.copy.basis = ds_pstr(it->basis);
        m.u.copy.length = it->size;
        rc = ds__bundle_send(im, &m);
    }
    if (rc == 0 && it->how != DS_BUNDLE_COPY)
        rc = send_data(im, i, 1);
    if (rc < 0)
        return rc;
    m = (ds_msg_t){.type = DS_MSG_FILE_COMMIT};
    m.u.commit.file_id = 1;
    m.u.commit.size = it->size;
    memcpy(m.u.commit.sha256, it->sha256, DS_SHA256_LEN);
    rc = ds__bundle_call(im, &m, DS_MSG_FILE_OK, &rp);
    if (rc < 0 && im->err[0] == '\0')
        rc = ds__bundle_fail(im, rc, "%s/%s: %s", im->o->root, it->path,
                             rp.msg[0] ? rp.msg : ds_strerror(rc));
    return rc;
}

/* Records a file that already holds its content, unless the manifest does. */
static int adopt(struct imp *im, const ds_manifest_t *cur, const ds_bundle_item_t *it, int *did)
{
    const ds_manifest_entry_t *e = ds_manifest_get(cur, it->path);
    ds_msg_t m = {.type = DS_MSG_ADOPT};
    struct reply rp;
    int rc;

    *did = 0;
    if (e && e->size == it->size && memcmp(e->sha256, it->sha256, DS_SHA256_LEN) == 0)
        return 0;
    m.u.adopt.path = ds_pstr(it->path);
    m.u.adopt.size = it->size;
    m.u.adopt.mtime_ns = it->mtime_ns;
    memcpy(m.u.adopt.sha256, it->sha256, DS_SHA256_LEN);
    rc = ds__bundle_call(im, &m, DS_MSG_FILE_OK, &rp);
    if (rc < 0 && im->err[0] == '\0')
        rc = ds__bundle_fail(im, rc, "%s/%s: %s", im->o->root, it->path,
                             rp.msg[0] ? rp.msg : ds_strerror(rc));
    *did = rc == 0;
    return rc;
}

static int del(struct imp *im, const ds_bundle_item_t *it, uint64_t *deleted)
{
    ds_msg_t m = {.type = DS_MSG_DELETE};
    struct reply rp;
    int rc;

    m.u.path.path = ds_pstr(it->path);
    rc = ds__bundle_call(im, &m, DS_MSG_OK, &rp);
    if (rc < 0 && im->err[0] == '\0')
        rc = ds__bundle_fail(im, rc, "%s/%s: cannot delete: %s", im->o->root, it->path,
                             rp.msg[0] ? rp.msg : ds_strerror(rc));
    *deleted += rc == 0 && rp.value == 1;
    return rc;
}

static void pause_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The items, in index order (puts first, as export writes them). */
static int items(struct imp *im, const ds_manifest_t *cur, const uint8_t *done,
                 ds_bundle_import_stats_t *st)
{
    int rc = 0, did;

    for (size_t i = 0; i < im->n && rc == 0; i++) {
        const ds_bundle_item_t *it = &im->items[i];

        if ((rc = ds__bundle_keep_lease(im)) < 0)
            break;
        if (it->op == DS_BUNDLE_DEL) {
            rc = del(im, it, &st->deleted);
        } else if (done[i]) {
            st->already++;
            rc = adopt(im, cur, it, &did);
            st->adopted += (uint64_t)did;
        } else {
            rc = put(im, i);
            st->written += rc == 0;
            st->data += rc == 0 ? it->data_len : 0;
            pause_ms(im->o->pause_ms);
        }
    }
    return rc;
}

/* After MANIFEST_COMMIT: the manifest on disk is the bundle's. */
static int check_result(struct imp *im, const ds_manifest_t *want)
{
    ds_msg_t m = {.type = DS_MSG_MANIFEST_COMMIT};
    ds_manifest_t *now = NULL;
    const char *diff = NULL;
    struct reply rp;
    int rc = ds__bundle_call(im, &m, DS_MSG_OK, &rp);

    if (rc < 0 && im->err[0] == '\0')
        return ds__bundle_fail(im, rc, "%s: writing the manifest: %s", im->o->root,
                               rp.msg[0] ? rp.msg : ds_strerror(rc));
    if (rc == 0)
        rc = ds__bundle_load_manifest(im, &now);
    if (rc == 0)
        rc = ds__bundle_same_files(want, now, im->h->has_basis, &diff);
    if (rc == 0 && diff != NULL)
        rc = ds__bundle_fail(im, DS_ECORRUPT,
                             "%s: after the import the manifest differs from the bundle's at %s",
                             im->o->root, diff);
    ds_manifest_free(now);
    return rc;
}

int ds__bundle_apply(struct imp *im, const ds_manifest_t *cur, const ds_manifest_t *want,
                     ds_bundle_import_stats_t *st)
{
    struct state *v = NULL;
    uint8_t *done = calloc(im->n + 1, 1);
    const char *diff = NULL;
    size_t n = 0;
    int rc = done ? ds__bundle_same_files(want, cur, im->h->has_basis, &diff) : DS_ENOMEM;

    if (rc == 0 && diff == NULL) {
        st->noop = 1; /* applied before: the manifest is the bundle's */
        goto out;
    }
    if (rc == 0 && (im->buf = malloc(IMP_FRAME)) == NULL)
        rc = DS_ENOMEM;
    if (rc == 0 && im->h->has_basis)
        rc = check_kept(im, cur, want);
    if (rc == 0)
        rc = hash_paths(im, &v, &n);
    if (rc == 0)
        rc = play(im, v, n, done);
    if (rc == 0)
        rc = ds_bundle_reader_rewind(im->r, im->err, im->errlen);
    if (rc == 0)
        rc = items(im, cur, done, st);
    if (rc == 0)
        rc = check_result(im, want);
out:
    if (rc == DS_ENOMEM && im->err[0] == '\0')
        ds__bundle_fail(im, rc, "out of memory");
    free(v);
    free(done);
    return rc;
}

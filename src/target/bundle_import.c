/*
 * `distsync agent --root DIR --import FILE`: a bundle applied by the
 * receiver itself (src/target/apply*.c), driven in process with the frames a
 * console would send, so an import has a live sync's guarantees: the lease,
 * safe paths, each file built under .distsync/tmp, its size and SHA-256
 * verified, fsynced and renamed into place, the manifest written
 * atomically.
 *
 * Order: the whole bundle is checked first (bundle_read.c); then, under the
 * lease, every file the bundle writes or uses as a basis is hashed (HASH)
 * and the bundle's items are played against those hashes: a file that
 * already holds its new content is done (an interrupted import resumes; a
 * second import is a no-op), and any basis that does not hold the content
 * the bundle was made against refuses the whole bundle before a file
 * changes. Files the bundle keeps must be in the server's manifest as the
 * bundle expects them. Then the files are written in index order (a delta
 * may use a file written earlier in the same bundle as its basis, as a live
 * sync's plan does), done files missing from the manifest are adopted,
 * deletions follow, and the manifest written is compared with the bundle's.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "distsync/apply.h"
#include "distsync/bundle.h"
#include "distsync/manifest.h"
#include "distsync/pathsafe.h"
#include "distsync/proto.h"
#include "bundle_int.h"

int ds__bundle_fail(struct imp *im, int rc, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(im->err, im->errlen, "bundle %s: %s", im->o->bundle, msg);
    return rc;
}

/* Moves the receiver's queued replies into im->rep. */
static int drain(struct imp *im)
{
    const uint8_t *p;
    size_t len;

    ds_apply_output(im->ap, &p, &len);
    if (len > 0 && ds_proto_buf_append(&im->rep, p, len) < 0)
        return DS_ENOMEM;
    ds_apply_output_consume(im->ap, len);
    return 0;
}

/* Encodes m with the next id and feeds it to the receiver. */
int ds__bundle_send(struct imp *im, ds_msg_t *m)
{
    size_t off = 0;
    int rc;

    m->id = ++im->id;
    im->req.len = 0;
    if ((rc = ds_proto_encode(&im->req, m)) < 0)
        return ds__bundle_fail(im, rc, "encoding %s: %s", ds_proto_type_name(m->type),
                               ds_strerror(rc));
    while (off < im->req.len) {
        long k = ds_apply_feed(im->ap, im->req.p + off, im->req.len - off);

        if ((rc = drain(im)) < 0)
            return rc;
        if (k < 0)
            return ds__bundle_fail(im, (int)k, "the receiver ended the session: %s",
                                   ds_strerror((int)k));
        off += (size_t)k;
    }
    while (!ds_apply_want_input(im->ap)) {
        long k = ds_apply_feed(im->ap, NULL, 0);

        if ((rc = drain(im)) < 0)
            return rc;
        if (k < 0)
            return ds__bundle_fail(im, (int)k, "the receiver ended the session: %s",
                                   ds_strerror((int)k));
    }
    return 0;
}

static void copy_str(char *out, size_t len, ds_pstr_t s)
{
    snprintf(out, len, "%.*s", (int)s.n, s.p);
}

/* Reads replies up to the final one of request id into *rp; an early
 * FILE_ERR before it is kept in *rp unless the final one is an error too. */
int ds__bundle_await(struct imp *im, uint32_t id, struct reply *rp)
{
    size_t off = 0;
    int rc = DS_EPROTO, early = 0;

    memset(rp, 0, sizeof(*rp));
    for (;;) {
        long flen = ds_proto_frame_len(im->rep.p + off, im->rep.len - off);
        ds_msg_t m;

        if (flen <= 0 || ds_proto_decode(im->rep.p + off, (size_t)flen, &m) < 0)
            break;
        off += (size_t)flen;
        if ((m.type == DS_MSG_FILE_ERR || m.type == DS_MSG_ERR) && (m.id == id || !early)) {
            early = m.id != id;
            rp->type = m.type;
            rp->code = m.u.err.code;
            copy_str(rp->path, sizeof(rp->path), m.u.err.path);
            copy_str(rp->msg, sizeof(rp->msg), m.u.err.message);
        }
        if (m.id != id)
            continue;
        rc = 0;
        if (m.type == DS_MSG_FILE_ERR || m.type == DS_MSG_ERR)
            break;
        if (early) {
            rp->type = DS_MSG_FILE_ERR;
            break;
        }
        rp->type = m.type;
        if (m.type == DS_MSG_HASH_OK) {
            rp->size = m.u.hash_ok.size;
            memcpy(rp->sha256, m.u.hash_ok.sha256, DS_SHA256_LEN);
        } else if (m.type == DS_MSG_OK) {
            rp->value = m.u.ok.value;
        } else if (m.type == DS_MSG_BUSY) {
            copy_str(rp->msg, sizeof(rp->msg), m.u.busy.message);
        }
        break;
    }
    ds_proto_buf_consume(&im->rep, off);
    if (rc < 0)
        return ds__bundle_fail(im, rc, "the receiver sent no reply to request %" PRIu32, id);
    return 0;
}

/* Sends m and waits for a final reply of type want. */
int ds__bundle_call(struct imp *im, ds_msg_t *m, uint8_t want, struct reply *rp)
{
    int rc = ds__bundle_send(im, m);

    if (rc == 0)
        rc = ds__bundle_await(im, m->id, rp);
    if (rc == 0 && rp->type != want)
        rc = rp->code < 0 ? rp->code : DS_EPROTO;
    return rc;
}

static int lease(struct imp *im, uint8_t op)
{
    ds_msg_t m = {.type = DS_MSG_LEASE};
    struct reply rp;
    int rc;

    m.u.lease.op = op;
    m.u.lease.console_id = ds_pstr(im->h->console);
    m.u.lease.pid = (uint32_t)getpid();
    m.u.lease.host = ds_pstr(im->host);
    m.u.lease.ttl_s = IMP_TTL;
    rc = ds__bundle_call(im, &m, op == DS_LEASE_OP_RELEASE ? DS_MSG_OK : DS_MSG_LEASE_OK, &rp);
    if (rc < 0 && rp.type == DS_MSG_BUSY)
        return ds__bundle_fail(im, DS_ELEASE, "%s: %s", im->o->root, rp.msg);
    if (rc < 0 && im->err[0] == '\0')
        return ds__bundle_fail(im, rc, "%s: the lease: %s", im->o->root,
                               rp.msg[0] ? rp.msg : ds_strerror(rc));
    if (rc == 0) /* renewed: when it was last renewed; 0: not held */
        im->renewed = op == DS_LEASE_OP_RELEASE ? 0 : (int64_t)time(NULL);
    return rc;
}

/* Renews the lease every third of its length. */
int ds__bundle_keep_lease(struct imp *im)
{
    if ((int64_t)time(NULL) - im->renewed < IMP_TTL / 3)
        return 0;
    return lease(im, DS_LEASE_OP_RENEW);
}

static int hello(struct imp *im)
{
    ds_msg_t m = {.type = DS_MSG_HELLO};
    struct reply rp;
    int rc;

    m.u.hello.magic = DS_PROTO_MAGIC;
    m.u.hello.min_version = DS_PROTO_VERSION_BSDIFF; /* the format export writes */
    m.u.hello.max_version = DS_PROTO_VERSION_MAX;
    m.u.hello.console_id = ds_pstr(im->h->console);
    m.u.hello.software = ds_pstr("distsync bundle import");
    rc = ds__bundle_call(im, &m, DS_MSG_HELLO_OK, &rp);
    if (rc < 0 && im->err[0] == '\0')
        return ds__bundle_fail(im, rc, "%s: %s", im->o->root, rp.msg[0] ? rp.msg : ds_strerror(rc));
    return rc < 0 ? rc : lease(im, DS_LEASE_OP_ACQUIRE);
}

/* The manifest the server holds now (after the lease: nobody else writes). */
int ds__bundle_load_manifest(struct imp *im, ds_manifest_t **m)
{
    char why[512] = "";
    int fd = open(im->o->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ds = -1, rc;

    if (fd >= 0)
        ds = openat(fd, DS_STATE_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (ds < 0) {
        rc = -errno;
        if (fd >= 0)
            close(fd);
        return ds__bundle_fail(im, rc, "%s/%s: %s", im->o->root, DS_STATE_DIR, strerror(-rc));
    }
    rc = ds_manifest_load(ds, m, why, sizeof(why));
    close(ds);
    close(fd);
    return rc < 0 ? ds__bundle_fail(im, rc, "%s", why) : 0;
}

/* Path, size and SHA-256 of every entry agree (mtimes aside). Sets *diff
 * to a path that differs, or NULL. */
int ds__bundle_same_files(const ds_manifest_t *a, const ds_manifest_t *b, int exact,
                          const char **diff)
{
    const ds_manifest_entry_t **e = NULL;
    size_t n = 0;
    int rc = ds_manifest_sorted(a, &e, &n);

    *diff = NULL;
    for (size_t i = 0; rc == 0 && i < n && *diff == NULL; i++) {
        const ds_manifest_entry_t *x = ds_manifest_get(b, e[i]->path);

        if (x == NULL || x->size != e[i]->size || memcmp(x->sha256, e[i]->sha256, DS_SHA256_LEN))
            *diff = e[i]->path;
    }
    free(e);
    if (rc == 0 && exact && *diff == NULL && ds_manifest_count(a) != ds_manifest_count(b))
        *diff = "(a file the bundle does not expect)";
    return rc;
}

int ds_bundle_import(const ds_bundle_import_opts_t *o, ds_bundle_import_stats_t *st, char *err,
                     size_t errlen)
{
    struct imp im = {.o = o, .err = err, .errlen = errlen};
    ds_apply_opts_t ao = {.no_fsync = o->no_fsync, .peer_reports = 1};
    ds_manifest_t *cur = NULL, *want = NULL;
    const uint8_t *mbytes;
    size_t mlen;
    char why[512];
    int rc;

    memset(st, 0, sizeof(*st));
    err[0] = '\0';
    snprintf(im.host, sizeof(im.host), "%s", o->host ? o->host : "offline");
    rc = ds_bundle_reader_open(o->bundle, NULL, 0, NULL, &im.r, err, errlen);
    if (rc < 0)
        return rc;
    im.h = ds_bundle_reader_hdr(im.r);
    im.items = ds_bundle_reader_items(im.r, &im.n);
    mbytes = ds_bundle_reader_manifest(im.r, &mlen);
    rc = ds_manifest_decode(mbytes, mlen, &want, why, sizeof(why));
    if (rc == 0 && (rc = ds_apply_new(o->root, &ao, &im.ap, why, sizeof(why))) < 0)
        ds__bundle_fail(&im, rc, "%s", why);
    if (rc == 0)
        rc = hello(&im);
    if (rc == 0)
        rc = ds__bundle_load_manifest(&im, &cur);
    if (rc == 0)
        rc = ds__bundle_apply(&im, cur, want, st);
    if (im.renewed != 0) { /* the lease was taken: give it back, also after a failure */
        char keep[1024];
        int lrc;

        snprintf(keep, sizeof(keep), "%s", err);
        lrc = lease(&im, DS_LEASE_OP_RELEASE);
        if (rc < 0)
            snprintf(err, errlen, "%s", keep); /* the first error is the one to report */
        rc = rc < 0 ? rc : lrc;
    }
    if (rc == 0) {
        ds_msg_t m = {.type = DS_MSG_BYE};
        struct reply rp;

        rc = ds__bundle_call(&im, &m, DS_MSG_OK, &rp);
        if (rc < 0 && err[0] == '\0')
            ds__bundle_fail(&im, rc, "%s: ending the session: %s", o->root, rp.msg);
    }
    ds_apply_free(im.ap); /* writes the manifest of what was done, drops the lease */
    ds_manifest_free(cur);
    ds_manifest_free(want);
    ds_bundle_reader_free(im.r);
    ds_proto_buf_free(&im.req);
    ds_proto_buf_free(&im.rep);
    free(im.buf);
    return rc;
}

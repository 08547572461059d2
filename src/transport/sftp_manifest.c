/*
 * SFTP mode, the manifest on the server (.distsync/manifest, the agent's
 * format): its write (MANIFEST_COMMIT, BYE, a checkpoint, the lease's
 * release) and MANIFEST_GET, stepped non-blocking on the main SFTP channel
 * as the other requests are. A write goes to .distsync/tmp/manifest-
 * <session>.tmp (exclusive create, fsync), then replaces the old one:
 * through the mv loop (sftp_pump.c) on a shell account, else unlink +
 * rename; a failed write removes its tmp file.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "distsync/apply.h"
#include "distsync/error.h"
#include "distsync/log.h"
#include "distsync/pathsafe.h"

#include "sftp_int.h"

#define MANIFEST_READ (1u << 20)
/* The console's caps on a target's manifest (session.h), held here too:
 * the receiver decodes the manifest it takes the lease with. */
#define MANIFEST_MAX     (256ull << 20)
#define MANIFEST_ENTRIES (2ull << 20)

/* The write's phases. */
enum {
    MS_IDLE,
    MS_LEASE,
    MS_OPEN,
    MS_WRITE,
    MS_FSYNC,
    MS_CLOSE,
    MS_LSTAT,
    MS_UNLINK,
    MS_RENAME,
    MS_MV,
    MS_CLEAN_CLOSE,
    MS_CLEAN_UNLINK
};

static const char *manifest_path(struct ds__sftp_recv *r)
{
    return ds__sftp_abs(&r->fs, 0, DS_STATE_DIR "/manifest");
}

static int again(struct ds__sftp_recv *r)
{
    return libssh2_session_last_errno(r->fs.c.s) == LIBSSH2_ERROR_EAGAIN;
}

/* The write ends: 0, or its failure once the tmp file is removed. */
static int end(struct ds__sftp_recv *r, int rc)
{
    struct sftp_mst *w = &r->mst;

    if (rc == 0)
        r->man_dirty = 0;
    r->man_written_at = (int64_t)time(NULL);
    free(w->buf);
    w->buf = NULL;
    w->phase = MS_IDLE;
    return rc;
}

/* A failure rc (fs.err set): the tmp file closed and removed next. */
static int clean(struct ds__sftp_recv *r, int rc)
{
    struct sftp_mst *w = &r->mst;

    if (rc == DS_ETRANSPORT || rc == DS_ENOMEM)
        return end(r, rc); /* the session ends: nothing more to ask */
    w->rc = rc;
    w->phase = w->h != NULL ? MS_CLEAN_CLOSE : MS_CLEAN_UNLINK;
    return 0;
}

/* MS_LEASE: the lease still ours, the manifest encoded. */
static int start(struct ds__sftp_recv *r)
{
    struct sftp_mst *w = &r->mst;
    int rc = ds__sftp_lease_check(r);

    if (rc == STEP_WAIT || rc < 0)
        return rc;
    if (rc == 0) {
        ds__sftp_errf(&r->fs, "manifest not written: %s", r->lease_msg);
        return end(r, DS_ELEASE);
    }
    if ((rc = ds_manifest_encode(r->man, &w->buf, &w->len)) < 0)
        return end(r, rc);
    w->off = 0;
    w->rc = 0;
    w->moved = 0;
    snprintf(w->tmp, sizeof(w->tmp), "%s/" DS_STATE_DIR "/tmp/manifest-%016" PRIx64 ".tmp",
             r->fs.root, r->session);
    w->phase = MS_OPEN;
    return 0;
}

/* MS_OPEN to MS_CLOSE: the tmp file written and synced. */
static int put(struct ds__sftp_recv *r)
{
    struct sftp_mst *w = &r->mst;
    int rc;

    switch (w->phase) {
    case MS_OPEN:
        w->h = libssh2_sftp_open_ex(r->fs.sftp, w->tmp, (unsigned)strlen(w->tmp),
                                    LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL, 0600,
                                    LIBSSH2_SFTP_OPENFILE);
        if (w->h == NULL)
            return again(r) ? STEP_WAIT : clean(r, ds__sftp_fail(&r->fs, "create", w->tmp));
        w->phase = MS_WRITE;
        return 0;
    case MS_WRITE:
        while (w->off < w->len) { /* up to SFTP_INFLIGHT bytes in flight */
            size_t n = w->len - w->off < SFTP_INFLIGHT ? w->len - w->off : SFTP_INFLIGHT;
            ssize_t k = libssh2_sftp_write(w->h, (const char *)w->buf + w->off, n);

            if (k == LIBSSH2_ERROR_EAGAIN || k == 0)
                return STEP_WAIT;
            if (k < 0)
                return clean(r, ds__sftp_fail(&r->fs, "write", w->tmp));
            w->off += (size_t)k;
        }
        w->phase = MS_FSYNC;
        return 0;
    case MS_FSYNC:
        if ((rc = libssh2_sftp_fsync(w->h)) == LIBSSH2_ERROR_EAGAIN)
            return STEP_WAIT;
        if (rc != 0 && libssh2_sftp_last_error(r->fs.sftp) != LIBSSH2_FX_OP_UNSUPPORTED)
            return clean(r, ds__sftp_fail(&r->fs, "fsync", w->tmp));
        w->phase = MS_CLOSE;
        return 0;
    default: /* MS_CLOSE */
        if ((rc = libssh2_sftp_close_handle(w->h)) == LIBSSH2_ERROR_EAGAIN)
            return STEP_WAIT;
        w->h = NULL;
        if (rc != 0)
            return clean(r, ds__sftp_fail(&r->fs, "close", w->tmp));
        w->phase = MS_LSTAT;
        return 0;
    }
}

/* MS_LSTAT to MS_MV: the tmp file moved over the manifest. */
static int replace(struct ds__sftp_recv *r)
{
    struct sftp_mst *w = &r->mst;
    const char *dst = manifest_path(r);
    LIBSSH2_SFTP_ATTRIBUTES a;
    int rc;

    switch (w->phase) {
    case MS_LSTAT:
        rc = ds__sftp_lstat_nb(&r->fs, dst, &a);
        if (rc == STEP_WAIT)
            return rc;
        if (rc < 0 && rc != -ENOENT)
            return clean(r, rc);
        if (rc == -ENOENT)
            w->phase = MS_RENAME;
        else if (!r->fs.shell || r->mvq.unmv) /* absent for an instant, never partial */
            w->phase = MS_UNLINK;
        else if ((rc = ds__sftp_mvq_put(r, w->tmp, dst, -1)) <= 0) {
            ds__sftp_errf(&r->fs, "mv -f %s %s on %s: the mv loop is not running", w->tmp, dst,
                          r->fs.u.where);
            return clean(r, rc < 0 ? rc : -EIO);
        } else
            w->phase = MS_MV;
        return 0;
    case MS_UNLINK:
        rc = libssh2_sftp_unlink_ex(r->fs.sftp, dst, (unsigned)strlen(dst));
        if (rc == LIBSSH2_ERROR_EAGAIN)
            return STEP_WAIT;
        if (rc != 0 && (rc = ds__sftp_fail(&r->fs, "unlink", dst)) != -ENOENT)
            return clean(r, rc);
        r->fs.replaced_unlink++;
        w->phase = MS_RENAME;
        return 0;
    case MS_RENAME:
        rc = libssh2_sftp_rename_ex(r->fs.sftp, w->tmp, (unsigned)strlen(w->tmp), dst,
                                    (unsigned)strlen(dst),
                                    LIBSSH2_SFTP_RENAME_OVERWRITE | LIBSSH2_SFTP_RENAME_ATOMIC |
                                        LIBSSH2_SFTP_RENAME_NATIVE);
        if (rc == LIBSSH2_ERROR_EAGAIN)
            return STEP_WAIT;
        if (rc != 0)
            return clean(r, ds__sftp_fail(&r->fs, "rename onto", dst));
        return end(r, 0);
    default: /* MS_MV: the mv loop answers through ds__sftp_manifest_moved */
        while (!w->moved) {
            rc = ds__sftp_mvq_step(r);
            if (rc < 0)
                return end(r, rc);
            if (w->moved)
                break;
            if (rc == STEP_WAIT)
                return rc;
            if (rc == STEP_IDLE)
                return end(r, DS_EINTERNAL); /* nothing queued: a bug, not a hang */
        }
        if (w->rc == SFTP_MV_UNLINK) { /* the loop could not start */
            w->moved = w->rc = 0;
            w->phase = MS_UNLINK;
            return 0;
        }
        if (w->rc < 0)
            return clean(r, w->rc);
        return end(r, 0);
    }
}

/* The manifest's load's phases (r->lq.sub). */
enum { ML_OPEN, ML_READ, ML_CLOSE, ML_BAD_UNLINK, ML_BAD_RENAME };

/* ML_OPEN to ML_CLOSE: the file read and decoded. Returns 0 (lq.rc the
 * decoding's result), STEP_WAIT, -ENOENT or a failure. */
static int load_read(struct ds__sftp_recv *r, const char *abs)
{
    struct sftp_lq *l = &r->lq;
    ssize_t n;
    int rc;

    for (;;) {
        switch (l->sub) {
        case ML_OPEN:
            if ((l->h = libssh2_sftp_open_ex(r->fs.sftp, abs, (unsigned)strlen(abs),
                                             LIBSSH2_FXF_READ, 0, LIBSSH2_SFTP_OPENFILE)) == NULL)
                return again(r) ? STEP_WAIT : ds__sftp_fail(&r->fs, "open", abs);
            l->rc = ds_manifest_decoder_new(MANIFEST_MAX, MANIFEST_ENTRIES, &l->d);
            l->sub = l->rc == 0 ? ML_READ : ML_CLOSE;
            break;
        case ML_READ:
            if ((n = libssh2_sftp_read(l->h, (char *)r->fs.rbuf, MANIFEST_READ)) ==
                LIBSSH2_ERROR_EAGAIN)
                return STEP_WAIT;
            if (n < 0)
                l->rc = ds__sftp_fail(&r->fs, "read", abs);
            if (n > 0)
                l->rc = ds_manifest_decoder_feed(l->d, r->fs.rbuf, (size_t)n);
            if (n <= 0 || l->rc < 0)
                l->sub = ML_CLOSE;
            break;
        default: /* ML_CLOSE */
            if ((rc = libssh2_sftp_close_handle(l->h)) == LIBSSH2_ERROR_EAGAIN)
                return STEP_WAIT;
            l->h = NULL;
            if (l->rc == 0)
                l->rc = ds_manifest_decoder_finish(l->d, &r->man);
            return 0;
        }
    }
}

/* See ds__sftp_manifest_load_step. */
static int load(struct ds__sftp_recv *r)
{
    struct sftp_lq *l = &r->lq;
    const char *abs = manifest_path(r);
    char bad[8400];
    int rc;

    snprintf(bad, sizeof(bad), "%s.corrupt", abs);
    if (l->sub == ML_OPEN) {
        ds_manifest_free(r->man);
        r->man = NULL;
    }
    if (l->sub <= ML_CLOSE) {
        if ((rc = load_read(r, abs)) == -ENOENT)
            return ds_manifest_new(&r->man);
        if (rc != 0)
            return rc;
        if (l->rc == 0 || l->rc == DS_ETRANSPORT || l->rc == DS_ENOMEM)
            return l->rc;
        ds_log(DS_LOG_WARN, "%s on %s: %s: moved to manifest.corrupt, starting an empty one", abs,
               r->fs.u.where, l->d ? ds_manifest_decoder_error(l->d) : ds_strerror(l->rc));
        l->sub = ML_BAD_UNLINK;
    }
    if (l->sub == ML_BAD_UNLINK) {
        if (libssh2_sftp_unlink_ex(r->fs.sftp, bad, (unsigned)strlen(bad)) == LIBSSH2_ERROR_EAGAIN)
            return STEP_WAIT;
        l->sub = ML_BAD_RENAME;
    }
    if (libssh2_sftp_rename_ex(r->fs.sftp, abs, (unsigned)strlen(abs), bad, (unsigned)strlen(bad),
                               0) == LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    return ds_manifest_new(&r->man);
}

int ds__sftp_manifest_load_step(struct ds__sftp_recv *r)
{
    int rc = load(r);

    if (rc != STEP_WAIT)
        r->lq.sub = ML_OPEN;
    return rc;
}

/* See sftp_int.h. */
void ds__sftp_manifest_moved(struct ds__sftp_recv *r, int rc, const char *why)
{
    struct sftp_mst *w = &r->mst;

    w->moved = 1;
    w->rc = rc;
    if (rc < 0)
        ds__sftp_errf(&r->fs, "mv -f %s over the manifest on %s: %s", w->tmp, r->fs.u.where, why);
}

int ds__sftp_manifest_step(struct ds__sftp_recv *r)
{
    struct sftp_mst *w = &r->mst;
    int rc = 0;

    if (w->phase == MS_IDLE) {
        if (r->man == NULL || !r->man_dirty)
            return 0;
        w->phase = MS_LEASE;
    }
    while (rc == 0 && w->phase != MS_IDLE) {
        if (w->phase == MS_LEASE)
            rc = start(r);
        else if (w->phase <= MS_CLOSE)
            rc = put(r);
        else if (w->phase <= MS_MV)
            rc = replace(r);
        else if (w->phase == MS_CLEAN_CLOSE) {
            if (libssh2_sftp_close_handle(w->h) == LIBSSH2_ERROR_EAGAIN)
                return STEP_WAIT;
            w->h = NULL;
            w->phase = MS_CLEAN_UNLINK;
        } else { /* MS_CLEAN_UNLINK */
            if (libssh2_sftp_unlink_ex(r->fs.sftp, w->tmp, (unsigned)strlen(w->tmp)) ==
                LIBSSH2_ERROR_EAGAIN)
                return STEP_WAIT;
            return end(r, w->rc);
        }
    }
    return rc;
}

void ds__sftp_manifest_checkpoint(struct ds__sftp_recv *r)
{
    if (r->man_dirty && (int64_t)time(NULL) - r->man_written_at >= DS_APPLY_CHECKPOINT_S)
        r->ckpt = 1;
}

/* Sends man's bytes as MANIFEST_DATA slices (no I/O). */
static int send_encoded(struct ds__sftp_recv *r, const ds_msg_t *m, const ds_manifest_t *man)
{
    ds_msg_t d = {.type = DS_MSG_MANIFEST_DATA, .id = m->id};
    uint8_t *buf = NULL;
    size_t len = 0, off = 0;
    int rc = ds_manifest_encode(man, &buf, &len);

    while (rc == 0) {
        size_t n = len - off < MANIFEST_READ ? len - off : MANIFEST_READ;

        d.u.blob.data = buf + off;
        d.u.blob.len = (uint32_t)n;
        off += n;
        d.flags = off < len ? DS_PROTO_F_MORE : 0;
        if ((rc = ds__sftp_reply(r, &d)) < 0 || (rc = ds__sftp_flush(r)) < 0 || off == len)
            break;
    }
    free(buf);
    return rc;
}

/* The manifest file's bytes, stepped (r->req: open, reads, close), each
 * read sent as a slice. Returns 0, STEP_WAIT, -ENOENT (none on the server)
 * or a failure (fs.err). */
static int get_steps(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    ds_msg_t d = {.type = DS_MSG_MANIFEST_DATA, .id = m->id};
    struct sftp_req *q = &r->req;
    const char *abs = manifest_path(r);
    ssize_t n;
    int rc;

    if (q->h == NULL && !q->walked) {
        if ((q->h = libssh2_sftp_open_ex(r->fs.sftp, abs, (unsigned)strlen(abs), LIBSSH2_FXF_READ,
                                         0, LIBSSH2_SFTP_OPENFILE)) == NULL)
            return again(r) ? STEP_WAIT : ds__sftp_fail(&r->fs, "open", abs);
        q->walked = 1; /* opened */
    }
    while (q->rc == 0 && q->phase == 0) {
        if ((n = libssh2_sftp_read(q->h, (char *)r->fs.rbuf, MANIFEST_READ)) ==
            LIBSSH2_ERROR_EAGAIN)
            return STEP_WAIT;
        if (n < 0) {
            q->rc = ds__sftp_fail(&r->fs, "read", abs);
            break;
        }
        d.u.blob.data = r->fs.rbuf;
        d.u.blob.len = (uint32_t)n;
        d.flags = n > 0 ? DS_PROTO_F_MORE : 0;
        if ((rc = ds__sftp_reply(r, &d)) < 0 || (rc = ds__sftp_flush(r)) < 0)
            q->rc = rc;
        q->phase = n == 0; /* the last slice went */
    }
    if ((rc = libssh2_sftp_close_handle(q->h)) == LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    q->h = NULL;
    return q->rc;
}

/* MANIFEST_GET: the manifest held (after the lease), else the file's bytes,
 * streamed a slice at a time (the console caps and decodes them). */
int ds__sftp_manifest_get(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    ds_manifest_t *empty = NULL;
    int rc;

    if (r->man != NULL)
        return send_encoded(r, m, r->man);
    if (r->req.kind != DS_MSG_MANIFEST_GET) {
        memset(&r->req, 0, sizeof(r->req));
        r->req.kind = DS_MSG_MANIFEST_GET;
    }
    rc = get_steps(r, m);
    ds__sftp_counts(&r->fs);
    if (rc == STEP_WAIT)
        return rc;
    ds__sftp_req_drop(r);
    if (rc == -ENOENT) { /* none on the server: an empty one */
        if ((rc = ds_manifest_new(&empty)) == 0)
            rc = send_encoded(r, m, empty);
        ds_manifest_free(empty);
        return rc;
    }
    if (rc < 0 && rc != DS_ETRANSPORT && rc != -EPIPE && rc != -ECONNRESET)
        return ds__sftp_reply_err(r, m->id, rc, manifest_path(r), r->fs.err);
    return rc;
}

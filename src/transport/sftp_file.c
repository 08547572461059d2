/*
 * SFTP mode, ADOPT and DELETE, the requests on one target file other
 * than an upload (sftp_slot.c) and HASH (sftp_hash.c), with the same path
 * checks (no symlinked parent, a regular file), once every earlier file's
 * reply went out. Stepped non-blocking as HASH is (r->req): a call that
 * would block returns STEP_WAIT and the frame is handled again, resuming
 * the request, when the socket is ready.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/pathsafe.h"

#include "sftp_int.h"

/* The request's phases after the walk. */
enum { F_WALK, F_LEASE, F_HASH, F_ACT, F_END };

/* The walk, then the lease check: F_HASH next. Returns 0, STEP_WAIT or
 * a refusal (fs.err); -ENOENT: the file (or a parent) is missing. */
static int walk_lease(struct ds__sftp_recv *r, struct sftp_req *q)
{
    int rc;

    if (q->phase == F_WALK) {
        rc = ds__sftp_req_walk(&r->fs, q);
        if (rc == STEP_WAIT || (rc < 0 && rc != -ENOENT))
            return rc;
        q->present = rc == 0;
        q->phase = F_LEASE;
    }
    if (q->phase == F_LEASE) {
        rc = ds__sftp_lease_check(r);
        if (rc == STEP_WAIT || rc < 0)
            return rc;
        if (rc == 0) {
            ds__sftp_errf(&r->fs, "%s", r->lease_msg);
            return DS_ELEASE;
        }
        q->phase = F_HASH;
    }
    return 0;
}

/* Steps ADOPT's calls: the walk, the lease, the hash, the mtime set.
 * Returns 0, STEP_WAIT or a failure (fs.err). */
static int adopt_steps(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    struct sftp_req *q = &r->req;
    LIBSSH2_SFTP_ATTRIBUTES t = {.flags = LIBSSH2_SFTP_ATTR_ACMODTIME};
    int rc;

    if (q->phase <= F_LEASE && (rc = walk_lease(r, q)) != 0)
        return rc;
    if (!q->present) {
        ds__sftp_errf(&r->fs, "ADOPT: %s on %s: no such file", q->abs, r->fs.u.where);
        return -ENOENT;
    }
    if (q->phase == F_HASH) {
        if ((rc = ds__sftp_req_hash(&r->fs, q)) != 0)
            return rc;
        q->phase = F_ACT;
        q->mtime = (int64_t)q->a.mtime * 1000000000;
        ds_sha256_final(&q->sha, q->digest);
        if (q->size != m->u.adopt.size || memcmp(q->digest, m->u.adopt.sha256, DS_SHA256_LEN)) {
            ds__sftp_errf(&r->fs, "ADOPT: the file does not hold the wanted bytes");
            return DS_EHASH;
        }
    }
    if (m->u.adopt.mtime_ns == DS_PROTO_NO_MTIME)
        return 0;
    t.atime = t.mtime = (unsigned long)(m->u.adopt.mtime_ns / 1000000000);
    /* what was set: libssh2 zeroes t when the SETSTAT succeeds, and a
     * manifest mtime of 0 made every later run hash the file again */
    q->mtime = m->u.adopt.mtime_ns / 1000000000 * 1000000000;
    rc = libssh2_sftp_stat_ex(r->fs.sftp, q->abs, (unsigned)strlen(q->abs), LIBSSH2_SFTP_SETSTAT,
                              &t);
    if (rc == LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    if (rc != 0)
        return ds__sftp_fail(&r->fs, "setstat", q->abs);
    return 0;
}

/* Steps DELETE's calls: the walk, the lease, the unlink. Returns 0,
 * STEP_WAIT or a failure (fs.err). */
static int delete_steps(struct ds__sftp_recv *r)
{
    struct sftp_req *q = &r->req;
    int rc;

    if (q->phase <= F_LEASE && (rc = walk_lease(r, q)) != 0)
        return rc;
    if (!q->present)
        return 0;
    rc = libssh2_sftp_unlink_ex(r->fs.sftp, q->abs, (unsigned)strlen(q->abs));
    if (rc == LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    if (rc != 0 && (rc = ds__sftp_fail(&r->fs, "unlink", q->abs)) != -ENOENT)
        return rc;
    q->present = rc == 0;
    return 0;
}

/* Starts (when not resuming) and steps the request of kind on path
 * non-blocking. Returns as the steps do. */
static int run(struct ds__sftp_recv *r, int kind, const char *path, const ds_msg_t *m)
{
    int rc = 0;

    if (r->req.kind != kind)
        rc = ds__sftp_req_start(r, kind, path);
    if (rc < 0)
        return rc;
    rc = kind == DS_MSG_ADOPT ? adopt_steps(r, m) : delete_steps(r);
    ds__sftp_counts(&r->fs);
    return rc;
}

int ds__sftp_adopt(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    ds_msg_t ok = {.type = DS_MSG_FILE_OK, .id = m->id};
    ds_msg_t e = {.type = DS_MSG_FILE_ERR, .id = m->id};
    char path[DS_PROTO_STR_MAX + 1];
    int rc;

    ds__sftp_cstr(m->u.adopt.path, path);
    rc = run(r, DS_MSG_ADOPT, path, m);
    if (rc == STEP_WAIT)
        return rc;
    if (rc == 0)
        rc = ds_manifest_put(r->man, path, r->req.size, r->req.mtime, r->req.digest);
    ok.u.file_ok.size = r->req.size;
    ok.u.file_ok.mtime_ns = r->req.mtime;
    memcpy(ok.u.file_ok.sha256, r->req.digest, DS_SHA256_LEN);
    ds__sftp_req_drop(r);
    if (rc == DS_ETRANSPORT || rc == DS_ENOMEM)
        return rc;
    if (rc < 0) {
        e.u.err.code = rc;
        e.u.err.path = ds_pstr(path);
        e.u.err.message = ds_pstr(r->fs.err[0] ? r->fs.err : ds_strerror(rc));
        return ds__sftp_reply(r, &e);
    }
    r->man_dirty = 1;
    return ds__sftp_reply(r, &ok);
}

int ds__sftp_delete(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    ds_msg_t ok = {.type = DS_MSG_OK, .id = m->id};
    char path[DS_PROTO_STR_MAX + 1];
    int rc;

    ds__sftp_cstr(m->u.path.path, path);
    rc = run(r, DS_MSG_DELETE, path, m);
    if (rc == STEP_WAIT)
        return rc;
    ok.u.ok.value = (uint64_t)(rc == 0 && r->req.present);
    ds__sftp_req_drop(r);
    if (rc == DS_ETRANSPORT)
        return rc;
    if (rc < 0)
        return ds__sftp_reply_err(r, m->id, rc, path, r->fs.err);
    if (r->man != NULL && ds_manifest_remove(r->man, path) == 0)
        r->man_dirty = 1;
    return ds__sftp_reply(r, &ok);
}

/*
 * SFTP mode, HASH stepped non-blocking (r->req): the lstat walk of the
 * parents (never a symlink) and of the file (regular), then the file read
 * in SFTP_READ_BUF calls and hashed. Each libssh2 call that would block
 * returns STEP_WAIT; the receiver handles the frame again when the socket
 * is ready and the request resumes where it stopped (the call made again
 * with the same arguments).
 */
#include <errno.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/pathsafe.h"

#include "sftp_int.h"

enum { H_OPEN, H_READ, H_CLOSE };

static int again(struct ds__sftp_fs *fs)
{
    return libssh2_session_last_errno(fs->c.s) == LIBSSH2_ERROR_EAGAIN;
}

/* The lstat of the component ending at q->abs[end] (a parent, or the file
 * when last). Returns 0, STEP_WAIT or a refusal (fs->err). */
static int check_one(struct ds__sftp_fs *fs, struct sftp_req *q, char *end, int last)
{
    int rc;

    if (end != NULL)
        *end = '\0';
    rc = ds__sftp_lstat_nb(fs, q->abs, &q->a);
    if (rc == 0 && LIBSSH2_SFTP_S_ISLNK(q->a.permissions)) {
        ds__sftp_errf(fs, "%s on %s is a symlink: refused", q->abs, fs->u.where);
        rc = DS_ESYMLINK;
    } else if (rc == 0 && !last && !LIBSSH2_SFTP_S_ISDIR(q->a.permissions)) {
        ds__sftp_errf(fs, "%s on %s is not a directory", q->abs, fs->u.where);
        rc = DS_ENOTREG;
    } else if (rc == 0 && last && !LIBSSH2_SFTP_S_ISREG(q->a.permissions)) {
        ds__sftp_errf(fs, "%s on %s is not a regular file", q->abs, fs->u.where);
        rc = DS_ENOTREG;
    }
    if (end != NULL)
        *end = '/';
    return rc;
}

/* See sftp_int.h. */
int ds__sftp_req_walk(struct ds__sftp_fs *fs, struct sftp_req *q)
{
    for (;;) {
        char *s = strchr(q->abs + q->at, '/');
        int rc = check_one(fs, q, s, s == NULL);

        if (rc != 0 || s == NULL)
            return rc;
        q->at = (size_t)(s - q->abs) + 1;
    }
}

/* See sftp_int.h. */
int ds__sftp_req_hash(struct ds__sftp_fs *fs, struct sftp_req *q)
{
    int rc;

    for (;;) {
        switch (q->hphase) {
        case H_OPEN:
            q->h = libssh2_sftp_open_ex(fs->sftp, q->abs, (unsigned)strlen(q->abs),
                                        LIBSSH2_FXF_READ, 0, LIBSSH2_SFTP_OPENFILE);
            if (q->h == NULL)
                return again(fs) ? STEP_WAIT : ds__sftp_fail(fs, "open", q->abs);
            if ((rc = ds_sha256_init(&q->sha)) < 0) {
                q->rc = rc;
                q->hphase = H_CLOSE;
                break;
            }
            q->hphase = H_READ;
            break;
        case H_READ: {
            ssize_t n = libssh2_sftp_read(q->h, (char *)fs->rbuf, SFTP_READ_BUF);

            if (n == LIBSSH2_ERROR_EAGAIN)
                return STEP_WAIT;
            if (n < 0)
                q->rc = ds__sftp_fail(fs, "read", q->abs);
            if (n <= 0) {
                q->hphase = H_CLOSE;
                break;
            }
            ds_sha256_update(&q->sha, fs->rbuf, (size_t)n);
            q->size += (uint64_t)n;
            break;
        }
        default: /* H_CLOSE */
            if (libssh2_sftp_close_handle(q->h) == LIBSSH2_ERROR_EAGAIN)
                return STEP_WAIT;
            q->h = NULL;
            q->hphase = H_OPEN;
            return q->rc;
        }
    }
}

/* The HASH request's calls: the walk, then the read. */
static int steps(struct ds__sftp_fs *fs, struct sftp_req *q)
{
    int rc;

    if (!q->walked) {
        if ((rc = ds__sftp_req_walk(fs, q)) != 0)
            return rc;
        q->walked = 1;
    }
    return ds__sftp_req_hash(fs, q);
}

void ds__sftp_req_drop(struct ds__sftp_recv *r)
{
    struct sftp_req *q = &r->req;

    if (q->list != NULL)
        ds__sftp_list_drop(&r->fs, &q->list);
    ds__sftp_lose(&r->fs, q->h); /* closed by the pump's steps, never waited for */
    ds_sha256_close(&q->sha);
    memset(q, 0, sizeof(*q));
}

/* See sftp_int.h. */
int ds__sftp_req_start(struct ds__sftp_recv *r, int kind, const char *path)
{
    struct sftp_req *q = &r->req;
    const char *why = NULL;

    memset(q, 0, sizeof(*q));
    if (ds_pathsafe_check(path, &why) < 0) {
        ds__sftp_errf(&r->fs, "%s", why);
        return DS_EPATH;
    }
    q->kind = kind;
    ds__sftp_abs(&r->fs, 0, path);
    memcpy(q->abs, r->fs.path[0], sizeof(q->abs));
    q->at = strlen(r->fs.root) + 1;
    return 0;
}

int ds__sftp_hash_req(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    ds_msg_t ok = {.type = DS_MSG_HASH_OK, .id = m->id};
    char path[DS_PROTO_STR_MAX + 1];
    int rc = 0;

    ds__sftp_cstr(m->u.path.path, path);
    if (r->req.kind != DS_MSG_HASH)
        rc = ds__sftp_req_start(r, DS_MSG_HASH, path);
    if (rc == 0) {
        rc = steps(&r->fs, &r->req);
        ds__sftp_counts(&r->fs);
        if (rc == STEP_WAIT)
            return rc;
    }
    if (rc == 0) {
        ds_sha256_final(&r->req.sha, ok.u.hash_ok.sha256);
        ok.u.hash_ok.size = r->req.size;
        ok.u.hash_ok.mtime_ns = (int64_t)r->req.a.mtime * 1000000000;
    }
    ds__sftp_req_drop(r);
    if (rc == DS_ETRANSPORT)
        return rc;
    if (rc < 0)
        return ds__sftp_reply_err(r, m->id, rc, path,
                                  rc == -ENOENT ? "HASH: no such file" : r->fs.err);
    ok.u.hash_ok.path = m->u.path.path;
    return ds__sftp_reply(r, &ok);
}

/*
 * SFTP mode, the file pipeline. Each file the console sends is given a
 * slot: an SFTP channel of its own on the one SSH connection. The slot
 * writes the file to .distsync/tmp/ds-<session>-<id>.part (its data in
 * flight as it arrives), and after FILE_COMMIT runs the file's round trips
 * one after the other: fsync@openssh.com, mode and mtime, fstat (the server
 * holds the size sent), close, with verify = readback the SHA-256 read
 * back, an lstat of every parent (never a symlink; created 0755 when
 * missing) and of the path, the lease check, then the rename (mv -f on a
 * shell account over an old file, else unlink + rename). Up to SFTP_SLOTS
 * files do this at once: libssh2 runs non-blocking here and ds__sftp_pump
 * moves every slot as far as it goes, so a file costs its round trips once
 * per SFTP_SLOTS files instead of once per file. Replies go out in request
 * order (the console matches them to its requests first in, first out).
 *
 * libssh2 1.10 refuses a new packet while another is half sent
 * (LIBSSH2_ERROR_BAD_USE): the slot whose call left one (its EAGAIN with
 * LIBSSH2_SESSION_BLOCK_OUTBOUND) is the owner, and only it is called until
 * that packet is out; a file that fails meanwhile is discarded after it.
 * Every step is non-blocking, the readback (verify = readback) and the
 * failed file's clean-up included: the session never waits on the socket.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "distsync/error.h"
#include "distsync/pathsafe.h"

#include "sftp_int.h"

static int eagain(struct ds__sftp_recv *r)
{
    return libssh2_session_last_errno(r->fs.c.s) == LIBSSH2_ERROR_EAGAIN;
}

/* SL_DISCARD: the failed file's handle closed and its tmp file removed,
 * as steps; then its reply waits for FILE_COMMIT or FILE_ABORT. */
static int step_discard(struct sftp_slot *sl)
{
    if (sl->h != NULL && libssh2_sftp_close_handle(sl->h) == LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    sl->h = NULL;
    if (sl->tmp[0] && libssh2_sftp_unlink_ex(sl->sftp, sl->tmp, (unsigned)strlen(sl->tmp)) ==
                          LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    sl->tmp[0] = '\0';
    sl->state = sl->ended ? SL_DONE : SL_WAIT;
    return STEP_MOVED;
}

/* See sftp_int.h. */
int ds__sftp_slot_fail(struct ds__sftp_recv *r, struct sftp_slot *sl, int code, const char *fmt,
                       ...)
{
    ds_msg_t m = {.type = DS_MSG_FILE_ERR, .id = sl->begin_id};
    va_list va;

    if (sl->failed)
        return 0;
    va_start(va, fmt);
    vsnprintf(sl->err_msg, sizeof(sl->err_msg), fmt, va);
    va_end(va);
    sl->failed = 1;
    sl->err_code = code;
    if (r->owner == (int)(sl - r->slot))
        sl->discard = 1; /* its half-sent call goes out first (ds__sftp_step) */
    else {
        sl->state = SL_DISCARD;
        sl->start = sl->end = 0;
    }
    r->kick = 1;
    if (sl->ended)
        return 0;
    m.u.err.file_id = sl->id;
    m.u.err.code = code;
    m.u.err.path = ds_pstr(sl->path);
    m.u.err.message = ds_pstr(sl->err_msg);
    return ds__sftp_reply(r, &m);
}

/* A failure rc with fs.err set: a transport failure ends the session,
 * any other fails the file. */
static int failed(struct ds__sftp_recv *r, struct sftp_slot *sl, int rc)
{
    if (rc == DS_ETRANSPORT)
        return rc;
    return ds__sftp_slot_fail(r, sl, rc, "%s", r->fs.err);
}

/* A failed libssh2 call on the slot (see failed). */
static int call_fail(struct ds__sftp_recv *r, struct sftp_slot *sl, const char *what,
                     const char *path)
{
    return failed(r, sl, ds__sftp_fail_on(&r->fs, sl->sftp, what, path));
}

static int step_init(struct ds__sftp_recv *r, struct sftp_slot *sl)
{
    int k = (int)(sl - r->slot);

    sl->sftp = libssh2_sftp_init(r->fs.c.s);
    if (sl->sftp != NULL) {
        sl->state = SL_IDLE;
        return STEP_MOVED;
    }
    if (eagain(r))
        return STEP_WAIT;
    if (k == 0) {
        ds__sftp_errf(&r->fs, "%s: cannot start an SFTP channel: %s", r->fs.u.where,
                      ds__ssh_errmsg(r->fs.c.s));
        return DS_ETRANSPORT;
    }
    /* the server allows no more sessions (MaxSessions): do with k */
    sl->state = SL_FREE;
    r->max_slots = r->nslots = k;
    return STEP_MOVED;
}

static int step_open(struct ds__sftp_recv *r, struct sftp_slot *sl)
{
    sl->h = libssh2_sftp_open_ex(sl->sftp, sl->tmp, (unsigned)strlen(sl->tmp),
                                 LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL, 0600,
                                 LIBSSH2_SFTP_OPENFILE);
    if (sl->h != NULL) {
        sl->state = SL_WRITE;
        return STEP_MOVED;
    }
    if (eagain(r))
        return STEP_WAIT;
    if (!sl->reopened && libssh2_session_last_errno(r->fs.c.s) == LIBSSH2_ERROR_SFTP_PROTOCOL) {
        sl->state = SL_LEFTOVER; /* a leftover of ours: removed, once */
        return STEP_MOVED;
    }
    {
        char tmp[sizeof(sl->tmp)];

        memcpy(tmp, sl->tmp, sizeof(tmp));
        sl->tmp[0] = '\0'; /* not ours to remove */
        return call_fail(r, sl, "create", tmp);
    }
}

/* SL_LEFTOVER: a tmp file of this session's name left by an earlier
 * try: removed, then the create again. */
static int step_leftover(struct ds__sftp_recv *r, struct sftp_slot *sl)
{
    if (libssh2_sftp_unlink_ex(sl->sftp, sl->tmp, (unsigned)strlen(sl->tmp)) ==
        LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    (void)r;
    sl->reopened = 1;
    sl->state = SL_OPEN;
    return STEP_MOVED;
}

/* Test hook (DISTSYNC_TEST_SFTP_CORRUPT=PATH in a DS_TEST_HOOKS build): overwrites the first
 * byte of that file's upload after it was sent, so that verify = readback has something to catch.
 * Returns 0 (done, or not this file), STEP_WAIT or a failure. */
static int corrupt(struct ds__sftp_recv *r, struct sftp_slot *sl)
{
    static const char c = (char)0xff; /* the same bytes when the write is made again */
    ssize_t n;

    if (r->corrupt == NULL || strcmp(r->corrupt, sl->path) != 0 || sl->size == 0 ||
        sl->corrupted == 2)
        return 0;
    if (!sl->corrupted)
        libssh2_sftp_seek64(sl->h, 0);
    sl->corrupted = 1;
    if ((n = libssh2_sftp_write(sl->h, &c, 1)) == LIBSSH2_ERROR_EAGAIN || n == 0)
        return STEP_WAIT;
    sl->corrupted = 2;
    return n < 0 ? call_fail(r, sl, "write", sl->tmp) : 0;
}

static int step_write(struct ds__sftp_recv *r, struct sftp_slot *sl)
{
    ssize_t n = 0;

    for (int i = 0; i < 2 && sl->end > sl->start && n == 0; i++)
        n = libssh2_sftp_write(sl->h, (const char *)sl->buf + sl->start, sl->end - sl->start);
    if (n == LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    if (n < 0)
        return call_fail(r, sl, "write", sl->tmp);
    if (n > 0) {
        sl->start += (size_t)n;
        if (sl->start == sl->end)
            sl->start = sl->end = 0;
        return STEP_MOVED;
    }
    if (sl->end > sl->start)
        return STEP_WAIT; /* half sent (the channel's window) */
    if (!sl->ended)
        return STEP_IDLE;
    if ((n = corrupt(r, sl)) != 0)
        return n == STEP_WAIT || n < 0 ? (int)n : STEP_MOVED;
    if (!sl->failed)
        sl->state = SL_FSYNC;
    return STEP_MOVED;
}

static int step_fsync(struct ds__sftp_recv *r, struct sftp_slot *sl)
{
    int rc = libssh2_sftp_fsync(sl->h);

    if (rc == LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    if (rc != 0 && libssh2_sftp_last_error(sl->sftp) != LIBSSH2_FX_OP_UNSUPPORTED)
        return call_fail(r, sl, "fsync", sl->tmp);
    sl->state = SL_ATTRS;
    return STEP_MOVED;
}

/* Mode (0 means 0644; no set-id or sticky bit) and mtime on the tmp file. */
static int step_attrs(struct ds__sftp_recv *r, struct sftp_slot *sl)
{
    LIBSSH2_SFTP_ATTRIBUTES a = {.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS};
    int rc;

    a.permissions = sl->mode & 0777 ? sl->mode & 0777 : 0644;
    if (sl->mtime_ns != DS_PROTO_NO_MTIME) {
        a.flags |= LIBSSH2_SFTP_ATTR_ACMODTIME;
        a.atime = a.mtime = (unsigned long)(sl->mtime_ns / 1000000000);
    }
    rc = libssh2_sftp_fsetstat(sl->h, &a);
    if (rc == LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    if (rc != 0)
        return call_fail(r, sl, "setstat", sl->tmp);
    sl->state = SL_SIZE;
    return STEP_MOVED;
}

/* What the server holds in the tmp file: the size sent. */
static int step_size(struct ds__sftp_recv *r, struct sftp_slot *sl)
{
    int rc = libssh2_sftp_fstat(sl->h, &sl->a);

    if (rc == LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    if (rc != 0)
        return call_fail(r, sl, "fstat", sl->tmp);
    if (!(sl->a.flags & LIBSSH2_SFTP_ATTR_SIZE) || sl->a.filesize != sl->size)
        return ds__sftp_slot_fail(r, sl, DS_ECORRUPT,
                                  "%s holds %llu bytes on %s, %" PRIu64 " were sent", sl->tmp,
                                  (unsigned long long)sl->a.filesize, r->fs.u.where, sl->size);
    sl->state = SL_CLOSE;
    return STEP_MOVED;
}

/* The parents' walk comes next. */
static int walk_start(struct ds__sftp_recv *r, struct sftp_slot *sl)
{
    sl->walk = strlen(r->fs.root) + 1;
    sl->mkdir_tried = 0;
    sl->state = SL_WALK;
    return STEP_MOVED;
}

/* SL_VERIFY (verify = readback): the tmp file read back on the slot's
 * channel and its SHA-256 checked against what was sent, as steps. */
static int step_verify(struct ds__sftp_recv *r, struct sftp_slot *sl)
{
    ssize_t n;
    int rc;

    if (sl->h == NULL && sl->vrc == 0) {
        sl->h = libssh2_sftp_open_ex(sl->sftp, sl->tmp, (unsigned)strlen(sl->tmp), LIBSSH2_FXF_READ,
                                     0, LIBSSH2_SFTP_OPENFILE);
        if (sl->h == NULL)
            return eagain(r) ? STEP_WAIT : call_fail(r, sl, "open", sl->tmp);
        sl->vsize = 0;
        if ((rc = ds_sha256_init(&sl->vsha)) < 0)
            return rc;
        sl->vhash = 1;
    }
    while (sl->vrc == 0) {
        n = libssh2_sftp_read(sl->h, (char *)r->fs.rbuf, SFTP_READ_BUF);
        if (n == LIBSSH2_ERROR_EAGAIN)
            return STEP_WAIT;
        if (n < 0 &&
            (sl->vrc = ds__sftp_fail_on(&r->fs, sl->sftp, "read", sl->tmp)) == DS_ETRANSPORT)
            return sl->vrc;
        if (n <= 0)
            break;
        ds_sha256_update(&sl->vsha, r->fs.rbuf, (size_t)n);
        sl->vsize += (uint64_t)n;
    }
    if (sl->h != NULL && libssh2_sftp_close_handle(sl->h) == LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    sl->h = NULL;
    if (sl->vrc < 0)
        return failed(r, sl, sl->vrc);
    {
        uint8_t got[DS_SHA256_LEN];

        ds_sha256_final(&sl->vsha, got);
        sl->vhash = 0;
        if (sl->vsize != sl->size || memcmp(got, sl->digest, DS_SHA256_LEN) != 0)
            return ds__sftp_slot_fail(
                r, sl, DS_EHASH, "verify = readback: %s read back from %s does not hash as sent",
                sl->path, r->fs.u.where);
    }
    return walk_start(r, sl);
}

static int step_close(struct ds__sftp_recv *r, struct sftp_slot *sl)
{
    int rc = libssh2_sftp_close_handle(sl->h);

    if (rc == LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    sl->h = NULL;
    if (rc != 0)
        return call_fail(r, sl, "close", sl->tmp);
    if (r->fs.readback) {
        sl->vrc = 0;
        sl->state = SL_VERIFY;
        return STEP_MOVED;
    }
    return walk_start(r, sl);
}

/* 1 when the walk found dir to be a directory earlier in this run. */
static int dir_known(const struct ds__sftp_recv *r, const char *dir)
{
    for (unsigned i = 0; i < SFTP_DIRS && i < r->ndirs; i++)
        if (strcmp(r->dirs[i], dir) == 0)
            return 1;
    return 0;
}

static void dir_add(struct ds__sftp_recv *r, const char *dir)
{
    char *d = strdup(dir);

    if (d == NULL)
        return; /* checked again next time */
    free(r->dirs[r->ndirs % SFTP_DIRS]);
    r->dirs[r->ndirs++ % SFTP_DIRS] = d;
}

/* One lstat of the walk: the next parent (unless this run found it to be
 * a directory already), or the path itself. */
static int step_walk(struct ds__sftp_recv *r, struct sftp_slot *sl)
{
    const char *slash = strchr(sl->dst + sl->walk, '/');
    const char *what = slash ? sl->dir : sl->dst;
    int rc;

    if (slash) {
        memcpy(sl->dir, sl->dst, (size_t)(slash - sl->dst));
        sl->dir[slash - sl->dst] = '\0';
        if (!sl->asked && dir_known(r, sl->dir)) {
            sl->walk = (size_t)(slash - sl->dst) + 1;
            sl->mkdir_tried = 0;
            return STEP_MOVED;
        }
    }
    rc = libssh2_sftp_stat_ex(sl->sftp, what, (unsigned)strlen(what), LIBSSH2_SFTP_LSTAT, &sl->a);
    sl->asked = rc == LIBSSH2_ERROR_EAGAIN; /* its answer is for this path: call again */
    if (rc == LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    if (rc != 0) {
        rc = ds__sftp_fail_on(&r->fs, sl->sftp, "lstat", what);
        if (rc == -ENOENT && !slash) { /* a new path */
            sl->present = 0;
            sl->state = SL_PUBLISH;
            return STEP_MOVED;
        }
        if (rc == -ENOENT && !sl->mkdir_tried) {
            sl->state = SL_MKDIR;
            return STEP_MOVED;
        }
        return failed(r, sl, rc);
    }
    if (LIBSSH2_SFTP_S_ISLNK(sl->a.permissions))
        return ds__sftp_slot_fail(r, sl, DS_ESYMLINK, "%s on %s is a symlink: refused", what,
                                  r->fs.u.where);
    if (slash && !LIBSSH2_SFTP_S_ISDIR(sl->a.permissions))
        return ds__sftp_slot_fail(r, sl, DS_ENOTREG, "%s on %s is not a directory", what,
                                  r->fs.u.where);
    if (!slash && !LIBSSH2_SFTP_S_ISREG(sl->a.permissions))
        return ds__sftp_slot_fail(r, sl, DS_ENOTREG, "%s on %s is not a regular file", what,
                                  r->fs.u.where);
    if (slash) {
        sl->walk = (size_t)(slash - sl->dst) + 1;
        sl->mkdir_tried = 0;
        dir_add(r, sl->dir);
        return STEP_MOVED;
    }
    sl->present = 1;
    sl->state = SL_PUBLISH;
    return STEP_MOVED;
}

/* A missing parent: made (or made meanwhile by another slot), then
 * checked again by the walk. */
static int step_mkdir(struct ds__sftp_recv *r, struct sftp_slot *sl)
{
    int rc = libssh2_sftp_mkdir_ex(sl->sftp, sl->dir, (unsigned)strlen(sl->dir), 0755);

    if (rc == LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    if (rc != 0 && (rc = ds__sftp_fail_on(&r->fs, sl->sftp, "mkdir", sl->dir)) != -EIO &&
        rc != -EEXIST)
        return failed(r, sl, rc);
    sl->mkdir_tried = 1;
    sl->state = SL_WALK;
    return STEP_MOVED;
}

/* The file's manifest entry; its reply is due. */
static int record(struct ds__sftp_recv *r, struct sftp_slot *sl)
{
    int rc = ds_manifest_put(r->man, sl->path, sl->size, sl->mtime_out, sl->digest);

    if (rc < 0)
        return rc;
    r->man_dirty = 1;
    sl->state = SL_DONE;
    return STEP_MOVED;
}

/* See sftp_int.h. */
int ds__sftp_published(struct ds__sftp_recv *r, struct sftp_slot *sl)
{
    sl->tmp[0] = '\0';
    if (sl->mtime_ns == DS_PROTO_NO_MTIME) { /* the mtime the server gave it, next */
        sl->state = SL_MTIME;
        return STEP_MOVED;
    }
    sl->mtime_out = sl->mtime_ns / 1000000000 * 1000000000;
    return record(r, sl);
}

/* SL_MTIME: the published file's mtime on the server (0 when unknown). */
static int step_mtime(struct ds__sftp_recv *r, struct sftp_slot *sl)
{
    int rc = libssh2_sftp_stat_ex(sl->sftp, sl->dst, (unsigned)strlen(sl->dst), LIBSSH2_SFTP_LSTAT,
                                  &sl->a);

    if (rc == LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    sl->mtime_out = rc == 0 ? (int64_t)sl->a.mtime * 1000000000 : 0;
    return record(r, sl);
}

static int step_publish(struct ds__sftp_recv *r, struct sftp_slot *sl)
{
    int rc = ds__sftp_lease_check(r); /* the file is read at most once a second */

    if (rc == STEP_WAIT || rc < 0)
        return rc;
    if (rc == 0)
        return ds__sftp_slot_fail(r, sl, DS_ELEASE, "%s", r->lease_msg);
    if (!sl->present) {
        sl->state = SL_RENAME;
        return STEP_MOVED;
    }
    if (!r->fs.shell || r->mvq.unmv) { /* the path is absent for an instant, never partial */
        sl->state = SL_UNLINK;
        return STEP_MOVED;
    }
    if ((rc = ds__sftp_mvq_put(r, sl->tmp, sl->dst, (int)(sl - r->slot))) < 0)
        return rc;
    if (rc == 0)
        return ds__sftp_slot_fail(r, sl, -EIO, "mv -f %s %s on %s: the mv loop is not running",
                                  sl->tmp, sl->dst, r->fs.u.where);
    sl->state = SL_MV; /* queued on the mv channel */
    return STEP_MOVED;
}

static int step_unlink(struct ds__sftp_recv *r, struct sftp_slot *sl)
{
    int rc = libssh2_sftp_unlink_ex(sl->sftp, sl->dst, (unsigned)strlen(sl->dst));

    if (rc == LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    if (rc != 0 && (rc = ds__sftp_fail_on(&r->fs, sl->sftp, "unlink", sl->dst)) != -ENOENT)
        return failed(r, sl, rc);
    r->fs.replaced_unlink++;
    sl->state = SL_RENAME;
    return STEP_MOVED;
}

static int step_rename(struct ds__sftp_recv *r, struct sftp_slot *sl)
{
    int rc = libssh2_sftp_rename_ex(
        sl->sftp, sl->tmp, (unsigned)strlen(sl->tmp), sl->dst, (unsigned)strlen(sl->dst),
        LIBSSH2_SFTP_RENAME_OVERWRITE | LIBSSH2_SFTP_RENAME_ATOMIC | LIBSSH2_SFTP_RENAME_NATIVE);

    if (rc == LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    if (rc != 0)
        return call_fail(r, sl, "rename onto", sl->dst);
    return ds__sftp_published(r, sl);
}

/* See sftp_int.h. */
int ds__sftp_step(struct ds__sftp_recv *r, struct sftp_slot *sl, int owned)
{
    if (sl->discard && !owned) { /* failed while its call was half sent */
        sl->discard = 0;
        sl->state = SL_DISCARD;
        sl->start = sl->end = 0;
    }
    if (sl->aborted && !owned && !sl->failed && ds__sftp_has_file(sl) && sl->state != SL_DONE &&
        sl->state != SL_WAIT) {
        int rc = ds__sftp_slot_fail(r, sl, DS_EABORTED, "aborted by the console");

        return rc < 0 ? rc : STEP_MOVED;
    }
    switch (sl->state) {
    case SL_INIT:
        return step_init(r, sl);
    case SL_OPEN:
        return step_open(r, sl);
    case SL_WRITE:
        return step_write(r, sl);
    case SL_FSYNC:
        return step_fsync(r, sl);
    case SL_ATTRS:
        return step_attrs(r, sl);
    case SL_SIZE:
        return step_size(r, sl);
    case SL_CLOSE:
        return step_close(r, sl);
    case SL_WALK:
        return step_walk(r, sl);
    case SL_MKDIR:
        return step_mkdir(r, sl);
    case SL_PUBLISH:
        return step_publish(r, sl);
    case SL_UNLINK:
        return step_unlink(r, sl);
    case SL_RENAME:
        return step_rename(r, sl);
    case SL_MTIME:
        return step_mtime(r, sl);
    case SL_VERIFY:
        return step_verify(r, sl);
    case SL_LEFTOVER:
        return step_leftover(r, sl);
    case SL_DISCARD:
        return step_discard(sl);
    default:
        return STEP_IDLE;
    }
}

/* The slot for a file's frame, else NULL (data for a file that is not
 * open is a protocol violation). */
static struct sftp_slot *slot_of(struct ds__sftp_recv *r, uint32_t file_id)
{
    for (int k = 0; k < r->nslots; k++)
        if (ds__sftp_has_file(&r->slot[k]) && !r->slot[k].ended && r->slot[k].id == file_id)
            return &r->slot[k];
    ds__sftp_errf(&r->fs, "data for file %" PRIu32 ", which is not open", file_id);
    return NULL;
}

/* An idle slot, else NULL with one more channel started if allowed. */
static struct sftp_slot *free_slot(struct ds__sftp_recv *r)
{
    for (int k = 0; k < r->nslots; k++)
        if (r->slot[k].state == SL_IDLE)
            return &r->slot[k];
    for (int k = 0; k < r->nslots; k++)
        if (r->slot[k].state == SL_INIT || r->mvq.opening)
            return NULL; /* one channel starts at a time (libssh2) */
    if (r->nslots < r->max_slots) {
        r->slot[r->nslots++].state = SL_INIT;
        r->kick = 1; /* for the pump */
    }
    return NULL;
}

/* FILE_BEGIN's lease check, stepped: 1, 0, STEP_WAIT (r->waiting: the
 * frame is handled again when the socket is ready) or DS_ETRANSPORT. */
static int lease_now(struct ds__sftp_recv *r)
{
    int rc = ds__sftp_settle(r, 0); /* a half-sent packet goes out first */

    if (rc == 0) {
        rc = ds__sftp_lease_check(r);
        ds__sftp_counts(&r->fs);
    }
    if (rc == STEP_WAIT)
        r->waiting = 1;
    return rc;
}

int ds__sftp_file_begin(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    struct sftp_slot *sl;
    const char *why = NULL;
    size_t cap;
    int valid;

    if ((valid = lease_now(r)) == STEP_WAIT || valid < 0)
        return valid == STEP_WAIT ? DS__SFTP_STALL : valid;
    for (int k = 0; k < r->nslots; k++)
        if (ds__sftp_has_file(&r->slot[k]) && !r->slot[k].ended &&
            r->slot[k].id == m->u.begin.file_id) {
            ds__sftp_errf(&r->fs, "FILE_BEGIN for file %" PRIu32 ", which is open",
                          m->u.begin.file_id);
            return DS_EPROTO;
        }
    if ((sl = free_slot(r)) == NULL)
        return DS__SFTP_STALL;
    cap = m->u.begin.size < SFTP_INFLIGHT ? (size_t)m->u.begin.size : SFTP_INFLIGHT;
    cap = cap < 65536 ? 65536 : cap;
    if (sl->cap < cap) {
        uint8_t *b = realloc(sl->buf, cap);

        if (b == NULL)
            return DS_ENOMEM;
        sl->buf = b;
        sl->cap = cap;
    }
    sl->id = m->u.begin.file_id;
    sl->begin_id = m->id;
    ds__sftp_cstr(m->u.begin.path, sl->path);
    sl->size = m->u.begin.size;
    sl->written = sl->start = sl->end = 0;
    sl->mode = m->u.begin.mode;
    sl->mtime_ns = m->u.begin.mtime_ns;
    sl->ended = sl->aborted = sl->failed = sl->reopened = sl->discard = sl->corrupted = 0;
    sl->err_msg[0] = '\0';
    sl->h = NULL;
    sl->tmp[0] = '\0';
    sl->state = SL_OPEN;
    if (ds_sha256_init(&sl->sha) < 0)
        return DS_ENOMEM;
    if (ds_pathsafe_check(sl->path, &why) < 0)
        return ds__sftp_slot_fail(r, sl, DS_EPATH, "%s", why);
    {
        size_t rl = strlen(r->fs.root), pl = strlen(sl->path); /* both fit: 4095 + 4096 */

        memcpy(sl->dst, r->fs.root, rl);
        sl->dst[rl] = '/';
        memcpy(sl->dst + rl + 1, sl->path, pl + 1);
    }
    if (!valid)
        return ds__sftp_slot_fail(r, sl, DS_ELEASE, "%s", r->lease_msg);
    snprintf(sl->tmp, sizeof(sl->tmp),
             "%s" SFTP_STATE_DIR "/tmp/ds-%016" PRIx64 "-%" PRIu32 ".part", r->fs.root, r->session,
             sl->id);
    return 0;
}

/* LITERAL bytes as sent (decompressed when zstd). Returns 0, DS_ENOMEM, or
 * 1 with the file failed. */
static int literal(struct ds__sftp_recv *r, struct sftp_slot *sl, const ds_msg_t *m,
                   const uint8_t **p, size_t *n)
{
    size_t z;

    *p = m->u.data.data;
    *n = m->u.data.data_len;
    if (m->u.data.comp != DS_PROTO_COMP_ZSTD)
        return 0;
    if (r->zd == NULL && (r->zd = ZSTD_createDCtx()) == NULL)
        return DS_ENOMEM;
    if (r->zbuf == NULL && (r->zbuf = malloc(DS_PROTO_MAX_DATA)) == NULL)
        return DS_ENOMEM;
    z = ZSTD_decompressDCtx(r->zd, r->zbuf, m->u.data.raw_len, *p, *n);
    if (ZSTD_isError(z) || z != m->u.data.raw_len) {
        int rc = ds__sftp_slot_fail(r, sl, DS_ECORRUPT, "LITERAL: bad zstd data");

        return rc < 0 ? rc : 1;
    }
    *p = r->zbuf;
    *n = z;
    return 0;
}

int ds__sftp_file_data(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    struct sftp_slot *sl = slot_of(r, m->u.data.file_id);
    const uint8_t *p;
    size_t n, room;
    int rc;

    if (sl == NULL)
        return DS_EPROTO;
    if (sl->failed)
        return 0;
    room = sl->cap - (sl->end - sl->start);
    if (room < (m->u.data.comp == DS_PROTO_COMP_ZSTD ? m->u.data.raw_len : m->u.data.data_len))
        return DS__SFTP_STALL; /* the pump makes room as writes are acknowledged */
    if ((rc = literal(r, sl, m, &p, &n)) != 0)
        return rc < 0 ? rc : 0;
    if (sl->written + n > sl->size)
        return ds__sftp_slot_fail(r, sl, DS_ETOOBIG, "more bytes than the declared %" PRIu64,
                                  sl->size);
    if (n > sl->cap - sl->end) { /* slide the window back */
        memmove(sl->buf, sl->buf + sl->start, sl->end - sl->start);
        sl->end -= sl->start;
        sl->start = 0;
    }
    ds_sha256_update(&sl->sha, p, n);
    memcpy(sl->buf + sl->end, p, n);
    sl->end += n;
    sl->written += n;
    return 0;
}

int ds__sftp_file_refuse(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    uint32_t id = m->type == DS_MSG_COPY    ? m->u.copy.file_id
                  : m->type == DS_MSG_DELTA ? m->u.data.file_id
                                            : m->u.file.file_id;
    struct sftp_slot *sl = slot_of(r, id);

    if (sl == NULL)
        return DS_EPROTO;
    return ds__sftp_slot_fail(r, sl, DS_EPROTO, "SFTP mode takes whole files (no COPY or DELTA)");
}

/* FILE_COMMIT or FILE_ABORT: the file's reply is due in order. */
int ds__sftp_file_end(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    int commit = m->type == DS_MSG_FILE_COMMIT;
    struct sftp_slot *sl = slot_of(r, commit ? m->u.commit.file_id : m->u.file.file_id);

    if (sl == NULL)
        return DS_EPROTO;
    sl->ended = 1;
    sl->reply_id = m->id;
    sl->seq = r->next_seq++;
    if (sl->failed) {
        if (sl->state == SL_WAIT)
            sl->state = SL_DONE; /* else its tmp file is being removed first */
        return 0;
    }
    if (!commit) {
        sl->aborted = 1;
        return 0;
    }
    ds_sha256_final(&sl->sha, sl->digest);
    if (sl->written != sl->size || m->u.commit.size != sl->size)
        return ds__sftp_slot_fail(r, sl, DS_ECORRUPT,
                                  "%" PRIu64 " bytes received, %" PRIu64 " declared, %" PRIu64
                                  " committed",
                                  sl->written, sl->size, m->u.commit.size);
    if (memcmp(sl->digest, m->u.commit.sha256, DS_SHA256_LEN) != 0)
        return ds__sftp_slot_fail(r, sl, DS_EHASH, "SHA-256 of the bytes received differs");
    return 0;
}

void ds__sftp_slots_free(struct ds__sftp_recv *r, int graceful)
{
    ds__sftp_mvq_free(r, graceful);
    for (int i = 0; i < SFTP_DIRS; i++) {
        free(r->dirs[i]);
        r->dirs[i] = NULL;
    }
    r->ndirs = 0;
    for (int k = 0; k < SFTP_SLOTS; k++) {
        struct sftp_slot *sl = &r->slot[k];

        if (sl->sftp != NULL && graceful)
            libssh2_sftp_shutdown(sl->sftp);
        sl->sftp = NULL;
        if (ds__sftp_has_file(sl))
            ds_sha256_close(&sl->sha);
        if (sl->vhash)
            ds_sha256_close(&sl->vsha);
        sl->vhash = 0;
        free(sl->buf);
        sl->buf = NULL;
        sl->cap = 0;
        sl->state = SL_FREE;
    }
    r->nslots = 0;
}

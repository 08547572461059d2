/*
 * SFTP mode, LIST: a depth-first walk of the server's tree over SFTP
 * (readdir gives lstat attributes: a symlink is listed, never followed),
 * streamed as LIST_DATA frames of at most LIST_CHUNK bytes of entries.
 * Stepped non-blocking: a call that would block returns STEP_WAIT and the
 * walk resumes there (the same call made again) when the socket is ready.
 * Bounded whatever the server holds: one directory handle per level (at
 * most LIST_MAX_DEPTH + 1), one path, one frame. The console caps the
 * listing's total (session.h), so an endless listing ends there.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/pathsafe.h"

#include "sftp_int.h"

#define LIST_CHUNK     (1u << 20)
#define LIST_MAX_DEPTH 64

enum { L_CHECK, L_OPEN, L_READ, L_SUB, L_CLOSE };

struct lwalk {
    int phase;
    LIBSSH2_SFTP_HANDLE *dirs[LIST_MAX_DEPTH + 1];
    size_t plen[LIST_MAX_DEPTH + 1];
    int depth;
    size_t at;                      /* L_CHECK: where the next component of dir starts */
    char dir[DS_PATHSAFE_MAX + 2];  /* the listed directory */
    char path[DS_PATHSAFE_MAX + 2]; /* relative to the root */
    char name[1024];
    char abs[8300]; /* the lstat's or opendir's path while it is under way */
    LIBSSH2_SFTP_ATTRIBUTES a;
    ds_proto_buf_t blob;
    uint32_t n, id;
};

static uint8_t type_of(unsigned long perm)
{
    if (LIBSSH2_SFTP_S_ISREG(perm))
        return DS_PROTO_T_FILE;
    if (LIBSSH2_SFTP_S_ISDIR(perm))
        return DS_PROTO_T_DIR;
    if (LIBSSH2_SFTP_S_ISLNK(perm))
        return DS_PROTO_T_SYMLINK;
    return DS_PROTO_T_OTHER;
}

static int again(struct ds__sftp_fs *fs)
{
    return libssh2_session_last_errno(fs->c.s) == LIBSSH2_ERROR_EAGAIN;
}

/* Opens w->abs as a directory: the handle, or NULL (again(fs) when it
 * would block). */
static LIBSSH2_SFTP_HANDLE *open_dir(struct ds__sftp_fs *fs, struct lwalk *w)
{
    return libssh2_sftp_open_ex(fs->sftp, w->abs, (unsigned)strlen(w->abs), 0, 0,
                                LIBSSH2_SFTP_OPENDIR);
}

/* The entry just read (w->name, w->a) into the blob; a directory's
 * opendir comes next (L_SUB). Returns 0 or DS_ENOMEM. */
static int put(struct ds__sftp_fs *fs, struct lwalk *w, size_t plen, size_t nl)
{
    ds_list_entry_t e;

    if (plen)
        w->path[plen] = '/';
    memcpy(w->path + plen + (plen ? 1 : 0), w->name, nl + 1);
    e.path = ds_pstr(w->path);
    e.type = type_of(w->a.permissions);
    e.size = w->a.flags & LIBSSH2_SFTP_ATTR_SIZE ? w->a.filesize : 0;
    e.mtime_ns = w->a.flags & LIBSSH2_SFTP_ATTR_ACMODTIME ? (int64_t)w->a.mtime * 1000000000 : 0;
    e.mode = (uint32_t)w->a.permissions & 07777;
    if (ds_proto_list_put(&w->blob, &e) < 0)
        return DS_ENOMEM;
    w->n++;
    if (e.type == DS_PROTO_T_DIR && w->depth < LIST_MAX_DEPTH) {
        snprintf(w->abs, sizeof(w->abs), "%s", ds__sftp_abs(fs, 0, w->path));
        w->phase = L_SUB;
    }
    return 0;
}

/* L_SUB: a subdirectory's opendir; one that cannot be opened is listed,
 * not walked. Returns 0 or STEP_WAIT. */
static int sub(struct ds__sftp_fs *fs, struct lwalk *w)
{
    LIBSSH2_SFTP_HANDLE *d = open_dir(fs, w);

    if (d == NULL && again(fs))
        return STEP_WAIT;
    w->phase = L_READ;
    if (d != NULL) {
        w->depth++;
        w->dirs[w->depth] = d;
        w->plen[w->depth] = strlen(w->path);
    }
    return 0;
}

/* Adds the next entry to the blob. Returns 1 at the end, 0, STEP_WAIT or
 * a failure. */
static int next(struct ds__sftp_fs *fs, struct lwalk *w)
{
    for (;;) {
        size_t plen = w->plen[w->depth], nl;
        int r;

        if (w->phase == L_SUB)
            return sub(fs, w);
        if (w->phase == L_CLOSE) {
            if (libssh2_sftp_close_handle(w->dirs[w->depth]) == LIBSSH2_ERROR_EAGAIN)
                return STEP_WAIT;
            w->dirs[w->depth] = NULL;
            w->phase = L_READ;
            if (w->depth == 0)
                return 1;
            w->depth--;
            continue;
        }
        w->path[plen] = '\0';
        r = libssh2_sftp_readdir(w->dirs[w->depth], w->name, sizeof(w->name) - 1, &w->a);
        if (r == LIBSSH2_ERROR_EAGAIN)
            return STEP_WAIT;
        if (r < 0)
            return ds__sftp_fail(fs, "readdir", w->path[0] ? w->path : fs->root);
        if (r == 0) {
            w->phase = L_CLOSE;
            continue;
        }
        nl = (size_t)r;
        w->name[nl] = '\0';
        if (strcmp(w->name, ".") == 0 || strcmp(w->name, "..") == 0 || strchr(w->name, '/'))
            continue;
        if (plen == 0 && strcmp(w->name, DS_STATE_DIR) == 0)
            continue;
        if (plen + nl + 1 > DS_PATHSAFE_MAX || !(w->a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS))
            continue;
        return put(fs, w, plen, nl);
    }
}

/* L_CHECK: the listed directory's every component is a directory, never
 * a symlink, from w->at on. Returns 0, STEP_WAIT or a refusal. */
static int check_start(struct ds__sftp_fs *fs, struct lwalk *w)
{
    for (;;) {
        char *s = strchr(w->dir + w->at, '/');
        int rc;

        if (s != NULL)
            *s = '\0';
        snprintf(w->abs, sizeof(w->abs), "%s", ds__sftp_abs(fs, 1, w->dir));
        if (s != NULL)
            *s = '/';
        rc = ds__sftp_lstat_nb(fs, w->abs, &w->a);
        if (rc == 0 && LIBSSH2_SFTP_S_ISLNK(w->a.permissions)) {
            ds__sftp_errf(fs, "LIST: %s on %s is a symlink: refused", w->abs, fs->u.where);
            rc = DS_ESYMLINK;
        } else if (rc == 0 && !LIBSSH2_SFTP_S_ISDIR(w->a.permissions)) {
            ds__sftp_errf(fs, "LIST: %s on %s is not a directory", w->abs, fs->u.where);
            rc = DS_ENOTREG;
        }
        if (rc != 0 || s == NULL)
            return rc;
        w->at = (size_t)(s - w->dir) + 1;
    }
}

/* Sends the blob as a LIST_DATA frame (more: not the last). */
static int send_chunk(struct lwalk *w, int more, ds__sftp_emit_fn emit, void *ctx)
{
    ds_msg_t m = {.type = DS_MSG_LIST_DATA, .id = w->id, .flags = more ? DS_PROTO_F_MORE : 0};
    int rc;

    m.u.list.n = w->n;
    m.u.list.entries = w->blob.p;
    m.u.list.len = (uint32_t)w->blob.len;
    rc = emit(ctx, &m);
    w->blob.len = 0;
    w->n = 0;
    return rc;
}

/* The walk's calls from w->phase on. Returns 0 (the last frame sent),
 * STEP_WAIT or a failure. */
static int run(struct ds__sftp_fs *fs, struct lwalk *w, ds__sftp_emit_fn emit, void *ctx)
{
    int rc;

    for (;;) {
        if (w->phase == L_CHECK) {
            if ((rc = check_start(fs, w)) != 0)
                return rc;
            w->phase = L_OPEN;
        }
        if (w->phase == L_OPEN) {
            snprintf(w->abs, sizeof(w->abs), "%s", ds__sftp_abs(fs, 0, w->dir));
            if ((w->dirs[0] = open_dir(fs, w)) == NULL)
                return again(fs) ? STEP_WAIT : ds__sftp_fail(fs, "opendir", w->abs);
            snprintf(w->path, sizeof(w->path), "%s", w->dir);
            w->plen[0] = strlen(w->path);
            w->phase = L_READ;
        }
        rc = next(fs, w);
        if (rc == STEP_WAIT || rc < 0)
            return rc;
        if (rc == 1 || w->blob.len >= LIST_CHUNK) {
            int end = rc == 1;

            if ((rc = send_chunk(w, !end, emit, ctx)) < 0 || end)
                return rc;
        }
    }
}

void ds__sftp_list_drop(struct ds__sftp_fs *fs, void **walk)
{
    struct lwalk *w = *walk;

    if (w == NULL)
        return;
    for (int i = 0; i <= w->depth; i++) /* closed by the pump's steps, never waited for */
        ds__sftp_lose(fs, w->dirs[i]);
    ds_proto_buf_free(&w->blob);
    free(w);
    *walk = NULL;
}

int ds__sftp_list_step(struct ds__sftp_fs *fs, void **walk, const char *dir, uint32_t id,
                       ds__sftp_emit_fn emit, void *ctx)
{
    struct lwalk *w = *walk;
    const char *why;
    int rc;

    if (w == NULL) {
        if (*dir && ds_pathsafe_check(dir, &why) < 0) {
            ds__sftp_errf(fs, "LIST %s: %s", dir, why);
            return DS_EPATH;
        }
        if ((w = calloc(1, sizeof(*w))) == NULL)
            return DS_ENOMEM;
        snprintf(w->dir, sizeof(w->dir), "%s", dir);
        w->id = id;
        w->phase = *dir ? L_CHECK : L_OPEN;
        *walk = w;
    }
    rc = run(fs, w, emit, ctx);
    ds__sftp_counts(fs);
    if (rc != STEP_WAIT)
        ds__sftp_list_drop(fs, walk);
    return rc;
}

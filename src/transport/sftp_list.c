/*
 * SFTP mode, LIST: a depth-first walk of the server's tree over SFTP
 * (readdir gives lstat attributes: a symlink is listed, never followed),
 * streamed as LIST_DATA frames of at most LIST_CHUNK bytes of entries.
 * Bounded whatever the server holds: one directory handle per level (at
 * most LIST_MAX_DEPTH + 1), one path, one frame. The console caps the
 * listing's total (session.h), so an endless listing ends there.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/pathsafe.h"

#include "sftp_int.h"

#define LIST_CHUNK     (1u << 20)
#define LIST_MAX_DEPTH 64

struct lwalk {
    LIBSSH2_SFTP_HANDLE *dirs[LIST_MAX_DEPTH + 1];
    size_t plen[LIST_MAX_DEPTH + 1];
    int depth;
    char path[DS_PATHSAFE_MAX + 2]; /* relative to the root */
    char name[1024];
    ds_proto_buf_t blob;
    uint32_t n;
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

static LIBSSH2_SFTP_HANDLE *open_dir(struct ds__sftp_fs *fs, const char *rel)
{
    const char *abs = ds__sftp_abs(fs, 0, rel);

    return libssh2_sftp_open_ex(fs->sftp, abs, (unsigned)strlen(abs), 0, 0, LIBSSH2_SFTP_OPENDIR);
}

/* Adds the next entry to the blob. Returns 1 at the end, 0, or < 0. */
static int next(struct ds__sftp_fs *fs, struct lwalk *w)
{
    for (;;) {
        size_t plen = w->plen[w->depth], nl;
        LIBSSH2_SFTP_ATTRIBUTES a;
        ds_list_entry_t e;
        int r;

        w->path[plen] = '\0';
        r = libssh2_sftp_readdir(w->dirs[w->depth], w->name, sizeof(w->name) - 1, &a);
        if (r < 0)
            return ds__sftp_fail(fs, "readdir", w->path[0] ? w->path : fs->root);
        if (r == 0) {
            libssh2_sftp_close_handle(w->dirs[w->depth]);
            w->dirs[w->depth] = NULL;
            if (w->depth == 0)
                return 1;
            w->depth--;
            continue;
        }
        nl = (size_t)r;
        w->name[nl] = '\0';
        if (strcmp(w->name, ".") == 0 || strcmp(w->name, "..") == 0 || strchr(w->name, '/'))
            continue;
        if (plen == 0 && strcmp(w->name, DS_STATE_DIR) == 0)
            continue;
        if (plen + nl + 1 > DS_PATHSAFE_MAX || !(a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS))
            continue;
        if (plen)
            w->path[plen] = '/';
        memcpy(w->path + plen + (plen ? 1 : 0), w->name, nl + 1);
        e.path = ds_pstr(w->path);
        e.type = type_of(a.permissions);
        e.size = a.flags & LIBSSH2_SFTP_ATTR_SIZE ? a.filesize : 0;
        e.mtime_ns = a.flags & LIBSSH2_SFTP_ATTR_ACMODTIME ? (int64_t)a.mtime * 1000000000 : 0;
        e.mode = (uint32_t)a.permissions & 07777;
        if (ds_proto_list_put(&w->blob, &e) < 0)
            return DS_ENOMEM;
        w->n++;
        if (e.type == DS_PROTO_T_DIR && w->depth < LIST_MAX_DEPTH) {
            LIBSSH2_SFTP_HANDLE *d = open_dir(fs, w->path);

            if (d != NULL) { /* one that cannot be opened is listed, not walked */
                w->depth++;
                w->dirs[w->depth] = d;
                w->plen[w->depth] = strlen(w->path);
            }
        }
        return 0;
    }
}

/* The listed directory: "" (the root), or a path whose every component is
 * a directory, never a symlink. */
static int check_start(struct ds__sftp_fs *fs, const char *dir)
{
    char rel[DS_PATHSAFE_MAX + 2];
    const char *why;

    if (*dir == '\0')
        return 0;
    if (ds_pathsafe_check(dir, &why) < 0) {
        ds__sftp_errf(fs, "LIST %s: %s", dir, why);
        return DS_EPATH;
    }
    snprintf(rel, sizeof(rel), "%s", dir);
    for (char *s = rel;; s++) {
        if (*s == '/' || *s == '\0') {
            LIBSSH2_SFTP_ATTRIBUTES a;
            char c = *s;
            int rc;

            *s = '\0';
            rc = ds__sftp_lstat(fs, ds__sftp_abs(fs, 1, rel), &a);
            *s = c;
            if (rc == 0 && LIBSSH2_SFTP_S_ISLNK(a.permissions))
                rc = DS_ESYMLINK;
            else if (rc == 0 && !LIBSSH2_SFTP_S_ISDIR(a.permissions))
                rc = DS_ENOTREG;
            if (rc < 0)
                return rc;
            if (c == '\0')
                return 0;
        }
    }
}

int ds__sftp_list(struct ds__sftp_fs *fs, const char *dir, uint32_t id, ds__sftp_emit_fn emit,
                  void *ctx)
{
    struct lwalk w = {0};
    int rc = check_start(fs, dir);

    if (rc == 0 && (w.dirs[0] = open_dir(fs, dir)) == NULL)
        rc = ds__sftp_fail(fs, "opendir", ds__sftp_abs(fs, 0, dir));
    if (rc < 0)
        goto out;
    snprintf(w.path, sizeof(w.path), "%s", dir);
    w.plen[0] = strlen(w.path);
    for (;;) {
        ds_msg_t m = {.type = DS_MSG_LIST_DATA, .id = id};

        rc = 0;
        while (rc == 0 && w.blob.len < LIST_CHUNK)
            rc = next(fs, &w);
        if (rc < 0)
            goto out;
        m.flags = rc == 1 ? 0 : DS_PROTO_F_MORE;
        m.u.list.n = w.n;
        m.u.list.entries = w.blob.p;
        m.u.list.len = (uint32_t)w.blob.len;
        rc = emit(ctx, &m);
        w.blob.len = 0;
        w.n = 0;
        if (rc < 0 || !(m.flags & DS_PROTO_F_MORE))
            goto out;
    }
out:
    for (int i = 0; i <= w.depth; i++)
        if (w.dirs[i] != NULL)
            libssh2_sftp_close_handle(w.dirs[i]);
    ds_proto_buf_free(&w.blob);
    ds__sftp_counts(fs);
    return rc;
}

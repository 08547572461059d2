/* Receiver: LIST (walk the target tree, streamed), HASH (one file) and DELETE. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apply_int.h"
#include "distsync/error.h"
#include "distsync/fsutil.h"
#include "distsync/log.h"
#include "distsync/pathsafe.h"

#define LIST_CHUNK     (1u << 20) /* entries bytes per LIST_DATA frame */
#define LIST_MAX_DEPTH 64

/*
 * LIST's reply: a depth-first walk, produced a LIST_DATA frame at a time as
 * the output drains. Its state is bounded whatever the tree holds: one open
 * directory per level (at most LIST_MAX_DEPTH + 1), one path, one frame.
 * A version 4 LIST with a known digest first walks the tree only hashing
 * the entries it would stream (their concatenated encodings): the same
 * digest is answered LIST_SAME, another restarts the walk and streams it.
 */
struct walk {
    struct astream h;
    int hashing;       /* first pass of a LIST with a known digest */
    int startfd;       /* the listed directory, to walk it again; -1 when none */
    const ds_fs_t *fs; /* the receiver's */
    ds_sha256_t sha;
    ds_msg_t known; /* hashing: the request's id, type and known digest */
    ds_fs_dir_t *dirs[LIST_MAX_DEPTH + 1];
    size_t plen[LIST_MAX_DEPTH + 1]; /* length of path at each level */
    int depth;                       /* index of the innermost open directory */
    char path[DS_PATHSAFE_MAX + 2];
    ds_proto_buf_t blob;
    uint32_t n;
};

static void walk_free(struct astream *st)
{
    struct walk *w = (struct walk *)st;

    for (int i = 0; i <= w->depth; i++)
        if (w->dirs[i])
            ds_fs_closedir(w->fs, w->dirs[i]);
    if (w->startfd >= 0)
        ds_fs_close(w->fs, w->startfd);
    ds_sha256_close(&w->sha);
    ds_proto_buf_free(&w->blob);
    free(w);
}

static uint8_t type_of(mode_t mode)
{
    if (S_ISREG(mode))
        return DS_PROTO_T_FILE;
    if (S_ISDIR(mode))
        return DS_PROTO_T_DIR;
    if (S_ISLNK(mode))
        return DS_PROTO_T_SYMLINK;
    return DS_PROTO_T_OTHER;
}

/* Descends into directory name of the innermost level (path holds its
 * path); a directory that cannot be opened is listed but not walked. */
static void walk_enter(struct walk *w, const char *name)
{
    int fd = ds_fs_openat(w->fs, ds_fs_dirfd(w->fs, w->dirs[w->depth]), name,
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
    ds_fs_dir_t *d = fd >= 0 ? ds_fs_fdopendir(w->fs, fd) : NULL;

    if (d == NULL) {
        if (fd >= 0)
            ds_fs_close(w->fs, fd);
        return;
    }
    w->depth++;
    w->dirs[w->depth] = d;
    w->plen[w->depth] = strlen(w->path);
}

/* Adds the next entry of the walk to the blob. Returns 1 when the walk is
 * over, 0 or DS_ENOMEM. */
static int walk_next(struct walk *w)
{
    for (;;) {
        ds_fs_dir_t *d = w->dirs[w->depth];
        size_t plen = w->plen[w->depth], nl;
        struct dirent *de;
        ds_list_entry_t e;
        struct stat st;

        w->path[plen] = '\0';
        de = ds_fs_readdir(w->fs, d);
        if (de == NULL) {
            ds_fs_closedir(w->fs, d);
            w->dirs[w->depth] = NULL;
            if (w->depth == 0)
                return 1;
            w->depth--;
            continue;
        }
        nl = strlen(de->d_name);
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (plen == 0 && strcmp(de->d_name, DS_STATE_DIR) == 0)
            continue;
        if (plen + nl + 1 > DS_PATHSAFE_MAX)
            continue; /* too long to name on the wire */
        if (ds_fs_fstatat(w->fs, ds_fs_dirfd(w->fs, d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue; /* vanished meanwhile */
        if (plen)
            w->path[plen] = '/';
        memcpy(w->path + plen + (plen ? 1 : 0), de->d_name, nl + 1);
        e.path = ds_pstr(w->path);
        e.type = type_of(st.st_mode);
        e.size = (uint64_t)st.st_size;
        e.mtime_ns = ds_timespec_ns(&st.st_mtim);
        e.mode = (uint32_t)st.st_mode & 07777;
        if (ds_proto_list_put(&w->blob, &e) < 0)
            return DS_ENOMEM;
        w->n++;
        if (e.type == DS_PROTO_T_DIR && w->depth < LIST_MAX_DEPTH)
            walk_enter(w, de->d_name);
        return 0;
    }
}

/* Hashing pass: hashes up to LIST_CHUNK bytes of entries. At the end,
 * answers LIST_SAME (returns 1) or starts the streaming pass (0). */
static int walk_hash(ds_apply_t *ap, struct walk *w)
{
    uint8_t sha[DS_SHA256_LEN];
    int rc = 0, fd;

    while (rc == 0 && w->blob.len < LIST_CHUNK)
        rc = walk_next(w);
    if (rc < 0)
        return rc;
    ds_sha256_update(&w->sha, w->blob.p, w->blob.len);
    w->blob.len = 0;
    w->n = 0;
    if (rc == 0)
        return 0;
    ds_sha256_final(&w->sha, sha);
    rc = ds__apply_same(ap, &w->known, sha);
    if (rc != 0)
        return rc;
    w->hashing = 0; /* changed: walk again, streaming */
    fd = ds_fs_dup(ap->fs, w->startfd);
    if (fd < 0 || (w->dirs[0] = ds_fs_fdopendir(ap->fs, fd)) == NULL) {
        rc = -errno;
        if (fd >= 0)
            ds_fs_close(ap->fs, fd);
        return ds__apply_reply_err(ap, w->h.id, rc, w->path, "LIST: cannot open directory") < 0
                   ? DS_ENOMEM
                   : 1;
    }
    ds_fs_rewinddir(ap->fs, w->dirs[0]);
    w->depth = 0;
    w->path[w->plen[0]] = '\0';
    return 0;
}

/* Queues the next LIST_DATA frame (up to LIST_CHUNK bytes of entries). */
static int walk_step(ds_apply_t *ap, struct astream *st)
{
    struct walk *w = (struct walk *)st;
    ds_msg_t m = {.type = DS_MSG_LIST_DATA, .id = st->id};
    int rc = 0;

    if (w->hashing)
        return walk_hash(ap, w);
    while (rc == 0 && w->blob.len < LIST_CHUNK)
        rc = walk_next(w);
    if (rc < 0)
        return rc;
    m.flags = rc == 1 ? 0 : DS_PROTO_F_MORE;
    m.u.list.n = w->n;
    m.u.list.entries = w->blob.p;
    m.u.list.len = (uint32_t)w->blob.len;
    rc = ds__apply_reply_data(ap, &m) < 0 ? DS_ENOMEM : (m.flags ? 0 : 1);
    w->blob.len = 0;
    w->n = 0;
    return rc;
}

int ds__apply_list(ds_apply_t *ap, const ds_msg_t *m)
{
    struct walk *w = calloc(1, sizeof(*w));
    int fd = -1, rc = 0;

    if (w == NULL)
        return DS_ENOMEM;
    w->startfd = -1;
    w->fs = ap->fs;
    if (m->u.path.path.n == 0) {
        fd = ds_fs_openat(ap->fs, ap->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
        rc = fd < 0 ? -errno : 0;
    } else {
        const char *leaf;
        int dir;

        ds__apply_cstr(m->u.path.path, w->path);
        rc = ds_pathsafe_open_parent_fs(ap->fs, ap->rootfd, w->path, 0, &dir, &leaf);
        if (rc == 0) {
            fd =
                ds_fs_openat(ap->fs, dir, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
            rc = fd < 0 ? (errno == ELOOP ? DS_ESYMLINK : -errno) : 0;
            ds_fs_close(ap->fs, dir);
        }
    }
    if (rc == 0 && m->u.path.has_known) {
        w->hashing = 1;
        w->known = *m; /* the digest; its strings are not used */
        w->known.u.path.path = ds_pstr("");
        w->startfd = ds_fs_dup(ap->fs, fd);
        rc = w->startfd < 0 ? -errno : ds_sha256_init(&w->sha);
    }
    if (rc == 0 && (w->dirs[0] = ds_fs_fdopendir(ap->fs, fd)) == NULL)
        rc = -errno;
    if (rc < 0) {
        if (fd >= 0 && w->dirs[0] == NULL)
            ds_fs_close(ap->fs, fd);
        rc = ds__apply_reply_err(ap, m->id, rc, w->path, "LIST: cannot open directory");
        walk_free(&w->h);
        return rc;
    }
    w->plen[0] = strlen(w->path);
    w->h.step = walk_step;
    w->h.free = walk_free;
    w->h.id = m->id;
    ds__apply_stream_start(ap, &w->h);
    return 0;
}

int ds__apply_hash(ds_apply_t *ap, const ds_msg_t *m)
{
    char path[DS_PROTO_STR_MAX + 1];
    ds_msg_t r = {.type = DS_MSG_HASH_OK, .id = m->id};
    struct stat st;
    int fd = -1, rc;

    ds__apply_cstr(m->u.path.path, path);
    rc = ds_pathsafe_open_file_fs(ap->fs, ap->rootfd, path, &fd, &st);
    if (rc == 0)
        rc = ds__apply_hash_fd(ap, fd, r.u.hash_ok.sha256, &r.u.hash_ok.size);
    if (fd >= 0)
        ds_fs_close(ap->fs, fd);
    if (rc < 0)
        return ds__apply_reply_err(ap, m->id, rc, path,
                                   rc == -ENOENT ? "HASH: no such file" : ds_pathsafe_reason(rc));
    r.u.hash_ok.path = m->u.path.path;
    r.u.hash_ok.mtime_ns = ds_timespec_ns(&st.st_mtim);
    ds__apply_scopy_hashed(ap, path, r.u.hash_ok.size, r.u.hash_ok.mtime_ns, r.u.hash_ok.sha256);
    return ds__apply_reply(ap, &r);
}

static int forget(ds_apply_t *ap, const char *path)
{
    if (ds_manifest_remove(ap->man, path) == 0)
        ap->man_dirty = 1;
    return 0;
}

int ds__apply_delete(ds_apply_t *ap, const ds_msg_t *m)
{
    char path[DS_PROTO_STR_MAX + 1];
    ds_msg_t ok = {.type = DS_MSG_OK, .id = m->id};
    const char *leaf, *why = NULL;
    struct stat st;
    int dir = -1, rc;

    ds__apply_cstr(m->u.path.path, path);
    if (ds_pathsafe_check(path, &why) < 0)
        return ds__apply_reply_err(ap, m->id, DS_EPATH, path, why);
    if (!ds__apply_lease_valid(ap))
        return ds__apply_reply_err(ap, m->id, DS_ELEASE, path, ds__apply_lease_why(ap));
    rc = ds_pathsafe_open_parent_fs(ap->fs, ap->rootfd, path, 0, &dir, &leaf);
    if (rc == 0 && ds_fs_fstatat(ap->fs, dir, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
        rc = -errno;
    if (rc < 0 && dir >= 0)
        ds_fs_close(ap->fs, dir);
    if (rc == -ENOENT) {
        forget(ap, path);
        return ds__apply_reply(ap, &ok); /* already gone: value 0 */
    }
    if (rc < 0)
        return ds__apply_reply_err(ap, m->id, rc, path, ds_strerror(rc));
    if (!S_ISREG(st.st_mode)) {
        ds_fs_close(ap->fs, dir);
        return ds__apply_reply_err(ap, m->id, S_ISLNK(st.st_mode) ? DS_ESYMLINK : DS_ENOTREG, path,
                                   "DELETE: not a regular file, left alone");
    }
    if (ds_fs_unlinkat(ap->fs, dir, leaf, 0) < 0) {
        rc = -errno;
        ds_fs_close(ap->fs, dir);
        return ds__apply_reply_err(ap, m->id, rc, path, strerror(-rc));
    }
    if (!ap->opts.no_fsync &&
        ds_fs_fsync(ap->fs, dir) < 0) /* as a commit's rename (apply_file.c) */
        ds_log(DS_LOG_WARN, "%s/%s: directory fsync after the delete: %s", ap->root, path,
               strerror(errno));
    ds_fs_close(ap->fs, dir);
    forget(ap, path);
    ap->stats.deletes++;
    ok.u.ok.value = 1;
    return ds__apply_reply(ap, &ok);
}

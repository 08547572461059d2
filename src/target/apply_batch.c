/*
 * Receiver: commits published in batches. Publishing one file costs two
 * fsyncs (the tmp file before the rename, its directory after), each a
 * device flush; on a real update of many small files (libc6: 285 files)
 * they were most of the agent's time. On a local file system a sealed file
 * (size and SHA-256 verified, mode and mtime set) waits here instead, its
 * reply with it. The batch is published when the receiver has handled all
 * its input (ds_apply_feed), when it is full (APPLY_BATCH), and before any
 * request that could see its files or answer ahead of them (everything but
 * file data, and file data naming a path in the batch). Publishing is
 * syncfs (every tmp file and its inode durable), then each rename in
 * request order (parents created and fsynced as before, the lease checked
 * as before), then syncfs again (the renames durable), then the replies in
 * request order. A batch of one file uses fsync on the file and on its
 * directory, as before; a failed syncfs falls back to one fsync per file
 * and per directory, so an I/O error names its file. The guarantees are
 * those of the one-file path: a reader sees the old file or the new one; a
 * file is durable before its FILE_OK / FILE_DONE; a receiver killed before
 * that leaves only tmp files, removed by the next session, and the console,
 * having no reply, sends the file again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apply_int.h"
#include "distsync/log.h"

int ds__apply_batching(const ds_apply_t *ap)
{
    return ap->fs->ops->can_syncfs;
}

/* 1 when s names a file of the batch. */
static int in_batch(const ds_apply_t *ap, ds_pstr_t s)
{
    for (unsigned i = 0; i < ap->nbatch; i++)
        if (strlen(ap->batch[i].path) == s.n && memcmp(ap->batch[i].path, s.p, s.n) == 0)
            return 1;
    return 0;
}

int ds__apply_batch_blocks(const ds_apply_t *ap, const ds_msg_t *m)
{
    if (ap->nbatch == 0)
        return 0;
    switch (m->type) {
    case DS_MSG_FILE_BEGIN:
        return in_batch(ap, m->u.begin.path);
    case DS_MSG_COPY:
        return in_batch(ap, m->u.copy.basis);
    case DS_MSG_DELTA:
        return in_batch(ap, m->u.data.basis);
    case DS_MSG_LITERAL:
    case DS_MSG_DELTA_END:
    case DS_MSG_FILE_COMMIT:
        return 0;
    case DS_MSG_FILE_ONE:
        return in_batch(ap, m->u.one.path) ||
               (m->u.one.kind == DS_PROTO_ONE_DELTA_FROM && in_batch(ap, m->u.one.basis));
    default:
        return 1;
    }
}

int ds__apply_batch_add(ds_apply_t *ap, struct afile *f, uint32_t id, int64_t mtime,
                        const uint8_t sha256[DS_SHA256_LEN])
{
    struct abatch *b;
    int rc;

    if (ap->batch == NULL && (ap->batch = calloc(APPLY_BATCH, sizeof(*ap->batch))) == NULL)
        return DS_ENOMEM;
    if (ap->nbatch == APPLY_BATCH && (rc = ds__apply_batch_flush(ap)) < 0)
        return rc;
    b = &ap->batch[ap->nbatch++];
    b->fd = f->fd;
    snprintf(b->tmpname, sizeof(b->tmpname), "%s", f->tmpname);
    b->path = f->path;
    b->size = f->size;
    b->mtime = mtime;
    b->id = id;
    b->fid = f->id;
    b->one = ap->one;
    memcpy(b->sha256, sha256, DS_SHA256_LEN);
    f->fd = -1; /* the batch owns the tmp file and the path now */
    f->path = NULL;
    ds__apply_file_release(ap, f);
    return 0;
}

/* Makes the batch's files (dirs: their directories, open) durable: one
 * syncfs for several, else (or when it fails) one fsync each. A file whose
 * fsync fails gets its errno in err[i]; a directory's failure is logged,
 * as on the one-file path. */
static void make_durable(ds_apply_t *ap, unsigned n, const int *dirs, int *err)
{
    if (ap->opts.no_fsync || (n > 1 && syncfs(ap->tmpfd) == 0))
        return;
    for (unsigned i = 0; i < n; i++) {
        struct abatch *b = &ap->batch[i];

        if (dirs == NULL && err[i] == 0 && ds_fs_fsync(ap->fs, b->fd) < 0)
            err[i] = -errno;
        if (dirs != NULL && dirs[i] >= 0 && ds_fs_fsync(ap->fs, dirs[i]) < 0)
            ds_log(DS_LOG_WARN, "%s/%s: directory fsync: %s", ap->root, b->path, strerror(errno));
    }
}

/* Queues b's final reply: FILE_OK / FILE_DONE, or FILE_ERR (code, msg). */
static int reply(ds_apply_t *ap, const struct abatch *b, int code, const char *msg)
{
    ds_msg_t m = {.type = DS_MSG_FILE_ERR, .id = b->id};
    int rc = 0;

    if (code < 0) {
        ap->stats.files_failed++;
        if (!ap->opts.peer_reports)
            ds_log(DS_LOG_WARN, "%s: '%s': %s", ap->root, b->path, msg);
        m.u.err.file_id = b->fid;
        m.u.err.code = code;
        m.u.err.path = ds_pstr(b->path);
        m.u.err.message = ds_pstr(msg);
        return ds__apply_reply(ap, &m);
    }
    rc = ds_manifest_put(ap->man, b->path, b->size, b->mtime, b->sha256);
    ap->man_dirty = 1;
    ap->stats.files_ok++;
    m.type = b->one ? DS_MSG_FILE_DONE : DS_MSG_FILE_OK;
    m.u.file_ok.file_id = b->fid;
    m.u.file_ok.size = b->size;
    m.u.file_ok.mtime_ns = b->mtime;
    memcpy(m.u.file_ok.sha256, b->sha256, DS_SHA256_LEN);
    return rc < 0 ? rc : ds__apply_reply(ap, &m);
}

int ds__apply_batch_flush(ds_apply_t *ap)
{
    unsigned n = ap->nbatch;
    int err[APPLY_BATCH] = {0}, dirs[APPLY_BATCH], rc = 0;
    char msg[APPLY_BATCH][APPLY_ERRMSG];

    if (n == 0)
        return 0;
    make_durable(ap, n, NULL, err);
    for (unsigned i = 0; i < n; i++) {
        struct abatch *b = &ap->batch[i];

        dirs[i] = -1;
        if (err[i] < 0)
            snprintf(msg[i], sizeof(msg[i]), "fsync: %s", strerror(-err[i]));
        else
            err[i] = ds__apply_publish(ap, b->path, b->tmpname, &dirs[i], msg[i], sizeof(msg[i]));
        ds_fs_close(ap->fs, b->fd);
        b->fd = -1;
        if (err[i] < 0)
            ds_fs_unlinkat(ap->fs, ap->tmpfd, b->tmpname, 0);
    }
    make_durable(ap, n, dirs, err);
    for (unsigned i = 0; i < n; i++) {
        if (dirs[i] >= 0)
            ds_fs_close(ap->fs, dirs[i]);
        if (rc == 0)
            rc = reply(ap, &ap->batch[i], err[i], msg[i]);
        free(ap->batch[i].path);
        ap->batch[i].path = NULL;
    }
    ap->nbatch = 0;
    if (rc == 0)
        ds__apply_checkpoint(ap);
    return rc;
}

void ds__apply_batch_free(ds_apply_t *ap)
{
    for (unsigned i = 0; i < ap->nbatch; i++) {
        ds_fs_close(ap->fs, ap->batch[i].fd);
        ds_fs_unlinkat(ap->fs, ap->tmpfd, ap->batch[i].tmpname, 0);
        free(ap->batch[i].path);
    }
    ap->nbatch = 0;
    free(ap->batch);
    ap->batch = NULL;
}

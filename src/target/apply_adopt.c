/*
 * Receiver: ADOPT (protocol version 2). A target file that already holds the
 * wanted bytes but is not in the manifest (the manifest was lost, or the
 * file was there before the first sync) is recorded in place: the receiver
 * re-hashes it, checks size and SHA-256, sets the mtime if asked and adds
 * the manifest entry. The file is never rewritten and keeps its inode.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apply_int.h"
#include "distsync/error.h"
#include "distsync/fsutil.h"
#include "distsync/pathsafe.h"

static int adopt_err(ds_apply_t *ap, const ds_msg_t *m, const char *path, int code, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));

/* The final FILE_ERR (file_id 0) answering the ADOPT. */
static int adopt_err(ds_apply_t *ap, const ds_msg_t *m, const char *path, int code, const char *fmt,
                     ...)
{
    ds_msg_t r = {.type = DS_MSG_FILE_ERR, .id = m->id};
    char msg[APPLY_ERRMSG];
    va_list va;

    va_start(va, fmt);
    vsnprintf(msg, sizeof(msg), fmt, va);
    va_end(va);
    ap->stats.files_failed++;
    r.u.err.code = code;
    r.u.err.path = ds_pstr(path);
    r.u.err.message = ds_pstr(msg);
    return ds__apply_reply(ap, &r);
}

/* See apply_int.h (HASH and the read-back use it too). */
int ds__apply_hash_fd(ds_apply_t *ap, int fd, uint8_t sha[DS_SHA256_LEN], uint64_t *size)
{
    ds_sha256_t h;
    int rc = ds_sha256_init(&h);

    *size = 0;
    while (rc == 0) {
        ssize_t n = ds_fs_read(ap->fs, fd, ap->iobuf, APPLY_IOBUF);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = -errno;
        if (n <= 0)
            break;
        ds_sha256_update(&h, ap->iobuf, (size_t)n);
        *size += (uint64_t)n;
    }
    if (rc < 0) {
        ds_sha256_close(&h);
        return rc;
    }
    ds_sha256_final(&h, sha);
    return 0;
}

static int set_mtime(ds_apply_t *ap, int fd, int64_t mtime_ns)
{
    struct timespec ts[2] = {{0, UTIME_OMIT}, {mtime_ns / 1000000000, mtime_ns % 1000000000}};

    if (ts[1].tv_nsec < 0) {
        ts[1].tv_nsec += 1000000000;
        ts[1].tv_sec--;
    }
    return ds_fs_futimens(ap->fs, fd, ts) < 0 ? -errno : 0;
}

int ds__apply_adopt(ds_apply_t *ap, const ds_msg_t *m)
{
    char path[DS_PROTO_STR_MAX + 1];
    ds_msg_t ok = {.type = DS_MSG_FILE_OK, .id = m->id};
    uint8_t sha[DS_SHA256_LEN];
    struct stat before, after;
    uint64_t size;
    int fd = -1, rc;

    ds__apply_cstr(m->u.adopt.path, path);
    if (!ds__apply_lease_valid(ap))
        return adopt_err(ap, m, path, DS_ELEASE, "ADOPT without a valid lease: %s",
                         ds__apply_lease_why(ap));
    rc = ds_pathsafe_open_file_fs(ap->fs, ap->rootfd, path, &fd, &before);
    if (rc < 0)
        return adopt_err(ap, m, path, rc, "ADOPT: %s",
                         rc == -ENOENT ? "no such file" : ds_pathsafe_reason(rc));
    rc = ds__apply_hash_fd(ap, fd, sha, &size);
    if (rc == 0 && ds_fs_fstat(ap->fs, fd, &after) < 0)
        rc = -errno;
    if (rc < 0) {
        ds_fs_close(ap->fs, fd);
        return adopt_err(ap, m, path, rc, "ADOPT: reading: %s", ds_strerror(rc));
    }
    if (size != m->u.adopt.size || memcmp(sha, m->u.adopt.sha256, DS_SHA256_LEN) != 0 ||
        after.st_size != before.st_size ||
        ds_timespec_ns(&after.st_mtim) != ds_timespec_ns(&before.st_mtim)) {
        ds_fs_close(ap->fs, fd);
        return adopt_err(ap, m, path, DS_EHASH,
                         "ADOPT: the file does not hold the expected bytes (or changed while "
                         "hashed): not adopted");
    }
    if (m->u.adopt.mtime_ns != DS_PROTO_NO_MTIME &&
        (rc = set_mtime(ap, fd, m->u.adopt.mtime_ns)) < 0) {
        ds_fs_close(ap->fs, fd);
        return adopt_err(ap, m, path, rc, "ADOPT: setting mtime: %s", ds_strerror(rc));
    }
    if (ds_fs_fstat(ap->fs, fd, &after) < 0)
        after = before;
    ds_fs_close(ap->fs, fd);
    ok.u.file_ok.size = size;
    ok.u.file_ok.mtime_ns = ds_timespec_ns(&after.st_mtim);
    memcpy(ok.u.file_ok.sha256, sha, DS_SHA256_LEN);
    rc = ds_manifest_put(ap->man, path, size, ok.u.file_ok.mtime_ns, sha);
    if (rc < 0)
        return rc;
    ap->man_dirty = 1;
    ds__apply_checkpoint(ap);
    ap->stats.files_adopted++;
    return ds__apply_reply(ap, &ok);
}

/*
 * Receiver: building one file. FILE_BEGIN opens a tmp file under
 * .distsync/tmp; COPY, LITERAL and DELTA append to it in order while SHA-256
 * is computed; FILE_COMMIT verifies size and hash, fsyncs, renames into place
 * and fsyncs the directory. Any failure fails only this file: an early
 * FILE_ERR is queued, the tmp file removed, later data for it discarded, and
 * the reply to its FILE_COMMIT / FILE_ABORT repeats the error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librsync.h>
#include <zstd.h>

#include "apply_int.h"
#include "distsync/error.h"
#include "distsync/fsutil.h"
#include "distsync/log.h"
#include "distsync/pathsafe.h"
#include "proto/rsjob.h"

#define file_fail   ds__apply_file_fail
#define file_write  ds__apply_file_write
#define in_delta(f) ((f)->job != NULL || (f)->zdec != NULL)

static struct afile *find_file(ds_apply_t *ap, uint32_t id)
{
    for (unsigned i = 0; i < ap->max_open; i++)
        if (ap->files[i].used && ap->files[i].id == id)
            return &ap->files[i];
    return NULL;
}

static void close_basis(struct afile *f)
{
    ds__apply_local_close(f);
    if (f->basis_fd >= 0)
        ds_fs_close(f->fs, f->basis_fd);
    f->basis_fd = -1;
    free(f->basis_name);
    f->basis_name = NULL;
}

static void drop_tmp(ds_apply_t *ap, struct afile *f)
{
    if (f->fd >= 0) {
        ds_fs_close(ap->fs, f->fd);
        f->fd = -1;
        ds_fs_unlinkat(ap->fs, ap->tmpfd, f->tmpname, 0);
    }
    if (f->job)
        rs_job_free(f->job);
    f->job = NULL;
    ds_sha256_close(&f->sha);
    close_basis(f);
}

void ds__apply_file_release(ds_apply_t *ap, struct afile *f)
{
    drop_tmp(ap, f);
    ds__apply_zpatch_free(f); /* not in drop_tmp: a failure may come from inside the decoder */
    free(f->path);
    memset(f, 0, sizeof(*f));
    f->fd = f->basis_fd = -1;
    f->fs = ap->fs;
}

int ds__apply_file_fail(ds_apply_t *ap, struct afile *f, uint32_t id, int code, const char *fmt,
                        ...)
{
    ds_msg_t m = {.type = DS_MSG_FILE_ERR, .id = id};
    va_list va;
    int rc;

    if (f->failed)
        return 0;
    f->failed = 1;
    f->err_code = code;
    va_start(va, fmt);
    vsnprintf(f->err_msg, sizeof(f->err_msg), fmt, va);
    va_end(va);
    drop_tmp(ap, f);
    ap->stats.files_failed++;
    if (!ap->opts.peer_reports)
        ds_log(DS_LOG_WARN, "%s: '%s': %s", ap->root, f->path ? f->path : "?", f->err_msg);
    if (f->in_commit || ap->one)
        return 0; /* the final reply to FILE_COMMIT / FILE_ABORT / FILE_ONE carries it */
    if ((rc = ds__apply_batch_flush(ap)) < 0) /* replies stay in request order */
        return rc;
    m.u.err.file_id = f->id;
    m.u.err.code = code;
    m.u.err.path = ds_pstr(f->path);
    m.u.err.message = ds_pstr(f->err_msg);
    return ds__apply_reply(ap, &m);
}

int ds__apply_file_write(ds_apply_t *ap, struct afile *f, uint32_t id, const uint8_t *p, size_t n)
{
    if (f->pc_len > 0 && ds__apply_scopy_flush(ap, f, id)) /* the copy comes first */
        return 1;
    if (n > f->size - f->written) {
        file_fail(ap, f, id, DS_ETOOBIG, "more data than the declared size %" PRIu64 " bytes",
                  f->size);
        return 1;
    }
    ds_sha256_update(&f->sha, p, n);
    f->written += n;
    ap->stats.bytes_written += n;
    while (n > 0) {
        ssize_t w = ds_fs_write(ap->fs, f->fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;

            file_fail(ap, f, id, -e, "writing %s/.distsync/tmp/%s: %s", ap->root, f->tmpname,
                      strerror(e));
            return 1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Looks up the file a data frame names. A missing id ends the session. */
static int data_file(ds_apply_t *ap, const ds_msg_t *m, uint32_t file_id, struct afile **out)
{
    *out = find_file(ap, file_id);
    if (*out == NULL)
        return ds__apply_fatal(ap, m->id, DS_EPROTO, "%s for file id %u, which is not open",
                               ds_proto_type_name(m->type), file_id);
    return 0;
}

int ds__apply_file_begin(ds_apply_t *ap, const ds_msg_t *m)
{
    char path[DS_PROTO_STR_MAX + 1];
    const char *why = NULL;
    struct afile *f = NULL;
    int rc;

    if (find_file(ap, m->u.begin.file_id) != NULL)
        return ds__apply_fatal(ap, m->id, DS_EPROTO, "FILE_BEGIN reuses open file id %u",
                               m->u.begin.file_id);
    for (unsigned i = 0; i < ap->max_open && f == NULL; i++)
        if (!ap->files[i].used)
            f = &ap->files[i];
    if (f == NULL)
        return ds__apply_fatal(ap, m->id, DS_ETOOBIG,
                               "more than %u files open at once (HELLO_OK max_open_files)",
                               ap->max_open);
    ds__apply_cstr(m->u.begin.path, path);
    f->used = 1;
    f->fs = ap->fs;
    f->id = m->u.begin.file_id;
    f->path = strdup(path);
    if (f->path == NULL)
        return DS_ENOMEM;
    f->size = m->u.begin.size;
    f->mode = m->u.begin.mode;
    f->mtime_ns = m->u.begin.mtime_ns;
    if (ds_pathsafe_check(path, &why) < 0)
        return file_fail(ap, f, m->id, DS_EPATH, "refusing unsafe path: %s", why);
    if (!ds__apply_lease_fresh(ap))
        return file_fail(ap, f, m->id, DS_ELEASE, "FILE_BEGIN without a valid lease: %s",
                         ds__apply_lease_why(ap));
    if (f->size > DS_PROTO_MAX_FILE)
        return file_fail(ap, f, m->id, DS_ETOOBIG, "declared size %" PRIu64 " over the limit",
                         f->size);
    if (ds_sha256_init(&f->sha) < 0)
        return DS_ENOMEM;
    snprintf(f->tmpname, sizeof(f->tmpname), APPLY_TMP_PFX "%08x-%u" APPLY_TMP_SFX, ap->session,
             ++ap->tmp_seq); /* unique: a batched file keeps its tmp name until published */
    rc = ds_pathsafe_create_tmp_fs(ap->fs, ap->tmpfd, f->tmpname, 0600, &f->fd);
    if (rc < 0)
        return file_fail(ap, f, m->id, rc, "cannot create %s/.distsync/tmp/%s: %s", ap->root,
                         f->tmpname, ds_strerror(rc));
    return 0;
}

/* Opens (or reuses) the basis file named by s for f. Returns 0 or 1 (failed). */
static int open_basis(ds_apply_t *ap, struct afile *f, uint32_t id, ds_pstr_t s)
{
    char name[DS_PROTO_STR_MAX + 1];
    struct stat st;
    int rc;

    ds__apply_cstr(s, name);
    if (f->basis_name && strcmp(f->basis_name, name) == 0)
        return 0;
    close_basis(f);
    rc = ds_pathsafe_open_file_fs(ap->fs, ap->rootfd, name, &f->basis_fd, &st);
    if (rc < 0) {
        file_fail(ap, f, id, rc, "basis '%s': %s", name,
                  rc == -ENOENT ? "no such file" : ds_pathsafe_reason(rc));
        return 1;
    }
    f->basis_name = strdup(name);
    if (f->basis_name == NULL) {
        file_fail(ap, f, id, DS_ENOMEM, "out of memory");
        return 1;
    }
    f->basis_size = (uint64_t)st.st_size;
    ds__apply_scopy_trust(ap, f, name, &st);
    return 0;
}

int ds__apply_file_copy(ds_apply_t *ap, const ds_msg_t *m)
{
    struct afile *f;
    uint64_t off = m->u.copy.offset, len = m->u.copy.length;
    int rc = data_file(ap, m, m->u.copy.file_id, &f);

    if (rc < 0 || f->failed)
        return rc;
    if (in_delta(f))
        return file_fail(ap, f, m->id, DS_EPROTO, "COPY inside an unfinished DELTA");
    if (open_basis(ap, f, m->id, m->u.copy.basis))
        return 0;
    if (off > f->basis_size || len > f->basis_size - off)
        return file_fail(ap, f, m->id, DS_ERANGE,
                         "COPY range %" PRIu64 "+%" PRIu64 " outside basis '%s' (%" PRIu64
                         " bytes)",
                         off, len, f->basis_name, f->basis_size);
    if (len > f->size - f->written)
        return file_fail(ap, f, m->id, DS_ETOOBIG, "COPY past the declared size");
    if (len > 0 && ds__apply_scopy_add(ap, f, m->id, off, len) <= 0)
        return 0; /* copied on the server (or f failed) */
    while (len > 0) {
        size_t n = len > APPLY_IOBUF ? APPLY_IOBUF : (size_t)len;
        ssize_t r = ds_fs_pread(ap->fs, f->basis_fd, ap->iobuf, n, (off_t)off);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return file_fail(ap, f, m->id, r < 0 ? -errno : DS_ECHANGED,
                             "reading basis '%s' at %" PRIu64 ": %s", f->basis_name, off,
                             r < 0 ? strerror(errno) : "file shrank");
        if (file_write(ap, f, m->id, ap->iobuf, (size_t)r))
            return 0;
        ap->stats.bytes_copied += (uint64_t)r;
        off += (uint64_t)r;
        len -= (uint64_t)r;
    }
    return 0;
}

/* Decompresses a LITERAL/DELTA payload if needed. Returns 0 or 1 (failed). */
static int unpack(ds_apply_t *ap, struct afile *f, const ds_msg_t *m, const uint8_t **p, size_t *n)
{
    size_t r;

    *p = m->u.data.data;
    *n = m->u.data.data_len;
    if (m->u.data.comp == DS_PROTO_COMP_NONE)
        return 0;
    if (ap->zbuf == NULL)
        ap->zbuf = malloc(DS_PROTO_MAX_DATA);
    if (ap->zctx == NULL)
        ap->zctx = ZSTD_createDCtx();
    if (ap->zbuf == NULL || ap->zctx == NULL) {
        file_fail(ap, f, m->id, DS_ENOMEM, "out of memory for zstd");
        return 1;
    }
    r = ZSTD_decompressDCtx(ap->zctx, ap->zbuf, m->u.data.raw_len, *p, *n);
    if (ZSTD_isError(r) || r != m->u.data.raw_len) {
        file_fail(ap, f, m->id, DS_ECORRUPT, "bad zstd data in %s: %s", ds_proto_type_name(m->type),
                  ZSTD_isError(r) ? ZSTD_getErrorName(r) : "wrong decompressed length");
        return 1;
    }
    *p = ap->zbuf;
    *n = r;
    return 0;
}

static rs_result copy_cb(void *arg, rs_long_t pos, size_t *len, void **buf)
{
    struct afile *f = arg;
    size_t n = *len;
    ssize_t r;

    if (pos < 0 || (uint64_t)pos >= f->basis_size)
        return RS_INPUT_ENDED;
    if (n > f->basis_size - (uint64_t)pos)
        n = (size_t)(f->basis_size - (uint64_t)pos);
    do
        r = ds_fs_pread(f->fs, f->basis_fd, *buf, n, (off_t)pos);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        return r < 0 ? RS_IO_ERROR : RS_INPUT_ENDED;
    *len = (size_t)r;
    return RS_DONE;
}

/* Runs the patch job over n input bytes (eof: no more input). 0 or 1 (failed). */
static int run_job(ds_apply_t *ap, struct afile *f, uint32_t id, const uint8_t *p, size_t n,
                   int eof)
{
    rs_buffers_t b = {.next_in = (char *)p, .avail_in = n, .eof_in = eof};

    for (;;) {
        size_t out;
        int rc = ds__rsjob_pump(f->job, &b, ap->iobuf, APPLY_IOBUF, &out);

        if (out && file_write(ap, f, id, ap->iobuf, out))
            return 1;
        if (rc == 1) {
            f->delta_done = 1;
            if (b.avail_in > 0) {
                file_fail(ap, f, id, DS_EDELTA, "data after the end of the delta stream");
                return 1;
            }
            return 0;
        }
        if (rc < 0) {
            file_fail(ap, f, id, DS_EDELTA, "%s against basis '%s'",
                      rc == DS_ECORRUPT ? "delta stream truncated" : "corrupt delta",
                      f->basis_name);
            return 1;
        }
        if (b.avail_in == 0 && !eof)
            return 0; /* needs more input */
    }
}

int ds__apply_file_data(ds_apply_t *ap, const ds_msg_t *m)
{
    struct afile *f;
    const uint8_t *p;
    size_t n;
    int rc = data_file(ap, m, m->u.data.file_id, &f);

    if (rc < 0 || f->failed)
        return rc;
    if (m->type == DS_MSG_LITERAL && in_delta(f))
        return file_fail(ap, f, m->id, DS_EPROTO, "LITERAL inside an unfinished DELTA");
    if (m->type == DS_MSG_DELTA && in_delta(f)) {
        char name[DS_PROTO_STR_MAX + 1];

        ds__apply_cstr(m->u.data.basis, name);
        if (strcmp(name, f->basis_name) != 0)
            return file_fail(ap, f, m->id, DS_EPROTO, "DELTA basis changed mid-stream");
        if (f->delta_done)
            return file_fail(ap, f, m->id, DS_EDELTA, "data after the end of the delta stream");
    }
    if (unpack(ap, f, m, &p, &n))
        return 0;
    if (m->type == DS_MSG_LITERAL) {
        if (file_write(ap, f, m->id, p, n) == 0)
            ap->stats.bytes_literal += n;
        return 0;
    }
    if (f->zdec != NULL) {
        ap->stats.bytes_delta += n;
        (void)ds__apply_zpatch_feed(ap, f, m->id, p, n); /* 1: the file failed, FILE_ERR queued */
        return 0;
    }
    if (f->job == NULL) {
        if (open_basis(ap, f, m->id, m->u.data.basis))
            return 0;
        if (ds__apply_zpatch_sniff(ap, p, n)) {
            if (ds__apply_zpatch_begin(ap, f, m->id) == 0) {
                ap->stats.bytes_delta += n;
                (void)ds__apply_zpatch_feed(ap, f, m->id, p, n); /* as above */
            }
            return 0;
        }
        f->job = rs_patch_begin(copy_cb, f);
        f->delta_done = 0;
        if (f->job == NULL)
            return file_fail(ap, f, m->id, DS_ENOMEM, "cannot start a librsync patch");
    }
    ap->stats.bytes_delta += n;
    run_job(ap, f, m->id, p, n, 0);
    return 0;
}

int ds__apply_file_delta_end(ds_apply_t *ap, const ds_msg_t *m)
{
    struct afile *f;
    int rc = data_file(ap, m, m->u.file.file_id, &f);

    if (rc < 0 || f->failed)
        return rc;
    if (f->zdec != NULL)
        return (void)ds__apply_zpatch_end(ap, f, m->id), 0; /* 1: FILE_ERR queued */
    if (f->job == NULL)
        return file_fail(ap, f, m->id, DS_EPROTO, "DELTA_END without DELTA");
    if (!f->delta_done && run_job(ap, f, m->id, NULL, 0, 1))
        return 0;
    if (!f->delta_done)
        return file_fail(ap, f, m->id, DS_EDELTA, "delta stream truncated");
    rs_job_free(f->job);
    f->job = NULL;
    return 0;
}

static int reply_final_err(ds_apply_t *ap, struct afile *f, uint32_t id)
{
    ds_msg_t m = {.type = DS_MSG_FILE_ERR, .id = id};
    int rc = ds__apply_batch_flush(ap); /* the replies of earlier commits go first */

    if (rc < 0)
        return rc;

    m.u.err.file_id = f->id;
    m.u.err.code = f->err_code;
    m.u.err.path = ds_pstr(f->path);
    m.u.err.message = ds_pstr(f->err_msg);
    rc = ds__apply_reply(ap, &m);
    ds__apply_file_release(ap, f);
    return rc;
}

/* Verifies and finishes the tmp file. Returns 0 or 1 (failed). */
static int seal(ds_apply_t *ap, struct afile *f, const ds_msg_t *m, int64_t *mtime)
{
    uint8_t sum[DS_SHA256_LEN];
    char got[2 * DS_SHA256_LEN + 1], want[2 * DS_SHA256_LEN + 1];
    struct stat st;

    if (in_delta(f))
        return file_fail(ap, f, m->id, DS_EPROTO, "FILE_COMMIT inside an unfinished DELTA"), 1;
    if (ds__apply_scopy_flush(ap, f, m->id))
        return 1;
    if (f->written != f->size || m->u.commit.size != f->size)
        return file_fail(ap, f, m->id, DS_ECORRUPT,
                         "size mismatch: received %" PRIu64 " bytes, declared %" PRIu64
                         ", commit says %" PRIu64,
                         f->written, f->size, m->u.commit.size),
               1;
    ds_sha256_final(&f->sha, sum);
    if (f->spliced && f->unhashed) /* server-side copies (apply_scopy.c, apply_local.c) */
        ap->stats.files_size_only++;
    else if (f->spliced)
        ap->stats.files_local_hashed++;
    if (!f->unhashed && memcmp(sum, m->u.commit.sha256, DS_SHA256_LEN) != 0) {
        ds_hex(sum, DS_SHA256_LEN, got);
        ds_hex(m->u.commit.sha256, DS_SHA256_LEN, want);
        return file_fail(ap, f, m->id, DS_EHASH, "SHA-256 mismatch%s: built %s, expected %s",
                         f->spliced ? " (computed from the console's copy of the basis and the "
                                      "delta; not published)"
                                    : "",
                         got, want),
               1;
    }
    if (f->spliced && ds__apply_scopy_verify(ap, f, m->id, m->u.commit.sha256))
        return 1;
    if (ds_fs_fchmod(ap->fs, f->fd, (f->mode & 0777) ? (f->mode & 0777) : 0644) < 0)
        return file_fail(ap, f, m->id, -errno, "chmod: %s", strerror(errno)), 1;
    if (f->mtime_ns != DS_PROTO_NO_MTIME) {
        struct timespec ts[2] = {{0, UTIME_OMIT}, {f->mtime_ns / 1000000000, 0}};

        ts[1].tv_nsec = f->mtime_ns % 1000000000;
        if (ts[1].tv_nsec < 0) {
            ts[1].tv_nsec += 1000000000;
            ts[1].tv_sec--;
        }
        if (ds_fs_futimens(ap->fs, f->fd, ts) < 0)
            return file_fail(ap, f, m->id, -errno, "setting mtime: %s", strerror(errno)), 1;
    }
    if (!ap->opts.no_fsync && !ds__apply_batching(ap) && ds_fs_fsync(ap->fs, f->fd) < 0)
        return file_fail(ap, f, m->id, -errno, "fsync: %s", strerror(errno)), 1;
    if (ds_fs_fstat(ap->fs, f->fd, &st) < 0)
        return file_fail(ap, f, m->id, -errno, "fstat: %s", strerror(errno)), 1;
    *mtime = ds_timespec_ns(&st.st_mtim);
    return 0;
}

int ds__apply_publish(ds_apply_t *ap, const char *path, const char *tmpname, int *dirfd, char *msg,
                      size_t cap)
{
    const char *leaf;
    struct stat st;
    int dir = -1, rc = ds_pathsafe_open_parent_fs(
                      ap->fs, ap->rootfd, path,
                      DS_PATHSAFE_CREATE | (ap->opts.no_fsync ? 0 : DS_PATHSAFE_SYNC), &dir, &leaf);

    *dirfd = -1;
    if (rc < 0) {
        snprintf(msg, cap, "cannot create the parent directory of %s/%s: %s", ap->root, path,
                 ds_strerror(rc));
        return rc;
    }
    if (ds_fs_fstatat(ap->fs, dir, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(msg, cap, "destination is a %s: refusing to replace it",
                 S_ISLNK(st.st_mode)   ? "symbolic link"
                 : S_ISDIR(st.st_mode) ? "directory"
                                       : "device, FIFO or socket");
        ds_fs_close(ap->fs, dir);
        return S_ISLNK(st.st_mode) ? DS_ESYMLINK : DS_ENOTREG;
    }
    if (!ds__apply_lease_publish(ap)) { /* taken over while this file was sealed */
        ds_fs_close(ap->fs, dir);
        snprintf(msg, cap, "not published: %s", ds__apply_lease_why(ap));
        return DS_ELEASE;
    }
    if (ds_fs_renameat(ap->fs, ap->tmpfd, tmpname, dir, leaf) < 0) {
        rc = -errno;
        ds_fs_close(ap->fs, dir);
        snprintf(msg, cap, "rename into place: %s", strerror(-rc));
        return rc;
    }
    *dirfd = dir;
    return 0;
}

/* Renames the sealed tmp file over the destination and makes the rename
 * durable. Returns 0 or 1 (failed). */
static int publish(ds_apply_t *ap, struct afile *f, uint32_t id)
{
    char msg[APPLY_ERRMSG];
    int dir, rc = ds__apply_publish(ap, f->path, f->tmpname, &dir, msg, sizeof(msg));

    if (rc < 0)
        return file_fail(ap, f, id, rc, "%s", msg), 1;
    ds_fs_close(ap->fs, f->fd);
    f->fd = -1; /* published: nothing to unlink any more */
    if (!ap->opts.no_fsync && ds_fs_fsync(ap->fs, dir) < 0)
        ds_log(DS_LOG_WARN, "%s/%s: directory fsync: %s", ap->root, f->path, strerror(errno));
    ds_fs_close(ap->fs, dir);
    return 0;
}

int ds__apply_file_commit(ds_apply_t *ap, const ds_msg_t *m)
{
    ds_msg_t ok = {.type = DS_MSG_FILE_OK, .id = m->id};
    struct afile *f;
    int64_t mtime = 0;
    int rc = data_file(ap, m, m->u.commit.file_id, &f);

    if (rc < 0)
        return rc;
    f->in_commit = 1;
    if (!f->failed && !ds__apply_lease_fresh(ap))
        file_fail(ap, f, m->id, DS_ELEASE, "no valid lease at FILE_COMMIT: %s",
                  ds__apply_lease_why(ap));
    if (f->failed || seal(ap, f, m, &mtime))
        return reply_final_err(ap, f, m->id);
    if (ds__apply_batching(ap))
        return ds__apply_batch_add(ap, f, m->id, mtime, m->u.commit.sha256);
    if (publish(ap, f, m->id))
        return reply_final_err(ap, f, m->id);
    rc = ds_manifest_put(ap->man, f->path, f->size, mtime, m->u.commit.sha256);
    ap->man_dirty = 1;
    if (rc == 0)
        ds__apply_checkpoint(ap);
    ap->stats.files_ok++;
    ok.u.file_ok.file_id = f->id;
    ok.u.file_ok.size = f->size;
    ok.u.file_ok.mtime_ns = mtime;
    if (ap->one) /* FILE_ONE: the console knows the size and SHA-256 it sent */
        ok.type = DS_MSG_FILE_DONE;
    memcpy(ok.u.file_ok.sha256, m->u.commit.sha256, DS_SHA256_LEN);
    ds__apply_file_release(ap, f);
    return rc < 0 ? rc : ds__apply_reply(ap, &ok);
}

int ds__apply_file_abort(ds_apply_t *ap, const ds_msg_t *m)
{
    struct afile *f;
    int rc = data_file(ap, m, m->u.file.file_id, &f);

    if (rc < 0)
        return rc;
    f->in_commit = 1;
    if (!f->failed)
        file_fail(ap, f, m->id, DS_EABORTED, "aborted by the console");
    return reply_final_err(ap, f, m->id);
}

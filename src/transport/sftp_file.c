/*
 * SFTP mode, files: one file at a time is written whole to
 * .distsync/tmp/ds-<session>-<id>.part in a deep write pipeline, checked
 * (bytes received against the declared size and SHA-256; on the server its
 * size, and with verify = readback its SHA-256 read back), then moved into
 * place (sftp_fs.c: rename, mv -f, or unlink + rename) once the lease still
 * names this session and every parent directory is checked not to be a
 * symlink. Also ADOPT, HASH and DELETE, with the same path checks.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "distsync/error.h"
#include "distsync/pathsafe.h"

#include "sftp_int.h"

/* Fails the open file once: tmp removed, an early FILE_ERR (id of the
 * failing frame) queued. */
static int fail_file(struct ds__sftp_recv *r, uint32_t id, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_file(struct ds__sftp_recv *r, uint32_t id, int code, const char *fmt, ...)
{
    struct sftp_file *f = &r->f;
    ds_msg_t m = {.type = DS_MSG_FILE_ERR, .id = id};
    va_list va;

    if (f->failed)
        return 0;
    va_start(va, fmt);
    vsnprintf(f->err_msg, sizeof(f->err_msg), fmt, va);
    va_end(va);
    f->failed = 1;
    f->err_code = code;
    ds__sftp_put_close(&r->fs, &f->put);
    if (f->tmp[0])
        libssh2_sftp_unlink_ex(r->fs.sftp, f->tmp, (unsigned)strlen(f->tmp));
    f->tmp[0] = '\0';
    m.u.err.file_id = f->id;
    m.u.err.code = code;
    m.u.err.path = ds_pstr(f->path);
    m.u.err.message = ds_pstr(f->err_msg);
    return ds__sftp_reply(r, &m);
}

void ds__sftp_file_drop(struct ds__sftp_recv *r)
{
    struct sftp_file *f = &r->f;

    if (!f->used)
        return;
    ds__sftp_put_close(&r->fs, &f->put);
    if (f->tmp[0] && r->fs.sftp != NULL)
        libssh2_sftp_unlink_ex(r->fs.sftp, f->tmp, (unsigned)strlen(f->tmp));
    ds_sha256_close(&f->sha);
    f->used = f->failed = 0;
    f->tmp[0] = '\0';
}

/* The final reply of a failed file (to its COMMIT or ABORT). */
static int final_err(struct ds__sftp_recv *r, uint32_t id, int code, const char *msg)
{
    ds_msg_t m = {.type = DS_MSG_FILE_ERR, .id = id};
    int rc;

    m.u.err.file_id = r->f.id;
    m.u.err.code = code;
    m.u.err.path = ds_pstr(r->f.path);
    m.u.err.message = ds_pstr(msg);
    rc = ds__sftp_reply(r, &m);
    ds__sftp_file_drop(r);
    return rc;
}

/* The open file for file_id, else NULL with the session ended (data for
 * a file that is not open is a protocol violation). */
static struct sftp_file *file_of(struct ds__sftp_recv *r, uint32_t file_id)
{
    if (r->f.used && r->f.id == file_id)
        return &r->f;
    ds__sftp_errf(&r->fs, "data for file %" PRIu32 ", which is not open", file_id);
    return NULL;
}

/* A transport failure ends the session; any other fails the file. */
static int io_fail(struct ds__sftp_recv *r, uint32_t id, int rc)
{
    if (rc == DS_ETRANSPORT || rc == DS_ENOMEM)
        return rc;
    return fail_file(r, id, rc, "%s", r->fs.err[0] ? r->fs.err : ds_strerror(rc));
}

int ds__sftp_file_begin(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    struct sftp_file *f = &r->f;
    const char *why = NULL;
    int rc;

    if (f->used) {
        ds__sftp_errf(&r->fs,
                      "FILE_BEGIN while another file is open (SFTP mode takes one file at a time)");
        return DS_EPROTO;
    }
    {
        struct sftp_put keep = f->put; /* its buffer is reused */

        memset(f, 0, sizeof(*f));
        f->put = keep;
    }
    f->used = 1;
    f->id = m->u.begin.file_id;
    ds__sftp_cstr(m->u.begin.path, f->path);
    f->size = m->u.begin.size;
    f->mode = m->u.begin.mode;
    f->mtime_ns = m->u.begin.mtime_ns;
    if (ds_sha256_init(&f->sha) < 0)
        return DS_ENOMEM;
    if (ds_pathsafe_check(f->path, &why) < 0)
        return fail_file(r, m->id, DS_EPATH, "%s", why);
    if (!ds__sftp_lease_valid(r))
        return fail_file(r, m->id, DS_ELEASE, "%s", r->lease_msg);
    snprintf(f->tmp, sizeof(f->tmp), "%s" SFTP_STATE_DIR "/tmp/ds-%016" PRIx64 "-%" PRIu32 ".part",
             r->fs.root, r->session, f->id);
    rc = ds__sftp_put_open(&r->fs, &f->put, f->tmp);
    if (rc == -EEXIST || rc == -EIO) { /* a leftover of ours */
        libssh2_sftp_unlink_ex(r->fs.sftp, f->tmp, (unsigned)strlen(f->tmp));
        rc = ds__sftp_put_open(&r->fs, &f->put, f->tmp);
    }
    if (rc < 0) {
        f->tmp[0] = '\0';
        return io_fail(r, m->id, rc);
    }
    return 0;
}

int ds__sftp_file_data(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    struct sftp_file *f = file_of(r, m->u.data.file_id);
    const uint8_t *p = m->u.data.data;
    size_t n = m->u.data.data_len;
    int rc;

    if (f == NULL)
        return DS_EPROTO;
    if (f->failed)
        return 0;
    if (m->u.data.comp == DS_PROTO_COMP_ZSTD) {
        size_t z;

        if (r->zd == NULL && (r->zd = ZSTD_createDCtx()) == NULL)
            return DS_ENOMEM;
        if (r->zbuf == NULL && (r->zbuf = malloc(DS_PROTO_MAX_DATA)) == NULL)
            return DS_ENOMEM;
        z = ZSTD_decompressDCtx(r->zd, r->zbuf, m->u.data.raw_len, p, n);
        if (ZSTD_isError(z) || z != m->u.data.raw_len)
            return fail_file(r, m->id, DS_ECORRUPT, "LITERAL: bad zstd data");
        p = r->zbuf;
        n = z;
    }
    if (f->written + n > f->size)
        return fail_file(r, m->id, DS_ETOOBIG, "more bytes than the declared %" PRIu64, f->size);
    ds_sha256_update(&f->sha, p, n);
    rc = ds__sftp_put_write(&r->fs, &f->put, p, n);
    if (rc < 0)
        return io_fail(r, m->id, rc);
    f->written += n;
    return 0;
}

int ds__sftp_file_refuse(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    uint32_t id = m->type == DS_MSG_COPY    ? m->u.copy.file_id
                  : m->type == DS_MSG_DELTA ? m->u.data.file_id
                                            : m->u.file.file_id;

    if (file_of(r, id) == NULL)
        return DS_EPROTO;
    return fail_file(r, m->id, DS_EPROTO, "SFTP mode takes whole files (no COPY or DELTA)");
}

/* Test hook (DISTSYNC_TEST_SFTP_CORRUPT=PATH in a DS_TEST_HOOKS build): flips the first byte of
 * that file's upload after it was sent, so that verify = readback has something to catch. */
static void corrupt(struct ds__sftp_recv *r, struct sftp_file *f)
{
    char c;

    if (r->corrupt == NULL || strcmp(r->corrupt, f->path) != 0 || f->size == 0)
        return;
    libssh2_sftp_seek64(f->put.h, 0);
    c = (char)0xff;
    libssh2_sftp_write(f->put.h, &c, 1);
}

/* Mode (0 means 0644; no set-id or sticky bit) and mtime on the tmp file. */
static int set_attrs(struct ds__sftp_recv *r, struct sftp_file *f)
{
    LIBSSH2_SFTP_ATTRIBUTES a = {.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS};

    a.permissions = f->mode & 0777 ? f->mode & 0777 : 0644;
    if (f->mtime_ns != DS_PROTO_NO_MTIME) {
        a.flags |= LIBSSH2_SFTP_ATTR_ACMODTIME;
        a.atime = a.mtime = (unsigned long)(f->mtime_ns / 1000000000);
    }
    if (libssh2_sftp_fsetstat(f->put.h, &a) != 0)
        return ds__sftp_fail(&r->fs, "setstat", f->tmp);
    return 0;
}

/* What the server holds in the tmp file: its size, and with readback its
 * SHA-256. */
static int verify(struct ds__sftp_recv *r, struct sftp_file *f, const uint8_t sha[DS_SHA256_LEN])
{
    LIBSSH2_SFTP_ATTRIBUTES a;
    uint8_t got[DS_SHA256_LEN];
    uint64_t size;
    int rc = ds__sftp_lstat(&r->fs, f->tmp, &a);

    if (rc < 0)
        return rc;
    if (!(a.flags & LIBSSH2_SFTP_ATTR_SIZE) || a.filesize != f->size) {
        ds__sftp_errf(&r->fs, "%s holds %llu bytes on %s, %" PRIu64 " were sent", f->tmp,
                      (unsigned long long)a.filesize, r->fs.u.where, f->size);
        return DS_ECORRUPT;
    }
    if (!r->fs.readback)
        return 0;
    rc = ds__sftp_hash(&r->fs, f->tmp, got, &size);
    if (rc == 0 && (size != f->size || memcmp(got, sha, DS_SHA256_LEN) != 0)) {
        ds__sftp_errf(&r->fs, "verify = readback: %s read back from %s does not hash as sent",
                      f->path, r->fs.u.where);
        rc = DS_EHASH;
    }
    return rc;
}

/* Moves the verified tmp file into place and records it. */
static int publish(struct ds__sftp_recv *r, struct sftp_file *f, const uint8_t sha[DS_SHA256_LEN],
                   int64_t *mtime_ns)
{
    LIBSSH2_SFTP_ATTRIBUTES a;
    int present, rc = ds__sftp_walk(&r->fs, f->path, 1, &present, &a);

    if (rc < 0)
        return rc;
    if (!ds__sftp_lease_valid(r)) {
        ds__sftp_errf(&r->fs, "%s", r->lease_msg);
        return DS_ELEASE;
    }
    rc = ds__sftp_replace(&r->fs, f->tmp, ds__sftp_abs(&r->fs, 0, f->path));
    if (rc < 0)
        return rc;
    f->tmp[0] = '\0';
    if (f->mtime_ns != DS_PROTO_NO_MTIME)
        *mtime_ns = f->mtime_ns / 1000000000 * 1000000000;
    else if (ds__sftp_lstat(&r->fs, ds__sftp_abs(&r->fs, 0, f->path), &a) == 0)
        *mtime_ns = (int64_t)a.mtime * 1000000000;
    rc = ds_manifest_put(r->man, f->path, f->size, *mtime_ns, sha);
    r->man_dirty = 1;
    return rc;
}

int ds__sftp_file_commit(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    struct sftp_file *f = file_of(r, m->u.commit.file_id);
    ds_msg_t ok = {.type = DS_MSG_FILE_OK, .id = m->id};
    uint8_t sha[DS_SHA256_LEN];
    int rc;

    if (f == NULL)
        return DS_EPROTO;
    if (f->failed)
        return final_err(r, m->id, f->err_code, f->err_msg);
    ds_sha256_final(&f->sha, sha);
    if (f->written != f->size || m->u.commit.size != f->size)
        rc = fail_file(r, m->id, DS_ECORRUPT,
                       "%" PRIu64 " bytes received, %" PRIu64 " declared, %" PRIu64 " committed",
                       f->written, f->size, m->u.commit.size);
    else if (memcmp(sha, m->u.commit.sha256, DS_SHA256_LEN) != 0)
        rc = fail_file(r, m->id, DS_EHASH, "SHA-256 of the bytes received differs");
    else if ((rc = ds__sftp_put_flush(&r->fs, &f->put)) < 0 || (rc = set_attrs(r, f)) < 0)
        rc = io_fail(r, m->id, rc);
    if (rc < 0 || f->failed)
        return rc < 0 ? rc : final_err(r, m->id, f->err_code, f->err_msg);
    corrupt(r, f);
    if ((rc = ds__sftp_put_close(&r->fs, &f->put)) < 0 || (rc = verify(r, f, sha)) < 0 ||
        (rc = publish(r, f, sha, &ok.u.file_ok.mtime_ns)) < 0) {
        rc = io_fail(r, m->id, rc);
        return rc < 0 ? rc : final_err(r, m->id, f->err_code, f->err_msg);
    }
    ok.u.file_ok.file_id = f->id;
    ok.u.file_ok.size = f->size;
    memcpy(ok.u.file_ok.sha256, sha, DS_SHA256_LEN);
    ds__sftp_file_drop(r);
    rc = ds__sftp_reply(r, &ok);
    ds__sftp_manifest_checkpoint(r);
    return rc;
}

int ds__sftp_file_abort(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    struct sftp_file *f = file_of(r, m->u.file.file_id);

    if (f == NULL)
        return DS_EPROTO;
    if (f->failed)
        return final_err(r, m->id, f->err_code, f->err_msg);
    return final_err(r, m->id, DS_EABORTED, "aborted by the console");
}

/* The path checks of a request on one target file: safe, parents not
 * symlinks, the file regular. Returns 0 (*present) or a refusal (fs.err). */
static int check(struct ds__sftp_recv *r, const char *path, int *present,
                 LIBSSH2_SFTP_ATTRIBUTES *a)
{
    const char *why = NULL;

    if (ds_pathsafe_check(path, &why) < 0) {
        ds__sftp_errf(&r->fs, "%s", why);
        return DS_EPATH;
    }
    return ds__sftp_walk(&r->fs, path, 0, present, a);
}

int ds__sftp_hash_req(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    ds_msg_t ok = {.type = DS_MSG_HASH_OK, .id = m->id};
    char path[DS_PROTO_STR_MAX + 1];
    LIBSSH2_SFTP_ATTRIBUTES a;
    int present = 0, rc;

    ds__sftp_cstr(m->u.path.path, path);
    rc = check(r, path, &present, &a);
    if (rc == 0 && !present)
        rc = -ENOENT;
    if (rc == 0)
        rc = ds__sftp_hash(&r->fs, ds__sftp_abs(&r->fs, 0, path), ok.u.hash_ok.sha256,
                           &ok.u.hash_ok.size);
    if (rc == DS_ETRANSPORT)
        return rc;
    if (rc < 0)
        return ds__sftp_reply_err(r, m->id, rc, path,
                                  rc == -ENOENT ? "HASH: no such file" : r->fs.err);
    ok.u.hash_ok.path = m->u.path.path;
    ok.u.hash_ok.mtime_ns = (int64_t)a.mtime * 1000000000;
    return ds__sftp_reply(r, &ok);
}

int ds__sftp_adopt(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    ds_msg_t ok = {.type = DS_MSG_FILE_OK, .id = m->id};
    char path[DS_PROTO_STR_MAX + 1];
    LIBSSH2_SFTP_ATTRIBUTES a;
    uint8_t sha[DS_SHA256_LEN];
    uint64_t size = 0;
    int present = 0, rc;
    const char *abs;

    ds__sftp_cstr(m->u.adopt.path, path);
    rc = check(r, path, &present, &a);
    if (rc == 0 && !present)
        rc = -ENOENT;
    if (rc == 0 && !ds__sftp_lease_valid(r)) {
        ds__sftp_errf(&r->fs, "%s", r->lease_msg);
        rc = DS_ELEASE;
    }
    abs = ds__sftp_abs(&r->fs, 0, path);
    if (rc == 0)
        rc = ds__sftp_hash(&r->fs, abs, sha, &size);
    if (rc == 0 && (size != m->u.adopt.size || memcmp(sha, m->u.adopt.sha256, DS_SHA256_LEN))) {
        ds__sftp_errf(&r->fs, "ADOPT: the file does not hold the wanted bytes");
        rc = DS_EHASH;
    }
    ok.u.file_ok.mtime_ns = (int64_t)a.mtime * 1000000000;
    if (rc == 0 && m->u.adopt.mtime_ns != DS_PROTO_NO_MTIME) {
        LIBSSH2_SFTP_ATTRIBUTES t = {.flags = LIBSSH2_SFTP_ATTR_ACMODTIME};

        t.atime = t.mtime = (unsigned long)(m->u.adopt.mtime_ns / 1000000000);
        if (libssh2_sftp_stat_ex(r->fs.sftp, abs, (unsigned)strlen(abs), LIBSSH2_SFTP_SETSTAT,
                                 &t) != 0)
            rc = ds__sftp_fail(&r->fs, "setstat", abs);
        ok.u.file_ok.mtime_ns = (int64_t)t.mtime * 1000000000;
    }
    if (rc == 0)
        rc = ds_manifest_put(r->man, path, size, ok.u.file_ok.mtime_ns, sha);
    if (rc == DS_ETRANSPORT || rc == DS_ENOMEM)
        return rc;
    if (rc < 0) {
        ds_msg_t e = {.type = DS_MSG_FILE_ERR, .id = m->id};

        e.u.err.code = rc;
        e.u.err.path = ds_pstr(path);
        e.u.err.message = ds_pstr(r->fs.err[0] ? r->fs.err : ds_strerror(rc));
        return ds__sftp_reply(r, &e);
    }
    r->man_dirty = 1;
    ok.u.file_ok.size = size;
    memcpy(ok.u.file_ok.sha256, sha, DS_SHA256_LEN);
    return ds__sftp_reply(r, &ok);
}

int ds__sftp_delete(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    ds_msg_t ok = {.type = DS_MSG_OK, .id = m->id};
    char path[DS_PROTO_STR_MAX + 1];
    LIBSSH2_SFTP_ATTRIBUTES a;
    int present = 0, rc;
    const char *abs;

    ds__sftp_cstr(m->u.path.path, path);
    rc = check(r, path, &present, &a);
    if (rc == 0 && !ds__sftp_lease_valid(r)) {
        ds__sftp_errf(&r->fs, "%s", r->lease_msg);
        rc = DS_ELEASE;
    }
    abs = ds__sftp_abs(&r->fs, 0, path);
    if (rc == 0 && present && libssh2_sftp_unlink_ex(r->fs.sftp, abs, (unsigned)strlen(abs)) != 0)
        rc = ds__sftp_fail(&r->fs, "unlink", abs);
    if (rc == -ENOENT)
        rc = present = 0;
    if (rc == DS_ETRANSPORT)
        return rc;
    if (rc < 0)
        return ds__sftp_reply_err(r, m->id, rc, path, r->fs.err);
    if (r->man != NULL && ds_manifest_remove(r->man, path) == 0)
        r->man_dirty = 1;
    ok.u.ok.value = (uint64_t)present;
    return ds__sftp_reply(r, &ok);
}

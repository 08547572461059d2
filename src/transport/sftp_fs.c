/*
 * SFTP mode, the server's file system: absolute paths under the root, an
 * lstat walk that never follows a symlink, bounded reads, the upload
 * pipeline and the replace (mv -f on a shell account, else unlink +
 * rename: SFTP v3's rename, all OpenSSH offers libssh2 1.10, fails over an
 * existing file). libssh2 runs blocking here, on the SFTP receiver's
 * thread, each call bounded by the session timeout (io_timeout), except
 * ds__sftp_lstat_nb (LIST's and HASH's steps).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"

#include "sftp_int.h"

const char *ds__sftp_abs(struct ds__sftp_fs *fs, int slot, const char *rel)
{
    snprintf(fs->path[slot], sizeof(fs->path[slot]), "%s%s%s", fs->root, *rel ? "/" : "", rel);
    return fs->path[slot];
}

void ds__sftp_errf(struct ds__sftp_fs *fs, const char *fmt, ...)
{
    va_list va;

    va_start(va, fmt);
    vsnprintf(fs->err, sizeof(fs->err), fmt, va);
    va_end(va);
}

void ds__sftp_counts(struct ds__sftp_fs *fs)
{
    atomic_store(&fs->wire_in, fs->c.wire_in);
    atomic_store(&fs->wire_out, fs->c.wire_out);
}

/* An SFTP status to -errno (OpenSSH speaks version 3: most failures are
 * FX_FAILURE). */
static int fx_code(unsigned long fx)
{
    switch (fx) {
    case LIBSSH2_FX_NO_SUCH_FILE:
    case LIBSSH2_FX_NO_SUCH_PATH:
        return -ENOENT;
    case LIBSSH2_FX_PERMISSION_DENIED:
    case LIBSSH2_FX_WRITE_PROTECT:
        return -EACCES;
    case LIBSSH2_FX_FILE_ALREADY_EXISTS:
        return -EEXIST;
    case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
        return -ENOSPC;
    case LIBSSH2_FX_QUOTA_EXCEEDED:
        return -EDQUOT;
    case LIBSSH2_FX_NOT_A_DIRECTORY:
        return -ENOTDIR;
    case LIBSSH2_FX_DIR_NOT_EMPTY:
        return -ENOTEMPTY;
    default:
        return -EIO;
    }
}

int ds__sftp_fail(struct ds__sftp_fs *fs, const char *what, const char *path)
{
    return ds__sftp_fail_on(fs, fs->sftp, what, path);
}

int ds__sftp_fail_on(struct ds__sftp_fs *fs, LIBSSH2_SFTP *sftp, const char *what, const char *path)
{
    int err = libssh2_session_last_errno(fs->c.s), rc;

    ds__sftp_counts(fs);
    if (err == LIBSSH2_ERROR_SFTP_PROTOCOL) {
        unsigned long fx = libssh2_sftp_last_error(sftp);

        rc = fx_code(fx);
        if (fx == LIBSSH2_FX_FAILURE) /* SFTP v3 has no code for ENOSPC, EDQUOT, EIO... */
            ds__sftp_errf(fs,
                          "%s %s on %s: the server gave no reason (SFTP status 4, a generic "
                          "failure: OpenSSH sends it for a full disk, a quota or an I/O error)",
                          what, path, fs->u.where);
        else
            ds__sftp_errf(fs, "%s %s on %s: %s (SFTP status %lu)", what, path, fs->u.where,
                          ds_strerror(rc), fx);
        return rc;
    }
    ds__sftp_errf(fs, "%s %s on %s: %s", what, path, fs->u.where,
                  err == LIBSSH2_ERROR_TIMEOUT ? "timed out (io_timeout)"
                                               : ds__ssh_errmsg(fs->c.s));
    return DS_ETRANSPORT;
}

int ds__sftp_lstat(struct ds__sftp_fs *fs, const char *abs, LIBSSH2_SFTP_ATTRIBUTES *a)
{
    if (libssh2_sftp_stat_ex(fs->sftp, abs, (unsigned)strlen(abs), LIBSSH2_SFTP_LSTAT, a) == 0)
        return 0;
    return ds__sftp_fail(fs, "lstat", abs);
}

int ds__sftp_lstat_nb(struct ds__sftp_fs *fs, const char *abs, LIBSSH2_SFTP_ATTRIBUTES *a)
{
    int rc = libssh2_sftp_stat_ex(fs->sftp, abs, (unsigned)strlen(abs), LIBSSH2_SFTP_LSTAT, a);

    if (rc == 0)
        return 0;
    if (rc == LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    return ds__sftp_fail(fs, "lstat", abs);
}

/* A directory component: 0, or the refusal with fs->err set. */
static int check_dir(struct ds__sftp_fs *fs, const char *abs, int create)
{
    LIBSSH2_SFTP_ATTRIBUTES a;
    int rc = ds__sftp_lstat(fs, abs, &a);

    if (rc == -ENOENT && create) {
        if (libssh2_sftp_mkdir_ex(fs->sftp, abs, (unsigned)strlen(abs), 0755) != 0 &&
            (rc = ds__sftp_fail(fs, "mkdir", abs)) != -EIO && rc != -EEXIST)
            return rc;
        rc = ds__sftp_lstat(fs, abs, &a); /* made, or made meanwhile */
    }
    if (rc < 0)
        return rc;
    if (LIBSSH2_SFTP_S_ISLNK(a.permissions)) {
        ds__sftp_errf(fs, "%s on %s is a symlink: refused", abs, fs->u.where);
        return DS_ESYMLINK;
    }
    if (!LIBSSH2_SFTP_S_ISDIR(a.permissions)) {
        ds__sftp_errf(fs, "%s on %s is not a directory", abs, fs->u.where);
        return DS_ENOTREG;
    }
    return 0;
}

int ds__sftp_state_dir(struct ds__sftp_fs *fs, const char *abs)
{
    return check_dir(fs, abs, 1);
}

int ds__sftp_walk(struct ds__sftp_fs *fs, const char *rel, int create, int *present,
                  LIBSSH2_SFTP_ATTRIBUTES *a)
{
    char *abs = fs->path[2];
    size_t rootlen = strlen(fs->root);
    int rc;

    *present = 0;
    ds__sftp_abs(fs, 2, rel);
    for (char *s = strchr(abs + rootlen + 1, '/'); s != NULL; s = strchr(s + 1, '/')) {
        *s = '\0';
        rc = check_dir(fs, abs, create);
        *s = '/';
        if (rc < 0)
            return rc;
    }
    rc = ds__sftp_lstat(fs, abs, a);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    if (LIBSSH2_SFTP_S_ISLNK(a->permissions)) {
        ds__sftp_errf(fs, "%s on %s is a symlink: refused", abs, fs->u.where);
        return DS_ESYMLINK;
    }
    if (!LIBSSH2_SFTP_S_ISREG(a->permissions)) {
        ds__sftp_errf(fs, "%s on %s is not a regular file", abs, fs->u.where);
        return DS_ENOTREG;
    }
    *present = 1;
    return 0;
}

static LIBSSH2_SFTP_HANDLE *open_read(struct ds__sftp_fs *fs, const char *abs)
{
    return libssh2_sftp_open_ex(fs->sftp, abs, (unsigned)strlen(abs), LIBSSH2_FXF_READ, 0,
                                LIBSSH2_SFTP_OPENFILE);
}

int ds__sftp_read_small(struct ds__sftp_fs *fs, const char *abs, size_t max, char **out,
                        size_t *len)
{
    LIBSSH2_SFTP_HANDLE *h = open_read(fs, abs);
    char *buf = NULL;
    size_t n = 0;
    int rc = 0;

    *out = NULL;
    if (h == NULL)
        return ds__sftp_fail(fs, "open", abs);
    buf = malloc(max + 1);
    if (buf == NULL) {
        rc = DS_ENOMEM;
        goto out;
    }
    for (;;) {
        ssize_t r = libssh2_sftp_read(h, buf + n, max + 1 - n);

        if (r < 0) {
            rc = ds__sftp_fail(fs, "read", abs);
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            ds__sftp_errf(fs, "%s on %s is larger than %zu bytes: refused", abs, fs->u.where, max);
            rc = DS_ETOOBIG;
            goto out;
        }
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
out:
    free(buf);
    libssh2_sftp_close_handle(h);
    return rc;
}

/* The read's phases. */
enum { RD_OPEN, RD_READ, RD_CLOSE };

int ds__sftp_read_nb(struct ds__sftp_fs *fs, struct sftp_rd *rd, const char *abs, size_t max)
{
    for (;;) {
        ssize_t n;

        switch (rd->phase) {
        case RD_OPEN:
            rd->n = 0;
            rd->rc = 0;
            if ((rd->h = open_read(fs, abs)) != NULL) {
                rd->phase = RD_READ;
                break;
            }
            if (libssh2_session_last_errno(fs->c.s) == LIBSSH2_ERROR_EAGAIN)
                return STEP_WAIT;
            return ds__sftp_fail(fs, "open", abs);
        case RD_READ:
            n = libssh2_sftp_read(rd->h, rd->buf + rd->n, max + 1 - rd->n);
            if (n == LIBSSH2_ERROR_EAGAIN)
                return STEP_WAIT;
            if (n < 0)
                rd->rc = ds__sftp_fail(fs, "read", abs);
            if (n > 0 && (rd->n += (size_t)n) > max) {
                ds__sftp_errf(fs, "%s on %s is larger than %zu bytes: refused", abs, fs->u.where,
                              max);
                rd->rc = DS_ETOOBIG;
            }
            if (n <= 0 || rd->rc < 0)
                rd->phase = RD_CLOSE;
            break;
        default: /* RD_CLOSE */
            if (libssh2_sftp_close_handle(rd->h) == LIBSSH2_ERROR_EAGAIN)
                return STEP_WAIT;
            rd->h = NULL;
            rd->phase = RD_OPEN;
            rd->buf[rd->rc == 0 ? rd->n : 0] = '\0';
            return rd->rc;
        }
    }
}

int ds__sftp_hash(struct ds__sftp_fs *fs, const char *abs, uint8_t sha[DS_SHA256_LEN],
                  uint64_t *size)
{
    LIBSSH2_SFTP_HANDLE *h = open_read(fs, abs);
    ds_sha256_t s = {0};
    int rc;

    *size = 0;
    if (h == NULL)
        return ds__sftp_fail(fs, "open", abs);
    rc = ds_sha256_init(&s);
    while (rc == 0) {
        ssize_t r = libssh2_sftp_read(h, (char *)fs->rbuf, SFTP_READ_BUF);

        if (r < 0)
            rc = ds__sftp_fail(fs, "read", abs);
        if (r <= 0)
            break;
        ds_sha256_update(&s, fs->rbuf, (size_t)r);
        *size += (uint64_t)r;
    }
    libssh2_sftp_close_handle(h);
    if (rc == 0)
        ds_sha256_final(&s, sha);
    else
        ds_sha256_close(&s);
    ds__sftp_counts(fs);
    return rc;
}

int ds__sftp_write_new(struct ds__sftp_fs *fs, const char *abs, const void *d, size_t n)
{
    LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open_ex(
        fs->sftp, abs, (unsigned)strlen(abs),
        LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL, 0600, LIBSSH2_SFTP_OPENFILE);
    const char *p = d;
    int rc = 0;

    if (h == NULL)
        return ds__sftp_fail(fs, "create", abs);
    /* each call sends up to SFTP_INFLIGHT bytes at once and returns what
     * was acknowledged; the next call starts at the first byte that was not */
    while (rc == 0 && n > 0) {
        ssize_t w = libssh2_sftp_write(h, p, n < SFTP_INFLIGHT ? n : SFTP_INFLIGHT);

        if (w < 0) {
            rc = ds__sftp_fail(fs, "write", "a tmp file");
            break;
        }
        p += w;
        n -= (size_t)w;
    }
    if (rc == 0 && libssh2_sftp_fsync(h) != 0 &&
        libssh2_sftp_last_error(fs->sftp) != LIBSSH2_FX_OP_UNSUPPORTED)
        rc = ds__sftp_fail(fs, "fsync", "a tmp file");
    if (libssh2_sftp_close_handle(h) != 0 && rc == 0)
        rc = ds__sftp_fail(fs, "close", "a tmp file");
    ds__sftp_counts(fs);
    return rc;
}

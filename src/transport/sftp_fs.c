/*
 * SFTP mode, the server's file system: absolute paths under the root,
 * libssh2 failures mapped to our codes with a message naming the path,
 * and the stepped calls the requests share (lstat, a small read, a small
 * write): each returns STEP_WAIT when libssh2 would block, and resumes
 * when called again with the same arguments.
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

void ds__sftp_lose(struct ds__sftp_fs *fs, LIBSSH2_SFTP_HANDLE *h)
{
    if (h == NULL)
        return;
    if (fs->nlost == fs->lost_cap) {
        size_t cap = fs->lost_cap ? 2 * fs->lost_cap : 16;
        LIBSSH2_SFTP_HANDLE **p = realloc(fs->lost, cap * sizeof(*p));

        if (p == NULL) { /* out of memory: one try; a close that would wait leaks it */
            (void)libssh2_sftp_close_handle(h);
            return;
        }
        fs->lost = p;
        fs->lost_cap = cap;
    }
    fs->lost[fs->nlost++] = h;
}

int ds__sftp_lost_step(struct ds__sftp_fs *fs)
{
    size_t done = 0;
    int rc = fs->nlost ? STEP_MOVED : STEP_IDLE;

    while (done < fs->nlost) {
        if (libssh2_sftp_close_handle(fs->lost[done]) == LIBSSH2_ERROR_EAGAIN) {
            rc = STEP_WAIT; /* lost[0] from now on: its close goes on first */
            break;
        }
        done++; /* closed, or failed: freed by libssh2 either way */
    }
    memmove(fs->lost, fs->lost + done, (fs->nlost - done) * sizeof(*fs->lost));
    fs->nlost -= done;
    return rc;
}

void ds__sftp_lost_cut(struct ds__sftp_fs *fs)
{
    for (size_t i = 0; i < fs->nlost; i++)
        (void)libssh2_sftp_close_handle(fs->lost[i]); /* fails at once: freed */
    free(fs->lost);
    fs->lost = NULL;
    fs->nlost = fs->lost_cap = 0;
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

int ds__sftp_lstat_nb(struct ds__sftp_fs *fs, const char *abs, LIBSSH2_SFTP_ATTRIBUTES *a)
{
    int rc = libssh2_sftp_stat_ex(fs->sftp, abs, (unsigned)strlen(abs), LIBSSH2_SFTP_LSTAT, a);

    if (rc == 0)
        return 0;
    if (rc == LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    return ds__sftp_fail(fs, "lstat", abs);
}

static LIBSSH2_SFTP_HANDLE *open_read(struct ds__sftp_fs *fs, const char *abs)
{
    return libssh2_sftp_open_ex(fs->sftp, abs, (unsigned)strlen(abs), LIBSSH2_FXF_READ, 0,
                                LIBSSH2_SFTP_OPENFILE);
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

/* The write's phases. */
enum { WR_OPEN, WR_WRITE, WR_FSYNC, WR_CLOSE };

int ds__sftp_write_nb(struct ds__sftp_fs *fs, struct sftp_wr *wr, const char *abs, const void *p,
                      size_t n, int create)
{
    for (;;) {
        switch (wr->phase) {
        case WR_OPEN:
            wr->off = 0;
            wr->rc = 0;
            wr->h = libssh2_sftp_open_ex(fs->sftp, abs, (unsigned)strlen(abs),
                                         create ? LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT |
                                                      LIBSSH2_FXF_EXCL
                                                : LIBSSH2_FXF_WRITE,
                                         0600, LIBSSH2_SFTP_OPENFILE);
            if (wr->h == NULL && libssh2_session_last_errno(fs->c.s) == LIBSSH2_ERROR_EAGAIN)
                return STEP_WAIT;
            if (wr->h == NULL)
                return ds__sftp_fail(fs, create ? "create" : "open", abs);
            wr->phase = WR_WRITE;
            break;
        case WR_WRITE:
            while (wr->off < n) {
                size_t k = n - wr->off < SFTP_INFLIGHT ? n - wr->off : SFTP_INFLIGHT;
                ssize_t w = libssh2_sftp_write(wr->h, (const char *)p + wr->off, k);

                if (w == LIBSSH2_ERROR_EAGAIN || w == 0)
                    return STEP_WAIT;
                if (w < 0) {
                    wr->rc = ds__sftp_fail(fs, "write", abs);
                    break;
                }
                wr->off += (size_t)w;
            }
            wr->phase = create && wr->rc == 0 ? WR_FSYNC : WR_CLOSE;
            break;
        case WR_FSYNC: {
            int rc = libssh2_sftp_fsync(wr->h);

            if (rc == LIBSSH2_ERROR_EAGAIN)
                return STEP_WAIT;
            if (rc != 0 && libssh2_sftp_last_error(fs->sftp) != LIBSSH2_FX_OP_UNSUPPORTED)
                wr->rc = ds__sftp_fail(fs, "fsync", abs);
            wr->phase = WR_CLOSE;
            break;
        }
        default: { /* WR_CLOSE */
            int rc = libssh2_sftp_close_handle(wr->h);

            if (rc == LIBSSH2_ERROR_EAGAIN)
                return STEP_WAIT;
            wr->h = NULL;
            wr->phase = WR_OPEN;
            if (rc != 0 && wr->rc == 0)
                wr->rc = ds__sftp_fail(fs, "close", abs);
            return wr->rc;
        }
        }
    }
}

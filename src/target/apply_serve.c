/*
 * The receiver's serve loop over file descriptors: what `distsync agent`
 * runs on stdin/stdout and the local transport runs on its thread over a
 * socketpair. Reads only when the receiver wants input, writes every reply
 * before reading again: memory stays bounded by one read buffer plus the
 * receiver's own bounds (DS_APPLY_OUT_HIGH).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "apply_int.h"
#include "distsync/apply.h"
#include "distsync/error.h"

#define SERVE_READ (1u << 20)

/* See apply_int.h. */
int ds__apply_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    int sock = 1;

    while (len > 0) {
        ssize_t w = sock ? send(fd, p, len, MSG_NOSIGNAL) : write(fd, p, len);

        if (w < 0 && errno == ENOTSOCK && sock) {
            sock = 0;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Sends every queued reply byte. Returns 0 or -errno. */
static int flush_out(ds_apply_t *ap, int fd)
{
    const uint8_t *p;
    size_t len;
    int rc;

    ds_apply_output(ap, &p, &len);
    rc = ds__apply_write_all(fd, p, len);
    if (rc == 0)
        ds_apply_output_consume(ap, len);
    return rc;
}

/* "stdin" / "stdout" for the agent's own fds, else what the fd is for. */
static const char *fd_name(int fd, int std, const char *name, const char *other)
{
    return fd == std ? name : other;
}

int ds_apply_serve(ds_apply_t *ap, int in_fd, int out_fd, char *err, size_t errlen)
{
    uint8_t *buf = malloc(SERVE_READ);
    size_t off = 0, n = 0;
    int rc = 0;

    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        return DS_ENOMEM;
    }
    for (;;) {
        long used;

        if (off == n && ds_apply_want_input(ap)) {
            int w = ds__apply_fan_wait(ap, in_fd); /* replies of other connections first */
            ssize_t r;

            if (w < 0 && ap->state != S_DEAD) {
                rc = w;
                snprintf(err, errlen, "waiting for other connections: %s", ds_strerror(rc));
                goto out;
            }
            if (w <= 0) {
                used = w;
                goto flush;
            }
            r = read(in_fd, buf, SERVE_READ);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                rc = -errno;
                snprintf(err, errlen, "reading %s: %s",
                         fd_name(in_fd, STDIN_FILENO, "stdin", "the input"), strerror(errno));
                goto out;
            }
            if (r == 0 && ds_apply_pending(ap) > 0) {
                rc = DS_EPROTO;
                snprintf(err, errlen, "input ended inside a frame (%zu bytes buffered)",
                         ds_apply_pending(ap));
            }
            if (r == 0)
                goto out;
            off = 0;
            n = (size_t)r;
        }
        used = ds_apply_feed(ap, buf + off, n - off);
        if (used > 0)
            off += (size_t)used;
    flush:
        rc = flush_out(ap, out_fd);
        if (rc < 0) {
            snprintf(err, errlen, "writing %s: %s",
                     fd_name(out_fd, STDOUT_FILENO, "stdout", "the output"), strerror(-rc));
            goto out;
        }
        if (used < 0) {
            rc = (int)used;
            snprintf(err, errlen, "session ended: %s", ds_strerror(rc));
            goto out;
        }
        if (ds_apply_done(ap))
            goto out;
    }
out:
    free(buf);
    return rc;
}

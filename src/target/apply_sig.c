/*
 * Receiver: SIG, the rsync-style fallback for a target file whose content
 * the console does not know (changed behind our back to unknown bytes, or
 * present before the first sync). The agent streams the librsync signature
 * of the file in SIG_DATA frames; the console computes the delta against it
 * and sends it as an ordinary DELTA with the file itself as the basis. This
 * is the one case where a signature crosses the link, as with rsync.
 *
 * The signature is produced a frame at a time as the output drains (a
 * streamed reply, see struct astream): its size never sits in memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librsync.h>

#include "apply_int.h"
#include "distsync/error.h"
#include "distsync/pathsafe.h"
#include "proto/rsjob.h"

#define SIG_FRAME     (1u << 20) /* signature bytes per SIG_DATA frame */
#define SIG_BLOCK_MIN 256u
#define SIG_BLOCK_MAX (1u << 20)

struct sig_stream {
    struct astream h;
    rs_job_t *job;
    rs_buffers_t b;
    int fd;
    const ds_fs_t *fs; /* the receiver's */
    char path[DS_PROTO_STR_MAX + 1];
    uint8_t *frame; /* SIG_FRAME bytes: the next SIG_DATA payload */
};

static void sig_free(struct astream *st)
{
    struct sig_stream *s = (struct sig_stream *)st;

    if (s->job)
        rs_job_free(s->job);
    if (s->fd >= 0)
        ds_fs_close(s->fs, s->fd);
    free(s->frame);
    free(s);
}

/* Reads the next piece of the file into ap->iobuf when the job wants it. */
static int sig_fill(ds_apply_t *ap, struct sig_stream *s)
{
    ssize_t n;

    if (s->b.avail_in > 0 || s->b.eof_in)
        return 0;
    do
        n = ds_fs_read(ap->fs, s->fd, ap->iobuf, APPLY_IOBUF);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    s->b.next_in = (char *)ap->iobuf;
    s->b.avail_in = (size_t)n;
    s->b.eof_in = n == 0;
    return 0;
}

/* Fills one frame (or ends the signature) and queues it. The job's input
 * points into ap->iobuf, which nothing else uses between two steps. */
static int sig_step(ds_apply_t *ap, struct astream *st)
{
    struct sig_stream *s = (struct sig_stream *)st;
    ds_msg_t m = {.type = DS_MSG_SIG_DATA, .id = st->id};
    size_t fill = 0, made;
    int rc = 0, done = 0;

    while (rc == 0 && !done && fill < SIG_FRAME) {
        rc = sig_fill(ap, s);
        if (rc == 0)
            rc = ds__rsjob_pump(s->job, &s->b, s->frame + fill, SIG_FRAME - fill, &made);
        if (rc >= 0)
            fill += made;
        done = rc == 1;
        rc = rc == 1 ? 0 : rc;
    }
    if (rc < 0) /* slices already sent are dropped by the console on ERR */
        return ds__apply_reply_err(ap, st->id, rc, s->path, "SIG: cannot compute the signature") < 0
                   ? DS_ENOMEM
                   : 1;
    m.flags = done ? 0 : DS_PROTO_F_MORE;
    m.u.blob.data = s->frame;
    m.u.blob.len = (uint32_t)fill;
    rc = ds__apply_reply(ap, &m);
    return rc < 0 ? rc : done;
}

int ds__apply_sig(ds_apply_t *ap, const ds_msg_t *m)
{
    struct sig_stream *s = calloc(1, sizeof(*s));
    uint32_t block = m->u.sig.block_len;
    uint8_t strong = m->u.sig.strong_len;
    int rc;

    if (s == NULL)
        return DS_ENOMEM;
    s->fd = -1;
    s->fs = ap->fs;
    ds__apply_cstr(m->u.sig.path, s->path);
    if (block < SIG_BLOCK_MIN || block > SIG_BLOCK_MAX || strong < 8 || strong > 32) {
        rc = ds__apply_reply_err(ap, m->id, DS_ERANGE, s->path,
                                 "SIG: block length or strong sum length out of range");
        goto fail;
    }
    rc = ds_pathsafe_open_file_fs(ap->fs, ap->rootfd, s->path, &s->fd, NULL);
    if (rc < 0) {
        rc = ds__apply_reply_err(ap, m->id, rc, s->path,
                                 rc == -ENOENT ? "SIG: no such file" : ds_pathsafe_reason(rc));
        goto fail;
    }
    s->frame = malloc(SIG_FRAME);
    s->job = rs_sig_begin(block, strong, RS_RK_BLAKE2_SIG_MAGIC);
    if (s->frame == NULL || s->job == NULL) {
        rc = DS_ENOMEM;
        goto fail;
    }
    s->h.step = sig_step;
    s->h.free = sig_free;
    s->h.id = m->id;
    ds__apply_stream_start(ap, &s->h);
    return 0;
fail:
    sig_free(&s->h);
    return rc;
}

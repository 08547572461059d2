/*
 * Receiver: SIG, the rsync-style fallback for a target file whose content
 * the console does not know (changed behind our back to unknown bytes, or
 * present before the first sync). The agent streams the librsync signature
 * of the file in SIG_DATA frames; the console computes the delta against it
 * and sends it as an ordinary DELTA with the file itself as the basis. This
 * is the one case where a signature crosses the link, as with rsync.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librsync.h>

#include "apply_int.h"
#include "distsync/error.h"
#include "distsync/pathsafe.h"

#define SIG_FRAME     (1u << 20) /* signature bytes per SIG_DATA frame */
#define SIG_BLOCK_MIN 256u
#define SIG_BLOCK_MAX (1u << 20)

struct sig {
    ds_apply_t *ap;
    uint32_t id;
    ds_proto_buf_t buf; /* signature bytes not yet framed */
};

static int flush_sig(struct sig *s, int last)
{
    size_t off = 0;
    int rc = 0;

    while (rc == 0 && (s->buf.len - off >= SIG_FRAME || (last && off <= s->buf.len))) {
        ds_msg_t m = {.type = DS_MSG_SIG_DATA, .id = s->id};
        size_t n = s->buf.len - off > SIG_FRAME ? SIG_FRAME : s->buf.len - off;

        m.flags = last && off + n == s->buf.len ? 0 : DS_PROTO_F_MORE;
        m.u.blob.data = s->buf.p + off;
        m.u.blob.len = (uint32_t)n;
        rc = ds__apply_reply(s->ap, &m);
        off += n;
        if (last && off == s->buf.len)
            break;
    }
    ds_proto_buf_consume(&s->buf, off);
    return rc;
}

/* Runs the signature job over fd; appends its output to s->buf. */
static int sign(struct sig *s, rs_job_t *job, int fd)
{
    uint8_t out[64 * 1024];
    rs_buffers_t b = {0};
    int eof = 0;

    for (;;) {
        rs_result res;

        if (b.avail_in == 0 && !eof) {
            ssize_t n = read(fd, s->ap->iobuf, APPLY_IOBUF);

            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return -errno;
            eof = n == 0;
            b.next_in = (char *)s->ap->iobuf;
            b.avail_in = (size_t)n;
            b.eof_in = eof;
        }
        b.next_out = (char *)out;
        b.avail_out = sizeof(out);
        res = rs_job_iter(job, &b);
        if (ds_proto_buf_append(&s->buf, out, sizeof(out) - b.avail_out) < 0)
            return DS_ENOMEM;
        if (res == RS_DONE)
            return 0;
        if (res != RS_BLOCKED)
            return DS_EDELTA;
        if (s->buf.len >= SIG_FRAME && flush_sig(s, 0) < 0)
            return DS_ENOMEM;
    }
}

int ds__apply_sig(ds_apply_t *ap, const ds_msg_t *m)
{
    char path[DS_PROTO_STR_MAX + 1];
    struct sig s = {.ap = ap, .id = m->id};
    uint32_t block = m->u.sig.block_len;
    uint8_t strong = m->u.sig.strong_len;
    rs_job_t *job = NULL;
    int fd = -1, rc;

    ds__apply_cstr(m->u.sig.path, path);
    if (block < SIG_BLOCK_MIN || block > SIG_BLOCK_MAX || strong < 8 || strong > 32)
        return ds__apply_reply_err(ap, m->id, DS_ERANGE, path,
                                   "SIG: block length or strong sum length out of range");
    rc = ds_pathsafe_open_file(ap->rootfd, path, &fd, NULL);
    if (rc < 0)
        return ds__apply_reply_err(ap, m->id, rc, path,
                                   rc == -ENOENT ? "SIG: no such file" : ds_pathsafe_reason(rc));
    job = rs_sig_begin(block, strong, RS_RK_BLAKE2_SIG_MAGIC);
    rc = job ? sign(&s, job, fd) : DS_ENOMEM;
    if (job)
        rs_job_free(job);
    close(fd);
    if (rc == 0)
        rc = flush_sig(&s, 1);
    else
        rc = ds__apply_reply_err(ap, m->id, rc, path, "SIG: cannot compute the signature");
    ds_proto_buf_free(&s.buf);
    return rc;
}

/*
 * The queued output's frame boundaries. Two things happen at the first
 * frame not yet begun on the wire:
 *  - control frames (a LEASE renewal, the FILE_ABORTs of a cancel) are
 *    inserted there, behind the control frames already waiting, so they never
 *    queue behind megabytes of data on a slow link (a renewal stuck behind
 *    the data would arrive after the lease expired). The receiver handles
 *    frames in wire order, so the FIFO of requests awaiting a reply is kept
 *    in wire order too: the control request's entry goes to its place and
 *    every later stream offset moves by the frame's length;
 *  - a cancel (ds_session_cancel_sends) cuts the output there (keeping the
 *    control frames waiting), so a cancelled run does not first push
 *    megabytes through a slow link. Requests cut off are forgotten (no
 *    result); a file whose FILE_BEGIN went out but whose FILE_COMMIT did not
 *    gets a FILE_ABORT, so the receiver removes its partial file; files
 *    committed before the cut finish normally.
 */
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "session_int.h"

/* First frame start at or after the bytes already written, or the queue's
 * end when every queued frame has begun; never inside the control frames
 * waiting at the head. */
static uint64_t cut_point(const ds_session_t *s)
{
    uint64_t at = ds__session_queue_end(s);

    for (size_t i = s->fs_head; i < s->nfs; i++)
        if (s->fstart[i] >= s->st.bytes_out) {
            at = s->fstart[i];
            break;
        }
    return s->ctl_end > at ? s->ctl_end : at;
}

/* Moves the frame just queued at the end of the output (from stream offset
 * end on) to stream offset at, an earlier frame boundary. */
static int move_bytes(ds_session_t *s, uint64_t end, uint64_t at)
{
    size_t flen = (size_t)(ds__session_queue_end(s) - end);
    size_t pos = s->out_off + (size_t)(at - s->st.bytes_out), tail = s->out.len - flen - pos;
    uint8_t *tmp = malloc(flen);

    if (tmp == NULL)
        return DS_ENOMEM;
    memcpy(tmp, s->out.p + pos + tail, flen);
    memmove(s->out.p + pos + flen, s->out.p + pos, tail);
    memcpy(s->out.p + pos, tmp, flen);
    free(tmp);
    return 0;
}

/* After move_bytes: every stream offset at or past at (the frames now
 * behind the control frame) moves by flen; the control frame's own frame
 * start and FIFO entry (the last ones, when want_reply) go to their place. */
static void move_offsets(ds_session_t *s, uint64_t at, size_t flen, int want_reply)
{
    struct pend ctl;
    size_t i;

    s->nfs--; /* the control frame's start, recorded last */
    for (i = s->fs_head; i < s->nfs; i++)
        if (s->fstart[i] >= at)
            s->fstart[i] += flen;
    for (i = s->fs_head; i < s->nfs && s->fstart[i] < at; i++)
        ;
    memmove(s->fstart + i + 1, s->fstart + i, (s->nfs - i) * sizeof(*s->fstart));
    s->fstart[i] = at;
    s->nfs++; /* room: it held this many before */
    for (i = 0; i < s->nfiles; i++)
        if (s->files[i].begin_at >= at)
            s->files[i].begin_at += flen;
    if (want_reply)
        ctl = s->pend[--s->npend];
    for (i = s->pend_head; i < s->npend; i++)
        if (s->pend[i].at >= at)
            s->pend[i].at += flen;
    if (!want_reply)
        return;
    for (i = s->pend_head; i < s->npend && s->pend[i].at < at; i++)
        ;
    memmove(s->pend + i + 1, s->pend + i, (s->npend - i) * sizeof(*s->pend));
    ctl.at = at;
    s->pend[i] = ctl;
    s->npend++;
}

int ds__session_send_ctl(ds_session_t *s, ds_msg_t *m, int want_reply, uint64_t tag, uint32_t fid,
                         const char *path)
{
    uint64_t at = cut_point(s), end = ds__session_queue_end(s);
    int rc = ds__session_send(s, m, want_reply, tag, fid, path);

    if (rc < 0)
        return rc;
    if (at < end) {
        rc = move_bytes(s, end, at);
        if (rc < 0)
            return rc;
        move_offsets(s, at, (size_t)(ds__session_queue_end(s) - end), want_reply);
    }
    s->ctl_end = at + (ds__session_queue_end(s) - end);
    return 0;
}

/* Forgets the requests queued at or after cut (the FIFO's tail); a file
 * whose final request goes is no longer committed. */
static void drop_pend(ds_session_t *s, uint64_t cut)
{
    while (s->npend > s->pend_head && s->pend[s->npend - 1].at >= cut) {
        struct pend *p = &s->pend[--s->npend];
        struct sfile *f = p->fid ? ds__session_find_file(s, p->fid) : NULL;

        if (f != NULL && (p->type == DS_MSG_FILE_COMMIT || p->type == DS_MSG_FILE_ABORT))
            f->committed = 0;
        free(p->path);
        p->path = NULL;
    }
}

int ds_session_cancel_sends(ds_session_t *s)
{
    uint64_t cut;
    size_t i = 0;
    int rc = 0;

    if (s->phase != DS_SESSION_READY)
        return s->phase == DS_SESSION_FAILED ? s->rc : DS_EUSAGE;
    cut = cut_point(s);
    s->out.len = s->out_off + (size_t)(cut - s->st.bytes_out);
    while (s->nfs > s->fs_head && s->fstart[s->nfs - 1] >= cut)
        s->nfs--;
    drop_pend(s, cut);
    while (i < s->nfiles) {
        struct sfile *f = &s->files[i];

        if (f->begin_at >= cut) {
            ds__session_drop_file(s, f); /* never reached the target */
            continue;
        }
        if (!f->committed && rc == 0)
            rc = ds__session_abort_ctl(s, f->fid);
        i++;
    }
    return rc;
}

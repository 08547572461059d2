/*
 * Cancelling a session's sends (ds_session_cancel_sends): the queued output
 * is cut at the first frame not yet begun on the wire, so a cancelled run
 * does not first push megabytes through a slow link. Requests cut off are
 * forgotten (no result); a file whose FILE_BEGIN went out but whose
 * FILE_COMMIT did not gets a FILE_ABORT, so the receiver removes its
 * partial file; files committed before the cut finish normally.
 */
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "session_int.h"

/* First frame start at or after the bytes already written, or the queue's
 * end when every queued frame has begun. */
static uint64_t cut_point(const ds_session_t *s)
{
    for (size_t i = s->fs_head; i < s->nfs; i++)
        if (s->fstart[i] >= s->st.bytes_out)
            return s->fstart[i];
    return ds__session_queue_end(s);
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
            rc = ds_session_file_abort(s, f->fid);
        i++;
    }
    return rc;
}

/*
 * SFTP mode, the end of the receiver's session, stepped on the caller's
 * loop (the transport's close_step): the files still in flight dropped
 * (their tmp files removed), the manifest written if the lease is ours,
 * then, after a good session, the channels closed politely (the mv loop,
 * every SFTP channel) and SSH_MSG_DISCONNECT sent. Each call that would
 * block returns STEP_WAIT; the transport then cuts the socket and frees
 * what is left.
 */
#include <errno.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/log.h"

#include "sftp_int.h"

/* The end's phases (r->end_phase). */
enum { E_FILES, E_MANIFEST, E_MVQ, E_SLOTS, E_MAIN, E_BYE, E_DONE };

/* A slot still doing something on the server. */
static int slot_busy(const struct sftp_slot *sl)
{
    return ds__sftp_has_file(sl) && sl->state != SL_DONE && sl->state != SL_WAIT;
}

/* E_FILES: every file in flight failed (its tmp file removed by its
 * steps); one already moving into place finishes. Returns 0 or
 * STEP_WAIT. */
static int drop_files(struct ds__sftp_recv *r)
{
    int busy = 0, progress = 1, rc = 0;

    if (r->req.kind != 0) { /* a request cut short: its handles go with the session */
        ds__sftp_req_drop(r);
        ds__sftp_lq_drop(r);
    }
    for (int k = 0; k < r->nslots; k++) {
        struct sftp_slot *sl = &r->slot[k];

        if (slot_busy(sl) && !sl->failed && sl->state != SL_MV && sl->state != SL_MTIME &&
            (rc = ds__sftp_slot_fail(r, sl, DS_EABORTED, "the session ended")) < 0)
            return 0;
    }
    while (rc >= 0 && progress) {
        rc = ds__sftp_pump(r, &progress);
        busy = 0;
        for (int k = 0; k < r->nslots; k++)
            busy |= slot_busy(&r->slot[k]);
        busy |= r->owner >= 0 || r->fs.nlost > 0;
        if (!busy)
            return 0;
    }
    return rc < 0 ? 0 : STEP_WAIT; /* a failure: nothing more to ask */
}

/* E_MVQ to E_BYE: the polite end of the channels and of the session. */
static int bye(struct ds__sftp_recv *r)
{
    for (;;) {
        switch (r->end_phase) {
        case E_MVQ:
            if (r->mvq.ch != NULL && libssh2_channel_free(r->mvq.ch) == LIBSSH2_ERROR_EAGAIN)
                return STEP_WAIT;
            r->mvq.ch = NULL;
            r->end_phase = E_SLOTS;
            r->end_k = 0;
            break;
        case E_SLOTS:
            for (; r->end_k < SFTP_SLOTS; r->end_k++) {
                struct sftp_slot *sl = &r->slot[r->end_k];

                if (sl->sftp != NULL && libssh2_sftp_shutdown(sl->sftp) == LIBSSH2_ERROR_EAGAIN)
                    return STEP_WAIT;
                sl->sftp = NULL;
            }
            r->end_phase = E_MAIN;
            break;
        case E_MAIN:
            if (r->fs.sftp != NULL && libssh2_sftp_shutdown(r->fs.sftp) == LIBSSH2_ERROR_EAGAIN)
                return STEP_WAIT;
            r->fs.sftp = NULL;
            r->end_phase = E_BYE;
            break;
        default: /* E_BYE */
            if (libssh2_session_disconnect(r->fs.c.s, "distsync: done") == LIBSSH2_ERROR_EAGAIN)
                return STEP_WAIT;
            r->end_phase = E_DONE;
            return 0;
        }
    }
}

int ds__sftp_end_step(struct ds__sftp_recv *r, int polite, int *rc)
{
    int w = 0;

    if (r->end_phase == E_FILES && r->fs.sftp != NULL && (w = drop_files(r)) == 0)
        r->end_phase = E_MANIFEST;
    if (r->end_phase == E_FILES && r->fs.sftp == NULL)
        r->end_phase = E_MANIFEST;
    if (w == 0 && r->end_phase == E_MANIFEST) {
        int mrc = 0;

        if (r->have_lease && !r->lease_lost && r->fs.sftp != NULL)
            mrc = ds__sftp_manifest_step(r);
        if ((w = mrc == STEP_WAIT ? STEP_WAIT : 0) == 0) {
            *rc = mrc;
            /* a handle still open on the main channel: no polite SFTP end */
            r->end_phase = polite && mrc == 0 && r->fs.nlost == 0 ? E_MVQ : E_DONE;
        }
    }
    if (w == 0 && r->end_phase != E_DONE)
        w = bye(r);
    ds__sftp_counts(&r->fs);
    return w == STEP_WAIT ? w : 0;
}

int ds__sftp_end_past_manifest(const struct ds__sftp_recv *r)
{
    return r->end_phase > E_MANIFEST;
}

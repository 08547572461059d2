/*
 * SFTP mode, the pump: moves the files in flight (sftp_slot.c), the mv
 * channel and the closes of the handles a request left (SFTP_LOST) as far
 * as they go without waiting, sends the replies that are due in request
 * order, and finishes a half-sent packet before a request's first call
 * (ds__sftp_settle).
 *
 * The mv channel (shell accounts): one exec of a shell loop for the run.
 * It reads two lines, the tmp file and the path, runs mv -f -T on them
 * (rename(2): atomic over the old file) and prints mv's exit status; the
 * replaces are written as the slots reach them and answered in order, so
 * they cost a round trip together instead of an exec (channel open, exec,
 * end of file, close: 4 round trips) each, during which every other file
 * waited. Paths hold no newline (ds_pathsafe_check refuses control
 * characters); a root with one fails the replaces of existing files (new
 * files need no mv), naming why. A loop that cannot start (no channel
 * left under the server's MaxSessions, the exec refused) makes every
 * replace an unlink + rename, as on an account without a shell, and the
 * run's events say so (mvq_end).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"

#include "sftp_int.h"

#define MV_LOOP                                                                                    \
    "sh -c 'while IFS= read -r s && IFS= read -r d; do mv -f -T -- \"$s\" \"$d\"; echo $?; done'"

int ds__sftp_mvq_put(struct ds__sftp_recv *r, const char *tmp, const char *dst, int who)
{
    struct sftp_mvq *q = &r->mvq;
    int rc;

    if (q->broken || strchr(r->fs.root, '\n') != NULL)
        return 0;
    if ((rc = ds_proto_buf_append(&q->out, tmp, strlen(tmp))) < 0 ||
        (rc = ds_proto_buf_append(&q->out, "\n", 1)) < 0 ||
        (rc = ds_proto_buf_append(&q->out, dst, strlen(dst))) < 0 ||
        (rc = ds_proto_buf_append(&q->out, "\n", 1)) < 0)
        return rc;
    q->fifo[(q->head + q->n++) % SFTP_MVQ_LEN] = who;
    return 1;
}

/* The loop ended. One that never started (no channel, the exec
 * refused) ran no mv: what waits on it, and every later replace, goes by
 * unlink + rename instead (the run's events say so). One that ran may
 * have moved a waiting file: those fail (the next run sends them again),
 * and later replaces too. */
static int mvq_end(struct ds__sftp_recv *r, const char *why)
{
    struct sftp_mvq *q = &r->mvq;
    int rc = 0;

    q->broken = 1;
    q->unmv = !q->running;
    if (q->unmv)
        snprintf(q->nomv, sizeof(q->nomv), "%s", why);
    while (q->n > 0 && rc >= 0) {
        int who = q->fifo[q->head];
        struct sftp_slot *sl = &r->slot[who < 0 ? 0 : who];

        q->head = (q->head + 1) % SFTP_MVQ_LEN;
        q->n--;
        if (who < 0)
            ds__sftp_manifest_moved(r, q->unmv ? SFTP_MV_UNLINK : -EIO, why);
        else if (q->unmv) {
            sl->state = SL_UNLINK;
            r->kick = 1;
        } else
            rc = ds__sftp_slot_fail(r, sl, -EIO, "mv -f %s %s on %s: %s", sl->tmp, sl->dst,
                                    r->fs.u.where, why);
    }
    ds_proto_buf_free(&q->out);
    q->off = 0;
    return rc;
}

/* A status line: the oldest waiting slot's mv is done. */
static int mvq_answer(struct ds__sftp_recv *r)
{
    struct sftp_mvq *q = &r->mvq;
    struct sftp_slot *sl;
    int status, who;
    char why[64];

    q->line[q->linelen] = '\0';
    q->linelen = 0;
    if (q->n == 0)
        return mvq_end(r, "the mv loop answered no request");
    who = q->fifo[q->head];
    q->head = (q->head + 1) % SFTP_MVQ_LEN;
    q->n--;
    status = atoi(q->line);
    if (who < 0) {
        snprintf(why, sizeof(why), "mv -f exited with status %d", status);
        ds__sftp_manifest_moved(r, status == 0 ? 0 : -EIO, why);
        return 0;
    }
    sl = &r->slot[who];
    if (status == 0)
        return ds__sftp_published(r, sl);
    return ds__sftp_slot_fail(r, sl, -EIO, "mv -f %s %s on %s exited with status %d", sl->tmp,
                              sl->dst, r->fs.u.where, status);
}

/* Starts the loop (once, stepped): STEP_MOVED once it runs (or could
 * not start: what waits on it failed, q->broken), STEP_WAIT or a code
 * that ends the session. */
static int mvq_start(struct ds__sftp_recv *r)
{
    struct sftp_mvq *q = &r->mvq;
    char why[300];
    int rc;

    for (int k = 0; !q->opening && k < r->nslots; k++)
        if (r->slot[k].state == SL_INIT)
            return STEP_WAIT; /* one channel starts at a time (libssh2): after it */
    q->opening = q->ch == NULL;
    if (q->ch == NULL && (q->ch = libssh2_channel_open_session(r->fs.c.s)) == NULL) {
        if (libssh2_session_last_errno(r->fs.c.s) == LIBSSH2_ERROR_EAGAIN)
            return STEP_WAIT;
        q->opening = 0;
        snprintf(why, sizeof(why), "cannot open a channel: %s", ds__ssh_errmsg(r->fs.c.s));
        return (rc = mvq_end(r, why)) < 0 ? rc : STEP_MOVED;
    }
    q->opening = 0;
    rc = libssh2_channel_exec(q->ch, MV_LOOP);
    if (rc == LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    if (rc != 0) {
        snprintf(why, sizeof(why), "cannot start the mv loop: %s", ds__ssh_errmsg(r->fs.c.s));
        libssh2_channel_free(q->ch); /* non-blocking: an EAGAIN leaves it to the session's free */
        q->ch = NULL;
        return (rc = mvq_end(r, why)) < 0 ? rc : STEP_MOVED;
    }
    q->running = 1;
    return STEP_MOVED;
}

/* See sftp_int.h: writes what is queued, reads the answers. */
int ds__sftp_mvq_step(struct ds__sftp_recv *r)
{
    struct sftp_mvq *q = &r->mvq;
    char buf[256];
    ssize_t n;
    int moved = 0, rc;

    if (q->broken || (q->n == 0 && q->off == q->out.len))
        return STEP_IDLE;
    if (!q->running)
        return mvq_start(r);
    if (q->off < q->out.len) {
        n = libssh2_channel_write(q->ch, (const char *)q->out.p + q->off, q->out.len - q->off);
        if (n == LIBSSH2_ERROR_EAGAIN)
            return STEP_WAIT; /* maybe half sent: nothing else goes first */
        if (n < 0)
            return ds__sftp_fail(&r->fs, "writing to", "the mv -f loop");
        q->off += (size_t)n;
        if (q->off == q->out.len)
            q->off = q->out.len = 0;
        moved = 1;
    }
    while (libssh2_channel_read_stderr(q->ch, buf, sizeof(buf)) > 0)
        ; /* mv's complaints: the status says enough */
    n = libssh2_channel_read(q->ch, buf, sizeof(buf));
    if (n == LIBSSH2_ERROR_EAGAIN)
        return moved ? STEP_MOVED : STEP_WAIT;
    if (n < 0)
        return ds__sftp_fail(&r->fs, "reading from", "the mv -f loop");
    if (n == 0 && libssh2_channel_eof(q->ch))
        return (rc = mvq_end(r, "the mv loop ended")) < 0 ? rc : STEP_MOVED;
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] != '\n') {
            if (q->linelen + 1 < sizeof(q->line))
                q->line[q->linelen++] = buf[i];
            continue;
        }
        if ((rc = mvq_answer(r)) < 0)
            return rc;
    }
    return STEP_MOVED;
}

void ds__sftp_mvq_free(struct ds__sftp_recv *r, int graceful)
{
    struct sftp_mvq *q = &r->mvq;

    if (q->ch != NULL) {
        if (graceful) {
            libssh2_channel_send_eof(q->ch);
            libssh2_channel_close(q->ch);
        }
        libssh2_channel_free(q->ch);
    }
    q->ch = NULL;
    q->running = q->opening = 0;
    ds_proto_buf_free(&q->out);
    q->off = 0;
    q->n = 0;
}

/* Steps slot k (or the mv channel, SFTP_MVQ, or the lost handles'
 * closes, SFTP_LOST) once, keeping the owner rule. */
static int step_one(struct ds__sftp_recv *r, int k)
{
    int owned = r->owner == k, rc;

    r->owner = -1; /* its call first sends the rest of its packet */
    if (k == SFTP_LOST)
        rc = ds__sftp_lost_step(&r->fs);
    else
        rc = k == SFTP_MVQ ? ds__sftp_mvq_step(r) : ds__sftp_step(r, &r->slot[k], owned);
    if (rc == STEP_WAIT) {
        r->waiting = 1;
        if (libssh2_session_block_directions(r->fs.c.s) & LIBSSH2_SESSION_BLOCK_OUTBOUND)
            r->owner = k;
    }
    return rc;
}

/* The replies due in order: a slot's FILE_OK or FILE_ERR once every
 * earlier one went out. */
static int emit(struct ds__sftp_recv *r, int *progress)
{
    for (int again = 1; again;) {
        again = 0;
        for (int k = 0; k < r->nslots; k++) {
            struct sftp_slot *sl = &r->slot[k];
            ds_msg_t m = {.id = sl->reply_id};
            int rc;

            if (sl->state != SL_DONE || sl->seq != r->reply_seq)
                continue;
            if (sl->failed) {
                m.type = DS_MSG_FILE_ERR;
                m.u.err.file_id = sl->id;
                m.u.err.code = sl->err_code;
                m.u.err.path = ds_pstr(sl->path);
                m.u.err.message = ds_pstr(sl->err_msg);
            } else {
                m.type = DS_MSG_FILE_OK;
                m.u.file_ok.file_id = sl->id;
                m.u.file_ok.size = sl->size;
                m.u.file_ok.mtime_ns = sl->mtime_out;
                memcpy(m.u.file_ok.sha256, sl->digest, DS_SHA256_LEN);
            }
            rc = ds__sftp_reply(r, &m);
            ds_sha256_close(&sl->sha);
            if (sl->vhash)
                ds_sha256_close(&sl->vsha);
            sl->vhash = 0;
            sl->state = SL_IDLE;
            if (sl->cap > (1u << 20)) { /* a big file's buffer goes back */
                free(sl->buf);
                sl->buf = NULL;
                sl->cap = 0;
            }
            r->reply_seq++;
            *progress = again = 1;
            if (rc < 0)
                return rc;
            if (m.type == DS_MSG_FILE_OK)
                ds__sftp_manifest_checkpoint(r);
        }
    }
    return 0;
}

int ds__sftp_pump(struct ds__sftp_recv *r, int *progress)
{
    int moved = 1, rc = 0;

    *progress = 0;
    if (r->req.kind != 0) /* LIST or HASH under way: it alone talks to the server */
        return 0;
    while (moved && rc >= 0) {
        moved = 0;
        r->waiting = 0;
        for (int k = 0; k <= SFTP_LOST && rc >= 0; k++) {
            if ((r->owner >= 0 && r->owner != k) || (k >= r->nslots && k < SFTP_MVQ))
                continue;
            rc = step_one(r, k);
            moved |= rc == STEP_MOVED;
        }
        if (rc >= 0)
            rc = emit(r, &moved);
        *progress |= moved;
    }
    return rc < 0 ? rc : 0;
}

int ds__sftp_settle(struct ds__sftp_recv *r, int channels)
{
    int rc = 0;

    for (;;) {
        int k = r->owner, init = -1;

        for (int i = 0; channels && i < r->nslots; i++)
            if (r->slot[i].state == SL_INIT)
                init = i;
        if (k < 0)
            k = init;
        if (k < 0)
            break;
        rc = step_one(r, k);
        if (rc < 0 || rc == STEP_WAIT)
            break;
    }
    return rc < 0 || rc == STEP_WAIT ? rc : 0;
}

int ds__sftp_files_pending(const struct ds__sftp_recv *r)
{
    for (int k = 0; k < r->nslots; k++)
        if (ds__sftp_has_file(&r->slot[k]) && r->slot[k].ended)
            return 1;
    return 0;
}

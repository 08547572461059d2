/*
 * SFTP mode: the lease file and the manifest on the server, in the agent's
 * formats (lease.h, manifest.h), so `distsync status` and an agent read
 * them alike.
 *
 * SFTP has no flock, and v3's rename never replaces a file, so the lease
 * is taken with the two atomic operations SFTP does have: an exclusive
 * create (O_EXCL) of .distsync/lease when there is none, and, to take over
 * a stale or our own console's lease, a rename of that file away to a name
 * of this session: only one taker can move a given file, and the taker
 * checks that what it moved is the lease it judged (else puts it back).
 * A renewal rewrites the file in place with a text of the same length.
 * Expiry is judged by the console's clock.
 *
 * Every request here is stepped non-blocking on the main SFTP channel
 * (r->lq, r->req.kind = LEASE): a call that would block returns STEP_WAIT
 * and the frame is handled again, resuming it, when the socket is ready.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "distsync/apply.h"
#include "distsync/error.h"
#include "distsync/log.h"
#include "distsync/pathsafe.h"

#include "sftp_int.h"

#define LEASE_MAX       4096
#define MINE_RECHECK_MS 1000

/* An acquire's phases. */
enum { A_DIR, A_TMPDIR, A_READ, A_PUT, A_RENAME, A_CHECK, A_BACK, A_UNLINK, A_LOAD, A_CLEAN };
/* A renewal's and a release's. */
enum { R_MINE, R_PUT, R_STORE, R_UNLINK };

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *state_path(struct ds__sftp_recv *r, int slot, const char *name)
{
    char rel[128];

    snprintf(rel, sizeof(rel), DS_STATE_DIR "%s%s", *name ? "/" : "", name);
    return ds__sftp_abs(&r->fs, slot, rel);
}

static int again(struct ds__sftp_recv *r)
{
    return libssh2_session_last_errno(r->fs.c.s) == LIBSSH2_ERROR_EAGAIN;
}

/* A state directory (.distsync, .distsync/tmp), stepped (lq->sub): made
 * when missing, a symlink or non-directory refused. Returns 0, STEP_WAIT
 * or a refusal (fs.err). */
static int state_dir(struct ds__sftp_recv *r, const char *abs)
{
    struct sftp_lq *l = &r->lq;
    int rc;

    for (;;) {
        if (l->sub == 1) { /* mkdir */
            rc = libssh2_sftp_mkdir_ex(r->fs.sftp, abs, (unsigned)strlen(abs), 0755);
            if (rc == LIBSSH2_ERROR_EAGAIN)
                return STEP_WAIT;
            if (rc != 0 && (rc = ds__sftp_fail(&r->fs, "mkdir", abs)) != -EIO && rc != -EEXIST)
                return rc;
            l->sub = 2; /* made, or made meanwhile: lstat again */
        }
        rc = ds__sftp_lstat_nb(&r->fs, abs, &l->a);
        if (rc == STEP_WAIT)
            return rc;
        if (rc == -ENOENT && l->sub == 0) {
            l->sub = 1;
            continue;
        }
        l->sub = 0;
        if (rc < 0)
            return rc;
        if (LIBSSH2_SFTP_S_ISLNK(l->a.permissions)) {
            ds__sftp_errf(&r->fs, "%s on %s is a symlink: refused", abs, r->fs.u.where);
            return DS_ESYMLINK;
        }
        if (!LIBSSH2_SFTP_S_ISDIR(l->a.permissions)) {
            ds__sftp_errf(&r->fs, "%s on %s is not a directory", abs, r->fs.u.where);
            return DS_ENOTREG;
        }
        return 0;
    }
}

static int reply_busy(struct ds__sftp_recv *r, uint32_t id, const ds_lease_t *cur)
{
    ds_msg_t b = {.type = DS_MSG_BUSY, .id = id};
    char msg[600];

    ds_lease_busy_message(cur, msg, sizeof(msg));
    b.u.busy.console_id = ds_pstr(cur->console);
    b.u.busy.pid = cur->pid;
    b.u.busy.host = ds_pstr(cur->host);
    b.u.busy.expiry = cur->expiry;
    b.u.busy.message = ds_pstr(msg);
    return ds__sftp_reply(r, &b);
}

/* Removes what dead sessions left in .distsync/tmp (we hold the lease),
 * stepped (lq->sub), counting them in lq->cleaned. A failure only stops
 * the clean-up. Returns 0 or STEP_WAIT. */
static int clean_tmp(struct ds__sftp_recv *r)
{
    struct sftp_lq *l = &r->lq;
    const char *dir = state_path(r, 0, "tmp");
    int len;

    for (;;) {
        switch (l->sub) {
        case 0:
            l->h = libssh2_sftp_open_ex(r->fs.sftp, dir, (unsigned)strlen(dir), 0, 0,
                                        LIBSSH2_SFTP_OPENDIR);
            if (l->h == NULL)
                return again(r) ? STEP_WAIT : 0;
            l->sub = 1;
            break;
        case 1:
            len = libssh2_sftp_readdir(l->h, l->name, sizeof(l->name) - 1, &l->a);
            if (len == LIBSSH2_ERROR_EAGAIN)
                return STEP_WAIT;
            if (len <= 0) {
                l->sub = 3;
                break;
            }
            l->name[len] = '\0';
            if (l->name[0] == '.' || !LIBSSH2_SFTP_S_ISREG(l->a.permissions))
                break;
            snprintf(l->victim, sizeof(l->victim), "%s/%s", dir, l->name);
            l->sub = 2;
            break;
        case 2:
            len = libssh2_sftp_unlink_ex(r->fs.sftp, l->victim, (unsigned)strlen(l->victim));
            if (len == LIBSSH2_ERROR_EAGAIN)
                return STEP_WAIT;
            l->cleaned += len == 0;
            l->sub = 1;
            break;
        default:
            if (libssh2_sftp_close_handle(l->h) == LIBSSH2_ERROR_EAGAIN)
                return STEP_WAIT;
            l->h = NULL;
            l->sub = 0;
            return 0;
        }
    }
}

/* A_READ: the lease file judged: absent (ours to create), another
 * console's valid one (BUSY: 1), else ours to claim. Returns 0, 1,
 * STEP_WAIT or a failure. */
static int judge(struct ds__sftp_recv *r, const ds_msg_t *m, const char *lease)
{
    struct sftp_lq *l = &r->lq;
    int rc = ds__sftp_read_nb(&r->fs, &l->rd, lease, LEASE_MAX);
    int n;
    ds_lease_t cur;

    if (rc == -ENOENT && l->put_failed) {
        /* OpenSSH answers an exclusive create of an existing file with
         * status 4, so a failed create was judged "created meanwhile"; with
         * no file there, it failed for another reason, and retrying it
         * would end as "keeps changing", reported as BUSY */
        ds__sftp_errf(&r->fs,
                      "cannot create the lease file %s on %s: the server gave no reason (SFTP "
                      "status 4, a generic failure: OpenSSH sends it for a read-only file "
                      "system, a full disk, a quota or an I/O error)",
                      lease, r->fs.u.where);
        return -EIO;
    }
    if (rc == -ENOENT) {
        if ((n = ds_lease_encode(&r->lease, l->text, sizeof(l->text))) < 0)
            return n;
        l->textlen = (size_t)n;
        l->phase = A_PUT;
        return 0;
    }
    if (rc == 0 && ds_lease_decode(l->rd.buf, l->rd.n, &cur) < 0) {
        ds__sftp_errf(&r->fs,
                      "%s on %s: unreadable lease file (remove it if no "
                      "console is syncing this server)",
                      lease, r->fs.u.where);
        return DS_ECORRUPT;
    }
    if (rc != 0)
        return rc;
    l->put_failed = 0; /* there was a file: the create's failure is explained */
    if (strcmp(cur.console, r->lease.console) != 0 && cur.expiry > (int64_t)time(NULL)) {
        rc = reply_busy(r, m->id, &cur);
        return rc < 0 ? rc : 1;
    }
    memcpy(l->raw, l->rd.buf, l->rd.n + 1);
    /* in tmp/: a kill here leaves it for the next taker's clean-up */
    snprintf(l->away, sizeof(l->away), "%s%016" PRIx64, state_path(r, 2, "tmp/lease.old-"),
             r->session);
    l->phase = A_RENAME;
    return 0;
}

/* A_PUT to A_UNLINK: our lease file created, or the one judged moved out
 * of the way (only one taker can move a given file; one that moved
 * another taker's puts it back), then judged again. Returns 0, STEP_WAIT
 * or a failure. */
static int take(struct ds__sftp_recv *r, const char *lease)
{
    struct sftp_lq *l = &r->lq;
    int rc;

    switch (l->phase) {
    case A_PUT:
        rc = ds__sftp_write_nb(&r->fs, &l->wr, lease, l->text, l->textlen, 1);
        if (rc == STEP_WAIT || (rc < 0 && rc != -EEXIST && rc != -EIO))
            return rc;
        l->put_failed = rc == -EIO;
        l->phase = rc == 0 ? A_LOAD : A_READ; /* created meanwhile: judge it */
        break;
    case A_RENAME:
        rc = libssh2_sftp_rename_ex(r->fs.sftp, lease, (unsigned)strlen(lease), l->away,
                                    (unsigned)strlen(l->away), 0);
        if (rc == LIBSSH2_ERROR_EAGAIN)
            return STEP_WAIT;
        if (rc != 0 && (rc = ds__sftp_fail(&r->fs, "rename", lease)) != -ENOENT && rc != -EIO)
            return rc;
        l->phase = rc == 0 ? A_CHECK : A_READ;
        break;
    case A_CHECK:
        rc = ds__sftp_read_nb(&r->fs, &l->rd, l->away, LEASE_MAX);
        if (rc == STEP_WAIT)
            return rc;
        /* another taker's: put it back */
        l->phase = rc == 0 && strcmp(l->rd.buf, l->raw) != 0 ? A_BACK : A_UNLINK;
        return 0;
    case A_BACK:
        if (libssh2_sftp_rename_ex(r->fs.sftp, l->away, (unsigned)strlen(l->away), lease,
                                   (unsigned)strlen(lease), 0) == LIBSSH2_ERROR_EAGAIN)
            return STEP_WAIT;
        l->phase = A_READ;
        break;
    default: /* A_UNLINK */
        if (libssh2_sftp_unlink_ex(r->fs.sftp, l->away, (unsigned)strlen(l->away)) ==
            LIBSSH2_ERROR_EAGAIN)
            return STEP_WAIT;
        l->phase = A_READ;
        break;
    }
    l->tries++;
    return 0;
}

/* The acquire's calls from lq->phase on. Returns 0 (the lease ours, the
 * manifest loaded), 1 (BUSY sent), STEP_WAIT or a failure. */
static int acquire_steps(struct ds__sftp_recv *r, const ds_msg_t *m, const char *lease)
{
    struct sftp_lq *l = &r->lq;
    int rc = 0;

    while (rc == 0) {
        switch (l->phase) {
        case A_DIR:
        case A_TMPDIR:
            rc = state_dir(r, state_path(r, 0, l->phase == A_DIR ? "" : "tmp"));
            if (rc == 0)
                l->phase++;
            break;
        case A_READ:
            if (l->tries >= 8) {
                ds__sftp_errf(&r->fs, "the lease file keeps changing");
                return DS_ELEASE;
            }
            rc = judge(r, m, lease);
            break;
        case A_LOAD:
            if ((rc = ds__sftp_manifest_load_step(r)) == 0)
                l->phase = A_CLEAN;
            break;
        case A_CLEAN:
            return clean_tmp(r);
        default:
            rc = take(r, lease);
            break;
        }
    }
    return rc;
}

/* Acquire: returns 0 with a reply queued, STEP_WAIT, or a failure that
 * ends the session. */
static int acquire(struct ds__sftp_recv *r, const ds_msg_t *m, const char *lease)
{
    ds_msg_t ok = {.type = DS_MSG_LEASE_OK, .id = m->id};
    int rc;

    if (r->lq.phase == A_DIR && r->lq.sub == 0) {
        memset(&r->lease, 0, sizeof(r->lease));
        ds__sftp_cstr(m->u.lease.console_id, r->lease.console);
        ds__sftp_cstr(m->u.lease.host, r->lease.host);
        r->lease.pid = m->u.lease.pid;
        r->lease.session = r->session;
        r->lease.expiry = (int64_t)time(NULL) + m->u.lease.ttl_s;
    }
    rc = acquire_steps(r, m, lease);
    if (rc == STEP_WAIT || rc == 1)
        return rc == 1 ? 0 : rc;
    if (rc < 0)
        return rc == DS_ETRANSPORT || rc == DS_ENOMEM
                   ? rc
                   : ds__sftp_reply_err(r, m->id, rc, lease, r->fs.err);
    r->have_lease = 1;
    r->lease_lost = 0;
    r->mine_at_ms = mono_ms();
    r->man_written_at = (int64_t)time(NULL);
    r->lease_expiry = r->lease.expiry;
    ok.u.lease_ok.expiry = r->lease.expiry;
    ok.u.lease_ok.tmp_cleaned = r->lq.cleaned;
    return ds__sftp_reply(r, &ok);
}

/* The lease file read (r->lck) names this session: 1, else the loss
 * noted (0). The file is read again at most every MINE_RECHECK_MS (three
 * round trips each): another console can take the lease only once it
 * expired, which is checked on every call, or with this console's id (a
 * second process of the same console), which stops this one within that
 * time. Returns 1, 0, STEP_WAIT or DS_ETRANSPORT. */
static int mine(struct ds__sftp_recv *r)
{
    const char *abs = state_path(r, 1, DS_LEASE_NAME);
    ds_lease_t cur;
    int rc;

    if (!r->have_lease || r->lease_lost)
        return 0;
    if (r->lck.phase == 0 && mono_ms() - r->mine_at_ms < MINE_RECHECK_MS)
        return 1;
    rc = ds__sftp_read_nb(&r->fs, &r->lck, abs, LEASE_MAX);
    if (rc == STEP_WAIT || rc == DS_ETRANSPORT)
        return rc;
    if (rc == 0 && ds_lease_decode(r->lck.buf, r->lck.n, &cur) < 0)
        rc = DS_ECORRUPT;
    if (rc == 0 && cur.session == r->session) {
        r->mine_at_ms = mono_ms();
        return 1;
    }
    if (rc == 0 || rc == -ENOENT) {
        r->lease_lost = 1;
        snprintf(r->lease_msg, sizeof(r->lease_msg), "the lease on %s was taken over%s%.200s",
                 r->fs.u.where, rc == 0 ? " by console " : "", rc == 0 ? cur.console : "");
    } else {
        snprintf(r->lease_msg, sizeof(r->lease_msg), "the lease file on %s: %.500s", r->fs.u.where,
                 rc == DS_ECORRUPT ? "unreadable" : r->fs.err);
    }
    return 0;
}

int ds__sftp_lease_check(struct ds__sftp_recv *r)
{
    if (!r->have_lease) {
        snprintf(r->lease_msg, sizeof(r->lease_msg), "no lease held");
        return 0;
    }
    if ((int64_t)time(NULL) >= r->lease_expiry) {
        snprintf(r->lease_msg, sizeof(r->lease_msg), "the lease expired");
        return 0;
    }
    return mine(r);
}

/* Renew and release: the file read again (it must still name us), then
 * rewritten in place with the new expiry, or the manifest written and the
 * file removed. Returns 0 with a reply queued, STEP_WAIT or a failure that
 * ends the session. */
static int renew_or_release(struct ds__sftp_recv *r, const ds_msg_t *m, const char *abs)
{
    ds_msg_t ok = {.type = m->u.lease.op == DS_LEASE_OP_RENEW ? DS_MSG_LEASE_OK : DS_MSG_OK,
                   .id = m->id};
    struct sftp_lq *l = &r->lq;
    int rc = 0, n;

    if (l->phase == R_MINE) {
        if (l->sub == 0)
            r->mine_at_ms = INT64_MIN / 2; /* renew and release read the file */
        l->sub = 1;
        if ((rc = mine(r)) == STEP_WAIT || rc < 0)
            return rc;
        if (rc == 0)
            return ds__sftp_reply_err(r, m->id, DS_ELEASE, DS_STATE_DIR "/lease",
                                      r->lease_lost ? r->lease_msg : "no lease held");
        r->lease.expiry = (int64_t)time(NULL) + m->u.lease.ttl_s;
        if ((n = ds_lease_encode(&r->lease, l->text, sizeof(l->text))) < 0)
            return n;
        l->textlen = (size_t)n;
        l->phase = m->u.lease.op == DS_LEASE_OP_RELEASE ? R_STORE : R_PUT;
    }
    if (l->phase == R_PUT) {
        rc = ds__sftp_write_nb(&r->fs, &l->wr, abs, l->text, l->textlen, 0);
        if (rc == STEP_WAIT)
            return rc;
        if (rc < 0)
            return rc == DS_ETRANSPORT ? rc : ds__sftp_reply_err(r, m->id, rc, abs, r->fs.err);
        r->lease_expiry = r->lease.expiry;
        ok.u.lease_ok.expiry = r->lease.expiry;
        return ds__sftp_reply(r, &ok);
    }
    if (l->phase == R_STORE) {
        if ((rc = ds__sftp_manifest_step(r)) == STEP_WAIT)
            return rc;
        l->phase = R_UNLINK;
        l->rc = rc;
    }
    if (l->rc == 0 && (rc = libssh2_sftp_unlink_ex(r->fs.sftp, abs, (unsigned)strlen(abs))) ==
                          LIBSSH2_ERROR_EAGAIN)
        return STEP_WAIT;
    if (l->rc == 0 && rc != 0)
        l->rc = ds__sftp_fail(&r->fs, "unlink", abs);
    r->have_lease = 0;
    if (l->rc < 0)
        return l->rc == DS_ETRANSPORT ? l->rc : ds__sftp_reply_err(r, m->id, l->rc, abs, r->fs.err);
    return ds__sftp_reply(r, &ok);
}

int ds__sftp_lease(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    char lease[8400];
    int rc;

    if (m->u.lease.ttl_s > DS_LEASE_TTL_MAX)
        return ds__sftp_reply_err(r, m->id, DS_EUSAGE, "", "lease ttl too long");
    if (r->req.kind != DS_MSG_LEASE) {
        memset(&r->req, 0, sizeof(r->req));
        r->req.kind = DS_MSG_LEASE;
        memset(&r->lq, 0, sizeof(r->lq));
    }
    snprintf(lease, sizeof(lease), "%s", state_path(r, 1, DS_LEASE_NAME));
    if (m->u.lease.op == DS_LEASE_OP_ACQUIRE)
        rc = acquire(r, m, lease);
    else
        rc = renew_or_release(r, m, lease);
    ds__sftp_counts(&r->fs);
    if (rc != STEP_WAIT) {
        r->req.kind = 0;
        ds__sftp_lq_drop(r);
    }
    return rc;
}

void ds__sftp_lq_drop(struct ds__sftp_recv *r)
{
    struct sftp_lq *l = &r->lq;

    ds__sftp_lose(&r->fs, l->h); /* closed by the pump's steps, never waited for */
    ds__sftp_lose(&r->fs, l->rd.h);
    ds__sftp_lose(&r->fs, l->wr.h);
    ds_manifest_decoder_free(l->d);
    memset(l, 0, sizeof(*l));
}

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
#define MANIFEST_READ   (1u << 20)
/* The console's caps on a target's manifest (session.h), held here too:
 * the receiver decodes the manifest it takes the lease with. */
#define MANIFEST_MAX     (256ull << 20)
#define MANIFEST_ENTRIES (2ull << 20)

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

/* Reads and decodes the lease. Returns 0, -ENOENT, DS_ECORRUPT or a
 * failure; raw (malloc'd) keeps its bytes. */
static int lease_read(struct ds__sftp_recv *r, const char *abs, ds_lease_t *l, char **raw)
{
    size_t n;
    int rc = ds__sftp_read_small(&r->fs, abs, LEASE_MAX, raw, &n);

    if (rc == 0 && (rc = ds_lease_decode(*raw, n, l)) < 0)
        ds__sftp_errf(&r->fs,
                      "%s on %s: unreadable lease file (remove it if no "
                      "console is syncing this server)",
                      abs, r->fs.u.where);
    return rc;
}

/* Writes our lease text to abs: a new file (exclusive create), or in place. */
static int lease_put(struct ds__sftp_recv *r, const char *abs, int in_place)
{
    char text[1024];
    int n = ds_lease_encode(&r->lease, text, sizeof(text));
    LIBSSH2_SFTP_HANDLE *h;
    ssize_t w;

    if (n < 0)
        return n;
    if (!in_place)
        return ds__sftp_write_new(&r->fs, abs, text, (size_t)n);
    h = libssh2_sftp_open_ex(r->fs.sftp, abs, (unsigned)strlen(abs), LIBSSH2_FXF_WRITE, 0,
                             LIBSSH2_SFTP_OPENFILE);
    if (h == NULL)
        return ds__sftp_fail(&r->fs, "open", abs);
    w = libssh2_sftp_write(h, text, (size_t)n);
    libssh2_sftp_close_handle(h);
    return w == n ? 0 : ds__sftp_fail(&r->fs, "write", abs);
}

/* Moves the lease we judged (raw) out of the way. Returns 0 when it was
 * that lease (now gone), 1 when the file changed meanwhile (retry), < 0. */
static int claim(struct ds__sftp_recv *r, const char *lease, const char *raw)
{
    char away[8400], *got = NULL;
    ds_lease_t l;
    int rc;

    /* in tmp/: a kill here leaves it for the next taker's clean-up */
    snprintf(away, sizeof(away), "%s", state_path(r, 2, "tmp/lease.old-"));
    if (snprintf(away + strlen(away), sizeof(away) - strlen(away), "%016" PRIx64, r->session) >=
        (int)(sizeof(away) - strlen(away)))
        return DS_ETOOBIG;
    if (libssh2_sftp_rename_ex(r->fs.sftp, lease, (unsigned)strlen(lease), away,
                               (unsigned)strlen(away), 0) != 0)
        return (rc = ds__sftp_fail(&r->fs, "rename", lease)) == -ENOENT || rc == -EIO ? 1 : rc;
    rc = lease_read(r, away, &l, &got);
    if (rc == 0 && strcmp(got, raw) != 0) { /* another taker's: put it back */
        libssh2_sftp_rename_ex(r->fs.sftp, away, (unsigned)strlen(away), lease,
                               (unsigned)strlen(lease), 0);
        rc = 1;
    } else {
        libssh2_sftp_unlink_ex(r->fs.sftp, away, (unsigned)strlen(away));
        rc = 0;
    }
    free(got);
    return rc;
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

/* Removes what dead sessions left in .distsync/tmp (we hold the lease).
 * Returns the count removed. */
static uint32_t clean_tmp(struct ds__sftp_recv *r)
{
    const char *dir = state_path(r, 0, "tmp");
    LIBSSH2_SFTP_HANDLE *h =
        libssh2_sftp_open_ex(r->fs.sftp, dir, (unsigned)strlen(dir), 0, 0, LIBSSH2_SFTP_OPENDIR);
    LIBSSH2_SFTP_ATTRIBUTES a;
    char name[512], abs[8300];
    uint32_t n = 0;
    int len;

    while (h != NULL && (len = libssh2_sftp_readdir(h, name, sizeof(name) - 1, &a)) > 0) {
        name[len] = '\0';
        if (name[0] == '.' || !LIBSSH2_SFTP_S_ISREG(a.permissions))
            continue;
        snprintf(abs, sizeof(abs), "%s/%s", dir, name);
        n += libssh2_sftp_unlink_ex(r->fs.sftp, abs, (unsigned)strlen(abs)) == 0;
    }
    if (h != NULL)
        libssh2_sftp_close_handle(h);
    return n;
}

/* Loads the manifest (caps as the console's: session.h). An unreadable one
 * is moved to manifest.corrupt and an empty one started, as the agent
 * does. */
static int manifest_load(struct ds__sftp_recv *r)
{
    const char *abs = state_path(r, 0, "manifest");
    LIBSSH2_SFTP_HANDLE *h;
    ds_manifest_decoder_t *d = NULL;
    int rc;

    ds_manifest_free(r->man);
    r->man = NULL;
    h = libssh2_sftp_open_ex(r->fs.sftp, abs, (unsigned)strlen(abs), LIBSSH2_FXF_READ, 0,
                             LIBSSH2_SFTP_OPENFILE);
    if (h == NULL && (rc = ds__sftp_fail(&r->fs, "open", abs)) == -ENOENT)
        return ds_manifest_new(&r->man);
    if (h == NULL)
        return rc;
    rc = ds_manifest_decoder_new(MANIFEST_MAX, MANIFEST_ENTRIES, &d);
    while (rc == 0) {
        ssize_t n = libssh2_sftp_read(h, (char *)r->fs.rbuf, MANIFEST_READ);

        if (n < 0)
            rc = ds__sftp_fail(&r->fs, "read", abs);
        if (n <= 0)
            break;
        rc = ds_manifest_decoder_feed(d, r->fs.rbuf, (size_t)n);
    }
    libssh2_sftp_close_handle(h);
    if (rc == 0)
        rc = ds_manifest_decoder_finish(d, &r->man);
    if (rc < 0 && rc != DS_ETRANSPORT && rc != DS_ENOMEM) {
        char bad[8400];

        ds_log(DS_LOG_WARN, "%s on %s: %s: moved to manifest.corrupt, starting an empty one", abs,
               r->fs.u.where, d ? ds_manifest_decoder_error(d) : ds_strerror(rc));
        snprintf(bad, sizeof(bad), "%s.corrupt", abs);
        libssh2_sftp_unlink_ex(r->fs.sftp, bad, (unsigned)strlen(bad));
        libssh2_sftp_rename_ex(r->fs.sftp, abs, (unsigned)strlen(abs), bad, (unsigned)strlen(bad),
                               0);
        rc = ds_manifest_new(&r->man);
    }
    ds_manifest_decoder_free(d);
    return rc;
}

/* Acquire: returns 0 with a reply queued, or a failure that ends the
 * session. */
static int acquire(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    ds_msg_t ok = {.type = DS_MSG_LEASE_OK, .id = m->id};
    int64_t now = (int64_t)time(NULL);
    char lease[8400];
    int rc = ds__sftp_state_dir(&r->fs, state_path(r, 0, ""));

    if (rc == 0)
        rc = ds__sftp_state_dir(&r->fs, state_path(r, 0, "tmp"));
    snprintf(lease, sizeof(lease), "%s", state_path(r, 1, DS_LEASE_NAME));
    memset(&r->lease, 0, sizeof(r->lease));
    ds__sftp_cstr(m->u.lease.console_id, r->lease.console);
    ds__sftp_cstr(m->u.lease.host, r->lease.host);
    r->lease.pid = m->u.lease.pid;
    r->lease.session = r->session;
    r->lease.expiry = now + m->u.lease.ttl_s;
    for (int tries = 0; rc == 0; tries++) {
        ds_lease_t cur;
        char *raw = NULL;

        if (tries == 8)
            return ds__sftp_reply_err(r, m->id, DS_ELEASE, lease, "the lease file keeps changing");
        rc = lease_read(r, lease, &cur, &raw);
        if (rc == -ENOENT) {
            rc = lease_put(r, lease, 0);
            if (rc == -EEXIST || rc == -EIO) /* created meanwhile */
                rc = 0;
            else if (rc == 0)
                break;
            continue;
        }
        if (rc == 0 && strcmp(cur.console, r->lease.console) != 0 && cur.expiry > now) {
            free(raw);
            return reply_busy(r, m->id, &cur);
        }
        if (rc == 0)
            rc = claim(r, lease, raw);
        free(raw);
        rc = rc == 1 ? 0 : rc;
    }
    if (rc < 0)
        return rc == DS_ETRANSPORT ? rc : ds__sftp_reply_err(r, m->id, rc, lease, r->fs.err);
    rc = manifest_load(r);
    if (rc < 0)
        return rc == DS_ETRANSPORT ? rc : ds__sftp_reply_err(r, m->id, rc, lease, r->fs.err);
    r->have_lease = 1;
    r->lease_lost = 0;
    r->mine_at_ms = mono_ms();
    r->man_written_at = (int64_t)time(NULL);
    r->lease_expiry = r->lease.expiry;
    ok.u.lease_ok.expiry = r->lease.expiry;
    ok.u.lease_ok.tmp_cleaned = clean_tmp(r);
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

/* check (ds__sftp_lease_check or mine) waiting on the socket: 1 or 0. */
static int check_wait(struct ds__sftp_recv *r, int (*check)(struct ds__sftp_recv *))
{
    int rc;

    libssh2_session_set_blocking(r->fs.c.s, 0);
    while ((rc = check(r)) == STEP_WAIT && ds__sftp_wait_socket(r) == 0)
        ;
    libssh2_session_set_blocking(r->fs.c.s, 1);
    ds__sftp_counts(&r->fs);
    return rc == 1;
}

int ds__sftp_lease_valid(struct ds__sftp_recv *r)
{
    return check_wait(r, ds__sftp_lease_check);
}

static int renew_or_release(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    ds_msg_t ok = {.type = m->u.lease.op == DS_LEASE_OP_RENEW ? DS_MSG_LEASE_OK : DS_MSG_OK,
                   .id = m->id};
    const char *abs;
    int rc;

    r->mine_at_ms = INT64_MIN / 2; /* renew and release read the file */
    if (!check_wait(r, mine))
        return ds__sftp_reply_err(r, m->id, DS_ELEASE, DS_STATE_DIR "/lease",
                                  r->lease_lost ? r->lease_msg : "no lease held");
    abs = state_path(r, 1, DS_LEASE_NAME);
    if (m->u.lease.op == DS_LEASE_OP_RELEASE) {
        rc = ds__sftp_manifest_store(r);
        if (rc == 0 && libssh2_sftp_unlink_ex(r->fs.sftp, abs, (unsigned)strlen(abs)) != 0)
            rc = ds__sftp_fail(&r->fs, "unlink", abs);
        r->have_lease = 0;
        if (rc < 0)
            return rc == DS_ETRANSPORT ? rc : ds__sftp_reply_err(r, m->id, rc, abs, r->fs.err);
        return ds__sftp_reply(r, &ok);
    }
    r->lease.expiry = (int64_t)time(NULL) + m->u.lease.ttl_s;
    rc = lease_put(r, abs, 1);
    if (rc < 0)
        return rc == DS_ETRANSPORT ? rc : ds__sftp_reply_err(r, m->id, rc, abs, r->fs.err);
    r->lease_expiry = r->lease.expiry;
    ok.u.lease_ok.expiry = r->lease.expiry;
    return ds__sftp_reply(r, &ok);
}

int ds__sftp_lease(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    if (m->u.lease.ttl_s > DS_LEASE_TTL_MAX)
        return ds__sftp_reply_err(r, m->id, DS_EUSAGE, "", "lease ttl too long");
    if (m->u.lease.op == DS_LEASE_OP_ACQUIRE)
        return acquire(r, m);
    return renew_or_release(r, m);
}

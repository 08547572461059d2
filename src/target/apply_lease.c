/*
 * Receiver: the write lease. LEASE acquire, renew and release; the check
 * that the lease file still names this session, made before every publish,
 * delete and manifest write; the state directories; and the cleanup of tmp
 * files left by dead or displaced sessions.
 *
 * Rules (DESIGN.md invariant: one console writes a server at a time):
 *  - every read-decide-write of the lease file happens under a short flock of
 *    .distsync/guard;
 *  - a receiver holds flock(.distsync/lock) for its session when it can;
 *  - a lease that expired while its receiver still holds the lock (a stopped
 *    console or agent) is taken over without the lock; the taker removes the
 *    old session's tmp files, so a rename the old session was about to make
 *    fails, and the old session sees another session in the lease file at
 *    its next check and stops writing;
 *  - on a full disk (ENOSPC, EDQUOT) a receiver that holds the lock keeps the
 *    lease without a lease file (the stale file is removed: a missing lease
 *    with a held lock is never taken over), so a full target can still be
 *    pruned; the file is written again at the next renewal.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "apply_int.h"
#include "distsync/error.h"
#include "distsync/lease.h"
#include "distsync/log.h"
#include "distsync/pathsafe.h"

#define GUARD_WAIT_MS 2000
#define LEASE_PATH    DS_STATE_DIR "/" DS_LEASE_NAME

static int reply_ok(ds_apply_t *ap, uint32_t id)
{
    ds_msg_t m = {.type = DS_MSG_OK, .id = id};

    return ds__apply_reply(ap, &m);
}

/* Notes that another session took the lease over; stops all writing. */
static void lost(ds_apply_t *ap, const ds_lease_t *cur)
{
    char msg[APPLY_ERRMSG - 64];

    if (cur != NULL)
        ds_lease_busy_message(cur, msg, sizeof(msg));
    snprintf(ap->lease_msg, sizeof(ap->lease_msg), "the lease was taken over (%s)",
             cur ? msg : "lease file missing or unreadable");
    ds_log(DS_LOG_ERROR, "%s: %s: this session stops writing", ap->root, ap->lease_msg);
    ap->have_lease = 0;
    ap->lease_lost = 1; /* for good: its plan is stale, it must not re-acquire */
    if (ap->lockfd >= 0)
        ds_fs_close(ap->fs, ap->lockfd);
    ap->lockfd = -1;
}

int ds__apply_lease_mine(ds_apply_t *ap)
{
    ds_lease_t cur;
    int rc;

    if (!ap->have_lease)
        return 0;
    rc = ds_lease_read_fs(ap->fs, ap->dsfd, &cur);
    if ((rc == DS_ENOTFOUND && ap->lease_nofile && ap->lockfd >= 0) || /* full disk: the lock */
        (rc == 0 && cur.session == ap->lease_session &&
         strcmp(cur.console, ap->lease_console) == 0)) {
        ap->lease_seen = ds__apply_now(ap);
        ap->lease_seen_ok = 1;
        return 1;
    }
    ap->lease_seen_ok = 0;
    lost(ap, rc == 0 ? &cur : NULL);
    return 0;
}

int ds__apply_lease_valid(ds_apply_t *ap)
{
    if (ap->have_lease && ds__apply_now(ap) >= ap->lease_expiry)
        snprintf(ap->lease_msg, sizeof(ap->lease_msg), "the lease expired");
    return ap->have_lease && ds__apply_now(ap) < ap->lease_expiry && ds__apply_lease_mine(ap);
}

/* Every read of the lease file over SMB is 4 round trips and about 2 KB on
 * the wire; a stream of small files asked it three times per file. */
int ds__apply_lease_fresh(ds_apply_t *ap)
{
    int64_t now = ds__apply_now(ap);

    if (ap->have_lease && now < ap->lease_expiry && ap->lease_seen_ok && now == ap->lease_seen)
        return 1;
    return ds__apply_lease_valid(ap);
}

/* Every read of the lease file over SMB is 4 round trips, a third of what
 * a small file costs. On such a backend (ds_fs_ops_t.remote) a publish
 * trusts a read that found the lease ours in this same second, as
 * FILE_BEGIN and FILE_COMMIT do: another session takes the lease over only
 * once it expired (checked here too), and the taker first removes this
 * session's tmp files, so a rename this session was about to make fails
 * whatever the cache says. Elsewhere the file is read at every publish. */
int ds__apply_lease_publish(ds_apply_t *ap)
{
    return ap->fs->ops->remote ? ds__apply_lease_fresh(ap) : ds__apply_lease_mine(ap);
}

const char *ds__apply_lease_why(const ds_apply_t *ap)
{
    return ap->lease_msg[0] ? ap->lease_msg : "no lease taken";
}

/* Why openat(dir, name, O_DIRECTORY | O_NOFOLLOW) failed: a symbolic link
 * gives ENOTDIR (or ELOOP), which said "Not a directory". */
static int open_dir_err(ds_apply_t *ap, int dir, const char *name)
{
    int e = errno;
    struct stat st;

    if ((e == ENOTDIR || e == ELOOP) &&
        ds_fs_fstatat(ap->fs, dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        return DS_ESYMLINK;
    return -e;
}

int ds__apply_state_dirs(ds_apply_t *ap)
{
    if (ap->dsfd < 0) {
        if (ds_fs_mkdirat(ap->fs, ap->rootfd, DS_STATE_DIR, 0755) == 0) {
            if (!ap->opts.no_fsync && ds_fs_fsync(ap->fs, ap->rootfd) < 0)
                return -errno;
        } else if (errno != EEXIST) {
            return -errno;
        }
        ap->dsfd = ds_fs_openat(ap->fs, ap->rootfd, DS_STATE_DIR,
                                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
        if (ap->dsfd < 0)
            return open_dir_err(ap, ap->rootfd, DS_STATE_DIR);
    }
    if (ap->tmpfd < 0) {
        if (ds_fs_mkdirat(ap->fs, ap->dsfd, APPLY_TMP_DIR, 0700) == 0) {
            if (!ap->opts.no_fsync && ds_fs_fsync(ap->fs, ap->dsfd) < 0)
                return -errno;
        } else if (errno != EEXIST) {
            return -errno;
        }
        ap->tmpfd = ds_fs_openat(ap->fs, ap->dsfd, APPLY_TMP_DIR,
                                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
        if (ap->tmpfd < 0)
            return open_dir_err(ap, ap->dsfd, APPLY_TMP_DIR);
    }
    return 0;
}

/* Removes tmp files left by dead or displaced sessions. Only called by the
 * lease holder, right after it took the lease. */
static uint32_t clean_tmp(ds_apply_t *ap)
{
    int fd = ds_fs_openat(ap->fs, ap->tmpfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    ds_fs_dir_t *d = fd >= 0 ? ds_fs_fdopendir(ap->fs, fd) : NULL;
    struct dirent *de;
    uint32_t n = 0;

    if (d == NULL) {
        if (fd >= 0)
            ds_fs_close(ap->fs, fd);
        return 0;
    }
    while ((de = ds_fs_readdir(ap->fs, d)) != NULL) {
        size_t l = strlen(de->d_name);

        if (strncmp(de->d_name, APPLY_TMP_PFX, strlen(APPLY_TMP_PFX)) != 0 ||
            l < strlen(APPLY_TMP_SFX) ||
            strcmp(de->d_name + l - strlen(APPLY_TMP_SFX), APPLY_TMP_SFX) != 0)
            continue;
        if (ds_fs_unlinkat(ap->fs, ap->tmpfd, de->d_name, 0) == 0)
            n++;
    }
    ds_fs_closedir(ap->fs, d);
    ds_fs_unlinkat(ap->fs, ap->dsfd, DS_MANIFEST_NAME ".tmp", 0);
    if (n && !ap->opts.no_fsync)
        ds_fs_fsync(ap->fs, ap->tmpfd);
    return n;
}

static int reply_busy(ds_apply_t *ap, uint32_t id, const ds_lease_t *cur, const char *why)
{
    ds_msg_t m = {.type = DS_MSG_BUSY, .id = id};
    ds_lease_t none = {.console = "", .host = ""};
    char msg[APPLY_ERRMSG];

    if (cur == NULL) {
        cur = &none;
        snprintf(msg, sizeof(msg), "server is being synced by console ? (%s)", why);
    } else {
        ds_lease_busy_message(cur, msg, sizeof(msg));
    }
    m.u.busy.console_id = ds_pstr(cur->console);
    m.u.busy.pid = cur->pid;
    m.u.busy.host = ds_pstr(cur->host);
    m.u.busy.expiry = cur->expiry;
    m.u.busy.message = ds_pstr(msg);
    return ds__apply_reply(ap, &m);
}

/* A fresh session id for the lease file: agent pid and a per-process count. */
static uint64_t new_session(ds_apply_t *ap)
{
    static unsigned seq;
    unsigned n = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);

    return (uint64_t)getpid() << 32 | (uint32_t)(ap->session ^ n << 24 ^ n);
}

/* Removes the lease file; a failure is logged (the file then stays until
 * it expires, and another console can take it over only after that). */
static void remove_lease(ds_apply_t *ap)
{
    int rc = ds_lease_remove_fs(ap->fs, ap->dsfd);

    if (rc < 0)
        ds_log(DS_LOG_WARN, "%s/" LEASE_PATH ": cannot remove: %s (it stays until it expires)",
               ap->root, ds_strerror(rc));
}

/* Writes lease nl. On a full disk, a lock holder keeps its lease without the
 * file (see the top of this file). Returns 0 or a negative code. */
static int write_lease(ds_apply_t *ap, const ds_lease_t *nl)
{
    int rc = ds_lease_write_fs(ap->fs, ap->dsfd, nl);

    ap->lease_nofile = 0;
    if ((rc == -ENOSPC || rc == -EDQUOT) && ap->lockfd >= 0) {
        ds_log(DS_LOG_WARN,
               "%s/" LEASE_PATH ": cannot write the lease: %s; holding %s/" DS_STATE_DIR
               "/" DS_LEASE_LOCK_NAME " as the lease until the file can be written",
               ap->root, ds_strerror(rc), ap->root);
        remove_lease(ap); /* a stale file could be taken over */
        ap->lease_nofile = 1;
        rc = 0;
    }
    return rc;
}

/* Under the guard: decides and writes the lease. 0: granted, 1: busy (cur,
 * *have_cur and *why describe the holder), <0: error (message in err). */
static int decide_and_write(ds_apply_t *ap, ds_lease_t *nl, ds_lease_t *cur, int *have_cur,
                            const char **why, char *err, size_t errlen)
{
    int64_t now = ds__apply_now(ap);
    int rc;

    if (ap->have_lease || ap->lease_lost) { /* renewal: while the file names us */
        if (!ds__apply_lease_mine(ap)) {
            *have_cur = ds_lease_read_fs(ap->fs, ap->dsfd, cur) == 0;
            *why = "this session's lease was taken over";
            return 1;
        }
    } else {
        if (ap->lockfd < 0) {
            rc = ds_lease_lock_fs(ap->fs, ap->dsfd, &ap->lockfd);
            if (rc < 0 && rc != DS_ELEASE) {
                snprintf(err, errlen, "%s/" DS_STATE_DIR "/" DS_LEASE_LOCK_NAME ": %s", ap->root,
                         rc == DS_ENOTREG || rc == DS_EEXISTS ? ds_pathsafe_reason(rc)
                                                              : ds_strerror(rc));
                return rc;
            }
        }
        rc = ds_lease_read_fs(ap->fs, ap->dsfd, cur);
        if (rc == DS_ENOTREG || rc == DS_ESYMLINK) { /* planted: never replaced silently */
            snprintf(err, errlen, "%s/" LEASE_PATH ": %s: remove it", ap->root,
                     ds_pathsafe_reason(rc));
            if (ap->lockfd >= 0)
                ds_fs_close(ap->fs, ap->lockfd);
            ap->lockfd = -1;
            return rc;
        }
        *have_cur = rc == 0;
        *why = "another receiver holds " DS_STATE_DIR "/" DS_LEASE_LOCK_NAME
               " and the lease file is missing or unreadable";
        if (ds_lease_decide(*have_cur ? cur : NULL, nl->console, now, ap->lockfd >= 0) ==
            DS_LEASE_BUSY) {
            if (ap->lockfd >= 0)
                ds_fs_close(ap->fs, ap->lockfd);
            ap->lockfd = -1;
            return 1;
        }
        if (ap->lockfd < 0)
            ds_log(DS_LOG_WARN, "%s: taking over the expired lease of console %s (pid %u)",
                   ap->root, cur->console, (unsigned)cur->pid);
        ap->lease_session = new_session(ap);
        snprintf(ap->lease_console, sizeof(ap->lease_console), "%s", nl->console);
    }
    nl->flock = ap->lockfd >= 0;
    nl->session = ap->lease_session;
    rc = write_lease(ap, nl);
    if (rc < 0)
        snprintf(err, errlen, "%s/" LEASE_PATH ": cannot write the lease: %s", ap->root,
                 rc == DS_ENOTREG || rc == DS_ESYMLINK ? ds_pathsafe_reason(rc) : ds_strerror(rc));
    return rc;
}

/* First grant of the session: cleans tmp, loads the manifest. */
static int first_grant(ds_apply_t *ap, uint32_t id, uint32_t *cleaned)
{
    char err[APPLY_ERRMSG] = "";
    int rc;

    ap->man_written_at = ds__apply_now(ap);
    ds_manifest_free(ap->man);
    ap->man = NULL;
    rc = ds__apply_load_manifest(ap, err, sizeof(err));
    *cleaned = clean_tmp(ap); /* after the load: it may take manifest.tmp */
    if (rc == DS_EVERSION || rc == DS_ENOTREG || rc == DS_ESYMLINK) {
        /* a newer distsync wrote it, or it is not ours: never discard it */
        remove_lease(ap);
        ap->have_lease = 0;
        if (ap->lockfd >= 0)
            ds_fs_close(ap->fs, ap->lockfd);
        ap->lockfd = -1;
        if (rc != DS_EVERSION)
            return ds__apply_reply_err(ap, id, rc, DS_STATE_DIR "/" DS_MANIFEST_NAME, err);
        return ds__apply_reply_err(ap, id, rc, DS_STATE_DIR "/" DS_MANIFEST_NAME,
                                   "the manifest " DS_STATE_DIR "/" DS_MANIFEST_NAME
                                   " was written by a newer distsync: upgrade distsync "
                                   "on this server; nothing was changed");
    }
    if (rc < 0) { /* unreadable: start afresh, the console re-hashes */
        ds_log(DS_LOG_WARN, "%s: %s: starting a new manifest", ap->root, err);
        if (ds_fs_renameat(ap->fs, ap->dsfd, DS_MANIFEST_NAME, ap->dsfd,
                           DS_MANIFEST_NAME ".corrupt") < 0)
            ds_log(DS_LOG_WARN,
                   "%s/" DS_STATE_DIR "/" DS_MANIFEST_NAME ": cannot keep it as %s: %s", ap->root,
                   DS_MANIFEST_NAME ".corrupt", strerror(errno));
        rc = ds_manifest_new(&ap->man);
    }
    return rc < 0 ? rc : 1;
}

static int take_lease(ds_apply_t *ap, const ds_msg_t *req)
{
    char err[APPLY_ERRMSG] = "";
    const char *why = "";
    ds_lease_t nl = {0}, cur;
    ds_msg_t m = {.type = DS_MSG_LEASE_OK, .id = req->id};
    uint32_t ttl = req->u.lease.ttl_s, cleaned = 0;
    int guard = -1, have_cur = 0, first = !ap->have_lease, rc;

    if (req->u.lease.console_id.n == 0 || req->u.lease.console_id.n >= DS_LEASE_STR_MAX ||
        req->u.lease.host.n >= DS_LEASE_STR_MAX)
        return ds__apply_reply_err(ap, req->id, DS_EUSAGE, "", "LEASE: bad console id or host");
    ds__apply_cstr(req->u.lease.console_id, nl.console);
    ds__apply_cstr(req->u.lease.host, nl.host);
    if (ttl == 0 || ttl > DS_LEASE_TTL_MAX)
        ttl = ttl ? DS_LEASE_TTL_MAX : 60;
    nl.pid = req->u.lease.pid;
    nl.expiry = ds__apply_now(ap) + ttl;
    rc = ds__apply_state_dirs(ap);
    if (rc == DS_ESYMLINK)
        snprintf(err, sizeof(err),
                 "%s/%s: a symbolic link, refused for safety (the receiver follows no link "
                 "under the root; make it a real folder)",
                 ap->root, ap->dsfd < 0 ? DS_STATE_DIR : DS_STATE_DIR "/" APPLY_TMP_DIR);
    else if (rc < 0)
        snprintf(err, sizeof(err), "%s/" DS_STATE_DIR ": cannot prepare the state directory: %s",
                 ap->root, ds_strerror(rc));
    if (rc == 0)
        rc = ds_lease_guard_fs(ap->fs, ap->dsfd, GUARD_WAIT_MS, &guard);
    if (rc == DS_ELEASE) {
        have_cur = ds_lease_read_fs(ap->fs, ap->dsfd, &cur) == 0;
        return reply_busy(ap, req->id, have_cur ? &cur : NULL,
                          "another receiver holds " DS_STATE_DIR "/" DS_LEASE_GUARD_NAME);
    }
    if (rc < 0 && err[0] == '\0')
        snprintf(err, sizeof(err), "%s/" DS_STATE_DIR "/" DS_LEASE_GUARD_NAME ": %s", ap->root,
                 rc == DS_ENOTREG || rc == DS_EEXISTS ? ds_pathsafe_reason(rc) : ds_strerror(rc));
    if (rc == 0)
        rc = decide_and_write(ap, &nl, &cur, &have_cur, &why, err, sizeof(err));
    if (guard >= 0)
        ds_fs_close(ap->fs, guard);
    if (rc == 1)
        return reply_busy(ap, req->id, have_cur ? &cur : NULL, why);
    if (rc < 0)
        return ds__apply_reply_err(ap, req->id, rc, LEASE_PATH, err);
    ap->have_lease = 1;
    ap->lease_expiry = nl.expiry;
    ap->lease_msg[0] = '\0';
    if (first && (rc = first_grant(ap, req->id, &cleaned)) != 1)
        return rc;
    m.u.lease_ok.expiry = nl.expiry;
    m.u.lease_ok.tmp_cleaned = cleaned;
    return ds__apply_reply(ap, &m);
}

/* Releases the lease: writes the manifest, removes the lease file if it
 * still names this session, drops the lock. */
static int release(ds_apply_t *ap, uint32_t id)
{
    int guard = -1, rc;

    if (!ap->have_lease)
        return reply_ok(ap, id);
    rc = ds__apply_write_manifest(ap);
    if (rc == 0)
        rc = ds_lease_guard_fs(ap->fs, ap->dsfd, GUARD_WAIT_MS, &guard);
    if (rc == 0 && ds__apply_lease_mine(ap) && !ap->lease_nofile)
        rc = ds_lease_remove_fs(ap->fs, ap->dsfd);
    if (guard >= 0)
        ds_fs_close(ap->fs, guard);
    if (ap->lockfd >= 0)
        ds_fs_close(ap->fs, ap->lockfd);
    ap->lockfd = -1;
    ap->have_lease = 0;
    if (rc < 0)
        return ds__apply_reply_err(ap, id, rc, LEASE_PATH, "lease release failed");
    return reply_ok(ap, id);
}

int ds__apply_lease(ds_apply_t *ap, const ds_msg_t *req)
{
    if (req->u.lease.op == DS_LEASE_OP_RELEASE)
        return release(ap, req->id);
    return take_lease(ap, req);
}

/*
 * Target write lease: <root>/.distsync/lease names the console that may
 * write the server (console id, pid, host, expiry). Only one console writes
 * a server at a time; the lease enforces this on the server itself.
 *
 * Two mechanisms combine:
 *  - the lease file (text, written atomically) carries the holder and its
 *    expiry; a lease past its expiry is stale;
 *  - a receiver (agent or in-process file:// backend) additionally holds
 *    flock(<root>/.distsync/lock) while it holds the lease. A lease written
 *    by such a holder (flock = 1) whose lock is free is stale: its holder died.
 *
 * A receiver that still holds the lock after its lease expired (its console
 * or itself stopped, e.g. SIGSTOP) no longer blocks the server: another
 * receiver takes the lease over without the lock (verdict GRANT_TAKEOVER,
 * lease written with flock = 0) and removes the old session's tmp files. The
 * lease file names the receiver session; a receiver re-reads it before every
 * publish, delete and manifest write and stops writing once it no longer
 * names it. Every read-decide-write of the lease file happens under a short
 * flock of <root>/.distsync/guard, so two takers cannot both win.
 *
 * The decision (ds_lease_decide) is pure: the caller passes the clock and
 * whether it could take the lock, so it is tested deterministically.
 */
#ifndef DISTSYNC_LEASE_H
#define DISTSYNC_LEASE_H

#include <stddef.h>
#include <stdint.h>
#include "distsync/error.h"
#include "distsync/fs.h"

#define DS_LEASE_NAME       "lease" /* inside <root>/.distsync */
#define DS_LEASE_LOCK_NAME  "lock"
#define DS_LEASE_GUARD_NAME "guard"
#define DS_LEASE_STR_MAX    256
#define DS_LEASE_TTL_MAX    (7 * 24 * 3600) /* longest ttl accepted, seconds */

typedef struct ds_lease {
    char console[DS_LEASE_STR_MAX]; /* console id */
    char host[DS_LEASE_STR_MAX];    /* console host */
    uint32_t pid;                   /* console pid */
    int64_t expiry;                 /* unix seconds */
    int flock;                      /* the holder also holds the lock file */
    uint64_t session;               /* receiver session (0: not recorded) */
} ds_lease_t;

typedef enum ds_lease_verdict {
    DS_LEASE_GRANT_FREE = 0,     /* no lease: take it */
    DS_LEASE_GRANT_OWN = 1,      /* the same console holds it: renew/take over */
    DS_LEASE_GRANT_STALE = 2,    /* expired, or its holder's lock is gone */
    DS_LEASE_BUSY = 3,           /* another console holds a valid lease */
    DS_LEASE_GRANT_TAKEOVER = 4, /* expired, but its receiver still holds the
                                    lock (stalled): take it without the lock */
} ds_lease_verdict_t;

/*
 * Decides whether console may take the lease. cur is the current lease
 * (NULL: none or unreadable). lock_free: 1 when the caller holds the lock
 * file now (so no other receiver does), 0 when it could not take it.
 * With the lock, a lease held by the same console id is always granted (a
 * restarted console takes its own lease back). Without it, only an expired
 * lease is granted (GRANT_TAKEOVER).
 */
ds_lease_verdict_t ds_lease_decide(const ds_lease_t *cur, const char *console, int64_t now,
                                   int lock_free);

/* Serialises l as text into buf. Returns the length or DS_ETOOBIG. */
DS_MUST_CHECK int ds_lease_encode(const ds_lease_t *l, char *buf, size_t cap);

/* Parses the text form. Returns 0, DS_ECORRUPT or DS_EVERSION. */
DS_MUST_CHECK int ds_lease_decode(const char *buf, size_t len, ds_lease_t *l);

/* Reads DS_LEASE_NAME from the state directory fd (never blocks: a FIFO or
 * device there is DS_ENOTREG). Returns 0, DS_ENOTFOUND (no lease),
 * DS_ECORRUPT, DS_ENOTREG, DS_ESYMLINK, or -errno. */
DS_MUST_CHECK int ds_lease_read(int dsdir, ds_lease_t *l);

/* Writes the lease atomically. Returns 0 or -errno. */
DS_MUST_CHECK int ds_lease_write(int dsdir, const ds_lease_t *l);

/* Removes the lease file. Returns 0 or -errno (a missing file is 0). */
DS_MUST_CHECK int ds_lease_remove(int dsdir);

/* Takes flock(DS_LEASE_LOCK_NAME, LOCK_EX | LOCK_NB). Returns 0 with *fd set
 * (close it to release), DS_ELEASE when another process holds it,
 * DS_ENOTREG / DS_ESYMLINK / DS_EEXISTS (not a plain file), -errno. */
DS_MUST_CHECK int ds_lease_lock(int dsdir, int *fd);

/* Takes flock(DS_LEASE_GUARD_NAME, LOCK_EX), waiting up to wait_ms for it.
 * Held only around one read-decide-write of the lease file. Returns 0 with
 * *fd set (close it to release), DS_ELEASE on timeout, or an error as
 * ds_lease_lock. */
DS_MUST_CHECK int ds_lease_guard(int dsdir, int wait_ms, int *fd);

/* The five above through a filesystem backend (fs.h); dsdir and *fd are
 * fs's, and the lock is fs's lock op (an SMB share-mode open on SMB). */
DS_MUST_CHECK int ds_lease_read_fs(const ds_fs_t *fs, int dsdir, ds_lease_t *l);
DS_MUST_CHECK int ds_lease_write_fs(const ds_fs_t *fs, int dsdir, const ds_lease_t *l);
DS_MUST_CHECK int ds_lease_remove_fs(const ds_fs_t *fs, int dsdir);
DS_MUST_CHECK int ds_lease_lock_fs(const ds_fs_t *fs, int dsdir, int *fd);
DS_MUST_CHECK int ds_lease_guard_fs(const ds_fs_t *fs, int dsdir, int wait_ms, int *fd);

/* "server is being synced by console Y (pid P on host H) until T" into buf. */
void ds_lease_busy_message(const ds_lease_t *l, char *buf, size_t cap);

#endif

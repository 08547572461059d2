/* Target write lease: pure decision, text codec, atomic file, flock. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "distsync/error.h"
#include "distsync/fsutil.h"
#include "distsync/lease.h"
#include "distsync/pathsafe.h"
#include "distsync/tz.h"

#define LEASE_MAGIC "distsync-lease 1"

ds_lease_verdict_t ds_lease_decide(const ds_lease_t *cur, const char *console, int64_t now,
                                   int lock_free)
{
    if (cur == NULL)
        return lock_free ? DS_LEASE_GRANT_FREE : DS_LEASE_BUSY;
    if (!lock_free) /* another receiver holds the lock: alive, or stalled */
        return cur->expiry <= now ? DS_LEASE_GRANT_TAKEOVER : DS_LEASE_BUSY;
    if (strcmp(cur->console, console) == 0)
        return DS_LEASE_GRANT_OWN;
    if (cur->expiry <= now)
        return DS_LEASE_GRANT_STALE;
    if (cur->flock)
        return DS_LEASE_GRANT_STALE; /* its receiver held the lock and is gone */
    return DS_LEASE_BUSY;
}

static int str_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

int ds_lease_encode(const ds_lease_t *l, char *buf, size_t cap)
{
    int n;

    if (!str_ok(l->console) || !str_ok(l->host))
        return DS_ECORRUPT;
    n = snprintf(buf, cap,
                 LEASE_MAGIC "\nconsole %s\npid %" PRIu32 "\nhost %s\nsession %016" PRIx64
                             "\nexpiry %" PRId64 "\nflock %d\n",
                 l->console, l->pid, l->host, l->session, l->expiry, l->flock ? 1 : 0);
    if (n < 0 || (size_t)n >= cap)
        return DS_ETOOBIG;
    return n;
}

static int parse_i64(const char *v, int64_t *out)
{
    char *end;
    long long x;

    errno = 0;
    x = strtoll(v, &end, 10);
    if (errno || end == v || *end != '\0')
        return DS_ECORRUPT;
    *out = x;
    return 0;
}

static int set_field(ds_lease_t *l, const char *key, const char *val, unsigned *seen)
{
    int64_t x;

    if (strcmp(key, "console") == 0 || strcmp(key, "host") == 0) {
        char *dst = key[0] == 'c' ? l->console : l->host;

        if (strlen(val) >= DS_LEASE_STR_MAX)
            return DS_ECORRUPT;
        strcpy(dst, val);
        *seen |= key[0] == 'c' ? 1 : 2;
        return 0;
    }
    if (strcmp(key, "session") == 0) { /* optional: older writers lack it */
        char *end;

        errno = 0;
        l->session = strtoull(val, &end, 16);
        return errno || end == val || *end != '\0' ? DS_ECORRUPT : 0;
    }
    if (parse_i64(val, &x) < 0)
        return DS_ECORRUPT;
    if (strcmp(key, "pid") == 0 && x >= 0 && x <= UINT32_MAX) {
        l->pid = (uint32_t)x;
        *seen |= 4;
    } else if (strcmp(key, "expiry") == 0) {
        l->expiry = x;
        *seen |= 8;
    } else if (strcmp(key, "flock") == 0 && (x == 0 || x == 1)) {
        l->flock = (int)x;
        *seen |= 16;
    } else if (strcmp(key, "pid") == 0 || strcmp(key, "flock") == 0) {
        return DS_ECORRUPT;
    }
    return 0; /* unknown keys are ignored: newer writers may add some */
}

int ds_lease_decode(const char *buf, size_t len, ds_lease_t *l)
{
    char line[DS_LEASE_STR_MAX + 16];
    size_t pos = 0;
    unsigned seen = 0;
    int first = 1;

    memset(l, 0, sizeof(*l));
    if (len == 0 || buf[len - 1] != '\n')
        return DS_ECORRUPT; /* every line ends in a newline: catches truncation */
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;
        char *sp;

        if (n >= sizeof(line) || memchr(buf + pos, '\0', n) != NULL)
            return DS_ECORRUPT;
        memcpy(line, buf + pos, n);
        line[n] = '\0';
        pos += n + 1;
        if (first) {
            if (strncmp(line, "distsync-lease ", 15) != 0)
                return DS_ECORRUPT;
            if (strcmp(line, LEASE_MAGIC) != 0)
                return DS_EVERSION;
            first = 0;
            continue;
        }
        if (n == 0)
            continue;
        sp = strchr(line, ' ');
        if (sp == NULL)
            return DS_ECORRUPT;
        *sp = '\0';
        if (set_field(l, line, sp + 1, &seen) < 0)
            return DS_ECORRUPT;
    }
    return first || seen != 31 ? DS_ECORRUPT : 0;
}

int ds_lease_read_fs(const ds_fs_t *fs, int dsdir, ds_lease_t *l)
{
    char buf[4096];
    ssize_t n;
    int fd, rc = ds_pathsafe_open_state_fs(fs, dsdir, DS_LEASE_NAME, O_RDONLY, &fd);

    if (rc < 0)
        return rc == -ENOENT ? DS_ENOTFOUND : rc;
    do
        n = ds_fs_read(fs, fd, buf, sizeof(buf));
    while (n < 0 && errno == EINTR);
    rc = n < 0 ? -errno : 0;
    ds_fs_close(fs, fd);
    if (rc < 0)
        return rc;
    if ((size_t)n == sizeof(buf))
        return DS_ECORRUPT;
    return ds_lease_decode(buf, (size_t)n, l);
}

int ds_lease_write_fs(const ds_fs_t *fs, int dsdir, const ds_lease_t *l)
{
    char buf[4096];
    int n = ds_lease_encode(l, buf, sizeof(buf));

    if (n < 0)
        return n;
    return ds_atomic_write_fs(fs, dsdir, DS_LEASE_NAME, buf, (size_t)n);
}

int ds_lease_remove_fs(const ds_fs_t *fs, int dsdir)
{
    if (ds_fs_unlinkat(fs, dsdir, DS_LEASE_NAME, 0) < 0 && errno != ENOENT)
        return -errno;
    if (ds_fs_fsync(fs, dsdir) < 0)
        return -errno;
    return 0;
}

/* Opens and locks name. A sharing violation at the open (SMB: another
 * session holds the file open with DENY_ALL, the SMB backend's lock) counts
 * as the lock being held. */
static int lock_file(const ds_fs_t *fs, int dsdir, const char *name, int wait_ms, int *fd)
{
    int f, rc;

    *fd = -1;
    for (;;) {
        int e;

        rc = ds_pathsafe_open_state_fs(fs, dsdir, name, O_RDWR | O_CREAT, &f);
        if (rc == -EBUSY) {
            e = EWOULDBLOCK;
        } else if (rc < 0) {
            return rc;
        } else if (ds_fs_lock(fs, f) == 0) {
            *fd = f;
            return 0;
        } else {
            e = errno;
            ds_fs_close(fs, f);
        }
        if (e == EINTR)
            continue;
        if (e != EWOULDBLOCK || wait_ms <= 0)
            return e == EWOULDBLOCK ? DS_ELEASE : -e;
        usleep(10000);
        wait_ms -= 10;
    }
}

int ds_lease_lock_fs(const ds_fs_t *fs, int dsdir, int *fd)
{
    return lock_file(fs, dsdir, DS_LEASE_LOCK_NAME, 0, fd);
}

int ds_lease_guard_fs(const ds_fs_t *fs, int dsdir, int wait_ms, int *fd)
{
    return lock_file(fs, dsdir, DS_LEASE_GUARD_NAME, wait_ms, fd);
}

int ds_lease_read(int dsdir, ds_lease_t *l)
{
    return ds_lease_read_fs(&ds_fs_posix, dsdir, l);
}

int ds_lease_write(int dsdir, const ds_lease_t *l)
{
    return ds_lease_write_fs(&ds_fs_posix, dsdir, l);
}

int ds_lease_remove(int dsdir)
{
    return ds_lease_remove_fs(&ds_fs_posix, dsdir);
}

int ds_lease_lock(int dsdir, int *fd)
{
    return ds_lease_lock_fs(&ds_fs_posix, dsdir, fd);
}

int ds_lease_guard(int dsdir, int wait_ms, int *fd)
{
    return ds_lease_guard_fs(&ds_fs_posix, dsdir, wait_ms, fd);
}

void ds_lease_busy_message(const ds_lease_t *l, char *buf, size_t cap)
{
    char when[64] = "an unknown time";

    (void)ds_tz_format_utc(l->expiry, when, sizeof(when)); /* else as above */
    snprintf(buf, cap, "server is being synced by console %s (pid %" PRIu32 " on host %s) until %s",
             l->console[0] ? l->console : "?", l->pid, l->host[0] ? l->host : "?", when);
}

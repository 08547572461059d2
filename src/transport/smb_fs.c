/*
 * The filesystem seam over libsmbclient (smb_fs.h). A handle number
 * indexes a table of handles, each a URL and, for an open file, its
 * SMBCFILE; a directory handle is only its URL (the *at calls join names
 * to it). What SMB does differently, measured against Samba 4.17:
 *  - a file's last-write time is set by the server when a handle that
 *    wrote is closed, after any time we set through it: so futimens on a
 *    written file is kept pending and applied by path once the file is
 *    sealed (fsync or rename closes the SMB handle first);
 *  - a file open here cannot be renamed (EBUSY): rename seals it first;
 *  - there is no flock: the lock is an open with share mode DENY_ALL, which
 *    every other open of that file (ours, another worker's) is refused
 *    while it stays open, and which the server drops when the connection
 *    dies (a killed worker leaves no lock behind);
 *  - libsmbclient exposes no flush: fsync seals (flush + close) and relies
 *    on the server's close; a server's own write cache is outside reach;
 *  - a rename over an existing file is a delete, then the rename (ours
 *    for a target just seen or on EEXIST, else libsmbclient 4.17's own),
 *    so the name is absent for an instant (a crash there leaves only the
 *    tmp file: the manifest's loader then takes manifest.tmp), never
 *    partial; a target held open by an endpoint refuses the delete
 *    (sharing violation, EBUSY/EACCES), retried with backoff for
 *    replace_wait ms, then reported with the old file in place.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "distsync/error.h"
#include "distsync/log.h"
#include "smb_ctx.h"
#include "smb_dircache.h"
#include "smb_fs.h"
#include "smb_fs_int.h"

#define REPLACE_WAIT_MS   5000
#define REPLACE_FIRST_MS  50
#define REPLACE_MAX_SLEEP 1000

/* A new handle for url (copied). Returns its number, or -1 (ENOMEM). */
static int add(struct ds_smb_fs *s, const char *url, int dir)
{
    struct sh *h = calloc(1, sizeof(*h));
    size_t i;

    if (h == NULL || (h->url = strdup(url)) == NULL) {
        free(h);
        errno = ENOMEM;
        return -1;
    }
    h->dir = dir;
    for (i = 0; i < s->nh && s->h[i] != NULL; i++)
        ;
    if (i == s->nh) {
        struct sh **n = realloc(s->h, (s->nh * 2 + 8) * sizeof(*n));

        if (n == NULL) {
            free(h->url);
            free(h);
            errno = ENOMEM;
            return -1;
        }
        memset(n + s->nh, 0, (s->nh + 8) * sizeof(*n));
        s->h = n;
        s->nh = s->nh * 2 + 8;
    }
    s->h[i] = h;
    return (int)i + FD_BASE;
}

/* The URL of name at dirfd into buf. Returns 0 or -1 (ENAMETOOLONG, EBADF). */
static int join(const ds_fs_t *fs, int dirfd, const char *name, char *buf, size_t cap)
{
    const struct sh *d;
    int n;

    if (dirfd == AT_FDCWD) {
        n = snprintf(buf, cap, "%s", name);
    } else {
        if ((d = get(fs, dirfd)) == NULL)
            return -1;
        n = strcmp(name, ".") == 0 ? snprintf(buf, cap, "%s", d->url)
                                   : snprintf(buf, cap, "%s/%s", d->url, name);
    }
    if (n < 0 || (size_t)n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* See smb_fs_int.h. */
int ds__smb_fs_flush(struct ds_smb_fs *s, struct sh *h)
{
    size_t off = 0;

    while (off < h->wlen) {
        ssize_t w = ds__smbc.getFunctionWrite(s->c)(s->c, h->f, h->wbuf + off, h->wlen - off);

        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        s->st.write_calls++;
        s->st.bytes_written += (uint64_t)w;
        ds__smb_fs_moved_to(h, h->pos + (uint64_t)w);
        off += (size_t)w;
    }
    h->wlen = 0;
    return 0;
}

static int set_times(struct ds_smb_fs *s, const char *url, const struct timespec *mt)
{
    struct timeval tv[2] = {{mt->tv_sec, mt->tv_nsec / 1000}, {mt->tv_sec, mt->tv_nsec / 1000}};

    return ds__smbc.getFunctionUtimes(s->c)(s->c, url, tv);
}

/* Flushes and closes a written file, then applies a pending mtime: from
 * here on the file is addressed by its URL. Returns 0 or -1 with errno. */
static int seal(struct ds_smb_fs *s, struct sh *h)
{
    int rc = 0;

    if (h->f == NULL || h->dir)
        return 0;
    if (ds__smb_fs_flush(s, h) < 0)
        rc = -1;
    if (ds__smbc.getFunctionClose(s->c)(s->c, h->f) < 0 && rc == 0)
        rc = -1;
    h->f = NULL;
    h->sealed = 1;
    if (rc == 0 && h->have_mtime && set_times(s, h->url, &h->mtime) < 0)
        rc = -1;
    else if (rc == 0 && h->have_mtime && h->fresh)
        ds__smb_fs_know(h, &h->mtime);
    h->have_mtime = 0;
    return rc;
}

static int smb_openat(const ds_fs_t *fs, int dirfd, const char *name, int flags, mode_t mode)
{
    struct ds_smb_fs *s = S(fs);
    char url[4096];
    struct stat st;
    int fd;

    if (join(fs, dirfd, name, url, sizeof(url)) < 0)
        return -1;
    if (dirfd != AT_FDCWD && ds__smb_fs_refuse_link(s, url)) /* the root may be one */
        return -1;
    if (flags & O_DIRECTORY) {
        if (ds__smb_dircache_has(&s->dirs, url))
            return add(s, url, 1);
        if (ds__smbc.getFunctionStat(s->c)(s->c, url, &st) < 0)
            return -1;
        if (!S_ISDIR(st.st_mode)) {
            errno = ENOTDIR;
            return -1;
        }
        ds__smb_dircache_add(&s->dirs, url);
        return add(s, url, 1);
    }
    if (flags & O_CREAT)
        ds__smb_fs_unlisted(s);
    fd = add(s, url, 0);
    if (fd < 0)
        return -1;
    /* O_RDWR for O_WRONLY: Samba refuses fstat on a write-only handle */
    if ((flags & O_ACCMODE) == O_WRONLY)
        flags = (flags & ~O_ACCMODE) | O_RDWR;
    s->h[fd - FD_BASE]->f = ds__smbc.getFunctionOpen(s->c)(
        s->c, url, flags & (O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC), mode);
    s->h[fd - FD_BASE]->fresh = (flags & (O_EXCL | O_TRUNC)) != 0;
    if (s->h[fd - FD_BASE]->f == NULL) {
        int e = errno;

        free(s->h[fd - FD_BASE]->url);
        free(s->h[fd - FD_BASE]);
        s->h[fd - FD_BASE] = NULL;
        errno = e;
        return -1;
    }
    return fd;
}

static ssize_t smb_read(const ds_fs_t *fs, int fd, void *buf, size_t n)
{
    struct ds_smb_fs *s = S(fs);
    struct sh *h = get(fs, fd);
    ssize_t r;

    if (h == NULL || h->f == NULL) {
        errno = EBADF;
        return -1;
    }
    h->fresh = 0; /* the offset moved: end no longer tracked */
    r = ds__smbc.getFunctionRead(s->c)(s->c, h->f, buf, n);
    if (r > 0) {
        s->st.read_calls++;
        s->st.bytes_read += (uint64_t)r;
    }
    return r;
}

static ssize_t smb_pread(const ds_fs_t *fs, int fd, void *buf, size_t n, off_t off)
{
    struct ds_smb_fs *s = S(fs);
    struct sh *h = get(fs, fd);

    if (h == NULL || h->f == NULL) {
        errno = EBADF;
        return -1;
    }
    if (ds__smbc.getFunctionLseek(s->c)(s->c, h->f, off, SEEK_SET) < 0)
        return -1;
    return smb_read(fs, fd, buf, n);
}

static ssize_t smb_write(const ds_fs_t *fs, int fd, const void *buf, size_t n)
{
    struct ds_smb_fs *s = S(fs);
    struct sh *h = get(fs, fd);

    if (h == NULL || h->f == NULL) {
        errno = EBADF;
        return -1;
    }
    if (h->wbuf == NULL && (h->wbuf = malloc(DS_SMB_FS_WRITE_MAX)) == NULL) {
        errno = ENOMEM;
        return -1;
    }
    h->wrote = 1;
    if (n > DS_SMB_FS_WRITE_MAX - h->wlen)
        n = DS_SMB_FS_WRITE_MAX - h->wlen;
    memcpy(h->wbuf + h->wlen, buf, n);
    h->wlen += n;
    if (h->wlen == DS_SMB_FS_WRITE_MAX && ds__smb_fs_flush(s, h) < 0)
        return -1;
    return (ssize_t)n;
}

static void drop(struct ds_smb_fs *s, int fd)
{
    struct sh *h = s->h[fd - FD_BASE];

    free(h->wbuf);
    free(h->url);
    free(h);
    s->h[fd - FD_BASE] = NULL;
}

static int smb_close(const ds_fs_t *fs, int fd)
{
    struct ds_smb_fs *s = S(fs);
    struct sh *h = get(fs, fd);
    int rc = 0;

    if (h == NULL)
        return -1;
    if (h->d != NULL)
        ds__smbc.getFunctionClosedir(s->c)(s->c, h->d);
    if (h->f != NULL && h->wrote)
        rc = seal(s, h);
    else if (h->f != NULL)
        rc = ds__smbc.getFunctionClose(s->c)(s->c, h->f);
    drop(s, fd);
    return rc < 0 ? -1 : 0;
}

static int smb_fsync(const ds_fs_t *fs, int fd)
{
    struct sh *h = get(fs, fd);

    if (h == NULL)
        return -1;
    return h->wrote ? seal(S(fs), h) : 0;
}

static int smb_fstat(const ds_fs_t *fs, int fd, struct stat *st)
{
    struct ds_smb_fs *s = S(fs);
    struct sh *h = get(fs, fd);
    int rc;

    if (h == NULL)
        return -1;
    if (ds__smb_fs_known(s, h, st))
        return 0;
    if (h->f != NULL && h->wlen > 0 && ds__smb_fs_flush(s, h) < 0)
        return -1;
    rc = h->f != NULL ? ds__smbc.getFunctionFstat(s->c)(s->c, h->f, st)
                      : ds__smbc.getFunctionStat(s->c)(s->c, h->url, st);
    if (rc == 0)
        ds__smb_fs_fix_stat(st);
    if (rc == 0)
        ds__smb_fs_stated(s, h, st);
    return rc;
}

static int smb_fstatat(const ds_fs_t *fs, int dirfd, const char *name, struct stat *st, int flags)
{
    struct ds_smb_fs *s = S(fs);
    char url[4096];

    (void)flags; /* no symlinks without unix extensions: reparse points show as ones */
    if (join(fs, dirfd, name, url, sizeof(url)) < 0)
        return -1;
    if (ds__smb_fs_listed(fs, dirfd, name, st))
        return 0;
    if (ds__smb_dircache_has(&s->links, url)) {
        memset(st, 0, sizeof(*st));
        (void)ds__smb_fs_reparse(st, DS_SMB_ATTR_REPARSE);
        return 0;
    }
    if (!ds__smb_fs_opened(s, url, st)) {
        if (ds__smbc.getFunctionStat(s->c)(s->c, url, st) < 0)
            return -1;
        ds__smb_fs_fix_stat(st);
    }
    free(s->seen_file);
    s->seen_file = S_ISREG(st->st_mode) ? strdup(url) : NULL; /* NULL: not remembered */
    return 0;
}

static int smb_futimens(const ds_fs_t *fs, int fd, const struct timespec ts[2])
{
    struct sh *h = get(fs, fd);

    if (h == NULL)
        return -1;
    if (ts[1].tv_nsec == UTIME_OMIT)
        return 0;
    if (h->wrote && !h->sealed) { /* the server's close would overwrite it */
        h->mtime = ts[1];
        h->have_mtime = 1;
        return 0;
    }
    return set_times(S(fs), h->url, &ts[1]);
}

static int smb_fchmod(const ds_fs_t *fs, int fd, mode_t mode)
{
    (void)mode; /* SMB has no POSIX modes (the share's create mask decides) */
    return get(fs, fd) != NULL ? 0 : -1;
}

/* Seals (written) or closes (read) every open file handle on url: SMB
 * refuses to rename or delete a file open here. Returns 0 or -1. */
static int release_url(struct ds_smb_fs *s, const char *url)
{
    for (size_t i = 0; i < s->nh; i++) {
        struct sh *h = s->h[i];

        if (h == NULL || h->dir || h->f == NULL || strcmp(h->url, url) != 0)
            continue;
        if (h->wrote) {
            if (seal(s, h) < 0)
                return -1;
        } else {
            ds__smbc.getFunctionClose(s->c)(s->c, h->f);
            h->f = NULL;
            h->sealed = 1;
        }
    }
    return 0;
}

/* Another open refused by a share mode, or a delete of a file open
 * without FILE_SHARE_DELETE. */
static int sharing_violation(int e)
{
    return e == EBUSY || e == EACCES || e == ETXTBSY;
}

static int smb_renameat(const ds_fs_t *fs, int od, const char *on, int nd, const char *nn)
{
    struct ds_smb_fs *s = S(fs);
    char from[4096], to[4096];
    struct timespec nap = {0, REPLACE_FIRST_MS * 1000000L};
    unsigned waited = 0;
    int rc, exists;

    if (join(fs, od, on, from, sizeof(from)) < 0 || join(fs, nd, nn, to, sizeof(to)) < 0)
        return -1;
    /* an open source cannot be renamed, and our own open of the target
     * (the basis of this very file) would refuse its delete */
    if (release_url(s, from) < 0 || release_url(s, to) < 0)
        return -1;
    ds__smb_fs_unlisted(s);
    ds__smb_dircache_forget(&s->dirs, from);
    ds__smb_dircache_forget(&s->dirs, to);
    ds__smb_dircache_forget(&s->links, from);
    ds__smb_dircache_forget(&s->links, to);
    /* a target just seen (the publish stats it) is deleted first: the
     * rename would fail with EEXIST, a round trip for nothing */
    exists = s->seen_file != NULL && strcmp(s->seen_file, to) == 0;
    free(s->seen_file);
    s->seen_file = NULL;
    /* tests: the state a crash between the delete and the rename leaves */
    while (s->test_pause != NULL && strcmp(nn, s->test_pause) == 0 &&
           ds__smbc.getFunctionUnlink(s->c)(s->c, to) == 0)
        pause();
    for (;;) {
        rc = exists ? -1 : ds__smbc.getFunctionRename(s->c)(s->c, from, s->c, to);
        if (exists || (rc < 0 && errno == EEXIST)) {         /* SMB2 rename does not replace: */
            rc = ds__smbc.getFunctionUnlink(s->c)(s->c, to); /* delete, then rename */
            if (rc == 0 || errno == ENOENT)
                rc = ds__smbc.getFunctionRename(s->c)(s->c, from, s->c, to);
        }
        if (rc == 0 || !sharing_violation(errno) || waited >= s->replace_wait_ms)
            break;
        s->st.replace_retries++;
        nanosleep(&nap, NULL);
        waited += (unsigned)(nap.tv_nsec / 1000000L);
        nap.tv_nsec = nap.tv_nsec * 2 > REPLACE_MAX_SLEEP * 1000000L ? REPLACE_MAX_SLEEP * 1000000L
                                                                     : nap.tv_nsec * 2;
    }
    if (rc < 0)
        return -1;
    for (size_t i = 0; i < s->nh; i++)
        if (s->h[i] != NULL && strcmp(s->h[i]->url, from) == 0) {
            char *u = strdup(to);

            if (u != NULL) {
                free(s->h[i]->url);
                s->h[i]->url = u;
            }
        }
    return 0;
}

static int smb_unlinkat(const ds_fs_t *fs, int dirfd, const char *name, int flags)
{
    struct ds_smb_fs *s = S(fs);
    char url[4096];

    if (join(fs, dirfd, name, url, sizeof(url)) < 0)
        return -1;
    ds__smb_dircache_forget(&s->dirs, url);
    ds__smb_dircache_forget(&s->links, url);
    ds__smb_fs_unlisted(s);
    if (s->seen_file != NULL && strcmp(s->seen_file, url) == 0) {
        free(s->seen_file);
        s->seen_file = NULL;
    }
    if (flags & AT_REMOVEDIR)
        return ds__smbc.getFunctionRmdir(s->c)(s->c, url);
    return ds__smbc.getFunctionUnlink(s->c)(s->c, url);
}

static int smb_mkdirat(const ds_fs_t *fs, int dirfd, const char *name, mode_t mode)
{
    struct ds_smb_fs *s = S(fs);
    char url[4096];

    if (join(fs, dirfd, name, url, sizeof(url)) < 0)
        return -1;
    ds__smb_fs_unlisted(s);
    if (ds__smbc.getFunctionMkdir(s->c)(s->c, url, mode) < 0)
        return -1;
    ds__smb_dircache_add(&s->dirs, url);
    return 0;
}

static int smb_dup(const ds_fs_t *fs, int fd)
{
    struct sh *h = get(fs, fd);

    if (h == NULL)
        return -1;
    if (!h->dir) { /* the receiver dups directories only */
        errno = EINVAL;
        return -1;
    }
    return add(S(fs), h->url, 1);
}

static int smb_lock(const ds_fs_t *fs, int fd)
{
    struct ds_smb_fs *s = S(fs);
    struct sh *h = get(fs, fd);
    int e;

    if (h == NULL || h->dir) {
        errno = h == NULL ? EBADF : EISDIR;
        return -1;
    }
    if (h->locked)
        return 0;
    if (h->f != NULL) /* our own open would conflict with DENY_ALL */
        ds__smbc.getFunctionClose(s->c)(s->c, h->f);
    ds__smbc.setOptionOpenShareMode(s->c, SMBC_SHAREMODE_DENY_ALL);
    h->f = ds__smbc.getFunctionOpen(s->c)(s->c, h->url, O_RDWR, 0);
    e = errno;
    ds__smbc.setOptionOpenShareMode(s->c, SMBC_SHAREMODE_DENY_NONE);
    if (h->f == NULL) {
        errno = sharing_violation(e) ? EWOULDBLOCK : e;
        return -1;
    }
    h->locked = 1;
    return 0;
}

static ds_fs_dir_t *smb_fdopendir(const ds_fs_t *fs, int fd)
{
    struct ds_smb_fs *s = S(fs);
    struct sh *h = get(fs, fd);

    if (h == NULL)
        return NULL;
    if (!h->dir) {
        errno = ENOTDIR;
        return NULL;
    }
    if (h->d == NULL && (h->d = ds__smbc.getFunctionOpendir(s->c)(s->c, h->url)) == NULL)
        return NULL;
    return (ds_fs_dir_t *)(intptr_t)fd;
}

static struct dirent *smb_readdir(const ds_fs_t *fs, ds_fs_dir_t *d)
{
    struct ds_smb_fs *s = S(fs);
    struct sh *h = get(fs, (int)(intptr_t)d);
    const struct libsmb_file_info *e;
    int link;

    if (h == NULL || h->d == NULL)
        return NULL;
    errno = 0;
    h->de_ok = 0;
    e = ds__smbc.getFunctionReaddirPlus2(s->c)(s->c, h->d, &h->de_st);
    if (e == NULL)
        return NULL;
    if (ds__smb_fs_dots(s, h, e->name, h->de_st.st_ino)) { /* reached through a link */
        ds__smb_dircache_forget(&s->dirs, h->url);
        ds__smb_dircache_add(&s->links, h->url);
        (void)ds__smb_fs_refuse_link(s, h->url); /* logs it */
        return NULL;                             /* nothing listed through it */
    }
    memset(&h->de, 0, sizeof(h->de));
    snprintf(h->de.d_name, sizeof(h->de.d_name), "%s", e->name);
    ds__smb_fs_fix_stat(&h->de_st);
    h->de_ok = strcmp(e->name, ".") != 0 && strcmp(e->name, "..") != 0;
    link = h->de_ok && ds__smb_fs_reparse(&h->de_st, e->attrs);
    h->de.d_type = link                        ? DT_LNK
                   : S_ISDIR(h->de_st.st_mode) ? DT_DIR
                   : S_ISREG(h->de_st.st_mode) ? DT_REG
                                               : DT_UNKNOWN;
    if (h->de.d_type == DT_DIR || link) { /* a walk opens a folder next: no stat then */
        char url[4096];

        if (join(fs, (int)(intptr_t)d, e->name, url, sizeof(url)) == 0)
            ds__smb_dircache_add(link ? &s->links : &s->dirs, url);
    }
    return &h->de;
}

static void smb_rewinddir(const ds_fs_t *fs, ds_fs_dir_t *d)
{
    struct ds_smb_fs *s = S(fs);
    struct sh *h = get(fs, (int)(intptr_t)d);

    if (h == NULL || h->d == NULL)
        return;
    ds__smbc.getFunctionClosedir(s->c)(s->c, h->d);
    h->d = ds__smbc.getFunctionOpendir(s->c)(s->c, h->url);
}

static int smb_closedir(const ds_fs_t *fs, ds_fs_dir_t *d)
{
    return smb_close(fs, (int)(intptr_t)d);
}

static int smb_dirfd(const ds_fs_t *fs, ds_fs_dir_t *d)
{
    (void)fs;
    return (int)(intptr_t)d;
}

static int smb_links_seen(const ds_fs_t *fs)
{
    return S(fs)->links.n > 0;
}

static const ds_fs_ops_t smb_ops = {
    .name = "smb",
    .no_special = 1,
    .remote = 1,
    .openat = smb_openat,
    .read = smb_read,
    .pread = smb_pread,
    .write = smb_write,
    .close = smb_close,
    .fsync = smb_fsync,
    .fstat = smb_fstat,
    .fstatat = smb_fstatat,
    .futimens = smb_futimens,
    .fchmod = smb_fchmod,
    .renameat = smb_renameat,
    .unlinkat = smb_unlinkat,
    .mkdirat = smb_mkdirat,
    .dup = smb_dup,
    .copy_range = ds__smb_fs_copy_range,
    .links_seen = smb_links_seen,
    .copy_state = ds__smb_fs_copy_state,
    .lock = smb_lock,
    .fdopendir = smb_fdopendir,
    .readdir = smb_readdir,
    .rewinddir = smb_rewinddir,
    .closedir = smb_closedir,
    .dirfd = smb_dirfd,
};

int ds__smb_fs_new(ds_smb_ctx_t *ctx, ds_smb_fs_t **out)
{
    struct ds_smb_fs *s = calloc(1, sizeof(*s));

    *out = NULL;
    if (s == NULL)
        return DS_ENOMEM;
    s->fs.ops = &smb_ops;
    s->fs.ctx = s;
    s->ctx = ctx;
    s->c = ds__smb_ctx_raw(ctx);
    s->replace_wait_ms = REPLACE_WAIT_MS;
    *out = s;
    return 0;
}

const ds_fs_t *ds__smb_fs(ds_smb_fs_t *s)
{
    return &s->fs;
}

const ds_smb_fs_stats_t *ds__smb_fs_stats(const ds_smb_fs_t *s)
{
    return &s->st;
}

void ds__smb_fs_set_replace_wait(ds_smb_fs_t *s, unsigned ms)
{
    s->replace_wait_ms = ms;
}

int ds__smb_fs_test_splice_share(ds_smb_fs_t *s, const char *share)
{
    free(s->test_share);
    s->test_share = strdup(share);
    return s->test_share != NULL ? 0 : DS_ENOMEM;
}

void ds__smb_fs_test_replace_pause(ds_smb_fs_t *s, const char *name)
{
    s->test_pause = name;
}

void ds__smb_fs_free(ds_smb_fs_t *s)
{
    if (s == NULL)
        return;
    free(s->test_share);
    free(s->seen_file);
    free(s->told_link);
    ds__smb_dircache_close(&s->dirs);
    ds__smb_dircache_close(&s->links);
    for (size_t i = 0; i < s->nh; i++)
        if (s->h[i] != NULL)
            (void)smb_close(&s->fs, (int)i + FD_BASE);
    free(s->h);
    free(s);
}

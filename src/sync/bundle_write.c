/*
 * The bundle archive (include/distsync/bundle.h) written with libarchive:
 * pax-restricted tar (plain ustar headers for these short names), zstd. The
 * file is written as OUT.tmp-PID next to OUT, fsynced, renamed over OUT and
 * the directory fsynced, so OUT is the old bundle or the new one, never a
 * part. A cancelled export (ds_sync_cancel: the CLI's SIGINT/SIGTERM)
 * stops between blocks and removes its OUT.tmp-PID; an export also removes
 * the OUT.tmp-PID of an earlier one that died (SIGKILL, a crash). Each data entry's bytes are
 * hashed as they are written and checked against the index (a store file that changed since the
 * scan fails the export rather than writing a bundle that lies).
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bundle_exp.h"

#define WRITE_BLOCK (1u << 20)

struct out {
    struct archive *a;
    const char *path; /* the bundle, for messages */
    time_t now;
    uint8_t *buf;
};

int ds__exp_read_file(struct exp *x, const char *path, size_t max, uint8_t **buf, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), rc = 0;
    struct stat st;
    ssize_t r = 0;

    *buf = NULL;
    if (fd < 0)
        return ds__exp_fail(x, -errno, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max)
        rc = ds__exp_fail(x, DS_ENOTREG, "%s: not a regular file of at most %zu bytes", path, max);
    else if ((*buf = malloc((size_t)st.st_size + 1)) == NULL)
        rc = DS_ENOMEM;
    else if ((r = pread(fd, *buf, (size_t)st.st_size, 0)) != st.st_size)
        rc = ds__exp_fail(x, r < 0 ? -errno : DS_ECHANGED, "%s: cannot read: %s", path,
                          r < 0 ? strerror(errno) : "it changed while read");
    close(fd);
    if (rc < 0) {
        free(*buf);
        *buf = NULL;
        return rc;
    }
    *len = (size_t)st.st_size;
    return 0;
}

static int arc_fail(struct exp *x, struct out *o, const char *what)
{
    const char *why = archive_error_string(o->a);
    int no = archive_errno(o->a);

    return ds__exp_fail(x, no > 0 ? -no : DS_EINTERNAL, "%s: writing %s: %s", o->path, what,
                        why      ? why
                        : no > 0 ? strerror(no)
                                 : "libarchive error");
}

/* Starts a regular-file entry of size bytes. */
static int entry(struct exp *x, struct out *o, const char *name, uint64_t size)
{
    struct archive_entry *e = archive_entry_new();
    int rc = 0;

    if (e == NULL)
        return DS_ENOMEM;
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)size);
    archive_entry_set_mtime(e, o->now, 0);
    if (archive_write_header(o->a, e) != ARCHIVE_OK)
        rc = arc_fail(x, o, name);
    archive_entry_free(e);
    return rc;
}

static int put_bytes(struct exp *x, struct out *o, const char *name, const void *p, size_t n)
{
    int rc = entry(x, o, name, n);

    if (rc == 0 && n > 0 && archive_write_data(o->a, p, n) != (la_ssize_t)n)
        rc = arc_fail(x, o, name);
    return rc;
}

/* Copies n bytes of fd into entry name, checking their SHA-256. */
static int put_fd(struct exp *x, struct out *o, const char *name, int fd, uint64_t n,
                  const uint8_t sha[DS_SHA256_LEN], const char *what)
{
    uint8_t got[DS_SHA256_LEN];
    ds_sha256_t sh;
    uint64_t off = 0;
    int rc = entry(x, o, name, n);

    if (rc == 0)
        rc = ds_sha256_init(&sh);
    while (rc == 0 && off < n) {
        size_t want = n - off < WRITE_BLOCK ? (size_t)(n - off) : WRITE_BLOCK;
        ssize_t r = pread(fd, o->buf, want, (off_t)off);

        if (r <= 0) {
            rc = ds__exp_fail(x, r < 0 ? -errno : DS_ECHANGED, "%s: cannot read: %s", what,
                              r < 0 ? strerror(errno) : "it shrank (run distsync scan)");
            break;
        }
        if (ds_sync_cancelled(x->s)) {
            rc = ds__exp_fail(x, -ECANCELED, "%s: cancelled", o->path);
            break;
        }
        ds_sha256_update(&sh, o->buf, (size_t)r);
        if (archive_write_data(o->a, o->buf, (size_t)r) != r)
            rc = arc_fail(x, o, name);
        off += (uint64_t)r;
    }
    if (rc == 0) {
        ds_sha256_final(&sh, got);
        if (memcmp(got, sha, DS_SHA256_LEN) != 0)
            rc = ds__exp_fail(x, DS_ECHANGED, "%s: changed since the last scan (run distsync scan)",
                              what);
    }
    ds_sha256_close(&sh);
    return rc;
}

/* Item i's data entry: the store file, or its delta again (a cache hit). */
static int put_data(struct exp *x, struct out *o, size_t i)
{
    const ds_bundle_item_t *b = &x->items[i];
    ds_plan_item_t it = {.path = b->path, .size = b->size};
    char name[32], what[8300];
    uint64_t dsize = 0;
    int fd = -1, rc;

    ds_bundle_data_name(i, name, sizeof(name));
    memcpy(it.sha256, b->sha256, DS_SHA256_LEN);
    memcpy(it.basis_sha256, b->basis_sha256, DS_SHA256_LEN);
    if (b->how == DS_BUNDLE_LIT) {
        rc = ds__exp_open_store(x, b->path, b->size, &fd, NULL);
        snprintf(what, sizeof(what), "store file %s/%s", x->s->o.cfg->store, b->path);
    } else {
        rc = ds__exp_delta(x, &it, &fd, &dsize);
        snprintf(what, sizeof(what), "the delta of %s from %s", b->path, b->basis);
        if (rc == 0 && dsize != b->data_len)
            rc = ds__exp_fail(x, DS_ECHANGED, "%s: its size changed while exporting", what);
        else if (rc < 0 && x->err[0] == '\0')
            rc = ds__exp_fail(x, rc, "%s: %s", what, ds_strerror(rc));
    }
    if (rc == 0)
        rc = put_fd(x, o, name, fd, b->data_len, b->data_sha256, what);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Header, manifest and index. */
static int put_meta(struct exp *x, struct out *o, ds_bundle_export_stats_t *st)
{
    ds_bundle_hdr_t h = {.version = DS_BUNDLE_VERSION, .has_basis = !x->o->full};
    uint8_t *bm = NULL, *rm = NULL;
    char *hdr = NULL, *idx = NULL;
    size_t bl = 0, rl = 0, hl = 0, il = 0, icap = 0;
    int rc = ds_manifest_encode(x->basis, &bm, &bl);

    snprintf(h.server, sizeof(h.server), "%s", x->srv->name);
    snprintf(h.console, sizeof(h.console), "%s", ds_sync_console_id(x->s));
    h.created = (int64_t)o->now;
    h.items = x->n;
    h.data_bytes = st->data_bytes;
    if (rc == 0)
        rc = ds_manifest_encode(x->result, &rm, &rl);
    if (rc == 0)
        rc = ds_sha256(bm, bl, h.basis);
    if (rc == 0)
        rc = ds_sha256(rm, rl, h.result);
    if (rc == 0)
        rc = ds_bundle_hdr_encode(&h, &hdr, &hl);
    for (size_t i = 0; rc == 0 && i < x->n; i++)
        rc = ds_bundle_item_encode(&x->items[i], &idx, &il, &icap);
    if (rc == 0)
        rc = put_bytes(x, o, DS_BUNDLE_HEADER, hdr, hl);
    if (rc == 0)
        rc = put_bytes(x, o, DS_BUNDLE_MANIFEST, rm, rl);
    if (rc == 0)
        rc = put_bytes(x, o, DS_BUNDLE_INDEX, idx ? idx : "", il);
    free(bm);
    free(rm);
    free(hdr);
    free(idx);
    return rc;
}

/* Opens the archive on fd with the zstd filter at level. */
static int arc_open(struct exp *x, struct out *o, int fd)
{
    char lv[16];

    snprintf(lv, sizeof(lv), "%d", x->o->level > 0 ? x->o->level : 3);
    if ((o->a = archive_write_new()) == NULL)
        return DS_ENOMEM;
    if (archive_write_add_filter_zstd(o->a) != ARCHIVE_OK ||
        archive_write_set_format_pax_restricted(o->a) != ARCHIVE_OK ||
        archive_write_set_filter_option(o->a, "zstd", "compression-level", lv) != ARCHIVE_OK ||
        archive_write_open_fd(o->a, fd) != ARCHIVE_OK)
        return arc_fail(x, o, "the archive");
    return 0;
}

/* fsync(fd), close, rename tmp over out, fsync the directory. */
static int publish(struct exp *x, int fd, const char *tmp, const char *out, uint64_t *size)
{
    char *d = strdup(out);
    struct stat st;
    int dfd, rc = 0;

    if (fsync(fd) < 0 || fstat(fd, &st) < 0)
        rc = ds__exp_fail(x, -errno, "%s: cannot write: %s", tmp, strerror(errno));
    *size = rc == 0 ? (uint64_t)st.st_size : 0;
    if (close(fd) < 0 && rc == 0)
        rc = ds__exp_fail(x, -errno, "%s: cannot write: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, out) < 0)
        rc = ds__exp_fail(x, -errno, "%s: cannot rename to %s: %s", tmp, out, strerror(errno));
    if (rc == 0 && d && (dfd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(d);
    return rc;
}

/* Removes OUT.tmp-PID files next to out that a dead export of ours left:
 * regular files of this user whose PID no longer runs (a PID that runs,
 * even reused by another program, keeps its file). Best effort. */
static void clean_stale(const char *out)
{
    char *d = strdup(out), *b = strdup(out), pre[NAME_MAX + 8];
    const char *base = b ? basename(b) : NULL;
    DIR *dir = d ? opendir(dirname(d)) : NULL;
    struct dirent *e;
    size_t pl = base ? (size_t)snprintf(pre, sizeof(pre), "%s.tmp-", base) : 0;

    while (dir != NULL && pl < sizeof(pre) && (e = readdir(dir)) != NULL) {
        char *end;
        long pid;
        struct stat st;

        if (strncmp(e->d_name, pre, pl) != 0 || e->d_name[pl] < '1' || e->d_name[pl] > '9')
            continue;
        errno = 0;
        pid = strtol(e->d_name + pl, &end, 10);
        if (*end != '\0' || errno != 0 || pid <= 0 || pid == (long)getpid() ||
            kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            st.st_uid == geteuid())
            (void)unlinkat(dirfd(dir), e->d_name, 0);
    }
    if (dir != NULL)
        closedir(dir);
    free(d);
    free(b);
}

int ds__exp_write(struct exp *x, ds_bundle_export_stats_t *st)
{
    struct out o = {.path = x->o->out, .now = time(NULL), .buf = malloc(WRITE_BLOCK)};
    char *tmp = NULL;
    struct stat ost;
    int fd = -1, rc = 0;

    if (o.buf == NULL || asprintf(&tmp, "%s.tmp-%ld", x->o->out, (long)getpid()) < 0) {
        free(o.buf);
        return ds__exp_fail(x, DS_ENOMEM, "out of memory");
    }
    if (stat(x->o->out, &ost) == 0 && S_ISDIR(ost.st_mode)) { /* before writing it all */
        free(o.buf);
        free(tmp);
        return ds__exp_fail(x, -EISDIR, "%s: %s (--out names the bundle file)", x->o->out,
                            strerror(EISDIR));
    }
    clean_stale(x->o->out);
    (void)unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        rc = ds__exp_fail(x, -errno, "%s: cannot create: %s", tmp, strerror(errno));
    if (rc == 0)
        rc = arc_open(x, &o, fd);
    if (rc == 0)
        rc = put_meta(x, &o, st);
    for (size_t i = 0; rc == 0 && i < x->n; i++)
        if (ds_sync_cancelled(x->s))
            rc = ds__exp_fail(x, -ECANCELED, "%s: cancelled", x->o->out);
        else if (x->items[i].how == DS_BUNDLE_LIT || x->items[i].how == DS_BUNDLE_DELTA) {
            if (x->o->test_pause_ms > 0)
                usleep(x->o->test_pause_ms * 1000u);
            rc = put_data(x, &o, i);
        }
    if (rc == 0 && archive_write_close(o.a) != ARCHIVE_OK)
        rc = arc_fail(x, &o, "the end of the archive");
    if (o.a != NULL)
        archive_write_free(o.a);
    if (rc == 0) {
        rc = publish(x, fd, tmp, x->o->out, &st->bundle_bytes);
        fd = -1;
    }
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        (void)unlink(tmp);
    free(tmp);
    free(o.buf);
    return rc;
}

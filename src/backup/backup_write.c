/*
 * distsync backup: the config, an online copy of the catalog, the
 * known_hosts files and (when asked) the secret files, in one tar + zstd
 * archive written atomically with mode 0600.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup_int.h"
#include "distsync/catalog.h"
#include "distsync/fsutil.h"
#include "distsync/version.h"

#define BLOCK (256u << 10)

struct writer {
    const ds_backup_opts_t *o;
    ds_backup_manifest_t *m;
    char **src; /* per m->files[i]: where its bytes are read (NULL: dest) */
    char stage[PATH_MAX];
    char *buf; /* BLOCK bytes: reads of the files */
    char *err;
    size_t errlen;
};

/* Opens path for reading (O_NONBLOCK: a FIFO does not hang), refusing
 * anything but a regular file. Returns the fd or < 0 with err set. */
static int open_reg(const char *path, struct stat *st, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), e;

    if (fd < 0) {
        e = errno;
        snprintf(err, errlen, "%s: cannot read it: %s", path, strerror(e));
        return -e;
    }
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        snprintf(err, errlen, "%s: not a regular file", path);
        return DS_ENOTREG;
    }
    return fd;
}

/* Hashes the file at path into f (size, mode, SHA-256). */
static int hash_file(const char *path, ds_backup_file_t *f, char *buf, char *err, size_t errlen)
{
    ds_sha256_t h;
    struct stat st;
    ssize_t k;
    int fd = open_reg(path, &st, err, errlen), rc;

    if (fd < 0)
        return fd;
    if ((rc = ds_sha256_init(&h)) < 0) {
        close(fd);
        return rc;
    }
    f->size = 0;
    while ((k = read(fd, buf, BLOCK)) > 0) {
        ds_sha256_update(&h, buf, (size_t)k);
        f->size += (uint64_t)k;
    }
    rc = k < 0 ? -errno : 0;
    if (rc < 0)
        snprintf(err, errlen, "%s: read failed: %s", path, strerror(-rc));
    ds_sha256_final(&h, f->sha256);
    ds_sha256_close(&h);
    f->mode = st.st_mode & 0777u;
    close(fd);
    return rc;
}

static int add_file(struct writer *w, const char *name, ds_backup_role_t role, const char *dest,
                    const char *src)
{
    ds_backup_manifest_t *m = w->m;
    ds_backup_file_t *x = realloc(m->files, (m->nfiles + 1) * sizeof(*x));
    char **s = realloc(w->src, (m->nfiles + 1) * sizeof(*s));
    int rc;

    if (x)
        m->files = x;
    if (s)
        w->src = s;
    if (x == NULL || s == NULL)
        return DS_ENOMEM;
    x = &m->files[m->nfiles];
    memset(x, 0, sizeof(*x));
    w->src[m->nfiles] = NULL;
    snprintf(x->name, sizeof(x->name), "%s", name);
    x->role = role;
    if ((x->dest = strdup(dest)) == NULL || (src && (w->src[m->nfiles] = strdup(src)) == NULL)) {
        free(x->dest);
        return DS_ENOMEM;
    }
    m->nfiles++;
    if ((rc = hash_file(src ? src : dest, x, w->buf, w->err, w->errlen)) < 0)
        return rc;
    if (src != NULL) { /* a copy (the catalog's): the mode is the original's */
        struct stat st;

        if (stat(dest, &st) < 0) {
            rc = -errno;
            snprintf(w->err, w->errlen, "%s: %s", dest, strerror(errno));
            return rc;
        }
        x->mode = st.st_mode & 0777u;
    }
    if (!ds__backup_path_normal(dest)) {
        snprintf(w->err, w->errlen, "%s: the path holds a control byte; it cannot be backed up",
                 dest);
        return DS_EPATH;
    }
    return 0;
}

static int add_omitted(ds_backup_manifest_t *m, ds_backup_role_t role, const char *dest)
{
    ds_backup_omitted_t *x = realloc(m->omitted, (m->nomitted + 1) * sizeof(*x));

    if (x == NULL)
        return DS_ENOMEM;
    m->omitted = x;
    if ((x[m->nomitted].dest = strdup(dest)) == NULL)
        return DS_ENOMEM;
    x[m->nomitted++].role = role;
    return 0;
}

/* The config, the catalog's copy, the files the config names. */
static int collect(struct writer *w)
{
    const ds_config_t *cfg = w->o->cfg;
    ds__backup_want_t *want = NULL;
    char p[PATH_MAX], cat[PATH_MAX], copy[PATH_MAX + 16], name[32];
    size_t nwant = 0, nk = 0, ns = 0;
    struct stat st;
    int rc;

    if (realpath(cfg->path, p) == NULL) {
        rc = -errno;
        snprintf(w->err, w->errlen, "%s: %s", cfg->path, strerror(errno));
        return rc;
    }
    if ((rc = add_file(w, "config.0", DS_BACKUP_CONFIG, p, NULL)) < 0)
        return rc;
    if (ds_catalog_path(cfg->state, p, sizeof(p)) < 0 ||
        ds__backup_normalize(p, cat, sizeof(cat)) < 0) {
        snprintf(w->err, w->errlen, "%s: state path too long", cfg->state);
        return -ENAMETOOLONG;
    }
    if (stat(cat, &st) < 0) {
        rc = -errno;
        snprintf(w->err, w->errlen, "%s: no catalog to back up: %s", cat, strerror(errno));
        return rc;
    }
    snprintf(copy, sizeof(copy), "%s/catalog.db", w->stage);
    if ((rc = ds_catalog_backup(cat, copy, w->err, w->errlen)) < 0)
        return rc;
    if ((rc = add_file(w, "catalog.db", DS_BACKUP_CATALOG, cat, copy)) < 0)
        return rc;
    if ((rc = ds__backup_config_files(cfg, &want, &nwant, w->err, w->errlen)) < 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < nwant; i++) {
        const char *path = want[i].path;

        if (want[i].role == DS_BACKUP_KNOWN_HOSTS) {
            if (stat(path, &st) < 0 && errno == ENOENT)
                continue; /* nothing trusted yet: `distsync trust` writes it */
            snprintf(name, sizeof(name), "known_hosts.%zu", nk++);
            rc = add_file(w, name, DS_BACKUP_KNOWN_HOSTS, path, NULL);
        } else if (w->o->include_secrets) {
            snprintf(name, sizeof(name), "secret.%zu", ns++);
            rc = add_file(w, name, DS_BACKUP_SECRET, path, NULL);
        } else {
            rc = add_omitted(w->m, want[i].role, path);
        }
    }
    ds__backup_wants_free(want, nwant);
    return rc;
}

static int ar_fail(struct writer *w, struct archive *a, const char *what)
{
    int e = archive_errno(a);

    snprintf(w->err, w->errlen, "%s: %s: %s", w->o->out, what, archive_error_string(a));
    return e > 0 ? -e : DS_EINTERNAL;
}

static int put_header(struct writer *w, struct archive *a, const char *name, uint64_t size)
{
    struct archive_entry *e = archive_entry_new();
    int rc;

    if (e == NULL)
        return DS_ENOMEM;
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_size(e, (la_int64_t)size);
    archive_entry_set_mtime(e, (time_t)w->o->now, 0);
    rc = archive_write_header(a, e) == ARCHIVE_OK ? 0 : ar_fail(w, a, name);
    archive_entry_free(e);
    return rc;
}

/* Copies member i into the archive, checking it did not change since it
 * was hashed. */
static int put_file(struct writer *w, struct archive *a, size_t i)
{
    const ds_backup_file_t *f = &w->m->files[i];
    const char *path = w->src[i] ? w->src[i] : f->dest;
    char *buf = w->buf;
    uint8_t sum[DS_SHA256_LEN];
    uint64_t done = 0;
    ds_sha256_t h;
    struct stat st;
    ssize_t k;
    int fd = open_reg(path, &st, w->err, w->errlen), rc;

    if (fd < 0)
        return fd;
    if ((rc = ds_sha256_init(&h)) < 0 || (rc = put_header(w, a, f->name, f->size)) < 0)
        goto out;
    while (rc == 0 && done < f->size && (k = read(fd, buf, BLOCK)) > 0) {
        if ((uint64_t)k > f->size - done)
            k = (ssize_t)(f->size - done);
        ds_sha256_update(&h, buf, (size_t)k);
        done += (uint64_t)k;
        if (archive_write_data(a, buf, (size_t)k) != k)
            rc = ar_fail(w, a, f->name);
    }
    if (rc < 0)
        goto out;
    ds_sha256_final(&h, sum);
    if (done != f->size || memcmp(sum, f->sha256, DS_SHA256_LEN) != 0) {
        snprintf(w->err, w->errlen, "%s: changed while it was backed up; run the backup again",
                 path);
        rc = DS_ECHANGED;
    }
out:
    ds_sha256_close(&h);
    close(fd);
    return rc;
}

static int write_archive(struct writer *w, int fd)
{
    struct archive *a = archive_write_new();
    char *text = NULL;
    size_t len = 0;
    int rc;

    if (a == NULL)
        return DS_ENOMEM;
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_add_filter_zstd(a) != ARCHIVE_OK ||
        archive_write_open_fd(a, fd) != ARCHIVE_OK) {
        rc = ar_fail(w, a, "cannot start the archive");
        goto out;
    }
    if ((rc = ds__backup_manifest_format(w->m, &text, &len)) < 0)
        goto out;
    if ((rc = put_header(w, a, DS_BACKUP_MANIFEST, len)) < 0)
        goto out;
    if (archive_write_data(a, text, len) != (la_ssize_t)len) {
        rc = ar_fail(w, a, DS_BACKUP_MANIFEST);
        goto out;
    }
    for (size_t i = 0; rc == 0 && i < w->m->nfiles; i++)
        rc = put_file(w, a, i);
    if (rc == 0 && archive_write_close(a) != ARCHIVE_OK)
        rc = ar_fail(w, a, "cannot finish the archive");
out:
    archive_write_free(a);
    free(text);
    return rc;
}

/* mkstemp beside out; sets tmp. */
static int make_tmp(const char *out, char *tmp, size_t cap, char *err, size_t errlen)
{
    int fd;

    if ((size_t)snprintf(tmp, cap, "%s.tmp.XXXXXX", out) >= cap)
        return -ENAMETOOLONG;
    fd = mkstemp(tmp);
    if (fd < 0 || fchmod(fd, 0600) < 0) {
        int e = errno;

        snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(e));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        return -e;
    }
    return fd;
}

static int fsync_parent(const char *path)
{
    char d[PATH_MAX];
    int fd, rc = 0;

    snprintf(d, sizeof(d), "%s", path);
    fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

int ds_backup_write(const ds_backup_opts_t *o, ds_backup_manifest_t *m, char *err, size_t errlen)
{
    struct writer w = {.o = o, .m = m, .err = err, .errlen = errlen};
    char tmp[PATH_MAX], d[PATH_MAX];
    int fd = -1, rc;

    memset(m, 0, sizeof(*m));
    snprintf(m->version, sizeof(m->version), "%s", ds_version());
    snprintf(m->console, sizeof(m->console), "%s", o->console_id ? o->console_id : "unknown");
    m->created = o->now;
    if ((w.buf = malloc(BLOCK)) == NULL) {
        rc = DS_ENOMEM;
        goto out;
    }
    snprintf(d, sizeof(d), "%s", o->out);
    if ((size_t)snprintf(w.stage, sizeof(w.stage), "%s/.distsync-backup.XXXXXX", dirname(d)) >=
            sizeof(w.stage) ||
        mkdtemp(w.stage) == NULL) {
        rc = -errno;
        snprintf(err, errlen, "%s: cannot make a staging folder: %s", w.stage, strerror(errno));
        w.stage[0] = '\0';
        goto out;
    }
    if ((rc = collect(&w)) < 0)
        goto out;
    if ((fd = rc = make_tmp(o->out, tmp, sizeof(tmp), err, errlen)) < 0)
        goto out;
    rc = write_archive(&w, fd);
    if (rc == 0 && fsync(fd) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: fsync: %s", tmp, strerror(errno));
    }
    if (close(fd) < 0 && rc == 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: close: %s", tmp, strerror(errno));
    }
    if (rc == 0 && rename(tmp, o->out) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: cannot rename into place: %s", o->out, strerror(errno));
    }
    if (rc < 0)
        unlink(tmp);
    else if ((rc = fsync_parent(o->out)) < 0)
        snprintf(err, errlen, "%s: fsync of its folder: %s", o->out, strerror(-rc));
out:
    if (w.stage[0]) {
        char copy[PATH_MAX + 16];

        snprintf(copy, sizeof(copy), "%s/catalog.db", w.stage);
        unlink(copy);
        rmdir(w.stage);
    }
    for (size_t i = 0; w.src && i < m->nfiles; i++)
        free(w.src[i]);
    free(w.src);
    free(w.buf);
    if (rc == DS_ENOMEM)
        snprintf(err, errlen, "out of memory");
    if (rc < 0)
        ds_backup_manifest_clear(m);
    return rc;
}

/*
 * Reading a backup archive as hostile input: MANIFEST first, then only
 * regular-file members the MANIFEST names, each once, with the size and
 * SHA-256 it records; links, directories, unsafe names, sizes that lie,
 * truncation and decompression bombs are refused naming the entry.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup_int.h"

#define RBLOCK (64u << 10)

struct walk {
    struct archive *a;
    ds_backup_manifest_t *m;
    ds__backup_data_fn fn;
    void *ctx;
    char *seen;   /* per m->files */
    uint64_t out; /* bytes decompressed so far */
    char *err;
    size_t errlen;
};

static int wfail(struct walk *w, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int wfail(struct walk *w, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(w->err, w->errlen, fmt, ap);
    va_end(ap);
    return rc;
}

/* The archive's own complaint (truncated, bad zstd frame, bad header). */
static int ar_fail(struct walk *w, const char *where)
{
    const char *s = archive_error_string(w->a);

    return wfail(w, DS_ECORRUPT, "%s: not a readable backup archive (tar + zstd): %s", where,
                 s ? s : "unknown error");
}

/* Bomb guard: past DS_BACKUP_RATIO_FREE out, at most RATIO_MAX x in. */
static int account(struct walk *w, const char *name, size_t n)
{
    la_int64_t in = archive_filter_bytes(w->a, -1);

    w->out += n;
    if (w->out > DS_BACKUP_RATIO_FREE && (in <= 0 || w->out / (uint64_t)in > DS_BACKUP_RATIO_MAX))
        return wfail(w, DS_ETOOBIG,
                     "entry %s: expands more than %ux its compressed size (%llu bytes out of "
                     "%lld): refused as a decompression bomb",
                     name, DS_BACKUP_RATIO_MAX, (unsigned long long)w->out, (long long)in);
    return 0;
}

/* The entry is a regular file with a safe, known name, seen once, whose
 * header size is the MANIFEST's. Returns its index or < 0. */
static int check_entry(struct walk *w, struct archive_entry *e)
{
    const char *name = archive_entry_pathname(e);
    const ds_backup_manifest_t *m = w->m;

    if (name == NULL || name[0] == '\0')
        return wfail(w, DS_EPATH, "an entry without a name");
    if (name[0] == '/' || strstr(name, "..") != NULL)
        return wfail(w, DS_EPATH, "entry '%.200s': absolute or '..' name: refused", name);
    if (archive_entry_hardlink(e) != NULL || archive_entry_symlink(e) != NULL ||
        archive_entry_filetype(e) != AE_IFREG)
        return wfail(w, DS_EPATH,
                     "entry '%.200s': a link, folder or special file: a backup holds regular "
                     "files only",
                     name);
    for (size_t i = 0; i < m->nfiles; i++) {
        if (strcmp(m->files[i].name, name) != 0)
            continue;
        if (w->seen[i])
            return wfail(w, DS_ECORRUPT, "entry '%s' appears twice", name);
        if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0 ||
            (uint64_t)archive_entry_size(e) != m->files[i].size)
            return wfail(w, DS_ECORRUPT, "entry '%s': its header says %lld bytes, the %s %llu",
                         name, (long long)archive_entry_size(e), DS_BACKUP_MANIFEST,
                         (unsigned long long)m->files[i].size);
        w->seen[i] = 1;
        return (int)i;
    }
    return wfail(w, DS_ECORRUPT, "entry '%.200s' is not in the %s", name, DS_BACKUP_MANIFEST);
}

/* Streams member i's data through SHA-256 and fn. */
static int read_member(struct walk *w, size_t i, char *buf)
{
    const ds_backup_file_t *f = &w->m->files[i];
    uint8_t sum[DS_SHA256_LEN];
    uint64_t got = 0;
    ds_sha256_t h;
    la_ssize_t k;
    int rc = ds_sha256_init(&h);

    if (rc < 0)
        return rc;
    while (rc == 0 && (k = archive_read_data(w->a, buf, RBLOCK)) != 0) {
        if (k < 0) {
            rc = ar_fail(w, f->name);
            break;
        }
        got += (uint64_t)k;
        if (got > f->size) {
            rc = wfail(w, DS_ECORRUPT, "entry '%s': more data than its %llu bytes", f->name,
                       (unsigned long long)f->size);
            break;
        }
        ds_sha256_update(&h, buf, (size_t)k);
        if ((rc = account(w, f->name, (size_t)k)) == 0 && w->fn)
            rc = w->fn(w->ctx, f, buf, (size_t)k, w->err, w->errlen);
    }
    ds_sha256_final(&h, sum);
    ds_sha256_close(&h);
    if (rc == 0 && got != f->size)
        rc = wfail(w, DS_ECORRUPT, "entry '%s': %llu of its %llu bytes (truncated)", f->name,
                   (unsigned long long)got, (unsigned long long)f->size);
    if (rc == 0 && memcmp(sum, f->sha256, DS_SHA256_LEN) != 0)
        rc = wfail(w, DS_EHASH, "entry '%s': SHA-256 does not match the %s", f->name,
                   DS_BACKUP_MANIFEST);
    return rc;
}

/* The first entry: MANIFEST, parsed (first pass) or compared (later). */
static int read_manifest(struct walk *w, char *buf)
{
    struct archive_entry *e;
    uint8_t sum[DS_SHA256_LEN];
    char *text = NULL;
    size_t len = 0;
    la_ssize_t k;
    int rc, first = w->m->files == NULL;

    rc = archive_read_next_header(w->a, &e);
    if (rc == ARCHIVE_EOF)
        return wfail(w, DS_ECORRUPT, "an empty archive: no %s", DS_BACKUP_MANIFEST);
    if (rc != ARCHIVE_OK)
        return ar_fail(w, "the first entry");
    if (archive_entry_pathname(e) == NULL ||
        strcmp(archive_entry_pathname(e), DS_BACKUP_MANIFEST) != 0 ||
        archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) != NULL ||
        archive_entry_size(e) <= 0 || archive_entry_size(e) > DS_BACKUP_MANIFEST_MAX)
        return wfail(w, DS_ECORRUPT,
                     "the first entry is not a %s of at most %u bytes: not a distsync backup",
                     DS_BACKUP_MANIFEST, DS_BACKUP_MANIFEST_MAX);
    if ((text = malloc((size_t)archive_entry_size(e))) == NULL)
        return DS_ENOMEM;
    while ((k = archive_read_data(w->a, buf, RBLOCK)) > 0) {
        if (len + (size_t)k > (size_t)archive_entry_size(e)) {
            k = -1;
            break;
        }
        memcpy(text + len, buf, (size_t)k);
        len += (size_t)k;
    }
    if (k < 0 || len != (size_t)archive_entry_size(e)) {
        free(text);
        return k < 0 && archive_error_string(w->a)
                   ? ar_fail(w, DS_BACKUP_MANIFEST)
                   : wfail(w, DS_ECORRUPT, "%s: truncated", DS_BACKUP_MANIFEST);
    }
    if ((rc = ds_sha256(text, len, sum)) == 0 && (rc = account(w, DS_BACKUP_MANIFEST, len)) == 0) {
        if (first) {
            rc = ds_backup_manifest_parse(text, len, w->m, w->err, w->errlen);
            memcpy(w->m->manifest_sha256, sum, DS_SHA256_LEN);
        } else if (memcmp(sum, w->m->manifest_sha256, DS_SHA256_LEN) != 0) {
            rc = wfail(w, DS_ECHANGED, "%s changed since the archive was checked",
                       DS_BACKUP_MANIFEST);
        }
    }
    free(text);
    return rc;
}

static int walk_entries(struct walk *w, char *buf)
{
    struct archive_entry *e;
    int rc, i;

    if ((rc = read_manifest(w, buf)) < 0)
        return rc;
    if ((w->seen = calloc(w->m->nfiles + 1, 1)) == NULL)
        return DS_ENOMEM;
    while ((rc = archive_read_next_header(w->a, &e)) != ARCHIVE_EOF) {
        if (rc != ARCHIVE_OK)
            return ar_fail(w, "after the last good entry");
        if ((i = check_entry(w, e)) < 0)
            return i;
        if ((rc = read_member(w, (size_t)i, buf)) < 0)
            return rc;
    }
    for (size_t k = 0; k < w->m->nfiles; k++)
        if (!w->seen[k])
            return wfail(w, DS_ECORRUPT, "entry '%s' is missing (a truncated archive?)",
                         w->m->files[k].name);
    return 0;
}

int ds__backup_walk(int fd, const void *p, size_t n, ds_backup_manifest_t *m, ds__backup_data_fn fn,
                    void *ctx, char *err, size_t errlen)
{
    struct walk w = {.m = m, .fn = fn, .ctx = ctx, .err = err, .errlen = errlen};
    char *buf = malloc(RBLOCK);
    int rc;

    w.a = archive_read_new();
    if (buf == NULL || w.a == NULL) {
        rc = DS_ENOMEM;
        goto out;
    }
    if (archive_read_support_filter_zstd(w.a) != ARCHIVE_OK ||
        archive_read_support_format_tar(w.a) != ARCHIVE_OK) {
        rc = ar_fail(&w, "setting up the reader");
        goto out;
    }
    if (fd >= 0 && lseek(fd, 0, SEEK_SET) < 0) {
        rc = wfail(&w, -errno, "cannot rewind the archive: %s", strerror(errno));
        goto out;
    }
    if ((fd >= 0 ? archive_read_open_fd(w.a, fd, RBLOCK) : archive_read_open_memory(w.a, p, n)) !=
        ARCHIVE_OK) {
        rc = ar_fail(&w, "the start");
        goto out;
    }
    rc = walk_entries(&w, buf);
out:
    if (rc == DS_ENOMEM)
        snprintf(err, errlen, "out of memory");
    archive_read_free(w.a);
    free(w.seen);
    free(buf);
    return rc;
}

/* First pass: keeps the config's bytes. */
static int keep_config(void *ctx, const ds_backup_file_t *f, const void *p, size_t n, char *err,
                       size_t errlen)
{
    ds_backup_manifest_t *m = ctx;

    if (f->role != DS_BACKUP_CONFIG)
        return 0;
    if (m->config_text == NULL) {
        if (f->size > DS_BACKUP_CONFIG_MAX) {
            snprintf(err, errlen, "entry '%s': a config file of %llu bytes (at most %u)", f->name,
                     (unsigned long long)f->size, DS_BACKUP_CONFIG_MAX);
            return DS_ETOOBIG;
        }
        if ((m->config_text = malloc((size_t)f->size + 1)) == NULL)
            return DS_ENOMEM;
        m->config_len = 0;
    }
    memcpy(m->config_text + m->config_len, p, n); /* the walk caps the total at f->size */
    m->config_len += n;
    m->config_text[m->config_len] = '\0';
    return 0;
}

static int check(int fd, const void *p, size_t n, ds_backup_manifest_t *m, char *err, size_t errlen)
{
    int rc;

    memset(m, 0, sizeof(*m));
    rc = ds__backup_walk(fd, p, n, m, keep_config, m, err, errlen);
    if (rc == 0 && m->config_text == NULL) { /* an empty config */
        if ((m->config_text = calloc(1, 1)) == NULL)
            rc = DS_ENOMEM;
    }
    if (rc < 0)
        ds_backup_manifest_clear(m);
    return rc;
}

int ds_backup_check_fd(int fd, ds_backup_manifest_t *m, char *err, size_t errlen)
{
    return check(fd, NULL, 0, m, err, errlen);
}

int ds_backup_check_mem(const void *p, size_t n, ds_backup_manifest_t *m, char *err, size_t errlen)
{
    return check(-1, p, n, m, err, errlen);
}

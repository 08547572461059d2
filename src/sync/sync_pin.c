/*
 * Snapshot pinning on the console (sync.h, ds_sync_pin): a pinned batch
 * plans against the file versions current in one scan generation. A
 * version that the store's file no longer holds ships from the retain
 * store: it is copied, checked against its SHA-256, to a file of the state
 * directory that the sender reads like a store file. A version the retain
 * store lacks is gone: it is reported per file and never replaced by the
 * newer content.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "distsync/fsutil.h"
#include "distsync/log.h"
#include "distsync/tz.h"
#include "sync_int.h"

#define PIN_BLOCK (1u << 20)

int ds_sync_pin(ds_sync_t *s, int64_t gen, const char *what)
{
    char *w = NULL;

    if (gen > 0 && (w = strdup(what ? what : "")) == NULL)
        return DS_ENOMEM;
    free(s->pin_what);
    s->pin_what = w;
    s->pin_gen = gen > 0 ? gen : 0;
    ds__sync_snapshot_reset(s); /* the next batch loads the pinned set */
    return 0;
}

int ds_sync_pin_at(ds_sync_t *s, int64_t anchor, const char *run)
{
    char when[32] = "?", what[128];
    int64_t gen = 0, done = 0;
    int rc = ds_catalog_gen_at(s->cat, anchor, &gen, &done);

    if (rc < 0)
        return rc;
    (void)ds_tz_format_utc(anchor, when, sizeof(when)); /* else "?" */
    if (rc == 0) {
        ds_log(DS_LOG_WARN,
               "run %s: no scan completed at or before the anchor %s: it ships the newest scan",
               run, when);
        return ds_sync_pin(s, 0, NULL);
    }
    snprintf(what, sizeof(what), "as of %s (scan generation %lld)", when, (long long)gen);
    ds_log(DS_LOG_INFO, "run %s: pinned to the store %s", run, what);
    rc = ds_sync_pin(s, gen, what);
    return rc < 0 ? rc : 1;
}

int ds_sync_pin_as_of(ds_sync_t *s, int64_t t, char *what, size_t wlen, char *err, size_t errlen)
{
    char when[32] = "?";
    int64_t gen = 0, started = 0;
    int rc = ds_catalog_gen_at(s->cat, t, &gen, &started);

    (void)ds_tz_format_utc(t, when, sizeof(when)); /* else "?" */
    if (rc < 0)
        return ds_errf(err, errlen, rc, "the store as of %s: catalog %s: %s", when,
                       ds_catalog_name(s->cat), ds_strerror(rc));
    if (rc == 0)
        return ds_errf(err, errlen, DS_ENOTFOUND,
                       "the store as of %s: no scan of the store that started by then is kept "
                       "(catalog %s keeps scans of the last %lld days)",
                       when, ds_catalog_name(s->cat), DS_CATALOG_GEN_KEEP_S / 86400);
    snprintf(what, wlen, "as of %s (scan generation %lld)", when, (long long)gen);
    rc = ds_sync_pin(s, gen, what);
    if (rc < 0)
        return ds_errf(err, errlen, rc, "the store as of %s: %s", when, ds_strerror(rc));
    return 0;
}

int ds_sync_gen_parse(const char *s, int64_t *gen)
{
    static const char pre[] = "scan:";
    int64_t v = 0;
    const char *p;

    if (strncmp(s, pre, sizeof(pre) - 1) != 0)
        return 0;
    for (p = s + sizeof(pre) - 1; *p >= '0' && *p <= '9'; p++) {
        if (v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (*p != '\0' || p == s + sizeof(pre) - 1 || v <= 0)
        return -1;
    *gen = v;
    return 1;
}

int ds_sync_pin_gen(ds_sync_t *s, int64_t gen, char *what, size_t wlen, char *err, size_t errlen)
{
    char when[32] = "?", kept[160];
    ds_catalog_gen_info_t g;
    int64_t lo = 0, hi = 0;
    time_t tt;
    struct tm tm;
    int rc = ds_catalog_gen_get(s->cat, gen, &g), rr;

    if (rc < 0)
        return ds_errf(err, errlen, rc, "scan:%lld: catalog %s: %s", (long long)gen,
                       ds_catalog_name(s->cat), ds_strerror(rc));
    if (rc == 0 || g.done_at == 0) {
        rr = ds_catalog_gen_range(s->cat, &lo, &hi);
        if (rr == 1)
            snprintf(kept, sizeof(kept), "catalog %s keeps completed scans scan:%lld to scan:%lld",
                     ds_catalog_name(s->cat), (long long)lo, (long long)hi);
        else
            snprintf(kept, sizeof(kept), "catalog %s keeps no completed scan",
                     ds_catalog_name(s->cat));
        return ds_errf(err, errlen, DS_ENOTFOUND,
                       "scan:%lld: scan generation %lld %s (%s; distsync scans lists them)",
                       (long long)gen, (long long)gen,
                       rc == 0 ? "is not kept" : "did not complete (interrupted, or running)",
                       kept);
    }
    tt = (time_t)g.started_at;
    if (gmtime_r(&tt, &tm) != NULL)
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(what, wlen, "as of scan:%lld (scan generation %lld, started %s)", (long long)gen,
             (long long)gen, when);
    rc = ds_sync_pin(s, gen, what);
    if (rc < 0)
        return ds_errf(err, errlen, rc, "scan:%lld: %s", (long long)gen, ds_strerror(rc));
    return 0;
}

int64_t ds_sync_pinned(const ds_sync_t *s)
{
    return s->pin_gen;
}

/* Copies retained version sha (size bytes) to path, checking its SHA-256.
 * Returns 0 or < 0 (path removed). */
static int copy_retained(ds_sync_t *s, const uint8_t *sha, uint64_t size, const char *path)
{
    ds_retain_reader_t *rd = NULL;
    uint8_t *buf = malloc(PIN_BLOCK);
    uint64_t off = 0;
    int fd = -1,
        rc = buf ? ds_retain_open_version(s->ret, sha, DS_RETAIN_READ_VERIFY, &rd) : DS_ENOMEM;

    if (rc == 0 && (fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
        rc = -errno;
    while (rc == 0 && off < size) {
        long n = ds_retain_read(rd, off, buf, PIN_BLOCK);

        if (n <= 0) {
            rc = n < 0 ? (int)n : DS_ECORRUPT;
            break;
        }
        rc = ds_write_all(fd, buf, (size_t)n);
        off += (uint64_t)n;
    }
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc < 0)
        unlink(path);
    ds_retain_reader_free(rd);
    free(buf);
    return rc;
}

/* Row x of a pinned snapshot, whose version the store's file no longer
 * holds: its bytes from the retain store (x->src), or x->gone. */
static int pinned_source(ds_sync_t *s, struct sfile_row *x)
{
    char dir[4096], hex[2 * DS_SHA256_LEN + 1];
    int rc = s->ret ? ds__sync_retained(s, x->sha256) : 0;

    if (rc < 0)
        return rc;
    if (rc == 0) {
        x->gone = 1;
        return 0;
    }
    snprintf(dir, sizeof(dir), "%s/pinned", s->o.cfg->state);
    if ((rc = ds_mkdir_p(dir)) < 0)
        return rc;
    ds_hex(x->sha256, DS_SHA256_LEN, hex);
    if (asprintf(&x->src, "%s/%s.%ld", dir, hex, (long)getpid()) < 0) {
        x->src = NULL;
        return DS_ENOMEM;
    }
    rc = copy_retained(s, x->sha256, x->size, x->src);
    if (rc < 0) {
        ds_log(DS_LOG_WARN, "%s: the retained version pinned %s cannot be read: %s", x->path,
               s->pin_what, ds_strerror(rc));
        free(x->src);
        x->src = NULL;
        x->gone = 1; /* never the newer content in its place */
    }
    return rc == DS_ENOMEM ? rc : 0;
}

int ds__sync_pin_sources(ds_sync_t *s)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < s->nrows; i++)
        if (s->rows[i].stale && s->rows[i].content_id > 0)
            rc = pinned_source(s, &s->rows[i]);
    return rc;
}

void ds__sync_pin_drop(struct sfile_row *x)
{
    if (x->src != NULL)
        unlink(x->src);
    free(x->src);
    x->src = NULL;
}

int ds__sync_row_file(const ds_sync_t *s, const struct sfile_row *x, const char *path, char *buf,
                      size_t len)
{
    int n = x && x->src ? snprintf(buf, len, "%s", x->src)
                        : snprintf(buf, len, "%s/%s", s->o.cfg->store, x ? x->path : path);

    return n >= 0 && (size_t)n < len ? 0 : -ENAMETOOLONG; /* a cut path could name another file */
}

/* Retains row r (a version the store's file holds) unless it is retained
 * already. Returns 1 (retained now), 0, or < 0 (catalog, memory). */
static int retain_row(ds_sync_t *s, const ds_file_row_t *r)
{
    ds_content_t c = {0};
    char path[8192];
    int fd, rc = ds__sync_retained(s, r->sha256);

    if (rc != 0)
        return rc < 0 ? rc : 0;
    if ((rc = ds_catalog_content_get(s->cat, r->content_id, &c)) < 0)
        return rc;
    if (snprintf(path, sizeof(path), "%s/%s", s->o.cfg->store, r->path) >= (int)sizeof(path))
        rc = -ENAMETOOLONG;
    else if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        rc = -errno;
    else {
        rc = ds_retain_put(s->ret, fd, r->sha256, c.size, c.chunks, c.nchunks, 0);
        close(fd);
    }
    ds_content_clear(&c);
    if (rc < 0) { /* changed since the scan, unreadable: that file only */
        ds_log(DS_LOG_WARN, "%s: cannot retain the version pinned %s: %s", path,
               s->pin_what ? s->pin_what : "", ds_strerror(rc));
        return rc == DS_ENOMEM || rc == DS_ECATALOG ? rc : 0;
    }
    ds__sync_note_retained(s, r->sha256);
    return 1;
}

int ds_sync_pin_retain(ds_sync_t *s, int64_t gen, uint64_t *nretained)
{
    ds_catalog_cursor_t *cur = NULL;
    ds_file_row_t r;
    int rc = s->ret ? ds_catalog_cursor_open_gen(s->cat, "", gen, &cur) : 0;

    *nretained = 0;
    while (rc == 0 && cur != NULL && (rc = ds_catalog_cursor_next(cur, &r)) == 1) {
        rc = r.id > 0 && r.has_sha && r.content_id > 0 ? retain_row(s, &r) : 0;
        *nretained += rc == 1;
        rc = rc < 0 ? rc : 0;
    }
    ds_catalog_cursor_free(cur);
    return rc < 0 ? rc : 0;
}

/*
 * On-disk delta cache: one file per (basis SHA-256, target SHA-256) pair,
 * published by tmp + rename (not fsynced: see compute_tmp), evicted least
 * recently used (mtime is touched on every hit) above a size cap. See
 * include/distsync/delta.h.
 *
 * An entry is the delta (librsync, <pair>.rsd, or zpatch, <pair>.zpd for
 * stream version 1 and <pair>.zpb for version 2: one entry per pair and
 * format) followed by a 32-byte trailer: the magic
 * "DSDCSUM2", the delta's length, its XXH3-64 and the zstd level it was
 * compressed at (u64 big-endian each; entries of an older distsync have a
 * 24-byte "DSDCSUM1" trailer without the level: read as the default level).
 * A zpatch entry (.zpd or .zpb) serves a request at its level or a lower one; a request
 * at a higher level recomputes it and replaces it (a run-now at a fast
 * level never leaves the scheduled runs with its larger deltas).
 * A quick request (DS_DELTA_QUICK) takes the pair's entry of its format at
 * any level, else its quick entry (<pair>.zpq: stream version 1 at
 * DS_ZPATCH_LEVEL_FAST, no BSDIFF record, for both zpatch formats; .zqc
 * for DS_DELTA_FMT_ZPATCH_COPY), else computes that quick entry; a quick
 * entry never serves a request that is not quick.
 * Every hit re-hashes the delta; an entry that fails (a flipped bit, a torn
 * or truncated write, the format before the trailer) is dropped and
 * recomputed, never sent. The delta stays at offset 0, so readers see a
 * plain delta of *size bytes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "distsync/delta.h"
#include "distsync/error.h"
#include "distsync/log.h"
#include "distsync/zpatch.h"

#define ENTRY_SUFFIX   ".rsd" /* librsync delta */
#define ZP_SUFFIX      ".zpd" /* zpatch (same length) */
#define ZP2_SUFFIX     ".zpb" /* zpatch with BSDIFF records */
#define ZPC_SUFFIX     ".zpc" /* zpatch reading the basis only through COPY */
#define ZPQ_SUFFIX     ".zpq" /* quick zpatch (DS_DELTA_QUICK) */
#define ZQC_SUFFIX     ".zqc" /* quick zpatch reading the basis only through COPY */
#define NAME_MAX_LEN   (4 * DS_SHA256_LEN + 16)
#define TMP_STALE_SECS (24 * 3600)
#define TRAILER_MAGIC  "DSDCSUM2"
#define TRAILER_LEN    32
#define TRAILER1_MAGIC "DSDCSUM1" /* before the level was recorded */
#define TRAILER1_LEN   24
#define HASH_CHUNK     (256u << 10)

struct ds_delta_cache {
    char *dir;
    uint64_t cap;
    ds_delta_opts_t opts;
    pthread_mutex_t mu;
    ds_delta_cache_stats_t st;
    unsigned seq;
    struct timespec last_use; /* strictly increasing use stamps (LRU order) */
};

struct entry {
    char name[NAME_MAX_LEN];
    uint64_t size;
    struct timespec mtime;
};

static const char delta_magic[4] = {'r', 's', 0x02, 0x36};

/* The entry's name suffix for fmt (DS_DELTA_QUICK or'ed in: the quick
 * entry's). */
static const char *suffix(int fmt)
{
    int quick = (fmt & DS_DELTA_QUICK) != 0;

    switch (fmt & ~DS_DELTA_QUICK) {
    case DS_DELTA_FMT_ZPATCH_COPY:
        return quick ? ZQC_SUFFIX : ZPC_SUFFIX;
    case DS_DELTA_FMT_ZPATCH2:
        return quick ? ZPQ_SUFFIX : ZP2_SUFFIX;
    case DS_DELTA_FMT_ZPATCH:
        return quick ? ZPQ_SUFFIX : ZP_SUFFIX;
    default:
        return ENTRY_SUFFIX;
    }
}

static void entry_path(const ds_delta_cache_t *c, int fmt, const uint8_t *b, const uint8_t *t,
                       char *out, size_t cap)
{
    char bh[2 * DS_SHA256_LEN + 1], th[2 * DS_SHA256_LEN + 1];

    ds_hex(b, DS_SHA256_LEN, bh);
    ds_hex(t, DS_SHA256_LEN, th);
    snprintf(out, cap, "%s/%s-%s%s", c->dir, bh, th, suffix(fmt));
}

static int is_entry(const char *name)
{
    size_t len = strlen(name);

    return len == 4 * DS_SHA256_LEN + 1 + strlen(ENTRY_SUFFIX) &&
           (strcmp(name + len - strlen(ENTRY_SUFFIX), ENTRY_SUFFIX) == 0 ||
            strcmp(name + len - strlen(ZP_SUFFIX), ZP_SUFFIX) == 0 ||
            strcmp(name + len - strlen(ZP2_SUFFIX), ZP2_SUFFIX) == 0 ||
            strcmp(name + len - strlen(ZPC_SUFFIX), ZPC_SUFFIX) == 0 ||
            strcmp(name + len - strlen(ZPQ_SUFFIX), ZPQ_SUFFIX) == 0 ||
            strcmp(name + len - strlen(ZQC_SUFFIX), ZQC_SUFFIX) == 0);
}

/* Removes a tmp.<pid>.<n> file whose writer is gone or that is stale. */
static void reap_tmp(const ds_delta_cache_t *c, const char *name, const struct stat *st)
{
    char path[4096];
    long pid = strtol(name + 4, NULL, 10);
    int dead = pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH);

    if (!dead && time(NULL) - st->st_mtime < TMP_STALE_SECS)
        return;
    snprintf(path, sizeof(path), "%s/%s", c->dir, name);
    unlink(path);
}

static int cmp_mtime(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;

    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
    return 0;
}

/* Lists the entries (and reaps dead tmp files). *out is malloc'ed. */
static int scan(ds_delta_cache_t *c, struct entry **out, size_t *n, uint64_t *total)
{
    DIR *d = opendir(c->dir);
    struct entry *v = NULL, *nv;
    size_t cap = 0;
    struct dirent *de;
    struct stat st;

    *n = 0;
    *total = 0;
    if (d == NULL)
        return -errno;
    while ((de = readdir(d)) != NULL) {
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (strncmp(de->d_name, "tmp.", 4) == 0)
            reap_tmp(c, de->d_name, &st);
        if (!is_entry(de->d_name))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
                closedir(d);
                free(v);
                return DS_ENOMEM;
            }
            v = nv;
        }
        size_t len = strlen(de->d_name);

        if (len >= sizeof(v[*n].name)) /* is_entry() accepts no such name */
            continue;
        memcpy(v[*n].name, de->d_name, len + 1);
        v[*n].size = (uint64_t)st.st_size;
        v[*n].mtime = st.st_mtim;
        *total += v[(*n)++].size;
    }
    closedir(d);
    *out = v;
    return 0;
}

/* Evicts least recently used entries until the cache fits its cap.
 * Called with c->mu held. */
static int evict(ds_delta_cache_t *c)
{
    struct entry *v = NULL;
    uint64_t total;
    size_t n, left;
    char path[4096];
    int rc = scan(c, &v, &n, &total);

    if (rc < 0)
        return rc;
    left = n;
    if (total > c->cap)
        qsort(v, n, sizeof(*v), cmp_mtime);
    for (size_t i = 0; i < n && total > c->cap; i++) {
        snprintf(path, sizeof(path), "%s/%s", c->dir, v[i].name);
        if (unlink(path) < 0)
            continue;
        total -= v[i].size;
        c->st.evictions++;
        c->st.evicted_bytes += v[i].size;
        left--;
    }
    c->st.entries = left;
    c->st.bytes = total;
    free(v);
    return 0;
}

int ds_delta_cache_open(const char *dir, uint64_t cap_bytes, const ds_delta_opts_t *opts,
                        ds_delta_cache_t **out)
{
    ds_delta_cache_t *c;
    int rc;

    *out = NULL;
    if (strlen(dir) + NAME_MAX_LEN + 2 > 4096)
        return -ENAMETOOLONG; /* every path below is dir + a bounded name */
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -errno; /* not logged: every caller reports it with dir */
    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->dir = strdup(dir)) == NULL) {
        free(c);
        return DS_ENOMEM;
    }
    c->cap = cap_bytes;
    if (opts != NULL)
        c->opts = *opts;
    c->opts.basis_sha256 = c->opts.target_sha256 = NULL;
    pthread_mutex_init(&c->mu, NULL);
    rc = evict(c);
    if (rc < 0) {
        ds_delta_cache_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

void ds_delta_cache_close(ds_delta_cache_t *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c->dir);
    free(c);
}

/* Stamps an entry's mtime as the most recent use. The kernel's UTIME_NOW is
 * coarse (a few ms), so two uses in a row could tie and make the LRU order
 * arbitrary: stamps come from a clock forced to increase strictly. */
static void touch(ds_delta_cache_t *c, int fd)
{
    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}};

    clock_gettime(CLOCK_REALTIME, &ts[1]);
    pthread_mutex_lock(&c->mu);
    if (ts[1].tv_sec < c->last_use.tv_sec ||
        (ts[1].tv_sec == c->last_use.tv_sec && ts[1].tv_nsec <= c->last_use.tv_nsec)) {
        ts[1] = c->last_use;
        if (++ts[1].tv_nsec == 1000000000L) {
            ts[1].tv_sec++;
            ts[1].tv_nsec = 0;
        }
    }
    c->last_use = ts[1];
    pthread_mutex_unlock(&c->mu);
    futimens(fd, ts);
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* XXH3-64 of fd's bytes [0, len). Returns 0 or -errno / DS_ECHANGED (short). */
static int hash_fd(int fd, uint64_t len, uint64_t *sum)
{
    XXH3_state_t *st = XXH3_createState();
    uint8_t *buf = malloc(HASH_CHUNK);
    uint64_t off = 0;
    int rc = 0;

    if (st == NULL || buf == NULL) {
        rc = DS_ENOMEM;
        goto out;
    }
    XXH3_64bits_reset(st);
    while (off < len) {
        size_t want = len - off < HASH_CHUNK ? (size_t)(len - off) : HASH_CHUNK;
        ssize_t r = pread(fd, buf, want, (off_t)off);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : DS_ECHANGED;
            goto out;
        }
        XXH3_64bits_update(st, buf, (size_t)r);
        off += (uint64_t)r;
    }
    *sum = XXH3_64bits_digest(st);
out:
    free(buf);
    XXH3_freeState(st);
    return rc;
}

/* Appends the trailer to a delta of len bytes in fd. Returns 0 or < 0. */
static int write_trailer(int fd, uint64_t len, int level)
{
    uint8_t t[TRAILER_LEN];
    uint64_t sum;
    int rc = hash_fd(fd, len, &sum);

    if (rc < 0)
        return rc;
    memcpy(t, TRAILER_MAGIC, 8);
    put_be64(t + 8, len);
    put_be64(t + 16, sum);
    put_be64(t + 24, (uint64_t)level);
    ssize_t w = pwrite(fd, t, TRAILER_LEN, (off_t)len);

    if (w < 0)
        return -errno;
    return w == TRAILER_LEN ? 0 : -ENOSPC;
}

/* Reads the trailer of fd (st_size bytes): 1 with its length in *tlen and
 * the level (DSDCSUM1: the default) in *level, 0 when there is none. */
static int read_trailer(int fd, off_t st_size, uint8_t t[TRAILER_LEN], off_t *tlen, int *level)
{
    if (st_size >= TRAILER_LEN + 4 &&
        pread(fd, t, TRAILER_LEN, st_size - TRAILER_LEN) == TRAILER_LEN &&
        memcmp(t, TRAILER_MAGIC, 8) == 0) {
        *tlen = TRAILER_LEN;
        *level = (int)get_be64(t + 24);
        return 1;
    }
    if (st_size >= TRAILER1_LEN + 4 &&
        pread(fd, t, TRAILER1_LEN, st_size - TRAILER1_LEN) == TRAILER1_LEN &&
        memcmp(t, TRAILER1_MAGIC, 8) == 0) {
        *tlen = TRAILER1_LEN;
        *level = DS_ZPATCH_LEVEL_DEFAULT;
        return 1;
    }
    return 0;
}

/* Checks an entry: returns NULL when sound (*size: the delta's length,
 * *level: the zstd level it was made at), else why not. *old is set for an
 * entry without a trailer. */
static const char *check_entry(int fd, int fmt, uint64_t *size, int *level, int *old)
{
    uint8_t t[TRAILER_LEN];
    char head[4];
    struct stat st;
    uint64_t len, sum;
    off_t tlen;

    *old = 0;
    if (fstat(fd, &st) < 0 || !read_trailer(fd, st.st_size, t, &tlen, level)) {
        *old = 1;
        return "no checksum trailer (an older distsync's entry, or torn)";
    }
    len = get_be64(t + 8);
    if (len != (uint64_t)(st.st_size - tlen))
        return "length in the trailer does not match the file";
    if (pread(fd, head, 4, 0) != 4 ||
        memcmp(head, fmt != DS_DELTA_FMT_RSYNC ? DS_ZPATCH_MAGIC : delta_magic, 4) != 0)
        return fmt != DS_DELTA_FMT_RSYNC ? "not a zpatch" : "not a librsync delta";
    if (hash_fd(fd, len, &sum) < 0)
        return "cannot read it";
    if (sum != get_be64(t + 16))
        return "checksum mismatch";
    *size = len;
    return NULL;
}

/* See delta.h. */
void ds_delta_cache_set_level(ds_delta_cache_t *c, int zpatch_level)
{
    c->opts.zpatch_level = zpatch_level;
}

/* The zstd level the cache computes zpatches at. */
static int cache_level(const ds_delta_cache_t *c)
{
    return c->opts.zpatch_level > 0 ? c->opts.zpatch_level : DS_ZPATCH_LEVEL_DEFAULT;
}

/* Opens a cached entry if it checks out; touches its mtime. An entry that
 * does not is removed (reported once: its replacement checks out). -1 if
 * none, or if a zpatch was made at a lower level than the cache's (it is
 * replaced when the new one is published) and any_level is 0; such an
 * entry is counted and logged as relevelled unless quiet (a lookup: the
 * get that follows does). */
static int open_entry(ds_delta_cache_t *c, int fmt, const char *path, int any_level, int quiet,
                      uint64_t *size)
{
    const char *why;
    int fd = open(path, O_RDWR | O_CLOEXEC), old, level = 0;

    if (fd < 0)
        return -1;
    why = check_entry(fd, fmt, size, &level, &old);
    if (why != NULL) {
        close(fd);
        unlink(path);
        pthread_mutex_lock(&c->mu);
        c->st.dropped += !old;
        pthread_mutex_unlock(&c->mu);
        ds_log(old ? DS_LOG_INFO : DS_LOG_WARN,
               "delta cache: entry %s is invalid (%s): dropped, recomputing it", path, why);
        return -1;
    }
    if (fmt != DS_DELTA_FMT_RSYNC && !any_level && level < cache_level(c)) {
        close(fd);
        if (quiet)
            return -1;
        pthread_mutex_lock(&c->mu);
        c->st.relevelled++;
        pthread_mutex_unlock(&c->mu);
        ds_log(DS_LOG_INFO, "delta cache: %s was made at zstd level %d: recomputing at %d", path,
               level, cache_level(c));
        return -1;
    }
    touch(c, fd);
    return fd;
}

/* DS_ECHANGED when target is no longer the version tsha (it changed while
 * its delta was made), else DS_EHASH: the check failed on a delta made from
 * the right bytes. A target that cannot be read again says why (given up,
 * an I/O error): not that it changed, which fails its file as changed since
 * the scan (sync_send.c). */
static int check_failed(const ds_delta_src_t *target, const uint8_t *tsha)
{
    uint8_t got[DS_SHA256_LEN];
    int rc = ds_delta_src_sha256(target, got);

    if (rc < 0)
        return rc; /* DS_ECHANGED when it is shorter */
    return memcmp(got, tsha, DS_SHA256_LEN) != 0 ? DS_ECHANGED : DS_EHASH;
}

/* The zpatch of the pair, checked by applying it. The encoder does not hash
 * the target: the check hashes what the delta makes, which is the target
 * as it was read (one SHA-256 pass, 0.1 s on 100 MiB, instead of two). */
static int compute_zpatch(ds_delta_cache_t *c, int fmt, const uint8_t *bsha, const uint8_t *tsha,
                          const ds_delta_src_t *basis, const ds_delta_src_t *target, int fd,
                          uint64_t *size)
{
    ds_zpatch_stats_t st;
    int quick = (fmt & DS_DELTA_QUICK) != 0, base = fmt & ~DS_DELTA_QUICK;
    int rc = ds_zpatch_encode_v(basis, target, quick ? DS_ZPATCH_LEVEL_FAST : c->opts.zpatch_level,
                                base == DS_DELTA_FMT_ZPATCH2 && !quick ? 2
                                : base == DS_DELTA_FMT_ZPATCH_COPY     ? 1 | DS_ZPATCH_COPY_ONLY
                                                                       : 1,
                                bsha, NULL, fd, &st);

    if (rc == 0 && st.known)
        ds_log(DS_LOG_DEBUG,
               "delta cache: a %llu-byte delta for %llu bytes: copies from the "
               "catalog's chunk lists",
               (unsigned long long)st.delta_bytes, (unsigned long long)target->size);
    if (rc == 0)
        rc = ds_zpatch_check(basis, fd, st.delta_bytes, target->size, tsha);
    if (rc == DS_EHASH)
        rc = check_failed(target, tsha);
    *size = st.delta_bytes;
    return rc;
}

static int compute_tmp(ds_delta_cache_t *c, int fmt, const uint8_t *bsha, const uint8_t *tsha,
                       const ds_delta_src_t *basis, const ds_delta_src_t *target, char *tmp,
                       size_t tmpcap, uint64_t *size)
{
    ds_delta_opts_t o = c->opts;
    ds_delta_stats_t st = {0};
    unsigned seq;
    int fd, rc;

    pthread_mutex_lock(&c->mu);
    seq = c->seq++;
    pthread_mutex_unlock(&c->mu);
    snprintf(tmp, tmpcap, "%s/tmp.%ld.%u", c->dir, (long)getpid(), seq);
    fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    o.basis_sha256 = bsha;
    o.target_sha256 = tsha;
    if (fmt != DS_DELTA_FMT_RSYNC) {
        rc = compute_zpatch(c, fmt, bsha, tsha, basis, target, fd, &st.delta_bytes);
    } else {
        rc = ds_delta_compute(basis, target, &o, fd, &st);
        if (rc == 0)
            rc = ds_delta_check(basis, fd, st.delta_bytes, target->size, tsha);
    }
    if (rc == 0)
        rc = write_trailer(fd, st.delta_bytes,
                           fmt == DS_DELTA_FMT_RSYNC ? 0
                           : (fmt & DS_DELTA_QUICK)  ? DS_ZPATCH_LEVEL_FAST
                                                     : cache_level(c));
    /* no fsync: the cache is derived data and every hit checks the trailer
     * and checksum, so an entry a crash left torn is dropped and computed
     * again (a cold sync of 275 files spent 0.13 s of its workers in it) */
    if (rc < 0) {
        close(fd);
        unlink(tmp);
        return rc;
    }
    *size = st.delta_bytes;
    return fd;
}

int ds_delta_cache_get_or_compute(ds_delta_cache_t *c, const uint8_t basis_sha256[DS_SHA256_LEN],
                                  const uint8_t target_sha256[DS_SHA256_LEN],
                                  const ds_delta_src_t *basis, const ds_delta_src_t *target,
                                  int *fd, uint64_t *size)
{
    return ds_delta_cache_get(c, DS_DELTA_FMT_RSYNC, basis_sha256, target_sha256, basis, target, fd,
                              size);
}

/* fmt without DS_DELTA_QUICK on a librsync delta, where it is ignored. */
static int norm_fmt(int fmt)
{
    return fmt == (DS_DELTA_FMT_RSYNC | DS_DELTA_QUICK) ? DS_DELTA_FMT_RSYNC : fmt;
}

/* The entry serving fmt's request (a hit), or -1; path: fmt's entry.
 * fmt is norm_fmt's. */
static int lookup(ds_delta_cache_t *c, int fmt, const uint8_t *bsha, const uint8_t *tsha, int quiet,
                  char *path, size_t cap, uint64_t *size)
{
    int quick = (fmt & DS_DELTA_QUICK) != 0;
    int f = -1;

    if (quick) { /* the full entry at any level, else the quick one */
        entry_path(c, fmt & ~DS_DELTA_QUICK, bsha, tsha, path, cap);
        f = open_entry(c, fmt & ~DS_DELTA_QUICK, path, 1, quiet, size);
    }
    entry_path(c, fmt, bsha, tsha, path, cap);
    if (f < 0)
        f = open_entry(c, fmt, path, quick, quiet, size);
    if (f >= 0) {
        pthread_mutex_lock(&c->mu);
        c->st.hits++;
        pthread_mutex_unlock(&c->mu);
    }
    return f;
}

int ds_delta_cache_lookup(ds_delta_cache_t *c, int fmt, const uint8_t basis_sha256[DS_SHA256_LEN],
                          const uint8_t target_sha256[DS_SHA256_LEN], int *fd, uint64_t *size)
{
    char path[4096];

    *fd = lookup(c, norm_fmt(fmt), basis_sha256, target_sha256, 1, path, sizeof(path), size);
    return *fd >= 0 ? 0 : DS_ENOTFOUND;
}

int ds_delta_cache_get(ds_delta_cache_t *c, int fmt, const uint8_t basis_sha256[DS_SHA256_LEN],
                       const uint8_t target_sha256[DS_SHA256_LEN], const ds_delta_src_t *basis,
                       const ds_delta_src_t *target, int *fd, uint64_t *size)
{
    char path[4096], tmp[4096];
    int f, quick;

    *fd = -1;
    fmt = norm_fmt(fmt); /* the flag is ignored on librsync deltas (delta.h) */
    quick = (fmt & DS_DELTA_QUICK) != 0;
    if ((f = lookup(c, fmt, basis_sha256, target_sha256, 0, path, sizeof(path), size)) >= 0) {
        *fd = f;
        return 0;
    }
    f = compute_tmp(c, fmt, basis_sha256, target_sha256, basis, target, tmp, sizeof(tmp), size);
    if (f < 0) {
        ds_log(f == -ECANCELED ? DS_LOG_DEBUG : DS_LOG_ERROR, "delta cache: computing %s %s: %s",
               path, f == -ECANCELED ? "given up" : "failed", ds_strerror(f));
        return f;
    }
    if (rename(tmp, path) < 0) {
        int rc = -errno;

        ds_log(DS_LOG_ERROR, "delta cache: cannot publish %s: %s", path, strerror(errno));
        close(f);
        unlink(tmp);
        return rc;
    }
    lseek(f, 0, SEEK_SET);
    touch(c, f);
    pthread_mutex_lock(&c->mu);
    c->st.computes++;
    c->st.quick += quick;
    c->st.entries++;
    c->st.bytes += *size + TRAILER_LEN;
    if (c->st.bytes > c->cap)
        evict(c);
    pthread_mutex_unlock(&c->mu);
    *fd = f;
    return 0;
}

/* 1 when the entry at path has a trailer matching its length, made at
 * min_level or above. */
static int entry_ready(const char *path, int min_level)
{
    uint8_t t[TRAILER_LEN];
    struct stat st;
    off_t tlen;
    int fd = open(path, O_RDONLY | O_CLOEXEC), level = 0, ok = 0;

    if (fd < 0)
        return 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        read_trailer(fd, st.st_size, t, &tlen, &level))
        ok = get_be64(t + 8) == (uint64_t)(st.st_size - tlen) && level >= min_level;
    close(fd);
    return ok;
}

int ds_delta_cache_ready(ds_delta_cache_t *c, int fmt, const uint8_t basis_sha256[DS_SHA256_LEN],
                         const uint8_t target_sha256[DS_SHA256_LEN])
{
    char path[4096];
    int base = fmt & ~DS_DELTA_QUICK;

    entry_path(c, base, basis_sha256, target_sha256, path, sizeof(path));
    if (base == DS_DELTA_FMT_RSYNC)
        return entry_ready(path, 0);
    if (entry_ready(path, fmt & DS_DELTA_QUICK ? 0 : cache_level(c)))
        return 1; /* a quick request takes the full entry at any level */
    if (!(fmt & DS_DELTA_QUICK))
        return 0;
    entry_path(c, fmt, basis_sha256, target_sha256, path, sizeof(path));
    return entry_ready(path, 0);
}

int ds_delta_cache_drop(ds_delta_cache_t *c, const uint8_t basis_sha256[DS_SHA256_LEN],
                        const uint8_t target_sha256[DS_SHA256_LEN])
{
    char path[4096];

    for (int fmt = DS_DELTA_FMT_RSYNC; fmt <= DS_DELTA_FMT_MAX; fmt++)
        for (int q = 0; q <= DS_DELTA_QUICK; q += DS_DELTA_QUICK) {
            entry_path(c, fmt | q, basis_sha256, target_sha256, path, sizeof(path));
            if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        }
    return 0;
}

void ds_delta_cache_stats(ds_delta_cache_t *c, ds_delta_cache_stats_t *st)
{
    pthread_mutex_lock(&c->mu);
    *st = c->st;
    pthread_mutex_unlock(&c->mu);
}

/*
 * Scan: the walker and the incremental decision. The calling thread walks
 * the class folders directory by directory, in byte order of the full
 * relative paths, and merges that stream with a catalog cursor over the
 * class's rows (same order): a row the walk passes without meeting is a
 * file that left the store. Files to read go to the worker pool
 * (scan_hash.c); their results come back here, the only catalog writer.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "distsync/error.h"
#include "distsync/fsutil.h"
#include "distsync/log.h"
#include "distsync/pathsafe.h"
#include "distsync/scan.h"
#include "scan_int.h"

#define MAX_DEPTH   128
#define PROGRESS_NS 100000000LL
#define WAIT_MS     100
#define PATH_BUF    (PATH_MAX + NAME_MAX + 2)

struct scan {
    const ds_scan_opts_t *opts;
    ds_catalog_t *cat;
    ds_scan_stats_t st;
    struct scan_pool pool;
    size_t max_inflight;
    int rootfd;
    char *root_real; /* the store's canonical path, for symlink targets */
    int64_t now_s;
    int64_t t0, last_progress, batch_t0;
    unsigned batch_n;
    const char *klass;        /* class being walked */
    ds_catalog_cursor_t *cur; /* the class's rows, in path order */
    ds_file_row_t row;        /* current cursor row, when has_row */
    int has_row;
    int err;             /* fatal error: stop everything */
    uid_t euid;          /* who scans: see readable() */
    char path[PATH_BUF]; /* relative path being visited */
};

/* A directory's entries, sorted. Each name is stored with a '/' appended
 * when it is a directory, so that sorting names sorts the full paths. */
struct dents {
    char *names; /* NUL-separated */
    size_t used, cap;
    size_t *off;
    size_t n, ncap;
};

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* An entry that is never copied by design (empty folder, symbolic link
 * inside the store): counted, and handed to opts->not_copied. */
static void not_copied(struct scan *s, const char *path, const char *what)
{
    s->st.not_copied++;
    if (s->opts->not_copied != NULL)
        s->opts->not_copied(s->opts->ctx, path, 0, what);
}

static void warn(struct scan *s, const char *path, int err, const char *what)
{
    s->st.warnings++;
    if (s->opts->warn != NULL)
        s->opts->warn(s->opts->ctx, path, err, what);
}

/* A directory that cannot be read hides the files in it: for permission
 * and I/O errors that is a scan error, as for a file. */
static void dir_problem(struct scan *s, const char *path, int err, const char *what)
{
    if (err != -EACCES && err != -EPERM && err != -EIO) {
        warn(s, path, err, what);
        return;
    }
    s->st.unreadable++;
    if (s->opts->error != NULL)
        s->opts->error(s->opts->ctx, path, err, what);
    else
        warn(s, path, err, what);
}

static void progress(struct scan *s, int done)
{
    int64_t t = now_ns();

    if (!done && t - s->last_progress < PROGRESS_NS)
        return;
    s->last_progress = t;
    s->st.elapsed_ns = t - s->t0;
    if (s->pool.threads != NULL)
        s->st.bytes_hashed = atomic_load_explicit(&s->pool.bytes_read, memory_order_relaxed);
    if (s->opts->progress != NULL)
        s->opts->progress(s->opts->ctx, &s->st, done);
}

/* --- catalog writes, batched ------------------------------------------ */

static int batch_write(struct scan *s)
{
    if (s->err < 0)
        return s->err;
    if (!ds_catalog_in_txn(s->cat)) {
        s->err = ds_catalog_begin(s->cat);
        s->batch_n = 0;
        s->batch_t0 = now_ns();
    }
    return s->err;
}

/* Commits the batch when it is full or old enough. */
static void batch_tick(struct scan *s)
{
    if (s->err < 0 || !ds_catalog_in_txn(s->cat))
        return;
    if (s->batch_n >= DS_SCAN_BATCH_FILES || now_ns() - s->batch_t0 >= DS_SCAN_BATCH_NS)
        s->err = ds_catalog_commit(s->cat);
}

static void batch_done(struct scan *s)
{
    if (s->err < 0 || !ds_catalog_in_txn(s->cat))
        return;
    s->batch_n++;
    batch_tick(s);
}

static void remove_row(struct scan *s, const char *path)
{
    int rc;

    if (batch_write(s) < 0)
        return;
    rc = ds_catalog_file_delete(s->cat, path);
    if (rc < 0 && rc != DS_ENOTFOUND)
        s->err = rc;
    s->st.removed++;
    batch_done(s);
}

/* A file that cannot be read is a scan error: its row stays in the catalog
 * with no content ("unreadable in the store"), so that sync and status name
 * it and no server loses the version it has. */
static void record_unreadable(struct scan *s, const struct scan_job *j, ds_file_row_t *row)
{
    s->st.unreadable++;
    if (s->opts->error != NULL)
        s->opts->error(s->opts->ctx, j->path, j->err, j->what);
    else
        warn(s, j->path, j->err, j->what);
    if (batch_write(s) < 0)
        return;
    row->path = j->path;
    row->klass = j->klass;
    row->size = (uint64_t)j->st.st_size;
    row->mtime_ns = (int64_t)j->st.st_mtim.tv_sec * 1000000000LL + j->st.st_mtim.tv_nsec;
    row->inode = (uint64_t)j->st.st_ino;
    row->dev = (uint64_t)j->st.st_dev;
    row->content_id = 0; /* none: unreadable */
    row->scanned_at = s->now_s;
    s->err = ds_catalog_file_put(s->cat, row);
    batch_done(s);
}

/* Records a finished job, then frees it. */
static void record(struct scan *s, struct scan_job *j)
{
    ds_file_row_t row = {0};
    int64_t id = 0;
    int created = 0;

    if (s->err < 0)
        goto out;
    if (j->err < 0 && j->unreadable) {
        record_unreadable(s, j, &row);
        goto out;
    }
    if (j->err < 0) {
        warn(s, j->path, j->err, j->what);
        if (j->err == -ENOENT && j->had_row)
            remove_row(s, j->path);
        goto out;
    }
    if (batch_write(s) < 0)
        goto out;
    s->err =
        ds_catalog_content_put(s->cat, j->sha256, j->bytes, j->chunks, j->nchunks, &id, &created);
    row.path = j->path;
    row.klass = j->klass;
    row.size = (uint64_t)j->st.st_size;
    row.mtime_ns = ds_timespec_ns(&j->st.st_mtim);
    row.inode = (uint64_t)j->st.st_ino;
    row.dev = (uint64_t)j->st.st_dev;
    row.content_id = id;
    row.scanned_at = s->now_s;
    if (s->err == 0)
        s->err = ds_catalog_file_put(s->cat, &row);
    if (s->err < 0)
        goto out;
    s->st.contents_new += (uint64_t)created;
    s->st.hashed++;
    if (!j->had_row)
        s->st.added++;
    else if (j->old_content == id)
        s->st.touched++;
    else
        s->st.changed++;
    batch_done(s);
out:
    ds__scan_job_free(j);
}

/* Records the finished jobs that are ready, after waiting up to wait_ms for
 * the first. A wait that times out still commits a batch that grew old, so
 * a huge file being hashed does not keep the write lock for long. */
static void drain(struct scan *s, int wait_ms)
{
    struct scan_job *j;

    while ((j = ds__scan_pool_collect(&s->pool, wait_ms)) != NULL) {
        record(s, j);
        wait_ms = 0;
    }
    batch_tick(s);
    progress(s, 0);
}

/* --- the merge with the catalog cursor ---------------------------------- */

static void cursor_next(struct scan *s)
{
    int rc = ds_catalog_cursor_next(s->cur, &s->row);

    s->has_row = rc > 0;
    if (rc < 0)
        s->err = rc;
}

/* Removes the rows before path (files that left the store). Returns 1 when
 * the current row is path itself. */
static int cursor_seek(struct scan *s, const char *path)
{
    while (s->has_row && s->err == 0) {
        int c = strcmp(s->row.path, path);

        if (c >= 0)
            return c == 0;
        remove_row(s, s->row.path);
        cursor_next(s);
    }
    return 0;
}

/* Leaves the rows under dir/ (a directory that could not be read) as
 * they are. */
static void cursor_keep(struct scan *s, const char *dir)
{
    size_t n = strlen(dir);

    cursor_seek(s, dir);
    while (s->has_row && s->err == 0 && strncmp(s->row.path, dir, n) == 0 && s->row.path[n] == '/')
        cursor_next(s);
}

static int unchanged(const ds_file_row_t *r, const struct stat *st)
{
    int64_t mt = ds_timespec_ns(&st->st_mtim);

    return r->content_id > 0 && r->size == (uint64_t)st->st_size && r->mtime_ns == mt &&
           r->inode == (uint64_t)st->st_ino && r->dev == (uint64_t)st->st_dev;
}

/* 0 when the scanning user may not read the file (a chmod does not change
 * the mtime: without this, a file made unreadable after its scan would not
 * be noticed until a sync needs it). The mode bits answer for most files;
 * faccessat() (a syscall, and ACLs) only for the rest. */
static int readable(const struct scan *s, const struct stat *st, int dirfd, const char *name)
{
    if (s->euid == 0 || (st->st_mode & S_IROTH) ||
        (st->st_uid == s->euid && (st->st_mode & S_IRUSR)))
        return 1;
    return faccessat(dirfd, name, R_OK, AT_EACCESS | AT_SYMLINK_NOFOLLOW) == 0 || errno != EACCES;
}

/* dirfd/name: the entry, for readable(). */
static void visit_file(struct scan *s, const struct stat *st, int dirfd, const char *name)
{
    struct scan_job *j;
    int match = cursor_seek(s, s->path);

    if (s->err < 0)
        return;
    s->st.files++;
    if (match && unchanged(&s->row, st) && readable(s, st, dirfd, name)) {
        s->st.unchanged++;
        cursor_next(s);
        return;
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL || (j->path = strdup(s->path)) == NULL) {
        free(j);
        s->err = DS_ENOMEM;
        return;
    }
    j->klass = s->klass;
    j->st = *st;
    j->had_row = match;
    j->old_content = match ? s->row.content_id : 0;
    if (match)
        cursor_next(s);
    s->st.bytes_queued += (uint64_t)st->st_size;
    while (s->pool.inflight >= s->max_inflight && s->err == 0)
        drain(s, WAIT_MS);
    ds__scan_pool_submit(&s->pool, j);
    drain(s, 0);
}

/* --- names and symbolic links ------------------------------------------- */

/* 1 when target, a symlink found in directory dir (relative to the store
 * root), resolves lexically to a place inside the store. */
static int link_inside(const char *store, const char *dir, const char *target)
{
    size_t sl = strlen(store);
    int depth = 0;
    const char *p = target;

    while (sl > 1 && store[sl - 1] == '/')
        sl--;
    if (target[0] == '/') {
        if (strncmp(target, store, sl) != 0 || (target[sl] != '/' && target[sl] != '\0'))
            return 0;
        p = target + sl;
    } else {
        for (const char *d = dir; *d != '\0'; d++)
            depth += (d == dir || d[-1] == '/') && *d != '/';
    }
    while (*p != '\0') {
        size_t len = strcspn(p, "/");

        if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (--depth < 0)
                return 0;
        } else if (len > 0 && !(len == 1 && p[0] == '.')) {
            depth++;
        }
        p += len;
        p += *p == '/';
    }
    return 1;
}

static void visit_symlink(struct scan *s, int dirfd, const char *name, size_t dirlen)
{
    char target[PATH_MAX];
    ssize_t n = readlinkat(dirfd, name, target, sizeof(target) - 1);

    if (n < 0) {
        warn(s, s->path, -errno, "symbolic link cannot be read, skipped");
        return;
    }
    target[n] = '\0';
    s->path[dirlen] = '\0';
    if (link_inside(s->root_real, s->path, target)) {
        s->path[dirlen] = '/';
        not_copied(s, s->path, "symbolic link");
        return;
    }
    s->path[dirlen] = '/';
    warn(s, s->path, DS_ESYMLINK, "symlink leaves the store, skipped");
}

/* --- the walk ------------------------------------------------------------ */

static int dents_add(struct dents *d, const char *name, int is_dir)
{
    size_t len = strlen(name);

    if (d->used + len + 2 > d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4096;
        char *v;

        while (cap < d->used + len + 2)
            cap *= 2;
        if ((v = realloc(d->names, cap)) == NULL)
            return DS_ENOMEM;
        d->names = v;
        d->cap = cap;
    }
    if (d->n == d->ncap) {
        size_t ncap = d->ncap ? d->ncap * 2 : 64;
        size_t *v = realloc(d->off, ncap * sizeof(*v));

        if (v == NULL)
            return DS_ENOMEM;
        d->off = v;
        d->ncap = ncap;
    }
    d->off[d->n++] = d->used;
    memcpy(d->names + d->used, name, len);
    d->used += len;
    if (is_dir)
        d->names[d->used++] = '/';
    d->names[d->used++] = '\0';
    return 0;
}

static int cmp_dent(const void *a, const void *b, void *base)
{
    return strcmp((const char *)base + *(const size_t *)a, (const char *)base + *(const size_t *)b);
}

/* Reads dir's entries (except . and ..) and sorts them. */
static int read_dir(DIR *dir, struct dents *d)
{
    struct dirent *e;
    int rc;

    errno = 0;
    while ((e = readdir(dir)) != NULL) {
        int is_dir = e->d_type == DT_DIR;
        struct stat st;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (e->d_type == DT_UNKNOWN &&
            fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            is_dir = S_ISDIR(st.st_mode);
        rc = dents_add(d, e->d_name, is_dir);
        if (rc < 0)
            return rc;
        errno = 0;
    }
    if (errno != 0)
        return -errno;
    if (d->n > 1) /* an empty directory has no array to sort */
        qsort_r(d->off, d->n, sizeof(*d->off), cmp_dent, d->names);
    return 0;
}

static void walk_dir(struct scan *s, int fd, size_t len, int depth);

static void visit_dir(struct scan *s, int parent, const char *name, size_t len, int depth)
{
    int fd;

    if (depth >= MAX_DEPTH) {
        warn(s, s->path, DS_ERANGE, "directory nesting too deep, skipped (entries kept)");
        cursor_keep(s, s->path);
        return;
    }
    fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int err = -errno;

        if (err == -ENOENT) {
            warn(s, s->path, err, "directory vanished during the scan");
        } else {
            dir_problem(s, s->path, err,
                        "directory cannot be read: files in it will not ship, entries kept");
            cursor_keep(s, s->path);
        }
        return;
    }
    walk_dir(s, fd, len, depth + 1);
}

/* 1 when the entry just appended to s->path (its name nlen bytes) may enter
 * the catalog: strict UTF-8, and a path the receiver accepts (the same
 * ds_pathsafe_check as on every target: no control character, no '\', no
 * overlong path), else a warning and 0. A refused file would otherwise fail
 * every sync of every server; a refused directory is left out whole. */
static int name_ok(struct scan *s, size_t nlen, int is_dir)
{
    char what[200];
    const char *why = NULL;
    size_t len = strlen(s->path);

    if (!ds_utf8_valid(s->path + len - nlen, nlen)) {
        s->st.skipped++;
        warn(s, s->path, DS_EENCODING, "name is not valid UTF-8, skipped");
        return 0;
    }
    if (ds_pathsafe_check(s->path, &why) == 0)
        return 1;
    s->st.skipped++;
    snprintf(what, sizeof(what),
             "%s (the receivers refuse it): %s left out of the catalog, skipped", why,
             is_dir ? "directory and everything under it" : "file");
    warn(s, s->path, DS_EPATH, what);
    return 0;
}

/* Handles one entry of the directory at s->path[0, dirlen). */
static void visit_entry(struct scan *s, int dirfd, const char *key, size_t dirlen, int depth)
{
    size_t klen = strlen(key), nlen = klen;
    char name[NAME_MAX + 2];
    struct stat st;

    if (key[klen - 1] == '/')
        nlen--;
    if (dirlen + 1 + nlen >= sizeof(s->path) || nlen > NAME_MAX) {
        warn(s, s->path, -ENAMETOOLONG, "path too long, skipped");
        return;
    }
    memcpy(name, key, nlen);
    name[nlen] = '\0';
    s->path[dirlen] = '/';
    memcpy(s->path + dirlen + 1, name, nlen + 1);
    if (!name_ok(s, nlen, key[klen - 1] == '/'))
        return;
    if (key[klen - 1] == '/') {
        visit_dir(s, dirfd, name, dirlen + 1 + nlen, depth);
        return;
    }
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        warn(s, s->path, -errno, errno == ENOENT ? "vanished during the scan" : "cannot stat");
        return;
    }
    if (S_ISREG(st.st_mode))
        visit_file(s, &st, dirfd, name);
    else if (S_ISLNK(st.st_mode))
        visit_symlink(s, dirfd, name, dirlen);
    else if (S_ISDIR(st.st_mode))
        visit_dir(s, dirfd, name, dirlen + 1 + nlen, depth);
    else
        warn(s, s->path, DS_ENOTREG,
             S_ISFIFO(st.st_mode)   ? "is a FIFO, skipped"
             : S_ISSOCK(st.st_mode) ? "is a socket, skipped"
                                    : "is a device, skipped");
}

/* Walks the directory open at fd, whose relative path is s->path[0, len).
 * Takes ownership of fd. */
static void walk_dir(struct scan *s, int fd, size_t len, int depth)
{
    struct dents d = {0};
    DIR *dir = fdopendir(fd);
    int rc;

    if (dir == NULL) {
        close(fd);
        s->err = DS_ENOMEM;
        return;
    }
    s->path[len] = '\0';
    rc = read_dir(dir, &d);
    if (rc < 0) {
        dir_problem(s, s->path, rc,
                    rc == DS_ENOMEM ? "out of memory"
                                    : "directory cannot be read: files in it will not ship");
        if (rc == DS_ENOMEM)
            s->err = rc;
        else
            cursor_keep(s, s->path);
        goto out;
    }
    if (d.n == 0 && depth > 0) /* a folder with no files has nothing to copy */
        not_copied(s, s->path, "empty folder");
    for (size_t i = 0; i < d.n && s->err == 0; i++) {
        visit_entry(s, dirfd(dir), d.names + d.off[i], len, depth);
        s->path[len] = '\0';
    }
out:
    free(d.names);
    free(d.off);
    closedir(dir);
}

static void scan_class(struct scan *s, const char *klass)
{
    char prefix[NAME_MAX + 2];
    size_t len = strlen(klass);
    int fd;

    if (len == 0 || len > NAME_MAX || strchr(klass, '/') != NULL || strcmp(klass, ".") == 0 ||
        strcmp(klass, "..") == 0 || !ds_utf8_valid(klass, len)) {
        warn(s, klass, DS_EUSAGE, "not a valid class folder name, skipped");
        return;
    }
    memcpy(s->path, klass, len + 1);
    fd = openat(s->rootfd, klass, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        dir_problem(s, klass, -errno,
                    errno == ENOENT ? "class folder is missing, its catalog entries are kept"
                                    : "class folder cannot be opened: files in it will not ship, "
                                      "its catalog entries are kept");
        return;
    }
    snprintf(prefix, sizeof(prefix), "%s/", klass);
    s->err = ds_catalog_cursor_open(s->cat, prefix, &s->cur);
    if (s->err < 0) {
        close(fd);
        return;
    }
    s->klass = klass;
    cursor_next(s);
    walk_dir(s, fd, len, 0);
    cursor_seek(s, "\xff"); /* every remaining row left the store */
    ds_catalog_cursor_free(s->cur);
    s->cur = NULL;
}

static unsigned default_threads(unsigned t)
{
    long n;

    if (t > 0)
        return t > 256 ? 256 : t;
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
}

int ds_scan_run(const ds_scan_opts_t *opts, ds_catalog_t *cat, ds_scan_stats_t *stats)
{
    static const ds_chunker_params_t defaults = {DS_CHUNK_MIN_DEFAULT, DS_CHUNK_AVG_DEFAULT,
                                                 DS_CHUNK_MAX_DEFAULT};
    struct scan s = {.opts = opts, .cat = cat, .rootfd = -1};
    unsigned threads = default_threads(opts->threads);
    int64_t gen = 0;
    int rc;

    s.t0 = s.last_progress = now_ns();
    s.now_s = opts->now > 0 ? opts->now : (int64_t)time(NULL);
    s.euid = geteuid();
    s.max_inflight = 4 * (size_t)threads + 4;
    s.rootfd = open(opts->store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    /* Fatal errors are returned, not logged: the caller reports them once,
     * naming the store (scan.h). */
    if (s.rootfd < 0) {
        rc = -errno;
        goto out;
    }
    s.root_real = realpath(opts->store, NULL);
    if (s.root_real == NULL) {
        rc = errno == ENOMEM ? DS_ENOMEM : -errno;
        goto out;
    }
    rc = ds__scan_pool_start(&s.pool, s.rootfd, opts->chunk.avg_size ? &opts->chunk : &defaults,
                             threads);
    if (rc < 0)
        goto out;
    rc = ds_catalog_gen_begin(cat, s.now_s, &gen);
    if (rc < 0)
        goto out;
    ds_log(DS_LOG_DEBUG, "scan: store %s, %zu classes, %u hashing threads, generation %lld",
           s.root_real, opts->nclasses, threads, (long long)gen);
    for (size_t i = 0; i < opts->nclasses && s.err == 0; i++)
        scan_class(&s, opts->classes[i]);
    while (s.pool.inflight > 0)
        drain(&s, WAIT_MS);
    if (s.err == 0 && ds_catalog_in_txn(cat))
        s.err = ds_catalog_commit(cat);
    if (s.err == 0) /* the catalog now describes the store: prune may use it */
        s.err = ds_catalog_mark_scanned(cat, s.now_s);
    if (s.err == 0) /* the desired set as of now: this generation */
        s.err = ds_catalog_gen_end(cat, gen, s.now_s + (now_ns() - s.t0) / 1000000000LL);
    rc = s.err;
out:
    ds_catalog_cursor_free(s.cur);
    if (s.pool.threads != NULL)
        s.st.bytes_hashed = atomic_load(&s.pool.bytes_read);
    ds__scan_pool_stop(&s.pool);
    if (ds_catalog_in_txn(cat))
        ds_catalog_rollback(cat);
    if (s.rootfd >= 0)
        close(s.rootfd);
    free(s.root_real);
    progress(&s, 1);
    if (stats != NULL)
        *stats = s.st;
    return rc;
}

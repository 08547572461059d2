/*
 * Scan workers: each thread takes a file off the queue, reads it in
 * DS_SCAN_BLOCK blocks (never mmap, so memory stays bounded whatever the
 * file size), and runs SHA-256 over the file plus the chunker and XXH3-128
 * per chunk. Each block is processed in DS_SCAN_SLICE pieces so the SHA-256
 * pass and the chunker pass hit the CPU cache for the same bytes. A huge
 * file met when no other file waits gets a helper thread for its SHA-256
 * (sha_helper below), so one file can use two cores.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "distsync/catalog.h"
#include "distsync/error.h"
#include "distsync/scan.h"
#include "scan_int.h"

#define DS_SCAN_SLICE (128u * 1024)
/* Files from this size on may get a SHA-256 helper thread (overridable at
 * build time so tests can push every file through the helper). */
#ifndef DS_SCAN_SPLIT_MIN
#define DS_SCAN_SPLIT_MIN (64ull << 20)
#endif

/* Per-worker hashing state. */
struct hasher {
    ds_chunker_t ch;
    XXH3_state_t *xs;
    uint64_t cur_len; /* bytes of the current chunk before this piece */
    ds_sha256_t sha;
    uint8_t *spare; /* second read buffer, once a huge file needed one */
};

/* Opens path below rootfd without following any symbolic link, so a walk
 * racing with renames cannot be steered outside the store. Falls back to
 * openat(O_NOFOLLOW), which guards the last component only, on kernels
 * without openat2. Returns an fd or -errno. */
static int open_beneath(int rootfd, const char *path)
{
    struct open_how how = {
        .flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));

    if (fd < 0 && (errno == ENOSYS || errno == EPERM))
        fd = openat(rootfd, path, (int)how.flags);
    return fd < 0 ? -errno : (int)fd;
}

static int emit(struct scan_job *j, const XXH128_hash_t *h, uint64_t len)
{
    XXH128_canonical_t c;
    uint8_t *rec;

    if (j->nchunks == j->cap) {
        uint32_t cap = j->cap ? j->cap * 2 : 64;
        uint8_t *v = realloc(j->chunks, (size_t)cap * DS_CATALOG_CHUNK_REC);

        if (v == NULL)
            return DS_ENOMEM;
        j->chunks = v;
        j->cap = cap;
    }
    rec = j->chunks + (size_t)j->nchunks++ * DS_CATALOG_CHUNK_REC;
    XXH128_canonicalFromHash(&c, *h);
    memcpy(rec, c.digest, DS_XXH128_LEN);
    for (int i = 0; i < 4; i++)
        rec[DS_XXH128_LEN + i] = (uint8_t)(len >> (8 * i));
    return 0;
}

/* Feeds p[0, n) to the chunker and the per-chunk XXH3. A chunk that lies
 * wholly inside p is hashed in one shot; one that spans pieces is streamed. */
static int chunk_piece(struct hasher *h, struct scan_job *j, const uint8_t *p, size_t n)
{
    while (n > 0) {
        int cut = 0;
        size_t k = ds_chunker_next(&h->ch, p, n, &cut);
        XXH128_hash_t d;

        if (cut && h->cur_len == 0) {
            d = XXH3_128bits(p, k);
        } else {
            if (h->cur_len == 0)
                XXH3_128bits_reset(h->xs);
            XXH3_128bits_update(h->xs, p, k);
            if (cut)
                d = XXH3_128bits_digest(h->xs);
        }
        h->cur_len += k;
        if (cut) {
            if (emit(j, &d, h->cur_len) < 0)
                return DS_ENOMEM;
            h->cur_len = 0;
        }
        p += k;
        n -= k;
    }
    return 0;
}

static int changed(const struct stat *a, const struct stat *b)
{
    return a->st_size != b->st_size || a->st_mtim.tv_sec != b->st_mtim.tv_sec ||
           a->st_mtim.tv_nsec != b->st_mtim.tv_nsec || a->st_ino != b->st_ino;
}

static int fail(struct scan_job *j, int err, const char *what)
{
    j->err = err;
    j->what = what;
    return err;
}

static const char *open_error_text(int err)
{
    switch (err) {
    case -ENOENT:
        return "vanished during the scan";
    case -ELOOP:
    case -EXDEV:
        return "became a symbolic link during the scan, skipped";
    case -EACCES:
    case -EPERM:
    case -EIO:
        return "unreadable: it will not ship until it can be read";
    default:
        return "cannot be opened, previous entry kept";
    }
}

/*
 * SHA-256 on a second thread for a huge file, while the worker reads and
 * chunks: SHA-256 costs about twice the chunker, so one file alone would
 * otherwise leave a core idle. The worker reads into two buffers in turn
 * and hands each block over; it reuses a buffer once the helper hashed it.
 */
struct sha_helper {
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ds_sha256_t *sha;
    uint8_t *buf[2];
    size_t len[2];
    unsigned filled, hashed; /* blocks handed over, blocks hashed */
    int eof;                 /* no block will follow */
};

static void *sha_helper_main(void *arg)
{
    struct sha_helper *x = arg;

    pthread_mutex_lock(&x->mu);
    for (;;) {
        while (x->hashed == x->filled && !x->eof)
            pthread_cond_wait(&x->cv, &x->mu);
        if (x->hashed == x->filled)
            break;
        unsigned k = x->hashed % 2;

        pthread_mutex_unlock(&x->mu);
        ds_sha256_update(x->sha, x->buf[k], x->len[k]);
        pthread_mutex_lock(&x->mu);
        x->hashed++;
        pthread_cond_broadcast(&x->cv);
    }
    pthread_mutex_unlock(&x->mu);
    return NULL;
}

/* Starts a helper hashing into h->sha from buf and h->spare. Returns 0, or
 * -1 when no helper could be had (then hash on this thread). */
static int helper_start(struct sha_helper *x, struct hasher *h, uint8_t *buf)
{
    if (h->spare == NULL && posix_memalign((void **)&h->spare, 4096, DS_SCAN_BLOCK) != 0) {
        h->spare = NULL;
        return -1;
    }
    memset(x, 0, sizeof(*x));
    x->sha = &h->sha;
    x->buf[0] = buf;
    x->buf[1] = h->spare;
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    if (pthread_create(&x->tid, NULL, sha_helper_main, x) != 0) {
        pthread_mutex_destroy(&x->mu);
        pthread_cond_destroy(&x->cv);
        return -1;
    }
    return 0;
}

/* Returns the buffer for the next block, once the helper is done with it. */
static uint8_t *helper_buffer(struct sha_helper *x)
{
    pthread_mutex_lock(&x->mu);
    while (x->filled - x->hashed >= 2)
        pthread_cond_wait(&x->cv, &x->mu);
    pthread_mutex_unlock(&x->mu);
    return x->buf[x->filled % 2];
}

static void helper_hand(struct sha_helper *x, size_t n)
{
    pthread_mutex_lock(&x->mu);
    x->len[x->filled % 2] = n;
    x->filled++;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
}

/* Lets the helper hash what it was handed, then joins it. */
static void helper_stop(struct sha_helper *x)
{
    pthread_mutex_lock(&x->mu);
    x->eof = 1;
    pthread_cond_broadcast(&x->cv);
    pthread_mutex_unlock(&x->mu);
    pthread_join(x->tid, NULL);
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->cv);
}

/* A file worth a helper: huge, and no other file waiting for a worker. */
static int want_helper(struct scan_pool *p, const struct stat *st)
{
    int idle;

    if ((uint64_t)st->st_size < DS_SCAN_SPLIT_MIN)
        return 0;
    pthread_mutex_lock(&p->mu);
    idle = p->todo == NULL;
    pthread_mutex_unlock(&p->mu);
    return idle;
}

/* Reads the whole file and hashes it, SHA-256 on x when it is not NULL.
 * Stops at the size fstat gave, which saves the read that would return 0
 * on small files: growth is caught by the fstat after reading. */
static int read_all(struct scan_pool *p, struct hasher *h, struct scan_job *j, int fd, uint8_t *buf,
                    struct sha_helper *x)
{
    for (;;) {
        if (j->bytes >= (uint64_t)j->st.st_size && j->bytes > 0)
            return 0;
        if (x != NULL)
            buf = helper_buffer(x);
        ssize_t n = read(fd, buf, DS_SCAN_BLOCK);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            j->unreadable = 1;
            return fail(j, -errno,
                        "unreadable (read error): it will not ship until it can be read");
        }
        if (n == 0)
            return 0;
        if (x != NULL)
            helper_hand(x, (size_t)n);
        for (size_t off = 0; off < (size_t)n; off += DS_SCAN_SLICE) {
            size_t len = (size_t)n - off < DS_SCAN_SLICE ? (size_t)n - off : DS_SCAN_SLICE;

            if (x == NULL)
                ds_sha256_update(&h->sha, buf + off, len);
            if (chunk_piece(h, j, buf + off, len) < 0)
                return fail(j, DS_ENOMEM, "out of memory");
        }
        j->bytes += (uint64_t)n;
        atomic_fetch_add_explicit(&p->bytes_read, (uint64_t)n, memory_order_relaxed);
    }
}

static void hash_file(struct scan_pool *p, struct hasher *h, struct scan_job *j, uint8_t *buf)
{
    struct stat after;
    struct sha_helper x;
    int use_helper, rc, fd = open_beneath(p->rootfd, j->path);

    if (fd < 0) {
        fail(j, fd, open_error_text(fd));
        j->unreadable = fd == -EACCES || fd == -EPERM || fd == -EIO;
        return;
    }
    if (fstat(fd, &j->st) < 0) {
        fail(j, -errno, "cannot be examined, previous entry kept");
        goto out;
    }
    if (!S_ISREG(j->st.st_mode)) {
        fail(j, DS_ENOTREG, "is no longer a regular file, skipped");
        goto out;
    }
    if (j->st.st_size > DS_SCAN_BLOCK)
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    if (ds_sha256_init(&h->sha) < 0) {
        fail(j, DS_ENOMEM, "out of memory");
        goto out;
    }
    ds_chunker_reset(&h->ch);
    h->cur_len = 0;
    use_helper = want_helper(p, &j->st) && helper_start(&x, h, buf) == 0;
    rc = read_all(p, h, j, fd, buf, use_helper ? &x : NULL);
    if (use_helper)
        helper_stop(&x);
    if (rc < 0)
        goto out;
    if (h->cur_len > 0) {
        XXH128_hash_t d = XXH3_128bits_digest(h->xs);

        if (emit(j, &d, h->cur_len) < 0) {
            fail(j, DS_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (fstat(fd, &after) < 0 || changed(&j->st, &after) || j->bytes != (uint64_t)after.st_size) {
        fail(j, DS_ECHANGED, "changed while being read, previous entry kept");
        goto out;
    }
    ds_sha256_final(&h->sha, j->sha256);
out:
    ds_sha256_close(&h->sha);
    close(fd);
}

static struct scan_job *take(struct scan_pool *p)
{
    struct scan_job *j;

    pthread_mutex_lock(&p->mu);
    while (p->todo == NULL && !p->stop)
        pthread_cond_wait(&p->work_cv, &p->mu);
    j = p->stop ? NULL : p->todo;
    if (j != NULL) {
        p->todo = j->next;
        if (p->todo == NULL)
            p->todo_tail = NULL;
        j->next = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    return j;
}

/* Hands a finished job back. The collector is woken only when the queue ran
 * dry or half the jobs in flight are done: waking it for every small file
 * costs more than hashing it. */
static void give_back(struct scan_pool *p, struct scan_job *j)
{
    pthread_mutex_lock(&p->mu);
    if (p->done_tail != NULL)
        p->done_tail->next = j;
    else
        p->done = j;
    p->done_tail = j;
    if (++p->ndone * 2 >= p->inflight || p->todo == NULL)
        pthread_cond_signal(&p->done_cv);
    pthread_mutex_unlock(&p->mu);
}

static void *worker(void *arg)
{
    struct scan_pool *p = arg;
    struct hasher h = {0};
    uint8_t *buf = NULL;
    struct scan_job *j;

    /* Page-aligned: the kernel's copy into a buffer 16 bytes off the page
     * cache's alignment (what malloc returns for a block this size) runs
     * about 5 times slower on this CPU class. */
    if (posix_memalign((void **)&buf, 4096, DS_SCAN_BLOCK) != 0)
        buf = NULL;
    h.xs = XXH3_createState();
    /* Parameters were validated before the workers started. */
    (void)ds_chunker_init(&h.ch, &p->params);
    while ((j = take(p)) != NULL) {
        if (buf == NULL || h.xs == NULL)
            fail(j, DS_ENOMEM, "out of memory");
        else
            hash_file(p, &h, j, buf);
        give_back(p, j);
    }
    XXH3_freeState(h.xs);
    free(h.spare);
    free(buf);
    return NULL;
}

int ds__scan_pool_start(struct scan_pool *p, int rootfd, const ds_chunker_params_t *params,
                        unsigned n)
{
    ds_chunker_t probe;
    int rc;

    memset(p, 0, sizeof(*p));
    p->rootfd = rootfd;
    p->params = *params;
    rc = ds_chunker_init(&probe, params);
    if (rc < 0)
        return rc;
    pthread_condattr_t ca;

    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    p->threads = calloc(n, sizeof(*p->threads));
    if (p->threads == NULL)
        return DS_ENOMEM;
    for (; p->nthreads < n; p->nthreads++) {
        rc = pthread_create(&p->threads[p->nthreads], NULL, worker, p);
        if (rc != 0)
            return -rc;
    }
    return 0;
}

void ds__scan_pool_submit(struct scan_pool *p, struct scan_job *job)
{
    pthread_mutex_lock(&p->mu);
    job->next = NULL;
    if (p->todo_tail != NULL)
        p->todo_tail->next = job;
    else
        p->todo = job;
    p->todo_tail = job;
    p->inflight++;
    pthread_cond_signal(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
}

struct scan_job *ds__scan_pool_collect(struct scan_pool *p, int wait_ms)
{
    struct scan_job *j;
    struct timespec until;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->mu);
    while (wait_ms > 0 && p->done == NULL && p->inflight > 0)
        if (pthread_cond_timedwait(&p->done_cv, &p->mu, &until) == ETIMEDOUT)
            break;
    j = p->done;
    if (j != NULL) {
        p->done = j->next;
        if (p->done == NULL)
            p->done_tail = NULL;
        j->next = NULL;
        p->inflight--;
        p->ndone--;
    }
    pthread_mutex_unlock(&p->mu);
    return j;
}

static void free_list(struct scan_job *j)
{
    while (j != NULL) {
        struct scan_job *next = j->next;

        ds__scan_job_free(j);
        j = next;
    }
}

void ds__scan_pool_stop(struct scan_pool *p)
{
    if (p->threads == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    free_list(p->todo);
    free_list(p->done);
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    memset(p, 0, sizeof(*p));
}

void ds__scan_job_free(struct scan_job *job)
{
    if (job == NULL)
        return;
    free(job->path);
    free(job->chunks);
    free(job);
}

/*
 * bench_zpatch_cpu: console CPU and bytes of the zpatch encoder (stream
 * version 2, every candidate) over a list of (basis, new) file pairs, as
 * the delta cache computes them, without the sync around it.
 *
 *   bench_zpatch_cpu LEVEL [THREADS [VERSION]] < PAIRS
 *
 * PAIRS: one "BASIS<TAB>NEW" per line. THREADS workers (default 1) take
 * pairs largest first. Prints one line per pair ("bytes cpu_s new") and
 * a total: delta bytes, CPU seconds (user+sys of the process), wall
 * seconds and peak RSS (MiB). VERSION: the stream version (default 2; 1
 * with LEVEL 3 is a quick delta, README "Quick deltas").
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "distsync/error.h"
#include "distsync/zpatch.h"

struct pair {
    char *b, *t;
    uint64_t tsize, bytes;
    double cpu;
    int rc;
};

static struct pair *v;
static size_t n, next;
static int level, version = 2;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static long fd_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    ssize_t r = pread((int)(intptr_t)ctx, buf, len, (off_t)off);

    return r < 0 ? -errno : (long)r;
}

static double thread_cpu(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(struct pair *p)
{
    int bfd = open(p->b, O_RDONLY), tfd = open(p->t, O_RDONLY), ofd = -1, rc = -EINVAL;
    char tmp[] = "/tmp/bench_zpatch_cpu.XXXXXX";
    struct stat bs, ts;
    ds_zpatch_stats_t st;

    if (bfd < 0 || tfd < 0 || fstat(bfd, &bs) < 0 || fstat(tfd, &ts) < 0 ||
        (ofd = mkstemp(tmp)) < 0)
        goto out;
    unlink(tmp);
    ds_delta_src_t b = {
        .read = fd_read, .ctx = (void *)(intptr_t)bfd, .size = (uint64_t)bs.st_size};
    ds_delta_src_t t = {
        .read = fd_read, .ctx = (void *)(intptr_t)tfd, .size = (uint64_t)ts.st_size};
    double c0 = thread_cpu();

    rc = ds_zpatch_encode_v(&b, &t, level, version, NULL, NULL, ofd, &st);
    p->cpu = thread_cpu() - c0;
    p->bytes = st.delta_bytes;
out:
    if (bfd >= 0)
        close(bfd);
    if (tfd >= 0)
        close(tfd);
    if (ofd >= 0)
        close(ofd);
    return rc;
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        struct pair *p = NULL;

        pthread_mutex_lock(&mu);
        if (next < n)
            p = &v[next++];
        pthread_mutex_unlock(&mu);
        if (p == NULL)
            return NULL;
        p->rc = run(p);
    }
}

static int by_size(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;

    return x->tsize == y->tsize ? 0 : x->tsize > y->tsize ? -1 : 1;
}

int main(int argc, char **argv)
{
    char line[8192];
    size_t cap = 0;
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    pthread_t t[64];
    struct timespec w0, w1;
    struct rusage ru;
    uint64_t bytes = 0;

    if (argc > 3)
        version = atoi(argv[3]);
    if (argc < 2 || threads < 1 || threads > 64 || version < 1 || version > 2) {
        fprintf(stderr, "usage: bench_zpatch_cpu LEVEL [THREADS [VERSION]] < PAIRS\n");
        return 2;
    }
    level = atoi(argv[1]);
    while (fgets(line, sizeof(line), stdin) != NULL) {
        char *tab = strchr(line, '\t');
        struct stat st;

        line[strcspn(line, "\n")] = 0;
        if (tab == NULL)
            continue;
        *tab = 0;
        if (n == cap && (v = realloc(v, (cap = cap ? 2 * cap : 64) * sizeof(*v))) == NULL)
            return 1;
        v[n] = (struct pair){.b = strdup(line), .t = strdup(tab + 1)};
        v[n].tsize = stat(v[n].t, &st) == 0 ? (uint64_t)st.st_size : 0;
        n++;
    }
    qsort(v, n, sizeof(*v), by_size);
    clock_gettime(CLOCK_MONOTONIC, &w0);
    for (int i = 1; i < threads; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    worker(NULL);
    for (int i = 1; i < threads; i++)
        pthread_join(t[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &w1);
    getrusage(RUSAGE_SELF, &ru);
    for (size_t i = 0; i < n; i++) {
        if (v[i].rc < 0)
            fprintf(stderr, "%s: %s\n", v[i].t, ds_strerror(v[i].rc));
        printf("%llu\t%.3f\t%s\n", (unsigned long long)v[i].bytes, v[i].cpu, v[i].t);
        bytes += v[i].bytes;
    }
    printf("total\t%llu\t%.2f\t%.2f\t%ld\n", (unsigned long long)bytes,
           (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
           (double)(w1.tv_sec - w0.tv_sec) + (double)(w1.tv_nsec - w0.tv_nsec) / 1e9,
           ru.ru_maxrss / 1024);
    return 0;
}

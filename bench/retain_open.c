/*
 * bench_retain_open: what a delta job pays to read its basis from the
 * retain store, with a handle opened for the job (as before sync_rpool.c)
 * and with one handle kept across jobs (the worker pool's).
 *
 *   bench_retain_open DIR [ROUNDS]
 *
 * Retains every regular file under DIR (chunked with the scan's default
 * parameters) in a fresh store under $TMPDIR, then reads every version
 * whole, ROUNDS times (default 3) each way: "open" opens and closes the
 * store around each version, "kept" reads all through one handle. Prints
 * one line per round (CPU seconds, user+sys, and wall) and the medians.
 * Another handle stays open throughout, as the sync's loop thread's does.
 */
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "distsync/chunker.h"
#include "distsync/digest.h"
#include "distsync/error.h"
#include "distsync/retain.h"

#define ROUNDS_MAX 15

static uint8_t (*shas)[DS_SHA256_LEN];
static size_t nshas, capshas;
static ds_retain_t *wr;

static double cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static double wall_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Chunks the file's bytes into packed records; returns their count. */
static size_t chunk_all(const uint8_t *p, size_t size, uint8_t **recs)
{
    static const ds_chunker_params_t prm = {DS_CHUNK_MIN_DEFAULT, DS_CHUNK_AVG_DEFAULT,
                                            DS_CHUNK_MAX_DEFAULT};
    ds_chunker_t ck;
    size_t pos = 0, start = 0, n = 0, cap = 16;
    int cut;

    *recs = malloc(cap * DS_RETAIN_REC_LEN);
    if (ds_chunker_init(&ck, &prm) < 0)
        return 0;
    while (pos < size) {
        pos += ds_chunker_next(&ck, p + pos, size - pos, &cut);
        if (!cut && pos < size)
            continue;
        if (n == cap)
            *recs = realloc(*recs, (cap *= 2) * DS_RETAIN_REC_LEN);
        ds_xxh128(p + start, pos - start, *recs + n * DS_RETAIN_REC_LEN);
        for (int k = 0; k < 4; k++)
            (*recs)[n * DS_RETAIN_REC_LEN + 16 + k] = (uint8_t)((pos - start) >> (8 * k));
        n++;
        start = pos;
    }
    return n;
}

static int put_file(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    uint8_t *data, *recs = NULL;
    size_t n;
    int fd;

    (void)ftw;
    if (type != FTW_F || !S_ISREG(st->st_mode) || st->st_size == 0)
        return 0;
    fd = open(path, O_RDONLY);
    data = malloc((size_t)st->st_size);
    if (fd < 0 || data == NULL || read(fd, data, (size_t)st->st_size) != st->st_size) {
        fprintf(stderr, "%s: cannot read\n", path);
        exit(1);
    }
    if (nshas == capshas)
        shas = realloc(shas, (capshas = capshas ? 2 * capshas : 256) * sizeof(*shas));
    n = chunk_all(data, (size_t)st->st_size, &recs);
    if (ds_sha256(data, (size_t)st->st_size, shas[nshas]) < 0 ||
        ds_retain_put(wr, fd, shas[nshas], (uint64_t)st->st_size, recs, n, 0) < 0) {
        fprintf(stderr, "%s: cannot retain\n", path);
        exit(1);
    }
    nshas++;
    free(recs);
    free(data);
    close(fd);
    return 0;
}

static void read_version(ds_retain_t *r, const uint8_t *sha, uint8_t *buf, size_t cap)
{
    ds_retain_reader_t *rd = NULL;
    uint64_t off = 0;
    long got;

    if (ds_retain_open_version(r, sha, 0, &rd) < 0)
        exit(1);
    while ((got = ds_retain_read(rd, off, buf, cap)) > 0)
        off += (uint64_t)got;
    ds_retain_reader_free(rd);
}

/* One round: every version read, through one handle or one per version. */
static void round_of(const char *dir, int kept, double *cpu, double *wall)
{
    static uint8_t buf[1 << 20];
    ds_retain_t *r = NULL;
    double c0 = cpu_s(), w0 = wall_s();

    for (size_t i = 0; i < nshas; i++) {
        if ((r == NULL && ds_retain_open(dir, &r) < 0) || r == NULL)
            exit(1);
        read_version(r, shas[i], buf, sizeof(buf));
        if (!kept) {
            ds_retain_close(r);
            r = NULL;
        }
    }
    ds_retain_close(r);
    *cpu = cpu_s() - c0;
    *wall = wall_s() - w0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/bench_retain_open.XXXXXX";
    double cpu[2][ROUNDS_MAX], wall[2][ROUNDS_MAX];
    int rounds = argc > 2 ? atoi(argv[2]) : 3;

    if (argc < 2 || rounds < 1 || rounds > ROUNDS_MAX) {
        fprintf(stderr, "usage: bench_retain_open DIR [ROUNDS (1-%d)]\n", ROUNDS_MAX);
        return 2;
    }
    if (mkdtemp(dir) == NULL || ds_retain_open(dir, &wr) < 0 || ds_retain_batch_begin(wr) < 0 ||
        nftw(argv[1], put_file, 16, FTW_PHYS) != 0 || ds_retain_batch_end(wr) < 0)
        return 1;
    ds_retain_close(wr);
    /* as in a sync, another connection (the loop thread's) stays open: a
     * job's close is never the last one, which would checkpoint */
    if (ds_retain_open(dir, &wr) < 0)
        return 1;
    printf("%zu versions retained from %s\n%-6s %5s %9s %9s\n", nshas, argv[1], "mode", "round",
           "cpu_s", "wall_s");
    for (int i = 0; i < rounds; i++)
        for (int kept = 0; kept < 2; kept++) {
            round_of(dir, kept, &cpu[kept][i], &wall[kept][i]);
            printf("%-6s %5d %9.3f %9.3f\n", kept ? "kept" : "open", i + 1, cpu[kept][i],
                   wall[kept][i]);
        }
    ds_retain_close(wr);
    for (int kept = 0; kept < 2; kept++) {
        qsort(cpu[kept], (size_t)rounds, sizeof(double), cmp_d);
        qsort(wall[kept], (size_t)rounds, sizeof(double), cmp_d);
        printf("%-6s %5s %9.3f %9.3f\n", kept ? "kept" : "open", "median", cpu[kept][rounds / 2],
               wall[kept][rounds / 2]);
    }
    for (size_t i = 0; i < 3; i++) {
        static const char *const f[] = {"retain.db", "retain.db-wal", "retain.db-shm"};
        char path[sizeof(dir) + 32];

        snprintf(path, sizeof(path), "%s/%s", dir, f[i]);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}

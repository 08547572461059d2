/*
 * bench_chunk: per-core throughput of the ingest kernels (gear chunking,
 * XXH3-128 per chunk, SHA-256 per file), single thread, N runs (default 5).
 *
 *   bench_chunk [--size MiB] [--runs N] [--kernel K] [FILE...]
 *
 * With no FILE it chunks a pseudo-random in-memory buffer of --size MiB
 * (default 512); with FILEs it maps them (read from the page cache, each file
 * one stream) and reports over their total size. --kernel K (0-based row
 * of the table) runs one kernel only, e.g. under valgrind to count
 * instructions. Output is a plain-text table: kernel, MB/s (10^6 bytes/s)
 * as the median and the best wall time of the runs, the best thread CPU
 * time (robust when other jobs share the cores), chunks, average chunk size.
 * "block pipeline" is what a scan worker does: 1 MiB blocks copied into a
 * buffer (the read), then SHA-256 and chunk + XXH3 over each L2-sized slice.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "distsync/chunker.h"
#include "distsync/digest.h"

#define MAX_RUNS 99

struct input {
    const uint8_t **data;
    size_t *len;
    int n;
    size_t total;
};

enum { K_CHUNK, K_CHUNK_XXH, K_CHUNK_XXH_SHA, K_BLOCK, K_XXH, K_SHA, K_COUNT };

static const char *const kernel_names[K_COUNT] = {
    "gear chunk only", "chunk + XXH3-128", "chunk + XXH3 + SHA-256",
    "block pipeline",  "XXH3-128 only",    "SHA-256 only",
};

#define BLOCK (1u << 20)
static size_t slice = 256u * 1024; /* --slice */

static volatile uint8_t sink;

static double now(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Chunks p[0, n) as one piece of a stream, XXH3 streaming for chunks that
 * span pieces; *cur is the length of the open chunk. Returns chunks cut. */
static size_t chunk_piece(ds_chunker_t *c, XXH3_state_t *xs, uint64_t *cur, const uint8_t *p,
                          size_t n)
{
    size_t chunks = 0;

    while (n > 0) {
        int cut;
        size_t k = ds_chunker_next(c, p, n, &cut);

        if (cut && *cur == 0) {
            sink ^= (uint8_t)XXH3_128bits(p, k).low64;
        } else {
            if (*cur == 0)
                XXH3_128bits_reset(xs);
            XXH3_128bits_update(xs, p, k);
            if (cut)
                sink ^= (uint8_t)XXH3_128bits_digest(xs).low64;
        }
        *cur = cut ? 0 : *cur + k;
        chunks += (size_t)cut;
        p += k;
        n -= k;
    }
    return chunks;
}

/* The scan worker's loop over one stream (see the header comment). */
static size_t run_blocks(const uint8_t *p, size_t len)
{
    static uint8_t buf[BLOCK];
    XXH3_state_t *xs = XXH3_createState();
    ds_chunker_t c;
    ds_sha256_t sha;
    uint8_t d[DS_SHA256_LEN];
    uint64_t cur = 0;
    size_t chunks = 0;

    if (xs == NULL || ds_sha256_init(&sha) < 0)
        exit(1);
    if (ds_chunker_init(&c, NULL) != 0)
        exit(1);
    for (size_t off = 0; off < len; off += BLOCK) {
        size_t n = len - off < BLOCK ? len - off : BLOCK;

        memcpy(buf, p + off, n);
        for (size_t s = 0; s < n; s += slice) {
            size_t k = n - s < slice ? n - s : slice;

            ds_sha256_update(&sha, buf + s, k);
            chunks += chunk_piece(&c, xs, &cur, buf + s, k);
        }
    }
    if (cur > 0)
        chunks++, sink ^= (uint8_t)XXH3_128bits_digest(xs).low64;
    ds_sha256_final(&sha, d);
    sink ^= d[0];
    XXH3_freeState(xs);
    return chunks;
}

/* Chunks one stream with kernel k. Returns the number of chunks. */
static size_t run_stream(int k, const uint8_t *p, size_t len)
{
    ds_chunker_t c;
    ds_sha256_t sha;
    uint8_t d[DS_SHA256_LEN];
    size_t off = 0, start = 0, chunks = 0;
    int cut;

    if (k == K_BLOCK)
        return run_blocks(p, len);
    if (k == K_XXH || k == K_SHA) {
        if (k == K_XXH)
            ds_xxh128(p, len, d);
        else if (ds_sha256(p, len, d) < 0)
            exit(1);
        sink ^= d[0];
        return 0;
    }
    if (ds_chunker_init(&c, NULL) != 0)
        exit(1);
    if (k == K_CHUNK_XXH_SHA && ds_sha256_init(&sha) < 0)
        exit(1);
    while (off < len || start < off) {
        off += ds_chunker_next(&c, p + off, len - off, &cut);
        if (!cut && off < len)
            continue;
        if (off == start)
            break;
        chunks++;
        if (k != K_CHUNK)
            ds_xxh128(p + start, off - start, d), sink ^= d[0];
        if (k == K_CHUNK_XXH_SHA)
            ds_sha256_update(&sha, p + start, off - start);
        start = off;
    }
    if (k == K_CHUNK_XXH_SHA)
        ds_sha256_final(&sha, d), sink ^= d[0];
    return chunks;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

struct timing {
    double median, best, best_cpu; /* seconds */
};

/* Runs kernel k `runs` times over in. */
static struct timing measure(int k, const struct input *in, int runs, size_t *chunks)
{
    double t[MAX_RUNS], cpu[MAX_RUNS];

    for (int r = 0; r < runs; r++) {
        double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);

        *chunks = 0;
        for (int f = 0; f < in->n; f++)
            *chunks += run_stream(k, in->data[f], in->len[f]);
        t[r] = now(CLOCK_MONOTONIC) - t0;
        cpu[r] = now(CLOCK_THREAD_CPUTIME_ID) - c0;
    }
    qsort(t, (size_t)runs, sizeof(t[0]), cmp_double);
    qsort(cpu, (size_t)runs, sizeof(cpu[0]), cmp_double);
    return (struct timing){t[runs / 2], t[0], cpu[0]};
}

static double rate(size_t bytes, double s)
{
    return s > 0 ? (double)bytes / s / 1e6 : 0.0;
}

static uint8_t *gen_buffer(size_t len)
{
    uint8_t *p = malloc(len);
    uint64_t s = 0x243f6a8885a308d3ULL;

    if (p == NULL)
        return NULL;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t z = (s += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        memcpy(p + i, &z, len - i < 8 ? len - i : 8);
    }
    return p;
}

static int map_file(const char *path, const uint8_t **data, size_t *len)
{
    struct stat st;
    int fd = open(path, O_RDONLY);
    void *m;

    if (fd < 0 || fstat(fd, &st) < 0) {
        perror(path);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *len = (size_t)st.st_size;
    *data = (const uint8_t *)"";
    if (*len > 0) {
        m = mmap(NULL, *len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (m == MAP_FAILED) {
            perror(path);
            close(fd);
            return -1;
        }
        *data = m;
    }
    close(fd);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_chunk [--size MiB] [--runs N] [--kernel K] [FILE...]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct input in = {0};
    size_t size_mib = 512, chunks;
    int runs = 5, i = 1, only = -1;

    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            size_mib = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--slice") == 0 && i + 1 < argc) {
            slice = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--kernel") == 0 && i + 1 < argc) {
            only = atoi(argv[++i]);
        } else {
            usage();
        }
    }
    if (size_mib == 0 || runs < 1 || runs > MAX_RUNS || only >= K_COUNT || slice == 0)
        usage();
    in.n = argc > i ? argc - i : 1;
    in.data = calloc((size_t)in.n, sizeof(*in.data));
    in.len = calloc((size_t)in.n, sizeof(*in.len));
    if (in.data == NULL || in.len == NULL)
        return 1;
    if (argc > i) {
        for (int f = 0; f < in.n; f++)
            if (map_file(argv[i + f], &in.data[f], &in.len[f]) < 0)
                return 1;
    } else {
        in.len[0] = size_mib << 20;
        in.data[0] = gen_buffer(in.len[0]);
        if (in.data[0] == NULL)
            return 1;
    }
    for (int f = 0; f < in.n; f++)
        in.total += in.len[f];

    printf("input: %s, %zu bytes, %d file(s); %d runs, 1 thread\n",
           argc > i ? "files" : "pseudo-random buffer", in.total, in.n, runs);
    printf("%-24s %10s %10s %10s %10s %10s\n", "kernel", "MB/s med", "MB/s best", "MB/s cpu",
           "chunks", "avg size");
    for (int k = 0; k < K_COUNT; k++) {
        struct timing t;

        if (only >= 0 && k != only)
            continue;
        t = measure(k, &in, runs, &chunks);
        printf("%-24s %10.0f %10.0f %10.0f", kernel_names[k], rate(in.total, t.median),
               rate(in.total, t.best), rate(in.total, t.best_cpu));
        if (chunks)
            printf(" %10zu %10zu\n", chunks, in.total / chunks);
        else
            printf(" %10s %10s\n", "-", "-");
    }
    return 0;
}

/*
 * bench_delta: librsync delta size and speed against the block length, on
 * the issue-3 dataset: files of 8-64 MiB (pseudo-random content), each
 * edited with two 4 KiB overwrites, a 1 KiB insertion and a 512 B deletion
 * (9,216 new bytes per file).
 *
 *   bench_delta [--files N] [--blocks 128,256,...] [--unrelated]
 *
 * Prints one row per block length: total delta bytes, overhead over the
 * new bytes, delta MB/s (target bytes per CPU second, signature included)
 * and check MB/s (ds_delta_check: patch + SHA-256). Single-threaded; CPU
 * time rather than wall time, so a busy host does not skew the rates. --unrelated adds a row for
 * unrelated basis and target (librsync's slow path). Peak RSS at the end.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "distsync/delta.h"

#define MAX_BLOCKS 16

struct mem {
    const uint8_t *p;
    size_t n;
};

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill_random(uint8_t *p, size_t n)
{
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t v = next_rand();

        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++)
        p[i] = (uint8_t)next_rand();
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* the host may be shared */
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long mem_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    const struct mem *m = ctx;

    if (off >= m->n)
        return 0;
    if (len > m->n - off)
        len = m->n - off;
    memcpy(buf, m->p + off, len);
    return (long)len;
}

/* Edits src (n bytes) into dst (n + 512 bytes). */
static void issue_edit(const uint8_t *src, size_t n, uint8_t *dst)
{
    size_t a = n / 5 + 1001, b = 2 * n / 5 + 13, ins = 3 * n / 5 + 7, del = 4 * n / 5 + 3;

    memcpy(dst, src, ins);
    fill_random(dst + a, 4096);
    fill_random(dst + b, 4096);
    fill_random(dst + ins, 1024);
    memcpy(dst + ins + 1024, src + ins, del - ins);
    memcpy(dst + ins + 1024 + (del - ins), src + del + 512, n - del - 512);
}

struct row {
    uint32_t block;
    uint64_t delta, literal, target;
    double t_delta, t_check;
};

static int run_one(struct mem *basis, struct mem *target, uint32_t block, struct row *row)
{
    ds_delta_src_t bs = {.read = mem_read, .ctx = basis, .size = basis->n};
    ds_delta_src_t ts = {.read = mem_read, .ctx = target, .size = target->n};
    ds_delta_opts_t o = {.block_len = block};
    ds_delta_stats_t st;
    uint8_t sha[DS_SHA256_LEN];
    int fd = memfd_create("delta", 0), rc;
    double t0 = now(), t1;

    if (fd < 0)
        return -1;
    rc = ds_delta_compute(&bs, &ts, &o, fd, &st);
    t1 = now();
    if (ds_sha256(target->p, target->n, sha) != 0)
        exit(1);
    if (rc == 0)
        rc = ds_delta_check(&bs, fd, st.delta_bytes, target->n, sha);
    row->t_check += now() - t1;
    row->t_delta += t1 - t0;
    row->delta += st.delta_bytes;
    row->literal += st.literal_bytes;
    row->target += target->n;
    row->block = st.block_len;
    close(fd);
    return rc;
}

static void print_row(const char *label, const struct row *r, uint64_t new_bytes)
{
    printf("%-10s %12llu %10.1f%% %12llu %10.1f %10.1f\n", label, (unsigned long long)r->delta,
           new_bytes ? 100.0 * ((double)r->delta - (double)new_bytes) / (double)new_bytes : 0.0,
           (unsigned long long)r->literal, (double)r->target / r->t_delta / 1e6,
           (double)r->target / r->t_check / 1e6);
}

int main(int argc, char **argv)
{
    uint32_t blocks[MAX_BLOCKS] = {128, 192, 256, 384, 512, 1024, 2048};
    int nblocks = 7, files = 20, unrelated = 0;
    struct row rows[MAX_BLOCKS] = {{0}}, urow = {0};
    struct rusage ru;
    char label[32];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--files") == 0 && i + 1 < argc) {
            files = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--blocks") == 0 && i + 1 < argc) {
            char *s = argv[++i];

            for (nblocks = 0; nblocks < MAX_BLOCKS && *s; nblocks++) {
                blocks[nblocks] = (uint32_t)strtoul(s, &s, 10);
                s += *s == ',';
            }
        } else if (strcmp(argv[i], "--unrelated") == 0) {
            unrelated = 1;
        } else {
            fprintf(stderr, "usage: bench_delta [--files N] [--blocks B,B...] [--unrelated]\n");
            return 2;
        }
    }
    for (int f = 0; f < files; f++) {
        size_t n =
            ((size_t)8 << 20) + (size_t)f * (((size_t)56 << 20) / (files > 1 ? files - 1 : 1));
        uint8_t *a = malloc(n), *b = malloc(n + 512);
        struct mem ma = {a, n}, mb = {b, n + 512};

        fill_random(a, n);
        issue_edit(a, n, b);
        for (int k = 0; k < nblocks; k++)
            if (run_one(&ma, &mb, blocks[k], &rows[k]) != 0)
                fprintf(stderr, "delta failed (file %d, block %u)\n", f, blocks[k]);
        if (unrelated && f == 0) {
            fill_random(b, n + 512);
            run_one(&ma, &mb, blocks[0] < 256 ? 256 : blocks[0], &urow);
        }
        free(a);
        free(b);
    }
    printf("%d files of 8-64 MiB, %d new bytes each (%d in all)\n", files, 9216, 9216 * files);
    printf("%-10s %12s %11s %12s %10s %10s\n", "block", "delta B", "overhead", "literal B",
           "delta MB/s", "check MB/s");
    for (int k = 0; k < nblocks; k++) {
        snprintf(label, sizeof(label), "%u", blocks[k]);
        print_row(label, &rows[k], (uint64_t)9216 * (uint64_t)files);
    }
    if (unrelated)
        print_row("unrelated", &urow, 0);
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS %.1f MiB (includes the in-memory test files)\n", (double)ru.ru_maxrss / 1024);
    return 0;
}

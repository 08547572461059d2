/*
 * bench_zpatch_basis: what reading the basis costs the zpatch receiver,
 * pread into one reused buffer (ds_zpatch_basis_fd, what the receiver does)
 * against mmap of each range (what it did before: a basis truncated under
 * the mapping raised SIGBUS). Output is hashed (SHA-256), as the receiver
 * does before its write.
 *
 *   bench_zpatch_basis gen DIR MIB       DIR/basis (MIB MiB, pseudo-random),
 *                                        DIR/rebuilt (a byte changed every
 *                                        4 KiB: no chunk in common, every
 *                                        segment a zstd frame against a
 *                                        window) and DIR/edited (four 4 KiB
 *                                        overwrites: COPY records)
 *   bench_zpatch_basis encode BASIS TARGET OUT LEVEL [VERSION]
 *   bench_zpatch_basis apply BASIS ZPATCH pread|mmap
 *
 * apply prints the output's SHA-256, CPU seconds (user, sys) and peak RSS
 * (ru_maxrss). Run each apply in its own process (peak RSS is per process).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "distsync/digest.h"
#include "distsync/error.h"
#include "distsync/zpatch.h"

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int gen(const char *dir, uint64_t mib)
{
    char path[3][4096];
    const char *names[3] = {"basis", "rebuilt", "edited"};
    uint8_t *buf = malloc(1u << 20);
    uint64_t x = 88172645463325252ull;
    int fd[3];

    for (int i = 0; i < 3; i++) {
        snprintf(path[i], sizeof(path[i]), "%s/%s", dir, names[i]);
        fd[i] = open(path[i], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd[i] < 0 || buf == NULL)
            return perror(path[i]), 1;
    }
    for (uint64_t m = 0; m < mib; m++) {
        for (size_t o = 0; o < (1u << 20); o += 8) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            memcpy(buf + o, &x, 8);
        }
        if (write_all(fd[0], buf, 1u << 20) < 0)
            return perror("write"), 1;
        if (m % (mib / 4 + 1) == mib / 8) /* four overwrites spread over the file */
            memset(buf + 12345, 0x5a, 4096);
        if (write_all(fd[2], buf, 1u << 20) < 0)
            return perror("write"), 1;
        for (size_t o = 100; o < (1u << 20); o += 4096)
            buf[o] ^= 0xa5;
        if (write_all(fd[1], buf, 1u << 20) < 0)
            return perror("write"), 1;
    }
    for (int i = 0; i < 3; i++)
        close(fd[i]);
    free(buf);
    return 0;
}

static long fd_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    ssize_t r = pread((int)(intptr_t)ctx, buf, len, (off_t)off);

    return r < 0 ? -errno : (long)r;
}

static int encode(const char *bpath, const char *tpath, const char *out, int level, int version)
{
    int bfd = open(bpath, O_RDONLY), tfd = open(tpath, O_RDONLY);
    int ofd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0644);
    struct stat bs, ts;
    ds_zpatch_stats_t st;
    int rc;

    if (bfd < 0 || tfd < 0 || ofd < 0 || fstat(bfd, &bs) < 0 || fstat(tfd, &ts) < 0)
        return perror("open"), 1;
    ds_delta_src_t b = {
        .read = fd_read, .ctx = (void *)(intptr_t)bfd, .size = (uint64_t)bs.st_size};
    ds_delta_src_t t = {
        .read = fd_read, .ctx = (void *)(intptr_t)tfd, .size = (uint64_t)ts.st_size};

    rc = ds_zpatch_encode_v(&b, &t, level, version, NULL, NULL, ofd, &st);
    if (rc < 0)
        return fprintf(stderr, "encode: %s\n", ds_strerror(rc)), 1;
    printf("zpatch %llu bytes: %llu segments, %llu copies (%llu bytes), %llu bsdiff records\n",
           (unsigned long long)st.delta_bytes, (unsigned long long)st.segments,
           (unsigned long long)st.copies, (unsigned long long)st.copied_bytes,
           (unsigned long long)st.bsdiff);
    return 0;
}

/* The receiver before: mmap of each range (MAP_PRIVATE, read-only). */
static int mm_get(void *ctx, uint64_t off, uint64_t len, const void **p)
{
    long pg = sysconf(_SC_PAGESIZE);
    uint64_t a = off - off % (uint64_t)pg;
    void *m =
        mmap(NULL, (size_t)(len + (off - a)), PROT_READ, MAP_PRIVATE, (int)(intptr_t)ctx, (off_t)a);

    if (m == MAP_FAILED)
        return -errno;
    madvise(m, (size_t)(len + (off - a)), MADV_SEQUENTIAL);
    *p = (const uint8_t *)m + (off - a);
    return 0;
}

static void mm_release(void *ctx, const void *p, uint64_t len)
{
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t u = (uintptr_t)p, a = u - u % (uintptr_t)pg;

    (void)ctx;
    munmap((void *)a, (size_t)(len + (u - a)));
}

static int hash_out(void *ctx, const uint8_t *p, size_t n)
{
    ds_sha256_update(ctx, p, n);
    return 0;
}

static double secs(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static int apply(const char *bpath, const char *zpath, const char *mode)
{
    int bfd = open(bpath, O_RDONLY), zfd = open(zpath, O_RDONLY), rc = 0;
    uint8_t *buf = malloc(1u << 20), sum[DS_SHA256_LEN];
    char hex[2 * DS_SHA256_LEN + 1];
    ds_zpatch_basis_t b;
    ds_zpatch_dec_t *d = NULL;
    ds_sha256_t sha;
    struct stat bs;
    struct rusage ru;
    ssize_t r;

    if (bfd < 0 || zfd < 0 || buf == NULL || fstat(bfd, &bs) < 0)
        return perror("open"), 1;
    ds_zpatch_basis_fd(&b, bfd, (uint64_t)bs.st_size);
    if (strcmp(mode, "mmap") == 0) {
        b.get = mm_get;
        b.release = mm_release;
        b.ctx = (void *)(intptr_t)bfd;
    }
    rc = ds_sha256_init(&sha);
    if (rc == 0)
        rc = ds_zpatch_dec_new(&b, hash_out, &sha, &d);
    while (rc == 0 && (r = read(zfd, buf, 1u << 20)) > 0)
        rc = ds_zpatch_dec_feed(d, buf, (size_t)r);
    if (rc == 0)
        rc = ds_zpatch_dec_finish(d);
    if (rc < 0)
        fprintf(stderr, "apply: %s: %s\n", ds_strerror(rc), d ? ds_zpatch_dec_error(d) : "");
    ds_sha256_final(&sha, sum);
    ds_hex(sum, DS_SHA256_LEN, hex);
    getrusage(RUSAGE_SELF, &ru);
    printf("%s %s: sha256 %.16s user %.2f s sys %.2f s maxrss %ld KiB\n", mode, zpath, hex,
           secs(ru.ru_utime), secs(ru.ru_stime), ru.ru_maxrss);
    ds_zpatch_dec_free(d);
    ds_zpatch_basis_close(&b);
    ds_sha256_close(&sha);
    free(buf);
    return rc < 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "gen") == 0)
        return gen(argv[2], strtoull(argv[3], NULL, 10));
    if ((argc == 6 || argc == 7) && strcmp(argv[1], "encode") == 0)
        return encode(argv[2], argv[3], argv[4], atoi(argv[5]), argc == 7 ? atoi(argv[6]) : 1);
    if (argc == 5 && strcmp(argv[1], "apply") == 0)
        return apply(argv[2], argv[3], argv[4]);
    fprintf(stderr,
            "usage: bench_zpatch_basis gen DIR MIB | encode BASIS TARGET OUT LEVEL [VERSION] |"
            " apply BASIS ZPATCH pread|mmap\n");
    return 2;
}

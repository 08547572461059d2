/*
 * Whole-receiver fuzz target: arbitrary frames fed to ds_apply against a
 * scratch root holding a basis file, a symlink to a sibling "outside"
 * directory, a dangling symlink into it and a FIFO. Input byte 0 picks the
 * feed split and whether a valid HELLO + LEASE prefix comes first. After
 * every input, nothing may exist outside the root (abort otherwise).
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../unit/session.h"
#include "distsync/apply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[256], root[300], outside[300];
static struct sess prefix;
static unsigned runs;

static int64_t fixed_now(void *ctx)
{
    return 1700000000;
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    if (f->level > 0)
        remove(p);
    return 0;
}

static void fixtures(void)
{
    char p[600];
    FILE *f;

    nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    snprintf(p, sizeof(p), "%s/basis.bin", root);
    f = fopen(p, "wb");
    for (int i = 0; i < 4096; i++)
        fputc((i * 31) & 0xff, f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/dir", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/esc", root);
    symlink(outside, p);
    snprintf(p, sizeof(p), "%s/leaf", root);
    symlink("../outside/created", p);
    snprintf(p, sizeof(p), "%s/fifo", root);
    mkfifo(p, 0644);
}

static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    while (d && (de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    if (d)
        closedir(d);
    return n;
}

static void setup(void)
{
    snprintf(base, sizeof(base), "/dev/shm/fuzz_apply.XXXXXX");
    if (mkdtemp(base) == NULL)
        abort();
    snprintf(root, sizeof(root), "%s/root", base);
    snprintf(outside, sizeof(outside), "%s/outside", base);
    mkdir(root, 0755);
    mkdir(outside, 0755);
    fixtures();
    s_hello(&prefix, "fuzz");
    s_lease(&prefix, 1, "fuzz", 600);
}

/* Feeds len bytes in step-sized offers as the agent does: drains the
 * output, offers the unconsumed rest again (backpressure). */
static void feed_all(ds_apply_t *ap, const uint8_t *data, size_t len, size_t step)
{
    size_t off = 0;

    for (;;) {
        const uint8_t *p;
        size_t n;
        long used = ds_apply_feed(ap, data + off, len - off < step ? len - off : step);

        ds_apply_output(ap, &p, &n);
        ds_apply_output_consume(ap, n);
        if (used < 0)
            return;
        off += (size_t)used;
        if (off == len && ds_apply_want_input(ap))
            return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ds_apply_opts_t o = {.now = fixed_now, .no_fsync = 1, .max_open_files = 4};
    ds_apply_t *ap = NULL;
    char err[256];
    size_t step;

    if (root[0] == '\0')
        setup();
    if (size < 1)
        return 0;
    if (++runs % 256 == 0)
        fixtures();
    if (ds_apply_new(root, &o, &ap, err, sizeof(err)) != 0)
        abort();
    step = (size_t)(data[0] >> 1) * 13 + 1;
    if (data[0] & 1)
        feed_all(ap, prefix.b.p, prefix.b.len, prefix.b.len);
    feed_all(ap, data + 1, size - 1, step);
    ds_apply_free(ap);
    if (entries(outside) != 0 || entries(base) != 2)
        abort(); /* something was written outside the root */
    return 0;
}

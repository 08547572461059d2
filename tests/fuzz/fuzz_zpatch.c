/*
 * zpatch fuzz target: the input is a zpatch stream (include/distsync/zpatch.h),
 * applied through the receiver's version 3 DELTA path (frames against a
 * 64 KiB basis mapped on the target, then DELTA_END and FILE_COMMIT). The
 * input's first 4 bytes are replaced by the magic so every run reaches the
 * decoder. Must never crash, hang, read outside the basis or leave a tmp
 * file behind.
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../unit/session.h"
#include "distsync/apply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[256];

static int64_t fixed_now(void *ctx)
{
    return 1700000000;
}

static void setup(void)
{
    char p[400];
    FILE *f;

    snprintf(root, sizeof(root), "/dev/shm/fuzz_zpatch.XXXXXX");
    if (mkdtemp(root) == NULL)
        abort();
    snprintf(p, sizeof(p), "%s/basis.bin", root);
    f = fopen(p, "wb");
    for (int i = 0; i < 65536; i++)
        fputc((i * 131 + i / 256) & 0xff, f);
    fclose(f);
}

static int tmp_entries(void)
{
    char p[400];
    DIR *d;
    struct dirent *de;
    int n = 0;

    snprintf(p, sizeof(p), "%s/.distsync/tmp", root);
    d = opendir(p);
    while (d && (de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ds_apply_opts_t o = {.now = fixed_now, .no_fsync = 1};
    struct sess s = {0};
    ds_apply_t *ap = NULL;
    uint8_t sha[DS_SHA256_LEN] = {0};
    char err[256];
    size_t chunk = 1000;

    if (root[0] == '\0')
        setup();
    if (ds_apply_new(root, &o, &ap, err, sizeof(err)) != 0)
        abort();
    s_hello(&s, "fuzz");
    s_lease(&s, 1, "fuzz", 600);
    s_begin(&s, 1, "out.bin", 1 << 20);
    if (size >= 4) {
        uint8_t *copy = malloc(size);

        memcpy(copy, data, size);
        memcpy(copy, "DSZP", 4);
        for (size_t off = 0; off < size; off += chunk)
            s_data(&s, 1, "basis.bin", copy + off, size - off < chunk ? size - off : chunk, 0);
        free(copy);
    }
    s_file(&s, DS_MSG_DELTA_END, 1);
    s_commit(&s, 1, 1 << 20, sha);
    ds_apply_feed(ap, s.b.p, s.b.len);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
    if (tmp_entries() != 0)
        abort();
    return 0;
}

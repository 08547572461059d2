/*
 * Shared by fuzz_delta and fuzz_zpatch: one receiver session that applies
 * one file from DELTA frames carrying the fuzzer's stream against a 64 KiB
 * basis on a scratch target under /dev/shm (made once per process), then
 * DELTA_END and FILE_COMMIT. Aborts when a tmp file is left behind.
 */
#ifndef DS_FUZZ_DELTA_SESSION_H
#define DS_FUZZ_DELTA_SESSION_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../unit/session.h"
#include "distsync/apply.h"

static char fuzz_root[256];

static int64_t fuzz_fixed_now(void *ctx)
{
    return 1700000000;
}

static void fuzz_setup(const char *name)
{
    char p[400];
    FILE *f;

    snprintf(fuzz_root, sizeof(fuzz_root), "/dev/shm/%s.XXXXXX", name);
    if (mkdtemp(fuzz_root) == NULL)
        abort();
    snprintf(p, sizeof(p), "%s/basis.bin", fuzz_root);
    f = fopen(p, "wb");
    for (int i = 0; i < 65536; i++)
        fputc((i * 131 + i / 256) & 0xff, f);
    fclose(f);
}

static int fuzz_tmp_entries(void)
{
    char p[400];
    DIR *d;
    struct dirent *de;
    int n = 0;

    snprintf(p, sizeof(p), "%s/.distsync/tmp", fuzz_root);
    d = opendir(p);
    while (d && (de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* Applies stream (size bytes, in 1000-byte DELTA frames) as out.bin
 * against basis.bin on the target named after name. */
static void fuzz_delta_apply(const char *name, const uint8_t *stream, size_t size)
{
    ds_apply_opts_t o = {.now = fuzz_fixed_now, .no_fsync = 1};
    struct sess s = {0};
    ds_apply_t *ap = NULL;
    uint8_t sha[DS_SHA256_LEN] = {0};
    char err[256];
    size_t chunk = 1000;

    if (fuzz_root[0] == '\0')
        fuzz_setup(name);
    if (ds_apply_new(fuzz_root, &o, &ap, err, sizeof(err)) != 0)
        abort();
    s_hello(&s, "fuzz");
    s_lease(&s, 1, "fuzz", 600);
    s_begin(&s, 1, "out.bin", 1 << 20);
    for (size_t off = 0; off < size; off += chunk)
        s_data(&s, 1, "basis.bin", stream + off, size - off < chunk ? size - off : chunk, 0);
    s_file(&s, DS_MSG_DELTA_END, 1);
    s_commit(&s, 1, 1 << 20, sha);
    ds_apply_feed(ap, s.b.p, s.b.len);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
    if (fuzz_tmp_entries() != 0)
        abort();
}

#endif

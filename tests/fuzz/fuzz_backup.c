/*
 * Backup archive reader fuzz target (src/backup/backup_read.c and the
 * MANIFEST parser). The first byte picks what the rest is:
 *   0: MANIFEST text; one that parses must print back (the writer's
 *      format) and parse again to the same records;
 *   1: a tar archive as it is (the reader takes plain tar too);
 *   2: a tar archive, zstd-compressed here first, so mutations reach the
 *      tar and MANIFEST parsers instead of dying in the zstd frame.
 * A check that passes must leave a config text of the MANIFEST's size.
 */
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "backup/backup_int.h"
#include "distsync/backup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void manifest_roundtrip(const uint8_t *p, size_t n)
{
    ds_backup_manifest_t m, again;
    char err[512], *text = NULL;
    size_t len = 0;

    if (ds_backup_manifest_parse((const char *)p, n, &m, err, sizeof(err)) != 0)
        return;
    if (ds__backup_manifest_format(&m, &text, &len) != 0)
        abort(); /* every parsed destination is printable */
    if (ds_backup_manifest_parse(text, len, &again, err, sizeof(err)) != 0)
        abort();
    if (again.nfiles != m.nfiles || again.nomitted != m.nomitted)
        abort();
    for (size_t i = 0; i < m.nfiles; i++)
        if (strcmp(m.files[i].dest, again.files[i].dest) != 0 ||
            memcmp(m.files[i].sha256, again.files[i].sha256, DS_SHA256_LEN) != 0 ||
            m.files[i].size != again.files[i].size || m.files[i].mode != again.files[i].mode)
            abort();
    free(text);
    ds_backup_manifest_clear(&m);
    ds_backup_manifest_clear(&again);
}

static void check(const void *p, size_t n)
{
    ds_backup_manifest_t m;
    char err[512];

    if (ds_backup_check_mem(p, n, &m, err, sizeof(err)) != 0)
        return;
    for (size_t i = 0; i < m.nfiles; i++)
        if (m.files[i].role == DS_BACKUP_CONFIG && m.files[i].size != m.config_len)
            abort();
    ds_backup_manifest_clear(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cap;
    void *z;

    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0:
        manifest_roundtrip(data + 1, size - 1);
        break;
    case 1:
        check(data + 1, size - 1);
        break;
    default:
        cap = ZSTD_compressBound(size - 1);
        if ((z = malloc(cap)) == NULL)
            return 0;
        cap = ZSTD_compress(z, cap, data + 1, size - 1, 1);
        if (!ZSTD_isError(cap))
            check(z, cap);
        free(z);
        break;
    }
    return 0;
}

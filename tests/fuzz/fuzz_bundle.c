/*
 * Bundle reader fuzz target (src/target/bundle_read.c, bundle_fmt.c). The
 * first input byte picks the mode:
 *   0: the rest is the bundle as is (zstd + tar, as on the media);
 *   1: the rest is the tar stream, compressed here first, so mutations of
 *      the tar headers and of the header, manifest and index texts reach
 *      the checks past zstd;
 *   2: the rest is an index (text), and also a header.
 * A bundle the reader accepts is read again, every data entry through, as
 * the import's second pass does. Nothing touches the file system.
 */
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "distsync/bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void second_pass(ds_bundle_reader_t *r)
{
    char err[1024], buf[4096];
    const ds_bundle_item_t *it;
    size_t n;

    it = ds_bundle_reader_items(r, &n);
    if (ds_bundle_reader_rewind(r, err, sizeof(err)) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (it[i].how != DS_BUNDLE_LIT && it[i].how != DS_BUNDLE_DELTA)
            continue;
        if (ds_bundle_reader_data(r, i, err, sizeof(err)) < 0)
            return;
        while (ds_bundle_reader_read(r, buf, sizeof(buf), err, sizeof(err)) > 0)
            ;
    }
}

static void read_bundle(const uint8_t *p, size_t n)
{
    ds_bundle_reader_t *r = NULL;
    char err[1024];

    if (ds_bundle_reader_open(NULL, p, n, "fuzz", &r, err, sizeof(err)) == 0) {
        second_pass(r);
        ds_bundle_reader_free(r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] % 3 == 0) {
        read_bundle(data + 1, size - 1);
    } else if (data[0] % 3 == 1) {
        size_t cap = ZSTD_compressBound(size - 1);
        uint8_t *z = malloc(cap);
        size_t zn = z ? ZSTD_compress(z, cap, data + 1, size - 1, 1) : 0;

        if (z && !ZSTD_isError(zn))
            read_bundle(z, zn);
        free(z);
    } else {
        ds_bundle_item_t *items = NULL;
        ds_bundle_hdr_t h;
        char err[512];
        size_t n = 0;

        if (ds_bundle_index_parse((const char *)data + 1, size - 1, &items, &n, err, sizeof(err)) ==
            0)
            ds_bundle_items_free(items, n);
        (void)ds_bundle_hdr_parse((const char *)data + 1, size - 1, &h, err, sizeof(err));
    }
    return 0;
}

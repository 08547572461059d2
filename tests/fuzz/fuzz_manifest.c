/*
 * Manifest decoder fuzz target. The checksum trailer would stop nearly every
 * mutation at the door, so half the inputs get a fresh trailer first and reach
 * the entry parser. A manifest that decodes must re-encode to the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "distsync/digest.h"
#include "distsync/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ds_manifest_t *m = NULL;
    uint8_t *copy, *enc = NULL;
    size_t elen = 0;
    char err[256];

    if (size < 1)
        return 0;
    copy = malloc(size);
    memcpy(copy, data + 1, size - 1);
    if ((data[0] & 1) && size - 1 >= DS_SHA256_LEN)
        ds_sha256(copy, size - 1 - DS_SHA256_LEN, copy + size - 1 - DS_SHA256_LEN);
    if (ds_manifest_decode(copy, size - 1, &m, err, sizeof(err)) == 0) {
        if (ds_manifest_encode(m, &enc, &elen) != 0 || elen != size - 1 ||
            memcmp(enc, copy, elen) != 0)
            abort();
        free(enc);
        ds_manifest_free(m);
    }
    free(copy);
    return 0;
}

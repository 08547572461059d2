/*
 * Manifest decoder fuzz target. The checksum trailer would stop nearly every
 * mutation at the door, so half the inputs get a fresh trailer first and reach
 * the entry parser. A manifest that decodes must re-encode to the same bytes,
 * and the streaming decoder fed in slices (sizes from the input's first
 * byte) must agree with the one-shot decode.
 */
#include <stdlib.h>
#include <string.h>

#include "distsync/digest.h"
#include "distsync/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decodes buf fed in slices of 1..16 bytes (cycling from seed). */
static int decode_sliced(const uint8_t *buf, size_t len, unsigned seed, ds_manifest_t **out)
{
    ds_manifest_decoder_t *d = NULL;
    size_t off = 0;
    int rc = ds_manifest_decoder_new(0, 0, &d);

    while (rc == 0 && off < len) {
        size_t k = 1 + (seed++ % 16);

        if (k > len - off)
            k = len - off;
        rc = ds_manifest_decoder_feed(d, buf + off, k);
        off += k;
    }
    if (rc == 0)
        rc = ds_manifest_decoder_finish(d, out);
    ds_manifest_decoder_free(d);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ds_manifest_t *m2 = NULL;
    int rc, rc2;
    ds_manifest_t *m = NULL;
    uint8_t *copy, *enc = NULL;
    size_t elen = 0;
    char err[256];

    if (size < 1)
        return 0;
    copy = malloc(size);
    memcpy(copy, data + 1, size - 1);
    if ((data[0] & 1) && size - 1 >= DS_SHA256_LEN)
        if (ds_sha256(copy, size - 1 - DS_SHA256_LEN, copy + size - 1 - DS_SHA256_LEN) < 0)
            abort();
    rc = ds_manifest_decode(copy, size - 1, &m, err, sizeof(err));
    rc2 = decode_sliced(copy, size - 1, data[0] >> 1, &m2);
    if (rc != rc2 || (rc == 0 && ds_manifest_count(m) != ds_manifest_count(m2)))
        abort();
    ds_manifest_free(m2);
    if (rc == 0) {
        if (ds_manifest_encode(m, &enc, &elen) != 0 || elen != size - 1 ||
            memcmp(enc, copy, elen) != 0)
            abort();
        free(enc);
        ds_manifest_free(m);
    }
    free(copy);
    return 0;
}

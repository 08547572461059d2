/*
 * The package download's Range header (ds__api_range, api_package.c):
 * bytes from a client. The first 8 bytes are the file's size, the rest
 * the header's value; a range must lie within the file and be non-empty.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/api_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t fsize = 0, lo = 7, hi = 7;
    int rc;

    if (size < 8)
        return 0;
    memcpy(&fsize, data, 8);
    fsize %= (uint64_t)1 << 40;
    rc = ds__api_range((const char *)data + 8, size - 8, fsize, &lo, &hi);
    if (rc == 1 && !(lo < hi && hi <= fsize))
        abort();
    if (rc == 0 || rc < -1 || rc > 1)
        abort(); /* a header is never "none" */
    return 0;
}

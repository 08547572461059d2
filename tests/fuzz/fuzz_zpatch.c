/*
 * zpatch fuzz target: the input is a zpatch stream (include/distsync/zpatch.h;
 * stream versions 1 to 3, BSDIFF records included: the session is version 6),
 * applied through the receiver's version 3 DELTA path (frames against a
 * 64 KiB basis mapped on the target, then DELTA_END and FILE_COMMIT). The
 * input's first 4 bytes are replaced by the magic so every run reaches the
 * decoder. Must never crash, hang, read outside the basis or leave a tmp
 * file behind.
 */
#define _XOPEN_SOURCE 700
#include "fuzz_delta_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = NULL;

    if (size >= 4 && (copy = malloc(size)) != NULL) {
        memcpy(copy, data, size);
        memcpy(copy, "DSZP", 4);
    }
    fuzz_delta_apply("fuzz_zpatch", copy, copy ? size : 0);
    free(copy);
    return 0;
}

/*
 * Delta fuzz target: the input is a librsync delta stream, applied through the
 * receiver's patch path (DELTA frames against a 64 KiB basis on the target,
 * then DELTA_END and FILE_COMMIT). Declared size bounds the output. Must never
 * crash, hang or leave a tmp file behind.
 */
#define _XOPEN_SOURCE 700
#include "fuzz_delta_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_delta_apply("fuzz_delta", data, size);
    return 0;
}

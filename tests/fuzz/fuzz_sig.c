/*
 * Signature fuzz target: the input is a librsync signature as a target sends
 * it in SIG_DATA (the rsync fallback), parsed by the console
 * (ds__sync_sig_delta: the loadsig job through the one job pump, the hash
 * table, then the delta of a 64 KiB store file against it). Must never
 * crash, hang or grow without bound: a target is not trusted.
 */

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sync/sync_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int store_fd = -1, null_fd = -1;

/* The store file: the seeds' basis with an edit, so a valid signature
 * yields COPY commands as well as literals. */
static void setup(void)
{
    static uint8_t buf[65536];

    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)((i * 131 + i / 256) & 0xff);
    memcpy(buf + 30000, "an edit in the middle", 21);
    store_fd = memfd_create("fuzz_sig_store", MFD_CLOEXEC);
    null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (store_fd < 0 || null_fd < 0 || write(store_fd, buf, sizeof(buf)) != sizeof(buf))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t dsize = 0;
    int rc;

    if (store_fd < 0)
        setup();
    rc = ds__sync_sig_delta(data, size, store_fd, null_fd, &dsize);
    if (rc > 0)
        abort(); /* contract: 0 or a negative code */
    return 0;
}

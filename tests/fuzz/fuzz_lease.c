/*
 * libFuzzer target for the lease file's text (.distsync/lease): in SFTP
 * mode the console reads it from the server, so a hostile server chooses
 * its bytes (at most 4 KiB are read). ds_lease_decode either refuses or
 * yields strings that fit their buffers, and what it yields encodes and
 * decodes back to the same lease.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/lease.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ds_lease_t l, back;
    char buf[1024];
    int n;

    if (size > 4096 || ds_lease_decode((const char *)data, size, &l) != 0)
        return 0;
    if (strnlen(l.console, sizeof(l.console)) == sizeof(l.console) ||
        strnlen(l.host, sizeof(l.host)) == sizeof(l.host))
        abort();
    n = ds_lease_encode(&l, buf, sizeof(buf));
    if (n < 0)
        return 0; /* a control character in a string: not written back */
    if (ds_lease_decode(buf, (size_t)n, &back) != 0 || strcmp(back.console, l.console) != 0 ||
        strcmp(back.host, l.host) != 0 || back.pid != l.pid || back.expiry != l.expiry ||
        back.session != l.session || back.flock != l.flock)
        abort();
    return 0;
}

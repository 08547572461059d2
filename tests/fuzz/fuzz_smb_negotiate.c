/* libFuzzer target: arbitrary bytes as an SMB2 NEGOTIATE reply (what a
 * server, or whoever answers on its port, sends to distsync's probe). The
 * parser must never crash or read past the input; on success with status 0
 * the dialect, security mode, capabilities and (3.1.1) the cipher come
 * from the input; on
 * failure *out is zeroed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/smb_neg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes: ASan catches any read past it */
    uint8_t *msg = malloc(size ? size : 1);
    ds_smb_neg_t neg;
    int rc;

    if (msg == NULL)
        return 0;
    memcpy(msg, data, size);
    rc = ds__smb_neg_parse(msg, size, &neg);
    if (rc < 0 && (neg.status != 0 || neg.dialect != 0 || neg.capabilities != 0 || neg.cipher != 0))
        abort();
    /* only a 3.1.1 reply names a cipher (in its negotiate context) */
    if (rc == 0 && neg.dialect != DS_SMB_DIALECT_311 && neg.cipher != 0)
        abort();
    if (rc == 0 && neg.status != 0 && (neg.dialect != 0 || neg.security_mode != 0))
        abort();
    free(msg);
    return 0;
}

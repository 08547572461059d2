/* libFuzzer target: arbitrary bytes as an SMB credentials file. The parser
 * must never crash or leak; on failure *out is empty and the message is one
 * line naming the file; on success username and password are set and not
 * empty, and domain is set. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/smbcred.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ds_smbcred_t c;
    char err[512] = "";
    int rc = ds_smbcred_parse((const char *)data, size, "fuzz.cred", &c, err, sizeof(err));

    if (rc < 0 && (c.username != NULL || c.password != NULL || c.domain != NULL ||
                   strchr(err, '\n') != NULL || strncmp(err, "fuzz.cred", 9) != 0))
        abort();
    if (rc == 0 && (c.username == NULL || c.password == NULL || c.domain == NULL ||
                    c.username[0] == '\0' || c.password[0] == '\0'))
        abort();
    ds_smbcred_clear(&c);
    return 0;
}

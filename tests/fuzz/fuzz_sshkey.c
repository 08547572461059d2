/* libFuzzer target: arbitrary bytes as the start of an identity = file
 * (ds_sshkey_check_text: the PEM armour, an OpenSSH key's base64 blob).
 * It must never crash or read past its input; a refusal gives a one-line
 * reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/sshkey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[1024], why[512] = "";
    size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;

    memcpy(text, data, n);
    text[n] = '\0';
    if (ds_sshkey_check_text(text, why, sizeof(why)) < 0 &&
        (why[0] == '\0' || strchr(why, '\n') != NULL))
        abort();
    return 0;
}

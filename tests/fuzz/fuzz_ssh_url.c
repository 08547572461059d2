/*
 * libFuzzer target for ssh:// URLs (config text, so outside bytes):
 * ds__ssh_url_parse either refuses with a message or yields a user, a host
 * and a port in range and an absolute path, all NUL-terminated in their
 * buffers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/ssh_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ds__ssh_url u;
    char *s = malloc(size + 1), err[256] = "";

    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (ds__ssh_url_parse(s, &u, err, sizeof(err)) == 0) {
        if (u.port < 1 || u.port > 65535 || u.path[0] != '/' || u.host[0] == '\0' ||
            u.user[0] == '\0' || strlen(u.path) >= sizeof(u.path))
            abort();
    } else if (err[0] == '\0') {
        abort();
    }
    free(s);
    return 0;
}

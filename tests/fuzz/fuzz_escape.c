/*
 * libFuzzer target for ds_escape_name, the escaping every printed path goes
 * through (names come from the store and from targets): the output never
 * holds a control byte (C0, DEL, or a C1 control as UTF-8), is valid UTF-8,
 * fits its buffer even when small, and, when the buffer is large enough,
 * unescapes back to the input (no two names print alike).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Inverse of ds_escape_name; returns the length, or -1 on a bad escape. */
static long unescape(const char *s, uint8_t *out)
{
    long n = 0;

    for (size_t i = 0; s[i] != '\0'; i++) {
        if (s[i] != '\\') {
            out[n++] = (uint8_t)s[i];
            continue;
        }
        switch (s[++i]) {
        case '\\':
            out[n++] = '\\';
            break;
        case 'n':
            out[n++] = '\n';
            break;
        case 't':
            out[n++] = '\t';
            break;
        case 'r':
            out[n++] = '\r';
            break;
        case 'x':
            if (hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
                return -1;
            out[n++] = (uint8_t)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
            i += 2;
            break;
        default:
            return -1;
        }
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cap = 4 * size + 16, small = size % 23;
    char *out = malloc(cap), *tiny = malloc(small + 1);
    uint8_t *back = malloc(size + 1);
    size_t len;

    if (out == NULL || tiny == NULL || back == NULL)
        abort();
    /* input without NUL: names never hold one */
    for (size_t i = 0; i < size; i++)
        if (data[i] == 0)
            goto out;
    ds_escape_name((const char *)data, size, out, cap);
    len = strlen(out);
    if (len >= cap || !ds_utf8_valid(out, len))
        abort();
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)out[i];

        if (c < 0x20 || c == 0x7f || (c == 0xc2 && i + 1 < len && (uint8_t)out[i + 1] < 0xa0))
            abort();
    }
    if (unescape(out, back) != (long)size || memcmp(back, data, size) != 0)
        abort();
    ds_escape_name((const char *)data, size, tiny, small + 1); /* truncates, in bounds */
    if (strlen(tiny) > small)
        abort();
out:
    free(out);
    free(tiny);
    free(back);
    return 0;
}

/* UTF-8 validation and escaping for printing (include/distsync/escape.h).
 * Moved down from the store's walker so that front ends that link no store
 * (distsync-agent) can print paths too. */
#include <stdio.h>
#include <string.h>

#include "distsync/escape.h"

size_t ds_utf8_seq(const char *str, size_t n, size_t *bad)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len, i;

    *bad = 1;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef) /* E0: no overlong form; ED: no surrogate */
        len = 3, lo = s[0] == 0xe0 ? 0xa0 : 0x80, hi = s[0] == 0xed ? 0x9f : 0xbf;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4) /* F0: no overlong form; F4: up to U+10FFFF */
        len = 4, lo = s[0] == 0xf0 ? 0x90 : 0x80, hi = s[0] == 0xf4 ? 0x8f : 0xbf;
    else
        return 0;
    for (i = 1; i < len && i < n; i++) {
        if (s[i] < lo || s[i] > hi)
            break;
        lo = 0x80, hi = 0xbf; /* only the second byte has a narrower range */
    }
    if (i == len)
        return len;
    *bad = i;
    return 0;
}

int ds_utf8_valid(const char *str, size_t n)
{
    size_t i = 0, len, bad;

    while (i < n) {
        if ((len = ds_utf8_seq(str + i, n - i, &bad)) == 0)
            return 0;
        i += len;
    }
    return 1;
}

void ds_escape_name(const char *str, size_t n, char *out, size_t outlen)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t o = 0;

    if (outlen == 0)
        return;
    for (size_t i = 0; i < n && o + 5 < outlen; i++) {
        size_t bad, k = s[i] >= 0x80 ? ds_utf8_seq(str + i, n - i, &bad) : 0;

        if (k == 2 && s[i] == 0xc2 && s[i + 1] < 0xa0)
            k = 0; /* a C1 control (U+0080..U+009F): both bytes as \xNN */
        if (k > 0 && o + k < outlen) {
            memcpy(out + o, s + i, k); /* one valid multi-byte character */
            o += k;
            i += k - 1;
        } else if (s[i] == '\\' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r') {
            out[o++] = '\\';
            out[o++] = s[i] == '\n' ? 'n' : s[i] == '\t' ? 't' : s[i] == '\r' ? 'r' : '\\';
        } else if (s[i] < 0x20 || s[i] >= 0x7f) {
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", s[i]);
        } else {
            out[o++] = (char)s[i];
        }
    }
    out[o] = '\0';
}

/* UTF-8 validation and escaping for printing (include/distsync/escape.h).
 * Moved down from the store's walker so that front ends that link no store
 * (distsync-agent) can print paths too. */
#include <stdio.h>
#include <string.h>

#include "distsync/escape.h"

int ds_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i], len, cp, min;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            len = 2, cp = c & 0x1f, min = 0x80;
        else if (c >= 0xe0 && c <= 0xef)
            len = 3, cp = c & 0x0f, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4)
            len = 4, cp = c & 0x07, min = 0x10000;
        else
            return 0;
        if (n - i < len)
            return 0;
        for (unsigned k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
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
        size_t k = 1;

        while (s[i] >= 0x80 && k <= 4 && i + k <= n && !ds_utf8_valid(str + i, k))
            k++;
        if (k == 2 && i + k <= n && s[i] == 0xc2 && s[i + 1] < 0xa0)
            k = 0; /* a C1 control (U+0080..U+009F): both bytes as \xNN */
        if (s[i] >= 0x80 && k >= 1 && k <= 4 && i + k <= n && o + k < outlen) {
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

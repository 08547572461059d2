/* Text for people: UTF-8 validation and the escaping every printed path
 * goes through. Pure; shared by the store walker, the receiver's front end
 * and the CLI. */
#ifndef DISTSYNC_ESCAPE_H
#define DISTSYNC_ESCAPE_H

#include <stddef.h>
#include "distsync/error.h"

/* The one UTF-8 decoder. Length of the character at s (n > 0 bytes left)
 * when it is strict UTF-8 (no overlong form, surrogate or code point above
 * U+10FFFF; an ASCII byte is 1); else 0, and *bad is the length of its
 * maximal invalid subpart (the bytes one U+FFFD replaces, Unicode 3.9). */
size_t ds_utf8_seq(const char *s, size_t n, size_t *bad);

/* Returns 1 when s[0, n) is strict UTF-8 (no overlong forms, surrogates or
 * code points above U+10FFFF), else 0. */
DS_MUST_CHECK int ds_utf8_valid(const char *s, size_t n);

/* Writes s[0, n) into out (outlen bytes, always NUL-terminated; truncated
 * when it does not fit) for printing: '\' as '\\', newline, tab and
 * carriage return as \n, \t, \r, other control characters (C0, DEL, C1)
 * and bytes that are not valid UTF-8 as \xNN. */
void ds_escape_name(const char *s, size_t n, char *out, size_t outlen);

#endif

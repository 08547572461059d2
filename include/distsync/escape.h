/* Text for people: UTF-8 validation and the escaping every printed path
 * goes through. Pure; shared by the store walker, the receiver's front end
 * and the CLI. */
#ifndef DISTSYNC_ESCAPE_H
#define DISTSYNC_ESCAPE_H

#include <stddef.h>
#include "distsync/error.h"

/* Returns 1 when s[0, n) is strict UTF-8 (no overlong forms, surrogates or
 * code points above U+10FFFF), else 0. */
DS_MUST_CHECK int ds_utf8_valid(const char *s, size_t n);

/* Writes s[0, n) into out (outlen bytes, always NUL-terminated; truncated
 * when it does not fit) for printing: '\' as '\\', newline, tab and
 * carriage return as \n, \t, \r, other control characters (C0, DEL, C1)
 * and bytes that are not valid UTF-8 as \xNN. */
void ds_escape_name(const char *s, size_t n, char *out, size_t outlen);

#endif

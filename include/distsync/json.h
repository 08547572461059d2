/*
 * The one JSON writer: every --json command and every reply of the
 * daemon's API write through it. A streaming front over jansson
 * (src/json/json.c): it tracks nesting and commas, and jansson encodes
 * each key, string and number. Strings are escaped per RFC 8259 (quotes,
 * backslash, C0 controls, as jansson writes them: \n, \u001B), DEL and C1
 * controls as \u007F and \u0080..\u009F; non-ASCII UTF-8 is written as
 * it is; bytes that are not valid UTF-8 become U+FFFD (one per
 * maximal invalid subpart), so the output is always valid JSON. Output is
 * compact (jansson's JSON_COMPACT), one document per call sequence;
 * ds_json_end() adds the final newline.
 */
#ifndef DISTSYNC_JSON_H
#define DISTSYNC_JSON_H

#include <stdint.h>
#include <stdio.h>

#define DS_JSON_MAX_DEPTH 32

typedef struct ds_json {
    FILE *f;
    int depth;
    int count[DS_JSON_MAX_DEPTH]; /* values written at each level */
    int after_key;                /* a key was written, its value comes next */
} ds_json_t;

/* Starts a document written to f (borrowed: stdout, or an open_memstream
 * buffer for an API reply). */
void ds_json_init(ds_json_t *j, FILE *f);
/* Ends the document: writes a newline. */
void ds_json_end(ds_json_t *j);

void ds_json_obj_begin(ds_json_t *j);
void ds_json_obj_end(ds_json_t *j);
void ds_json_arr_begin(ds_json_t *j);
void ds_json_arr_end(ds_json_t *j);
/* Writes an object key; the next call writes its value. */
void ds_json_key(ds_json_t *j, const char *key);

/* s NULL: null. */
void ds_json_str(ds_json_t *j, const char *s);
void ds_json_strn(ds_json_t *j, const char *s, size_t n);
void ds_json_int(ds_json_t *j, int64_t v);
/* Past INT64_MAX (jansson's integer range), the nearest double. */
void ds_json_uint(ds_json_t *j, uint64_t v);
/* Finite doubles only, as %.6g with ".0" added to a whole number
 * (jansson's JSON_REAL_PRECISION(6)); NaN and infinities are written as null. */
void ds_json_double(ds_json_t *j, double v);
void ds_json_bool(ds_json_t *j, int v);
void ds_json_null(ds_json_t *j);

/* Writes v, a jansson value (a reply of the daemon's API, parsed), as a
 * value: the same bytes as when the daemon wrote it, keys in their order. */
struct json_t;
void ds_json_value(ds_json_t *j, const struct json_t *v);

/* Shorthands: key then value (ds_json_kstr with s NULL: null). */
void ds_json_kstr(ds_json_t *j, const char *key, const char *s);
void ds_json_kint(ds_json_t *j, const char *key, int64_t v);
void ds_json_kuint(ds_json_t *j, const char *key, uint64_t v);
void ds_json_kdouble(ds_json_t *j, const char *key, double v);
void ds_json_kbool(ds_json_t *j, const char *key, int v);

#endif

/*
 * A small streaming JSON writer: every --json command, and the reports the
 * daemon's API will serve (report.h), write through it. It tracks nesting
 * and commas; strings are escaped per RFC 8259 (quotes, backslash, control
 * characters, C0 and C1, as \uXXXX) and bytes that are not valid UTF-8
 * become U+FFFD, so the
 * output is always valid JSON. Output is compact, one document per call
 * sequence; ds_json_end() adds the final newline.
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

void ds_json_str(ds_json_t *j, const char *s);
void ds_json_strn(ds_json_t *j, const char *s, size_t n);
void ds_json_int(ds_json_t *j, int64_t v);
void ds_json_uint(ds_json_t *j, uint64_t v);
/* Finite doubles only; NaN and infinities are written as null. */
void ds_json_double(ds_json_t *j, double v);
void ds_json_bool(ds_json_t *j, int v);
void ds_json_null(ds_json_t *j);

/* Shorthands: key then value. */
void ds_json_kstr(ds_json_t *j, const char *key, const char *s);
void ds_json_kint(ds_json_t *j, const char *key, int64_t v);
void ds_json_kuint(ds_json_t *j, const char *key, uint64_t v);
void ds_json_kdouble(ds_json_t *j, const char *key, double v);
void ds_json_kbool(ds_json_t *j, const char *key, int v);

#endif

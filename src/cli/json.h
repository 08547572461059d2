/*
 * A small streaming JSON writer for every --json command. It tracks nesting
 * and commas; strings are escaped per RFC 8259 (quotes, backslash, control
 * characters, C0 and C1, as \uXXXX) and bytes that are not valid UTF-8
 * become U+FFFD, so the
 * output is always valid JSON. Output is compact, one document per call
 * sequence; json_end() adds the final newline.
 */
#ifndef DS_CLI_JSON_H
#define DS_CLI_JSON_H

#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 32

struct json {
    FILE *f;
    int depth;
    int count[JSON_MAX_DEPTH]; /* values written at each level */
    int after_key;             /* a key was written, its value comes next */
};

/* Starts a document written to f (borrowed). */
void json_init(struct json *j, FILE *f);
/* Ends the document: writes a newline. */
void json_end(struct json *j);

void json_obj_begin(struct json *j);
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j);
void json_arr_end(struct json *j);
/* Writes an object key; the next call writes its value. */
void json_key(struct json *j, const char *key);

void json_str(struct json *j, const char *s);
void json_strn(struct json *j, const char *s, size_t n);
void json_int(struct json *j, int64_t v);
void json_uint(struct json *j, uint64_t v);
/* Finite doubles only; NaN and infinities are written as null. */
void json_double(struct json *j, double v);
void json_bool(struct json *j, int v);
void json_null(struct json *j);

/* Shorthands: key then value. */
void json_kstr(struct json *j, const char *key, const char *s);
void json_kint(struct json *j, const char *key, int64_t v);
void json_kuint(struct json *j, const char *key, uint64_t v);
void json_kdouble(struct json *j, const char *key, double v);
void json_kbool(struct json *j, const char *key, int v);

#endif

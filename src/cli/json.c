/* Streaming JSON writer with RFC 8259 string escaping. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "json.h"

void json_init(struct json *j, FILE *f)
{
    memset(j, 0, sizeof(*j));
    j->f = f;
}

void json_end(struct json *j)
{
    fputc('\n', j->f);
}

/* Writes the separator a new value needs at the current level. */
static void sep(struct json *j)
{
    if (j->after_key) {
        j->after_key = 0;
        return;
    }
    if (j->count[j->depth]++ > 0)
        fputc(',', j->f);
}

static void open_level(struct json *j, char c)
{
    sep(j);
    fputc(c, j->f);
    if (j->depth + 1 < JSON_MAX_DEPTH)
        j->depth++;
    j->count[j->depth] = 0;
}

static void close_level(struct json *j, char c)
{
    fputc(c, j->f);
    if (j->depth > 0)
        j->depth--;
}

void json_obj_begin(struct json *j)
{
    open_level(j, '{');
}

void json_obj_end(struct json *j)
{
    close_level(j, '}');
}

void json_arr_begin(struct json *j)
{
    open_level(j, '[');
}

void json_arr_end(struct json *j)
{
    close_level(j, ']');
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp, min;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, cp = s[0] & 0x1f, min = 0x80;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3, cp = s[0] & 0x0f, min = 0x800;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, cp = s[0] & 0x07, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static void put_escaped(FILE *f, const unsigned char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len = utf8_seq(s + i, n - i);

        if (len == 0) {
            fputs("\\ufffd", f);
            i++;
            continue;
        }
        if (len == 2 && c == 0xc2 && s[i + 1] < 0xa0) {
            fprintf(f, "\\u%04x", s[i + 1]); /* C1 control: never raw on a terminal */
        } else if (len > 1) {
            fwrite(s + i, 1, len, f);
        } else if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
        } else if (c == '\n') {
            fputs("\\n", f);
        } else if (c == '\r') {
            fputs("\\r", f);
        } else if (c == '\t') {
            fputs("\\t", f);
        } else if (c == '\b') {
            fputs("\\b", f);
        } else if (c == '\f') {
            fputs("\\f", f);
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\u%04x", c);
        } else {
            fputc(c, f);
        }
        i += len;
    }
    fputc('"', f);
}

void json_key(struct json *j, const char *key)
{
    sep(j);
    put_escaped(j->f, (const unsigned char *)key, strlen(key));
    fputc(':', j->f);
    j->after_key = 1;
}

void json_strn(struct json *j, const char *s, size_t n)
{
    sep(j);
    put_escaped(j->f, (const unsigned char *)s, n);
}

void json_str(struct json *j, const char *s)
{
    if (s == NULL) {
        json_null(j);
        return;
    }
    json_strn(j, s, strlen(s));
}

void json_int(struct json *j, int64_t v)
{
    sep(j);
    fprintf(j->f, "%" PRId64, v);
}

void json_uint(struct json *j, uint64_t v)
{
    sep(j);
    fprintf(j->f, "%" PRIu64, v);
}

void json_double(struct json *j, double v)
{
    if (!isfinite(v)) {
        json_null(j);
        return;
    }
    sep(j);
    fprintf(j->f, "%.6g", v);
}

void json_bool(struct json *j, int v)
{
    sep(j);
    fputs(v ? "true" : "false", j->f);
}

void json_null(struct json *j)
{
    sep(j);
    fputs("null", j->f);
}

void json_kstr(struct json *j, const char *key, const char *s)
{
    json_key(j, key);
    json_str(j, s);
}

void json_kint(struct json *j, const char *key, int64_t v)
{
    json_key(j, key);
    json_int(j, v);
}

void json_kuint(struct json *j, const char *key, uint64_t v)
{
    json_key(j, key);
    json_uint(j, v);
}

void json_kdouble(struct json *j, const char *key, double v)
{
    json_key(j, key);
    json_double(j, v);
}

void json_kbool(struct json *j, const char *key, int v)
{
    json_key(j, key);
    json_bool(j, v);
}

/* Streaming JSON writer with RFC 8259 string escaping. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "distsync/json.h"

void ds_json_init(ds_json_t *j, FILE *f)
{
    memset(j, 0, sizeof(*j));
    j->f = f;
}

void ds_json_end(ds_json_t *j)
{
    fputc('\n', j->f);
}

/* Writes the separator a new value needs at the current level. */
static void sep(ds_json_t *j)
{
    if (j->after_key) {
        j->after_key = 0;
        return;
    }
    if (j->count[j->depth]++ > 0)
        fputc(',', j->f);
}

static void open_level(ds_json_t *j, char c)
{
    sep(j);
    fputc(c, j->f);
    if (j->depth + 1 < DS_JSON_MAX_DEPTH)
        j->depth++;
    j->count[j->depth] = 0;
}

static void close_level(ds_json_t *j, char c)
{
    fputc(c, j->f);
    if (j->depth > 0)
        j->depth--;
}

void ds_json_obj_begin(ds_json_t *j)
{
    open_level(j, '{');
}

void ds_json_obj_end(ds_json_t *j)
{
    close_level(j, '}');
}

void ds_json_arr_begin(ds_json_t *j)
{
    open_level(j, '[');
}

void ds_json_arr_end(ds_json_t *j)
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

void ds_json_key(ds_json_t *j, const char *key)
{
    sep(j);
    put_escaped(j->f, (const unsigned char *)key, strlen(key));
    fputc(':', j->f);
    j->after_key = 1;
}

void ds_json_strn(ds_json_t *j, const char *s, size_t n)
{
    sep(j);
    put_escaped(j->f, (const unsigned char *)s, n);
}

void ds_json_str(ds_json_t *j, const char *s)
{
    if (s == NULL) {
        ds_json_null(j);
        return;
    }
    ds_json_strn(j, s, strlen(s));
}

void ds_json_int(ds_json_t *j, int64_t v)
{
    sep(j);
    fprintf(j->f, "%" PRId64, v);
}

void ds_json_uint(ds_json_t *j, uint64_t v)
{
    sep(j);
    fprintf(j->f, "%" PRIu64, v);
}

void ds_json_double(ds_json_t *j, double v)
{
    if (!isfinite(v)) {
        ds_json_null(j);
        return;
    }
    sep(j);
    fprintf(j->f, "%.6g", v);
}

void ds_json_bool(ds_json_t *j, int v)
{
    sep(j);
    fputs(v ? "true" : "false", j->f);
}

void ds_json_null(ds_json_t *j)
{
    sep(j);
    fputs("null", j->f);
}

void ds_json_kstr(ds_json_t *j, const char *key, const char *s)
{
    ds_json_key(j, key);
    ds_json_str(j, s);
}

void ds_json_kint(ds_json_t *j, const char *key, int64_t v)
{
    ds_json_key(j, key);
    ds_json_int(j, v);
}

void ds_json_kuint(ds_json_t *j, const char *key, uint64_t v)
{
    ds_json_key(j, key);
    ds_json_uint(j, v);
}

void ds_json_kdouble(ds_json_t *j, const char *key, double v)
{
    ds_json_key(j, key);
    ds_json_double(j, v);
}

void ds_json_kbool(ds_json_t *j, const char *key, int v)
{
    ds_json_key(j, key);
    ds_json_bool(j, v);
}

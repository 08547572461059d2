/*
 * The JSON writer every --json command and every API reply goes through
 * (include/distsync/json.h): a streaming front over jansson. jansson
 * encodes every key, string and number; this file only orders the tokens
 * ('{', '}', '[', ']', ',' and ':', in jansson's compact form), so that a
 * listing of a million files is written as it is walked, in constant
 * memory, instead of as one json_t tree.
 *
 * The escape policy, on top of jansson's (quotes, backslash, C0 controls):
 * bytes that are not valid UTF-8 become U+FFFD, one per maximal invalid
 * subpart as Unicode recommends (Python's and browsers' decoders do the
 * same), because jansson refuses invalid UTF-8; DEL and the C1 controls,
 * which jansson writes raw, are written as \u007F and \u0080..\u009F, so
 * that the output never carries a raw control character to a terminal.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/escape.h"
#include "distsync/json.h"

/* jansson's flags for one value: compact, any value at the top, doubles
 * as %.6g would write them (jansson adds ".0" to a whole number). */
#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(6))

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

/* jansson's output of one value, with DEL and C1 controls escaped. A C1
 * control is two bytes (0xc2 0x80..0x9f); lead keeps a 0xc2 that ended
 * a chunk. */
struct sink {
    FILE *f;
    int lead;
};

static int on_dump(const char *buf, size_t n, void *ctx)
{
    struct sink *k = ctx;
    const unsigned char *s = (const unsigned char *)buf;
    size_t run = 0; /* s[run, i) is plain: written in one call */

    for (size_t i = 0; i < n; i++) {
        if (k->lead) {
            k->lead = 0;
            if (s[i] >= 0x80 && s[i] <= 0x9f) {
                fprintf(k->f, "\\u%04X", s[i]); /* as jansson writes C0 */
                run = i + 1;
                continue;
            }
            fputc_unlocked(0xc2, k->f);
        }
        if (s[i] != 0xc2 && s[i] != 0x7f)
            continue;
        fwrite_unlocked(s + run, 1, i - run, k->f);
        run = i + 1;
        if (s[i] == 0xc2)
            k->lead = 1;
        else
            fputs_unlocked("\\u007F", k->f);
    }
    fwrite_unlocked(s + run, 1, n - run, k->f);
    return 0;
}

/* Writes v (consumed) through jansson; null when v is NULL (no memory) or
 * jansson fails. The stream is locked once per value: jansson hands a
 * string over in several pieces. */
static void put(ds_json_t *j, json_t *v)
{
    struct sink k = {.f = j->f, .lead = 0};

    flockfile(j->f);
    if (v == NULL || json_dump_callback(v, on_dump, &k, DUMP_FLAGS) != 0)
        fputs_unlocked("null", j->f);
    else if (k.lead)
        fputc_unlocked(0xc2, j->f);
    funlockfile(j->f);
    json_decref(v);
}

/* s[0, n) as a jansson string: copied as it is when it is valid UTF-8,
 * else with each maximal invalid subpart replaced by U+FFFD. */
static json_t *utf8_string(const char *str, size_t n)
{
    json_t *v;
    char *fixed;
    size_t o = 0;

    if (ds_utf8_valid(str, n))
        return json_stringn_nocheck(str, n);
    if (n > (SIZE_MAX - 1) / 3 || (fixed = malloc(n * 3 + 1)) == NULL)
        return NULL; /* each bad byte grows to at most 3 */
    for (size_t i = 0; i < n;) {
        size_t bad, len = ds_utf8_seq(str + i, n - i, &bad);

        if (len > 0) {
            memcpy(fixed + o, str + i, len);
            o += len;
            i += len;
        } else {
            memcpy(fixed + o, "\xef\xbf\xbd", 3);
            o += 3;
            i += bad;
        }
    }
    v = json_stringn_nocheck(fixed, o);
    free(fixed);
    return v;
}

void ds_json_key(ds_json_t *j, const char *key)
{
    sep(j);
    put(j, utf8_string(key, strlen(key)));
    fputc(':', j->f);
    j->after_key = 1;
}

void ds_json_strn(ds_json_t *j, const char *s, size_t n)
{
    sep(j);
    put(j, utf8_string(s, n));
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
    put(j, json_integer((json_int_t)v));
}

void ds_json_uint(ds_json_t *j, uint64_t v)
{
    sep(j);
    /* past jansson's json_int_t (long long): the nearest double */
    put(j, v <= INT64_MAX ? json_integer((json_int_t)v) : json_real((double)v));
}

void ds_json_double(ds_json_t *j, double v)
{
    sep(j);
    put(j, json_real(v)); /* NULL for NaN and infinities: null */
}

void ds_json_bool(ds_json_t *j, int v)
{
    sep(j);
    put(j, json_boolean(v));
}

void ds_json_null(ds_json_t *j)
{
    sep(j);
    put(j, json_null());
}

void ds_json_value(ds_json_t *j, const json_t *v)
{
    const char *key;
    json_t *x;
    size_t i;

    if (v == NULL) {
        ds_json_null(j);
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        ds_json_obj_begin(j);
        json_object_foreach((json_t *)v, key, x)
        {
            ds_json_key(j, key);
            ds_json_value(j, x);
        }
        ds_json_obj_end(j);
        break;
    case JSON_ARRAY:
        ds_json_arr_begin(j);
        json_array_foreach(v, i, x) ds_json_value(j, x);
        ds_json_arr_end(j);
        break;
    case JSON_STRING:
        ds_json_strn(j, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        ds_json_int(j, json_integer_value(v));
        break;
    case JSON_REAL:
        ds_json_double(j, json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        ds_json_bool(j, json_is_true(v));
        break;
    default:
        ds_json_null(j);
    }
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

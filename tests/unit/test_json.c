/* The JSON writer over jansson (include/distsync/json.h): documents in
 * jansson's compact form with keys in the order written, the escape
 * policy (C0, DEL and C1 escaped, invalid UTF-8 as U+FFFD per maximal
 * subpart), numbers, and random byte strings that always come back
 * through jansson's parser as what they encode. */
#include <jansson.h>
#include <math.h>

#include "check.h"
#include "distsync/escape.h"
#include "distsync/json.h"

/* Runs fn on a writer into a buffer; returns the text (free it). */
static char *doc(void (*fn)(ds_json_t *, const void *), const void *arg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ds_json_t j;

    if (f == NULL)
        abort();
    ds_json_init(&j, f);
    fn(&j, arg);
    ds_json_end(&j);
    fclose(f);
    return buf;
}

static void nested(ds_json_t *j, const void *arg)
{
    ds_json_obj_begin(j);
    ds_json_kstr(j, "z", "last key first");
    ds_json_kint(j, "a", -42);
    ds_json_key(j, "list");
    ds_json_arr_begin(j);
    ds_json_uint(j, UINT64_C(18446744073709551615));
    ds_json_uint(j, UINT64_C(9223372036854775807));
    ds_json_bool(j, 1);
    ds_json_null(j);
    ds_json_str(j, NULL);
    ds_json_obj_begin(j);
    ds_json_obj_end(j);
    ds_json_arr_begin(j);
    ds_json_arr_end(j);
    ds_json_arr_end(j);
    ds_json_kdouble(j, "half", 0.5);
    ds_json_kdouble(j, "whole", 2);
    ds_json_kdouble(j, "nan", NAN);
    ds_json_kbool(j, "f", 0);
    ds_json_obj_end(j);
}

static void test_document(void)
{
    char *s = doc(nested, NULL);

    CHECK_STR(s, "{\"z\":\"last key first\",\"a\":-42,\"list\":[1.84467e19,9223372036854775807,"
                 "true,null,null,{},[]],\"half\":0.5,\"whole\":2.0,\"nan\":null,\"f\":false}\n");
    free(s);
}

static void one_string(ds_json_t *j, const void *arg)
{
    ds_json_str(j, arg);
}

static void test_escapes(void)
{
    static const struct {
        const char *in, *out;
    } v[] = {
        {"q\"b\\s/", "\"q\\\"b\\\\s/\"\n"},
        {"\n\t\r\b\f\x01\x1b[31m", "\"\\n\\t\\r\\b\\f\\u0001\\u001B[31m\"\n"},
        {"del\x7f c1\xc2\x85\xc2\x9f nbsp\xc2\xa0",
         "\"del\\u007F c1\\u0085\\u009F nbsp\xc2\xa0\"\n"},
        {"caf\xc3\xa9 \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"\n"},
        /* invalid: a lone byte, a truncated sequence (one U+FFFD), a
         * surrogate and an overlong form (a U+FFFD per byte) */
        {"a\xff"
         "b\xe2\x82"
         "c",
         "\"a\xef\xbf\xbd"
         "b\xef\xbf\xbd"
         "c\"\n"},
        {"\xed\xa0\x80|\xc0\xaf|\xf4\x90\x80\x80|\xf0\x9f\x98",
         "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|"
         "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\"\n"},
    };

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char *s = doc(one_string, v[i].in);

        CHECK_STR(s, v[i].out);
        free(s);
    }
}

struct bytes {
    const char *p;
    size_t n;
};

static void byte_string(ds_json_t *j, const void *arg)
{
    const struct bytes *b = arg;

    ds_json_arr_begin(j);
    ds_json_strn(j, b->p, b->n);
    ds_json_arr_end(j);
}

/* Random bytes: the document parses back (jansson), holds no raw control
 * byte, and a valid UTF-8 input comes back exactly. */
static void test_random(void)
{
    unsigned seed = 13;

    for (int round = 0; round < 20000; round++) {
        char in[24];
        struct bytes b = {in, (size_t)(rand_r(&seed) % sizeof(in))};
        json_t *back;
        char *s;
        int bad = 0;

        for (size_t i = 0; i < b.n; i++) /* bias to the interesting bytes */
            in[i] = (char)(rand_r(&seed) % 3 ? rand_r(&seed) % 256 : 0x80 + rand_r(&seed) % 0x78);
        s = doc(byte_string, &b);
        back = json_loads(s, JSON_ALLOW_NUL, NULL);
        for (size_t i = 0; s[i + 1] != '\0'; i++) {
            unsigned char c = (unsigned char)s[i], d = (unsigned char)s[i + 1];

            bad |= c < 0x20 || c == 0x7f || (c == 0xc2 && d < 0xa0);
        }
        if (back == NULL || bad)
            fprintf(stderr, "round %d: %s\n", round, s);
        CHECK(back != NULL && !bad);
        if (back != NULL && ds_utf8_valid(in, b.n)) {
            json_t *e = json_array_get(back, 0);

            CHECK(json_string_length(e) == b.n && memcmp(json_string_value(e), in, b.n) == 0);
        }
        json_decref(back);
        free(s);
        if (check_test_failed)
            break;
    }
}

int main(void)
{
    RUN(test_document);
    RUN(test_escapes);
    RUN(test_random);
    return CHECK_DONE();
}

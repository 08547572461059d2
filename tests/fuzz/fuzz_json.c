/*
 * libFuzzer target for the JSON writer's string path (src/json/json.c):
 * any bytes (names from targets, messages, reasons) written as a JSON
 * string give a document that jansson parses back, that holds no raw
 * control byte (C0, DEL, C1 as UTF-8), and that returns a valid UTF-8
 * input exactly.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/escape.h"
#include "distsync/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    json_t *back;
    ds_json_t j;

    if (f == NULL)
        abort();
    ds_json_init(&j, f);
    ds_json_obj_begin(&j);
    ds_json_key(&j, "k");
    ds_json_strn(&j, (const char *)data, size);
    ds_json_obj_end(&j);
    ds_json_end(&j);
    fclose(f);
    for (size_t i = 0; i + 1 < len; i++) {
        uint8_t c = (uint8_t)buf[i], d = (uint8_t)buf[i + 1];

        if (c < 0x20 || c == 0x7f || (c == 0xc2 && d < 0xa0))
            abort();
    }
    back = json_loadb(buf, len, JSON_ALLOW_NUL, NULL);
    if (back == NULL || !json_is_string(json_object_get(back, "k")))
        abort();
    if (ds_utf8_valid((const char *)data, size) &&
        (json_string_length(json_object_get(back, "k")) != size ||
         memcmp(json_string_value(json_object_get(back, "k")), data, size) != 0))
        abort();
    json_decref(back);
    free(buf);
    return 0;
}

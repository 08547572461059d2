/* libFuzzer target: arbitrary bytes as a configuration file. The parser
 * must never crash or leak, must leave *out NULL on failure, and every
 * error must be a single line naming the file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/config.h"
#include "distsync/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), err[512];
    ds_config_t *cfg = NULL;
    int rc;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    rc = ds_config_parse(text, "fuzz.conf", "/base", &cfg, err, sizeof(err));
    if (rc < 0 && (cfg != NULL || strchr(err, '\n') != NULL || strncmp(err, "fuzz.conf", 9) != 0))
        abort();
    if (rc == 0 &&
        (cfg == NULL || cfg->store == NULL || cfg->state == NULL || cfg->store[0] != '/'))
        abort();
    ds_config_free(cfg);
    free(text);
    return 0;
}

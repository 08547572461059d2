/*
 * Configuration: the bandwidth caps ([console], [site NAME] and [server
 * NAME] `bandwidth =`, and a site's `tz =`). The grammar itself is the
 * bandwidth module's; this file stores and cross-checks it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "distsync/error.h"
#include "distsync/tz.h"

int ds__config_bandwidth(const char *value, int line, ds_bw_cfg_t *dst, char *msg, size_t msglen)
{
    int rc = ds_bw_parse(value, &dst->table, msg, msglen);

    if (rc < 0)
        return rc;
    dst->text = strdup(value);
    dst->line = line;
    return dst->text ? 0 : DS_ENOMEM;
}

static void off_if_absent(ds_bw_cfg_t *b)
{
    if (b->text == NULL)
        ds_bw_table_off(&b->table);
}

int ds__config_check_caps(ds_config_t *cfg, struct ds__config_err *e)
{
    char label[160];
    ds_tz_t *tz = NULL;

    off_if_absent(&cfg->bandwidth);
    for (size_t i = 0; i < cfg->nservers; i++)
        off_if_absent(&cfg->servers[i].bandwidth);
    for (size_t i = 0; i < cfg->nsites; i++) {
        ds_site_cfg_t *s = &cfg->sites[i];

        off_if_absent(&s->bandwidth);
        if (s->tz == NULL)
            continue;
        snprintf(label, sizeof(label), "site %s", s->name);
        if (ds_tz_load(s->tz, &tz) < 0)
            return ds__config_fail(e, s->tz_line, label, "tz",
                                   "unknown time zone '%s' (use an IANA name such as "
                                   "Europe/Paris)",
                                   s->tz);
        ds_tz_free(tz);
        tz = NULL;
    }
    return 0;
}

void ds__config_caps_free(ds_config_t *cfg)
{
    free(cfg->bandwidth.text);
    for (size_t i = 0; i < cfg->nsites; i++) {
        free(cfg->sites[i].bandwidth.text);
        free(cfg->sites[i].tz);
    }
    for (size_t i = 0; i < cfg->nservers; i++)
        free(cfg->servers[i].bandwidth.text);
}

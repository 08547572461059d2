/* distsync config check: the bandwidth caps, as text and as JSON. */
#include <stdio.h>

#include "cli.h"
#include "distsync/tz.h"
#include "distsync/json.h"

static void json_rate(ds_json_t *j, uint64_t bps)
{
    if (bps == DS_BW_OFF)
        ds_json_null(j);
    else
        ds_json_uint(j, bps);
}

void caps_json(ds_json_t *j, const ds_bw_cfg_t *b)
{
    char canon[2 * DS_BW_TEXT_MAX], w[64];

    if (b->text == NULL) {
        ds_json_null(j);
        return;
    }
    (void)ds_bw_format(&b->table, canon, sizeof(canon)); /* 2 * DS_BW_TEXT_MAX always fits */
    ds_json_obj_begin(j);
    ds_json_kstr(j, "text", b->text);
    ds_json_kstr(j, "canonical", canon);
    ds_json_key(j, "default_bps");
    json_rate(j, b->table.dflt);
    ds_json_key(j, "windows");
    ds_json_arr_begin(j);
    for (size_t i = 0; i < b->table.n; i++) {
        ds_json_obj_begin(j);
        (void)ds_bw_format_window(&b->table.w[i], w, sizeof(w)); /* 64 bytes always fit */
        ds_json_kstr(j, "when", w);
        ds_json_key(j, "bps");
        json_rate(j, b->table.w[i].bps);
        ds_json_obj_end(j);
    }
    ds_json_arr_end(j);
    ds_json_obj_end(j);
}

static void cap_line(const char *what, const char *name, const ds_bw_cfg_t *b, const char *zone)
{
    char canon[2 * DS_BW_TEXT_MAX];

    if (b->text == NULL)
        return;
    (void)ds_bw_format(&b->table, canon, sizeof(canon)); /* 2 * DS_BW_TEXT_MAX always fits */
    printf("bandwidth  %s%s%s: %s", what, name ? " " : "", name ? name : "", canon);
    if (b->table.n > 0)
        printf(" (windows in %s)", zone);
    putchar('\n');
}

void caps_text(const ds_config_t *cfg)
{
    ds_tz_t *tz = NULL;
    const char *console_zone = ds_tz_load(NULL, &tz) == 0 ? ds_tz_name(tz) : "the console's zone";
    int any = cfg->bandwidth.text != NULL;

    cap_line("global", NULL, &cfg->bandwidth, console_zone);
    for (size_t i = 0; i < cfg->nsites; i++) {
        const ds_site_cfg_t *s = &cfg->sites[i];

        cap_line("site", s->name, &s->bandwidth, s->tz ? s->tz : console_zone);
        any |= s->bandwidth.text != NULL;
    }
    for (size_t i = 0; i < cfg->nservers; i++) {
        const ds_server_cfg_t *s = &cfg->servers[i];
        const ds_site_cfg_t *site = s->site ? ds_config_site(cfg, s->site) : NULL;

        cap_line("server", s->name, &s->bandwidth, site && site->tz ? site->tz : console_zone);
        any |= s->bandwidth.text != NULL;
    }
    if (any)
        printf("           (sync and the daemon pace by them; SIGHUP reloads them live)\n");
    else
        printf("bandwidth  no caps\n");
    ds_tz_free(tz);
}

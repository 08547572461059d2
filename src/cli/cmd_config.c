/* distsync config check [--json]: loads the configuration and summarises it. */
#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "distsync/config.h"

static void usage(FILE *f)
{
    fputs("usage: distsync [-c FILE] config check [--json] [--connect [SERVER...]]\n"
          "Loads and validates the configuration, then prints a summary. With --connect,\n"
          "then connects to each smb:// server (or those named) and checks its share and\n"
          "directory.\n"
          "Exit status: 0 valid, 2 invalid (the error names file, line and key), 4 a server\n"
          "could not be reached.\n",
          f);
}

static void ds_json_str(const char *s)
{
    if (s == NULL) {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void json_list(const char *key, const ds_strlist_t *l)
{
    printf("\"%s\":[", key);
    for (size_t i = 0; i < l->n; i++) {
        if (i > 0)
            putchar(',');
        ds_json_str(l->v[i]);
    }
    putchar(']');
}

static void print_json(const ds_config_t *cfg)
{
    fputs("{\"path\":", stdout);
    ds_json_str(cfg->path);
    fputs(",\"console\":{\"store\":", stdout);
    ds_json_str(cfg->store);
    fputs(",\"state\":", stdout);
    ds_json_str(cfg->state);
    putchar(',');
    json_list("classes", &cfg->classes);
    printf(",\"chunk_min\":%u,\"chunk_avg\":%u,\"chunk_max\":%u,\"scan_threads\":%u,",
           cfg->chunk.min_size, cfg->chunk.avg_size, cfg->chunk.max_size, cfg->scan_threads);
    fputs("\"bandwidth\":", stdout);
    caps_json(&cfg->bandwidth);
    fputs("},\"sites\":[", stdout);
    for (size_t i = 0; i < cfg->nsites; i++) {
        fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
        ds_json_str(cfg->sites[i].name);
        fputs(",\"tz\":", stdout);
        ds_json_str(cfg->sites[i].tz);
        fputs(",\"bandwidth\":", stdout);
        caps_json(&cfg->sites[i].bandwidth);
        putchar('}');
    }
    fputs("],\"servers\":[", stdout);
    for (size_t i = 0; i < cfg->nservers; i++) {
        const ds_server_cfg_t *s = &cfg->servers[i];

        fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
        ds_json_str(s->name);
        fputs(",\"url\":", stdout);
        ds_json_str(s->url);
        fputs(",\"site\":", stdout);
        ds_json_str(s->site);
        putchar(',');
        json_list("classes", &s->classes);
        printf(
            ",\"prune\":%s,\"max_delete\":\"%llu%s\",\"bandwidth\":", s->prune ? "true" : "false",
            (unsigned long long)s->max_delete, s->max_delete_pct ? "%" : "");
        caps_json(&s->bandwidth);
        if (strncmp(s->url, "smb://", 6) == 0) { /* the file's path, never what it holds */
            fputs(",\"credentials\":", stdout);
            ds_json_str(s->credentials); /* null: the environment */
            printf(",\"encrypt\":%s,\"verify\":\"%s\"", s->encrypt ? "true" : "false",
                   s->verify_readback ? "readback" : "size");
        }
        putchar('}');
    }
    fputs("],\"schedules\":[", stdout);
    for (size_t i = 0; i < cfg->nschedules; i++) {
        const ds_schedule_cfg_t *s = &cfg->schedules[i];

        fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
        ds_json_str(s->name);
        fputs(",\"when\":", stdout);
        ds_json_str(s->when);
        fputs(",\"tz\":", stdout);
        ds_json_str(s->tz);
        fputs(",\"window\":", stdout);
        ds_json_str(s->window);
        putchar(',');
        json_list("servers", &s->servers);
        putchar(',');
        json_list("sites", &s->sites);
        putchar(',');
        json_list("classes", &s->classes);
        putchar('}');
    }
    fputs("]}\n", stdout);
}

static void print_text(const ds_config_t *cfg)
{
    printf("config     %s: valid\n", cfg->path);
    printf("store      %s\n", cfg->store);
    printf("state      %s\n", cfg->state);
    printf("classes   ");
    for (size_t i = 0; i < cfg->classes.n; i++)
        printf(" %s", cfg->classes.v[i]);
    printf("\nchunks     min %u, avg %u, max %u bytes\n", cfg->chunk.min_size, cfg->chunk.avg_size,
           cfg->chunk.max_size);
    printf("%zu sites, %zu servers, %zu schedules\n", cfg->nsites, cfg->nservers, cfg->nschedules);
    caps_text(cfg);
}

int cmd_config(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"connect", no_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ds_config_t *cfg = NULL;
    char err[1024];
    int ch, json = 0, connect = 0, rc;

    if (argc < 2 || strcmp(argv[1], "check") != 0) {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        cli_err("config: expected 'check'");
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    while ((ch = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        if (ch != 'j' && ch != 'C') {
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
        json |= ch == 'j';
        connect |= ch == 'C';
    }
    if (optind < argc - 1 && !connect) {
        cli_err("config check: unexpected argument '%s'", argv[optind + 1]);
        return CLI_EXIT_USAGE;
    }
    rc = cli_config_load(cli, &cfg);
    if (rc != 0)
        return rc;
    if (ds_config_check(cfg, err, sizeof(err)) < 0) {
        cli_err("%s", err);
        ds_config_free(cfg);
        return CLI_EXIT_USAGE;
    }
    if (json)
        print_json(cfg);
    else
        print_text(cfg);
    rc = connect ? cli_config_connect(cfg, argc - 1 - optind, argv + 1 + optind) : CLI_EXIT_OK;
    ds_config_free(cfg);
    return rc;
}

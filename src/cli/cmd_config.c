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
          "directory, and opens each ssh:// server as a sync would (host key, login, root,\n"
          "the agent or SFTP), writing nothing.\n"
          "Exit status: 0 valid, 2 invalid (the error names file, line and key), 4 a server\n"
          "could not be reached.\n",
          f);
}

static void json_list(ds_json_t *j, const char *key, const ds_strlist_t *l)
{
    ds_json_key(j, key);
    ds_json_arr_begin(j);
    for (size_t i = 0; i < l->n; i++)
        ds_json_str(j, l->v[i]);
    ds_json_arr_end(j);
}

static void server_json(ds_json_t *j, const ds_server_cfg_t *s)
{
    char max_delete[32];

    snprintf(max_delete, sizeof(max_delete), "%llu%s", (unsigned long long)s->max_delete,
             s->max_delete_pct ? "%" : "");
    ds_json_obj_begin(j);
    ds_json_kstr(j, "name", s->name);
    ds_json_kstr(j, "url", s->url);
    ds_json_kstr(j, "site", s->site);
    json_list(j, "classes", &s->classes);
    ds_json_kbool(j, "prune", s->prune);
    ds_json_kstr(j, "max_delete", max_delete);
    ds_json_key(j, "bandwidth");
    caps_json(j, &s->bandwidth);
    ds_json_kstr(j, "quick_deltas", s->quick_off ? "no" : "auto");
    if (strncmp(s->url, "smb://", 6) == 0) {            /* the file's path, never what it holds */
        ds_json_kstr(j, "credentials", s->credentials); /* null: the environment */
        ds_json_kbool(j, "encrypt", s->encrypt);
        ds_json_kstr(j, "verify", s->verify_readback ? "readback" : "size");
        ds_json_kuint(j, "connections", ds_config_smb_connections(s));
    }
    ds_json_obj_end(j);
}

static void schedule_json(ds_json_t *j, const ds_schedule_cfg_t *s)
{
    ds_json_obj_begin(j);
    ds_json_kstr(j, "name", s->name);
    ds_json_kstr(j, "when", s->when);
    ds_json_kstr(j, "tz", s->tz);
    ds_json_kstr(j, "window", s->window);
    json_list(j, "servers", &s->servers);
    json_list(j, "sites", &s->sites);
    json_list(j, "classes", &s->classes);
    ds_json_obj_end(j);
}

static void print_json(const ds_config_t *cfg)
{
    ds_json_t j;

    ds_json_init(&j, stdout);
    ds_json_obj_begin(&j);
    ds_json_kstr(&j, "path", cfg->path);
    ds_json_key(&j, "console");
    ds_json_obj_begin(&j);
    ds_json_kstr(&j, "store", cfg->store);
    ds_json_kstr(&j, "state", cfg->state);
    json_list(&j, "classes", &cfg->classes);
    ds_json_kuint(&j, "chunk_min", cfg->chunk.min_size);
    ds_json_kuint(&j, "chunk_avg", cfg->chunk.avg_size);
    ds_json_kuint(&j, "chunk_max", cfg->chunk.max_size);
    ds_json_kuint(&j, "scan_threads", cfg->scan_threads);
    ds_json_key(&j, "bandwidth");
    caps_json(&j, &cfg->bandwidth);
    ds_json_obj_end(&j);
    ds_json_key(&j, "sites");
    ds_json_arr_begin(&j);
    for (size_t i = 0; i < cfg->nsites; i++) {
        ds_json_obj_begin(&j);
        ds_json_kstr(&j, "name", cfg->sites[i].name);
        ds_json_kstr(&j, "tz", cfg->sites[i].tz);
        ds_json_key(&j, "bandwidth");
        caps_json(&j, &cfg->sites[i].bandwidth);
        ds_json_obj_end(&j);
    }
    ds_json_arr_end(&j);
    ds_json_key(&j, "servers");
    ds_json_arr_begin(&j);
    for (size_t i = 0; i < cfg->nservers; i++)
        server_json(&j, &cfg->servers[i]);
    ds_json_arr_end(&j);
    ds_json_key(&j, "schedules");
    ds_json_arr_begin(&j);
    for (size_t i = 0; i < cfg->nschedules; i++)
        schedule_json(&j, &cfg->schedules[i]);
    ds_json_arr_end(&j);
    ds_json_obj_end(&j);
    ds_json_end(&j);
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
    printf("%zu site%s, %zu server%s, %zu schedule%s\n", cfg->nsites, cfg->nsites == 1 ? "" : "s",
           cfg->nservers, cfg->nservers == 1 ? "" : "s", cfg->nschedules,
           cfg->nschedules == 1 ? "" : "s");
    caps_text(cfg);
}

/* A warning of config check: on stderr, the configuration still good. */
static void warn(void *arg, const char *msg)
{
    (void)arg;
    cli_err("warning: %s", msg);
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
    (void)ds_config_warnings(cfg, warn, NULL);
    if (json)
        print_json(cfg);
    else
        print_text(cfg);
    rc = connect ? cli_config_connect(cli, cfg, argc - 1 - optind, argv + 1 + optind) : CLI_EXIT_OK;
    ds_config_free(cfg);
    return rc;
}

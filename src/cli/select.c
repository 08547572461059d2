/*
 * The shared command line of the commands that work on servers: server,
 * site and class selection plus each command's own flags, parsed and
 * resolved against the configuration in one place (see select.h).
 */
#include "select.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_SITE = 1000, OPT_ALL, OPT_CLASS, OPT_SERVER, OPT_HELP, OPT_FLAG = 2000 };

#define MAX_FLAGS CLI_FLAGS_MAX

void cli_select_free(struct cli_select *sel)
{
    free(sel->names);
    free(sel->legacy);
    free(sel->sites);
    free(sel->classes);
    memset(sel, 0, sizeof(*sel));
}

/* Stores one command flag (i) from its argument. */
static int set_flag(const char *cmd, const struct cli_flag *f, const char *arg)
{
    char *end;

    if (f->set != NULL)
        *f->set = 1;
    if (f->text != NULL)
        *f->text = arg;
    if (f->num == NULL || arg == NULL)
        return 0;
    *f->num = strtoll(arg, &end, 10);
    if (*arg == '\0' || *end != '\0' || *f->num < 0) {
        cli_err("%s: --%s '%s': expected a number >= 0", cmd, f->name, arg);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* Builds the getopt tables for flags. Returns the number of flags. */
static size_t tables(const struct cli_flag *flags, struct option *o, char *shorts)
{
    static const struct option sel[] = {
        {"site", required_argument, NULL, OPT_SITE},
        {"all", no_argument, NULL, OPT_ALL},
        {"class", required_argument, NULL, OPT_CLASS},
        {"server", required_argument, NULL, OPT_SERVER},
        {"help", no_argument, NULL, OPT_HELP},
    };
    size_t n = 0, k = 0, ns = sizeof(sel) / sizeof(sel[0]);

    memcpy(o, sel, sizeof(sel));
    strcpy(shorts, "ah");
    k = strlen(shorts);
    for (; flags && flags[n].name && n < MAX_FLAGS; n++) {
        int has = flags[n].text != NULL  ? required_argument
                  : flags[n].num == NULL ? no_argument
                  : flags[n].optional    ? optional_argument
                                         : required_argument;

        o[ns + n] = (struct option){flags[n].name, has, NULL, OPT_FLAG + (int)n};
        if (flags[n].shortc) {
            shorts[k++] = (char)flags[n].shortc;
            if (flags[n].num || flags[n].text)
                shorts[k++] = ':';
        }
    }
    shorts[k] = '\0';
    o[ns + n] = (struct option){NULL, 0, NULL, 0};
    return n;
}

static int option(const char *usage, const struct cli_flag *flags, size_t nf, int ch,
                  struct cli_select *s, const char *cmd)
{
    if (ch == 'a')
        ch = OPT_ALL;
    if (ch == 'h')
        ch = OPT_HELP;
    for (size_t i = 0; i < nf; i++)
        if (flags[i].shortc && ch == flags[i].shortc)
            ch = OPT_FLAG + (int)i;
    switch (ch) {
    case OPT_SITE:
        s->sites[s->nsites++] = optarg;
        return 0;
    case OPT_ALL:
        s->all = 1;
        return 0;
    case OPT_CLASS:
        s->classes[s->nclasses++] = optarg;
        return 0;
    case OPT_SERVER:
        s->names[s->nnames++] = optarg;
        s->legacy[s->nlegacy++] = optarg;
        return 0;
    case OPT_HELP:
        fputs(usage, stdout);
        return -1;
    default:
        if (ch >= OPT_FLAG && ch < OPT_FLAG + (int)nf)
            return set_flag(cmd, &flags[ch - OPT_FLAG], optarg);
        fputs(usage, stderr);
        return CLI_EXIT_USAGE;
    }
}

int cli_select_parse(const char *usage, int argc, char **argv, const struct cli_flag *flags,
                     struct cli_select *sel)
{
    struct option o[MAX_FLAGS + 8];
    char shorts[2 * MAX_FLAGS + 4];
    size_t nf = tables(flags, o, shorts), cap = (size_t)argc + 1;
    int ch, rc = 0;

    memset(sel, 0, sizeof(*sel));
    sel->names = calloc(cap, sizeof(char *));
    sel->legacy = calloc(cap, sizeof(char *));
    sel->sites = calloc(cap, sizeof(char *));
    sel->classes = calloc(cap, sizeof(char *));
    if (!sel->names || !sel->legacy || !sel->sites || !sel->classes) {
        cli_err("%s: out of memory", argv[0]);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    while (rc == 0 && (ch = getopt_long(argc, argv, shorts, o, NULL)) != -1)
        rc = option(usage, flags, nf, ch, sel, argv[0]);
    for (int i = optind; rc == 0 && i < argc; i++)
        sel->names[sel->nnames++] = argv[i];
out:
    if (rc != 0)
        cli_select_free(sel);
    return rc;
}

/* Prints "unknown WHAT 'name' (not in FILE; valid: a, b, c)". */
static void unknown(const char *cmd, const char *what, const char *name, const ds_config_t *cfg,
                    const char *(*nth)(const ds_config_t *, size_t), size_t count)
{
    char list[2048] = "";
    size_t len = 0;

    for (size_t i = 0; i < count && len < sizeof(list) - 1; i++)
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", nth(cfg, i));
    cli_err("%s: unknown %s '%s' (not in %s; valid: %s)", cmd, what, name, cfg->path,
            count ? list : "none configured");
}

static const char *server_nth(const ds_config_t *c, size_t i)
{
    return c->servers[i].name;
}
static const char *site_nth(const ds_config_t *c, size_t i)
{
    return c->sites[i].name;
}
static const char *class_nth(const ds_config_t *c, size_t i)
{
    return c->classes.v[i];
}

/* Checks every name, site and class. Returns 0 or CLI_EXIT_USAGE. */
static int check(const char *cmd, const ds_config_t *cfg, const struct cli_select *sel)
{
    for (size_t i = 0; i < sel->nnames; i++) {
        int legacy = 0;

        for (size_t k = 0; k < sel->nlegacy; k++)
            legacy |= sel->legacy[k] == sel->names[i];
        if (!legacy && ds_config_server(cfg, sel->names[i]) == NULL) {
            unknown(cmd, "server", sel->names[i], cfg, server_nth, cfg->nservers);
            return CLI_EXIT_USAGE;
        }
    }
    for (size_t i = 0; i < sel->nsites; i++)
        if (ds_config_site(cfg, sel->sites[i]) == NULL) {
            unknown(cmd, "site", sel->sites[i], cfg, site_nth, cfg->nsites);
            return CLI_EXIT_USAGE;
        }
    for (size_t i = 0; i < sel->nclasses; i++)
        if (cli_select_check_class(cmd, cfg, sel->classes[i]) != 0)
            return CLI_EXIT_USAGE;
    return 0;
}

int cli_select_check_class(const char *cmd, const ds_config_t *cfg, const char *klass)
{
    if (ds_config_list_has(&cfg->classes, klass))
        return 0;
    unknown(cmd, "class", klass, cfg, class_nth, cfg->classes.n);
    return CLI_EXIT_USAGE;
}

/* 1 when sel picks server s. */
static int picked(const struct cli_select *sel, const ds_server_cfg_t *s, int every)
{
    if (every)
        return 1;
    for (size_t i = 0; i < sel->nnames; i++)
        if (strcmp(sel->names[i], s->name) == 0)
            return 1;
    for (size_t i = 0; i < sel->nsites; i++)
        if (s->site && strcmp(sel->sites[i], s->site) == 0)
            return 1;
    return 0;
}

int cli_select_resolve(const char *cmd, const ds_config_t *cfg, const struct cli_select *sel,
                       int all_by_default, const ds_server_cfg_t ***srv, size_t *n)
{
    int none = sel->nnames == 0 && sel->nsites == 0, every = sel->all || (none && all_by_default);
    int rc = check(cmd, cfg, sel);

    *srv = NULL;
    *n = 0;
    if (rc != 0)
        return rc;
    if (none && !every) {
        cli_err("%s: name a server, or use --site S or --all", cmd);
        return CLI_EXIT_USAGE;
    }
    if (sel->all && !none) {
        cli_err("%s: --all takes no server names or sites", cmd);
        return CLI_EXIT_USAGE;
    }
    *srv = calloc(cfg->nservers + 1, sizeof(**srv));
    if (*srv == NULL) {
        cli_err("%s: out of memory", cmd);
        return CLI_EXIT_FAIL;
    }
    for (size_t i = 0; i < cfg->nservers; i++)
        if (picked(sel, &cfg->servers[i], every))
            (*srv)[(*n)++] = &cfg->servers[i];
    if (*n == 0 && sel->nlegacy == 0 && !all_by_default) {
        cli_err("%s: no server selected (%s has %zu [server] sections)", cmd, cfg->path,
                cfg->nservers);
        free(*srv);
        *srv = NULL;
        return CLI_EXIT_USAGE;
    }
    return 0;
}

const ds_strlist_t *cli_select_classes(const struct cli_select *sel, ds_strlist_t *buf)
{
    if (sel->nclasses == 0)
        return NULL;
    buf->v = sel->classes;
    buf->n = sel->nclasses;
    return buf;
}

/*
 * distsync freeze SERVER... | --site S [--until TIME] [--reason TEXT] and
 * distsync thaw SERVER... | --site S | --all: freeze windows (freeze.h).
 * A frozen server is skipped by every run (sync, the daemon's schedules),
 * which says so; status lists it as frozen. TIME is RFC 3339 or a duration
 * from now (90m, 4h, 2d).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "distsync/freeze.h"
#include "daemon_client.h"
#include "select.h"

#define FREEZE_USAGE "usage: distsync freeze SERVER... | --site S [--until TIME] [--reason TEXT]\n"
#define THAW_USAGE   "usage: distsync thaw SERVER... | --site S | --all\n"

struct freeze_args {
    struct cli_select sel;
    const char *until, *reason;
};

static int parse_args(int thaw, int argc, char **argv, struct freeze_args *a)
{
    static const struct option opts[] = {
        {"site", required_argument, NULL, 's'},   {"until", required_argument, NULL, 'u'},
        {"reason", required_argument, NULL, 'r'}, {"all", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *usage = thaw ? THAW_USAGE : FREEZE_USAGE;
    int ch;

    a->sel.sites = calloc((size_t)argc + 1, sizeof(char *));
    a->sel.names = calloc((size_t)argc + 1, sizeof(char *));
    if (a->sel.sites == NULL || a->sel.names == NULL) {
        cli_err("%s: out of memory", argv[0]);
        return CLI_EXIT_FAIL;
    }
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ch == 's')
            a->sel.sites[a->sel.nsites++] = optarg;
        else if (ch == 'u' && !thaw)
            a->until = optarg;
        else if (ch == 'r' && !thaw)
            a->reason = optarg;
        else if (ch == 'a' && thaw)
            a->sel.all = 1;
        else {
            fputs(usage, ch == 'h' ? stdout : stderr);
            return ch == 'h' ? -1 : CLI_EXIT_USAGE;
        }
    }
    for (int i = optind; i < argc; i++)
        a->sel.names[a->sel.nnames++] = argv[i];
    return 0;
}

/* --until: RFC 3339, or a duration from now. */
static int parse_until(const char *s, int64_t *until)
{
    int rc;

    *until = 0;
    if (s == NULL || (rc = cli_parse_when(s, 1, until)) == 0)
        return 0;
    if (rc > 0)
        cli_err("freeze: --until '%s' is in the past", cli_esc(s));
    else
        cli_err("freeze: --until '%s': expected an RFC 3339 time (2026-12-01T02:00:00+01:00) or "
                "a duration from now (90m, 4h, 2d)",
                cli_esc(s));
    return CLI_EXIT_USAGE;
}

static int open_catalog(const ds_config_t *cfg, ds_catalog_t **cat)
{
    char path[PATH_MAX], err[1024];
    int rc = cli_catalog_path_made(cfg, path, sizeof(path));

    if (rc != 0)
        return rc;
    if (ds_catalog_open(path, cat, err, sizeof(err)) < 0) {
        cli_err("%s", err);
        return CLI_EXIT_FAIL;
    }
    return 0;
}

static int apply(int thaw, ds_catalog_t *cat, const ds_server_cfg_t **srv, size_t n,
                 const struct freeze_args *a, int64_t until)
{
    ds_freeze_t f = {.until = until};
    char line[1024];

    for (size_t i = 0; i < n; i++) {
        int rc = thaw ? ds_freeze_del(cat, srv[i]->name)
                      : ds_freeze_put(cat, srv[i]->name, until, a->reason, (int64_t)time(NULL));

        if (thaw && rc == DS_ENOTFOUND) {
            printf("server %s was not frozen\n", cli_esc(srv[i]->name));
            continue;
        }
        if (rc < 0) {
            cli_err("%s %s: %s", thaw ? "thaw" : "freeze", cli_esc(srv[i]->name), ds_strerror(rc));
            return CLI_EXIT_FAIL;
        }
        if (thaw) {
            printf("server %s thawed\n", cli_esc(srv[i]->name));
            continue;
        }
        snprintf(f.server, sizeof(f.server), "%s", srv[i]->name);
        snprintf(f.reason, sizeof(f.reason), "%s", a->reason ? a->reason : "");
        ds_freeze_describe(&f, line, sizeof(line));
        printf("%s\n", cli_esc(line));
    }
    return CLI_EXIT_OK;
}

/* The request to a running daemon: the servers, and until (absolute, so
 * both sides mean the same instant) and reason. */
static char *request(const ds_server_cfg_t **srv, size_t n, const struct freeze_args *a,
                     int64_t until)
{
    json_t *o = json_object(), *sv = json_array();
    char when[64];
    char *text = NULL;

    if (o == NULL || sv == NULL)
        goto out;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(sv, json_string(srv[i]->name));
    json_object_set(o, "servers", sv);
    if (until != 0 && ds_tz_format_utc(until, when, sizeof(when)) == 0)
        json_object_set_new(o, "until", json_string(when));
    if (a->reason != NULL)
        json_object_set_new(o, "reason", json_string(a->reason));
    text = json_dumps(o, JSON_COMPACT);
out:
    json_decref(sv);
    json_decref(o);
    return text;
}

static int listed(const json_t *arr, const char *name)
{
    const json_t *v;
    size_t i;

    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
            return 1;
    }
    return 0;
}

/* freeze / thaw through the running daemon (POST /v1/freeze, /v1/thaw):
 * the same lines as apply(). */
static int apply_daemon(int thaw, const ds_config_t *cfg, const ds_server_cfg_t **srv, size_t n,
                        const struct freeze_args *a, int64_t until)
{
    char *body = request(srv, n, a, until), line[1024];
    ds_freeze_t f = {.until = until};
    json_t *reply = NULL;
    long status;
    int rc = CLI_EXIT_FAIL;

    if (body == NULL) {
        cli_err("%s: out of memory", thaw ? "thaw" : "freeze");
        return CLI_EXIT_FAIL;
    }
    status = cli_daemon_call(cfg, "POST", thaw ? "/v1/thaw" : "/v1/freeze", body, &reply);
    if (status != 200) {
        if (status != 0)
            cli_err("%s: %s", thaw ? "thaw" : "freeze", cli_esc(cli_daemon_error(reply, status)));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = srv[i]->name;

        if (thaw) {
            printf(listed(json_object_get(reply, "thawed"), name) ? "server %s thawed\n"
                                                                  : "server %s was not frozen\n",
                   cli_esc(name));
            continue;
        }
        snprintf(f.server, sizeof(f.server), "%s", name);
        snprintf(f.reason, sizeof(f.reason), "%s", a->reason ? a->reason : "");
        ds_freeze_describe(&f, line, sizeof(line));
        printf("%s\n", cli_esc(line));
    }
    rc = CLI_EXIT_OK;
out:
    json_decref(reply);
    free(body);
    return rc;
}

int cmd_freeze(struct cli *cli, int argc, char **argv)
{
    int thaw = strcmp(argv[0], "thaw") == 0;
    struct freeze_args a = {0};
    const ds_server_cfg_t **srv = NULL;
    ds_config_t *cfg = NULL;
    ds_catalog_t *cat = NULL;
    int64_t until = 0;
    size_t n = 0;
    int rc = parse_args(thaw, argc, argv, &a);

    if (rc == 0)
        rc = parse_until(a.until, &until);
    if (rc == 0)
        rc = cli_config_load(cli, &cfg);
    if (rc == 0)
        rc = cli_select_resolve(argv[0], cfg, &a.sel, 0, &srv, &n);
    if (rc == 0 && cli_daemon_up(cfg)) /* the daemon hears of it at once */
        rc = apply_daemon(thaw, cfg, srv, n, &a, until);
    else if (rc == 0 && (rc = open_catalog(cfg, &cat)) == 0)
        rc = apply(thaw, cat, srv, n, &a, until);
    ds_catalog_free(cat);
    free(srv);
    ds_config_free(cfg);
    cli_select_free(&a.sel);
    return rc < 0 ? CLI_EXIT_OK : rc;
}

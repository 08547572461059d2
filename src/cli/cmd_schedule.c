/*
 * distsync schedule next [NAME] [--rule RULE [--tz TZ] [--window W]]
 *                        [--from RFC3339] [--count N] [--json]
 * Previews the next fire times of a rule, of one configured schedule, or of
 * all of them, as RFC 3339 timestamps with the schedule's local offset.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "daemon_client.h"
#include "distsync/config.h"
#include "distsync/error.h"
#include "distsync/json.h"
#include "distsync/schedule.h"
#include "distsync/tz.h"

#define MAX_COUNT 10000

struct opts {
    const char *name, *rule, *tz, *window;
    int64_t from;
    long count;
    int json;
};

static void usage(FILE *f)
{
    fputs("usage: distsync [-c FILE] schedule next [NAME] [--rule RULE [--tz ZONE] [--window W]]\n"
          "                [--from RFC3339] [--count N] [--json]\n"
          "Prints the next N (default 10) fire times after --from (default: now) as RFC 3339\n"
          "timestamps in the schedule's zone. Without --rule: the named schedule from the\n"
          "configuration, or all of them (each line prefixed with the schedule's name).\n"
          "Exit status: 0 ok, 2 bad arguments, rule or configuration.\n",
          f);
}

/* Prints up to count fire times after o->from; prefix NULL for none;
 * j: as a JSON array through it, else as lines. */
static int preview(const ds_schedule_t *s, const struct opts *o, const char *prefix, ds_json_t *j)
{
    int64_t t = o->from, fire;
    char buf[64];
    int rc;

    if (j != NULL)
        ds_json_arr_begin(j);
    for (long i = 0; i < o->count; i++) {
        rc = ds_schedule_next(s, t, &fire);
        if (rc == DS_ENOTFOUND)
            break;
        if (rc == 0)
            rc = ds_tz_format_rfc3339(ds_schedule_tz(s), fire, buf, sizeof(buf));
        if (rc < 0) {
            if (j != NULL)
                ds_json_arr_end(j);
            cli_err("%s: %s", prefix ? prefix : "rule", ds_strerror(rc));
            return CLI_EXIT_FAIL;
        }
        if (j != NULL)
            ds_json_str(j, buf);
        else if (prefix)
            printf("%s %s\n", prefix, buf);
        else
            printf("%s\n", buf);
        t = fire;
    }
    if (j != NULL)
        ds_json_arr_end(j);
    return CLI_EXIT_OK;
}

static int preview_rule(const struct opts *o)
{
    ds_schedule_t *s = NULL;
    char err[256];
    ds_json_t j;
    int rc;

    if (ds_schedule_parse(o->rule, o->tz, o->window, &s, err, sizeof(err)) < 0) {
        cli_err("--rule '%s': %s", o->rule, err);
        return CLI_EXIT_USAGE;
    }
    ds_json_init(&j, stdout);
    rc = preview(s, o, NULL, o->json ? &j : NULL);
    if (o->json)
        ds_json_end(&j);
    ds_schedule_free(s);
    return rc;
}

/* Parses one configured schedule; prints file:line:key on error. */
static int load_cfg_schedule(const ds_config_t *cfg, const ds_schedule_cfg_t *sc,
                             ds_schedule_t **out)
{
    char err[256];
    int rc = ds_schedule_parse(sc->when, sc->tz, sc->window, out, err, sizeof(err));
    int line = sc->when_line;
    const char *key = "when";

    if (rc == DS_ETZ)
        line = sc->tz_line, key = "tz";
    else if (rc < 0 && sc->window != NULL && strncmp(err, "window", 6) == 0)
        line = sc->window_line, key = "window";
    if (rc < 0) {
        cli_err("%s:%d: [schedule %s] key '%s': %s", cfg->path, line, sc->name, key, err);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* The fires as text lines (prefix: the schedule's name, or NULL). */
static void print_fires(const json_t *arr, const char *prefix)
{
    const json_t *v;
    size_t i;

    json_array_foreach(arr, i, v)
    {
        if (prefix != NULL)
            printf("%s %s\n", prefix, json_string_value(v));
        else
            printf("%s\n", json_string_value(v));
    }
}

/* The preview of the running daemon's schedules (GET
 * /v1/schedules[/NAME]/preview): what it will fire, also when the file
 * changed since it last loaded it. Prints what preview_config prints. */
static int preview_daemon(const ds_config_t *cfg, const struct opts *o)
{
    char path[512], from[64], *esc = o->name ? cli_daemon_escape(o->name) : NULL;
    json_t *reply = NULL, *v;
    ds_json_t j;
    const char *key;
    long status;
    int rc = CLI_EXIT_OK;

    if (ds_tz_format_utc(o->from, from, sizeof(from)) < 0)
        snprintf(from, sizeof(from), "1970-01-01T00:00:00Z");
    snprintf(path, sizeof(path), "/v1/schedules%s%s/preview?count=%ld&from=%s", esc ? "/" : "",
             esc ? esc : "", o->count, from);
    free(esc);
    status = cli_daemon_call(cfg, "GET", path, NULL, &reply);
    if (status != 200 || reply == NULL) {
        if (status != 0)
            cli_err("%s", cli_esc(cli_daemon_error(reply, status)));
        rc = status == 404 || status == 400 ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    } else if (o->json) { /* through the one writer: the bytes the daemon wrote */
        ds_json_init(&j, stdout);
        ds_json_value(&j, reply);
        ds_json_end(&j);
    } else if (o->name != NULL) {
        print_fires(reply, NULL);
    } else {
        json_object_foreach(reply, key, v) print_fires(v, key);
    }
    json_decref(reply);
    return rc;
}

static int preview_config(struct cli *cli, const struct opts *o)
{
    ds_config_t *cfg = NULL;
    ds_schedule_t *s = NULL;
    int rc = cli_config_load(cli, &cfg);
    ds_json_t j;

    if (rc != 0)
        return rc;
    if (cli_daemon_up(cfg)) {
        rc = preview_daemon(cfg, o);
        goto out;
    }
    if (o->name != NULL && ds_config_schedule(cfg, o->name) == NULL) {
        cli_err("%s: no schedule named '%s'", cfg->path, o->name);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    ds_json_init(&j, stdout);
    if (o->json && o->name == NULL)
        ds_json_obj_begin(&j);
    for (size_t i = 0; i < cfg->nschedules && rc == 0; i++) {
        const ds_schedule_cfg_t *sc = &cfg->schedules[i];

        if (o->name != NULL && strcmp(o->name, sc->name) != 0)
            continue;
        rc = load_cfg_schedule(cfg, sc, &s);
        if (rc != 0)
            break;
        if (o->json && o->name == NULL)
            ds_json_key(&j, sc->name);
        rc = preview(s, o, o->name == NULL && !o->json ? sc->name : NULL, o->json ? &j : NULL);
        ds_schedule_free(s);
        s = NULL;
    }
    if (o->json && o->name == NULL)
        ds_json_obj_end(&j);
    if (o->json)
        ds_json_end(&j);
out:
    ds_config_free(cfg);
    return rc;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"rule", required_argument, NULL, 'r'},   {"tz", required_argument, NULL, 'z'},
        {"window", required_argument, NULL, 'w'}, {"from", required_argument, NULL, 'f'},
        {"count", required_argument, NULL, 'n'},  {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *from = NULL;
    char *end;
    int ch;

    o->count = 10;
    while ((ch = getopt_long(argc, argv, "n:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'r':
            o->rule = optarg;
            break;
        case 'z':
            o->tz = optarg;
            break;
        case 'w':
            o->window = optarg;
            break;
        case 'f':
            from = optarg;
            break;
        case 'n':
            o->count = strtol(optarg, &end, 10);
            if (*end != '\0' || o->count < 1 || o->count > MAX_COUNT) {
                cli_err("--count '%s' is not a number in 1..%d", optarg, MAX_COUNT);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'j':
            o->json = 1;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc)
        o->name = argv[optind++];
    if (optind < argc) {
        cli_err("unexpected argument '%s'", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if ((o->rule && o->name) || (!o->rule && (o->tz || o->window))) {
        cli_err("give either NAME or --rule (--tz and --window need --rule)");
        return CLI_EXIT_USAGE;
    }
    o->from = time(NULL);
    if (from != NULL && ds_tz_parse_rfc3339(from, &o->from) < 0) {
        cli_err("--from '%s' is not an RFC 3339 time (2026-12-01T02:00:00+01:00)", from);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

int cmd_schedule(struct cli *cli, int argc, char **argv)
{
    struct opts o = {0};
    int rc;

    if (argc < 2 || strcmp(argv[1], "next") != 0) {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    rc = parse_opts(argc - 1, argv + 1, &o);
    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    return o.rule ? preview_rule(&o) : preview_config(cli, &o);
}

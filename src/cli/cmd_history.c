/* distsync history: the recorded sync runs and their events. */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "distsync/catalog.h"
#include "distsync/error.h"
#include "distsync/events.h"
#include "distsync/scan.h"
#include "json.h"

#define HISTORY_USAGE "usage: distsync history [--server S] [--limit N] [--events] [--json]\n"

struct history_args {
    const char *server;
    int64_t limit;
    int events;
    int json;
};

struct history {
    const struct history_args *a;
    ds_catalog_t *cat;
    struct json j;
    int nruns;
};

/* RFC 3339 UTC ("2026-11-22T02:00:48Z"); "-" for 0. */
static void fmt_time(char *buf, size_t len, int64_t s)
{
    time_t t = (time_t)s;
    struct tm tm;

    if (s == 0 || gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "-");
}

static const char *level_name(ds_log_level_t l)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};

    return (int)l >= 0 && (int)l < 4 ? names[l] : "?";
}

/* Text form of an event: path and message escaped (cli_esc). */
static void event_text(const ds_event_info_t *e, const char *at)
{
    const char *m = e->ev.message;

    printf("    %s %-7s %-7s %s%s%s lit=%" PRIu64 " copied=%" PRIu64 " wire=%" PRIu64 "%s%s\n", at,
           level_name(e->ev.level), cli_esc(e->kind), cli_esc(e->ev.path), e->ev.outcome ? " " : "",
           e->ev.outcome ? cli_esc(e->ev.outcome) : "", e->ev.bytes_literal, e->ev.bytes_copied,
           e->ev.bytes_wire, m ? ": " : "", m ? cli_esc(m) : "");
}

static int print_event(void *ctx, const ds_event_info_t *e)
{
    struct history *h = ctx;
    char at[40];

    fmt_time(at, sizeof(at), e->ev.at);
    if (!h->a->json) {
        event_text(e, at);
        return 0;
    }
    json_obj_begin(&h->j);
    json_kint(&h->j, "id", e->id);
    json_kstr(&h->j, "at", at);
    json_kint(&h->j, "at_unix", e->ev.at);
    json_kstr(&h->j, "level", level_name(e->ev.level));
    json_kstr(&h->j, "kind", e->kind);
    json_key(&h->j, "path");
    e->ev.path ? json_str(&h->j, e->ev.path) : json_null(&h->j);
    json_key(&h->j, "outcome");
    e->ev.outcome ? json_str(&h->j, e->ev.outcome) : json_null(&h->j);
    json_kuint(&h->j, "bytes_literal", e->ev.bytes_literal);
    json_kuint(&h->j, "bytes_copied", e->ev.bytes_copied);
    json_kuint(&h->j, "bytes_wire", e->ev.bytes_wire);
    json_key(&h->j, "message");
    e->ev.message ? json_str(&h->j, e->ev.message) : json_null(&h->j);
    json_obj_end(&h->j);
    return 0;
}

static void run_json(struct history *h, const ds_run_info_t *r, const char *start, const char *end)
{
    struct json *j = &h->j;

    json_kint(j, "id", r->id);
    json_kstr(j, "server", r->server);
    json_key(j, "url");
    r->url ? json_str(j, r->url) : json_null(j);
    json_kstr(j, "trigger", r->trigger);
    json_kstr(j, "started_at", start);
    json_kint(j, "started_at_unix", r->started_at);
    json_key(j, "ended_at");
    r->ended_at ? json_str(j, end) : json_null(j);
    json_key(j, "duration_s");
    r->ended_at ? json_int(j, r->ended_at - r->started_at) : json_null(j);
    json_kstr(j, "status", r->status);
    json_kstr(j, "kind", r->kind ? r->kind : "sync");
    json_kuint(j, "files_created", r->totals.files_created);
    json_kuint(j, "files_updated", r->totals.files_updated);
    json_kuint(j, "files_deleted", r->totals.files_deleted);
    json_kuint(j, "files_failed", r->totals.files_failed);
    json_kuint(j, "bytes_wire", r->totals.bytes_wire);
    json_kuint(j, "bytes_literal", r->totals.bytes_literal);
    json_kuint(j, "bytes_copied", r->totals.bytes_copied);
    json_key(j, "error");
    r->error ? json_str(j, r->error) : json_null(j);
}

static void run_text(const ds_run_info_t *r, const char *start)
{
    char dur[32], status[40];

    if (r->ended_at)
        snprintf(dur, sizeof(dur), "%" PRId64 "s", r->ended_at - r->started_at);
    else
        snprintf(dur, sizeof(dur), "-");
    /* verify and repair runs say so: "verify:drift", "repair:ok" */
    snprintf(status, sizeof(status), "%s%s%s",
             r->kind && strcmp(r->kind, "sync") != 0 ? r->kind : "",
             r->kind && strcmp(r->kind, "sync") != 0 ? ":" : "", r->status);
    printf("%-6" PRId64 " %-16s %-8s %-20s %8s %-11s %5" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64
           " %12" PRIu64 " %12" PRIu64 " %12" PRIu64 "  %s\n",
           r->id, cli_esc(r->server), cli_esc(r->trigger), start, dur, cli_esc(status),
           r->totals.files_created, r->totals.files_updated, r->totals.files_deleted,
           r->totals.files_failed, r->totals.bytes_wire, r->totals.bytes_literal,
           r->totals.bytes_copied, r->error ? cli_esc(r->error) : "");
}

static int print_run(void *ctx, const ds_run_info_t *r)
{
    struct history *h = ctx;
    char start[40], end[40];
    int rc = 0;

    fmt_time(start, sizeof(start), r->started_at);
    fmt_time(end, sizeof(end), r->ended_at);
    if (!h->a->json && h->nruns++ == 0)
        printf("%-6s %-16s %-8s %-20s %8s %-11s %-13s %12s %12s %12s  %s\n", "ID", "SERVER",
               "TRIGGER", "START", "DURATION", "STATUS", "FILES c/u/d/f", "WIRE", "LITERAL",
               "COPIED", "ERROR");
    if (!h->a->json) {
        run_text(r, start);
        return h->a->events ? ds_run_events(h->cat, r->id, print_event, h) : 0;
    }
    json_obj_begin(&h->j);
    run_json(h, r, start, end);
    if (h->a->events) {
        json_key(&h->j, "events");
        json_arr_begin(&h->j);
        rc = ds_run_events(h->cat, r->id, print_event, h);
        json_arr_end(&h->j);
    }
    json_obj_end(&h->j);
    return rc;
}

static int parse_args(int argc, char **argv, struct history_args *a)
{
    static const struct option opts[] = {
        {"server", required_argument, NULL, 's'}, {"limit", required_argument, NULL, 'n'},
        {"events", no_argument, NULL, 'e'},       {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    char *end;
    int ch;

    while ((ch = getopt_long(argc, argv, "s:n:ejh", opts, NULL)) != -1) {
        switch (ch) {
        case 's':
            a->server = optarg;
            break;
        case 'n':
            a->limit = strtoll(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || a->limit < 0) {
                cli_err("history: --limit '%s': expected a number >= 0", optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'e':
            a->events = 1;
            break;
        case 'j':
            a->json = 1;
            break;
        case 'h':
            fputs(HISTORY_USAGE, stdout);
            return -1;
        default:
            fputs(HISTORY_USAGE, stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_err("history: unexpected argument '%s'", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* Lists the runs; an absent catalog is an empty history. state: for the
 * catalog warning. */
static int list(const char *path, const char *state, const struct history_args *a)
{
    struct history h = {.a = a};
    char err[1024];
    int rc = 0;

    if (a->json) {
        json_init(&h.j, stdout);
        json_arr_begin(&h.j);
    }
    if (access(path, F_OK) == 0) {
        rc = ds_catalog_open(path, &h.cat, err, sizeof(err));
        if (rc < 0) {
            cli_err("%s", err);
            return rc;
        }
        cli_catalog_warn(h.cat, state);
        rc = ds_run_list(h.cat, a->server, a->limit, print_run, &h);
        if (rc < 0)
            cli_err("history: reading %s failed: %s", path, ds_strerror(rc));
    }
    if (a->json) {
        json_arr_end(&h.j);
        json_end(&h.j);
    } else if (h.nruns == 0 && rc == 0) {
        printf("no runs recorded%s%s\n", a->server ? " for server " : "",
               a->server ? a->server : "");
    }
    ds_catalog_free(h.cat);
    return rc;
}

int cmd_history(struct cli *cli, int argc, char **argv)
{
    struct history_args a = {0};
    ds_config_t *cfg = NULL;
    char path[PATH_MAX];
    int rc = parse_args(argc, argv, &a);

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    rc = cli_config_load(cli, &cfg);
    if (rc != 0)
        return rc;
    if (ds_catalog_path(cfg->state, path, sizeof(path)) < 0) {
        cli_err("state directory %s: path is too long", cfg->state);
        ds_config_free(cfg);
        return CLI_EXIT_USAGE;
    }
    rc = list(path, cfg->state, &a) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    ds_config_free(cfg);
    return rc;
}

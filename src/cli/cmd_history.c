/* distsync history: the recorded sync runs and their events. */
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
#include "distsync/json.h"
#include "progress.h"
#include "select.h"

#define HISTORY_USAGE                                                                              \
    "usage: distsync history [SERVER... | --site S | --all] [--limit N] [--events] [--json]\n"

struct history_args {
    const char **servers; /* only these servers' runs; NULL: every run */
    size_t nservers;
    int64_t limit;
    int events;
    int json;
};

struct history {
    const struct history_args *a;
    ds_catalog_t *cat;
    ds_json_t j;
    int nruns;
};

/* 1 when the run belongs to the selection. */
static int wanted(const struct history_args *a, const ds_run_info_t *r)
{
    for (size_t i = 0; a->servers && i < a->nservers; i++)
        if (strcmp(a->servers[i], r->server) == 0)
            return 1;
    return a->servers == NULL;
}

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
    ds_json_obj_begin(&h->j);
    ds_json_kint(&h->j, "id", e->id);
    ds_json_kstr(&h->j, "at", at);
    ds_json_kint(&h->j, "at_unix", e->ev.at);
    ds_json_kstr(&h->j, "level", level_name(e->ev.level));
    ds_json_kstr(&h->j, "kind", e->kind);
    ds_json_key(&h->j, "path");
    e->ev.path ? ds_json_str(&h->j, e->ev.path) : ds_json_null(&h->j);
    ds_json_key(&h->j, "outcome");
    e->ev.outcome ? ds_json_str(&h->j, e->ev.outcome) : ds_json_null(&h->j);
    ds_json_kuint(&h->j, "bytes_literal", e->ev.bytes_literal);
    ds_json_kuint(&h->j, "bytes_copied", e->ev.bytes_copied);
    ds_json_kuint(&h->j, "bytes_wire", e->ev.bytes_wire);
    ds_json_key(&h->j, "message");
    e->ev.message ? ds_json_str(&h->j, e->ev.message) : ds_json_null(&h->j);
    ds_json_obj_end(&h->j);
    return 0;
}

static void run_json(struct history *h, const ds_run_info_t *r, const char *start, const char *end)
{
    ds_json_t *j = &h->j;

    ds_json_kint(j, "id", r->id);
    ds_json_kstr(j, "server", r->server);
    ds_json_key(j, "url");
    r->url ? ds_json_str(j, r->url) : ds_json_null(j);
    ds_json_kstr(j, "trigger", r->trigger);
    ds_json_kstr(j, "started_at", start);
    ds_json_kint(j, "started_at_unix", r->started_at);
    ds_json_key(j, "ended_at");
    r->ended_at ? ds_json_str(j, end) : ds_json_null(j);
    ds_json_key(j, "duration_s");
    r->ended_at ? ds_json_int(j, r->ended_at - r->started_at) : ds_json_null(j);
    ds_json_kstr(j, "status", r->status);
    ds_json_kstr(j, "kind", r->kind ? r->kind : "sync");
    ds_json_kuint(j, "files_created", r->totals.files_created);
    ds_json_kuint(j, "files_updated", r->totals.files_updated);
    ds_json_kuint(j, "files_deleted", r->totals.files_deleted);
    ds_json_kuint(j, "files_failed", r->totals.files_failed);
    ds_json_kuint(j, "bytes_wire", r->totals.bytes_wire);
    ds_json_kuint(j, "bytes_literal", r->totals.bytes_literal);
    ds_json_kuint(j, "bytes_copied", r->totals.bytes_copied);
    ds_json_key(j, "error");
    r->error ? ds_json_str(j, r->error) : ds_json_null(j);
}

static void run_text(const ds_run_info_t *r, const char *start)
{
    char dur[32], status[40], w[32], l[32], c[32];

    if (r->ended_at)
        snprintf(dur, sizeof(dur), "%" PRId64 "s", r->ended_at - r->started_at);
    else
        snprintf(dur, sizeof(dur), "-");
    /* verify and repair runs say so: "verify:drift", "repair:ok" */
    snprintf(status, sizeof(status), "%s%s%s",
             r->kind && strcmp(r->kind, "sync") != 0 ? r->kind : "",
             r->kind && strcmp(r->kind, "sync") != 0 ? ":" : "", r->status);
    /* sizes in IEC units, as every command prints them; --json has bytes */
    progress_fmt_bytes(w, sizeof(w), r->totals.bytes_wire);
    progress_fmt_bytes(l, sizeof(l), r->totals.bytes_literal);
    progress_fmt_bytes(c, sizeof(c), r->totals.bytes_copied);
    printf("%-6" PRId64 " %-16s %-8s %-20s %8s %-11s %5" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64
           " %12s %12s %12s  %s\n",
           r->id, cli_esc(r->server), cli_esc(r->trigger), start, dur, cli_esc(status),
           r->totals.files_created, r->totals.files_updated, r->totals.files_deleted,
           r->totals.files_failed, w, l, c, r->error ? cli_esc(r->error) : "");
}

static int print_run(void *ctx, const ds_run_info_t *r)
{
    struct history *h = ctx;
    char start[40], end[40];
    int rc = 0;

    if (!wanted(h->a, r))
        return 0;
    if (h->a->limit > 0 && h->nruns >= h->a->limit)
        return 1; /* enough: stops the listing */
    fmt_time(start, sizeof(start), r->started_at);
    fmt_time(end, sizeof(end), r->ended_at);
    if (h->nruns++ == 0 && !h->a->json)
        printf("%-6s %-16s %-8s %-20s %8s %-11s %-13s %12s %12s %12s  %s\n", "ID", "SERVER",
               "TRIGGER", "START", "DURATION", "STATUS", "FILES c/u/d/f", "WIRE", "LITERAL",
               "COPIED", "ERROR");
    if (!h->a->json) {
        run_text(r, start);
        return h->a->events ? ds_run_events(h->cat, r->id, print_event, h) : 0;
    }
    ds_json_obj_begin(&h->j);
    run_json(h, r, start, end);
    if (h->a->events) {
        ds_json_key(&h->j, "events");
        ds_json_arr_begin(&h->j);
        rc = ds_run_events(h->cat, r->id, print_event, h);
        ds_json_arr_end(&h->j);
    }
    ds_json_obj_end(&h->j);
    return rc;
}

/* Lists the runs; an absent catalog is an empty history. state: for the
 * catalog warning. */
static int list(const char *path, const char *state, const struct history_args *a)
{
    struct history h = {.a = a};
    char err[1024];
    int rc = 0;

    if (a->json) {
        ds_json_init(&h.j, stdout);
        ds_json_arr_begin(&h.j);
    }
    if (access(path, F_OK) == 0) {
        rc = ds_catalog_open(path, &h.cat, err, sizeof(err));
        if (rc < 0) {
            cli_err("%s", err);
            return rc;
        }
        cli_catalog_warn(h.cat, state);
        rc = ds_run_list(h.cat, a->nservers == 1 ? a->servers[0] : NULL,
                         a->nservers == 1 ? a->limit : 0, print_run, &h);
        if (rc > 0)
            rc = 0; /* the limit stopped it */
        if (rc < 0)
            cli_err("history: reading %s failed: %s", path, ds_strerror(rc));
    }
    if (a->json) {
        ds_json_arr_end(&h.j);
        ds_json_end(&h.j);
    } else if (h.nruns == 0 && rc == 0) {
        printf("no runs recorded%s%s\n", a->nservers == 1 ? " for server " : "",
               a->nservers == 1 ? cli_esc(a->servers[0]) : "");
    }
    ds_catalog_free(h.cat);
    return rc;
}

/* The server names whose runs are listed: the resolved selection plus the
 * deprecated --server values, which are not checked (a server no longer
 * configured keeps its history). NULL when every run is listed. */
static int filter(const ds_config_t *cfg, const struct cli_select *sel, struct history_args *a,
                  const ds_server_cfg_t ***srv)
{
    size_t n = 0;
    int rc;

    if (sel->nclasses > 0) {
        cli_err("history: --class does not apply (a run covers every class of its server)");
        return CLI_EXIT_USAGE;
    }
    rc = cli_select_resolve("history", cfg, sel, 1, srv, &n);
    if (rc != 0 || sel->all || (sel->nnames == 0 && sel->nsites == 0))
        return rc;
    a->servers = calloc(n + sel->nlegacy + 1, sizeof(char *));
    if (a->servers == NULL) {
        cli_err("history: out of memory");
        return CLI_EXIT_FAIL;
    }
    for (size_t i = 0; i < n; i++)
        a->servers[a->nservers++] = (*srv)[i]->name;
    for (size_t i = 0; i < sel->nlegacy; i++)
        if (ds_config_server(cfg, sel->legacy[i]) == NULL)
            a->servers[a->nservers++] = sel->legacy[i];
    return 0;
}

int cmd_history(struct cli *cli, int argc, char **argv)
{
    struct history_args a = {0};
    const struct cli_flag flags[] = {
        {"limit", 'n', NULL, &a.limit, 0},
        {"events", 'e', &a.events, NULL, 0},
        {"json", 'j', &a.json, NULL, 0},
        {NULL, 0, NULL, NULL, 0},
    };
    const ds_server_cfg_t **srv = NULL;
    struct cli_select sel;
    ds_config_t *cfg = NULL;
    char path[PATH_MAX];
    int rc = cli_select_parse(HISTORY_USAGE, argc, argv, flags, &sel);

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    rc = cli_config_load(cli, &cfg);
    if (rc == 0)
        rc = filter(cfg, &sel, &a, &srv);
    if (rc != 0)
        goto out;
    if (ds_catalog_path(cfg->state, path, sizeof(path)) < 0) {
        cli_err("state directory %s: path is too long", cfg->state);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    rc = list(path, cfg->state, &a) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
out:
    free(a.servers);
    free(srv);
    ds_config_free(cfg);
    cli_select_free(&sel);
    return rc;
}

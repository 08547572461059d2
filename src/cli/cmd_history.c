/* distsync history: the recorded sync runs and their events. */
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "daemon_client.h"
#include "distsync/catalog.h"
#include "distsync/error.h"
#include "distsync/events.h"
#include "distsync/scan.h"
#include "distsync/json.h"
#include "distsync/tz.h"
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
    if (s == 0 || ds_tz_format_utc(s, buf, len) < 0)
        snprintf(buf, len, "-");
}

/* Text form of an event: path and message escaped (cli_esc). */
static void event_text(const ds_event_info_t *e, const char *at)
{
    const char *m = e->ev.message;

    printf("    %s %-7s %-7s %s%s%s lit=%" PRIu64 " copied=%" PRIu64 " wire=%" PRIu64 "%s%s\n", at,
           ds_log_level_name(e->ev.level), cli_esc(e->kind), cli_esc(e->ev.path),
           e->ev.outcome ? " " : "", e->ev.outcome ? cli_esc(e->ev.outcome) : "",
           e->ev.bytes_literal, e->ev.bytes_copied, e->ev.bytes_wire, m ? ": " : "",
           m ? cli_esc(m) : "");
}

static int print_event(void *ctx, const ds_event_info_t *e)
{
    char at[40];

    (void)ctx;
    fmt_time(at, sizeof(at), e->ev.at);
    event_text(e, at);
    return 0;
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

static void header(void)
{
    printf("%-6s %-16s %-8s %-20s %8s %-11s %-13s %12s %12s %12s  %s\n", "ID", "SERVER", "TRIGGER",
           "START", "DURATION", "STATUS", "FILES c/u/d/f", "WIRE", "LITERAL", "COPIED", "ERROR");
}

static int print_run(void *ctx, const ds_run_info_t *r)
{
    struct history *h = ctx;
    char start[40];

    if (!wanted(h->a, r))
        return 0;
    if (h->a->limit > 0 && h->nruns >= h->a->limit)
        return 1; /* enough: stops the listing */
    fmt_time(start, sizeof(start), r->started_at);
    if (h->nruns++ == 0)
        header();
    run_text(r, start);
    return h->a->events ? ds_run_events(h->cat, r->id, print_event, h) : 0;
}

/* Lists the runs; an absent catalog is an empty history. state: for the
 * catalog warning. */
static int list(const char *path, const char *state, const struct history_args *a)
{
    struct history h = {.a = a};
    char err[1024];
    int rc = 0;

    if (access(path, F_OK) == 0) {
        rc = ds_catalog_open(path, &h.cat, err, sizeof(err));
        if (rc < 0) {
            cli_err("%s", err);
            return rc;
        }
        cli_catalog_warn(h.cat, state);
    }
    if (a->json) { /* the daemon's GET /v1/history writes the same */
        ds_json_init(&h.j, stdout);
        rc = ds_history_json(&h.j, h.cat, a->servers, a->nservers, a->limit, a->events);
        ds_json_end(&h.j);
    } else if (h.cat != NULL) {
        rc = ds_run_list(h.cat, a->nservers == 1 ? a->servers[0] : NULL,
                         a->nservers == 1 ? a->limit : 0, print_run, &h);
        if (rc > 0)
            rc = 0; /* the limit stopped it */
    }
    if (rc < 0)
        cli_err("history: reading %s failed: %s", path, ds_strerror(rc));
    else if (!a->json && h.nruns == 0)
        printf("no runs recorded%s%s\n", a->nservers == 1 ? " for server " : "",
               a->nservers == 1 ? cli_esc(a->servers[0]) : "");
    ds_catalog_free(h.cat);
    return rc;
}

/* ---- through a running daemon (GET /v1/history) ---- */

static uint64_t unum(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static int64_t inum(const json_t *o, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(o, key));
}

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static ds_log_level_t level_of(const char *s)
{
    for (int l = 0; s != NULL && l < 4; l++)
        if (strcmp(s, ds_log_level_name((ds_log_level_t)l)) == 0)
            return (ds_log_level_t)l;
    return (ds_log_level_t)-1;
}

static void event_of(const json_t *e)
{
    ds_event_info_t ei = {0};

    ei.id = inum(e, "id");
    ei.kind = jstr(e, "kind");
    ei.ev.at = inum(e, "at_unix");
    ei.ev.level = level_of(jstr(e, "level"));
    ei.ev.path = jstr(e, "path");
    ei.ev.outcome = jstr(e, "outcome");
    ei.ev.message = jstr(e, "message");
    ei.ev.bytes_literal = unum(e, "bytes_literal");
    ei.ev.bytes_copied = unum(e, "bytes_copied");
    ei.ev.bytes_wire = unum(e, "bytes_wire");
    event_text(&ei, jstr(e, "at"));
}

/* The text lines of the runs of a history --json document. */
static void text_of(const json_t *runs)
{
    const json_t *r, *e;
    size_t i, k;

    json_array_foreach(runs, i, r)
    {
        ds_run_info_t ri = {0};

        ri.id = inum(r, "id");
        ri.server = jstr(r, "server");
        ri.trigger = jstr(r, "trigger");
        ri.started_at = inum(r, "started_at_unix");
        ri.ended_at = json_is_integer(json_object_get(r, "duration_s"))
                          ? ri.started_at + inum(r, "duration_s")
                          : 0;
        ri.status = jstr(r, "status");
        ri.kind = jstr(r, "kind");
        ri.error = jstr(r, "error");
        ri.totals.files_created = unum(r, "files_created");
        ri.totals.files_updated = unum(r, "files_updated");
        ri.totals.files_deleted = unum(r, "files_deleted");
        ri.totals.files_failed = unum(r, "files_failed");
        ri.totals.bytes_wire = unum(r, "bytes_wire");
        ri.totals.bytes_literal = unum(r, "bytes_literal");
        ri.totals.bytes_copied = unum(r, "bytes_copied");
        if (i == 0)
            header();
        run_text(&ri, jstr(r, "started_at"));
        json_array_foreach(json_object_get(r, "events"), k, e) event_of(e);
    }
}

/* history through the daemon: the same lines and JSON. */
static int list_daemon(const ds_config_t *cfg, const struct history_args *a)
{
    char path[8192], *raw = NULL;
    json_t *reply = NULL;
    size_t k = (size_t)snprintf(path, sizeof(path), "/v1/history?limit=%lld&events=%d",
                                (long long)a->limit, a->events ? 1 : 0);
    long status;
    int rc = 0;

    for (size_t i = 0; i < a->nservers && k < sizeof(path); i++) {
        char *e = cli_daemon_escape(a->servers[i]);

        k += (size_t)snprintf(path + k, sizeof(path) - k, "%s%s",
                              i ? "%2C" : "&servers=", e ? e : "");
        free(e);
    }
    if (k >= sizeof(path)) {
        cli_err("history: too many servers for one request to the daemon");
        return -1;
    }
    status = cli_daemon_get_raw(cfg, path, &reply, &raw);
    if (status != 200 || !json_is_array(reply)) {
        if (status != 0)
            cli_err("history: %s", cli_esc(cli_daemon_error(reply, status)));
        rc = -1;
    } else if (a->json) {
        fputs(raw, stdout);
    } else if (json_array_size(reply) == 0) {
        printf("no runs recorded%s%s\n", a->nservers == 1 ? " for server " : "",
               a->nservers == 1 ? cli_esc(a->servers[0]) : "");
    } else {
        text_of(reply);
    }
    json_decref(reply);
    free(raw);
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
        {"limit", 'n', NULL, &a.limit, 0, NULL},
        {"events", 'e', &a.events, NULL, 0, NULL},
        {"json", 'j', &a.json, NULL, 0, NULL},
        {NULL, 0, NULL, NULL, 0, NULL},
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
    if (cli_daemon_up(cfg))
        rc = list_daemon(cfg, &a) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    else
        rc = list(path, cfg->state, &a) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
out:
    free(a.servers);
    free(srv);
    ds_config_free(cfg);
    cli_select_free(&sel);
    return rc;
}

/*
 * distsync sync through the running daemon: the servers go to the daemon
 * as a run-now (POST /v1/run-now), which it queues behind a run in
 * progress, so a scheduled run and this sync never write one server at
 * once; this command then follows the run (GET /v1/runs/ID) and prints
 * what a standalone sync prints, from the same per-server results (the
 * same lines, the same --json). SIGINT or SIGTERM cancels the run
 * (POST /v1/runs/ID/cancel) and waits for it to wind down.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon_client.h"
#include "distsync/report.h"
#include "distsync/tz.h"
#include "sync_cli.h"

#define POLL_US 200000

static uint64_t num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

/* A server's result from its "rc" and "report" (ds_report_result_json's
 * keys). Returns 0, or -1 when the run has none for it. */
static int result_of(const json_t *s, ds_sync_result_t *r)
{
    const json_t *rep = json_object_get(s, "report"), *rc = json_object_get(s, "rc");
    const char *err = json_string_value(json_object_get(rep, "error"));

    memset(r, 0, sizeof(*r));
    if (!json_is_object(rep) || !json_is_integer(rc))
        return -1;
    r->rc = (int)json_integer_value(rc);
    snprintf(r->error, sizeof(r->error), "%s", err ? err : "");
    r->created = num(rep, "created");
    r->adopted = num(rep, "adopted");
    r->updated = num(rep, "updated") - r->adopted;
    r->deleted = num(rep, "deleted");
    r->failed_files = num(rep, "failed_files");
    r->bytes_wire = num(rep, "bytes_wire");
    r->bytes_received = num(rep, "bytes_received");
    r->bytes_literal = num(rep, "bytes_literal");
    r->bytes_copied = num(rep, "bytes_copied");
    r->quick_deltas = num(rep, "quick_deltas");
    r->bytes_target = num(rep, "bytes_target");
    r->elapsed_s = json_number_value(json_object_get(rep, "elapsed_s"));
    return 0;
}

/* The run-now's body: the servers and, with --class, the classes; with
 * --as-of, "as_of" (RFC 3339, UTC, or "scan:GEN"). */
static char *request(const ds_server_cfg_t **srv, size_t n, const ds_strlist_t *only,
                     const struct sync_as_of *as_of)
{
    json_t *o = json_object(), *sv = json_array(), *cl = only ? json_array() : NULL;
    char *text = NULL;

    if (o == NULL || sv == NULL || (only && cl == NULL))
        goto out;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(sv, json_string(srv[i]->name));
    for (size_t i = 0; only && i < only->n; i++)
        json_array_append_new(cl, json_string(only->v[i]));
    json_object_set(o, "servers", sv);
    if (cl != NULL)
        json_object_set(o, "classes", cl);
    if (as_of->gen != 0) {
        char gen[32];

        snprintf(gen, sizeof(gen), "scan:%lld", (long long)as_of->gen);
        json_object_set_new(o, "as_of", json_string(gen));
    } else if (as_of->t != 0) {
        char when[32];

        if (ds_tz_format_utc(as_of->t, when, sizeof(when)) < 0)
            goto out;
        json_object_set_new(o, "as_of", json_string(when));
    }
    text = json_dumps(o, JSON_COMPACT);
out:
    json_decref(cl);
    json_decref(sv);
    json_decref(o);
    return text;
}

/* Follows run id until it ended; cancels it on a signal. Returns the
 * ended run (json_decref it), or NULL after saying why. */
static json_t *follow(const ds_config_t *cfg, const char *id)
{
    char path[1024], *esc = cli_daemon_escape(id);
    int cancelled = 0;
    json_t *run = NULL;

    snprintf(path, sizeof(path), "/v1/runs/%s", esc ? esc : "");
    for (;;) {
        long status;
        const char *st;

        if (sync_cli_cancelled() && !cancelled) {
            char cpath[1100];
            json_t *r = NULL;

            snprintf(cpath, sizeof(cpath), "%s/cancel", path);
            (void)cli_daemon_call(cfg, "POST", cpath, NULL, &r);
            json_decref(r);
            cancelled = 1;
        }
        json_decref(run);
        run = NULL;
        status = cli_daemon_call(cfg, "GET", path, NULL, &run);
        if (status != 200) {
            if (status != 0)
                cli_err("sync: run %s: %s", cli_esc(id), cli_esc(cli_daemon_error(run, status)));
            json_decref(run);
            run = NULL;
            break;
        }
        st = json_string_value(json_object_get(run, "state"));
        if (st != NULL && strcmp(st, "queued") != 0 && strcmp(st, "running") != 0)
            break;
        usleep(POLL_US);
    }
    free(esc);
    return run;
}

/* Prints the ended run's results as a standalone sync would; returns the
 * exit status. */
static int report(const struct cli *cli, const json_t *run, const ds_server_cfg_t **srv, size_t n,
                  int json)
{
    const json_t *servers = json_object_get(run, "servers"), *dl = json_object_get(run, "deltas");
    int nfail = 0, nheld = 0, nbusy = 0, nres = 0;
    char failed[2048] = "";
    ds_json_t j;

    if (json) {
        ds_json_init(&j, stdout);
        ds_json_obj_begin(&j);
        ds_json_key(&j, "servers");
        ds_json_arr_begin(&j);
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *s = NULL, *x;
        ds_sync_result_t r;
        size_t k;
        int unstarted;

        json_array_foreach(servers, k, x)
        {
            const char *name = json_string_value(json_object_get(x, "server"));

            if (name != NULL && strcmp(name, srv[i]->name) == 0)
                s = x;
        }
        if (s == NULL || result_of(s, &r) < 0)
            continue; /* the run ended before it (the reason follows) */
        nres++;
        unstarted = r.rc == -ECANCELED && strstr(r.error, "before it started") != NULL;
        nheld += r.rc == DS_EHELD;
        nbusy += r.rc == DS_ELEASE;
        if (r.rc == DS_ELEASE)
            cli_err("%s", r.error);
        if (r.rc < 0 && r.rc != DS_EHELD && r.rc != DS_ELEASE && r.rc != DS_EFROZEN && !unstarted) {
            nfail++;
            snprintf(failed + strlen(failed), sizeof(failed) - strlen(failed), "%s%s",
                     nfail > 1 ? ", " : "", srv[i]->name);
        }
        if (json)
            ds_report_result_json(&j, srv[i]->name, &r);
        else
            sync_cli_summary(cli, srv[i]->name, &r);
    }
    if (json) {
        ds_json_arr_end(&j);
        ds_json_key(&j, "deltas");
        ds_json_obj_begin(&j);
        ds_json_kuint(&j, "computed", num(dl, "computed"));
        ds_json_kuint(&j, "cached", num(dl, "cached"));
        ds_json_kuint(&j, "relevelled", num(dl, "relevelled"));
        ds_json_obj_end(&j);
        ds_json_obj_end(&j);
        ds_json_end(&j);
    }
    fflush(stdout);
    if (nres < (int)n) {
        const char *why = json_string_value(json_object_get(run, "reason"));

        cli_err("sync: the daemon's run %s ended %s%s%s",
                cli_esc(json_string_value(json_object_get(run, "id"))),
                json_string_value(json_object_get(run, "state")), why ? ": " : "",
                why ? cli_esc(why) : "");
        return sync_cli_cancelled() ? sync_cli_cancelled() : CLI_EXIT_FAIL;
    }
    if (nfail > 0)
        cli_err("%d of %zu server%s failed: %s", nfail, n, n == 1 ? "" : "s", failed);
    if (nbusy > 0)
        cli_err("%d of %zu server%s busy (another console holds the lease; --wait waits for it)",
                nbusy, n, n == 1 ? "" : "s");
    if (sync_cli_cancelled()) {
        cli_err("sync cancelled by a signal: the daemon's run was cancelled, what was published "
                "is recorded");
        return sync_cli_cancelled();
    }
    return nfail > 0   ? CLI_EXIT_SERVER
           : nbusy > 0 ? CLI_EXIT_BUSY
           : nheld > 0 ? CLI_EXIT_HELD
                       : CLI_EXIT_OK;
}

int sync_cli_daemon(struct cli *cli, const ds_config_t *cfg, const ds_server_cfg_t **srv, size_t n,
                    const ds_strlist_t *only, int json, const struct sync_as_of *as_of)
{
    char *body = request(srv, n, only, as_of);
    json_t *reply = NULL, *run = NULL;
    const char *id;
    long status;
    int rc = CLI_EXIT_FAIL;

    if (body == NULL) {
        cli_err("sync: out of memory");
        return CLI_EXIT_FAIL;
    }
    status = cli_daemon_call(cfg, "POST", "/v1/run-now", body, &reply);
    id = json_string_value(json_object_get(reply, "id"));
    if (status != 202 || id == NULL) {
        if (status != 0)
            cli_err("sync: the daemon refused the run: %s",
                    cli_esc(cli_daemon_error(reply, status)));
        goto out;
    }
    if (!cli->quiet)
        cli_err("sync: run %s through the daemon (distsync runs shows it; Ctrl-C cancels it)",
                cli_esc(id));
    run = follow(cfg, id);
    if (run != NULL)
        rc = report(cli, run, srv, n, json);
out:
    json_decref(run);
    json_decref(reply);
    free(body);
    return rc;
}

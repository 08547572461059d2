/*
 * The API's POST handlers: run-now, cancel, freeze and thaw, reload.
 * Bodies are JSON objects parsed with jansson; every field is checked
 * (type, known names) before anything changes, so a bad request is a 4xx
 * that says what is wrong and changes nothing.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_int.h"
#include "distsync/freeze.h"
#include "distsync/log.h"
#include "distsync/schedule.h"
#include "distsync/tz.h"

/* The request's servers: "servers", the servers of "sites", or every one
 * with "all": true, in the configuration's order. */
struct pick {
    const ds_server_cfg_t **srv;
    size_t n;
    ds_strlist_t classes;
    char until[128], reason[512];
};

/* Field key of o: absent, or an array of strings (each checked by
 * known(cfg, name) when known is set). Returns 0 or -1 after replying. */
static int names(const json_t *o, const char *key, const ds_config_t *cfg,
                 int (*known)(const ds_config_t *, const char *), const char *what,
                 struct api_res *rs)
{
    const json_t *a = json_object_get(o, key), *v;
    size_t i;

    if (a == NULL)
        return 0;
    if (!json_is_array(a)) {
        ds__api_error(rs, 400, "%s: expected an array of names", key);
        return -1;
    }
    json_array_foreach(a, i, v)
    {
        if (!json_is_string(v)) {
            ds__api_error(rs, 400, "%s[%zu]: expected a string", key, i);
            return -1;
        }
        if (known != NULL && !known(cfg, json_string_value(v))) {
            ds__api_error(rs, 400,
                          "%s[%zu]: unknown %s '%s' (not in %s as the daemon last loaded it; "
                          "after an edit, reload the daemon: SIGHUP or POST /v1/reload)",
                          key, i, what, json_string_value(v), cfg->path);
            return -1;
        }
    }
    return 0;
}

static int known_server(const ds_config_t *cfg, const char *name)
{
    return ds_config_server(cfg, name) != NULL;
}

static int known_site(const ds_config_t *cfg, const char *name)
{
    return ds_config_site(cfg, name) != NULL;
}

static int known_class(const ds_config_t *cfg, const char *name)
{
    return ds_config_list_has(&cfg->classes, name);
}

static int in_array(const json_t *a, const char *name)
{
    const json_t *v;
    size_t i;

    json_array_foreach(a, i, v)
    {
        if (strcmp(json_string_value(v), name) == 0)
            return 1;
    }
    return 0;
}

/* An optional string field of at most len - 1 bytes into buf. */
static int str_field(const json_t *o, const char *key, char *buf, size_t len, struct api_res *rs)
{
    const json_t *v = json_object_get(o, key);

    buf[0] = '\0';
    if (v == NULL)
        return 0;
    if (!json_is_string(v) || json_string_length(v) >= len ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        ds__api_error(rs, 400, "%s: expected a string of at most %zu bytes", key, len - 1);
        return -1;
    }
    memcpy(buf, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static void pick_free(struct pick *p)
{
    free(p->srv);
    for (size_t i = 0; i < p->classes.n; i++)
        free(p->classes.v[i]);
    free(p->classes.v);
}

/* Resolves servers/sites/all (and classes) of o into p. Returns 0 or -1
 * after replying. */
static int pick(ds_daemon_t *d, const json_t *o, struct pick *p, struct api_res *rs)
{
    const ds_config_t *cfg = d->cfg;
    const json_t *all = json_object_get(o, "all"), *sv = json_object_get(o, "servers"),
                 *st = json_object_get(o, "sites"), *cl = json_object_get(o, "classes"), *v;
    size_t i;

    memset(p, 0, sizeof(*p));
    if (names(o, "servers", cfg, known_server, "server", rs) < 0 ||
        names(o, "sites", cfg, known_site, "site", rs) < 0 ||
        names(o, "classes", cfg, known_class, "class", rs) < 0)
        return -1;
    if (all != NULL && !json_is_boolean(all)) {
        ds__api_error(rs, 400, "all: expected true or false");
        return -1;
    }
    if (json_is_true(all) && (json_array_size(sv) > 0 || json_array_size(st) > 0)) {
        ds__api_error(rs, 400, "all: takes no servers or sites");
        return -1;
    }
    if (!json_is_true(all) && json_array_size(sv) == 0 && json_array_size(st) == 0) {
        ds__api_error(rs, 400, "name servers, sites, or \"all\": true");
        return -1;
    }
    p->srv = calloc(cfg->nservers + 1, sizeof(*p->srv));
    p->classes.v = calloc(json_array_size(cl) + 1, sizeof(char *));
    if (p->srv == NULL || p->classes.v == NULL)
        goto oom;
    for (i = 0; i < cfg->nservers; i++) {
        const ds_server_cfg_t *s = &cfg->servers[i];

        if (json_is_true(all) || (sv && in_array(sv, s->name)) ||
            (st && s->site && in_array(st, s->site)))
            p->srv[p->n++] = s;
    }
    json_array_foreach(cl, i, v)
    {
        if ((p->classes.v[p->classes.n] = strdup(json_string_value(v))) == NULL)
            goto oom;
        p->classes.n++;
    }
    if (p->n == 0) {
        ds__api_error(rs, 400, "no server selected (the sites named have no servers)");
        pick_free(p);
        return -1;
    }
    return 0;
oom:
    ds__api_error(rs, 500, "out of memory");
    pick_free(p);
    return -1;
}

/* The run-now's "as_of" (RFC 3339, not in the future) into *t, or
 * "scan:GEN" into *gen (both 0: none). Returns 0 or -1 with rs a 400. */
static int as_of(ds_daemon_t *d, const json_t *o, int64_t *t, int64_t *gen, struct api_res *rs)
{
    const json_t *v = json_object_get(o, "as_of");
    int g = 0;

    *t = *gen = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v) || (g = ds_sync_gen_parse(json_string_value(v), gen)) < 0 ||
        (g == 0 && ds_tz_parse_rfc3339(json_string_value(v), t) < 0)) {
        ds__api_error(rs, 400,
                      "'as_of': expected an RFC 3339 time (2026-03-11T00:00:00Z) or a scan "
                      "generation (\"scan:42\"; GET /v1/scans lists them)");
        return -1;
    }
    if (g > 0)
        return 0;
    if (*t > ds_daemon_now(d)) {
        ds__api_error(rs, 400, "'as_of' %s is in the future (the store as of then is not known)",
                      json_string_value(v));
        return -1;
    }
    return 0;
}

void ds__api_run_now(ds_daemon_t *d, const struct api_req *rq, struct api_res *rs)
{
    static const char *const keys[] = {"servers", "sites", "all", "classes", "as_of", NULL};
    json_t *o = ds__api_body_object(rq, keys, rs);
    const char **nm = NULL;
    char id[96], when[64];
    struct drun *r = NULL;
    struct api_out out;
    struct pick p;
    int64_t t, gen;

    if (o == NULL || as_of(d, o, &t, &gen, rs) < 0 || pick(d, o, &p, rs) < 0)
        goto out0;
    if (ds__drun_nqueued(d) >= DS_DAEMON_RUNS_QUEUE) {
        ds__api_error(rs, 429, "%d runs are queued already; try again when they ran",
                      DS_DAEMON_RUNS_QUEUE);
        goto out;
    }
    nm = calloc(p.n + 1, sizeof(*nm));
    for (size_t i = 0; nm != NULL && i < p.n; i++)
        nm[i] = p.srv[i]->name;
    ds__daemon_iso(ds_daemon_now(d), when, sizeof(when));
    snprintf(id, sizeof(id), "now-%u@%s", ++d->seq, when);
    r = nm ? ds__drun_add(d, id, "manual", "queued", nm, p.n) : NULL;
    if (r == NULL || ds__api_begin(&out) < 0) {
        if (r != NULL)
            ds__drun_end(d, r, "failed", "out of memory");
        ds__api_error(rs, 500, "out of memory");
        goto out;
    }
    r->classes = p.classes; /* the run owns them now */
    p.classes = (ds_strlist_t){0};
    r->as_of = t;
    r->as_of_gen = gen;
    ds_log(DS_LOG_INFO, "run %s: queued through the API (%zu server%s)", id, p.n,
           p.n == 1 ? "" : "s");
    ds_engine_wake(d->eng); /* a daemon waiting for a fire starts it now */
    ds__drun_json(&out.j, d, r);
    ds__api_end(&out, rs, 202);
out:
    free(nm);
    pick_free(&p);
out0:
    json_decref(o);
}

void ds__api_cancel(ds_daemon_t *d, const char *id, struct api_res *rs)
{
    struct drun *r = ds__drun_find(d, id);
    struct api_out out;
    int status = 200;

    if (r == NULL) {
        ds__api_error(rs, 404, "no run '%s'", id);
        return;
    }
    if (strcmp(r->state, "queued") == 0) {
        ds__drun_end(d, r, "cancelled", "cancelled through the API before it started");
        ds_log(DS_LOG_INFO, "run %s: cancelled before it started", r->id);
    } else if (strcmp(r->state, "running") == 0) {
        if (!r->cancel)
            ds_log(DS_LOG_INFO, "run %s: cancelling through the API", r->id);
        r->cancel = 1;
        ds_engine_cancel(d->eng); /* its servers wind down */
        status = 202;
    } else {
        ds__api_error(rs, 409, "run '%s' already ended (%s)", id, r->state);
        return;
    }
    if (ds__api_begin(&out) < 0) {
        ds__api_error(rs, 500, "out of memory");
        return;
    }
    ds__drun_json(&out.j, d, r);
    ds__api_end(&out, rs, status);
}

/* Freezes are read by the engine (and the CLI) on the real clock, also
 * under the test clock. */
static int64_t freeze_now(void)
{
    return (int64_t)time(NULL);
}

/* until: RFC 3339 (in the future) or a duration from now ("" : none). */
static int parse_until(ds_daemon_t *d, const char *s, int64_t *until, struct api_res *rs)
{
    char err[256];
    int64_t secs;

    *until = 0;
    if (s[0] == '\0')
        return 0;
    if (ds_tz_parse_rfc3339(s, until) == 0) {
        if (*until > freeze_now())
            return 0;
        ds__api_error(rs, 400, "until: '%s' is in the past", s);
        return -1;
    }
    if (ds_schedule_parse_window(s, &secs, err, sizeof(err)) == 0) {
        *until = freeze_now() + secs;
        return 0;
    }
    ds__api_error(rs, 400,
                  "until: expected an RFC 3339 time (2026-12-01T02:00:00+01:00) or a duration "
                  "from now (90m, 4h, 2d), got '%s'",
                  s);
    return -1;
}

/* Applies the freeze or thaw to every picked server; the reply lists
 * them ({"frozen": [...]} or {"thawed": [...], "not_frozen": [...]}). */
static void apply(ds_daemon_t *d, const struct pick *p, int thaw, int64_t until, struct api_res *rs)
{
    ds_catalog_t *cat = ds_sync_catalog(d->o.sync);
    char *was = calloc(p->n + 1, 1); /* 1: frozen (thaw: was frozen) */
    struct api_out out;
    int rc = was ? 0 : DS_ENOMEM;

    for (size_t i = 0; i < p->n && rc == 0; i++) {
        const char *name = p->srv[i]->name;

        rc = thaw ? ds_freeze_del(cat, name)
                  : ds_freeze_put(cat, name, until, p->reason[0] ? p->reason : NULL, freeze_now());
        was[i] = rc == 0;
        if (rc == DS_ENOTFOUND)
            rc = 0;
        else if (rc == 0)
            ds_log(DS_LOG_INFO, "server %s: %s through the API", name, thaw ? "thawed" : "frozen");
    }
    if (rc < 0 || ds__api_begin(&out) < 0) {
        ds__api_error(rs, 500, "%s", rc < 0 ? ds_strerror(rc) : "out of memory");
        free(was);
        return;
    }
    ds_json_obj_begin(&out.j);
    for (int pass = 0; pass < (thaw ? 2 : 1); pass++) {
        ds_json_key(&out.j, !thaw ? "frozen" : pass == 0 ? "thawed" : "not_frozen");
        ds_json_arr_begin(&out.j);
        for (size_t i = 0; i < p->n; i++)
            if (was[i] == (pass == 0))
                ds_json_str(&out.j, p->srv[i]->name);
        ds_json_arr_end(&out.j);
    }
    ds_json_obj_end(&out.j);
    ds__api_end(&out, rs, 200);
    free(was);
}

void ds__api_freeze(ds_daemon_t *d, const struct api_req *rq, int thaw, struct api_res *rs)
{
    static const char *const fkeys[] = {"servers", "sites", "until", "reason", NULL};
    static const char *const tkeys[] = {"servers", "sites", "all", NULL};
    json_t *o = ds__api_body_object(rq, thaw ? tkeys : fkeys, rs);
    int64_t until = 0;
    struct pick p;

    if (o == NULL)
        return;
    if (!thaw && json_object_get(o, "all") != NULL) {
        ds__api_error(rs, 400, "all: freeze names its servers or sites");
        json_decref(o);
        return;
    }
    if (pick(d, o, &p, rs) < 0) {
        json_decref(o);
        return;
    }
    if (str_field(o, "until", p.until, sizeof(p.until), rs) == 0 &&
        str_field(o, "reason", p.reason, sizeof(p.reason), rs) == 0 &&
        parse_until(d, p.until, &until, rs) == 0)
        apply(d, &p, thaw, until, rs);
    pick_free(&p);
    json_decref(o);
}

void ds__api_reload(ds_daemon_t *d, const struct api_req *rq, struct api_res *rs)
{
    static const char *const keys[] = {NULL};
    json_t *o = ds__api_body_object(rq, keys, rs);
    ds_config_t *cfg = NULL;
    struct api_out out;
    char err[1024];

    if (o == NULL)
        return;
    json_decref(o);
    /* checked here so the reply can say what is wrong; the engine's reload
     * (as SIGHUP's) applies it on the loop */
    if (ds_config_load(d->o.config_path, &cfg, err, sizeof(err)) < 0) {
        ds__api_error(rs, 422, "%s; the configuration stays as it was", err);
        return;
    }
    ds_config_free(cfg);
    ds_daemon_reload(d);
    if (ds__api_begin(&out) < 0) {
        ds__api_error(rs, 500, "out of memory");
        return;
    }
    ds_json_obj_begin(&out.j);
    ds_json_kstr(&out.j, "reload", d->o.config_path);
    ds_json_obj_end(&out.j);
    ds__api_end(&out, rs, 202);
}

/*
 * The upgrade gate's API (issue 14, README "The upgrade gate's API"):
 *
 *   POST /v1/upgrade/request   {"client","product","version","site"?}
 *   POST /v1/upgrade/heartbeat {"token","client"?}
 *   POST /v1/upgrade/report    {"token","outcome","version","detail"?,"client"?}
 *   POST /v1/upgrade/priority  {"client"}           (operator token)
 *   GET  /v1/rollouts, /v1/rollouts/NAME            (operator token)
 *
 * The gate (distsync/gate.h) is built on the first request over the
 * daemon's configuration and the catalog's gate state, and rebuilt after a
 * reload or a failed flush. Each request is one batch: the servers' facts
 * are refreshed from the catalog (at most once a second), the rollouts'
 * control rows reloaded (the CLI's pause/resume/promote), the decision made
 * and flushed before the reply, so an answer a client saw is durable. A bad
 * request is a 4xx {"error"} and changes nothing (checked before the gate
 * is called; the gate itself changes nothing on an error).
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "distsync/gate.h"
#include "distsync/log.h"

#define GATE_TOKEN_MAX  512
#define GATE_REFRESH_MS 1000

struct ds_dgate {
    const ds_config_t *cfg; /* the gate's configuration (the engine keeps every one) */
    ds_gate_t *g;
    ds_catalog_t *cat;
    int64_t refreshed_ms;
    int in_batch;                   /* a batch is open: its writes are not committed yet */
    uint64_t decisions, commits;    /* POSTs answered, batches committed (GET /v1/rollouts) */
    char (*tokens)[GATE_TOKEN_MAX]; /* each rollout's enrolment token ("" when unreadable) */
    size_t ntokens;
};

void ds__api_gate_free(ds_daemon_t *d)
{
    struct ds_dgate *dg = d->gate;

    if (dg == NULL)
        return;
    if (dg->in_batch)
        d->gate_epoch++; /* its decisions are dropped: their replies must not go */
    ds_gate_free(dg->g);
    ds_catalog_free(dg->cat);
    if (dg->tokens != NULL)
        explicit_bzero(dg->tokens, dg->ntokens * sizeof(*dg->tokens));
    free(dg->tokens);
    free(dg);
    d->gate = NULL;
}

/* The gate over d's configuration, (re)built when needed. Returns it, or
 * NULL after replying 503. */
static struct ds_dgate *gate(ds_daemon_t *d, struct api_res *rs)
{
    struct ds_dgate *dg = d->gate;
    char path[PATH_MAX], err[1024];
    ds_gate_state_t st;
    int64_t now = ds_daemon_now(d);

    if (dg != NULL && dg->cfg == d->cfg)
        return dg;
    if (dg != NULL)
        (void)ds__api_gate_commit(d); /* a reload: the open batch is answered first */
    ds__api_gate_free(d);
    if (d->cfg->nrollouts == 0) {
        ds__api_error(rs, 404, "no rollout is configured ([rollout NAME] in %s)", d->cfg->path);
        return NULL;
    }
    dg = calloc(1, sizeof(*dg));
    if (dg == NULL || (dg->tokens = calloc(d->cfg->nrollouts, sizeof(*dg->tokens))) == NULL) {
        free(dg);
        ds__api_error(rs, 503, "out of memory");
        return NULL;
    }
    dg->cfg = d->cfg;
    dg->ntokens = d->cfg->nrollouts;
    d->gate = dg;
    for (size_t i = 0; i < d->cfg->nrollouts; i++)
        if (ds_config_rollout_token(&d->cfg->rollouts[i], dg->tokens[i], GATE_TOKEN_MAX, err,
                                    sizeof(err)) < 0) {
            dg->tokens[i][0] = '\0';
            ds_log(DS_LOG_WARN, "daemon: gate: %s", err);
        }
    if (ds_catalog_path(d->cfg->state, path, sizeof(path)) < 0) {
        snprintf(err, sizeof(err), "state directory %s: path is too long", d->cfg->state);
        goto fail;
    }
    if (ds_gate_state_sqlite(path, &st, err, sizeof(err)) < 0)
        goto fail;
    if (ds_gate_new(d->cfg, &st, now, &dg->g, err, sizeof(err)) < 0 ||
        ds_catalog_open(path, &dg->cat, err, sizeof(err)) < 0)
        goto fail;
    return dg;
fail:
    ds_log(DS_LOG_ERROR, "daemon: gate: %s", err);
    ds__api_error(rs, 503, "the upgrade gate is unavailable: %s", err);
    ds__api_gate_free(d);
    return NULL;
}

/* One POST: what, with its fields (kind selects the gate call). */
enum op { OP_REQUEST, OP_HEARTBEAT, OP_REPORT, OP_PRIORITY };

/* Whether tok[0, len) is rollout i's enrolment token (constant time). */
static int token_is(const struct ds_dgate *dg, size_t i, const char *tok, size_t len)
{
    const char *t = dg->tokens[i];
    size_t tl = strlen(t);
    unsigned char diff = (unsigned char)(tl != len || tl == 0);

    for (size_t k = 0; k < tl && k < len; k++)
        diff |= (unsigned char)(t[k] ^ tok[k]);
    return diff == 0;
}

int ds__api_gate_token_ok(ds_daemon_t *d, const char *tok, size_t len)
{
    struct api_res rs = {0};
    struct ds_dgate *dg = gate(d, &rs);
    int ok = 0;

    free(rs.body);
    if (dg == NULL)
        return 0;
    for (size_t i = 0; i < dg->cfg->nrollouts; i++)
        ok |= token_is(dg, i, tok, len);
    return ok;
}

/* A client's call about rollout ri (< 0: unknown, the gate says so) must
 * carry that rollout's enrolment token: another rollout's token is
 * refused (403), changing nothing. Over the Unix socket (no bearer) any
 * rollout goes. Returns 0, or -1 after replying 403. */
static int bearer_for(const struct ds_dgate *dg, const struct api_req *rq, int ri,
                      struct api_res *rs)
{
    const ds_rollout_cfg_t *r;

    if (rq->bearer == NULL || ri < 0 || token_is(dg, (size_t)ri, rq->bearer, rq->bearer_len))
        return 0;
    r = &dg->cfg->rollouts[ri];
    ds__api_error(rs, 403,
                  "the enrolment token is not rollout %s's (product %s, token_file %s): a "
                  "rollout's clients use its own token",
                  r->name, r->product, r->token_file ? r->token_file : "unset");
    return -1;
}

/* The rollout a client's call is about: its product's (request) or its
 * grant's (heartbeat, report), -1 when unknown. */
static int call_rollout(const struct ds_dgate *dg, enum op op, const json_t *o)
{
    const json_t *v = json_object_get(o, op == OP_REQUEST ? "product" : "token");
    const char *s = v ? json_string_value(v) : NULL;
    int ri = op == OP_REQUEST ? ds_gate_product_rollout(dg->g, s) : ds_gate_token_rollout(dg->g, s);

    return ri < 0 ? -1 : ri;
}

/* Joins the open batch, or starts one: the servers' facts (at most once a
 * second) and the control rows (once per batch). Returns 0 or -1 after
 * replying 503. */
static int batch_begin(ds_daemon_t *d, struct ds_dgate *dg, struct api_res *rs)
{
    int64_t ms = ds__daemon_mono_ms();
    int rc = 0;

    if (dg->in_batch)
        return 0;
    dg->in_batch = 1;
    if (dg->refreshed_ms == 0 || ms - dg->refreshed_ms >= GATE_REFRESH_MS) {
        rc = ds_gate_refresh(dg->g, dg->cat, ds_daemon_now(d));
        dg->refreshed_ms = ms;
    }
    if (rc == 0)
        rc = ds_gate_reload_ctl(dg->g);
    if (rc < 0) {
        ds__api_error(rs, 503, "the upgrade gate cannot read its state: %s", ds_strerror(rc));
        ds__api_gate_free(d);
        return -1;
    }
    return 0;
}

/* Ends the open batch now (ds__api_gate_commit); on failure the decision
 * is not answered (503) and the gate is rebuilt from its state on the
 * next request. */
static int batch_end(ds_daemon_t *d, struct api_res *rs)
{
    int rc = ds__api_gate_commit(d);

    if (rc < 0) {
        free(rs->body);
        rs->body = NULL;
        ds__api_error(rs, 503, "the upgrade gate cannot save its state: %s", ds_strerror(rc));
        return -1;
    }
    return 0;
}

/* The body as an object whose fields are all in allowed and strings.
 * Returns it or NULL after replying 400. */
static json_t *body(const struct api_req *rq, const char *const *allowed, struct api_res *rs)
{
    json_t *o, *v;
    const char *key;

    if (rq->body_len == 0) {
        ds__api_error(rs, 400, "the body is empty (a JSON object is expected)");
        return NULL;
    }
    o = ds__api_body_object(rq, allowed, rs);
    if (o == NULL)
        return NULL;
    json_object_foreach(o, key, v)
    {
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
            json_string_length(v) > 4096) {
            ds__api_error(rs, 400, "%s: expected a string (no NUL, at most 4096 bytes)", key);
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* String field key of o (checked by body), NULL when absent; a required
 * one that is absent replies 400 and sets *bad. */
static const char *field(const json_t *o, const char *key, int required, int *bad,
                         struct api_res *rs)
{
    const json_t *v = json_object_get(o, key);

    if (v == NULL && required && !*bad) {
        ds__api_error(rs, 400, "%s: missing (a string)", key);
        *bad = 1;
    }
    return v ? json_string_value(v) : NULL;
}

/* A gate error as a reply: not found 404, another client's token 403,
 * anything else 400. */
static void gate_error(struct api_res *rs, int rc, const char *err)
{
    int status = rc == DS_ENOTFOUND ? 404 : rc == -EACCES ? 403 : rc == DS_EUSAGE ? 400 : 500;

    ds__api_error(rs, status, "%s", err[0] ? err : ds_strerror(rc));
}

static void decision_json(ds_json_t *j, const ds_gate_decision_t *dc)
{
    ds_json_obj_begin(j);
    if (dc->kind == DS_GATE_GRANT) {
        ds_json_kstr(j, "decision", "grant");
        ds_json_kstr(j, "token", dc->token);
        ds_json_kstr(j, "version", dc->version);
        ds_json_kstr(j, "server", dc->server);
        ds_json_kstr(j, "path", dc->path);
        ds_json_kuint(j, "expires_in", dc->expires_in);
    } else if (dc->kind == DS_GATE_WAIT) {
        ds_json_kstr(j, "decision", "wait");
        ds_json_kuint(j, "position", dc->position);
        ds_json_kuint(j, "retry_after", dc->retry_after);
        ds_json_kstr(j, "reason", dc->reason);
    } else {
        ds_json_kstr(j, "decision", "none");
        ds_json_kstr(j, "reason", dc->reason);
    }
    ds_json_obj_end(j);
}

static int call(struct ds_dgate *dg, enum op op, const json_t *o, int64_t now,
                ds_gate_decision_t *dc, unsigned *exp, char *err, size_t errlen, struct api_res *rs)
{
    int bad = 0;

    if (op == OP_REQUEST) {
        ds_gate_request_t r = {.client = field(o, "client", 1, &bad, rs),
                               .product = field(o, "product", 1, &bad, rs),
                               .version = field(o, "version", 1, &bad, rs),
                               .site = field(o, "site", 0, &bad, rs)};

        return bad ? 1 : ds_gate_request(dg->g, &r, now, dc, err, errlen);
    }
    if (op == OP_HEARTBEAT) {
        const char *t = field(o, "token", 1, &bad, rs), *c = field(o, "client", 0, &bad, rs);

        return bad ? 1 : ds_gate_heartbeat(dg->g, t, c, now, exp, err, errlen);
    }
    if (op == OP_REPORT) {
        const char *t = field(o, "token", 1, &bad, rs), *out = field(o, "outcome", 1, &bad, rs),
                   *v = field(o, "version", 1, &bad, rs), *c = field(o, "client", 0, &bad, rs),
                   *det = field(o, "detail", 0, &bad, rs);

        return bad ? 1 : ds_gate_report(dg->g, t, c, out, v, det, now, err, errlen);
    }
    {
        const char *c = field(o, "client", 1, &bad, rs);

        return bad ? 1 : ds_gate_priority(dg->g, c, now, err, errlen);
    }
}

static const char *const f_request[] = {"client", "product", "version", "site", NULL};
static const char *const f_heartbeat[] = {"token", "client", NULL};
static const char *const f_report[] = {"token", "outcome", "version", "detail", "client", NULL};
static const char *const f_priority[] = {"client", NULL};

void ds__api_gate_post(ds_daemon_t *d, const struct api_req *rq, const char *what,
                       struct api_res *rs)
{
    enum op op = strcmp(what, "request") == 0     ? OP_REQUEST
                 : strcmp(what, "heartbeat") == 0 ? OP_HEARTBEAT
                 : strcmp(what, "report") == 0    ? OP_REPORT
                                                  : OP_PRIORITY;
    const char *const *allowed = op == OP_REQUEST     ? f_request
                                 : op == OP_HEARTBEAT ? f_heartbeat
                                 : op == OP_REPORT    ? f_report
                                                      : f_priority;
    struct ds_dgate *dg;
    ds_gate_decision_t dc;
    unsigned exp = 0;
    char err[512] = "";
    struct api_out o;
    json_t *b = body(rq, allowed, rs);
    int rc;

    if (b == NULL || (dg = gate(d, rs)) == NULL ||
        (op != OP_PRIORITY && bearer_for(dg, rq, call_rollout(dg, op, b), rs) < 0) ||
        batch_begin(d, dg, rs) < 0)
        goto out;
    memset(&dc, 0, sizeof(dc));
    rc = call(dg, op, b, ds_daemon_now(d), &dc, &exp, err, sizeof(err), rs);
    /* every reply from here waits for the loop turn's commit
     * (ds__api_gate_commit), which also ends the batch begun above */
    rs->defer = 1;
    if (rc == 1)
        goto out; /* replied 400 */
    if (rc < 0) {
        gate_error(rs, rc, err); /* nothing changed, but expiries may have */
        dg->decisions++;
        goto out;
    }
    if (ds__api_begin(&o) < 0) {
        ds__api_error(rs, 500, "out of memory");
        goto out;
    }
    if (op == OP_REQUEST) {
        decision_json(&o.j, &dc);
    } else {
        ds_json_obj_begin(&o.j);
        ds_json_kstr(&o.j, "status", "ok");
        if (op == OP_HEARTBEAT)
            ds_json_kuint(&o.j, "expires_in", exp);
        ds_json_obj_end(&o.j);
    }
    ds__api_end(&o, rs, 200);
    dg->decisions++;
out:
    json_decref(b);
}

void ds__api_gate_rollouts(ds_daemon_t *d, const char *name, struct api_res *rs)
{
    struct ds_dgate *dg = gate(d, rs);
    ds_gate_rollout_status_t st;
    struct api_out o;
    int64_t now = ds_daemon_now(d);

    if (dg == NULL)
        return;
    if (name != NULL && ds_config_rollout(d->cfg, name) == NULL) {
        ds__api_error(rs, 404, "no such rollout '%.200s' (not in %s)", name, d->cfg->path);
        return;
    }
    if (batch_begin(d, dg, rs) < 0)
        return;
    if (ds__api_begin(&o) < 0) { /* every path from here ends the batch */
        ds__api_error(rs, 500, "out of memory");
        (void)batch_end(d, rs);
        return;
    }
    if (name == NULL) {
        ds_json_obj_begin(&o.j);
        ds_json_key(&o.j, "rollouts");
        ds_json_arr_begin(&o.j);
    }
    for (size_t i = 0; i < d->cfg->nrollouts; i++) {
        const char *n = d->cfg->rollouts[i].name;

        if ((name == NULL || strcmp(n, name) == 0) && ds_gate_status(dg->g, n, now, &st) == 0)
            ds_gate_status_json(dg->g, &st, &o.j);
    }
    if (name == NULL) {
        ds_json_arr_end(&o.j);
        /* group commit at work: decisions answered, transactions committed */
        ds_json_key(&o.j, "batches");
        ds_json_obj_begin(&o.j);
        ds_json_kuint(&o.j, "decisions", dg->decisions);
        ds_json_kuint(&o.j, "commits", dg->commits);
        ds_json_obj_end(&o.j);
        ds_json_obj_end(&o.j);
    }
    ds__api_end(&o, rs, 200);
    (void)batch_end(d, rs);
}

int ds__api_gate_lease(ds_daemon_t *d, const struct api_req *rq, const char *token,
                       ds_gate_lease_t *out, struct api_res *rs)
{
    struct ds_dgate *dg = gate(d, rs);
    char err[256] = "";
    int rc;

    if (dg == NULL || bearer_for(dg, rq, ds_gate_token_rollout(dg->g, token), rs) < 0 ||
        batch_begin(d, dg, rs) < 0)
        return -1;
    rc = ds_gate_lease(dg->g, token, ds_daemon_now(d), out, err, sizeof(err));
    if (batch_end(d, rs) < 0)
        return -1; /* the expiries it wrote could not be saved: 503 */
    if (rc == DS_ENOTFOUND)
        ds__api_error(rs, 403, "unknown token (the grant's token from POST /v1/upgrade/request)");
    else if (rc < 0)
        ds__api_error(rs, 404, "%s", err[0] ? err : ds_strerror(rc));
    return rc < 0 ? -1 : 0;
}

int ds__api_gate_commit(ds_daemon_t *d)
{
    struct ds_dgate *dg = d->gate;
    int rc;

    if (dg == NULL || !dg->in_batch)
        return 0;
    rc = ds_gate_flush(dg->g);
    if (rc < 0) {
        ds_log(DS_LOG_ERROR, "daemon: gate: flush: %s", ds_strerror(rc));
        ds__api_gate_free(d);
        return rc;
    }
    dg->in_batch = 0;
    dg->commits++;
    return 0;
}

/*
 * The API's routes (README "The daemon's API"): the method and path of a
 * request pick a handler; anything else is 404 (unknown path) or 405 (a
 * known path with another method, with Allow). Every reply is JSON.
 *
 *   GET  /v1/servers                    GET  /v1/runs, /v1/runs/ID
 *   GET  /v1/sites                      POST /v1/runs/ID/cancel
 *   GET  /v1/schedules                  POST /v1/run-now
 *   GET  /v1/schedules/preview          POST /v1/freeze, /v1/thaw
 *   GET  /v1/schedules/NAME/preview     POST /v1/reload
 *   GET  /v1/history
 *   GET  /v1/scans (the kept scan generations: run-now's "as_of": "scan:N")
 *   GET  /v1/status (api_status.c)
 *   GET  /v1/rollouts, /v1/rollouts/NAME    POST /v1/upgrade/request, heartbeat,
 *                                       report, priority (api_gate.c)
 *   GET  /v1/upgrade/package/TOKEN is served before routing (api_package.c)
 */
#include <string.h>

#include "api_int.h"

#define SEG_MAX 256

/* The path without its query, split at '/' into up to 4 decoded segments
 * after "/v1". Returns the count, or -1 (not under /v1, or undecodable). */
static int segments(const struct api_req *rq, char seg[4][SEG_MAX])
{
    const char *q = memchr(rq->path, '?', rq->path_len);
    size_t n = q ? (size_t)(q - rq->path) : rq->path_len, k = 0;
    const char *p = rq->path, *end = rq->path + n;

    if (n < 3 || memcmp(p, "/v1", 3) != 0 || (n > 3 && p[3] != '/'))
        return -1;
    p += 3;
    while (p < end) {
        const char *s = p + 1, *e = memchr(s, '/', (size_t)(end - s));

        if (e == NULL)
            e = end;
        if (e == s && e == end)
            break; /* a trailing slash */
        if (k == 4 || e == s || ds__api_decode(s, (size_t)(e - s), 0, seg[k], SEG_MAX) < 0)
            return -1;
        k++;
        p = e;
    }
    return (int)k;
}

static int is(const struct api_req *rq, const char *m)
{
    return rq->method_len == strlen(m) && memcmp(rq->method, m, rq->method_len) == 0;
}

static int eq(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* A known path asked with the wrong method. */
static void not_allowed(const struct api_req *rq, struct api_res *rs, const char *allow)
{
    ds__api_error(rs, 405, "%.*s is not allowed here: use %s", (int)rq->method_len, rq->method,
                  allow);
    rs->allow = allow;
}

enum route {
    R_NONE,
    R_SERVERS,
    R_SITES,
    R_SCHEDULES,
    R_PREVIEW_ALL,
    R_PREVIEW,
    R_RUNS,
    R_RUN,
    R_HISTORY,
    R_STATUS,
    R_SCANS,
    R_ROLLOUTS,
    R_ROLLOUT,
    R_POST, /* the POST routes follow */
    R_RUN_NOW,
    R_CANCEL,
    R_FREEZE,
    R_THAW,
    R_RELOAD,
    R_UPGRADE,
};

static enum route match(char seg[4][SEG_MAX], int n)
{
    const char *a = seg[0];

    if (n == 1)
        return eq(a, "servers")     ? R_SERVERS
               : eq(a, "sites")     ? R_SITES
               : eq(a, "schedules") ? R_SCHEDULES
               : eq(a, "runs")      ? R_RUNS
               : eq(a, "history")   ? R_HISTORY
               : eq(a, "status")    ? R_STATUS
               : eq(a, "scans")     ? R_SCANS
               : eq(a, "rollouts")  ? R_ROLLOUTS
               : eq(a, "run-now")   ? R_RUN_NOW
               : eq(a, "freeze")    ? R_FREEZE
               : eq(a, "thaw")      ? R_THAW
               : eq(a, "reload")    ? R_RELOAD
                                    : R_NONE;
    if (n == 2 && eq(a, "schedules") && eq(seg[1], "preview"))
        return R_PREVIEW_ALL;
    if (n == 2 && eq(a, "runs"))
        return R_RUN;
    if (n == 2 && eq(a, "rollouts"))
        return R_ROLLOUT;
    if (n == 2 && eq(a, "upgrade") &&
        (eq(seg[1], "request") || eq(seg[1], "heartbeat") || eq(seg[1], "report") ||
         eq(seg[1], "priority")))
        return R_UPGRADE;
    if (n == 3 && eq(a, "schedules") && eq(seg[2], "preview"))
        return R_PREVIEW;
    if (n == 3 && eq(a, "runs") && eq(seg[2], "cancel"))
        return R_CANCEL;
    return R_NONE;
}

static void dispatch(ds_daemon_t *d, const struct api_req *rq, char seg[4][SEG_MAX], enum route r,
                     struct api_res *rs)
{
    switch (r) {
    case R_SERVERS:
        ds__api_get_servers(d, rs);
        break;
    case R_SITES:
        ds__api_get_sites(d, rs);
        break;
    case R_SCHEDULES:
        ds__api_get_schedules(d, rs);
        break;
    case R_PREVIEW_ALL:
        ds__api_get_preview(d, rq, NULL, rs);
        break;
    case R_PREVIEW:
        ds__api_get_preview(d, rq, seg[1], rs);
        break;
    case R_RUNS:
        ds__api_get_runs(d, rq, NULL, rs);
        break;
    case R_RUN:
        ds__api_get_runs(d, rq, seg[1], rs);
        break;
    case R_HISTORY:
        ds__api_get_history(d, rq, rs);
        break;
    case R_STATUS:
        ds__api_get_status(d, rq, rs);
        break;
    case R_SCANS:
        ds__api_get_scans(d, rs);
        break;
    case R_ROLLOUTS:
    case R_ROLLOUT:
        ds__api_gate_rollouts(d, r == R_ROLLOUT ? seg[1] : NULL, rs);
        break;
    case R_UPGRADE:
        ds__api_gate_post(d, rq, seg[1], rs);
        break;
    case R_RUN_NOW:
        ds__api_run_now(d, rq, rs);
        break;
    case R_CANCEL:
        ds__api_cancel(d, seg[1], rs);
        break;
    case R_FREEZE:
    case R_THAW:
        ds__api_freeze(d, rq, r == R_THAW, rs);
        break;
    case R_RELOAD:
        ds__api_reload(d, rq, rs);
        break;
    default:
        ds__api_error(rs, 404, "no such path");
    }
}

void ds__api_route(ds_daemon_t *d, const struct api_req *rq, struct api_res *rs)
{
    char seg[4][SEG_MAX];
    int n = segments(rq, seg), get = is(rq, "GET") || is(rq, "HEAD"), post = is(rq, "POST");
    enum route r;

    rs->status = 0;
    rs->body = NULL;
    rs->len = 0;
    rs->allow = NULL;
    rs->defer = 0;
    if (n < 0) {
        ds__api_error(rs, 404, "no such path: the API is under /v1/ (see README)");
        return;
    }
    if (rq->body_len > DS_API_BODY_MAX) {
        ds__api_error(rs, 413, "the request body has %zu bytes; at most %d are accepted",
                      rq->body_len, DS_API_BODY_MAX);
        return;
    }
    r = match(seg, n);
    if (r == R_NONE) {
        ds__api_error(rs, 404, "no such path: %.*s", (int)(rq->path_len > 200 ? 200 : rq->path_len),
                      rq->path);
        return;
    }
    if (r > R_POST ? !post : !get) {
        not_allowed(rq, rs, r > R_POST ? "POST" : "GET");
        return;
    }
    dispatch(d, rq, seg, r, rs);
}

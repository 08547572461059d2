/* The API's handlers (api_routes.c, api_get.c, api_post.c, api_util.c). */
#ifndef DS_API_INT_H
#define DS_API_INT_H

#include <jansson.h>
#include <stdio.h>
#include <uv.h>

#include "daemon_int.h"
#include "distsync/gate.h"
#include "distsync/json.h"
#include "distsync/scan.h"

/* A reply document being written (ds__api_begin .. ds__api_end). */
struct api_out {
    FILE *f;
    char *buf;
    size_t len;
    ds_json_t j;
};

/* Starts a document in memory. Returns 0 or DS_ENOMEM. */
int ds__api_begin(struct api_out *o);
/* Ends it and makes it rs's body with status (500 when memory ran out). */
void ds__api_end(struct api_out *o, struct api_res *rs, int status);
/* rs becomes {"error": "<message>"} with status. */
void ds__api_error(struct api_res *rs, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Whether a Host header value host[0, len) names this machine's own
 * listener: localhost, 127.0.0.1 or [::1] (any port: an ssh -L forward's),
 * or the host of [console] listen = (NULL: none), or is empty. Any other
 * name reaching the socket is a browser's DNS rebinding. Returns 1 or 0. */
int ds__api_host_local(const char *host, size_t len, const char *listen);
/* Percent-decodes s[0, n) into buf (plus: '+' is a space). Returns 0, or
 * -1 for a bad escape, a NUL byte or a result that does not fit. */
int ds__api_decode(const char *s, size_t n, int plus, char *buf, size_t len);

/* The names of rq's "servers=A,B" query (none: *n is 0), pointing into
 * list (len bytes, the caller's; valid while it is). Returns 0, or -1
 * after replying 400 (badly encoded, or more than max names). */
int ds__api_names(const struct api_req *rq, char *list, size_t len, const char **names, size_t max,
                  size_t *n, struct api_res *rs);

/* Parses rq's body into an object whose keys are all in allowed (a
 * NULL-terminated list; an empty body is {}). Returns it (the caller
 * json_decref()s it), or NULL after replying 400. */
json_t *ds__api_body_object(const struct api_req *rq, const char *const *allowed,
                            struct api_res *rs);

/* GET handlers (api_get.c); name/id: the decoded path segment. */
void ds__api_get_servers(ds_daemon_t *d, struct api_res *rs);
void ds__api_get_sites(ds_daemon_t *d, struct api_res *rs);
void ds__api_get_schedules(ds_daemon_t *d, struct api_res *rs);
void ds__api_get_preview(ds_daemon_t *d, const struct api_req *rq, const char *name,
                         struct api_res *rs);
/* GET /v1/runs[?live=1] (newest first; live: queued and running only) or
 * /v1/runs/ID. */
void ds__api_get_runs(ds_daemon_t *d, const struct api_req *rq, const char *id, struct api_res *rs);

/* GET /v1/history?servers=A,B&limit=N&events=1: `history --json`. */
void ds__api_get_history(ds_daemon_t *d, const struct api_req *rq, struct api_res *rs);
/* GET /v1/scans: the kept scan generations (ds_catalog_gen_json). */
void ds__api_get_scans(ds_daemon_t *d, struct api_res *rs);
/* GET /v1/status?servers=A,B: `status --offline`'s reports with each
 * server's verdict (api_status.c). */
void ds__api_get_status(ds_daemon_t *d, const struct api_req *rq, struct api_res *rs);
#define DS_API_STATUS_MAX 128 /* servers one status request names at most */
/* The servers of rq's "servers=A,B" query into srv (*n 0: every server).
 * Returns 0, or -1 after replying 400 or 404 (a name not configured). */
int ds__api_status_servers(ds_daemon_t *d, const struct api_req *rq,
                           const ds_server_cfg_t *srv[DS_API_STATUS_MAX], size_t *n,
                           struct api_res *rs);
/* GET /v1/status's document for srv[0, n) (n 0: every server of cfg),
 * made with sy on the calling thread: live, each server contacted
 * (ds_sync_server's DS_SYNC_STATUS), else planned against its last-known
 * manifest; scan (NULL: none) is the scan made first. Replies in rs. */
void ds__api_status_doc(ds_sync_t *sy, const ds_config_t *cfg, const ds_server_cfg_t *const *srv,
                        size_t n, int live, const ds_scan_stats_t *scan, struct api_res *rs);
/* GET /v1/status?live=1 (api_status_live.c). ds__api_status_live_path: 1
 * when req is one. ds__api_status_live: starts it on a thread of its own
 * (0: the reply comes when it ends), or returns -1 with the error reply in
 * rs (400, 404, 503 when DS_API_LIVE_MAX are under way). */
struct st_h2o_req_t;
int ds__api_status_live_path(const struct st_h2o_req_t *req);
int ds__api_status_live(ds_daemon_t *d, struct st_h2o_req_t *req, const struct api_req *rq,
                        struct api_res *rs);
/* At the stop: cancels the live statuses under way and waits for their
 * threads (their clients get a 503). */
void ds__api_status_live_stop(ds_daemon_t *d);
/* Sends rs as req's reply (daemon_api.c). */
void ds__api_reply(struct st_h2o_req_t *req, const struct api_res *rs);

/* POST handlers (api_post.c). */
void ds__api_run_now(ds_daemon_t *d, const struct api_req *rq, struct api_res *rs);
void ds__api_cancel(ds_daemon_t *d, const char *id, struct api_res *rs);
void ds__api_freeze(ds_daemon_t *d, const struct api_req *rq, int thaw, struct api_res *rs);
void ds__api_reload(ds_daemon_t *d, const struct api_req *rq, struct api_res *rs);

/* The upgrade gate (api_gate.c). POST /v1/upgrade/WHAT (request,
 * heartbeat, report, priority). */
void ds__api_gate_post(ds_daemon_t *d, const struct api_req *rq, const char *what,
                       struct api_res *rs);
/* GET /v1/rollouts (name NULL) or /v1/rollouts/NAME. */
void ds__api_gate_rollouts(ds_daemon_t *d, const char *name, struct api_res *rs);
/* 1 when tok[0, len) is the enrolment token of a rollout, else 0. */
int ds__api_gate_token_ok(ds_daemon_t *d, const char *tok, size_t len);
/* GET /v1/upgrade/package/TOKEN: token's lease into *out (strings valid
 * until the next gate call or reload). Returns 0, or -1 after replying
 * 403 (unknown token, or rq's enrolment token is another rollout's), 404
 * (lease expired or reported) or 503. */
int ds__api_gate_lease(ds_daemon_t *d, const struct api_req *rq, const char *token,
                       ds_gate_lease_t *out, struct api_res *rs);
/* GET /v1/upgrade/package/TOKEN (api_package.c). ds__api_package_path:
 * 1 when req is for it. ds__api_package: serves it (0: a response is
 * under way) or returns -1 with the error reply in rs. */
struct st_h2o_req_t;
int ds__api_package_path(const struct st_h2o_req_t *req);
int ds__api_package(ds_daemon_t *d, struct st_h2o_req_t *req, const struct api_req *rq,
                    struct api_res *rs);
/* The bytes sent to site's clients and the downloads in progress there.
 * Returns 0 or DS_ENOTFOUND (none yet: both 0). */
int ds__api_package_site(const ds_daemon_t *d, const char *site, uint64_t *bytes, unsigned *active);
/* A Range header's value v[0, len) (NULL: none) over a file of size
 * bytes: "bytes=N-" or "bytes=N-M" into [*lo, *hi). Returns 1 (a range,
 * lo < hi <= size), 0 (none: the whole file), -1 (not satisfiable or not
 * understood: 416). */
int ds__api_range(const char *v, size_t len, uint64_t size, uint64_t *lo, uint64_t *hi);
/* Drops the downloads' limiter tree (one still in use is freed by its last
 * download). */
void ds__api_package_free(ds_daemon_t *d);
/* Group commit: the POSTs of one loop turn join one batch, and their
 * replies (rs->defer) wait for this commit, made once per turn. Returns 0
 * (the replies of d->gate_epoch may go), or the flush's error (the gate is
 * freed, the epoch moved: every waiting reply becomes a 503). */
int ds__api_gate_commit(ds_daemon_t *d);
/* Frees the gate (NULL: no-op); dropping an open batch moves
 * d->gate_epoch. */
void ds__api_gate_free(ds_daemon_t *d);

/* api_conns.c: the connections the TCP listener accepted, still open. A
 * reload that moves the listener retires them (each finishes its request
 * in flight, then closes). */
struct api_conn {
    uv_tcp_t h; /* first: the handle's close callback gets &h */
    struct api_conns *set;
    struct api_conn *prev, *next;
    int retired;
};
struct api_conns {
    struct api_conn *head;
};
/* A zeroed connection, linked into set (NULL: no memory); the caller inits
 * and accepts into c->h, whose close callback must be ds__api_conn_closed
 * (it unlinks and frees c). */
struct api_conn *ds__api_conn_new(struct api_conns *set);
void ds__api_conn_closed(uv_handle_t *h);
/* 1 when req came on a retired connection (its answer must close it). */
int ds__api_conn_retired(struct api_conns *set, struct st_h2o_req_t *req);
/* Retires every connection of set (logged): a request begun is answered
 * with "Connection: close", an idle connection is shut now. */
struct st_h2o_context_t;
void ds__api_conns_retire(struct api_conns *set, struct st_h2o_context_t *ctx);
/* Unlinks every connection (the set is going; they close on their own). */
void ds__api_conns_detach(struct api_conns *set);
#endif

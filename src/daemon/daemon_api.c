/*
 * The daemon's HTTP API server: libh2o (HTTP/1.1 and the request parsing)
 * on the engine's libuv loop, so requests are answered between the steps
 * of the running batch and during the waits between fires, on the loop
 * thread that owns every piece of daemon state (no locks).
 *
 * Listeners:
 *  - the Unix socket STATE/distsync.sock, mode 0660: its permissions are
 *    the access control (the CLI uses it);
 *  - TCP at [console] listen = ADDRESS:PORT when configured: every request
 *    needs "Authorization: Bearer TOKEN", the token read at start from
 *    api_token_file = (which must not be readable by group or others);
 *    without it: 401, nothing changes. The token is never logged. With
 *    api_tls_cert = and api_tls_key = the listener speaks TLS (1.2+).
 *
 * The listeners and connections are unreferenced handles: a batch ends
 * when its runs do, whatever clients are connected. Request bodies are
 * read whole by h2o (at most 1 MiB; ds__api_route refuses more than
 * DS_API_BODY_MAX with a JSON 413).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <h2o.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "api_int.h"
#include "daemon_int.h"
#include "distsync/log.h"
#include "web_int.h"

#define API_ENTITY_MAX (1024 * 1024) /* h2o's own limit; ours is smaller */
#define API_HANDLES    64            /* handles the loop has before h2o adds its own */

/* A TCP listener and what it serves with: its bearer token and its TLS
 * context (NULL: plain HTTP). A reload builds a new one before it drops
 * the old one. */
struct tcp_side {
    uv_tcp_t *l; /* NULL: no TCP listener */
    SSL_CTX *ssl;
    char token[DS_API_TOKEN_MAX];
    size_t token_len;
};

struct api_handler {
    h2o_handler_t super;
    ds_daemon_t *d;
};

/* A gate reply waiting for its loop turn's commit; in its request's pool
 * (gone with the request: a client that left is skipped). */
struct gate_reply {
    struct ds_api *a;
    h2o_req_t *req; /* NULL once answered */
    struct api_res rs;
    unsigned epoch; /* d->gate_epoch when the decision was made */
    size_t idx;     /* in a->pend */
};

struct ds_api {
    ds_daemon_t *d;
    h2o_globalconf_t conf;
    h2o_context_t ctx;
    h2o_accept_ctx_t actx, actx_tcp; /* the socket's; TCP's (TLS when configured) */
    int h2o_on;
    uv_pipe_t unix_l;
    int unix_on;
    struct tcp_side tcp;
    char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    size_t open_streams; /* at the stop */
    uv_check_t commit;   /* after the turn's I/O: the gate's group commit */
    int commit_init;
    struct gate_reply **pend; /* this turn's gate replies (NULL: gone) */
    size_t npend, cappend;
    const ds_config_t *cfg; /* the one the TCP listener was made from */
    struct api_conns conns; /* accepted over TCP, still open */
};

/* ---- requests ---- */

static int from_unix(h2o_req_t *req)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (req->conn->callbacks->get_sockname == NULL ||
        req->conn->callbacks->get_sockname(req->conn, (struct sockaddr *)&ss) == 0)
        return 0;
    return ss.ss_family == AF_UNIX;
}

/* Constant-time comparison of the bearer token. */
static int token_ok(const struct ds_api *a, h2o_req_t *req)
{
    static const char bearer[] = "Bearer ";
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    const h2o_iovec_t *v;
    unsigned char diff = 0;

    if (i < 0)
        return 0;
    v = &req->headers.entries[i].value;
    if (v->len != sizeof(bearer) - 1 + a->tcp.token_len ||
        strncasecmp(v->base, bearer, sizeof(bearer) - 1) != 0)
        return 0;
    for (size_t k = 0; k < a->tcp.token_len; k++)
        diff |= (unsigned char)(v->base[sizeof(bearer) - 1 + k] ^ a->tcp.token[k]);
    return diff == 0;
}

/* The bearer of a client's request to the upgrade gate (POST
 * /v1/upgrade/request, heartbeat, report): a rollout's enrolment token, not
 * the operator's (README "The upgrade gate's API"). */
static int gate_client_path(const h2o_req_t *req)
{
    static const char pre[] = "/v1/upgrade/", prio[] = "/v1/upgrade/priority";
    const char *p = req->path.base;
    size_t n = req->path.len;

    return n >= sizeof(pre) - 1 && memcmp(p, pre, sizeof(pre) - 1) == 0 &&
           !(n >= sizeof(prio) - 1 && memcmp(p, prio, sizeof(prio) - 1) == 0);
}

/* Whether req carries a rollout's enrolment token; rq gets it (the gate
 * checks it against the rollout the request is about). */
static int enrolment_ok(ds_daemon_t *d, h2o_req_t *req, struct api_req *rq)
{
    static const char bearer[] = "Bearer ";
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    const h2o_iovec_t *v;

    if (i < 0)
        return 0;
    v = &req->headers.entries[i].value;
    if (v->len <= sizeof(bearer) - 1 || strncasecmp(v->base, bearer, sizeof(bearer) - 1) != 0)
        return 0;
    rq->bearer = v->base + sizeof(bearer) - 1;
    rq->bearer_len = v->len - (sizeof(bearer) - 1);
    return ds__api_gate_token_ok(d, rq->bearer, rq->bearer_len);
}

/* A browser's request from another origin (cross-site request forgery: a
 * page the operator visits posting to http://localhost:8750, forwarded to
 * the socket, which asks no token): an Origin header that is not this
 * request's own scheme://host. A request without Origin (curl, the CLI, a
 * browser's same-origin GET) passes. */
static int cross_origin(const h2o_req_t *req)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    const h2o_iovec_t *o, *sc = &req->scheme->name, *host = &req->authority;

    if (i < 0)
        return 0;
    o = &req->headers.entries[i].value;
    return !(o->len == sc->len + 3 + host->len && memcmp(o->base, sc->base, sc->len) == 0 &&
             memcmp(o->base + sc->len, "://", 3) == 0 &&
             strncasecmp(o->base + sc->len + 3, host->base, host->len) == 0);
}

void ds__api_reply(h2o_req_t *req, const struct api_res *rs)
{
    static h2o_generator_t gen = {NULL, NULL};
    h2o_iovec_t body = h2o_iovec_init(h2o_mem_alloc_pool(&req->pool, rs->len + 1), rs->len);

    memcpy(body.base, rs->body, rs->len);
    req->res.status = rs->status;
    req->res.reason = rs->status < 300    ? "OK"
                      : rs->status == 401 ? "Unauthorized"
                      : rs->status == 403 ? "Forbidden"
                      : rs->status == 404 ? "Not Found"
                      : rs->status == 405 ? "Method Not Allowed"
                      : rs->status == 413 ? "Payload Too Large"
                      : rs->status == 416 ? "Range Not Satisfiable"
                      : rs->status == 421 ? "Misdirected Request"
                      : rs->status < 500  ? "Bad Request"
                                          : "Internal Server Error";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    if (rs->allow != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, rs->allow,
                       strlen(rs->allow));
    if (rs->status == 401)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer"));
    req->res.content_length = rs->len;
    h2o_start_response(req, &gen);
    h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
}

/* ---- the gate's group commit ---- */

static void gate_reply_dispose(void *arg)
{
    struct gate_reply *w = arg;

    if (w->req != NULL && w->idx < w->a->npend && w->a->pend[w->idx] == w)
        w->a->pend[w->idx] = NULL;
    free(w->rs.body);
    w->rs.body = NULL;
}

/* After the I/O of a loop turn: commits the batch of its gate decisions,
 * then answers them (503 each when the commit failed: not one of them was
 * saved, so none may be answered). */
static void on_commit(uv_check_t *h)
{
    struct ds_api *a = h->data;
    int rc = ds__api_gate_commit(a->d);

    uv_check_stop(h);
    for (size_t i = 0; i < a->npend; i++) {
        struct gate_reply *w = a->pend[i];
        h2o_req_t *req;

        if (w == NULL)
            continue;
        if (rc < 0 || w->epoch != a->d->gate_epoch) {
            free(w->rs.body);
            w->rs.body = NULL;
            ds__api_error(&w->rs, 503, "the upgrade gate cannot save its state: %s",
                          rc < 0 ? ds_strerror(rc) : "a batch was dropped");
        }
        req = w->req;
        w->req = NULL;
        ds__api_reply(req, &w->rs);
        free(w->rs.body);
        w->rs.body = NULL;
    }
    a->npend = 0;
}

/* Holds rs (taken) until the turn's commit. Returns 0, or -1 (no memory:
 * rs is left to the caller). */
static int gate_defer(struct ds_api *a, h2o_req_t *req, struct api_res *rs)
{
    struct gate_reply *w, **v;

    if (a->npend == a->cappend) {
        size_t cap = a->cappend ? 2 * a->cappend : 64;

        if ((v = realloc(a->pend, cap * sizeof(*v))) == NULL)
            return -1;
        a->pend = v;
        a->cappend = cap;
    }
    w = h2o_mem_alloc_shared(&req->pool, sizeof(*w), gate_reply_dispose);
    w->a = a;
    w->req = req;
    w->rs = *rs;
    w->epoch = a->d->gate_epoch;
    w->idx = a->npend;
    a->pend[a->npend++] = w;
    rs->body = NULL;
    if (!uv_is_active((uv_handle_t *)&a->commit))
        uv_check_start(&a->commit, on_commit);
    return 0;
}

static int handle_req(h2o_handler_t *self, h2o_req_t *req)
{
    ds_daemon_t *d = ((struct api_handler *)self)->d;
    struct api_req rq = {.method = req->method.base,
                         .method_len = req->method.len,
                         .path = req->path.base,
                         .path_len = req->path.len,
                         .body = req->entity.base,
                         .body_len = req->entity.base ? req->entity.len : 0};
    struct api_res rs = {0};
    static char unauth[] = "{\"error\":\"this listener needs 'Authorization: Bearer TOKEN' "
                           "(api_token_file's token; the upgrade gate's clients: their "
                           "rollout's token_file)\"}\n";

    static char xhost[] = "{\"error\":\"the Host header is not this machine's own (localhost, "
                          "127.0.0.1, [::1] or [console] listen's host): a DNS rebinding "
                          "page is refused\"}\n";
    static char xorigin[] = "{\"error\":\"a request from another origin (the Origin header "
                            "is not this listener's scheme://host): refused\"}\n";

    if (from_unix(req) &&
        !ds__api_host_local(req->authority.base, req->authority.len, d->cfg->listen)) {
        rs.status = 421;
        rs.body = xhost;
        rs.len = sizeof(xhost) - 1;
        ds__api_reply(req, &rs);
        return 0;
    }
    if (ds__web_serve(req)) /* the status page's files: no data, no token */
        return 0;
    if (cross_origin(req)) {
        rs.status = 403;
        rs.body = xorigin;
        rs.len = sizeof(xorigin) - 1;
        ds__api_reply(req, &rs);
        return 0;
    }
    if (!from_unix(req) &&
        !(gate_client_path(req) ? enrolment_ok(d, req, &rq) : token_ok(d->api, req))) {
        rs.status = 401;
        rs.body = unauth;
        rs.len = sizeof(unauth) - 1;
        ds__api_reply(req, &rs);
        return 0;
    }
    if (ds__api_status_live_path(req)) { /* contacts servers: on a thread */
        if (ds__api_status_live(d, req, &rq, &rs) < 0) {
            ds__api_reply(req, &rs);
            free(rs.body);
        }
        return 0;
    }
    if (ds__api_package_path(req)) {
        if (ds__api_package(d, req, &rq, &rs) < 0) {
            ds__api_reply(req, &rs);
            free(rs.body);
        }
        return 0;
    }
    ds__api_route(d, &rq, &rs);
    if (rs.defer && gate_defer(d->api, req, &rs) == 0)
        return 0;
    if (rs.defer && ds__api_gate_commit(d) < 0) { /* no memory to wait: commit now */
        free(rs.body);
        ds__api_error(&rs, 503, "the upgrade gate cannot save its state");
    }
    ds__api_reply(req, &rs);
    free(rs.body);
    return 0;
}

/* A request is no part of the run whose step it came between: its lines
 * carry no run (log.h). */
static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    ds_log_scope_t scope;
    int rc;

    ds_log_scope_save(&scope);
    ds_log_scope_set(NULL);
    if (ds__api_conn_retired(&((struct api_handler *)self)->d->api->conns, req))
        req->http1_is_persistent = 0; /* answered, then closed */
    rc = handle_req(self, req);
    ds_log_scope_set(&scope);
    return rc;
}

/* ---- listeners ---- */

static void on_accept(uv_stream_t *l, int status)
{
    struct ds_api *a = l->data;
    int pipe = l->type == UV_NAMED_PIPE;
    uv_close_cb done = pipe ? (uv_close_cb)free : ds__api_conn_closed;
    uv_stream_t *c;
    h2o_socket_t *sock;

    if (status != 0)
        return;
    if (pipe)
        c = malloc(sizeof(uv_pipe_t));
    else
        c = (uv_stream_t *)ds__api_conn_new(&a->conns);
    if (c == NULL)
        return;
    if (pipe)
        uv_pipe_init(l->loop, (uv_pipe_t *)c, 0);
    else
        uv_tcp_init(l->loop, (uv_tcp_t *)c);
    if (uv_accept(l, c) != 0) {
        uv_close((uv_handle_t *)c, done);
        return;
    }
    uv_unref((uv_handle_t *)c); /* a client never holds a batch open */
    sock = h2o_uv_socket_create(c, done);
    if (sock == NULL) {
        uv_close((uv_handle_t *)c, done);
        return;
    }
    h2o_accept(l->type == UV_NAMED_PIPE ? &a->actx : &a->actx_tcp, sock);
}

/* The socket path is free, or held by a dead daemon's socket (removed);
 * a daemon that answers on it is an error. */
static int sock_free(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, rc;

    if (access(path, F_OK) < 0)
        return 0;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    rc = fd >= 0 ? connect(fd, (struct sockaddr *)&sa, sizeof(sa)) : -1;
    if (fd >= 0)
        close(fd);
    if (rc == 0) {
        snprintf(err, errlen, "API socket %s: another daemon is serving on it", path);
        return -EADDRINUSE;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        rc = -errno;
        snprintf(err, errlen, "API socket %s: cannot remove the stale socket: %s", path,
                 strerror(errno));
        return rc;
    }
    return 0;
}

static int listen_unix(struct ds_api *a, uv_loop_t *loop, char *err, size_t errlen)
{
    const char *state = a->d->cfg->state;
    int rc;

    if ((size_t)snprintf(a->sock_path, sizeof(a->sock_path), "%s/distsync.sock", state) >=
        sizeof(a->sock_path)) {
        snprintf(err, errlen, "API socket %s/distsync.sock: the path is longer than %zu bytes",
                 state, sizeof(a->sock_path) - 1);
        a->sock_path[0] = '\0';
        return DS_ETOOBIG;
    }
    rc = sock_free(a->sock_path, err, errlen);
    if (rc < 0) {
        a->sock_path[0] = '\0'; /* not ours to remove */
        return rc;
    }
    uv_pipe_init(loop, &a->unix_l, 0);
    a->unix_l.data = a;
    a->unix_on = 1;
    rc = uv_pipe_bind(&a->unix_l, a->sock_path);
    if (rc == 0 && chmod(a->sock_path, 0660) < 0)
        rc = -errno;
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&a->unix_l, 64, on_accept);
    if (rc < 0) {
        snprintf(err, errlen, "API socket %s: %s", a->sock_path, uv_strerror(rc));
        return rc;
    }
    uv_unref((uv_handle_t *)&a->unix_l);
    return 0;
}

/* TLS for a TCP listener of cfg: the certificate chain and its key (which
 * group and others must not read), TLS 1.2 or newer, into *out. */
static int tls_up(const ds_config_t *cfg, SSL_CTX **out, char *err, size_t errlen)
{
    struct stat st;
    unsigned long e;
    SSL_CTX *ssl;

    if (stat(cfg->api_tls_key, &st) == 0 && (st.st_mode & 077) != 0) {
        snprintf(err, errlen,
                 "api_tls_key %s: readable by others (mode %04o): the key must be readable by "
                 "its owner only (chmod 600 %s)",
                 cfg->api_tls_key, (unsigned)(st.st_mode & 07777), cfg->api_tls_key);
        return DS_ECONFIG;
    }
    *out = ssl = SSL_CTX_new(TLS_server_method());
    if (ssl == NULL || SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION) != 1) {
        snprintf(err, errlen, "API: TLS: out of memory");
        return DS_ENOMEM;
    }
    SSL_CTX_set_options(ssl, SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_use_certificate_chain_file(ssl, cfg->api_tls_cert) != 1) {
        e = ERR_get_error();
        snprintf(err, errlen, "api_tls_cert %s: %s", cfg->api_tls_cert,
                 ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "cannot be read");
        return DS_ECONFIG;
    }
    if (SSL_CTX_use_PrivateKey_file(ssl, cfg->api_tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ssl) != 1) {
        e = ERR_get_error();
        snprintf(err, errlen, "api_tls_key %s: %s", cfg->api_tls_key,
                 ERR_reason_error_string(e) ? ERR_reason_error_string(e)
                                            : "cannot be read, or is not the certificate's key");
        return DS_ECONFIG;
    }
    ERR_clear_error();
    return 0;
}

/* Drops t: its listener closes (the connections it accepted are retired
 * by ds__api_conns_retire; each holds its own reference to the TLS context). */
static void tcp_drop(struct tcp_side *t)
{
    if (t->l != NULL)
        uv_close((uv_handle_t *)t->l, (uv_close_cb)free);
    SSL_CTX_free(t->ssl);
    explicit_bzero(t, sizeof(*t));
}

/* Binds cfg's listen = on a new handle into t->l, listening. */
static int tcp_bind(struct ds_api *a, uv_loop_t *loop, const ds_config_t *cfg, struct tcp_side *t,
                    char *err, size_t errlen)
{
    char host[80];
    const char *colon = strrchr(cfg->listen, ':');
    int port = atoi(colon + 1), rc;
    struct sockaddr_storage ss;
    size_t hl = (size_t)(colon - cfg->listen);

    if (cfg->listen[0] == '[') /* [::1]:8750 (checked by the parser) */
        snprintf(host, sizeof(host), "%.*s", (int)hl - 2, cfg->listen + 1);
    else
        snprintf(host, sizeof(host), "%.*s", (int)hl, cfg->listen);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
        snprintf(err, errlen, "%s:%d: [console] listen: bad address '%s'", cfg->path,
                 cfg->listen_line, cfg->listen);
        return DS_ECONFIG;
    }
    if ((t->l = malloc(sizeof(*t->l))) == NULL) {
        snprintf(err, errlen, "%s:%d: [console] listen = %s: out of memory", cfg->path,
                 cfg->listen_line, cfg->listen);
        return DS_ENOMEM;
    }
    uv_tcp_init(loop, t->l);
    t->l->data = a;
    rc = uv_tcp_bind(t->l, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)t->l, 64, on_accept);
    if (rc < 0) {
        snprintf(err, errlen, "%s:%d: [console] listen = %s: %s", cfg->path, cfg->listen_line,
                 cfg->listen, uv_strerror(rc));
        return rc;
    }
    uv_unref((uv_handle_t *)t->l);
    return 0;
}

/* Builds t for cfg's TCP listener: the token, the TLS context when a
 * certificate is configured, and (with bind) the listener itself. On an
 * error t is dropped and err says what failed. */
static int tcp_open(struct ds_api *a, const ds_config_t *cfg, int bind, struct tcp_side *t,
                    char *err, size_t errlen)
{
    int rc = ds_config_api_token(cfg, t->token, sizeof(t->token), err, errlen);

    t->token_len = strlen(t->token);
    if (rc == 0 && cfg->api_tls_cert != NULL)
        rc = tls_up(cfg, &t->ssl, err, errlen);
    if (rc == 0 && bind)
        rc = tcp_bind(a, ds_engine_loop(a->d->eng), cfg, t, err, errlen);
    if (rc < 0)
        tcp_drop(t);
    return rc;
}

/* ---- h2o ---- */

struct walk {
    uv_handle_t *v[API_HANDLES];
    size_t n;
};

static void collect(uv_handle_t *h, void *arg)
{
    struct walk *w = arg;

    if (w->n < API_HANDLES)
        w->v[w->n++] = h;
}

/* h2o's own handles (its timeouts and queue) must not hold a batch open:
 * every handle h2o_context_init added is unreferenced. */
static void unref_new(uv_handle_t *h, void *arg)
{
    const struct walk *before = arg;

    for (size_t i = 0; i < before->n; i++)
        if (before->v[i] == h)
            return;
    uv_unref(h);
}

static int h2o_up(struct ds_api *a, uv_loop_t *loop, char *err, size_t errlen)
{
    struct walk before = {.n = 0};
    h2o_hostconf_t *hc;
    h2o_pathconf_t *pc;
    struct api_handler *h;

    h2o_config_init(&a->conf);
    a->conf.max_request_entity_size = API_ENTITY_MAX;
    a->conf.server_name = h2o_iovec_init(H2O_STRLIT("distsync"));
    a->conf.http1.upgrade_to_http2 = 0; /* HTTP/1.1 only: ds__api_conns_retire sees every one */
    hc = h2o_config_register_host(&a->conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    pc = h2o_config_register_path(hc, "/", 0);
    h = (struct api_handler *)h2o_create_handler(pc, sizeof(*h));
    if (h == NULL) {
        snprintf(err, errlen, "API: out of memory");
        h2o_config_dispose(&a->conf);
        return DS_ENOMEM;
    }
    h->super.on_req = on_req;
    h->d = a->d;
    uv_walk(loop, collect, &before);
    if (before.n >= API_HANDLES) {
        snprintf(err, errlen, "API: the loop has too many handles (%zu)", before.n);
        h2o_config_dispose(&a->conf);
        return DS_ENOMEM;
    }
    h2o_context_init(&a->ctx, loop, &a->conf);
    uv_walk(loop, unref_new, &before);
    a->actx.ctx = &a->ctx;
    a->actx.hosts = a->conf.hosts;
    a->actx_tcp = a->actx;
    a->h2o_on = 1;
    return 0;
}

int ds__api_start(ds_daemon_t *d, char *err, size_t errlen)
{
    uv_loop_t *loop = ds_engine_loop(d->eng);
    struct ds_api *a = calloc(1, sizeof(*a));
    int rc;

    if (a == NULL)
        return DS_ENOMEM;
    a->d = d;
    a->cfg = d->cfg;
    d->api = a;
    uv_check_init(loop, &a->commit);
    a->commit.data = a;
    a->commit_init = 1;
    uv_unref((uv_handle_t *)&a->commit); /* never holds a batch open */
    rc = h2o_up(a, loop, err, errlen);
    if (rc == 0)
        rc = listen_unix(a, loop, err, errlen);
    if (rc == 0 && d->cfg->listen != NULL &&
        (rc = tcp_open(a, d->cfg, 1, &a->tcp, err, errlen)) == 0)
        a->actx_tcp.ssl_ctx = a->tcp.ssl;
    if (rc < 0)
        return rc; /* ds_daemon_free stops what started */
    ds_log(DS_LOG_INFO, "daemon: API on %s%s%s", a->sock_path,
           a->tcp.l == NULL ? ""
           : a->tcp.ssl     ? " and https://"
                            : " and http://",
           a->tcp.l ? d->cfg->listen : "");
    return 0;
}

static int same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* A reload's api_token_file: re-read into the API when it is good; else
 * the old token stays (logged). */
static void reload_token(struct ds_api *a, const ds_config_t *cfg)
{
    char tok[DS_API_TOKEN_MAX] = "", err[PATH_MAX + 512]; /* zeros: copied whole */
    size_t len;

    if (cfg->api_token_file == NULL) {
        ds_log(DS_LOG_ERROR,
               "daemon: reload of %s: api_token_file is gone while the API listens on TCP; "
               "the old token stays until the daemon restarts",
               cfg->path);
    } else if (ds_config_api_token(cfg, tok, sizeof(tok), err, sizeof(err)) < 0) {
        ds_log(DS_LOG_ERROR, "daemon: reload: %s; the API keeps its old token", err);
    } else if ((len = strlen(tok)) != a->tcp.token_len || memcmp(tok, a->tcp.token, len) != 0) {
        memcpy(a->tcp.token, tok, sizeof(a->tcp.token));
        a->tcp.token_len = len;
        ds_log(DS_LOG_INFO, "daemon: reload: the API token was read again from %s",
               cfg->api_token_file);
    }
    explicit_bzero(tok, sizeof(tok));
}

/* A reload that changes listen = or the TLS files: the new listener (and
 * its token and TLS context) is made first; only then the old one closes
 * and the connections it accepted are retired (each finishes its request
 * in flight, then closes). When the new one cannot be made, the old one
 * stays, logged with the file, line, key and reason. The same address
 * with other TLS files swaps the TLS context in place (and retires the
 * connections made with the old setting). */
static void tcp_move(struct ds_api *a, const ds_config_t *cfg)
{
    struct tcp_side t = {0};
    char err[PATH_MAX + 512];
    const char *was = a->tcp.l ? a->cfg->listen : NULL;
    int rebind = !same(a->cfg->listen, cfg->listen) || a->tcp.l == NULL;

    if (cfg->listen == NULL && a->tcp.l == NULL) { /* TLS files without a listener */
        a->cfg = cfg;
        return;
    }
    if (cfg->listen != NULL && tcp_open(a, cfg, rebind, &t, err, sizeof(err)) < 0) {
        ds_log(DS_LOG_ERROR, "daemon: reload: %s; the API stays on %s%s%s", err, a->sock_path,
               was ? " and " : "", was ? was : "");
        return;
    }
    if (!rebind) { /* same address: the listener stays, its TLS changes */
        t.l = a->tcp.l;
        a->tcp.l = NULL;
    }
    tcp_drop(&a->tcp);
    a->tcp = t;
    a->actx_tcp.ssl_ctx = t.ssl;
    a->cfg = cfg;
    explicit_bzero(&t, sizeof(t));
    ds__api_conns_retire(&a->conns, &a->ctx);
    if (cfg->listen == NULL)
        ds_log(DS_LOG_INFO, "daemon: reload: the API no longer listens on TCP (was %s)",
               was ? was : "none");
    else
        ds_log(DS_LOG_INFO, "daemon: reload: the API now listens on %s%s (was %s)",
               a->tcp.ssl ? "https://" : "http://", cfg->listen, was ? was : "the socket only");
}

void ds__api_reconfigure(ds_daemon_t *d, const ds_config_t *cfg)
{
    struct ds_api *a = d->api;

    if (a == NULL)
        return;
    if (!same(a->cfg->listen, cfg->listen) || !same(a->cfg->api_tls_cert, cfg->api_tls_cert) ||
        !same(a->cfg->api_tls_key, cfg->api_tls_key)) {
        tcp_move(a, cfg);
        return;
    }
    if (a->tcp.l != NULL)
        reload_token(a, cfg);
    a->cfg = cfg;
}

/* Counts the client streams still open (not our listeners). */
static void count_stream(uv_handle_t *h, void *arg)
{
    struct ds_api *a = arg;

    if ((h->type == UV_NAMED_PIPE || h->type == UV_TCP) && !uv_is_closing(h) &&
        h != (uv_handle_t *)&a->unix_l && h != (uv_handle_t *)a->tcp.l)
        a->open_streams++;
}

void ds__api_stop(ds_daemon_t *d)
{
    struct ds_api *a = d->api;

    if (a == NULL)
        return;
    ds__api_status_live_stop(d);
    if (a->unix_on)
        uv_close((uv_handle_t *)&a->unix_l, NULL);
    if (a->tcp.l != NULL)
        uv_close((uv_handle_t *)a->tcp.l, (uv_close_cb)free);
    a->tcp.l = NULL;
    if (a->commit_init)
        uv_close((uv_handle_t *)&a->commit, NULL);
    for (size_t i = 0; i < a->npend; i++)
        if (a->pend[i] != NULL)
            a->pend[i]->req = NULL; /* never answered: their pools must not reach a */
    a->npend = 0;
    if (a->sock_path[0] != '\0' && a->unix_on)
        unlink(a->sock_path);
    explicit_bzero(a->tcp.token, sizeof(a->tcp.token));
    ds__api_conns_detach(&a->conns);
    uv_walk(ds_engine_loop(d->eng), count_stream, a);
    if (a->open_streams > 0) {
        /* a client is still connected: its connection keeps h2o's context
         * (the process is ending; it is not freed under it) */
        d->api = NULL;
        return;
    }
    if (a->h2o_on)
        h2o_context_dispose(&a->ctx);
    if (a->h2o_on)
        h2o_config_dispose(&a->conf);
    /* the closes finish before a goes */
    uv_run(ds_engine_loop(d->eng), UV_RUN_NOWAIT);
    SSL_CTX_free(a->tcp.ssl);
    free(a->pend);
    free(a);
    d->api = NULL;
}

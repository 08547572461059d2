/*
 * GET /v1/upgrade/package/TOKEN (issue 14, README "The upgrade gate's
 * API"): the bytes of the package a grant names, from the content store,
 * for as long as the grant's lease runs (an unknown token: 403; an expired
 * or reported one: 404). "Range: bytes=N-[M]" resumes (206).
 *
 * Pacing: the engine's limiter (distsync/ratelimit.h) over its own tree:
 * the root capped at [console] max_upgrade_bandwidth, one node per site
 * capped at the site's max_upgrade_bandwidth, one leaf per download (leaves
 * are reused, as the limiter never frees a node). The file is never read
 * whole: each turn asks the limiter for up to PKG_CHUNK bytes, preads what
 * it was granted and hands it to h2o; h2o calls proceed when the socket
 * took it, and a download the limiter holds back waits on a timer until
 * its wake-up time. The bytes sent are counted per site (GET /v1/sites:
 * upgrade_bytes), so the bandwidth budget is measured, not estimated.
 *
 * Lifetime: a download is malloc'd, registered in its request's pool; when
 * h2o disposes the request (sent, or the client went away) the download
 * closes its file, gives its leaf back and frees itself after its timer
 * closed. The limiter's tree (struct ds_dpkg) is rebuilt when the
 * configuration changes; an old tree lives until its last download ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <h2o.h>
#include <uv.h>

#include "api_int.h"
#include "distsync/log.h"
#include "distsync/ratelimit.h"

#define PKG_CHUNK     (64 * 1024)
#define PKG_PREFIX    "/v1/upgrade/package/"
#define PKG_PAUSED_MS 1000 /* a cap of 0 (paused): look again this often */

struct pkg_site {
    char *name;
    ds_rl_node_t *node;
    ds_rl_node_t **idle; /* leaves free for the next download */
    size_t nidle, capidle;
    uint64_t bytes;  /* sent to this site's clients */
    unsigned active; /* downloads in progress */
};

struct ds_dpkg {
    const ds_config_t *cfg;
    ds_rl_t *rl;
    struct pkg_site *sites;
    size_t nsites;
    unsigned streams; /* downloads holding this tree */
    int dying;        /* replaced: freed by its last download */
};

struct pkg_stream {
    h2o_generator_t gen;
    h2o_req_t *req; /* NULL once h2o disposed the request */
    struct ds_dpkg *pkg;
    struct pkg_site *site;
    ds_rl_node_t *leaf;
    int fd;
    uint64_t off, end; /* the next byte, one past the last */
    uv_timer_t timer;
    char buf[PKG_CHUNK];
};

static int64_t mono_ns(void)
{
    return (int64_t)uv_hrtime();
}

static void pkg_free(struct ds_dpkg *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nsites; i++) {
        free(p->sites[i].name);
        free(p->sites[i].idle);
    }
    free(p->sites);
    ds_rl_free(p->rl);
    free(p);
}

void ds__api_package_free(ds_daemon_t *d)
{
    struct ds_dpkg *p = d->pkg;

    d->pkg = NULL;
    if (p != NULL && p->streams > 0)
        p->dying = 1;
    else
        pkg_free(p);
}

/* A tree over cfg; the byte counts carried over from old by site name. */
static struct ds_dpkg *pkg_new(const ds_config_t *cfg, const struct ds_dpkg *old)
{
    struct ds_dpkg *p = calloc(1, sizeof(*p));
    int64_t now = mono_ns();

    if (p == NULL || ds_rl_new(&p->rl) < 0 ||
        (cfg->nsites > 0 && (p->sites = calloc(cfg->nsites, sizeof(*p->sites))) == NULL))
        goto fail;
    p->cfg = cfg;
    ds_rl_set_rate(p->rl, ds_rl_root(p->rl), now, cfg->upgrade_bw, DS_RL_NEVER);
    for (size_t i = 0; i < cfg->nsites; i++) {
        struct pkg_site *s = &p->sites[i];

        if ((s->name = strdup(cfg->sites[i].name)) == NULL ||
            ds_rl_add(p->rl, ds_rl_root(p->rl), &s->node) < 0)
            goto fail;
        p->nsites++;
        ds_rl_set_rate(p->rl, s->node, now, cfg->sites[i].upgrade_bw, DS_RL_NEVER);
        for (size_t k = 0; old != NULL && k < old->nsites; k++)
            if (strcmp(old->sites[k].name, s->name) == 0)
                s->bytes = old->sites[k].bytes;
    }
    return p;
fail:
    if (p != NULL && p->sites != NULL && p->nsites < cfg->nsites)
        free(p->sites[p->nsites].name);
    pkg_free(p);
    return NULL;
}

/* d's tree for its configuration, (re)built when needed. NULL: no memory. */
static struct ds_dpkg *pkg_get(ds_daemon_t *d)
{
    struct ds_dpkg *p = d->pkg, *n;

    if (p != NULL && p->cfg == d->cfg)
        return p;
    if ((n = pkg_new(d->cfg, p)) == NULL)
        return NULL;
    ds__api_package_free(d);
    d->pkg = n;
    return n;
}

int ds__api_package_site(const ds_daemon_t *d, const char *site, uint64_t *bytes, unsigned *active)
{
    const struct ds_dpkg *p = d->pkg;

    *bytes = 0;
    *active = 0;
    for (size_t i = 0; p != NULL && i < p->nsites; i++)
        if (strcmp(p->sites[i].name, site) == 0) {
            *bytes = p->sites[i].bytes;
            *active = p->sites[i].active;
            return 0;
        }
    return DS_ENOTFOUND;
}

/* ---- a download ---- */

static void leaf_put(struct pkg_stream *s)
{
    struct pkg_site *st = s->site;
    ds_rl_node_t **v;

    if (s->leaf == NULL)
        return;
    ds_rl_idle(s->pkg->rl, s->leaf, mono_ns());
    st->active--;
    if (st->nidle == st->capidle) {
        size_t cap = st->capidle ? 2 * st->capidle : 8;

        if ((v = realloc(st->idle, cap * sizeof(*v))) == NULL) {
            s->leaf = NULL; /* lost to reuse, still freed with the tree */
            return;
        }
        st->idle = v;
        st->capidle = cap;
    }
    st->idle[st->nidle++] = s->leaf;
    s->leaf = NULL;
}

static int leaf_get(struct pkg_stream *s)
{
    struct pkg_site *st = s->site;

    if (st->nidle > 0)
        s->leaf = st->idle[--st->nidle];
    else if (ds_rl_add(s->pkg->rl, st->node, &s->leaf) < 0)
        return DS_ENOMEM;
    st->active++;
    return 0;
}

static void stream_closed(uv_handle_t *h)
{
    struct pkg_stream *s = h->data;
    struct ds_dpkg *p = s->pkg;

    if (--p->streams == 0 && p->dying)
        pkg_free(p);
    free(s);
}

/* h2o disposes the request: the download ends whatever its state. */
static void stream_dispose(void *arg)
{
    struct pkg_stream *s = *(struct pkg_stream **)arg;

    s->req = NULL;
    leaf_put(s);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, stream_closed);
}

static void pump(struct pkg_stream *s);

static void on_timer(uv_timer_t *t)
{
    struct pkg_stream *s = t->data;

    if (s->req != NULL)
        pump(s);
}

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    pump((struct pkg_stream *)gen);
}

static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    struct pkg_stream *s = (struct pkg_stream *)gen;

    (void)req;
    uv_timer_stop(&s->timer); /* the dispose that follows frees it */
}

/* Sends what the limiter grants now, or waits on the timer for it. */
static void pump(struct pkg_stream *s)
{
    uint64_t want = s->end - s->off < PKG_CHUNK ? s->end - s->off : PKG_CHUNK;
    int64_t now = mono_ns();
    ds_rl_grant_t g;
    h2o_iovec_t iov;
    ssize_t n;

    if (want == 0) {
        leaf_put(s);
        h2o_send(s->req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    ds_rl_request(s->pkg->rl, s->leaf, now, want, &g);
    if (g.bytes == 0) {
        uint64_t ms = g.wake == DS_RL_NEVER ? PKG_PAUSED_MS
                      : g.wake <= now       ? 1
                                            : (uint64_t)((g.wake - now + 999999) / 1000000);

        uv_timer_start(&s->timer, on_timer, ms, 0);
        return;
    }
    n = pread(s->fd, s->buf, (size_t)g.bytes, (off_t)s->off);
    if (n <= 0) {
        ds_log(DS_LOG_ERROR, "daemon: package download: read at %" PRIu64 ": %s", s->off,
               n < 0 ? strerror(errno) : "the file shrank");
        ds_rl_return(s->pkg->rl, s->leaf, now, g.bytes);
        leaf_put(s);
        h2o_send(s->req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    if ((uint64_t)n < g.bytes)
        ds_rl_return(s->pkg->rl, s->leaf, now, g.bytes - (uint64_t)n);
    s->off += (uint64_t)n;
    s->site->bytes += (uint64_t)n;
    iov = h2o_iovec_init(s->buf, (size_t)n);
    if (s->off == s->end)
        leaf_put(s);
    h2o_send(s->req, &iov, 1, s->off == s->end ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

int ds__api_range(const char *hv, size_t len, uint64_t size, uint64_t *lo, uint64_t *hi)
{
    char v[64], *e, *e2;
    unsigned long long a, b;

    *lo = 0;
    *hi = size;
    if (hv == NULL)
        return 0;
    if (len >= sizeof(v) || memchr(hv, '\0', len) != NULL)
        return -1;
    memcpy(v, hv, len);
    v[len] = '\0';
    if (strncmp(v, "bytes=", 6) != 0 || v[6] < '0' || v[6] > '9')
        return -1;
    errno = 0;
    a = strtoull(v + 6, &e, 10);
    if (errno != 0 || *e != '-' || a >= size)
        return -1;
    b = size - 1;
    if (e[1] != '\0') {
        if (e[1] < '0' || e[1] > '9')
            return -1;
        b = strtoull(e + 1, &e2, 10);
        if (errno != 0 || *e2 != '\0' || b < a)
            return -1;
        if (b >= size)
            b = size - 1;
    }
    *lo = a;
    *hi = (uint64_t)b + 1;
    return 1;
}

/* Opens lease's package in the store. Returns the fd, or -1 after
 * replying 404 (absent, not a regular file) or 500. */
static int open_package(ds_daemon_t *d, const ds_gate_lease_t *l, struct stat *st,
                        struct api_res *rs)
{
    char path[PATH_MAX];
    int fd;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", d->cfg->store, l->path) >= sizeof(path)) {
        ds__api_error(rs, 500, "package %s: the path is too long", l->path);
        return -1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 || fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        ds__api_error(rs, 404, "package %s is not in the store (%s)", l->path,
                      fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void headers(h2o_req_t *req, uint64_t lo, uint64_t hi, uint64_t size, int partial)
{
    char *cr;

    req->res.status = partial ? 206 : 200;
    req->res.reason = partial ? "Partial Content" : "OK";
    req->res.content_length = (size_t)(hi - lo);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/octet-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCEPT_RANGES, NULL,
                   H2O_STRLIT("bytes"));
    if (partial) {
        cr = h2o_mem_alloc_pool(&req->pool, 80);
        snprintf(cr, 80, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, lo, hi - 1, size);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_RANGE, NULL, cr,
                       strlen(cr));
    }
}

/* Starts the download of [lo, hi) of fd (taken) at site si. Returns 0, or
 * -1 after replying 503 (fd closed). */
static int start(ds_daemon_t *d, h2o_req_t *req, int fd, int si, uint64_t lo, uint64_t hi,
                 uint64_t size, int partial, struct api_res *rs)
{
    struct ds_dpkg *p = pkg_get(d);
    struct pkg_stream *s = p != NULL ? calloc(1, sizeof(*s)) : NULL;
    struct pkg_stream **slot;

    if (s == NULL || si < 0 || (size_t)si >= p->nsites) {
        free(s);
        close(fd);
        ds__api_error(rs, 503, "out of memory");
        return -1;
    }
    s->pkg = p;
    s->site = &p->sites[si];
    s->fd = fd;
    s->off = lo;
    s->end = hi;
    s->req = req;
    s->gen.proceed = on_proceed;
    s->gen.stop = on_stop;
    if (leaf_get(s) < 0) {
        free(s);
        close(fd);
        ds__api_error(rs, 503, "out of memory");
        return -1;
    }
    uv_timer_init(req->conn->ctx->loop, &s->timer);
    uv_unref((uv_handle_t *)&s->timer); /* a download never holds a batch open */
    s->timer.data = s;
    p->streams++;
    headers(req, lo, hi, size, partial);
    slot = h2o_mem_alloc_shared(&req->pool, sizeof(*slot), stream_dispose);
    *slot = s;
    h2o_start_response(req, &s->gen);
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        s->end = s->off;
        leaf_put(s);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return 0;
    }
    pump(s);
    return 0;
}

int ds__api_package(ds_daemon_t *d, h2o_req_t *req, const struct api_req *rq, struct api_res *rs)
{
    static const char pre[] = PKG_PREFIX;
    char token[DS_GATE_TOKEN_LEN + 2];
    size_t n = req->path.len - (sizeof(pre) - 1);
    ds_gate_lease_t l;
    struct stat st;
    uint64_t lo, hi;
    ssize_t i;
    int fd, partial;

    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        ds__api_error(rs, 405, "%.*s is not allowed here: use GET", (int)req->method.len,
                      req->method.base);
        rs->allow = "GET";
        return -1;
    }
    if (n == 0 || n >= sizeof(token) ||
        ds__api_decode(req->path.base + sizeof(pre) - 1, n, 0, token, sizeof(token)) < 0) {
        ds__api_error(rs, 403, "unknown token (the grant's token from POST /v1/upgrade/request)");
        return -1;
    }
    if (ds__api_gate_lease(d, rq, token, &l, rs) < 0 || (fd = open_package(d, &l, &st, rs)) < 0)
        return -1;
    i = h2o_find_header(&req->headers, H2O_TOKEN_RANGE, -1);
    partial = ds__api_range(i < 0 ? NULL : req->headers.entries[i].value.base,
                            i < 0 ? 0 : req->headers.entries[i].value.len, (uint64_t)st.st_size,
                            &lo, &hi);
    if (partial < 0) {
        close(fd);
        ds__api_error(rs, 416, "Range: expected bytes=N- or bytes=N-M within the %jd bytes",
                      (intmax_t)st.st_size);
        return -1;
    }
    return start(d, req, fd, l.site_index, lo, hi, (uint64_t)st.st_size, partial, rs);
}

int ds__api_package_path(const h2o_req_t *req)
{
    return req->path.len > sizeof(PKG_PREFIX) - 1 &&
           memcmp(req->path.base, PKG_PREFIX, sizeof(PKG_PREFIX) - 1) == 0;
}

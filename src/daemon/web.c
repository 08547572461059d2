/*
 * The web status page (README "The web status page"): GET / and its
 * script, style sheet and icon under /ui/, compiled into the binary from
 * src/daemon/web/ (no CDN, nothing fetched from elsewhere). The page
 * draws what the /v1/ API serves; it has no logic of its own here.
 */
#include <string.h>

#include <h2o.h>

#include "web_int.h"

/* Scripts, styles, images and API calls from this origin only; no
 * inline script or style, no plugins, no framing, no form posts. */
#define WEB_CSP                                                                                    \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "                    \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const struct ds_web_asset *ds__web_find(const char *path, size_t len)
{
    const char *q = memchr(path, '?', len);
    size_t n = q ? (size_t)(q - path) : len;

    for (size_t i = 0; i < ds__web_nassets; i++) {
        const struct ds_web_asset *a = &ds__web_assets[i];

        if (strlen(a->path) == n && memcmp(a->path, path, n) == 0)
            return a;
    }
    return NULL;
}

static void header(h2o_req_t *req, const h2o_token_t *t, const char *v)
{
    h2o_add_header(&req->pool, &req->res.headers, t, NULL, v, strlen(v));
}

int ds__web_serve(h2o_req_t *req)
{
    static h2o_generator_t gen = {NULL, NULL};
    static const char bad_method[] = "{\"error\":\"the status page takes GET or HEAD\"}\n";
    /* lower-case names: h2o keeps these pointers (static) */
    static const char *const extra[][2] = {
        {"content-security-policy", WEB_CSP},
        {"x-content-type-options", "nosniff"},
        {"x-frame-options", "DENY"},
        {"referrer-policy", "no-referrer"},
    };
    const struct ds_web_asset *a = ds__web_find(req->path.base, req->path.len);
    h2o_iovec_t body;

    if (a == NULL)
        return 0;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        req->res.status = 405;
        req->res.reason = "Method Not Allowed";
        header(req, H2O_TOKEN_CONTENT_TYPE, "application/json");
        header(req, H2O_TOKEN_ALLOW, "GET, HEAD");
        h2o_send_inline(req, bad_method, sizeof(bad_method) - 1);
        return 1;
    }
    req->res.status = 200;
    req->res.reason = "OK";
    header(req, H2O_TOKEN_CONTENT_TYPE, a->type);
    header(req, H2O_TOKEN_CACHE_CONTROL, "no-cache");
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
        h2o_add_header_by_str(&req->pool, &req->res.headers, extra[i][0], strlen(extra[i][0]), 0,
                              NULL, extra[i][1], strlen(extra[i][1]));
    req->res.content_length = a->len;
    /* h2o's body is not const: a copy in the request's pool */
    body = h2o_iovec_init(h2o_mem_alloc_pool(&req->pool, a->len), a->len);
    memcpy(body.base, a->data, a->len);
    h2o_start_response(req, &gen);
    h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
    return 1;
}

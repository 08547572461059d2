/*
 * The engine's resolver (transport.h's ds_resolver_t): the DNS lookup of
 * an ssh:// server through uv_getaddrinfo on the batch's loop (libuv's
 * fixed pool does the blocking call; no thread per server), its answer
 * waking the run that asked. A run that gives up first (connect_timeout)
 * releases its request: one not started yet is cancelled, a late answer
 * is freed when it comes.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "distsync/error.h"
#include "engine_int.h"

struct lookup {
    uv_getaddrinfo_t req;
    struct ds_spawn_ctx *owner; /* NULL once released */
    int done, status;
    struct addrinfo *res;
};

/* The resolver's reason as getaddrinfo(3) words it (the blocking lookup's
 * messages), else libuv's. */
static const char *reason(int status)
{
    static const struct {
        int uv, eai;
    } map[] = {
        {UV_EAI_NONAME, EAI_NONAME},     {UV_EAI_AGAIN, EAI_AGAIN},
        {UV_EAI_FAIL, EAI_FAIL},         {UV_EAI_FAMILY, EAI_FAMILY},
        {UV_EAI_MEMORY, EAI_MEMORY},     {UV_EAI_SERVICE, EAI_SERVICE},
        {UV_EAI_SOCKTYPE, EAI_SOCKTYPE}, {UV_EAI_BADFLAGS, EAI_BADFLAGS},
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (map[i].uv == status)
            return gai_strerror(map[i].eai);
    return uv_strerror(status);
}

static void on_answer(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct lookup *q = req->data;

    if (q->owner == NULL) { /* released meanwhile */
        uv_freeaddrinfo(res);
        free(q);
        return;
    }
    q->done = 1;
    q->status = status;
    q->res = res;
    if (q->owner->wake != NULL)
        q->owner->wake(q->owner->arg);
}

static int dns_start(void *ctx, const char *host, const char *port, void **req, char *err,
                     size_t errlen)
{
    struct ds_spawn_ctx *sc = ctx;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct lookup *q = calloc(1, sizeof(*q));
    int rc;

    *req = NULL;
    if (q == NULL) {
        snprintf(err, errlen, "out of memory");
        return DS_ENOMEM;
    }
    q->req.data = q;
    q->owner = sc;
    rc = uv_getaddrinfo(sc->loop, &q->req, on_answer, host, port, &hints);
    if (rc < 0) { /* the callback is never called */
        free(q);
        snprintf(err, errlen, "%s", reason(rc));
        return DS_ETRANSPORT;
    }
    *req = q;
    return 0;
}

static int dns_result(void *ctx, void *req, struct addrinfo **res, const char **why)
{
    struct lookup *q = req;

    (void)ctx;
    if (!q->done)
        return 0;
    *res = q->res;
    q->res = NULL;
    *why = q->status < 0 ? reason(q->status) : "no address";
    return 1;
}

static void dns_release(void *ctx, void *req)
{
    struct lookup *q = req;

    (void)ctx;
    if (q->done) {
        uv_freeaddrinfo(q->res);
        free(q);
        return;
    }
    q->owner = NULL;
    uv_cancel((uv_req_t *)&q->req); /* not started yet: the callback says ECANCELED */
}

/* See engine_int.h. */
void ds__resolver_init(ds_resolver_t *rv, struct ds_spawn_ctx *sc)
{
    *rv = (ds_resolver_t){
        .start = dns_start, .result = dns_result, .release = dns_release, .ctx = sc};
}

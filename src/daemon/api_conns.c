/*
 * The API's TCP connections, retired when a reload moves the listener or
 * changes its TLS (daemon_api.c, tcp_move): a connection the old listener
 * accepted finishes its request in flight, answered with
 * "Connection: close", and closes; an idle one is shut at once (h2o reads
 * the shutdown as the client's end and closes it). So nothing more is
 * served on the old address or with the old TLS setting, where before a
 * keep-alive connection went on until h2o's keep-alive timeout.
 */
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <h2o.h>
#include <h2o/http1.h>
#include <uv.h>

#include "api_int.h"
#include "distsync/log.h"

struct api_conn *ds__api_conn_new(struct api_conns *set)
{
    struct api_conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->set = set;
    c->next = set->head;
    if (set->head != NULL)
        set->head->prev = c;
    set->head = c;
    return c;
}

void ds__api_conn_closed(uv_handle_t *h)
{
    struct api_conn *c = (struct api_conn *)h;

    if (c->set != NULL) {
        if (c->prev != NULL)
            c->prev->next = c->next;
        else
            c->set->head = c->next;
        if (c->next != NULL)
            c->next->prev = c->prev;
    }
    free(c);
}

/* The tracked connection req came on (by its socket's descriptor), or
 * NULL (the Unix socket's, or one not tracked). */
static struct api_conn *conn_of(struct api_conns *set, h2o_req_t *req)
{
    h2o_socket_t *sock =
        req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
    uv_os_fd_t fd, cfd;

    if (sock == NULL || (fd = h2o_socket_get_fd(sock)) < 0)
        return NULL;
    for (struct api_conn *c = set->head; c != NULL; c = c->next)
        if (uv_fileno((uv_handle_t *)&c->h, &cfd) == 0 && cfd == fd)
            return c;
    return NULL;
}

int ds__api_conn_retired(struct api_conns *set, h2o_req_t *req)
{
    struct api_conn *c = conn_of(set, req);

    return c != NULL && c->retired;
}

/* For each HTTP/1 request slot of the API's context (h2o's
 * foreach_request): a retired connection whose request has begun (a byte
 * of it read by h2o or waiting in the socket) is answered, then closed;
 * an idle one is shut now. */
static int retire_req(h2o_req_t *req, void *arg)
{
    struct api_conn *c = conn_of(arg, req);
    h2o_socket_t *sock;
    uv_os_fd_t fd;
    int queued = 0;

    if (c == NULL || !c->retired || uv_fileno((uv_handle_t *)&c->h, &fd) != 0)
        return 0;
    sock = req->conn->callbacks->get_socket(req->conn);
    if (req->timestamps.request_begin_at.tv_sec != 0 ||
        (sock->input != NULL && sock->input->size != 0) ||
        (ioctl(fd, FIONREAD, &queued) == 0 && queued > 0))
        req->http1_is_persistent = 0; /* on_req sets it again once parsed */
    else
        shutdown(fd, SHUT_RDWR);
    return 0;
}

void ds__api_conns_retire(struct api_conns *set, h2o_context_t *ctx)
{
    size_t n = 0;

    for (struct api_conn *c = set->head; c != NULL; c = c->next, n++)
        c->retired = 1;
    if (n == 0)
        return;
    H2O_HTTP1_CALLBACKS.foreach_request(ctx, retire_req, set);
    ds_log(DS_LOG_INFO,
           "daemon: reload: %zu connection%s to the old listener close%s after the request in "
           "flight",
           n, n == 1 ? "" : "s", n == 1 ? "s" : "");
}

void ds__api_conns_detach(struct api_conns *set)
{
    for (struct api_conn *c = set->head, *next; c != NULL; c = next) {
        next = c->next;
        c->set = NULL;
        c->prev = c->next = NULL;
    }
    set->head = NULL;
}

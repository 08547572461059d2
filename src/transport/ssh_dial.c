/*
 * The TCP connect of an ssh:// open without blocking: a non-blocking
 * connect(2) to each address the lookup gave, in turn, until one answers.
 * The caller polls the attempt's socket for writing and bounds the whole
 * by connect_timeout (ssh_open.c).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ssh_int.h"

/* See ssh_int.h. */
void ds__ssh_dial_init(struct ds__ssh_dial *d, struct addrinfo *res)
{
    d->res = d->next = res;
    d->fd = -1;
    d->last_err = EHOSTUNREACH; /* an empty list */
}

/* 1 when the attempt in flight has connected, 0 while it waits, -errno
 * when it failed. */
static int check(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int soerr = 0, one = 1;
    socklen_t sl = sizeof(soerr);

    if (poll(&p, 1, 0) == 0)
        return 0;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        return -errno;
    if (soerr != 0)
        return -soerr;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return 1;
}

/* Replaces the attempt in flight by one to the next address (the new
 * socket first: see ssh_int.h). Returns 1 connected, 0 waiting, -errno
 * when this address failed at once. */
static int next_attempt(struct ds__ssh_dial *d)
{
    const struct addrinfo *ai = d->next;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    int rc = fd < 0 ? -errno : 0;

    d->next = ai->ai_next;
    if (d->fd >= 0)
        close(d->fd);
    d->fd = fd;
    if (rc < 0)
        return rc;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return check(fd);
    return errno == EINPROGRESS ? 0 : -errno;
}

/* See ssh_int.h. */
int ds__ssh_dial_step(struct ds__ssh_dial *d)
{
    int rc = d->fd >= 0 ? check(d->fd) : -d->last_err;

    while (rc < 0) {
        d->last_err = -rc;
        if (d->next == NULL)
            return rc;
        rc = next_attempt(d);
    }
    return rc;
}

/* See ssh_int.h. */
void ds__ssh_dial_end(struct ds__ssh_dial *d)
{
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
    if (d->res != NULL)
        freeaddrinfo(d->res);
    d->res = d->next = NULL;
}

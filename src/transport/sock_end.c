/* The console's end of an in-process receiver's socketpair: sock_end.h. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "distsync/error.h"
#include "sock_end.h"

long ds__sock_send(ds_transport_t *t, const void *p, size_t n, int *dead, const char *who)
{
    ssize_t w;

    do
        w = send(t->wfd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (w < 0 && errno == EINTR);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (w < 0 && (errno == EPIPE || errno == ECONNRESET)) {
        *dead = 1;
        return (long)n;
    }
    if (w < 0) {
        snprintf(t->err, sizeof(t->err), "%s: write: %s", who, strerror(errno));
        return DS_ETRANSPORT;
    }
    return (long)w;
}

ssize_t ds__sock_recv(int fd, void *buf, size_t cap)
{
    ssize_t r = -1;

    errno = EPIPE;
    if (fd >= 0)
        do
            r = recv(fd, buf, cap, MSG_DONTWAIT);
        while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (r == 0) {
        errno = EPIPE;
        return -1;
    }
    return r;
}

void ds__sock_drain(int fd)
{
    char buf[4096];

    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return;
        if (r < 0 && errno != EINTR && poll(&p, 1, -1) < 0 && errno != EINTR)
            return;
    }
}

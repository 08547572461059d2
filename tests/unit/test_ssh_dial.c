/*
 * The non-blocking TCP connect of an ssh:// open (src/transport/ssh_dial.c)
 * against real loopback sockets: a refused address is passed over for the
 * next one, and a list where nothing answers ends with the last reason.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "check.h"
#include "distsync/error.h"
#include "transport/ssh_int.h"

/* A listening loopback socket; *port is its port. */
static int listener(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) < 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

/* A loopback port nothing listens on (bound, then closed). */
static int closed_port(void)
{
    int port = 0, fd = listener(&port);

    close(fd);
    return port;
}

static struct addrinfo *lookup(int port)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char p[8];

    snprintf(p, sizeof(p), "%d", port);
    return getaddrinfo("127.0.0.1", p, &hints, &res) == 0 ? res : NULL;
}

/* Steps d as an event loop would, until it ends; *fds counts the distinct
 * sockets seen while waiting. */
static int dial(struct ds__ssh_dial *d, int *fds)
{
    int rc, last = -1;

    *fds = 0;
    while ((rc = ds__ssh_dial_step(d)) == 0) {
        struct pollfd p = {.fd = d->fd, .events = POLLOUT};

        if (d->fd != last)
            (*fds)++;
        last = d->fd;
        poll(&p, 1, 1000);
    }
    return rc;
}

static void test_next_address(void)
{
    struct ds__ssh_dial d;
    int port = 0, lfd = listener(&port), fds = 0, peer;
    struct addrinfo *res = lookup(closed_port());

    CHECK(lfd >= 0 && res != NULL);
    res->ai_next = lookup(port); /* refused first, then the listener */
    ds__ssh_dial_init(&d, res);
    CHECK_INT(dial(&d, &fds), 1);
    CHECK(d.fd >= 0);
    peer = accept(lfd, NULL, NULL);
    CHECK(peer >= 0); /* connected to the second address */
    CHECK(fds <= 2);
    close(peer);
    ds__ssh_dial_end(&d);
    CHECK_INT(d.fd, -1);
    close(lfd);
}

static void test_none_answers(void)
{
    struct ds__ssh_dial d;
    struct addrinfo *res = lookup(closed_port());
    int fds = 0;

    CHECK(res != NULL);
    res->ai_next = lookup(closed_port());
    ds__ssh_dial_init(&d, res);
    CHECK_INT(dial(&d, &fds), -ECONNREFUSED);
    ds__ssh_dial_end(&d);

    ds__ssh_dial_init(&d, NULL); /* an empty list */
    CHECK_INT(ds__ssh_dial_step(&d), -EHOSTUNREACH);
    ds__ssh_dial_end(&d);
}

int main(void)
{
    RUN(test_next_address);
    RUN(test_none_answers);
    return CHECK_DONE();
}

/*
 * SSH connection setup for the ssh:// transport and `distsync trust`: the
 * URL, DNS, a TCP connect bounded by connect_timeout, the libssh2 session
 * with byte-counting send/recv callbacks, and the handshake with the
 * host-key method preference taken from known_hosts. Everything here
 * blocks (bounded by the deadline): the engine runs it on a worker thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "distsync/error.h"

#include "ssh_int.h"

static int64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* $USER, else the passwd entry's name (getpwuid_r: opens run on worker
 * threads). */
static void default_user(char *out, size_t cap)
{
    const char *u = getenv("USER");
    struct passwd pw, *found = NULL;
    char buf[1024];

    if ((u == NULL || *u == '\0') && getpwuid_r(getuid(), &pw, buf, sizeof(buf), &found) == 0 &&
        found != NULL)
        u = found->pw_name;
    snprintf(out, cap, "%s", u ? u : "root");
}

/* See ssh_int.h. */
int ds__ssh_url_parse(const char *url, struct ds__ssh_url *u, char *err, size_t errlen)
{
    const char *auth, *path, *at, *h, *hend, *colon;
    size_t n;

    memset(u, 0, sizeof(*u));
    if (strncmp(url, "ssh://", 6) != 0)
        goto bad;
    auth = url + 6;
    path = auth + strcspn(auth, "/");
    if (*path != '/' || strlen(path) >= sizeof(u->path))
        goto bad;
    at = memchr(auth, '@', (size_t)(path - auth));
    if (at != NULL) {
        n = (size_t)(at - auth);
        if (n == 0 || n >= sizeof(u->user))
            goto bad;
        memcpy(u->user, auth, n);
    } else {
        default_user(u->user, sizeof(u->user));
    }
    h = at ? at + 1 : auth;
    if (*h == '[') {
        hend = memchr(h, ']', (size_t)(path - h));
        if (hend == NULL)
            goto bad;
        h++;
        colon = hend + 1 < path && hend[1] == ':' ? hend + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(path - h));
        hend = colon ? colon : path;
    }
    n = (size_t)(hend - h);
    if (n == 0 || n >= sizeof(u->host))
        goto bad;
    memcpy(u->host, h, n);
    u->port = colon ? 0 : 22;
    for (const char *d = colon ? colon + 1 : path; d < path; d++) {
        if (*d < '0' || *d > '9' || u->port > 65535)
            goto bad;
        u->port = u->port * 10 + (*d - '0');
    }
    if (u->port < 1 || u->port > 65535)
        goto bad;
    strcpy(u->path, path);
    snprintf(u->where, sizeof(u->where), "%s@%s:%d", u->user, u->host, u->port);
    return 0;
bad:
    snprintf(err, errlen, "%s: not an ssh://[user@]host[:port]/path URL", url);
    return DS_EUSAGE;
}

const char *ds__ssh_errmsg(LIBSSH2_SESSION *s)
{
    char *msg = NULL;

    if (s == NULL || libssh2_session_last_error(s, &msg, NULL, 0) == 0 || msg == NULL)
        return "";
    return msg;
}

void ds__ssh_conn_deadline(struct ds__ssh_conn *c, unsigned s)
{
    c->deadline_ns = mono_ns() + (int64_t)s * 1000000000;
}

long ds__ssh_conn_budget(struct ds__ssh_conn *c)
{
    long ms = (long)((c->deadline_ns - mono_ns()) / 1000000);

    libssh2_session_set_timeout(c->s, ms < 1 ? 1 : ms);
    return ms;
}

/* The socket callbacks: the plain send(2)/recv(2) libssh2 would do, with
 * the bytes counted (libssh2 wants -errno on failure). */
static LIBSSH2_SEND_FUNC(count_send)
{
    struct ds__ssh_conn *c = *abstract;
    ssize_t n = send(socket, buffer, length, flags);

    if (n < 0)
        return -errno;
    c->wire_out += (uint64_t)n;
    return n;
}

static LIBSSH2_RECV_FUNC(count_recv)
{
    struct ds__ssh_conn *c = *abstract;
    ssize_t n = recv(socket, buffer, length, flags);

    if (n < 0)
        return -errno;
    c->wire_in += (uint64_t)n;
    return n;
}

/* One connect(2) to ai, bounded by the deadline. Returns the socket or
 * -errno. */
static int connect_one(const struct addrinfo *ai, int64_t deadline_ns)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    int rc = 0, one = 1, soerr = 0;
    socklen_t sl = sizeof(soerr);

    if (fd < 0)
        return -errno;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto out;
        }
        for (;;) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            long ms = (long)((deadline_ns - mono_ns()) / 1000000);
            int n = ms > 0 ? poll(&p, 1, (int)ms) : 0;

            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                rc = n < 0 ? -errno : -ETIMEDOUT;
                goto out;
            }
            break;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
            rc = soerr ? -soerr : -errno;
            goto out;
        }
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
out:
    if (rc < 0)
        close(fd);
    return rc < 0 ? rc : fd;
}

static int tcp_connect(struct ds__ssh_conn *c, const struct ds__ssh_url *u, unsigned connect_s,
                       char *err, size_t errlen)
{
    struct addrinfo *res = NULL;
    int rc = ds__ssh_resolve(u, c->deadline_ns, connect_s, &res, err, errlen);

    if (rc < 0)
        return rc;
    rc = -EHOSTUNREACH;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        rc = connect_one(ai, c->deadline_ns);
        if (rc >= 0) {
            c->sock = rc;
            rc = 0;
            break;
        }
        if (rc == -ETIMEDOUT)
            break;
    }
    freeaddrinfo(res);
    if (rc == -ETIMEDOUT)
        snprintf(err, errlen, "%s: connect: no answer within connect_timeout = %us", u->where,
                 connect_s);
    else if (rc < 0)
        snprintf(err, errlen, "%s: connect: %s", u->where, strerror(-rc));
    return rc < 0 ? DS_ETRANSPORT : 0;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void lib_init(void)
{
    init_rc = libssh2_init(0);
}

/* See ssh_int.h. */
int ds__ssh_conn_open(struct ds__ssh_conn *c, const struct ds__ssh_url *u, const char *kh,
                      unsigned connect_s, struct ds__ssh_hostkey *hk, char *err, size_t errlen)
{
    int rc;

    memset(c, 0, sizeof(*c));
    c->sock = -1;
    if (connect_s == 0)
        connect_s = DS__SSH_CONNECT_TIMEOUT_S;
    ds__ssh_conn_deadline(c, connect_s);
    pthread_once(&init_once, lib_init);
    if (init_rc != 0) {
        snprintf(err, errlen, "%s: libssh2 failed to initialise", u->where);
        return DS_ETRANSPORT;
    }
    rc = tcp_connect(c, u, connect_s, err, errlen);
    if (rc < 0)
        goto out;
    rc = DS_ENOMEM;
    c->s = libssh2_session_init_ex(NULL, NULL, NULL, c);
    if (c->s == NULL) {
        snprintf(err, errlen, "%s: out of memory", u->where);
        goto out;
    }
    libssh2_session_callback_set(c->s, LIBSSH2_CALLBACK_SEND, (void *)count_send);
    libssh2_session_callback_set(c->s, LIBSSH2_CALLBACK_RECV, (void *)count_recv);
    libssh2_session_set_blocking(c->s, 1);
    rc = ds__ssh_hostkey_prefer(c->s, kh, u);
    if (rc < 0) {
        snprintf(err, errlen, "%s: out of memory", u->where);
        goto out;
    }
    ds__ssh_conn_budget(c);
    if (libssh2_session_handshake(c->s, c->sock) != 0) {
        int e = libssh2_session_last_errno(c->s);

        rc = DS_ETRANSPORT;
        if (e == LIBSSH2_ERROR_TIMEOUT)
            snprintf(err, errlen, "%s: SSH handshake: no answer within connect_timeout = %us",
                     u->where, connect_s);
        else
            snprintf(err, errlen, "%s: SSH handshake failed: %s", u->where, ds__ssh_errmsg(c->s));
        goto out;
    }
    rc = ds__ssh_hostkey_lookup(c->s, kh, u, hk, err, errlen);
out:
    if (rc < 0)
        ds__ssh_conn_close(c, 0);
    return rc;
}

/* See ssh_int.h. */
void ds__ssh_conn_close(struct ds__ssh_conn *c, int graceful)
{
    if (c->s != NULL) {
        if (graceful) {
            libssh2_session_set_blocking(c->s, 1);
            libssh2_session_set_timeout(c->s, 2000);
            libssh2_session_disconnect(c->s, "distsync: done");
        }
        if (!graceful && c->sock >= 0) /* nothing to wait for in free */
            shutdown(c->sock, SHUT_RDWR);
        libssh2_session_set_timeout(c->s, 1000); /* free may still send */
        libssh2_session_free(c->s);
        c->s = NULL;
    }
    if (c->sock >= 0)
        close(c->sock);
    c->sock = -1;
}

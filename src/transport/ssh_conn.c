/*
 * The SSH connection of the ssh:// transport and `distsync trust`: the
 * URL, the libssh2 session with byte-counting send/recv callbacks and the
 * host-key method preference taken from known_hosts, the deadline of
 * libssh2's blocking calls, and the close. The open itself is stepped by
 * ssh_open.c.
 */
#include <errno.h>
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

/* See ssh_int.h. */
int64_t ds__ssh_mono_ns(void)
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
    snprintf(u->hostport, sizeof(u->hostport), strchr(u->host, ':') ? "[%s]:%d" : "%s:%d", u->host,
             u->port);
    snprintf(u->where, sizeof(u->where), "%s@%s", u->user, u->hostport);
    return 0;
bad:
    snprintf(err, errlen, "%s: not an ssh://[user@]host[:port]/path URL", url);
    return DS_EUSAGE;
}

const char *ds__ssh_errmsg(LIBSSH2_SESSION *s)
{
    char *msg = NULL;
    int e = s ? libssh2_session_last_error(s, &msg, NULL, 0) : 0;

    /* libssh2 says only "transport read" or "unable to send" for a cut */
    if (e == LIBSSH2_ERROR_SOCKET_RECV || e == LIBSSH2_ERROR_SOCKET_SEND)
        return "the connection was cut (the server's sshd or the network closed it)";
    if (e == LIBSSH2_ERROR_SOCKET_DISCONNECT)
        return "the server closed the connection";
    if (e == 0 || msg == NULL)
        return "";
    return msg;
}

/* See ssh_int.h. */
int ds__ssh_conn_wait(const struct ds__ssh_conn *c, int64_t wake_ns, struct ds__ssh_wait *w)
{
    w->fd = c->sock;
    w->waits = DS_TRANSPORT_WAIT_READ;
    if (libssh2_session_block_directions(c->s) & LIBSSH2_SESSION_BLOCK_OUTBOUND)
        w->waits |= DS_TRANSPORT_WAIT_WRITE;
    w->wake_ns = wake_ns;
    return 0;
}

long ds__ssh_conn_budget(struct ds__ssh_conn *c)
{
    long ms = (long)((c->deadline_ns - ds__ssh_mono_ns()) / 1000000);

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

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void lib_init(void)
{
    init_rc = libssh2_init(0);
}

/* See ssh_int.h. */
int ds__ssh_session_new(struct ds__ssh_conn *c, const struct ds__ssh_url *u, const char *kh,
                        char *err, size_t errlen)
{
    pthread_once(&init_once, lib_init);
    if (init_rc != 0) {
        snprintf(err, errlen, "%s: libssh2 failed to initialise", u->where);
        return DS_ETRANSPORT;
    }
    c->s = libssh2_session_init_ex(NULL, NULL, NULL, c);
    if (c->s == NULL) {
        snprintf(err, errlen, "%s: out of memory", u->where);
        return DS_ENOMEM;
    }
    libssh2_session_callback_set(c->s, LIBSSH2_CALLBACK_SEND, (void *)count_send);
    libssh2_session_callback_set(c->s, LIBSSH2_CALLBACK_RECV, (void *)count_recv);
    libssh2_session_set_blocking(c->s, 0);
    if (ds__ssh_hostkey_prefer(c->s, kh, u) < 0) {
        snprintf(err, errlen, "%s: out of memory", u->where);
        return DS_ENOMEM;
    }
    return 0;
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

/* See ssh_int.h. */
void ds__ssh_conn_drop(struct ds__ssh_conn *c, LIBSSH2_CHANNEL *ch)
{
    if (c->sock >= 0) /* nothing to wait for below */
        shutdown(c->sock, SHUT_RDWR);
    if (c->s != NULL) {
        libssh2_session_set_blocking(c->s, 1);
        libssh2_session_set_timeout(c->s, 1000);
        if (ch != NULL)
            libssh2_channel_free(ch);
    }
    ds__ssh_conn_close(c, 0);
}

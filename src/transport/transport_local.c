/*
 * file:// backend, transport = local: the receiver runs in this process on
 * a thread of its own, serving the protocol (ds_apply_serve(), the loop
 * `distsync agent` runs) over one end of an AF_UNIX socketpair. The console
 * holds the other end, non-blocking, as rfd = wfd: writes and reads never
 * do the receiver's file-system work, and a poll or libuv loop waits on the
 * fd as on an agent's pipes.
 *
 * The thread ends after BYE, at end of input (close shuts our write side)
 * or when kill shuts the socket down; it then ends the receiver
 * (ds_apply_finish(): aborts open files, writes the manifest) and closes
 * its end, which the console reads as the end of the session.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "distsync/apply.h"
#include "distsync/error.h"
#include "distsync/log.h"
#include "distsync/transport.h"
#include "sock_end.h"

#define LOCAL_SNDBUF (1 << 20) /* 4 MiB measured no faster */

struct local {
    ds_transport_t t; /* first: the common head; rfd = wfd = our end */
    ds_apply_t *ap;   /* the thread's until it is joined */
    pthread_t thread;
    int peer;      /* the thread's end (closed by the thread) */
    int started;   /* the thread runs until joined */
    int finish_rc; /* ds_apply_finish()'s result, set by the thread */
    int dead;      /* the receiver ended the session */
    int closed;    /* close() was called */
    int close_rc;
    ds_log_scope_t scope; /* the opener's: the receiver's lines name its run */
};

static void *serve_thread(void *arg)
{
    struct local *l = arg;
    char err[512];

    ds_log_scope_set(&l->scope);
    /* The serve error shows on the console side as the end of the stream
     * (and the receiver's ERR frame); close reports the manifest. */
    (void)ds_apply_serve(l->ap, l->peer, l->peer, err, sizeof(err));
    l->finish_rc = ds_apply_finish(l->ap);
    close(l->peer);
    return NULL;
}

static long local_write(ds_transport_t *t, const void *p, size_t n)
{
    struct local *l = (struct local *)t;

    if (l->dead || l->closed)
        return (long)n; /* swallowed: the session end is reported by read */
    return ds__sock_send(t, p, n, &l->dead, "receiver");
}

static long local_read(ds_transport_t *t, void *buf, size_t cap)
{
    ssize_t r = ds__sock_recv(t->rfd, buf, cap);

    if (r >= 0)
        return (long)r;
    if (errno != ECONNRESET && errno != EPIPE) {
        snprintf(t->err, sizeof(t->err), "receiver: read: %s", strerror(errno));
        return DS_ETRANSPORT;
    }
    ((struct local *)t)->dead = 1;
    snprintf(t->err, sizeof(t->err), "receiver ended the session");
    return DS_ETRANSPORT;
}

/* Ends our write side (the thread sees the end of its input after what is
 * queued), drains its replies until it closed its end, joins it. */
static int local_close(ds_transport_t *t)
{
    struct local *l = (struct local *)t;

    if (l->closed)
        return l->close_rc;
    l->closed = 1;
    if (l->started) {
        shutdown(t->wfd, SHUT_WR);
        ds__sock_drain(t->rfd);
        pthread_join(l->thread, NULL);
        l->started = 0;
        l->close_rc = l->finish_rc;
    }
    close(t->rfd);
    t->rfd = t->wfd = -1;
    if (l->close_rc < 0)
        snprintf(t->err, sizeof(t->err), "receiver: %s", ds_strerror(l->close_rc));
    return l->close_rc;
}

/* Both directions: a thread blocked writing replies gets EPIPE, one
 * blocked reading gets the end of its input. It ends once the file-system
 * call it is in returns. */
static void local_kill(ds_transport_t *t)
{
    if (t->rfd >= 0)
        shutdown(t->rfd, SHUT_RDWR);
}

static void local_free(ds_transport_t *t)
{
    struct local *l = (struct local *)t;

    local_close(t);
    ds_apply_free(l->ap);
    free(l);
}

/* What the receiver's thread has not read: our end's send queue (an
 * AF_UNIX stream socket counts its buffers' true size: a little over). */
static uint64_t local_unread(const ds_transport_t *t)
{
    int n = 0;

    return t->wfd >= 0 && ioctl(t->wfd, SIOCOUTQ, &n) == 0 && n > 0 ? (uint64_t)n : 0;
}

static const ds_transport_ops_t local_ops = {
    .unread = local_unread,
    .name = "local",
    .write = local_write,
    .read = local_read,
    .close = local_close,
    .kill = local_kill,
    .free = local_free,
};

/* A wider send buffer than the default (208 KiB): fewer hand-offs between
 * the console's thread and the receiver's, which matters when the two
 * cores are busy. Best effort: capped by net.core.wmem_max. */
static void widen(int fd)
{
    int size = LOCAL_SNDBUF;

    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

/* Starts the thread with every signal blocked: signals stay with the
 * console's threads (a SIGINT wakes their poll). Returns 0 or -errno. */
static int start(struct local *l)
{
    sigset_t all, old;
    int rc;

    sigfillset(&all);
    ds_log_scope_save(&l->scope);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = -pthread_create(&l->thread, NULL, serve_thread, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    l->started = rc == 0;
    return rc;
}

int ds__transport_local_open(const char *root, int no_fsync, ds_transport_t **out, char *err,
                             size_t errlen)
{
    ds_apply_opts_t o = {.no_fsync = no_fsync, .peer_reports = 1}; /* our console prints them */
    struct local *l = calloc(1, sizeof(*l));
    int sv[2] = {-1, -1};
    int rc = DS_ENOMEM;

    *out = NULL;
    if (l == NULL) {
        snprintf(err, errlen, "file://%s: out of memory", root);
        return DS_ENOMEM;
    }
    l->t.ops = &local_ops;
    rc = ds_apply_new(root, &o, &l->ap, err, errlen);
    if (rc < 0)
        goto fail;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
        fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK) < 0) {
        rc = -errno;
        snprintf(err, errlen, "file://%s: socketpair: %s", root, strerror(errno));
        goto fail;
    }
    l->t.rfd = l->t.wfd = sv[0];
    l->peer = sv[1];
    widen(sv[0]);
    widen(sv[1]);
    rc = start(l);
    if (rc < 0) {
        snprintf(err, errlen, "file://%s: cannot start the receiver thread: %s", root,
                 strerror(-rc));
        goto fail;
    }
    *out = &l->t;
    return 0;
fail:
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    ds_apply_free(l->ap);
    free(l);
    return rc;
}

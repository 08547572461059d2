/*
 * The engine's spawner (transport.h's ds_spawner_t): agents run under
 * uv_spawn on the loop thread, and their exit comes back through uv's
 * exit callback, which wakes the run that owns the child; no thread waits
 * on a child. A child outlives its transport when need be: released
 * before it exited, it is reaped by libuv when it exits (the batch's loop
 * runs until then), and its record is freed once its handle is closed.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "distsync/error.h"
#include "engine_int.h"

struct child {
    uv_process_t proc;
    struct ds_spawn_ctx *owner; /* NULL once released */
    int exited, closed;
    int64_t code;
    int sig;
};

static void child_closed(uv_handle_t *h)
{
    struct child *c = h->data;

    c->closed = 1;
    if (c->owner == NULL)
        free(c);
}

static void child_exit(uv_process_t *p, int64_t code, int sig)
{
    struct child *c = p->data;

    c->exited = 1;
    c->code = code;
    c->sig = sig;
    uv_close((uv_handle_t *)p, child_closed);
    if (c->owner != NULL && c->owner->wake != NULL)
        c->owner->wake(c->owner->arg); /* its run reaps it (ds_transport_reap) */
}

static int sp_spawn(void *ctx, char *const argv[], int in_fd, int out_fd, int err_fd, void **out,
                    char *err, size_t errlen)
{
    struct ds_spawn_ctx *sc = ctx;
    struct child *c = calloc(1, sizeof(*c));
    uv_stdio_container_t io[3] = {
        {.flags = UV_INHERIT_FD, .data.fd = in_fd},
        {.flags = UV_INHERIT_FD, .data.fd = out_fd},
        /* the agent's messages (the SMB worker's: a pipe, for the run's events) */
        {.flags = UV_INHERIT_FD, .data.fd = err_fd >= 0 ? err_fd : STDERR_FILENO},
    };
    uv_process_options_t o = {
        .exit_cb = child_exit,
        .file = argv[0],
        .args = (char **)argv,
        .stdio_count = 3,
        .stdio = io,
        /* a session of its own: a terminal's Ctrl-C reaches the console
         * only, which winds the session down; the agent ends at the end of
         * its input when the console is gone */
        .flags = UV_PROCESS_DETACHED,
    };
    int rc;

    *out = NULL;
    if (c == NULL) {
        snprintf(err, errlen, "agent %s: out of memory", argv[0]);
        return DS_ENOMEM;
    }
    c->proc.data = c;
    rc = uv_spawn(sc->loop, &c->proc, &o);
    if (rc < 0) {
        snprintf(err, errlen, "agent %s: cannot start it: %s", argv[0], uv_strerror(rc));
        uv_close((uv_handle_t *)&c->proc, child_closed); /* libuv: even a failed spawn */
        return rc == UV_ENOENT ? -ENOENT : DS_ETRANSPORT;
    }
    c->owner = sc;
    *out = c;
    return 0;
}

static void sp_kill(void *ctx, void *child, int sig)
{
    struct child *c = child;

    (void)ctx;
    if (!c->exited)
        uv_process_kill(&c->proc, sig);
}

static int sp_exited(void *ctx, void *child, int *code, int *sig)
{
    const struct child *c = child;

    (void)ctx;
    if (!c->exited)
        return 0;
    *code = (int)c->code;
    *sig = c->sig;
    return 1;
}

static void sp_release(void *ctx, void *child)
{
    struct child *c = child;

    (void)ctx;
    c->owner = NULL;
    if (c->closed)
        free(c);
}

void ds__spawner_init(ds_spawner_t *sp, struct ds_spawn_ctx *sc, uv_loop_t *loop,
                      void (*wake)(void *arg), void *arg)
{
    sc->loop = loop;
    sc->wake = wake;
    sc->arg = arg;
    *sp = (ds_spawner_t){
        .spawn = sp_spawn, .kill = sp_kill, .exited = sp_exited, .release = sp_release, .ctx = sc};
}

/*
 * Transport: a byte stream between the console and one target's receiver,
 * behind one vtable so that the sender session (session.h) never knows
 * which backend it talks to.
 *
 * Backends:
 *  - local (file://, transport = local): the receiver (apply.h) runs in
 *    this process; writes feed it directly and its replies are read back.
 *    It exposes no fds: it is always ready.
 *  - pipe (file://, transport = agent): `distsync agent --root DIR` runs as
 *    a child process and the protocol flows over its stdin/stdout, the same
 *    byte-stream shape as an SSH exec channel or the SMB worker pipe.
 *
 * All calls are non-blocking on the console side: write and read return 0
 * when the stream cannot move now; the caller then polls the fds given by
 * ds_transport_fds() (a libuv loop can poll the same fds).
 *
 * A pipe transport writes to a child: the caller must ignore SIGPIPE
 * (signal(SIGPIPE, SIG_IGN)) so that a dead agent shows as an error.
 */
#ifndef DISTSYNC_TRANSPORT_H
#define DISTSYNC_TRANSPORT_H

#include <stddef.h>
#include <sys/types.h>

typedef struct ds_transport ds_transport_t;

typedef struct ds_transport_ops {
    const char *name; /* "local", "agent" */
    /* Accepts up to n bytes: returns the count taken (0: would block) or <0. */
    long (*write)(ds_transport_t *t, const void *p, size_t n);
    /* Reads up to cap bytes: returns the count (0: nothing now), DS_ETRANSPORT
     * at end of stream (message in t->err), or another negative code. */
    long (*read)(ds_transport_t *t, void *buf, size_t cap);
    /* Ends the stream: closes the write side and waits for the peer to end
     * (reaps the child; an agent still running timeout_s after the end of
     * its input is killed). Returns 0 or an error (message in t->err). */
    int (*close)(ds_transport_t *t);
    /* Ends the peer at once, whatever it is doing (SIGKILL for an agent),
     * so that close never waits on a hung target. NULL: nothing to end. */
    void (*kill)(ds_transport_t *t);
    void (*free)(ds_transport_t *t);
} ds_transport_ops_t;

/* Common head of every backend's object. */
struct ds_transport {
    const ds_transport_ops_t *ops;
    int rfd, wfd;  /* fds to poll for reading / writing; -1: always ready */
    char err[512]; /* last error, naming the target */
};

/* What to connect to. Strings are borrowed for the call only. */
typedef struct ds_transport_cfg {
    const char *url;    /* file:///abs/path (ssh://, smb:// come later) */
    const char *mode;   /* "local" (default when NULL) or "agent" */
    const char *agent;  /* agent binary; NULL: /proc/self/exe */
    int no_fsync;       /* local receiver: skip fsync (tests only) */
    unsigned timeout_s; /* agent: how long close waits for it to end (0: 30 s) */
    int create_root;    /* create a missing root (with its parents), else fail */
} ds_transport_cfg_t;

/*
 * Opens a transport for cfg. On success returns 0 with *out set (free with
 * ds_transport_free). On failure returns DS_EUSAGE (unsupported URL or
 * mode), -errno or DS_ENOMEM and writes a message naming the URL into err.
 * A missing root fails with -ENOENT saying "target root P does not exist
 * (create it, or set create_root = yes)" unless cfg->create_root; a root
 * that is not a directory fails naming it and the errno.
 */
int ds_transport_open(const ds_transport_cfg_t *cfg, ds_transport_t **out, char *err,
                      size_t errlen);

/* Wrappers over the vtable; see ds_transport_ops_t. */
long ds_transport_write(ds_transport_t *t, const void *p, size_t n);
long ds_transport_read(ds_transport_t *t, void *buf, size_t cap);
int ds_transport_close(ds_transport_t *t);
/* Ends a hung peer (see ds_transport_ops_t.kill); close and free still
 * follow. */
void ds_transport_kill(ds_transport_t *t);

/* The fds to poll (-1: none, the transport is always ready). */
void ds_transport_fds(const ds_transport_t *t, int *rfd, int *wfd);

/* Last error text ("" when none). Valid as long as t. */
const char *ds_transport_error(const ds_transport_t *t);

/* Frees t (closing it first if needed, which kills an agent that has not
 * ended). NULL is a no-op. */
void ds_transport_free(ds_transport_t *t);

/* Backends (src/transport/transport_local.c, src/transport/transport_pipe.c). root is the
 * target directory. */
int ds__transport_local_open(const char *root, int no_fsync, ds_transport_t **out, char *err,
                             size_t errlen);
int ds__transport_pipe_open(const char *root, const char *agent, unsigned close_wait_s,
                            ds_transport_t **out, char *err, size_t errlen);

/* Extracts the directory of a file:// URL into buf. Returns 0 or DS_EUSAGE. */
int ds_transport_file_root(const char *url, char *buf, size_t cap);

#endif

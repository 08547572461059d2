/*
 * Transport: a byte stream between the console and one target's receiver,
 * behind one vtable so that the sender session (session.h) never knows
 * which backend it talks to.
 *
 * Backends:
 *  - local (file://, transport = local): the receiver (apply.h) runs in
 *    this process, on a thread of its own (ds_apply_serve() over one end
 *    of a socketpair); the console holds the other end. The caller's thread
 *    never does the receiver's file-system work. The receiver logs
 *    (ds_log) from that thread: the log callback must be thread-safe.
 *  - pipe (file://, transport = agent): `distsync agent --root DIR` runs as
 *    a child process and the protocol flows over its stdin/stdout, the same
 *    byte-stream shape as an SSH exec channel or the SMB worker pipe.
 *  - ssh (ssh://user@host[:port]/path, transport = agent|auto): libssh2
 *    runs the agent command (`distsync agent` by default) with --root PATH
 *    on an exec channel; rfd and wfd are the TCP socket. Opening (DNS,
 *    connect, handshake, host-key check, authentication) is bounded by
 *    connect_timeout: a loop steps it without blocking
 *    (ds_transport_open_begin), ds_transport_open blocks. After the open
 *    the session is non-blocking. wfd is the socket only while libssh2 has an
 *    outgoing packet half sent, else -1 (a full remote window waits for the
 *    peer's window adjust, which is POLLIN).
 *  - sftp (ssh://, transport = sftp, or auto when the server runs no agent
 *    that speaks our protocol): an in-process receiver, stepped by write
 *    and read on the caller's thread, speaks the protocol and SFTP to the
 *    server with libssh2 non-blocking; rfd and wfd are the socket as in
 *    agent mode (src/transport/transport_sftp.c). It takes whole files
 *    only (caps has DS_TRANSPORT_WHOLE_ONLY) and leaves a note for the
 *    run's events (why SFTP, how files are replaced).
 *
 * write, read and waits are non-blocking on the console side: write and
 * read return 0 when the stream cannot move now; the caller then polls the
 * fds given by ds_transport_fds() for the directions ds_transport_waits()
 * names (a libuv loop can poll the same fds).
 *
 * open and close may block: a network backend does its handshake in open
 * and waits for the peer in close (close on local joins the receiver's
 * thread; on agent without a spawner it reaps the child; with the
 * engine's spawner the child is started by ds_transport_start and its
 * exit collected by ds_transport_reap, both on the loop thread, and close
 * only closes the console's ends). The engine runs open and close on worker
 * threads, so a backend's open and close must touch nothing but their own
 * object and arguments (no console state, no loop handles); an ssh:// open
 * is stepped on the loop instead (ds_transport_open_begin), and so is the
 * close of a backend that has close_step (ssh: agent and SFTP). One
 * transport is used by one thread at a time: the engine calls kill (a hung
 * peer) on the loop thread before it hands close to a worker, never while
 * close runs (a stepped close runs on the loop thread: kill may come
 * between its steps).
 *
 * Writing to a gone peer: the pipe transport needs SIGPIPE ignored by the
 * caller (signal(SIGPIPE, SIG_IGN)) so that a dead agent shows as an
 * error; the local transport sends with MSG_NOSIGNAL.
 */
#ifndef DISTSYNC_TRANSPORT_H
#define DISTSYNC_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "distsync/error.h"

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
    /* Ends the peer at once, whatever it is doing (SIGKILL for an agent;
     * shutting the socket down for local, so its thread ends once the
     * file-system call it is in returns), so that close never waits on a
     * hung target. NULL: nothing to end. */
    void (*kill)(ds_transport_t *t);
    /* The directions (DS_TRANSPORT_WAIT_*) to poll for before the stream
     * can move, given whether the caller has bytes to write. A backend over
     * a library with its own protocol state (libssh2: its block directions)
     * answers from that state: a read may wait until the socket is
     * writable, a write until it is readable. NULL: the default for plain
     * fds, READ always and WRITE when the caller has bytes to write. */
    unsigned (*waits)(const ds_transport_t *t, int have_output);
    void (*free)(ds_transport_t *t);
    /* Takes the oldest line the peer wrote on its side channel (ssh: the
     * agent's stderr; a bounded count of lines, each cut to a bounded
     * length) into buf (NUL-terminated, cut to cap). Returns 1 when a
     * line was taken, 0 when none is waiting. NULL: no side channel. */
    int (*note)(ds_transport_t *t, char *buf, size_t cap);
    /* Starts the peer on the caller's (loop) thread after an open on a
     * worker: the agent's child through the cfg's spawner. NULL: nothing. */
    int (*start)(ds_transport_t *t);
    /* After close: 1 once the peer has ended (0 or an error in t->err as
     * the result: < 0), 0 while it runs, with *wake_ns when to ask again
     * (the exit of a spawned child also wakes the spawner's owner). NULL:
     * close already waited. */
    int (*reap)(ds_transport_t *t, int64_t now_ns, int64_t *wake_ns);
    /* The link's rate is about bytes_per_s (0: unknown): a backend with a
     * kernel buffer of its own (the agent's pipe) sizes it to a few
     * milliseconds of that, enough at high rates, never a queue that
     * delays a control frame. NULL: nothing to size. */
    void (*rate)(ds_transport_t *t, uint64_t bytes_per_s);
    /* close as steps on the caller's loop, instead of close on a worker:
     * 1 once closed (*rc: close's result, message in t->err), 0 while it
     * waits: poll *fd (-1: none; then the transport's fds are about to be
     * closed, so stop polling them) for *waits, and step again by *wake_ns
     * at the latest. Bounded as close is; kill ends it at once. NULL:
     * close blocks (run it on a worker). */
    int (*close_step)(ds_transport_t *t, int64_t now_ns, int *fd, unsigned *waits, int64_t *wake_ns,
                      int *rc);
    /* Bytes write took that the far end has not read yet, as the kernel
     * or the protocol tells (a socket's send queue, a pipe's content, the
     * SSH channel window not yet given back), so that progress can count
     * what the receiver got, not what was handed over. It may overcount a
     * little (never under): the receiver got at least the rest. NULL: 0. */
    uint64_t (*unread)(const ds_transport_t *t);
} ds_transport_ops_t;

/*
 * Child processes started by the caller's event loop instead of fork and
 * waitpid (the engine's, under uv_spawn). Every call is made on the loop
 * thread. child is the spawner's handle of one process.
 */
typedef struct ds_spawner {
    /* Starts argv[0] (argv NULL-ended) with in_fd as its stdin and out_fd
     * as its stdout, err_fd as its stderr (-1: the caller's), in a session
     * of its own (a terminal's Ctrl-C reaches the console only). Returns 0
     * with *child, or < 0 with a message in err. */
    int (*spawn)(void *ctx, char *const argv[], int in_fd, int out_fd, int err_fd, void **child,
                 char *err, size_t errlen);
    /* Sends sig to child unless it has exited. */
    void (*kill)(void *ctx, void *child, int sig);
    /* 1 once child has exited, with its exit code or the signal that ended
     * it (*sig > 0); else 0. */
    int (*exited)(void *ctx, void *child, int *code, int *sig);
    /* The transport is done with child (exited or not: the spawner reaps
     * it when it exits; one not exited was sent SIGKILL first). */
    void (*release)(void *ctx, void *child);
    void *ctx;
} ds_spawner_t;

/*
 * DNS lookups run by the caller's event loop (the engine's: uv_getaddrinfo)
 * instead of a thread per lookup. Every call is made on the loop thread;
 * ctx also knows whom to wake (the run that started the lookup) when an
 * answer comes.
 */
struct addrinfo;
typedef struct ds_resolver {
    /* Starts looking host (port: a decimal string) up for a TCP connect.
     * Returns 0 with *req, or < 0 with a message in err. */
    int (*start)(void *ctx, const char *host, const char *port, void **req, char *err,
                 size_t errlen);
    /* 1 once req has ended: *res (the caller frees it with freeaddrinfo)
     * or NULL with *why (the resolver's reason, static text); 0 while it
     * runs. */
    int (*result)(void *ctx, void *req, struct addrinfo **res, const char **why);
    /* The caller is done with req, ended or not (a late answer is
     * dropped). */
    void (*release)(void *ctx, void *req);
    void *ctx;
} ds_resolver_t;

/* Directions a transport waits on (ds_transport_waits()). */
#define DS_TRANSPORT_WAIT_READ  1u /* poll rfd for POLLIN */
#define DS_TRANSPORT_WAIT_WRITE 2u /* poll wfd for POLLOUT */

/* Common head of every backend's object. */
struct ds_transport {
    const ds_transport_ops_t *ops;
    int rfd, wfd;  /* fds to poll for reading / writing; -1: always ready */
    char err[512]; /* last error, naming the target */
    /* Bytes that crossed the link (ssh: counted by libssh2's send/recv
     * callbacks, encryption and SSH framing included), for caps and the
     * run's wire bytes. 0 for the backends without a link (local, pipe). */
    uint64_t wire_in, wire_out;
    unsigned caps;  /* DS_TRANSPORT_WHOLE_ONLY...; set by open */
    char note[512]; /* set by open: what the run's events should say about
                     * this transport (the SFTP mode and why), "" else */
};

/* The receiver takes whole files only (LITERAL): no COPY, DELTA or SIG,
 * so the plan sends every changed file whole (SFTP mode). */
#define DS_TRANSPORT_WHOLE_ONLY 1u
/* Replacing an existing file leaves its path absent for an instant (never
 * partial): shell-less SFTP's unlink + rename. */
#define DS_TRANSPORT_REPLACE_GAP 2u
/* Frames go uncompressed: the peer is a local process that writes the
 * payload over its own link (the SMB worker), so compressing only costs
 * CPU, and the bytes written to it (which the caps count) are then about
 * the bytes it sends. */
#define DS_TRANSPORT_PLAIN 4u
/* The receiver's basis reads cross the WAN (the SMB worker reads the share):
 * deltas for it read the basis only through COPY records, which it applies
 * on the server (DS_DELTA_FMT_ZPATCH_COPY). */
#define DS_TRANSPORT_REMOTE_BASIS 8u
/* auto's probe wrote cfg->prelude and the agent answered HELLO_OK: the
 * session must write those very bytes first (they are taken, not sent
 * again), and their answers follow in order. */
#define DS_TRANSPORT_PRELUDE 16u

/* What to connect to. Strings are borrowed for the call only. */
typedef struct ds_transport_cfg {
    const char *url;            /* file:///abs/path or ssh://[user@]host[:port]/path */
    const char *mode;           /* file://: "local" (default when NULL) or "agent";
                                 * ssh://: "agent", "sftp" or "auto" (NULL: auto:
                                 * the agent when it answers, else sftp) */
    const char *agent;          /* file://: agent binary, NULL: /proc/self/exe;
                                 * ssh://: remote command, NULL: "distsync agent" */
    const char *server;         /* the server's name, for messages; may be NULL */
    const char *identity;       /* ssh: private key file; NULL: ssh-agent */
    const char *known_hosts;    /* ssh: NULL: ~/.ssh/known_hosts */
    unsigned connect_timeout_s; /* ssh: bound of the whole open (0: 30 s) */
    int no_fsync;               /* local receiver: skip fsync (tests only) */
    unsigned timeout_s;         /* agent: how long close waits for it to end (0: 30 s) */
    int create_root;            /* create a missing root (with its parents), else fail */
    unsigned test_dns_delay_ms; /* ssh, tests only: the DNS lookup waits this long first */
    /* agent (file://): the child is started by this spawner, on its loop
     * thread, by ds_transport_start (NULL: fork and exec in open, waitpid
     * in close). Borrowed for the transport's life. */
    const ds_spawner_t *spawner;
    int verify_readback; /* sftp: read each upload back and check its SHA-256 */
    /* smb://: the credentials file (NULL: the environment), encrypt = yes */
    const char *smb_credentials;
    int smb_encrypt;
    /* smb://: the console's retain store directory, which the worker reads
     * to check files built with server-side copies (NULL: none) */
    const char *smb_retain;
    /* smb://: SMB connections to the server (0: 1), each a worker process */
    unsigned smb_connections;
    /* tests only: sftp flips a byte of this path's upload before verifying it */
    const char *test_sftp_corrupt;
    /* ssh: DNS lookups of a stepped open (ds_transport_open_begin) go
     * through this resolver (NULL: a blocking lookup bounded by
     * connect_timeout; ds_transport_open always does that). Borrowed for
     * the opening's life. */
    const ds_resolver_t *resolver;
    /* ssh://, transport = auto, stepped open: the bytes the probe of the
     * agent writes instead of its own HELLO (ds_session_prelude: HELLO
     * offering versions 4..max, LEASE, MANIFEST_GET, LIST); NULL: its own
     * HELLO. An agent that answers HELLO_OK keeps them (caps then has
     * DS_TRANSPORT_PRELUDE). One that refuses that HELLO acted on nothing
     * after it: the open fails with DS_EVERSION (open again without). One
     * that did not answer in time may still act on the LEASE: the open
     * fails (-ETIMEDOUT) instead of trying SFTP beside it. Borrowed for
     * the opening's life. */
    const uint8_t *prelude;
    size_t prelude_len;
} ds_transport_cfg_t;

/*
 * Opens a transport for cfg. On success returns 0 with *out set (free with
 * ds_transport_free). On failure returns DS_EUSAGE (unsupported URL or
 * mode), -errno or DS_ENOMEM and writes a message naming the URL into err.
 * A missing root fails with -ENOENT saying "target root P does not exist
 * (create it, or set create_root = yes)" unless cfg->create_root; a root
 * that is not a directory fails naming it and the errno.
 */
DS_MUST_CHECK int ds_transport_open(const ds_transport_cfg_t *cfg, ds_transport_t **out, char *err,
                                    size_t errlen);

/*
 * A stepped open, driven by the caller's event loop without blocking it
 * (src/transport/transport_opening.c): ssh:// servers only. The DNS lookup
 * (cfg->resolver), the TCP connect, the SSH handshake, the host-key check,
 * the authentication and, for transport = agent, the agent's exec channel
 * each wait on the socket; connect_timeout bounds them all.
 *
 * begin: returns 1 with *op when cfg opens step by step, 0 when it does
 * not (another backend: call ds_transport_open on a worker), or < 0 with
 * err. cfg is copied; its strings and resolver are borrowed for the
 * opening's life.
 *
 * step (now: CLOCK_MONOTONIC ns): returns 0 while the opening waits: poll
 * *fd (-1: none) for *waits (DS_TRANSPORT_WAIT_*), and step again by
 * *wake_ns at the latest; 1 with *out (the transport) when it is open
 * (every mode: agent, auto's probe of the agent then the agent or SFTP,
 * sftp's start, all stepped); < 0 when it failed, with a message naming
 * the server in err (the same messages as ds_transport_open). After 1 or
 * < 0, only free is left.
 *
 * free: ends an opening at any point (its socket closed, a pending lookup
 * released). NULL is a no-op.
 */
typedef struct ds_transport_opening ds_transport_opening_t;

DS_MUST_CHECK int ds_transport_open_begin(const ds_transport_cfg_t *cfg, int64_t now_ns,
                                          ds_transport_opening_t **op, char *err, size_t errlen);
DS_MUST_CHECK int ds_transport_open_step(ds_transport_opening_t *op, int64_t now_ns, int *fd,
                                         unsigned *waits, int64_t *wake_ns, ds_transport_t **out,
                                         char *err, size_t errlen);
void ds_transport_open_free(ds_transport_opening_t *op);

/* Wrappers over the vtable; see ds_transport_ops_t. */
long ds_transport_write(ds_transport_t *t, const void *p, size_t n);
long ds_transport_read(ds_transport_t *t, void *buf, size_t cap);
DS_MUST_CHECK int ds_transport_close(ds_transport_t *t);
/* See ds_transport_ops_t.close_step: steps says whether t has it. */
int ds_transport_close_steps(const ds_transport_t *t);
DS_MUST_CHECK int ds_transport_close_step(ds_transport_t *t, int64_t now_ns, int *fd,
                                          unsigned *waits, int64_t *wake_ns, int *rc);
/* Ends a hung peer (see ds_transport_ops_t.kill); close and free still
 * follow. */
void ds_transport_kill(ds_transport_t *t);
/* See ds_transport_ops_t.start and .reap: 0 / 1 for a backend without. */
DS_MUST_CHECK int ds_transport_start(ds_transport_t *t);
void ds_transport_rate(ds_transport_t *t, uint64_t bytes_per_s);
DS_MUST_CHECK int ds_transport_reap(ds_transport_t *t, int64_t now_ns, int64_t *wake_ns);

/* The fds to poll (-1: none, the transport is always ready). */
void ds_transport_fds(const ds_transport_t *t, int *rfd, int *wfd);

/* What to poll for now (DS_TRANSPORT_WAIT_* bits; see
 * ds_transport_ops_t.waits): have_output is 1 when the caller has bytes it
 * could not write yet. Never blocks. */
unsigned ds_transport_waits(const ds_transport_t *t, int have_output);
/* Bytes written that the far end has not read yet (the unread op; 0 when
 * the backend cannot tell). */
uint64_t ds_transport_unread(const ds_transport_t *t);

/* Last error text ("" when none). Valid as long as t. */
const char *ds_transport_error(const ds_transport_t *t);

/* The next line of the peer's side channel (ds_transport_ops_t.note):
 * 1 when one was copied into buf, 0 when none (or no side channel). */
int ds_transport_note(ds_transport_t *t, char *buf, size_t cap);

/* Frees t (closing it first if needed, which kills an agent that has not
 * ended). NULL is a no-op. */
void ds_transport_free(ds_transport_t *t);

/* Backends (src/transport/transport_local.c, src/transport/transport_pipe.c).
 * root is the target directory. Both may block (see above). */
DS_MUST_CHECK int ds__transport_local_open(const char *root, int no_fsync, ds_transport_t **out,
                                           char *err, size_t errlen);
DS_MUST_CHECK int ds__transport_pipe_open(const char *root, const char *agent,
                                          unsigned close_wait_s, const ds_spawner_t *spawner,
                                          ds_transport_t **out, char *err, size_t errlen);

/* The pipe transport running `AGENT ARGS...` (agent NULL: this distsync
 * binary) instead of an agent, for the SMB worker: label names it in
 * messages ("SMB worker for server X"), pre (prelen bytes, at most 64 KiB)
 * is written to the child's stdin before anything else (the worker's
 * credentials: never on its command line). As ds__transport_pipe_open
 * otherwise. */
DS_MUST_CHECK int ds__transport_pipe_open_cmd(const char *label, const char *agent,
                                              char *const args[], const void *pre, size_t prelen,
                                              unsigned close_wait_s, const ds_spawner_t *spawner,
                                              ds_transport_t **out, char *err, size_t errlen);
/* smb://: the server's SMB worker over the pipe transport (transport_smb.c). */
DS_MUST_CHECK int ds__transport_smb_open(const ds_transport_cfg_t *cfg, ds_transport_t **out,
                                         char *err, size_t errlen);
DS_MUST_CHECK int ds__transport_ssh_open(const ds_transport_cfg_t *cfg, ds_transport_t **out,
                                         char *err, size_t errlen);
/* transport = sftp, or (automatic) auto: probes the agent command on the
 * connection and runs the agent when it answers HELLO_OK, else SFTP with a
 * note saying why. Blocks, bounded by connect_timeout. */
DS_MUST_CHECK int ds__transport_sftp_open(const ds_transport_cfg_t *cfg, int automatic,
                                          ds_transport_t **out, char *err, size_t errlen);

/*
 * `distsync trust`: the host key of cfg's ssh:// server. Connects (bounded
 * by connect_timeout), reads the key and compares it with the known_hosts
 * file. state: 0 the file already holds it, 1 unknown, 2 the file holds
 * another key for that host (old_fp), 3 the file marks it @revoked. Returns 0 or a negative code
 * with err naming the server; free hk with ds_ssh_hostkey_free.
 */
typedef struct ds_ssh_hostkey {
    int state;
    char type[32];   /* "ssh-ed25519" */
    char fp[64];     /* "SHA256:..." as OpenSSH prints it */
    char old_fp[64]; /* state 2 */
    char entry[300]; /* the host's name in known_hosts: host or [host]:port */
    char known_hosts[4096];
    void *priv; /* the key itself */
} ds_ssh_hostkey_t;

DS_MUST_CHECK int ds_ssh_hostkey_fetch(const ds_transport_cfg_t *cfg, ds_ssh_hostkey_t *hk,
                                       char *err, size_t errlen);
/* Appends hk's key to hk->known_hosts (created 0600 if missing). Returns 0
 * or a negative code with err naming the file. */
DS_MUST_CHECK int ds_ssh_hostkey_trust(const ds_ssh_hostkey_t *hk, char *err, size_t errlen);
void ds_ssh_hostkey_free(ds_ssh_hostkey_t *hk);

/* Extracts the directory of a file:// URL into buf. Returns 0 or DS_EUSAGE. */
DS_MUST_CHECK int ds_transport_file_root(const char *url, char *buf, size_t cap);

#endif

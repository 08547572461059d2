/*
 * SSH internals shared by the ssh:// transport (transport_ssh.c), the
 * session setup (ssh_conn.c), the stepped open (ssh_open.c, over
 * ssh_dial.c's TCP connect and ssh_resolve.c's blocking DNS), host keys
 * (ssh_knownhosts.c), user authentication (ssh_auth.c) and `distsync
 * trust` (ssh_trust.c). libssh2
 * stays behind these files: its error codes are mapped to DS_E* here.
 */
#ifndef DS_SSH_INT_H
#define DS_SSH_INT_H

#include <stddef.h>
#include <stdint.h>

#include <libssh2.h>

#include "distsync/transport.h"
#include "distsync/error.h"

#define DS__SSH_CONNECT_TIMEOUT_S 30 /* connect_timeout default */

/* Where an ssh:// URL points. */
struct ds__ssh_url {
    char user[64];   /* the URL's user, else $USER / the passwd entry */
    char host[256];  /* without the brackets of an IPv6 literal */
    int port;        /* 22 unless given */
    char path[4096]; /* the target root on the server */
    /* "host:port", "[host]:port" for an IPv6 literal (as OpenSSH writes
     * it), for messages */
    char hostport[270];
    char where[340]; /* "user@" hostport, for messages (never a secret) */

    /* tests only: the DNS lookup waits this long first */
    unsigned test_dns_delay_ms;
};

/* Parses ssh://[user@]host[:port]/path into u. Returns 0, or DS_EUSAGE
 * with a message naming the URL in err. */
DS_MUST_CHECK int ds__ssh_url_parse(const char *url, struct ds__ssh_url *u, char *err,
                                    size_t errlen);

struct addrinfo;

/* Resolves u->host (port u->port) on a thread of its own, waiting for it
 * until deadline_ns (CLOCK_MONOTONIC) at most (ssh_resolve.c). Returns 0
 * with *out set (freeaddrinfo), or DS_ETRANSPORT with a message naming
 * u->where and the host in err: the resolver's reason, or no answer
 * within connect_timeout = connect_s. A late answer is dropped. */
DS_MUST_CHECK int ds__ssh_resolve(const struct ds__ssh_url *u, int64_t deadline_ns,
                                  unsigned connect_s, struct addrinfo **out, char *err,
                                  size_t errlen);

/* CLOCK_MONOTONIC now, in ns: the clock of every deadline here. */
int64_t ds__ssh_mono_ns(void);

/* A TCP connection with an SSH session on it. wire_in / wire_out count the
 * bytes that cross the socket (libssh2's send/recv callbacks), encryption
 * and SSH framing included. */
struct ds__ssh_conn {
    LIBSSH2_SESSION *s;
    int sock;
    int64_t deadline_ns; /* CLOCK_MONOTONIC end of the connect phase */
    uint64_t wire_in, wire_out;
};

/* What a host key check found. */
/* DS__HK_REVOKED: known_hosts marks the key @revoked (for any host). */
enum ds__ssh_hk_state { DS__HK_MATCH, DS__HK_UNKNOWN, DS__HK_CHANGED, DS__HK_REVOKED };

struct ds__ssh_hostkey {
    enum ds__ssh_hk_state state;
    char type[32];      /* the server's key type, "ssh-ed25519" */
    char fp[64];        /* its fingerprint, "SHA256:<base64>" as OpenSSH prints */
    char old_fp[64];    /* DS__HK_CHANGED: the recorded key's fingerprint */
    char others[200];   /* DS__HK_UNKNOWN: key types known_hosts holds for the host */
    char entry[300];    /* the known_hosts name: host, or [host]:port */
    unsigned char *key; /* the raw key blob (owned; free()) */
    size_t keylen;
    int kh_type; /* LIBSSH2_KNOWNHOST_KEY_* of the key */
};

/* Starts c's libssh2 session on the connected socket c->sock: non-blocking,
 * byte-counting send/recv callbacks, and the host-key method preference
 * taken from known_hosts (kh, a path). Returns 0 or a negative code with a
 * message naming u->where in err. */
DS_MUST_CHECK int ds__ssh_session_new(struct ds__ssh_conn *c, const struct ds__ssh_url *u,
                                      const char *kh, char *err, size_t errlen);

/* Sets libssh2's timeout for its blocking calls to what is left before
 * c->deadline_ns (at least 1 ms). Returns the milliseconds left (<= 0:
 * the deadline has passed). */
long ds__ssh_conn_budget(struct ds__ssh_conn *c);

/* Ends c: a polite disconnect when graceful, then frees the session and
 * closes the socket. Safe on a closed or half-opened c. */
void ds__ssh_conn_close(struct ds__ssh_conn *c, int graceful);

/* Ends c at once, with its channel ch (NULL: none): the socket shut down,
 * nothing waited for. Safe on a closed or half-opened c. */
void ds__ssh_conn_drop(struct ds__ssh_conn *c, LIBSSH2_CHANNEL *ch);

/* Text of libssh2's last error on s ("" when none); a cut connection is
 * said in words, not as libssh2's "transport read". */
const char *ds__ssh_errmsg(LIBSSH2_SESSION *s);

/* Known hosts (ssh_knownhosts.c). */

/* Before the handshake: sets the session's host-key method preference to
 * the key types known_hosts records for u (OpenSSH's order: ed25519,
 * ECDSA, RSA), so that the server's key of that type is negotiated.
 * Returns 0 or DS_ENOMEM. A missing file sets the default order. */
DS_MUST_CHECK int ds__ssh_hostkey_prefer(LIBSSH2_SESSION *s, const char *kh,
                                         const struct ds__ssh_url *u);

/* After the handshake: looks the server's key up in kh and fills hk.
 * Returns 0 (hk->state tells the outcome) or a negative code with err set
 * (kh unreadable, no host key). */
DS_MUST_CHECK int ds__ssh_hostkey_lookup(LIBSSH2_SESSION *s, const char *kh,
                                         const struct ds__ssh_url *u, struct ds__ssh_hostkey *hk,
                                         char *err, size_t errlen);

/* Appends hk's key for u to kh in OpenSSH format, creating the file
 * (0600) and its directory (0700) when missing. Returns 0 or a negative
 * code with err naming kh. */
DS_MUST_CHECK int ds__ssh_hostkey_append(const char *kh, const struct ds__ssh_hostkey *hk,
                                         char *err, size_t errlen);

/* "SHA256:<base64 without padding>" of a raw key blob into out[64]. */
void ds__ssh_fingerprint(const unsigned char *key, size_t len, char out[64]);

/* The known_hosts path for a configured value (NULL: ~/.ssh/known_hosts,
 * "~/" expanded from $HOME). Returns 0 or DS_EUSAGE (no home). */
DS_MUST_CHECK int ds__ssh_kh_path(const char *cfg_value, char *out, size_t cap);

/* User authentication (ssh_auth.c), step by step on a non-blocking
 * session: with the private key file identity, else with the keys of
 * ssh-agent ($SSH_AUTH_SOCK), one key after the other. */
struct ds__ssh_auth {
    int checked; /* identity: its key type was looked at */
    LIBSSH2_AGENT *a;
    struct libssh2_agent_publickey *id; /* the agent's key being tried */
    int tried, rsa;                     /* agent keys offered, RSA ones skipped */
};

/* One step of the authentication of s as u->user. Returns 0 once
 * authenticated, 1 when libssh2 waits on the socket (step again when it
 * moves), or DS_EAUTH with a message naming u->user, u->host and u->port
 * (never key material). a starts zeroed; end it with ds__ssh_auth_end. */
DS_MUST_CHECK int ds__ssh_auth_step(LIBSSH2_SESSION *s, struct ds__ssh_auth *a,
                                    const struct ds__ssh_url *u, const char *identity, char *err,
                                    size_t errlen);
/* Frees what a holds (the ssh-agent connection). */
void ds__ssh_auth_end(struct ds__ssh_auth *a);

/* The non-blocking TCP connect (ssh_dial.c): each address of res in turn,
 * until one answers. */
struct ds__ssh_dial {
    struct addrinfo *res;  /* owned (freeaddrinfo) */
    struct addrinfo *next; /* the next address to try */
    int fd;                /* the attempt in flight, -1: none */
    int last_err;          /* errno of the last failed attempt */
};

/* Takes res (owned from now on) as d's address list. */
void ds__ssh_dial_init(struct ds__ssh_dial *d, struct addrinfo *res);
/* Starts or checks the attempt. Returns 1 when d->fd is connected (the
 * caller takes it: set d->fd to -1), 0 while it waits (poll d->fd for
 * writing), or -errno (the last address's reason) when none answered. A
 * new attempt's socket is made before the failed one is closed, so that
 * its fd number differs (a poller watching the old fd sees the change). */
DS_MUST_CHECK int ds__ssh_dial_step(struct ds__ssh_dial *d);
/* Closes the attempt in flight and frees the list. */
void ds__ssh_dial_end(struct ds__ssh_dial *d);

/* The stepped open (ssh_open.c): DNS, connect, handshake, host key, auth
 * and the agent's exec channel as a state machine that never blocks. */
enum ds__ssh_goal {
    DS__SSH_GOAL_HOSTKEY, /* stop after the host-key lookup (distsync trust) */
    DS__SSH_GOAL_AUTH,    /* host key known, user authenticated */
    DS__SSH_GOAL_AGENT,   /* and the agent command running on an exec channel */
};

struct ds__ssh_open;

/* What an opening waits for: fd for waits (DS_TRANSPORT_WAIT_*), or
 * wake_ns. */
struct ds__ssh_wait {
    int fd;
    unsigned waits;
    int64_t wake_ns;
};

/* Fills w with libssh2's wait on c: c's socket for reading, and for
 * writing too when the session blocks outbound, until wake_ns
 * (ssh_conn.c). Returns 0 (the caller's "wait"). */
int ds__ssh_conn_wait(const struct ds__ssh_conn *c, int64_t wake_ns, struct ds__ssh_wait *w);

/* What an opening reached (moved out by ds__ssh_open_take). */
struct ds__ssh_opened {
    struct ds__ssh_conn c;
    struct ds__ssh_url u;
    struct ds__ssh_hostkey hk; /* GOAL_HOSTKEY: what known_hosts says */
    LIBSSH2_CHANNEL *ch;       /* GOAL_AGENT: the agent's channel */
};

/* Starts opening cfg's server towards goal (now: CLOCK_MONOTONIC ns; the
 * deadline is connect_timeout from now). cfg is copied, its strings and
 * resolver borrowed for the opening's life. Returns 0 with *out, or a
 * negative code with a message naming the URL in err. */
DS_MUST_CHECK int ds__ssh_open_new(const ds_transport_cfg_t *cfg, enum ds__ssh_goal goal,
                                   int64_t now, struct ds__ssh_open **out, char *err,
                                   size_t errlen);
/* Advances as far as the socket allows. Returns 0 while it waits (*w
 * filled), 1 once the goal is reached, or a negative code with a message
 * naming u->where in err (every one of the blocking open's messages). */
DS_MUST_CHECK int ds__ssh_open_step(struct ds__ssh_open *o, int64_t now, struct ds__ssh_wait *w,
                                    char *err, size_t errlen);
/* After step returned 1: moves what was reached into *r (the byte
 * counters follow the connection). */
void ds__ssh_open_take(struct ds__ssh_open *o, struct ds__ssh_opened *r);
/* The agent's channel on the logged-in r, one non-blocking step: opened
 * into r->ch (once), then cmd started on it. Returns 1 once cmd runs, 0
 * when libssh2 would block (the caller waits on r->c), or DS_ETRANSPORT
 * with err naming r->u.where and cmd. Shared by the open's GOAL_AGENT and
 * transport = auto's opening after its probe. */
DS_MUST_CHECK int ds__ssh_exec_step(struct ds__ssh_opened *r, const char *cmd, char *err,
                                    size_t errlen);
/* Ends o at any point: the socket closed, a pending lookup released. */
void ds__ssh_open_free(struct ds__ssh_open *o);

/* ssh_connect.c */

/* Sleeps in poll(2) until w's socket moves in its directions or its time
 * comes (at most 1 s). */
void ds__ssh_wait_for(const struct ds__ssh_wait *w);

/* Blocking: runs an opening of cfg to goal, waiting in poll(2), its DNS
 * lookup on a thread of its own (cfg->resolver is not used). Returns 0
 * with *r filled (its connection in blocking mode, c.deadline_ns the end
 * of connect_timeout), or a negative code with err naming the server. */
DS_MUST_CHECK int ds__ssh_open_blocking(const ds_transport_cfg_t *cfg, enum ds__ssh_goal goal,
                                        struct ds__ssh_opened *r, char *err, size_t errlen);

/* The blocking start of an ssh:// transport: parses cfg->url into u,
 * connects c (bounded by cfg->connect_timeout_s), refuses a host key that
 * known_hosts does not hold (naming `distsync trust`), authenticates.
 * Returns 0 or a negative code with err naming u->where; c is then
 * closed. */
DS_MUST_CHECK int ds__ssh_connect(const ds_transport_cfg_t *cfg, struct ds__ssh_conn *c,
                                  struct ds__ssh_url *u, char *err, size_t errlen);

/* Moves an open connection to dst (the byte counters follow); src is left
 * closed. */
void ds__ssh_conn_move(struct ds__ssh_conn *dst, struct ds__ssh_conn *src);

/* transport = auto's probe, stepped (ssh_probe.c): the agent command for
 * path on an exec channel of the connected, non-blocking c, HELLO sent,
 * the first frame read, until deadline_ns. new returns 0 or DS_ENOMEM;
 * step returns 0 while it waits (*w) and 1 once it knows; answered then
 * says 1 when the agent answered HELLO_OK, else 0 with why (not found, too
 * old, not an agent, no answer). c is borrowed until the last step. A
 * channel whose command does not end is left open (the connection's close
 * ends it). */
struct ds__ssh_probe;
DS_MUST_CHECK int ds__ssh_probe_new(struct ds__ssh_conn *c, const char *agent, const char *path,
                                    int64_t deadline_ns, struct ds__ssh_probe **out);
/* Before the first step: the probe writes pre (n bytes, borrowed until p
 * is freed; a HELLO with id 1 first, requests after it) instead of its own
 * HELLO. Returns 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds__ssh_probe_prelude(struct ds__ssh_probe *p, const uint8_t *pre, size_t n);
/* Once it knows, for a probe given a prelude that was not answered:
 * DS__PROBE_REFUSED when the agent refused its HELLO (an ERR: the agent
 * acted on nothing after it), DS__PROBE_MUTE when the prelude was written
 * and the agent neither answered nor ended in time (it may still act on
 * it); 0 otherwise (not found, ended without an answer, answered). */
enum { DS__PROBE_REFUSED = 1, DS__PROBE_MUTE = 2 };
int ds__ssh_probe_prelude_fate(const struct ds__ssh_probe *p);
DS_MUST_CHECK int ds__ssh_probe_step(struct ds__ssh_probe *p, int64_t now, struct ds__ssh_wait *w);
int ds__ssh_probe_answered(const struct ds__ssh_probe *p, char *why, size_t whylen);
/* The agent's command line the probe ran, valid until p is freed. */
const char *ds__ssh_probe_cmd(const struct ds__ssh_probe *p);
void ds__ssh_probe_free(struct ds__ssh_probe *p);
/* Before the first step: the agent's input is ended only when it did not
 * answer, and an agent that answered HELLO_OK keeps running. take then
 * hands over its channel, the bytes it wrote so far (its HELLO_OK first)
 * and its first stderr lines so far (101, each cut to 511 bytes; ecut
 * bytes more were dropped: transport_ssh.c logs 100 lines),
 * the buffers the caller's to free, and returns 1; 0 when nothing is
 * kept. */
struct ds__ssh_greeting {
    LIBSSH2_CHANNEL *ch;
    uint8_t *reply;
    size_t n;
    char *err;
    size_t nerr, ecut;
    const uint8_t *prelude; /* the probe's prelude (borrowed), NULL: its own HELLO */
    size_t nprelude;
};
void ds__ssh_probe_keep(struct ds__ssh_probe *p);
int ds__ssh_probe_take(struct ds__ssh_probe *p, struct ds__ssh_greeting *g);

/* The same probe, blocking (poll(2)) on the blocking c, bounded by wait_s
 * and c's deadline. Returns 1 (answered), 0 (why says why not) or
 * DS_ENOMEM. ssh_connect.c */
DS_MUST_CHECK int ds__ssh_agent_probe(struct ds__ssh_conn *c, const char *agent, const char *path,
                                      unsigned wait_s, char *why, size_t whylen);

/* The agent over an exec channel of the connected c (moved into the
 * transport; closed on failure). transport_ssh.c */
DS_MUST_CHECK int ds__transport_ssh_attach(const ds_transport_cfg_t *cfg, struct ds__ssh_conn *c,
                                           const struct ds__ssh_url *u, ds_transport_t **out,
                                           char *err, size_t errlen);

/* The agent already greeted by auto's kept probe (ds__ssh_probe_take; g's
 * buffers are t's from here on): the first frame the session writes must
 * be its HELLO (id 1), which is taken and not sent (the probe's stood for
 * it: the same version range), or, after a prelude, the prelude's bytes
 * exactly (copied; caps gets DS_TRANSPORT_PRELUDE); g's reply is read
 * before the channel, and g's stderr goes to the log and the run's events
 * as the agent's later lines do. Returns 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds__transport_ssh_greeted(ds_transport_t *t, struct ds__ssh_greeting *g);

/* The agent already running on channel ch of the connected,
 * non-blocking c (both moved into the transport). Returns 0 or DS_ENOMEM
 * (c and ch then closed). transport_ssh.c */
DS_MUST_CHECK int ds__transport_ssh_adopt(const ds_transport_cfg_t *cfg, struct ds__ssh_conn *c,
                                          LIBSSH2_CHANNEL *ch, const struct ds__ssh_url *u,
                                          ds_transport_t **out, char *err, size_t errlen);

/* transport = sftp or auto on the connected c (blocking mode; moved into
 * the transport, closed on failure): auto probes the agent command first
 * and runs the agent when it answers. transport_sftp.c */
DS_MUST_CHECK int ds__transport_sftp_open_conn(const ds_transport_cfg_t *cfg, int automatic,
                                               struct ds__ssh_conn *c, const struct ds__ssh_url *u,
                                               ds_transport_t **out, char *err, size_t errlen);

/* The refusal of a host key known_hosts (kh) does not hold: unknown, with
 * its fingerprint and `distsync trust SERVER`; changed, loudly, with both
 * fingerprints. Returns DS_EHOSTKEY. ssh_connect.c */
DS_MUST_CHECK int ds__ssh_refuse_hostkey(const ds_transport_cfg_t *cfg, const struct ds__ssh_url *u,
                                         const char *kh, const struct ds__ssh_hostkey *hk,
                                         char *err, size_t errlen);

/* SFTP mode on the connected c (moved into the transport; closed on
 * failure); why (may be NULL) says why SFTP was chosen, for the run's
 * events. transport_sftp.c */
DS_MUST_CHECK int ds__transport_sftp_attach(const ds_transport_cfg_t *cfg, struct ds__ssh_conn *c,
                                            const struct ds__ssh_url *u, const char *why,
                                            ds_transport_t **out, char *err, size_t errlen);

/* SFTP mode's start, stepped (transport_sftp.c): new takes the connected,
 * non-blocking c (moved; closed on failure) and returns 0 with *out, or
 * DS_ENOMEM; step starts SFTP, checks the root is a directory and probes
 * whether the account runs commands, each within c's deadline, then
 * starts the receiver: 0 while it waits (*w), 1 once *out is ready, or a
 * failure with err naming the server (free *out then). why as in
 * ds__transport_sftp_attach. */
DS_MUST_CHECK int ds__sftp_start_new(const ds_transport_cfg_t *cfg, struct ds__ssh_conn *c,
                                     const struct ds__ssh_url *u, const char *why,
                                     ds_transport_t **out, char *err, size_t errlen);
DS_MUST_CHECK int ds__sftp_start_step(ds_transport_t *t, int64_t now, struct ds__ssh_wait *w,
                                      char *err, size_t errlen);

/* The agent's command line for root: agent --root 'PATH'. Returns 0 or
 * DS_ENOMEM; free *out. */
DS_MUST_CHECK int ds__ssh_agent_command(const char *agent, const char *path, char **out);

#endif

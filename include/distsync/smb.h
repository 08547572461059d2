/*
 * SMB servers (smb://host[:port]/share/dir): the libsmbclient context of
 * one server, with distsync's security defaults, and the connect check.
 *
 * libsmbclient is blocking and NOT thread-safe (it crashed here even with
 * one context per thread): a process holds at most one context at a time,
 * used from one thread. The SMB worker process owns one for its server;
 * `distsync config check --connect` opens one server after the other.
 *
 * Defaults that are not settings: signing is required (`client signing =
 * required`, for IPC too), the protocol floor is SMB2 (SMB2_02), no
 * Kerberos and never an anonymous or guest session. encrypt = yes also
 * requires SMB3 encryption (`client smb encrypt = required`).
 */
#ifndef DISTSYNC_SMB_H
#define DISTSYNC_SMB_H

#include <stddef.h>

#include "distsync/error.h"
#include "distsync/smbcred.h"

#define DS_SMB_PORT_DEFAULT      445
#define DS_SMB_TIMEOUT_DEFAULT_S 30

/* An smb:// URL taken apart. */
typedef struct ds_smb_url {
    char host[256];
    unsigned port;   /* DS_SMB_PORT_DEFAULT when the URL has none */
    char share[256]; /* no slashes */
    char dir[2048];  /* "" for the share's root, else "a/b" (no leading or trailing '/') */
} ds_smb_url_t;

/* Parses smb://host[:port]/share[/dir] (as ds_config checks it: no user,
 * no password, no '..'). Returns 0, or DS_EUSAGE with a message in err. */
DS_MUST_CHECK int ds_smb_url_parse(const char *url, ds_smb_url_t *out, char *err, size_t errlen);

/* What a context is made from; the pointers are borrowed for the call. */
typedef struct ds_smb_opts {
    const char *server;       /* the [server NAME], for messages */
    const char *url;          /* smb://host[:port]/share/dir */
    const ds_smbcred_t *cred; /* copied into the context */
    int encrypt;              /* encrypt = yes: SMB3 encryption required */
    unsigned timeout_s;       /* connect and per-request timeout (0: 30 s) */
} ds_smb_opts_t;

typedef struct ds_smb_ctx ds_smb_ctx_t;

/* Creates the context of one server (no network I/O yet). Returns 0 and
 * *out (free with ds_smb_ctx_free), or DS_EUSAGE (bad URL), DS_ENOMEM,
 * DS_ETRANSPORT (libsmbclient refused to initialise) with err naming the
 * server. The process must hold no other context. */
DS_MUST_CHECK int ds_smb_ctx_new(const ds_smb_opts_t *o, ds_smb_ctx_t **out, char *err,
                                 size_t errlen);

/* Frees the context, closing its connections and wiping the credentials it
 * holds. NULL is a no-op. */
void ds_smb_ctx_free(ds_smb_ctx_t *c);

/* Connects (session setup, signed; encrypted with encrypt = yes) and checks
 * that the share and the directory of the URL exist and that the
 * directory is one. Returns 0, or with a message in err that names the
 * server and, never the password:
 *   DS_EAUTH       "server X: SMB authentication failed for user U on HOST:PORT"
 *   DS_ENOTFOUND   "server X: share S does not exist on HOST:PORT" /
 *                  "server X: directory D does not exist in share S"
 *   -ENOTDIR       "server X: D in share S is not a directory"
 *   -EACCES        "server X: user U may not open share S" (logged in, refused)
 *   DS_ETRANSPORT / -errno  "server X: cannot connect to HOST:PORT: REASON"
 *                  (refused, unreachable, timed out, signing or
 *                  encryption not available) */
DS_MUST_CHECK int ds_smb_ctx_connect(ds_smb_ctx_t *c, char *err, size_t errlen);

/* The parsed URL of the context (lives as long as c). */
const ds_smb_url_t *ds_smb_ctx_url(const ds_smb_ctx_t *c);

/* Writes "smb://HOST:PORT/SHARE[/DIR][/rel]" into buf (rel may be NULL or
 * ""). Returns 0, or -ENAMETOOLONG when it does not fit. */
DS_MUST_CHECK int ds_smb_ctx_path(const ds_smb_ctx_t *c, const char *rel, char *buf, size_t cap);

#endif

/*
 * The SMB worker: `distsync smb-worker`, which the engine spawns for each
 * smb:// server (libsmbclient is blocking and not thread-safe, so every SMB
 * session runs in a process of its own) and drives over a pipe with the
 * apply protocol, as an agent. It runs the one receiver (distsync/apply.h)
 * over the libsmbclient filesystem backend.
 *
 * The credentials reach it on its stdin, ahead of the protocol, never on
 * its command line or in its environment: a 4-byte big-endian length, then
 * that many bytes in the credentials file format (username=, password=,
 * domain= lines; distsync/smbcred.h).
 */
#ifndef DISTSYNC_SMBWORKER_H
#define DISTSYNC_SMBWORKER_H

#include <stddef.h>

#include "distsync/apply.h"
#include "distsync/error.h"
#include "distsync/smbcred.h"

#define DS_SMB_WORKER_CRED_MAX        4096 /* bytes of the credentials preamble */
#define DS_SMB_WORKER_CONNECTIONS_MAX 16

typedef struct ds_smb_worker_opts {
    const char *url;    /* smb://host[:port]/share[/dir] */
    const char *server; /* the [server NAME], for messages */
    int encrypt;        /* encrypt = yes */
    int readback;       /* verify = readback */
    /* the console's copies of basis versions: files built with server-side
     * copies are checked by a SHA-256 computed from them */
    const char *retain; /* their directory (NULL: none) */
    /* opens / closes them, in each process of the worker (a retain store's
     * SQLite handle is never carried across a fork; distsync/localbasis.h) */
    int (*local_open)(const char *dir, ds_apply_local_t *out);
    void (*local_close)(ds_apply_local_t *l);
    /* SMB connections to the server, each in a process of its own (1 to
     * DS_SMB_WORKER_CONNECTIONS_MAX; 0: 1): single-frame files are spread
     * over them */
    unsigned connections;
    unsigned timeout_s; /* connect and request timeout (0: default) */
    /* how long a replace refused by a sharing violation is retried, ms
     * (0: the default, 5000) */
    unsigned replace_wait_ms;
    /* tests only: splice sources are opened through this other share of the
     * same directory (a cross-share copy: libsmbclient's silent fallback) */
    const char *test_splice_share;
    /* tests only: a replace of a file with this name stops for good after
     * its delete, before its rename (to be killed there) */
    const char *test_replace_pause;
} ds_smb_worker_opts_t;

/*
 * Reads the credentials preamble from in_fd, connects, and serves one
 * apply session on in_fd/out_fd until BYE or end of input. Returns 0, or <
 * 0 with a message naming the server in err (never a secret).
 */
DS_MUST_CHECK int ds_smb_worker_serve(const ds_smb_worker_opts_t *o, int in_fd, int out_fd,
                                      char *err, size_t errlen);

/*
 * Encodes cred as the worker's preamble into buf (cap at least
 * DS_SMB_WORKER_CRED_MAX + 4). Returns the length, or DS_ETOOBIG. The caller
 * wipes buf after use.
 */
DS_MUST_CHECK int ds_smb_worker_preamble(const ds_smbcred_t *cred, unsigned char *buf, size_t cap);

#endif

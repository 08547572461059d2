/*
 * Receiver of the apply protocol: the target side of a sync session, shared
 * by `distsync agent` (stdin/stdout), the file:// backend (on its own
 * thread, over a socketpair) and the SMB worker. A push-driven state machine with no I/O on its
 * input or output: the caller feeds received bytes in any split and sends whatever reply bytes the
 * receiver queued; the receiver stops taking input while its output is not drained
 * (DS_APPLY_OUT_HIGH), so its memory is bounded. It does blocking file-system I/O under root while
 * handling a frame (that is its job).
 *
 * Files are built under <root>/.distsync/tmp/, verified (size + SHA-256,
 * hashed while written), fsynced, renamed into place, the directory fsynced;
 * the manifest is written atomically on MANIFEST_COMMIT, BYE, lease release
 * and end of input. Nothing is ever written outside root. See PROTOCOL.md.
 */
#ifndef DISTSYNC_APPLY_H
#define DISTSYNC_APPLY_H

#include <stddef.h>
#include <stdint.h>
#include "distsync/error.h"
#include "distsync/digest.h"

#define DS_APPLY_MAX_OPEN 16 /* files open at once in one session (default) */
/* While files commit, the manifest is also written at most this often
 * (seconds), besides MANIFEST_COMMIT, BYE and end of input. */
#define DS_APPLY_CHECKPOINT_S 10

typedef struct ds_apply ds_apply_t;

/*
 * The console's own copies of content versions, found by SHA-256 (the SMB
 * worker's: the console's retain store, distsync/localbasis.h). With it, a
 * file built with server-side copies is still checked by its SHA-256: the
 * receiver feeds its hash with the bytes of each copied range read from
 * here (local disk, nothing crosses the network) in place of the share's.
 */
typedef struct ds_apply_local {
    /* Opens version sha256 (size bytes), checked whole against its SHA-256.
     * Returns 0 with *h, DS_ENOTFOUND when there is no copy, DS_EHASH or
     * DS_ECORRUPT when the copy is not that version, or another < 0. */
    int (*open)(void *arg, const uint8_t sha256[DS_SHA256_LEN], uint64_t size, void **h);
    /* Reads up to len bytes at off: the count (0 past the end) or < 0. */
    long (*pread)(void *h, uint64_t off, void *buf, size_t len);
    void (*close)(void *h); /* NULL-safe */
    void *arg;
} ds_apply_local_t;

typedef struct ds_apply_opts {
    /* Clock for lease expiry, unix seconds. NULL: time(NULL). */
    int64_t (*now)(void *ctx);
    void *now_ctx;
    unsigned max_open_files; /* 0: DS_APPLY_MAX_OPEN; at most 1024 */
    int no_fsync;            /* tests and fuzzing only: skip fsync() calls */
    unsigned max_version;    /* 0: DS_PROTO_VERSION_MAX; lower: act as an older agent */
    int peer_reports;        /* 1: the peer is a distsync console, which reports every
                                FILE_ERR and ERR it gets: a failed file or session is
                                then not logged here too (the operator sees it once) */
    /* Where the receiver's files live (distsync/fs.h; borrowed, must outlive
     * the receiver). NULL: POSIX. The SMB worker passes its libsmbclient
     * backend, and root is then the share's smb:// URL. */
    const struct ds_fs *fs;
    /* verify = readback: a file built with server-side copies is read back
     * and its SHA-256 checked before the rename */
    int readback;
    /* The console's copies of basis versions (borrowed, must outlive the
     * receiver); NULL: a file built with server-side copies is checked by
     * size (and readback) only */
    const ds_apply_local_t *local;
    /* Sockets to helper receivers (ds_apply_helper_serve), each with its own
     * connection to the same target (borrowed; at most 15): single-frame
     * files (FILE_ONE) are spread over them, the session (lease, manifest,
     * other requests) stays here, replies go out in request order. nfan 0:
     * none. */
    const int *fan_fds;
    unsigned nfan;
} ds_apply_opts_t;

typedef struct ds_apply_stats {
    uint64_t files_ok, files_failed, deletes;
    uint64_t files_adopted; /* ADOPT: recorded in place, nothing written */
    uint64_t bytes_literal; /* LITERAL bytes after decompression */
    uint64_t bytes_copied;  /* COPY bytes read from basis files */
    uint64_t bytes_delta;   /* DELTA stream bytes after decompression */
    uint64_t bytes_written; /* bytes written to tmp files */
    uint64_t server_copies; /* server-side copies made (merged COPY ranges) */
    /* files built with server-side copies: checked by a SHA-256 computed
     * from the console's copy of their basis (opts.local), or not (no copy:
     * by size); bytes of those copies read locally */
    uint64_t files_local_hashed, files_size_only, bytes_local;
} ds_apply_stats_t;

/*
 * Opens a receiver for the existing directory root (opts may be NULL).
 * Nothing is written until the session takes the lease. Returns 0 with *out
 * set, or -errno / DS_ENOMEM with a message naming root in err.
 */
DS_MUST_CHECK int ds_apply_new(const char *root, const ds_apply_opts_t *opts, ds_apply_t **out,
                               char *err, size_t errlen);

/*
 * Backpressure: the receiver takes no further input frame while this many
 * reply bytes (or more) are queued, or while a streamed reply (MANIFEST_GET,
 * LIST, SIG) is still being produced; streamed replies are produced a slice
 * (<= 1 MiB) at a time as the output drains. So the receiver holds at most
 * about this much output plus one input frame, whatever the input asks.
 */
#define DS_APPLY_OUT_HIGH (4u << 20)

/*
 * Resumes queued work (a streamed reply), then consumes input bytes (any
 * split of the frame stream) while ds_apply_want_input() says so: handles
 * each complete frame and queues its replies; a partial frame is buffered
 * (at most one frame). Returns the number of bytes consumed, 0..len: the
 * caller keeps the rest and offers it again once it has drained the output.
 * len 0 (buf may then be NULL) only resumes queued work. Returns a negative
 * code when the session is over because of a fatal error (framing, protocol
 * violation, bad version): an ERR frame with the FATAL flag is then queued;
 * further feeds return the same code. Check ds_apply_done() after BYE.
 */
long ds_apply_feed(ds_apply_t *ap, const void *buf, size_t len);

/*
 * 1 when ds_apply_feed() would consume input now; 0 while a streamed reply
 * is in progress or DS_APPLY_OUT_HIGH output bytes are queued: drain the
 * output, then call ds_apply_feed() again (with no input if none is left)
 * until this says 1. Read more input only then.
 */
DS_MUST_CHECK int ds_apply_want_input(const ds_apply_t *ap);

/* Queued reply bytes: *p (valid until the next feed/consume/free) and *len. */
void ds_apply_output(ds_apply_t *ap, const uint8_t **p, size_t *len);

/* Drops the first n queued reply bytes (after they were sent). */
void ds_apply_output_consume(ds_apply_t *ap, size_t n);

/* Bytes of a partial frame buffered. Non-zero at end of input means the
 * stream was truncated mid-frame. */
size_t ds_apply_pending(const ds_apply_t *ap);

/* 1 once BYE was handled, else 0. */
DS_MUST_CHECK int ds_apply_done(const ds_apply_t *ap);

/*
 * End of input: aborts files still open (their tmp files are removed), writes
 * the manifest if it changed and the lease is held, releases the lock. Safe to
 * call more than once. Returns 0 or the manifest write error.
 */
DS_MUST_CHECK int ds_apply_finish(ds_apply_t *ap);

/*
 * The receiver's serve loop, for `distsync agent` (stdin/stdout) and the
 * local transport's thread (one socket for both): reads in_fd only when
 * ds_apply_want_input() says so and the previous read is consumed (1 MiB
 * at a time, so memory stays bounded whatever the console pipelines),
 * feeds it, and writes every queued reply to out_fd before reading again.
 * Blocks on both fds; a slow console slows the receiver. Writes to a socket
 * raise no SIGPIPE (a closed peer is EPIPE).
 *
 * Returns 0 after BYE or at end of input on a frame boundary; the caller
 * then calls ds_apply_finish() (end of input) or ds_apply_free(). Returns
 * -errno when reading or writing fails, DS_EPROTO when the input ends
 * inside a frame, or the session's fatal code (see ds_apply_feed()); err
 * then says what failed ("reading stdin: ...", "session ended: ..."). The
 * loop never prints.
 */
DS_MUST_CHECK int ds_apply_serve(ds_apply_t *ap, int in_fd, int out_fd, char *err, size_t errlen);

/*
 * Serves as a helper of another receiver over socket fd (its fan_fds):
 * applies each FILE_ONE it sends, as that receiver's session (its lease,
 * checked in the lease file before each publish; never the manifest), and
 * sends back the reply. ap is fresh from ds_apply_new, over the helper's
 * own connection. Returns 0 at the end of fd's input, or < 0 with err.
 */
DS_MUST_CHECK int ds_apply_helper_serve(ds_apply_t *ap, int fd, char *err, size_t errlen);

/* Counters for the session so far. */
const ds_apply_stats_t *ds_apply_stats(const ds_apply_t *ap);

/* Calls ds_apply_finish() and frees everything. NULL is a no-op. */
void ds_apply_free(ds_apply_t *ap);

#endif

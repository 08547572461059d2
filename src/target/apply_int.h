/* Receiver internals shared by apply.c (session) and apply_file.c (files). */
#ifndef DS_APPLY_INT_H
#define DS_APPLY_INT_H

#include <stdint.h>
#include <sys/stat.h>

#include "distsync/apply.h"
#include "distsync/digest.h"
#include "distsync/lease.h"
#include "distsync/manifest.h"
#include "distsync/proto.h"
#include "distsync/error.h"
#include "distsync/fs.h"

#define APPLY_IOBUF    (256u * 1024)
#define APPLY_ERRMSG   512
#define APPLY_TMP_DIR  "tmp"
#define APPLY_TMP_PFX  "ds-"
#define APPLY_TMP_SFX  ".part"
#define APPLY_MAX_OPEN 1024
#define APPLY_BATCH    64 /* sealed files published together (apply_batch.c) */

enum { S_HELLO, S_READY, S_DONE, S_DEAD };

/*
 * A streamed reply in progress (MANIFEST_GET, LIST, SIG): produced a slice at
 * a time while the queued output is below DS_APPLY_OUT_HIGH, so its size
 * never sits in memory. Each kind embeds this head first.
 */
struct astream {
    /* Queues the next reply frame(s). Returns 1 when the reply is complete
     * (a failure after the first slice is answered with ERR, same id), 0
     * when more remains, or a negative code that ends the session. */
    int (*step)(ds_apply_t *ap, struct astream *st);
    void (*free)(struct astream *st);
    uint32_t id;
};

struct afile {
    int used, failed, in_commit;
    uint32_t id;
    char *path;
    uint64_t size, written;
    uint32_t mode;
    int64_t mtime_ns;
    int fd; /* tmp file, -1 when none */
    char tmpname[64];
    ds_sha256_t sha;
    int err_code;
    char err_msg[APPLY_ERRMSG];
    /* basis cache, shared by COPY and DELTA */
    int basis_fd;            /* fs's */
    int basis_trusted;       /* size and mtime match the manifest: server-side copies */
    int unhashed;            /* built with server-side copies: sha does not cover it */
    uint64_t pc_off, pc_len; /* pending server-side copy (merged adjacent ranges) */
    const ds_fs_t *fs;       /* the receiver's */
    char *basis_name;
    uint64_t basis_size;
    /* server-side copies checked from the console's copy of the basis
     * (apply_local.c): spliced, the file was built with some; basis_sha, a
     * trusted basis's version (its manifest entry); local, the console's
     * copy of it (opts.local, opened by local_ops), NULL when none */
    int spliced, local_tried;
    uint8_t basis_sha[DS_SHA256_LEN];
    void *local;
    const ds_apply_local_t *local_ops;
    /* librsync patch job of the current DELTA run */
    void *job;
    int delta_done;
    /* zpatch decoder of the current DELTA run (version 3; apply_zpatch.c) */
    struct ds_zpatch_dec *zdec;
    struct ds_zpatch_basis *zbasis;
};

/* A sealed file (verified, mode and mtime set) waiting in the batch for
 * its publish and its reply (apply_batch.c). */
struct abatch {
    int fd; /* the tmp file */
    char tmpname[64];
    char *path;
    uint64_t size;
    int64_t mtime;    /* as published */
    uint32_t id, fid; /* the commit's (or FILE_ONE's) request id; file id */
    int one;          /* FILE_ONE: answered FILE_DONE */
    uint8_t sha256[DS_SHA256_LEN];
};

struct ds_apply {
    ds_apply_opts_t opts;
    const ds_fs_t *fs; /* opts.fs, or ds_fs_posix */
    char *root;
    int rootfd, dsfd, tmpfd, lockfd;
    int state, fatal_rc;
    unsigned version; /* protocol version agreed in HELLO */
    int one;          /* a FILE_ONE is applied: its failure waits for the final reply */
    unsigned max_open;
    uint32_t session;
    ds_proto_buf_t in, out;
    struct astream *stream; /* reply being streamed, NULL when none */
    ds_manifest_t *man;
    /* files HASH found to hold their manifest entry's content, with the
     * mtime seen then (apply_scopy.c): bases for server-side copies */
    ds_manifest_t *hashed;
    int man_dirty;
    int64_t man_written_at; /* last manifest write (or lease), session clock */
    int have_lease;
    int lease_nofile; /* full disk: holding the lock without a lease file */
    int lease_lost;   /* another session took the lease over: never re-taken */
    int scopy_off;    /* the server does not copy on its side: never tried again */
    int64_t lease_expiry;
    int64_t lease_seen;                   /* when lease_mine last read the file and found it ours */
    int lease_seen_ok;                    /* lease_seen is set (cleared when the lease is lost) */
    uint64_t lease_session;               /* names this session in the lease file */
    char lease_console[DS_LEASE_STR_MAX]; /* console id it was granted to */
    char lease_msg[APPLY_ERRMSG];         /* why there is no valid lease */
    struct afile *files;
    uint8_t *iobuf; /* APPLY_IOBUF */
    uint8_t *zbuf;  /* DS_PROTO_MAX_DATA, for zstd */
    void *zctx;
    void *zcctx; /* ZSTD_CCtx of packed replies (version 4; apply_cond.c) */
    ds_apply_stats_t stats;
    unsigned tmp_seq;         /* names the session's tmp files */
    struct ds_apply_fan *fan; /* helpers applying FILE_ONEs (apply_fan.c), NULL: none */
    int helper;               /* this receiver is such a helper: never writes the manifest */
    struct abatch *batch;     /* APPLY_BATCH sealed files, NULL until the first */
    unsigned nbatch;
};

/* apply.c */
DS_MUST_CHECK int ds__apply_reply(ds_apply_t *ap, const ds_msg_t *m);
DS_MUST_CHECK int ds__apply_reply_err(ds_apply_t *ap, uint32_t id, int code, const char *path,
                                      const char *msg);
/* Reads and writes the manifest of the state dir (err names the file). */
DS_MUST_CHECK int ds__apply_load_manifest(ds_apply_t *ap, char *err, size_t errlen);
/* Writes the manifest if dirty and the lease is still this session's.
 * Returns 0, DS_ELEASE (lease lost) or the store error (-ENOSPC...). */
DS_MUST_CHECK int ds__apply_write_manifest(ds_apply_t *ap);
/* Ends the session: queues an ERR with the FATAL flag (message from fmt),
 * aborts open files, writes the manifest. Returns code. */
DS_MUST_CHECK int ds__apply_fatal(ds_apply_t *ap, uint32_t id, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int64_t ds__apply_now(ds_apply_t *ap);
/* Writes the manifest if it changed and DS_APPLY_CHECKPOINT_S passed since
 * the last write, so a killed receiver loses at most that much of it.
 * A failed write is logged and retried later; never fails the caller. */
void ds__apply_checkpoint(ds_apply_t *ap);
/* Makes st the reply being streamed (ap->stream must be NULL). */
void ds__apply_stream_start(ds_apply_t *ap, struct astream *st);
/* Copies a wire string to a NUL-terminated buffer of DS_PROTO_STR_MAX + 1. */
void ds__apply_cstr(ds_pstr_t s, char *out);

/* apply_file.c: each returns 0, or a negative code that ends the session. */
DS_MUST_CHECK int ds__apply_file_begin(ds_apply_t *ap, const ds_msg_t *m);
DS_MUST_CHECK int ds__apply_file_copy(ds_apply_t *ap, const ds_msg_t *m);
DS_MUST_CHECK int ds__apply_file_data(ds_apply_t *ap, const ds_msg_t *m);
DS_MUST_CHECK int ds__apply_file_delta_end(ds_apply_t *ap, const ds_msg_t *m);
DS_MUST_CHECK int ds__apply_file_commit(ds_apply_t *ap, const ds_msg_t *m);
DS_MUST_CHECK int ds__apply_file_abort(ds_apply_t *ap, const ds_msg_t *m);
/* Appends n bytes to f's tmp file and hash. Returns 0, or 1 when f failed. */
DS_MUST_CHECK int ds__apply_file_write(ds_apply_t *ap, struct afile *f, uint32_t id,
                                       const uint8_t *p, size_t n);
/* FILE_ONE (version 6, apply_one.c): FILE_BEGIN, the data frame, DELTA_END
 * and FILE_COMMIT of one file, answered by one FILE_DONE or FILE_ERR. */
DS_MUST_CHECK int ds__apply_file_one(ds_apply_t *ap, const ds_msg_t *m);
/* Fails file f (once): removes its tmp file and queues an early FILE_ERR
 * (none inside a FILE_ONE or a commit: the final reply carries it). */
int ds__apply_file_fail(ds_apply_t *ap, struct afile *f, uint32_t id, int code, const char *fmt,
                        ...) __attribute__((format(printf, 5, 6)));

/* apply_zpatch.c: DELTA runs carrying a zpatch (version 3). Each returns 0,
 * or 1 when the file failed (FILE_ERR queued). */
/* 1 when a DELTA run starting with these bytes is a zpatch in this session. */
DS_MUST_CHECK int ds__apply_zpatch_sniff(const ds_apply_t *ap, const uint8_t *p, size_t n);
DS_MUST_CHECK int ds__apply_zpatch_begin(ds_apply_t *ap, struct afile *f, uint32_t id);
int ds__apply_zpatch_feed(ds_apply_t *ap, struct afile *f, uint32_t id, const uint8_t *p, size_t n);
/* DELTA_END: the stream must be complete. */
int ds__apply_zpatch_end(ds_apply_t *ap, struct afile *f, uint32_t id);
/* Frees the decoder (NULL-safe; also on failure). */
void ds__apply_zpatch_free(struct afile *f);

/* Publishes a sealed tmp file: resolves (creates) the parent directory of
 * path, refuses a destination that is not a regular file, checks the lease
 * still names this session, renames tmpname over it. Returns 0 with the
 * parent's fd in *dirfd (the caller makes the rename durable and closes
 * it), or < 0 with msg set. */
DS_MUST_CHECK int ds__apply_publish(ds_apply_t *ap, const char *path, const char *tmpname,
                                    int *dirfd, char *msg, size_t cap);

/* apply_batch.c: commits published together. A sealed file waits in the
 * batch (its reply with it) until the receiver runs out of input, the
 * batch is full, or a request needs what it publishes; then one syncfs
 * makes every tmp file durable, the renames follow, a second syncfs makes
 * them durable, and the replies go out in request order. */
/* 1 when this receiver batches its commits (ds_fs_ops_t.can_syncfs: a local
 * file system). */
int ds__apply_batching(const ds_apply_t *ap);
/* Takes sealed f into the batch (f is released); flushes a full batch
 * first. Returns 0 or < 0 (the session ends). */
DS_MUST_CHECK int ds__apply_batch_add(ds_apply_t *ap, struct afile *f, uint32_t id, int64_t mtime,
                                      const uint8_t sha256[DS_SHA256_LEN]);
/* 1 when request m must not be handled before the batch is published:
 * anything but file data, or a frame naming a path in the batch. */
int ds__apply_batch_blocks(const ds_apply_t *ap, const ds_msg_t *m);
/* Publishes the batch and queues its replies (0 when empty). Returns 0 or
 * < 0 (out of memory: the session ends). */
DS_MUST_CHECK int ds__apply_batch_flush(ds_apply_t *ap);
/* Drops the batch without publishing (tmp files removed). */
void ds__apply_batch_free(ds_apply_t *ap);

/* Removes the tmp file and frees the slot's resources. */
void ds__apply_file_release(ds_apply_t *ap, struct afile *f);

/* apply_fan.c: FILE_ONEs spread over helper receivers, each over a
 * connection of its own (ds_apply_opts_t.fan_fds); replies in request
 * order. */
#define DS_APPLY_FAN_MAX 15
/* Sets up ap->fan from the options. Returns 0, DS_EUSAGE or DS_ENOMEM. */
DS_MUST_CHECK int ds__apply_fan_new(ds_apply_t *ap);
void ds__apply_fan_free(ds_apply_t *ap);
/* 1 when request m must wait until every file in flight is answered. */
int ds__apply_fan_blocks(const ds_apply_t *ap, const ds_msg_t *m);
/* Waits until every file in flight is answered (replies queued). 0 or < 0. */
DS_MUST_CHECK int ds__apply_fan_drain(ds_apply_t *ap);
/* FILE_ONE m (frame p, len bytes): hands it to an idle helper, or applies
 * it here when all are busy. Returns 1 when not taken (no helpers, not a
 * FILE_ONE, no lease: the caller dispatches it), 0 when taken, < 0 (the
 * session ends). */
DS_MUST_CHECK int ds__apply_fan_one(ds_apply_t *ap, const ds_msg_t *m, const uint8_t *p,
                                    size_t len);
/* Before the serve loop blocks on in_fd: waits for in_fd or for replies.
 * Returns 1 when in_fd may be read, 0 when replies were queued (send them
 * first), or < 0. */
DS_MUST_CHECK int ds__apply_fan_wait(ds_apply_t *ap, int in_fd);

/* apply_scopy.c: server-side copies (a backend with copy_range) */
/* Trusts f's basis name (stat st) when its size and mtime match the
 * manifest and the backend copies on the server. */
void ds__apply_scopy_trust(ds_apply_t *ap, struct afile *f, const char *name,
                           const struct stat *st);
/* HASH found name (size bytes, mtime_ns) to hold content sha: when that is
 * its manifest entry's content, a basis with this size and mtime is
 * trusted for server-side copies in this session. */
void ds__apply_scopy_hashed(ds_apply_t *ap, const char *name, uint64_t size, int64_t mtime_ns,
                            const uint8_t sha[DS_SHA256_LEN]);
/* Queues a COPY range as a server-side copy (merged with an adjacent
 * pending one). 0 queued, 1 declined (copy it through here), -1 f failed. */
int ds__apply_scopy_add(ds_apply_t *ap, struct afile *f, uint32_t id, uint64_t off, uint64_t len);
/* Performs the pending copy (before any other output). 0, or 1 (f failed). */
int ds__apply_scopy_flush(ds_apply_t *ap, struct afile *f, uint32_t id);
/* verify = readback: the tmp file's SHA-256 read back. 0, or 1 (f failed). */
int ds__apply_scopy_verify(ds_apply_t *ap, struct afile *f, uint32_t id,
                           const uint8_t want[DS_SHA256_LEN]);

/* apply_local.c: the SHA-256 of a file built with server-side copies,
 * computed from the console's copy of its basis (ds_apply_opts_t.local). */
/* Before f's first server-side copy from its basis: opens the console's
 * copy of the basis version (once per basis): f->local, or NULL when there
 * is no sound copy (the file is then checked by size, and that is logged). */
void ds__apply_local_open(ds_apply_t *ap, struct afile *f);
/* After a server-side copy of basis range [off, off + len): feeds f's
 * SHA-256 with the same range of the console's copy. 0, or 1 (f failed). */
int ds__apply_local_feed(ds_apply_t *ap, struct afile *f, uint32_t id, uint64_t off, uint64_t len);
/* Closes f's local copy, if any, and forgets it was tried. */
void ds__apply_local_close(struct afile *f);

/* apply_lease.c */
/* LEASE: acquire, renew or release. */
DS_MUST_CHECK int ds__apply_lease(ds_apply_t *ap, const ds_msg_t *req);
/* Creates and opens .distsync and .distsync/tmp. Returns 0 or an error. */
DS_MUST_CHECK int ds__apply_state_dirs(ds_apply_t *ap);
/* 1 when this session holds the lease and the lease file still names it
 * (0 otherwise: a takeover is noted, the lock dropped, writing stops). */
DS_MUST_CHECK int ds__apply_lease_mine(ds_apply_t *ap);
/* ds__apply_lease_mine and not expired by the session clock. */
DS_MUST_CHECK int ds__apply_lease_valid(ds_apply_t *ap);
/* ds__apply_lease_valid, taking a read of the lease file made within the
 * same second as still true (no read then): for FILE_BEGIN and FILE_COMMIT,
 * which publish nothing themselves, and the publish on a remote backend. */
DS_MUST_CHECK int ds__apply_lease_fresh(ds_apply_t *ap);
/* The check before a publish: ds__apply_lease_mine, or on a remote backend
 * (ds_fs_ops_t.remote) ds__apply_lease_fresh. 1 when this session may
 * publish. */
DS_MUST_CHECK int ds__apply_lease_publish(ds_apply_t *ap);
/* Why the lease is not valid, for error messages. */
const char *ds__apply_lease_why(const ds_apply_t *ap);

/* apply_cond.c: version 4 MANIFEST_GET / LIST answers. */
/* Queues a MANIFEST_DATA / LIST_DATA slice, packed in a version 4 session.
 * Returns 0 or < 0. */
DS_MUST_CHECK int ds__apply_reply_data(ds_apply_t *ap, const ds_msg_t *m);
/* A known digest before version 4 ends the session: returns its code,
 * else 0. */
DS_MUST_CHECK int ds__apply_check_known(ds_apply_t *ap, const ds_msg_t *m);
/* When req's known digest equals sha: queues MANIFEST_SAME / LIST_SAME and
 * returns 1; else 0 (stream the bytes). DS_ENOMEM. */
DS_MUST_CHECK int ds__apply_same(ds_apply_t *ap, const ds_msg_t *req,
                                 const uint8_t sha[DS_SHA256_LEN]);

/* Writes buf[0, len) to fd, blocking. A socket gets MSG_NOSIGNAL, so a
 * gone peer is EPIPE rather than SIGPIPE for the whole process
 * (apply_serve.c). Returns 0 or -errno. */
DS_MUST_CHECK int ds__apply_write_all(int fd, const void *buf, size_t len);

/* apply_adopt.c: ADOPT (version 2), record a matching file in place. */
DS_MUST_CHECK int ds__apply_adopt(ds_apply_t *ap, const ds_msg_t *m);
/* SHA-256 and length of what open file fd holds from its offset on, read
 * through ap's seam and ap->iobuf. Returns 0, -errno or DS_ENOMEM. */
DS_MUST_CHECK int ds__apply_hash_fd(ds_apply_t *ap, int fd, uint8_t sha[DS_SHA256_LEN],
                                    uint64_t *size);
/* apply_walk.c; LIST and SIG start a streamed reply (ds__apply_stream_start) */
DS_MUST_CHECK int ds__apply_list(ds_apply_t *ap, const ds_msg_t *m);
DS_MUST_CHECK int ds__apply_hash(ds_apply_t *ap, const ds_msg_t *m);
/* apply_sig.c: SIG, the librsync signature of one file (rsync fallback). */
DS_MUST_CHECK int ds__apply_sig(ds_apply_t *ap, const ds_msg_t *m);
DS_MUST_CHECK int ds__apply_delete(ds_apply_t *ap, const ds_msg_t *m);

#endif

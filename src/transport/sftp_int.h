/*
 * SFTP mode internals (transport = sftp, or auto without an agent): an
 * in-process receiver that speaks the apply protocol to the console through
 * two buffers (r->in, r->out) and SFTP (libssh2, non-blocking) to the
 * server, stepped on the caller's thread by the transport's calls: no
 * thread of its own. Files:
 *  - transport_sftp.c: the transport (its start, read, write, close);
 *  - sftp_end.c: the session's end, stepped;
 *  - sftp_recv.c: frames in, replies out, the session state machine;
 *  - sftp_slot.c, sftp_pump.c: the files in flight (their readback and
 *    clean-up included), the mv loop, non-blocking steps;
 *  - sftp_list.c, sftp_hash.c: LIST and HASH, non-blocking steps;
 *  - sftp_file.c: ADOPT, DELETE, non-blocking steps;
 *  - sftp_fs.c: remote paths, errors, stepped lstat, small reads, writes;
 *  - sftp_manifest.c: the manifest on the server, its write (the atomic
 *    replace: mv -f through the mv loop, or unlink + rename) and
 *    MANIFEST_GET, non-blocking steps;
 *  - sftp_lease.c: the lease file, non-blocking steps.
 * One thread at a time touches these objects (the transport's caller).
 */
#ifndef DS_SFTP_INT_H
#define DS_SFTP_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include <libssh2.h>
#include <libssh2_sftp.h>

#include "distsync/digest.h"
#include "distsync/lease.h"
#include "distsync/manifest.h"
#include "distsync/proto.h"

#include "ssh_int.h"

#define SFTP_STATE_DIR "/.distsync"
#define SFTP_MSG       512
/* Bytes passed to libssh2_sftp_write at once (libssh2 cuts them into
 * 30,000-byte SFTP writes, all in flight): 0.7 MiB/s with 30 KiB per call,
 * 44 MiB/s with 4 MiB at 40 ms RTT (issue 11's measurement). */
#define SFTP_INFLIGHT (4u << 20)
#define SFTP_READ_BUF (2u << 20) /* libssh2 pipelines reads of one call too */

/* A small file (the lease) read stepped: open, reads, close. */
#define SFTP_SMALL_MAX 4096
struct sftp_rd {
    int phase;
    LIBSSH2_SFTP_HANDLE *h;
    size_t n;
    int rc;
    char buf[SFTP_SMALL_MAX + 1];
};

/* A small write stepped (the lease): open, writes, fsync, close. */
struct sftp_wr {
    int phase;
    LIBSSH2_SFTP_HANDLE *h;
    size_t off;
    int rc;
};

/* The server side: the connection and what the open found. */
struct ds__sftp_fs {
    struct ds__ssh_conn c;
    struct ds__ssh_url u;
    LIBSSH2_SFTP *sftp;
    int shell;    /* the account runs commands: replace with mv -f */
    int readback; /* verify = readback */
    char root[4096];
    char path[3][8300];                 /* scratch for absolute remote paths */
    char err[SFTP_MSG];                 /* last failure, naming the remote path */
    uint8_t *rbuf;                      /* SFTP_READ_BUF */
    uint64_t replaced_unlink;           /* replaces done as unlink + rename */
    _Atomic uint64_t wire_in, wire_out; /* published for the loop thread */
    /* Handles on the main SFTP channel that a request cut short or failed
     * left open: closed by the pump's steps (SFTP_LOST), or freed at the
     * cut; lost[0]'s close may be under way. */
    LIBSSH2_SFTP_HANDLE **lost;
    size_t nlost, lost_cap;
};

/* sftp_fs.c */

/* root + "/" + rel into fs->path[slot] (rel "" gives root). */
const char *ds__sftp_abs(struct ds__sftp_fs *fs, int slot, const char *rel);
/* Sets fs->err (truncated to fit). */
void ds__sftp_errf(struct ds__sftp_fs *fs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Maps a libssh2 / SFTP failure to a code, with fs->err naming what. */
int ds__sftp_fail(struct ds__sftp_fs *fs, const char *what, const char *path);
/* The same for a call on the SFTP channel sftp. */
int ds__sftp_fail_on(struct ds__sftp_fs *fs, LIBSSH2_SFTP *sftp, const char *what,
                     const char *path);
/* Reads at most max (<= SFTP_SMALL_MAX) bytes of abs into rd->buf
 * (NUL-terminated, rd->n), stepped: call again with the same arguments
 * after STEP_WAIT. Returns 0, STEP_WAIT, -ENOENT, DS_ETOOBIG or another
 * failure (fs->err); rd is ready for the next read either way. */
DS_MUST_CHECK int ds__sftp_read_nb(struct ds__sftp_fs *fs, struct sftp_rd *rd, const char *abs,
                                   size_t max);
/* Writes p[0, n) to abs, stepped: a new file (create: exclusive, 0600,
 * fsynced) or in place. Call again with the same arguments after
 * STEP_WAIT. Returns 0, STEP_WAIT or a failure (fs->err; -EEXIST: abs
 * exists); wr is ready for the next write either way. */
DS_MUST_CHECK int ds__sftp_write_nb(struct ds__sftp_fs *fs, struct sftp_wr *wr, const char *abs,
                                    const void *p, size_t n, int create);
/* Publishes the connection's byte counters to wire_in / wire_out. */
void ds__sftp_counts(struct ds__sftp_fs *fs);
/* A handle of the main SFTP channel that its request no longer needs (a
 * request cut short or failed): queued for a stepped close
 * (ds__sftp_lost_step), never closed waiting. NULL is ignored. */
void ds__sftp_lose(struct ds__sftp_fs *fs, LIBSSH2_SFTP_HANDLE *h);
/* Closes the lost handles, non-blocking, oldest first: STEP_IDLE (none),
 * STEP_MOVED (all closed) or STEP_WAIT (call again when the socket is
 * ready; the close under way goes first). A failed close frees the
 * handle too (libssh2). */
int ds__sftp_lost_step(struct ds__sftp_fs *fs);
/* After the socket is cut: every lost handle closed (each close fails at
 * once, which frees it) and the queue freed. */
void ds__sftp_lost_cut(struct ds__sftp_fs *fs);

/* lstat of an absolute path, the session non-blocking: 0, STEP_WAIT (call
 * again with the same arguments when the socket is ready), -ENOENT or
 * another failure. */
DS_MUST_CHECK int ds__sftp_lstat_nb(struct ds__sftp_fs *fs, const char *abs,
                                    LIBSSH2_SFTP_ATTRIBUTES *a);

/* The listing (sftp_list.c): streams LIST_DATA frames through emit, one
 * step at a time. *walk is NULL at the start; the session is
 * non-blocking. Returns STEP_WAIT (the
 * walk kept in *walk: call again with the same arguments when the socket is
 * ready), 0 at the end or a failure (fs->err; *walk freed either way, its
 * open handles lost). */
typedef int (*ds__sftp_emit_fn)(void *ctx, const ds_msg_t *m);
DS_MUST_CHECK int ds__sftp_list_step(struct ds__sftp_fs *fs, void **walk, const char *dir,
                                     uint32_t id, ds__sftp_emit_fn emit, void *ctx);
/* Abandons a walk: its handles lost (ds__sftp_lose), never waited for. */
void ds__sftp_list_drop(struct ds__sftp_fs *fs, void **walk);

/* Files in flight (SFTP mode's pipeline, sftp_slot.c): each on an SFTP
 * channel of its own, all driven non-blocking by the receiver's steps,
 * so that one file's round trips (open, fsync, attributes, size check,
 * close, the parents' lstat walk, the rename) overlap with the others' and
 * with the next file's data. OpenSSH's MaxSessions is 10 by default: these,
 * the main SFTP channel and one exec channel fit. */
#define SFTP_SLOTS 8
#define SFTP_DIRS  64

enum {
    SL_FREE,    /* no channel */
    SL_INIT,    /* its SFTP channel starting */
    SL_IDLE,    /* a channel, no file */
    SL_OPEN,    /* creating the tmp file */
    SL_WRITE,   /* data in flight, more may come */
    SL_FSYNC,   /* after FILE_COMMIT: fsync@openssh.com */
    SL_ATTRS,   /* mode and mtime */
    SL_SIZE,    /* fstat: the server holds the size sent */
    SL_CLOSE,   /* close the handle */
    SL_WALK,    /* lstat each parent (never a symlink), then the path */
    SL_MKDIR,   /* a missing parent */
    SL_PUBLISH, /* the lease, then rename, mv -f or unlink + rename */
    SL_UNLINK,
    SL_RENAME,
    SL_MV,       /* its mv -f queued on the mv channel (sftp_pump.c) */
    SL_MTIME,    /* published: the mtime the server gave it (none was sent) */
    SL_VERIFY,   /* verify = readback: the tmp file read back and hashed */
    SL_LEFTOVER, /* a tmp file of this name left by an earlier try: removed */
    SL_DISCARD,  /* failed: its handle closed, its tmp file removed */
    SL_WAIT,     /* failed (tmp removed): waits for FILE_COMMIT or FILE_ABORT */
    SL_DONE      /* its reply is due in order */
};

struct sftp_slot {
    int state;
    LIBSSH2_SFTP *sftp;
    LIBSSH2_SFTP_HANDLE *h;
    uint32_t id;       /* file id */
    uint32_t begin_id; /* FILE_BEGIN's frame id (an early FILE_ERR's id) */
    char path[DS_PROTO_STR_MAX + 1];
    uint64_t size, written;
    uint32_t mode;
    int64_t mtime_ns;
    char tmp[8300]; /* absolute; "" when none is on the server */
    char dst[8300]; /* absolute */
    char dir[8300]; /* the parent being checked */
    size_t walk;    /* offset in dst past the last parent checked */
    int mkdir_tried, reopened, present;
    int asked; /* the walk's lstat is in flight (libssh2 answers it next) */
    ds_sha256_t sha;
    uint8_t digest[DS_SHA256_LEN];
    uint8_t *buf;           /* [start, end): bytes not yet acknowledged */
    size_t cap, start, end; /* cap <= SFTP_INFLIGHT */
    int ended, aborted;     /* FILE_COMMIT / FILE_ABORT came */
    uint32_t reply_id;      /* its id */
    uint64_t seq;           /* replies go out in this order */
    int failed, err_code;
    int discard;      /* failed while its call was half sent: SL_DISCARD after it */
    int corrupted;    /* the test hook's write: 1 under way, 2 done */
    ds_sha256_t vsha; /* SL_VERIFY */
    int vhash, vrc;
    uint64_t vsize;
    char err_msg[SFTP_MSG];
    int64_t mtime_out;
    LIBSSH2_SFTP_ATTRIBUTES a;
};

enum { SR_HELLO, SR_READY, SR_DONE, SR_DEAD };

/* A request stepped non-blocking (LIST, HASH), like the slots: each call
 * that would block returns STEP_WAIT, its frame stays in r->in and is
 * handled again, resuming the request, when the SSH socket is ready
 * (libssh2 resumes a call made again with the same arguments). The
 * others (LEASE, MANIFEST_GET, ADOPT, DELETE, MANIFEST_COMMIT, BYE) still
 * block. */
#define SFTP_REQ_CKPT (-1) /* r->req.kind: a checkpoint of the manifest */
struct sftp_req {
    int kind;   /* DS_MSG_LIST or DS_MSG_HASH while one is under way, else 0 */
    void *list; /* LIST: sftp_list.c's walk */
    int phase;  /* ADOPT, DELETE (sftp_file.c) */
    int hphase; /* the hash (ds__sftp_req_hash) */
    size_t at;  /* the walk: where the next component starts in abs */
    char abs[8300];
    LIBSSH2_SFTP_ATTRIBUTES a;
    LIBSSH2_SFTP_HANDLE *h;
    ds_sha256_t sha;
    uint64_t size;
    int rc; /* the result, while the handle closes */
    int walked, present;
    int64_t mtime; /* ADOPT: the file's, as set */
    uint8_t digest[DS_SHA256_LEN];
};

/* A LEASE request under way (sftp_lease.c), and the manifest's load. */
struct sftp_lq {
    int phase, sub, tries, rc;
    int put_failed; /* the last exclusive create failed with SFTP status 4 */
    struct sftp_rd rd;
    struct sftp_wr wr;
    char raw[SFTP_SMALL_MAX + 1]; /* the lease judged */
    char text[1024];              /* ours */
    size_t textlen;
    char away[8400];
    LIBSSH2_SFTP_HANDLE *h; /* the tmp directory's, the manifest's */
    LIBSSH2_SFTP_ATTRIBUTES a;
    char name[512];
    char victim[8400];
    uint32_t cleaned;
    ds_manifest_decoder_t *d;
};

/* The manifest's write, stepped (sftp_manifest.c). */
struct sftp_mst {
    int phase;
    LIBSSH2_SFTP_HANDLE *h;
    uint8_t *buf; /* the encoded manifest */
    size_t len, off;
    int rc;    /* a failure, while the tmp file is removed; the mv's answer */
    int moved; /* the mv loop answered */
    char tmp[8400];
};

/* The mv channel: on a shell account, one exec of a shell loop that reads
 * two lines (tmp, then the path) at a time, runs mv -f -T on them and
 * answers with mv's exit status on a line: replaces go out pipelined, one
 * channel for the run, instead of an exec (4 round trips) each. */
#define SFTP_MVQ_LEN (SFTP_SLOTS + 1)
struct sftp_mvq {
    LIBSSH2_CHANNEL *ch;
    int opening; /* its channel is being opened (no other channel starts) */
    int running; /* its exec went through */
    int broken;  /* the loop could not start or ended: what waits on it fails */
    int unmv;    /* it could not start: replaces go by unlink + rename (nomv why) */
    char nomv[200];
    int noted; /* the run's events were told (the transport's note op) */
    ds_proto_buf_t out;
    size_t off;             /* out[off, len) not yet written */
    int fifo[SFTP_MVQ_LEN]; /* slots (-1: the manifest) awaiting their status line, in order */
    int head, n;
    char line[16];
    size_t linelen;
};

/* The receiver: the console's session on one side, fs on the other. */
struct ds__sftp_recv {
    struct ds__sftp_fs fs;
    int eof;              /* the console's input ended */
    int end_phase, end_k; /* the session's end (sftp_end.c) */
    int state;
    unsigned version;
    uint64_t session; /* names our tmp files and our lease */
    ds_proto_buf_t in, out;
    ds_manifest_t *man; /* loaded with the lease */
    int man_dirty;
    int64_t man_written_at; /* unix seconds of the last manifest write */
    int have_lease, lease_lost;
    int64_t lease_expiry;
    int64_t mine_at_ms; /* when the lease file last named us (monotonic) */
    ds_lease_t lease;   /* as written */
    char lease_msg[2 * SFTP_MSG];
    struct sftp_rd lck;  /* the lease check's read of the lease file */
    struct sftp_mst mst; /* the manifest's write */
    struct sftp_lq lq;   /* a LEASE request under way */
    int ckpt;            /* a checkpoint of the manifest is due */
    struct sftp_slot slot[SFTP_SLOTS];
    int nslots;    /* slots given a channel (or starting one) */
    int max_slots; /* lowered when the server refuses another channel */
    int owner;     /* the slot whose packet is half sent, else -1 */
    int waiting;   /* a slot waits on the SSH socket */
    int kick;      /* a slot has work the pump has not seen */
    int io_timeout_s;
    uint64_t next_seq, reply_seq;
    struct sftp_mvq mvq;
    struct sftp_req req;
    /* parents the walk found to be directories this run (not checked
     * again in it): a ring of SFTP_DIRS, malloc'd paths */
    char *dirs[SFTP_DIRS];
    unsigned ndirs;
    void *zd; /* ZSTD_DCtx */
    uint8_t *zbuf;
    const char *corrupt; /* test hook: flip a byte of this path's upload */
};

/* sftp_recv.c */
int ds__sftp_reply(struct ds__sftp_recv *r, const ds_msg_t *m);
int ds__sftp_reply_err(struct ds__sftp_recv *r, uint32_t id, int code, const char *path,
                       const char *msg);
/* The replies stay in r->out for the transport's read. Returns 0. */
int ds__sftp_flush(struct ds__sftp_recv *r);
/* Serves the session as far as it goes without waiting: the files in
 * flight moved, the frames in r->in handled (a request resumed), replies
 * queued in r->out. Returns 0 when it waits (on the SSH socket, in the
 * directions libssh2_session_block_directions names, or on the console:
 * more input, or room in r->out), 1 once the session ended (BYE, a fatal
 * error sent, or the end of input with every frame handled), or a code
 * that ends it. The session is non-blocking for good once started: no
 * libssh2 call here waits on the socket. */
DS_MUST_CHECK int ds__sftp_recv_step(struct ds__sftp_recv *r);
/* sftp_end.c: the session's end, stepped: the files in flight dropped
 * (tmp files removed), the manifest written if the lease is ours (its
 * result in *rc), then when polite the channels closed and the disconnect
 * sent. Returns 0 once done (the caller frees what is left), or STEP_WAIT
 * (call again when the socket is ready). */
DS_MUST_CHECK int ds__sftp_end_step(struct ds__sftp_recv *r, int polite, int *rc);
/* 1 once the end is past the manifest's write (the rest is politeness). */
int ds__sftp_end_past_manifest(const struct ds__sftp_recv *r);
/* Replies queued past this wait for the console to read them before a
 * request goes on (a listing streams). */
#define SFTP_OUT_HIGH (4u << 20)
void ds__sftp_cstr(ds_pstr_t s, char *out);

/* Step answers (sftp_slot.c, sftp_pump.c). */
#define STEP_IDLE  0 /* nothing to do without new input */
#define STEP_MOVED 1
#define STEP_WAIT  2                /* libssh2 would block */
#define SFTP_MVQ   SFTP_SLOTS       /* the mv channel's index as an owner */
#define SFTP_LOST  (SFTP_SLOTS + 1) /* the lost handles' closes (ds__sftp_lost_step) */

/* sftp_slot.c: one move of slot sl (owned: it has a half-sent packet, so
 * its pending call goes first). Returns STEP_* or a code that ends the
 * session. */
int ds__sftp_step(struct ds__sftp_recv *r, struct sftp_slot *sl, int owned);
/* The slot's failure, once: tmp removed (by its steps), an early
 * FILE_ERR queued when the console has not ended the file yet. Returns 0
 * or a code that ends the session. */
int ds__sftp_slot_fail(struct ds__sftp_recv *r, struct sftp_slot *sl, int code, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));
/* The file is in place: recorded in the manifest, its reply due. */
int ds__sftp_published(struct ds__sftp_recv *r, struct sftp_slot *sl);
static inline int ds__sftp_has_file(const struct sftp_slot *sl)
{
    return sl->state > SL_IDLE;
}

/* sftp_pump.c: queues mv -f -T tmp dst on the mv channel (started on
 * first use, by the steps) for who (a slot's index; -1: the manifest,
 * answered through ds__sftp_manifest_moved). Returns 1 queued, 0 no mv
 * channel (the loop broke, or the root holds a newline: the caller fails
 * the move), or DS_ENOMEM. */
int ds__sftp_mvq_put(struct ds__sftp_recv *r, const char *tmp, const char *dst, int who);
/* Starts the mv loop, writes what is queued, reads the answers (each to
 * its slot, or the manifest). Returns STEP_* or a code that ends the
 * session. The session must be non-blocking. */
int ds__sftp_mvq_step(struct ds__sftp_recv *r);
void ds__sftp_mvq_free(struct ds__sftp_recv *r, int graceful);

/* sftp_slot.c: the file frames. Each returns 0, DS__SFTP_STALL (the frame
 * must wait: no free slot, or its slot's buffer is full; the pump makes
 * room) or a negative code that ends the session. */
#define DS__SFTP_STALL 2
int ds__sftp_file_begin(struct ds__sftp_recv *r, const ds_msg_t *m);
int ds__sftp_file_data(struct ds__sftp_recv *r, const ds_msg_t *m);
int ds__sftp_file_end(struct ds__sftp_recv *r, const ds_msg_t *m);
/* COPY, DELTA, DELTA_END: not in SFTP mode, the file fails. */
int ds__sftp_file_refuse(struct ds__sftp_recv *r, const ds_msg_t *m);
/* sftp_pump.c: moves every slot as far as it goes without waiting, and queues the
 * replies that are due in order. *progress says whether anything moved.
 * Returns 0 or a code that ends the session. */
DS_MUST_CHECK int ds__sftp_pump(struct ds__sftp_recv *r, int *progress);
/* 1 when a reply to a FILE_COMMIT or FILE_ABORT is still to come: a
 * request that follows waits (replies go in request order). */
int ds__sftp_files_pending(const struct ds__sftp_recv *r);
/* Before a request's first call while slots are in flight: steps the
 * half-sent packet's owner (and with channels, the channel starting) until
 * it is out. Returns 0 once settled, STEP_WAIT (call again when the
 * socket is ready) or a failure. */
DS_MUST_CHECK int ds__sftp_settle(struct ds__sftp_recv *r, int channels);
/* Frees the slots' channels (graceful: SFTP shutdown) and buffers. */
void ds__sftp_slots_free(struct ds__sftp_recv *r, int graceful);

/* sftp_file.c: ADOPT, DELETE, stepped as HASH (every slot's reply sent). */
int ds__sftp_adopt(struct ds__sftp_recv *r, const ds_msg_t *m);
int ds__sftp_delete(struct ds__sftp_recv *r, const ds_msg_t *m);

/* sftp_hash.c: HASH, stepped (r->req). Returns 0 (the reply queued),
 * STEP_WAIT (handle the frame again when the socket is ready) or a code
 * that ends the session. */
int ds__sftp_hash_req(struct ds__sftp_recv *r, const ds_msg_t *m);
/* Abandons the request under way: its handles lost (ds__sftp_lose). */
void ds__sftp_req_drop(struct ds__sftp_recv *r);
/* Starts r->req of kind (a DS_MSG_*) on path (checked: DS_EPATH with
 * fs.err): q->abs the path's, the walk's first component next. */
DS_MUST_CHECK int ds__sftp_req_start(struct ds__sftp_recv *r, int kind, const char *path);
/* The lstat walk of q->abs from q->at on: every parent a directory (never
 * a symlink), the file itself regular. Returns 0, STEP_WAIT (call again),
 * -ENOENT (a parent or the file missing) or a refusal (fs.err). */
DS_MUST_CHECK int ds__sftp_req_walk(struct ds__sftp_fs *fs, struct sftp_req *q);
/* The SHA-256 and size of q->abs (open, reads, close) into q->sha and
 * q->size. Returns 0, STEP_WAIT (call again) or a failure (fs.err). */
DS_MUST_CHECK int ds__sftp_req_hash(struct ds__sftp_fs *fs, struct sftp_req *q);

/* sftp_lease.c */
/* LEASE (acquire, renew, release), stepped (r->lq). Returns 0 (the reply
 * queued), STEP_WAIT or a code that ends the session. */
DS_MUST_CHECK int ds__sftp_lease(struct ds__sftp_recv *r, const ds_msg_t *m);
/* Abandons a LEASE request under way: its handles lost (ds__sftp_lose). */
void ds__sftp_lq_drop(struct ds__sftp_recv *r);
/* 1 when the lease is held, unexpired and the file still names us (read
 * again at most once a second, stepped on the main SFTP channel), 0 when
 * not (r->lease_msg says why), STEP_WAIT (call again when the socket is
 * ready; the session must be non-blocking) or DS_ETRANSPORT. */
DS_MUST_CHECK int ds__sftp_lease_check(struct ds__sftp_recv *r);

/* sftp_manifest.c */
/* Notes that a checkpoint of the manifest is due (it changed, the lease
 * is ours and DS_APPLY_CHECKPOINT_S passed since the last write, as the
 * agent does: a dropped link or a kill loses at most that much of it); the
 * receiver runs it as a request, between frames (ds__sftp_manifest_step).
 * A failed checkpoint is logged and retried at the next one. */
void ds__sftp_manifest_checkpoint(struct ds__sftp_recv *r);
/* Writes the manifest when it changed and the lease is ours, stepped:
 * 0 written (or nothing to write), STEP_WAIT (call again when the socket
 * is ready; the session must be non-blocking) or a failure (fs.err). */
DS_MUST_CHECK int ds__sftp_manifest_step(struct ds__sftp_recv *r);
/* Loads .distsync/manifest into r->man (the console's caps), stepped
 * (r->lq's handle and decoder): none is an empty one; an unreadable one is
 * moved to manifest.corrupt and an empty one started, as the agent does.
 * Returns 0, STEP_WAIT or a failure. */
DS_MUST_CHECK int ds__sftp_manifest_load_step(struct ds__sftp_recv *r);
/* The mv loop's answer for the manifest's move: rc 0, -EIO and why, or
 * SFTP_MV_UNLINK (the loop could not start: replace by unlink + rename). */
#define SFTP_MV_UNLINK 1
void ds__sftp_manifest_moved(struct ds__sftp_recv *r, int rc, const char *why);
/* MANIFEST_GET, stepped (r->req). Returns 0 (the reply sent), STEP_WAIT or
 * a code that ends the session. */
int ds__sftp_manifest_get(struct ds__sftp_recv *r, const ds_msg_t *m);

#endif

/*
 * Sender session: the console side of the apply protocol (src/PROTOCOL.md)
 * over one transport. A step/poll state machine: it never blocks; the
 * driver (the sync command's poll(2) loop today, a libuv loop later) calls
 * ds_session_step() whenever ds_session_poll() says the transport's fds
 * are ready, or at once when the transport has no fds.
 *
 * Flow: ds_session_start() queues HELLO, LEASE acquire (write sessions
 * only), MANIFEST_GET and LIST (those two after HELLO_OK when the console
 * holds a cached copy, see opts.known_manifest); once the phase is DS_SESSION_READY the
 * target's manifest and listing are available and the driver may queue
 * HASH requests, file operations (pipelined: many files in flight, bounded
 * by ds_session_room()), DELETEs and MANIFEST_COMMIT, then
 * ds_session_close() (LEASE release, BYE). Outcomes arrive, in request
 * order, through ds_session_next_result(). The lease is renewed by
 * ds_session_step() while the session lasts.
 *
 * Slow links: control frames (LEASE renewals, a cancel's FILE_ABORTs) are
 * written at the next frame boundary not yet begun on the wire, ahead of
 * the queued data, and ds_session_set_rate() sizes the data frames (about
 * 0.5 s of the link's rate) and the queued output (about 2 s), so a
 * renewal waits at most one small frame whatever the rate.
 */
#ifndef DISTSYNC_SESSION_H
#define DISTSYNC_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/digest.h"
#include "distsync/manifest.h"
#include "distsync/transport.h"
#include "distsync/error.h"

typedef struct ds_session ds_session_t;

/* Compressed data frames shared by sessions (see ds_session_zcache_new). */
typedef struct ds_session_zcache ds_session_zcache_t;
/* A zstd context and output buffer, used by one thread at a time. */
typedef struct ds_session_zctx ds_session_zctx_t;

typedef enum ds_session_phase {
    DS_SESSION_CONNECTING = 0, /* HELLO .. LIST in flight */
    DS_SESSION_READY = 1,      /* target state known; operations may be queued */
    DS_SESSION_CLOSING = 2,    /* BYE sent */
    DS_SESSION_DONE = 3,       /* BYE acknowledged */
    DS_SESSION_FAILED = 4,     /* see ds_session_error() */
} ds_session_phase_t;

typedef struct ds_session_opts {
    const char *console_id; /* lease holder id (required) */
    const char *host;       /* console host name */
    uint32_t pid;           /* console pid */
    int write;              /* take the lease (sync); 0: read-only (plan, status) */
    uint32_t lease_ttl_s;   /* 0: 300 s; renewed every third of it */
    unsigned window_files;  /* files in flight (committed, unanswered); 0: 64 */
    size_t out_high;        /* queued output bytes before room() says no; 0: 16 MiB
                               (the most ds_session_set_rate() allows) */
    int zstd_level;         /* 0: 3; < 0: never compress */
    int remote_basis;       /* the receiver's basis reads cross the WAN
                               (DS_TRANSPORT_REMOTE_BASIS): see ds_session_remote_basis;
                               room() then allows 4 FILE_ONEs in flight per
                               connection of remote_conns (0: 1) */
    unsigned remote_conns;
    /* Compressed-frame cache, NULL: none. Borrowed; may be shared by
     * sessions that run one at a time (a fan-out compresses each frame once). */
    ds_session_zcache_t *zcache;
    /* Target cache (protocol version 4): the manifest bytes and the listing
     * entries (LIST_DATA entry encodings, concatenated) the console received
     * from this target last time; NULL: none. Borrowed until
     * ds_session_free(). With either, MANIFEST_GET and LIST wait for HELLO_OK
     * (one round trip) and, when the receiver speaks version 4, carry the
     * SHA-256 of these bytes: a target whose bytes hash the same answers
     * MANIFEST_SAME / LIST_SAME and the session decodes them from here, as
     * if received. */
    const uint8_t *known_manifest, *known_list;
    size_t known_manifest_len, known_list_len;
    /* 1: the receiver is expected to speak version 4 or later (it did in
     * its last session) and a known copy above is held: HELLO offers
     * versions 4..max only, and MANIFEST_GET and LIST, with their digests,
     * go with HELLO and LEASE unanswered (one round trip less). A receiver
     * older than version 4 refuses that HELLO (ERR FATAL DS_EVERSION) and
     * acts on nothing after it (PROTOCOL.md, "Pipelining"): the caller
     * then asks again without (ds_session_refused). 0: MANIFEST_GET and
     * LIST wait for HELLO_OK. Ignored without a known copy. */
    int pipeline;
    /* Called with every slice of manifest bytes (what 0) or listing entries
     * (what 1) received, decompressed, and once more with end 1 (p NULL)
     * when that stream decoded whole; not for bytes answered *_SAME. NULL:
     * none. fetched_free(fetched_arg), when set, is called by
     * ds_session_free(), or by ds_session_new() when it fails: the session
     * owns fetched_arg from ds_session_new() on. */
    void (*fetched)(void *arg, int what, const uint8_t *p, size_t n, int end);
    void (*fetched_free)(void *arg);
    void *fetched_arg;
} ds_session_opts_t;

/* What a target may make the console hold (a target is not trusted; past
 * a cap the session fails, naming the stream). The manifest cap is on its
 * encoded size (50 bytes plus the path per entry: 1,000,000 files at paths
 * averaging 200 bytes fit in 250 MB); the listing cap is on its memory (one
 * ds_session_entry_t plus the path and a NUL per entry: 1,000,000 entries
 * at paths averaging 200 bytes fit). A signature is capped by the size of
 * the file it describes (ds_session_sig_max). */
#define DS_SESSION_MANIFEST_MAX (256ull << 20)
#define DS_SESSION_LIST_MAX     (256ull << 20)
/* Entries in a manifest, and in a listing: twice DESIGN's million files
 * (the listing's directories included), bounding per-entry overhead. */
#define DS_SESSION_MAX_ENTRIES (2ull << 20)

/* One target entry from LIST. */
typedef struct ds_session_entry {
    char *path;   /* relative to the target root, owned by the session (NUL-free) */
    uint8_t type; /* DS_PROTO_T_* */
    uint64_t size;
    int64_t mtime_ns;
    uint32_t mode;
} ds_session_entry_t;

typedef enum ds_session_res_kind {
    DS_SRES_FILE = 1,     /* FILE_COMMIT/FILE_ABORT/ADOPT outcome */
    DS_SRES_DELETE = 2,   /* DELETE outcome (value: 1 removed, 0 was absent) */
    DS_SRES_HASH = 3,     /* HASH outcome */
    DS_SRES_MANIFEST = 4, /* MANIFEST_COMMIT outcome */
    DS_SRES_SIG = 5,      /* SIG outcome: the signature in data/len */
} ds_session_res_kind_t;

/* An operation's outcome. Strings are owned by the session and valid until
 * the next ds_session_next_result() or ds_session_free(). */
typedef struct ds_session_result {
    int kind;     /* ds_session_res_kind_t */
    uint64_t tag; /* the caller's tag of the request */
    int rc;       /* 0, or the receiver's code (DS_E* / -errno) */
    const char *path;
    const char *message; /* "" on success */
    uint64_t size, value;
    int64_t mtime_ns;
    uint8_t sha256[DS_SHA256_LEN];
    const uint8_t *data; /* DS_SRES_SIG: librsync signature (owned by the
                            session, valid like the strings) */
    size_t len;
} ds_session_result_t;

typedef struct ds_session_stats {
    uint64_t bytes_out, bytes_in;       /* bytes on the wire, both directions */
    uint64_t literal_raw, literal_wire; /* LITERAL payload before / after zstd */
    uint64_t delta_raw, delta_wire;     /* DELTA payload before / after zstd */
    uint64_t copy_bytes;                /* bytes COPY asked the target to reuse */
} ds_session_stats_t;

/*
 * Creates a session over t (borrowed: it must outlive the session; the
 * session never closes it). opts and its strings are copied. Returns 0 or
 * DS_ENOMEM / DS_EUSAGE (no console id).
 */
DS_MUST_CHECK int ds_session_new(ds_transport_t *t, const ds_session_opts_t *opts,
                                 ds_session_t **out);

/* Frees the session. NULL is a no-op. */
void ds_session_free(ds_session_t *s);

/* Queues HELLO, LEASE acquire (write sessions), MANIFEST_GET and LIST "".
 * Returns 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds_session_start(ds_session_t *s);

/*
 * The bytes ds_session_start queues first for a session made with opts
 * (its strings and known copies as given; fetched callbacks not used):
 * with opts->pipeline, HELLO, LEASE, MANIFEST_GET and LIST, for a
 * transport that writes them ahead of the session (ds_transport_cfg_t
 * prelude: auto's probe of the agent). A session later made with the same
 * opts writes exactly these bytes first. Returns 0 with *out (malloc'd,
 * *len bytes; free()) or DS_ENOMEM / DS_EUSAGE.
 */
DS_MUST_CHECK int ds_session_prelude(const ds_session_opts_t *opts, uint8_t **out, size_t *len);

/* 1 when the session failed because the receiver refused a pipelined
 * HELLO (opts.pipeline; ERR FATAL DS_EVERSION before any HELLO_OK): it
 * acted on nothing, and a session without pipeline may still agree a
 * version with it. 0 otherwise. */
int ds_session_refused(const ds_session_t *s);

/*
 * Moves bytes: writes queued output while the transport takes it, reads
 * and handles every reply available, renews the lease when due (now: unix
 * seconds). Never blocks. Returns 0, or a negative code once the session
 * failed (message in ds_session_error(); phase DS_SESSION_FAILED).
 */
DS_MUST_CHECK int ds_session_step(ds_session_t *s, int64_t now);

/*
 * What the driver should wait for, as the transport says
 * (ds_transport_waits(), given whether output is queued): *rfd (-1: not
 * now; else it wants POLLIN), *wfd and *wevents (POLLOUT or 0 for wfd).
 * Returns 1 when the transport has no fds and step should simply be called
 * again, 0 when the driver should poll.
 */
DS_MUST_CHECK int ds_session_poll(const ds_session_t *s, int *rfd, int *wfd, short *wevents);

ds_session_phase_t ds_session_phase(const ds_session_t *s);

/* Protocol version agreed with the receiver (READY and later; 0 before). */
unsigned ds_session_version(const ds_session_t *s);

/* Whether the receiver's basis reads cross the WAN (opts.remote_basis):
 * its deltas should read the basis only through COPY records. */
int ds_session_remote_basis(const ds_session_t *s);

/* Error text of a failed session ("" otherwise). */
const char *ds_session_error(const ds_session_t *s);

/* 1 when the session failed because another console holds the lease. */
DS_MUST_CHECK int ds_session_busy(const ds_session_t *s);

/* The target's manifest (READY and later; owned by the session). */
const ds_manifest_t *ds_session_manifest(const ds_session_t *s);

/* The target's listing (READY and later; owned by the session). */
void ds_session_listing(const ds_session_t *s, const ds_session_entry_t **e, size_t *n);

/* 1 when another file operation may start: the window has room and the
 * queued output is below the high-water mark (opts.out_high, or about 2 s
 * of the rate given to ds_session_set_rate). */
DS_MUST_CHECK int ds_session_room(const ds_session_t *s);

/*
 * Sizes the session for a link of bytes_per_s (the server's effective cap,
 * or a measured rate): the driver calls it whenever that changes; 0 means
 * unknown or uncapped (the defaults: 4 MiB frames, opts.out_high queued).
 * Otherwise the queued-output high-water mark becomes about 2 s of the rate
 * (64 KiB .. opts.out_high) and data frames about 0.5 s of it
 * (4 KiB .. 4 MiB), so a control frame never waits behind more than one
 * short frame. Frames already queued keep their size. A paused cap is not
 * a rate: keep the last one set (see ds_session_ctl_pending).
 * Cost: each frame is compressed on its own, so small frames compress
 * worse: zstd level 3 on libcrypto.so.3 (4.7 MB) sends 0.464 of the raw
 * bytes at 4 KiB frames, 0.427 at 64 KiB, 0.415 at 4 MiB (+12% and +3%
 * over 4 MiB frames); content zstd cannot shrink (most patches, archives)
 * is sent raw at any frame size. Only slow links get small frames (4 KiB
 * at 64 kbit/s, about 61 KiB at 1 Mbit/s, 4 MiB from 64 Mbit/s).
 * Returns 0.
 */
int ds_session_set_rate(ds_session_t *s, uint64_t bytes_per_s);

/* Data bytes per LITERAL/DELTA frame at the current rate: how much a sender
 * should read and hand to ds_session_file_data() per call (so that room()
 * is checked between frames). */
size_t ds_session_data_block(const ds_session_t *s);

/*
 * Bytes of the unsent output to write before every queued control frame is
 * on the wire: the control frames at its head, plus the rest of a frame
 * already begun ahead of them (at most one data block); 0 when none waits.
 * A driver pacing the link lets these bytes through even while its cap is
 * paused, and keeps calling ds_session_step() meanwhile (it queues the
 * renewals), so a paused window never costs the lease.
 */
size_t ds_session_ctl_pending(const ds_session_t *s);

/* Bytes queued and not yet written to the transport (progress reports
 * leave them out: they have not left). */
size_t ds_session_unsent(const ds_session_t *s);

/* 1 when no request waits for its reply and no output is queued. */
DS_MUST_CHECK int ds_session_idle(const ds_session_t *s);

/* What the session waits on, for messages: the type name of the oldest
 * unanswered request ("MANIFEST_GET"), "sending" when only output is
 * queued, "idle" otherwise. Static string. */
const char *ds_session_waiting_for(const ds_session_t *s);

/* Queues HASH path. Returns 0 or DS_ENOMEM / DS_EUSAGE (wrong phase). */
DS_MUST_CHECK int ds_session_hash(ds_session_t *s, const char *path, uint64_t tag);

/* Queues SIG path: the librsync signature of a target file with blocks of
 * block_len bytes and strong_len-byte strong sums (rsync fallback for
 * content the console does not know). size is the file's size as listed:
 * a signature longer than ds_session_sig_max() of it fails the session
 * (a target cannot make the console buffer more). Returns 0 or < 0. */
DS_MUST_CHECK int ds_session_sig(ds_session_t *s, const char *path, uint64_t size,
                                 uint32_t block_len, uint8_t strong_len, uint64_t tag);

/* Length of the librsync signature of a size-byte file: a 12-byte header
 * and, per block, a 4-byte weak sum and a strong_len-byte strong sum. */
uint64_t ds_session_sig_max(uint64_t size, uint32_t block_len, uint8_t strong_len);

/* Starts a file: FILE_BEGIN with a new file id in *fid. mtime_ns may be
 * DS_PROTO_NO_MTIME. Returns 0, DS_ENOMEM or DS_EUSAGE (wrong phase). */
DS_MUST_CHECK int ds_session_file_begin(ds_session_t *s, const char *path, uint64_t size,
                                        uint32_t mode, int64_t mtime_ns, uint64_t tag,
                                        uint32_t *fid);

/* Queues n bytes of LITERAL data (basis NULL) or of a DELTA stream against
 * basis, in frames of at most ds_session_data_block() bytes, zstd-compressed
 * per frame when that makes it smaller. Returns 0 or a negative code. */
DS_MUST_CHECK int ds_session_file_data(ds_session_t *s, uint32_t fid, const char *basis,
                                       const void *p, size_t n);

/*
 * The same, split so that a worker thread compresses: the zstd level a
 * data frame of n bytes of file fid should be compressed at, or -1 when
 * it goes uncompressed (compression off, under 512 bytes, or the file has
 * proved incompressible). Loop thread.
 */
DS_MUST_CHECK int ds_session_frame_level(const ds_session_t *s, uint32_t fid, size_t n);

/*
 * Queues one LITERAL (basis NULL) or DELTA frame of file fid, raw[0, n)
 * (n at most ds_session_data_block()), compressed elsewhere: z[0, zlen)
 * is its zstd frame, or zlen 0 to send it raw. tried: it was compressed
 * (at ds_session_frame_level's level) and zlen 0 means it did not pay,
 * which counts toward the file's incompressible verdict. Returns 0 or < 0.
 */
DS_MUST_CHECK int ds_session_file_frame(ds_session_t *s, uint32_t fid, const char *basis,
                                        const void *raw, size_t n, const void *z, size_t zlen,
                                        int tried);

/* A whole file in one frame (FILE_ONE, protocol version 6). */
typedef struct ds_session_one {
    const char *path;
    uint64_t size;
    uint32_t mode;
    int64_t mtime_ns;   /* DS_PROTO_NO_MTIME: leave */
    const char *basis;  /* NULL: raw is the file; else a delta stream against this target file */
    const uint8_t *raw; /* n bytes (at most ds_session_data_block()) */
    size_t n;
    const uint8_t *z; /* their zstd frame, zlen 0: sent raw */
    size_t zlen;
    uint8_t sha256[DS_SHA256_LEN]; /* of the file */
} ds_session_one_t;

/*
 * Queues FILE_ONE: FILE_BEGIN, one LITERAL or DELTA frame (the whole data),
 * DELTA_END and FILE_COMMIT in one frame, for a peer of protocol version 6
 * (ds_session_version); about 130 bytes and a path less than the four
 * frames. Yields one DS_SRES_FILE result (tag). Strings and buffers are
 * copied. Returns 0, DS_EUSAGE (wrong phase, an older peer, n over one
 * frame) or DS_ENOMEM.
 */
DS_MUST_CHECK int ds_session_file_one(ds_session_t *s, const ds_session_one_t *o, uint64_t tag);

/* COPY len bytes at off of the target file basis. Returns 0 or < 0. */
DS_MUST_CHECK int ds_session_file_copy(ds_session_t *s, uint32_t fid, const char *basis,
                                       uint64_t off, uint64_t len);

/* DELTA_END, FILE_COMMIT (expected size and SHA-256), FILE_ABORT. The
 * commit or abort yields one DS_SRES_FILE result. Return 0 or < 0. */
DS_MUST_CHECK int ds_session_file_delta_end(ds_session_t *s, uint32_t fid);
DS_MUST_CHECK int ds_session_file_commit(ds_session_t *s, uint32_t fid, uint64_t size,
                                         const uint8_t sha256[DS_SHA256_LEN]);
DS_MUST_CHECK int ds_session_file_abort(ds_session_t *s, uint32_t fid);

/* 1 when the receiver already failed file fid (its data is discarded). */
DS_MUST_CHECK int ds_session_file_failed(const ds_session_t *s, uint32_t fid);

/* Queues ADOPT (protocol version 2, see ds_session_version): the target
 * file path already holds size bytes with this SHA-256; the receiver
 * re-hashes it and records it in its manifest without rewriting it, setting
 * its mtime unless mtime_ns is DS_PROTO_NO_MTIME. Yields one DS_SRES_FILE
 * result. Returns 0, DS_EUSAGE (wrong phase, or the peer speaks version 1:
 * send a COPY of the file onto itself instead) or DS_ENOMEM. */
DS_MUST_CHECK int ds_session_adopt(ds_session_t *s, const char *path, uint64_t size,
                                   int64_t mtime_ns, const uint8_t sha256[DS_SHA256_LEN],
                                   uint64_t tag);

/* Queues DELETE path. Returns 0 or < 0. */
DS_MUST_CHECK int ds_session_delete(ds_session_t *s, const char *path, uint64_t tag);

/* Queues MANIFEST_COMMIT (one DS_SRES_MANIFEST result). Returns 0 or < 0. */
DS_MUST_CHECK int ds_session_commit_manifest(ds_session_t *s);

/* Queues MANIFEST_GET to refresh ds_session_manifest() (READY only); the
 * refreshed manifest replaces the old one when its reply arrives (the
 * session is idle again). Returns 0 or < 0. */
DS_MUST_CHECK int ds_session_refresh_manifest(ds_session_t *s);

/*
 * Cancels what is queued and not yet on the wire (READY only): the output
 * is cut at the first frame not begun (control frames waiting are kept),
 * the requests cut off are forgotten
 * (they yield no result), and every file begun on the wire without its
 * FILE_COMMIT gets FILE_ABORT, a control frame (one DS_SRES_FILE result,
 * DS_EABORTED).
 * Files committed before the cut complete. Later file operations on a
 * forgotten fid return DS_EUSAGE. Returns 0 or < 0.
 */
DS_MUST_CHECK int ds_session_cancel_sends(ds_session_t *s);

/* Queues LEASE release (write sessions) and BYE. Returns 0 or < 0. */
DS_MUST_CHECK int ds_session_close(ds_session_t *s);

/* Takes the next outcome: returns 1 with *r filled, 0 when none is ready. */
DS_MUST_CHECK int ds_session_next_result(ds_session_t *s, ds_session_result_t *r);

/* Counters so far. */
const ds_session_stats_t *ds_session_stats(const ds_session_t *s);

/*
 * Compressed-frame cache: a fan-out sends the same LITERAL/DELTA frames to
 * every server; sessions given the same cache (opts.zcache) compress each
 * distinct frame once. Keyed by the frame's bytes (hash, then compared in
 * full) and the zstd level, so a hit returns exactly what compressing again
 * would; "does not pay" answers are kept too. Frames are admitted until
 * cap_bytes (raw plus compressed; 0: 64 MiB) are held, then no more.
 * Thread-safe through ds_session_zstd (a frame two threads ask for at
 * once is compressed once: the second waits for the first's output).
 * Returns 0 or DS_ENOMEM.
 */
DS_MUST_CHECK int ds_session_zcache_new(size_t cap_bytes, ds_session_zcache_t **out);

/* Frees the cache. NULL is a no-op. */
void ds_session_zcache_free(ds_session_zcache_t *c);

/* A zstd context for ds_session_zstd (0 or DS_ENOMEM); freeing NULL is a
 * no-op. */
DS_MUST_CHECK int ds_session_zctx_new(ds_session_zctx_t **out);
void ds_session_zctx_free(ds_session_zctx_t *x);

/*
 * The zstd frame of p[0, n) at level, from cache c (NULL: none) or
 * compressed now with x: returns its size with *z (the cache's, valid as
 * long as c, or x's buffer, valid until x's next use), or 0 with *z NULL
 * when compression does not pay (output >= 97% of n, or an error). Any
 * thread; x is used by one thread at a time.
 */
size_t ds_session_zstd(ds_session_zcache_t *c, ds_session_zctx_t *x, int level, const void *p,
                       size_t n, const uint8_t **z);

/*
 * ds_session_zstd with the cache's own context (one thread at a time):
 * *z (the cache's, valid until its next call) and *zlen, or
 * *z = NULL and *zlen = 0 when compression does not pay (output >= 97% of
 * n, or an error). Returns 1 on a cache hit, 0 on a miss.
 */
int ds_session_zcache_compress(ds_session_zcache_t *c, int level, const void *p, size_t n,
                               const uint8_t **z, size_t *zlen);

/* Counters: lookups served from the cache, and frames compressed. */
void ds_session_zcache_stats(const ds_session_zcache_t *c, uint64_t *hits, uint64_t *misses);

#endif

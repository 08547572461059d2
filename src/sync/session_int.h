/* Sender session internals shared by session.c (queueing) and
 * session_recv.c (reply dispatch, byte pump). */
#ifndef DS_SESSION_INT_H
#define DS_SESSION_INT_H

#include <zstd.h>

#include "distsync/proto.h"
#include "distsync/session.h"
#include "distsync/error.h"

#define READ_CHUNK   (1u << 20)
#define DATA_FRAME   (4u << 20)  /* data bytes per LITERAL/DELTA frame, at most */
#define FRAME_MIN    (4u << 10)  /* ... and at least, once a rate is set */
#define HIGH_MIN     (64u << 10) /* queued output allowed at the lowest rates */
#define COMPACT_AT   (4u << 20)
#define ERRLEN       1024
#define COMP_MIN_WIN 97         /* keep zstd output only below 97% of the raw size */
#define LIST_BLOCK   (1u << 20) /* bytes per block of listing paths */
#define NOCOMP_AFTER (1u << 20) /* stop trying zstd on a file once this much failed */

struct pend {
    uint32_t id;
    uint8_t type; /* request type */
    uint64_t tag;
    uint32_t fid;
    char *path;
    uint64_t max_len; /* SIG: the longest signature the listed size allows */
    /* FILE_ONE: what a FILE_DONE confirms */
    uint64_t size;
    uint8_t sha256[DS_SHA256_LEN];
    uint64_t at; /* offset of its frame in the output stream */
};

/* Listing paths, packed in blocks (no allocation per entry). */
struct lblock {
    struct lblock *next;
    size_t used, cap;
    char data[];
};

struct sfile {
    uint32_t fid;
    uint64_t tag;
    int failed, committed, nocomp, paid;
    uint64_t unpaid; /* raw bytes zstd could not shrink, while none paid */
    char *path;
    uint64_t begin_at; /* offset of its FILE_BEGIN in the output stream */
};

struct result {
    ds_session_result_t r;
    char *path, *msg;
    uint8_t *data; /* SIG: the signature */
};

struct ds_session {
    ds_transport_t *t;
    ds_session_opts_t o;
    char *console_id, *host;
    int phase, busy, rc;
    char err[ERRLEN];
    uint32_t next_id, next_fid;
    ds_proto_buf_t out, in;
    size_t out_off;
    /* sized from the link's rate (ds_session_set_rate): data bytes per
     * frame, and queued output bytes before room() says no */
    size_t frame, high;
    /* stream offset where the control frames queued ahead of the data end
     * (session_cancel.c); at or below bytes_out when none waits */
    uint64_t ctl_end;
    /* stream offsets where the queued frames not yet begun on the wire
     * start (a cancel cuts the output at one: session_cancel.c) */
    uint64_t *fstart;
    size_t nfs, fs_head, fs_cap;
    uint8_t *rbuf;
    struct pend *pend;
    size_t npend, pend_head, pend_cap;
    struct sfile *files;
    size_t nfiles, files_cap;
    size_t nones; /* FILE_ONEs sent and not yet answered */
    struct result *res;
    size_t nres, res_head, res_cap;
    char *cur_path, *cur_msg; /* strings of the result last handed out */
    uint8_t *cur_data;
    ds_proto_buf_t sig_blob; /* SIG_DATA received so far */
    /* target state */
    int hello_ok, lease_ok, manifest_ok, list_ok;
    unsigned version;               /* protocol version from HELLO_OK */
    ds_manifest_decoder_t *man_dec; /* MANIFEST_DATA decoded as it arrives */
    ds_manifest_t *man;
    /* version 4 (session_known.c): MANIFEST_GET and LIST wait for HELLO_OK
     * when the console holds earlier copies (digests below) */
    int fetch_deferred;
    /* opts.pipeline with a known copy: MANIFEST_GET and LIST went with
     * HELLO (offering versions 4..max) */
    int pipelined;
    uint8_t known_man_sha[DS_SHA256_LEN], known_list_sha[DS_SHA256_LEN];
    /* SHA-256 of the manifest held (s->man) when have_man_sha: a refresh
     * asks with it; man_hash hashes a manifest as it streams in */
    int have_man_sha;
    /* MANIFEST_COMMIT sent, not answered yet (1), and a refresh queued
     * behind it that predicted the manifest then (2: ds__session_predict
     * with no count) */
    int commit_pending;
    uint8_t man_sha[DS_SHA256_LEN];
    ds_sha256_t man_hash;
    /* session_predict.c: the manifest changes acknowledged since s->man
     * was received; man_pred: s->man encoded when man_sha is a prediction
     * not yet confirmed, for opts.fetched (NULL: none, or no fetched) */
    struct ds_session_mchange *mlog;
    size_t nmlog, mlog_cap;
    int mlog_broken;
    uint8_t *man_pred;
    size_t man_pred_len;
    ds_proto_unpacker_t unpack;
    ds_session_entry_t *list;
    size_t nlist, list_cap;
    struct lblock *lpaths;
    uint64_t list_bytes; /* listing memory counted against DS_SESSION_LIST_MAX */
    /* lease */
    int64_t lease_at;
    int renew_pending;
    ds_session_zctx_t *zx; /* ds_session_file_data's zstd (none: a worker compresses) */
    ds_session_stats_t st;
};

/* The lowest protocol version the session's HELLO offers. */
unsigned ds__session_min_version(const ds_session_t *s);
/* Fails the session once with a message; returns the session's code. */
DS_MUST_CHECK int ds__session_fail(ds_session_t *s, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Grows *p (elem-sized items, *cap of them) to hold need. 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds__session_grow(void **p, size_t *cap, size_t need, size_t elem);
/* Queues an outcome (strings copied). 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds__session_push_result(ds_session_t *s, const ds_session_result_t *r,
                                          const char *path, const char *msg);
/* The open file fid, or NULL. */
struct sfile *ds__session_find_file(const ds_session_t *s, uint32_t fid);
/* Forgets file f (its final reply arrived). */
void ds__session_drop_file(ds_session_t *s, struct sfile *f);
/* Offset in the output stream of the next byte queued. */
uint64_t ds__session_queue_end(const ds_session_t *s);
/* Encodes m with a new id; records it in the FIFO when want_reply.
 * 0 or DS_ENOMEM / DS_ETOOBIG. */
DS_MUST_CHECK int ds__session_send(ds_session_t *s, ds_msg_t *m, int want_reply, uint64_t tag,
                                   uint32_t fid, const char *path);
/* Queues control frame m (LEASE renew, FILE_ABORT of a cancel) ahead of
 * the data: after the control frames already waiting, at the first frame
 * boundary not yet begun on the wire; the FIFO stays in wire order.
 * 0 or DS_ENOMEM / DS_ETOOBIG. */
DS_MUST_CHECK int ds__session_send_ctl(ds_session_t *s, ds_msg_t *m, int want_reply, uint64_t tag,
                                       uint32_t fid, const char *path);
/* FILE_ABORT of file fid as a control frame (ds_session_cancel_sends). */
DS_MUST_CHECK int ds__session_abort_ctl(ds_session_t *s, uint32_t fid);
/* Copies n bytes of a listing path (NUL added) into the path blocks.
 * Returns the copy or NULL (out of memory). */
char *ds__session_list_path(ds_session_t *s, const char *p, size_t n);

/* session_recv.c */
/* Feeds n manifest bytes (last: the end). Returns 1 when the manifest is
 * complete (the request popped), 0 for more, or the session's failure. */
DS_MUST_CHECK int ds__session_feed_manifest(ds_session_t *s, const uint8_t *p, size_t n, int last);
/* Drops the FIFO head (its reply arrived). */
void ds__session_pop(ds_session_t *s);
/* Adds LIST_DATA entries to the listing. 0 or the session's failure. */
DS_MUST_CHECK int ds__session_add_entries(ds_session_t *s, const uint8_t *q, size_t len);

/* session_known.c: the target cache of protocol version 4 */
/* Hashes opts.known_*; defers the fetch when either is given. 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds__session_known_init(ds_session_t *s);
/* Queues MANIFEST_GET and LIST "", with the known digests when the agreed
 * version has them. 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds__session_queue_fetch(ds_session_t *s);
/* Queues MANIFEST_GET (tag: FIFO tag), carrying the digest of the manifest
 * held (a refresh) or known (the first) when the agreed version has it.
 * 0 or < 0. */
DS_MUST_CHECK int ds__session_manifest_get(ds_session_t *s, uint64_t tag);
/* Hashes n received manifest bytes (end: the manifest is complete). */
void ds__session_man_hash(ds_session_t *s, const uint8_t *p, size_t n, int end);
/* MANIFEST_SAME / LIST_SAME: takes the known bytes as received. 0 or the
 * session's failure. */
DS_MUST_CHECK int ds__session_on_same(ds_session_t *s, const ds_msg_t *m);
/* Replaces packed *m by its plain message (borrowing from s->unpack).
 * 0 or the session's failure. */
DS_MUST_CHECK int ds__session_unpack(ds_session_t *s, ds_msg_t *m);
/* Hands received bytes to opts.fetched (what 0 manifest, 1 listing). */
void ds__session_fetched(ds_session_t *s, int what, const uint8_t *p, size_t n, int end);

/* session_predict.c: the manifest a target holds after our commit */
/* Records that the target's manifest now has r (a FILE_OK's path, size,
 * mtime and SHA-256; a DS_SRES_DELETE: path removed). Out of memory turns
 * the prediction off for this commit. */
void ds__session_mlog_add(ds_session_t *s, const char *path, const ds_session_result_t *r);
/* Forgets the recorded changes (a manifest was received: it has them). */
void ds__session_mlog_clear(ds_session_t *s);
/* Forgets an unconfirmed prediction (man_pred). */
void ds__session_predict_drop(ds_session_t *s);
/* MANIFEST_COMMIT answered OK with entries (or, entries
 * DS__SESSION_COUNT_ANY, a refresh queued behind the commit before its
 * answer): applies the changes to s->man and, when the count agrees, holds
 * its digest (have_man_sha) for the refresh; the log is cleared either way.
 * The target answers MANIFEST_SAME only when its manifest hashes the same,
 * so a prediction made before the commit's answer is as safe. */
#define DS__SESSION_COUNT_ANY UINT64_MAX
void ds__session_predict(ds_session_t *s, uint64_t entries);
/* MANIFEST_SAME confirmed the held manifest: a predicted one goes to
 * opts.fetched (the target cache). */
void ds__session_predict_confirmed(ds_session_t *s);

#endif

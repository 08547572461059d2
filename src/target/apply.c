/*
 * Receiver session: input framing, the session state machine, HELLO, the
 * lease, the manifest and BYE. File building lives in apply_file.c, LIST,
 * HASH and DELETE in apply_walk.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zstd.h>

#include "apply_int.h"
#include "distsync/error.h"
#include "distsync/lease.h"
#include "distsync/log.h"
#include "distsync/pathsafe.h"
#include "distsync/version.h"

#define MANIFEST_CHUNK (1u << 20)

int64_t ds__apply_now(ds_apply_t *ap)
{
    return ap->opts.now ? ap->opts.now(ap->opts.now_ctx) : (int64_t)time(NULL);
}

void ds__apply_cstr(ds_pstr_t s, char *out)
{
    memcpy(out, s.p, s.n);
    out[s.n] = '\0';
}

int ds__apply_reply(ds_apply_t *ap, const ds_msg_t *m)
{
    return ds_proto_encode(&ap->out, m);
}

static int reply_err_flags(ds_apply_t *ap, uint32_t id, uint8_t flags, int code, const char *path,
                           const char *msg)
{
    ds_msg_t m = {.type = DS_MSG_ERR, .flags = flags, .id = id};

    m.u.err.code = code;
    m.u.err.path = ds_pstr(path);
    m.u.err.message = ds_pstr(msg);
    return ds__apply_reply(ap, &m);
}

int ds__apply_reply_err(ds_apply_t *ap, uint32_t id, int code, const char *path, const char *msg)
{
    return reply_err_flags(ap, id, 0, code, path, msg);
}

static int reply_ok(ds_apply_t *ap, uint32_t id, uint64_t value)
{
    ds_msg_t m = {.type = DS_MSG_OK, .id = id};

    m.u.ok.value = value;
    return ds__apply_reply(ap, &m);
}

int ds__apply_fatal(ds_apply_t *ap, uint32_t id, int code, const char *fmt, ...)
{
    char msg[APPLY_ERRMSG];
    va_list va;

    va_start(va, fmt);
    vsnprintf(msg, sizeof(msg), fmt, va);
    va_end(va);
    if (!ap->opts.peer_reports)
        ds_log(DS_LOG_ERROR, "apply %s: session ended: %s", ap->root, msg);
    (void)ds__apply_batch_flush(ap); /* the files sealed before it: published, answered first */
    reply_err_flags(ap, id, DS_PROTO_F_FATAL, code, "", msg);
    (void)ds_apply_finish(ap); /* code is the session's error; a manifest write failure is logged */
    ap->state = S_DEAD;
    ap->fatal_rc = code;
    return code;
}

int ds_apply_new(const char *root, const ds_apply_opts_t *opts, ds_apply_t **out, char *err,
                 size_t errlen)
{
    ds_apply_t *ap = calloc(1, sizeof(*ap));
    int rc = DS_ENOMEM;

    *out = NULL;
    if (ap == NULL)
        goto fail;
    ap->rootfd = ap->dsfd = ap->tmpfd = ap->lockfd = -1;
    if (opts)
        ap->opts = *opts;
    ap->fs = ap->opts.fs != NULL ? ap->opts.fs : &ds_fs_posix;
    ap->max_open = ap->opts.max_open_files ? ap->opts.max_open_files : DS_APPLY_MAX_OPEN;
    if (ap->max_open > APPLY_MAX_OPEN)
        ap->max_open = APPLY_MAX_OPEN;
    ap->root = strdup(root);
    ap->files = calloc(ap->max_open, sizeof(*ap->files));
    ap->iobuf = malloc(APPLY_IOBUF);
    if (ap->root == NULL || ap->files == NULL || ap->iobuf == NULL)
        goto fail;
    for (unsigned i = 0; i < ap->max_open; i++)
        ap->files[i].fd = ap->files[i].basis_fd = -1;
    for (unsigned i = 0; i < ap->max_open; i++)
        ap->files[i].fs = ap->fs;
    ap->session = (uint32_t)getpid() ^ (uint32_t)time(NULL) << 16;
    if ((rc = ds__apply_fan_new(ap)) < 0)
        goto fail;
    ap->rootfd = ds_fs_openat(ap->fs, AT_FDCWD, root, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (ap->rootfd < 0) {
        rc = -errno;
        goto fail;
    }
    *out = ap;
    return 0;
fail:
    snprintf(err, errlen, "target root %s: %s", root, ds_strerror(rc));
    ds_apply_free(ap);
    return rc;
}

size_t ds_apply_pending(const ds_apply_t *ap)
{
    return ap->in.len;
}

int ds_apply_done(const ds_apply_t *ap)
{
    return ap->state == S_DONE;
}

const ds_apply_stats_t *ds_apply_stats(const ds_apply_t *ap)
{
    return &ap->stats;
}

void ds_apply_output(ds_apply_t *ap, const uint8_t **p, size_t *len)
{
    *p = ap->out.p;
    *len = ap->out.len;
}

void ds_apply_output_consume(ds_apply_t *ap, size_t n)
{
    ds_proto_buf_consume(&ap->out, n);
}

static void stream_drop(ds_apply_t *ap)
{
    if (ap->stream != NULL)
        ap->stream->free(ap->stream);
    ap->stream = NULL;
}

void ds__apply_stream_start(ds_apply_t *ap, struct astream *st)
{
    stream_drop(ap);
    ap->stream = st;
}

int ds_apply_want_input(const ds_apply_t *ap)
{
    return ap->stream == NULL && ap->out.len < DS_APPLY_OUT_HIGH;
}

int ds__apply_write_manifest(ds_apply_t *ap)
{
    int rc;

    if (!ap->man_dirty || !ap->have_lease || ap->man == NULL || ap->helper)
        return 0;
    if (!ds__apply_lease_mine(ap))
        return DS_ELEASE;
    rc = ds_manifest_store_fs(ap->fs, ap->dsfd, ap->man);
    if (rc < 0) {
        ds_log(DS_LOG_ERROR, "%s/" DS_STATE_DIR "/" DS_MANIFEST_NAME ": cannot write: %s", ap->root,
               ds_strerror(rc));
        return rc;
    }
    ap->man_dirty = 0;
    ap->man_written_at = ds__apply_now(ap);
    return 0;
}

void ds__apply_checkpoint(ds_apply_t *ap)
{
    if (ap->man_dirty && ds__apply_now(ap) - ap->man_written_at >= DS_APPLY_CHECKPOINT_S)
        (void)ds__apply_write_manifest(ap); /* logged; the next checkpoint or finish tries again */
}

int ds_apply_finish(ds_apply_t *ap)
{
    int rc;

    if (ap == NULL)
        return 0;
    stream_drop(ap);
    if (ds__apply_fan_drain(ap) < 0) /* logged by the fatal error */
        ds_log(DS_LOG_WARN, "apply %s: files in flight on other connections lost", ap->root);
    if (ds__apply_batch_flush(ap) < 0) /* out of memory for the replies: still published */
        ds_log(DS_LOG_WARN, "apply %s: out of memory answering the last commits", ap->root);
    for (unsigned i = 0; i < ap->max_open; i++)
        if (ap->files[i].used)
            ds__apply_file_release(ap, &ap->files[i]);
    rc = ds__apply_write_manifest(ap);
    if (ap->lockfd >= 0)
        ds_fs_close(ap->fs, ap->lockfd);
    ap->lockfd = -1;
    ap->have_lease = 0;
    return rc;
}

void ds_apply_free(ds_apply_t *ap)
{
    if (ap == NULL)
        return;
    if (ap->files)
        (void)ds_apply_finish(ap); /* logged; a caller wanting the result calls finish first */
    ds__apply_batch_free(ap);
    ds__apply_fan_free(ap);
    for (int *fd = &ap->rootfd; fd <= &ap->lockfd; fd++)
        if (*fd >= 0)
            ds_fs_close(ap->fs, *fd);
    ds_manifest_free(ap->man);
    ds_manifest_free(ap->hashed);
    ds_proto_buf_free(&ap->in);
    ds_proto_buf_free(&ap->out);
    ZSTD_freeDCtx(ap->zctx);
    ZSTD_freeCCtx(ap->zcctx);
    free(ap->zbuf);
    free(ap->iobuf);
    free(ap->files);
    free(ap->root);
    free(ap);
}

/* ---- manifest ---- */

int ds__apply_load_manifest(ds_apply_t *ap, char *err, size_t errlen)
{
    int rc;

    if (ap->man)
        return 0;
    if (ap->dsfd < 0) {
        ap->dsfd = ds_fs_openat(ap->fs, ap->rootfd, DS_STATE_DIR,
                                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
        if (ap->dsfd < 0 && errno != ENOENT) {
            rc = -errno;
            snprintf(err, errlen, "%s/.distsync: %s", ap->root, ds_strerror(rc));
            return rc;
        }
    }
    if (ap->dsfd < 0)
        return ds_manifest_new(&ap->man);
    rc = ds_manifest_load_fs(ap->fs, ap->dsfd, &ap->man, err, errlen);
    if (rc == 1) { /* the tmp copy of an interrupted replace: publish it again */
        ap->man_dirty = 1;
        rc = 0;
    }
    return rc;
}

/* MANIFEST_GET's reply: the encoded manifest, a slice per frame. */
struct man_stream {
    struct astream h;
    uint8_t *buf;
    size_t len, off;
};

static int man_step(ds_apply_t *ap, struct astream *st)
{
    struct man_stream *ms = (struct man_stream *)st;
    ds_msg_t m = {.type = DS_MSG_MANIFEST_DATA, .id = st->id};
    size_t n = ms->len - ms->off > MANIFEST_CHUNK ? MANIFEST_CHUNK : ms->len - ms->off;
    int rc;

    m.flags = ms->off + n < ms->len ? DS_PROTO_F_MORE : 0;
    m.u.blob.data = ms->buf + ms->off;
    m.u.blob.len = (uint32_t)n;
    rc = ds__apply_reply_data(ap, &m);
    ms->off += n;
    return rc < 0 ? rc : ms->off == ms->len;
}

static void man_free(struct astream *st)
{
    free(((struct man_stream *)st)->buf);
    free(st);
}

static int on_manifest_get(ds_apply_t *ap, const ds_msg_t *req)
{
    char err[APPLY_ERRMSG] = "";
    struct man_stream *ms = calloc(1, sizeof(*ms));
    int rc = ms ? ds__apply_load_manifest(ap, err, sizeof(err)) : DS_ENOMEM;

    if (rc == 0)
        rc = ds_manifest_encode(ap->man, &ms->buf, &ms->len);
    if (rc == 0 && req->u.path.has_known) {
        uint8_t sha[DS_SHA256_LEN];

        rc = ds_sha256(ms->buf, ms->len, sha);
        if (rc == 0 && (rc = ds__apply_same(ap, req, sha)) != 0) {
            man_free(&ms->h);
            return rc < 0 ? rc : 0;
        }
    }
    if (rc < 0) {
        if (ms)
            man_free(&ms->h);
        return ds__apply_reply_err(ap, req->id, rc, ".distsync/manifest",
                                   err[0] ? err : ds_strerror(rc));
    }
    ms->h.step = man_step;
    ms->h.free = man_free;
    ms->h.id = req->id;
    ds__apply_stream_start(ap, &ms->h);
    return 0;
}

static int on_manifest_commit(ds_apply_t *ap, const ds_msg_t *req)
{
    char msg[APPLY_ERRMSG];
    int rc;

    if (!ds__apply_lease_valid(ap)) {
        snprintf(msg, sizeof(msg), "MANIFEST_COMMIT without a valid lease: %s",
                 ds__apply_lease_why(ap));
        return ds__apply_reply_err(ap, req->id, DS_ELEASE, ".distsync/manifest", msg);
    }
    ap->man_dirty = 1; /* always rewrite: the console asked for a durable state */
    rc = ds__apply_write_manifest(ap);
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "%s/" DS_STATE_DIR "/" DS_MANIFEST_NAME ": cannot write: %s",
                 ap->root, rc == DS_ELEASE ? ds__apply_lease_why(ap) : ds_strerror(rc));
        return ds__apply_reply_err(ap, req->id, rc, ".distsync/manifest", msg);
    }
    return reply_ok(ap, req->id, ds_manifest_count(ap->man));
}

/* ---- dispatch ---- */

static int on_hello(ds_apply_t *ap, const ds_msg_t *req)
{
    ds_msg_t m = {.type = DS_MSG_HELLO_OK, .id = req->id};
    unsigned lo = req->u.hello.min_version, hi = req->u.hello.max_version;

    if (lo < DS_PROTO_VERSION_MIN)
        lo = DS_PROTO_VERSION_MIN;
    if (hi > DS_PROTO_VERSION_MAX)
        hi = DS_PROTO_VERSION_MAX;
    if (ap->opts.max_version && hi > ap->opts.max_version)
        hi = ap->opts.max_version;
    if (lo > hi)
        return ds__apply_fatal(ap, req->id, DS_EVERSION,
                               "console speaks protocol versions %u..%u, this agent %u..%u",
                               req->u.hello.min_version, req->u.hello.max_version,
                               DS_PROTO_VERSION_MIN, DS_PROTO_VERSION_MAX);
    m.u.hello_ok.version = (uint16_t)hi;
    ap->version = hi;
    m.u.hello_ok.software = ds_pstr("distsync " DS_VERSION_STRING);
    m.u.hello_ok.max_payload = DS_PROTO_MAX_PAYLOAD;
    m.u.hello_ok.max_open_files = ap->max_open;
    ap->state = S_READY;
    return ds__apply_reply(ap, &m);
}

static int on_bye(ds_apply_t *ap, const ds_msg_t *req)
{
    char msg[APPLY_ERRMSG];
    int rc = ds_apply_finish(ap);

    ap->state = S_DONE;
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "%s/" DS_STATE_DIR "/" DS_MANIFEST_NAME ": cannot write: %s",
                 ap->root, rc == DS_ELEASE ? ds__apply_lease_why(ap) : ds_strerror(rc));
        return ds__apply_reply_err(ap, req->id, rc, ".distsync/manifest", msg);
    }
    return reply_ok(ap, req->id, 0);
}

static int dispatch(ds_apply_t *ap, const ds_msg_t *m)
{
    switch (m->type) {
    case DS_MSG_LEASE:
        return ds__apply_lease(ap, m);
    case DS_MSG_MANIFEST_GET:
        return ds__apply_check_known(ap, m) < 0 ? ap->fatal_rc : on_manifest_get(ap, m);
    case DS_MSG_LIST:
        return ds__apply_check_known(ap, m) < 0 ? ap->fatal_rc : ds__apply_list(ap, m);
    case DS_MSG_HASH:
        return ds__apply_hash(ap, m);
    case DS_MSG_SIG:
        return ds__apply_sig(ap, m);
    case DS_MSG_FILE_BEGIN:
        return ds__apply_file_begin(ap, m);
    case DS_MSG_COPY:
        return ds__apply_file_copy(ap, m);
    case DS_MSG_LITERAL:
    case DS_MSG_DELTA:
        return ds__apply_file_data(ap, m);
    case DS_MSG_DELTA_END:
        return ds__apply_file_delta_end(ap, m);
    case DS_MSG_FILE_COMMIT:
        return ds__apply_file_commit(ap, m);
    case DS_MSG_FILE_ABORT:
        return ds__apply_file_abort(ap, m);
    case DS_MSG_ADOPT:
        if (ap->version < DS_PROTO_VERSION_ADOPT)
            return ds__apply_fatal(ap, m->id, DS_EPROTO,
                                   "ADOPT in a protocol version %u session (needs %u)", ap->version,
                                   DS_PROTO_VERSION_ADOPT);
        return ds__apply_adopt(ap, m);
    case DS_MSG_FILE_ONE:
        if (ap->version < DS_PROTO_VERSION_ONE)
            return ds__apply_fatal(ap, m->id, DS_EPROTO,
                                   "FILE_ONE in a protocol version %u session (needs %u)",
                                   ap->version, DS_PROTO_VERSION_ONE);
        return ds__apply_file_one(ap, m);
    case DS_MSG_DELETE:
        return ds__apply_delete(ap, m);
    case DS_MSG_MANIFEST_COMMIT:
        return on_manifest_commit(ap, m);
    case DS_MSG_BYE:
        return on_bye(ap, m);
    default:
        return DS_EPROTO;
    }
}

static int handle_frame(ds_apply_t *ap, const uint8_t *p, size_t len)
{
    ds_msg_t m;
    uint32_t id = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | (uint32_t)p[10] << 8 | p[11];
    int rc = ds_proto_decode(p, len, &m);

    if (rc < 0)
        return ds__apply_fatal(ap, id, rc, "malformed %s frame (id %u, %zu bytes)",
                               ds_proto_type_name(p[4]), id, len);
    if (m.type & 0x80)
        return ds__apply_fatal(ap, id, DS_EPROTO, "reply frame %s sent to the agent",
                               ds_proto_type_name(m.type));
    if (ap->state == S_HELLO && m.type != DS_MSG_HELLO)
        return ds__apply_fatal(ap, id, DS_EPROTO, "expected HELLO, got %s",
                               ds_proto_type_name(m.type));
    if (ap->state == S_HELLO)
        return on_hello(ap, &m);
    if (m.type == DS_MSG_HELLO)
        return ds__apply_fatal(ap, id, DS_EPROTO, "HELLO sent twice");
    if (ds__apply_batch_blocks(ap, &m) && (rc = ds__apply_batch_flush(ap)) < 0)
        return ds__apply_fatal(ap, id, rc, "publishing: %s", ds_strerror(rc));
    if (ds__apply_fan_blocks(ap, &m) && (rc = ds__apply_fan_drain(ap)) < 0)
        return ap->state == S_DEAD ? rc : ds__apply_fatal(ap, id, rc, "%s", ds_strerror(rc));
    rc = ds__apply_fan_one(ap, &m, p, len);
    if (rc == 1)
        rc = dispatch(ap, &m);
    if (rc < 0 && ap->state != S_DEAD)
        return ds__apply_fatal(ap, id, rc, "%s (id %u): %s", ds_proto_type_name(m.type), id,
                               ds_strerror(rc));
    return rc;
}

/* Bytes still missing from the partial frame in ap->in; <0 on a bad header. */
static long missing(ds_apply_t *ap)
{
    const uint8_t *h = ap->in.p;
    long fl;

    if (ap->in.len < DS_PROTO_HDR_LEN)
        return (long)(DS_PROTO_HDR_LEN - ap->in.len);
    fl = ds_proto_frame_len(h, ap->in.len);
    if (fl < 0)
        return fl;
    return (long)(DS_PROTO_HDR_LEN +
                  ((uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3])) -
           (long)ap->in.len;
}

/* Produces streamed reply slices while the output is below the bound. */
static int run_stream(ds_apply_t *ap)
{
    while (ap->stream != NULL && ap->out.len < DS_APPLY_OUT_HIGH) {
        struct astream *st = ap->stream;
        uint32_t id = st->id;
        int rc = st->step(ap, st);

        if (rc == 0)
            continue;
        stream_drop(ap);
        if (rc < 0)
            return ds__apply_fatal(ap, id, rc, "streaming a reply (id %u): %s", id,
                                   ds_strerror(rc));
    }
    return 0;
}

/* Takes bytes of one frame from p: handles a complete frame in place, or
 * buffers the bytes of a partial one (and handles it once complete). Sets
 * *used to the bytes taken. */
static int take_frame(ds_apply_t *ap, const uint8_t *p, size_t len, size_t *used)
{
    long need;
    size_t take;

    *used = 0;
    if (ap->in.len == 0) {
        long fl = ds_proto_frame_len(p, len);

        if (fl < 0)
            return ds__apply_fatal(ap, 0, DS_EPROTO, "invalid frame header (type 0x%02x)", p[4]);
        if (fl > 0) {
            *used = (size_t)fl;
            return handle_frame(ap, p, (size_t)fl);
        }
    }
    need = missing(ap);
    if (need < 0)
        return ds__apply_fatal(ap, 0, DS_EPROTO, "invalid frame header");
    take = (size_t)need < len ? (size_t)need : len;
    if (ds_proto_buf_append(&ap->in, p, take) < 0)
        return ds__apply_fatal(ap, 0, DS_ENOMEM, "out of memory buffering a frame");
    *used = take;
    if (ap->in.len >= DS_PROTO_HDR_LEN && missing(ap) == 0) {
        int rc = handle_frame(ap, ap->in.p, ap->in.len);

        ap->in.len = 0;
        return rc;
    }
    return 0;
}

long ds_apply_feed(ds_apply_t *ap, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    size_t off = 0;
    int rc;

    if (ap->state == S_DEAD)
        return ap->fatal_rc;
    rc = run_stream(ap);
    while (rc == 0 && off < len && ds_apply_want_input(ap)) {
        size_t used;

        if (ap->state == S_DONE)
            return ds__apply_fatal(ap, 0, DS_EPROTO, "data after BYE");
        rc = take_frame(ap, p + off, len - off, &used);
        off += used;
        if (rc == 0)
            rc = run_stream(ap);
    }
    /* all input handled: the caller waits for more, the batch goes now */
    if (rc == 0 && off == len && ap->state != S_DEAD && (rc = ds__apply_batch_flush(ap)) < 0)
        return ds__apply_fatal(ap, 0, rc, "publishing: %s", ds_strerror(rc));
    return rc < 0 ? rc : (long)off;
}

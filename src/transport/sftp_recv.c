/*
 * SFTP mode, the receiver's session: frames from the console in, replies
 * out, stepped by the transport's calls (ds__sftp_recv_step) on the
 * caller's thread. It speaks the apply protocol (version 3 at most: no
 * packed replies, which would only cost CPU in process) and takes whole
 * files only (the console plans no delta for a DS_TRANSPORT_WHOLE_ONLY
 * transport). Memory stays bounded: the input is capped at 256 KiB or one
 * whole frame (SFTP_IN_LOW: the console's writes wait), a request
 * waits while SFTP_OUT_HIGH of replies are unread, a listing or manifest
 * streams a slice at a time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/log.h"
#include "distsync/pathsafe.h"
#include "distsync/version.h"

#include "sftp_int.h"

#define SFTP_PROTO_MAX       3 /* HELLO_OK offers at most this version */
#define SFTP_FILES_IN_FLIGHT 16

void ds__sftp_cstr(ds_pstr_t s, char *out)
{
    memcpy(out, s.p, s.n);
    out[s.n] = '\0';
}

int ds__sftp_reply(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    return ds_proto_encode(&r->out, m);
}

int ds__sftp_reply_err(struct ds__sftp_recv *r, uint32_t id, int code, const char *path,
                       const char *msg)
{
    ds_msg_t m = {.type = DS_MSG_ERR, .id = id};

    m.u.err.code = code;
    m.u.err.path = ds_pstr(path);
    m.u.err.message = ds_pstr(msg);
    return ds__sftp_reply(r, &m);
}

int ds__sftp_flush(struct ds__sftp_recv *r)
{
    (void)r; /* the replies wait in r->out for the transport's read */
    return 0;
}

/* Ends the session with ERR FATAL. Returns code. */
static int fatal(struct ds__sftp_recv *r, uint32_t id, int code, const char *msg)
{
    ds_msg_t m = {.type = DS_MSG_ERR, .flags = DS_PROTO_F_FATAL, .id = id};

    ds_log(DS_LOG_ERROR, "sftp receiver for %s: session ended: %s", r->fs.u.where, msg);
    m.u.err.code = code;
    m.u.err.path = ds_pstr("");
    m.u.err.message = ds_pstr(msg);
    ds__sftp_reply(r, &m);
    r->state = SR_DEAD;
    return code;
}

static int hello(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    ds_msg_t ok = {.type = DS_MSG_HELLO_OK, .id = m->id};
    unsigned v = m->u.hello.max_version < SFTP_PROTO_MAX ? m->u.hello.max_version : SFTP_PROTO_MAX;
    char sw[64], msg[200];

    if (v < m->u.hello.min_version || v < DS_PROTO_VERSION_MIN) {
        snprintf(msg, sizeof(msg),
                 "no common protocol version: the console speaks %u..%u, the SFTP receiver "
                 "%u..%u",
                 m->u.hello.min_version, m->u.hello.max_version, DS_PROTO_VERSION_MIN,
                 SFTP_PROTO_MAX);
        return fatal(r, m->id, DS_EVERSION, msg);
    }
    r->version = v;
    r->state = SR_READY;
    snprintf(sw, sizeof(sw), "distsync-sftp %s", ds_version());
    ok.u.hello_ok.version = (uint16_t)v;
    ok.u.hello_ok.software = ds_pstr(sw);
    ok.u.hello_ok.max_payload = DS_PROTO_MAX_PAYLOAD;
    /* files in flight; the console's sender streams one file at a time
     * (sync_send.c), so one is open here at any moment */
    ok.u.hello_ok.max_open_files = SFTP_FILES_IN_FLIGHT;
    return ds__sftp_reply(r, &ok);
}

static int emit(void *ctx, const ds_msg_t *m)
{
    struct ds__sftp_recv *r = ctx;
    int rc = ds__sftp_reply(r, m);

    return rc < 0 ? rc : ds__sftp_flush(r);
}

static int list(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    char dir[DS_PROTO_STR_MAX + 1];
    int rc;

    ds__sftp_cstr(m->u.path.path, dir);
    r->req.kind = DS_MSG_LIST;
    rc = ds__sftp_list_step(&r->fs, &r->req.list, dir, m->id, emit, r);
    if (rc == STEP_WAIT)
        return rc;
    r->req.kind = 0;
    if (rc == DS_ENOMEM || rc == -EPIPE || rc == -ECONNRESET)
        return rc;
    if (rc < 0)
        return ds__sftp_reply_err(r, m->id, rc, dir, r->fs.err);
    return 0;
}

/* One non-blocking step of the manifest's write (r->req), its bytes counted. */
static int manifest_step(struct ds__sftp_recv *r)
{
    int rc;

    rc = ds__sftp_manifest_step(r);
    ds__sftp_counts(&r->fs);
    return rc;
}

/* MANIFEST_COMMIT and BYE: the manifest written, stepped (r->req). */
static int commit_manifest(struct ds__sftp_recv *r, const ds_msg_t *m, int bye)
{
    ds_msg_t ok = {.type = DS_MSG_OK, .id = m->id};
    int rc;

    r->req.kind = m->type;
    rc = manifest_step(r);
    if (rc == STEP_WAIT)
        return rc;
    r->req.kind = 0;
    if (rc == DS_ETRANSPORT || rc == DS_ENOMEM)
        return rc;
    if (rc < 0)
        return ds__sftp_reply_err(r, m->id, rc, DS_STATE_DIR "/manifest", r->fs.err);
    ok.u.ok.value = r->man ? ds_manifest_count(r->man) : 0;
    if (bye)
        r->state = SR_DONE;
    return ds__sftp_reply(r, &ok);
}

static int requests(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    switch (m->type) {
    case DS_MSG_LEASE:
        return ds__sftp_lease(r, m);
    case DS_MSG_MANIFEST_GET:
        return ds__sftp_manifest_get(r, m);
    case DS_MSG_LIST:
        return list(r, m);
    case DS_MSG_HASH:
        return ds__sftp_hash_req(r, m);
    case DS_MSG_SIG:
        return ds__sftp_reply_err(r, m->id, DS_EPROTO, "",
                                  "SIG: no signatures in SFTP mode (files go whole)");
    case DS_MSG_ADOPT:
        return ds__sftp_adopt(r, m);
    case DS_MSG_DELETE:
        return ds__sftp_delete(r, m);
    case DS_MSG_MANIFEST_COMMIT:
        return commit_manifest(r, m, 0);
    case DS_MSG_BYE:
        return commit_manifest(r, m, 1);
    default:
        return 1; /* a reply type */
    }
}

/* A file's frame: its slot takes it (sftp_slot.c). */
static int file_frame(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    switch (m->type) {
    case DS_MSG_FILE_BEGIN:
        return ds__sftp_file_begin(r, m);
    case DS_MSG_LITERAL:
        return ds__sftp_file_data(r, m);
    case DS_MSG_COPY:
    case DS_MSG_DELTA:
    case DS_MSG_DELTA_END:
        return ds__sftp_file_refuse(r, m);
    case DS_MSG_FILE_COMMIT:
    case DS_MSG_FILE_ABORT:
        return ds__sftp_file_end(r, m);
    default:
        return 1;
    }
}

/* Before a request: the half-sent packet out, the channels started, a
 * lease check under way (the main channel's) finished. Returns 0,
 * STEP_WAIT or a failure. */
static int settle(struct ds__sftp_recv *r)
{
    int rc = ds__sftp_settle(r, 1);

    if (rc == 0 && r->lck.phase != 0) {
        rc = ds__sftp_lease_check(r);
    }
    return rc == STEP_WAIT || rc < 0 ? rc : 0;
}

/* One decoded frame. Returns 0, DS__SFTP_STALL (it must wait) or a code
 * that ends the session. */
static int handle(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    char msg[160];
    int rc;

    if (r->state == SR_HELLO && m->type != DS_MSG_HELLO)
        return fatal(r, m->id, DS_EPROTO, "the first frame must be HELLO");
    if (m->type == DS_MSG_HELLO && r->state != SR_HELLO)
        return fatal(r, m->id, DS_EPROTO, "a second HELLO");
    if (m->type == DS_MSG_HELLO)
        return hello(r, m);
    if ((m->type == DS_MSG_MANIFEST_GET || m->type == DS_MSG_LIST) && m->u.path.has_known)
        return fatal(r, m->id, DS_EPROTO, "a known digest needs protocol version 4");
    if (m->type == DS_MSG_ADOPT && r->version < DS_PROTO_VERSION_ADOPT)
        return fatal(r, m->id, DS_EPROTO, "ADOPT needs protocol version 2");
    rc = file_frame(r, m);
    if (rc == 1) { /* a request: its reply goes after the files' before it */
        if (ds__sftp_files_pending(r))
            return DS__SFTP_STALL;
        if (r->out.len >= SFTP_OUT_HIGH) /* a listing streams as the console reads */
            return DS__SFTP_STALL;
        rc = r->req.kind == 0 ? settle(r) : 0; /* not resuming a stepped request */
        if (rc == 0)
            rc = requests(r, m);
        if (rc == STEP_WAIT) { /* the frame is handled again, the socket ready */
            r->waiting = 1;
            return DS__SFTP_STALL;
        }
    }
    if (rc == 1) {
        snprintf(msg, sizeof(msg), "%s sent to the receiver", ds_proto_type_name(m->type));
        return fatal(r, m->id, DS_EPROTO, msg);
    }
    if (rc < 0)
        return fatal(r, m->id, rc, r->fs.err[0] ? r->fs.err : ds_strerror(rc));
    return rc;
}

/* A checkpoint of the manifest that is due, run as a request (the files
 * wait; so do the frames). Returns 0 done (or none due), STEP_WAIT or a
 * code that ends the session. */
static int checkpoint(struct ds__sftp_recv *r)
{
    int rc;

    if (!r->ckpt && r->req.kind != SFTP_REQ_CKPT)
        return 0;
    if (r->req.kind == 0 && (rc = settle(r)) != 0)
        return rc;
    r->req.kind = SFTP_REQ_CKPT;
    rc = manifest_step(r);
    if (rc == STEP_WAIT)
        return rc;
    r->req.kind = 0;
    r->ckpt = 0;
    if (rc == DS_ETRANSPORT || rc == DS_ENOMEM)
        return rc;
    if (rc < 0)
        ds_log(DS_LOG_WARN, "%s", r->fs.err);
    return 0;
}

/* Handles the complete frames in r->in until one must wait (*stalled).
 * Returns 0 or the session's end; *moved says whether a frame was taken. */
static int frames(struct ds__sftp_recv *r, int *stalled, int *moved)
{
    size_t off = 0;
    int rc = checkpoint(r);

    *stalled = 0;
    if (rc == STEP_WAIT) {
        r->waiting = *stalled = 1;
        return 0;
    }
    if (rc < 0)
        return rc;
    while (r->state == SR_HELLO || r->state == SR_READY) {
        long n = ds_proto_frame_len(r->in.p + off, r->in.len - off);
        ds_msg_t m;

        if (n == 0)
            break;
        if (n < 0 || (rc = ds_proto_decode(r->in.p + off, (size_t)n, &m)) < 0) {
            rc = fatal(r, 0, n < 0 ? (int)n : rc, "malformed frame");
            break;
        }
        if (r->req.kind == 0) /* a request resumed keeps what it noted */
            r->fs.err[0] = '\0';
        rc = handle(r, &m);
        if (rc == DS__SFTP_STALL) {
            *stalled = 1;
            rc = 0;
            break;
        }
        off += (size_t)n;
        *moved = 1;
        if (ds__sftp_flush(r) < 0 && rc == 0)
            rc = DS_ETRANSPORT;
        if (rc < 0)
            break;
    }
    ds_proto_buf_consume(&r->in, off);
    return rc;
}

int ds__sftp_recv_step(struct ds__sftp_recv *r)
{
    for (;;) {
        int pumped = 0, moved = 0, stalled = 0, rc;

        if (r->state != SR_HELLO && r->state != SR_READY)
            return 1;
        if ((rc = ds__sftp_pump(r, &pumped)) < 0 || (rc = frames(r, &stalled, &moved)) < 0)
            return rc;
        if (pumped || moved || r->kick) {
            r->kick = 0;
            continue;
        }
        if (r->eof && !stalled)
            return r->in.len > 0 ? DS_EPROTO : 1;
        ds__sftp_counts(&r->fs);
        return 0;
    }
}

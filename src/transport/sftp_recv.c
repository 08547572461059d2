/*
 * SFTP mode, the receiver's session: frames from the console in, replies
 * out, on the receiver's thread. It speaks the apply protocol (version 3 at
 * most: no packed replies, which would only cost CPU on a socketpair) and
 * takes whole files only (the console plans no delta
 * for a DS_TRANSPORT_WHOLE_ONLY transport). Memory stays bounded: one
 * input frame plus one read, replies sent before the next frame is read,
 * a listing or manifest streamed a slice at a time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "distsync/error.h"
#include "distsync/log.h"
#include "distsync/pathsafe.h"
#include "distsync/version.h"

#include "sftp_int.h"

#define SFTP_PROTO_MAX       3 /* HELLO_OK offers at most this version */
#define READ_CHUNK           (1u << 20)
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
    size_t off = 0;

    while (off < r->out.len) {
        ssize_t w = send(r->fd, r->out.p + off, r->out.len - off, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            r->out.len = 0;
            return -errno;
        }
        off += (size_t)w;
    }
    r->out.len = 0;
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
    rc = ds__sftp_list(&r->fs, dir, m->id, emit, r);
    if (rc == DS_ENOMEM || rc == -EPIPE || rc == -ECONNRESET)
        return rc;
    if (rc < 0)
        return ds__sftp_reply_err(r, m->id, rc, dir, r->fs.err);
    return 0;
}

static int commit_manifest(struct ds__sftp_recv *r, const ds_msg_t *m, int bye)
{
    ds_msg_t ok = {.type = DS_MSG_OK, .id = m->id};
    int rc = ds__sftp_manifest_store(r);

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
    case DS_MSG_FILE_BEGIN:
        return ds__sftp_file_begin(r, m);
    case DS_MSG_LITERAL:
        return ds__sftp_file_data(r, m);
    case DS_MSG_COPY:
    case DS_MSG_DELTA:
    case DS_MSG_DELTA_END:
        return ds__sftp_file_refuse(r, m);
    case DS_MSG_FILE_COMMIT:
        return ds__sftp_file_commit(r, m);
    case DS_MSG_FILE_ABORT:
        return ds__sftp_file_abort(r, m);
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

/* One decoded frame. Returns 0 or a code that ends the session. */
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
    rc = requests(r, m);
    if (rc == 1) {
        snprintf(msg, sizeof(msg), "%s sent to the receiver", ds_proto_type_name(m->type));
        return fatal(r, m->id, DS_EPROTO, msg);
    }
    if (rc < 0)
        return fatal(r, m->id, rc, r->fs.err[0] ? r->fs.err : ds_strerror(rc));
    return 0;
}

/* Handles every complete frame in r->in. Returns 0 or the session's end. */
static int frames(struct ds__sftp_recv *r)
{
    size_t off = 0;
    int rc = 0;

    while (r->state == SR_HELLO || r->state == SR_READY) {
        long n = ds_proto_frame_len(r->in.p + off, r->in.len - off);
        ds_msg_t m;

        if (n == 0)
            break;
        if (n < 0 || (rc = ds_proto_decode(r->in.p + off, (size_t)n, &m)) < 0) {
            rc = fatal(r, 0, n < 0 ? (int)n : rc, "malformed frame");
            break;
        }
        r->fs.err[0] = '\0';
        rc = handle(r, &m);
        off += (size_t)n;
        if (ds__sftp_flush(r) < 0 && rc == 0)
            rc = DS_ETRANSPORT;
        if (rc < 0)
            break;
    }
    ds_proto_buf_consume(&r->in, off);
    return rc;
}

/* The end: the open file dropped, the manifest written if ours. */
static int finish(struct ds__sftp_recv *r)
{
    ds__sftp_file_drop(r);
    return r->have_lease && !r->lease_lost ? ds__sftp_manifest_store(r) : 0;
}

int ds__sftp_serve(struct ds__sftp_recv *r)
{
    int rc = 0, frc;

    while (rc == 0 && (r->state == SR_HELLO || r->state == SR_READY)) {
        ssize_t n;

        rc = ds_proto_buf_reserve(&r->in, READ_CHUNK);
        if (rc < 0)
            break;
        n = recv(r->fd, r->in.p + r->in.len, READ_CHUNK, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : r->in.len > 0 ? DS_EPROTO : 0;
            break;
        }
        r->in.len += (size_t)n;
        rc = frames(r);
    }
    frc = finish(r);
    ds__sftp_flush(r);
    ds__sftp_counts(&r->fs);
    return rc < 0 ? rc : frc;
}

/*
 * Sender session: reply dispatch (the FIFO of requests waiting for their
 * answer) and the byte pump over the transport.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/escape.h"
#include "distsync/log.h"
#include "session_int.h"

/* ---- replies ---- */

static struct pend *head(ds_session_t *s)
{
    return s->pend_head < s->npend ? &s->pend[s->pend_head] : NULL;
}

static void pop(ds_session_t *s)
{
    if (s->pend[s->pend_head].type == DS_MSG_FILE_ONE && s->nones > 0)
        s->nones--;
    free(s->pend[s->pend_head].path);
    s->pend[s->pend_head].path = NULL;
    s->pend_head++;
}

static void cstr(ds_pstr_t p, char *buf, size_t cap)
{
    size_t n = p.n < cap - 1 ? p.n : cap - 1;

    memcpy(buf, p.p, n);
    buf[n] = '\0';
}

static void check_ready(ds_session_t *s)
{
    if (s->phase == DS_SESSION_CONNECTING && s->hello_ok && (s->lease_ok || !s->o.write) &&
        s->manifest_ok && s->list_ok)
        s->phase = DS_SESSION_READY;
}

int ds__session_feed_manifest(ds_session_t *s, const uint8_t *p, size_t n, int last)
{
    ds_manifest_t *man = NULL;
    int rc = 0;

    if (s->man_dec == NULL)
        rc = ds_manifest_decoder_new(DS_SESSION_MANIFEST_MAX, DS_SESSION_MAX_ENTRIES, &s->man_dec);
    if (rc < 0)
        return ds__session_fail(s, rc, "out of memory reading the manifest");
    rc = ds_manifest_decoder_feed(s->man_dec, p, n);
    if (rc == 0 && last)
        rc = ds_manifest_decoder_finish(s->man_dec, &man);
    if (rc == DS_ETOOBIG) /* "manifest is larger than the 256 MiB limit" */
        return ds__session_fail(s, rc, "%s", ds_manifest_decoder_error(s->man_dec));
    if (rc < 0)
        return ds__session_fail(s, rc, "target %s", ds_manifest_decoder_error(s->man_dec));
    if (man == NULL)
        return 0; /* more to come */
    ds_manifest_decoder_free(s->man_dec);
    s->man_dec = NULL;
    ds_manifest_free(s->man);
    s->man = man;
    s->manifest_ok = 1;
    ds__session_predict_drop(s);
    ds__session_mlog_clear(s);
    pop(s);
    return 1;
}

static int on_manifest(ds_session_t *s, const ds_msg_t *m)
{
    int last = !(m->flags & DS_PROTO_F_MORE), rc;

    ds__session_fetched(s, 0, m->u.blob.data, m->u.blob.len, 0);
    ds__session_man_hash(s, m->u.blob.data, m->u.blob.len, 0);
    rc = ds__session_feed_manifest(s, m->u.blob.data, m->u.blob.len, last);
    if (rc == 1) {
        ds__session_man_hash(s, NULL, 0, 1);
        ds__session_fetched(s, 0, NULL, 0, 1);
    }
    return rc < 0 ? rc : 0;
}

int ds__session_add_entries(ds_session_t *s, const uint8_t *q, size_t len)
{
    ds_list_entry_t e;
    int rc;

    while ((rc = ds_proto_list_next(&q, &len, &e)) == 1) {
        ds_session_entry_t *x;

        s->list_bytes += sizeof(*x) + e.path.n + 1;
        if (s->nlist >= DS_SESSION_MAX_ENTRIES)
            return ds__session_fail(s, DS_ETOOBIG, "listing has more than %llu entries",
                                    DS_SESSION_MAX_ENTRIES);
        if (s->list_bytes > DS_SESSION_LIST_MAX)
            return ds__session_fail(s, DS_ETOOBIG,
                                    "listing is larger than the %llu MiB limit (%zu entries)",
                                    DS_SESSION_LIST_MAX >> 20, s->nlist);
        if (ds__session_grow((void **)&s->list, &s->list_cap, s->nlist + 1, sizeof(*s->list)) < 0)
            return ds__session_fail(s, DS_ENOMEM, "out of memory reading the target listing");
        x = &s->list[s->nlist];
        x->path = ds__session_list_path(s, e.path.p, e.path.n);
        if (x->path == NULL)
            return ds__session_fail(s, DS_ENOMEM, "out of memory reading the target listing");
        x->type = e.type;
        x->size = e.size;
        x->mtime_ns = e.mtime_ns;
        x->mode = e.mode;
        s->nlist++;
    }
    if (rc < 0)
        return ds__session_fail(s, rc, "malformed LIST_DATA from the target");
    return 0;
}

static int on_list(ds_session_t *s, const ds_msg_t *m)
{
    if (ds__session_add_entries(s, m->u.list.entries, m->u.list.len) < 0)
        return s->rc;
    ds__session_fetched(s, 1, m->u.list.entries, m->u.list.len, 0);
    if (!(m->flags & DS_PROTO_F_MORE)) {
        s->list_ok = 1;
        pop(s);
        ds__session_fetched(s, 1, NULL, 0, 1);
    }
    return 0;
}

void ds__session_pop(ds_session_t *s)
{
    pop(s);
}

static int on_lease_ok(ds_session_t *s, const ds_msg_t *m, struct pend *p)
{
    (void)p;
    if (m->u.lease_ok.tmp_cleaned)
        ds_log(DS_LOG_INFO, "target removed %u stale tmp files", m->u.lease_ok.tmp_cleaned);
    s->lease_ok = 1;
    s->renew_pending = 0;
    pop(s);
    return 0;
}

static int on_busy(ds_session_t *s, const ds_msg_t *m)
{
    char msg[1024];

    cstr(m->u.busy.message, msg, sizeof(msg));
    s->busy = 1;
    return ds__session_fail(s, DS_ELEASE, "%s", msg);
}

/* FILE_OK / FILE_ERR as the reply to a FILE_COMMIT, FILE_ABORT or ADOPT;
 * FILE_DONE / FILE_ERR to a FILE_ONE (the size and SHA-256 it sent). */
static int on_file_final(ds_session_t *s, const ds_msg_t *m, struct pend *p)
{
    ds_session_result_t r = {.kind = DS_SRES_FILE, .tag = p->tag};
    struct sfile *f = ds__session_find_file(s, p->fid);
    char msg[1024] = "";
    int rc;

    if (m->type == DS_MSG_FILE_OK || m->type == DS_MSG_FILE_DONE) {
        int done = m->type == DS_MSG_FILE_DONE;

        r.size = done ? p->size : m->u.file_ok.size;
        r.mtime_ns = m->u.file_ok.mtime_ns;
        memcpy(r.sha256, done ? p->sha256 : m->u.file_ok.sha256, DS_SHA256_LEN);
        if (p->type != DS_MSG_FILE_ABORT)
            ds__session_mlog_add(s, p->path, &r);
    } else {
        r.rc = m->u.err.code < 0 ? m->u.err.code : DS_EPROTO;
        cstr(m->u.err.message, msg, sizeof(msg));
    }
    rc = ds__session_push_result(s, &r, p->path, msg);
    if (f)
        ds__session_drop_file(s, f);
    pop(s);
    return rc < 0 ? ds__session_fail(s, rc, "out of memory") : 0;
}

/* ERR / OK / HASH_OK answering the FIFO head p. */
static int on_answer(ds_session_t *s, const ds_msg_t *m, struct pend *p)
{
    ds_session_result_t r = {.tag = p->tag};
    char msg[1024] = "", path[1024] = "";
    int rc = 0;

    if (m->type == DS_MSG_ERR) {
        r.rc = m->u.err.code < 0 ? m->u.err.code : DS_EPROTO;
        cstr(m->u.err.message, msg, sizeof(msg));
        cstr(m->u.err.path, path, sizeof(path));
    }
    switch (p->type) {
    case DS_MSG_HASH:
        r.kind = DS_SRES_HASH;
        if (m->type == DS_MSG_HASH_OK) {
            r.size = m->u.hash_ok.size;
            r.mtime_ns = m->u.hash_ok.mtime_ns;
            memcpy(r.sha256, m->u.hash_ok.sha256, DS_SHA256_LEN);
        }
        break;
    case DS_MSG_DELETE:
        r.kind = DS_SRES_DELETE;
        r.value = m->type == DS_MSG_OK ? m->u.ok.value : 0;
        if (m->type == DS_MSG_OK)
            ds__session_mlog_add(s, p->path, &r);
        break;
    case DS_MSG_SIG:
        r.kind = DS_SRES_SIG;
        s->sig_blob.len = 0; /* ERR: drop a partial signature */
        break;
    case DS_MSG_MANIFEST_COMMIT:
        r.kind = DS_SRES_MANIFEST;
        r.value = m->type == DS_MSG_OK ? m->u.ok.value : 0;
        if (m->type == DS_MSG_OK && s->commit_pending != 2) /* 2: predicted at the refresh */
            ds__session_predict(s, r.value);
        s->commit_pending = 0;
        break;
    case DS_MSG_LEASE:
        if (m->type == DS_MSG_ERR && s->phase == DS_SESSION_CLOSING) /* the release */
            ds_log(DS_LOG_WARN, "target's lease release failed: %s (it expires after lease_ttl)",
                   msg); /* with the commit's answer: that failure is the run's */
        else if (m->type == DS_MSG_ERR)
            return ds__session_fail(s, r.rc, "lease: %s", msg);
        pop(s);
        return 0;
    case DS_MSG_BYE:
        if (m->type == DS_MSG_ERR)
            return ds__session_fail(s, r.rc, "at BYE: %s", msg);
        s->phase = DS_SESSION_DONE;
        pop(s);
        return 0;
    default:
        return ds__session_fail(s, r.rc, "%s failed: %s%s%s", ds_proto_type_name(p->type), path,
                                path[0] ? ": " : "", msg);
    }
    rc = ds__session_push_result(s, &r, p->path, msg);
    pop(s);
    return rc < 0 ? ds__session_fail(s, rc, "out of memory") : 0;
}

/* SIG_DATA: collects the signature; the last frame yields the result. */
static int on_sig(ds_session_t *s, const ds_msg_t *m, struct pend *p)
{
    ds_session_result_t r = {.kind = DS_SRES_SIG, .tag = p->tag};
    int rc;

    if (s->sig_blob.len + m->u.blob.len > p->max_len)
        return ds__session_fail(s, DS_ETOOBIG,
                                "signature of %s is larger than the %llu-byte limit for a "
                                "file of its listed size",
                                p->path ? p->path : "?", (unsigned long long)p->max_len);
    if (ds_proto_buf_append(&s->sig_blob, m->u.blob.data, m->u.blob.len) < 0)
        return ds__session_fail(s, DS_ENOMEM, "out of memory reading a signature");
    if (m->flags & DS_PROTO_F_MORE)
        return 0;
    r.len = s->sig_blob.len;
    rc = ds__session_push_result(s, &r, p->path, "");
    if (rc == 0) { /* hand the buffer over to the result */
        s->res[s->nres - 1].data = s->sig_blob.p;
        memset(&s->sig_blob, 0, sizeof(s->sig_blob));
    }
    pop(s);
    return rc < 0 ? ds__session_fail(s, rc, "out of memory") : 0;
}

/* An early FILE_ERR: the file failed before its commit. */
static void on_early_file_err(ds_session_t *s, const ds_msg_t *m)
{
    struct sfile *f = ds__session_find_file(s, m->u.err.file_id);

    if (f)
        f->failed = 1;
}

static int expect(ds_session_t *s, const ds_msg_t *m, struct pend *p, uint8_t type)
{
    if (p != NULL && p->type == type)
        return 0;
    return ds__session_fail(s, DS_EPROTO, "unexpected %s from the target (id %u)",
                            ds_proto_type_name(m->type), m->id);
}

static int dispatch(ds_session_t *s, const ds_msg_t *m)
{
    struct pend *p = head(s);
    char msg[1024];

    if (m->type == DS_MSG_ERR && (m->flags & DS_PROTO_F_FATAL)) {
        cstr(m->u.err.message, msg, sizeof(msg));
        return ds__session_fail(s, m->u.err.code < 0 ? m->u.err.code : DS_EPROTO,
                                "target ended the session: %s", msg);
    }
    if (m->type == DS_MSG_FILE_ERR && (p == NULL || p->id != m->id)) {
        on_early_file_err(s, m);
        return 0;
    }
    if (p == NULL || p->id != m->id)
        return ds__session_fail(s, DS_EPROTO, "reply %s (id %u) answers no pending request",
                                ds_proto_type_name(m->type), m->id);
    switch (m->type) {
    case DS_MSG_HELLO_OK:
        if (expect(s, m, p, DS_MSG_HELLO) < 0)
            return s->rc;
        if (m->u.hello_ok.version < ds__session_min_version(s) ||
            m->u.hello_ok.version > DS_PROTO_VERSION_MAX)
            return ds__session_fail(
                s, DS_EVERSION, "target chose protocol version %u, outside the offered %u..%u",
                m->u.hello_ok.version, ds__session_min_version(s), DS_PROTO_VERSION_MAX);
        s->hello_ok = 1;
        s->version = m->u.hello_ok.version;
        if (m->u.hello_ok.max_open_files > 0 && m->u.hello_ok.max_open_files < s->o.window_files)
            s->o.window_files = m->u.hello_ok.max_open_files;
        pop(s);
        return s->fetch_deferred ? ds__session_queue_fetch(s) : 0;
    case DS_MSG_LEASE_OK:
        return expect(s, m, p, DS_MSG_LEASE) < 0 ? s->rc : on_lease_ok(s, m, p);
    case DS_MSG_BUSY:
        return on_busy(s, m);
    case DS_MSG_MANIFEST_DATA:
        return expect(s, m, p, DS_MSG_MANIFEST_GET) < 0 ? s->rc : on_manifest(s, m);
    case DS_MSG_LIST_DATA:
        return expect(s, m, p, DS_MSG_LIST) < 0 ? s->rc : on_list(s, m);
    case DS_MSG_MANIFEST_SAME:
        return expect(s, m, p, DS_MSG_MANIFEST_GET) < 0 ? s->rc : ds__session_on_same(s, m);
    case DS_MSG_LIST_SAME:
        return expect(s, m, p, DS_MSG_LIST) < 0 ? s->rc : ds__session_on_same(s, m);
    case DS_MSG_FILE_DONE:
        if (p->type != DS_MSG_FILE_ONE)
            return expect(s, m, p, DS_MSG_FILE_ONE);
        return on_file_final(s, m, p);
    case DS_MSG_FILE_OK:
    case DS_MSG_FILE_ERR:
        if (p->type != DS_MSG_FILE_COMMIT && p->type != DS_MSG_FILE_ABORT &&
            p->type != DS_MSG_ADOPT && p->type != DS_MSG_FILE_ONE)
            return expect(s, m, p, DS_MSG_FILE_COMMIT);
        return on_file_final(s, m, p);
    case DS_MSG_SIG_DATA:
        return expect(s, m, p, DS_MSG_SIG) < 0 ? s->rc : on_sig(s, m, p);
    case DS_MSG_HASH_OK:
        if (expect(s, m, p, DS_MSG_HASH) < 0)
            return s->rc;
        return on_answer(s, m, p);
    case DS_MSG_OK:
    case DS_MSG_ERR:
        return on_answer(s, m, p);
    default:
        return ds__session_fail(s, DS_EPROTO, "unexpected %s from the target",
                                ds_proto_type_name(m->type));
    }
}

/* The length of b[0, n)'s first line, without its end. */
static size_t first_line(const char *b, size_t n)
{
    size_t i = 0;

    while (i < n && b[i] != '\n' && b[i] != '\r')
        i++;
    return i;
}

/* Fails s on bytes at s->in[off] that are no frame header. Before the
 * first reply they are most likely text (a shell startup file or a banner
 * that writes to the agent's stdout), so the failure quotes their start. */
static int bad_header(ds_session_t *s, size_t off)
{
    char said[200];
    size_t n = s->in.len - off;

    if (s->hello_ok || off > 0)
        return ds__session_fail(s, DS_EPROTO, "invalid frame header from the target");
    n = first_line((const char *)s->in.p, n > 60 ? 60 : n);
    ds_escape_name((const char *)s->in.p, n, said, sizeof(said));
    return ds__session_fail(s, DS_EPROTO,
                            "invalid frame header from the target: its first bytes are not the "
                            "protocol: '%s%s' (does a shell startup file or a banner write to the "
                            "agent's stdout? the agent command's output must be only the protocol)",
                            said, s->in.len - off > n ? "..." : "");
}

/* Handles every complete frame buffered in s->in. */
static int handle_input(ds_session_t *s)
{
    size_t off = 0;
    int rc = 0;

    while (rc == 0 && s->phase != DS_SESSION_FAILED) {
        long fl = ds_proto_frame_len(s->in.p + off, s->in.len - off);
        ds_msg_t m;

        if (fl < 0)
            return bad_header(s, off);
        if (fl == 0)
            break;
        rc = ds_proto_decode(s->in.p + off, (size_t)fl, &m);
        if (rc < 0)
            return ds__session_fail(s, rc, "malformed %s frame from the target",
                                    ds_proto_type_name(s->in.p[off + 4]));
        if (m.flags & DS_PROTO_F_PACKED)
            rc = ds__session_unpack(s, &m);
        if (rc == 0)
            rc = dispatch(s, &m);
        off += (size_t)fl;
    }
    ds_proto_buf_consume(&s->in, off);
    check_ready(s);
    return s->phase == DS_SESSION_FAILED ? s->rc : 0;
}

static int renew(ds_session_t *s, int64_t now)
{
    ds_msg_t l = {.type = DS_MSG_LEASE};

    if (!s->o.write || s->phase != DS_SESSION_READY || s->renew_pending)
        return 0;
    if (s->lease_at == 0)
        s->lease_at = now;
    if (now - s->lease_at < (int64_t)s->o.lease_ttl_s / 3)
        return 0;
    l.u.lease.op = DS_LEASE_OP_RENEW;
    l.u.lease.console_id = ds_pstr(s->console_id);
    l.u.lease.pid = s->o.pid;
    l.u.lease.host = ds_pstr(s->host);
    l.u.lease.ttl_s = s->o.lease_ttl_s;
    s->renew_pending = 1;
    s->lease_at = now;
    return ds__session_send_ctl(s, &l, 1, 0, 0, NULL); /* ahead of the queued data */
}

static int pump_out(ds_session_t *s)
{
    while (s->out.len > s->out_off) {
        long w = ds_transport_write(s->t, s->out.p + s->out_off, s->out.len - s->out_off);

        if (w < 0)
            return ds__session_fail(s, (int)w, "%s", ds_transport_error(s->t));
        if (w == 0)
            break;
        s->out_off += (size_t)w;
        s->st.bytes_out += (uint64_t)w;
    }
    if (s->out_off == s->out.len) {
        s->out.len = 0;
        s->out_off = 0;
    } else if (s->out_off >= COMPACT_AT) {
        ds_proto_buf_consume(&s->out, s->out_off);
        s->out_off = 0;
    }
    return 0;
}

static int pump_in(ds_session_t *s)
{
    for (int i = 0; i < 64; i++) {
        long r = ds_transport_read(s->t, s->rbuf, READ_CHUNK);

        if (r == 0)
            return 0;
        if (r < 0) {
            if (s->phase == DS_SESSION_DONE)
                return 0;
            return ds__session_fail(s, (int)r, "%s", ds_transport_error(s->t));
        }
        s->st.bytes_in += (uint64_t)r;
        if (ds_proto_buf_append(&s->in, s->rbuf, (size_t)r) < 0)
            return ds__session_fail(s, DS_ENOMEM, "out of memory");
        if (handle_input(s) < 0)
            return s->rc;
        if (s->phase == DS_SESSION_DONE)
            return 0;
    }
    return 0;
}

int ds_session_step(ds_session_t *s, int64_t now)
{
    if (s->phase == DS_SESSION_FAILED)
        return s->rc;
    if (renew(s, now) < 0)
        return ds__session_fail(s, DS_ENOMEM, "out of memory");
    if (pump_out(s) < 0 || pump_in(s) < 0)
        return s->rc;
    /* A reply may have queued requests (HELLO_OK: the deferred MANIFEST_GET
     * and LIST): write them now. A transport that waits for output only when
     * its own write is stuck (ssh://) would otherwise sit on them until the
     * run's next tick, a second later. */
    if (s->out.len > s->out_off && pump_out(s) < 0)
        return s->rc;
    return 0;
}

/*
 * Receiver: single-frame files (FILE_ONE) spread over several connections
 * to one target. Over SMB every file operation is a round trip the
 * connection waits for (about 10 per new file, 18 per delta), so one
 * connection applies a file at a time; the SMB worker starts helper
 * processes, each with a connection of its own (libsmbclient is not
 * thread-safe), and hands their sockets to its receiver
 * (ds_apply_opts_t.fan_fds).
 *
 * The session stays this receiver's: the lease, the lock, the manifest,
 * listings, deletes and multi-frame files are handled here as before. A
 * FILE_ONE goes to an idle helper, with what the helper needs to apply it
 * as this session: the protocol version, the lease (its session and
 * console, which the helper checks in the lease file on the share before
 * it publishes, and its expiry) and the manifest entries of the basis
 * (server-side copies trust a basis that matches them). The helper runs the
 * same receiver (ds_apply_helper_serve): tmp file, server-side copies,
 * SHA-256, rename. When every helper is busy the file is applied here. The
 * replies go out in request order (the console pairs them with its
 * requests in order): a reply that comes back early waits for those before
 * it, and a FILE_DONE is recorded in the manifest only then. Every other
 * request, and a FILE_ONE naming a path (or basis) in flight, waits until
 * every file in flight is answered.
 *
 * Between the receiver and a helper (processes of one binary, over a
 * socketpair): a struct fan_rec followed by the FILE_ONE frame; back, the
 * helper's one reply frame (FILE_DONE or FILE_ERR; an ERR ends the
 * session).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "apply_int.h"
#include "distsync/log.h"

struct fan_rec {
    uint32_t frame_len;
    uint32_t version;
    int64_t lease_expiry;
    uint64_t lease_session;
    char console[DS_LEASE_STR_MAX];
    uint8_t scopy_off, has_man, has_hashed, pad;
    ds_manifest_entry_t man, hashed; /* of the basis; path unused */
};

struct fan_ent { /* a FILE_ONE in flight, in request order */
    int helper;  /* -1: applied here */
    int done;
    uint32_t id;
    char *path, *basis;
    uint8_t *frame; /* the FILE_ONE, applied here if its helper dies */
    size_t frame_len;
    uint64_t size;
    uint8_t sha256[DS_SHA256_LEN];
    uint8_t *reply;
    size_t reply_len;
};

struct ds_apply_fan {
    unsigned n;
    int fds[DS_APPLY_FAN_MAX];
    long busy[DS_APPLY_FAN_MAX]; /* the entry it applies, -1 when idle */
    int dead[DS_APPLY_FAN_MAX];  /* ended: never used again */
    ds_proto_buf_t rbuf[DS_APPLY_FAN_MAX];
    struct fan_ent *q;
    size_t head, len, cap;
};

int ds__apply_fan_new(ds_apply_t *ap)
{
    struct ds_apply_fan *fan;

    if (ap->opts.nfan == 0)
        return 0;
    if (ap->opts.nfan > DS_APPLY_FAN_MAX)
        return DS_EUSAGE;
    fan = calloc(1, sizeof(*fan));
    if (fan == NULL)
        return DS_ENOMEM;
    fan->n = ap->opts.nfan;
    for (unsigned i = 0; i < fan->n; i++) {
        fan->fds[i] = ap->opts.fan_fds[i];
        fan->busy[i] = -1;
    }
    ap->fan = fan;
    return 0;
}

static void ent_free(struct fan_ent *e)
{
    free(e->path);
    free(e->basis);
    free(e->reply);
    free(e->frame);
    memset(e, 0, sizeof(*e));
}

void ds__apply_fan_free(ds_apply_t *ap)
{
    struct ds_apply_fan *fan = ap->fan;

    if (fan == NULL)
        return;
    for (size_t i = fan->head; i < fan->len; i++)
        ent_free(&fan->q[i]);
    for (unsigned i = 0; i < fan->n; i++)
        ds_proto_buf_free(&fan->rbuf[i]);
    free(fan->q);
    free(fan);
    ap->fan = NULL;
}

static int pending(const ds_apply_t *ap)
{
    return ap->fan != NULL && ap->fan->head < ap->fan->len;
}

int ds__apply_fan_blocks(const ds_apply_t *ap, const ds_msg_t *m)
{
    return pending(ap) && m->type != DS_MSG_FILE_ONE;
}

/* Records a helper's FILE_DONE as a local commit would (manifest, counters). */
static int account(ds_apply_t *ap, const struct fan_ent *e)
{
    ds_msg_t m;
    int rc = ds_proto_decode(e->reply, e->reply_len, &m);

    if (rc == 0 && m.type == DS_MSG_ERR)
        return ds__apply_fatal(ap, e->id, m.u.err.code < 0 ? m.u.err.code : DS_EPROTO,
                               "SMB connection %d: %.*s", e->helper + 2, (int)m.u.err.message.n,
                               (const char *)m.u.err.message.p);
    if (rc < 0 || (m.type != DS_MSG_FILE_DONE && m.type != DS_MSG_FILE_ERR))
        return ds__apply_fatal(ap, e->id, rc < 0 ? rc : DS_EPROTO,
                               "SMB connection %d: unexpected %s reply to FILE_ONE %s",
                               e->helper + 2, rc < 0 ? "malformed" : ds_proto_type_name(m.type),
                               e->path);
    if (m.type == DS_MSG_FILE_ERR) {
        ap->stats.files_failed++;
        if (m.u.err.code == DS_ESRVCOPY)
            ap->scopy_off = 1;
        return 0;
    }
    ap->stats.files_ok++;
    ap->man_dirty = 1;
    rc = ds_manifest_put(ap->man, e->path, e->size, m.u.file_ok.mtime_ns, e->sha256);
    if (rc == 0)
        ds__apply_checkpoint(ap);
    return rc;
}

/* Queues the replies of the files answered at the head, in order. */
static int pop_done(ds_apply_t *ap)
{
    struct ds_apply_fan *fan = ap->fan;
    int rc = 0;

    while (rc == 0 && fan->head < fan->len && fan->q[fan->head].done) {
        struct fan_ent *e = &fan->q[fan->head];

        if (e->helper >= 0)
            rc = account(ap, e);
        if (rc == 0 && ap->state != S_DEAD)
            rc = ds_proto_buf_append(&ap->out, e->reply, e->reply_len);
        ent_free(e);
        fan->head++;
    }
    if (fan->head == fan->len)
        fan->head = fan->len = 0;
    return rc;
}

/* Applies entry idx (FILE_ONE frame) here; its reply is held in the entry. */
static int apply_here(ds_apply_t *ap, size_t idx)
{
    struct ds_apply_fan *fan = ap->fan;
    struct fan_ent *e = &fan->q[idx];
    size_t before = ap->out.len;
    ds_msg_t m;
    int rc = ds_proto_decode(e->frame, e->frame_len, &m);

    if (rc == 0)
        rc = ds__apply_file_one(ap, &m);
    if (rc == 0) /* a local file system batches commits: its reply now */
        rc = ds__apply_batch_flush(ap);
    if (rc < 0)
        return rc;
    e = &fan->q[idx];
    e->helper = -1;
    e->done = 1;
    e->reply_len = ap->out.len - before;
    e->reply = malloc(e->reply_len ? e->reply_len : 1);
    if (e->reply == NULL)
        return DS_ENOMEM;
    memcpy(e->reply, ap->out.p + before, e->reply_len);
    ap->out.len = before;
    return 0;
}

/* Helper i ended (its reason is in the worker's stderr): never used again;
 * the file it was applying is applied here. */
static int helper_died(ds_apply_t *ap, unsigned i, int err)
{
    struct ds_apply_fan *fan = ap->fan;
    size_t idx = (size_t)fan->busy[i];

    ds_log(DS_LOG_WARN,
           "%s: SMB connection %u ended%s%s while applying %s: applied on the "
           "worker's own connection; this connection is not used again",
           ap->root, i + 2, err ? ": " : "", err ? strerror(err) : "", fan->q[idx].path);
    fan->dead[i] = 1;
    fan->busy[i] = -1;
    fan->rbuf[i].len = 0;
    return apply_here(ap, idx);
}

/* Reads what helper i sent; a complete reply completes its entry. */
static int take_reply(ds_apply_t *ap, unsigned i)
{
    struct ds_apply_fan *fan = ap->fan;
    ds_proto_buf_t *b = &fan->rbuf[i];
    struct fan_ent *e = &fan->q[fan->busy[i]];
    uint8_t buf[16384];
    ssize_t r = read(fan->fds[i], buf, sizeof(buf));
    long fl;

    if (r < 0 && errno == EINTR)
        return 0;
    if (r <= 0)
        return helper_died(ap, i, r < 0 ? errno : 0);
    if (ds_proto_buf_append(b, buf, (size_t)r) < 0)
        return DS_ENOMEM;
    fl = ds_proto_frame_len(b->p, b->len);
    if (fl < 0 || (fl > 0 && (size_t)fl != b->len))
        return ds__apply_fatal(ap, e->id, DS_EPROTO, "SMB connection %u: bad reply framing", i + 2);
    if (fl == 0)
        return 0;
    e->reply = malloc(b->len);
    if (e->reply == NULL)
        return DS_ENOMEM;
    memcpy(e->reply, b->p, b->len);
    e->reply_len = b->len;
    e->done = 1;
    b->len = 0;
    fan->busy[i] = -1;
    return 0;
}

/* Waits (timeout_ms, -1 forever) for replies, also for in_fd's input when
 * in_fd >= 0. Returns 1 when in_fd is readable, 0 otherwise, or < 0. */
static int wait_some(ds_apply_t *ap, int in_fd, int timeout_ms)
{
    struct ds_apply_fan *fan = ap->fan;
    struct pollfd pfd[DS_APPLY_FAN_MAX + 1];
    unsigned map[DS_APPLY_FAN_MAX + 1], np = 0;
    int rc, in_ready = 0;

    for (unsigned i = 0; i < fan->n; i++)
        if (fan->busy[i] >= 0) {
            pfd[np] = (struct pollfd){.fd = fan->fds[i], .events = POLLIN};
            map[np++] = i;
        }
    if (in_fd >= 0) {
        pfd[np] = (struct pollfd){.fd = in_fd, .events = POLLIN};
        map[np++] = UINT32_MAX;
    }
    if (np == 0)
        return 0;
    rc = poll(pfd, np, timeout_ms);
    if (rc < 0)
        return errno == EINTR ? 0 : -errno;
    for (unsigned k = 0; k < np; k++) {
        if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        if (map[k] == UINT32_MAX)
            in_ready = 1;
        else if ((rc = take_reply(ap, map[k])) < 0)
            return rc;
    }
    rc = pop_done(ap);
    return rc < 0 ? rc : in_ready;
}

int ds__apply_fan_drain(ds_apply_t *ap)
{
    int rc = 0;

    while (rc >= 0 && pending(ap) && ap->state != S_DEAD)
        rc = wait_some(ap, -1, -1);
    return rc < 0 ? rc : 0;
}

int ds__apply_fan_wait(ds_apply_t *ap, int in_fd)
{
    int rc;

    if (!pending(ap))
        return 1;
    do
        rc = wait_some(ap, in_fd, -1);
    while (rc == 0 && pending(ap) && ap->out.len == 0);
    return rc != 0 ? rc : ap->out.len > 0 ? 0 : 1;
}

static int same(ds_pstr_t s, const char *c)
{
    return c != NULL && strlen(c) == s.n && memcmp(c, s.p, s.n) == 0;
}

/* 1 when FILE_ONE m names a path or basis of a file in flight. */
static int conflicts(const struct ds_apply_fan *fan, const ds_msg_t *m)
{
    const ds_pstr_t path = m->u.one.path;
    const int from = m->u.one.kind == DS_PROTO_ONE_DELTA_FROM;

    for (size_t i = fan->head; i < fan->len; i++) {
        const struct fan_ent *e = &fan->q[i];

        if (same(path, e->path) || same(path, e->basis) ||
            (from && (same(m->u.one.basis, e->path) || same(m->u.one.basis, e->basis))))
            return 1;
    }
    return 0;
}

static char *pstrdup(ds_pstr_t s)
{
    char *p = malloc(s.n + 1);

    if (p != NULL)
        ds__apply_cstr(s, p);
    return p;
}

/* A new entry at the tail for m (NULL: out of memory). */
static struct fan_ent *push(struct ds_apply_fan *fan, const ds_msg_t *m, const uint8_t *p,
                            size_t len)
{
    struct fan_ent *e;

    if (fan->len == fan->cap) {
        size_t cap = fan->cap ? fan->cap * 2 : 16;
        struct fan_ent *q = realloc(fan->q, cap * sizeof(*q));

        if (q == NULL)
            return NULL;
        fan->q = q;
        fan->cap = cap;
    }
    e = &fan->q[fan->len];
    memset(e, 0, sizeof(*e));
    e->id = m->id;
    e->size = m->u.one.size;
    memcpy(e->sha256, m->u.one.sha256, DS_SHA256_LEN);
    e->path = pstrdup(m->u.one.path);
    e->basis = m->u.one.kind == DS_PROTO_ONE_DELTA_FROM ? pstrdup(m->u.one.basis) : NULL;
    e->frame = malloc(len);
    if (e->frame != NULL)
        memcpy(e->frame, p, len);
    e->frame_len = len;
    if (e->path == NULL || e->frame == NULL ||
        (m->u.one.kind == DS_PROTO_ONE_DELTA_FROM && e->basis == NULL)) {
        ent_free(e);
        return NULL;
    }
    fan->len++;
    return e;
}

/* What the worker's own connection showed of server-side copies: 1 the
 * server copies, -1 it does not (or the receiver found so), 0 unknown. */
static int copy_state(const ds_apply_t *ap)
{
    if (ap->scopy_off)
        return -1;
    return ap->fs->ops->copy_state != NULL ? ap->fs->ops->copy_state(ap->fs) : 1;
}

/* Sends FILE_ONE frame p to helper i with this session's lease and the
 * basis's manifest entries. */
static int send_one(ds_apply_t *ap, unsigned i, const struct fan_ent *e, const uint8_t *p,
                    size_t len)
{
    const char *name = e->basis != NULL ? e->basis : e->path;
    const ds_manifest_entry_t *me = ap->man ? ds_manifest_get(ap->man, name) : NULL;
    const ds_manifest_entry_t *he = ap->hashed ? ds_manifest_get(ap->hashed, name) : NULL;
    struct fan_rec rec = {.frame_len = (uint32_t)len,
                          .version = ap->version,
                          .lease_expiry = ap->lease_expiry,
                          .lease_session = ap->lease_session,
                          .scopy_off = copy_state(ap) < 0};
    int rc;

    memcpy(rec.console, ap->lease_console, sizeof(rec.console));
    if (me != NULL) {
        rec.has_man = 1;
        rec.man = *me;
        rec.man.path = NULL;
    }
    if (he != NULL) {
        rec.has_hashed = 1;
        rec.hashed = *he;
        rec.hashed.path = NULL;
    }
    rc = ds__apply_write_all(ap->fan->fds[i], &rec, sizeof(rec));
    if (rc == 0)
        rc = ds__apply_write_all(ap->fan->fds[i], p, len);
    return rc;
}

int ds__apply_fan_one(ds_apply_t *ap, const ds_msg_t *m, const uint8_t *p, size_t len)
{
    struct ds_apply_fan *fan = ap->fan;
    struct fan_ent *e;
    size_t idx;
    int rc, idle = -1;

    if (fan == NULL || m->type != DS_MSG_FILE_ONE || ap->version < DS_PROTO_VERSION_ONE ||
        !ap->have_lease || ap->lease_nofile || ap->lease_lost)
        return 1;
    if (DS_FS(ap->fs)->ops->links_seen != NULL && DS_FS(ap->fs)->ops->links_seen(ap->fs)) {
        rc = ds__apply_fan_drain(ap); /* only this receiver knows the links it listed */
        return rc < 0 ? rc : 1;
    }
    if (m->u.one.kind != DS_PROTO_ONE_LITERAL && copy_state(ap) == 0) {
        /* until this connection has shown whether the server copies on its
         * side, files with a basis are applied here, one at a time: a
         * share without server-side copy is found once (one probe), not
         * once per connection */
        rc = ds__apply_fan_drain(ap);
        return rc < 0 ? rc : 1;
    }
    if (conflicts(fan, m) && (rc = ds__apply_fan_drain(ap)) < 0)
        return rc;
    if (pending(ap) && (rc = wait_some(ap, -1, 0)) < 0) /* collect without waiting */
        return rc;
    for (unsigned i = 0; i < fan->n && idle < 0; i++)
        if (fan->busy[i] < 0 && !fan->dead[i])
            idle = (int)i;
    if ((e = push(fan, m, p, len)) == NULL)
        return DS_ENOMEM;
    idx = fan->len - 1;
    if (idle >= 0) {
        e->helper = idle;
        fan->busy[idle] = (long)idx;
        rc = send_one(ap, (unsigned)idle, e, p, len);
        if (rc < 0 && (rc = helper_died(ap, (unsigned)idle, -rc)) < 0)
            return rc;
        return pop_done(ap);
    }
    /* every helper busy: applied here, its reply held for its turn */
    rc = apply_here(ap, idx);
    return rc < 0 ? rc : pop_done(ap);
}

/* ---- the helper's side ---- */

static int read_exact(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    size_t got = 0;

    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return got == 0 ? 1 : DS_EPROTO;
        got += (size_t)r;
    }
    return 0;
}

/* This session's basis entries for FILE_ONE m (the only ones the helper's
 * receiver looks up: server-side copies trust a basis that matches). */
static int set_entries(ds_apply_t *ap, const struct fan_rec *rec, const ds_msg_t *m)
{
    char name[DS_PROTO_STR_MAX + 1];
    int rc = 0;

    ds__apply_cstr(m->u.one.kind == DS_PROTO_ONE_DELTA_FROM ? m->u.one.basis : m->u.one.path, name);
    ds_manifest_free(ap->man);
    ds_manifest_free(ap->hashed);
    ap->man = ap->hashed = NULL;
    if ((rc = ds_manifest_new(&ap->man)) < 0)
        return rc;
    if (rec->has_man)
        rc = ds_manifest_put(ap->man, name, rec->man.size, rec->man.mtime_ns, rec->man.sha256);
    if (rc == 0 && rec->has_hashed && (rc = ds_manifest_new(&ap->hashed)) == 0)
        rc = ds_manifest_put(ap->hashed, name, rec->hashed.size, rec->hashed.mtime_ns,
                             rec->hashed.sha256);
    return rc;
}

/* Applies one FILE_ONE sent by the receiver; its reply is queued. */
static int helper_one(ds_apply_t *ap, const struct fan_rec *rec, const uint8_t *frame)
{
    ds_msg_t m;
    int rc = ds_proto_decode(frame, rec->frame_len, &m);

    if (rc < 0 || m.type != DS_MSG_FILE_ONE || rec->version < DS_PROTO_VERSION_ONE)
        return DS_EPROTO;
    ap->version = rec->version;
    ap->scopy_off |= rec->scopy_off;
    if (!ap->lease_lost) {
        ap->have_lease = 1;
        ap->lease_expiry = rec->lease_expiry;
        if (ap->lease_session != rec->lease_session)
            ap->lease_seen_ok = 0;
        ap->lease_session = rec->lease_session;
        memcpy(ap->lease_console, rec->console, sizeof(ap->lease_console));
        ap->lease_console[sizeof(ap->lease_console) - 1] = '\0';
    }
    if ((rc = ds__apply_state_dirs(ap)) < 0 || (rc = set_entries(ap, rec, &m)) < 0)
        return rc;
    rc = ds__apply_file_one(ap, &m);
    return rc < 0 ? rc : ds__apply_batch_flush(ap); /* a local file system batches commits */
}

int ds_apply_helper_serve(ds_apply_t *ap, int fd, char *err, size_t errlen)
{
    uint8_t *frame = NULL;
    int rc = 0;

    ap->helper = 1;
    ap->state = S_READY;
    for (;;) {
        struct fan_rec rec;
        const uint8_t *p;
        size_t len;

        rc = read_exact(fd, &rec, sizeof(rec));
        if (rc == 1) { /* the receiver is done */
            rc = 0;
            break;
        }
        if (rc == 0 && (rec.frame_len < DS_PROTO_HDR_LEN ||
                        rec.frame_len > DS_PROTO_HDR_LEN + DS_PROTO_MAX_PAYLOAD))
            rc = DS_EPROTO;
        if (rc == 0 && (frame = malloc(rec.frame_len)) == NULL)
            rc = DS_ENOMEM;
        if (rc == 0 && (rc = read_exact(fd, frame, rec.frame_len)) == 1)
            rc = DS_EPROTO;
        if (rc == 0)
            rc = helper_one(ap, &rec, frame);
        free(frame);
        frame = NULL;
        if (rc < 0 && ap->state != S_DEAD)
            rc =
                ds__apply_fatal(ap, 0, rc, "applying a file for the receiver: %s", ds_strerror(rc));
        ds_apply_output(ap, &p, &len);
        if (len > 0 && ds__apply_write_all(fd, p, len) == 0)
            ds_apply_output_consume(ap, len);
        if (rc < 0)
            break;
    }
    if (rc < 0)
        snprintf(err, errlen, "%s", ds_strerror(rc));
    return rc;
}

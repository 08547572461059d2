/*
 * Sender session: the public calls that queue requests and frames, and the
 * queues behind them. Requests that expect a reply sit in a FIFO (the
 * receiver answers in order); an early FILE_ERR (a file failing before its
 * commit) is the only reply that may name a request other than the FIFO
 * head. Reply dispatch and the byte pump live in session_recv.c.
 */
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "distsync/error.h"
#include "distsync/log.h"
#include "distsync/proto.h"
#include "distsync/session.h"
#include "distsync/version.h"
#include "session_int.h"

int ds__session_fail(ds_session_t *s, int rc, const char *fmt, ...)
{
    va_list ap;

    if (s->phase == DS_SESSION_FAILED)
        return s->rc;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
    s->phase = DS_SESSION_FAILED;
    s->rc = rc < 0 ? rc : DS_EPROTO;
    return s->rc;
}

int ds_session_new(ds_transport_t *t, const ds_session_opts_t *opts, ds_session_t **out)
{
    ds_session_t *s;

    *out = NULL;
    if (opts == NULL)
        return DS_EUSAGE;
    s = opts->console_id && opts->console_id[0] ? calloc(1, sizeof(*s)) : NULL;
    if (s == NULL) {
        if (opts->fetched_free) /* it owns fetched_arg from here on */
            opts->fetched_free(opts->fetched_arg);
        return opts->console_id && opts->console_id[0] ? DS_ENOMEM : DS_EUSAGE;
    }
    s->t = t;
    s->o = *opts;
    s->console_id = strdup(opts->console_id);
    s->host = strdup(opts->host ? opts->host : "");
    s->rbuf = malloc(READ_CHUNK);
    if (s->console_id == NULL || s->host == NULL || s->rbuf == NULL) {
        ds_session_free(s);
        return DS_ENOMEM;
    }
    if (s->o.lease_ttl_s == 0)
        s->o.lease_ttl_s = 300;
    if (s->o.window_files == 0)
        s->o.window_files = 64;
    if (s->o.out_high == 0)
        s->o.out_high = 16u << 20;
    if (s->o.zstd_level == 0)
        s->o.zstd_level = 3;
    s->frame = DATA_FRAME;
    s->high = s->o.out_high;
    s->next_fid = 1;
    if (ds__session_known_init(s) < 0) {
        ds_session_free(s);
        return DS_ENOMEM;
    }
    *out = s;
    return 0;
}

static void free_results(ds_session_t *s)
{
    for (size_t i = s->res_head; i < s->nres; i++) {
        free(s->res[i].path);
        free(s->res[i].msg);
        free(s->res[i].data);
    }
    free(s->res);
    free(s->cur_path);
    free(s->cur_msg);
    free(s->cur_data);
    ds_proto_buf_free(&s->sig_blob);
}

void ds_session_free(ds_session_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = s->pend_head; i < s->npend; i++)
        free(s->pend[i].path);
    for (size_t i = 0; i < s->nfiles; i++)
        free(s->files[i].path);
    while (s->lpaths) {
        struct lblock *b = s->lpaths;

        s->lpaths = b->next;
        free(b);
    }
    free_results(s);
    free(s->pend);
    free(s->fstart);
    free(s->files);
    free(s->list);
    ds_manifest_free(s->man);
    ds__session_mlog_clear(s);
    ds__session_predict_drop(s);
    ds_manifest_decoder_free(s->man_dec);
    ds_proto_unpacker_free(&s->unpack);
    ds_sha256_close(&s->man_hash);
    if (s->o.fetched_free)
        s->o.fetched_free(s->o.fetched_arg);
    ds_proto_buf_free(&s->out);
    ds_proto_buf_free(&s->in);
    ds_session_zctx_free(s->zx);
    free(s->rbuf);
    free(s->console_id);
    free(s->host);
    free(s);
}

/* ---- queues ---- */

int ds__session_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    size_t nc = *cap ? *cap : 16;
    void *np;

    if (need <= *cap)
        return 0;
    while (nc < need)
        nc *= 2;
    np = realloc(*p, nc * elem);
    if (np == NULL)
        return DS_ENOMEM;
    *p = np;
    *cap = nc;
    return 0;
}

char *ds__session_list_path(ds_session_t *s, const char *p, size_t n)
{
    struct lblock *b = s->lpaths;
    char *dst;

    if (b == NULL || b->cap - b->used < n + 1) {
        size_t cap = n + 1 > LIST_BLOCK ? n + 1 : LIST_BLOCK;

        b = malloc(sizeof(*b) + cap);
        if (b == NULL)
            return NULL;
        b->next = s->lpaths;
        b->used = 0;
        b->cap = cap;
        s->lpaths = b;
    }
    dst = b->data + b->used;
    memcpy(dst, p, n);
    dst[n] = '\0';
    b->used += n + 1;
    return dst;
}

/* Drops consumed FIFO slots when the head has moved far. */
static void compact_pend(ds_session_t *s)
{
    if (s->pend_head == 0 || s->pend_head < s->npend / 2)
        return;
    memmove(s->pend, s->pend + s->pend_head, (s->npend - s->pend_head) * sizeof(*s->pend));
    s->npend -= s->pend_head;
    s->pend_head = 0;
}

uint64_t ds__session_queue_end(const ds_session_t *s)
{
    return s->st.bytes_out + (s->out.len - s->out_off);
}

/* Records where the next frame starts; forgets the starts already on the
 * wire. 0 or DS_ENOMEM. */
static int note_frame(ds_session_t *s, uint64_t at)
{
    while (s->fs_head < s->nfs && s->fstart[s->fs_head] < s->st.bytes_out)
        s->fs_head++;
    if (s->fs_head > 0 && s->fs_head >= s->nfs / 2) {
        memmove(s->fstart, s->fstart + s->fs_head, (s->nfs - s->fs_head) * sizeof(*s->fstart));
        s->nfs -= s->fs_head;
        s->fs_head = 0;
    }
    if (ds__session_grow((void **)&s->fstart, &s->fs_cap, s->nfs + 1, sizeof(*s->fstart)) < 0)
        return DS_ENOMEM;
    s->fstart[s->nfs++] = at;
    return 0;
}

/* Encodes m with a new id; when want_reply, records it in the FIFO. */
int ds__session_send(ds_session_t *s, ds_msg_t *m, int want_reply, uint64_t tag, uint32_t fid,
                     const char *path)
{
    uint64_t at = ds__session_queue_end(s);
    struct pend *p;
    int rc;

    m->id = ++s->next_id;
    if (note_frame(s, at) < 0)
        return DS_ENOMEM;
    rc = ds_proto_encode(&s->out, m);
    if (rc < 0 || !want_reply)
        return rc;
    compact_pend(s);
    if (ds__session_grow((void **)&s->pend, &s->pend_cap, s->npend + 1, sizeof(*s->pend)) < 0)
        return DS_ENOMEM;
    p = &s->pend[s->npend];
    memset(p, 0, sizeof(*p));
    p->id = m->id;
    p->type = m->type;
    p->tag = tag;
    p->fid = fid;
    p->at = at;
    if (path != NULL && (p->path = strdup(path)) == NULL)
        return DS_ENOMEM;
    s->npend++;
    return 0;
}

int ds__session_push_result(ds_session_t *s, const ds_session_result_t *r, const char *path,
                            const char *msg)
{
    struct result *x;

    if (s->res_head > 0 && s->res_head == s->nres)
        s->res_head = s->nres = 0;
    if (ds__session_grow((void **)&s->res, &s->res_cap, s->nres + 1, sizeof(*s->res)) < 0)
        return DS_ENOMEM;
    x = &s->res[s->nres];
    x->r = *r;
    x->path = strdup(path ? path : "");
    x->msg = strdup(msg ? msg : "");
    x->data = NULL;
    if (x->path == NULL || x->msg == NULL) {
        free(x->path);
        free(x->msg);
        return DS_ENOMEM;
    }
    s->nres++;
    return 0;
}

int ds_session_next_result(ds_session_t *s, ds_session_result_t *r)
{
    struct result *x;

    if (s->res_head >= s->nres)
        return 0;
    x = &s->res[s->res_head++];
    free(s->cur_path);
    free(s->cur_msg);
    free(s->cur_data);
    s->cur_path = x->path;
    s->cur_msg = x->msg;
    s->cur_data = x->data;
    *r = x->r;
    r->path = s->cur_path;
    r->message = s->cur_msg;
    r->data = s->cur_data;
    return 1;
}

struct sfile *ds__session_find_file(const ds_session_t *s, uint32_t fid)
{
    for (size_t i = 0; i < s->nfiles; i++)
        if (s->files[i].fid == fid)
            return &s->files[i];
    return NULL;
}

void ds__session_drop_file(ds_session_t *s, struct sfile *f)
{
    free(f->path);
    *f = s->files[--s->nfiles];
}

/* ---- public queueing calls ---- */

static int need_ready(ds_session_t *s)
{
    if (s->phase == DS_SESSION_FAILED)
        return s->rc;
    return s->phase == DS_SESSION_READY ? 0 : DS_EUSAGE;
}

unsigned ds__session_min_version(const ds_session_t *s)
{
    return s->pipelined ? DS_PROTO_VERSION_COND : DS_PROTO_VERSION_MIN;
}

int ds_session_start(ds_session_t *s)
{
    ds_msg_t m = {.type = DS_MSG_HELLO};
    int rc;

    m.u.hello.magic = DS_PROTO_MAGIC;
    /* pipelined: the digests that follow need version 4; an older receiver
     * refuses this HELLO and ignores the rest (ds_session_refused) */
    m.u.hello.min_version = (uint16_t)ds__session_min_version(s);
    m.u.hello.max_version = DS_PROTO_VERSION_MAX;
    m.u.hello.console_id = ds_pstr(s->console_id);
    m.u.hello.software = ds_pstr("distsync " DS_VERSION_STRING);
    rc = ds__session_send(s, &m, 1, 0, 0, NULL);
    if (rc == 0 && s->o.write) {
        ds_msg_t l = {.type = DS_MSG_LEASE};

        l.u.lease.op = DS_LEASE_OP_ACQUIRE;
        l.u.lease.console_id = ds_pstr(s->console_id);
        l.u.lease.pid = s->o.pid;
        l.u.lease.host = ds_pstr(s->host);
        l.u.lease.ttl_s = s->o.lease_ttl_s;
        rc = ds__session_send(s, &l, 1, 0, 0, NULL);
    }
    if (rc == 0 && !s->fetch_deferred)
        rc = ds__session_queue_fetch(s);
    return rc;
}

/* A request of type that names only path (HASH, DELETE), once READY. */
static int path_request(ds_session_t *s, uint8_t type, const char *path, uint64_t tag)
{
    ds_msg_t m = {.type = type};
    int rc = need_ready(s);

    if (rc < 0)
        return rc;
    m.u.path.path = ds_pstr(path);
    return ds__session_send(s, &m, 1, tag, 0, path);
}

int ds_session_hash(ds_session_t *s, const char *path, uint64_t tag)
{
    return path_request(s, DS_MSG_HASH, path, tag);
}

uint64_t ds_session_sig_max(uint64_t size, uint32_t block_len, uint8_t strong_len)
{
    uint64_t blocks = block_len ? size / block_len + (size % block_len != 0) : 0;

    return 12 + blocks * (4u + strong_len); /* magic, block and strong lengths; per block */
}

int ds_session_sig(ds_session_t *s, const char *path, uint64_t size, uint32_t block_len,
                   uint8_t strong_len, uint64_t tag)
{
    ds_msg_t m = {.type = DS_MSG_SIG};
    int rc = need_ready(s);

    if (rc < 0)
        return rc;
    m.u.sig.path = ds_pstr(path);
    m.u.sig.block_len = block_len;
    m.u.sig.strong_len = strong_len;
    rc = ds__session_send(s, &m, 1, tag, 0, path);
    if (rc == 0)
        s->pend[s->npend - 1].max_len = ds_session_sig_max(size, block_len, strong_len);
    return rc;
}

int ds_session_file_begin(ds_session_t *s, const char *path, uint64_t size, uint32_t mode,
                          int64_t mtime_ns, uint64_t tag, uint32_t *fid)
{
    ds_msg_t m = {.type = DS_MSG_FILE_BEGIN};
    struct sfile *f;
    int rc = need_ready(s);

    if (rc < 0)
        return rc;
    if (ds__session_grow((void **)&s->files, &s->files_cap, s->nfiles + 1, sizeof(*s->files)) < 0)
        return DS_ENOMEM;
    f = &s->files[s->nfiles];
    memset(f, 0, sizeof(*f));
    f->fid = s->next_fid++;
    f->tag = tag;
    f->begin_at = ds__session_queue_end(s);
    f->path = strdup(path);
    if (f->path == NULL)
        return DS_ENOMEM;
    s->nfiles++;
    m.u.begin.file_id = f->fid;
    m.u.begin.path = ds_pstr(path);
    m.u.begin.size = size;
    m.u.begin.mode = mode;
    m.u.begin.mtime_ns = mtime_ns;
    *fid = f->fid;
    return ds__session_send(s, &m, 0, tag, f->fid, NULL);
}

int ds_session_frame_level(const ds_session_t *s, uint32_t fid, size_t n)
{
    const struct sfile *f = ds__session_find_file(s, fid);

    if (s->o.zstd_level < 0 || n < 512 || (f && f->nocomp))
        return -1;
    return s->o.zstd_level;
}

int ds_session_file_frame(ds_session_t *s, uint32_t fid, const char *basis, const void *raw,
                          size_t n, const void *z, size_t zlen, int tried)
{
    ds_msg_t m = {.type = basis ? DS_MSG_DELTA : DS_MSG_LITERAL};
    struct sfile *f = ds__session_find_file(s, fid);
    int rc = need_ready(s);

    if (rc < 0)
        return rc;
    if (n > DATA_FRAME)
        return DS_EUSAGE;
    if (tried && zlen == 0 && f && !f->paid && (f->unpaid += n) >= NOCOMP_AFTER)
        f->nocomp = 1; /* incompressible: do not pay zstd for the rest */
    if (zlen > 0 && f)
        f->paid = 1;
    m.u.data.file_id = fid;
    m.u.data.basis = ds_pstr(basis);
    m.u.data.raw_len = (uint32_t)n;
    m.u.data.comp = zlen ? DS_PROTO_COMP_ZSTD : DS_PROTO_COMP_NONE;
    m.u.data.data = zlen ? z : raw;
    m.u.data.data_len = (uint32_t)(zlen ? zlen : n);
    rc = ds__session_send(s, &m, 0, 0, fid, NULL);
    if (rc < 0)
        return rc;
    if (basis) {
        s->st.delta_raw += n;
        s->st.delta_wire += m.u.data.data_len;
    } else {
        s->st.literal_raw += n;
        s->st.literal_wire += m.u.data.data_len;
    }
    return 0;
}

int ds_session_file_data(ds_session_t *s, uint32_t fid, const char *basis, const void *p, size_t n)
{
    const uint8_t *b = p;
    int rc = need_ready(s);

    if (rc < 0)
        return rc;
    while (n > 0) {
        size_t k = n > s->frame ? s->frame : n, z = 0;
        int level = ds_session_frame_level(s, fid, k);
        const uint8_t *zp = NULL;

        if (level >= 0 && s->zx == NULL && ds_session_zctx_new(&s->zx) < 0)
            level = -1;
        if (level >= 0)
            z = ds_session_zstd(s->o.zcache, s->zx, level, b, k, &zp);
        rc = ds_session_file_frame(s, fid, basis, b, k, zp, z, level >= 0);
        if (rc < 0)
            return rc;
        b += k;
        n -= k;
    }
    return 0;
}

int ds_session_file_one(ds_session_t *s, const ds_session_one_t *o, uint64_t tag)
{
    ds_msg_t m = {.type = DS_MSG_FILE_ONE};
    int rc = need_ready(s);

    if (rc < 0)
        return rc;
    if (s->version < DS_PROTO_VERSION_ONE || o->n > DATA_FRAME)
        return DS_EUSAGE;
    m.u.one.path = ds_pstr(o->path);
    m.u.one.size = o->size;
    m.u.one.mode = o->mode;
    m.u.one.mtime_ns = o->mtime_ns;
    m.u.one.kind = o->basis == NULL                 ? DS_PROTO_ONE_LITERAL
                   : strcmp(o->basis, o->path) == 0 ? DS_PROTO_ONE_DELTA_SELF
                                                    : DS_PROTO_ONE_DELTA_FROM;
    m.u.one.basis = ds_pstr(o->basis ? o->basis : "");
    memcpy(m.u.one.sha256, o->sha256, DS_SHA256_LEN);
    m.u.one.raw_len = (uint32_t)o->n;
    m.u.one.comp = o->zlen ? DS_PROTO_COMP_ZSTD : DS_PROTO_COMP_NONE;
    m.u.one.data = o->zlen ? o->z : o->raw;
    m.u.one.data_len = (uint32_t)(o->zlen ? o->zlen : o->n);
    rc = ds__session_send(s, &m, 1, tag, 0, o->path);
    if (rc < 0)
        return rc;
    s->nones++;
    s->pend[s->npend - 1].size = o->size;
    memcpy(s->pend[s->npend - 1].sha256, o->sha256, DS_SHA256_LEN);
    if (o->basis) {
        s->st.delta_raw += o->n;
        s->st.delta_wire += m.u.one.data_len;
    } else {
        s->st.literal_raw += o->n;
        s->st.literal_wire += m.u.one.data_len;
    }
    return 0;
}

int ds_session_file_copy(ds_session_t *s, uint32_t fid, const char *basis, uint64_t off,
                         uint64_t len)
{
    ds_msg_t m = {.type = DS_MSG_COPY};
    int rc = need_ready(s);

    if (rc < 0)
        return rc;
    m.u.copy.file_id = fid;
    m.u.copy.basis = ds_pstr(basis);
    m.u.copy.offset = off;
    m.u.copy.length = len;
    s->st.copy_bytes += len;
    return ds__session_send(s, &m, 0, 0, fid, NULL);
}

int ds_session_file_delta_end(ds_session_t *s, uint32_t fid)
{
    ds_msg_t m = {.type = DS_MSG_DELTA_END};
    int rc = need_ready(s);

    if (rc < 0)
        return rc;
    m.u.file.file_id = fid;
    return ds__session_send(s, &m, 0, 0, fid, NULL);
}

static int file_end(ds_session_t *s, ds_msg_t *m, uint32_t fid, int ctl)
{
    struct sfile *f = ds__session_find_file(s, fid);
    int rc = need_ready(s);

    if (rc < 0)
        return rc;
    if (f == NULL || f->committed)
        return DS_EUSAGE;
    f->committed = 1;
    if (ctl)
        return ds__session_send_ctl(s, m, 1, f->tag, fid, f->path);
    return ds__session_send(s, m, 1, f->tag, fid, f->path);
}

int ds_session_file_commit(ds_session_t *s, uint32_t fid, uint64_t size,
                           const uint8_t sha256[DS_SHA256_LEN])
{
    ds_msg_t m = {.type = DS_MSG_FILE_COMMIT};

    m.u.commit.file_id = fid;
    m.u.commit.size = size;
    memcpy(m.u.commit.sha256, sha256, DS_SHA256_LEN);
    return file_end(s, &m, fid, 0);
}

int ds_session_file_abort(ds_session_t *s, uint32_t fid)
{
    ds_msg_t m = {.type = DS_MSG_FILE_ABORT};

    m.u.file.file_id = fid;
    return file_end(s, &m, fid, 0);
}

int ds__session_abort_ctl(ds_session_t *s, uint32_t fid)
{
    ds_msg_t m = {.type = DS_MSG_FILE_ABORT};

    m.u.file.file_id = fid;
    return file_end(s, &m, fid, 1);
}

int ds_session_file_failed(const ds_session_t *s, uint32_t fid)
{
    const struct sfile *f = ds__session_find_file(s, fid);

    return f != NULL && f->failed;
}

int ds_session_adopt(ds_session_t *s, const char *path, uint64_t size, int64_t mtime_ns,
                     const uint8_t sha256[DS_SHA256_LEN], uint64_t tag)
{
    ds_msg_t m = {.type = DS_MSG_ADOPT};
    int rc = need_ready(s);

    if (rc < 0)
        return rc;
    if (s->version < DS_PROTO_VERSION_ADOPT)
        return DS_EUSAGE;
    m.u.adopt.path = ds_pstr(path);
    m.u.adopt.size = size;
    m.u.adopt.mtime_ns = mtime_ns;
    memcpy(m.u.adopt.sha256, sha256, DS_SHA256_LEN);
    return ds__session_send(s, &m, 1, tag, 0, path);
}

int ds_session_delete(ds_session_t *s, const char *path, uint64_t tag)
{
    return path_request(s, DS_MSG_DELETE, path, tag);
}

int ds_session_commit_manifest(ds_session_t *s)
{
    ds_msg_t m = {.type = DS_MSG_MANIFEST_COMMIT};
    int rc = need_ready(s);

    if (rc == 0 && (rc = ds__session_send(s, &m, 1, 0, 0, NULL)) == 0)
        s->commit_pending = 1;
    return rc;
}

int ds_session_refresh_manifest(ds_session_t *s)
{
    int rc = need_ready(s);

    if (rc < 0)
        return rc;
    ds_manifest_decoder_free(s->man_dec);
    s->man_dec = NULL;
    if (s->commit_pending == 1) { /* queued behind the commit: predicted now */
        ds__session_predict(s, DS__SESSION_COUNT_ANY);
        s->commit_pending = 2;
    }
    return ds__session_manifest_get(s, 1);
}

int ds_session_close(ds_session_t *s)
{
    ds_msg_t bye = {.type = DS_MSG_BYE};
    int rc = 0;

    if (s->phase == DS_SESSION_FAILED)
        return s->rc;
    if (s->phase >= DS_SESSION_CLOSING)
        return 0;
    if (s->o.write && s->lease_ok) {
        ds_msg_t l = {.type = DS_MSG_LEASE};

        l.u.lease.op = DS_LEASE_OP_RELEASE;
        l.u.lease.console_id = ds_pstr(s->console_id);
        l.u.lease.pid = s->o.pid;
        l.u.lease.host = ds_pstr(s->host);
        rc = ds__session_send(s, &l, 1, 0, 0, NULL);
    }
    if (rc == 0)
        rc = ds__session_send(s, &bye, 1, 0, 0, NULL);
    if (rc == 0)
        s->phase = DS_SESSION_CLOSING;
    return rc;
}

/* ---- state queries ---- */

unsigned ds_session_version(const ds_session_t *s)
{
    return s->version;
}

int ds_session_remote_basis(const ds_session_t *s)
{
    return s->o.remote_basis;
}

ds_session_phase_t ds_session_phase(const ds_session_t *s)
{
    return (ds_session_phase_t)s->phase;
}

const char *ds_session_error(const ds_session_t *s)
{
    return s->err;
}

int ds_session_busy(const ds_session_t *s)
{
    return s->busy;
}

const ds_manifest_t *ds_session_manifest(const ds_session_t *s)
{
    return s->man;
}

void ds_session_listing(const ds_session_t *s, const ds_session_entry_t **e, size_t *n)
{
    *e = s->list;
    *n = s->nlist;
}

size_t ds_session_unsent(const ds_session_t *s)
{
    return s->out.len - s->out_off;
}

/* FILE_ONEs in flight to a receiver whose every file operation crosses
 * the WAN (remote_basis: the SMB worker, one file at a time, several
 * round trips each). Only the queued bytes bound them elsewhere, and small
 * deltas are a few hundred bytes: a lease renewal queued behind hundreds
 * of them reached the worker minutes later, after its lease had expired
 * ("FILE_BEGIN without a valid lease" for every later file). */
#define REMOTE_ONES 4

int ds_session_room(const ds_session_t *s)
{
    return s->phase == DS_SESSION_READY && s->nfiles < s->o.window_files &&
           (!s->o.remote_basis ||
            s->nones < REMOTE_ONES * (s->o.remote_conns ? s->o.remote_conns : 1)) &&
           s->out.len - s->out_off < s->high;
}

/* a, clamped to lo .. hi (hi wins when lo > hi). */
static uint64_t clamp(uint64_t a, uint64_t lo, uint64_t hi)
{
    a = a < lo ? lo : a;
    return a > hi ? hi : a;
}

int ds_session_set_rate(ds_session_t *s, uint64_t bytes_per_s)
{
    if (bytes_per_s == 0) {
        s->frame = DATA_FRAME;
        s->high = s->o.out_high;
        return 0;
    }
    /* about 2 s of the rate queued and 0.5 s per frame: a control frame
     * waits at most one frame, a paused link holds little */
    s->high = (size_t)clamp(bytes_per_s > UINT64_MAX / 2 ? UINT64_MAX : bytes_per_s * 2, HIGH_MIN,
                            s->o.out_high);
    s->frame = (size_t)clamp(bytes_per_s / 2, FRAME_MIN, DATA_FRAME);
    return 0;
}

size_t ds_session_data_block(const ds_session_t *s)
{
    return s->frame;
}

size_t ds_session_ctl_pending(const ds_session_t *s)
{
    return s->ctl_end > s->st.bytes_out ? (size_t)(s->ctl_end - s->st.bytes_out) : 0;
}

int ds_session_idle(const ds_session_t *s)
{
    return s->pend_head == s->npend && s->out.len == s->out_off;
}

const char *ds_session_waiting_for(const ds_session_t *s)
{
    if (s->pend_head < s->npend)
        return ds_proto_type_name(s->pend[s->pend_head].type);
    return s->out.len > s->out_off ? "sending" : "idle";
}

const ds_session_stats_t *ds_session_stats(const ds_session_t *s)
{
    return &s->st;
}

int ds_session_poll(const ds_session_t *s, int *rfd, int *wfd, short *wevents)
{
    unsigned w = ds_transport_waits(s->t, s->out.len > s->out_off);

    ds_transport_fds(s->t, rfd, wfd);
    *wevents = w & DS_TRANSPORT_WAIT_WRITE ? POLLOUT : 0;
    if (*rfd < 0 && *wfd < 0)
        return 1;
    if (!(w & DS_TRANSPORT_WAIT_READ))
        *rfd = -1;
    return 0;
}

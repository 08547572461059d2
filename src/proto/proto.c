/* Apply protocol frame codec: bounds-checked, pure, no I/O. See PROTOCOL.md. */
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/proto.h"

/* ---- growable buffer ---- */

int ds_proto_buf_reserve(ds_proto_buf_t *b, size_t n)
{
    size_t cap;
    uint8_t *p;

    if (n <= b->cap - b->len)
        return 0;
    if (n > SIZE_MAX / 2 - b->len)
        return DS_ENOMEM;
    cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n)
        cap *= 2;
    p = realloc(b->p, cap);
    if (p == NULL)
        return DS_ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int ds_proto_buf_append(ds_proto_buf_t *b, const void *p, size_t n)
{
    int rc = ds_proto_buf_reserve(b, n);

    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

void ds_proto_buf_consume(ds_proto_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

void ds_proto_buf_free(ds_proto_buf_t *b)
{
    if (b == NULL)
        return;
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

ds_pstr_t ds_pstr(const char *s)
{
    ds_pstr_t r = {s ? s : "", 0};
    size_t n = s ? strlen(s) : 0;

    r.n = (uint16_t)(n > DS_PROTO_STR_MAX ? DS_PROTO_STR_MAX : n);
    return r;
}

/* ---- reader: every get checks the remaining length ---- */

struct rd {
    const uint8_t *p;
    size_t n;
    int bad;
};

static const uint8_t *take(struct rd *r, size_t n)
{
    const uint8_t *p;

    if (r->bad || r->n < n) {
        r->bad = 1;
        return NULL;
    }
    p = r->p;
    r->p += n;
    r->n -= n;
    return p;
}

static uint64_t get_be(struct rd *r, size_t n)
{
    const uint8_t *p = take(r, n);
    uint64_t v = 0;

    if (p == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

#define get_u8(r)  ((uint8_t)get_be(r, 1))
#define get_u16(r) ((uint16_t)get_be(r, 2))
#define get_u32(r) ((uint32_t)get_be(r, 4))
#define get_u64(r) (get_be(r, 8))
#define get_i64(r) ((int64_t)get_be(r, 8))

static ds_pstr_t get_str(struct rd *r)
{
    ds_pstr_t s = {"", 0};
    uint16_t n = get_u16(r);
    const uint8_t *p;

    if (n > DS_PROTO_STR_MAX) {
        r->bad = 1;
        return s;
    }
    p = take(r, n);
    if (p == NULL || memchr(p, '\0', n) != NULL) {
        r->bad = 1;
        return s;
    }
    s.p = (const char *)p;
    s.n = n;
    return s;
}

static void get_raw(struct rd *r, uint8_t *out, size_t n)
{
    const uint8_t *p = take(r, n);

    if (p)
        memcpy(out, p, n);
}

/* ---- writer: appends to a buffer, remembers the first failure ---- */

struct wr {
    ds_proto_buf_t *b;
    int rc;
};

static void put_be(struct wr *w, uint64_t v, size_t n)
{
    uint8_t tmp[8];

    for (size_t i = 0; i < n; i++)
        tmp[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    if (w->rc == 0)
        w->rc = ds_proto_buf_append(w->b, tmp, n);
}

static void put_raw(struct wr *w, const void *p, size_t n)
{
    if (w->rc == 0)
        w->rc = ds_proto_buf_append(w->b, p, n);
}

static void put_str(struct wr *w, ds_pstr_t s)
{
    if (s.n > DS_PROTO_STR_MAX || (s.n && memchr(s.p, '\0', s.n) != NULL)) {
        if (w->rc == 0)
            w->rc = DS_EPROTO;
        return;
    }
    put_be(w, s.n, 2);
    put_raw(w, s.p, s.n);
}

/* ---- frames ---- */

static int known_type(uint8_t t)
{
    switch (t) {
    case DS_MSG_HELLO:
    case DS_MSG_LEASE:
    case DS_MSG_MANIFEST_GET:
    case DS_MSG_LIST:
    case DS_MSG_HASH:
    case DS_MSG_SIG:
    case DS_MSG_FILE_BEGIN:
    case DS_MSG_COPY:
    case DS_MSG_LITERAL:
    case DS_MSG_DELTA:
    case DS_MSG_DELTA_END:
    case DS_MSG_FILE_COMMIT:
    case DS_MSG_FILE_ABORT:
    case DS_MSG_ADOPT:
    case DS_MSG_FILE_ONE:
    case DS_MSG_DELETE:
    case DS_MSG_MANIFEST_COMMIT:
    case DS_MSG_BYE:
    case DS_MSG_HELLO_OK:
    case DS_MSG_LEASE_OK:
    case DS_MSG_BUSY:
    case DS_MSG_MANIFEST_DATA:
    case DS_MSG_LIST_DATA:
    case DS_MSG_HASH_OK:
    case DS_MSG_FILE_OK:
    case DS_MSG_FILE_ERR:
    case DS_MSG_OK:
    case DS_MSG_ERR:
    case DS_MSG_SIG_DATA:
    case DS_MSG_MANIFEST_SAME:
    case DS_MSG_LIST_SAME:
    case DS_MSG_FILE_DONE:
        return 1;
    default:
        return 0;
    }
}

const char *ds_proto_type_name(uint8_t type)
{
    static const struct {
        uint8_t t;
        const char *n;
    } names[] = {
        {DS_MSG_HELLO, "HELLO"},
        {DS_MSG_LEASE, "LEASE"},
        {DS_MSG_MANIFEST_GET, "MANIFEST_GET"},
        {DS_MSG_LIST, "LIST"},
        {DS_MSG_HASH, "HASH"},
        {DS_MSG_SIG, "SIG"},
        {DS_MSG_FILE_BEGIN, "FILE_BEGIN"},
        {DS_MSG_COPY, "COPY"},
        {DS_MSG_LITERAL, "LITERAL"},
        {DS_MSG_DELTA, "DELTA"},
        {DS_MSG_DELTA_END, "DELTA_END"},
        {DS_MSG_FILE_COMMIT, "FILE_COMMIT"},
        {DS_MSG_ADOPT, "ADOPT"},
        {DS_MSG_FILE_ONE, "FILE_ONE"},
        {DS_MSG_FILE_ABORT, "FILE_ABORT"},
        {DS_MSG_DELETE, "DELETE"},
        {DS_MSG_MANIFEST_COMMIT, "MANIFEST_COMMIT"},
        {DS_MSG_BYE, "BYE"},
        {DS_MSG_HELLO_OK, "HELLO_OK"},
        {DS_MSG_LEASE_OK, "LEASE_OK"},
        {DS_MSG_BUSY, "BUSY"},
        {DS_MSG_MANIFEST_DATA, "MANIFEST_DATA"},
        {DS_MSG_LIST_DATA, "LIST_DATA"},
        {DS_MSG_HASH_OK, "HASH_OK"},
        {DS_MSG_FILE_OK, "FILE_OK"},
        {DS_MSG_FILE_ERR, "FILE_ERR"},
        {DS_MSG_OK, "OK"},
        {DS_MSG_ERR, "ERR"},
        {DS_MSG_SIG_DATA, "SIG_DATA"},
        {DS_MSG_MANIFEST_SAME, "MANIFEST_SAME"},
        {DS_MSG_LIST_SAME, "LIST_SAME"},
        {DS_MSG_FILE_DONE, "FILE_DONE"},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].t == type)
            return names[i].n;
    return "?";
}

long ds_proto_frame_len(const uint8_t *buf, size_t len)
{
    uint32_t plen;

    if (len < DS_PROTO_HDR_LEN)
        return 0;
    plen = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
    if (plen > DS_PROTO_MAX_PAYLOAD || !known_type(buf[4]) || (buf[5] & ~0x07) != 0 ||
        buf[6] != 0 || buf[7] != 0)
        return DS_EPROTO;
    if ((buf[5] & DS_PROTO_F_PACKED) && buf[4] != DS_MSG_MANIFEST_DATA &&
        buf[4] != DS_MSG_LIST_DATA)
        return DS_EPROTO;
    if (len - DS_PROTO_HDR_LEN < plen)
        return 0;
    return (long)(DS_PROTO_HDR_LEN + plen);
}

static void decode_data(struct rd *r, ds_msg_t *m, int delta)
{
    m->u.data.file_id = get_u32(r);
    if (delta)
        m->u.data.basis = get_str(r);
    m->u.data.comp = get_u8(r);
    m->u.data.raw_len = get_u32(r);
    m->u.data.data = r->p;
    m->u.data.data_len = (uint32_t)r->n;
    take(r, r->n);
    if (m->u.data.comp > DS_PROTO_COMP_ZSTD || m->u.data.raw_len > DS_PROTO_MAX_DATA ||
        (m->u.data.comp == DS_PROTO_COMP_NONE && m->u.data.raw_len != m->u.data.data_len))
        r->bad = 1;
}

/* FILE_ONE (version 6). */
static void decode_one(struct rd *r, ds_msg_t *m)
{
    m->u.one.path = get_str(r);
    m->u.one.size = get_u64(r);
    m->u.one.mode = get_u32(r);
    m->u.one.mtime_ns = get_i64(r);
    m->u.one.kind = get_u8(r);
    if (m->u.one.kind == DS_PROTO_ONE_DELTA_FROM)
        m->u.one.basis = get_str(r);
    get_raw(r, m->u.one.sha256, DS_SHA256_LEN);
    m->u.one.comp = get_u8(r);
    m->u.one.raw_len = get_u32(r);
    m->u.one.data = r->p;
    m->u.one.data_len = (uint32_t)r->n;
    take(r, r->n);
    if (m->u.one.kind > DS_PROTO_ONE_DELTA_FROM || m->u.one.comp > DS_PROTO_COMP_ZSTD ||
        m->u.one.raw_len > DS_PROTO_MAX_DATA ||
        (m->u.one.comp == DS_PROTO_COMP_NONE && m->u.one.raw_len != m->u.one.data_len))
        r->bad = 1;
}

/* LIST, MANIFEST_GET (version 4): the optional SHA-256 of the console's copy. */
static void get_known(struct rd *r, ds_msg_t *m)
{
    m->u.path.has_known = 1;
    get_raw(r, m->u.path.known, DS_SHA256_LEN);
}

/* MANIFEST_DATA, LIST_DATA with DS_PROTO_F_PACKED (version 4). */
static void decode_packed(struct rd *r, ds_msg_t *m)
{
    m->u.packed.comp = get_u8(r);
    m->u.packed.raw_len = get_u32(r);
    m->u.packed.data = r->p;
    m->u.packed.data_len = (uint32_t)r->n;
    take(r, r->n);
    if (m->u.packed.comp > DS_PROTO_COMP_ZSTD || m->u.packed.raw_len > DS_PROTO_MAX_DATA ||
        (m->u.packed.comp == DS_PROTO_COMP_NONE && m->u.packed.raw_len != m->u.packed.data_len))
        r->bad = 1;
}

static void decode_requests(struct rd *r, ds_msg_t *m)
{
    switch (m->type) {
    case DS_MSG_HELLO:
        m->u.hello.magic = get_u32(r);
        m->u.hello.min_version = get_u16(r);
        m->u.hello.max_version = get_u16(r);
        m->u.hello.console_id = get_str(r);
        m->u.hello.software = get_str(r);
        break;
    case DS_MSG_LEASE:
        m->u.lease.op = get_u8(r);
        m->u.lease.console_id = get_str(r);
        m->u.lease.pid = get_u32(r);
        m->u.lease.host = get_str(r);
        m->u.lease.ttl_s = get_u32(r);
        if (m->u.lease.op < DS_LEASE_OP_ACQUIRE || m->u.lease.op > DS_LEASE_OP_RELEASE)
            r->bad = 1;
        break;
    case DS_MSG_LIST:
    case DS_MSG_HASH:
    case DS_MSG_DELETE:
        m->u.path.path = get_str(r);
        if (m->type == DS_MSG_LIST && r->n > 0)
            get_known(r, m);
        break;
    case DS_MSG_MANIFEST_GET:
        if (r->n > 0)
            get_known(r, m);
        break;
    case DS_MSG_SIG:
        m->u.sig.path = get_str(r);
        m->u.sig.block_len = get_u32(r);
        m->u.sig.strong_len = get_u8(r);
        break;
    case DS_MSG_FILE_BEGIN:
        m->u.begin.file_id = get_u32(r);
        m->u.begin.path = get_str(r);
        m->u.begin.size = get_u64(r);
        m->u.begin.mode = get_u32(r);
        m->u.begin.mtime_ns = get_i64(r);
        break;
    case DS_MSG_ADOPT:
        m->u.adopt.path = get_str(r);
        m->u.adopt.size = get_u64(r);
        m->u.adopt.mtime_ns = get_i64(r);
        get_raw(r, m->u.adopt.sha256, DS_SHA256_LEN);
        break;
    case DS_MSG_FILE_ONE:
        decode_one(r, m);
        break;
    case DS_MSG_COPY:
        m->u.copy.file_id = get_u32(r);
        m->u.copy.basis = get_str(r);
        m->u.copy.offset = get_u64(r);
        m->u.copy.length = get_u64(r);
        break;
    case DS_MSG_LITERAL:
    case DS_MSG_DELTA:
        decode_data(r, m, m->type == DS_MSG_DELTA);
        break;
    case DS_MSG_DELTA_END:
    case DS_MSG_FILE_ABORT:
        m->u.file.file_id = get_u32(r);
        break;
    case DS_MSG_FILE_COMMIT:
        m->u.commit.file_id = get_u32(r);
        m->u.commit.size = get_u64(r);
        get_raw(r, m->u.commit.sha256, DS_SHA256_LEN);
        break;
    default: /* MANIFEST_GET, MANIFEST_COMMIT, BYE: empty */
        break;
    }
}

static void decode_replies(struct rd *r, ds_msg_t *m)
{
    if (m->flags & DS_PROTO_F_PACKED) {
        decode_packed(r, m);
        return;
    }
    switch (m->type) {
    case DS_MSG_HELLO_OK:
        m->u.hello_ok.version = get_u16(r);
        m->u.hello_ok.software = get_str(r);
        m->u.hello_ok.max_payload = get_u32(r);
        m->u.hello_ok.max_open_files = get_u32(r);
        break;
    case DS_MSG_LEASE_OK:
        m->u.lease_ok.expiry = get_i64(r);
        m->u.lease_ok.tmp_cleaned = get_u32(r);
        break;
    case DS_MSG_BUSY:
        m->u.busy.console_id = get_str(r);
        m->u.busy.pid = get_u32(r);
        m->u.busy.host = get_str(r);
        m->u.busy.expiry = get_i64(r);
        m->u.busy.message = get_str(r);
        break;
    case DS_MSG_MANIFEST_DATA:
    case DS_MSG_SIG_DATA:
        m->u.blob.data = r->p;
        m->u.blob.len = (uint32_t)r->n;
        take(r, r->n);
        break;
    case DS_MSG_LIST_DATA: {
        const uint8_t *p;
        size_t n;
        ds_list_entry_t e;
        uint32_t count = 0;
        int rc;

        m->u.list.n = get_u32(r);
        p = m->u.list.entries = r->p;
        n = m->u.list.len = (uint32_t)r->n;
        take(r, r->n);
        while ((rc = ds_proto_list_next(&p, &n, &e)) == 1)
            count++;
        if (rc < 0 || count != m->u.list.n)
            r->bad = 1;
        break;
    }
    case DS_MSG_HASH_OK:
        m->u.hash_ok.path = get_str(r);
        m->u.hash_ok.size = get_u64(r);
        m->u.hash_ok.mtime_ns = get_i64(r);
        get_raw(r, m->u.hash_ok.sha256, DS_SHA256_LEN);
        break;
    case DS_MSG_FILE_OK:
        m->u.file_ok.file_id = get_u32(r);
        m->u.file_ok.size = get_u64(r);
        m->u.file_ok.mtime_ns = get_i64(r);
        get_raw(r, m->u.file_ok.sha256, DS_SHA256_LEN);
        break;
    case DS_MSG_FILE_ERR:
    case DS_MSG_ERR:
        if (m->type == DS_MSG_FILE_ERR)
            m->u.err.file_id = get_u32(r);
        m->u.err.code = (int32_t)get_u32(r);
        m->u.err.path = get_str(r);
        m->u.err.message = get_str(r);
        break;
    case DS_MSG_OK:
        m->u.ok.value = get_u64(r);
        break;
    case DS_MSG_MANIFEST_SAME:
    case DS_MSG_LIST_SAME:
        get_raw(r, m->u.same.sha256, DS_SHA256_LEN);
        break;
    case DS_MSG_FILE_DONE:
        m->u.file_ok.mtime_ns = get_i64(r);
        break;
    default:
        break;
    }
}

int ds_proto_decode(const uint8_t *buf, size_t len, ds_msg_t *m)
{
    long flen = ds_proto_frame_len(buf, len);
    struct rd r;

    memset(m, 0, sizeof(*m));
    if (flen <= 0 || (size_t)flen != len)
        return DS_EPROTO;
    m->type = buf[4];
    m->flags = buf[5];
    m->id = (uint32_t)buf[8] << 24 | (uint32_t)buf[9] << 16 | (uint32_t)buf[10] << 8 | buf[11];
    r.p = buf + DS_PROTO_HDR_LEN;
    r.n = len - DS_PROTO_HDR_LEN;
    r.bad = 0;
    if (m->type & 0x80)
        decode_replies(&r, m);
    else
        decode_requests(&r, m);
    if (r.bad || r.n != 0)
        return DS_EPROTO;
    if (m->type == DS_MSG_HELLO && m->u.hello.magic != DS_PROTO_MAGIC)
        return DS_EVERSION;
    return 0;
}

/* ---- encoder ---- */

static void encode_requests(struct wr *w, const ds_msg_t *m)
{
    switch (m->type) {
    case DS_MSG_HELLO:
        put_be(w, m->u.hello.magic, 4);
        put_be(w, m->u.hello.min_version, 2);
        put_be(w, m->u.hello.max_version, 2);
        put_str(w, m->u.hello.console_id);
        put_str(w, m->u.hello.software);
        break;
    case DS_MSG_LEASE:
        put_be(w, m->u.lease.op, 1);
        put_str(w, m->u.lease.console_id);
        put_be(w, m->u.lease.pid, 4);
        put_str(w, m->u.lease.host);
        put_be(w, m->u.lease.ttl_s, 4);
        break;
    case DS_MSG_LIST:
    case DS_MSG_HASH:
    case DS_MSG_DELETE:
    case DS_MSG_MANIFEST_GET:
        if (m->type != DS_MSG_MANIFEST_GET)
            put_str(w, m->u.path.path);
        if ((m->type == DS_MSG_LIST || m->type == DS_MSG_MANIFEST_GET) && m->u.path.has_known)
            put_raw(w, m->u.path.known, DS_SHA256_LEN);
        break;
    case DS_MSG_SIG:
        put_str(w, m->u.sig.path);
        put_be(w, m->u.sig.block_len, 4);
        put_be(w, m->u.sig.strong_len, 1);
        break;
    case DS_MSG_FILE_BEGIN:
        put_be(w, m->u.begin.file_id, 4);
        put_str(w, m->u.begin.path);
        put_be(w, m->u.begin.size, 8);
        put_be(w, m->u.begin.mode, 4);
        put_be(w, (uint64_t)m->u.begin.mtime_ns, 8);
        break;
    case DS_MSG_ADOPT:
        put_str(w, m->u.adopt.path);
        put_be(w, m->u.adopt.size, 8);
        put_be(w, (uint64_t)m->u.adopt.mtime_ns, 8);
        put_raw(w, m->u.adopt.sha256, DS_SHA256_LEN);
        break;
    case DS_MSG_FILE_ONE:
        put_str(w, m->u.one.path);
        put_be(w, m->u.one.size, 8);
        put_be(w, m->u.one.mode, 4);
        put_be(w, (uint64_t)m->u.one.mtime_ns, 8);
        put_be(w, m->u.one.kind, 1);
        if (m->u.one.kind == DS_PROTO_ONE_DELTA_FROM)
            put_str(w, m->u.one.basis);
        put_raw(w, m->u.one.sha256, DS_SHA256_LEN);
        put_be(w, m->u.one.comp, 1);
        put_be(w, m->u.one.raw_len, 4);
        put_raw(w, m->u.one.data, m->u.one.data_len);
        break;
    case DS_MSG_COPY:
        put_be(w, m->u.copy.file_id, 4);
        put_str(w, m->u.copy.basis);
        put_be(w, m->u.copy.offset, 8);
        put_be(w, m->u.copy.length, 8);
        break;
    case DS_MSG_LITERAL:
    case DS_MSG_DELTA:
        put_be(w, m->u.data.file_id, 4);
        if (m->type == DS_MSG_DELTA)
            put_str(w, m->u.data.basis);
        put_be(w, m->u.data.comp, 1);
        put_be(w, m->u.data.raw_len, 4);
        put_raw(w, m->u.data.data, m->u.data.data_len);
        break;
    case DS_MSG_DELTA_END:
    case DS_MSG_FILE_ABORT:
        put_be(w, m->u.file.file_id, 4);
        break;
    case DS_MSG_FILE_COMMIT:
        put_be(w, m->u.commit.file_id, 4);
        put_be(w, m->u.commit.size, 8);
        put_raw(w, m->u.commit.sha256, DS_SHA256_LEN);
        break;
    default:
        break;
    }
}

static void encode_replies(struct wr *w, const ds_msg_t *m)
{
    if (m->flags & DS_PROTO_F_PACKED) {
        put_be(w, m->u.packed.comp, 1);
        put_be(w, m->u.packed.raw_len, 4);
        put_raw(w, m->u.packed.data, m->u.packed.data_len);
        return;
    }
    switch (m->type) {
    case DS_MSG_HELLO_OK:
        put_be(w, m->u.hello_ok.version, 2);
        put_str(w, m->u.hello_ok.software);
        put_be(w, m->u.hello_ok.max_payload, 4);
        put_be(w, m->u.hello_ok.max_open_files, 4);
        break;
    case DS_MSG_LEASE_OK:
        put_be(w, (uint64_t)m->u.lease_ok.expiry, 8);
        put_be(w, m->u.lease_ok.tmp_cleaned, 4);
        break;
    case DS_MSG_BUSY:
        put_str(w, m->u.busy.console_id);
        put_be(w, m->u.busy.pid, 4);
        put_str(w, m->u.busy.host);
        put_be(w, (uint64_t)m->u.busy.expiry, 8);
        put_str(w, m->u.busy.message);
        break;
    case DS_MSG_MANIFEST_DATA:
    case DS_MSG_SIG_DATA:
        put_raw(w, m->u.blob.data, m->u.blob.len);
        break;
    case DS_MSG_LIST_DATA:
        put_be(w, m->u.list.n, 4);
        put_raw(w, m->u.list.entries, m->u.list.len);
        break;
    case DS_MSG_HASH_OK:
        put_str(w, m->u.hash_ok.path);
        put_be(w, m->u.hash_ok.size, 8);
        put_be(w, (uint64_t)m->u.hash_ok.mtime_ns, 8);
        put_raw(w, m->u.hash_ok.sha256, DS_SHA256_LEN);
        break;
    case DS_MSG_FILE_OK:
        put_be(w, m->u.file_ok.file_id, 4);
        put_be(w, m->u.file_ok.size, 8);
        put_be(w, (uint64_t)m->u.file_ok.mtime_ns, 8);
        put_raw(w, m->u.file_ok.sha256, DS_SHA256_LEN);
        break;
    case DS_MSG_FILE_ERR:
    case DS_MSG_ERR:
        if (m->type == DS_MSG_FILE_ERR)
            put_be(w, m->u.err.file_id, 4);
        put_be(w, (uint32_t)m->u.err.code, 4);
        put_str(w, m->u.err.path);
        put_str(w, m->u.err.message);
        break;
    case DS_MSG_OK:
        put_be(w, m->u.ok.value, 8);
        break;
    case DS_MSG_MANIFEST_SAME:
    case DS_MSG_LIST_SAME:
        put_raw(w, m->u.same.sha256, DS_SHA256_LEN);
        break;
    case DS_MSG_FILE_DONE:
        put_be(w, (uint64_t)m->u.file_ok.mtime_ns, 8);
        break;
    default:
        break;
    }
}

int ds_proto_encode(ds_proto_buf_t *out, const ds_msg_t *m)
{
    size_t start = out->len, plen;
    struct wr w = {out, 0};

    if (!known_type(m->type) || (m->flags & ~0x07) != 0)
        return DS_EPROTO;
    if ((m->flags & DS_PROTO_F_PACKED) && m->type != DS_MSG_MANIFEST_DATA &&
        m->type != DS_MSG_LIST_DATA)
        return DS_EPROTO;
    if ((m->type == DS_MSG_LITERAL || m->type == DS_MSG_DELTA) &&
        m->u.data.raw_len > DS_PROTO_MAX_DATA)
        return DS_ETOOBIG;
    put_be(&w, 0, 4); /* length, patched below */
    put_be(&w, m->type, 1);
    put_be(&w, m->flags, 1);
    put_be(&w, 0, 2);
    put_be(&w, m->id, 4);
    if (m->type & 0x80)
        encode_replies(&w, m);
    else
        encode_requests(&w, m);
    if (w.rc == 0 && out->len - start - DS_PROTO_HDR_LEN > DS_PROTO_MAX_PAYLOAD)
        w.rc = DS_ETOOBIG;
    if (w.rc < 0) {
        out->len = start;
        return w.rc;
    }
    plen = out->len - start - DS_PROTO_HDR_LEN;
    for (int i = 0; i < 4; i++)
        out->p[start + i] = (uint8_t)(plen >> (8 * (3 - i)));
    return 0;
}

int ds_proto_list_put(ds_proto_buf_t *b, const ds_list_entry_t *e)
{
    size_t start = b->len;
    struct wr w = {b, 0};

    put_str(&w, e->path);
    put_be(&w, e->type, 1);
    put_be(&w, e->size, 8);
    put_be(&w, (uint64_t)e->mtime_ns, 8);
    put_be(&w, e->mode, 4);
    if (w.rc < 0)
        b->len = start;
    return w.rc;
}

int ds_proto_list_next(const uint8_t **p, size_t *len, ds_list_entry_t *e)
{
    struct rd r = {*p, *len, 0};

    if (*len == 0)
        return 0;
    e->path = get_str(&r);
    e->type = get_u8(&r);
    e->size = get_u64(&r);
    e->mtime_ns = get_i64(&r);
    e->mode = get_u32(&r);
    if (r.bad || e->type < DS_PROTO_T_FILE || e->type > DS_PROTO_T_OTHER)
        return DS_EPROTO;
    *p = r.p;
    *len = r.n;
    return 1;
}

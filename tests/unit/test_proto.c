/* Frame codec: round trips of every message and every malformed case. */
#include <zstd.h>

#include "check.h"
#include "distsync/error.h"
#include "distsync/proto.h"

static ds_msg_t dec;
static ds_proto_buf_t buf;

/* Encodes m, decodes it back into dec. Returns the decode result. */
static int roundtrip(const ds_msg_t *m)
{
    long fl;

    buf.len = 0;
    CHECK_INT(ds_proto_encode(&buf, m), 0);
    fl = ds_proto_frame_len(buf.p, buf.len);
    CHECK_INT(fl, (long)buf.len);
    /* every strict prefix is "incomplete", never an error */
    for (size_t i = 0; i < buf.len; i += 1 + buf.len / 50)
        CHECK_INT(ds_proto_frame_len(buf.p, i), 0);
    return ds_proto_decode(buf.p, buf.len, &dec);
}

static int pstr_eq(ds_pstr_t a, const char *s)
{
    return a.n == strlen(s) && memcmp(a.p, s, a.n) == 0;
}

static void test_requests_roundtrip(void)
{
    ds_msg_t m = {.type = DS_MSG_HELLO, .id = 0xdeadbeef};

    m.u.hello.magic = DS_PROTO_MAGIC;
    m.u.hello.min_version = 1;
    m.u.hello.max_version = 3;
    m.u.hello.console_id = ds_pstr("console-1");
    m.u.hello.software = ds_pstr("distsync 0.1.0");
    CHECK_INT(roundtrip(&m), 0);
    CHECK(dec.id == 0xdeadbeef && dec.u.hello.max_version == 3);
    CHECK(pstr_eq(dec.u.hello.console_id, "console-1"));

    memset(&m, 0, sizeof(m));
    m.type = DS_MSG_FILE_BEGIN;
    m.u.begin.file_id = 7;
    m.u.begin.path = ds_pstr("a/b.txt");
    m.u.begin.size = 1ull << 39;
    m.u.begin.mode = 0755;
    m.u.begin.mtime_ns = -5;
    CHECK_INT(roundtrip(&m), 0);
    CHECK(dec.u.begin.size == 1ull << 39 && dec.u.begin.mtime_ns == -5);
    CHECK(pstr_eq(dec.u.begin.path, "a/b.txt") && dec.u.begin.mode == 0755);

    memset(&m, 0, sizeof(m));
    m.type = DS_MSG_COPY;
    m.u.copy.file_id = 7;
    m.u.copy.basis = ds_pstr("old");
    m.u.copy.offset = UINT64_MAX;
    m.u.copy.length = 12;
    CHECK_INT(roundtrip(&m), 0);
    CHECK(dec.u.copy.offset == UINT64_MAX && pstr_eq(dec.u.copy.basis, "old"));

    memset(&m, 0, sizeof(m));
    m.type = DS_MSG_DELTA;
    m.u.data.file_id = 3;
    m.u.data.basis = ds_pstr("old");
    m.u.data.raw_len = 4;
    m.u.data.data = (const uint8_t *)"abcd";
    m.u.data.data_len = 4;
    CHECK_INT(roundtrip(&m), 0);
    CHECK(dec.u.data.data_len == 4 && memcmp(dec.u.data.data, "abcd", 4) == 0);

    memset(&m, 0, sizeof(m));
    m.type = DS_MSG_FILE_COMMIT;
    m.u.commit.file_id = 3;
    m.u.commit.size = 99;
    memset(m.u.commit.sha256, 0xab, 32);
    CHECK_INT(roundtrip(&m), 0);
    CHECK(dec.u.commit.sha256[31] == 0xab && dec.u.commit.size == 99);

    memset(&m, 0, sizeof(m));
    m.type = DS_MSG_ADOPT;
    m.u.adopt.path = ds_pstr("defs/x.dat");
    m.u.adopt.size = 1ull << 33;
    m.u.adopt.mtime_ns = DS_PROTO_NO_MTIME;
    memset(m.u.adopt.sha256, 0xcd, 32);
    CHECK_INT(roundtrip(&m), 0);
    CHECK(pstr_eq(dec.u.adopt.path, "defs/x.dat") && dec.u.adopt.size == 1ull << 33);
    CHECK(dec.u.adopt.mtime_ns == DS_PROTO_NO_MTIME && dec.u.adopt.sha256[0] == 0xcd);
    CHECK_INT(buf.len, DS_PROTO_HDR_LEN + 2 + 10 + 8 + 8 + 32);

    memset(&m, 0, sizeof(m));
    m.type = DS_MSG_LEASE;
    m.u.lease.op = DS_LEASE_OP_RENEW;
    m.u.lease.console_id = ds_pstr("c");
    m.u.lease.host = ds_pstr("h");
    m.u.lease.pid = 12;
    m.u.lease.ttl_s = 30;
    CHECK_INT(roundtrip(&m), 0);
    CHECK(dec.u.lease.op == DS_LEASE_OP_RENEW && dec.u.lease.ttl_s == 30);

    for (uint8_t t = DS_MSG_MANIFEST_GET; t; t = 0) {
        ds_msg_t e = {.type = t};

        CHECK_INT(roundtrip(&e), 0);
        CHECK_INT(buf.len, DS_PROTO_HDR_LEN);
    }
}

static void test_replies_roundtrip(void)
{
    ds_msg_t m = {.type = DS_MSG_FILE_ERR, .id = 5};
    ds_proto_buf_t blob = {0};
    ds_list_entry_t e = {.type = DS_PROTO_T_FILE, .size = 10, .mtime_ns = 1, .mode = 0644};
    const uint8_t *p;
    size_t n;

    m.u.err.file_id = 9;
    m.u.err.code = DS_EHASH;
    m.u.err.path = ds_pstr("x/y");
    m.u.err.message = ds_pstr("mismatch");
    CHECK_INT(roundtrip(&m), 0);
    CHECK(dec.u.err.code == DS_EHASH && dec.u.err.file_id == 9);
    CHECK(pstr_eq(dec.u.err.message, "mismatch"));

    memset(&m, 0, sizeof(m));
    m.type = DS_MSG_BUSY;
    m.u.busy.console_id = ds_pstr("other");
    m.u.busy.expiry = -1;
    m.u.busy.message = ds_pstr("busy");
    CHECK_INT(roundtrip(&m), 0);
    CHECK(dec.u.busy.expiry == -1 && pstr_eq(dec.u.busy.console_id, "other"));

    e.path = ds_pstr("a");
    CHECK_INT(ds_proto_list_put(&blob, &e), 0);
    e.path = ds_pstr("b/c");
    e.type = DS_PROTO_T_SYMLINK;
    CHECK_INT(ds_proto_list_put(&blob, &e), 0);
    memset(&m, 0, sizeof(m));
    m.type = DS_MSG_LIST_DATA;
    m.flags = DS_PROTO_F_MORE;
    m.u.list.n = 2;
    m.u.list.entries = blob.p;
    m.u.list.len = (uint32_t)blob.len;
    CHECK_INT(roundtrip(&m), 0);
    CHECK(dec.flags == DS_PROTO_F_MORE && dec.u.list.n == 2);
    p = dec.u.list.entries;
    n = dec.u.list.len;
    CHECK_INT(ds_proto_list_next(&p, &n, &e), 1);
    CHECK(pstr_eq(e.path, "a"));
    CHECK_INT(ds_proto_list_next(&p, &n, &e), 1);
    CHECK(pstr_eq(e.path, "b/c") && e.type == DS_PROTO_T_SYMLINK);
    CHECK_INT(ds_proto_list_next(&p, &n, &e), 0);
    /* count in the header must match the entries */
    m.u.list.n = 3;
    CHECK_INT(roundtrip(&m), DS_EPROTO);
    ds_proto_buf_free(&blob);

    memset(&m, 0, sizeof(m));
    m.type = DS_MSG_FILE_OK;
    m.u.file_ok.size = 5;
    m.u.file_ok.mtime_ns = 123;
    CHECK_INT(roundtrip(&m), 0);
    CHECK(dec.u.file_ok.mtime_ns == 123);
}

/* FILE_ONE (version 6): the three kinds, and what the decoder refuses. */
static void test_file_one(void)
{
    ds_msg_t m = {.type = DS_MSG_FILE_ONE, .id = 9};

    m.u.one.path = ds_pstr("lib/x.so");
    m.u.one.size = 1ull << 35;
    m.u.one.mode = 0644;
    m.u.one.mtime_ns = -7;
    m.u.one.kind = DS_PROTO_ONE_DELTA_SELF;
    memset(m.u.one.sha256, 0x5a, 32);
    m.u.one.raw_len = 4;
    m.u.one.data = (const uint8_t *)"DSZP";
    m.u.one.data_len = 4;
    CHECK_INT(roundtrip(&m), 0);
    CHECK(pstr_eq(dec.u.one.path, "lib/x.so") && dec.u.one.size == 1ull << 35);
    CHECK(dec.u.one.mode == 0644 && dec.u.one.mtime_ns == -7 && dec.u.one.sha256[31] == 0x5a);
    CHECK(dec.u.one.kind == DS_PROTO_ONE_DELTA_SELF && dec.u.one.basis.n == 0);
    CHECK(dec.u.one.data_len == 4 && memcmp(dec.u.one.data, "DSZP", 4) == 0);
    /* no basis string unless DELTA_FROM: path, size, mode, mtime, kind, sha, comp, raw_len, data */
    CHECK_INT(buf.len, DS_PROTO_HDR_LEN + 2 + 8 + 8 + 4 + 8 + 1 + 32 + 1 + 4 + 4);
    m.u.one.kind = DS_PROTO_ONE_DELTA_FROM;
    m.u.one.basis = ds_pstr("lib/old.so");
    CHECK_INT(roundtrip(&m), 0);
    CHECK(pstr_eq(dec.u.one.basis, "lib/old.so"));
    m.u.one.kind = DS_PROTO_ONE_LITERAL;
    m.u.one.size = 0;
    m.u.one.raw_len = 0;
    m.u.one.data_len = 0;
    CHECK_INT(roundtrip(&m), 0);
    CHECK(dec.u.one.kind == DS_PROTO_ONE_LITERAL && dec.u.one.data_len == 0);
    m.u.one.kind = 3; /* unknown kind */
    CHECK_INT(roundtrip(&m), DS_EPROTO);
    m.u.one.kind = DS_PROTO_ONE_LITERAL;
    m.u.one.raw_len = 5; /* uncompressed, raw_len disagrees with the data */
    CHECK_INT(roundtrip(&m), DS_EPROTO);
    m.u.one.comp = DS_PROTO_COMP_ZSTD;
    m.u.one.raw_len = DS_PROTO_MAX_DATA + 1; /* over one frame of data */
    CHECK_INT(roundtrip(&m), DS_EPROTO);
    m.u.one.comp = 2;
    m.u.one.raw_len = 0;
    CHECK_INT(roundtrip(&m), DS_EPROTO);
    /* its reply: the mtime as published, nothing else */
    memset(&m, 0, sizeof(m));
    m.type = DS_MSG_FILE_DONE;
    m.id = 9;
    m.u.file_ok.mtime_ns = INT64_MIN + 1;
    CHECK_INT(roundtrip(&m), 0);
    CHECK(dec.id == 9 && dec.u.file_ok.mtime_ns == INT64_MIN + 1);
    CHECK_INT(buf.len, DS_PROTO_HDR_LEN + 8);
}

static void test_malformed(void)
{
    uint8_t f[64] = {0};
    ds_msg_t m = {.type = DS_MSG_HELLO};
    ds_msg_t lit = {.type = DS_MSG_LITERAL};

    /* payload length over the limit */
    f[0] = 0x00;
    f[1] = 0x80;
    f[2] = 0x00;
    f[3] = 0x01;
    f[4] = DS_MSG_LITERAL;
    CHECK_INT(ds_proto_frame_len(f, 12), DS_EPROTO);
    f[1] = 0xff;
    f[0] = 0xff;
    CHECK_INT(ds_proto_frame_len(f, 12), DS_EPROTO);
    /* unknown type, reserved bits, unknown flags */
    memset(f, 0, sizeof(f));
    f[4] = 0x42;
    CHECK_INT(ds_proto_frame_len(f, 12), DS_EPROTO);
    f[4] = DS_MSG_BYE;
    CHECK_INT(ds_proto_frame_len(f, 12), 12);
    f[6] = 1;
    CHECK_INT(ds_proto_frame_len(f, 12), DS_EPROTO);
    f[6] = 0;
    f[5] = 0x80;
    CHECK_INT(ds_proto_frame_len(f, 12), DS_EPROTO);
    f[5] = 0;
    /* truncated payload: a COPY frame that claims 4 bytes */
    f[3] = 4;
    f[4] = DS_MSG_COPY;
    CHECK_INT(ds_proto_frame_len(f, 15), 0);
    CHECK_INT(ds_proto_decode(f, 16, &m), DS_EPROTO);
    /* string length larger than the payload */
    memset(f, 0, sizeof(f));
    f[3] = 6;
    f[4] = DS_MSG_HASH;
    f[12] = 0x10;
    f[13] = 0x00;
    CHECK_INT(ds_proto_decode(f, 18, &m), DS_EPROTO);
    /* string with a NUL inside */
    f[12] = 0;
    f[13] = 4;
    memcpy(f + 14, "a\0bc", 4);
    CHECK_INT(ds_proto_decode(f, 18, &m), DS_EPROTO);
    memcpy(f + 14, "abcd", 4);
    CHECK_INT(ds_proto_decode(f, 18, &m), 0);
    /* trailing junk after the fields */
    f[3] = 7;
    CHECK_INT(ds_proto_decode(f, 19, &m), DS_EPROTO);
    /* frame length disagrees with the buffer */
    CHECK_INT(ds_proto_decode(f, 18, &m), DS_EPROTO);
    /* bad HELLO magic */
    memset(&m, 0, sizeof(m));
    m.type = DS_MSG_HELLO;
    m.u.hello.magic = 0x12345678;
    m.u.hello.console_id = ds_pstr("c");
    CHECK_INT(roundtrip(&m), DS_EVERSION);
    /* bad enums: lease op, compression */
    memset(&m, 0, sizeof(m));
    m.type = DS_MSG_LEASE;
    m.u.lease.op = 9;
    CHECK_INT(roundtrip(&m), DS_EPROTO);
    lit.u.data.comp = 7;
    CHECK_INT(roundtrip(&lit), DS_EPROTO);
    /* uncompressed raw_len must equal the data length */
    lit.u.data.comp = 0;
    lit.u.data.raw_len = 5;
    lit.u.data.data = (const uint8_t *)"abc";
    lit.u.data.data_len = 3;
    CHECK_INT(roundtrip(&lit), DS_EPROTO);
}

static void test_encode_limits(void)
{
    ds_msg_t m = {.type = DS_MSG_LITERAL};
    ds_msg_t h = {.type = DS_MSG_HASH};
    char *big = malloc(DS_PROTO_MAX_PAYLOAD + 1);
    ds_pstr_t s;

    memset(big, 'a', DS_PROTO_MAX_PAYLOAD + 1);
    buf.len = 0;
    m.u.data.raw_len = DS_PROTO_MAX_PAYLOAD;
    m.u.data.data = (const uint8_t *)big;
    m.u.data.data_len = DS_PROTO_MAX_PAYLOAD;
    CHECK_INT(ds_proto_encode(&buf, &m), DS_ETOOBIG);
    CHECK_INT(buf.len, 0);
    m.u.data.raw_len = m.u.data.data_len = DS_PROTO_MAX_DATA;
    CHECK_INT(ds_proto_encode(&buf, &m), 0);
    CHECK_INT(ds_proto_decode(buf.p, buf.len, &dec), 0);
    buf.len = 0;
    s.p = big;
    s.n = DS_PROTO_STR_MAX + 1;
    h.u.path.path = s;
    CHECK_INT(ds_proto_encode(&buf, &h), DS_EPROTO);
    CHECK_INT(buf.len, 0);
    h.type = 0x44;
    CHECK_INT(ds_proto_encode(&buf, &h), DS_EPROTO);
    CHECK_STR(ds_proto_type_name(DS_MSG_FILE_COMMIT), "FILE_COMMIT");
    CHECK_STR(ds_proto_type_name(0x44), "?");
    free(big);
}

static void test_stream_of_frames(void)
{
    ds_msg_t m = {.type = DS_MSG_DELETE};
    size_t off = 0;
    int n = 0;

    buf.len = 0;
    for (int i = 0; i < 100; i++) {
        m.id = (uint32_t)i;
        m.u.path.path = ds_pstr(i % 2 ? "odd" : "even/path");
        CHECK_INT(ds_proto_encode(&buf, &m), 0);
    }
    while (off < buf.len) {
        long fl = ds_proto_frame_len(buf.p + off, buf.len - off);

        CHECK(fl > 0);
        if (fl <= 0)
            break;
        CHECK_INT(ds_proto_decode(buf.p + off, (size_t)fl, &dec), 0);
        CHECK_INT(dec.id, n);
        off += (size_t)fl;
        n++;
    }
    CHECK_INT(n, 100);
    ds_proto_buf_consume(&buf, buf.len);
    CHECK_INT(buf.len, 0);
}

/* Version 4: conditional requests, *_SAME replies, packed data replies. */
static void test_v4_roundtrip(void)
{
    ds_msg_t m = {.type = DS_MSG_MANIFEST_GET, .id = 9};
    uint8_t sha[DS_SHA256_LEN];

    for (int i = 0; i < DS_SHA256_LEN; i++)
        sha[i] = (uint8_t)(i * 7 + 1);
    CHECK_INT(roundtrip(&m), 0); /* the version 1-3 form: empty */
    CHECK(buf.len == DS_PROTO_HDR_LEN && !dec.u.path.has_known);
    m.u.path.has_known = 1;
    memcpy(m.u.path.known, sha, DS_SHA256_LEN);
    CHECK_INT(roundtrip(&m), 0);
    CHECK(buf.len == DS_PROTO_HDR_LEN + DS_SHA256_LEN && dec.u.path.has_known &&
          memcmp(dec.u.path.known, sha, DS_SHA256_LEN) == 0);
    m.type = DS_MSG_LIST;
    m.u.path.path = ds_pstr("sub/dir");
    CHECK_INT(roundtrip(&m), 0);
    CHECK(pstr_eq(dec.u.path.path, "sub/dir") && dec.u.path.has_known &&
          memcmp(dec.u.path.known, sha, DS_SHA256_LEN) == 0);
    m.u.path.has_known = 0;
    CHECK_INT(roundtrip(&m), 0);
    CHECK(!dec.u.path.has_known);
    /* a digest must be whole */
    buf.len = 0;
    m.u.path.has_known = 1;
    CHECK_INT(ds_proto_encode(&buf, &m), 0);
    buf.p[3] -= 1;
    CHECK_INT(ds_proto_decode(buf.p, buf.len - 1, &dec), DS_EPROTO);
    for (int t = DS_MSG_MANIFEST_SAME; t <= DS_MSG_LIST_SAME; t++) {
        ds_msg_t r = {.type = (uint8_t)t, .id = 4};

        memcpy(r.u.same.sha256, sha, DS_SHA256_LEN);
        CHECK_INT(roundtrip(&r), 0);
        CHECK(dec.type == t && memcmp(dec.u.same.sha256, sha, DS_SHA256_LEN) == 0);
        CHECK_STR(ds_proto_type_name((uint8_t)t),
                  t == DS_MSG_LIST_SAME ? "LIST_SAME" : "MANIFEST_SAME");
    }
}

/* Packs a LIST_DATA (compressible) and a MANIFEST_DATA (not), unpacks both. */
static void test_pack_unpack(void)
{
    ds_proto_unpacker_t u = {0};
    ds_proto_buf_t ents = {0}, out = {0};
    ds_list_entry_t e = {.type = DS_PROTO_T_FILE, .size = 5, .mtime_ns = 7, .mode = 0644};
    ds_msg_t m = {.type = DS_MSG_LIST_DATA, .id = 3, .flags = DS_PROTO_F_MORE}, p, plain;
    void *zc = ZSTD_createCCtx();
    uint8_t noise[1000];
    uint32_t x = 1;

    e.path = ds_pstr("definitions/some/long/path/file.dat");
    for (int i = 0; i < 1000; i++)
        CHECK_INT(ds_proto_list_put(&ents, &e), 0);
    m.u.list.n = 1000;
    m.u.list.entries = ents.p;
    m.u.list.len = (uint32_t)ents.len;
    CHECK_INT(ds_proto_pack(&out, &m, zc, 3), 0);
    CHECK(out.len * 10 < ents.len); /* repeated entries shrink */
    CHECK_INT(ds_proto_decode(out.p, out.len, &p), 0);
    CHECK(p.flags == (DS_PROTO_F_MORE | DS_PROTO_F_PACKED) && p.u.packed.comp == 1 &&
          p.u.packed.raw_len == 4 + ents.len);
    CHECK_INT(ds_proto_unpack(&u, &p, &plain), 0);
    CHECK(plain.type == DS_MSG_LIST_DATA && plain.flags == DS_PROTO_F_MORE && plain.id == 3 &&
          plain.u.list.n == 1000 && plain.u.list.len == ents.len &&
          memcmp(plain.u.list.entries, ents.p, ents.len) == 0);

    for (size_t i = 0; i < sizeof(noise); i++) {
        x = x * 1103515245 + 12345;
        noise[i] = (uint8_t)(x >> 16);
    }
    m = (ds_msg_t){.type = DS_MSG_MANIFEST_DATA, .id = 2};
    m.u.blob.data = noise;
    m.u.blob.len = sizeof(noise);
    out.len = 0;
    CHECK_INT(ds_proto_pack(&out, &m, zc, 3), 0);
    CHECK_INT(ds_proto_decode(out.p, out.len, &p), 0);
    CHECK(p.u.packed.comp == DS_PROTO_COMP_NONE && p.u.packed.data_len == sizeof(noise));
    CHECK_INT(ds_proto_unpack(&u, &p, &plain), 0);
    CHECK(plain.u.blob.len == sizeof(noise) && memcmp(plain.u.blob.data, noise, 1000) == 0);
    /* only the two data replies are packed */
    m.type = DS_MSG_SIG_DATA;
    CHECK_INT(ds_proto_pack(&out, &m, zc, 3), DS_EPROTO);
    ZSTD_freeCCtx(zc);
    ds_proto_unpacker_free(&u);
    ds_proto_buf_free(&ents);
    ds_proto_buf_free(&out);
}

/* Packed frames that must be refused: bad comp byte, raw_len over the
 * limit or not matching, the flag on another type, and a bomb. */
static void test_pack_malformed(void)
{
    ds_proto_unpacker_t u = {0};
    uint8_t f[64] = {0, 0, 0, 9, DS_MSG_MANIFEST_DATA, DS_PROTO_F_PACKED, 0, 0, 0, 0, 0, 1};
    ds_msg_t p, plain;
    size_t big = 64u << 20, bound = ZSTD_compressBound(big), zn;
    uint8_t *zeros = calloc(1, big), *z = malloc(bound);

    /* comp 0, raw_len 4, data "abcd": fine */
    memcpy(f + 12, "\0\0\0\0\4abcd", 9);
    CHECK_INT(ds_proto_decode(f, 21, &p), 0);
    f[12] = 2; /* unknown compression */
    CHECK_INT(ds_proto_decode(f, 21, &p), DS_EPROTO);
    f[12] = 0;
    f[16] = 5; /* comp 0 with raw_len != data length */
    CHECK_INT(ds_proto_decode(f, 21, &p), DS_EPROTO);
    f[16] = 4;
    f[4] = DS_MSG_SIG_DATA; /* PACKED on another type */
    CHECK_INT(ds_proto_frame_len(f, 21), DS_EPROTO);
    f[4] = DS_MSG_MANIFEST_DATA;
    f[12] = 1;
    f[13] = 0x01; /* raw_len over DS_PROTO_MAX_DATA */
    CHECK_INT(ds_proto_decode(f, 21, &p), DS_EPROTO);

    /* the bomb: 64 MiB of zeros declared as 1 MiB */
    zn = ZSTD_compress(z, bound, zeros, big, 19);
    CHECK(!ZSTD_isError(zn) && zn < 64u << 10);
    p = (ds_msg_t){.type = DS_MSG_MANIFEST_DATA, .id = 1, .flags = DS_PROTO_F_PACKED};
    p.u.packed.comp = DS_PROTO_COMP_ZSTD;
    p.u.packed.raw_len = 1u << 20;
    p.u.packed.data = z;
    p.u.packed.data_len = (uint32_t)zn;
    CHECK_INT(ds_proto_unpack(&u, &p, &plain), DS_ECORRUPT);
    CHECK(u.buf.cap <= DS_PROTO_HDR_LEN + (2u << 20)); /* never grew past raw_len */
    /* a frame that decompresses to less than declared */
    p.u.packed.raw_len = DS_PROTO_MAX_DATA;
    zn = ZSTD_compress(z, bound, zeros, 100, 3);
    p.u.packed.data_len = (uint32_t)zn;
    CHECK_INT(ds_proto_unpack(&u, &p, &plain), DS_ECORRUPT);
    /* garbage that is no zstd frame */
    p.u.packed.data = zeros;
    p.u.packed.data_len = 100;
    CHECK_INT(ds_proto_unpack(&u, &p, &plain), DS_ECORRUPT);
    /* a valid frame whose plain payload is malformed (LIST_DATA count) */
    p.type = DS_MSG_LIST_DATA;
    p.u.packed.comp = DS_PROTO_COMP_NONE;
    p.u.packed.raw_len = 4;
    p.u.packed.data = (const uint8_t *)"\0\0\0\1";
    p.u.packed.data_len = 4;
    CHECK_INT(ds_proto_unpack(&u, &p, &plain), DS_EPROTO);
    ds_proto_unpacker_free(&u);
    free(zeros);
    free(z);
}

int main(void)
{
    RUN(test_requests_roundtrip);
    RUN(test_file_one);
    RUN(test_replies_roundtrip);
    RUN(test_malformed);
    RUN(test_encode_limits);
    RUN(test_stream_of_frames);
    RUN(test_v4_roundtrip);
    RUN(test_pack_unpack);
    RUN(test_pack_malformed);
    ds_proto_buf_free(&buf);
    return CHECK_DONE();
}

/*
 * Writes the seed corpora under tests/fuzz/corpus/<target>/ from real, valid
 * sessions (plus a few hostile ones). Not built by CMake; run by hand after a
 * protocol change:
 *   cc -D_GNU_SOURCE -Iinclude -Isrc tests/fuzz/gen_seeds.c \
 *      -Wl,--start-group BUILD/src/libdistsync_*.a -Wl,--end-group \
 *      $(pkg-config --libs libcrypto libzstd libxxhash sqlite3 libdivsufsort) -lbz2 -lrsync -lm \
 *      -o /tmp/gen_seeds
 *   /tmp/gen_seeds tests/fuzz/corpus
 */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librsync.h>
#include <zstd.h>

#include "../unit/session.h"
#include "distsync/error.h"
#include "distsync/manifest.h"
#include "distsync/zpatch.h"

static const char *top;

static void save(const char *target, const char *name, const void *p1, size_t n1, const void *p2,
                 size_t n2)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", top, target);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", top, target, name);
    f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    fwrite(p1, 1, n1, f);
    fwrite(p2, 1, n2, f);
    fclose(f);
}

static void basis(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((i * 131 + i / 256) & 0xff);
}

static void session_seeds(void)
{
    static uint8_t old[4096], nw[4096];
    uint8_t mode0 = 0x00, big = 0xfe, *delta;
    struct sess s = {0};
    uint8_t sha[32];
    size_t dn;

    for (int i = 0; i < 4096; i++)
        old[i] = (uint8_t)((i * 31) & 0xff);
    memcpy(nw, old, sizeof(nw));
    memcpy(nw + 1000, "fuzz-edit", 9);
    s_make_delta(old, sizeof(old), nw, sizeof(nw), &delta, &dn);

    s_hello(&s, "seed");
    s_lease(&s, DS_LEASE_OP_ACQUIRE, "seed", 600);
    s_whole(&s, 1, "a.txt", "hello", 5);
    ds_sha256("hello", 5, sha);
    s_adopt(&s, "a.txt", 5, 1600000000000000000LL, sha); /* version 2 */
    s_begin(&s, 2, "dir/b.bin", 4096 + 3);
    s_copy(&s, 2, "basis.bin", 0, 2048);
    s_data(&s, 2, NULL, "lit", 3, 1);
    s_copy(&s, 2, "basis.bin", 2048, 2048);
    memcpy(sha, "not-the-hash-of-the-file-at-all!", 32);
    s_commit(&s, 2, 4096 + 3, sha);
    s_begin(&s, 3, "c.bin", sizeof(nw));
    s_data(&s, 3, "basis.bin", delta, dn, 0);
    s_file(&s, DS_MSG_DELTA_END, 3);
    ds_sha256(nw, sizeof(nw), sha);
    s_commit(&s, 3, sizeof(nw), sha);
    s_path(&s, DS_MSG_DELETE, "a.txt");
    s_path(&s, DS_MSG_LIST, "");
    s_path(&s, DS_MSG_HASH, "basis.bin");
    s_empty(&s, DS_MSG_MANIFEST_GET);
    s_empty(&s, DS_MSG_MANIFEST_COMMIT);
    s_begin(&s, 4, "aborted", 10);
    s_file(&s, DS_MSG_FILE_ABORT, 4);
    s_lease(&s, DS_LEASE_OP_RENEW, "seed", 600);
    s_empty(&s, DS_MSG_BYE);
    save("fuzz_apply", "full_session", &big, 1, s.b.p, s.b.len);
    save("fuzz_apply", "full_session_bytewise", &mode0, 1, s.b.p, s.b.len);
    save("fuzz_proto", "full_session", s.b.p, s.b.len, NULL, 0);
    {
        /* version 4: LIST and MANIFEST_GET with a known digest (not the
         * target's: streamed packed), then again with the empty tree's */
        struct sess k = {0};
        ds_msg_t m = {.type = DS_MSG_LIST};

        s_hello(&k, "seed");
        m.u.path.path = ds_pstr("");
        m.u.path.has_known = 1;
        memset(m.u.path.known, 0x5a, DS_SHA256_LEN);
        s_put(&k, &m);
        m = (ds_msg_t){.type = DS_MSG_MANIFEST_GET};
        m.u.path.has_known = 1;
        memset(m.u.path.known, 0x5a, DS_SHA256_LEN);
        s_put(&k, &m);
        m = (ds_msg_t){.type = DS_MSG_LIST};
        m.u.path.path = ds_pstr("");
        m.u.path.has_known = 1;
        ds_sha256("", 0, m.u.path.known);
        s_put(&k, &m);
        s_empty(&k, DS_MSG_BYE);
        save("fuzz_apply", "v4_known", &big, 1, k.b.p, k.b.len);
        save("fuzz_proto", "v4_known", k.b.p, k.b.len, NULL, 0);
        ds_proto_buf_free(&k.b);
    }
    {
        /* version 6: FILE_ONE of each kind (a literal, a delta against its
         * own path and against another), one with a wrong SHA-256 */
        struct sess k = {0};
        ds_msg_t m = {.type = DS_MSG_FILE_ONE};

        s_hello(&k, "seed");
        s_lease(&k, DS_LEASE_OP_ACQUIRE, "seed", 600);
        m.u.one.path = ds_pstr("one/lit.txt");
        m.u.one.size = 5;
        m.u.one.mode = 0644;
        m.u.one.mtime_ns = DS_PROTO_NO_MTIME;
        m.u.one.kind = DS_PROTO_ONE_LITERAL;
        ds_sha256("hello", 5, m.u.one.sha256);
        m.u.one.raw_len = m.u.one.data_len = 5;
        m.u.one.data = (const uint8_t *)"hello";
        s_put(&k, &m);
        m.u.one.path = ds_pstr("basis.bin");
        m.u.one.size = sizeof(nw);
        m.u.one.kind = DS_PROTO_ONE_DELTA_SELF;
        ds_sha256(nw, sizeof(nw), m.u.one.sha256);
        m.u.one.raw_len = m.u.one.data_len = (uint32_t)dn;
        m.u.one.data = delta;
        s_put(&k, &m);
        m.u.one.path = ds_pstr("one/c.bin");
        m.u.one.kind = DS_PROTO_ONE_DELTA_FROM;
        m.u.one.basis = ds_pstr("basis.bin");
        s_put(&k, &m);
        m.u.one.sha256[0] ^= 1;
        s_put(&k, &m);
        s_empty(&k, DS_MSG_MANIFEST_COMMIT);
        s_empty(&k, DS_MSG_BYE);
        save("fuzz_apply", "v6_file_one", &big, 1, k.b.p, k.b.len);
        save("fuzz_proto", "v6_file_one", k.b.p, k.b.len, NULL, 0);
        ds_proto_buf_free(&k.b);
    }
    s.b.len = 0;
    s_whole(&s, 1, "../escape", "x", 1);
    s_whole(&s, 2, "esc/inside", "x", 1);
    s_whole(&s, 3, "leaf", "x", 1);
    s_whole(&s, 4, "fifo", "x", 1);
    s_begin(&s, 5, "x", 8);
    s_copy(&s, 5, "esc/../basis.bin", 0, 8);
    s_copy(&s, 5, "basis.bin", 4090, 8);
    s_commit(&s, 5, 8, sha);
    s_path(&s, DS_MSG_DELETE, "esc");
    s_path(&s, DS_MSG_HASH, "fifo");
    s_adopt(&s, "fifo", 1, INT64_MIN, sha);
    s_adopt(&s, "esc/inside", 1, INT64_MAX, sha);
    s_path(&s, DS_MSG_LIST, "esc");
    s_empty(&s, DS_MSG_BYE);
    big = 0xff; /* odd: the fuzzer prepends HELLO + LEASE */
    save("fuzz_apply", "hostile_session", &big, 1, s.b.p, s.b.len);
    s.b.len = 0; /* an mtime near INT64_MIN: fstat's seconds * 1e9 overflowed */
    {
        ds_msg_t m = {.type = DS_MSG_FILE_BEGIN};

        m.u.begin.file_id = 1;
        m.u.begin.path = ds_pstr("old.bin");
        m.u.begin.size = 1;
        m.u.begin.mode = 0644;
        m.u.begin.mtime_ns = INT64_MIN + 1;
        s_put(&s, &m);
    }
    s_data(&s, 1, NULL, "x", 1, 0);
    ds_sha256("x", 1, sha);
    s_commit(&s, 1, 1, sha);
    s_empty(&s, DS_MSG_BYE);
    save("fuzz_apply", "mtime_int64_min", &big, 1, s.b.p, s.b.len);
    ds_proto_buf_free(&s.b);
    free(delta);
}

static void reply_seeds(void)
{
    ds_proto_buf_t b = {0}, blob = {0};
    ds_list_entry_t e = {.path = ds_pstr("a/b"), .type = DS_PROTO_T_FILE, .size = 3};
    ds_msg_t m = {.type = DS_MSG_HELLO_OK, .id = 1};

    m.u.hello_ok.version = 1;
    m.u.hello_ok.software = ds_pstr("distsync");
    ds_proto_encode(&b, &m);
    memset(&m, 0, sizeof(m));
    m.type = DS_MSG_BUSY;
    m.u.busy.console_id = ds_pstr("x");
    m.u.busy.message = ds_pstr("busy");
    ds_proto_encode(&b, &m);
    ds_proto_list_put(&blob, &e);
    memset(&m, 0, sizeof(m));
    m.type = DS_MSG_LIST_DATA;
    m.u.list.n = 1;
    m.u.list.entries = blob.p;
    m.u.list.len = (uint32_t)blob.len;
    ds_proto_encode(&b, &m);
    memset(&m, 0, sizeof(m));
    m.type = DS_MSG_FILE_ERR;
    m.u.err.path = ds_pstr("p");
    m.u.err.message = ds_pstr("m");
    ds_proto_encode(&b, &m);
    memset(&m, 0, sizeof(m));
    m.type = DS_MSG_FILE_OK;
    ds_proto_encode(&b, &m);
    memset(&m, 0, sizeof(m));
    m.type = DS_MSG_HASH_OK;
    m.u.hash_ok.path = ds_pstr("h");
    ds_proto_encode(&b, &m);
    save("fuzz_proto", "replies", b.p, b.len, NULL, 0);
    ds_proto_buf_free(&b);
    ds_proto_buf_free(&blob);
}

static void manifest_seeds(void)
{
    ds_manifest_t *m;
    uint8_t sha[32] = {1, 2, 3}, *buf, mode = 1;
    size_t len;

    ds_manifest_new(&m);
    ds_manifest_put(m, "patches/kb1.msu", 1000, 17, sha);
    ds_manifest_put(m, "engines/x/engine.bin", 5, -1, sha);
    ds_manifest_put(m, "definitions/defs-2026-11-22.vdm", 1 << 30, 0, sha);
    ds_manifest_encode(m, &buf, &len);
    save("fuzz_manifest", "three_entries", &mode, 1, buf, len);
    mode = 0;
    save("fuzz_manifest", "three_entries_raw", &mode, 1, buf, len);
    free(buf);
    ds_manifest_free(m);
    ds_manifest_new(&m);
    ds_manifest_encode(m, &buf, &len);
    save("fuzz_manifest", "empty", &mode, 1, buf, len);
    free(buf);
    ds_manifest_free(m);
}

static void delta_seeds(void)
{
    static uint8_t old[65536], nw[70000];
    uint8_t *delta;
    size_t dn;

    basis(old, sizeof(old));
    memcpy(nw, old, sizeof(old));
    memcpy(nw + 30000, "inserted text, then the rest", 28);
    memcpy(nw + sizeof(old), "appended tail", 13);
    s_make_delta(old, sizeof(old), nw, sizeof(old) + 13, &delta, &dn);
    save("fuzz_delta", "edit_and_append", delta, dn, NULL, 0);
    free(delta);
    s_make_delta(old, sizeof(old), "totally different", 17, &delta, &dn);
    save("fuzz_delta", "all_literal", delta, dn, NULL, 0);
    free(delta);
    s_make_delta(old, sizeof(old), old + 1000, 5000, &delta, &dn);
    save("fuzz_delta", "copy_only", delta, dn, NULL, 0);
    free(delta);
}

static long seed_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    memcpy(buf, (const uint8_t *)ctx + off, len);
    return (long)len;
}

/* The zpatch (stream version v) turning b into t, saved as seed name of
 * fuzz_zpatch. */
static void save_zpatch_v(const char *name, const uint8_t *b, size_t bn, const uint8_t *t,
                          size_t tn, int v)
{
    ds_delta_src_t bs = {.read = seed_read, .ctx = (void *)b, .size = bn};
    ds_delta_src_t ts = {.read = seed_read, .ctx = (void *)t, .size = tn};
    ds_zpatch_stats_t st;
    FILE *f = tmpfile();
    uint8_t *buf;

    if (f == NULL || ds_zpatch_encode_v(&bs, &ts, 19, v, NULL, NULL, fileno(f), &st) != 0)
        exit(1);
    buf = malloc(st.delta_bytes);
    if (buf == NULL || pread(fileno(f), buf, st.delta_bytes, 0) != (ssize_t)st.delta_bytes)
        exit(1);
    save("fuzz_zpatch", name, buf, st.delta_bytes, NULL, 0);
    {
        /* the same records in stream version 3 (protocol 6) */
        uint8_t *c = malloc(st.delta_bytes + 64);
        char v3[128];
        size_t cn;

        snprintf(v3, sizeof(v3), "%s_v3", name);
        if (c != NULL && ds_zpatch_compact(buf, st.delta_bytes, c, st.delta_bytes + 64, &cn) == 0)
            save("fuzz_zpatch", v3, c, cn, NULL, 0);
        free(c);
    }
    free(buf);
    fclose(f);
}

static void save_zpatch(const char *name, const uint8_t *b, size_t bn, const uint8_t *t, size_t tn)
{
    save_zpatch_v(name, b, bn, t, tn, 1);
}

static void zpatch_seeds(void)
{
    static uint8_t old[65536], nw[70000];
    uint8_t copy[33] = "DSZP\1\0\0\0\0\0\0\0\0\0\x13\x88\2";

    basis(old, sizeof(old));
    memcpy(nw, old + 7, sizeof(old) - 7);
    memcpy(nw + 30000, "inserted text, then the rest", 28);
    save_zpatch("shift_edit_append", old, sizeof(old), nw, sizeof(nw));
    save_zpatch("unrelated", old, sizeof(old), (const uint8_t *)"totally different", 17);
    save_zpatch("empty_basis_range", old, 0, old, 4000);
    /* a COPY record of 5000 bytes at 1000, then END */
    memset(copy + 17, 0, 16);
    copy[23] = 0x03, copy[24] = 0xe8, copy[31] = 0x13, copy[32] = 0x88;
    save("fuzz_zpatch", "copy_record", copy, sizeof(copy), "", 1);
    /* stream version 2: BSDIFF records (every 32nd byte moved by 3, as
     * shifted addresses are, after an insertion) */
    memcpy(nw, "an inserted function", 20);
    memcpy(nw + 20, old, sizeof(old));
    for (size_t i = 20 + 24; i < 20 + sizeof(old); i += 32)
        nw[i] += 3;
    save_zpatch_v("bsdiff_shifted", old, sizeof(old), nw, 20 + sizeof(old), 2);
}

/* A librsync signature of buf (as the agent answers SIG), into *out. */
static void make_sig(const uint8_t *buf, size_t n, size_t block, size_t strong,
                     rs_magic_number magic, uint8_t **out, size_t *outn)
{
    FILE *in = fmemopen((void *)buf, n, "rb");
    char *p = NULL;
    size_t pn = 0;
    FILE *sig = open_memstream(&p, &pn);

    if (in == NULL || sig == NULL || rs_sig_file(in, sig, block, strong, magic, NULL) != RS_DONE)
        exit(1);
    fclose(in);
    fclose(sig);
    *out = (uint8_t *)p;
    *outn = pn;
}

static void sig_seeds(void)
{
    static uint8_t old[65536];
    uint8_t *sig;
    size_t n;

    basis(old, sizeof(old));
    make_sig(old, sizeof(old), 704, 32, RS_RK_BLAKE2_SIG_MAGIC, &sig, &n);
    save("fuzz_sig", "blake2_704_32", sig, n, NULL, 0);
    save("fuzz_sig", "truncated", sig, n / 2 + 3, NULL, 0);
    free(sig);
    make_sig(old, sizeof(old), 256, 8, RS_RK_BLAKE2_SIG_MAGIC, &sig, &n);
    save("fuzz_sig", "blake2_256_8", sig, n, NULL, 0);
    free(sig);
    make_sig(old, 5000, 1024, 16, RS_MD4_SIG_MAGIC, &sig, &n);
    save("fuzz_sig", "md4_1024_16", sig, n, NULL, 0);
    free(sig);
    make_sig(old, 0, 704, 32, RS_RK_BLAKE2_SIG_MAGIC, &sig, &n);
    save("fuzz_sig", "empty_file", sig, n, NULL, 0);
    free(sig);
}

/* fuzz_session_recv: the replies a target gives to the session the fuzzer
 * drives (ids 1-4 from start, 5-16 from its queued operations). */
static void put_reply(ds_proto_buf_t *b, uint8_t type, uint32_t id, uint8_t flags, ds_msg_t *m)
{
    m->type = type;
    m->id = id;
    m->flags = flags;
    ds_proto_encode(b, m);
    memset(m, 0, sizeof(*m));
}

/* Version 4: the same session answered from the cache (*_SAME: input byte
 * 0 = 5, slices of 1 byte, cached copies) and with packed slices (0 = 1). */
static void session_recv_v4_seeds(const uint8_t *man, size_t mlen, const ds_proto_buf_t *l1,
                                  const ds_proto_buf_t *l2)
{
    ds_proto_buf_t b = {0}, both = {0};
    void *zc = ZSTD_createCCtx();
    uint8_t slice = 5;
    ds_msg_t m = {0};

    ds_proto_buf_append(&both, l1->p, l1->len);
    ds_proto_buf_append(&both, l2->p, l2->len);
    m.u.hello_ok.version = 4;
    m.u.hello_ok.software = ds_pstr("distsync");
    m.u.hello_ok.max_open_files = 16;
    put_reply(&b, DS_MSG_HELLO_OK, 1, 0, &m);
    m.u.lease_ok.expiry = 1700000300;
    put_reply(&b, DS_MSG_LEASE_OK, 2, 0, &m);
    ds_sha256(man, mlen, m.u.same.sha256);
    put_reply(&b, DS_MSG_MANIFEST_SAME, 3, 0, &m);
    ds_sha256(both.p, both.len, m.u.same.sha256);
    put_reply(&b, DS_MSG_LIST_SAME, 4, 0, &m);
    save("fuzz_session_recv", "v4_same", &slice, 1, b.p, b.len);
    b.len = 0;
    slice = 1; /* 7-byte slices, no cache */
    m.u.hello_ok.version = 4;
    m.u.hello_ok.software = ds_pstr("distsync");
    put_reply(&b, DS_MSG_HELLO_OK, 1, 0, &m);
    m.u.lease_ok.expiry = 1700000300;
    put_reply(&b, DS_MSG_LEASE_OK, 2, 0, &m);
    m = (ds_msg_t){.type = DS_MSG_MANIFEST_DATA, .id = 3};
    m.u.blob.data = man;
    m.u.blob.len = (uint32_t)mlen;
    ds_proto_pack(&b, &m, zc, 3);
    m = (ds_msg_t){.type = DS_MSG_LIST_DATA, .id = 4};
    m.u.list.n = 2;
    m.u.list.entries = both.p;
    m.u.list.len = (uint32_t)both.len;
    ds_proto_pack(&b, &m, NULL, 3); /* comp 0 */
    save("fuzz_session_recv", "v4_packed", &slice, 1, b.p, b.len);
    ZSTD_freeCCtx(zc);
    ds_proto_buf_free(&b);
    ds_proto_buf_free(&both);
}

static void session_recv_seeds(void)
{
    ds_proto_buf_t b = {0}, l1 = {0}, l2 = {0};
    ds_list_entry_t e1 = {.path = ds_pstr("patches"), .type = DS_PROTO_T_DIR};
    ds_list_entry_t e2 = {.path = ds_pstr("patches/a"), .type = DS_PROTO_T_FILE, .size = 3};
    static const uint8_t sig[] = {'r', 's', 0x01, 0x47, 0, 0, 4, 0, 0, 0, 0, 8, 1, 2, 3, 4};
    uint8_t sha[DS_SHA256_LEN] = {1}, *man = NULL, slice = 1;
    ds_manifest_t *mf = NULL;
    ds_msg_t m = {0};
    size_t mlen = 0;

    ds_manifest_new(&mf);
    ds_manifest_put(mf, "patches/a", 3, 0, sha);
    ds_manifest_put(mf, "patches/z", 4, 0, sha);
    ds_manifest_encode(mf, &man, &mlen);
    m.u.hello_ok.version = 1;
    m.u.hello_ok.software = ds_pstr("distsync");
    m.u.hello_ok.max_open_files = 16;
    put_reply(&b, DS_MSG_HELLO_OK, 1, 0, &m);
    m.u.lease_ok.expiry = 1700000300;
    put_reply(&b, DS_MSG_LEASE_OK, 2, 0, &m);
    m.u.blob.data = man;
    m.u.blob.len = 30;
    put_reply(&b, DS_MSG_MANIFEST_DATA, 3, DS_PROTO_F_MORE, &m);
    m.u.blob.data = man + 30;
    m.u.blob.len = (uint32_t)(mlen - 30);
    put_reply(&b, DS_MSG_MANIFEST_DATA, 3, 0, &m);
    ds_proto_list_put(&l1, &e1);
    ds_proto_list_put(&l2, &e2);
    m.u.list.n = 1;
    m.u.list.entries = l1.p;
    m.u.list.len = (uint32_t)l1.len;
    put_reply(&b, DS_MSG_LIST_DATA, 4, DS_PROTO_F_MORE, &m);
    m.u.list.n = 1;
    m.u.list.entries = l2.p;
    m.u.list.len = (uint32_t)l2.len;
    put_reply(&b, DS_MSG_LIST_DATA, 4, 0, &m);
    m.u.hash_ok.path = ds_pstr("patches/a");
    m.u.hash_ok.size = 3;
    put_reply(&b, DS_MSG_HASH_OK, 5, 0, &m);
    m.u.blob.data = sig;
    m.u.blob.len = 12;
    put_reply(&b, DS_MSG_SIG_DATA, 6, DS_PROTO_F_MORE, &m);
    m.u.blob.data = sig + 12;
    m.u.blob.len = 4;
    put_reply(&b, DS_MSG_SIG_DATA, 6, 0, &m);
    m.u.file_ok.file_id = 1;
    m.u.file_ok.size = 5;
    put_reply(&b, DS_MSG_FILE_OK, 9, 0, &m);
    m.u.err.file_id = 2;
    m.u.err.code = DS_EABORTED;
    m.u.err.path = ds_pstr("patches/d");
    m.u.err.message = ds_pstr("aborted");
    put_reply(&b, DS_MSG_FILE_ERR, 11, 0, &m);
    m.u.ok.value = 1;
    put_reply(&b, DS_MSG_OK, 12, 0, &m);
    m.u.ok.value = 2;
    put_reply(&b, DS_MSG_OK, 13, 0, &m);
    m.u.blob.data = man;
    m.u.blob.len = (uint32_t)mlen;
    put_reply(&b, DS_MSG_MANIFEST_DATA, 14, 0, &m);
    put_reply(&b, DS_MSG_OK, 15, 0, &m);
    put_reply(&b, DS_MSG_OK, 16, 0, &m);
    save("fuzz_session_recv", "full_session", &slice, 1, b.p, b.len);
    slice = 4; /* one read for everything */
    save("fuzz_session_recv", "full_session_one_read", &slice, 1, b.p, b.len);
    b.len = 0;
    m.u.hello_ok.version = 1;
    put_reply(&b, DS_MSG_HELLO_OK, 1, 0, &m);
    m.u.busy.console_id = ds_pstr("other");
    m.u.busy.message = ds_pstr("server is being synced by console other");
    put_reply(&b, DS_MSG_BUSY, 2, 0, &m);
    save("fuzz_session_recv", "busy", &slice, 1, b.p, b.len);
    session_recv_v4_seeds(man, mlen, &l1, &l2);
    free(man);
    ds_manifest_free(mf);
    ds_proto_buf_free(&b);
    ds_proto_buf_free(&l1);
    ds_proto_buf_free(&l2);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_seeds CORPUS_DIR\n");
        return 2;
    }
    top = argv[1];
    mkdir(top, 0755);
    session_seeds();
    reply_seeds();
    manifest_seeds();
    delta_seeds();
    zpatch_seeds();
    sig_seeds();
    session_recv_seeds();
    return 0;
}

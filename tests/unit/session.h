/*
 * Test helper: builds apply-protocol sessions (console side) and decodes the
 * receiver's replies. Used by test_apply, test_agent_pipe and the fuzzers'
 * seed generation.
 */
#ifndef DS_TEST_SESSION_H
#define DS_TEST_SESSION_H

#include <stdlib.h>
#include <string.h>

#include <librsync.h>
#include <stdio.h>
#include <zstd.h>

#include "distsync/digest.h"
#include "distsync/proto.h"

struct sess {
    ds_proto_buf_t b;
    uint32_t id;
};

static inline uint32_t s_put(struct sess *s, ds_msg_t *m)
{
    m->id = ++s->id;
    if (ds_proto_encode(&s->b, m) != 0)
        abort();
    return m->id;
}

static inline uint32_t s_hello_v(struct sess *s, const char *console, uint16_t min, uint16_t max)
{
    ds_msg_t m = {.type = DS_MSG_HELLO};

    m.u.hello.magic = DS_PROTO_MAGIC;
    m.u.hello.min_version = min;
    m.u.hello.max_version = max;
    m.u.hello.console_id = ds_pstr(console);
    m.u.hello.software = ds_pstr("test");
    return s_put(s, &m);
}

/* HELLO offering every version this build speaks. */
static inline uint32_t s_hello(struct sess *s, const char *console)
{
    return s_hello_v(s, console, DS_PROTO_VERSION_MIN, DS_PROTO_VERSION_MAX);
}

static inline uint32_t s_lease(struct sess *s, uint8_t op, const char *console, uint32_t ttl)
{
    ds_msg_t m = {.type = DS_MSG_LEASE};

    m.u.lease.op = op;
    m.u.lease.console_id = ds_pstr(console);
    m.u.lease.pid = 4242;
    m.u.lease.host = ds_pstr("consolehost");
    m.u.lease.ttl_s = ttl;
    return s_put(s, &m);
}

static inline uint32_t s_empty(struct sess *s, uint8_t type)
{
    ds_msg_t m = {.type = type};

    return s_put(s, &m);
}

static inline uint32_t s_path(struct sess *s, uint8_t type, const char *path)
{
    ds_msg_t m = {.type = type};

    m.u.path.path = ds_pstr(path);
    return s_put(s, &m);
}

static inline uint32_t s_begin(struct sess *s, uint32_t fid, const char *path, uint64_t size)
{
    ds_msg_t m = {.type = DS_MSG_FILE_BEGIN};

    m.u.begin.file_id = fid;
    m.u.begin.path = ds_pstr(path);
    m.u.begin.size = size;
    m.u.begin.mode = 0644;
    m.u.begin.mtime_ns = DS_PROTO_NO_MTIME;
    return s_put(s, &m);
}

static inline uint32_t s_copy(struct sess *s, uint32_t fid, const char *basis, uint64_t off,
                              uint64_t len)
{
    ds_msg_t m = {.type = DS_MSG_COPY};

    m.u.copy.file_id = fid;
    m.u.copy.basis = ds_pstr(basis);
    m.u.copy.offset = off;
    m.u.copy.length = len;
    return s_put(s, &m);
}

/* LITERAL (basis NULL) or DELTA; zstd-compresses when zst is set. */
static inline uint32_t s_data(struct sess *s, uint32_t fid, const char *basis, const void *p,
                              size_t n, int zst)
{
    ds_msg_t m = {.type = basis ? DS_MSG_DELTA : DS_MSG_LITERAL};
    void *z = NULL;
    uint32_t id;

    m.u.data.file_id = fid;
    m.u.data.basis = ds_pstr(basis);
    m.u.data.raw_len = (uint32_t)n;
    m.u.data.data = p;
    m.u.data.data_len = (uint32_t)n;
    if (zst) {
        size_t cap = ZSTD_compressBound(n), zn;

        z = malloc(cap);
        zn = ZSTD_compress(z, cap, p, n, 3);
        if (ZSTD_isError(zn))
            abort();
        m.u.data.comp = DS_PROTO_COMP_ZSTD;
        m.u.data.data = z;
        m.u.data.data_len = (uint32_t)zn;
    }
    id = s_put(s, &m);
    free(z);
    return id;
}

static inline uint32_t s_file(struct sess *s, uint8_t type, uint32_t fid)
{
    ds_msg_t m = {.type = type};

    m.u.file.file_id = fid;
    return s_put(s, &m);
}

static inline uint32_t s_commit(struct sess *s, uint32_t fid, uint64_t size, const uint8_t *sha)
{
    ds_msg_t m = {.type = DS_MSG_FILE_COMMIT};

    m.u.commit.file_id = fid;
    m.u.commit.size = size;
    memcpy(m.u.commit.sha256, sha, DS_SHA256_LEN);
    return s_put(s, &m);
}

static inline uint32_t s_adopt(struct sess *s, const char *path, uint64_t size, int64_t mtime_ns,
                               const uint8_t *sha)
{
    ds_msg_t m = {.type = DS_MSG_ADOPT};

    m.u.adopt.path = ds_pstr(path);
    m.u.adopt.size = size;
    m.u.adopt.mtime_ns = mtime_ns;
    memcpy(m.u.adopt.sha256, sha, DS_SHA256_LEN);
    return s_put(s, &m);
}

/* Whole file as one LITERAL: begin + literal + commit with the right hash. */
static inline uint32_t s_whole(struct sess *s, uint32_t fid, const char *path, const void *p,
                               size_t n)
{
    uint8_t sha[DS_SHA256_LEN];

    if (ds_sha256(p, n, sha) != 0)
        abort();
    s_begin(s, fid, path, n);
    if (n)
        s_data(s, fid, NULL, p, n, 0);
    return s_commit(s, fid, n, sha);
}

/* Buffers of the packed replies s_replies() unpacked (version 4): valid
 * until its next call. */
static uint8_t **s_unpacked;
static size_t s_nunpacked;

static inline void s_unpacked_free(void)
{
    for (size_t i = 0; i < s_nunpacked; i++)
        free(s_unpacked[i]);
    free(s_unpacked);
    s_unpacked = NULL;
    s_nunpacked = 0;
}

/* Replaces a packed *m by its plain message, as a version 4 console does.
 * Returns 0 or -1. */
static inline int s_unpack(ds_msg_t *m)
{
    ds_proto_unpacker_t u = {0};
    uint8_t **v;
    ds_msg_t plain;
    int rc = ds_proto_unpack(&u, m, &plain);

    v = rc == 0 ? realloc(s_unpacked, (s_nunpacked + 1) * sizeof(*v)) : NULL;
    if (v == NULL) {
        ds_proto_unpacker_free(&u);
        return -1;
    }
    if (s_unpacked == NULL)
        atexit(s_unpacked_free);
    s_unpacked = v;
    s_unpacked[s_nunpacked++] = u.buf.p; /* plain borrows from it */
    u.buf.p = NULL;
    ds_proto_unpacker_free(&u);
    *m = plain;
    return 0;
}

/* Decodes every complete frame in p[0, n) into out (at most max); packed
 * replies are unpacked. Returns the count, or -1 on a malformed frame. */
static inline int s_replies(const uint8_t *p, size_t n, ds_msg_t *out, int max)
{
    int k = 0;

    for (size_t i = 0; i < s_nunpacked; i++)
        free(s_unpacked[i]);
    s_nunpacked = 0;
    while (n > 0 && k < max) {
        long fl = ds_proto_frame_len(p, n);

        if (fl <= 0 || ds_proto_decode(p, (size_t)fl, &out[k]) != 0)
            return -1;
        if ((out[k].flags & DS_PROTO_F_PACKED) && s_unpack(&out[k]) < 0)
            return -1;
        k++;
        p += fl;
        n -= (size_t)fl;
    }
    return k;
}

/* The reply (index) whose id is id, or NULL. */
static inline const ds_msg_t *s_find(const ds_msg_t *r, int n, uint32_t id)
{
    for (int i = 0; i < n; i++)
        if (r[i].id == id)
            return &r[i];
    return NULL;
}

/* librsync delta turning old into new, in a malloc'd buffer. Returns 0 or -1. */
static inline int s_make_delta(const void *old, size_t on, const void *nw, size_t nn,
                               uint8_t **delta, size_t *dn)
{
    FILE *fo = tmpfile(), *fn = tmpfile(), *fs = tmpfile(), *fd = tmpfile();
    rs_signature_t *sig = NULL;
    long len;
    int rc = -1;

    if (!fo || !fn || !fs || !fd)
        goto out;
    fwrite(old, 1, on, fo);
    fwrite(nw, 1, nn, fn);
    rewind(fo);
    rewind(fn);
    if (rs_sig_file(fo, fs, 256, 0, RS_RK_BLAKE2_SIG_MAGIC, NULL) != RS_DONE)
        goto out;
    rewind(fs);
    if (rs_loadsig_file(fs, &sig, NULL) != RS_DONE || rs_build_hash_table(sig) != RS_DONE)
        goto out;
    if (rs_delta_file(sig, fn, fd, NULL) != RS_DONE)
        goto out;
    len = ftell(fd);
    rewind(fd);
    *delta = malloc((size_t)len + 1);
    *dn = fread(*delta, 1, (size_t)len, fd);
    rc = *dn == (size_t)len ? 0 : -1;
out:
    if (sig)
        rs_free_sumset(sig);
    for (FILE **f = (FILE *[]){fo, fn, fs, fd, NULL}; *f; f++)
        fclose(*f);
    return rc;
}

#endif

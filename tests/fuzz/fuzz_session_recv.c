/*
 * Console-side fuzz target: arbitrary bytes arrive as the target's replies
 * to a write session (HELLO, LEASE, MANIFEST_GET, LIST; once READY a HASH,
 * a SIG, two files, a DELETE, MANIFEST_COMMIT, a manifest refresh and the
 * close), through a transport that hands the input over one slice per
 * step, as a target answers what was asked (the operations are queued
 * between steps, once READY). Input byte 0 picks the slice size (% 5) and
 * whether the console holds a cached manifest and listing (/ 5 odd:
 * protocol version 4 conditional fetch, MANIFEST_SAME / LIST_SAME).
 * Decoding every reply type, packed (zstd) slices, the streamed manifest,
 * listing and signature, their caps and the FIFO matching must hold: no
 * crash, no leak, no unbounded loop.
 */
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/proto.h"
#include "distsync/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct feed {
    ds_transport_t t; /* first: the common head */
    const uint8_t *p;
    size_t n, off, slice;
    int gave; /* a slice went out in this step: the next read has nothing */
};

static long f_write(ds_transport_t *t, const void *p, size_t n)
{
    (void)t;
    (void)p;
    return (long)n;
}

static long f_read(ds_transport_t *t, void *buf, size_t cap)
{
    struct feed *f = (struct feed *)t;
    size_t k = f->n - f->off;

    if (k == 0)
        return DS_ETRANSPORT; /* end of the replies */
    if (f->gave)
        return 0;
    f->gave = 1;
    if (k > f->slice)
        k = f->slice;
    if (k > cap)
        k = cap;
    memcpy(buf, f->p + f->off, k);
    f->off += k;
    return (long)k;
}

static int f_close(ds_transport_t *t)
{
    (void)t;
    return 0;
}

static void f_free(ds_transport_t *t)
{
    (void)t;
}

static const ds_transport_ops_t feed_ops = {
    .name = "fuzz", .write = f_write, .read = f_read, .close = f_close, .free = f_free};

/* What the sync driver asks of a READY session (the ids follow the four
 * requests of ds_session_start: 5 HASH, 6 SIG, 9 FILE_COMMIT...). */
static void queue_ops(ds_session_t *s)
{
    static const uint8_t sha[DS_SHA256_LEN];
    uint32_t fid;

    /* Any outcome will do: the target's bytes decide it, and the fuzzer
     * looks for crashes and leaks, not for results. */
    (void)ds_session_hash(s, "patches/a", 1);
    (void)ds_session_sig(s, "patches/b", 100000, 1024, 8, 2);
    if (ds_session_file_begin(s, "patches/c", 5, 0644, 0, 3, &fid) == 0) {
        (void)ds_session_file_data(s, fid, NULL, "hello", 5);
        (void)ds_session_file_commit(s, fid, 5, sha);
    }
    if (ds_session_file_begin(s, "patches/d", 1, 0644, 0, 4, &fid) == 0)
        (void)ds_session_file_abort(s, fid);
    (void)ds_session_delete(s, "patches/e", 5);
    (void)ds_session_commit_manifest(s);
    (void)ds_session_refresh_manifest(s);
    (void)ds_session_close(s);
}

/* The cached copies (the manifest and listing of gen_seeds.c's seeds). */
static void known_copies(ds_session_opts_t *o)
{
    static ds_proto_buf_t list;
    static uint8_t *man;
    static size_t mlen;

    if (man == NULL) {
        static const uint8_t sha[DS_SHA256_LEN] = {1};
        ds_list_entry_t e1 = {.path = ds_pstr("patches"), .type = DS_PROTO_T_DIR};
        ds_list_entry_t e2 = {.path = ds_pstr("patches/a"), .type = DS_PROTO_T_FILE, .size = 3};
        ds_manifest_t *mf = NULL;

        if (ds_manifest_new(&mf) < 0)
            abort();
        if (ds_manifest_put(mf, "patches/a", 3, 0, sha) < 0 ||
            ds_manifest_put(mf, "patches/z", 4, 0, sha) < 0 ||
            ds_manifest_encode(mf, &man, &mlen) < 0)
            abort();
        ds_manifest_free(mf);
        if (ds_proto_list_put(&list, &e1) < 0 || ds_proto_list_put(&list, &e2) < 0)
            abort();
    }
    o->known_manifest = man;
    o->known_manifest_len = mlen;
    o->known_list = list.p;
    o->known_list_len = list.len;
}

static void count_fetched(void *arg, int what, const uint8_t *p, size_t n, int end)
{
    (void)what;
    (void)p;
    *(size_t *)arg += n + (size_t)end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t slices[] = {1, 7, 64, 4096, 1u << 20};
    struct feed f = {.t = {.ops = &feed_ops, .rfd = -1, .wfd = -1}};
    ds_session_opts_t o = {.console_id = "fuzz", .host = "h", .pid = 1, .write = 1};
    ds_session_t *s = NULL;
    ds_session_result_t r;
    int queued = 0;
    size_t fetched = 0;

    if (size < 1)
        return 0;
    f.p = data + 1;
    f.n = size - 1;
    f.slice = slices[data[0] % 5];
    if ((data[0] / 5) % 2)
        known_copies(&o);
    o.fetched = count_fetched;
    o.fetched_arg = &fetched;
    if (ds_session_new(&f.t, &o, &s) < 0)
        return 0;
    (void)ds_session_start(s); /* a failure shows in the phase */
    for (int i = 0; i < 100000 && ds_session_phase(s) < DS_SESSION_DONE; i++) {
        f.gave = 0;
        (void)ds_session_step(s, 1700000000 + i); /* as the phase says */
        if (ds_session_phase(s) == DS_SESSION_READY && !queued) {
            const ds_session_entry_t *e;
            size_t n;

            ds_session_listing(s, &e, &n);
            for (size_t k = 0; k < n; k++)
                if (strlen(e[k].path) > DS_PROTO_STR_MAX)
                    abort();
            if (ds_session_manifest(s) == NULL)
                abort();
            queue_ops(s);
            queued = 1;
        }
        while (ds_session_next_result(s, &r))
            if (r.path == NULL || r.message == NULL ||
                (r.kind == DS_SRES_SIG && r.len > 0 && r.len > ds_session_sig_max(100000, 1024, 8)))
                abort();
    }
    ds_session_free(s);
    return 0;
}

/*
 * Protocol version 4 in the sender session: packed (zstd) MANIFEST_DATA and
 * LIST_DATA, and the conditional fetch (opts.known_*, MANIFEST_SAME /
 * LIST_SAME) against the real in-process receiver and the real agent; a
 * version 3 agent; and a fake hostile target for what no real one sends
 * (a decompression bomb, a listing past the cap in compressed frames,
 * packed frames in a version 3 session, an unasked LIST_SAME).
 */
#include <signal.h>
#include <time.h>
#include <zstd.h>

#include "check.h"
#include "distsync/error.h"
#include "distsync/proto.h"
#include "distsync/session.h"
#include "distsync/transport.h"

static char root[4096];
static int g_pipeline; /* open_ready's sessions pipeline (opts.pipeline) */

/* What opts.fetched received, per stream, and how often each ended. */
struct rec {
    ds_proto_buf_t b[2];
    int ends[2];
};

static void rec_fetched(void *arg, int what, const uint8_t *p, size_t n, int end)
{
    struct rec *r = arg;

    if (end)
        r->ends[what]++;
    else
        CHECK_INT(ds_proto_buf_append(&r->b[what], p, n), 0);
}

static void rec_free(struct rec *r)
{
    ds_proto_buf_free(&r->b[0]);
    ds_proto_buf_free(&r->b[1]);
}

static int write_file(const char *path, const char *text)
{
    char full[4200];
    FILE *f;

    snprintf(full, sizeof(full), "%s/%s", root, path);
    f = fopen(full, "w");
    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static int pump(ds_session_t *s, int want)
{
    for (int i = 0; i < 100000; i++) {
        int rfd, wfd;
        short ev;

        if (ds_session_step(s, time(NULL)) < 0)
            return -1;
        if ((int)ds_session_phase(s) == want ||
            (want == DS_SESSION_READY + 10 && ds_session_idle(s)))
            return 0;
        if (!ds_session_poll(s, &rfd, &wfd, &ev)) {
            struct timespec ts = {0, 1000000};

            nanosleep(&ts, NULL);
        }
    }
    return -1;
}

/* A session to root over transport mode, READY (or NULL), recording what
 * it fetched into r, with the cache c (NULL: none). */
static ds_session_t *open_ready(ds_transport_t **t, const char *mode, int write, struct rec *r,
                                const struct rec *c)
{
    ds_transport_cfg_t tc = {.mode = mode, .agent = getenv("DISTSYNC"), .no_fsync = 1};
    ds_session_opts_t so = {
        .console_id = "known", .host = "h", .pid = 1, .write = write, .pipeline = g_pipeline};
    char url[4200], err[512];
    ds_session_t *s = NULL;

    snprintf(url, sizeof(url), "file://%s", root);
    tc.url = url;
    so.fetched = rec_fetched;
    so.fetched_arg = r;
    if (c) {
        so.known_manifest = c->b[0].p ? c->b[0].p : (const uint8_t *)"";
        so.known_manifest_len = c->b[0].len;
        so.known_list = c->b[1].p ? c->b[1].p : (const uint8_t *)"";
        so.known_list_len = c->b[1].len;
    }
    if (ds_transport_open(&tc, t, err, sizeof(err)) != 0) {
        fprintf(stderr, "transport: %s\n", err);
        return NULL;
    }
    if (ds_session_new(*t, &so, &s) != 0 || ds_session_start(s) != 0 ||
        pump(s, DS_SESSION_READY) != 0) {
        fprintf(stderr, "session: %s\n", s ? ds_session_error(s) : "?");
        ds_session_free(s);
        ds_transport_free(*t);
        return NULL;
    }
    return s;
}

static void close_session(ds_session_t *s, ds_transport_t *t)
{
    CHECK_INT(ds_session_close(s), 0);
    CHECK_INT(pump(s, DS_SESSION_DONE), 0);
    (void)ds_transport_close(t);
    ds_session_free(s);
    ds_transport_free(t);
}

/* Seeds the target: three files through a write session, manifest committed. */
static void seed(void)
{
    static const char *const names[] = {"a.txt", "dir/b.txt", "dir/c.txt"};
    ds_transport_t *t = NULL;
    struct rec r = {0};
    ds_session_t *s = open_ready(&t, "local", 1, &r, NULL);
    ds_session_result_t res;

    CHECK(s != NULL);
    if (s == NULL)
        return;
    for (int i = 0; i < 3; i++) {
        uint8_t sha[DS_SHA256_LEN];
        char body[64];
        uint32_t fid;

        snprintf(body, sizeof(body), "content of %s\n", names[i]);
        CHECK_INT(ds_sha256(body, strlen(body), sha), 0);
        CHECK_INT(
            ds_session_file_begin(s, names[i], strlen(body), 0644, DS_PROTO_NO_MTIME, 1, &fid), 0);
        CHECK_INT(ds_session_file_data(s, fid, NULL, body, strlen(body)), 0);
        CHECK_INT(ds_session_file_commit(s, fid, strlen(body), sha), 0);
    }
    CHECK_INT(ds_session_commit_manifest(s), 0);
    CHECK_INT(pump(s, DS_SESSION_READY + 10), 0);
    while (ds_session_next_result(s, &res))
        CHECK_INT(res.rc, 0);
    close_session(s, t);
    rec_free(&r);
}

/* Sorted "path size mtime type" lines of a session's listing, for comparison. */
static char *listing_text(const ds_session_t *s)
{
    const ds_session_entry_t *e;
    ds_proto_buf_t b = {0};
    size_t n;
    char line[4300];

    ds_session_listing(s, &e, &n);
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(line, sizeof(line), "%s %llu %lld %u\n", e[i].path,
                         (unsigned long long)e[i].size, (long long)e[i].mtime_ns, e[i].type);

        CHECK_INT(ds_proto_buf_append(&b, line, (size_t)k), 0);
    }
    CHECK_INT(ds_proto_buf_append(&b, "", 1), 0);
    return (char *)b.p;
}

/* Full fetch, then the same with the cache (SAME, nothing streamed, same
 * listing and manifest), then a target changed behind our back (listing
 * fetched again in full, manifest still SAME), then a cache that is not
 * the target's (full fetch). */
static void conditional(const char *mode)
{
    ds_transport_t *t = NULL;
    struct rec full = {0}, again = {0}, changed = {0}, bad = {0};
    ds_session_t *s = open_ready(&t, mode, 0, &full, NULL);
    uint64_t in_full, in_same;
    char *l0, *l1;
    size_t count;

    CHECK(s != NULL);
    if (s == NULL)
        return;
    CHECK_INT(ds_session_version(s), DS_PROTO_VERSION_MAX);
    CHECK(full.ends[0] == 1 && full.ends[1] == 1 && full.b[0].len > 0 && full.b[1].len > 0);
    in_full = ds_session_stats(s)->bytes_in;
    count = ds_manifest_count(ds_session_manifest(s));
    CHECK_INT(count, 3);
    l0 = listing_text(s);
    close_session(s, t);

    s = open_ready(&t, mode, 0, &again, &full);
    CHECK(s != NULL);
    if (s) {
        in_same = ds_session_stats(s)->bytes_in;
        CHECK(again.ends[0] == 0 && again.ends[1] == 0); /* nothing streamed */
        CHECK(in_same < 300 && in_same * 2 < in_full);
        CHECK_INT(ds_manifest_count(ds_session_manifest(s)), count);
        l1 = listing_text(s);
        CHECK_STR(l1, l0);
        free(l1);
        close_session(s, t);
    }

    CHECK_INT(write_file("dir/b.txt", "changed behind our back, longer\n"), 0);
    s = open_ready(&t, mode, 0, &changed, &full);
    CHECK(s != NULL);
    if (s) {
        CHECK_INT(changed.ends[1], 1); /* listing changed: fetched */
        CHECK_INT(changed.ends[0], 0); /* manifest unchanged: SAME */
        l1 = listing_text(s);
        CHECK(strcmp(l1, l0) != 0 && strstr(l1, "dir/b.txt 32 ") != NULL);
        free(l1);
        CHECK_INT(ds_manifest_count(ds_session_manifest(s)), count);
        close_session(s, t);
    }

    /* known bytes that are not the target's: a full fetch, right answers */
    full.b[1].p[full.b[1].len - 1] ^= 1;
    full.b[0].len -= 1;
    s = open_ready(&t, mode, 0, &bad, &full);
    CHECK(s != NULL);
    if (s) {
        CHECK(bad.ends[0] == 1 && bad.ends[1] == 1);
        CHECK_INT(ds_manifest_count(ds_session_manifest(s)), count);
        l1 = listing_text(s);
        CHECK(strstr(l1, "dir/b.txt 32 ") != NULL);
        free(l1);
        close_session(s, t);
    }
    CHECK_INT(write_file("dir/b.txt", "content of dir/b.txt\n"), 0);
    free(l0);
    rec_free(&full);
    rec_free(&again);
    rec_free(&changed);
    rec_free(&bad);
}

static void test_local(void)
{
    conditional("local");
}

static void test_agent(void)
{
    if (getenv("DISTSYNC") == NULL) {
        fprintf(stderr, "skip: $DISTSYNC not set\n");
        return;
    }
    conditional("agent");
}

/* A version 3 agent: plain requests after HELLO_OK, full fetch, same result. */
static void test_agent_v3(void)
{
    ds_transport_t *t = NULL;
    struct rec full = {0}, v3 = {0};
    ds_session_t *s;

    if (getenv("DISTSYNC") == NULL)
        return;
    s = open_ready(&t, "agent", 0, &full, NULL);
    CHECK(s != NULL);
    if (s == NULL)
        return;
    close_session(s, t);
    setenv("DISTSYNC_TEST_MAX_PROTOCOL", "3", 1);
    s = open_ready(&t, "agent", 0, &v3, &full);
    unsetenv("DISTSYNC_TEST_MAX_PROTOCOL");
    CHECK(s != NULL);
    if (s) {
        CHECK_INT(ds_session_version(s), 3);
        CHECK(v3.ends[0] == 1 && v3.ends[1] == 1);
        CHECK_INT(ds_manifest_count(ds_session_manifest(s)), 3);
        close_session(s, t);
    }
    rec_free(&full);
    rec_free(&v3);
}

/* The frames of a prelude, decoded in order into m (at most n); returns
 * how many, -1 on a malformed one. */
static int prelude_frames(const uint8_t *p, size_t len, ds_msg_t *m, int n)
{
    int k = 0;

    while (len > 0 && k < n) {
        long fl = ds_proto_frame_len(p, len);

        if (fl <= 0 || ds_proto_decode(p, (size_t)fl, &m[k]) != 0)
            return -1;
        p += fl;
        len -= (size_t)fl;
        k++;
    }
    return len == 0 ? k : -1;
}

/* opts.pipeline with a known copy: HELLO offering 4..max, LEASE,
 * MANIFEST_GET and LIST with the known digests, in ds_session_prelude's
 * bytes; without a known copy, the plain requests behind HELLO 1..max. */
static void test_prelude(void)
{
    static const uint8_t man[] = "manifest bytes", list[] = "listing bytes";
    ds_session_opts_t so = {
        .console_id = "known", .host = "h", .pid = 1, .write = 1, .pipeline = 1};
    uint8_t sha[DS_SHA256_LEN], *p = NULL;
    ds_msg_t m[6];
    size_t n;

    CHECK_INT(ds_session_prelude(&so, &p, &n), 0); /* no known copy: plain requests */
    CHECK_INT(prelude_frames(p, n, m, 6), 4);
    CHECK(m[0].type == DS_MSG_HELLO && m[0].u.hello.min_version == DS_PROTO_VERSION_MIN);
    CHECK(m[1].type == DS_MSG_LEASE);
    CHECK(m[2].type == DS_MSG_MANIFEST_GET && !m[2].u.path.has_known);
    CHECK(m[3].type == DS_MSG_LIST && !m[3].u.path.has_known);
    free(p);
    so.known_manifest = man;
    so.known_manifest_len = sizeof(man);
    so.known_list = list;
    so.known_list_len = sizeof(list);
    CHECK_INT(ds_session_prelude(&so, &p, &n), 0);
    CHECK_INT(prelude_frames(p, n, m, 6), 4);
    CHECK(m[0].type == DS_MSG_HELLO && m[0].id == 1);
    CHECK_INT(m[0].u.hello.min_version, DS_PROTO_VERSION_COND);
    CHECK_INT(m[0].u.hello.max_version, DS_PROTO_VERSION_MAX);
    CHECK(m[1].type == DS_MSG_LEASE && m[1].u.lease.op == DS_LEASE_OP_ACQUIRE);
    CHECK(m[2].type == DS_MSG_MANIFEST_GET && m[2].u.path.has_known);
    CHECK_INT(ds_sha256(man, sizeof(man), sha), 0);
    CHECK(memcmp(m[2].u.path.known, sha, DS_SHA256_LEN) == 0);
    CHECK(m[3].type == DS_MSG_LIST && m[3].u.path.has_known);
    CHECK_INT(ds_sha256(list, sizeof(list), sha), 0);
    CHECK(memcmp(m[3].u.path.known, sha, DS_SHA256_LEN) == 0);
    free(p);
}

/* Pipelined against the real agent: the known copies answered SAME, the
 * session READY at version max. Against a version 3 agent: HELLO refused,
 * ds_session_refused, and the pipelined LEASE not acted on (no lease
 * file); without pipelining the same agent then agrees version 3. */
static void test_agent_pipelined(void)
{
    ds_transport_cfg_t tc = {.mode = "agent", .agent = getenv("DISTSYNC"), .no_fsync = 1};
    ds_session_opts_t so = {
        .console_id = "known", .host = "h", .pid = 1, .write = 1, .pipeline = 1};
    struct rec full = {0}, again = {0};
    ds_transport_t *t = NULL;
    ds_session_t *s;
    char url[4200], lease[4300], err[512];

    if (getenv("DISTSYNC") == NULL)
        return;
    s = open_ready(&t, "agent", 0, &full, NULL);
    CHECK(s != NULL);
    if (s == NULL)
        return;
    close_session(s, t);
    g_pipeline = 1;
    s = open_ready(&t, "agent", 1, &again, &full);
    g_pipeline = 0;
    CHECK(s != NULL);
    if (s) {
        CHECK_INT(ds_session_version(s), DS_PROTO_VERSION_MAX);
        CHECK(again.ends[0] == 0 && again.ends[1] == 0); /* answered SAME */
        CHECK_INT(ds_manifest_count(ds_session_manifest(s)), 3);
        close_session(s, t);
    }
    snprintf(url, sizeof(url), "file://%s", root);
    snprintf(lease, sizeof(lease), "%s/.distsync/lease", root);
    tc.url = url;
    so.known_manifest = full.b[0].p;
    so.known_manifest_len = full.b[0].len;
    so.known_list = full.b[1].p;
    so.known_list_len = full.b[1].len;
    setenv("DISTSYNC_TEST_MAX_PROTOCOL", "3", 1);
    CHECK_INT(ds_transport_open(&tc, &t, err, sizeof(err)), 0);
    CHECK_INT(ds_session_new(t, &so, &s), 0);
    CHECK_INT(ds_session_start(s), 0);
    CHECK_INT(pump(s, DS_SESSION_READY), -1);
    unsetenv("DISTSYNC_TEST_MAX_PROTOCOL");
    CHECK_INT(ds_session_refused(s), 1);
    CHECK(strstr(ds_session_error(s), "versions 4..") != NULL);
    CHECK(access(lease, F_OK) != 0); /* the LEASE behind the refused HELLO: ignored */
    (void)ds_transport_close(t);
    ds_session_free(s);
    ds_transport_free(t);
    rec_free(&full);
    rec_free(&again);
}

/* ---- a fake hostile target: replies scripted byte for byte ---- */

struct fake {
    ds_transport_t t; /* first: the common head */
    ds_proto_buf_t replies;
    size_t off;
};

static long f_write(ds_transport_t *t, const void *p, size_t n)
{
    (void)t;
    (void)p;
    return (long)n;
}

static long f_read(ds_transport_t *t, void *buf, size_t cap)
{
    struct fake *f = (struct fake *)t;
    size_t k = f->replies.len - f->off;

    if (k == 0)
        return 0;
    if (k > cap)
        k = cap;
    memcpy(buf, f->replies.p + f->off, k);
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

static const ds_transport_ops_t fake_ops = {
    .name = "fake", .write = f_write, .read = f_read, .close = f_close, .free = f_free};

static void fake_hello(struct fake *f, unsigned version)
{
    ds_msg_t m = {.type = DS_MSG_HELLO_OK, .id = 1};

    m.u.hello_ok.version = (uint16_t)version;
    m.u.hello_ok.software = ds_pstr("fake");
    m.u.hello_ok.max_payload = DS_PROTO_MAX_PAYLOAD;
    m.u.hello_ok.max_open_files = 16;
    CHECK_INT(ds_proto_encode(&f->replies, &m), 0);
}

/* Runs a read session (known: with a cache) against the scripted replies;
 * returns its code and copies its error. */
static int fake_run(struct fake *f, int known, char *err, size_t errlen)
{
    ds_session_opts_t so = {.console_id = "c", .host = "h", .pid = 1};
    ds_session_t *s = NULL;
    int rc = 0;

    f->t.ops = &fake_ops;
    f->t.rfd = f->t.wfd = -1;
    if (known) {
        so.known_manifest = (const uint8_t *)"x";
        so.known_manifest_len = 1;
        so.known_list = (const uint8_t *)"";
    }
    CHECK_INT(ds_session_new(&f->t, &so, &s), 0);
    CHECK_INT(ds_session_start(s), 0);
    for (int i = 0; i < 1000 && rc == 0 && ds_session_phase(s) == DS_SESSION_CONNECTING; i++)
        rc = ds_session_step(s, 1);
    snprintf(err, errlen, "%s", ds_session_error(s));
    ds_session_free(s);
    ds_proto_buf_free(&f->replies);
    f->off = 0;
    return rc;
}

/* A packed frame of type with a zstd frame of zeros: raw bytes decompressed,
 * declared raw_len. */
static void fake_packed_zeros(struct fake *f, uint8_t type, uint32_t id, uint8_t flags, size_t raw,
                              uint32_t raw_len)
{
    uint8_t *zeros = calloc(1, raw);
    size_t bound = ZSTD_compressBound(raw);
    uint8_t *z = malloc(bound);
    ds_msg_t m = {.type = type, .id = id, .flags = (uint8_t)(flags | DS_PROTO_F_PACKED)};
    size_t zn = ZSTD_compress(z, bound, zeros, raw, 19);

    CHECK(!ZSTD_isError(zn));
    m.u.packed.comp = DS_PROTO_COMP_ZSTD;
    m.u.packed.raw_len = raw_len;
    m.u.packed.data = z;
    m.u.packed.data_len = (uint32_t)zn;
    CHECK_INT(ds_proto_encode(&f->replies, &m), 0);
    free(zeros);
    free(z);
}

/* 64 MiB of zeros in a 1 MiB-declared MANIFEST_DATA: refused, bounded. */
static void test_fake_bomb(void)
{
    struct fake f = {0};
    char err[1024];

    fake_hello(&f, DS_PROTO_VERSION_MAX);
    fake_packed_zeros(&f, DS_MSG_MANIFEST_DATA, 2, 0, 64u << 20, 1u << 20);
    CHECK(f.replies.len < 64u << 10); /* a few KiB on the wire */
    CHECK_INT(fake_run(&f, 0, err, sizeof(err)), DS_ECORRUPT);
    CHECK(strstr(err, "malformed packed MANIFEST_DATA") != NULL);
}

/* A listing past the 256 MiB cap, in frames that each decompress within
 * their raw_len: the cap counts decompressed entries. */
static void test_fake_list_cap(void)
{
    struct fake f = {0};
    ds_proto_buf_t ents = {0};
    ds_list_entry_t e = {.type = DS_PROTO_T_FILE, .size = 1, .mtime_ns = 1, .mode = 0644};
    char path[4001];
    uint32_t n = 0;
    void *zc = ZSTD_createCCtx();
    char err[1024];

    memset(path, 'p', 4000);
    path[4000] = '\0';
    e.path = ds_pstr(path);
    while (ents.len + 4100 < DS_PROTO_MAX_DATA - 8) {
        CHECK_INT(ds_proto_list_put(&ents, &e), 0);
        n++;
    }
    fake_hello(&f, DS_PROTO_VERSION_MAX);
    {
        ds_msg_t m = {.type = DS_MSG_MANIFEST_DATA, .id = 2};
        ds_manifest_t *man = NULL;
        uint8_t *b = NULL;
        size_t bl = 0;

        CHECK_INT(ds_manifest_new(&man), 0);
        CHECK_INT(ds_manifest_encode(man, &b, &bl), 0);
        m.u.blob.data = b;
        m.u.blob.len = (uint32_t)bl;
        CHECK_INT(ds_proto_pack(&f.replies, &m, zc, 3), 0);
        free(b);
        ds_manifest_free(man);
    }
    for (int i = 0; i < 40; i++) {
        ds_msg_t m = {.type = DS_MSG_LIST_DATA, .id = 3, .flags = DS_PROTO_F_MORE};

        m.u.list.n = n;
        m.u.list.entries = ents.p;
        m.u.list.len = (uint32_t)ents.len;
        CHECK_INT(ds_proto_pack(&f.replies, &m, zc, 3), 0);
    }
    CHECK(f.replies.len < 16u << 20); /* 40 frames of ~8 MiB raw, compressed */
    CHECK_INT(fake_run(&f, 0, err, sizeof(err)), DS_ETOOBIG);
    CHECK(strstr(err, "listing is larger than the 256 MiB limit") != NULL);
    ZSTD_freeCCtx(zc);
    ds_proto_buf_free(&ents);
}

/* Packed frames in a version 3 session, and a LIST_SAME nobody asked for. */
static void test_fake_violations(void)
{
    struct fake f = {0};
    char err[1024];
    ds_msg_t same = {.type = DS_MSG_LIST_SAME, .id = 3};

    fake_hello(&f, 3);
    fake_packed_zeros(&f, DS_MSG_MANIFEST_DATA, 2, 0, 100, 100);
    CHECK_INT(fake_run(&f, 0, err, sizeof(err)), DS_EPROTO);
    CHECK(strstr(err, "packed MANIFEST_DATA from a protocol version 3 target") != NULL);

    fake_hello(&f, DS_PROTO_VERSION_MAX); /* no cache: LIST asked plainly */
    {
        ds_msg_t m = {.type = DS_MSG_MANIFEST_SAME, .id = 2};

        CHECK_INT(ds_proto_encode(&f.replies, &m), 0);
    }
    CHECK_INT(fake_run(&f, 0, err, sizeof(err)), DS_EPROTO);
    CHECK(strstr(err, "MANIFEST_SAME from the target does not answer our request") != NULL);

    fake_hello(&f, DS_PROTO_VERSION_MAX); /* with a cache: a wrong digest */
    memset(same.u.same.sha256, 7, DS_SHA256_LEN);
    same.type = DS_MSG_MANIFEST_SAME;
    same.id = 2;
    CHECK_INT(ds_proto_encode(&f.replies, &same), 0);
    CHECK_INT(fake_run(&f, 1, err, sizeof(err)), DS_EPROTO);
    CHECK(strstr(err, "does not answer our request") != NULL);
}

int main(void)
{
    const char *base = getenv("DS_TEST_TMP");

    signal(SIGPIPE, SIG_IGN);
    if (base)
        mkdir(base, 0755);
    snprintf(root, sizeof(root), "%s/known.XXXXXX", base ? base : "/tmp");
    if (mkdtemp(root) == NULL)
        return 1;
    {
        char d[4200];

        snprintf(d, sizeof(d), "%s/dir", root);
        mkdir(d, 0755);
    }
    seed();
    RUN(test_local);
    RUN(test_agent);
    RUN(test_agent_v3);
    RUN(test_prelude);
    RUN(test_agent_pipelined);
    RUN(test_fake_bomb);
    RUN(test_fake_list_cap);
    RUN(test_fake_violations);
    {
        char cmd[4300];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        if (system(cmd) != 0)
            return 1;
    }
    return CHECK_DONE();
}

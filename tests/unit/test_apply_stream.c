/*
 * Receiver flow control and version 2, in-process: backpressure (input is
 * refused while replies are not drained; SIG and LIST replies are streamed
 * in slices, never held whole) and ADOPT (a matching file recorded in place).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "check.h"
#include "distsync/apply.h"
#include "distsync/error.h"
#include "distsync/manifest.h"
#include "session.h"

static char root[4096];
static ds_msg_t rep[4096];
static int nrep;
static uint8_t *outcopy; /* every reply byte of the last drive() */
static size_t outlen, outmax;

static ds_apply_t *open_ap(void)
{
    ds_apply_opts_t o = {.no_fsync = 1};
    ds_apply_t *ap = NULL;
    char err[256];

    CHECK_INT(ds_apply_new(root, &o, &ap, err, sizeof(err)), 0);
    return ap;
}

/* Offers all of s to ap, draining the output after each call as the agent
 * does; records the largest queued output seen (outmax) and the replies. */
static long drive(ds_apply_t *ap, struct sess *s)
{
    size_t off = 0, cap = outlen + (64u << 20);
    long rc;

    outcopy = realloc(outcopy, cap);
    for (;;) {
        const uint8_t *p;
        size_t n;

        rc = ds_apply_feed(ap, s->b.p + off, s->b.len - off);
        if (rc > 0)
            off += (size_t)rc;
        ds_apply_output(ap, &p, &n);
        if (n > outmax)
            outmax = n;
        if (outlen + n > cap) {
            cap = (outlen + n) * 2;
            outcopy = realloc(outcopy, cap);
        }
        memcpy(outcopy + outlen, p, n);
        outlen += n;
        ds_apply_output_consume(ap, n);
        if (rc < 0 || (off == s->b.len && ds_apply_want_input(ap)))
            break;
    }
    s->b.len = 0;
    return rc < 0 ? rc : 0;
}

static void decode_all(void)
{
    nrep = s_replies(outcopy, outlen, rep, 4096);
    CHECK(nrep >= 0);
}

static void write_file(const char *rel, const void *p, size_t n)
{
    char path[8192];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, p, n) == (ssize_t)n);
    close(fd);
}

static struct stat stat_of(const char *rel)
{
    char path[8192];
    struct stat st = {0};

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    stat(path, &st);
    return st;
}

/* 40 pipelined SIG requests for a 4 MiB file (about 23 MB of replies): the
 * receiver stops taking input at once and never queues much more than
 * DS_APPLY_OUT_HIGH; every signature arrives complete and identical. */
static void test_sig_backpressure(void)
{
    struct sess s = {0};
    ds_apply_t *ap = open_ap();
    size_t n = 4u << 20, first_len = 0, total;
    uint8_t *big = malloc(n);
    const uint8_t *p;
    size_t q;
    long used;
    int complete = 0;

    for (size_t i = 0; i < n; i++)
        big[i] = (uint8_t)((i * 2654435761u) >> 13);
    write_file("big.bin", big, n);
    s_hello(&s, "c1");
    for (int i = 0; i < 40; i++) {
        ds_msg_t m = {.type = DS_MSG_SIG};

        m.u.sig.path = ds_pstr("big.bin");
        m.u.sig.block_len = 256;
        m.u.sig.strong_len = 32;
        s_put(&s, &m);
    }
    total = s.b.len;
    used = ds_apply_feed(ap, s.b.p, s.b.len);
    CHECK(used > 0 && (size_t)used < total); /* backpressure: input left over */
    CHECK_INT(ds_apply_want_input(ap), 0);
    ds_apply_output(ap, &p, &q);
    CHECK(q >= DS_APPLY_OUT_HIGH && q <= DS_APPLY_OUT_HIGH + (2u << 20));
    ds_proto_buf_consume(&s.b, (size_t)used); /* the caller keeps the rest */
    CHECK_INT(drive(ap, &s), 0);
    CHECK(outmax <= DS_APPLY_OUT_HIGH + (2u << 20));
    decode_all();
    /* reassemble each request's signature; compare with the first */
    for (uint32_t id = 2; id <= 41; id++) {
        size_t len = 0;
        int last = 0;
        static uint8_t sig[1 << 20];
        static uint8_t first[1 << 20];

        for (int i = 0; i < nrep; i++) {
            if (rep[i].id != id || rep[i].type != DS_MSG_SIG_DATA)
                continue;
            CHECK(len + rep[i].u.blob.len <= sizeof(sig));
            memcpy(sig + len, rep[i].u.blob.data, rep[i].u.blob.len);
            len += rep[i].u.blob.len;
            last = !(rep[i].flags & DS_PROTO_F_MORE);
        }
        CHECK(last && len > 16 && memcmp(sig, "rs\x01\x47", 4) == 0);
        if (id == 2) {
            memcpy(first, sig, len);
            first_len = len;
        }
        complete += last && len == first_len && memcmp(sig, first, len) == 0;
    }
    CHECK_INT(complete, 40);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
    free(big);
}

/* A listing larger than one frame comes in slices (MORE), every entry once. */
static void test_list_streamed(void)
{
    struct sess s = {0};
    ds_apply_t *ap = open_ap();
    char name[300], dir[4200];
    uint32_t id, entries = 0, frames = 0;

    snprintf(dir, sizeof(dir), "%s/many", root);
    mkdir(dir, 0755);
    for (int i = 0; i < 6000; i++) {
        snprintf(name, sizeof(name), "many/%05d-%0200d", i, 0);
        write_file(name, "", 0);
    }
    s_hello(&s, "c1");
    id = s_path(&s, DS_MSG_LIST, "many");
    outlen = 0;
    CHECK_INT(drive(ap, &s), 0);
    decode_all();
    for (int i = 0; i < nrep; i++) {
        if (rep[i].id != id)
            continue;
        CHECK(rep[i].type == DS_MSG_LIST_DATA);
        entries += rep[i].u.list.n;
        frames++;
        CHECK(i == nrep - 1 || (rep[i].flags & DS_PROTO_F_MORE));
    }
    CHECK_INT(entries, 6000);
    CHECK(frames >= 2);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
}

static int manifest_has(const char *path, uint64_t size)
{
    char p[8192], err[256];
    ds_manifest_t *m = NULL;
    const ds_manifest_entry_t *e;
    int dfd, found;

    snprintf(p, sizeof(p), "%s/.distsync", root);
    dfd = open(p, O_RDONLY | O_DIRECTORY);
    if (dfd < 0 || ds_manifest_load(dfd, &m, err, sizeof(err)) < 0) {
        if (dfd >= 0)
            close(dfd);
        return 0;
    }
    e = ds_manifest_get(m, path);
    found = e != NULL && e->size == size;
    ds_manifest_free(m);
    close(dfd);
    return found;
}

/* ADOPT records a matching file without rewriting it (same inode), sets
 * the mtime; a mismatch, a missing file or no lease are file errors. */
static void test_adopt(void)
{
    struct sess s = {0};
    ds_apply_t *ap = open_ap();
    uint8_t sha[DS_SHA256_LEN], bad[DS_SHA256_LEN] = {1};
    struct stat before, after;
    uint32_t a, b, c, d, nl, h;
    const ds_msg_t *r;

    write_file("keep.txt", "already here", 12);
    CHECK_INT(ds_sha256("already here", 12, sha), 0);
    before = stat_of("keep.txt");
    h = s_hello(&s, "c1");
    nl = s_adopt(&s, "keep.txt", 12, DS_PROTO_NO_MTIME, sha); /* no lease yet */
    s_lease(&s, DS_LEASE_OP_ACQUIRE, "c1", 600);
    a = s_adopt(&s, "keep.txt", 12, 1600000000123456789LL, sha);
    b = s_adopt(&s, "keep.txt", 12, DS_PROTO_NO_MTIME, bad);
    c = s_adopt(&s, "absent.txt", 1, DS_PROTO_NO_MTIME, sha);
    d = s_adopt(&s, "../escape", 1, DS_PROTO_NO_MTIME, sha);
    s_empty(&s, DS_MSG_MANIFEST_COMMIT);
    outlen = 0;
    CHECK_INT(drive(ap, &s), 0);
    decode_all();
    r = s_find(rep, nrep, h);
    CHECK(r && r->type == DS_MSG_HELLO_OK && r->u.hello_ok.version == DS_PROTO_VERSION_MAX);
    r = s_find(rep, nrep, nl);
    CHECK(r && r->type == DS_MSG_FILE_ERR && r->u.err.code == DS_ELEASE);
    r = s_find(rep, nrep, a);
    CHECK(r && r->type == DS_MSG_FILE_OK && r->u.file_ok.size == 12 &&
          r->u.file_ok.mtime_ns == 1600000000123456789LL &&
          memcmp(r->u.file_ok.sha256, sha, DS_SHA256_LEN) == 0);
    r = s_find(rep, nrep, b);
    CHECK(r && r->type == DS_MSG_FILE_ERR && r->u.err.code == DS_EHASH);
    r = s_find(rep, nrep, c);
    CHECK(r && r->type == DS_MSG_FILE_ERR && r->u.err.code == -ENOENT);
    r = s_find(rep, nrep, d);
    CHECK(r && r->type == DS_MSG_FILE_ERR && r->u.err.code == DS_EPATH);
    after = stat_of("keep.txt");
    CHECK(before.st_ino == after.st_ino && after.st_mtim.tv_sec == 1600000000);
    CHECK(manifest_has("keep.txt", 12));
    CHECK(!manifest_has("absent.txt", 1));
    CHECK_INT((int)ds_apply_stats(ap)->files_adopted, 1);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
}

/* A version 1 session has no ADOPT: the message ends it. */
static void test_adopt_needs_v2(void)
{
    struct sess s = {0};
    ds_apply_t *ap = open_ap();
    uint8_t sha[DS_SHA256_LEN] = {0};
    uint32_t h;
    const ds_msg_t *r;

    h = s_hello_v(&s, "c1", 1, 1);
    s_lease(&s, DS_LEASE_OP_ACQUIRE, "c1", 600);
    s_adopt(&s, "keep.txt", 12, DS_PROTO_NO_MTIME, sha);
    outlen = 0;
    CHECK_INT(drive(ap, &s), DS_EPROTO);
    decode_all();
    r = s_find(rep, nrep, h);
    CHECK(r && r->type == DS_MSG_HELLO_OK && r->u.hello_ok.version == 1);
    CHECK(nrep >= 1 && rep[nrep - 1].type == DS_MSG_ERR &&
          (rep[nrep - 1].flags & DS_PROTO_F_FATAL));
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
}

/* LIST / MANIFEST_GET with the digest of the console's copy (version 4):
 * same bytes -> *_SAME (the walk spans several chunks), changed -> the
 * packed stream again; a digest in a version 3 session ends it. */
static uint32_t s_known(struct sess *s, uint8_t type, const char *path, const uint8_t *sha)
{
    ds_msg_t m = {.type = type};

    m.u.path.path = ds_pstr(path);
    m.u.path.has_known = 1;
    memcpy(m.u.path.known, sha, DS_SHA256_LEN);
    return s_put(s, &m);
}

/* Digest of the LIST_DATA entries (or MANIFEST_DATA bytes) answering id. */
static int reply_digest(uint32_t id, uint8_t sha[DS_SHA256_LEN], uint32_t *entries)
{
    ds_sha256_t h;
    int frames = 0;

    CHECK_INT(ds_sha256_init(&h), 0);
    *entries = 0;
    for (int i = 0; i < nrep; i++) {
        if (rep[i].id != id)
            continue;
        frames++;
        if (rep[i].type == DS_MSG_LIST_DATA) {
            ds_sha256_update(&h, rep[i].u.list.entries, rep[i].u.list.len);
            *entries += rep[i].u.list.n;
        } else if (rep[i].type == DS_MSG_MANIFEST_DATA) {
            ds_sha256_update(&h, rep[i].u.blob.data, rep[i].u.blob.len);
        }
    }
    ds_sha256_final(&h, sha);
    return frames;
}

static void test_list_known(void)
{
    struct sess s = {0};
    ds_apply_t *ap = open_ap();
    uint8_t lsha[DS_SHA256_LEN], msha[DS_SHA256_LEN], sha2[DS_SHA256_LEN];
    char name[300], dir[4200];
    uint32_t l, m, n;
    const ds_msg_t *r;

    snprintf(dir, sizeof(dir), "%s/kn", root);
    mkdir(dir, 0755);
    for (int i = 0; i < 6000; i++) {
        snprintf(name, sizeof(name), "kn/%05d-%0200d", i, 0);
        write_file(name, "", 0);
    }
    s_hello(&s, "c1");
    l = s_path(&s, DS_MSG_LIST, "kn");
    m = s_empty(&s, DS_MSG_MANIFEST_GET);
    outlen = 0;
    CHECK_INT(drive(ap, &s), 0);
    decode_all();
    CHECK(reply_digest(l, lsha, &n) >= 2); /* several frames */
    CHECK_INT(n, 6000);
    CHECK_INT(reply_digest(m, msha, &n), 1);

    l = s_known(&s, DS_MSG_LIST, "kn", lsha);
    m = s_known(&s, DS_MSG_MANIFEST_GET, "", msha);
    outlen = 0;
    CHECK_INT(drive(ap, &s), 0);
    decode_all();
    r = s_find(rep, nrep, l);
    CHECK(nrep == 2 && r && r->type == DS_MSG_LIST_SAME &&
          memcmp(r->u.same.sha256, lsha, DS_SHA256_LEN) == 0);
    r = s_find(rep, nrep, m);
    CHECK(r && r->type == DS_MSG_MANIFEST_SAME &&
          memcmp(r->u.same.sha256, msha, DS_SHA256_LEN) == 0);

    write_file("kn/03000-x", "new", 3); /* changed behind our back */
    l = s_known(&s, DS_MSG_LIST, "kn", lsha);
    outlen = 0;
    CHECK_INT(drive(ap, &s), 0);
    decode_all();
    CHECK(reply_digest(l, sha2, &n) >= 2);
    CHECK_INT(n, 6001);
    CHECK(memcmp(sha2, lsha, DS_SHA256_LEN) != 0);
    ds_apply_free(ap);

    ap = open_ap(); /* version 3: a digest is a protocol violation */
    s_hello_v(&s, "c1", 1, 3);
    l = s_known(&s, DS_MSG_LIST, "kn", lsha);
    outlen = 0;
    CHECK(drive(ap, &s) < 0);
    decode_all();
    r = s_find(rep, nrep, l);
    CHECK(r && r->type == DS_MSG_ERR && (r->flags & DS_PROTO_F_FATAL) &&
          r->u.err.code == DS_EPROTO);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
}

int main(void)
{
    snprintf(root, sizeof(root), "%s", check_tmpdir("apply_stream"));
    RUN(test_sig_backpressure);
    RUN(test_list_streamed);
    RUN(test_adopt);
    RUN(test_adopt_needs_v2);
    RUN(test_list_known);
    free(outcopy);
    return CHECK_DONE();
}

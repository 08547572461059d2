/* Receiver end to end, in-process: sessions fed to ds_apply against a scratch root. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "check.h"
#include "distsync/apply.h"
#include "distsync/error.h"
#include "distsync/lease.h"
#include "distsync/manifest.h"
#include "session.h"
#include "apply_feed.h"

static char root[4096], outside[4096];
static uint8_t outcopy[1 << 22];
static ds_msg_t rep[512];
static int nrep;
static int64_t fake_now = 1700000000;

static int64_t clock_fn(void *ctx)
{
    return fake_now;
}

static ds_apply_t *open_ap(void)
{
    ds_apply_opts_t o = {.now = clock_fn, .no_fsync = 1};
    ds_apply_t *ap = NULL;
    char err[256];

    CHECK_INT(ds_apply_new(root, &o, &ap, err, sizeof(err)), 0);
    return ap;
}

/* Feeds the session (split into step-sized pieces) as the agent does:
 * offers input, drains the output, offers the rest again until the receiver
 * consumed it all and wants more; decodes all replies. */
static int feed(ds_apply_t *ap, struct sess *s, size_t step)
{
    size_t total;
    long rc = s_feed(ap, s, step, outcopy, sizeof(outcopy), &total);

    nrep = s_replies(outcopy, total, rep, 512);
    CHECK(nrep >= 0);
    return rc < 0 ? (int)rc : 0;
}

static void put_file(const char *rel, const char *text)
{
    char path[8192];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static char *slurp(const char *rel, size_t *n)
{
    static char buf[1 << 21];
    char path[8192];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    *n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[*n] = '\0';
    fclose(f);
    return buf;
}

static int tmp_count(void)
{
    char path[8192];
    DIR *d;
    struct dirent *de;
    int n = 0;

    snprintf(path, sizeof(path), "%s/.distsync/tmp", root);
    d = opendir(path);
    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static ds_apply_t *ready(struct sess *s, const char *console)
{
    ds_apply_t *ap = open_ap();
    uint32_t h, l;

    h = s_hello(s, "c1");
    l = s_lease(s, DS_LEASE_OP_ACQUIRE, console, 600);
    CHECK_INT(feed(ap, s, 1 << 20), 0);
    CHECK(s_find(rep, nrep, h) && s_find(rep, nrep, h)->type == DS_MSG_HELLO_OK);
    CHECK(s_find(rep, nrep, l) && s_find(rep, nrep, l)->type == DS_MSG_LEASE_OK);
    return ap;
}

static void test_literal_file_and_manifest(void)
{
    struct sess s = {0};
    ds_apply_t *ap = ready(&s, "c1");
    uint32_t c, mc, mg;
    const ds_msg_t *r;
    size_t n;
    char *got;

    c = s_whole(&s, 1, "dir/sub/a.txt", "hello world\n", 12);
    mc = s_empty(&s, DS_MSG_MANIFEST_COMMIT);
    mg = s_empty(&s, DS_MSG_MANIFEST_GET);
    CHECK_INT(feed(ap, &s, 7), 0); /* odd split: exercises partial frames */
    r = s_find(rep, nrep, c);
    CHECK(r && r->type == DS_MSG_FILE_OK && r->u.file_ok.size == 12);
    r = s_find(rep, nrep, mc);
    CHECK(r && r->type == DS_MSG_OK && r->u.ok.value == 1);
    r = s_find(rep, nrep, mg);
    CHECK(r && r->type == DS_MSG_MANIFEST_DATA && !(r->flags & DS_PROTO_F_MORE));
    if (r) {
        ds_manifest_t *m = NULL;
        char err[256];

        CHECK_INT(ds_manifest_decode(r->u.blob.data, r->u.blob.len, &m, err, sizeof(err)), 0);
        CHECK(m && ds_manifest_get(m, "dir/sub/a.txt") != NULL);
        ds_manifest_free(m);
    }
    got = slurp("dir/sub/a.txt", &n);
    CHECK(got && n == 12 && memcmp(got, "hello world\n", 12) == 0);
    CHECK_INT(tmp_count(), 0);
    CHECK_INT(ds_apply_stats(ap)->files_ok, 1);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

static void test_copy_literal_delta(void)
{
    static uint8_t old[200000], nw[200000], expect[400000];
    struct sess s = {0};
    ds_apply_t *ap;
    uint8_t sha[DS_SHA256_LEN], *delta = NULL;
    size_t dn = 0, en = 0, n;
    const ds_msg_t *r;
    uint32_t c;
    char *got;
    FILE *f;
    char path[8192];

    fill(old, sizeof(old), 1);
    memcpy(nw, old, sizeof(nw));
    memcpy(nw + 5000, "CHANGED-BYTES", 13);
    fill(nw + 100000, 3000, 7);
    snprintf(path, sizeof(path), "%s/old.bin", root);
    f = fopen(path, "wb");
    fwrite(old, 1, sizeof(old), f);
    fclose(f);
    CHECK_INT(s_make_delta(old, sizeof(old), nw, sizeof(nw), &delta, &dn), 0);
    CHECK(dn > 0 && dn < 20000);
    /* expected: old[1000, 1000+4096) + "lit" + nw (the delta's output) */
    memcpy(expect, old + 1000, 4096);
    en = 4096;
    memcpy(expect + en, "literal-part", 12);
    en += 12;
    memcpy(expect + en, nw, sizeof(nw));
    en += sizeof(nw);
    CHECK_INT(ds_sha256(expect, en, sha), 0);

    ap = ready(&s, "c1");
    s_begin(&s, 9, "new.bin", en);
    s_copy(&s, 9, "old.bin", 1000, 4096);
    s_data(&s, 9, NULL, "literal-part", 12, 1);
    s_data(&s, 9, "old.bin", delta, dn / 3, 0);
    s_data(&s, 9, "old.bin", delta + dn / 3, dn / 3, 1);
    s_data(&s, 9, "old.bin", delta + 2 * (dn / 3), dn - 2 * (dn / 3), 0);
    s_file(&s, DS_MSG_DELTA_END, 9);
    c = s_commit(&s, 9, en, sha);
    CHECK_INT(feed(ap, &s, 1 << 20), 0);
    r = s_find(rep, nrep, c);
    CHECK(r && r->type == DS_MSG_FILE_OK);
    if (r && r->type == DS_MSG_FILE_ERR)
        fprintf(stderr, "FILE_ERR %.*s\n", r->u.err.message.n, r->u.err.message.p);
    got = slurp("new.bin", &n);
    CHECK(got && n == en && memcmp(got, expect, en) == 0);
    CHECK(ds_apply_stats(ap)->bytes_copied >= 4096);
    CHECK_INT(ds_apply_stats(ap)->bytes_literal, 12);
    CHECK_INT(ds_apply_stats(ap)->bytes_delta, dn);
    CHECK_INT(tmp_count(), 0);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
    free(delta);
}

static void test_wrong_sha_keeps_old(void)
{
    struct sess s = {0};
    ds_apply_t *ap;
    uint8_t bad[DS_SHA256_LEN] = {1, 2, 3};
    const ds_msg_t *r;
    uint32_t c;
    size_t n;
    char *got;

    put_file("keep.txt", "old content");
    ap = ready(&s, "c1");
    s_begin(&s, 1, "keep.txt", 11);
    s_data(&s, 1, NULL, "new content", 11, 0);
    c = s_commit(&s, 1, 11, bad);
    CHECK_INT(feed(ap, &s, 1 << 20), 0);
    r = s_find(rep, nrep, c);
    CHECK(r && r->type == DS_MSG_FILE_ERR && r->u.err.code == DS_EHASH);
    CHECK_INT(nrep, 1); /* only the final reply: no duplicate early FILE_ERR */
    got = slurp("keep.txt", &n);
    CHECK(got && strcmp(got, "old content") == 0);
    CHECK_INT(tmp_count(), 0);
    /* Too many bytes: early FILE_ERR, then the final one on commit. */
    s_begin(&s, 2, "keep.txt", 3);
    s_data(&s, 2, NULL, "12345", 5, 0);
    c = s_commit(&s, 2, 3, bad);
    CHECK_INT(feed(ap, &s, 1 << 20), 0);
    CHECK_INT(nrep, 2);
    CHECK(nrep == 2 && rep[0].type == DS_MSG_FILE_ERR && rep[0].u.err.code == DS_ETOOBIG);
    r = s_find(rep, nrep, c);
    CHECK(r && r->type == DS_MSG_FILE_ERR && r->u.err.code == DS_ETOOBIG);
    got = slurp("keep.txt", &n);
    CHECK(got && strcmp(got, "old content") == 0);
    CHECK_INT(tmp_count(), 0);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
}

static int outside_empty(void)
{
    DIR *d = opendir(outside);
    struct dirent *de;
    int n = 0;

    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n == 0;
}

static void expect_refused(ds_apply_t *ap, struct sess *s, const char *path, int code)
{
    uint32_t c = s_whole(s, 77, path, "x", 1);
    const ds_msg_t *r;

    CHECK_INT(feed(ap, s, 1 << 20), 0);
    r = s_find(rep, nrep, c);
    CHECK(r && r->type == DS_MSG_FILE_ERR);
    if (r && r->type == DS_MSG_FILE_ERR && r->u.err.code != code)
        fprintf(stderr, "path %s: code %d (%s), expected %d\n", path, r->u.err.code,
                ds_err_name(r->u.err.code), code);
    CHECK(r && r->u.err.code == code);
}

static void test_hostile_paths(void)
{
    struct sess s = {0};
    char p[8192];
    ds_apply_t *ap;
    const ds_msg_t *r;
    uint32_t c, ce, cd;

    snprintf(p, sizeof(p), "%s/esc", root);
    CHECK_INT(symlink(outside, p), 0);
    snprintf(p, sizeof(p), "%s/leaf", root);
    CHECK_INT(symlink("/etc/passwd", p), 0);
    snprintf(p, sizeof(p), "%s/fifo", root);
    CHECK_INT(mkfifo(p, 0644), 0);
    ap = ready(&s, "c1");
    expect_refused(ap, &s, "../escape", DS_EPATH);
    expect_refused(ap, &s, "/tmp/abs", DS_EPATH);
    expect_refused(ap, &s, "a/../../b", DS_EPATH);
    expect_refused(ap, &s, "a/./b", DS_EPATH);
    expect_refused(ap, &s, "a//b", DS_EPATH);
    expect_refused(ap, &s, "a\\b", DS_EPATH);
    expect_refused(ap, &s, ".distsync/manifest", DS_EPATH);
    expect_refused(ap, &s, "esc/owned", DS_ESYMLINK);
    expect_refused(ap, &s, "leaf", DS_ESYMLINK);
    expect_refused(ap, &s, "fifo", DS_ENOTREG);
    /* A basis that escapes, is a FIFO, or a COPY range past the basis end. */
    put_file("b.txt", "0123456789");
    s_begin(&s, 5, "x1", 4);
    ce = s_copy(&s, 5, "esc/../../etc/passwd", 0, 4);
    c = s_commit(&s, 5, 4, (uint8_t[32]){0});
    s_begin(&s, 6, "x2", 4);
    s_copy(&s, 6, "fifo", 0, 4);
    s_commit(&s, 6, 4, (uint8_t[32]){0});
    s_begin(&s, 7, "x3", 4);
    cd = s_copy(&s, 7, "b.txt", 8, 4);
    s_commit(&s, 7, 4, (uint8_t[32]){0});
    CHECK_INT(feed(ap, &s, 1 << 20), 0);
    r = s_find(rep, nrep, ce);
    CHECK(r && r->type == DS_MSG_FILE_ERR && r->u.err.code == DS_EPATH);
    r = s_find(rep, nrep, c);
    CHECK(r && r->type == DS_MSG_FILE_ERR && r->u.err.code == DS_EPATH);
    r = s_find(rep, nrep, cd);
    CHECK(r && r->type == DS_MSG_FILE_ERR && r->u.err.code == DS_ERANGE);
    CHECK(nrep == 6 && rep[2].u.err.code == DS_ENOTREG);
    /* The session goes on: a good file still lands. */
    c = s_whole(&s, 8, "good.txt", "ok", 2);
    CHECK_INT(feed(ap, &s, 1 << 20), 0);
    CHECK(s_find(rep, nrep, c) && s_find(rep, nrep, c)->type == DS_MSG_FILE_OK);
    CHECK(outside_empty());
    CHECK_INT(tmp_count(), 0);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
}

static void test_delete_and_no_lease(void)
{
    struct sess s = {0};
    ds_apply_t *ap = open_ap();
    const ds_msg_t *r;
    uint32_t c, d1, d2, d3;
    char p[8192];
    size_t n;

    put_file("del.txt", "bye");
    snprintf(p, sizeof(p), "%s/dlink", root);
    CHECK_INT(symlink("del.txt", p), 0);
    s_hello(&s, "c1");
    c = s_whole(&s, 1, "nolease.txt", "x", 1);
    d1 = s_path(&s, DS_MSG_DELETE, "del.txt");
    CHECK_INT(feed(ap, &s, 1 << 20), 0);
    r = s_find(rep, nrep, c);
    CHECK(r && r->type == DS_MSG_FILE_ERR && r->u.err.code == DS_ELEASE);
    r = s_find(rep, nrep, d1);
    CHECK(r && r->type == DS_MSG_ERR && r->u.err.code == DS_ELEASE);
    CHECK(slurp("del.txt", &n) != NULL);
    s_lease(&s, DS_LEASE_OP_ACQUIRE, "c1", 60);
    d1 = s_path(&s, DS_MSG_DELETE, "del.txt");
    d2 = s_path(&s, DS_MSG_DELETE, "never/was.txt");
    d3 = s_path(&s, DS_MSG_DELETE, "dlink");
    CHECK_INT(feed(ap, &s, 1 << 20), 0);
    r = s_find(rep, nrep, d1);
    CHECK(r && r->type == DS_MSG_OK && r->u.ok.value == 1);
    r = s_find(rep, nrep, d2);
    CHECK(r && r->type == DS_MSG_OK && r->u.ok.value == 0);
    r = s_find(rep, nrep, d3);
    CHECK(r && r->type == DS_MSG_ERR && r->u.err.code == DS_ESYMLINK);
    CHECK(slurp("del.txt", &n) == NULL);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
}

static void test_lease_busy_and_stale(void)
{
    struct sess s1 = {0}, s2 = {0};
    ds_apply_t *a1 = ready(&s1, "console-A"), *a2 = open_ap();
    const ds_msg_t *r;
    uint32_t l;

    s_hello(&s2, "console-B");
    l = s_lease(&s2, DS_LEASE_OP_ACQUIRE, "console-B", 60);
    CHECK_INT(feed(a2, &s2, 1 << 20), 0);
    r = s_find(rep, nrep, l);
    CHECK(r && r->type == DS_MSG_BUSY);
    if (r && r->type == DS_MSG_BUSY) {
        char msg[512];

        snprintf(msg, sizeof(msg), "%.*s", r->u.busy.message.n, r->u.busy.message.p);
        CHECK(strstr(msg, "console console-A (pid 4242 on host consolehost)") != NULL);
        CHECK_INT(r->u.busy.expiry, fake_now + 600);
    }
    ds_apply_free(a1); /* holder gone without release: its lock is free */
    l = s_lease(&s2, DS_LEASE_OP_ACQUIRE, "console-B", 60);
    CHECK_INT(feed(a2, &s2, 1 << 20), 0);
    r = s_find(rep, nrep, l);
    CHECK(r && r->type == DS_MSG_LEASE_OK);
    l = s_lease(&s2, DS_LEASE_OP_RELEASE, "console-B", 0);
    CHECK_INT(feed(a2, &s2, 1 << 20), 0);
    CHECK(s_find(rep, nrep, l) && s_find(rep, nrep, l)->type == DS_MSG_OK);
    ds_apply_free(a2);
    ds_proto_buf_free(&s1.b);
    ds_proto_buf_free(&s2.b);
}

static void test_lease_expiry_without_flock(void)
{
    char p[8192];
    struct sess s = {0};
    ds_apply_t *ap = open_ap();
    ds_lease_t l = {.console = "smb-console", .host = "h2", .pid = 7, .flock = 0};
    const ds_msg_t *r;
    uint32_t id;
    int dfd;

    snprintf(p, sizeof(p), "%s/.distsync", root);
    mkdir(p, 0755);
    dfd = open(p, O_RDONLY | O_DIRECTORY);
    l.expiry = fake_now + 100;
    CHECK_INT(ds_lease_write(dfd, &l), 0);
    s_hello(&s, "c9");
    id = s_lease(&s, DS_LEASE_OP_ACQUIRE, "c9", 60);
    CHECK_INT(feed(ap, &s, 1 << 20), 0);
    r = s_find(rep, nrep, id);
    CHECK(r && r->type == DS_MSG_BUSY);
    fake_now += 101;
    id = s_lease(&s, DS_LEASE_OP_ACQUIRE, "c9", 60);
    CHECK_INT(feed(ap, &s, 1 << 20), 0);
    r = s_find(rep, nrep, id);
    CHECK(r && r->type == DS_MSG_LEASE_OK);
    /* An expired lease refuses writes until renewed. */
    fake_now += 61;
    id = s_whole(&s, 3, "late.txt", "x", 1);
    CHECK_INT(feed(ap, &s, 1 << 20), 0);
    r = s_find(rep, nrep, id);
    CHECK(r && r->type == DS_MSG_FILE_ERR && r->u.err.code == DS_ELEASE);
    close(dfd);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
}

static void test_stale_tmp_cleaned(void)
{
    struct sess s = {0};
    ds_apply_t *ap;
    const ds_msg_t *r;
    uint32_t l;
    char p[8192];

    snprintf(p, sizeof(p), "%s/.distsync", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/.distsync/tmp", root);
    mkdir(p, 0700);
    put_file(".distsync/tmp/ds-deadbeef-1.part", "partial");
    put_file(".distsync/tmp/ds-deadbeef-2.part", "partial");
    ap = open_ap();
    s_hello(&s, "c1");
    l = s_lease(&s, DS_LEASE_OP_ACQUIRE, "c1", 60);
    s_begin(&s, 1, "half.txt", 100); /* then the console "dies": EOF */
    s_data(&s, 1, NULL, "abc", 3, 0);
    CHECK_INT(feed(ap, &s, 1 << 20), 0);
    r = s_find(rep, nrep, l);
    CHECK(r && r->type == DS_MSG_LEASE_OK && r->u.lease_ok.tmp_cleaned == 2);
    CHECK_INT(tmp_count(), 1);
    CHECK_INT(ds_apply_finish(ap), 0);
    CHECK_INT(tmp_count(), 0);
    snprintf(p, sizeof(p), "%s/half.txt", root);
    CHECK(access(p, F_OK) != 0);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
}

static void test_write_error_keeps_old(void)
{
    struct sess s = {0};
    ds_apply_t *ap;
    static uint8_t big[300000];
    struct rlimit old, lim;
    const ds_msg_t *r;
    uint32_t c, c2;
    size_t n;
    char *got;

    /* RLIMIT_FSIZE makes write() fail mid-file (EFBIG), like a full disk. */
    put_file("victim.txt", "intact");
    ap = ready(&s, "c1");
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 100000;
    setrlimit(RLIMIT_FSIZE, &lim);
    c = s_whole(&s, 1, "victim.txt", big, sizeof(big));
    c2 = s_whole(&s, 2, "small.txt", "fits", 4);
    CHECK_INT(feed(ap, &s, 1 << 20), 0);
    setrlimit(RLIMIT_FSIZE, &old);
    r = s_find(rep, nrep, c);
    CHECK(r && r->type == DS_MSG_FILE_ERR && r->u.err.code == -EFBIG);
    r = s_find(rep, nrep, c2);
    CHECK(r && r->type == DS_MSG_FILE_OK);
    got = slurp("victim.txt", &n);
    CHECK(got && strcmp(got, "intact") == 0);
    CHECK_INT(tmp_count(), 0);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
}

static void test_list_hash_abort(void)
{
    struct sess s = {0};
    ds_apply_t *ap;
    const ds_msg_t *r;
    uint32_t li, h, hb, a;
    uint8_t sha[DS_SHA256_LEN];

    put_file("l1.txt", "abc");
    ap = ready(&s, "c1");
    li = s_path(&s, DS_MSG_LIST, "");
    h = s_path(&s, DS_MSG_HASH, "l1.txt");
    hb = s_path(&s, DS_MSG_HASH, "../etc/passwd");
    s_begin(&s, 4, "aborted.txt", 10);
    s_data(&s, 4, NULL, "12345", 5, 0);
    a = s_file(&s, DS_MSG_FILE_ABORT, 4);
    CHECK_INT(feed(ap, &s, 1 << 20), 0);
    r = s_find(rep, nrep, li);
    CHECK(r && r->type == DS_MSG_LIST_DATA);
    if (r) {
        const uint8_t *p = r->u.list.entries;
        size_t len = r->u.list.len;
        ds_list_entry_t e;
        int found = 0, state = 0;

        while (ds_proto_list_next(&p, &len, &e) == 1) {
            found |= e.path.n == 6 && memcmp(e.path.p, "l1.txt", 6) == 0 && e.size == 3;
            state |= e.path.n >= 9 && memcmp(e.path.p, ".distsync", 9) == 0;
        }
        CHECK(found);
        CHECK(!state);
    }
    r = s_find(rep, nrep, h);
    CHECK_INT(ds_sha256("abc", 3, sha), 0);
    CHECK(r && r->type == DS_MSG_HASH_OK && r->u.hash_ok.size == 3 &&
          memcmp(r->u.hash_ok.sha256, sha, 32) == 0);
    r = s_find(rep, nrep, hb);
    CHECK(r && r->type == DS_MSG_ERR && r->u.err.code == DS_EPATH);
    r = s_find(rep, nrep, a);
    CHECK(r && r->type == DS_MSG_FILE_ERR && r->u.err.code == DS_EABORTED);
    CHECK_INT(tmp_count(), 0);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
}

static void expect_fatal(const uint8_t *p, size_t n, int code)
{
    ds_apply_t *ap = open_ap();
    struct sess s = {0};
    int rc;

    s_hello(&s, "c1");
    s_lease(&s, DS_LEASE_OP_ACQUIRE, "c1", 60);
    s_begin(&s, 1, "pending.txt", 5);
    CHECK_INT(ds_proto_buf_append(&s.b, p, n), 0);
    rc = feed(ap, &s, 1 << 20);
    CHECK_INT(rc, code);
    CHECK(nrep >= 1 && rep[nrep - 1].type == DS_MSG_ERR &&
          (rep[nrep - 1].flags & DS_PROTO_F_FATAL));
    CHECK_INT(ds_apply_feed(ap, "x", 1), code); /* stays dead */
    CHECK_INT(tmp_count(), 0);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
}

static void test_fatal_framing(void)
{
    struct sess s = {0};
    ds_apply_t *ap;
    ds_msg_t m = {.type = DS_MSG_HELLO};
    uint8_t huge[12] = {0x7f, 0xff, 0xff, 0xff, DS_MSG_LITERAL, 0, 0, 0, 0, 0, 0, 9};
    uint8_t unknown[12] = {0, 0, 0, 0, 0x55, 0, 0, 0, 0, 0, 0, 9};
    uint8_t shortcopy[16] = {0, 0, 0, 4, DS_MSG_COPY, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1};

    expect_fatal(huge, sizeof(huge), DS_EPROTO);
    expect_fatal(unknown, sizeof(unknown), DS_EPROTO);
    expect_fatal(shortcopy, sizeof(shortcopy), DS_EPROTO);
    s_copy(&s, 99, "x", 0, 1); /* file id never begun */
    expect_fatal(s.b.p, s.b.len, DS_EPROTO);
    s.b.len = 0;
    s_hello(&s, "again");
    expect_fatal(s.b.p, s.b.len, DS_EPROTO);
    s.b.len = 0;
    s_begin(&s, 1, "reused-id", 1); /* file id 1 is still open */
    expect_fatal(s.b.p, s.b.len, DS_EPROTO);
    s.b.len = 0;
    for (uint32_t i = 2; i <= DS_APPLY_MAX_OPEN + 1; i++)
        s_begin(&s, i, "many", 1);
    expect_fatal(s.b.p, s.b.len, DS_ETOOBIG);
    s.b.len = 0;
    /* version mismatch */
    ap = open_ap();
    m.u.hello.magic = DS_PROTO_MAGIC;
    m.u.hello.min_version = DS_PROTO_VERSION_MAX + 1;
    m.u.hello.max_version = DS_PROTO_VERSION_MAX + 4;
    s_put(&s, &m);
    CHECK_INT(feed(ap, &s, 1 << 20), DS_EVERSION);
    CHECK(nrep == 1 && rep[0].type == DS_MSG_ERR && rep[0].u.err.code == DS_EVERSION);
    ds_apply_free(ap);
    /* first frame must be HELLO */
    ap = open_ap();
    s_empty(&s, DS_MSG_MANIFEST_GET);
    CHECK_INT(feed(ap, &s, 1 << 20), DS_EPROTO);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
}

static void test_bye_and_after(void)
{
    struct sess s = {0};
    ds_apply_t *ap = ready(&s, "c1");
    uint32_t b;
    ds_manifest_t *m = NULL;
    char p[8192], err[256];
    int dfd;

    s_whole(&s, 1, "byefile.txt", "z", 1);
    b = s_empty(&s, DS_MSG_BYE);
    CHECK_INT(feed(ap, &s, 1 << 20), 0);
    CHECK(s_find(rep, nrep, b) && s_find(rep, nrep, b)->type == DS_MSG_OK);
    CHECK_INT(ds_apply_done(ap), 1);
    /* BYE wrote the manifest without an explicit MANIFEST_COMMIT */
    snprintf(p, sizeof(p), "%s/.distsync", root);
    dfd = open(p, O_RDONLY | O_DIRECTORY);
    CHECK_INT(ds_manifest_load(dfd, &m, err, sizeof(err)), 0);
    CHECK(m && ds_manifest_get(m, "byefile.txt") != NULL);
    ds_manifest_free(m);
    close(dfd);
    CHECK_INT(ds_apply_feed(ap, "x", 1), DS_EPROTO);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
}

/* 1 if the manifest on disk (not the receiver's memory) lists path. */
static int on_disk_manifest_has(const char *path)
{
    char ds[4200], err[256];
    ds_manifest_t *m = NULL;
    int fd, has = 0;

    snprintf(ds, sizeof(ds), "%s/.distsync", root);
    fd = open(ds, O_RDONLY | O_DIRECTORY);
    if (fd >= 0 && ds_manifest_load(fd, &m, err, sizeof(err)) == 0)
        has = ds_manifest_get(m, path) != NULL;
    ds_manifest_free(m);
    if (fd >= 0)
        close(fd);
    return has;
}

/* Without MANIFEST_COMMIT, committed files reach the on-disk manifest once
 * DS_APPLY_CHECKPOINT_S passed: a killed receiver loses at most that much. */
static void test_manifest_checkpoint(void)
{
    struct sess s = {0};
    ds_apply_t *ap = ready(&s, "c1");
    uint32_t c;

    c = s_whole(&s, 1, "ck/a.txt", "a\n", 2);
    CHECK_INT(feed(ap, &s, 1 << 20), 0);
    CHECK(s_find(rep, nrep, c) && s_find(rep, nrep, c)->type == DS_MSG_FILE_OK);
    CHECK(!on_disk_manifest_has("ck/a.txt")); /* too soon for a checkpoint */
    fake_now += DS_APPLY_CHECKPOINT_S;
    c = s_whole(&s, 2, "ck/b.txt", "b\n", 2);
    CHECK_INT(feed(ap, &s, 1 << 20), 0);
    CHECK(s_find(rep, nrep, c) && s_find(rep, nrep, c)->type == DS_MSG_FILE_OK);
    CHECK(on_disk_manifest_has("ck/a.txt"));
    CHECK(on_disk_manifest_has("ck/b.txt"));
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
}

static void reset_root(const char *name)
{
    snprintf(root, sizeof(root), "%s", check_tmpdir(name));
}

int main(void)
{
    snprintf(outside, sizeof(outside), "%s", check_tmpdir("apply_outside"));
    reset_root("apply_a");
    RUN(test_literal_file_and_manifest);
    RUN(test_copy_literal_delta);
    RUN(test_wrong_sha_keeps_old);
    reset_root("apply_b");
    RUN(test_hostile_paths);
    reset_root("apply_c");
    RUN(test_delete_and_no_lease);
    reset_root("apply_d");
    RUN(test_lease_busy_and_stale);
    reset_root("apply_e");
    RUN(test_lease_expiry_without_flock);
    reset_root("apply_f");
    RUN(test_stale_tmp_cleaned);
    RUN(test_write_error_keeps_old);
    RUN(test_list_hash_abort);
    reset_root("apply_g");
    RUN(test_fatal_framing);
    RUN(test_bye_and_after);
    reset_root("apply_h");
    RUN(test_manifest_checkpoint);
    return CHECK_DONE();
}

/* Receiver, server-side copies checked from the console's copy of the basis
 * (apply_local.c, apply_scopy.c), in-process: a POSIX backend with a
 * copy_range op that counts its copies stands for the SMB one, and an
 * in-memory version stands for the retain store. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "distsync/apply.h"
#include "distsync/error.h"
#include "distsync/fs.h"
#include "distsync/lease.h"
#include "session.h"

#define OLD_LEN 100000

static char root[4096];
static uint8_t outcopy[1 << 20];
static ds_msg_t rep[64];
static int nrep;
static uint8_t old[OLD_LEN];
static int copies; /* copy_range calls */

/* copy_range through this process (pread, then append): a server-side
 * copy as the receiver sees one. */
static int copy_range(const ds_fs_t *fs, int src, off_t off, int dst, size_t len)
{
    uint8_t buf[4096];

    (void)fs;
    copies++;
    while (len > 0) {
        ssize_t n = pread(src, buf, len < sizeof(buf) ? len : sizeof(buf), off);

        if (n <= 0 || write(dst, buf, (size_t)n) != n)
            return errno = EIO, -1;
        off += n;
        len -= (size_t)n;
    }
    return 0;
}

static ds_fs_ops_t copy_ops;
static ds_fs_t copy_fs = {.ops = &copy_ops};

/* The console's copy: old (one byte flipped when mode is 1), absent (2). */
struct version {
    int mode;
    uint8_t sha[DS_SHA256_LEN];
    int opened;
};

static int v_open(void *arg, const uint8_t sha[DS_SHA256_LEN], uint64_t size, void **h)
{
    struct version *v = arg;

    if (v->mode == 2 || memcmp(sha, v->sha, DS_SHA256_LEN) != 0 || size != OLD_LEN)
        return DS_ENOTFOUND;
    v->opened++;
    *h = v;
    return 0;
}

static long v_pread(void *h, uint64_t off, void *buf, size_t len)
{
    struct version *v = h;

    if (off >= OLD_LEN)
        return 0;
    if (len > OLD_LEN - off)
        len = OLD_LEN - off;
    memcpy(buf, old + off, len);
    if (v->mode == 1 && off <= 2000 && 2000 < off + len)
        ((uint8_t *)buf)[2000 - off] ^= 0xff;
    return (long)len;
}

static void v_close(void *h)
{
    (void)h;
}

static struct version ver;
static const ds_apply_local_t local = {
    .open = v_open, .pread = v_pread, .close = v_close, .arg = &ver};

static int feed(ds_apply_t *ap, struct sess *s)
{
    const uint8_t *p;
    size_t n, total = 0;
    long rc = ds_apply_feed(ap, s->b.p, s->b.len);

    ds_apply_output(ap, &p, &n);
    CHECK(n <= sizeof(outcopy));
    memcpy(outcopy + total, p, n);
    total += n;
    ds_apply_output_consume(ap, n);
    CHECK(rc < 0 || (size_t)rc == s->b.len);
    s->b.len = 0;
    nrep = s_replies(outcopy, total, rep, 64);
    CHECK(nrep >= 0);
    return rc < 0 ? (int)rc : 0;
}

static ds_apply_t *ready(struct sess *s, const ds_apply_local_t *l)
{
    ds_apply_opts_t o = {.no_fsync = 1, .fs = &copy_fs, .local = l};
    ds_apply_t *ap = NULL;
    char err[256];

    CHECK_INT(ds_apply_new(root, &o, &ap, err, sizeof(err)), 0);
    s_hello(s, "c1");
    s_lease(s, DS_LEASE_OP_ACQUIRE, "c1", 600);
    CHECK_INT(feed(ap, s), 0);
    return ap;
}

static int exists(const char *rel)
{
    char path[8192];

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    return access(path, F_OK) == 0;
}

static int tmp_count(void)
{
    char path[8192];
    struct dirent *de;
    DIR *d;
    int n = 0;

    snprintf(path, sizeof(path), "%s/.distsync/tmp", root);
    if ((d = opendir(path)) == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* new = old[1000, 5096) + "lit" + old[20000, 28192): COPY, LITERAL, COPY;
 * returns the reply to its commit. */
static const ds_msg_t *build(ds_apply_t *ap, struct sess *s, uint32_t fid, const char *path)
{
    static uint8_t want[4096 + 3 + 8192];
    uint8_t sha[DS_SHA256_LEN];
    uint32_t c;

    memcpy(want, old + 1000, 4096);
    memcpy(want + 4096, "lit", 3);
    memcpy(want + 4099, old + 20000, 8192);
    CHECK_INT(ds_sha256(want, sizeof(want), sha), 0);
    s_begin(s, fid, path, sizeof(want));
    s_copy(s, fid, "old.bin", 1000, 4096);
    s_data(s, fid, NULL, "lit", 3, 0);
    s_copy(s, fid, "old.bin", 20000, 8192);
    c = s_commit(s, fid, sizeof(want), sha);
    CHECK_INT(feed(ap, s), 0);
    return s_find(rep, nrep, c);
}

static void fill_old(void)
{
    uint32_t seed = 7;

    for (size_t i = 0; i < OLD_LEN; i++) {
        seed = seed * 1103515245u + 12345u;
        old[i] = (uint8_t)(seed >> 16);
    }
}

static void test_checked_refused_size_only(void)
{
    struct sess s = {0};
    const ds_msg_t *r;
    ds_apply_t *ap;
    uint32_t c;

    fill_old();
    CHECK_INT(ds_sha256(old, OLD_LEN, ver.sha), 0);
    ap = ready(&s, &local);
    c = s_whole(&s, 1, "old.bin", old, OLD_LEN);
    CHECK_INT(feed(ap, &s), 0);
    CHECK(s_find(rep, nrep, c) && s_find(rep, nrep, c)->type == DS_MSG_FILE_OK);

    /* the console's copy agrees: checked, published */
    copies = 0;
    r = build(ap, &s, 2, "a.bin");
    CHECK(r && r->type == DS_MSG_FILE_OK);
    CHECK_INT(copies, 2);
    CHECK_INT(ds_apply_stats(ap)->files_local_hashed, 1);
    CHECK_INT(ds_apply_stats(ap)->bytes_local, 4096 + 8192);
    CHECK_INT(ver.opened, 1);

    /* it disagrees (a wrong delta gives the same): refused, nothing left */
    ver.mode = 1;
    r = build(ap, &s, 3, "b.bin");
    CHECK(r && r->type == DS_MSG_FILE_ERR && r->u.err.code == DS_EHASH);
    CHECK(r &&
          strstr((const char *)r->u.err.message.p, "computed from the console's copy") != NULL);
    CHECK(!exists("b.bin"));
    CHECK_INT(tmp_count(), 0);

    /* no copy on the console: by size, counted */
    ver.mode = 2;
    r = build(ap, &s, 4, "c.bin");
    CHECK(r && r->type == DS_MSG_FILE_OK);
    CHECK_INT(ds_apply_stats(ap)->files_size_only, 1);
    CHECK_INT(ds_apply_stats(ap)->files_local_hashed, 2); /* b.bin was checked */
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
    ver.mode = 0;
}

/* A basis whose mtime changed: copied through the receiver, unless HASH
 * found the manifest's content in it in this session. */
static void test_touched_basis_after_hash(void)
{
    struct timespec ts[2] = {{0, UTIME_OMIT}, {1234567890, 0}};
    struct sess s = {0};
    const ds_msg_t *r;
    ds_apply_t *ap;
    char path[8192];

    snprintf(path, sizeof(path), "%s/old.bin", root);
    CHECK_INT(utimensat(AT_FDCWD, path, ts, 0), 0);
    ap = ready(&s, &local);
    copies = 0;
    r = build(ap, &s, 5, "d.bin");
    CHECK(r && r->type == DS_MSG_FILE_OK);
    CHECK_INT(copies, 0); /* untrusted: read and hashed here */
    s_path(&s, DS_MSG_HASH, "old.bin");
    CHECK_INT(feed(ap, &s), 0);
    r = build(ap, &s, 6, "e.bin");
    CHECK(r && r->type == DS_MSG_FILE_OK);
    CHECK_INT(copies, 2);
    CHECK_INT(ds_apply_stats(ap)->files_local_hashed, 1);
    /* touched again after the HASH: untrusted again */
    ts[1].tv_sec++;
    CHECK_INT(utimensat(AT_FDCWD, path, ts, 0), 0);
    r = build(ap, &s, 7, "f.bin");
    CHECK(r && r->type == DS_MSG_FILE_OK);
    CHECK_INT(copies, 2);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
}

int main(void)
{
    copy_ops = *ds_fs_posix.ops;
    copy_ops.copy_range = copy_range;
    copy_ops.can_syncfs = 0; /* as SMB: each file published alone */
    snprintf(root, sizeof(root), "%s", check_tmpdir("apply_local"));
    RUN(test_checked_refused_size_only);
    RUN(test_touched_basis_after_hash);
    return CHECK_DONE();
}

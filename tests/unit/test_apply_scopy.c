/* Receiver: server-side copies on a backend with copy_range (the SMB
 * worker's), here the POSIX backend with a copy_range of its own. A server
 * that copies on its side builds the file from the basis without this
 * process reading it; one that refuses (ENOTSUP) makes the receiver refuse
 * the file with DS_ESRVCOPY before any read of the basis, and every later
 * file with a basis too, while whole files still land. */
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
#include "apply_feed.h"
#include "testdata.h"

static char root[4096];
static uint8_t outcopy[1 << 20];
static ds_msg_t rep[64];
static int nrep;

/* the fake server: copies (0) or refuses (1); counts what passes here */
static int refuse;
static uint64_t preads, copied;
static ds_fs_ops_t ops;
static ds_fs_t fs = {.ops = &ops};

static ssize_t count_pread(const ds_fs_t *f, int fd, void *buf, size_t n, off_t off)
{
    ssize_t r = ds_fs_posix.ops->pread(f, fd, buf, n, off);

    preads += r > 0 ? (uint64_t)r : 0;
    return r;
}

static int fake_copy(const ds_fs_t *f, int src, off_t off, int dst, size_t len)
{
    static uint8_t buf[65536];

    (void)f;
    if (refuse) {
        errno = ENOTSUP;
        return -1;
    }
    while (len > 0) { /* "on the server": not through count_pread */
        ssize_t r = pread(src, buf, len < sizeof(buf) ? len : sizeof(buf), off);

        if (r <= 0 || write(dst, buf, (size_t)r) != r)
            return -1;
        off += r;
        len -= (size_t)r;
        copied += (uint64_t)r;
    }
    return 0;
}

static int feed(ds_apply_t *ap, struct sess *s)
{
    size_t total;
    long rc = s_feed(ap, s, SIZE_MAX, outcopy, sizeof(outcopy), &total);

    nrep = s_replies(outcopy, total, rep, 64);
    CHECK(nrep >= 0);
    return rc < 0 ? (int)rc : 0;
}

/* FILE_BEGIN, COPY of old.bin [0, 65536), a literal, FILE_COMMIT: the
 * reply's type and code (0 for FILE_OK). */
static int copy_file(ds_apply_t *ap, struct sess *s, uint32_t fid, const char *path,
                     const uint8_t *old, int *code)
{
    static uint8_t want[65536 + 5];
    uint8_t sha[DS_SHA256_LEN];
    const ds_msg_t *r;
    uint32_t c;

    memcpy(want, old, 65536);
    memcpy(want + 65536, "tail!", 5);
    CHECK_INT(ds_sha256(want, sizeof(want), sha), 0);
    s_begin(s, fid, path, sizeof(want));
    s_copy(s, fid, "old.bin", 0, 65536);
    s_data(s, fid, NULL, "tail!", 5, 0);
    c = s_commit(s, fid, sizeof(want), sha);
    CHECK_INT(feed(ap, s), 0);
    r = s_find(rep, nrep, c);
    CHECK(r != NULL);
    *code = r && r->type == DS_MSG_FILE_ERR ? r->u.err.code : 0;
    return r ? r->type : -1;
}

static void test_copy_then_refused(void)
{
    static uint8_t old[100000];
    struct sess s = {0};
    ds_apply_opts_t o = {.no_fsync = 1, .fs = &fs};
    ds_apply_t *ap = NULL;
    char err[256], path[8192];
    struct stat st;
    uint32_t h, l, w;
    int code = 0;

    CHECK_INT(ds_apply_new(root, &o, &ap, err, sizeof(err)), 0);
    h = s_hello(&s, "c1");
    l = s_lease(&s, DS_LEASE_OP_ACQUIRE, "c1", 600);
    fill(old, sizeof(old), 3);
    s_whole(&s, 1, "old.bin", old, sizeof(old)); /* in the manifest: a trusted basis */
    CHECK_INT(feed(ap, &s), 0);
    CHECK(s_find(rep, nrep, h) && s_find(rep, nrep, l));

    /* the server copies: nothing of the basis is read here */
    preads = copied = 0;
    CHECK_INT(copy_file(ap, &s, 2, "a.bin", old, &code), DS_MSG_FILE_OK);
    CHECK_INT(copied, 65536);
    CHECK_INT(preads, 0);

    /* it refuses: the file is refused, to be sent whole, before any read */
    refuse = 1;
    preads = 0;
    CHECK_INT(copy_file(ap, &s, 3, "b.bin", old, &code), DS_MSG_FILE_ERR);
    CHECK_INT(code, DS_ESRVCOPY);
    CHECK_INT(preads, 0);
    snprintf(path, sizeof(path), "%s/b.bin", root);
    CHECK(stat(path, &st) < 0 && errno == ENOENT);
    /* and the next file with a basis too, without asking the server again */
    CHECK_INT(copy_file(ap, &s, 4, "c.bin", old, &code), DS_MSG_FILE_ERR);
    CHECK_INT(code, DS_ESRVCOPY);
    CHECK_INT(preads, 0);
    /* a whole file lands */
    w = s_whole(&s, 5, "b.bin", "whole", 5);
    CHECK_INT(feed(ap, &s), 0);
    CHECK(s_find(rep, nrep, w) && s_find(rep, nrep, w)->type == DS_MSG_FILE_OK);
    CHECK(stat(path, &st) == 0 && st.st_size == 5);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
}

int main(void)
{
    ops = *ds_fs_posix.ops;
    ops.pread = count_pread;
    ops.copy_range = fake_copy;
    ops.can_syncfs = 0; /* as SMB: each file published alone */
    snprintf(root, sizeof(root), "%s", check_tmpdir("apply_scopy"));
    RUN(test_copy_then_refused);
    return CHECK_DONE();
}

/* Receiver lease: takeover of an expired lease whose holder still runs (and
 * holds the lock), and the displaced session's refusal to write; on a
 * remote backend (ds_fs_ops_t.remote: SMB) the lease file read at most
 * once a second at a publish, and at least once. */
#include <fcntl.h>

#include "check.h"
#include "distsync/apply.h"
#include "distsync/error.h"
#include "distsync/lease.h"
#include "session.h"
#include "apply_feed.h"

static char root[4096];
static uint8_t outcopy[1 << 20];
static ds_msg_t rep[64];
static int nrep;
static int64_t fake_now = 1700000000;

static int64_t clock_fn(void *ctx)
{
    return fake_now;
}

/* A remote backend (as SMB: remote, no_special): POSIX that counts the
 * reads of the lease file. */
static ds_fs_ops_t remote_ops;
static const ds_fs_t remote_fs = {.ops = &remote_ops};
static int lease_reads;

static int count_openat(const ds_fs_t *fs, int dirfd, const char *name, int flags, mode_t mode)
{
    if (strcmp(name, DS_LEASE_NAME) == 0 && (flags & O_ACCMODE) == O_RDONLY)
        lease_reads++;
    return ds_fs_posix.ops->openat(fs, dirfd, name, flags, mode);
}

static ds_apply_t *open_ap_fs(const ds_fs_t *fs)
{
    ds_apply_opts_t o = {.now = clock_fn, .no_fsync = 1, .fs = fs};
    ds_apply_t *ap = NULL;
    char err[256];

    CHECK_INT(ds_apply_new(root, &o, &ap, err, sizeof(err)), 0);
    return ap;
}

static ds_apply_t *open_ap(void)
{
    return open_ap_fs(NULL);
}

/* Feeds the whole session (draining output as the receiver asks), decodes
 * the replies; returns the reply to id. */
static const ds_msg_t *feed(ds_apply_t *ap, struct sess *s, uint32_t id)
{
    size_t total;

    CHECK(s_feed(ap, s, SIZE_MAX, outcopy, sizeof(outcopy), &total) >= 0);
    nrep = s_replies(outcopy, total, rep, 64);
    return s_find(rep, nrep, id);
}

static int says(const ds_msg_t *r, const char *text)
{
    char msg[600];
    ds_pstr_t m = r->type == DS_MSG_BUSY ? r->u.busy.message : r->u.err.message;

    snprintf(msg, sizeof(msg), "%.*s", (int)m.n, m.p);
    if (strstr(msg, text) == NULL)
        fprintf(stderr, "message '%s' lacks '%s'\n", msg, text);
    return strstr(msg, text) != NULL;
}

static void test_takeover(void)
{
    struct sess sa = {0}, sb = {0};
    ds_apply_t *a = open_ap(), *b = open_ap();
    const ds_msg_t *r;
    ds_lease_t cur;
    uint8_t sha[DS_SHA256_LEN];
    char p[4200];
    int dfd;

    s_hello(&sa, "A");
    r = feed(a, &sa, s_lease(&sa, DS_LEASE_OP_ACQUIRE, "console-A", 60));
    CHECK(r && r->type == DS_MSG_LEASE_OK);
    s_begin(&sa, 1, "in-flight.bin", 4);
    s_data(&sa, 1, NULL, "ab", 2, 0);
    feed(a, &sa, 0);
    /* A is stopped (it still holds the lock). While its lease is valid, B is
     * refused and told who holds the server. */
    s_hello(&sb, "B");
    r = feed(b, &sb, s_lease(&sb, DS_LEASE_OP_ACQUIRE, "console-B", 60));
    CHECK(r && r->type == DS_MSG_BUSY && says(r, "console console-A (pid 4242"));
    /* A's lease expired: B takes it over and removes A's tmp file. */
    fake_now += 61;
    r = feed(b, &sb, s_lease(&sb, DS_LEASE_OP_ACQUIRE, "console-B", 60));
    CHECK(r && r->type == DS_MSG_LEASE_OK && r->u.lease_ok.tmp_cleaned == 1);
    r = feed(b, &sb, s_whole(&sb, 1, "b.txt", "from B", 6));
    CHECK(r && r->type == DS_MSG_FILE_OK);
    /* A resumes: nothing it does writes any more, even with a renewal. */
    s_data(&sa, 1, NULL, "cd", 2, 0);
    CHECK_INT(ds_sha256("abcd", 4, sha), 0);
    r = feed(a, &sa, s_commit(&sa, 1, 4, sha));
    CHECK(r && r->type == DS_MSG_FILE_ERR && r->u.err.code == DS_ELEASE);
    r = feed(a, &sa, s_lease(&sa, DS_LEASE_OP_RENEW, "console-A", 60));
    CHECK(r && r->type == DS_MSG_BUSY && says(r, "console console-B"));
    r = feed(a, &sa, s_whole(&sa, 2, "b.txt", "from A", 6));
    CHECK(r && r->type == DS_MSG_FILE_ERR && r->u.err.code == DS_ELEASE && says(r, "taken over"));
    r = feed(a, &sa, s_path(&sa, DS_MSG_DELETE, "b.txt"));
    CHECK(r && r->type == DS_MSG_ERR && r->u.err.code == DS_ELEASE);
    r = feed(a, &sa, s_empty(&sa, DS_MSG_MANIFEST_COMMIT));
    CHECK(r && r->type == DS_MSG_ERR && r->u.err.code == DS_ELEASE);
    r = feed(a, &sa, s_lease(&sa, DS_LEASE_OP_ACQUIRE, "console-A", 60));
    CHECK(r && r->type == DS_MSG_BUSY); /* never re-taken by this session */
    r = feed(a, &sa, s_lease(&sa, DS_LEASE_OP_RELEASE, "console-A", 0));
    CHECK(r && r->type == DS_MSG_OK);
    snprintf(p, sizeof(p), "%s/.distsync", root);
    dfd = open(p, O_RDONLY | O_DIRECTORY);
    CHECK_INT(ds_lease_read(dfd, &cur), 0); /* A's release left B's lease */
    CHECK_STR(cur.console, "console-B");
    CHECK_INT(cur.flock, 0);
    snprintf(p, sizeof(p), "%s/b.txt", root);
    {
        char buf[16] = "";
        FILE *f = fopen(p, "r");

        CHECK(f != NULL && fgets(buf, sizeof(buf), f) != NULL);
        CHECK_STR(buf, "from B");
        if (f)
            fclose(f);
    }
    ds_apply_free(a);
    r = feed(b, &sb, s_lease(&sb, DS_LEASE_OP_RELEASE, "console-B", 0));
    CHECK(r && r->type == DS_MSG_OK);
    CHECK_INT(ds_lease_read(dfd, &cur), DS_ENOTFOUND);
    close(dfd);
    ds_apply_free(b);
    ds_proto_buf_free(&sa.b);
    ds_proto_buf_free(&sb.b);
}

/* Over SMB every read of the lease file is 4 round trips: a publish trusts
 * a read that found the lease ours in the same second (092d7b1), so ten
 * small files in one second read it at most once; in the next second the
 * first publish reads it again and sees it gone. */
static void test_remote_publish(void)
{
    struct sess s = {0};
    ds_apply_t *ap = open_ap_fs(&remote_fs);
    const ds_msg_t *r;
    char p[4200], name[32];

    s_hello(&s, "R");
    r = feed(ap, &s, s_lease(&s, DS_LEASE_OP_ACQUIRE, "console-R", 60));
    CHECK(r && r->type == DS_MSG_LEASE_OK);
    lease_reads = 0;
    for (uint32_t i = 1; i <= 10; i++) {
        snprintf(name, sizeof(name), "small%u.txt", i);
        r = feed(ap, &s, s_whole(&s, i, name, "small", 5));
        CHECK(r && r->type == DS_MSG_FILE_OK);
    }
    if (lease_reads > 1)
        fprintf(stderr, "10 publishes in one second read the lease %d times\n", lease_reads);
    CHECK(lease_reads <= 1);
    /* another session's doing, seen at the next second's first publish */
    snprintf(p, sizeof(p), "%s/.distsync/%s", root, DS_LEASE_NAME);
    CHECK_INT(unlink(p), 0);
    fake_now += 1;
    lease_reads = 0;
    r = feed(ap, &s, s_whole(&s, 11, "late.txt", "late", 4));
    CHECK(r && r->type == DS_MSG_FILE_ERR && r->u.err.code == DS_ELEASE);
    CHECK(lease_reads >= 1);
    snprintf(p, sizeof(p), "%s/late.txt", root);
    CHECK(access(p, F_OK) != 0);
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
}

int main(void)
{
    snprintf(root, sizeof(root), "%s", check_tmpdir("apply_lease"));
    remote_ops = *ds_fs_posix.ops;
    remote_ops.remote = 1;
    remote_ops.no_special = 1; /* as SMB: every read of the lease reaches openat */
    remote_ops.openat = count_openat;
    remote_ops.can_syncfs = 0; /* as SMB: each file published alone */
    RUN(test_takeover);
    RUN(test_remote_publish);
    return CHECK_DONE();
}

/* Receiver batches (apply_batch.c): whether sealed files are published
 * together is the filesystem seam's capability (ds_fs_ops_t.can_syncfs),
 * not which backend it is: a POSIX backend wrapped by a caller (here: one
 * that counts fsyncs) batches when it says it can syncfs, and publishes
 * each file alone (its own fsyncs) when it says it cannot, as SMB. */
#include <fcntl.h>

#include "check.h"
#include "distsync/apply.h"
#include "distsync/error.h"
#include "distsync/fs.h"
#include "session.h"
#include "apply_feed.h"

#define NFILES 5

static char root[4096];
static uint8_t outcopy[1 << 20];
static ds_msg_t rep[64];

static ds_fs_ops_t counting_ops;
static const ds_fs_t counting_fs = {.ops = &counting_ops};
static int fsyncs;

static int count_fsync(const ds_fs_t *fs, int fd)
{
    fsyncs++;
    return ds_fs_posix.ops->fsync(fs, fd);
}

/* Feeds NFILES whole files in one input (fsync on), then checks every
 * reply and file; returns the fsyncs the receiver asked of the seam. */
static int publish_files(int can_syncfs, const char *dir)
{
    ds_apply_opts_t o = {.fs = &counting_fs};
    struct sess s = {0};
    ds_apply_t *ap = NULL;
    char err[256], name[64], p[4200];
    uint32_t ids[NFILES];
    size_t total;
    int nrep;

    counting_ops.can_syncfs = can_syncfs;
    snprintf(p, sizeof(p), "%s/%s", root, dir);
    CHECK_INT(mkdir(p, 0755), 0);
    CHECK_INT(ds_apply_new(p, &o, &ap, err, sizeof(err)), 0);
    if (ap == NULL)
        return -1;
    s_hello(&s, "B");
    s_lease(&s, DS_LEASE_OP_ACQUIRE, "console-B", 60);
    CHECK(s_feed(ap, &s, SIZE_MAX, outcopy, sizeof(outcopy), &total) >= 0); /* lease written */
    fsyncs = 0;
    for (uint32_t i = 0; i < NFILES; i++) {
        snprintf(name, sizeof(name), "f%u.txt", i);
        ids[i] = s_whole(&s, i + 1, name, name, strlen(name));
    }
    CHECK(s_feed(ap, &s, SIZE_MAX, outcopy, sizeof(outcopy), &total) >= 0);
    nrep = s_replies(outcopy, total, rep, 64);
    for (uint32_t i = 0; i < NFILES; i++) {
        const ds_msg_t *r = s_find(rep, nrep, ids[i]);

        CHECK(r != NULL && r->type == DS_MSG_FILE_OK);
        snprintf(p, sizeof(p), "%s/%s/f%u.txt", root, dir, i);
        CHECK_INT(access(p, F_OK), 0);
    }
    ds_apply_free(ap);
    ds_proto_buf_free(&s.b);
    return fsyncs;
}

static void test_batch_by_capability(void)
{
    int n = publish_files(1, "batched");

    if (n >= NFILES)
        fprintf(stderr, "can_syncfs 1: %d fsyncs for %d files (not batched)\n", n, NFILES);
    CHECK(n >= 0 && n < NFILES);
}

static void test_alone_without_capability(void)
{
    int n = publish_files(0, "alone");

    if (n < NFILES)
        fprintf(stderr, "can_syncfs 0: %d fsyncs for %d files (batched)\n", n, NFILES);
    CHECK(n >= NFILES);
}

int main(void)
{
    snprintf(root, sizeof(root), "%s", check_tmpdir("apply_batch"));
    counting_ops = *ds_fs_posix.ops;
    counting_ops.fsync = count_fsync;
    RUN(test_batch_by_capability);
    RUN(test_alone_without_capability);
    return CHECK_DONE();
}

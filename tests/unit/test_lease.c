/* Lease: pure decision with an injected clock, text codec, file, flock. */
#include <fcntl.h>

#include "check.h"
#include "distsync/error.h"
#include "distsync/lease.h"

static void test_decide(void)
{
    ds_lease_t l = {.console = "A", .host = "h", .pid = 1, .expiry = 1000, .flock = 0};

    CHECK_INT(ds_lease_decide(NULL, "B", 500, 1), DS_LEASE_GRANT_FREE);
    CHECK_INT(ds_lease_decide(NULL, "B", 500, 0), DS_LEASE_BUSY);
    CHECK_INT(ds_lease_decide(&l, "B", 999, 1), DS_LEASE_BUSY);
    CHECK_INT(ds_lease_decide(&l, "B", 1000, 1), DS_LEASE_GRANT_STALE);
    CHECK_INT(ds_lease_decide(&l, "A", 999, 1), DS_LEASE_GRANT_OWN);
    CHECK_INT(ds_lease_decide(&l, "A", 999, 0), DS_LEASE_BUSY);
    /* expired while its receiver holds the lock (stalled): taken over */
    CHECK_INT(ds_lease_decide(&l, "B", 5000, 0), DS_LEASE_GRANT_TAKEOVER);
    CHECK_INT(ds_lease_decide(&l, "A", 1000, 0), DS_LEASE_GRANT_TAKEOVER);
    l.flock = 1; /* holder used the lock and it is free now: dead */
    CHECK_INT(ds_lease_decide(&l, "B", 999, 1), DS_LEASE_GRANT_STALE);
    CHECK_INT(ds_lease_decide(&l, "B", 999, 0), DS_LEASE_BUSY);
}

static void test_codec(void)
{
    ds_lease_t l = {.console = "console-7",
                    .host = "box.example",
                    .pid = 99,
                    .expiry = 1700000000,
                    .flock = 1,
                    .session = 0x123456789abcdef0ULL};
    ds_lease_t d;
    char buf[1024];
    int n = ds_lease_encode(&l, buf, sizeof(buf));

    CHECK(n > 0);
    CHECK_INT(ds_lease_decode(buf, (size_t)n, &d), 0);
    CHECK_STR(d.console, "console-7");
    CHECK_STR(d.host, "box.example");
    CHECK_INT(d.pid, 99);
    CHECK_INT(d.expiry, 1700000000);
    CHECK_INT(d.flock, 1);
    CHECK(d.session == 0x123456789abcdef0ULL);
    for (int i = 0; i < n - 1; i++)
        CHECK(ds_lease_decode(buf, (size_t)i, &d) < 0);
    CHECK_INT(ds_lease_decode("distsync-lease 2\n", 17, &d), DS_EVERSION);
    CHECK_INT(ds_lease_decode("junk\n", 5, &d), DS_ECORRUPT);
    CHECK_INT(ds_lease_decode("distsync-lease 1\nconsole a\npid x\nhost h\nexpiry 1\n", 48, &d),
              DS_ECORRUPT);
    {
        const char *t = "distsync-lease 1\nconsole a\npid 1\nhost h\nexpiry 1\nflock 0\nnew 5\n";

        CHECK_INT(ds_lease_decode(t, strlen(t), &d), 0); /* unknown keys ignored */
    }
    strcpy(l.console, "evil\nexpiry 0");
    CHECK(ds_lease_encode(&l, buf, sizeof(buf)) < 0);
    CHECK_INT(ds_lease_encode(&d, buf, 10), DS_ETOOBIG);
}

static void test_file_and_lock(void)
{
    const char *dir = check_tmpdir("lease");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY), fd1, fd2;
    ds_lease_t l = {.console = "A", .host = "h", .pid = 3, .expiry = 86400 * 365, .flock = 1};
    ds_lease_t r;
    char msg[512];

    CHECK_INT(ds_lease_read(dfd, &r), DS_ENOTFOUND);
    CHECK_INT(ds_lease_write(dfd, &l), 0);
    CHECK_INT(ds_lease_read(dfd, &r), 0);
    CHECK_STR(r.console, "A");
    ds_lease_busy_message(&r, msg, sizeof(msg));
    CHECK_STR(msg,
              "server is being synced by console A (pid 3 on host h) until 1971-01-01T00:00:00Z");
    CHECK_INT(ds_lease_lock(dfd, &fd1), 0);
    CHECK_INT(ds_lease_lock(dfd, &fd2), DS_ELEASE); /* a second open file description */
    close(fd1);
    CHECK_INT(ds_lease_lock(dfd, &fd2), 0);
    close(fd2);
    CHECK_INT(ds_lease_remove(dfd), 0);
    CHECK_INT(ds_lease_read(dfd, &r), DS_ENOTFOUND);
    CHECK_INT(ds_lease_remove(dfd), 0);
    close(dfd);
}

/* FIFOs, symlinks and hard links in the state dir: refused, never blocking,
 * never written through. */
static void test_hostile_state(void)
{
    const char *dir = check_tmpdir("lease_hostile");
    char p[4096], q[4096];
    int dfd = open(dir, O_RDONLY | O_DIRECTORY), fd = -1;
    ds_lease_t l = {.console = "A", .host = "h", .pid = 3, .expiry = 5, .flock = 1}, r;
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", dir, DS_LEASE_NAME);
    CHECK_INT(mkfifo(p, 0644), 0);
    CHECK_INT(ds_lease_read(dfd, &r), DS_ENOTREG); /* would block without O_NONBLOCK */
    unlink(p);
    snprintf(p, sizeof(p), "%s/%s", dir, DS_LEASE_LOCK_NAME);
    CHECK_INT(mkfifo(p, 0644), 0);
    CHECK_INT(ds_lease_lock(dfd, &fd), DS_ENOTREG);
    unlink(p);
    /* a hard link to a file outside: lock refused, lease.tmp replaced */
    snprintf(q, sizeof(q), "%s/canary", dir);
    f = fopen(q, "w");
    fputs("canary\n", f);
    fclose(f);
    CHECK_INT(link(q, p), 0);
    CHECK_INT(ds_lease_lock(dfd, &fd), DS_EEXISTS);
    unlink(p);
    snprintf(p, sizeof(p), "%s/%s.tmp", dir, DS_LEASE_NAME);
    CHECK_INT(link(q, p), 0);
    CHECK_INT(ds_lease_write(dfd, &l), 0);
    f = fopen(q, "r");
    CHECK(f != NULL && fgets(p, sizeof(p), f) != NULL && strcmp(p, "canary\n") == 0);
    if (f)
        fclose(f);
    CHECK_INT(ds_lease_read(dfd, &r), 0);
    CHECK_STR(r.console, "A");
    /* the guard: a second taker times out */
    CHECK_INT(ds_lease_guard(dfd, 0, &fd), 0);
    {
        int fd2 = -1;

        CHECK_INT(ds_lease_guard(dfd, 50, &fd2), DS_ELEASE);
    }
    close(fd);
    close(dfd);
}

int main(void)
{
    RUN(test_decide);
    RUN(test_codec);
    RUN(test_file_and_lock);
    RUN(test_hostile_state);
    return CHECK_DONE();
}

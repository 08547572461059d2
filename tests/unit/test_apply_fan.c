/* Receiver: FILE_ONEs spread over helper receivers (apply_fan.c), here on
 * a local directory, each helper a forked process running
 * ds_apply_helper_serve on a socketpair, as the SMB worker's helpers do
 * over their own connections. Checks: every file published with its
 * content, the replies in request order (FILE_DONE for each, then BYE's
 * OK), the manifest written by the session holding every file, and a
 * helper that dies: its file applied by the session itself. */
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "distsync/apply.h"
#include "distsync/error.h"
#include "distsync/manifest.h"
#include "session.h"
#include "apply_feed.h"

#define NHELP  3
#define NFILES 24

static char root[4096];
static uint8_t outcopy[1 << 20];
static ds_msg_t rep[NFILES + 8];

/* FILE_ONE of a whole file p[0, n) at path. */
static uint32_t s_one(struct sess *s, const char *path, const void *p, size_t n)
{
    ds_msg_t m = {.type = DS_MSG_FILE_ONE};

    m.u.one.kind = DS_PROTO_ONE_LITERAL;
    m.u.one.path = ds_pstr(path);
    m.u.one.size = n;
    m.u.one.mode = 0644;
    m.u.one.mtime_ns = DS_PROTO_NO_MTIME;
    m.u.one.raw_len = (uint32_t)n;
    m.u.one.data = p;
    m.u.one.data_len = (uint32_t)n;
    CHECK_INT(ds_sha256(p, n, m.u.one.sha256), 0);
    return s_put(s, &m);
}

/* A helper process: its own receiver on root, serving fd (the parent's
 * ends of the sockets so far, fds[0, n), closed: their EOF). */
static pid_t helper(int fd, const int *fds, int n)
{
    pid_t pid = fork();

    if (pid == 0) {
        for (int i = 0; i < n; i++)
            close(fds[i]);
        ds_apply_t *ap = NULL;
        char err[256];
        int rc = ds_apply_new(root, &(ds_apply_opts_t){.no_fsync = 1, .peer_reports = 1}, &ap, err,
                              sizeof(err));

        if (rc == 0)
            rc = ds_apply_helper_serve(ap, fd, err, sizeof(err));
        ds_apply_free(ap);
        _exit(rc < 0 ? 1 : 0);
    }
    return pid;
}

static void content(int i, char *buf, size_t n)
{
    for (size_t k = 0; k < n; k++)
        buf[k] = (char)('a' + (i * 7 + (int)k) % 26);
}

/* kill: the first helper is killed before the session starts. */
static void run(int kill_one)
{
    int fds[NHELP], sv[2], nrep;
    pid_t pids[NHELP];
    uint32_t ids[NFILES], bye;
    char bufs[NFILES][3000], path[64];
    struct sess s = {0};
    ds_apply_t *ap = NULL;
    ds_manifest_t *man = NULL;
    char err[256];
    size_t total;

    for (int i = 0; i < NHELP; i++) {
        CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        fds[i] = sv[0];
        pids[i] = helper(sv[1], fds, i + 1);
        close(sv[1]);
    }
    if (kill_one) {
        kill(pids[0], SIGKILL);
        waitpid(pids[0], NULL, 0);
    }
    CHECK_INT(ds_apply_new(root, &(ds_apply_opts_t){.no_fsync = 1, .fan_fds = fds, .nfan = NHELP},
                           &ap, err, sizeof(err)),
              0);
    s_hello(&s, "console-fan");
    s_lease(&s, DS_LEASE_OP_ACQUIRE, "console-fan", 60);
    for (int i = 0; i < NFILES; i++) {
        size_t n = 100 + (size_t)i * 97;

        content(i + kill_one, bufs[i], n);
        snprintf(path, sizeof(path), "d%d/f%d", i % 4, i);
        ids[i] = s_one(&s, path, bufs[i], n);
    }
    bye = s_empty(&s, DS_MSG_BYE);
    CHECK(s_feed(ap, &s, SIZE_MAX, outcopy, sizeof(outcopy), &total) >= 0);
    nrep = s_replies(outcopy, (size_t)total, rep, NFILES + 8);
    CHECK_INT(nrep, NFILES + 3); /* HELLO_OK, LEASE_OK, the files, OK */
    for (int i = 0; i < NFILES && nrep == NFILES + 3; i++) {
        CHECK_INT(rep[2 + i].id, ids[i]);
        CHECK_INT(rep[2 + i].type, DS_MSG_FILE_DONE);
    }
    if (nrep == NFILES + 3)
        CHECK_INT(rep[NFILES + 2].id, bye);
    CHECK_INT(ds_apply_stats(ap)->files_ok, NFILES);
    ds_apply_free(ap);
    for (int i = 0; i < NHELP; i++) {
        int st = 0;

        close(fds[i]);
        if (kill_one && i == 0)
            continue;
        CHECK_INT(waitpid(pids[i], &st, 0), pids[i]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    for (int i = 0; i < NFILES; i++) {
        char full[4200], got[3000];
        FILE *f;
        size_t n = 100 + (size_t)i * 97;

        snprintf(full, sizeof(full), "%s/d%d/f%d", root, i % 4, i);
        f = fopen(full, "rb");
        CHECK(f != NULL);
        if (f == NULL)
            continue;
        CHECK_INT(fread(got, 1, sizeof(got), f), n);
        CHECK(memcmp(got, bufs[i], n) == 0);
        fclose(f);
    }
    {
        char dpath[4200];
        int dfd;

        snprintf(dpath, sizeof(dpath), "%s/.distsync", root);
        dfd = open(dpath, O_RDONLY | O_DIRECTORY);
        CHECK(dfd >= 0);
        CHECK_INT(ds_manifest_load(dfd, &man, err, sizeof(err)), 0);
        CHECK_INT(ds_manifest_count(man), NFILES);
        ds_manifest_free(man);
        close(dfd);
    }
    ds_proto_buf_free(&s.b);
}

static void test_spread(void)
{
    run(0);
}

static void test_helper_dead(void)
{
    run(1);
}

int main(void)
{
    snprintf(root, sizeof(root), "%s", check_tmpdir("apply_fan"));
    signal(SIGPIPE, SIG_IGN);
    RUN(test_spread);
    RUN(test_helper_dead);
    return CHECK_DONE();
}

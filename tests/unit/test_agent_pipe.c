/*
 * The real `distsync agent --root DIR` ($DISTSYNC) as a subprocess, spoken to
 * over pipes: a good session, a hostile one, a truncated stream, kill -9 in
 * the middle of a file, and two agents racing for one root.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include "check.h"
#include "distsync/error.h"
#include "session.h"

struct agent {
    pid_t pid;
    int in, out;
    uint8_t *buf;
    size_t len, cap;
};

static const char *distsync;
static uint8_t *closed_buf; /* output of the last closed agent: rep[] points into it */
static char root[4096], outside[4096];
static ds_msg_t rep[1024];
static int nrep;

static void agent_start(struct agent *a)
{
    int pin[2], pout[2];

    memset(a, 0, sizeof(*a));
    if (pipe(pin) < 0 || pipe(pout) < 0)
        exit(2);
    a->pid = fork();
    if (a->pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        close(pin[1]);
        close(pout[0]);
        execl(distsync, "distsync", "-q", "agent", "--root", root, (char *)NULL);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    a->in = pin[1];
    a->out = pout[0];
    a->cap = 1 << 20;
    a->buf = malloc(a->cap);
}

/* Writes all of b while draining replies, so neither pipe can deadlock. */
static void agent_send(struct agent *a, struct sess *s)
{
    size_t off = 0;

    while (off < s->b.len) {
        struct pollfd p[2] = {{a->in, POLLOUT, 0}, {a->out, POLLIN, 0}};

        if (poll(p, 2, 10000) <= 0)
            break;
        if (p[1].revents & (POLLIN | POLLHUP)) {
            ssize_t r = read(a->out, a->buf + a->len, a->cap - a->len);

            if (r > 0)
                a->len += (size_t)r;
        }
        if (p[0].revents & POLLOUT) {
            ssize_t w = write(a->in, s->b.p + off, s->b.len - off);

            if (w < 0)
                break; /* agent gone (EPIPE) */
            off += (size_t)w;
        }
        if (p[0].revents & (POLLERR | POLLHUP))
            break;
    }
    s->b.len = 0;
}

/* Reads replies until one carries id (or EOF). */
static void agent_wait_id(struct agent *a, uint32_t id)
{
    for (;;) {
        ssize_t r;

        nrep = s_replies(a->buf, a->len, rep, 1024);
        if (nrep > 0 && s_find(rep, nrep, id) != NULL)
            return;
        r = read(a->out, a->buf + a->len, a->cap - a->len);
        if (r <= 0)
            return;
        a->len += (size_t)r;
    }
}

/* Closes stdin, reads everything, returns the exit status (-signal if killed). */
static int agent_close(struct agent *a)
{
    int st = 0;
    ssize_t r;

    close(a->in);
    while ((r = read(a->out, a->buf + a->len, a->cap - a->len)) > 0)
        a->len += (size_t)r;
    close(a->out);
    waitpid(a->pid, &st, 0);
    nrep = s_replies(a->buf, a->len, rep, 1024);
    free(closed_buf);
    closed_buf = a->buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

static int count_dir(const char *rel_to_root)
{
    char p[8192];
    DIR *d;
    struct dirent *de;
    int n = 0;

    snprintf(p, sizeof(p), "%s%s", root, rel_to_root);
    d = opendir(p);
    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

static int outside_count(void)
{
    DIR *d = opendir(outside);
    struct dirent *de;
    int n = 0;

    while (d && (de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static int file_is(const char *rel, const void *want, size_t n)
{
    static char buf[1 << 20];
    char p[8192];
    FILE *f;
    size_t got;

    snprintf(p, sizeof(p), "%s/%s", root, rel);
    f = fopen(p, "rb");
    if (f == NULL)
        return 0;
    got = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    return got == n && memcmp(buf, want, n) == 0;
}

static void write_file(const char *rel, const void *p, size_t n)
{
    char path[8192];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", root, rel);
    f = fopen(path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
}

static void test_good_session(void)
{
    static uint8_t old[100000], nw[100000];
    struct agent a;
    struct sess s = {0};
    uint8_t sha[32], *delta = NULL;
    size_t dn = 0;
    uint32_t c1, c2, d, mc, b;

    for (size_t i = 0; i < sizeof(old); i++)
        old[i] = (uint8_t)(i * 7 + i / 1000);
    memcpy(nw, old, sizeof(nw));
    memcpy(nw + 40000, "EDITED", 6);
    write_file("base.bin", old, sizeof(old));
    write_file("gone.txt", "x", 1);
    CHECK_INT(s_make_delta(old, sizeof(old), nw, sizeof(nw), &delta, &dn), 0);
    agent_start(&a);
    s_hello(&s, "pipe-console");
    s_lease(&s, DS_LEASE_OP_ACQUIRE, "pipe-console", 60);
    s_begin(&s, 1, "defs/new.txt", 11);
    s_data(&s, 1, NULL, "hello pipes", 11, 1);
    CHECK_INT(ds_sha256("hello pipes", 11, sha), 0);
    c1 = s_commit(&s, 1, 11, sha);
    s_begin(&s, 2, "base.bin", sizeof(nw));
    s_data(&s, 2, "base.bin", delta, dn, 1);
    s_file(&s, DS_MSG_DELTA_END, 2);
    CHECK_INT(ds_sha256(nw, sizeof(nw), sha), 0);
    c2 = s_commit(&s, 2, sizeof(nw), sha);
    d = s_path(&s, DS_MSG_DELETE, "gone.txt");
    mc = s_empty(&s, DS_MSG_MANIFEST_COMMIT);
    b = s_empty(&s, DS_MSG_BYE);
    agent_send(&a, &s);
    CHECK_INT(agent_close(&a), 0);
    CHECK(s_find(rep, nrep, c1) && s_find(rep, nrep, c1)->type == DS_MSG_FILE_OK);
    CHECK(s_find(rep, nrep, c2) && s_find(rep, nrep, c2)->type == DS_MSG_FILE_OK);
    CHECK(s_find(rep, nrep, d) && s_find(rep, nrep, d)->u.ok.value == 1);
    CHECK(s_find(rep, nrep, mc) && s_find(rep, nrep, mc)->u.ok.value == 2);
    CHECK(s_find(rep, nrep, b) && s_find(rep, nrep, b)->type == DS_MSG_OK);
    CHECK(file_is("defs/new.txt", "hello pipes", 11));
    CHECK(file_is("base.bin", nw, sizeof(nw)));
    CHECK_INT(count_dir("/.distsync/tmp"), 0);
    free(delta);
    ds_proto_buf_free(&s.b);
}

static void test_hostile_session(void)
{
    struct agent a;
    struct sess s = {0};
    char p[8192];
    uint8_t huge[12] = {0x00, 0xff, 0xff, 0xff, DS_MSG_LITERAL, 0, 0, 0, 0, 0, 0, 99};
    uint32_t c[4];

    snprintf(p, sizeof(p), "%s/escape", root);
    symlink(outside, p);
    agent_start(&a);
    s_hello(&s, "evil");
    s_lease(&s, DS_LEASE_OP_ACQUIRE, "evil", 60);
    c[0] = s_whole(&s, 1, "../../../tmp/pwned", "x", 1);
    c[1] = s_whole(&s, 2, "escape/pwned", "x", 1);
    c[2] = s_whole(&s, 3, "/etc/pwned", "x", 1);
    c[3] = s_whole(&s, 4, ".distsync/lease", "x", 1);
    CHECK_INT(ds_proto_buf_append(&s.b, huge, sizeof(huge)), 0);
    CHECK_INT(ds_proto_buf_append(&s.b, "garbage after", 13), 0);
    agent_send(&a, &s);
    CHECK_INT(agent_close(&a), 1);
    for (int i = 0; i < 4; i++)
        CHECK(s_find(rep, nrep, c[i]) && s_find(rep, nrep, c[i])->type == DS_MSG_FILE_ERR);
    CHECK(nrep > 0 && rep[nrep - 1].type == DS_MSG_ERR && (rep[nrep - 1].flags & DS_PROTO_F_FATAL));
    CHECK_INT(outside_count(), 0);
    CHECK_INT(count_dir("/.distsync/tmp"), 0);
    ds_proto_buf_free(&s.b);
}

static void test_truncated_stream(void)
{
    struct agent a;
    struct sess s = {0};

    agent_start(&a);
    s_hello(&s, "c");
    s_lease(&s, DS_LEASE_OP_ACQUIRE, "c", 60);
    s_whole(&s, 1, "trunc.txt", "abcdef", 6);
    s.b.len -= 10; /* cut the FILE_COMMIT */
    agent_send(&a, &s);
    CHECK_INT(agent_close(&a), 1);
    CHECK(!file_is("trunc.txt", "abcdef", 6));
    CHECK_INT(count_dir("/.distsync/tmp"), 0);
    ds_proto_buf_free(&s.b);
}

static void test_kill9_midfile(void)
{
    static uint8_t big[600000];
    struct agent a;
    struct sess s = {0};
    uint32_t l;
    int st;

    write_file("precious.bin", "old version", 11);
    agent_start(&a);
    s_hello(&s, "k");
    l = s_lease(&s, DS_LEASE_OP_ACQUIRE, "k", 60);
    s_begin(&s, 1, "precious.bin", 2 * sizeof(big));
    s_data(&s, 1, NULL, big, sizeof(big), 0);
    agent_send(&a, &s);
    agent_wait_id(&a, l);
    usleep(200000);
    kill(a.pid, SIGKILL);
    st = agent_close(&a);
    CHECK_INT(st, -SIGKILL);
    CHECK_INT(count_dir("/.distsync/tmp"), 1); /* the partial file */
    CHECK(file_is("precious.bin", "old version", 11));
    /* The next session's lease removes the garbage. */
    agent_start(&a);
    s_hello(&s, "k");
    l = s_lease(&s, DS_LEASE_OP_ACQUIRE, "k", 60);
    s_empty(&s, DS_MSG_BYE);
    agent_send(&a, &s);
    CHECK_INT(agent_close(&a), 0);
    CHECK(s_find(rep, nrep, l) && s_find(rep, nrep, l)->type == DS_MSG_LEASE_OK &&
          s_find(rep, nrep, l)->u.lease_ok.tmp_cleaned == 1);
    CHECK_INT(count_dir("/.distsync/tmp"), 0);
    CHECK(file_is("precious.bin", "old version", 11));
    ds_proto_buf_free(&s.b);
}

static void test_two_agents(void)
{
    struct agent a, b;
    struct sess s = {0}, t = {0};
    uint32_t l1, l2;
    const ds_msg_t *r;

    agent_start(&a);
    s_hello(&s, "first");
    l1 = s_lease(&s, DS_LEASE_OP_ACQUIRE, "first", 60);
    agent_send(&a, &s);
    agent_wait_id(&a, l1);
    CHECK(s_find(rep, nrep, l1) && s_find(rep, nrep, l1)->type == DS_MSG_LEASE_OK);
    agent_start(&b);
    s_hello(&t, "second");
    l2 = s_lease(&t, DS_LEASE_OP_ACQUIRE, "second", 60);
    s_empty(&t, DS_MSG_BYE);
    agent_send(&b, &t);
    CHECK_INT(agent_close(&b), 0);
    r = s_find(rep, nrep, l2);
    CHECK(r && r->type == DS_MSG_BUSY);
    if (r && r->type == DS_MSG_BUSY)
        CHECK(r->u.busy.message.n > 0 &&
              memmem(r->u.busy.message.p, r->u.busy.message.n, "console first", 13) != NULL);
    s_empty(&s, DS_MSG_BYE);
    agent_send(&a, &s);
    CHECK_INT(agent_close(&a), 0);
    ds_proto_buf_free(&s.b);
    ds_proto_buf_free(&t.b);
}

int main(void)
{
    distsync = getenv("DISTSYNC");
    if (distsync == NULL) {
        fprintf(stderr, "DISTSYNC (path of the distsync binary) is not set\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    snprintf(outside, sizeof(outside), "%s", check_tmpdir("agent_outside"));
    snprintf(root, sizeof(root), "%s", check_tmpdir("agent_root"));
    RUN(test_good_session);
    RUN(test_hostile_session);
    RUN(test_truncated_stream);
    RUN(test_kill9_midfile);
    RUN(test_two_agents);
    free(closed_buf);
    return CHECK_DONE();
}

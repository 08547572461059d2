/*
 * file:// backend, transport = agent: runs `AGENT agent --root DIR` as a
 * child process and speaks the protocol over its stdin/stdout pipes, the
 * byte-stream shape an SSH exec channel or the SMB worker pipe has. The
 * console's ends are non-blocking; the agent's stderr is inherited.
 *
 * With a spawner (the engine's uv_spawn), open only makes the pipes (on a
 * worker); start spawns the child on the loop thread, close closes the
 * console's ends, and reap (on the loop) reports the exit the spawner saw,
 * killing an agent still running close_wait_s after the end of its input.
 * Without one, open forks and close reaps with waitpid.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "distsync/error.h"
#include "distsync/fsutil.h"
#include "distsync/log.h"
#include "distsync/transport.h"

#define CLOSE_WAIT_S 30 /* default; an agent ends on end of input well within it */
/* The pipe to the agent holds about PIPE_MS of the link's rate, within
 * Linux's default (64 KiB) and PIPE_MAX: at 200 Mbit/s 64 KiB is under
 * 3 ms, less than a busy loop's lateness; a larger pipe at a low or
 * unknown rate would queue seconds ahead of a lease renewal. */
#define PIPE_MS   20
#define PIPE_MIN  (64u << 10)
#define PIPE_MAX  (1u << 20)
#define NOTES_MAX 32  /* stderr lines of a command kept for the run's events */
#define NOTE_LEN  240 /* bytes of one */

struct pipe_t {
    ds_transport_t t; /* first: the common head */
    pid_t pid;
    unsigned close_wait_s;
    char *root;
    char *label; /* "agent for ROOT", "SMB worker for server NAME": messages */
    char **argv; /* the child's command line (owned), when not an agent */
    int closed;
    /* spawned through a spawner */
    const ds_spawner_t *sp;
    char *agent;
    int child_in, child_out; /* the child's ends until it is started; -1 */
    void *child;             /* NULL: not started, or released */
    int64_t closed_at;       /* when reap first saw it closed (ns) */
    int killed;
    /* the SMB worker's stderr (a command's, not an agent's): lines kept
     * for the run's events (ds_transport_note), at most NOTES_MAX */
    int errfd, child_err; /* our read end, the child's end until started; -1 */
    char line[NOTE_LEN];
    size_t llen;
    char notes[NOTES_MAX][NOTE_LEN];
    unsigned nnotes, nread;
};

/* One stderr line of the command: logged at the level it names
 * ("distsync: warning: ...") under the command's label, and kept as a note
 * for the run's events. */
static void keep_note(struct pipe_t *pt, const char *l, size_t n)
{
    static const struct {
        const char *pfx;
        ds_log_level_t level;
    } lv[] = {{"error: ", DS_LOG_ERROR}, {"warning: ", DS_LOG_WARN}, {"info: ", DS_LOG_INFO}};
    ds_log_level_t level = DS_LOG_WARN;

    if (n >= 10 && memcmp(l, "distsync: ", 10) == 0) {
        l += 10;
        n -= 10;
    }
    for (size_t i = 0; i < sizeof(lv) / sizeof(lv[0]); i++)
        if (n >= strlen(lv[i].pfx) && memcmp(l, lv[i].pfx, strlen(lv[i].pfx)) == 0) {
            level = lv[i].level;
            l += strlen(lv[i].pfx);
            n -= strlen(lv[i].pfx);
            break;
        }
    if (n == 0)
        return;
    ds_log(level, "%s: %.*s", pt->label, (int)n, l);
    if (pt->nnotes < NOTES_MAX)
        snprintf(pt->notes[pt->nnotes++], NOTE_LEN, "%.*s", (int)n, l);
}

/* Reads what the child wrote on stderr so far (never blocks: the pipe is
 * non-blocking), splitting it into notes; a line longer than NOTE_LEN is
 * cut. */
static void drain_err(struct pipe_t *pt)
{
    char buf[4096];
    ssize_t r;

    while (pt->errfd >= 0 && (r = read(pt->errfd, buf, sizeof(buf))) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                close(pt->errfd);
                pt->errfd = -1;
            }
            return;
        }
        for (ssize_t i = 0; i < r; i++) {
            if (buf[i] == '\n') {
                keep_note(pt, pt->line, pt->llen);
                pt->llen = 0;
            } else if (pt->llen < sizeof(pt->line) - 1) {
                pt->line[pt->llen++] = buf[i];
            }
        }
    }
    close(pt->errfd); /* end of file: the child is gone */
    pt->errfd = -1;
    keep_note(pt, pt->line, pt->llen);
    pt->llen = 0;
}

static int pipe_note(ds_transport_t *t, char *buf, size_t cap)
{
    struct pipe_t *pt = (struct pipe_t *)t;

    drain_err(pt);
    if (pt->nread >= pt->nnotes)
        return 0;
    snprintf(buf, cap, "%s", pt->notes[pt->nread++]);
    return 1;
}

static long pipe_write(ds_transport_t *t, const void *p, size_t n)
{
    ssize_t w;

    drain_err((struct pipe_t *)t);
    if (t->wfd < 0) {
        snprintf(t->err, sizeof(t->err), "%s: stream already closed", ((struct pipe_t *)t)->label);
        return DS_ETRANSPORT;
    }
    do
        w = write(t->wfd, p, n);
    while (w < 0 && errno == EINTR);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (w < 0) {
        snprintf(t->err, sizeof(t->err), "%s: write: %s", ((struct pipe_t *)t)->label,
                 errno == EPIPE ? "the agent exited" : strerror(errno));
        return DS_ETRANSPORT;
    }
    return (long)w;
}

static long pipe_read(ds_transport_t *t, void *buf, size_t cap)
{
    ssize_t r;

    drain_err((struct pipe_t *)t);
    do
        r = read(t->rfd, buf, cap);
    while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (r <= 0) {
        snprintf(t->err, sizeof(t->err), "%s: %s", ((struct pipe_t *)t)->label,
                 r == 0 ? "the agent closed the stream" : strerror(errno));
        return DS_ETRANSPORT;
    }
    return (long)r;
}

/* Reaps the child, waiting at most close_wait_s for it: one that does not
 * end on end of input is hung, and is killed. Returns waitpid's answer. */
static pid_t reap(struct pipe_t *pt, int *status, int *killed)
{
    struct timespec nap = {0, 10 * 1000 * 1000}; /* 10 ms */
    pid_t w;

    for (long waited_ms = 0;; waited_ms += 10) {
        w = waitpid(pt->pid, status, *killed ? 0 : WNOHANG);
        if (w != 0 && !(w < 0 && errno == EINTR))
            return w;
        if (w == 0 && waited_ms >= pt->close_wait_s * 1000L) {
            kill(pt->pid, SIGKILL);
            *killed = 1;
        } else if (w == 0) {
            nanosleep(&nap, NULL);
        }
    }
}

/* Closes our ends, then reaps the child (which ends on end of input). */
static int pipe_close(ds_transport_t *t)
{
    struct pipe_t *pt = (struct pipe_t *)t;
    int status = 0, killed = 0;
    pid_t w;

    if (pt->closed)
        return 0;
    pt->closed = 1;
    if (t->wfd >= 0)
        close(t->wfd);
    if (t->rfd >= 0)
        close(t->rfd);
    t->wfd = t->rfd = -1;
    if (pt->pid <= 0) /* spawned: ds_transport_reap reports its exit */
        return 0;
    w = reap(pt, &status, &killed);
    pt->pid = 0;
    if (w < 0)
        return -errno;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (killed) {
        snprintf(t->err, sizeof(t->err),
                 "%s did not exit within %u s of the end of its input: killed", pt->label,
                 pt->close_wait_s);
        return DS_ETRANSPORT;
    }
    if (WIFEXITED(status))
        snprintf(t->err, sizeof(t->err), "%s exited with status %d", pt->label,
                 WEXITSTATUS(status));
    else
        snprintf(t->err, sizeof(t->err), "%s killed by signal %d", pt->label, WTERMSIG(status));
    return DS_ETRANSPORT;
}

/* A hung agent (blocked on a FIFO, stopped...) never reads the end of its
 * input: close would wait for it forever. */
static void pipe_kill(ds_transport_t *t)
{
    struct pipe_t *pt = (struct pipe_t *)t;

    if (pt->pid > 0)
        kill(pt->pid, SIGKILL);
    if (pt->child != NULL)
        pt->sp->kill(pt->sp->ctx, pt->child, SIGKILL);
}

static void pipe_rate(ds_transport_t *t, uint64_t bps)
{
    uint64_t want = bps / 1000 * PIPE_MS;

    want = want < PIPE_MIN ? PIPE_MIN : want > PIPE_MAX ? PIPE_MAX : want;
    if (t->wfd >= 0)
        (void)fcntl(t->wfd, F_SETPIPE_SZ, (int)want); /* best effort: a limit keeps what is */
}

/* Spawns the agent through the spawner (loop thread). */
static int pipe_start(ds_transport_t *t)
{
    struct pipe_t *pt = (struct pipe_t *)t;
    char *agent_argv[] = {pt->agent, "agent", "--root", pt->root, NULL};
    char **argv = pt->argv != NULL ? pt->argv : agent_argv;
    int rc;

    if (pt->sp == NULL || pt->child != NULL || pt->child_in < 0)
        return 0;
    rc = pt->sp->spawn(pt->sp->ctx, argv, pt->child_in, pt->child_out, pt->child_err, &pt->child,
                       t->err, sizeof(t->err));
    close(pt->child_in);
    close(pt->child_out);
    if (pt->child_err >= 0)
        close(pt->child_err);
    pt->child_in = pt->child_out = pt->child_err = -1;
    if (rc < 0)
        pt->child = NULL;
    return rc;
}

static int pipe_reap(ds_transport_t *t, int64_t now, int64_t *wake)
{
    struct pipe_t *pt = (struct pipe_t *)t;
    int code = 0, sig = 0;

    if (pt->child == NULL)
        return 1;
    if (!pt->sp->exited(pt->sp->ctx, pt->child, &code, &sig)) {
        if (pt->closed_at == 0)
            pt->closed_at = now;
        *wake = pt->closed_at + (int64_t)pt->close_wait_s * 1000000000;
        if (now >= *wake && !pt->killed) {
            pt->sp->kill(pt->sp->ctx, pt->child, SIGKILL); /* hung: not reading its input */
            pt->killed = 1;
        }
        if (now >= *wake)
            *wake = now + 100000000;
        return 0;
    }
    pt->sp->release(pt->sp->ctx, pt->child);
    pt->child = NULL;
    if (pt->killed) {
        snprintf(t->err, sizeof(t->err),
                 "%s did not exit within %u s of the end of its input: killed", pt->label,
                 pt->close_wait_s);
        return DS_ETRANSPORT;
    }
    if (sig > 0) {
        snprintf(t->err, sizeof(t->err), "%s killed by signal %d", pt->label, sig);
        return DS_ETRANSPORT;
    }
    if (code != 0) {
        snprintf(t->err, sizeof(t->err), "%s exited with status %d", pt->label, code);
        return DS_ETRANSPORT;
    }
    return 1;
}

static void free_argv(char **argv)
{
    for (size_t i = 0; argv != NULL && argv[i] != NULL; i++)
        free(argv[i]);
    free(argv);
}

static void pipe_free(ds_transport_t *t)
{
    struct pipe_t *pt = (struct pipe_t *)t;

    pipe_close(t);
    if (pt->child != NULL) { /* not reaped: ended now, the spawner reaps it */
        pt->sp->kill(pt->sp->ctx, pt->child, SIGKILL);
        pt->sp->release(pt->sp->ctx, pt->child);
    }
    if (pt->child_in >= 0)
        close(pt->child_in);
    if (pt->child_out >= 0)
        close(pt->child_out);
    if (pt->child_err >= 0)
        close(pt->child_err);
    if (pt->errfd >= 0)
        close(pt->errfd);
    free(pt->agent);
    free(pt->root);
    free(pt->label);
    free_argv(pt->argv);
    free(pt);
}

/* What the agent (or SMB worker) has not read: the pipe's content
 * (FIONREAD answers on either end of a Linux pipe). */
static uint64_t pipe_unread(const ds_transport_t *t)
{
    int n = 0;

    return t->wfd >= 0 && ioctl(t->wfd, FIONREAD, &n) == 0 && n > 0 ? (uint64_t)n : 0;
}

static const ds_transport_ops_t pipe_ops = {
    .unread = pipe_unread,
    .name = "agent",
    .write = pipe_write,
    .read = pipe_read,
    .close = pipe_close,
    .kill = pipe_kill,
    .free = pipe_free,
    .start = pipe_start,
    .reap = pipe_reap,
    .rate = pipe_rate,
    .note = pipe_note,
};

static void child(char *const argv[], int in, int out, int err)
{
    if (dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
        (err >= 0 && dup2(err, STDERR_FILENO) < 0))
        _exit(127);
    signal(SIGPIPE, SIG_DFL);
    /* Its own process group: a terminal's Ctrl-C reaches the console only,
     * which then winds the session down (ds_sync_cancel); the agent exits at
     * EOF when the console is gone. */
    setpgid(0, 0);
    execv(argv[0], argv);
    _exit(127);
}

/* The pipes, and the child forked now (no spawner) or left for pipe_start.
 * pt->label, root, agent and argv are set. Returns 0 or < 0 (message in
 * err). */
static int open_pipes(struct pipe_t *pt, const ds_spawner_t *spawner, char *err, size_t errlen)
{
    int to[2] = {-1, -1}, from[2] = {-1, -1};
    char *agent_argv[] = {pt->agent, "agent", "--root", pt->root, NULL};
    int rc = 0;

    pt->t.ops = &pipe_ops;
    pt->t.rfd = pt->t.wfd = -1;
    pt->child_in = pt->child_out = -1;
    if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: pipe: %s", pt->label, strerror(errno));
        goto out;
    }
    if (spawner != NULL) { /* started on the loop thread (pipe_start) */
        pt->sp = spawner;
        pt->child_in = to[0];
        pt->child_out = from[1];
        to[0] = from[1] = -1;
    } else {
        pt->pid = fork();
        if (pt->pid < 0) {
            rc = -errno;
            snprintf(err, errlen, "%s: fork: %s", pt->label, strerror(errno));
            goto out;
        }
        if (pt->pid == 0)
            child(pt->argv != NULL ? pt->argv : agent_argv, to[0], from[1], pt->child_err);
        if (pt->child_err >= 0)
            close(pt->child_err);
        pt->child_err = -1;
    }
    pt->t.wfd = to[1];
    pt->t.rfd = from[0];
    to[1] = from[0] = -1;
    /* fcntl fails only on a bad fd, and these pipes were just made */
    (void)fcntl(pt->t.wfd, F_SETFL, fcntl(pt->t.wfd, F_GETFL) | O_NONBLOCK);
    (void)fcntl(pt->t.rfd, F_SETFL, fcntl(pt->t.rfd, F_GETFL) | O_NONBLOCK);
out:
    for (int *fd = (int[]){to[0], to[1], from[0], from[1]}, i = 0; i < 4; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    return rc;
}

/* The path of the running distsync binary into buf. Returns 0 or -errno. */
static int self_exe(char *buf, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", buf, cap - 1);

    if (n <= 0)
        return n < 0 ? -errno : -ENOENT;
    buf[n] = '\0';
    return 0;
}

int ds__transport_pipe_open(const char *root, const char *agent, unsigned close_wait_s,
                            const ds_spawner_t *spawner, ds_transport_t **out, char *err,
                            size_t errlen)
{
    struct pipe_t *pt = calloc(1, sizeof(*pt));
    char self[4096];
    int rc = DS_ENOMEM;

    *out = NULL;
    if (agent == NULL) {
        rc = self_exe(self, sizeof(self));
        if (rc < 0) {
            snprintf(err, errlen, "agent for %s: cannot find the distsync binary", root);
            goto fail;
        }
        agent = self;
        rc = DS_ENOMEM;
    }
    if (pt == NULL || (pt->root = strdup(root)) == NULL || (pt->agent = strdup(agent)) == NULL ||
        asprintf(&pt->label, "agent for %s", root) < 0) {
        if (pt != NULL)
            pt->label = NULL;
        snprintf(err, errlen, "agent for %s: out of memory", root);
        goto fail;
    }
    pt->close_wait_s = close_wait_s ? close_wait_s : CLOSE_WAIT_S;
    pt->errfd = pt->child_err = -1; /* an agent's stderr is the console's */
    rc = open_pipes(pt, spawner, err, errlen);
    if (rc < 0)
        goto fail;
    *out = &pt->t;
    return 0;
fail:
    if (pt) {
        free(pt->agent);
        free(pt->root);
        free(pt->label);
    }
    free(pt);
    return rc;
}

int ds__transport_pipe_open_cmd(const char *label, const char *agent, char *const args[],
                                const void *pre, size_t prelen, unsigned close_wait_s,
                                const ds_spawner_t *spawner, ds_transport_t **out, char *err,
                                size_t errlen)
{
    struct pipe_t *pt = calloc(1, sizeof(*pt));
    char self[4096];
    size_t n = 0;
    int rc = DS_ENOMEM;

    *out = NULL;
    while (args[n] != NULL)
        n++;
    if (pt == NULL)
        goto nomem;
    pt->t.ops = &pipe_ops;
    pt->t.rfd = pt->t.wfd = pt->child_in = pt->child_out = pt->errfd = pt->child_err = -1;
    if (agent == NULL && self_exe(self, sizeof(self)) < 0) {
        snprintf(err, errlen, "%s: cannot find the distsync binary", label);
        rc = -ENOENT;
        goto fail;
    }
    if ((pt->label = strdup(label)) == NULL || (pt->root = strdup(label)) == NULL ||
        (pt->agent = strdup(agent != NULL ? agent : self)) == NULL ||
        (pt->argv = calloc(n + 2, sizeof(char *))) == NULL ||
        (pt->argv[0] = strdup(pt->agent)) == NULL)
        goto nomem;
    for (size_t i = 0; i < n; i++)
        if ((pt->argv[i + 1] = strdup(args[i])) == NULL)
            goto nomem;
    pt->close_wait_s = close_wait_s ? close_wait_s : CLOSE_WAIT_S;
    {
        int e[2];

        if (pipe2(e, O_CLOEXEC) < 0) {
            rc = -errno;
            snprintf(err, errlen, "%s: pipe: %s", label, strerror(errno));
            goto fail;
        }
        pt->errfd = e[0];
        pt->child_err = e[1];
        (void)fcntl(pt->errfd, F_SETFL, fcntl(pt->errfd, F_GETFL) | O_NONBLOCK);
    }
    rc = open_pipes(pt, spawner, err, errlen);
    if (rc < 0)
        goto fail;
    /* the preamble fits the empty pipe (64 KiB): it is read before the protocol */
    if (prelen > 0 && (rc = ds_write_all(pt->t.wfd, pre, prelen)) < 0) {
        snprintf(err, errlen, "%s: cannot hand over the credentials: %s", label, ds_strerror(rc));
        goto fail;
    }
    *out = &pt->t;
    return 0;
nomem:
    snprintf(err, errlen, "%s: out of memory", label);
fail:
    if (pt != NULL)
        pipe_free(&pt->t);
    return rc;
}

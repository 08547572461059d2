/*
 * [console] precompute = yes in the daemon (daemon_int.h): after a scan of
 * the daemon's that changed the catalog (the scan before a run, the
 * anchor scan of a delayed fire, a live status's), the deltas the
 * servers' next runs need are computed ahead, as `distsync scan` does.
 *
 * The work runs in a child process, `distsync precompute-worker` (the
 * daemon's own binary), spawned and reaped on the engine's loop with its
 * stdout read there, so the loop never waits for it: the API and the
 * schedules go on. The child computes on one thread per CPU at nice +10:
 * a run the daemon fires meanwhile does not wait for it and takes the
 * cores first (its own missing deltas it computes at sync_delta_level;
 * the delta cache takes concurrent writers). A child, not threads of the
 * daemon, because the daemon's stop must not wait for the deltas under
 * way (a level-19 zstd pass over a rebuilt 64 MiB file runs for a minute
 * or more and cannot be stopped half-way): it is killed (SIGKILL), and
 * the delta cache publishes by rename, so nothing torn is left. One child
 * at a time: a scan that changes the catalog while one runs makes another
 * follow it (the deltas done are found cached).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "daemon_int.h"
#include "distsync/log.h"

#define PC_OUT_MAX 4096 /* the child's JSON: about 200 bytes */

struct ds_dpc {
    ds_daemon_t *d;
    uv_process_t proc;
    uv_pipe_t out;
    int handles; /* open: closed ones count down */
    int exited, eof, killed, again;
    int64_t exit_status;
    int term_signal;
    char buf[PC_OUT_MAX];
    size_t len;
    int64_t gen; /* the scan generation it follows (its log lines) */
    int64_t mono0_ms;
    pid_t pid;
    ds_sync_precompute_stats_t st;
    double elapsed_s;
};

static void start(struct ds_dpc *pc);

/* The last handle closed: a scan that changed the catalog while the child
 * ran starts the next one. */
static void on_closed(uv_handle_t *h)
{
    struct ds_dpc *pc = h->data;
    ds_daemon_t *d = pc->d;

    if (--pc->handles > 0)
        return;
    if (pc->again && !pc->killed && !d->stop && d->cfg->precompute)
        start(pc);
    pc->again = 0;
}

/* The child's {"precompute": {...}} into pc->st; 0 or -1. */
static int parse_out(struct ds_dpc *pc)
{
    json_t *root = pc->len <= sizeof(pc->buf) ? json_loadb(pc->buf, pc->len, 0, NULL) : NULL;
    json_t *o = json_object_get(root, "precompute");
    uint64_t *v[] = {&pc->st.servers, &pc->st.pairs,  &pc->st.computed,
                     &pc->st.cached,  &pc->st.failed, &pc->st.new_bytes};
    const char *k[] = {"servers", "pairs", "computed", "cached", "failed", "new_bytes"};
    int rc = pc->len <= sizeof(pc->buf) && json_is_object(o) ? 0 : -1;

    for (size_t i = 0; rc == 0 && i < sizeof(k) / sizeof(k[0]); i++) {
        json_t *x = json_object_get(o, k[i]);

        if (json_is_integer(x) && json_integer_value(x) >= 0)
            *v[i] = (uint64_t)json_integer_value(x);
        else
            rc = -1;
    }
    if (rc == 0 && json_is_integer(json_object_get(o, "threads")))
        pc->st.threads = (unsigned)json_integer_value(json_object_get(o, "threads"));
    json_decref(root);
    return rc;
}

/* Both the exit and the end of stdout seen: the outcome, logged. */
static void finish(struct ds_dpc *pc)
{
    ds_log_scope_t was;
    char b[64];

    pc->elapsed_s = (double)(ds__daemon_mono_ms() - pc->mono0_ms) / 1000;
    ds_log_scope_save(&was); /* a run's, when it ends during a batch */
    snprintf(b, sizeof(b), "precompute=scan:%lld", (long long)pc->gen);
    ds_log_server(NULL);
    ds_log_context(b);
    if (pc->killed) {
        ds_log(DS_LOG_INFO,
               "stopped with the daemon after %.1f s (the deltas done so far are cached)",
               pc->elapsed_s);
    } else if (pc->exit_status != 0 || pc->term_signal != 0 || parse_out(pc) < 0) {
        char how[64];

        if (pc->term_signal != 0)
            snprintf(how, sizeof(how), "was killed by signal %d", pc->term_signal);
        else if (pc->exit_status != 0)
            snprintf(how, sizeof(how), "exited %d", (int)pc->exit_status);
        else
            snprintf(how, sizeof(how), "wrote no result");
        ds_log(DS_LOG_WARN,
               "the precompute worker (pid %d) %s after %.1f s: the next runs compute the "
               "deltas it did not",
               (int)pc->pid, how, pc->elapsed_s);
    } else {
        ds_log(DS_LOG_INFO,
               "%llu server%s, %llu delta%s: %llu computed, %llu already cached, %llu failed, "
               "%.1f s on %u thread%s",
               (unsigned long long)pc->st.servers, pc->st.servers == 1 ? "" : "s",
               (unsigned long long)pc->st.pairs, pc->st.pairs == 1 ? "" : "s",
               (unsigned long long)pc->st.computed, (unsigned long long)pc->st.cached,
               (unsigned long long)pc->st.failed, pc->elapsed_s, pc->st.threads,
               pc->st.threads == 1 ? "" : "s");
    }
    ds_log_scope_set(&was);
    uv_close((uv_handle_t *)&pc->proc, on_closed);
    uv_close((uv_handle_t *)&pc->out, on_closed);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    struct ds_dpc *pc = p->data;

    pc->exited = 1;
    pc->exit_status = status;
    pc->term_signal = sig;
    if (pc->eof)
        finish(pc);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct ds_dpc *pc = h->data;
    static char sink[256]; /* past PC_OUT_MAX: read and dropped (the parse fails) */

    (void)hint;
    if (pc->len < sizeof(pc->buf))
        *buf = uv_buf_init(pc->buf + pc->len, (unsigned)(sizeof(pc->buf) - pc->len));
    else
        *buf = uv_buf_init(sink, sizeof(sink));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct ds_dpc *pc = s->data;

    if (n > 0 && buf->base == pc->buf + pc->len)
        pc->len += (size_t)n;
    else if (n > 0)
        pc->len = sizeof(pc->buf) + 1; /* too long: not its document */
    if (n >= 0)
        return;
    uv_read_stop(s);
    pc->eof = 1;
    if (pc->exited)
        finish(pc);
}

/* Spawns the child: the running binary ("/proc/self/exe": the same
 * version, also after a package upgrade replaced the file). */
static void start(struct ds_dpc *pc)
{
    ds_daemon_t *d = pc->d;
    char scan[48], b[64], parent[24];
    ds_log_scope_t was;
    char *args[] = {
        "distsync", "-c", (char *)d->cfg->path, "precompute-worker", "--parent", parent, "--scan",
        scan,       NULL};
    uv_stdio_container_t io[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&pc->out},
        {.flags = UV_INHERIT_FD, .data.fd = STDERR_FILENO},
    };
    uv_process_options_t o = {.file = "/proc/self/exe",
                              .args = args,
                              .exit_cb = on_exit_cb,
                              .stdio = io,
                              .stdio_count = 3};
    int64_t lo = 0;
    int rc;

    if (ds_catalog_gen_range(ds_sync_catalog(d->o.sync), &lo, &pc->gen) <= 0)
        pc->gen = 0;
    snprintf(scan, sizeof(scan), "scan:%lld", (long long)pc->gen);
    snprintf(parent, sizeof(parent), "%ld", (long)getpid());
    snprintf(b, sizeof(b), "precompute=%s", scan);
    pc->exited = pc->eof = pc->killed = pc->again = 0;
    pc->exit_status = pc->term_signal = 0;
    pc->len = 0;
    memset(&pc->st, 0, sizeof(pc->st));
    pc->elapsed_s = 0;
    pc->proc.data = pc->out.data = pc;
    uv_pipe_init(ds_engine_loop(d->eng), &pc->out, 0);
    pc->handles = 1;
    rc = uv_spawn(ds_engine_loop(d->eng), &pc->proc, &o);
    ds_log_scope_save(&was); /* the run's whose scan it follows */
    ds_log_server(NULL);
    ds_log_context(b);
    if (rc < 0) {
        /* uv_spawn's process handle must be closed all the same */
        pc->handles++;
        uv_close((uv_handle_t *)&pc->proc, on_closed);
        uv_close((uv_handle_t *)&pc->out, on_closed);
        ds_log(DS_LOG_WARN,
               "cannot start the precompute worker: %s: the next runs compute "
               "their deltas",
               uv_strerror(rc));
        ds_log_scope_set(&was);
        return;
    }
    pc->handles++;
    pc->pid = (pid_t)pc->proc.pid;
    pc->mono0_ms = ds__daemon_mono_ms();
    uv_unref((uv_handle_t *)&pc->proc); /* a batch ends when its runs do */
    uv_unref((uv_handle_t *)&pc->out);
    if ((rc = uv_read_start((uv_stream_t *)&pc->out, on_alloc, on_read)) < 0)
        pc->eof = 1; /* the exit ends it */
    ds_log(DS_LOG_INFO, "computing the servers' next deltas at level %d, pid %d, nice +10",
           ds__sync_ahead_level(d->cfg), (int)pc->pid);
    ds_log_scope_set(&was);
}

void ds__daemon_precompute(ds_daemon_t *d)
{
    struct ds_dpc *pc = d->pc;

    if (!d->cfg->precompute || d->stop)
        return;
    if (pc == NULL) {
        if ((pc = calloc(1, sizeof(*pc))) == NULL) {
            ds_log(DS_LOG_WARN, "precompute: out of memory: the next runs compute their deltas");
            return;
        }
        pc->d = d;
        d->pc = pc;
    }
    if (pc->handles > 0) { /* it planned before this scan: another follows it */
        pc->again = 1;
        return;
    }
    start(pc);
}

void ds__daemon_precompute_stop(ds_daemon_t *d)
{
    struct ds_dpc *pc = d->pc;

    if (pc == NULL)
        return;
    pc->again = 0;
    if (pc->handles > 0 && !pc->exited) {
        pc->killed = 1;
        (void)uv_process_kill(&pc->proc, SIGKILL);
    }
    while (pc->handles > 0) /* the exit, the pipe's end, the closes: a few loop turns */
        ds_engine_wait(d->eng, 100);
}

void ds__daemon_precompute_free(ds_daemon_t *d)
{
    free(d->pc);
    d->pc = NULL;
}

/*
 * `distsync smb-worker` (distsync/smbworker.h): the credentials preamble,
 * the libsmbclient context of the server, the receiver over the SMB
 * filesystem backend (smb_fs.c), the serve loop on stdin/stdout. With
 * connections = N, N - 1 helper processes are forked first, each with a
 * context and a connection of its own, and the receiver spreads
 * single-frame files over them (apply_fan.c). At the end the counters of
 * every connection are summed and logged: what crossed the network.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "distsync/apply.h"
#include "distsync/error.h"
#include "distsync/log.h"
#include "distsync/smb.h"
#include "distsync/smbworker.h"
#include "smb_fs.h"

int ds_smb_worker_preamble(const ds_smbcred_t *cred, unsigned char *buf, size_t cap)
{
    int n;

    if (cap < DS_SMB_WORKER_CRED_MAX + 4)
        return DS_ETOOBIG;
    n = snprintf((char *)buf + 4, DS_SMB_WORKER_CRED_MAX, "username=%s\npassword=%s\ndomain=%s\n",
                 cred->username, cred->password, cred->domain ? cred->domain : "");
    if (n < 0 || n >= DS_SMB_WORKER_CRED_MAX)
        return DS_ETOOBIG;
    buf[0] = (unsigned char)(n >> 24);
    buf[1] = (unsigned char)(n >> 16);
    buf[2] = (unsigned char)(n >> 8);
    buf[3] = (unsigned char)n;
    return n + 4;
}

static int read_exact(int fd, unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : DS_EPROTO;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* The preamble into cred. Returns 0 or < 0 with err. */
static int read_cred(int fd, ds_smbcred_t *cred, char *err, size_t errlen)
{
    unsigned char buf[DS_SMB_WORKER_CRED_MAX + 4];
    size_t n = 0;
    int rc = read_exact(fd, buf, 4);

    if (rc == 0) {
        n = (size_t)buf[0] << 24 | (size_t)buf[1] << 16 | (size_t)buf[2] << 8 | buf[3];
        rc = n <= DS_SMB_WORKER_CRED_MAX ? read_exact(fd, buf + 4, n) : DS_ETOOBIG;
    }
    if (rc < 0)
        snprintf(err, errlen, "reading the credentials on stdin: %s", ds_strerror(rc));
    else
        rc = ds_smbcred_parse((const char *)buf + 4, n, "credentials on stdin", cred, err, errlen);
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

/* What crossed the network (the console logs it under "SMB worker for
 * server NAME" and keeps it in the run's events). */
static void log_stats(const ds_smb_fs_stats_t *s)
{
    ds_log(DS_LOG_INFO,
           "wrote %" PRIu64 " bytes in %" PRIu64 " requests, read %" PRIu64 " bytes in %" PRIu64
           ", copied %" PRIu64 " bytes on the server in %" PRIu64 " splices (%" PRIu64
           " fell back), %" PRIu64 " replace retries",
           s->bytes_written, s->write_calls, s->bytes_read, s->read_calls, s->bytes_spliced,
           s->splice_calls, s->splice_fallback, s->replace_retries);
}

/* How the files built with server-side copies were checked (apply_local.c),
 * also kept in the run's events. */
static void log_checks(const ds_apply_stats_t *s)
{
    if (s->files_local_hashed + s->files_size_only == 0)
        return;
    ds_log(DS_LOG_INFO,
           "files built with server-side copies: %" PRIu64
           " checked by a SHA-256 computed from the console's copy of the basis (%" PRIu64
           " bytes read on the console), %" PRIu64 " by size only (no copy on the console)",
           s->files_local_hashed, s->bytes_local, s->files_size_only);
}

/* The server's context, connected, and the filesystem backend over it (one
 * per process: libsmbclient is not thread-safe). root: the share's URL. */
static int open_share(const ds_smb_worker_opts_t *o, const ds_smbcred_t *cred, ds_smb_ctx_t **ctx,
                      ds_smb_fs_t **fs, char *root, size_t rootlen, char *err, size_t errlen)
{
    int rc = ds_smb_ctx_new(&(ds_smb_opts_t){.server = o->server,
                                             .url = o->url,
                                             .cred = cred,
                                             .encrypt = o->encrypt,
                                             .timeout_s = o->timeout_s},
                            ctx, err, errlen);

    if (rc < 0 || (rc = ds_smb_ctx_connect(*ctx, err, errlen)) < 0)
        return rc;
    if ((rc = ds_smb_ctx_path(*ctx, NULL, root, rootlen)) < 0 ||
        (rc = ds__smb_fs_new(*ctx, fs)) < 0) {
        snprintf(err, errlen, "server %s: %s", o->server, ds_strerror(rc));
        return rc;
    }
    if (o->replace_wait_ms > 0)
        ds__smb_fs_set_replace_wait(*fs, o->replace_wait_ms);
    ds__smb_fs_test_replace_pause(*fs, o->test_replace_pause);
    if (o->test_splice_share != NULL &&
        (rc = ds__smb_fs_test_splice_share(*fs, o->test_splice_share)) < 0)
        snprintf(err, errlen, "server %s: %s", o->server, ds_strerror(rc));
    return rc;
}

/* The console's retain store, opened in this process (a SQLite handle is
 * never carried across a fork). */
static void open_local(const ds_smb_worker_opts_t *o, ds_apply_local_t *local)
{
    int rc;

    memset(local, 0, sizeof(*local));
    if (o->retain == NULL || o->local_open == NULL)
        return;
    if ((rc = o->local_open(o->retain, local)) < 0)
        ds_log(DS_LOG_WARN,
               "smb-worker: retain store %s: %s: files built with server-side copies are "
               "checked by size only",
               o->retain, ds_strerror(rc));
}

static void close_local(const ds_smb_worker_opts_t *o, ds_apply_local_t *local)
{
    if (local->open != NULL && o->local_close != NULL)
        o->local_close(local);
}

/* What a helper sends back at the end: its counters. */
struct helper_stats {
    ds_smb_fs_stats_t fs;
    ds_apply_stats_t ap;
};

static void add_stats(uint64_t *to, const uint64_t *from, size_t n)
{
    for (size_t i = 0; i < n; i++)
        to[i] += from[i];
}

/* Connection n of the server, in a process of its own: the receiver as a
 * helper of the worker's (ds_apply_helper_serve) on socket fd, its
 * counters sent back at the end. It connects when the first file comes.
 * Never returns. */
static void helper_main(const ds_smb_worker_opts_t *o, ds_smbcred_t *cred, int fd, unsigned n)
{
    struct helper_stats hs = {0};
    ds_apply_local_t local;
    ds_smb_ctx_t *ctx = NULL;
    ds_smb_fs_t *fs = NULL;
    ds_apply_t *ap = NULL;
    char root[4096], err[1024] = "";
    int rc;

    /* libsmbclient prints some messages on stdout: the protocol pipe */
    if (dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
        ds_log(DS_LOG_ERROR, "server %s: SMB connection %u: stdout: %s", o->server, n,
               strerror(errno));
        _exit(1);
    }
    /* connected at the first file: a sync with nothing to send logs in once */
    if (recv(fd, root, 1, MSG_PEEK) <= 0) {
        ds_smbcred_clear(cred);
        _exit(write(fd, &hs, sizeof(hs)) == (ssize_t)sizeof(hs) ? 0 : 1);
    }
    open_local(o, &local);
    rc = open_share(o, cred, &ctx, &fs, root, sizeof(root), err, sizeof(err));
    ds_smbcred_clear(cred);
    if (rc == 0)
        rc = ds_apply_new(root,
                          &(ds_apply_opts_t){.peer_reports = 1,
                                             .fs = ds__smb_fs(fs),
                                             .readback = o->readback,
                                             .local = local.open != NULL ? &local : NULL},
                          &ap, err, sizeof(err));
    if (rc == 0)
        rc = ds_apply_helper_serve(ap, fd, err, sizeof(err));
    if (rc < 0)
        ds_log(DS_LOG_ERROR, "server %s: SMB connection %u: %s", o->server, n, err);
    if (fs != NULL)
        hs.fs = *ds__smb_fs_stats(fs);
    if (ap != NULL)
        hs.ap = *ds_apply_stats(ap);
    if (rc == 0 && write(fd, &hs, sizeof(hs)) != (ssize_t)sizeof(hs))
        rc = -errno;
    ds_apply_free(ap);
    ds__smb_fs_free(fs);
    ds_smb_ctx_free(ctx);
    close_local(o, &local);
    _exit(rc < 0 ? 1 : 0);
}

/* Starts the connections - 1 helper processes (before this process makes
 * its own SMB context: a fork never copies one). fds[i], pids[i]: the
 * worker's end of each helper's socket, its pid. Returns how many. */
static unsigned start_helpers(const ds_smb_worker_opts_t *o, ds_smbcred_t *cred, int in_fd,
                              int out_fd, int *fds, pid_t *pids)
{
    unsigned want = o->connections > 1 ? o->connections - 1 : 0, n = 0;
    pid_t parent = getpid();

    if (want > DS_SMB_WORKER_CONNECTIONS_MAX - 1)
        want = DS_SMB_WORKER_CONNECTIONS_MAX - 1;
    while (n < want) {
        int sv[2];
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
            break;
        pid = fork();
        if (pid == 0) {
            /* dies with the worker (kill -9 included), never outlives it */
            if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(1);
            for (unsigned i = 0; i < n; i++)
                close(fds[i]);
            close(sv[0]);
            close(in_fd);
            close(out_fd); /* the console's pipe is the worker's alone */
            helper_main(o, cred, sv[1], n + 2);
        }
        close(sv[1]);
        if (pid < 0) {
            close(sv[0]);
            break;
        }
        fds[n] = sv[0];
        pids[n++] = pid;
    }
    if (n < want)
        ds_log(DS_LOG_WARN, "server %s: %u of %u SMB connections started: %s", o->server, n + 1,
               want + 1, strerror(errno));
    return n;
}

/* Ends the helpers: end of their input, their counters added to s and c. */
static void stop_helpers(unsigned n, const int *fds, const pid_t *pids, ds_smb_fs_stats_t *s,
                         ds_apply_stats_t *c)
{
    for (unsigned i = 0; i < n; i++) {
        struct helper_stats hs;
        size_t got = 0;
        ssize_t r = 1;

        shutdown(fds[i], SHUT_WR);
        while (got < sizeof(hs) && (r = read(fds[i], (char *)&hs + got, sizeof(hs) - got)) != 0)
            if (r > 0)
                got += (size_t)r;
            else if (errno != EINTR)
                break;
        if (got == sizeof(hs)) {
            add_stats((uint64_t *)s, (const uint64_t *)&hs.fs, sizeof(hs.fs) / 8);
            add_stats((uint64_t *)c, (const uint64_t *)&hs.ap, sizeof(hs.ap) / 8);
        }
        close(fds[i]);
        while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
            ;
    }
}

int ds_smb_worker_serve(const ds_smb_worker_opts_t *o, int in_fd, int out_fd, char *err,
                        size_t errlen)
{
    ds_smbcred_t cred = {0};
    ds_smb_ctx_t *ctx = NULL;
    ds_smb_fs_t *fs = NULL;
    ds_apply_t *ap = NULL;
    ds_apply_local_t local = {0};
    ds_smb_fs_stats_t fst = {0};
    ds_apply_stats_t ast = {0};
    int fds[DS_SMB_WORKER_CONNECTIONS_MAX];
    pid_t pids[DS_SMB_WORKER_CONNECTIONS_MAX];
    unsigned nh = 0;
    char root[4096];
    int rc = read_cred(in_fd, &cred, err, errlen), frc;

    if (rc < 0)
        goto out;
    nh = start_helpers(o, &cred, in_fd, out_fd, fds, pids);
    open_local(o, &local);
    rc = open_share(o, &cred, &ctx, &fs, root, sizeof(root), err, errlen);
    ds_smbcred_clear(&cred);
    if (rc < 0)
        goto out;
    rc = ds_apply_new(root,
                      &(ds_apply_opts_t){.peer_reports = 1,
                                         .fs = ds__smb_fs(fs),
                                         .readback = o->readback,
                                         .local = local.open != NULL ? &local : NULL,
                                         .fan_fds = fds,
                                         .nfan = nh},
                      &ap, err, errlen);
    if (rc < 0)
        goto out;
    rc = ds_apply_serve(ap, in_fd, out_fd, err, errlen);
    frc = ds_apply_finish(ap);
    if (rc == 0 && frc < 0) {
        rc = frc;
        snprintf(err, errlen, "server %s: ending the session: %s", o->server, ds_strerror(rc));
    }
    fst = *ds__smb_fs_stats(fs);
    ast = *ds_apply_stats(ap);
    stop_helpers(nh, fds, pids, &fst, &ast);
    nh = 0;
    log_stats(&fst);
    log_checks(&ast);
out:
    stop_helpers(nh, fds, pids, &fst, &ast);
    ds_apply_free(ap);
    ds__smb_fs_free(fs);
    ds_smb_ctx_free(ctx);
    close_local(o, &local);
    ds_smbcred_clear(&cred);
    return rc;
}

/*
 * `distsync smb-worker` (distsync/smbworker.h): the credentials preamble,
 * the libsmbclient context of the server, the receiver over the SMB
 * filesystem backend (smb_fs.c), the serve loop on stdin/stdout. At the end
 * the backend's counters are logged: what crossed the network.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int ds_smb_worker_serve(const ds_smb_worker_opts_t *o, int in_fd, int out_fd, char *err,
                        size_t errlen)
{
    ds_smbcred_t cred = {0};
    ds_smb_ctx_t *ctx = NULL;
    ds_smb_fs_t *fs = NULL;
    ds_apply_t *ap = NULL;
    char root[4096];
    int rc = read_cred(in_fd, &cred, err, errlen), frc;

    if (rc < 0)
        goto out;
    rc = ds_smb_ctx_new(&(ds_smb_opts_t){.server = o->server,
                                         .url = o->url,
                                         .cred = &cred,
                                         .encrypt = o->encrypt,
                                         .timeout_s = o->timeout_s},
                        &ctx, err, errlen);
    ds_smbcred_clear(&cred);
    if (rc < 0)
        goto out;
    rc = ds_smb_ctx_connect(ctx, err, errlen);
    if (rc < 0)
        goto out;
    if ((rc = ds_smb_ctx_path(ctx, NULL, root, sizeof(root))) < 0 ||
        (rc = ds__smb_fs_new(ctx, &fs)) < 0) {
        snprintf(err, errlen, "server %s: %s", o->server, ds_strerror(rc));
        goto out;
    }
    if (o->replace_wait_ms > 0)
        ds__smb_fs_set_replace_wait(fs, o->replace_wait_ms);
    ds__smb_fs_test_replace_pause(fs, o->test_replace_pause);
    if (o->test_splice_share != NULL &&
        (rc = ds__smb_fs_test_splice_share(fs, o->test_splice_share)) < 0) {
        snprintf(err, errlen, "server %s: %s", o->server, ds_strerror(rc));
        goto out;
    }
    rc = ds_apply_new(
        root,
        &(ds_apply_opts_t){
            .peer_reports = 1, .fs = ds__smb_fs(fs), .readback = o->readback, .local = o->local},
        &ap, err, errlen);
    if (rc < 0)
        goto out;
    rc = ds_apply_serve(ap, in_fd, out_fd, err, errlen);
    frc = ds_apply_finish(ap);
    if (rc == 0 && frc < 0) {
        rc = frc;
        snprintf(err, errlen, "server %s: ending the session: %s", o->server, ds_strerror(rc));
    }
    log_stats(ds__smb_fs_stats(fs));
    log_checks(ds_apply_stats(ap));
out:
    ds_apply_free(ap);
    ds__smb_fs_free(fs);
    ds_smb_ctx_free(ctx);
    ds_smbcred_clear(&cred);
    return rc;
}

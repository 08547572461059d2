/*
 * A target session for the sync and verify drivers: opening the transport
 * and session for a server, and waiting on it (poll(2) on the session's fds
 * with an inactivity watchdog; only time spent blocked here counts, since a
 * slow link still moves bytes and the console's own work between waits is
 * not the target's silence).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "distsync/error.h"

#include "sync_int.h"

int64_t ds__sync_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int ds__sync_wait(ds_sync_wait_t *w, ds_session_t *ss, ds_transport_t *t, unsigned tmo_s,
                  int poll_ms)
{
    const ds_session_stats_t *st = ds_session_stats(ss);
    struct pollfd p[2];
    int rfd, wfd, n = 0;
    int64_t t0;
    short wev;

    if (ds_session_poll(ss, &rfd, &wfd, &wev))
        return 0;
    if (st->bytes_in + st->bytes_out != w->moved) {
        w->moved = st->bytes_in + st->bytes_out;
        w->silent_ns = 0;
    }
    if (w->silent_ns >= (int64_t)tmo_s * 1000000000) {
        ds_transport_kill(t);
        return -ETIMEDOUT;
    }
    if (rfd >= 0)
        p[n++] = (struct pollfd){.fd = rfd, .events = POLLIN};
    if (wfd >= 0 && wev)
        p[n++] = (struct pollfd){.fd = wfd, .events = wev};
    t0 = ds__sync_mono_ns();
    if (poll(p, (nfds_t)n, poll_ms) < 0 && errno != EINTR)
        return -errno;
    w->silent_ns += ds__sync_mono_ns() - t0;
    return 0;
}

int ds__sync_vfail(int *res_rc, char *error, size_t errlen, const char *server, int rc,
                   const char *fmt, va_list ap)
{
    char msg[900];

    if (*res_rc < 0)
        return *res_rc;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    snprintf(error, errlen, "server %s: %s", server, msg);
    *res_rc = rc < 0 ? rc : DS_EINTERNAL;
    return *res_rc;
}

int ds__sync_open_target(ds_sync_t *sy, const ds_server_cfg_t *srv, int write, ds_transport_t **t,
                         ds_session_t **ss, char *err, size_t errlen)
{
    ds_transport_cfg_t tc = {.url = srv->url,
                             .mode = srv->transport,
                             .agent = srv->agent,
                             .no_fsync = sy->o.no_fsync,
                             .timeout_s = srv->timeout_s,
                             .server = srv->name,
                             .identity = srv->identity,
                             .known_hosts = srv->known_hosts,
                             .connect_timeout_s = srv->connect_timeout_s,
                             .create_root = srv->create_root,
                             .verify_readback = srv->verify_readback,
                             .smb_credentials = srv->credentials,
                             .smb_encrypt = srv->encrypt};
    ds_session_opts_t so = {.console_id = sy->console_id,
                            .host = sy->host,
                            .pid = (uint32_t)getpid(),
                            .write = write,
                            .zstd_level = write ? sy->o.zstd_level : -1,
                            .lease_ttl_s = sy->o.cfg->lease_ttl,
                            .zcache = write ? sy->zcache : NULL};
    int rc = ds_config_check_target(sy->o.cfg, srv, err, errlen);

    if (rc < 0)
        return rc; /* never sync the store (or the state) into itself */
    rc = ds_transport_open(&tc, t, err, errlen);
    if (rc < 0)
        return rc;
    (void)ds__target_cache_attach(sy->o.cfg->state, srv->name, &so); /* none on DS_ENOMEM */
    rc = ds_session_new(*t, &so, ss);
    if (rc == 0)
        rc = ds_session_start(*ss);
    if (rc < 0)
        snprintf(err, errlen, "cannot start the session: %s", ds_strerror(rc));
    return rc;
}

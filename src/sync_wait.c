/*
 * Waiting on a target, shared by the sync and verify drivers: poll(2) on the
 * session's fds with an inactivity watchdog. Only time spent blocked here
 * counts (a slow link still moves bytes, and the console's own work between
 * waits is not the target's silence).
 */
#include <errno.h>
#include <poll.h>
#include <time.h>

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

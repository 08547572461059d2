/* A slow link is never a failure: a file that takes several lease periods
 * to cross a throttled link (tests/unit/throttled.h paces the writes to the
 * real receiver: in-process, and `distsync agent` over a pipe when
 * $DISTSYNC names the CLI) commits, because the lease renewals jump the
 * queued data frames. Before control frames jumped the queue, the renewal
 * waited behind the whole file and the commit found the lease expired. */
#include <fcntl.h>
#include <signal.h>
#include <time.h>

#include "check.h"
#include "testdata.h"
#include "distsync/error.h"
#include "distsync/lease.h"
#include "distsync/session.h"
#include "throttled.h"

#define TTL   3u           /* lease seconds: renewed every second */
#define RATE  (128u << 10) /* link bytes per second */
#define NFILE (8u * RATE)  /* 8 s on the link: more than two lease periods */
#define BLOCK (16u << 10)  /* what the sender hands the session per call */

static char root[4096];

/* The expiry in the target's lease file, or 0. */
static int64_t lease_expiry(void)
{
    char p[4200];
    ds_lease_t l;
    int fd, rc;

    snprintf(p, sizeof(p), "%s/.distsync", root);
    fd = open(p, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return 0;
    rc = ds_lease_read(fd, &l);
    close(fd);
    return rc == 0 ? l.expiry : 0;
}

/* A write session over a throttled transport at rate, stepped to READY. */
static ds_session_t *open_thr(const char *mode, uint64_t rate, uint32_t ttl, struct throttled **h)
{
    ds_session_opts_t so = {.console_id = "console-slow",
                            .host = "testhost",
                            .pid = 77,
                            .write = 1,
                            .lease_ttl_s = ttl};
    ds_session_t *s = thr_session(root, mode, rate, &so, h);

    if (s != NULL)
        CHECK_INT(ds_session_phase(s), DS_SESSION_READY);
    return s;
}

/* Sends one NFILE-byte file in BLOCK pieces while the session has room,
 * stepping meanwhile; counts the lease renewals that reach the receiver
 * before the file's data is drained (its FILE_COMMIT on the wire). */
static void slow_file(const char *mode)
{
    uint8_t *buf = malloc(NFILE), sum[DS_SHA256_LEN];
    struct throttled *h = NULL;
    ds_session_t *s;
    ds_session_result_t r;
    int64_t e0, grew = 0, end = time(NULL) + 60;
    size_t off = 0, renewals = 0, commit;
    uint32_t fid;
    int committed = 0, nres = 0;
    char path[4300];

    s = open_thr(mode, RATE, TTL, &h);
    CHECK(s != NULL && buf != NULL);
    if (s == NULL || buf == NULL)
        goto out;
    fill(buf, NFILE, 5);
    CHECK_INT(ds_sha256(buf, NFILE, sum), 0);
    e0 = lease_expiry();
    CHECK(e0 > 0);
    CHECK_INT(
        ds_session_file_begin(s, "patches/slow.msu", NFILE, 0644, DS_PROTO_NO_MTIME, 42, &fid), 0);
    while (time(NULL) < end && !(committed && ds_session_idle(s))) {
        if (ds_session_step(s, time(NULL)) < 0)
            break;
        while (!committed && ds_session_room(s)) {
            size_t k = NFILE - off < BLOCK ? NFILE - off : BLOCK;

            if (k > 0)
                CHECK_INT(ds_session_file_data(s, fid, NULL, buf + off, k), 0);
            off += k;
            if (off == NFILE) {
                CHECK_INT(ds_session_file_commit(s, fid, NFILE, sum), 0);
                committed = 1;
            }
        }
        if (thr_find(h, 0, DS_MSG_FILE_COMMIT) == h->nfr && lease_expiry() > e0)
            grew = 1; /* the receiver renewed while the data still crossed */
        nap();
    }
    CHECK_STR(ds_session_error(s), "");
    CHECK(ds_session_idle(s));
    commit = thr_find(h, 0, DS_MSG_FILE_COMMIT);
    CHECK(commit < h->nfr);
    for (size_t i = 0; i < commit; i++)
        renewals += h->fr[i].type == DS_MSG_LEASE && h->fr[i].lease_op == DS_LEASE_OP_RENEW;
    /* a renewal is sent only once the previous one was answered */
    CHECK(renewals >= 2);
    CHECK(grew);
    while (ds_session_next_result(s, &r)) {
        nres++;
        CHECK_INT(r.kind, DS_SRES_FILE);
        CHECK_INT(r.tag, 42);
        CHECK_INT(r.rc, 0);
        if (r.rc != 0)
            fprintf(stderr, "%s: %s\n", r.path, r.message);
    }
    CHECK_INT(nres, 1);
    CHECK_INT(ds_session_close(s), 0);
    thr_set_rate(h, THR_UNLIMITED);
    for (end = time(NULL) + 20; time(NULL) < end && ds_session_phase(s) != DS_SESSION_DONE; nap())
        if (ds_session_step(s, time(NULL)) < 0)
            break;
    CHECK_INT(ds_session_phase(s), DS_SESSION_DONE);
    CHECK_INT(ds_transport_close(&h->t), 0);
    snprintf(path, sizeof(path), "%s/patches/slow.msu", root);
    CHECK(file_is(path, buf, NFILE));
out:
    ds_session_free(s);
    if (h)
        ds_transport_free(&h->t);
    free(buf);
}

static void test_slow_local(void)
{
    snprintf(root, sizeof(root), "%s", check_tmpdir("test_session_slow_local"));
    slow_file("local");
}

static void test_slow_agent(void)
{
    if (getenv("DISTSYNC") == NULL) {
        printf("skip test_slow_agent: $DISTSYNC not set\n");
        return;
    }
    snprintf(root, sizeof(root), "%s", check_tmpdir("test_session_slow_agent"));
    slow_file("agent");
}

/* Number of LEASE renewals in the wire log. */
static size_t renewals_sent(const struct throttled *h)
{
    size_t n = 0;

    for (size_t i = 0; i < h->nfr; i++)
        n += h->fr[i].type == DS_MSG_LEASE && h->fr[i].lease_op == DS_LEASE_OP_RENEW;
    return n;
}

/* Steps with the clock at now until the session is idle (bounded). */
static int settle(ds_session_t *s, int64_t now)
{
    for (int i = 0; i < 20000 && !ds_session_idle(s); i++, nap())
        if (ds_session_step(s, now) < 0)
            return -1;
    return ds_session_idle(s) ? 0 : -1;
}

/* A cancel keeps the renewal that waits ahead of the data it drops: the
 * renewal reaches the receiver, and the session goes on renewing. (Before,
 * the renewal sat behind the data, the cut dropped it, and the session
 * waited for its reply for ever: no renewal again.) */
static void test_cancel_keeps_renewal(void)
{
    uint8_t buf[64 << 10];
    struct throttled *h = NULL;
    ds_session_result_t r;
    ds_session_t *s;
    int64_t now = time(NULL);
    uint32_t fid;

    snprintf(root, sizeof(root), "%s", check_tmpdir("test_session_cancel_renew"));
    fill(buf, sizeof(buf), 3);
    s = open_thr("local", THR_UNLIMITED, 300, &h);
    CHECK(s != NULL);
    if (s == NULL)
        goto out;
    CHECK_INT(ds_session_step(s, now), 0); /* the lease clock starts */
    thr_set_rate(h, 0);                    /* paused: everything stays queued */
    CHECK_INT(
        ds_session_file_begin(s, "patches/e.bin", sizeof(buf), 0644, DS_PROTO_NO_MTIME, 7, &fid),
        0);
    CHECK_INT(ds_session_file_data(s, fid, NULL, buf, sizeof(buf)), 0);
    now += 101; /* a third of the lease: renew */
    CHECK_INT(ds_session_step(s, now), 0);
    CHECK_INT(ds_session_cancel_sends(s), 0);
    thr_set_rate(h, THR_UNLIMITED);
    CHECK_INT(settle(s, now), 0);
    CHECK_INT(renewals_sent(h), 1);
    CHECK_INT(thr_find(h, 0, DS_MSG_FILE_BEGIN), h->nfr); /* e.bin never left */
    CHECK(!ds_session_next_result(s, &r));
    now += 101;
    CHECK_INT(ds_session_step(s, now), 0);
    CHECK_INT(settle(s, now), 0);
    CHECK_INT(renewals_sent(h), 2); /* the first one was answered */
    CHECK_STR(ds_session_error(s), "");
    CHECK_INT(ds_session_close(s), 0);
    CHECK_INT(settle(s, now), 0);
    CHECK_INT(ds_session_phase(s), DS_SESSION_DONE);
out:
    ds_session_free(s);
    if (h)
        ds_transport_free(&h->t);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(test_slow_local);
    RUN(test_slow_agent);
    RUN(test_cancel_keeps_renewal);
    return CHECK_DONE();
}

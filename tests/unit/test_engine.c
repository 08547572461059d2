/*
 * Unit tests for the engine's pure parts: which server of a batch starts
 * next under the global and per-site max_servers, and the pacing
 * decision (ds__pace_allow) driving a sender on a simulated clock.
 */
#include "check.h"
#include "distsync/bandwidth.h"
#include "distsync/ratelimit.h"
#include "engine/engine_int.h"

#define SEC 1000000000LL
#define MS  1000000LL

/* Global limit 3, batch order kept, ends let the next ones in. */
static void test_sched_global(void)
{
    int site[6] = {-1, -1, -1, -1, -1, -1};
    ds_sched_t s;

    CHECK_INT(ds__sched_init(&s, 6, site, 0, NULL, 3), 0);
    CHECK_INT(ds__sched_next(&s), 0);
    CHECK_INT(ds__sched_next(&s), 1);
    CHECK_INT(ds__sched_next(&s), 2);
    CHECK_INT(ds__sched_next(&s), -1); /* three run */
    ds__sched_end(&s, 1);
    CHECK_INT(ds__sched_next(&s), 3);
    CHECK_INT(ds__sched_next(&s), -1);
    ds__sched_end(&s, 0);
    ds__sched_end(&s, 2);
    CHECK_INT(ds__sched_next(&s), 4);
    CHECK_INT(ds__sched_next(&s), 5);
    CHECK_INT(ds__sched_next(&s), -1);
    CHECK(!ds__sched_all_ended(&s));
    for (size_t i = 3; i < 6; i++)
        ds__sched_end(&s, i);
    CHECK(ds__sched_all_ended(&s));
    ds__sched_free(&s);
}

/* Site A allows 1, site B 2, global 3: a full site is skipped, not waited
 * on; servers without a site only count globally. */
static void test_sched_sites(void)
{
    /* servers: A A B B B - A */
    int site[7] = {0, 0, 1, 1, 1, -1, 0};
    unsigned smax[2] = {1, 2};
    ds_sched_t s;

    CHECK_INT(ds__sched_init(&s, 7, site, 2, smax, 3), 0);
    CHECK_INT(ds__sched_next(&s), 0);  /* A */
    CHECK_INT(ds__sched_next(&s), 2);  /* second A waits: B */
    CHECK_INT(ds__sched_next(&s), 3);  /* B */
    CHECK_INT(ds__sched_next(&s), -1); /* global 3 */
    ds__sched_end(&s, 0);
    CHECK_INT(ds__sched_next(&s), 1); /* A's turn again */
    ds__sched_end(&s, 2);
    CHECK_INT(ds__sched_next(&s), 4); /* B */
    ds__sched_end(&s, 3);
    CHECK_INT(ds__sched_next(&s), 5); /* no site */
    ds__sched_end(&s, 1);
    CHECK_INT(ds__sched_next(&s), 6); /* A free again: the last one */
    CHECK_INT(ds__sched_next(&s), -1);
    ds__sched_free(&s);
}

/* A never-started server can be ended (cancelled before it started). */
static void test_sched_cancel_queued(void)
{
    int site[3] = {-1, -1, -1};
    ds_sched_t s;

    CHECK_INT(ds__sched_init(&s, 3, site, 0, NULL, 1), 0);
    CHECK_INT(ds__sched_next(&s), 0);
    ds__sched_end(&s, 1);
    ds__sched_end(&s, 2);
    ds__sched_end(&s, 0);
    CHECK_INT(ds__sched_next(&s), -1);
    CHECK(ds__sched_all_ended(&s));
    ds__sched_free(&s);
}

/* A sender that writes what it is allowed and sleeps until the wake time,
 * for dur ns at a capped leaf; returns the bytes sent and the worst 1 s
 * window. */
static uint64_t pace_run(ds_rl_t *rl, ds_rl_node_t *leaf, int64_t t0, int64_t dur, uint64_t ctl,
                         uint64_t *worst_1s)
{
    enum { SLOTS = 64 };
    uint64_t total = 0, per_ms[SLOTS * 1000];
    int64_t now = t0, wake;
    size_t nms = (size_t)(dur / MS);

    memset(per_ms, 0, sizeof(per_ms));
    while (now < t0 + dur) {
        uint64_t charged, ok = ds__pace_allow(rl, leaf, now, 64 * 1024, ctl, &wake, &charged);

        total += ok;
        if ((size_t)((now - t0) / MS) < nms && nms <= SLOTS * 1000)
            per_ms[(now - t0) / MS] += ok;
        if (ok < 64 * 1024)
            now = wake == DS_RL_NEVER ? now + 100 * MS : (wake > now ? wake : now + 1);
    }
    *worst_1s = 0;
    for (size_t i = 0; i + 1000 <= nms; i += 10) {
        uint64_t w = 0;

        for (size_t k = 0; k < 1000; k++)
            w += per_ms[i + k];
        if (w > *worst_1s)
            *worst_1s = w;
    }
    return total;
}

/* At 2 Mbit/s for 20 s: the mean within 3 % of the cap, no 1 s window
 * more than 10 % over it. */
static void test_pace_rate(void)
{
    ds_rl_t *rl;
    ds_rl_node_t *leaf;
    uint64_t worst, sent;
    double bps;

    CHECK_INT(ds_rl_new(&rl), 0);
    CHECK_INT(ds_rl_add(rl, ds_rl_root(rl), &leaf), 0);
    ds_rl_set_rate(rl, leaf, 1 * SEC, 2000000, DS_RL_NEVER);
    sent = pace_run(rl, leaf, 1 * SEC, 20 * SEC, 0, &worst);
    bps = (double)sent * 8 / 20;
    CHECK(bps > 2000000 * 0.97 && bps < 2000000 * 1.03);
    CHECK(worst * 8 <= 2000000 * 1.10);
    ds_rl_free(rl);
}

/* A sender writing into a pipe of pipe_cap bytes drained by a reader at
 * drain_bps (faster than the cap), the way the agent transport writes: it
 * asks for its whole queue, writes what the pipe takes, and waits for the
 * pipe to half drain when the pipe was the shorter limit, for the wake
 * time when the cap was, on a 1 ms timer that fires 0-2 ms late (a busy
 * loop's). With give_back, what the pipe did not take goes back to the
 * limiter (ds__pace_wrote). Returns the mean rate in bit/s over dur. */
static double pace_pipe(uint64_t cap_bps, double drain_bps, double pipe_cap, int64_t dur,
                        int give_back)
{
    double fill = 0, drain = drain_bps / 8 / 1e9; /* bytes per ns */
    uint64_t total = 0;
    uint32_t rng = 1;
    int64_t now = 1 * SEC, t0 = now, last = now, wake;
    ds_rl_t *rl;
    ds_rl_node_t *leaf;

    CHECK_INT(ds_rl_new(&rl), 0);
    CHECK_INT(ds_rl_add(rl, ds_rl_root(rl), &leaf), 0);
    ds_rl_set_rate(rl, leaf, now, cap_bps, DS_RL_NEVER);
    while (now < t0 + dur) {
        uint64_t charged, ok, w;

        fill = fill - (double)(now - last) * drain;
        fill = fill < 0 ? 0 : fill;
        last = now;
        ok = ds__pace_allow(rl, leaf, now, 16u << 20, 0, &wake, &charged);
        w = (uint64_t)(pipe_cap - fill) < ok ? (uint64_t)(pipe_cap - fill) : ok;
        fill += (double)w;
        total += w;
        if (w < ok) {
            if (give_back)
                ds__pace_wrote(rl, leaf, now, charged, w);
            now += (int64_t)((fill - pipe_cap / 2) / drain) + 1; /* POLLOUT */
            continue;
        }
        now = wake == DS_RL_NEVER ? now + 100 * MS : (wake > now ? wake : now + 1);
        rng = rng * 1103515245u + 12345u;
        now = (now + MS - 1) / MS * MS + (int64_t)(rng >> 16) % (2 * MS);
    }
    ds_rl_free(rl);
    return (double)total * 8 / ((double)dur / SEC);
}

/* The agent's pipe (64 KiB, Linux's default) takes less than a grant at
 * high rates: without giving the rest back the run reaches a fraction of
 * its cap (0.38-0.66 of 200 Mbit/s through bench/caps); with it, the mean
 * is within 3 % of the cap and never over it. */
static void test_pace_pipe_returns(void)
{
    static const uint64_t caps[] = {2000000, 20000000, 200000000};

    for (size_t i = 0; i < 3; i++) {
        double lost = pace_pipe(caps[i], 2.0 * (double)caps[i], 64 * 1024, 10 * SEC, 0);
        double kept = pace_pipe(caps[i], 2.0 * (double)caps[i], 64 * 1024, 10 * SEC, 1);

        printf("  cap %4.0f Mbit/s, 64 KiB pipe: %.3f of the cap without giving back, %.3f with\n",
               (double)caps[i] / 1e6, lost / (double)caps[i], kept / (double)caps[i]);
        CHECK(kept >= 0.97 * (double)caps[i] && kept <= 1.01 * (double)caps[i]);
    }
    /* the scenario does lose rate when the grant is dropped */
    CHECK(pace_pipe(200000000, 400000000.0, 64 * 1024, 10 * SEC, 0) < 0.9 * 200000000);
}

/* Uncapped (no limiter or no leaf): everything passes at once. */
static void test_pace_uncapped(void)
{
    int64_t wake;
    uint64_t charged;

    CHECK_INT(ds__pace_allow(NULL, NULL, 5, 1000, 0, &wake, &charged), 1000);
    CHECK(wake == DS_RL_NEVER);
}

/* A paused cap sends nothing, except control bytes at the head of the
 * output, which pass (a lease renewal never waits for the window). */
static void test_pace_paused_ctl(void)
{
    ds_rl_t *rl;
    ds_rl_node_t *leaf;
    int64_t wake;
    uint64_t charged;

    CHECK_INT(ds_rl_new(&rl), 0);
    CHECK_INT(ds_rl_add(rl, ds_rl_root(rl), &leaf), 0);
    ds_rl_set_rate(rl, leaf, 1 * SEC, 0, 5 * SEC);
    CHECK_INT(ds__pace_allow(rl, leaf, 2 * SEC, 4096, 0, &wake, &charged), 0);
    CHECK(wake >= 2 * SEC); /* told to come back (at the next edge) */
    CHECK_INT(ds__pace_allow(rl, leaf, 2 * SEC, 4096, 60, &wake, &charged), 60);
    CHECK_INT(charged, 0); /* control bytes are not charged to a paused cap */
    CHECK_INT(ds__pace_allow(rl, leaf, 2 * SEC, 40, 60, &wake, &charged), 40);
    ds_rl_free(rl);
}

/* ds_rl_path_cap: the lowest cap between a leaf and the root. */
static void test_path_cap(void)
{
    ds_rl_t *rl;
    ds_rl_node_t *site, *leaf;

    CHECK_INT(ds_rl_new(&rl), 0);
    CHECK_INT(ds_rl_add(rl, ds_rl_root(rl), &site), 0);
    CHECK_INT(ds_rl_add(rl, site, &leaf), 0);
    CHECK(ds_rl_path_cap(leaf) == DS_BW_OFF);
    ds_rl_set_rate(rl, site, 0, 20000000, DS_RL_NEVER);
    CHECK(ds_rl_path_cap(leaf) == 20000000);
    ds_rl_set_rate(rl, leaf, 0, 512000, DS_RL_NEVER);
    CHECK(ds_rl_path_cap(leaf) == 512000);
    ds_rl_set_rate(rl, ds_rl_root(rl), 0, 100000, DS_RL_NEVER);
    CHECK(ds_rl_path_cap(leaf) == 100000);
    ds_rl_free(rl);
}

int main(void)
{
    RUN(test_sched_global);
    RUN(test_sched_sites);
    RUN(test_sched_cancel_queued);
    RUN(test_pace_rate);
    RUN(test_pace_pipe_returns);
    RUN(test_pace_uncapped);
    RUN(test_pace_paused_ctl);
    RUN(test_path_cap);
    return CHECK_DONE();
}

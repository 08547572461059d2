/*
 * Unit tests for the bandwidth limiter on a simulated clock: senders ask for
 * bytes, send what they are granted at that instant and sleep until the
 * wake time they were given. Every grant is recorded per server, per site
 * and globally; the checks slide 1 s and 100 ms windows over 30 s runs.
 */
#include <math.h>

#include "check.h"
#include "distsync/bandwidth.h"
#include "distsync/ratelimit.h"

#define SEC     1000000000LL
#define MS      1000000LL
#define MAXSRV  128
#define MAXSITE 4
#define WANT    (64 * 1024) /* one sender's write: a 64 KiB frame */

struct ev {
    int64_t t;
    uint64_t b;
};

struct series {
    struct ev *v;
    size_t n, cap;
};

struct srv {
    ds_rl_node_t *node;
    int site;
    int64_t next;     /* when it asks next */
    uint64_t total;   /* bytes granted */
    double link;      /* bytes/s its own link drains, 0: unlimited */
    int64_t stall_at; /* stops asking from then on, 0: never */
    uint64_t asks;
    struct series sent;
};

struct sim {
    int jitter; /* wake-ups on a 1 ms timer, 0-2 ms late, like a loop's */
    uint32_t rng;
    ds_rl_t *rl;
    ds_rl_node_t *site[MAXSITE];
    int nsites, n;
    struct srv s[MAXSRV];
    struct series glob, sites[MAXSITE];
    int64_t now;
};

static void push(struct series *s, int64_t t, uint64_t b)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 4096;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        if (s->v == NULL)
            abort();
    }
    s->v[s->n++] = (struct ev){t, b};
}

static void sim_init(struct sim *m, uint64_t global_bps, int nsites, const uint64_t *site_bps)
{
    memset(m, 0, sizeof(*m));
    CHECK_INT(ds_rl_new(&m->rl), 0);
    ds_rl_set_rate(m->rl, ds_rl_root(m->rl), 0, global_bps, DS_RL_NEVER);
    m->nsites = nsites;
    for (int i = 0; i < nsites; i++) {
        CHECK_INT(ds_rl_add(m->rl, ds_rl_root(m->rl), &m->site[i]), 0);
        ds_rl_set_rate(m->rl, m->site[i], 0, site_bps[i], DS_RL_NEVER);
    }
}

static struct srv *sim_server(struct sim *m, int site, uint64_t bps)
{
    struct srv *s = &m->s[m->n++];

    s->site = site;
    CHECK_INT(ds_rl_add(m->rl, site >= 0 ? m->site[site] : ds_rl_root(m->rl), &s->node), 0);
    ds_rl_set_rate(m->rl, s->node, 0, bps, DS_RL_NEVER);
    return s;
}

static void sim_free(struct sim *m)
{
    for (int i = 0; i < m->n; i++)
        free(m->s[i].sent.v);
    for (int i = 0; i < m->nsites; i++)
        free(m->sites[i].v);
    free(m->glob.v);
    ds_rl_free(m->rl);
}

/* Runs every sender until instant end. */
static void sim_run(struct sim *m, int64_t end)
{
    for (;;) {
        struct srv *s = NULL;
        ds_rl_grant_t g;

        for (int i = 0; i < m->n; i++)
            if ((m->s[i].stall_at == 0 || m->s[i].next < m->s[i].stall_at) &&
                (s == NULL || m->s[i].next < s->next))
                s = &m->s[i];
        if (s == NULL || s->next >= end)
            break;
        m->now = s->next;
        ds_rl_request(m->rl, s->node, m->now, WANT, &g);
        s->asks++;
        CHECK(g.bytes <= WANT);
        if (g.bytes > 0) {
            s->total += g.bytes;
            push(&s->sent, m->now, g.bytes);
            push(&m->glob, m->now, g.bytes);
            if (s->site >= 0)
                push(&m->sites[s->site], m->now, g.bytes);
        }
        if (g.bytes < WANT && g.wake <= m->now) {
            CHECK(g.wake > m->now); /* a wake time is always in the future */
            g.wake = m->now + 1;
        }
        s->next = g.bytes == WANT ? m->now : g.wake;
        if (m->jitter && s->next > m->now && g.wake != DS_RL_NEVER) {
            m->rng = m->rng * 1103515245u + 12345u;
            s->next = (s->next + MS - 1) / MS * MS + (int64_t)(m->rng >> 16) % (2 * MS);
        }
        if (s->link > 0 && g.bytes > 0) /* its own link takes this long to drain it */
            s->next = m->now + (int64_t)((double)g.bytes / s->link * 1e9);
        if (g.wake == DS_RL_NEVER)
            s->next = end;
    }
    m->now = end;
}

/* The most bytes in any window [t, t + w) starting at an event in [from, to). */
static uint64_t worst_window(const struct series *s, int64_t from, int64_t to, int64_t w)
{
    uint64_t best = 0, sum = 0;
    size_t j = 0;

    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].t < from || s->v[i].t + w > to)
            continue;
        if (j < i)
            j = i, sum = 0;
        for (; j < s->n && s->v[j].t < s->v[i].t + w; j++)
            sum += s->v[j].b;
        best = sum > best ? sum : best;
        sum -= s->v[i].b;
    }
    return best;
}

static uint64_t bytes_in(const struct series *s, int64_t from, int64_t to)
{
    uint64_t sum = 0;

    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].t >= from && s->v[i].t < to)
            sum += s->v[i].b;
    return sum;
}

struct stats {
    double mean_err, over_1s, over_100ms; /* percent */
};

static struct stats measure(const struct series *s, uint64_t bps, int64_t from, int64_t to)
{
    double rate = (double)bps / 8.0;
    struct stats st;

    st.mean_err = 100.0 * ((double)bytes_in(s, from, to) / (rate * (double)(to - from) / SEC) - 1);
    st.over_1s = 100.0 * ((double)worst_window(s, from, to, SEC) / rate - 1);
    st.over_100ms = 100.0 * ((double)worst_window(s, from, to, 100 * MS) / (rate / 10) - 1);
    return st;
}

/* One site of n greedy servers under cap bps: accuracy over 30 s, fairness
 * over 30 s (300 s when each server's share is under 1 kbit/s: 30 s is
 * then only a few grants each). */
static void one_site(uint64_t bps, int n, int jitter)
{
    uint64_t cap[1] = {bps}, lo = UINT64_MAX, hi = 0;
    struct sim *m = calloc(1, sizeof(*m));
    int64_t dur = bps / (uint64_t)n < 1000 ? 300 * SEC : 30 * SEC;
    struct stats st;
    double fair;
    char r[32];

    sim_init(m, DS_BW_OFF, 1, cap);
    m->jitter = jitter;
    for (int i = 0; i < n; i++)
        sim_server(m, 0, DS_BW_OFF);
    sim_run(m, dur);
    st = measure(&m->sites[0], bps, 0, 30 * SEC);
    for (int i = 0; i < n; i++) {
        lo = m->s[i].total < lo ? m->s[i].total : lo;
        hi = m->s[i].total > hi ? m->s[i].total : hi;
    }
    fair = (double)bps / 8.0 * (double)(dur / SEC) / n;
    CHECK_INT(ds_bw_format_rate(bps, r, sizeof(r)), 0);
    printf("  %-8s %3d servers: mean %+6.2f%%, worst 1 s %+6.2f%%, worst 100 ms %+7.2f%%, "
           "server min/max %.3f/%.3f of fair%s\n",
           r, n, st.mean_err, st.over_1s, st.over_100ms, (double)lo / fair, (double)hi / fair,
           dur > 30 * SEC ? " (over 300 s)" : "");
    CHECK(fabs(st.mean_err) <= 3.0);
    CHECK(st.over_1s <= 10.0);
    CHECK((double)lo >= 0.9 * fair && (double)hi <= 1.1 * fair);
    sim_free(m);
    free(m);
}

static void test_accuracy_and_fairness(void)
{
    static const uint64_t rates[] = {64000, 2000000, 200000000, 1000000000};
    static const int counts[] = {1, 10, 100};

    for (int jitter = 0; jitter < 2; jitter++) {
        printf("simulated 30 s, greedy senders asking %d bytes, waking %s:\n", WANT,
               jitter ? "on a 1 ms timer, 0-2 ms late" : "on time");
        for (size_t i = 0; i < 4; i++)
            for (size_t j = 0; j < 3; j++)
                one_site(rates[i], counts[j], jitter);
    }
}

/* Nested: global 100 Mbit over three sites (50 Mbit with a 1 Mbit server,
 * uncapped, 20 Mbit) and a server in no site; no level ever exceeds its cap,
 * the global cap is reached, the shares are max-min fair. */
static void test_nested(void)
{
    uint64_t caps[3] = {50000000, DS_BW_OFF, 20000000};
    struct sim *m = calloc(1, sizeof(*m));
    struct stats g, a, c;

    sim_init(m, 100000000, 3, caps);
    for (int i = 0; i < 10; i++)
        sim_server(m, 0, i == 0 ? 1000000 : DS_BW_OFF);
    for (int i = 0; i < 5; i++)
        sim_server(m, 1, DS_BW_OFF);
    sim_server(m, 2, DS_BW_OFF);
    sim_server(m, -1, 5000000);
    sim_run(m, 30 * SEC);
    g = measure(&m->glob, 100000000, 0, 30 * SEC);
    a = measure(&m->sites[0], 50000000, 0, 30 * SEC);
    c = measure(&m->sites[2], 20000000, 0, 30 * SEC);
    printf("nested: global mean %+.2f%% 1 s %+.2f%% 100 ms %+.2f%%; site A 1 s %+.2f%%; "
           "site C 1 s %+.2f%%\n",
           g.mean_err, g.over_1s, g.over_100ms, a.over_1s, c.over_1s);
    CHECK(fabs(g.mean_err) <= 3.0);
    CHECK(g.over_1s <= 10.0 && g.over_100ms <= 10.0);
    CHECK(a.over_1s <= 10.0 && c.over_1s <= 10.0);
    /* max-min: C takes its 20, the loner its 5; A and B split 75 */
    CHECK(fabs(measure(&m->sites[2], 20000000, 0, 30 * SEC).mean_err) <= 3.0);
    CHECK(fabs(measure(&m->s[16].sent, 5000000, 0, 30 * SEC).mean_err) <= 3.0);
    CHECK(fabs(measure(&m->s[0].sent, 1000000, 0, 30 * SEC).mean_err) <= 3.0);
    CHECK(fabs(measure(&m->sites[0], 37500000, 0, 30 * SEC).mean_err) <= 5.0);
    CHECK(fabs(measure(&m->sites[1], 37500000, 0, 30 * SEC).mean_err) <= 5.0);
    /* the server's own 1 Mbit cap holds in every second */
    CHECK(measure(&m->s[0].sent, 1000000, 0, 30 * SEC).over_1s <= 10.0);
    CHECK(c.over_100ms <= 10.0);
    sim_free(m);
    free(m);
}

/* A rate change mid-transfer applies within one second, both ways. */
static void test_rate_change(void)
{
    uint64_t cap[1] = {20000000};
    struct sim *m = calloc(1, sizeof(*m));
    struct stats lo, hi;

    sim_init(m, DS_BW_OFF, 1, cap);
    for (int i = 0; i < 3; i++)
        sim_server(m, 0, DS_BW_OFF);
    sim_run(m, 10 * SEC + 3 * MS);
    ds_rl_set_rate(m->rl, m->site[0], m->now, 512000, DS_RL_NEVER);
    sim_run(m, 20 * SEC + 7 * MS);
    ds_rl_set_rate(m->rl, m->site[0], m->now, 200000000, DS_RL_NEVER);
    sim_run(m, 30 * SEC);
    lo = measure(&m->sites[0], 512000, 10 * SEC + 3 * MS, 20 * SEC + 7 * MS);
    hi = measure(&m->sites[0], 200000000, 20 * SEC + 7 * MS + SEC, 30 * SEC);
    printf("rate change: 20Mbit -> 512kbit: mean %+.2f%%, worst 1 s %+.2f%%; -> 200Mbit: "
           "mean %+.2f%%\n",
           lo.mean_err, lo.over_1s, hi.mean_err);
    CHECK(fabs(lo.mean_err) <= 3.0 && lo.over_1s <= 10.0); /* first second included */
    CHECK(fabs(hi.mean_err) <= 3.0);
    /* the first second after the raise already runs at the new rate */
    CHECK(bytes_in(&m->sites[0], 20 * SEC + 7 * MS, 21 * SEC + 7 * MS) >= 0.97 * 25000000);
    sim_free(m);
    free(m);
}

/* A stalled server (it stops asking, without telling) and a slow one (its
 * own link drains a quarter of its share) hold nobody back: the others
 * take what they leave within a second. */
static void test_stalled_and_slow(void)
{
    uint64_t cap[1] = {10000000};
    struct sim *m = calloc(1, sizeof(*m));
    double rate = 10000000 / 8.0;
    uint64_t after;

    sim_init(m, DS_BW_OFF, 1, cap);
    for (int i = 0; i < 10; i++)
        sim_server(m, 0, DS_BW_OFF);
    m->s[0].stall_at = 10 * SEC;
    m->s[1].link = rate / 10 / 4;
    sim_run(m, 30 * SEC);
    /* the site stays at its cap after the stall */
    after = bytes_in(&m->sites[0], 11 * SEC, 30 * SEC);
    printf("stalled+slow: site after the stall %+.2f%% of cap; slow server %.3f of its link; "
           "busy servers:",
           100.0 * ((double)after / (rate * 19) - 1),
           (double)bytes_in(&m->s[1].sent, 0, 30 * SEC) / (rate / 40 * 30));
    CHECK(fabs((double)after / (rate * 19) - 1) <= 0.03);
    CHECK(bytes_in(&m->sites[0], 10 * SEC + SEC, 10 * SEC + 2 * SEC) >= 0.95 * rate);
    CHECK(bytes_in(&m->s[0].sent, 10 * SEC, 30 * SEC) == 0);
    /* the slow server gets all its link can take (within 5%) */
    CHECK(bytes_in(&m->s[1].sent, 0, 30 * SEC) >= 0.95 * rate / 40 * 30);
    /* the 8 busy ones split the rest equally (within 10%) */
    for (int i = 2; i < 10; i++) {
        double share = (rate - rate / 40) / 8 * 19;
        double got = (double)bytes_in(&m->s[i].sent, 11 * SEC, 30 * SEC);

        printf(" %.3f", got / share);
        CHECK(got >= 0.9 * share && got <= 1.1 * share);
    }
    printf(" of an equal share each\n");
    sim_free(m);
    free(m);
}

/* ds_rl_idle returns a share at once; a returning server gets its share. */
static void test_idle_and_return(void)
{
    uint64_t cap[1] = {8000000};
    struct sim *m = calloc(1, sizeof(*m));

    sim_init(m, DS_BW_OFF, 1, cap);
    sim_server(m, 0, DS_BW_OFF);
    sim_server(m, 0, DS_BW_OFF);
    sim_run(m, 5 * SEC);
    ds_rl_idle(m->rl, m->s[1].node, m->now);
    m->s[1].next = 10 * SEC;
    sim_run(m, 15 * SEC);
    /* alone from 5 s: server 0 takes the whole 1 MB/s at once */
    CHECK(bytes_in(&m->s[0].sent, 5 * SEC, 6 * SEC) >= 0.97 * 1000000);
    /* back from 10 s: an equal split again within a second */
    CHECK(bytes_in(&m->s[1].sent, 11 * SEC, 15 * SEC) >= 0.9 * 2000000);
    CHECK(bytes_in(&m->s[1].sent, 11 * SEC, 15 * SEC) <= 1.1 * 2000000);
    sim_free(m);
    free(m);
}

/* Paused: nothing is granted and the wake is the caller's next change. */
static void test_paused(void)
{
    ds_rl_t *rl = NULL;
    ds_rl_node_t *site, *srv;
    ds_rl_grant_t g;

    CHECK_INT(ds_rl_new(&rl), 0);
    CHECK_INT(ds_rl_add(rl, ds_rl_root(rl), &site), 0);
    CHECK_INT(ds_rl_add(rl, site, &srv), 0);
    ds_rl_set_rate(rl, site, 0, DS_BW_PAUSED, 7 * SEC);
    ds_rl_request(rl, srv, SEC, 1000, &g);
    CHECK_INT(g.bytes, 0);
    CHECK_INT(g.wake, 7 * SEC);
    ds_rl_set_rate(rl, site, 7 * SEC, DS_BW_PAUSED, DS_RL_NEVER);
    ds_rl_request(rl, srv, 7 * SEC, 1000, &g);
    CHECK_INT(g.bytes, 0);
    CHECK(g.wake == DS_RL_NEVER);
    ds_rl_set_rate(rl, site, 8 * SEC, 8000000, DS_RL_NEVER);
    ds_rl_request(rl, srv, 8 * SEC + MS, 1000, &g); /* 1 MB/s: 1000 bytes a ms */
    CHECK_INT(g.bytes, 1000);
    /* uncapped everywhere: everything at once */
    ds_rl_set_rate(rl, site, 9 * SEC, DS_BW_OFF, DS_RL_NEVER);
    ds_rl_request(rl, srv, 9 * SEC, 1u << 30, &g);
    CHECK(g.bytes == 1u << 30);
    ds_rl_free(rl);
    ds_rl_free(NULL);
}

/* A grant never exceeds one bucket depth: bursts stay milliseconds long. */
static void test_burst_bound(void)
{
    ds_rl_t *rl = NULL;
    ds_rl_node_t *srv;
    ds_rl_grant_t g;

    CHECK_INT(ds_rl_new(&rl), 0);
    CHECK_INT(ds_rl_add(rl, ds_rl_root(rl), &srv), 0);
    ds_rl_set_rate(rl, ds_rl_root(rl), 0, 1000000000, DS_RL_NEVER);
    ds_rl_request(rl, srv, 0, 100u << 20, &g);
    CHECK(g.bytes <= 625000 + 1); /* 5 ms at 125 MB/s */
    CHECK(g.bytes >= 625000 - 1);
    CHECK(g.wake > 0 && g.wake <= 5 * MS + 1);
    ds_rl_set_rate(rl, ds_rl_root(rl), SEC, 64000, DS_RL_NEVER);
    ds_rl_request(rl, srv, SEC, 100u << 20, &g);
    CHECK(g.bytes <= DS_RL_MIN_DEPTH);
    ds_rl_free(rl);
}

/* Bytes sent beyond the grants (SSH overhead) are charged: over 10 s a
 * sender that adds 10% to every grant still moves cap * 10 s in all, and
 * a paused cap takes no debt. */
static void test_charge(void)
{
    ds_rl_t *rl = NULL;
    ds_rl_node_t *srv;
    ds_rl_grant_t g;
    uint64_t wire = 0;
    int64_t now = 0;

    CHECK_INT(ds_rl_new(&rl), 0);
    CHECK_INT(ds_rl_add(rl, ds_rl_root(rl), &srv), 0);
    ds_rl_set_rate(rl, srv, 0, 8000000, DS_RL_NEVER); /* 1 MB/s */
    while (now < 10 * SEC) {
        ds_rl_request(rl, srv, now, WANT, &g);
        if (g.bytes > 0) {
            ds_rl_charge(rl, srv, now, g.bytes / 10);
            wire += g.bytes + g.bytes / 10;
        }
        now = g.bytes == WANT ? now : g.wake;
    }
    CHECK(wire <= 10000000 + 2 * 5000 + WANT / 10); /* cap * T + depths */
    CHECK(wire >= 9800000);
    ds_rl_set_rate(rl, srv, now, 0, DS_RL_NEVER);
    ds_rl_charge(rl, srv, now, 1u << 20);
    ds_rl_set_rate(rl, srv, now + SEC, 8000000, DS_RL_NEVER);
    ds_rl_request(rl, srv, now + 2 * SEC, 1000, &g);
    CHECK_INT(g.bytes, 1000);
    ds_rl_free(rl);
}

/* A table drives a site's rate the way the engine will: evaluate at the
 * wall-clock instant, set the rate with the next change as `until`, and
 * re-evaluate when a wake-up reaches it. Europe/Paris, the night of the
 * 2026-03-29 spring-forward: 2 Mbit/s, paused from Saturday 22:00, 8 Mbit/s
 * from Sunday 06:00 (CEST, 04:00 UTC). */
static void test_table_drives_rate(void)
{
    const int64_t t0 = 1774731570;              /* 2026-03-28T20:59:30Z = 21:59:30 CET */
    const int64_t t8 = (1774756800 - t0) * SEC; /* 2026-03-29T04:00:00Z = 06:00 CEST */
    ds_tz_t *paris = NULL;
    ds_bw_table_t tb;
    ds_rl_t *rl = NULL;
    ds_rl_node_t *site, *srv;
    char msg[256];
    int64_t now = 0, until = 0, wake_paused = -1, next;
    uint64_t bps, before = 0, after = 0;

    CHECK_INT(ds_tz_load("Europe/Paris", &paris), 0);
    CHECK_INT(ds_bw_parse("2Mbit; Sat 22:00-06:00 0; Sun 06:00-07:00 8Mbit", &tb, msg, sizeof(msg)),
              0);
    CHECK_INT(ds_rl_new(&rl), 0);
    CHECK_INT(ds_rl_add(rl, ds_rl_root(rl), &site), 0);
    CHECK_INT(ds_rl_add(rl, site, &srv), 0);
    while (now < t8 + 60 * SEC) {
        ds_rl_grant_t g;

        if (now >= until) {
            CHECK_INT(ds_bw_rate_at(&tb, paris, t0 + now / SEC, &bps, &next), 0);
            until = (next - t0) * SEC;
            ds_rl_set_rate(rl, site, now, bps, until);
        }
        ds_rl_request(rl, srv, now, WANT, &g);
        if (now < 30 * SEC)
            before += g.bytes;
        if (now >= t8 && now < t8 + SEC)
            after += g.bytes;
        if (g.bytes == 0 && bps == 0 && wake_paused < 0)
            wake_paused = g.wake;
        now = g.bytes == WANT ? now : g.wake;
    }
    /* 2 Mbit/s until 22:00 CET, then nothing, woken at 06:00 CEST */
    CHECK(fabs((double)before / (2000000 / 8 * 30) - 1) <= 0.03);
    CHECK_INT(wake_paused, t8);
    /* the first second at 8 Mbit/s already runs at 8 Mbit/s */
    printf("table: 30 s at 2Mbit %.4f of the cap; first second at 8Mbit %.4f of it\n",
           (double)before / (2000000 / 8 * 30), (double)after / 1000000);
    CHECK((double)after >= 0.97 * 1000000 && (double)after <= 1.1 * 1000000);
    ds_rl_free(rl);
    ds_tz_free(paris);
}

/* Random trees, caps changed every 2 s (paused, off, 64 kbit/s..50 Mbit/s),
 * servers that stall or sit behind slow links: within every stretch of a
 * constant cap, no 1 s window of any capped level exceeds cap * 1 s + 1.5
 * bucket depths; a paused level sends nothing; every server that asks
 * under caps of 512 kbit/s or more gets bytes in every stretch. */
static uint32_t rnd(uint32_t *r)
{
    *r = *r * 1103515245u + 12345u;
    return *r >> 8;
}

static uint64_t rnd_cap(uint32_t *r)
{
    static const uint64_t caps[] = {DS_BW_OFF, 0,        64000,    512000,
                                    2000000,   10000000, 20000000, 50000000};

    return caps[rnd(r) % 8];
}

static double depth_bytes(uint64_t bps)
{
    double d = (double)bps / 8 * (double)DS_RL_BURST_NS / SEC;

    return d > DS_RL_MIN_DEPTH ? d : DS_RL_MIN_DEPTH;
}

/* Checks series s against the caps the node had in each 2 s stretch. */
static int check_caps(const struct series *s, const uint64_t *caps, int nseg)
{
    int bad = 0;

    for (int k = 0; k < nseg; k++) {
        int64_t a = k * 2 * SEC, b = a + 2 * SEC;

        if (caps[k] == 0 && bytes_in(s, a, b) != 0)
            bad++;
        if (caps[k] != 0 && caps[k] != DS_BW_OFF &&
            (double)worst_window(s, a, b, SEC) >
                (double)caps[k] / 8 + 1.5 * depth_bytes(caps[k]) + 1)
            bad++;
    }
    return bad;
}

static void test_random_invariants(void)
{
    enum { NSEG = 20 };

    for (uint32_t seed = 1; seed <= 6; seed++) {
        struct sim *m = calloc(1, sizeof(*m));
        uint64_t gcap[NSEG], scap[MAXSITE][NSEG], vcap[MAXSRV][NSEG], sites[3];
        uint32_t r = seed;
        int bad = 0;

        for (int i = 0; i < 3; i++)
            sites[i] = rnd_cap(&r);
        sim_init(m, rnd_cap(&r), 3, sites);
        m->jitter = (int)(seed & 1);
        for (int i = 0; i < 30; i++) {
            struct srv *v = sim_server(m, (int)(rnd(&r) % 4) - 1, DS_BW_OFF);

            v->stall_at = rnd(&r) % 4 == 0 ? (int64_t)(rnd(&r) % 40) * SEC : 0;
            v->link = rnd(&r) % 5 == 0 ? 20000.0 + rnd(&r) % 200000 : 1e8; /* slow, or 800 Mbit/s */
        }
        for (int k = 0; k < NSEG; k++) {
            int64_t t = k * 2 * SEC;

            gcap[k] = k == 0 || rnd(&r) % 3 == 0 ? rnd_cap(&r) : gcap[k - 1];
            ds_rl_set_rate(m->rl, ds_rl_root(m->rl), t, gcap[k], t + 2 * SEC);
            for (int i = 0; i < 3; i++) {
                scap[i][k] = k == 0 || rnd(&r) % 3 == 0 ? rnd_cap(&r) : scap[i][k - 1];
                ds_rl_set_rate(m->rl, m->site[i], t, scap[i][k], t + 2 * SEC);
            }
            for (int i = 0; i < m->n; i++) {
                vcap[i][k] = k == 0 || rnd(&r) % 4 == 0 ? rnd_cap(&r) : vcap[i][k - 1];
                ds_rl_set_rate(m->rl, m->s[i].node, t, vcap[i][k], t + 2 * SEC);
                if (m->s[i].next > t) /* a change of caps wakes whoever waits */
                    m->s[i].next = t;
            }
            sim_run(m, t + 2 * SEC);
        }
        bad += check_caps(&m->glob, gcap, NSEG);
        for (int i = 0; i < 3; i++)
            bad += check_caps(&m->sites[i], scap[i], NSEG);
        for (int i = 0; i < m->n; i++) {
            bad += check_caps(&m->s[i].sent, vcap[i], NSEG);
            /* liveness: asking under positive caps all the way up gets bytes */
            for (int k = 0; k < NSEG; k++) {
                int64_t a = k * 2 * SEC;
                int site = m->s[i].site;
                /* under 512 kbit/s shared by up to 30 servers, a share is a few
                 * 128-byte grants per stretch: fair over minutes, not 2 s */
                int open = gcap[k] >= 512000 && vcap[i][k] >= 512000 &&
                           (site < 0 || scap[site][k] >= 512000);

                if (open && (m->s[i].stall_at == 0 || m->s[i].stall_at > a + 2 * SEC) &&
                    bytes_in(&m->s[i].sent, a, a + 2 * SEC) == 0) {
                    fprintf(stderr,
                            "  stretch %d: server %d got nothing (global %" PRIu64
                            ", site %d %" PRIu64 ", own %" PRIu64 ", link %.0f, asks %" PRIu64
                            ")\n",
                            k, i, gcap[k], site, site >= 0 ? scap[site][k] : 0, vcap[i][k],
                            m->s[i].link, m->s[i].asks);
                    bad++;
                }
            }
        }
        if (bad)
            fprintf(stderr, "seed %u: %d violations\n", seed, bad);
        CHECK_INT(bad, 0);
        sim_free(m);
        free(m);
    }
}

int main(void)
{
    RUN(test_paused);
    RUN(test_burst_bound);
    RUN(test_charge);
    RUN(test_accuracy_and_fairness);
    RUN(test_nested);
    RUN(test_rate_change);
    RUN(test_stalled_and_slow);
    RUN(test_idle_and_return);
    RUN(test_table_drives_rate);
    RUN(test_random_invariants);
    return CHECK_DONE();
}

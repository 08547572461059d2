/*
 * bench_gate_core [DIR] [DECISIONS]: the upgrade gate's decisions per
 * second and their latency, at the library level (no HTTP), over the
 * SQLite state in DIR (default /tmp). 10 sites of 3 servers, caps at
 * every level (global 500, site 60, server 25, bandwidth), 100,000
 * clients; the mix: 70% requests, 15% reports, 10% heartbeats, 5%
 * priority. Changes are flushed every B decisions (group commit: the
 * server answers a batch after one commit), for B = 1, 16, 64, 256; a
 * decision's latency includes its share of the commit when it is the one
 * that flushes. Every cap is checked after every decision (outside the
 * timing): the run fails if any level ever exceeds its cap.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "distsync/config.h"
#include "distsync/error.h"
#include "distsync/gate.h"

#define NSITES   10
#define NSERVERS 3
#define NCLIENTS 100000
#define T0       1800000000LL

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static char *config_text(void)
{
    size_t cap = 1 << 16, n = 0;
    char *t = malloc(cap);

    n += (size_t)snprintf(t + n, cap - n,
                          "[console]\nstore = /tmp/s\nstate = /tmp/st\n"
                          "max_concurrent_upgrades = 500\nmax_upgrade_bandwidth = 10Gbit\n");
    for (int s = 0; s < NSITES; s++) {
        n += (size_t)snprintf(t + n, cap - n,
                              "[site s%d]\nclients = c%d-*\nmax_concurrent_upgrades = 60\n"
                              "max_upgrade_bandwidth = 1Gbit\n",
                              s, s);
        for (int v = 0; v < NSERVERS; v++)
            n += (size_t)snprintf(t + n, cap - n,
                                  "[server s%d-%d]\nurl = file:///srv/%d/%d\nsite = s%d\n"
                                  "max_concurrent_upgrades = 25\n",
                                  s, v, s, v, s);
    }
    snprintf(t + n, cap - n,
             "[package agent-7]\nproduct = agent\nversion = 7.0\npath = engines/agent.msi\n"
             "[ring all]\nmembers = *\n"
             "[rollout agent]\nproduct = agent\nversion = 7.0\nrings = all\ntoken_file = t\n"
             "lease = 5m\nclient_rate = 20Mbit\nmax_failure = 100%%\n");
    return t;
}

/* Every level within its cap. */
static int caps_ok(ds_gate_t *g, const ds_config_t *cfg)
{
    unsigned u, c;
    uint64_t bu, bc;

    if (ds_gate_usage(g, "global", NULL, &u, &c, &bu, &bc) < 0 || u > c || bu > bc)
        return 0;
    for (size_t i = 0; i < cfg->nsites; i++)
        if (ds_gate_usage(g, "site", cfg->sites[i].name, &u, &c, &bu, &bc) < 0 || u > c || bu > bc)
            return 0;
    for (size_t i = 0; i < cfg->nservers; i++)
        if (ds_gate_usage(g, "server", cfg->servers[i].name, &u, &c, &bu, &bc) < 0 || u > c)
            return 0;
    return 1;
}

struct held {
    char token[DS_GATE_TOKEN_LEN + 1];
    char client[32];
};

static int run(const ds_config_t *cfg, const char *dir, int batch, long n)
{
    char db[4200], side[4300], err[512], client[32];
    static struct held held[1024];
    int nheld = 0, broken = 0;
    long grants = 0, waits = 0;
    unsigned seed = 14;
    double *lat = malloc((size_t)n * sizeof(*lat)), t_all = 0;
    ds_gate_state_t st;
    ds_gate_t *g = NULL;
    ds_gate_decision_t d;
    int64_t now = T0;

    snprintf(db, sizeof(db), "%s/bench_gate_%d.db", dir, (int)getpid());
    unlink(db);
    if (lat == NULL || ds_gate_state_sqlite(db, &st, err, sizeof(err)) < 0 ||
        ds_gate_new(cfg, &st, now, &g, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_gate_core: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < cfg->nservers; i++)
        if (ds_gate_server_set(g, cfg->servers[i].name, "agent", "7.0", 1, 0) < 0)
            return 1;
    for (long i = 0; i < n; i++) {
        int r = (int)(rand_r(&seed) % 100), c = (int)(rand_r(&seed) % NCLIENTS), k;
        double t = now_s();

        snprintf(client, sizeof(client), "c%d-%d", c % NSITES, c);
        if (r < 70 || nheld == 0) {
            ds_gate_request_t req = {.client = client, .product = "agent", .version = "6.0"};

            if (ds_gate_request(g, &req, now, &d, err, sizeof(err)) == 0) {
                grants += d.kind == DS_GATE_GRANT;
                waits += d.kind == DS_GATE_WAIT;
                if (d.kind == DS_GATE_GRANT && nheld < 1024) {
                    memcpy(held[nheld].token, d.token, sizeof(d.token));
                    memcpy(held[nheld++].client, client, sizeof(client));
                }
            }
        } else if (r < 85) {
            k = (int)(rand_r(&seed) % (unsigned)nheld);
            (void)ds_gate_report(g, held[k].token, held[k].client, r & 1 ? "success" : "failure",
                                 "7.0", NULL, now, err, sizeof(err));
            held[k] = held[--nheld];
        } else if (r < 95) {
            k = (int)(rand_r(&seed) % (unsigned)nheld);
            (void)ds_gate_heartbeat(g, held[k].token, held[k].client, now, NULL, err, sizeof(err));
        } else {
            (void)ds_gate_priority(g, client, now, err, sizeof(err));
        }
        if ((i + 1) % batch == 0 && ds_gate_flush(g) < 0) {
            fprintf(stderr, "bench_gate_core: flush failed\n");
            return 1;
        }
        lat[i] = now_s() - t;
        t_all += lat[i];
        broken |= !caps_ok(g, cfg);
        if (i % 1000 == 999)
            now++; /* leases of 5 min run out under the load */
    }
    qsort(lat, (size_t)n, sizeof(*lat), cmp_d);
    printf("| %5d | %9ld | %12.0f | %8.1f | %8.1f | %8.1f | %7ld | %7ld | %s |\n", batch, n,
           (double)n / t_all, lat[n / 2] * 1e6, lat[n * 99 / 100] * 1e6, lat[n * 999 / 1000] * 1e6,
           grants, waits, broken ? "EXCEEDED" : "never");
    ds_gate_free(g);
    free(lat);
    unlink(db);
    snprintf(side, sizeof(side), "%s-wal", db);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", db);
    unlink(side);
    return broken;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    long n = argc > 2 ? atol(argv[2]) : 200000;
    static const int batches[] = {1, 16, 64, 256};
    char *text = config_text(), err[512];
    ds_config_t *cfg = NULL;
    int rc = 0;

    if (ds_config_parse(text, "bench.conf", "/tmp", &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_gate_core: %s\n", err);
        return 1;
    }
    printf("gate decisions (library level, SQLite state in %s, %d clients, %d sites x %d "
           "servers)\n\n",
           dir, NCLIENTS, NSITES, NSERVERS);
    printf("| batch | decisions | decisions/s | p50 (us) | p99 (us) | p99.9 (us) | grants | "
           "waits | cap exceeded |\n|---|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); i++)
        rc |= run(cfg, dir, batches[i], batches[i] == 1 ? n / 4 : n);
    ds_config_free(cfg);
    free(text);
    return rc;
}

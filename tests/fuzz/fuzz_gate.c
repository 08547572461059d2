/* libFuzzer target: the upgrade gate's requests as a client sends them
 * (the fields of POST /v1/upgrade/request, heartbeat, report, priority:
 * arbitrary strings). Input: lines "OP\tF1\tF2\tF3\tF4"; OP r request
 * (client, product, version, site), h heartbeat (token, client), p report
 * (token, client, outcome, version), P priority (client), t the clock
 * forward F1 seconds; a token "#N" is the N-th grant so far. The gate must
 * never crash or leak, answer errors with a message, and never exceed a
 * cap. Its state is a null backend (writes nothing): the fuzzer exercises
 * the admission logic, not SQLite. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/config.h"
#include "distsync/error.h"
#include "distsync/gate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char conf[] =
    "[console]\nstore = /s\nstate = /st\nmax_concurrent_upgrades = 3\n"
    "[site a]\nclients = a*\nmax_concurrent_upgrades = 2\nmax_upgrade_bandwidth = 5Mbit\n"
    "[site b]\nclients = b*\n"
    "[server a1]\nurl = file:///a1\nsite = a\nmax_concurrent_upgrades = 1\n"
    "[server a2]\nurl = file:///a2\nsite = a\n"
    "[server b1]\nurl = file:///b1\nsite = b\nmax_concurrent_upgrades = 2\n"
    "[package p6]\nproduct = agent\nversion = 6.0\npath = e/6.msi\nsoak = 1h\n"
    "[package p7]\nproduct = agent\nversion = 7.0\npath = e/7.msi\nfrom = 6.0\n"
    "[ring pilot]\nmembers = a1*, b1*\nsize = 4\n"
    "[ring rest]\nmembers = *\n"
    "[rollout agent]\nproduct = agent\nversion = 7.0\nrings = pilot, rest\n"
    "token_file = t\nclient_rate = 2Mbit\nlease = 10m\nmin_success = 50%\nmax_failure = 25%\n";

static int nop_load(void *c, ds_gate_row_fn f, ds_gate_ctl_fn g, void *a)
{
    (void)c, (void)f, (void)g, (void)a;
    return 0;
}
static int nop_ctl(void *c, ds_gate_ctl_fn f, void *a)
{
    (void)c, (void)f, (void)a;
    return 0;
}
static int nop_row(void *c, const ds_gate_row_t *r)
{
    (void)c, (void)r;
    return 0;
}
static int nop_out(void *c, const ds_gate_row_t *r, const char *o, int l)
{
    (void)c, (void)r, (void)o, (void)l;
    return 0;
}
static int nop_put_ctl(void *c, const ds_gate_ctl_t *t)
{
    (void)c, (void)t;
    return 0;
}
static int nop_flush(void *c)
{
    (void)c;
    return 0;
}
static void nop_close(void *c)
{
    (void)c;
}

static int capped(ds_gate_t *g, const char *level, const char *name)
{
    unsigned u, c;
    uint64_t bu, bc;

    return ds_gate_usage(g, level, name, &u, &c, &bu, &bc) == 0 && (c == 0 || u <= c) && bu <= bc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ds_config_t *cfg;
    ds_gate_state_t st = {NULL,    nop_load,    nop_ctl,   nop_row,
                          nop_out, nop_put_ctl, nop_flush, nop_close};
    char *text = malloc(size + 1), *save = NULL, err[512], tokens[8][DS_GATE_TOKEN_LEN + 1];
    ds_gate_t *g = NULL;
    ds_gate_decision_t d;
    int64_t now = 1800000000;
    int ntok = 0;

    if (cfg == NULL && ds_config_parse(conf, "fuzz.conf", "/", &cfg, err, sizeof(err)) < 0)
        abort();
    if (text == NULL || ds_gate_new(cfg, &st, now, &g, err, sizeof(err)) < 0)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    for (size_t i = 0; i < cfg->nservers; i++)
        (void)ds_gate_server_set(g, cfg->servers[i].name, "agent", i % 2 ? "6.0" : "7.0", 1,
                                 i == 1);
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[5] = {NULL}, *s2 = NULL, *tok = NULL;
        int n = 0, rc = 0;

        for (char *w = strtok_r(line, "\t", &s2); w && n < 5; w = strtok_r(NULL, "\t", &s2))
            f[n++] = w;
        tok =
            f[1] && f[1][0] == '#' && ntok > 0 ? tokens[(unsigned)f[1][1] % (unsigned)ntok] : f[1];
        err[0] = '\0';
        if (f[0] == NULL)
            continue;
        if (f[0][0] == 'r') {
            ds_gate_request_t req = {f[1], f[2], f[3], f[4]};

            rc = ds_gate_request(g, &req, now, &d, err, sizeof(err));
            if (rc == 0 && d.kind == DS_GATE_GRANT && ntok < 8)
                memcpy(tokens[ntok++], d.token, sizeof(d.token));
        } else if (f[0][0] == 'h') {
            rc = ds_gate_heartbeat(g, tok, f[2], now, NULL, err, sizeof(err));
        } else if (f[0][0] == 'p') {
            rc = ds_gate_report(g, tok, f[2], f[3], f[4], "detail", now, err, sizeof(err));
        } else if (f[0][0] == 'P') {
            rc = ds_gate_priority(g, f[1], now, err, sizeof(err));
        } else if (f[0][0] == 't' && f[1] != NULL) {
            now += strtol(f[1], NULL, 10) & 0xffff;
        }
        if (rc < 0 && err[0] == '\0')
            abort(); /* an error always says what is wrong */
        if (!capped(g, "global", NULL) || !capped(g, "site", "a") || !capped(g, "site", "b") ||
            !capped(g, "server", "a1") || !capped(g, "server", "a2") || !capped(g, "server", "b1"))
            abort();
    }
    ds_gate_free(g);
    free(text);
    return 0;
}

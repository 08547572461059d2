/*
 * Unit tests for a configuration's caps as a limiter tree: tables drive the
 * rates at their changes (Europe/Paris, the 2026-03-29 spring-forward
 * night), a paused server is woken at the next change, a reload applies new
 * caps at once and keeps the nodes of unchanged servers.
 */
#include "check.h"
#include "distsync/caps.h"

#define SEC 1000000000LL

#define BASE                                                                                       \
    "[console]\nstore = /s\nstate = /t\nbandwidth = 100Mbit\n"                                     \
    "[site lyon]\ntz = Europe/Paris\n"

static ds_config_t *load(const char *text)
{
    ds_config_t *cfg = NULL;
    char err[512] = "";

    if (ds_config_parse(text, "t.conf", "/", &cfg, err, sizeof(err)) != 0)
        fprintf(stderr, "config: %s\n", err);
    CHECK(cfg != NULL);
    return cfg;
}

static void test_tables_and_reload(void)
{
    const int64_t wall0 = 1774731570LL * SEC; /* 2026-03-28T20:59:30Z = 21:59:30 CET, Saturday */
    const int64_t mono0 = 5 * SEC, t8 = (1774756800LL - 1774731570LL) * SEC;
    ds_config_t *cfg = load(BASE "bandwidth = 2Mbit; Sat 22:00-06:00 0\n[site b]\n"
                                 "[server s1]\nurl = file:///a\nsite = lyon\nbandwidth = 1Mbit\n"
                                 "[server s2]\nurl = file:///b\nbandwidth = Mon-Fri 512kbit\n");
    ds_caps_t *caps = NULL;
    ds_rl_node_t *s1, *s2;
    ds_rl_grant_t g;
    char err[256] = "";
    int64_t due;

    if (cfg == NULL)
        return;
    CHECK_INT(ds_caps_new(cfg, wall0, mono0, &caps, err, sizeof(err)), 0);
    s1 = ds_caps_server(caps, "s1");
    s2 = ds_caps_server(caps, "s2");
    CHECK(s1 != NULL && s2 != NULL && ds_caps_server(caps, "nope") == NULL);
    CHECK(ds_rl_cap(ds_rl_root(ds_caps_limiter(caps))) == 100000000);
    CHECK(ds_rl_cap(s1) == 1000000);
    CHECK(ds_rl_cap(s2) == DS_BW_OFF); /* Saturday (UTC) */
    /* nothing due yet; the next change is 22:00 CET, 30 s on */
    CHECK_INT(ds_caps_tick(caps, wall0 + SEC / 2, mono0 + SEC / 2, &due), 0);
    CHECK_INT(due, mono0 + 30 * SEC);
    ds_rl_request(ds_caps_limiter(caps), s1, mono0 + SEC, 200, &g);
    CHECK_INT(g.bytes, 200);
    /* 22:00: lyon pauses until 06:00 CEST; its server is told to wait until then */
    CHECK_INT(ds_caps_tick(caps, wall0 + 30 * SEC, mono0 + 30 * SEC, &due), 1);
    CHECK_INT(due, mono0 + t8);
    ds_rl_request(ds_caps_limiter(caps), s1, mono0 + 31 * SEC, 1000, &g);
    CHECK_INT(g.bytes, 0);
    CHECK_INT(g.wake, mono0 + t8);
    /* 06:00 CEST: 2 Mbit/s again */
    CHECK_INT(ds_caps_tick(caps, wall0 + t8, mono0 + t8, &due), 1);
    ds_rl_request(ds_caps_limiter(caps), s1, mono0 + t8 + SEC, 200, &g);
    CHECK_INT(g.bytes, 200);
    ds_config_free(cfg);

    /* reload: a new site cap applies at once; s1 keeps its node */
    cfg = load(BASE "bandwidth = 10Mbit\n[site b]\n"
                    "[server s1]\nurl = file:///a\nsite = lyon\nbandwidth = 1Mbit\n");
    if (cfg != NULL) {
        CHECK_INT(
            ds_caps_reload(caps, cfg, wall0 + t8 + 2 * SEC, mono0 + t8 + 2 * SEC, err, sizeof(err)),
            0);
        CHECK(ds_caps_server(caps, "s1") == s1);
        CHECK(ds_caps_server(caps, "s2") == NULL);
        CHECK_INT(ds_caps_tick(caps, wall0 + t8 + 2 * SEC, mono0 + t8 + 2 * SEC, &due), 0);
        CHECK(due == DS_RL_NEVER);
        ds_config_free(cfg);
    }
    /* a server that moves to another site gets a new leaf */
    cfg = load(BASE "[site b]\nbandwidth = 0\n[server s1]\nurl = file:///a\nsite = b\n");
    if (cfg != NULL) {
        CHECK_INT(
            ds_caps_reload(caps, cfg, wall0 + t8 + 3 * SEC, mono0 + t8 + 3 * SEC, err, sizeof(err)),
            0);
        CHECK(ds_caps_server(caps, "s1") != NULL && ds_caps_server(caps, "s1") != s1);
        ds_rl_request(ds_caps_limiter(caps), ds_caps_server(caps, "s1"), mono0 + t8 + 4 * SEC, 1000,
                      &g);
        CHECK_INT(g.bytes, 0); /* site b is paused for good */
        CHECK(g.wake == DS_RL_NEVER);
        ds_config_free(cfg);
    }
    ds_caps_free(caps);
    ds_caps_free(NULL);
}

int main(void)
{
    setenv("TZ", "UTC", 1); /* the console's zone */
    RUN(test_tables_and_reload);
    return CHECK_DONE();
}

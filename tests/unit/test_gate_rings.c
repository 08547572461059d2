/*
 * The upgrade gate's rollout logic on a simulated clock: rings opening on
 * min_success and their earliest time, the max_failure threshold (equal
 * does not trip, one more does), promote, version chains with soak, and
 * restarts (close and reopen the SQLite state mid-sequence).
 */
#include <errno.h>

#include "distsync/error.h"
#include "gate_env.h"

#define T0 1800000000LL /* 2027-01-15T08:00:00Z */

#define RINGS_CONF(extra)                                                                          \
    ENV_HEAD "[site a]\nclients = *\n"                                                             \
             "[server a1]\nurl = file:///srv/a1\nsite = a\n"                                       \
             "[package agent-7]\nproduct = agent\nversion = 7.0\npath = engines/agent-7.0.msi\n"   \
             "[ring pilot]\nmembers_file = pilot.txt\n"                                            \
             "[ring groupa]\nmembers = r-*\n" extra                                                \
             "[rollout agent]\nproduct = agent\nversion = 7.0\nrings = pilot, groupa\n"            \
             "token_file = tok\nlease = 1h\nmin_success = 95%\nmax_failure = 5%\n"

static void write_pilot(struct env *e, int n)
{
    char path[4300];
    FILE *f;

    snprintf(path, sizeof(path), "%s/pilot.txt", e->dir);
    f = fopen(path, "w");
    fprintf(f, "# the pilot ring\n\n");
    for (int i = 1; i <= n; i++)
        fprintf(f, "p-%02d\n", i);
    fclose(f);
}

/* Grants and reports outcome for pilot clients [from, to]. */
static void pilot_do(struct env *e, int from, int to, const char *outcome, int64_t now)
{
    ds_gate_decision_t d;
    char name[16];

    for (int i = from; i <= to; i++) {
        snprintf(name, sizeof(name), "p-%02d", i);
        CHECK_INT(ask(e, name, "6.0", now, &d), DS_GATE_GRANT);
        CHECK_INT(
            report(e, d.token, name, outcome, strcmp(outcome, "success") ? "6.0" : "7.0", now), 0);
    }
}

/* groupa opens once the pilot reached min_success (95%: 19 of 20; 18 is
 * not enough), and stays open. */
static void test_ring_progression(void)
{
    struct env e;
    ds_gate_decision_t d;
    ds_gate_rollout_status_t st;

    env_dir(&e, "gate_rings");
    write_pilot(&e, 20);
    CHECK_INT(env_start(&e, RINGS_CONF(""), T0), 0);
    CHECK_INT(ds_gate_server_set(e.g, "a1", "agent", "7.0", 1, 0), 0);
    CHECK_INT(ask(&e, "r-1", "6.0", T0, &d), DS_GATE_NONE);
    CHECK_STR(d.reason, "ring closed until ring pilot reaches min_success 95.00% (0 of 20 on 7.0)");
    CHECK_INT(ask(&e, "x-1", "6.0", T0, &d), DS_GATE_NONE);
    CHECK_STR(d.reason, "client x-1 is in no ring of rollout agent");
    pilot_do(&e, 1, 18, "success", T0 + 10);
    CHECK_INT(ask(&e, "r-1", "6.0", T0 + 20, &d), DS_GATE_NONE);
    CHECK(strstr(d.reason, "(18 of 20 on 7.0)") != NULL);
    CHECK_INT(ask(&e, "p-19", "7.0", T0 + 20, &d), DS_GATE_NONE); /* already on 7.0: counts */
    CHECK_STR(d.reason, "up to date");
    CHECK_INT(ask(&e, "r-1", "6.0", T0 + 30, &d), DS_GATE_GRANT);
    CHECK_INT(ds_gate_status(e.g, "agent", T0 + 30, &st), 0);
    CHECK_INT(st.nrings, 2);
    CHECK_INT(st.rings[0].members, 20);
    CHECK_INT(st.rings[0].succeeded, 19);
    CHECK_INT(st.rings[1].granted, 1);
    CHECK(st.rings[1].open);
    CHECK_INT(st.staged, 1);
    CHECK_INT(st.servers, 1);
    /* the pilot failing now does not close groupa again (latched) */
    pilot_do(&e, 20, 20, "failure", T0 + 40);
    CHECK_INT(ask(&e, "r-2", "6.0", T0 + 50, &d), DS_GATE_GRANT);
    env_close(&e);
}

/* max_failure 5% of 20 members is 1: one failure (equal) does not trip,
 * the second (over) pauses the rollout with the reason; resume resumes. */
static void test_failure_threshold(void)
{
    struct env e;
    ds_gate_decision_t d;
    ds_gate_rollout_status_t st;

    env_dir(&e, "gate_trip");
    write_pilot(&e, 20);
    CHECK_INT(env_start(&e, RINGS_CONF(""), T0), 0);
    CHECK_INT(ds_gate_server_set(e.g, "a1", "agent", "7.0", 1, 0), 0);
    pilot_do(&e, 1, 1, "failure", T0);
    CHECK_INT(ds_gate_status(e.g, "agent", T0, &st), 0);
    CHECK_INT(st.paused, 0);
    CHECK_INT(st.failed, 1);
    CHECK_INT(ask(&e, "p-02", "6.0", T0, &d), DS_GATE_GRANT);
    CHECK_INT(report(&e, d.token, "p-02", "failure", "6.0", T0 + 1), 0);
    CHECK_INT(ds_gate_status(e.g, "agent", T0 + 1, &st), 0);
    CHECK_INT(st.paused, 1);
    CHECK_STR(st.reason, "ring pilot: 2 of 20 clients failed, over max_failure 5.00%");
    CHECK_INT(ask(&e, "p-03", "6.0", T0 + 2, &d), DS_GATE_NONE);
    CHECK_STR(d.reason,
              "rollout paused: ring pilot: 2 of 20 clients failed, over max_failure 5.00%");
    /* the pause survives a restart; resume lifts it */
    CHECK_INT(env_restart(&e, 1, T0 + 3), 0);
    CHECK_INT(ds_gate_server_set(e.g, "a1", "agent", "7.0", 1, 0), 0);
    CHECK_INT(ask(&e, "p-03", "6.0", T0 + 3, &d), DS_GATE_NONE);
    CHECK_INT(ds_gate_resume(e.g, "agent", T0 + 4), 0);
    CHECK_INT(ask(&e, "p-03", "6.0", T0 + 4, &d), DS_GATE_GRANT);
    CHECK_INT(ds_gate_pause(e.g, "agent", "change freeze", T0 + 5), 0);
    CHECK_INT(ask(&e, "p-04", "6.0", T0 + 5, &d), DS_GATE_NONE);
    CHECK_STR(d.reason, "rollout paused: change freeze");
    CHECK_INT(ds_gate_resume(e.g, "nosuch", T0), DS_ENOTFOUND);
    env_close(&e);
}

/* A ring's earliest open time, and promote (opens the next ring whatever
 * its thresholds and time). */
static void test_opens_and_promote(void)
{
    struct env e;
    ds_gate_decision_t d;
    char err[256];

    env_dir(&e, "gate_opens");
    write_pilot(&e, 3);
    CHECK_INT(env_start(&e, RINGS_CONF("opens = 2027-01-16T08:00:00Z\n"), T0), 0);
    CHECK_INT(ds_gate_server_set(e.g, "a1", "agent", "7.0", 1, 0), 0);
    pilot_do(&e, 1, 3, "success", T0);
    CHECK_INT(ask(&e, "r-1", "6.0", T0 + 60, &d), DS_GATE_NONE);
    CHECK_STR(d.reason, "ring closed until 2027-01-16T08:00:00Z");
    CHECK_INT(ask(&e, "r-1", "6.0", T0 + 86400, &d), DS_GATE_GRANT);
    CHECK_INT(ds_gate_promote(e.g, "agent", T0, err, sizeof(err)), DS_EUSAGE); /* all open */
    env_close(&e);

    env_dir(&e, "gate_promote");
    write_pilot(&e, 3);
    CHECK_INT(env_start(&e, RINGS_CONF(""), T0), 0);
    CHECK_INT(ds_gate_server_set(e.g, "a1", "agent", "7.0", 1, 0), 0);
    CHECK_INT(ask(&e, "r-1", "6.0", T0, &d), DS_GATE_NONE);
    CHECK_INT(ds_gate_promote(e.g, "agent", T0, err, sizeof(err)), 0); /* groupa */
    CHECK_INT(ask(&e, "r-1", "6.0", T0, &d), DS_GATE_GRANT);
    CHECK_INT(ds_gate_promote(e.g, "agent", T0, err, sizeof(err)), DS_EUSAGE);
    CHECK_STR(err, "rollout agent: every ring is open already");
    env_close(&e);
}

#define CHAIN_CONF                                                                                 \
    ENV_HEAD "[site a]\nclients = *\n"                                                             \
             "[server a1]\nurl = file:///srv/a1\nsite = a\n"                                       \
             "[package agent-5]\nproduct = agent\nversion = 5.0\npath = engines/agent-5.msi\n"     \
             "[package agent-6]\nproduct = agent\nversion = 6.0\npath = engines/agent-6.msi\n"     \
             "from = 5.0\nsoak = 24h\n"                                                            \
             "[package agent-7]\nproduct = agent\nversion = 7.0\npath = engines/agent-7.msi\n"     \
             "from = 6.0\n"                                                                        \
             "[package agent-8]\nproduct = agent\nversion = 8.0\npath = engines/agent-8.msi\n"     \
             "[ring all]\nmembers = *\n"                                                           \
             "[rollout agent]\nproduct = agent\nversion = 7.0\nrings = all\ntoken_file = tok\n"    \
             "max_failure = 100%\n"

/* A client too old for the target gets the next step; soak = holds it on a
 * step before the next; a version past the target is up to date. */
static void test_chain_soak(void)
{
    struct env e;
    ds_gate_decision_t d;
    static const char *const v[] = {"5.0", "6.0", "7.0"};

    CHECK_INT(env_open(&e, "gate_chain", CHAIN_CONF, T0), 0);
    for (int i = 0; i < 3; i++)
        CHECK_INT(ds_gate_server_set(e.g, "a1", "agent", v[i], 1, 0), 0);
    CHECK_INT(ask(&e, "c-1", "4.2", T0, &d), DS_GATE_GRANT);
    CHECK_STR(d.version, "5.0");
    CHECK_STR(d.path, "engines/agent-5.msi");
    CHECK_INT(report(&e, d.token, "c-1", "success", "5.0", T0 + 100), 0);
    CHECK_INT(ask(&e, "c-1", "5.0", T0 + 101, &d), DS_GATE_GRANT); /* 5.0: no soak */
    CHECK_STR(d.version, "6.0");
    CHECK_INT(report(&e, d.token, "c-1", "success", "6.0", T0 + 200), 0);
    CHECK_INT(ask(&e, "c-1", "6.0", T0 + 201, &d), DS_GATE_NONE);
    CHECK_STR(d.reason, "soaking on 6.0 until 2027-01-16T08:03:20Z");
    CHECK_INT(ask(&e, "c-1", "6.0", T0 + 200 + 86399, &d), DS_GATE_NONE);
    CHECK_INT(ask(&e, "c-1", "6.0", T0 + 200 + 86400, &d), DS_GATE_GRANT);
    CHECK_STR(d.version, "7.0");                             /* not 8.0: past the target */
    CHECK_INT(ask(&e, "c-2", "6.5", T0, &d), DS_GATE_GRANT); /* not a package: 7.0 from 6.0 */
    CHECK_STR(d.version, "7.0");
    CHECK_INT(ask(&e, "c-3", "7.0.1", T0, &d), DS_GATE_NONE);
    CHECK_STR(d.reason, "up to date");
    CHECK_INT(ds_version_cmp("7.10", "7.9"), 1);
    CHECK_INT(ds_version_cmp("7.1", "7.1.0"), -1);
    CHECK_INT(ds_version_cmp("07.1", "7.1"), 0);
    CHECK_INT(ds_version_ok("7.0-rc1+b2"), 1);
    CHECK_INT(ds_version_ok("1.0."), 0); /* an empty part */
    CHECK_INT(ds_version_ok("1..0"), 0);
    CHECK_INT(ds_version_ok("1.-0"), 0);
    env_close(&e);
}

#define RESTART_CONF                                                                               \
    ENV_HEAD "[site a]\nclients = *\nmax_concurrent_upgrades = 2\n"                                \
             "[server a1]\nurl = file:///srv/a1\nsite = a\n"                                       \
             "[package agent-7]\nproduct = agent\nversion = 7.0\npath = engines/agent-7.0.msi\n"   \
             "[ring all]\nmembers = *\n"                                                           \
             "[rollout agent]\nproduct = agent\nversion = 7.0\nrings = all\ntoken_file = tok\n"    \
             "max_failure = 100%\nlease = 10m\n"

/* Close and reopen the SQLite state mid-sequence: grants are remembered
 * (no slot granted twice), waiting clients keep their order (priority
 * included); what was not flushed is gone. */
static void test_restart(void)
{
    struct env e;
    ds_gate_decision_t d, g1;
    char err[256], name[16], tok1[64];

    CHECK_INT(env_open(&e, "gate_restart", RESTART_CONF, T0), 0);
    CHECK_INT(ds_gate_server_set(e.g, "a1", "agent", "7.0", 1, 0), 0);
    CHECK_INT(ask(&e, "c-1", "6.0", T0, &g1), DS_GATE_GRANT);
    snprintf(tok1, sizeof(tok1), "%s", g1.token);
    CHECK_INT(ask(&e, "c-2", "6.0", T0, &d), DS_GATE_GRANT);
    for (int i = 3; i <= 6; i++) {
        snprintf(name, sizeof(name), "c-%d", i);
        CHECK_INT(ask(&e, name, "6.0", T0 + i, &d), DS_GATE_WAIT);
        CHECK_INT(d.position, i - 2);
    }
    CHECK_INT(ds_gate_priority(e.g, "c-6", T0 + 7, err, sizeof(err)), 0);
    CHECK_INT(env_restart(&e, 1, T0 + 8), 0);
    CHECK_INT(ds_gate_server_set(e.g, "a1", "agent", "7.0", 1, 0), 0);
    CHECK_INT(used(&e, "site", "a"), 2);
    CHECK_INT(ask(&e, "c-7", "6.0", T0 + 9, &d), DS_GATE_WAIT); /* no third slot */
    CHECK_INT(d.position, 5);
    CHECK_INT(ask(&e, "c-1", "6.0", T0 + 9, &d), DS_GATE_GRANT); /* its grant, remembered */
    CHECK_STR(d.token, tok1);
    CHECK_INT(d.expires_in, 600 - 9);
    CHECK_INT(ask(&e, "c-6", "6.0", T0 + 9, &d), DS_GATE_WAIT);
    CHECK_INT(d.position, 1);
    CHECK_INT(ask(&e, "c-3", "6.0", T0 + 9, &d), DS_GATE_WAIT);
    CHECK_INT(d.position, 2);
    CHECK_INT(ask(&e, "c-5", "6.0", T0 + 9, &d), DS_GATE_WAIT);
    CHECK_INT(d.position, 4);
    /* unflushed: a report lost in a crash leaves the grant standing */
    CHECK_INT(report(&e, tok1, "c-1", "success", "7.0", T0 + 10), 0);
    CHECK_INT(env_restart(&e, 0, T0 + 11), 0);
    CHECK_INT(ds_gate_server_set(e.g, "a1", "agent", "7.0", 1, 0), 0);
    CHECK_INT(used(&e, "site", "a"), 2);
    CHECK_INT(report(&e, tok1, "c-1", "success", "7.0", T0 + 12), 0);
    CHECK_INT(ask(&e, "c-3", "6.0", T0 + 12, &d), DS_GATE_WAIT); /* the slot is c-6's */
    CHECK_INT(ask(&e, "c-6", "6.0", T0 + 12, &d), DS_GATE_GRANT);
    /* a lease running out while the gate was down: expired at start-up */
    CHECK_INT(env_restart(&e, 1, T0 + 2000), 0);
    CHECK_INT(used(&e, "global", NULL), 0);
    env_close(&e);
}

/* Configuration errors name the file, line and key. */
static void test_config_errors(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"[rollout r]\nproduct = agent\nmin_success = 101%\n",
         "test.conf:6: [rollout r] key 'min_success': expected a percentage"},
        {"[rollout r]\nproduct = agent\nversion = 7.0\nrings = x\ntoken_file = t\n",
         "test.conf:6: [rollout r] key 'version': no [package] has product = agent and version = "
         "7.0"},
        {"[ring x]\nmembers = a b*\n[package p]\nproduct = agent\nversion = 7.0\npath = a.msi\n"
         "[rollout r]\nproduct = agent\nversion = 7.0\nrings = x, y\ntoken_file = t\n",
         "test.conf:13: [rollout r] key 'rings': unknown ring 'y' (define it with [ring y])"},
        {"[ring x]\nmembers = a/b\n", "test.conf:5: [ring x] key 'members': invalid glob 'a/b'"},
        {"[ring x]\nmembers_file = nonexistent.txt\n",
         "test.conf:5: [ring x] key 'members_file': cannot read"},
        {"[ring x]\nsize = 4\n",
         "test.conf:4: [ring x]: missing required key 'members' or 'members_file'"},
        {"[package p]\nproduct = agent\nversion = 7.0\npath = ../a.msi\n",
         "test.conf:7: [package p] key 'path': expected a path relative to the store"},
        {"[package p]\nproduct = agent\nversion = 7.0\npath = a.msi\nfrom = 7.1\n",
         "test.conf:8: [package p] key 'from': '7.1' is not older than the package's version"},
        {"[site s]\nmax_upgrade_bandwidth = 0\n",
         "test.conf:5: [site s] key 'max_upgrade_bandwidth': a rate of 0 admits nobody"},
        {"[server s]\nurl = file:///x\nmax_concurrent_upgrades = 0\n",
         "test.conf:6: [server s] key 'max_concurrent_upgrades': expected a number from 1"},
        {"[ring x]\nopens = tomorrow\n", "test.conf:5: [ring x] key 'opens': expected a time"},
    };
    char text[2048], err[512], dir[4200];
    ds_config_t *cfg = NULL;

    snprintf(dir, sizeof(dir), "%s", check_tmpdir("gate_config"));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), ENV_HEAD "%s", cases[i].text);
        CHECK_INT(ds_config_parse(text, "test.conf", dir, &cfg, err, sizeof(err)), DS_ECONFIG);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0) {
            fprintf(stderr, "case %zu: got: %s\n", i, err);
            CHECK(0);
        }
    }
}

/* The parser keeps per-section key tables of at most MAX_KEYS (32) in
 * config_parse.c: the gate's keys must leave them under it. */
static void test_config_key_limit(void)
{
    const char *sect, *key, *last = "";
    size_t n = 0, most = 0;
    int gate_keys = 0;

    for (size_t i = 0; ds_config_key_at(i, &sect, &key) == 0; i++) {
        n = strcmp(sect, last) == 0 ? n + 1 : 1;
        last = sect;
        most = n > most ? n : most;
        gate_keys += strcmp(key, "max_concurrent_upgrades") == 0 || strcmp(sect, "rollout") == 0;
    }
    CHECK(most <= 32);
    CHECK_INT(gate_keys, 3 + 8); /* console, site, server; the rollout's keys */
}

int main(void)
{
    RUN(test_ring_progression);
    RUN(test_failure_threshold);
    RUN(test_opens_and_promote);
    RUN(test_chain_soak);
    RUN(test_restart);
    RUN(test_config_errors);
    RUN(test_config_key_limit);
    return CHECK_DONE();
}

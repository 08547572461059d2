/*
 * The upgrade gate's admission logic (distsync/gate.h) on a simulated
 * clock, over a real SQLite state file: caps at every level under
 * randomized load (an invariant checker over thousands of clients), server
 * choice and spares, leases, priority, tokens of other clients.
 */
#include <errno.h>
#include <sqlite3.h>

#include "distsync/error.h"
#include "distsync/events.h"
#include "distsync/freeze.h"
#include "gate_env.h"

#define T0 1800000000LL /* 2027-01-15 */

#define ONE_SITE                                                                                   \
    ENV_HEAD "[site a]\nclients = a-*\n"                                                           \
             "[server a1]\nurl = file:///srv/a1\nsite = a\nmax_concurrent_upgrades = 1\n"          \
             "[server a2]\nurl = file:///srv/a2\nsite = a\nmax_concurrent_upgrades = 1\n"          \
             "[package agent-7]\nproduct = agent\nversion = 7.0\npath = engines/agent-7.0.msi\n"   \
             "[ring all]\nmembers = *\n"                                                           \
             "[rollout agent]\nproduct = agent\nversion = 7.0\nrings = all\ntoken_file = tok\n"    \
             "lease = 10m\nmax_failure = 100%\n"

static void hold_all(struct env *e, const char *version)
{
    for (size_t i = 0; i < e->cfg->nservers; i++)
        CHECK_INT(ds_gate_server_set(e->g, e->cfg->servers[i].name, "agent", version, 1, 0), 0);
}

/* The grant names the first server of the site holding the package, not
 * frozen, with a free slot; a spare takes over; none holding: wait. */
static void test_server_choice(void)
{
    struct env e;
    ds_gate_decision_t d;

    CHECK_INT(env_open(&e, "gate_server", ONE_SITE, T0), 0);
    CHECK_INT(ask(&e, "a-1", "6.0", T0, &d), DS_GATE_WAIT); /* nothing staged */
    CHECK(strstr(d.reason, "no server of site a holds agent 7.0 verified") != NULL);
    CHECK_INT(d.position, 1);
    hold_all(&e, "7.0");
    CHECK_INT(ask(&e, "a-1", "6.0", T0, &d), DS_GATE_GRANT);
    CHECK_STR(d.server, "a1");
    CHECK_STR(d.path, "engines/agent-7.0.msi");
    CHECK_STR(d.version, "7.0");
    CHECK_INT(d.expires_in, 600);
    CHECK_INT(ask(&e, "a-2", "6.0", T0, &d), DS_GATE_GRANT); /* a1 full: the spare */
    CHECK_STR(d.server, "a2");
    CHECK_INT(ask(&e, "a-3", "6.0", T0, &d), DS_GATE_WAIT);
    CHECK(strstr(d.reason, "frozen or at max_concurrent_upgrades") != NULL);
    /* a1 frozen: its slot freed, a-3 still goes to a2 once free */
    CHECK_INT(ds_gate_server_set(e.g, "a1", "agent", "7.0", 1, 1), 0);
    CHECK_INT(ask(&e, "a-1", "6.0", T0, &d), DS_GATE_GRANT); /* its grant stands */
    CHECK_INT(report(&e, d.token, "a-1", "success", "7.0", T0 + 1), 0);
    CHECK_INT(ask(&e, "a-3", "6.0", T0 + 1, &d), DS_GATE_WAIT); /* a1 frozen, a2 full */
    CHECK_INT(ask(&e, "a-2", "6.0", T0 + 1, &d), DS_GATE_GRANT);
    CHECK_INT(report(&e, d.token, "a-2", "failure", "6.0", T0 + 2), 0);
    CHECK_INT(ask(&e, "a-3", "6.0", T0 + 2, &d), DS_GATE_GRANT);
    CHECK_STR(d.server, "a2");
    CHECK_INT(ask(&e, "a-9", "7.0", T0 + 2, &d), DS_GATE_NONE);
    CHECK_STR(d.reason, "up to date");
    env_close(&e);
}

/* The servers' facts from the catalog: a server holds the package when its
 * last-known manifest has the store's current content at the path; a
 * frozen one (distsync freeze) is passed over for the spare. */
static void test_refresh_from_catalog(void)
{
    struct env e;
    ds_catalog_t *cat = NULL;
    ds_gate_decision_t d;
    ds_gate_rollout_status_t st;
    uint8_t sha[DS_SHA256_LEN] = {7}, old[DS_SHA256_LEN] = {6}, chunk[DS_CATALOG_CHUNK_REC] = {0};
    ds_file_row_t row = {.path = "engines/agent-7.0.msi", .klass = "engines", .size = 5};
    char err[512];

    CHECK_INT(env_open(&e, "gate_refresh", ONE_SITE, T0), 0);
    CHECK_INT(ds_catalog_open(e.db, &cat, err, sizeof(err)), 0);
    chunk[DS_XXH128_LEN] = 5;
    CHECK_INT(ds_catalog_content_put(cat, sha, 5, chunk, 1, &row.content_id, NULL), 0);
    CHECK_INT(ds_catalog_file_put(cat, &row), 0);
    CHECK_INT(ds_gate_refresh(e.g, cat, T0), 0);
    CHECK_INT(ask(&e, "a-1", "6.0", T0, &d), DS_GATE_WAIT); /* on no server yet */
    CHECK_INT(ds_gate_flush(e.g), 0); /* the state holds the write lock until then */
    /* a1 holds an older content at the path, a2 the current one */
    CHECK_INT(ds_catalog_server_manifest_set(cat, "a1", row.path, old, 5, T0), 0);
    CHECK_INT(ds_catalog_server_manifest_set(cat, "a2", row.path, sha, 5, T0), 0);
    CHECK_INT(ds_gate_refresh(e.g, cat, T0), 0);
    CHECK_INT(ds_gate_status(e.g, "agent", T0, &st), 0);
    CHECK_INT(st.staged, 1);
    CHECK_INT(st.servers, 2);
    CHECK_INT(ask(&e, "a-1", "6.0", T0, &d), DS_GATE_GRANT);
    CHECK_STR(d.server, "a2");
    CHECK_INT(report(&e, d.token, "a-1", "success", "7.0", T0), 0);
    CHECK_INT(ds_gate_flush(e.g), 0);
    /* both current, a1 first; frozen, a2 serves */
    CHECK_INT(ds_catalog_server_manifest_set(cat, "a1", row.path, sha, 5, T0), 0);
    CHECK_INT(ds_freeze_put(cat, "a1", 0, "disk swap", T0), 0);
    CHECK_INT(ds_gate_refresh(e.g, cat, T0), 0);
    CHECK_INT(ask(&e, "a-2", "6.0", T0, &d), DS_GATE_GRANT);
    CHECK_STR(d.server, "a2");
    CHECK_INT(ds_gate_flush(e.g), 0);
    CHECK_INT(ds_freeze_del(cat, "a1"), 0);
    CHECK_INT(ds_gate_refresh(e.g, cat, T0), 0);
    CHECK_INT(ask(&e, "a-3", "6.0", T0, &d), DS_GATE_GRANT);
    CHECK_STR(d.server, "a1");
    ds_catalog_free(cat);
    env_close(&e);
}

/* Leases: no heartbeat, the slot returns and the client counts expired; a
 * heartbeat extends; a late report is still recorded. */
static void test_lease(void)
{
    struct env e;
    ds_gate_decision_t d, d2;
    ds_gate_rollout_status_t st;
    unsigned exp = 0;
    char err[256], tok[64];

    CHECK_INT(env_open(&e, "gate_lease", ONE_SITE, T0), 0);
    hold_all(&e, "7.0");
    CHECK_INT(ask(&e, "a-1", "6.0", T0, &d), DS_GATE_GRANT);
    snprintf(tok, sizeof(tok), "%s", d.token);
    CHECK_INT(ds_gate_heartbeat(e.g, tok, "a-1", T0 + 599, &exp, err, sizeof(err)), 0);
    CHECK_INT(exp, 600);
    CHECK_INT(ask(&e, "a-1", "6.0", T0 + 1000, &d2), DS_GATE_GRANT); /* same grant */
    CHECK_STR(d2.token, tok);
    CHECK_INT(d2.expires_in, 199);
    CHECK_INT(used(&e, "global", NULL), 1);
    CHECK_INT(ds_gate_status(e.g, "agent", T0 + 1199, &st), 0); /* 599 + 600: expired */
    CHECK_INT(st.expired, 1);
    CHECK_INT(st.granted, 0);
    CHECK_INT(used(&e, "global", NULL), 0);
    CHECK_INT(used(&e, "server", "a1"), 0);
    CHECK_INT(ds_gate_heartbeat(e.g, tok, "a-1", T0 + 1200, &exp, err, sizeof(err)), DS_ENOTFOUND);
    CHECK(strstr(err, "expired") != NULL);
    CHECK_INT(report(&e, tok, "a-1", "success", "7.0", T0 + 1300), 0); /* late */
    CHECK_INT(ds_gate_status(e.g, "agent", T0 + 1300, &st), 0);
    CHECK_INT(st.expired, 0);
    CHECK_INT(st.succeeded, 1);
    CHECK_INT(report(&e, tok, "a-1", "success", "7.0", T0 + 1300), DS_EUSAGE); /* twice */
    CHECK_INT(ds_gate_flush(e.g), 0);
    { /* the history: expired, then the late success */
        sqlite3 *db = NULL;
        sqlite3_stmt *q = NULL;
        char got[256] = "";

        CHECK_INT(sqlite3_open(e.db, &db), SQLITE_OK);
        CHECK_INT(sqlite3_prepare_v2(db,
                                     "SELECT group_concat(client || ' ' || outcome || ' ' || late"
                                     " || ' ' || at, ', ') FROM gate_outcome",
                                     -1, &q, NULL),
                  SQLITE_OK);
        if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0) != NULL)
            snprintf(got, sizeof(got), "%s", (const char *)sqlite3_column_text(q, 0));
        CHECK_STR(got, "a-1 expired 0 1800001199, a-1 success 1 1800001300");
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
    env_close(&e);
}

/* A report or heartbeat with another client's token is refused and
 * changes nothing; unknown tokens and bad outcomes too. */
static void test_token_of_other_client(void)
{
    struct env e;
    ds_gate_decision_t d;
    ds_gate_rollout_status_t st;
    char err[256];

    CHECK_INT(env_open(&e, "gate_token", ONE_SITE, T0), 0);
    hold_all(&e, "7.0");
    CHECK_INT(ask(&e, "a-1", "6.0", T0, &d), DS_GATE_GRANT);
    CHECK_INT(report(&e, d.token, "a-2", "success", "7.0", T0), -EACCES);
    CHECK_INT(ds_gate_heartbeat(e.g, d.token, "a-2", T0, NULL, err, sizeof(err)), -EACCES);
    CHECK(strstr(err, "another client") != NULL);
    CHECK_INT(report(&e, "00112233445566778899aabbccddeeff", "a-1", "success", "7.0", T0),
              DS_ENOTFOUND);
    CHECK_INT(report(&e, d.token, "a-1", "maybe", "7.0", T0), DS_EUSAGE);
    CHECK_INT(ds_gate_status(e.g, "agent", T0, &st), 0);
    CHECK_INT(st.granted, 1);
    CHECK_INT(st.succeeded, 0);
    CHECK_INT(used(&e, "server", "a1"), 1);
    CHECK_INT(report(&e, d.token, "a-1", "success", "7.0", T0), 0);
    CHECK_INT(used(&e, "server", "a1"), 0);
    /* bad requests: no state change, an error saying what */
    CHECK_INT(ask(&e, "a 1", "6.0", T0, NULL), DS_EUSAGE);
    {
        ds_gate_request_t req = {.client = "zz-1", .product = "agent", .version = "6.0"};

        CHECK_INT(ds_gate_request(e.g, &req, T0, &d, err, sizeof(err)), DS_EUSAGE);
        CHECK(strstr(err, "has no site") != NULL);
        req.product = "other";
        CHECK_INT(ds_gate_request(e.g, &req, T0, &d, err, sizeof(err)), DS_EUSAGE);
        CHECK(strstr(err, "no rollout of product 'other'") != NULL);
    }
    env_close(&e);
}

/* priority moves a waiting client to the front of its queue. */
static void test_priority(void)
{
    struct env e;
    ds_gate_decision_t d, g1;
    char err[256];

    CHECK_INT(env_open(&e, "gate_prio", ONE_SITE "[site b]\nclients = b-*\n", T0), 0);
    CHECK_INT(ds_gate_server_set(e.g, "a1", "agent", "7.0", 1, 0), 0);
    CHECK_INT(ask(&e, "a-1", "6.0", T0, &g1), DS_GATE_GRANT);
    CHECK_INT(ask(&e, "a-2", "6.0", T0, &d), DS_GATE_WAIT);
    CHECK_INT(d.position, 1);
    CHECK_INT(ask(&e, "a-3", "6.0", T0, &d), DS_GATE_WAIT);
    CHECK_INT(d.position, 2);
    CHECK_INT(ask(&e, "a-4", "6.0", T0, &d), DS_GATE_WAIT);
    CHECK_INT(d.position, 3);
    CHECK_INT(ds_gate_priority(e.g, "a-4", T0, err, sizeof(err)), 0);
    CHECK_INT(ds_gate_priority(e.g, "a-1", T0, err, sizeof(err)), DS_ENOTFOUND); /* granted */
    CHECK_INT(ask(&e, "a-4", "6.0", T0 + 1, &d), DS_GATE_WAIT);
    CHECK_INT(d.position, 1);
    CHECK_INT(ask(&e, "a-2", "6.0", T0 + 1, &d), DS_GATE_WAIT);
    CHECK_INT(d.position, 2);
    CHECK_INT(report(&e, g1.token, "a-1", "success", "7.0", T0 + 2), 0);
    CHECK_INT(ask(&e, "a-2", "6.0", T0 + 2, &d), DS_GATE_WAIT); /* the slot is a-4's */
    CHECK_INT(ask(&e, "a-4", "6.0", T0 + 3, &g1), DS_GATE_GRANT);
    /* a waiting client silent for a lease period leaves the queue */
    CHECK_INT(ask(&e, "a-5", "6.0", T0 + 3, &d), DS_GATE_WAIT);
    CHECK_INT(d.position, 3);
    CHECK_INT(ask(&e, "a-5", "6.0", T0 + 500, &d), DS_GATE_WAIT);
    CHECK_INT(ds_gate_heartbeat(e.g, g1.token, "a-4", T0 + 500, NULL, err, sizeof(err)), 0);
    CHECK_INT(ask(&e, "a-5", "6.0", T0 + 700, &d), DS_GATE_WAIT);
    CHECK_INT(d.position, 1); /* a-2 and a-3 last asked at T0 + 2 and T0 */
    env_close(&e);
}

/* --- randomized caps with an invariant checker --- */

#define NCLIENT 3000
#define NOPS    40000

struct mgrant {
    char token[DS_GATE_TOKEN_LEN + 1];
    int client, server;
    int64_t exp;
};

struct model {
    struct mgrant g[512];
    int n;
    int holds[8], frozen[8];
};

static const char *const srv[] = {"a1", "a2", "a3", "b1", "b2", "c1", "c2"};
static const char srv_site[] = {'a', 'a', 'a', 'b', 'b', 'c', 'c'};
static const unsigned srv_cap[] = {8, 8, 10, 10, 10, 40, 0};

#define CAPS_CONF                                                                                  \
    ENV_HEAD "max_concurrent_upgrades = 50\nmax_upgrade_bandwidth = 400Mbit\n"                     \
             "[site a]\nclients = a-*\nmax_concurrent_upgrades = 20\n"                             \
             "max_upgrade_bandwidth = 150Mbit\n"                                                   \
             "[site b]\nclients = b-*\nmax_concurrent_upgrades = 15\n"                             \
             "[site c]\nclients = c-*\n"                                                           \
             "[server a1]\nurl = file:///s/a1\nsite = a\nmax_concurrent_upgrades = 8\n"            \
             "[server a2]\nurl = file:///s/a2\nsite = a\nmax_concurrent_upgrades = 8\n"            \
             "[server a3]\nurl = file:///s/a3\nsite = a\nmax_concurrent_upgrades = 10\n"           \
             "[server b1]\nurl = file:///s/b1\nsite = b\nmax_concurrent_upgrades = 10\n"           \
             "[server b2]\nurl = file:///s/b2\nsite = b\nmax_concurrent_upgrades = 10\n"           \
             "[server c1]\nurl = file:///s/c1\nsite = c\nmax_concurrent_upgrades = 40\n"           \
             "[server c2]\nurl = file:///s/c2\nsite = c\n"                                         \
             "[package agent-7]\nproduct = agent\nversion = 7.0\npath = engines/a.msi\n"           \
             "[ring all]\nmembers = *\n"                                                           \
             "[rollout agent]\nproduct = agent\nversion = 7.0\nrings = all\ntoken_file = tok\n"    \
             "lease = 10m\nclient_rate = 10Mbit\nmax_failure = 100%\n"

static void client_name(int i, char *buf, size_t len)
{
    snprintf(buf, len, "%c-%04d", "abc"[i % 3], i);
}

static int srv_index(const char *name)
{
    for (int i = 0; i < 7; i++)
        if (strcmp(srv[i], name) == 0)
            return i;
    return -1;
}

static void model_expire(struct model *m, int64_t now)
{
    for (int i = 0; i < m->n;)
        if (m->g[i].exp <= now)
            m->g[i] = m->g[--m->n];
        else
            i++;
}

static int model_find(const struct model *m, const char *token)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->g[i].token, token) == 0)
            return i;
    return -1;
}

/* Counts from the model, compared with the gate's and with every cap. */
static int check_invariants(struct env *e, const struct model *m)
{
    unsigned n_srv[7] = {0}, n_site[3] = {0}, total = (unsigned)m->n;
    static const unsigned site_cap[3] = {20, 15, 0};
    int bad = 0;
    char name[2] = "a";

    for (int i = 0; i < m->n; i++) {
        n_srv[m->g[i].server]++;
        n_site[srv_site[m->g[i].server] - 'a']++;
    }
    bad |= total > 50 || total * 10 > 400 || used(e, "global", NULL) != total;
    for (int s = 0; s < 7; s++)
        bad |= (srv_cap[s] && n_srv[s] > srv_cap[s]) || used(e, "server", srv[s]) != n_srv[s];
    for (int s = 0; s < 3; s++) {
        name[0] = (char)('a' + s);
        bad |= (site_cap[s] && n_site[s] > site_cap[s]) || used(e, "site", name) != n_site[s];
    }
    bad |= n_site[0] * 10 > 150; /* site a's bandwidth: 15 grants of 10Mbit */
    return bad;
}

/* The grant of d for client ci was the right server: in its site, holding,
 * not frozen, and every server before it in the site full or unusable. */
static int check_choice(struct env *e, const struct model *m, int ci, const ds_gate_decision_t *d)
{
    int s = srv_index(d->server);

    if (s < 0 || srv_site[s] != "abc"[ci % 3] || !m->holds[s] || m->frozen[s])
        return 1;
    for (int k = 0; k < s; k++)
        if (srv_site[k] == srv_site[s] && m->holds[k] && !m->frozen[k] &&
            (srv_cap[k] == 0 || used(e, "server", srv[k]) < srv_cap[k]))
            return 1;
    return 0;
}

static void test_caps_random(void)
{
    struct env e;
    struct model m = {.n = 0};
    ds_gate_decision_t d;
    ds_gate_rollout_status_t st;
    int64_t now = T0;
    unsigned seed = 14, grants = 0, waits = 0, bad = 0, badchoice = 0, restarts = 0;
    char name[32], err[256];

    CHECK_INT(env_open(&e, "gate_caps", CAPS_CONF, now), 0);
    for (int s = 0; s < 7; s++) {
        m.holds[s] = 1;
        CHECK_INT(ds_gate_server_set(e.g, srv[s], "agent", "7.0", 1, 0), 0);
    }
    for (int op = 0; op < NOPS; op++) {
        int r = (int)(rand_r(&seed) % 100), ci = (int)(rand_r(&seed) % NCLIENT), i;

        client_name(ci, name, sizeof(name));
        if (r < 55) {
            int kind = ask(&e, name, "6.0", now, &d);

            model_expire(&m, now);
            if (kind == DS_GATE_GRANT && (i = model_find(&m, d.token)) < 0) {
                snprintf(m.g[m.n].token, sizeof(m.g[0].token), "%s", d.token);
                m.g[m.n].client = ci;
                m.g[m.n].server = srv_index(d.server);
                m.g[m.n].exp = now + d.expires_in;
                badchoice += check_choice(&e, &m, ci, &d);
                m.n++;
                grants++;
            }
            waits += kind == DS_GATE_WAIT;
        } else if (r < 72 && m.n > 0) {
            i = (int)(rand_r(&seed) % (unsigned)m.n);
            model_expire(&m, now);
            if (i < m.n) {
                client_name(m.g[i].client, name, sizeof(name));
                CHECK_INT(report(&e, m.g[i].token, name, r & 1 ? "success" : "failure",
                                 r & 1 ? "7.0" : "6.0", now),
                          0);
                m.g[i] = m.g[--m.n];
            }
        } else if (r < 82 && m.n > 0) {
            i = (int)(rand_r(&seed) % (unsigned)m.n);
            model_expire(&m, now);
            if (i < m.n) {
                client_name(m.g[i].client, name, sizeof(name));
                CHECK_INT(ds_gate_heartbeat(e.g, m.g[i].token, name, now, NULL, err, sizeof(err)),
                          0);
                m.g[i].exp = now + 600;
            }
        } else if (r < 86) {
            int s = (int)(rand_r(&seed) % 7);

            m.frozen[s] = rand_r(&seed) % 4 == 0;
            m.holds[s] = rand_r(&seed) % 6 != 0;
            CHECK_INT(ds_gate_server_set(e.g, srv[s], "agent", "7.0", m.holds[s], m.frozen[s]), 0);
        } else if (r < 88) {
            (void)ds_gate_priority(e.g, name, now, err, sizeof(err));
        } else {
            now += rand_r(&seed) % 90;
        }
        if (op % 7919 == 7918) { /* a restart: facts are the caller's to set again */
            CHECK_INT(env_restart(&e, 1, now), 0);
            for (int s = 0; s < 7; s++)
                CHECK_INT(ds_gate_server_set(e.g, srv[s], "agent", "7.0", m.holds[s], m.frozen[s]),
                          0);
            restarts++;
        }
        CHECK_INT(ds_gate_status(e.g, "agent", now, &st), 0); /* expiries at now */
        model_expire(&m, now);
        if (check_invariants(&e, &m) && bad++ < 3)
            fprintf(stderr, "op %d: invariant broken (%d grants in the model)\n", op, m.n);
        if (op % 64 == 0)
            CHECK_INT(ds_gate_flush(e.g), 0);
    }
    CHECK_INT(bad, 0);
    CHECK_INT(badchoice, 0);
    CHECK(grants > 1000); /* the load exercised the caps */
    CHECK(waits > 1000);
    CHECK_INT(restarts, 5);
    printf("     %u grants, %u waits, %u restarts over %d operations\n", grants, waits, restarts,
           NOPS);
    env_close(&e);
}

int main(void)
{
    RUN(test_server_choice);
    RUN(test_refresh_from_catalog);
    RUN(test_lease);
    RUN(test_token_of_other_client);
    RUN(test_priority);
    RUN(test_caps_random);
    return CHECK_DONE();
}

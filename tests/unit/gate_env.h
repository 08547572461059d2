/*
 * The upgrade gate's unit tests: a configuration from text, a gate over a
 * real SQLite state file in a scratch directory, and close + reopen of
 * that file (a restart).
 */
#ifndef DS_TEST_GATE_ENV_H
#define DS_TEST_GATE_ENV_H

#include "check.h"
#include "distsync/config.h"
#include "distsync/gate.h"

struct env {
    ds_config_t *cfg;
    ds_gate_t *g;
    char dir[4096], db[4200];
};

/* The head every test configuration starts with: the console and an
 * enrolment token file that config parsing does not read. */
#define ENV_HEAD "[console]\nstore = /nonexistent/store\nstate = /nonexistent/state\n"

static inline int env_gate(struct env *e, int64_t now)
{
    ds_gate_state_t st;
    char err[512];
    int rc = ds_gate_state_sqlite(e->db, &st, err, sizeof(err));

    if (rc == 0)
        rc = ds_gate_new(e->cfg, &st, now, &e->g, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "gate: %s\n", err);
    return rc;
}

/* A fresh scratch directory for e (files a configuration names go there). */
static inline void env_dir(struct env *e, const char *name)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "%s", check_tmpdir(name));
    snprintf(e->db, sizeof(e->db), "%s/catalog.db", e->dir);
}

/* Parses text (relative paths against e's directory) and opens a gate on
 * the state file there. */
static inline int env_start(struct env *e, const char *text, int64_t now)
{
    char err[512];
    int rc = ds_config_parse(text, "test.conf", e->dir, &e->cfg, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "config: %s\n", err);
        return rc;
    }
    return env_gate(e, now);
}

static inline int env_open(struct env *e, const char *name, const char *text, int64_t now)
{
    env_dir(e, name);
    return env_start(e, text, now);
}

/* A restart: flushes (when flush is set), frees the gate and its state
 * connection, and opens both again on the same file. */
static inline int env_restart(struct env *e, int flush, int64_t now)
{
    if (flush && ds_gate_flush(e->g) < 0)
        return -1;
    ds_gate_free(e->g);
    e->g = NULL;
    return env_gate(e, now);
}

static inline void env_close(struct env *e)
{
    ds_gate_free(e->g);
    ds_config_free(e->cfg);
}

/* One request; returns the decision's kind, or the error code. */
static inline int ask(struct env *e, const char *client, const char *version, int64_t now,
                      ds_gate_decision_t *d)
{
    ds_gate_request_t req = {.client = client, .product = "agent", .version = version};
    ds_gate_decision_t scratch;
    char err[256];
    int rc = ds_gate_request(e->g, &req, now, d ? d : &scratch, err, sizeof(err));

    return rc < 0 ? rc : (int)(d ? d : &scratch)->kind;
}

static inline int report(struct env *e, const char *token, const char *client, const char *outcome,
                         const char *version, int64_t now)
{
    char err[256];

    return ds_gate_report(e->g, token, client, outcome, version, NULL, now, err, sizeof(err));
}

static inline unsigned used(struct env *e, const char *level, const char *name)
{
    unsigned u = 0, cap = 0;
    uint64_t bu, bc;

    if (ds_gate_usage(e->g, level, name, &u, &cap, &bu, &bc) < 0)
        return 99999;
    return u;
}

#endif

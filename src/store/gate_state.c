/*
 * The upgrade gate's state in the catalog (gate_state.h; tables
 * gate_client, gate_outcome, gate_rollout of migration 6), and the
 * per-server fact the gate's server choice needs (ds_catalog_server_holds).
 *
 * Puts are batched: the first one after a flush opens a transaction
 * (BEGIN IMMEDIATE), flush commits it. Statements are compiled once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog_int.h"
#include "distsync/gate_state.h"

enum { Q_ROW, Q_OUTCOME, Q_CTL, Q__N };

struct sq {
    ds_catalog_t *cat;
    sqlite3_stmt *st[Q__N];
};

static const char *const sql[Q__N] = {
    "INSERT OR REPLACE INTO gate_client(rollout, client, status, site, server, from_version,"
    " version, token, seq, granted_at, expires_at, at, reported, detail)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    "INSERT INTO gate_outcome(rollout, client, version, outcome, late, server, at, detail)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    "INSERT OR REPLACE INTO gate_rollout(rollout, paused, reason, opened, at)"
    " VALUES(?1, ?2, ?3, ?4, ?5)",
};

static const char *col(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);

    return s ? s : "";
}

static int load_ctl(void *ctx, ds_gate_ctl_fn fn, void *arg)
{
    struct sq *q = ctx;
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(q->cat,
                              "SELECT rollout, paused, reason, opened, at FROM gate_rollout", &st);

    while (rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        ds_gate_ctl_t c = {.rollout = col(st, 0),
                           .paused = sqlite3_column_int(st, 1),
                           .reason = col(st, 2),
                           .promoted = sqlite3_column_int(st, 3),
                           .at = sqlite3_column_int64(st, 4)};

        rc = fn(arg, &c);
    }
    if (rc == SQLITE_DONE)
        rc = 0;
    else if (rc > 0)
        rc = ds__catalog_err(q->cat, q->cat->db, rc, "reading the gate's rollouts");
    sqlite3_finalize(st);
    return rc;
}

static int load(void *ctx, ds_gate_row_fn fn, ds_gate_ctl_fn ctl, void *arg)
{
    struct sq *q = ctx;
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(q->cat,
                              "SELECT rollout, client, status, site, server, from_version, version,"
                              " token, seq, granted_at, expires_at, at, reported, detail"
                              " FROM gate_client",
                              &st);

    while (rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        ds_gate_row_t r = {.rollout = col(st, 0),
                           .client = col(st, 1),
                           .status = (ds_gate_status_t)sqlite3_column_int(st, 2),
                           .site = col(st, 3),
                           .server = col(st, 4),
                           .from = col(st, 5),
                           .version = col(st, 6),
                           .token = col(st, 7),
                           .seq = sqlite3_column_int64(st, 8),
                           .granted_at = sqlite3_column_int64(st, 9),
                           .expires_at = sqlite3_column_int64(st, 10),
                           .at = sqlite3_column_int64(st, 11),
                           .reported = sqlite3_column_int(st, 12),
                           .detail = col(st, 13)};

        if (r.status > DS_GATE_ST_EXPIRED)
            r.status = DS_GATE_ST_IDLE;
        rc = fn(arg, &r);
    }
    if (rc == SQLITE_DONE)
        rc = 0;
    else if (rc > 0)
        rc = ds__catalog_err(q->cat, q->cat->db, rc, "reading the gate's clients");
    sqlite3_finalize(st);
    return rc == 0 ? load_ctl(ctx, ctl, arg) : rc;
}

/* The cached statement i inside the batch's transaction. */
static sqlite3_stmt *stmt(struct sq *q, int i, int *rc)
{
    *rc = 0;
    if (!ds_catalog_in_txn(q->cat) && (*rc = ds_catalog_begin(q->cat)) < 0)
        return NULL;
    if (q->st[i] == NULL && (*rc = ds__catalog_prep(q->cat, sql[i], &q->st[i])) < 0)
        return NULL;
    sqlite3_reset(q->st[i]);
    sqlite3_clear_bindings(q->st[i]);
    return q->st[i];
}

static int step(struct sq *q, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : ds__catalog_err(q->cat, q->cat->db, rc, what);
}

#define TEXT(st, i, s) sqlite3_bind_text(st, i, (s) ? (s) : "", -1, SQLITE_STATIC)

static int put_row(void *ctx, const ds_gate_row_t *r)
{
    struct sq *q = ctx;
    int rc;
    sqlite3_stmt *st = stmt(q, Q_ROW, &rc);

    if (st == NULL)
        return rc;
    TEXT(st, 1, r->rollout);
    TEXT(st, 2, r->client);
    sqlite3_bind_int(st, 3, (int)r->status);
    TEXT(st, 4, r->site);
    TEXT(st, 5, r->server);
    TEXT(st, 6, r->from);
    TEXT(st, 7, r->version);
    TEXT(st, 8, r->token);
    sqlite3_bind_int64(st, 9, r->seq);
    sqlite3_bind_int64(st, 10, r->granted_at);
    sqlite3_bind_int64(st, 11, r->expires_at);
    sqlite3_bind_int64(st, 12, r->at);
    sqlite3_bind_int(st, 13, r->reported);
    TEXT(st, 14, r->detail);
    return step(q, st, "recording a gate client");
}

static int put_outcome(void *ctx, const ds_gate_row_t *r, const char *outcome, int late)
{
    struct sq *q = ctx;
    int rc;
    sqlite3_stmt *st = stmt(q, Q_OUTCOME, &rc);

    if (st == NULL)
        return rc;
    TEXT(st, 1, r->rollout);
    TEXT(st, 2, r->client);
    TEXT(st, 3, r->version);
    TEXT(st, 4, outcome);
    sqlite3_bind_int(st, 5, late);
    TEXT(st, 6, r->server);
    sqlite3_bind_int64(st, 7, r->at);
    TEXT(st, 8, r->detail);
    return step(q, st, "recording an upgrade outcome");
}

static int put_ctl(void *ctx, const ds_gate_ctl_t *c)
{
    struct sq *q = ctx;
    int rc;
    sqlite3_stmt *st = stmt(q, Q_CTL, &rc);

    if (st == NULL)
        return rc;
    TEXT(st, 1, c->rollout);
    sqlite3_bind_int(st, 2, c->paused);
    TEXT(st, 3, c->reason);
    sqlite3_bind_int(st, 4, c->promoted);
    sqlite3_bind_int64(st, 5, c->at);
    return step(q, st, "recording a rollout's controls");
}

static int flush(void *ctx)
{
    struct sq *q = ctx;
    int rc;

    if (!ds_catalog_in_txn(q->cat))
        return 0;
    rc = ds_catalog_commit(q->cat);
    if (rc < 0)
        (void)ds_catalog_rollback(q->cat);
    return rc;
}

static void sq_close(void *ctx)
{
    struct sq *q = ctx;

    if (q == NULL)
        return;
    for (int i = 0; i < Q__N; i++)
        sqlite3_finalize(q->st[i]);
    ds_catalog_free(q->cat); /* rolls back what was not flushed */
    free(q);
}

int ds_gate_state_sqlite(const char *path, ds_gate_state_t *out, char *err, size_t errlen)
{
    struct sq *q = calloc(1, sizeof(*q));
    int rc;

    memset(out, 0, sizeof(*out));
    if (q == NULL)
        return ds_errf(err, errlen, DS_ENOMEM, "%s: out of memory", path);
    rc = ds_catalog_open(path, &q->cat, err, errlen);
    if (rc < 0) {
        free(q);
        return rc;
    }
    *out = (ds_gate_state_t){.ctx = q,
                             .load = load,
                             .load_ctl = load_ctl,
                             .put_row = put_row,
                             .put_outcome = put_outcome,
                             .put_ctl = put_ctl,
                             .flush = flush,
                             .close = sq_close};
    return 0;
}

int ds_catalog_server_holds(ds_catalog_t *cat, const char *server, const char *path, int *holds)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(cat,
                              "SELECT 1 FROM server_file sf JOIN server s ON s.id = sf.server_id"
                              " JOIN file f ON f.path = sf.path"
                              " JOIN content c ON c.id = f.content_id"
                              " WHERE s.name = ?1 AND sf.path = ?2 AND sf.sha256 = c.sha256",
                              &st);

    *holds = 0;
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, server, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    *holds = rc == SQLITE_ROW;
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE
             ? 0
             : ds__catalog_err(cat, cat->db, rc, "reading a server's copy of a package");
    sqlite3_finalize(st);
    return rc;
}

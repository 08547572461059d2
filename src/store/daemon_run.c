/*
 * The daemon's ended runs (tables daemon_run and daemon_run_server,
 * migrations 8 and 9): GET /v1/runs lists them again after a restart, with
 * their classes and each server's report.
 */
#include <stdlib.h>
#include <string.h>

#include "catalog_int.h"
#include "distsync/error.h"
#include "distsync/events.h"

static int put_server(ds_catalog_t *cat, int64_t run, const ds_drun_rec_srv_t *s)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(cat,
                              "INSERT INTO daemon_run_server(run, server, result, files_done,"
                              " files_total, bytes_done, bytes_total, bytes_wire, rc, report)"
                              " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                              &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, run);
    ds__catalog_bind_text(st, 2, s->server);
    ds__catalog_bind_text(st, 3, s->result);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)s->files_done);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)s->files_total);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)s->bytes_done);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)s->bytes_total);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)s->bytes_wire);
    if (s->report != NULL)
        sqlite3_bind_int(st, 9, s->rc);
    ds__catalog_bind_text(st, 10, s->report);
    return ds__catalog_step_done(cat, st, "recording a daemon run's server");
}

static int put_run(ds_catalog_t *cat, const ds_drun_rec_t *r, size_t keep)
{
    sqlite3_stmt *st = NULL;
    int64_t seq;
    int rc = ds__catalog_prep(cat,
                              "INSERT INTO daemon_run(id, trigger, state, reason, queued_at,"
                              " started_at, ended_at, classes, deltas_computed, deltas_cached,"
                              " deltas_relevelled, run_ms, as_of)"
                              " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                              &st);

    if (rc < 0)
        return rc;
    ds__catalog_bind_text(st, 1, r->id);
    ds__catalog_bind_text(st, 2, r->trigger);
    ds__catalog_bind_text(st, 3, r->state);
    ds__catalog_bind_text(st, 4, r->reason);
    sqlite3_bind_int64(st, 5, r->queued_at);
    sqlite3_bind_int64(st, 6, r->started_at);
    sqlite3_bind_int64(st, 7, r->ended_at);
    ds__catalog_bind_text(st, 8, r->classes);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)r->deltas_computed);
    sqlite3_bind_int64(st, 10, (sqlite3_int64)r->deltas_cached);
    sqlite3_bind_int64(st, 11, (sqlite3_int64)r->deltas_relevelled);
    sqlite3_bind_int64(st, 12, r->run_ms);
    sqlite3_bind_int64(st, 13, r->as_of);
    rc = ds__catalog_step_done(cat, st, "recording a daemon run");
    seq = sqlite3_last_insert_rowid(cat->db);
    for (size_t i = 0; rc == 0 && i < r->n; i++)
        rc = put_server(cat, seq, &r->srv[i]);
    if (rc < 0 || (rc = ds__catalog_prep(cat,
                                         "DELETE FROM daemon_run WHERE seq <= (SELECT seq FROM"
                                         " daemon_run ORDER BY seq DESC LIMIT 1 OFFSET ?1)",
                                         &st)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)keep);
    return ds__catalog_step_done(cat, st, "trimming the daemon's runs");
}

int ds_daemon_run_put(ds_catalog_t *cat, const ds_drun_rec_t *r, size_t keep)
{
    int rc = ds_catalog_begin(cat);

    if (rc < 0)
        return rc;
    return ds__catalog_txn_end(cat, 1, put_run(cat, r, keep));
}

/* Copies of the servers of run seq into *srv (*n of them, freed by
 * servers_free); the caller finalizes *st. */
static int list_servers(ds_catalog_t *cat, int64_t seq, sqlite3_stmt **st, ds_drun_rec_srv_t **srv,
                        size_t *n)
{
    int rc = ds__catalog_prep(cat,
                              "SELECT server, result, files_done, files_total, bytes_done,"
                              " bytes_total, bytes_wire, rc, report FROM daemon_run_server"
                              " WHERE run = ?1"
                              " ORDER BY rowid",
                              st);

    *n = 0;
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(*st, 1, seq);
    while ((rc = sqlite3_step(*st)) == SQLITE_ROW) {
        ds_drun_rec_srv_t *v = realloc(*srv, (*n + 1) * sizeof(*v));

        if (v == NULL)
            return DS_ENOMEM;
        *srv = v;
        /* copies: a later step would overwrite the column's text */
        v[*n] = (ds_drun_rec_srv_t){
            .server = strdup(ds__catalog_col_text(*st, 0) ? ds__catalog_col_text(*st, 0) : ""),
            .result = ds__catalog_col_text(*st, 1) ? strdup(ds__catalog_col_text(*st, 1)) : NULL,
            .files_done = (uint64_t)sqlite3_column_int64(*st, 2),
            .files_total = (uint64_t)sqlite3_column_int64(*st, 3),
            .bytes_done = (uint64_t)sqlite3_column_int64(*st, 4),
            .bytes_total = (uint64_t)sqlite3_column_int64(*st, 5),
            .bytes_wire = (uint64_t)sqlite3_column_int64(*st, 6),
            .rc = sqlite3_column_int(*st, 7),
            .report = ds__catalog_col_text(*st, 8) ? strdup(ds__catalog_col_text(*st, 8)) : NULL,
        };
        (*n)++;
        if (v[*n - 1].server == NULL || (ds__catalog_col_text(*st, 8) && !v[*n - 1].report))
            return DS_ENOMEM;
    }
    return rc == SQLITE_DONE ? 0 : ds__catalog_err(cat, cat->db, rc, "reading a daemon run");
}

static void servers_free(ds_drun_rec_srv_t *srv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)srv[i].server);
        free((char *)srv[i].result);
        free((char *)srv[i].report);
    }
    free(srv);
}

int ds_daemon_run_list(ds_catalog_t *cat, size_t limit,
                       int (*fn)(void *ctx, const ds_drun_rec_t *r), void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(cat,
                              "SELECT seq, id, trigger, state, reason, queued_at, started_at,"
                              " ended_at, classes, deltas_computed, deltas_cached,"
                              " deltas_relevelled, run_ms, as_of FROM (SELECT * FROM daemon_run"
                              " ORDER BY seq DESC"
                              " LIMIT ?1) ORDER BY seq",
                              &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_stmt *st2 = NULL;
        ds_drun_rec_srv_t *srv = NULL;
        ds_drun_rec_t r = {
            .id = ds__catalog_col_text(st, 1),
            .trigger = ds__catalog_col_text(st, 2),
            .state = ds__catalog_col_text(st, 3),
            .reason = ds__catalog_col_text(st, 4),
            .queued_at = sqlite3_column_int64(st, 5),
            .started_at = sqlite3_column_int64(st, 6),
            .ended_at = sqlite3_column_int64(st, 7),
            .classes = ds__catalog_col_text(st, 8),
            .deltas_computed = (uint64_t)sqlite3_column_int64(st, 9),
            .deltas_cached = (uint64_t)sqlite3_column_int64(st, 10),
            .deltas_relevelled = (uint64_t)sqlite3_column_int64(st, 11),
            .run_ms = sqlite3_column_int64(st, 12),
            .as_of = sqlite3_column_int64(st, 13),
        };

        rc = list_servers(cat, sqlite3_column_int64(st, 0), &st2, &srv, &r.n);
        sqlite3_finalize(st2);
        r.srv = srv;
        if (rc == 0)
            rc = fn(ctx, &r);
        servers_free(srv, r.n);
        if (rc < 0)
            break;
    }
    if (rc == SQLITE_DONE)
        rc = 0;
    else if (rc > 0)
        rc = ds__catalog_err(cat, cat->db, rc, "reading the daemon's runs");
    sqlite3_finalize(st);
    return rc;
}

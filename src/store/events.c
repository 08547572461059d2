/* Runs and events in the catalog (schema: catalog.c, migration 2). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog_int.h"
#include "distsync/error.h"
#include "distsync/events.h"

static const char *const kind_names[] = {
    "start", "file", "delete", "error", "end", "lease", "warning",
};

#define NKINDS ((int)(sizeof(kind_names) / sizeof(kind_names[0])))

const char *ds_event_kind_name(ds_event_kind_t kind)
{
    return (int)kind >= 0 && (int)kind < NKINDS ? kind_names[kind] : "?";
}

static ds_event_kind_t kind_from_name(const char *s)
{
    for (int i = 0; s != NULL && i < NKINDS; i++)
        if (strcmp(s, kind_names[i]) == 0)
            return (ds_event_kind_t)i;
    return DS_EV_WARNING;
}

/* Server id lookup/creation; contract in catalog_int.h. */
int ds__events_server_id(ds_catalog_t *cat, const char *name, const char *url, int64_t now,
                         int create, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    int rc;

    *id = 0;
    if (create) {
        rc = ds__catalog_prep(cat,
                              "INSERT INTO server(name, url, first_seen) VALUES(?1, ?2, ?3)"
                              " ON CONFLICT(name) DO UPDATE SET url = coalesce(?2, url)",
                              &st);
        if (rc < 0)
            return rc;
        ds__catalog_bind_text(st, 1, name);
        ds__catalog_bind_text(st, 2, url);
        sqlite3_bind_int64(st, 3, now);
        rc = ds__catalog_step_done(cat, st, "recording the server");
        if (rc < 0)
            return rc;
    }
    rc = ds__catalog_prep(cat, "SELECT id FROM server WHERE name = ?1", &st);
    if (rc < 0)
        return rc;
    ds__catalog_bind_text(st, 1, name);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0
                                                 : ds__catalog_err(cat, cat->db, rc, "server id");
    sqlite3_finalize(st);
    return rc;
}

/* Sums the run's events into its counters (for a run that ended without
 * totals, for example an interrupted one), as ds_run_end records them:
 * adopted files count as updated, and the 'end' event (which carries the
 * run's totals) is not summed. */
static int sum_events(ds_catalog_t *cat, int64_t run_id)
{
    sqlite3_stmt *st = NULL;
    int rc =
        ds__catalog_prep(cat,
                         "UPDATE run SET"
                         " files_created = (SELECT count(*) FROM event WHERE run_id = ?1"
                         "   AND kind = 'file' AND outcome = 'created'),"
                         " files_updated = (SELECT count(*) FROM event WHERE run_id = ?1"
                         "   AND kind = 'file' AND outcome IN ('updated', 'adopted')),"
                         " files_deleted = (SELECT count(*) FROM event WHERE run_id = ?1"
                         "   AND kind = 'delete' AND coalesce(outcome, 'deleted') = 'deleted'),"
                         " files_failed = (SELECT count(*) FROM event WHERE run_id = ?1"
                         "   AND kind IN ('file', 'delete') AND outcome = 'failed'),"
                         " bytes_wire = (SELECT coalesce(sum(bytes_wire), 0) FROM event"
                         "   WHERE run_id = ?1 AND kind <> 'end'),"
                         " bytes_literal = (SELECT coalesce(sum(bytes_literal), 0) FROM event"
                         "   WHERE run_id = ?1 AND kind <> 'end'),"
                         " bytes_copied = (SELECT coalesce(sum(bytes_copied), 0) FROM event"
                         "   WHERE run_id = ?1 AND kind <> 'end')"
                         " WHERE id = ?1",
                         &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    return ds__catalog_step_done(cat, st, "summing a run's events");
}

/* 1 if pid is a live process on this host (other than a zombie we cannot
 * tell apart), 0 if gone. self_alive: what our own pid counts as. */
/* 1 when /proc says pid is a zombie: killed, its exit not collected yet
 * (a parent that does not wait, a container's PID 1 that reaps nothing).
 * It holds no lock or lease any more: its run is over. */
static int zombie(int64_t pid)
{
    char path[64], buf[256];
    const char *p;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
    if ((f = fopen(path, "re")) == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* "PID (COMM) STATE ...", COMM may hold ')' */
    return p != NULL && p[1] == ' ' && p[2] == 'Z';
}

static int pid_alive(int64_t pid, int self_alive)
{
    if (pid <= 0 || pid > INT32_MAX)
        return 0;
    if (pid == (int64_t)getpid())
        return self_alive;
    if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
        return 0;
    return !zombie(pid);
}

/* This host's name (runs record it: a pid means nothing elsewhere). */
static const char *host_name(char *buf, size_t len)
{
    if (gethostname(buf, len - 1) < 0 || buf[0] == '\0')
        snprintf(buf, len, "localhost");
    buf[len - 1] = '\0';
    return buf;
}

/* 1 when a 'running' run begun by (pid, host) is dead: its host is this one
 * (or unrecorded, before migration 4) and the process is gone. */
static int run_dead(sqlite3_stmt *st, int self_alive)
{
    const char *host = ds__catalog_col_text(st, 2);
    char me[256];

    if (host != NULL && strcmp(host, host_name(me, sizeof(me))) != 0)
        return 0;
    return !pid_alive(sqlite3_column_int64(st, 1), self_alive);
}

static int insert_event(ds_catalog_t *cat, int64_t run_id, const ds_event_t *ev);

/* Dead 'running' runs of server sid (0: every server) into ids[64]; *n
 * receives how many. Returns 0 or a catalog error. */
static int dead_runs(ds_catalog_t *cat, int64_t sid, int self_alive, int64_t *ids, int *n)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(cat,
                              "SELECT id, pid, host FROM run WHERE status = 'running'"
                              " AND (?1 = 0 OR server_id = ?1)",
                              &st);

    *n = 0;
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, sid);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < 64)
        if (run_dead(st, self_alive))
            ids[(*n)++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : ds__catalog_err(cat, cat->db, rc, "runs");
}

/* Marks the server's (0: every server's) dead 'running' runs as
 * interrupted; *marked (may be NULL) receives how many. */
static int mark_interrupted(ds_catalog_t *cat, int64_t sid, int self_alive, int64_t now,
                            uint64_t *marked)
{
    sqlite3_stmt *st = NULL;
    int64_t ids[64];
    int n = 0, rc = dead_runs(cat, sid, self_alive, ids, &n);

    if (marked)
        *marked = (uint64_t)n;
    if (rc < 0)
        return rc;
    for (int i = 0; i < n; i++) {
        ds_event_t ev = {.kind = DS_EV_END,
                         .level = DS_LOG_WARN,
                         .at = now,
                         .outcome = "interrupted",
                         .message = "the console stopped during this run"};

        rc = insert_event(cat, ids[i], &ev);
        if (rc == 0)
            rc = sum_events(cat, ids[i]);
        if (rc == 0 &&
            (rc = ds__catalog_prep(cat,
                                   "UPDATE run SET status = 'interrupted', ended_at = ?2,"
                                   " error = coalesce(error, 'interrupted: the console stopped')"
                                   " WHERE id = ?1 AND status = 'running'",
                                   &st)) == 0) {
            sqlite3_bind_int64(st, 1, ids[i]);
            sqlite3_bind_int64(st, 2, now);
            rc = ds__catalog_step_done(cat, st, "marking a run interrupted");
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int valid_trigger(const char *t)
{
    return t != NULL &&
           (strcmp(t, "manual") == 0 || strcmp(t, "schedule") == 0 || strcmp(t, "gate") == 0);
}

static int begin_locked(ds_catalog_t *cat, const char *server_name, const char *url,
                        const char *trigger, const char *kind, int64_t now, int64_t *run_id)
{
    ds_event_t ev = {.kind = DS_EV_START, .level = DS_LOG_INFO, .at = now, .message = trigger};
    sqlite3_stmt *st = NULL;
    int64_t sid;
    int rc = ds__events_server_id(cat, server_name, url, now, 1, &sid);

    char host[256];

    if (rc == 0)
        rc = mark_interrupted(cat, sid, 0, now, NULL);
    if (rc == 0)
        rc = ds__catalog_prep(cat,
                              "INSERT INTO run(server_id, trigger, started_at, status, pid, host,"
                              " kind) VALUES(?1, ?2, ?3, 'running', ?4, ?5, ?6)",
                              &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, sid);
    ds__catalog_bind_text(st, 2, trigger);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, (int64_t)getpid());
    ds__catalog_bind_text(st, 5, host_name(host, sizeof(host)));
    ds__catalog_bind_text(st, 6, kind);
    rc = ds__catalog_step_done(cat, st, "starting a run");
    if (rc < 0)
        return rc;
    *run_id = sqlite3_last_insert_rowid(cat->db);
    return insert_event(cat, *run_id, &ev);
}

int ds_run_begin(ds_catalog_t *cat, const char *server_name, const char *url, const char *trigger,
                 int64_t now, int64_t *run_id)
{
    return ds_run_begin_kind(cat, server_name, url, trigger, "sync", now, run_id);
}

static int valid_kind(const char *k)
{
    return k != NULL &&
           (strcmp(k, "sync") == 0 || strcmp(k, "verify") == 0 || strcmp(k, "repair") == 0);
}

int ds_run_begin_kind(ds_catalog_t *cat, const char *server_name, const char *url,
                      const char *trigger, const char *kind, int64_t now, int64_t *run_id)
{
    int own, rc;

    *run_id = 0;
    if (server_name == NULL || server_name[0] == '\0' || !valid_trigger(trigger) ||
        !valid_kind(kind))
        return DS_EUSAGE;
    rc = ds__catalog_txn_begin(cat, &own);
    if (rc < 0)
        return rc;
    rc = begin_locked(cat, server_name, url, trigger, kind, now, run_id);
    rc = ds__catalog_txn_end(cat, own, rc);
    if (rc < 0)
        *run_id = 0;
    return rc;
}

static int insert_event(ds_catalog_t *cat, int64_t run_id, const ds_event_t *ev)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(
        cat,
        "INSERT INTO event(run_id, at, level, kind, path, outcome, bytes_literal,"
        " bytes_copied, bytes_wire, message) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
        " ?9, ?10)",
        &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, ev->at);
    sqlite3_bind_int(st, 3, (int)ev->level);
    ds__catalog_bind_text(st, 4, ds_event_kind_name(ev->kind));
    ds__catalog_bind_text(st, 5, ev->path);
    ds__catalog_bind_text(st, 6, ev->outcome);
    sqlite3_bind_int64(st, 7, (int64_t)ev->bytes_literal);
    sqlite3_bind_int64(st, 8, (int64_t)ev->bytes_copied);
    sqlite3_bind_int64(st, 9, (int64_t)ev->bytes_wire);
    ds__catalog_bind_text(st, 10, ev->message);
    return ds__catalog_step_done(cat, st, "recording an event");
}

int ds_run_event(ds_catalog_t *cat, int64_t run_id, const ds_event_t *ev)
{
    /* One INSERT outside a transaction is its own (autocommit) transaction. */
    if ((int)ev->kind < 0 || (int)ev->kind >= NKINDS || (int)ev->level < DS_LOG_ERROR ||
        (int)ev->level > DS_LOG_DEBUG)
        return DS_EUSAGE;
    return insert_event(cat, run_id, ev);
}

static int valid_status(const char *s)
{
    static const char *const ok[] = {"ok",        "failed", "interrupted",
                                     "cancelled", "drift",  "running"};

    for (size_t i = 0; s != NULL && i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcmp(s, ok[i]) == 0)
            return 1;
    return 0;
}

static int set_totals(ds_catalog_t *cat, int64_t run_id, const ds_run_totals_t *t)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (t == NULL)
        return sum_events(cat, run_id);
    rc = ds__catalog_prep(
        cat,
        "UPDATE run SET files_created = ?2, files_updated = ?3, files_deleted = ?4,"
        " files_failed = ?5, bytes_wire = ?6, bytes_literal = ?7, bytes_copied = ?8"
        " WHERE id = ?1",
        &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, (int64_t)t->files_created);
    sqlite3_bind_int64(st, 3, (int64_t)t->files_updated);
    sqlite3_bind_int64(st, 4, (int64_t)t->files_deleted);
    sqlite3_bind_int64(st, 5, (int64_t)t->files_failed);
    sqlite3_bind_int64(st, 6, (int64_t)t->bytes_wire);
    sqlite3_bind_int64(st, 7, (int64_t)t->bytes_literal);
    sqlite3_bind_int64(st, 8, (int64_t)t->bytes_copied);
    return ds__catalog_step_done(cat, st, "recording a run's totals");
}

/* Copies run_id's recorded byte totals into ev. */
static int end_bytes(ds_catalog_t *cat, int64_t run_id, ds_event_t *ev)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(
        cat, "SELECT bytes_literal, bytes_copied, bytes_wire FROM run WHERE id = ?1", &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        ev->bytes_literal = (uint64_t)sqlite3_column_int64(st, 0);
        ev->bytes_copied = (uint64_t)sqlite3_column_int64(st, 1);
        ev->bytes_wire = (uint64_t)sqlite3_column_int64(st, 2);
    }
    rc = rc == SQLITE_ROW ? 0 : ds__catalog_err(cat, cat->db, rc, "reading a run's totals");
    sqlite3_finalize(st);
    return rc;
}

static int end_locked(ds_catalog_t *cat, int64_t run_id, const char *status,
                      const ds_run_totals_t *totals, const char *error, int64_t now)
{
    ds_event_t ev = {.kind = DS_EV_END,
                     .level = strcmp(status, "ok") == 0 ? DS_LOG_INFO : DS_LOG_ERROR,
                     .at = now,
                     .outcome = status,
                     .message = error};
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(
        cat, "UPDATE run SET status = ?2, ended_at = ?3, error = ?4 WHERE id = ?1", &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    ds__catalog_bind_text(st, 2, status);
    sqlite3_bind_int64(st, 3, now);
    ds__catalog_bind_text(st, 4, error);
    rc = ds__catalog_step_done(cat, st, "ending a run");
    if (rc < 0)
        return rc;
    if (sqlite3_changes(cat->db) == 0)
        return DS_ENOTFOUND;
    rc = set_totals(cat, run_id, totals);
    if (rc == 0)
        rc = end_bytes(cat, run_id, &ev); /* the end event carries the run's totals */
    if (rc == 0)
        rc = insert_event(cat, run_id, &ev);
    if (rc == 0)
        rc = ds__catalog_prep(cat,
                              "UPDATE server SET last_sync_at = ?2, last_status = ?3"
                              " WHERE id = (SELECT server_id FROM run WHERE id = ?1)",
                              &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, now);
    ds__catalog_bind_text(st, 3, status);
    return ds__catalog_step_done(cat, st, "updating the server's last sync");
}

int ds_run_reap(ds_catalog_t *cat, int64_t now, uint64_t *marked)
{
    int64_t ids[64];
    int n = 0, own, rc;

    if (marked)
        *marked = 0;
    /* a read first: the common case (nothing to mark) takes no write lock */
    rc = dead_runs(cat, 0, 1, ids, &n);
    if (rc < 0 || n == 0)
        return rc;
    rc = ds__catalog_txn_begin(cat, &own);
    if (rc < 0)
        return rc;
    rc = mark_interrupted(cat, 0, 1, now, marked);
    return ds__catalog_txn_end(cat, own, rc);
}

int ds_run_end(ds_catalog_t *cat, int64_t run_id, const char *status, const ds_run_totals_t *totals,
               const char *error, int64_t now)
{
    int own, rc;

    if (!valid_status(status) || strcmp(status, "running") == 0)
        return DS_EUSAGE;
    rc = ds__catalog_txn_begin(cat, &own);
    if (rc < 0)
        return rc;
    rc = end_locked(cat, run_id, status, totals, error, now);
    return ds__catalog_txn_end(cat, own, rc);
}

static void row_to_run(sqlite3_stmt *st, ds_run_info_t *r)
{
    memset(r, 0, sizeof(*r));
    r->id = sqlite3_column_int64(st, 0);
    r->server = ds__catalog_col_text(st, 1);
    r->url = ds__catalog_col_text(st, 2);
    r->trigger = ds__catalog_col_text(st, 3);
    r->started_at = sqlite3_column_int64(st, 4);
    r->ended_at = sqlite3_column_int64(st, 5);
    r->status = ds__catalog_col_text(st, 6);
    r->totals.files_created = (uint64_t)sqlite3_column_int64(st, 7);
    r->totals.files_updated = (uint64_t)sqlite3_column_int64(st, 8);
    r->totals.files_deleted = (uint64_t)sqlite3_column_int64(st, 9);
    r->totals.files_failed = (uint64_t)sqlite3_column_int64(st, 10);
    r->totals.bytes_wire = (uint64_t)sqlite3_column_int64(st, 11);
    r->totals.bytes_literal = (uint64_t)sqlite3_column_int64(st, 12);
    r->totals.bytes_copied = (uint64_t)sqlite3_column_int64(st, 13);
    r->error = ds__catalog_col_text(st, 14);
    r->kind = ds__catalog_col_text(st, 15);
}

int ds_run_list(ds_catalog_t *cat, const char *server, int64_t limit, ds_run_fn fn, void *ctx)
{
    /* Two forms so that each uses its index: run_server_time for one
     * server, run_time for all (both walked backwards, stopping at LIMIT). */
#define RUN_COLS                                                                                   \
    "SELECT r.id, s.name, s.url, r.trigger, r.started_at, r.ended_at, r.status,"                   \
    " r.files_created, r.files_updated, r.files_deleted, r.files_failed, r.bytes_wire,"            \
    " r.bytes_literal, r.bytes_copied, r.error, r.kind FROM run r"                                 \
    " JOIN server s ON s.id = r.server_id"
    static const char all[] = RUN_COLS " ORDER BY r.started_at DESC, r.id DESC LIMIT ?2";
    static const char one[] =
        RUN_COLS " WHERE r.server_id = (SELECT id FROM server WHERE name = ?1)"
                 " ORDER BY r.started_at DESC, r.id DESC LIMIT ?2";
#undef RUN_COLS
    const char *sql = server != NULL ? one : all;
    sqlite3_stmt *st = NULL;
    ds_run_info_t r;
    int rc = ds__catalog_prep(cat, sql, &st);

    if (rc < 0)
        return rc;
    if (server != NULL)
        ds__catalog_bind_text(st, 1, server);
    sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        row_to_run(st, &r);
        rc = fn(ctx, &r);
        if (rc != 0)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : ds__catalog_err(cat, cat->db, rc, "listing runs");
out:
    sqlite3_finalize(st);
    return rc;
}

int ds_run_events(ds_catalog_t *cat, int64_t run_id, ds_event_fn fn, void *ctx)
{
    sqlite3_stmt *st = NULL;
    ds_event_info_t e;
    int rc =
        ds__catalog_prep(cat,
                         "SELECT id, at, level, kind, path, outcome, bytes_literal, bytes_copied,"
                         " bytes_wire, message FROM event WHERE run_id = ?1 ORDER BY id",
                         &st);

    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, run_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&e, 0, sizeof(e));
        e.id = sqlite3_column_int64(st, 0);
        e.run_id = run_id;
        e.ev.at = sqlite3_column_int64(st, 1);
        e.ev.level = (ds_log_level_t)sqlite3_column_int(st, 2);
        e.kind = ds__catalog_col_text(st, 3);
        e.ev.kind = kind_from_name(e.kind);
        e.ev.path = ds__catalog_col_text(st, 4);
        e.ev.outcome = ds__catalog_col_text(st, 5);
        e.ev.bytes_literal = (uint64_t)sqlite3_column_int64(st, 6);
        e.ev.bytes_copied = (uint64_t)sqlite3_column_int64(st, 7);
        e.ev.bytes_wire = (uint64_t)sqlite3_column_int64(st, 8);
        e.ev.message = ds__catalog_col_text(st, 9);
        rc = fn(ctx, &e);
        if (rc != 0)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : ds__catalog_err(cat, cat->db, rc, "listing events");
out:
    sqlite3_finalize(st);
    return rc;
}

/* Deletes up to 256 old runs and their events; *n receives how many. */
static int prune_batch(ds_catalog_t *cat, int64_t before, int *n)
{
    static const char *const sql[] = {
        "CREATE TEMP TABLE IF NOT EXISTS prune_ids(id INTEGER PRIMARY KEY)",
        "DELETE FROM temp.prune_ids",
        ("INSERT INTO temp.prune_ids SELECT id FROM run WHERE started_at < ?1"
         " AND status <> 'running' ORDER BY started_at LIMIT 256"),
        "DELETE FROM event WHERE run_id IN (SELECT id FROM temp.prune_ids)",
        "DELETE FROM run WHERE id IN (SELECT id FROM temp.prune_ids)",
    };
    sqlite3_stmt *st = NULL;
    int own, rc = ds__catalog_txn_begin(cat, &own);

    *n = 0;
    for (size_t i = 0; rc == 0 && i < sizeof(sql) / sizeof(sql[0]); i++) {
        rc = ds__catalog_prep(cat, sql[i], &st);
        if (rc < 0)
            break;
        if (sqlite3_bind_parameter_count(st) > 0)
            sqlite3_bind_int64(st, 1, before);
        rc = ds__catalog_step_done(cat, st, "pruning runs");
        if (rc == 0 && i == 4)
            *n = sqlite3_changes(cat->db);
    }
    return ds__catalog_txn_end(cat, own, rc);
}

int ds_run_prune(ds_catalog_t *cat, int64_t before, uint64_t *deleted)
{
    uint64_t total = 0;
    int n, rc;

    do {
        rc = prune_batch(cat, before, &n);
        if (rc == 0)
            total += (uint64_t)n;
    } while (rc == 0 && n > 0);
    if (deleted != NULL)
        *deleted = total;
    return rc;
}

/* Unit tests: runs, events and last-known server manifests (events.h). */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include <sqlite3.h>

#include "check.h"
#include "distsync/error.h"
#include "distsync/events.h"

static char dbpath[4200];

static ds_catalog_t *open_fresh(const char *name)
{
    char err[512];
    ds_catalog_t *cat = NULL;

    snprintf(dbpath, sizeof(dbpath), "%s/catalog.db", check_tmpdir(name));
    if (ds_catalog_open(dbpath, &cat, err, sizeof(err)) < 0)
        fprintf(stderr, "%s\n", err);
    return cat;
}

struct runs {
    int n;
    int64_t id[16];
    char server[16][32], status[16][16], error[16][64];
    ds_run_totals_t t[16];
    int64_t ended[16];
};

static int collect_run(void *ctx, const ds_run_info_t *r)
{
    struct runs *rs = ctx;

    if (rs->n >= 16)
        return 1;
    rs->id[rs->n] = r->id;
    snprintf(rs->server[rs->n], 32, "%s", r->server);
    snprintf(rs->status[rs->n], 16, "%s", r->status);
    snprintf(rs->error[rs->n], 64, "%s", r->error ? r->error : "");
    rs->t[rs->n] = r->totals;
    rs->ended[rs->n] = r->ended_at;
    rs->n++;
    return 0;
}

struct evs {
    int n;
    char kind[16][16], path[16][32], outcome[16][16];
    uint64_t literal[16];
};

static int collect_ev(void *ctx, const ds_event_info_t *e)
{
    struct evs *es = ctx;

    if (es->n >= 16)
        return 1;
    snprintf(es->kind[es->n], 16, "%s", e->kind);
    snprintf(es->path[es->n], 32, "%s", e->ev.path ? e->ev.path : "");
    snprintf(es->outcome[es->n], 16, "%s", e->ev.outcome ? e->ev.outcome : "");
    es->literal[es->n] = e->ev.bytes_literal;
    es->n++;
    return 0;
}

static void file_event(ds_catalog_t *cat, int64_t run, const char *path, const char *outcome,
                       uint64_t lit)
{
    ds_event_t ev = {.kind = DS_EV_FILE,
                     .level = DS_LOG_INFO,
                     .at = 1000,
                     .path = path,
                     .outcome = outcome,
                     .bytes_literal = lit,
                     .bytes_wire = lit + 10};

    CHECK_INT(ds_run_event(cat, run, &ev), 0);
}

static void test_run_lifecycle(void)
{
    ds_catalog_t *cat = open_fresh("events_life");
    ds_run_totals_t t = {.files_created = 2, .bytes_wire = 99, .bytes_literal = 80};
    struct runs rs = {0};
    struct evs es = {0};
    int64_t r1, r2, r3;

    CHECK(cat != NULL);
    if (cat == NULL)
        return;
    CHECK_INT(ds_catalog_schema_version(cat), ds_catalog_schema_latest());
    CHECK_INT(ds_run_begin(cat, "alpha", "file:///a", "manual", 100, &r1), 0);
    file_event(cat, r1, "defs/a.bin", "created", 50);
    file_event(cat, r1, "defs/b.bin", "created", 30);
    CHECK_INT(ds_run_end(cat, r1, "ok", &t, NULL, 110), 0);
    CHECK_INT(ds_run_begin(cat, "beta", "file:///b", "schedule", 200, &r2), 0);
    CHECK_INT(ds_run_end(cat, r2, "failed", NULL, "server beta: disk full", 205), 0);
    CHECK_INT(ds_run_begin(cat, "alpha", NULL, "gate", 300, &r3), 0);
    CHECK_INT(ds_run_end(cat, r3, "ok", NULL, NULL, 301), 0);

    CHECK_INT(ds_run_list(cat, NULL, 0, collect_run, &rs), 0);
    CHECK_INT(rs.n, 3);
    CHECK_INT(rs.id[0], r3); /* newest first */
    CHECK_INT(rs.id[2], r1);
    CHECK_STR(rs.status[1], "failed");
    CHECK_STR(rs.error[1], "server beta: disk full");
    CHECK_INT(rs.t[2].files_created, 2);
    CHECK_INT(rs.t[2].bytes_wire, 99);
    CHECK_INT(rs.ended[2], 110);

    memset(&rs, 0, sizeof(rs));
    CHECK_INT(ds_run_list(cat, "alpha", 1, collect_run, &rs), 0);
    CHECK_INT(rs.n, 1);
    CHECK_INT(rs.id[0], r3);

    CHECK_INT(ds_run_events(cat, r1, collect_ev, &es), 0);
    CHECK_INT(es.n, 4);
    CHECK_STR(es.kind[0], "start");
    CHECK_STR(es.path[1], "defs/a.bin");
    CHECK_INT(es.literal[2], 30);
    CHECK_STR(es.kind[3], "end");
    CHECK_STR(es.outcome[3], "ok");
    CHECK_INT(es.literal[3], 80); /* the end event carries the run's totals */
    ds_catalog_free(cat);
}

/* Totals summed from events (no totals given): adopted files count as
 * updated, and the end event's bytes are not counted twice. */
static void test_summed_totals(void)
{
    ds_catalog_t *cat = open_fresh("events_sum");
    struct runs rs = {0};
    struct evs es = {0};
    int64_t r;

    if (cat == NULL)
        return;
    CHECK_INT(ds_run_begin(cat, "s", NULL, "manual", 1, &r), 0);
    file_event(cat, r, "p/a", "created", 5);
    file_event(cat, r, "p/b", "updated", 7);
    file_event(cat, r, "p/c", "adopted", 0);
    CHECK_INT(ds_run_end(cat, r, "ok", NULL, NULL, 2), 0);
    CHECK_INT(ds_run_list(cat, NULL, 0, collect_run, &rs), 0);
    CHECK_INT(rs.t[0].files_created, 1);
    CHECK_INT(rs.t[0].files_updated, 2);
    CHECK_INT(rs.t[0].bytes_literal, 12);
    CHECK_INT(rs.t[0].bytes_wire, 42); /* lit + 10 each */
    CHECK_INT(ds_run_events(cat, r, collect_ev, &es), 0);
    CHECK_STR(es.kind[es.n - 1], "end");
    CHECK_INT(es.literal[es.n - 1], 12);
    ds_catalog_free(cat);
}

static void test_validation(void)
{
    ds_catalog_t *cat = open_fresh("events_valid");
    ds_event_t bad = {.kind = (ds_event_kind_t)42, .level = DS_LOG_INFO};
    int64_t r;

    if (cat == NULL)
        return;
    CHECK_INT(ds_run_begin(cat, "s", NULL, "whenever", 1, &r), DS_EUSAGE);
    CHECK_INT(ds_run_begin(cat, "", NULL, "manual", 1, &r), DS_EUSAGE);
    CHECK_INT(ds_run_begin(cat, "s", NULL, "manual", 1, &r), 0);
    CHECK_INT(ds_run_event(cat, r, &bad), DS_EUSAGE);
    CHECK_INT(ds_run_end(cat, r, "great", NULL, NULL, 2), DS_EUSAGE);
    CHECK_INT(ds_run_end(cat, r + 100, "ok", NULL, NULL, 2), DS_ENOTFOUND);
    CHECK_STR(ds_event_kind_name(DS_EV_LEASE), "lease");
    ds_catalog_free(cat);
}

/* A child begins a run and dies without ending it (as after kill -9): the
 * next begin for that server marks it interrupted, with totals from its
 * events; a run whose process is alive is left alone. */
static void test_interrupted(void)
{
    ds_catalog_t *cat = open_fresh("events_intr");
    struct runs rs = {0};
    int p[2], st;
    pid_t pid;
    int64_t r;
    char c;

    if (cat == NULL || pipe(p) != 0)
        return;
    pid = fork();
    if (pid == 0) {
        ds_catalog_t *cc = NULL;
        char err[256];
        int64_t cr;

        close(p[0]);
        if (ds_catalog_open(dbpath, &cc, err, sizeof(err)) < 0 ||
            ds_run_begin(cc, "gamma", "file:///g", "manual", 500, &cr) < 0)
            _exit(1);
        file_event(cc, cr, "patches/x", "updated", 7);
        file_event(cc, cr, "patches/y", "failed", 0);
        if (write(p[1], "x", 1) != 1)
            _exit(1);
        pause(); /* killed by the parent, mid-run */
        _exit(0);
    }
    close(p[1]);
    CHECK(read(p[0], &c, 1) == 1);
    CHECK_INT(ds_run_begin(cat, "gamma", NULL, "manual", 600, &r), 0);
    CHECK_INT(ds_run_list(cat, "gamma", 0, collect_run, &rs), 0);
    CHECK_INT(rs.n, 2);
    CHECK_STR(rs.status[1], "running"); /* its process lives */
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    close(p[0]);
    CHECK_INT(ds_run_end(cat, r, "ok", NULL, NULL, 601), 0);
    CHECK_INT(ds_run_begin(cat, "gamma", NULL, "manual", 700, &r), 0);
    memset(&rs, 0, sizeof(rs));
    CHECK_INT(ds_run_list(cat, "gamma", 0, collect_run, &rs), 0);
    CHECK_INT(rs.n, 3);
    CHECK_STR(rs.status[2], "interrupted");
    CHECK_INT(rs.ended[2], 700);
    CHECK_INT(rs.t[2].files_updated, 1);
    CHECK_INT(rs.t[2].files_failed, 1);
    CHECK_INT(rs.t[2].bytes_literal, 7);
    CHECK_INT(rs.t[2].bytes_wire, 27); /* 17 + 10 */
    CHECK_STR(rs.status[0], "running");
    ds_catalog_free(cat);
}

/* ds_run_reap (every catalog open): a dead process's run of any server
 * becomes interrupted; a live one, another host's and a cancelled one stay. */
static void test_reap(void)
{
    ds_catalog_t *cat = open_fresh("events_reap");
    struct runs rs = {0};
    uint64_t marked = 9;
    int64_t dead, other, live, canc;
    pid_t pid;
    int st;

    if (cat == NULL)
        return;
    pid = fork();
    if (pid == 0)
        _exit(0);
    waitpid(pid, &st, 0); /* pid is now gone */
    CHECK_INT(ds_run_begin_kind(cat, "a", NULL, "manual", "sync", 100, &dead), 0);
    CHECK_INT(ds_run_begin_kind(cat, "b", NULL, "manual", "verify", 100, &other), 0);
    CHECK_INT(ds_run_begin(cat, "c", NULL, "manual", 100, &live), 0);
    CHECK_INT(ds_run_begin(cat, "d", NULL, "manual", 100, &canc), 0);
    CHECK_INT(ds_run_end(cat, canc, "cancelled", NULL, "server d: cancelled", 101), 0);
    CHECK_INT(ds_run_begin_kind(cat, "e", NULL, "manual", "bogus", 100, &live), DS_EUSAGE);
    sqlite3 *db = NULL;
    char sql[200];

    CHECK_INT(sqlite3_open(dbpath, &db), SQLITE_OK);
    snprintf(sql, sizeof(sql), "UPDATE run SET pid = %d WHERE id IN (%lld, %lld)", (int)pid,
             (long long)dead, (long long)other);
    CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    snprintf(sql, sizeof(sql), "UPDATE run SET host = 'elsewhere' WHERE id = %lld",
             (long long)other);
    CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    CHECK_INT(ds_run_reap(cat, 200, &marked), 0);
    CHECK_INT(marked, 1);
    CHECK_INT(ds_run_list(cat, NULL, 0, collect_run, &rs), 0);
    CHECK_INT(rs.n, 4);
    for (int i = 0; i < rs.n; i++) {
        const char *want = rs.id[i] == dead   ? "interrupted"
                           : rs.id[i] == canc ? "cancelled"
                                              : "running";
        CHECK_STR(rs.status[i], want);
    }
    ds_catalog_free(cat);
}

static int count_files(void *ctx, const ds_server_file_t *f)
{
    (*(int *)ctx)++;
    return f->size == 0 ? -1 : 0;
}

static void test_server_manifest(void)
{
    ds_catalog_t *cat = open_fresh("events_manifest");
    ds_server_file_t f[3] = {{"a", {1}, 10}, {"b", {2}, 20}, {"c", {1}, 10}};
    uint8_t *shas = NULL, s3[DS_SHA256_LEN] = {3};
    size_t n = 0;
    int cnt = 0;

    if (cat == NULL)
        return;
    CHECK_INT(ds_catalog_server_manifest_put(cat, "one", f, 3, 1), 0);
    CHECK_INT(ds_catalog_server_manifest_put(cat, "two", f + 1, 1, 1), 0);
    CHECK_INT(ds_catalog_server_manifest_refs(cat, &shas, &n), 0);
    CHECK_INT(n, 2);
    CHECK(shas != NULL && shas[0] == 1 && shas[DS_SHA256_LEN] == 2);
    free(shas);
    CHECK_INT(ds_catalog_server_manifest_set(cat, "two", "b", NULL, 0, 2), 0);
    CHECK_INT(ds_catalog_server_manifest_set(cat, "two", "d", s3, 30, 2), 0);
    CHECK_INT(ds_catalog_server_manifest_put(cat, "one", f, 1, 3), 0);
    CHECK_INT(ds_catalog_server_manifest_refs(cat, &shas, &n), 0);
    CHECK_INT(n, 2);
    CHECK(shas != NULL && shas[0] == 1 && shas[DS_SHA256_LEN] == 3);
    free(shas);
    CHECK_INT(ds_catalog_server_manifest_get(cat, "one", count_files, &cnt), 0);
    CHECK_INT(cnt, 1);
    cnt = 0;
    CHECK_INT(ds_catalog_server_manifest_get(cat, "nobody", count_files, &cnt), 0);
    CHECK_INT(cnt, 0);
    ds_catalog_free(cat);
}

/* Deletes catalog meta rows whose key matches pattern (an older catalog
 * that recorded manifests before the 'manifest_at:' mark). */
static void drop_meta(const char *pattern)
{
    sqlite3 *db = NULL;
    char sql[256];

    snprintf(sql, sizeof(sql), "DELETE FROM meta WHERE key LIKE '%s'", pattern);
    CHECK_INT(sqlite3_open(dbpath, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* Known vs unknown manifests, and the union over some servers only. */
static void test_manifest_known(void)
{
    ds_catalog_t *cat = open_fresh("events_known");
    ds_server_file_t f[2] = {{"a", {1}, 10}, {"b", {2}, 20}};
    const char *two[] = {"two"}, *one_nobody[] = {"one", "nobody"}, *all[] = {"two", "one", "two"};
    char err[512];
    uint8_t *shas = NULL;
    size_t n = 9;
    int64_t run;

    if (cat == NULL)
        return;
    CHECK_INT(ds_catalog_server_manifest_known(cat, "one"), 0);
    /* a run alone (it may have failed before the manifest) knows nothing */
    CHECK_INT(ds_run_begin(cat, "one", NULL, "manual", 1, &run), 0);
    CHECK_INT(ds_catalog_server_manifest_known(cat, "one"), 0);
    /* an empty manifest is known: the server holds nothing */
    CHECK_INT(ds_catalog_server_manifest_put(cat, "one", NULL, 0, 2), 0);
    CHECK_INT(ds_catalog_server_manifest_known(cat, "one"), 1);
    CHECK_INT(ds_catalog_server_manifest_known(cat, "two"), 0);
    CHECK_INT(ds_catalog_server_manifest_set(cat, "two", "a", f[0].sha256, 10, 3), 0);
    CHECK_INT(ds_catalog_server_manifest_known(cat, "two"), 1);
    CHECK_INT(ds_catalog_server_manifest_put(cat, "three", f, 2, 3), 0);
    /* a name that only shares a prefix is not known */
    CHECK_INT(ds_catalog_server_manifest_known(cat, "thre"), 0);
    CHECK_INT(ds_catalog_server_manifest_refs_of(cat, two, 1, &shas, &n), 0);
    CHECK(n == 1 && shas != NULL && shas[0] == 1);
    free(shas);
    CHECK_INT(ds_catalog_server_manifest_refs_of(cat, one_nobody, 2, &shas, &n), 0);
    CHECK(n == 0 && shas == NULL);
    CHECK_INT(ds_catalog_server_manifest_refs_of(cat, all, 3, &shas, &n), 0);
    CHECK(n == 1 && shas != NULL && shas[0] == 1);
    free(shas);
    CHECK_INT(ds_catalog_server_manifest_refs_of(cat, NULL, 0, &shas, &n), 0);
    CHECK_INT(n, 0);
    ds_catalog_free(cat);
    /* Without the marks, rows still make a manifest known; an empty one is
     * then unknown (conservative). */
    drop_meta("manifest_at:%");
    CHECK_INT(ds_catalog_open(dbpath, &cat, err, sizeof(err)), 0);
    if (cat == NULL)
        return;
    CHECK_INT(ds_catalog_server_manifest_known(cat, "three"), 1);
    CHECK_INT(ds_catalog_server_manifest_known(cat, "one"), 0);
    ds_catalog_free(cat);
}

static void test_prune(void)
{
    ds_catalog_t *cat = open_fresh("events_prune");
    struct runs rs = {0};
    struct evs es = {0};
    uint64_t del = 0;
    int64_t r, first = 0;

    if (cat == NULL)
        return;
    for (int i = 0; i < 300; i++) {
        CHECK_INT(ds_run_begin(cat, "p", NULL, "schedule", 1000 + i, &r), 0);
        if (first == 0)
            first = r;
        CHECK_INT(ds_run_end(cat, r, "ok", NULL, NULL, 1000 + i), 0);
    }
    CHECK_INT(ds_run_begin(cat, "p", NULL, "manual", 10, &r), 0); /* running: kept */
    CHECK_INT(ds_run_prune(cat, 1290, &del), 0);
    CHECK_INT(del, 290);
    CHECK_INT(ds_run_events(cat, first, collect_ev, &es), 0);
    CHECK_INT(es.n, 0);
    memset(&rs, 0, sizeof(rs));
    CHECK_INT(ds_run_list(cat, "p", 16, collect_run, &rs), 0);
    CHECK_INT(rs.n, 11);
    CHECK_STR(rs.status[10], "running");
    ds_catalog_free(cat);
}

/* The daemon's ended runs (ds_daemon_run_put/list): everything GET
 * /v1/runs/ID shows comes back, classes, as_of, the delta counters, the
 * run's length and each server's rc and report included (migration 9);
 * a run without them comes back with NULL and 0; keep trims the oldest. */
struct druns {
    int n;
    char id[4][32], classes[4][64], report[4][2][64], result[4][2][16];
    int64_t as_of[4], run_ms[4];
    uint64_t computed[4], relevelled[4];
    int rc[4][2], has_report[4][2];
    size_t nsrv[4];
};

static int collect_drun(void *ctx, const ds_drun_rec_t *r)
{
    struct druns *d = ctx;

    if (d->n >= 4)
        return 1;
    snprintf(d->id[d->n], 32, "%s", r->id);
    snprintf(d->classes[d->n], 64, "%s", r->classes ? r->classes : "(null)");
    d->as_of[d->n] = r->as_of;
    d->run_ms[d->n] = r->run_ms;
    d->computed[d->n] = r->deltas_computed;
    d->relevelled[d->n] = r->deltas_relevelled;
    d->nsrv[d->n] = r->n;
    for (size_t i = 0; i < r->n && i < 2; i++) {
        snprintf(d->result[d->n][i], 16, "%s", r->srv[i].result ? r->srv[i].result : "(null)");
        snprintf(d->report[d->n][i], 64, "%s", r->srv[i].report ? r->srv[i].report : "(null)");
        d->has_report[d->n][i] = r->srv[i].report != NULL;
        d->rc[d->n][i] = r->srv[i].rc;
    }
    d->n++;
    return 0;
}

static void test_daemon_runs(void)
{
    ds_catalog_t *cat = open_fresh("events_druns");
    ds_drun_rec_srv_t srv[2] = {
        {.server = "s1", .result = "ok", .files_done = 3, .report = "{\"server\":\"s1\"}", .rc = 0},
        {.server = "s2", .result = "failed", .report = "{\"server\":\"s2\"}", .rc = -10021},
    };
    ds_drun_rec_t with = {.id = "now-1",
                          .trigger = "manual",
                          .state = "failed",
                          .queued_at = 100,
                          .started_at = 101,
                          .ended_at = 109,
                          .classes = "[\"patches\"]",
                          .as_of = 50,
                          .deltas_computed = 7,
                          .deltas_relevelled = 2,
                          .run_ms = 8123,
                          .srv = srv,
                          .n = 2};
    ds_drun_rec_srv_t bare_srv = {.server = "s1", .result = NULL};
    ds_drun_rec_t bare = {
        .id = "now-2", .trigger = "manual", .state = "cancelled", .srv = &bare_srv, .n = 1};
    struct druns d = {0};

    CHECK(cat != NULL);
    if (cat == NULL)
        return;
    CHECK_INT(ds_daemon_run_put(cat, &with, 10), 0);
    CHECK_INT(ds_daemon_run_put(cat, &bare, 10), 0);
    CHECK_INT(ds_daemon_run_list(cat, 10, collect_drun, &d), 0);
    CHECK_INT(d.n, 2);
    CHECK_STR(d.id[0], "now-1");
    CHECK_STR(d.classes[0], "[\"patches\"]");
    CHECK_INT(d.as_of[0], 50);
    CHECK_INT(d.run_ms[0], 8123);
    CHECK_INT(d.computed[0], 7);
    CHECK_INT(d.relevelled[0], 2);
    CHECK_INT(d.nsrv[0], 2);
    CHECK_STR(d.report[0][0], "{\"server\":\"s1\"}");
    CHECK_STR(d.report[0][1], "{\"server\":\"s2\"}");
    CHECK_INT(d.rc[0][1], -10021);
    CHECK_STR(d.result[0][1], "failed");
    CHECK_STR(d.id[1], "now-2");
    CHECK_STR(d.classes[1], "(null)");
    CHECK_INT(d.as_of[1], 0);
    CHECK_INT(d.run_ms[1], 0);
    CHECK_INT(d.has_report[1][0], 0);
    CHECK_STR(d.result[1][0], "(null)");
    /* keep 1: only the newest stays */
    bare.id = "now-3";
    CHECK_INT(ds_daemon_run_put(cat, &bare, 1), 0);
    memset(&d, 0, sizeof(d));
    CHECK_INT(ds_daemon_run_list(cat, 10, collect_drun, &d), 0);
    CHECK_INT(d.n, 1);
    CHECK_STR(d.id[0], "now-3");
    ds_catalog_free(cat);
}

int main(void)
{
    RUN(test_run_lifecycle);
    RUN(test_summed_totals);
    RUN(test_validation);
    RUN(test_interrupted);
    RUN(test_reap);
    RUN(test_server_manifest);
    RUN(test_manifest_known);
    RUN(test_prune);
    RUN(test_daemon_runs);
    return CHECK_DONE();
}

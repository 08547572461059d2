/* Reports: the file status categories of plan items, their counts, the
 * verdict, and the JSON documents (valid, with the documented keys). */
#include <errno.h>

#include "check.h"
#include "distsync/error.h"
#include "distsync/report.h"

static ds_plan_item_t item(ds_plan_action_t a, ds_plan_method_t m, const char *path, uint64_t size)
{
    return (ds_plan_item_t){
        .action = a, .method = m, .path = (char *)path, .klass = "patches", .size = size};
}

/* One item of every kind: create, update (delta), update (adopt), keep,
 * extra, unreadable, a delete of a present file, a delete of a manifest
 * record whose file is gone, and a drifted update. */
static void sample(ds_plan_item_t v[9], ds_plan_t *p)
{
    v[0] = item(DS_PLAN_CREATE, DS_PLAN_WHOLE, "new.bin", 10);
    v[1] = item(DS_PLAN_UPDATE, DS_PLAN_DELTA, "old.bin", 20);
    v[2] = item(DS_PLAN_UPDATE, DS_PLAN_ADOPT, "there.bin", 30);
    v[3] = item(DS_PLAN_KEEP, DS_PLAN_NONE, "same.bin", 40);
    v[4] = item(DS_PLAN_EXTRA, DS_PLAN_NONE, "stray.bin", 50);
    v[5] = item(DS_PLAN_UNREADABLE, DS_PLAN_NONE, "locked.bin", 60);
    v[6] = item(DS_PLAN_DELETE, DS_PLAN_NONE, "gone.bin", 70);
    v[6].present = 1;
    v[7] = item(DS_PLAN_DELETE, DS_PLAN_NONE, "record-only.bin", 80);
    v[8] = item(DS_PLAN_UPDATE, DS_PLAN_WHOLE, "edited.bin", 90);
    v[8].drifted = 1;
    *p = (ds_plan_t){.items = v, .n = 9};
}

static void test_categories(void)
{
    ds_plan_item_t v[9];
    ds_plan_t p;
    const ds_fstatus_t want[9] = {DS_FS_MISSING, DS_FS_OUTDATED, DS_FS_UNRECORDED,
                                  DS_FS_IN_SYNC, DS_FS_EXTRA,    DS_FS_UNREADABLE,
                                  DS_FS_EXTRA,   DS_FS_NONE,     DS_FS_DRIFTED};
    ds_status_counts_t c;
    uint64_t sum = 0;

    sample(v, &p);
    for (int i = 0; i < 9; i++)
        CHECK_INT(ds_report_fstatus(&v[i]), want[i]);
    ds_report_count(&p, &c);
    for (int s = 0; s < DS_FS__N; s++)
        sum += c.n[s];
    CHECK_INT(c.total, 8); /* the record-only delete is not a file */
    CHECK_INT(sum, c.total);
    CHECK_INT(c.n[DS_FS_EXTRA], 2);
    CHECK_INT(c.bytes[DS_FS_EXTRA], 50 + 70);
    CHECK(strcmp(ds_fstatus_name(DS_FS_IN_SYNC), "in_sync") == 0);
}

static void test_verdict(void)
{
    ds_plan_item_t v[9];
    ds_plan_t p;

    sample(v, &p);
    CHECK_INT(ds_report_verdict(&p), DS_VERDICT_DRIFT); /* drift outranks */
    p.n = 8;
    CHECK_INT(ds_report_verdict(&p), DS_VERDICT_PENDING);
    p.items = &v[3]; /* keep, extra left alone: in sync */
    p.n = 2;
    CHECK_INT(ds_report_verdict(&p), DS_VERDICT_IN_SYNC);
    p.items = &v[6]; /* an extra file prune would delete is work */
    p.n = 1;
    CHECK_INT(ds_report_verdict(&p), DS_VERDICT_PENDING);
    p.items = &v[5]; /* unreadable in the store: work the server lacks */
    CHECK_INT(ds_report_verdict(&p), DS_VERDICT_PENDING);
    /* the API's words and back (GET /v1/status, the CLI's exit status) */
    for (int k = DS_VERDICT_IN_SYNC; k <= DS_VERDICT_DRIFT; k++) {
        ds_verdict_t got = DS_VERDICT_IN_SYNC;

        CHECK_INT(ds_verdict_parse(ds_verdict_name((ds_verdict_t)k), &got), 0);
        CHECK_INT(got, k);
    }
    CHECK(strcmp(ds_verdict_name(DS_VERDICT_DRIFT), "drift") == 0);
    CHECK(strcmp(ds_verdict_name(DS_VERDICT_PENDING), "pending") == 0);
    {
        ds_verdict_t got = DS_VERDICT_PENDING;

        CHECK_INT(ds_verdict_parse("failed", &got), DS_ENOTFOUND);
        CHECK_INT(ds_verdict_parse(NULL, &got), DS_ENOTFOUND);
        CHECK_INT(got, DS_VERDICT_PENDING);
    }
}

/* Runs fn into a memory buffer; returns the document (free it). */
static char *render(void (*fn)(ds_json_t *, const ds_plan_t *), const ds_plan_t *p)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ds_json_t j;

    ds_json_init(&j, f);
    fn(&j, p);
    ds_json_end(&j);
    fclose(f);
    return buf;
}

static void status_doc(ds_json_t *j, const ds_plan_t *p)
{
    ds_retain_usage_t ru = {.versions = 3, .stored_bytes = 7, .file_bytes = 9};

    ds_report_status_json(j, "paris\"1", p, &ru);
}

static void plan_doc(ds_json_t *j, const ds_plan_t *p)
{
    ds_report_plan_json(j, "paris-1", p);
}

static void test_json(void)
{
    ds_plan_item_t v[9];
    ds_plan_t p;
    char *s;

    sample(v, &p);
    s = render(status_doc, &p);
    CHECK(strstr(s, "{\"server\":\"paris\\\"1\",\"status\":\"ok\",\"error\":null,") == s);
    CHECK(strstr(s, "\"missing\":[{\"path\":\"new.bin\",\"class\":\"patches\",\"size\":10}]"));
    CHECK(strstr(s, "\"counts\":{\"missing\":1,\"outdated\":1,\"drifted\":1,\"unrecorded\":1,"
                    "\"extra\":2,\"unreadable\":1,\"in_sync\":1,\"total\":8}"));
    CHECK(strstr(s, "\"console_retain\":{\"versions\":3,\"stored_bytes\":7,\"file_bytes\":9}"));
    CHECK(s[strlen(s) - 1] == '\n');
    free(s);
    s = render(plan_doc, &p);
    CHECK(strstr(s, "{\"action\":\"create\",\"path\":\"new.bin\""));
    CHECK(strstr(s, "\"totals\":{\"create\":"));
    free(s);
}

static void test_result_status(void)
{
    ds_sync_result_t r = {0};

    CHECK(strcmp(ds_report_result_status(&r), "ok") == 0);
    r.rc = DS_EHELD;
    CHECK(strcmp(ds_report_result_status(&r), "held") == 0);
    r.rc = DS_ELEASE;
    CHECK(strcmp(ds_report_result_status(&r), "busy") == 0);
    r.rc = -ECANCELED;
    CHECK(strcmp(ds_report_result_status(&r), "cancelled") == 0);
    r.rc = DS_ETRANSPORT;
    CHECK(strcmp(ds_report_result_status(&r), "failed") == 0);
}

int main(void)
{
    RUN(test_categories);
    RUN(test_verdict);
    RUN(test_json);
    RUN(test_result_status);
    return CHECK_DONE();
}

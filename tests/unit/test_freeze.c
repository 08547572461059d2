/* The daemon's catalog state: freeze windows (freeze.h) and schedule fires
 * (ds_schedule_fire_put/last, events.h). */
#include "check.h"
#include "distsync/catalog.h"
#include "distsync/error.h"
#include "distsync/events.h"
#include "distsync/freeze.h"

static ds_catalog_t *open_fresh(const char *name)
{
    ds_catalog_t *cat = NULL;
    char path[4200], err[512];

    snprintf(path, sizeof(path), "%s/catalog.db", check_tmpdir(name));
    CHECK_INT(ds_catalog_open(path, &cat, err, sizeof(err)), 0);
    return cat;
}

static void test_freeze(void)
{
    ds_catalog_t *cat = open_fresh("freeze");
    ds_freeze_t f;
    char line[1024];

    CHECK_INT(ds_freeze_get(cat, "s1", 1000, &f), DS_ENOTFOUND);
    CHECK_INT(ds_freeze_put(cat, "s1", 0, "disk swap", 1000), 0);
    CHECK_INT(ds_freeze_get(cat, "s1", 999999, &f), 0); /* until thawed */
    CHECK_STR(f.reason, "disk swap");
    CHECK_INT(f.frozen_at, 1000);
    ds_freeze_describe(&f, line, sizeof(line));
    CHECK_STR(line, "server s1 is frozen until thawed (disk swap)");
    /* a new freeze replaces the old one; it ends at until */
    CHECK_INT(ds_freeze_put(cat, "s1", 2000, NULL, 1500), 0);
    CHECK_INT(ds_freeze_get(cat, "s1", 1999, &f), 0);
    CHECK_STR(f.reason, "");
    ds_freeze_describe(&f, line, sizeof(line));
    CHECK_STR(line, "server s1 is frozen until 1970-01-01T00:33:20Z");
    CHECK_INT(ds_freeze_get(cat, "s1", 2000, &f), DS_ENOTFOUND);
    CHECK_INT(ds_freeze_get(cat, "s2", 1999, &f), DS_ENOTFOUND);
    CHECK_INT(ds_freeze_del(cat, "s1"), 0);
    CHECK_INT(ds_freeze_del(cat, "s1"), DS_ENOTFOUND);
    CHECK_INT(ds_freeze_put(cat, "", 0, NULL, 1), DS_EUSAGE);
    CHECK_INT(ds_freeze_put(cat, "s1", -1, NULL, 1), DS_EUSAGE);
    ds_catalog_free(cat);
}

static void test_schedule_fire(void)
{
    ds_catalog_t *cat = open_fresh("sched_fire");
    ds_schedule_fire_t last;

    CHECK_INT(ds_schedule_fire_last(cat, "nightly", &last), DS_ENOTFOUND);
    CHECK_INT(ds_schedule_fire_put(cat, "nightly", 100, "ok", NULL, 101), 0);
    CHECK_INT(ds_schedule_fire_put(cat, "nightly", 200, "interrupted", "stopped", 201), 0);
    CHECK_INT(ds_schedule_fire_put(cat, "other", 300, "skipped", "late", 301), 0);
    CHECK_INT(ds_schedule_fire_last(cat, "nightly", &last), 0);
    CHECK_INT(last.fire, 200);
    CHECK_STR(last.outcome, "interrupted");
    CHECK_STR(last.reason, "stopped");
    /* the same fire again (a catch-up of an interrupted run) replaces it */
    CHECK_INT(ds_schedule_fire_put(cat, "nightly", 200, "ok", NULL, 202), 0);
    CHECK_INT(ds_schedule_fire_last(cat, "nightly", &last), 0);
    CHECK_STR(last.outcome, "ok");
    CHECK_STR(last.reason, "");
    CHECK_INT(ds_schedule_fire_put(cat, "nightly", 300, "maybe", NULL, 1), DS_EUSAGE);
    CHECK_INT(ds_schedule_fire_put(cat, "", 300, "ok", NULL, 1), DS_EUSAGE);
    ds_catalog_free(cat);
}

int main(void)
{
    RUN(test_freeze);
    RUN(test_schedule_fire);
    return CHECK_DONE();
}

/*
 * The daemon's record of each schedule fire (table schedule_fire, migration
 * 5): the outcome of the run, or why it was skipped.
 */
#include <stdio.h>
#include <string.h>

#include "catalog_int.h"
#include "distsync/error.h"
#include "distsync/events.h"

static const char *const outcomes[] = {"ok", "failed", "skipped", "interrupted", "cancelled"};

int ds_schedule_fire_put(ds_catalog_t *cat, const char *schedule, int64_t fire, const char *outcome,
                         const char *reason, int64_t now)
{
    sqlite3_stmt *st = NULL;
    int known = 0, rc;

    for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
        known |= outcome != NULL && strcmp(outcome, outcomes[i]) == 0;
    if (schedule == NULL || schedule[0] == '\0' || !known)
        return DS_EUSAGE;
    rc = ds__catalog_prep(cat,
                          "INSERT OR REPLACE INTO schedule_fire(schedule, fire, outcome, reason,"
                          " recorded_at) VALUES(?1, ?2, ?3, ?4, ?5)",
                          &st);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, schedule, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, fire);
    sqlite3_bind_text(st, 3, outcome, -1, SQLITE_STATIC);
    if (reason != NULL)
        sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    return ds__catalog_step_done(cat, st, "recording a schedule fire");
}

int ds_schedule_fire_last(ds_catalog_t *cat, const char *schedule, ds_schedule_fire_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = ds__catalog_prep(cat,
                              "SELECT fire, outcome, COALESCE(reason, '') FROM schedule_fire"
                              " WHERE schedule = ?1 ORDER BY fire DESC LIMIT 1",
                              &st);

    memset(out, 0, sizeof(*out));
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, schedule, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->fire = sqlite3_column_int64(st, 0);
        snprintf(out->outcome, sizeof(out->outcome), "%s",
                 (const char *)sqlite3_column_text(st, 1));
        snprintf(out->reason, sizeof(out->reason), "%s", (const char *)sqlite3_column_text(st, 2));
        rc = 0;
    } else
        rc = rc == SQLITE_DONE ? DS_ENOTFOUND
                               : ds__catalog_err(cat, cat->db, rc, "reading a schedule fire");
    sqlite3_finalize(st);
    return rc;
}

/* Export internals shared by bundle_export.c (the plan as bundle items) and
 * bundle_write.c (the archive). */
#ifndef DS_BUNDLE_EXP_H
#define DS_BUNDLE_EXP_H

#include "distsync/bundle.h"
#include "sync_int.h"

/* The delta format written: what a receiver of DS_PROTO_VERSION_MAX
 * applies, and what the import's session agrees (bundle_import.c). */
#define DS_BUNDLE_DELTA_FMT DS_DELTA_FMT_ZPATCH2

struct exp {
    ds_sync_t *s;
    const ds_bundle_export_opts_t *o;
    const ds_server_cfg_t *srv;
    char *err;
    size_t errlen;
    ds_plan_want_t *want;
    const char **absent;
    ds_manifest_t *basis, *result; /* the state before and after */
    const ds_manifest_entry_t **basis_e;
    size_t basis_n;
    ds_plan_t *plan;
    ds_bundle_item_t *items;
    size_t n;
};

/* Formats the message into x->err; returns rc. */
int ds__exp_fail(struct exp *x, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Opens store file rel, checking it still has size bytes (*mode: its 0777
 * bits, may be NULL). Returns 0 or < 0 with x->err set. */
DS_MUST_CHECK int ds__exp_open_store(struct exp *x, const char *rel, uint64_t size, int *fd,
                                     uint32_t *mode);
/* The delta of a plan item (*dfd, caller closes; *dsize bytes). */
DS_MUST_CHECK int ds__exp_delta(struct exp *x, const ds_plan_item_t *it, int *dfd, uint64_t *dsize);
/* Reads a whole file of at most max bytes (*buf, caller frees). */
DS_MUST_CHECK int ds__exp_read_file(struct exp *x, const char *path, size_t max, uint8_t **buf,
                                    size_t *len);
/* Writes x's items as the bundle x->o->out (tmp + fsync + rename). */
DS_MUST_CHECK int ds__exp_write(struct exp *x, ds_bundle_export_stats_t *st);

#endif

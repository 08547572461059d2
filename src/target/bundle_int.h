/* Bundle import internals shared by bundle_import.c (the session with the
 * receiver) and bundle_apply.c (the state check and the items). */
#ifndef DS_BUNDLE_INT_H
#define DS_BUNDLE_INT_H

#include "distsync/apply.h"
#include "distsync/bundle.h"
#include "distsync/manifest.h"
#include "distsync/proto.h"

#define IMP_FRAME (4u << 20)
#define IMP_TTL   300u

struct imp {
    const ds_bundle_import_opts_t *o;
    ds_bundle_reader_t *r;
    const ds_bundle_hdr_t *h;
    const ds_bundle_item_t *items;
    size_t n;
    ds_apply_t *ap;
    ds_proto_buf_t req, rep;
    uint32_t id;
    int64_t renewed;
    char host[256];
    uint8_t *buf; /* one frame's data */
    char *err;
    size_t errlen;
};

/* What a request's final reply said. */
struct reply {
    uint8_t type;
    int32_t code;
    uint64_t size, value;
    uint8_t sha256[DS_SHA256_LEN];
    char path[512], msg[512];
};

/* "bundle FILE: <fmt>" into im->err; returns rc. */
int ds__bundle_fail(struct imp *im, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sends m (its id set here) to the receiver. Returns 0 or < 0 (err set). */
DS_MUST_CHECK int ds__bundle_send(struct imp *im, ds_msg_t *m);
/* The final reply to request id (an early FILE_ERR wins). Returns 0 or < 0. */
DS_MUST_CHECK int ds__bundle_await(struct imp *im, uint32_t id, struct reply *rp);
/* send + await; a reply other than want is its error code. */
DS_MUST_CHECK int ds__bundle_call(struct imp *im, ds_msg_t *m, uint8_t want, struct reply *rp);
/* Renews the lease when a third of it has passed. Returns 0 or < 0. */
DS_MUST_CHECK int ds__bundle_keep_lease(struct imp *im);
/* The manifest on the server's disk now (*m, caller frees). */
DS_MUST_CHECK int ds__bundle_load_manifest(struct imp *im, ds_manifest_t **m);
/* Whether b holds every path of a with its size and SHA-256, and (exact)
 * nothing else (*diff: a path that differs, NULL when none). Returns 0 or
 * DS_ENOMEM. */
DS_MUST_CHECK int ds__bundle_same_files(const ds_manifest_t *a, const ds_manifest_t *b, int exact,
                                        const char **diff);
/* bundle_apply.c: checks the state, then applies the items (cur: the
 * manifest on the server, want: the bundle's). Returns 0 or < 0. */
DS_MUST_CHECK int ds__bundle_apply(struct imp *im, const ds_manifest_t *cur,
                                   const ds_manifest_t *want, ds_bundle_import_stats_t *st);

#endif

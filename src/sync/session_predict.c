/*
 * Sender session: the manifest a target holds after our commit. Every
 * FILE_OK (of a FILE_COMMIT or an ADOPT) and every DELETE answered OK
 * changed the target's manifest exactly as the receiver records it (path,
 * size, the mtime as published, SHA-256; a path removed). When
 * MANIFEST_COMMIT is answered OK with the entry count the console expects,
 * the session applies those changes to the manifest it holds and takes its
 * digest as the one held: the refresh that follows sends it, and a target
 * whose manifest hashes the same answers MANIFEST_SAME (32 bytes instead of
 * the whole manifest). Only then are the bytes handed to opts.fetched (the
 * target cache), so the cache never holds a manifest the target did not
 * confirm. A target whose manifest differs (drift, a change the console did
 * not see) sends the whole manifest, as without the prediction.
 */
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/log.h"
#include "session_int.h"

struct ds_session_mchange {
    char *path;
    uint64_t size;
    int64_t mtime_ns;
    uint8_t sha256[DS_SHA256_LEN];
    int del;
};

void ds__session_mlog_clear(ds_session_t *s)
{
    for (size_t i = 0; i < s->nmlog; i++)
        free(s->mlog[i].path);
    free(s->mlog);
    s->mlog = NULL;
    s->nmlog = s->mlog_cap = 0;
    s->mlog_broken = 0;
}

void ds__session_mlog_add(ds_session_t *s, const char *path, const ds_session_result_t *r)
{
    struct ds_session_mchange *c;

    if (s->mlog_broken || s->version < DS_PROTO_VERSION_COND)
        return;
    if (path == NULL ||
        ds__session_grow((void **)&s->mlog, &s->mlog_cap, s->nmlog + 1, sizeof(*s->mlog)) < 0 ||
        (path = strdup(path)) == NULL) {
        s->mlog_broken = 1; /* no prediction: the refresh fetches in full */
        return;
    }
    c = &s->mlog[s->nmlog++];
    c->path = (char *)path;
    c->del = r->kind == DS_SRES_DELETE;
    c->size = r->size;
    c->mtime_ns = r->mtime_ns;
    memcpy(c->sha256, r->sha256, DS_SHA256_LEN);
}

/* Applies the change log to s->man. 0, or < 0 (s->man may be half done:
 * the caller stops predicting). */
static int apply_log(ds_session_t *s)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < s->nmlog; i++) {
        const struct ds_session_mchange *c = &s->mlog[i];

        if (c->del)
            (void)ds_manifest_remove(s->man, c->path); /* absent: nothing to forget */
        else
            rc = ds_manifest_put(s->man, c->path, c->size, c->mtime_ns, c->sha256);
    }
    return rc;
}

void ds__session_predict_drop(ds_session_t *s)
{
    free(s->man_pred);
    s->man_pred = NULL;
    s->man_pred_len = 0;
}

void ds__session_predict(ds_session_t *s, uint64_t entries)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int ok = 0;

    ds__session_predict_drop(s);
    if (s->man != NULL && !s->mlog_broken && s->version >= DS_PROTO_VERSION_COND &&
        apply_log(s) == 0 &&
        (entries == DS__SESSION_COUNT_ANY || ds_manifest_count(s->man) == entries) &&
        ds_manifest_encode(s->man, &buf, &len) == 0 && ds_sha256(buf, len, s->man_sha) == 0)
        ok = 1;
    s->have_man_sha = ok;
    if (ok && s->o.fetched != NULL) { /* kept for the cache once confirmed: encoded once */
        s->man_pred = buf;
        s->man_pred_len = len;
    } else {
        free(buf);
    }
    if (!ok && s->nmlog > 0)
        ds_log(DS_LOG_DEBUG, "manifest after the commit not predicted (%zu changes, %llu entries)",
               s->nmlog, (unsigned long long)entries);
    ds__session_mlog_clear(s);
}

void ds__session_predict_confirmed(ds_session_t *s)
{
    if (s->man_pred == NULL)
        return;
    ds__session_fetched(s, 0, s->man_pred, s->man_pred_len, 0);
    ds__session_fetched(s, 0, NULL, 0, 1);
    ds__session_predict_drop(s);
}

/*
 * Receiver: version 4 answers to MANIFEST_GET and LIST. Their data slices
 * are packed (zstd-compressed per frame), and a request that carries the
 * SHA-256 of the console's copy is answered MANIFEST_SAME / LIST_SAME when
 * the bytes the receiver would stream hash the same (src/PROTOCOL.md,
 * "Conditional fetch").
 */
#include <string.h>
#include <zstd.h>

#include "apply_int.h"
#include "distsync/error.h"

#define APPLY_ZLEVEL 3 /* zstd level of packed slices: fast, listings shrink ~5x */

int ds__apply_reply_data(ds_apply_t *ap, const ds_msg_t *m)
{
    if (ap->version < DS_PROTO_VERSION_COND)
        return ds__apply_reply(ap, m);
    if (ap->zcctx == NULL && (ap->zcctx = ZSTD_createCCtx()) == NULL)
        return DS_ENOMEM;
    return ds_proto_pack(&ap->out, m, ap->zcctx, APPLY_ZLEVEL);
}

int ds__apply_check_known(ds_apply_t *ap, const ds_msg_t *m)
{
    if (!m->u.path.has_known || ap->version >= DS_PROTO_VERSION_COND)
        return 0;
    return ds__apply_fatal(ap, m->id, DS_EPROTO,
                           "%s with a known digest in a protocol version %u "
                           "session (needs %u)",
                           ds_proto_type_name(m->type), ap->version, DS_PROTO_VERSION_COND);
}

int ds__apply_same(ds_apply_t *ap, const ds_msg_t *req, const uint8_t sha[DS_SHA256_LEN])
{
    ds_msg_t m = {.id = req->id};

    if (!req->u.path.has_known || memcmp(req->u.path.known, sha, DS_SHA256_LEN) != 0)
        return 0;
    m.type = req->type == DS_MSG_LIST ? DS_MSG_LIST_SAME : DS_MSG_MANIFEST_SAME;
    memcpy(m.u.same.sha256, sha, DS_SHA256_LEN);
    return ds__apply_reply(ap, &m) < 0 ? DS_ENOMEM : 1;
}

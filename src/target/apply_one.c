/*
 * Receiver: FILE_ONE (protocol version 6), a whole file in one frame. Most
 * files of an update are small deltas (a rebuilt library's gconv modules:
 * 130 bytes each), for which FILE_BEGIN, DELTA, DELTA_END and FILE_COMMIT
 * cost more than the delta (about 210 bytes and the path twice). FILE_ONE
 * carries the same fields once and is applied by the same steps, under the
 * file id DS_APPLY_ONE_FID for its duration; a failure at any step is
 * answered by the one final FILE_ERR, never an early one, and success by
 * FILE_DONE (the mtime as published: the console knows the size and
 * SHA-256 it sent, 44 bytes of FILE_OK less).
 */
#include <stdint.h>
#include <string.h>

#include "apply_int.h"
#include "distsync/proto.h"

/* The file id a FILE_ONE uses while it is applied (a FILE_BEGIN of this
 * id still open then ends the session: "reuses open file id"). */
#define DS_APPLY_ONE_FID UINT32_MAX

int ds__apply_file_one(ds_apply_t *ap, const ds_msg_t *m)
{
    const int delta = m->u.one.kind != DS_PROTO_ONE_LITERAL;
    ds_msg_t b = {.type = DS_MSG_FILE_BEGIN, .id = m->id};
    ds_msg_t d = {.type = delta ? DS_MSG_DELTA : DS_MSG_LITERAL, .id = m->id};
    ds_msg_t e = {.type = DS_MSG_DELTA_END, .id = m->id};
    ds_msg_t c = {.type = DS_MSG_FILE_COMMIT, .id = m->id};
    int rc;

    b.u.begin.file_id = DS_APPLY_ONE_FID;
    b.u.begin.path = m->u.one.path;
    b.u.begin.size = m->u.one.size;
    b.u.begin.mode = m->u.one.mode;
    b.u.begin.mtime_ns = m->u.one.mtime_ns;
    d.u.data.file_id = DS_APPLY_ONE_FID;
    d.u.data.basis = m->u.one.kind == DS_PROTO_ONE_DELTA_FROM ? m->u.one.basis : m->u.one.path;
    d.u.data.comp = m->u.one.comp;
    d.u.data.raw_len = m->u.one.raw_len;
    d.u.data.data = m->u.one.data;
    d.u.data.data_len = m->u.one.data_len;
    e.u.file.file_id = DS_APPLY_ONE_FID;
    c.u.commit.file_id = DS_APPLY_ONE_FID;
    c.u.commit.size = m->u.one.size;
    memcpy(c.u.commit.sha256, m->u.one.sha256, DS_SHA256_LEN);
    ap->one = 1;
    rc = ds__apply_file_begin(ap, &b);
    if (rc == 0 && (delta || m->u.one.raw_len > 0))
        rc = ds__apply_file_data(ap, &d);
    if (rc == 0 && delta)
        rc = ds__apply_file_delta_end(ap, &e);
    if (rc == 0)
        rc = ds__apply_file_commit(ap, &c); /* answered FILE_DONE or FILE_ERR */
    ap->one = 0;
    return rc;
}

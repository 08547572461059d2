/*
 * Version 4 packed replies: MANIFEST_DATA and LIST_DATA whose plain payload
 * travels zstd-compressed (src/PROTOCOL.md, "Packed replies"). Pure: no I/O.
 * Unpacking is bounded: a frame never decompresses to more than the raw_len
 * it declares, itself at most DS_PROTO_MAX_DATA.
 */
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "distsync/error.h"
#include "distsync/proto.h"

int ds_proto_pack(ds_proto_buf_t *out, const ds_msg_t *m, void *zc, int level)
{
    ds_proto_buf_t plain = {0}, z = {0};
    ds_msg_t pm = *m;
    size_t raw, bound, zn = 0;
    int rc;

    if ((m->type != DS_MSG_MANIFEST_DATA && m->type != DS_MSG_LIST_DATA) ||
        (m->flags & DS_PROTO_F_PACKED))
        return DS_EPROTO;
    rc = ds_proto_encode(&plain, m);
    if (rc < 0)
        goto out;
    raw = plain.len - DS_PROTO_HDR_LEN;
    if (raw > DS_PROTO_MAX_DATA) {
        rc = DS_ETOOBIG;
        goto out;
    }
    bound = ZSTD_compressBound(raw);
    if (zc != NULL && raw > 0 && ds_proto_buf_reserve(&z, bound) == 0) {
        zn = ZSTD_compressCCtx(zc, z.p, bound, plain.p + DS_PROTO_HDR_LEN, raw, level);
        if (ZSTD_isError(zn) || zn >= raw)
            zn = 0; /* does not pay: sent as is */
    }
    pm.flags = (uint8_t)(m->flags | DS_PROTO_F_PACKED);
    pm.u.packed.raw_len = (uint32_t)raw;
    pm.u.packed.comp = zn ? DS_PROTO_COMP_ZSTD : DS_PROTO_COMP_NONE;
    pm.u.packed.data = zn ? z.p : plain.p + DS_PROTO_HDR_LEN;
    pm.u.packed.data_len = (uint32_t)(zn ? zn : raw);
    rc = ds_proto_encode(out, &pm);
out:
    ds_proto_buf_free(&plain);
    ds_proto_buf_free(&z);
    return rc;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * (3 - i)));
}

int ds_proto_unpack(ds_proto_unpacker_t *u, const ds_msg_t *m, ds_msg_t *out)
{
    uint32_t raw = m->u.packed.raw_len;
    uint8_t *hdr;
    int rc;

    if (!(m->flags & DS_PROTO_F_PACKED) || raw > DS_PROTO_MAX_DATA)
        return DS_EPROTO;
    u->buf.len = 0;
    rc = ds_proto_buf_reserve(&u->buf, DS_PROTO_HDR_LEN + (size_t)raw);
    if (rc < 0)
        return rc;
    hdr = u->buf.p;
    put_u32(hdr, raw);
    hdr[4] = m->type;
    hdr[5] = (uint8_t)(m->flags & ~DS_PROTO_F_PACKED);
    hdr[6] = hdr[7] = 0;
    put_u32(hdr + 8, m->id);
    if (m->u.packed.comp == DS_PROTO_COMP_NONE) {
        if (m->u.packed.data_len != raw)
            return DS_EPROTO;
        if (raw)
            memcpy(hdr + DS_PROTO_HDR_LEN, m->u.packed.data, raw);
    } else {
        size_t r;

        if (u->dctx == NULL && (u->dctx = ZSTD_createDCtx()) == NULL)
            return DS_ENOMEM;
        /* the output buffer holds raw bytes: zstd stops there, whatever
         * the frame claims (dstSize_tooSmall) */
        r = ZSTD_decompressDCtx(u->dctx, hdr + DS_PROTO_HDR_LEN, raw, m->u.packed.data,
                                m->u.packed.data_len);
        if (ZSTD_isError(r) || r != raw)
            return DS_ECORRUPT;
    }
    u->buf.len = DS_PROTO_HDR_LEN + (size_t)raw;
    return ds_proto_decode(u->buf.p, u->buf.len, out);
}

void ds_proto_unpacker_free(ds_proto_unpacker_t *u)
{
    if (u == NULL)
        return;
    ZSTD_freeDCtx(u->dctx);
    u->dctx = NULL;
    ds_proto_buf_free(&u->buf);
}

/*
 * Frame codec fuzz target: splits arbitrary bytes into frames and decodes
 * them. Every frame that decodes must re-encode to exactly the same bytes
 * (the encoding is canonical), and LIST_DATA entries must walk cleanly.
 */
#include <stdlib.h>
#include <string.h>

#include "distsync/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_frame(const uint8_t *p, size_t n)
{
    ds_proto_buf_t out = {0};
    ds_msg_t m;

    if (ds_proto_decode(p, n, &m) != 0)
        return;
    if (ds_proto_encode(&out, &m) != 0 || out.len != n || memcmp(out.p, p, n) != 0)
        abort();
    if (m.type == DS_MSG_LIST_DATA) {
        const uint8_t *e = m.u.list.entries;
        size_t len = m.u.list.len;
        ds_list_entry_t ent;

        while (ds_proto_list_next(&e, &len, &ent) == 1)
            if (ent.path.n > DS_PROTO_STR_MAX)
                abort();
    }
    ds_proto_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    while (size > 0) {
        long fl = ds_proto_frame_len(data, size);

        if (fl <= 0)
            break;
        if ((size_t)fl > size)
            abort();
        check_frame(data, (size_t)fl);
        data += fl;
        size -= (size_t)fl;
    }
    return 0;
}

/*
 * Sender session: the target cache of protocol version 4. When the console
 * holds the manifest bytes and listing it received from a target last time
 * (opts.known_*), MANIFEST_GET and LIST carry their SHA-256 and a target
 * whose bytes hash the same answers MANIFEST_SAME / LIST_SAME: those bytes
 * are then decoded from the console's copy, exactly as if received, so the
 * plan is the same as after a full fetch. Packed (compressed) slices are
 * unpacked here, bounded by ds_proto_unpack(). With opts.pipeline those
 * requests go with HELLO (ds_session_prelude: the bytes they make, for a
 * transport that writes them ahead; ds_session_refused: an older receiver
 * refused that HELLO).
 */
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "session_int.h"

int ds__session_known_init(ds_session_t *s)
{
    int rc = 0;

    if (s->o.known_manifest)
        rc = ds_sha256(s->o.known_manifest, s->o.known_manifest_len, s->known_man_sha);
    if (rc == 0 && s->o.known_list)
        rc = ds_sha256(s->o.known_list, s->o.known_list_len, s->known_list_sha);
    s->pipelined = s->o.pipeline && (s->o.known_manifest != NULL || s->o.known_list != NULL);
    s->fetch_deferred = !s->pipelined && (s->o.known_manifest != NULL || s->o.known_list != NULL);
    return rc < 0 ? DS_ENOMEM : 0;
}

int ds__session_manifest_get(ds_session_t *s, uint64_t tag)
{
    ds_msg_t g = {.type = DS_MSG_MANIFEST_GET};
    const uint8_t *sha = s->have_man_sha       ? s->man_sha
                         : s->o.known_manifest ? s->known_man_sha
                                               : NULL;

    if (s->version >= DS_PROTO_VERSION_COND && sha != NULL) {
        g.u.path.has_known = 1;
        memcpy(g.u.path.known, sha, DS_SHA256_LEN);
    }
    return ds__session_send(s, &g, 1, tag, 0, NULL);
}

void ds__session_man_hash(ds_session_t *s, const uint8_t *p, size_t n, int end)
{
    if (s->version < DS_PROTO_VERSION_COND)
        return;
    if (s->man_hash.md == NULL) {
        s->have_man_sha = 0;
        if (ds_sha256_init(&s->man_hash) < 0)
            return; /* no digest: the next refresh fetches in full */
    }
    if (!end) {
        ds_sha256_update(&s->man_hash, p, n);
        return;
    }
    ds_sha256_final(&s->man_hash, s->man_sha);
    s->have_man_sha = 1;
}

int ds__session_queue_fetch(ds_session_t *s)
{
    ds_msg_t l = {.type = DS_MSG_LIST};
    int rc;

    l.u.path.path = ds_pstr("");
    if (s->version == 0 && s->pipelined) /* ahead of HELLO_OK: for version 4..max */
        s->version = DS_PROTO_VERSION_COND;
    if (s->version >= DS_PROTO_VERSION_COND && s->o.known_list) {
        l.u.path.has_known = 1;
        memcpy(l.u.path.known, s->known_list_sha, DS_SHA256_LEN);
    }
    rc = ds__session_manifest_get(s, 0);
    if (rc == 0)
        rc = ds__session_send(s, &l, 1, 0, 0, NULL);
    if (!s->hello_ok)
        s->version = 0; /* HELLO_OK says which */
    if (rc < 0)
        return ds__session_fail(s, rc, "out of memory");
    return 0;
}

int ds__session_on_same(ds_session_t *s, const ds_msg_t *m)
{
    int man = m->type == DS_MSG_MANIFEST_SAME, held = man && s->have_man_sha;
    const uint8_t *known = man ? s->o.known_manifest : s->o.known_list;
    const uint8_t *sha = held ? s->man_sha : man ? s->known_man_sha : s->known_list_sha;

    /* only an answer to the digest we sent, never to a plain request */
    if ((known == NULL && !held) || s->version < DS_PROTO_VERSION_COND ||
        memcmp(m->u.same.sha256, sha, DS_SHA256_LEN) != 0)
        return ds__session_fail(s, DS_EPROTO, "%s from the target does not answer our request",
                                ds_proto_type_name(m->type));
    if (held) { /* a refresh: the manifest held is current */
        s->manifest_ok = 1;
        ds__session_predict_confirmed(s);
        ds__session_pop(s);
        return 0;
    }
    if (man) {
        int rc = ds__session_feed_manifest(s, known, s->o.known_manifest_len, 1);

        if (rc == 1) {
            memcpy(s->man_sha, s->known_man_sha, DS_SHA256_LEN);
            s->have_man_sha = 1;
        }
        return rc < 0 ? rc : 0;
    }
    if (ds__session_add_entries(s, known, s->o.known_list_len) < 0)
        return s->rc;
    s->list_ok = 1;
    ds__session_pop(s);
    return 0;
}

int ds__session_unpack(ds_session_t *s, ds_msg_t *m)
{
    ds_msg_t plain;
    int rc;

    if (s->version < DS_PROTO_VERSION_COND)
        return ds__session_fail(s, DS_EPROTO, "packed %s from a protocol version %u target",
                                ds_proto_type_name(m->type), s->version);
    rc = ds_proto_unpack(&s->unpack, m, &plain);
    if (rc == DS_ENOMEM)
        return ds__session_fail(s, rc, "out of memory reading %s", ds_proto_type_name(m->type));
    if (rc < 0)
        return ds__session_fail(s, rc, "malformed packed %s from the target (%s)",
                                ds_proto_type_name(m->type),
                                rc == DS_ECORRUPT ? "bad zstd frame or wrong length" : "payload");
    *m = plain;
    return 0;
}

void ds__session_fetched(ds_session_t *s, int what, const uint8_t *p, size_t n, int end)
{
    if (s->o.fetched)
        s->o.fetched(s->o.fetched_arg, what, p, n, end);
}

int ds_session_prelude(const ds_session_opts_t *opts, uint8_t **out, size_t *len)
{
    ds_session_opts_t o = *opts;
    ds_session_t *s = NULL;
    int rc;

    *out = NULL;
    *len = 0;
    o.fetched = NULL;
    o.fetched_free = NULL; /* the caller keeps its fetched_arg */
    o.fetched_arg = NULL;
    rc = ds_session_new(NULL, &o, &s);
    if (rc == 0)
        rc = ds_session_start(s);
    if (rc == 0 && (*out = malloc(s->out.len ? s->out.len : 1)) == NULL)
        rc = DS_ENOMEM;
    if (rc == 0) {
        memcpy(*out, s->out.p, s->out.len);
        *len = s->out.len;
    }
    ds_session_free(s);
    return rc;
}

int ds_session_refused(const ds_session_t *s)
{
    return s->pipelined && !s->hello_ok && s->phase == DS_SESSION_FAILED && s->rc == DS_EVERSION;
}

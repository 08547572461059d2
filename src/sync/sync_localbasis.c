/*
 * distsync/localbasis.h: the console's retain store as the SMB worker's
 * source of basis versions (ds_apply_local_t). A version is verified whole
 * (ds_retain_verify: every chunk and the SHA-256) once per process, then
 * read by range.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/localbasis.h"
#include "distsync/retain.h"

struct lb {
    ds_retain_t *ret;
    /* SHA-256s verified in this process: an open-addressed set of cap
     * slots (a power of two, at most half full), probed from a hash's
     * first bytes (a SHA-256 is uniform already). */
    struct okslot {
        uint8_t sha[DS_SHA256_LEN];
        uint8_t used;
    } * ok;
    size_t nok, cap;
};

/* The slot holding sha, else the empty slot where it would go (cap > 0). */
static struct okslot *slot(struct okslot *ok, size_t cap, const uint8_t *sha)
{
    uint64_t h;
    size_t i;

    memcpy(&h, sha, sizeof(h));
    for (i = (size_t)h & (cap - 1); ok[i].used; i = (i + 1) & (cap - 1))
        if (memcmp(ok[i].sha, sha, DS_SHA256_LEN) == 0)
            break;
    return &ok[i];
}

static int verified(const struct lb *b, const uint8_t *sha)
{
    return b->cap > 0 && slot(b->ok, b->cap, sha)->used;
}

static int note_verified(struct lb *b, const uint8_t *sha)
{
    struct okslot *e;

    if (2 * (b->nok + 1) > b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 32;
        struct okslot *p = calloc(cap, sizeof(*p));

        if (p == NULL)
            return DS_ENOMEM;
        for (size_t i = 0; i < b->cap; i++)
            if (b->ok[i].used)
                *slot(p, cap, b->ok[i].sha) = b->ok[i];
        free(b->ok);
        b->ok = p;
        b->cap = cap;
    }
    e = slot(b->ok, b->cap, sha);
    if (!e->used) {
        memcpy(e->sha, sha, DS_SHA256_LEN);
        e->used = 1;
        b->nok++;
    }
    return 0;
}

static int lb_open(void *arg, const uint8_t sha256[DS_SHA256_LEN], uint64_t size, void **h)
{
    struct lb *b = arg;
    ds_retain_reader_t *rd = NULL;
    int rc = 0;

    *h = NULL;
    if (!verified(b, sha256) && (rc = ds_retain_verify(b->ret, sha256)) == 0)
        rc = note_verified(b, sha256);
    if (rc == 0)
        rc = ds_retain_open_version(b->ret, sha256, 0, &rd);
    if (rc == 0 && ds_retain_reader_size(rd) != size)
        rc = DS_EHASH; /* the manifest's size is not this version's */
    if (rc < 0)
        ds_retain_reader_free(rd);
    else
        *h = rd;
    return rc;
}

static long lb_pread(void *h, uint64_t off, void *buf, size_t len)
{
    return ds_retain_read(h, off, buf, len);
}

static void lb_close(void *h)
{
    ds_retain_reader_free(h);
}

int ds_localbasis_open(const char *dir, ds_apply_local_t *out)
{
    struct lb *b = calloc(1, sizeof(*b));
    int rc = b ? ds_retain_open(dir, &b->ret) : DS_ENOMEM;

    memset(out, 0, sizeof(*out));
    if (rc < 0) {
        free(b);
        return rc;
    }
    *out = (ds_apply_local_t){.open = lb_open, .pread = lb_pread, .close = lb_close, .arg = b};
    return 0;
}

void ds_localbasis_close(ds_apply_local_t *l)
{
    struct lb *b = l->arg;

    if (b != NULL) {
        ds_retain_close(b->ret);
        free(b->ok);
        free(b);
    }
    memset(l, 0, sizeof(*l));
}

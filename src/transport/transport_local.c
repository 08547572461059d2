/*
 * file:// backend, transport = local: the receiver runs in-process. A write
 * feeds the bytes to ds_apply_feed() at once (blocking file-system work, as
 * an agent would do on its side) and takes what the receiver consumed: 0
 * (would block) while its replies are not drained; a read hands back its
 * queued replies, letting it resume a streamed reply first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/apply.h"
#include "distsync/error.h"
#include "distsync/transport.h"

struct local {
    ds_transport_t t; /* first: the common head */
    ds_apply_t *ap;
    int dead;   /* the receiver ended the session (fatal error) */
    int closed; /* close() was called */
};

static long local_write(ds_transport_t *t, const void *p, size_t n)
{
    struct local *l = (struct local *)t;
    long used;

    if (l->dead || l->closed)
        return (long)n; /* swallowed: the session end is reported by read */
    used = ds_apply_feed(l->ap, p, n);
    if (used < 0) {
        l->dead = 1;
        return (long)n;
    }
    return used;
}

static long local_read(ds_transport_t *t, void *buf, size_t cap)
{
    struct local *l = (struct local *)t;
    const uint8_t *p;
    size_t len;

    ds_apply_output(l->ap, &p, &len);
    if (len == 0 && !l->dead && !l->closed) { /* resume a streamed reply */
        if (ds_apply_feed(l->ap, NULL, 0) < 0)
            l->dead = 1;
        ds_apply_output(l->ap, &p, &len);
    }
    if (len == 0) {
        if (l->dead || ds_apply_done(l->ap)) {
            snprintf(t->err, sizeof(t->err), "receiver ended the session");
            return DS_ETRANSPORT;
        }
        return 0;
    }
    if (len > cap)
        len = cap;
    memcpy(buf, p, len);
    ds_apply_output_consume(l->ap, len);
    return (long)len;
}

static int local_close(ds_transport_t *t)
{
    struct local *l = (struct local *)t;
    int rc;

    if (l->closed)
        return 0;
    l->closed = 1;
    rc = ds_apply_finish(l->ap);
    if (rc < 0)
        snprintf(t->err, sizeof(t->err), "receiver: %s", ds_strerror(rc));
    return rc;
}

static void local_free(ds_transport_t *t)
{
    struct local *l = (struct local *)t;

    ds_apply_free(l->ap);
    free(l);
}

static const ds_transport_ops_t local_ops = {
    .name = "local",
    .write = local_write,
    .read = local_read,
    .close = local_close,
    .free = local_free,
};

int ds__transport_local_open(const char *root, int no_fsync, ds_transport_t **out, char *err,
                             size_t errlen)
{
    ds_apply_opts_t o = {.no_fsync = no_fsync};
    struct local *l = calloc(1, sizeof(*l));
    int rc;

    *out = NULL;
    if (l == NULL) {
        snprintf(err, errlen, "file://%s: out of memory", root);
        return DS_ENOMEM;
    }
    l->t.ops = &local_ops;
    l->t.rfd = l->t.wfd = -1;
    rc = ds_apply_new(root, &o, &l->ap, err, errlen);
    if (rc < 0) {
        free(l);
        return rc;
    }
    *out = &l->t;
    return 0;
}

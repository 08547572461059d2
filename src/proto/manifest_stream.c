/*
 * Manifest decoder fed in slices: the console decodes a target's manifest as
 * MANIFEST_DATA frames arrive, so it never holds the encoded bytes whole
 * (memory is the decoded manifest plus one entry). ds_manifest_decode()
 * is this decoder fed once. Format: src/PROTOCOL.md ("Manifest format").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/manifest.h"
#include "distsync/pathsafe.h"

#define MAGIC     "DSMANIF\n"
#define HDR_LEN   24 /* magic, u32 version, u32 flags, u64 count */
#define ENT_FIXED (2 + 8 + 8 + DS_SHA256_LEN)
#define ENT_MAX   (ENT_FIXED + DS_PATHSAFE_MAX)

enum { S_HDR, S_ENT, S_SUM, S_DONE, S_FAILED };

struct ds_manifest_decoder {
    int state, rc;
    uint64_t max_len, max_entries, fed, count, i;
    ds_sha256_t sha;
    ds_manifest_t *m;
    uint8_t buf[ENT_MAX]; /* the header, entry or trailer being collected */
    size_t have, need;
    char prev[DS_PATHSAFE_MAX + 1];
    char err[256];
};

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static int fail(ds_manifest_decoder_t *d, int rc, const char *msg)
{
    snprintf(d->err, sizeof(d->err), "manifest: %s (at entry %llu)", msg, (unsigned long long)d->i);
    d->state = S_FAILED;
    d->rc = rc;
    return rc;
}

int ds_manifest_decoder_new(uint64_t max_len, uint64_t max_entries, ds_manifest_decoder_t **out)
{
    ds_manifest_decoder_t *d = calloc(1, sizeof(*d));

    *out = NULL;
    if (d == NULL || ds_sha256_init(&d->sha) < 0 || ds_manifest_new(&d->m) < 0) {
        ds_manifest_decoder_free(d);
        return DS_ENOMEM;
    }
    d->max_len = max_len;
    d->max_entries = max_entries;
    d->need = HDR_LEN;
    *out = d;
    return 0;
}

void ds_manifest_decoder_free(ds_manifest_decoder_t *d)
{
    if (d == NULL)
        return;
    ds_sha256_close(&d->sha);
    ds_manifest_free(d->m);
    free(d);
}

static int header(ds_manifest_decoder_t *d)
{
    const uint8_t *b = d->buf;

    if (memcmp(b, MAGIC, 8) != 0)
        return fail(d, DS_ECORRUPT, "not a distsync manifest");
    if (get_be(b + 8, 4) != DS_MANIFEST_VERSION)
        return fail(d, DS_EVERSION, "unsupported manifest version");
    if (get_be(b + 12, 4) != 0)
        return fail(d, DS_ECORRUPT, "unknown flags");
    d->count = get_be(b + 16, 8);
    if ((d->max_len && d->count > d->max_len / (ENT_FIXED + 1)) ||
        (d->max_entries && d->count > d->max_entries)) {
        snprintf(
            d->err, sizeof(d->err), "manifest has %llu entries, more than the limit of %llu",
            (unsigned long long)d->count,
            (unsigned long long)(d->max_entries ? d->max_entries : d->max_len / (ENT_FIXED + 1)));
        d->state = S_FAILED;
        return d->rc = DS_ETOOBIG;
    }
    d->state = d->count ? S_ENT : S_SUM;
    d->need = d->count ? 2 : DS_SHA256_LEN;
    return 0;
}

/* A complete entry is in d->buf (d->have bytes). */
static int entry(ds_manifest_decoder_t *d)
{
    const uint8_t *p = d->buf;
    size_t pl = d->have - ENT_FIXED;
    char path[DS_PATHSAFE_MAX + 1];
    int rc;

    memcpy(path, p + 2, pl);
    path[pl] = '\0';
    if (memchr(path, '\0', pl) != NULL || ds_pathsafe_check(path, NULL) < 0)
        return fail(d, DS_ECORRUPT, "unsafe path");
    if (d->i > 0 && strcmp(d->prev, path) >= 0)
        return fail(d, DS_ECORRUPT, "paths not sorted or duplicated");
    p += 2 + pl;
    rc = ds_manifest_put(d->m, path, get_be(p, 8), (int64_t)get_be(p + 8, 8), p + 16);
    if (rc < 0)
        return fail(d, rc, "cannot store entry");
    memcpy(d->prev, path, pl + 1);
    if (++d->i == d->count) {
        d->state = S_SUM;
        d->need = DS_SHA256_LEN;
    } else {
        d->need = 2;
    }
    return 0;
}

/* d->buf holds d->need bytes: moves the state machine on. */
static int step(ds_manifest_decoder_t *d)
{
    uint8_t sum[DS_SHA256_LEN];

    if (d->state != S_SUM)
        ds_sha256_update(&d->sha, d->buf + (d->state == S_ENT && d->have > 2 ? 2 : 0),
                         d->state == S_ENT && d->have > 2 ? d->have - 2 : d->have);
    switch (d->state) {
    case S_HDR:
        d->have = 0;
        return header(d);
    case S_ENT:
        if (d->have == 2) { /* the path length: now the whole entry's size */
            size_t pl = (size_t)get_be(d->buf, 2);

            if (pl > DS_PATHSAFE_MAX)
                return fail(d, DS_ECORRUPT, "truncated or oversized entry");
            d->need = ENT_FIXED + pl;
            return 0;
        }
        if (entry(d) < 0)
            return d->rc;
        d->have = 0;
        return 0;
    default: /* S_SUM */
        ds_sha256_final(&d->sha, sum);
        if (memcmp(sum, d->buf, DS_SHA256_LEN) != 0)
            return fail(d, DS_ECORRUPT, "checksum mismatch");
        d->state = S_DONE;
        return 0;
    }
}

int ds_manifest_decoder_feed(ds_manifest_decoder_t *d, const void *p, size_t n)
{
    const uint8_t *b = p;

    if (d->state == S_FAILED)
        return d->rc;
    d->fed += n;
    if (d->max_len && d->fed > d->max_len) {
        if (d->max_len % (1u << 20) == 0)
            snprintf(d->err, sizeof(d->err), "manifest is larger than the %llu MiB limit",
                     (unsigned long long)(d->max_len >> 20));
        else
            snprintf(d->err, sizeof(d->err), "manifest is larger than the %llu-byte limit",
                     (unsigned long long)d->max_len);
        d->state = S_FAILED;
        return d->rc = DS_ETOOBIG;
    }
    while (n > 0) {
        size_t k = d->need - d->have;

        if (d->state == S_DONE)
            return fail(d, DS_ECORRUPT, "trailing bytes after the entries");
        if (k > n)
            k = n;
        memcpy(d->buf + d->have, b, k);
        d->have += k;
        b += k;
        n -= k;
        if (d->have == d->need && step(d) < 0)
            return d->rc;
    }
    return 0;
}

int ds_manifest_decoder_finish(ds_manifest_decoder_t *d, ds_manifest_t **out)
{
    *out = NULL;
    if (d->state == S_FAILED)
        return d->rc;
    if (d->state != S_DONE) {
        if (d->state == S_HDR)
            return fail(d, DS_ECORRUPT, "not a distsync manifest");
        return fail(d, DS_ECORRUPT, "truncated");
    }
    *out = d->m;
    d->m = NULL;
    d->state = S_FAILED;
    d->rc = DS_EUSAGE; /* finished: the manifest is gone */
    snprintf(d->err, sizeof(d->err), "manifest: decoder already finished");
    return 0;
}

const char *ds_manifest_decoder_error(const ds_manifest_decoder_t *d)
{
    return d->err;
}

int ds_manifest_decode(const void *buf, size_t len, ds_manifest_t **out, char *err, size_t errlen)
{
    ds_manifest_decoder_t *d = NULL;
    int rc;

    *out = NULL;
    rc = ds_manifest_decoder_new(0, 0, &d);
    if (rc == 0)
        rc = ds_manifest_decoder_feed(d, buf, len);
    if (rc == 0)
        rc = ds_manifest_decoder_finish(d, out);
    if (rc < 0 && d && err && errlen)
        snprintf(err, errlen, "%s", d->err);
    ds_manifest_decoder_free(d);
    return rc;
}

/*
 * zpatch encoder, DS_ZPATCH_COPY_ONLY variant (the SMB worker's): COPY
 * records along approximate alignments. There every byte a COPY does not
 * cover crosses the link uncompressed, and a COPY is a server-side copy.
 * A rebuilt shared object shares few identical content-defined chunks with
 * its previous build (addresses moved by a constant change a few bytes in
 * every few hundred), but the alignment BSDIFF records are made from
 * (zpatch_bsdiff.c) lines most of it up with the basis: the stretches of it
 * that agree byte for byte over DS_ZP_ALIGN_MIN_COPY bytes become copies,
 * the differing bytes between them literals. Measured on the libc6
 * 2.36-9+deb12u7 -> u14 update (bench/smb): 7.7 MB of literal bytes before,
 * about 3 MB after.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "zpatch_int.h"

/* The alignment costs a suffix-array search (cache misses) per target
 * byte where nothing aligns: a piece of new content is found out first by
 * PROBES searches spread over it; unless a quarter of them find a match of
 * PROBE_LEN bytes, it goes literal (pieces under PROBE_MIN are aligned
 * anyway). tools/gen-content's small update: 4.3 s of CPU without. */
#define PROBES    32
#define PROBE_LEN 32
#define PROBE_MIN (16u << 10)
/* Literal runs shorter than this in all are not worth a suffix sort. */
#define MIN_LITERAL (8u << 10)

struct out {
    ds_zp_span_t *v;
    size_t n, cap;
    uint64_t copied;
};

/* Appends a span, merged into the last one where they join. */
static int push(struct out *o, int copy, uint64_t toff, uint64_t len, uint64_t boff)
{
    ds_zp_span_t *l = o->n > 0 ? &o->v[o->n - 1] : NULL;

    if (len == 0)
        return 0;
    if (copy)
        o->copied += len;
    if (l != NULL && l->copy == copy && l->toff + l->len == toff &&
        (!copy || l->boff + l->len == boff)) {
        l->len += len;
        return 0;
    }
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 64;
        ds_zp_span_t *v = realloc(o->v, cap * sizeof(*v));

        if (v == NULL)
            return DS_ENOMEM;
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n++] = (ds_zp_span_t){.toff = toff, .len = len, .boff = copy ? boff : 0, .copy = copy};
    return 0;
}

struct piece {
    struct out *o;
    const uint8_t *old, *nw; /* the basis; the target piece, at target offset base */
    uint64_t base;
};

/* One alignment step: the agreeing stretches of at least
 * DS_ZP_ALIGN_MIN_COPY bytes as copies, the rest as literals. */
static int step(void *ctx, size_t at, size_t from, size_t add, size_t extra)
{
    struct piece *p = ctx;
    size_t i = 0;
    int rc = 0;

    while (rc == 0 && i < add) {
        size_t j = i;

        while (j < add && p->nw[at + j] == p->old[from + j])
            j++;
        if (j - i >= DS_ZP_ALIGN_MIN_COPY)
            rc = push(p->o, 1, p->base + at + i, j - i, from + i);
        else
            rc = push(p->o, 0, p->base + at + i, j - i, 0);
        for (i = j; rc == 0 && j < add && p->nw[at + j] != p->old[from + j]; j++)
            ;
        if (rc == 0)
            rc = push(p->o, 0, p->base + at + i, j - i, 0);
        i = j;
    }
    return rc == 0 ? push(p->o, 0, p->base + at + add, extra, 0) : rc;
}

/* Whether nw[0, n) looks like it aligns with the basis (see PROBES). */
static int aligns(ds_zp_bs_t *bs, const uint8_t *nw, size_t n)
{
    unsigned hits = 0;
    size_t pos;

    if (n < PROBE_MIN)
        return 1;
    for (unsigned i = 0; i < PROBES; i++) {
        size_t at = n / PROBES * i;

        hits += ds__zp_bs_longest(bs, nw + at, PROBE_LEN, &pos) >= PROBE_LEN;
    }
    return hits * 4 >= PROBES;
}

/* The literal run [toff, toff + len) along the alignment, a
 * DS_ZPATCH_BS_SEG_MAX piece at a time. */
static int align_run(ds_zp_bs_t *bs, const uint8_t *old, const ds_delta_src_t *target, uint8_t *buf,
                     struct out *o, uint64_t toff, uint64_t len)
{
    int rc = 0;

    while (rc == 0 && len > 0) {
        size_t n = len < DS_ZPATCH_BS_SEG_MAX ? (size_t)len : DS_ZPATCH_BS_SEG_MAX, mark = o->n;
        struct piece p = {o, old, buf, toff};
        /* push() may have grown the span before mark: undone with the rest */
        uint64_t was = o->copied, last = mark > 0 ? o->v[mark - 1].len : 0;

        rc = ds__zp_read_exact(target, toff, buf, n);
        if (rc == 0)
            rc = aligns(bs, buf, n) ? ds__zp_bs_align(bs, buf, n, step, &p) : DS_ERANGE;
        if (rc == DS_ETOOBIG || rc == DS_ERANGE) { /* out of bounds: literal */
            o->n = mark;
            o->copied = was;
            if (mark > 0)
                o->v[mark - 1].len = last;
            rc = push(o, 0, toff, n, 0);
        }
        toff += n;
        len -= n;
    }
    return rc;
}

int ds__zp_align_spans(const uint8_t *old, size_t on, const ds_delta_src_t *target, uint8_t *buf,
                       ds_zp_span_t **v, size_t *n, uint64_t *copied)
{
    struct out o = {0};
    ds_zp_bs_t *bs = NULL;
    uint64_t literal = 0;
    int rc;

    for (size_t i = 0; i < *n; i++)
        literal += (*v)[i].copy ? 0 : (*v)[i].len;
    if (literal < MIN_LITERAL)
        return 0;
    rc = ds__zp_bs_new(old, on, &bs);

    for (size_t i = 0; rc == 0 && i < *n; i++) {
        const ds_zp_span_t *s = &(*v)[i];

        if (s->copy)
            rc = push(&o, 1, s->toff, s->len, s->boff);
        else
            rc = align_run(bs, old, target, buf, &o, s->toff, s->len);
    }
    ds__zp_bs_free(bs);
    if (rc < 0) {
        free(o.v);
        return rc;
    }
    free(*v);
    *v = o.v;
    *n = o.n;
    *copied = o.copied;
    return 0;
}

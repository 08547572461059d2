/*
 * Planner: merges the desired set with the target's state (see plan.h).
 * Everything is sorted by path (byte order) and joined; the basis search
 * goes through the oracle.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/plan.h"
#include "plan_same.h"

/* The target's state at one path. */
struct tstate {
    const char *path;
    const ds_plan_have_t *have;     /* regular file listed, or NULL */
    const ds_manifest_entry_t *man; /* manifest entry, or NULL */
    const ds_plan_hash_t *hash;     /* hash result, or NULL */
    int known;                      /* sha256 is the file's content */
    int drifted, unknown, present;
    uint8_t sha256[DS_SHA256_LEN];
    int changing; /* a create/update rewrites this path in this plan */
};

/* A content the target holds that may serve as a basis. */
struct cand {
    int64_t id;
    const struct tstate *ts;
};

struct build {
    const ds_plan_input_t *in;
    const ds_plan_want_t **want;
    const ds_plan_have_t **have;
    const ds_plan_hash_t **hash;
    size_t nhave;
    struct tstate *ts;
    size_t nts;
    struct cand *cand;
    size_t ncand;
    ds_plan_t *plan;
    ds__plan_same_t *same; /* contents the items so far put on the target */
};

static int cmp_str(const char *a, const char *b)
{
    return strcmp(a, b);
}

static int cmp_want(const void *a, const void *b)
{
    return cmp_str((*(const ds_plan_want_t *const *)a)->path,
                   (*(const ds_plan_want_t *const *)b)->path);
}

static int cmp_have(const void *a, const void *b)
{
    return cmp_str((*(const ds_plan_have_t *const *)a)->path,
                   (*(const ds_plan_have_t *const *)b)->path);
}

static int cmp_hash(const void *a, const void *b)
{
    return cmp_str((*(const ds_plan_hash_t *const *)a)->path,
                   (*(const ds_plan_hash_t *const *)b)->path);
}

static int cmp_ts(const void *a, const void *b)
{
    return cmp_str(((const struct tstate *)a)->path, ((const struct tstate *)b)->path);
}

/* 1 when path's first component is one of the server's classes. */
static int in_classes(const ds_plan_input_t *in, const char *path)
{
    size_t n = strcspn(path, "/");

    if (path[n] != '/')
        return 0; /* a file at the top level belongs to no class */
    for (size_t i = 0; i < in->nclasses; i++)
        if (strlen(in->classes[i]) == n && memcmp(in->classes[i], path, n) == 0)
            return 1;
    return 0;
}

static const void *find(const void *key, const void *base, size_t n, size_t sz,
                        int (*cmp)(const void *, const void *))
{
    const void *const *r = bsearch(key, base, n, sz, cmp);

    return r ? *r : NULL;
}

static const ds_plan_have_t *find_have(struct build *b, const char *path)
{
    ds_plan_have_t k = {.path = path};
    const ds_plan_have_t *kp = &k;

    return find(&kp, b->have, b->nhave, sizeof(*b->have), cmp_have);
}

static const ds_plan_hash_t *find_hash(struct build *b, const char *path)
{
    ds_plan_hash_t k = {.path = path};
    const ds_plan_hash_t *kp = &k;

    return find(&kp, b->hash, b->in->nhashes, sizeof(*b->hash), cmp_hash);
}

static const ds_plan_want_t *find_want(struct build *b, const char *path)
{
    ds_plan_want_t k = {.path = path};
    const ds_plan_want_t *kp = &k;

    return find(&kp, b->want, b->in->nwant, sizeof(*b->want), cmp_want);
}

static struct tstate *find_ts(struct build *b, const char *path)
{
    struct tstate k = {.path = path};

    return bsearch(&k, b->ts, b->nts, sizeof(*b->ts), cmp_ts);
}

/* Sorted pointer arrays over the inputs (regular files in classes only). */
static int sort_inputs(struct build *b)
{
    const ds_plan_input_t *in = b->in;

    b->want = malloc((in->nwant + 1) * sizeof(*b->want));
    b->have = malloc((in->nhave + 1) * sizeof(*b->have));
    b->hash = malloc((in->nhashes + 1) * sizeof(*b->hash));
    if (b->want == NULL || b->have == NULL || b->hash == NULL)
        return DS_ENOMEM;
    for (size_t i = 0; i < in->nwant; i++)
        b->want[i] = &in->want[i];
    for (size_t i = 0; i < in->nhave; i++)
        if (in_classes(in, in->have[i].path))
            b->have[b->nhave++] = &in->have[i];
    for (size_t i = 0; i < in->nhashes; i++)
        b->hash[i] = &in->hashes[i];
    qsort(b->want, in->nwant, sizeof(*b->want), cmp_want);
    qsort(b->have, b->nhave, sizeof(*b->have), cmp_have);
    qsort(b->hash, in->nhashes, sizeof(*b->hash), cmp_hash);
    return 0;
}

/* 1 when the listing disagrees with the manifest entry (or there is none). */
static int uncertain(const ds_plan_have_t *h, const ds_manifest_entry_t *m)
{
    return h->is_file && (m == NULL || m->size != h->size || m->mtime_ns != h->mtime_ns);
}

int ds_plan_need_hash(const ds_plan_input_t *in, const char ***paths, size_t *n)
{
    const char **v = malloc((in->nhave + 1) * sizeof(*v));

    *paths = NULL;
    *n = 0;
    if (v == NULL)
        return DS_ENOMEM;
    for (size_t i = 0; i < in->nhave; i++) {
        const ds_plan_have_t *h = &in->have[i];
        const ds_manifest_entry_t *m = in->manifest ? ds_manifest_get(in->manifest, h->path) : NULL;

        if (in_classes(in, h->path) && uncertain(h, m))
            v[(*n)++] = h->path;
    }
    *paths = v;
    return 0;
}

static void resolve(struct build *b, struct tstate *t)
{
    t->have = find_have(b, t->path);
    t->man = b->in->manifest ? ds_manifest_get(b->in->manifest, t->path) : NULL;
    t->present = t->have != NULL && t->have->is_file;
    if (!t->present)
        return;
    /* a hash is the truth even where the listing agrees (verify --repair
     * hashes files tampered with in place) */
    t->hash = find_hash(b, t->path);
    if (!uncertain(t->have, t->man) &&
        (t->hash == NULL || (t->hash->ok && t->hash->size == t->man->size &&
                             memcmp(t->hash->sha256, t->man->sha256, DS_SHA256_LEN) == 0))) {
        t->hash = NULL;
        t->known = 1;
        memcpy(t->sha256, t->man->sha256, DS_SHA256_LEN);
        return;
    }
    t->unknown = t->man == NULL;
    if (t->hash && !t->hash->ok) {
        /* vanished or unreadable: a wanted one is rebuilt; one neither the
         * store nor the manifest has stays listed as extra (a name the
         * agent refuses to open, a control character in it, was hidden
         * from status and plan before) */
        t->present = t->man == NULL && find_want(b, t->path) == NULL;
        return;
    }
    if (t->hash) {
        t->known = 1;
        memcpy(t->sha256, t->hash->sha256, DS_SHA256_LEN);
        t->drifted = t->man && memcmp(t->man->sha256, t->sha256, DS_SHA256_LEN) != 0;
    }
}

/* Target states for every path listed, in the manifest, in classes. */
static int build_states(struct build *b)
{
    const ds_manifest_entry_t **me = NULL;
    size_t nme = 0, k = 0;
    int rc = 0;

    if (b->in->manifest && ds_manifest_sorted(b->in->manifest, &me, &nme) < 0)
        return DS_ENOMEM;
    b->ts = calloc(b->nhave + nme + 1, sizeof(*b->ts));
    if (b->ts == NULL) {
        rc = DS_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < b->nhave; i++)
        if (b->have[i]->is_file)
            b->ts[k++].path = b->have[i]->path;
    for (size_t i = 0; i < nme; i++)
        if (in_classes(b->in, me[i]->path) && find_have(b, me[i]->path) == NULL)
            b->ts[k++].path = me[i]->path;
    qsort(b->ts, k, sizeof(*b->ts), cmp_ts);
    b->nts = k;
    for (size_t i = 0; i < k; i++)
        resolve(b, &b->ts[i]);
out:
    free(me);
    return rc;
}

static int same_content(const struct tstate *t, const ds_plan_want_t *w)
{
    return t && t->present && t->known && memcmp(t->sha256, w->sha256, DS_SHA256_LEN) == 0;
}

/* Basis candidates: contents on the target at paths this plan leaves alone. */
static int build_cands(struct build *b)
{
    const ds_plan_oracle_t *o = &b->in->oracle;

    for (size_t i = 0; i < b->in->nwant; i++) {
        struct tstate *t = find_ts(b, b->want[i]->path);

        if (t && !b->want[i]->unreadable && !b->want[i]->gone && !same_content(t, b->want[i]))
            t->changing = 1;
    }
    b->cand = calloc(b->nts + 1, sizeof(*b->cand));
    if (b->cand == NULL)
        return DS_ENOMEM;
    for (size_t i = 0; i < b->nts; i++) {
        struct tstate *t = &b->ts[i];
        int64_t id;

        if (!t->present || !t->known || t->changing)
            continue;
        id = o->content_id(o->ctx, t->sha256);
        if (id <= 0 || !o->readable(o->ctx, t->sha256))
            continue;
        b->cand[b->ncand].id = id;
        b->cand[b->ncand++].ts = t;
    }
    return 0;
}

static ds_plan_item_t *new_item(struct build *b, const char *path, const char *klass)
{
    ds_plan_item_t *it = &b->plan->items[b->plan->n];

    memset(it, 0, sizeof(*it));
    it->path = strdup(path);
    it->klass = klass ? strdup(klass) : strndup(path, strcspn(path, "/"));
    if (it->path == NULL || it->klass == NULL) {
        free(it->path);
        free(it->klass);
        return NULL;
    }
    b->plan->n++;
    return it;
}

/* Picks the best readable basis among the candidates plus the path's own
 * content (t). Sets method, basis and the estimate. */
/* A basis candidate for one item: its content id, target path and SHA-256. */
struct bcand {
    int64_t id;
    const char *path;
    const uint8_t *sha;
};

/* 1 when a and b are in the same directory. */
static int same_dir(const char *a, const char *b)
{
    const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
    size_t la = sa ? (size_t)(sa - a) : 0, lb = sb ? (size_t)(sb - b) : 0;

    return la == lb && memcmp(a, b, la) == 0;
}

/* Collects the candidates for item it: the path's own content (first), the
 * contents the target keeps, and the new versions of files planned earlier
 * in the same directory (the receiver applies files in order, so a file
 * committed earlier in the session is on the target when this one is
 * built: today's cumulative update can start from yesterday's, both new). */
static size_t gather(struct build *b, const ds_plan_item_t *it, const struct tstate *t,
                     struct bcand *c)
{
    const ds_plan_oracle_t *o = &b->in->oracle;
    size_t n = 0, chain = 0;

    if (t && t->present && t->known && o->readable(o->ctx, t->sha256)) {
        c[n] = (struct bcand){o->content_id(o->ctx, t->sha256), t->path, t->sha256};
        n += c[n].id > 0;
    }
    for (size_t i = 0; i < b->ncand; i++)
        c[n++] = (struct bcand){b->cand[i].id, b->cand[i].ts->path, b->cand[i].ts->sha256};
    for (size_t i = b->plan->n - 1; i-- > 0 && chain < DS_PLAN_CHAIN_MAX;) {
        const ds_plan_item_t *e = &b->plan->items[i];

        if ((e->action != DS_PLAN_CREATE && e->action != DS_PLAN_UPDATE) || e->content_id <= 0 ||
            !same_dir(e->path, it->path) || !o->readable(o->ctx, e->sha256))
            continue;
        c[n++] = (struct bcand){e->content_id, e->path, e->sha256};
        chain++;
    }
    return n;
}

static int set_basis(ds_plan_item_t *it, const struct bcand *c, size_t n, int64_t best)
{
    for (size_t i = 0; i < n; i++) {
        if (c[i].id == best) {
            it->basis = strdup(c[i].path);
            memcpy(it->basis_sha256, c[i].sha, DS_SHA256_LEN);
            return it->basis ? 0 : DS_ENOMEM;
        }
    }
    return DS_EINTERNAL;
}

/* Length of the common prefix of the last components of a and b. */
static size_t leaf_prefix(const char *a, const char *b)
{
    const char *la = strrchr(a, '/'), *lb = strrchr(b, '/');
    size_t k = 0;

    la = la ? la + 1 : a;
    lb = lb ? lb + 1 : b;
    while (la[k] && la[k] == lb[k])
        k++;
    return k;
}

/* A basis for a file whose chunks match nothing: its own previous version
 * (own), else the candidate in the same folder whose name shares the
 * longest prefix with it, at least half of the name (libfoo.so.1.2 for
 * libfoo.so.1.3). Returns its content id, 0 when none. */
static int64_t near_name(const struct bcand *c, size_t n, const char *path, int64_t own)
{
    const char *leaf = strrchr(path, '/');
    size_t want = (strlen(leaf ? leaf + 1 : path) + 1) / 2, bestk = 0;
    int64_t best = 0;

    if (own > 0)
        return own;
    for (size_t i = 0; i < n; i++) {
        size_t k;

        if (!same_dir(c[i].path, path) || strcmp(c[i].path, path) == 0)
            continue;
        k = leaf_prefix(c[i].path, path);
        if (k >= want && k > bestk)
            bestk = k, best = c[i].id;
    }
    return best;
}

/* Picks the best readable basis among the candidates (see gather). Sets
 * method, basis and the estimate. */
static int choose_basis(struct build *b, ds_plan_item_t *it, const struct tstate *t)
{
    const ds_plan_oracle_t *o = &b->in->oracle;
    struct bcand *c = malloc((b->ncand + DS_PLAN_CHAIN_MAX + 2) * sizeof(*c));
    int64_t *ids = malloc((b->ncand + DS_PLAN_CHAIN_MAX + 2) * sizeof(*ids)), own, best = 0;
    uint64_t shared = 0;
    size_t n;
    int rc = 0;

    if (ids == NULL || c == NULL) {
        rc = DS_ENOMEM;
        goto out;
    }
    n = gather(b, it, t, c);
    own = n > 0 && t && c[0].path == t->path ? c[0].id : 0;
    for (size_t i = 0; i < n; i++)
        ids[i] = c[i].id;
    if (n > 0 && it->content_id > 0)
        rc = o->best_basis(o->ctx, it->content_id, ids, n, &best, &shared);
    it->method = DS_PLAN_WHOLE;
    it->est_bytes = it->size + DS_PLAN_FILE_OVERHEAD;
    if (rc < 0)
        goto out;
    if (it->size < DS_PLAN_DELTA_MIN || b->in->whole_only)
        goto out;
    if (best <= 0 || shared < it->size / DS_PLAN_NEAR_ZERO) {
        /* Chunk overlap misses edits spread over a file (a rebuilt binary
         * touches every chunk): the path's own previous version, or a file
         * with a close name in the same folder, is related data. Whether
         * the delta pays is measured when it is computed, not guessed. */
        int64_t near = near_name(c, n, it->path, own);

        if (near > 0)
            best = near, shared = 0;
        else if (best <= 0 || shared == 0)
            goto out;
    }
    rc = set_basis(it, c, n, best);
    if (rc < 0)
        goto out;
    it->method = DS_PLAN_DELTA;
    it->shared = shared > it->size ? it->size : shared;
    /* no chunk shared: guess half (edits spread over a related file) */
    it->est_bytes = (it->shared ? it->size - it->shared + it->size / 200 : it->size / 2) +
                    DS_PLAN_FILE_OVERHEAD;
out:
    free(ids);
    free(c);
    return rc;
}

/* The target holds bytes at this path the console cannot read (changed
 * behind our back, or there before the first sync): unless a known basis
 * leaves less than 1/16 of the file to send, a delta against their
 * signature costs what rsync would, and drift is usually small. */
static void maybe_rsync(struct build *b, ds_plan_item_t *it, const struct tstate *t)
{
    const ds_plan_oracle_t *o = &b->in->oracle;

    if (t == NULL || !t->present || t->have == NULL || it->size < DS_PLAN_DELTA_MIN ||
        t->have->size < DS_PLAN_DELTA_MIN || b->in->whole_only)
        return;
    if (it->method != DS_PLAN_WHOLE &&
        !(it->method == DS_PLAN_DELTA && it->size - it->shared > it->size / 16))
        return;
    if (t->known && o->readable(o->ctx, t->sha256) && o->content_id(o->ctx, t->sha256) > 0)
        return; /* readable and judged unrelated by the chunk index */
    free(it->basis);
    it->basis = strdup(t->path);
    if (it->basis == NULL) {
        it->method = DS_PLAN_WHOLE;
        return;
    }
    it->method = DS_PLAN_RSYNC;
    it->shared = 0;
    memset(it->basis_sha256, 0, DS_SHA256_LEN);
    it->est_bytes = it->size / 2 + DS_PLAN_FILE_OVERHEAD;
}

/* The content is on the target once the items before it are applied: at
 * its own path (right bytes, wrong record: ADOPT them), or at an earlier
 * path of the plan or a kept file (COPY it whole there: a content crosses
 * the link once per run). */
static int plan_in_place(struct build *b, ds_plan_item_t *it, const ds_plan_want_t *w, int own)
{
    it->method = own ? DS_PLAN_ADOPT : DS_PLAN_COPY;
    it->basis = strdup(own ? w->path : ds__plan_same_find(b->same, w->sha256));
    memcpy(it->basis_sha256, w->sha256, DS_SHA256_LEN);
    it->est_bytes = DS_PLAN_FILE_OVERHEAD;
    if (it->basis == NULL)
        return DS_ENOMEM;
    return ds__plan_same_add(b->same, w->sha256, it->path);
}

static int plan_want(struct build *b, const ds_plan_want_t *w)
{
    struct tstate *t = find_ts(b, w->path);
    ds_plan_item_t *it = new_item(b, w->path, w->klass);
    int rc;

    if (it == NULL)
        return DS_ENOMEM;
    it->size = w->size;
    it->mtime_ns = w->mtime_ns;
    it->content_id = w->content_id;
    memcpy(it->sha256, w->sha256, DS_SHA256_LEN);
    if (t) {
        it->drifted = t->drifted;
        it->unknown = t->unknown;
        it->present = t->present;
        it->target_size = t->present && t->have ? t->have->size : 0;
    }
    if (w->unreadable || (w->gone && !same_content(t, w))) { /* the target keeps what it
                                                                has: never deleted */
        it->action = DS_PLAN_UNREADABLE;
        it->gone = w->gone;
        return 0;
    }
    if (same_content(t, w) && t->hash == NULL) {
        it->action = DS_PLAN_KEEP;
        return ds__plan_same_add(b->same, w->sha256, it->path);
    }
    it->action = t && t->present ? DS_PLAN_UPDATE : DS_PLAN_CREATE;
    if (same_content(t, w) || ds__plan_same_find(b->same, w->sha256) != NULL)
        return plan_in_place(b, it, w, same_content(t, w));
    rc = choose_basis(b, it, t);
    if (rc == 0)
        maybe_rsync(b, it, t);
    if (rc == 0)
        rc = ds__plan_same_add(b->same, w->sha256, it->path);
    return rc;
}

static int plan_extra(struct build *b, const struct tstate *t)
{
    ds_plan_item_t *it;

    if (find_want(b, t->path) != NULL)
        return 0;
    if (!t->present && t->man == NULL)
        return 0;
    it = new_item(b, t->path, NULL);
    if (it == NULL)
        return DS_ENOMEM;
    it->present = t->present;
    it->drifted = t->drifted;
    it->unknown = t->unknown;
    it->target_size = t->present ? t->have->size : 0;
    it->size = t->present ? t->have->size : t->man->size;
    /* a manifest entry whose file is gone is dropped from the manifest */
    it->action = t->man && (b->in->prune || !t->present) ? DS_PLAN_DELETE : DS_PLAN_EXTRA;
    if (it->action == DS_PLAN_DELETE)
        it->est_bytes = DS_PLAN_FILE_OVERHEAD / 2;
    return 0;
}

static int rank(const ds_plan_item_t *it)
{
    static const int r[] = {
        [DS_PLAN_CREATE] = 0, [DS_PLAN_UPDATE] = 0,     [DS_PLAN_DELETE] = 1,
        [DS_PLAN_KEEP] = 2,   [DS_PLAN_UNREADABLE] = 2, [DS_PLAN_EXTRA] = 3,
    };

    return r[it->action];
}

static int cmp_item(const void *a, const void *b)
{
    const ds_plan_item_t *x = a, *y = b;

    if (rank(x) != rank(y))
        return rank(x) - rank(y);
    return strcmp(x->path, y->path);
}

/* 1 when deleting would of the target's files files exceeds max_delete. */
static int over_limit(const ds_plan_input_t *in, uint64_t would, uint64_t files)
{
    if (in->max_delete_pct)
        return would * 100 > in->max_delete * files;
    return would > in->max_delete;
}

static void drop_item(ds_plan_item_t *it)
{
    free(it->path);
    free(it->klass);
    free(it->basis);
}

/* The class of a file the plan deletes whose folder is missing from the
 * store (in->absent_classes), or NULL. */
static const char *absent_class(const struct build *b)
{
    for (size_t i = 0; i < b->plan->n; i++) {
        const ds_plan_item_t *it = &b->plan->items[i];

        if (it->action != DS_PLAN_DELETE || !it->present || it->klass == NULL)
            continue;
        for (size_t k = 0; k < b->in->nabsent; k++)
            if (strcmp(b->in->absent_classes[k], it->klass) == 0)
                return it->klass;
    }
    return NULL;
}

/* The prune guards (see ds_plan_build in plan.h): decides whether the
 * plan's deletions go ahead; when not, holds every one back. */
static void guard(struct build *b)
{
    const ds_plan_input_t *in = b->in;
    ds_plan_t *p = b->plan;
    ds_plan_guard_t g;
    const char *absent;
    size_t ndel = 0, k = 0;

    p->max_delete = in->max_delete;
    p->max_delete_pct = in->max_delete_pct;
    for (size_t i = 0; i < b->nhave; i++)
        p->target_files += b->have[i]->is_file != 0;
    for (size_t i = 0; i < p->n; i++) {
        ndel += p->items[i].action == DS_PLAN_DELETE;
        p->would_delete += p->items[i].action == DS_PLAN_DELETE && p->items[i].present;
    }
    if (ndel == 0)
        return;
    if (!in->scanned)
        g = DS_PLAN_GUARD_UNSCANNED;
    else if (in->nwant == 0)
        g = DS_PLAN_GUARD_EMPTY;
    else if ((absent = absent_class(b)) != NULL) {
        g = DS_PLAN_GUARD_EMPTY_CLASS;
        snprintf(p->guard_class, sizeof(p->guard_class), "%s", absent);
    } else if (!in->force && over_limit(in, p->would_delete, p->target_files))
        g = DS_PLAN_GUARD_MAX_DELETE;
    else
        return;
    /* only manifest records to drop: nothing is held back, nothing to say */
    p->guard = p->would_delete > 0 ? g : DS_PLAN_GUARD_NONE;
    for (size_t i = 0; i < p->n; i++) {
        ds_plan_item_t *it = &p->items[i];

        if (it->action == DS_PLAN_DELETE && !it->present) {
            drop_item(it); /* a manifest record only: it stays */
            continue;
        }
        if (it->action == DS_PLAN_DELETE) {
            it->action = DS_PLAN_EXTRA;
            it->held = 1;
            it->est_bytes = 0;
        }
        p->items[k++] = *it;
    }
    p->n = k;
}

static void sum(ds_plan_t *p)
{
    ds_plan_totals_t *t = &p->totals;

    memset(t, 0, sizeof(*t));
    for (size_t i = 0; i < p->n; i++) {
        const ds_plan_item_t *it = &p->items[i];

        t->create += it->action == DS_PLAN_CREATE;
        t->update += it->action == DS_PLAN_UPDATE;
        t->del += it->action == DS_PLAN_DELETE;
        t->keep += it->action == DS_PLAN_KEEP;
        t->extra += it->action == DS_PLAN_EXTRA;
        t->held += it->held != 0;
        t->unreadable += it->action == DS_PLAN_UNREADABLE;
        t->drifted += it->drifted != 0;
        if (it->action == DS_PLAN_CREATE || it->action == DS_PLAN_UPDATE)
            t->bytes_new += it->method == DS_PLAN_ADOPT ? 0 : it->size;
        t->est_bytes += it->est_bytes;
    }
}

int ds_plan_build(const ds_plan_input_t *in, ds_plan_t **out)
{
    struct build b = {.in = in};
    int rc;

    *out = NULL;
    rc = sort_inputs(&b);
    if (rc == 0)
        rc = build_states(&b);
    if (rc == 0)
        rc = build_cands(&b);
    if (rc == 0 && (b.plan = calloc(1, sizeof(*b.plan))) == NULL)
        rc = DS_ENOMEM;
    if (rc == 0 && (b.same = ds__plan_same_new(in->nwant)) == NULL)
        rc = DS_ENOMEM;
    if (rc == 0 && (b.plan->items = calloc(in->nwant + b.nts + 1, sizeof(ds_plan_item_t))) == NULL)
        rc = DS_ENOMEM;
    for (size_t i = 0; rc == 0 && i < in->nwant; i++)
        rc = plan_want(&b, b.want[i]);
    for (size_t i = 0; rc == 0 && i < b.nts; i++)
        rc = plan_extra(&b, &b.ts[i]);
    if (rc == 0) {
        guard(&b);
        qsort(b.plan->items, b.plan->n, sizeof(*b.plan->items), cmp_item);
        sum(b.plan);
        *out = b.plan;
        b.plan = NULL;
    }
    ds_plan_free(b.plan);
    ds__plan_same_free(b.same);
    free(b.want);
    free(b.have);
    free(b.hash);
    free(b.ts);
    free(b.cand);
    return rc;
}

void ds_plan_free(ds_plan_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; p->items && i < p->n; i++)
        drop_item(&p->items[i]);
    free(p->items);
    free(p);
}

const char *ds_plan_action_name(ds_plan_action_t a)
{
    static const char *n[] = {"keep", "create", "update", "delete", "extra", "unreadable"};

    return (unsigned)a < sizeof(n) / sizeof(n[0]) ? n[a] : "?";
}

const char *ds_plan_method_name(ds_plan_method_t m)
{
    static const char *n[] = {"", "whole", "delta", "adopt", "rsync", "copy"};

    return (unsigned)m < sizeof(n) / sizeof(n[0]) ? n[m] : "?";
}

/* "71%" of would over files; with one decimal when the whole number would
 * not show that it exceeds limit ("10.5%" over 10%). */
static void fmt_pct(char *buf, size_t len, uint64_t would, uint64_t files, uint64_t limit)
{
    uint64_t whole = files ? would * 100 / files : 0;

    if (files == 0 || would * 100 % files == 0 || whole > limit)
        snprintf(buf, len, "%" PRIu64 "%%", whole);
    else
        snprintf(buf, len, "%" PRIu64 ".%" PRIu64 "%%", whole, would * 1000 / files % 10);
}

void ds_plan_guard_msg(const ds_plan_t *p, char *buf, size_t len)
{
    uint64_t n = p->totals.held;
    const char *s = n == 1 ? "" : "s";
    char pct[32];

    switch (p->guard) {
    case DS_PLAN_GUARD_UNSCANNED:
        snprintf(buf, len,
                 "%" PRIu64 " deletion%s held back: the catalog has no completed scan "
                 "(run distsync scan)",
                 n, s);
        return;
    case DS_PLAN_GUARD_EMPTY:
        snprintf(buf, len,
                 "%" PRIu64 " deletion%s held back: the catalog holds no file of this "
                 "server's classes (an empty store never prunes)",
                 n, s);
        return;
    case DS_PLAN_GUARD_EMPTY_CLASS:
        snprintf(buf, len,
                 "%" PRIu64 " deletion%s held back: class '%s' has no folder in the store "
                 "(renamed or unmounted?); its files are never pruned while it is missing",
                 n, s, p->guard_class);
        return;
    case DS_PLAN_GUARD_MAX_DELETE:
        fmt_pct(pct, sizeof(pct), p->would_delete, p->target_files,
                p->max_delete_pct ? p->max_delete : UINT64_MAX);
        snprintf(buf, len,
                 "would delete %" PRIu64 " of %" PRIu64 " files (%s), over max_delete %" PRIu64
                 "%s; rerun with --force to allow",
                 p->would_delete, p->target_files, pct, p->max_delete,
                 p->max_delete_pct ? "%" : "");
        return;
    default:
        if (len > 0)
            buf[0] = '\0';
    }
}

/* Planner: pure cases with a fake oracle (content ids, chunk overlap and
 * readability given by tables). */
#include "check.h"
#include "distsync/error.h"
#include "distsync/plan.h"

#define NC  16
#define MiB (1024u * 1024)

/* Content k has SHA-256 filled with byte k and catalog id k (0: unknown). */
struct fake {
    uint64_t shared[NC][NC]; /* chunk bytes content i shares with content j */
    int readable[NC];
    int known[NC];
};

static struct fake F;

static void sha(uint8_t out[DS_SHA256_LEN], int k)
{
    memset(out, k, DS_SHA256_LEN);
}

static int64_t f_id(void *ctx, const uint8_t s[DS_SHA256_LEN])
{
    (void)ctx;
    return s[0] < NC && F.known[s[0]] ? s[0] : 0;
}

static int f_best(void *ctx, int64_t id, const int64_t *cand, size_t n, int64_t *best,
                  uint64_t *shared)
{
    (void)ctx;
    *best = 0;
    *shared = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t s = F.shared[id][cand[i]];

        if (s > *shared || (s == *shared && s > 0 && cand[i] > *best)) {
            *shared = s;
            *best = cand[i];
        }
    }
    if (*shared == 0)
        *best = 0;
    return 0;
}

static int f_readable(void *ctx, const uint8_t s[DS_SHA256_LEN])
{
    (void)ctx;
    return s[0] < NC && F.readable[s[0]];
}

static const char *const classes[] = {"patches", "definitions", "engines"};

struct t {
    ds_plan_want_t want[16];
    ds_plan_have_t have[16];
    ds_plan_hash_t hash[16];
    ds_plan_input_t in;
    ds_manifest_t *man;
    ds_plan_t *plan;
};

static void t_init(struct t *t)
{
    memset(t, 0, sizeof(*t));
    memset(&F, 0, sizeof(F));
    for (int i = 1; i < NC; i++)
        F.known[i] = F.readable[i] = 1;
    CHECK_INT(ds_manifest_new(&t->man), 0);
    t->in.want = t->want;
    t->in.have = t->have;
    t->in.hashes = t->hash;
    t->in.manifest = t->man;
    t->in.classes = classes;
    t->in.nclasses = 3;
    t->in.scanned = 1; /* the guards get their own tests */
    t->in.max_delete = 100;
    t->in.max_delete_pct = 1;
    t->in.oracle = (ds_plan_oracle_t){f_id, f_best, f_readable, NULL};
}

static void t_free(struct t *t)
{
    ds_plan_free(t->plan);
    ds_manifest_free(t->man);
}

static void want(struct t *t, const char *path, int k, uint64_t size)
{
    ds_plan_want_t *w = &t->want[t->in.nwant++];

    w->path = path;
    w->klass = NULL;
    w->size = size;
    w->mtime_ns = 1000;
    w->content_id = k;
    sha(w->sha256, k);
}

/* A file the target holds: listed, and in the manifest with content k
 * unless k is 0. mtime differs from the manifest's when touched. */
static void have(struct t *t, const char *path, int k, uint64_t size, int touched)
{
    uint8_t s[DS_SHA256_LEN];

    t->have[t->in.nhave++] = (ds_plan_have_t){path, 1, size, touched ? 777 : 500};
    if (k) {
        sha(s, k);
        CHECK_INT(ds_manifest_put(t->man, path, size, 500, s), 0);
    }
}

static void hashed(struct t *t, const char *path, int k, uint64_t size)
{
    ds_plan_hash_t *h = &t->hash[t->in.nhashes++];

    h->path = path;
    h->ok = 1;
    h->size = size;
    sha(h->sha256, k);
}

static const ds_plan_item_t *item(const struct t *t, const char *path)
{
    for (size_t i = 0; t->plan && i < t->plan->n; i++)
        if (strcmp(t->plan->items[i].path, path) == 0)
            return &t->plan->items[i];
    return NULL;
}

static void build(struct t *t)
{
    CHECK_INT(ds_plan_build(&t->in, &t->plan), 0);
}

static void test_create_keep(void)
{
    struct t t;
    const ds_plan_item_t *a, *b;

    t_init(&t);
    want(&t, "patches/a.msu", 1, 100);
    want(&t, "patches/b.msu", 2, 200);
    have(&t, "patches/a.msu", 1, 100, 0);
    build(&t);
    a = item(&t, "patches/a.msu");
    b = item(&t, "patches/b.msu");
    CHECK(a && a->action == DS_PLAN_KEEP);
    CHECK(b && b->action == DS_PLAN_CREATE && b->method == DS_PLAN_WHOLE);
    CHECK(b && b->basis == NULL && b->est_bytes >= 200);
    CHECK_STR(b ? b->klass : NULL, "patches");
    CHECK_INT(t.plan->totals.create, 1);
    CHECK_INT(t.plan->totals.keep, 1);
    CHECK_INT(t.plan->n, 2);
    /* the order: changes first */
    CHECK_STR(t.plan->items[0].path, "patches/b.msu");
    t_free(&t);
}

static void test_update_own_basis(void)
{
    struct t t;
    const ds_plan_item_t *a;

    t_init(&t);
    want(&t, "engines/e/engine.bin", 3, 20 * MiB);
    have(&t, "engines/e/engine.bin", 1, 20 * MiB, 0);
    F.shared[3][1] = 19 * MiB;
    build(&t);
    a = item(&t, "engines/e/engine.bin");
    CHECK(a && a->action == DS_PLAN_UPDATE && a->method == DS_PLAN_DELTA);
    CHECK_STR(a ? a->basis : NULL, "engines/e/engine.bin");
    CHECK(a && a->basis_sha256[0] == 1 && a->shared == 19 * MiB);
    CHECK(a && a->est_bytes < 2 * MiB && a->est_bytes >= 1 * MiB);
    t_free(&t);
}

static void test_renamed_basis(void)
{
    struct t t;
    const ds_plan_item_t *a;

    t_init(&t);
    want(&t, "definitions/av-2026-11-23.dat", 5, 40 * MiB);
    want(&t, "definitions/av-2026-11-22.dat", 4, 40 * MiB);
    have(&t, "definitions/av-2026-11-22.dat", 4, 40 * MiB, 0);
    have(&t, "definitions/url-2026-11-22.dat", 6, 40 * MiB, 0);
    F.shared[5][4] = 39 * MiB;
    F.shared[5][6] = 1 * MiB;
    build(&t);
    a = item(&t, "definitions/av-2026-11-23.dat");
    CHECK(a && a->action == DS_PLAN_CREATE && a->method == DS_PLAN_DELTA);
    CHECK_STR(a ? a->basis : NULL, "definitions/av-2026-11-22.dat");
    /* the unreadable version cannot be a basis: the only readable file
     * sharing anything is tried (the sender measures the delta) */
    F.readable[4] = 0;
    ds_plan_free(t.plan);
    build(&t);
    a = item(&t, "definitions/av-2026-11-23.dat");
    CHECK(a && a->method == DS_PLAN_DELTA);
    CHECK_STR(a ? a->basis : NULL, "definitions/url-2026-11-22.dat");
    /* nothing readable shares anything, and no name is close: whole */
    F.readable[6] = 0;
    ds_plan_free(t.plan);
    build(&t);
    a = item(&t, "definitions/av-2026-11-23.dat");
    CHECK(a && a->method == DS_PLAN_WHOLE && a->basis == NULL);
    t_free(&t);
}

/* A rebuilt binary shares no chunk with its previous build: near-zero
 * overlap still gets a delta, against the path's previous version or the
 * closest name in the same folder (never a skip by overlap). */
static void test_near_zero_overlap(void)
{
    struct t t;
    const ds_plan_item_t *a, *b;

    t_init(&t);
    want(&t, "engines/libbig.so.1.3", 1, 64 * MiB); /* renamed from 1.2 */
    want(&t, "engines/tool", 2, 40 * MiB);          /* rebuilt in place */
    have(&t, "engines/libbig.so.1.2", 3, 64 * MiB, 0);
    have(&t, "engines/tool", 4, 40 * MiB, 0);
    have(&t, "engines/zzz.so", 5, 64 * MiB, 0);
    F.shared[1][5] = 64 * 1024; /* a run of zeros: the chunk index's only match */
    build(&t);
    a = item(&t, "engines/libbig.so.1.3");
    b = item(&t, "engines/tool");
    CHECK(a && a->method == DS_PLAN_DELTA);
    CHECK_STR(a ? a->basis : NULL, "engines/libbig.so.1.2");
    CHECK(b && b->method == DS_PLAN_DELTA);
    CHECK_STR(b ? b->basis : NULL, "engines/tool");
    t_free(&t);
}

static void test_low_overlap_delta(void)
{
    struct t t;
    const ds_plan_item_t *a, *b;

    t_init(&t);
    want(&t, "patches/big.msu", 7, 64 * MiB);
    want(&t, "patches/small.cab", 8, 1 * MiB);
    have(&t, "patches/old.msu", 9, 64 * MiB, 0);
    F.shared[7][9] = 1 * MiB; /* 1/64 shared: no skip by overlap, the delta is measured */
    F.shared[8][9] = 64 * 1024;
    build(&t);
    a = item(&t, "patches/big.msu");
    b = item(&t, "patches/small.cab");
    CHECK(a && a->method == DS_PLAN_DELTA);
    CHECK_STR(a ? a->basis : NULL, "patches/old.msu");
    CHECK(b && b->method == DS_PLAN_DELTA);
    CHECK_STR(b ? b->basis : NULL, "patches/old.msu");
    t_free(&t);
}

static void test_small_same_path(void)
{
    struct t t;
    const ds_plan_item_t *a, *b;

    t_init(&t);
    want(&t, "engines/x/engine.bin", 3, 300 * 1024);
    want(&t, "engines/x/version.txt", 4, 20);
    have(&t, "engines/x/engine.bin", 1, 290 * 1024, 0);
    have(&t, "engines/x/version.txt", 2, 20, 0);
    build(&t); /* no chunk shared (edits everywhere): own version anyway */
    a = item(&t, "engines/x/engine.bin");
    b = item(&t, "engines/x/version.txt");
    CHECK(a && a->method == DS_PLAN_DELTA);
    CHECK_STR(a ? a->basis : NULL, "engines/x/engine.bin");
    CHECK(b && b->action == DS_PLAN_UPDATE && b->method == DS_PLAN_WHOLE); /* tiny */
    t_free(&t);
}

static void test_prune(void)
{
    struct t t;
    const ds_plan_item_t *a, *b, *c;

    t_init(&t);
    want(&t, "patches/a.msu", 1, 100);
    have(&t, "patches/a.msu", 1, 100, 0);
    have(&t, "patches/gone.msu", 2, 100, 0);
    have(&t, "patches/theirs.txt", 0, 10, 0); /* not in the manifest */
    have(&t, "other/x.bin", 3, 10, 0);        /* outside the classes */
    build(&t);
    a = item(&t, "patches/gone.msu");
    CHECK(a && a->action == DS_PLAN_EXTRA);
    CHECK(item(&t, "other/x.bin") == NULL);
    CHECK_INT(t.plan->totals.del, 0);
    ds_plan_free(t.plan);
    t.in.prune = 1;
    t.in.nhashes = 0;
    hashed(&t, "patches/theirs.txt", 11, 10);
    build(&t);
    b = item(&t, "patches/gone.msu");
    c = item(&t, "patches/theirs.txt");
    CHECK(b && b->action == DS_PLAN_DELETE && b->present);
    /* prune deletes only what distsync put there */
    CHECK(c && c->action == DS_PLAN_EXTRA && c->unknown);
    CHECK_INT(t.plan->totals.del, 1);
    CHECK_INT(t.plan->totals.extra, 1);
    t_free(&t);
}

static void test_manifest_entry_gone(void)
{
    struct t t;
    uint8_t s[DS_SHA256_LEN];
    const ds_plan_item_t *a, *b;

    t_init(&t);
    want(&t, "patches/a.msu", 1, 100);
    sha(s, 1);
    CHECK_INT(ds_manifest_put(t.man, "patches/a.msu", 100, 500, s), 0);
    CHECK_INT(ds_manifest_put(t.man, "patches/old.msu", 100, 500, s), 0);
    build(&t);
    a = item(&t, "patches/a.msu");
    b = item(&t, "patches/old.msu");
    CHECK(a && a->action == DS_PLAN_CREATE && !a->present);
    /* the stale record is dropped even without prune; nothing to delete */
    CHECK(b && b->action == DS_PLAN_DELETE && !b->present);
    t_free(&t);
}

/* A catalog without a completed scan, or with nothing for the server,
 * never prunes: not even with force, and not a manifest record. */
static void test_guard_unscanned_empty(void)
{
    struct t t;
    uint8_t s[DS_SHA256_LEN];
    const ds_plan_item_t *a, *b;
    char msg[256];

    t_init(&t);
    t.in.prune = 1;
    t.in.force = 1;
    t.in.scanned = 0;
    want(&t, "patches/a.msu", 1, 100);
    have(&t, "patches/a.msu", 1, 100, 0);
    have(&t, "patches/gone.msu", 2, 100, 0);
    have(&t, "engines/old.bin", 3, 50, 0);
    sha(s, 4);
    CHECK_INT(ds_manifest_put(t.man, "patches/absent.msu", 10, 500, s), 0);
    build(&t);
    a = item(&t, "patches/gone.msu");
    b = item(&t, "engines/old.bin");
    CHECK_INT(t.plan->guard, DS_PLAN_GUARD_UNSCANNED);
    CHECK(a && a->action == DS_PLAN_EXTRA && a->held && a->present);
    CHECK(b && b->action == DS_PLAN_EXTRA && b->held);
    CHECK(item(&t, "patches/absent.msu") == NULL); /* its record stays */
    CHECK_INT(t.plan->totals.del, 0);
    CHECK_INT(t.plan->totals.held, 2);
    CHECK_INT(t.plan->totals.extra, 2);
    CHECK_INT(t.plan->would_delete, 2);
    CHECK_INT(t.plan->target_files, 3);
    for (size_t i = 0; i < t.plan->n; i++)
        CHECK(t.plan->items[i].action != DS_PLAN_DELETE);
    ds_plan_guard_msg(t.plan, msg, sizeof(msg));
    CHECK_STR(msg, "2 deletions held back: the catalog has no completed scan (run distsync scan)");
    ds_plan_free(t.plan);

    /* scanned, but nothing of the server's classes is desired */
    t.in.scanned = 1;
    t.in.nwant = 0;
    build(&t);
    CHECK_INT(t.plan->guard, DS_PLAN_GUARD_EMPTY);
    CHECK_INT(t.plan->totals.del, 0);
    CHECK_INT(t.plan->totals.held, 3);
    ds_plan_guard_msg(t.plan, msg, sizeof(msg));
    CHECK(strstr(msg, "3 deletions held back: the catalog holds no file") == msg);
    ds_plan_free(t.plan);

    /* only a manifest record to drop: left out, and nothing is held back */
    t.plan = NULL;
    t_free(&t);
    t_init(&t);
    t.in.prune = 1;
    t.in.scanned = 0;
    want(&t, "patches/a.msu", 1, 100);
    have(&t, "patches/a.msu", 1, 100, 0);
    sha(s, 4);
    CHECK_INT(ds_manifest_put(t.man, "patches/absent.msu", 10, 500, s), 0);
    build(&t);
    CHECK(item(&t, "patches/absent.msu") == NULL);
    CHECK_INT(t.plan->guard, DS_PLAN_GUARD_NONE);
    CHECK_INT(t.plan->totals.del, 0);
    CHECK_INT(t.plan->totals.held, 0);
    t_free(&t);
    t_init(&t);
    t.in.prune = 1;
    want(&t, "patches/a.msu", 1, 100);
    have(&t, "patches/a.msu", 1, 100, 0);
    have(&t, "patches/gone.msu", 2, 100, 0);
    have(&t, "engines/old.bin", 3, 50, 0);
    CHECK_INT(ds_manifest_put(t.man, "patches/absent.msu", 10, 500, s), 0);

    /* scanned, and both classes desired: the same target is pruned */
    want(&t, "engines/new.bin", 5, 10);
    build(&t);
    CHECK_INT(t.plan->guard, DS_PLAN_GUARD_NONE);
    CHECK_INT(t.plan->totals.del, 3);
    CHECK_INT(t.plan->totals.held, 0);
    ds_plan_guard_msg(t.plan, msg, sizeof(msg));
    CHECK_STR(msg, "");
    t_free(&t);
}

/* A class whose folder is missing from the store (renamed, unmounted:
 * in->absent_classes) is never pruned, even with force; the same class
 * present but emptied is. */
static void test_guard_absent_class(void)
{
    static const char *const absent[] = {"patches"};
    struct t t;
    const ds_plan_item_t *a;
    char msg[256];

    t_init(&t);
    t.in.prune = 1;
    t.in.force = 1;
    t.in.absent_classes = absent;
    t.in.nabsent = 1;
    want(&t, "engines/e.bin", 1, 100);
    have(&t, "engines/e.bin", 1, 100, 0);
    have(&t, "patches/p1.msu", 2, 100, 0);
    have(&t, "patches/p2.msu", 3, 100, 0);
    build(&t);
    a = item(&t, "patches/p1.msu");
    CHECK_INT(t.plan->guard, DS_PLAN_GUARD_EMPTY_CLASS);
    CHECK(a && a->action == DS_PLAN_EXTRA && a->held);
    CHECK_INT(t.plan->totals.del, 0);
    CHECK_INT(t.plan->totals.held, 2);
    ds_plan_guard_msg(t.plan, msg, sizeof(msg));
    CHECK(strstr(msg, "2 deletions held back: class 'patches' has no folder in the store") == msg);
    ds_plan_free(t.plan);

    /* the folder is back (empty): its files are pruned */
    t.in.nabsent = 0;
    build(&t);
    CHECK_INT(t.plan->guard, DS_PLAN_GUARD_NONE);
    CHECK_INT(t.plan->totals.del, 2);
    t_free(&t);
}

/* 10 files on the target, 1 kept; n of the others left the store. */
static void guard_case(struct t *t, int ndel, uint64_t max, int pct, int force)
{
    static const char *const paths[] = {"patches/0", "patches/1", "patches/2", "patches/3",
                                        "patches/4", "patches/5", "patches/6", "patches/7",
                                        "patches/8", "patches/9"};

    ds_plan_free(t->plan);
    t->plan = NULL;
    ds_manifest_free(t->man);
    t_init(t);
    t->in.prune = 1;
    t->in.max_delete = max;
    t->in.max_delete_pct = pct;
    t->in.force = force;
    for (int i = 0; i < 10; i++) {
        have(t, paths[i], i + 1, 100, 0);
        if (i >= ndel)
            want(t, paths[i], i + 1, 100);
    }
    build(t);
}

static void test_guard_max_delete(void)
{
    struct t t = {0};
    char msg[256];

    guard_case(&t, 1, 10, 1, 0); /* 10% of 10: 1 may go */
    CHECK_INT(t.plan->guard, DS_PLAN_GUARD_NONE);
    CHECK_INT(t.plan->totals.del, 1);
    guard_case(&t, 2, 10, 1, 0); /* 20%: held, all of them */
    CHECK_INT(t.plan->guard, DS_PLAN_GUARD_MAX_DELETE);
    CHECK_INT(t.plan->totals.del, 0);
    CHECK_INT(t.plan->totals.held, 2);
    CHECK(item(&t, "patches/0") && item(&t, "patches/0")->held);
    ds_plan_guard_msg(t.plan, msg, sizeof(msg));
    CHECK_STR(msg, "would delete 2 of 10 files (20%), over max_delete 10%; rerun with --force to "
                   "allow");
    guard_case(&t, 2, 10, 1, 1); /* force */
    CHECK_INT(t.plan->guard, DS_PLAN_GUARD_NONE);
    CHECK_INT(t.plan->totals.del, 2);
    guard_case(&t, 3, 3, 0, 0); /* a count: 3 may go */
    CHECK_INT(t.plan->totals.del, 3);
    guard_case(&t, 4, 3, 0, 0);
    CHECK_INT(t.plan->guard, DS_PLAN_GUARD_MAX_DELETE);
    CHECK_INT(t.plan->totals.del, 0);
    ds_plan_guard_msg(t.plan, msg, sizeof(msg));
    CHECK_STR(msg, "would delete 4 of 10 files (40%), over max_delete 3; rerun with --force to "
                   "allow");
    guard_case(&t, 1, 0, 0, 0); /* 0: nothing without --force */
    CHECK_INT(t.plan->totals.del, 0);
    CHECK_INT(t.plan->totals.held, 1);
    guard_case(&t, 9, 100, 1, 0); /* 100%: no limit */
    CHECK_INT(t.plan->totals.del, 9);
    t_free(&t);

    /* a percentage just over the limit shows why */
    {
        ds_plan_t p = {0};

        p.guard = DS_PLAN_GUARD_MAX_DELETE;
        p.would_delete = 21;
        p.target_files = 200;
        p.max_delete = 10;
        p.max_delete_pct = 1;
        ds_plan_guard_msg(&p, msg, sizeof(msg));
        CHECK_STR(msg, "would delete 21 of 200 files (10.5%), over max_delete 10%; rerun with "
                       "--force to allow");
    }
}

static void test_need_hash(void)
{
    struct t t;
    const char **paths = NULL;
    size_t n = 0;

    t_init(&t);
    have(&t, "patches/clean.msu", 1, 100, 0);
    have(&t, "patches/touched.msu", 2, 100, 1);
    have(&t, "patches/unknown.msu", 0, 100, 0);
    have(&t, "other/unknown.msu", 0, 100, 0);
    t.have[t.in.nhave++] = (ds_plan_have_t){"patches/dir", 0, 0, 0};
    CHECK_INT(ds_plan_need_hash(&t.in, &paths, &n), 0);
    CHECK_INT(n, 2);
    CHECK_STR(n > 0 ? paths[0] : NULL, "patches/touched.msu");
    CHECK_STR(n > 1 ? paths[1] : NULL, "patches/unknown.msu");
    free(paths);
    t_free(&t);
}

static void test_drift(void)
{
    struct t t;
    const ds_plan_item_t *a, *b, *c, *d;

    t_init(&t);
    F.known[12] = 0;                        /* content nobody knows */
    want(&t, "engines/a.bin", 1, 100);      /* changed to unknown bytes */
    want(&t, "engines/b.bin", 3, 20 * MiB); /* changed to a known version */
    want(&t, "engines/c.bin", 5, 100);      /* touched, same bytes */
    want(&t, "engines/d.bin", 6, 100);      /* unknown file with our bytes */
    have(&t, "engines/a.bin", 1, 100, 1);
    have(&t, "engines/b.bin", 3, 20 * MiB, 1);
    have(&t, "engines/c.bin", 5, 100, 1);
    have(&t, "engines/d.bin", 0, 100, 0);
    hashed(&t, "engines/a.bin", 12, 100);
    hashed(&t, "engines/b.bin", 2, 20 * MiB);
    hashed(&t, "engines/c.bin", 5, 100);
    hashed(&t, "engines/d.bin", 6, 100);
    F.shared[3][2] = 19 * MiB;
    build(&t);
    a = item(&t, "engines/a.bin");
    b = item(&t, "engines/b.bin");
    c = item(&t, "engines/c.bin");
    d = item(&t, "engines/d.bin");
    CHECK(a && a->drifted && a->action == DS_PLAN_UPDATE && a->method == DS_PLAN_WHOLE);
    CHECK(b && b->drifted && b->method == DS_PLAN_DELTA && b->basis_sha256[0] == 2);
    CHECK_STR(b ? b->basis : NULL, "engines/b.bin");
    CHECK(c && !c->drifted && c->method == DS_PLAN_ADOPT); /* re-recorded, no data */
    CHECK(d && d->unknown && !d->drifted && d->method == DS_PLAN_ADOPT);
    CHECK(d && d->est_bytes < 1000);
    CHECK_INT(t.plan->totals.drifted, 2);
    t_free(&t);
}

/* verify --repair: a hash of a path whose listing agrees with the manifest
 * (same size and mtime: tampered in place) is the truth. */
static void test_hash_of_clean_path(void)
{
    struct t t;
    const ds_plan_item_t *a, *b;

    t_init(&t);
    want(&t, "engines/a.bin", 3, 20 * MiB); /* tampered, size and mtime kept */
    want(&t, "engines/b.bin", 5, 100);      /* hashed again, unchanged */
    have(&t, "engines/a.bin", 3, 20 * MiB, 0);
    have(&t, "engines/b.bin", 5, 100, 0);
    hashed(&t, "engines/a.bin", 2, 20 * MiB);
    hashed(&t, "engines/b.bin", 5, 100);
    F.shared[3][2] = 19 * MiB;
    build(&t);
    a = item(&t, "engines/a.bin");
    b = item(&t, "engines/b.bin");
    CHECK(a && a->drifted && a->action == DS_PLAN_UPDATE && a->method == DS_PLAN_DELTA);
    CHECK(b && !b->drifted && b->action == DS_PLAN_KEEP);
    CHECK_INT(t.plan->totals.drifted, 1);
    t_free(&t);
}

static void test_missing_hash_is_unknown(void)
{
    struct t t;
    const ds_plan_item_t *a;

    t_init(&t);
    want(&t, "engines/a.bin", 1, 100);
    have(&t, "engines/a.bin", 1, 100, 1); /* uncertain, and never hashed */
    build(&t);
    a = item(&t, "engines/a.bin");
    CHECK(a && a->action == DS_PLAN_UPDATE && a->method == DS_PLAN_WHOLE);
    /* a failed hash (vanished): rebuilt as a create */
    t.hash[0] = (ds_plan_hash_t){.path = "engines/a.bin", .ok = 0};
    t.in.nhashes = 1;
    ds_plan_free(t.plan);
    build(&t);
    a = item(&t, "engines/a.bin");
    CHECK(a && a->action == DS_PLAN_CREATE);
    t_free(&t);
}

/* A path rewritten by this plan is no basis for another file: the receiver
 * would read its new bytes. */
static void test_changing_path_not_basis(void)
{
    struct t t;
    const ds_plan_item_t *a;

    t_init(&t);
    want(&t, "patches/new.msu", 7, 64 * MiB);
    want(&t, "patches/cum.msu", 8, 64 * MiB);
    have(&t, "patches/cum.msu", 9, 64 * MiB, 0);
    F.shared[7][9] = 60 * MiB;
    F.shared[8][9] = 60 * MiB;
    build(&t);
    a = item(&t, "patches/new.msu");
    CHECK(a && a->method == DS_PLAN_WHOLE);
    a = item(&t, "patches/cum.msu");
    CHECK(a && a->method == DS_PLAN_DELTA);
    t_free(&t);
}

static void test_rsync_fallback(void)
{
    struct t t;
    const ds_plan_item_t *a, *b, *c;

    t_init(&t);
    F.known[12] = F.known[13] = F.known[14] = 0; /* contents nobody knows */
    want(&t, "engines/a.bin", 3, 20 * MiB);
    want(&t, "engines/b.bin", 4, 32 * MiB);
    want(&t, "engines/c.txt", 5, 100);
    have(&t, "engines/a.bin", 1, 20 * MiB, 1);
    have(&t, "engines/b.bin", 2, 32 * MiB, 1);
    have(&t, "engines/c.txt", 6, 100, 1);
    have(&t, "engines/other.bin", 7, 32 * MiB, 0);
    hashed(&t, "engines/a.bin", 12, 20 * MiB);
    hashed(&t, "engines/b.bin", 13, 32 * MiB);
    hashed(&t, "engines/c.txt", 14, 100);
    F.shared[3][7] = 10 * MiB; /* half shared: rsync against the drifted file */
    F.shared[4][7] = 31 * MiB; /* 1/32 left: the known basis wins */
    build(&t);
    a = item(&t, "engines/a.bin");
    b = item(&t, "engines/b.bin");
    c = item(&t, "engines/c.txt");
    CHECK(a && a->drifted && a->method == DS_PLAN_RSYNC);
    CHECK_STR(a ? a->basis : NULL, "engines/a.bin");
    CHECK(b && b->method == DS_PLAN_DELTA);
    CHECK_STR(b ? b->basis : NULL, "engines/other.bin");
    CHECK(c && c->method == DS_PLAN_WHOLE); /* tiny */
    CHECK_STR(ds_plan_method_name(DS_PLAN_RSYNC), "rsync");
    t_free(&t);
}

/* A whole-only target (SFTP mode): the update that would be a delta and the
 * drifted file that would go through rsync are sent whole. */
static void test_whole_only(void)
{
    struct t t;
    const ds_plan_item_t *a, *b;

    t_init(&t);
    t.in.whole_only = 1;
    F.known[12] = 0;
    want(&t, "engines/e/engine.bin", 3, 20 * MiB);
    have(&t, "engines/e/engine.bin", 1, 20 * MiB, 0);
    want(&t, "engines/a.bin", 4, 20 * MiB);
    have(&t, "engines/a.bin", 2, 20 * MiB, 1);
    hashed(&t, "engines/a.bin", 12, 20 * MiB);
    F.shared[3][1] = 19 * MiB;
    build(&t);
    a = item(&t, "engines/e/engine.bin");
    b = item(&t, "engines/a.bin");
    CHECK(a && a->action == DS_PLAN_UPDATE && a->method == DS_PLAN_WHOLE && a->basis == NULL);
    CHECK(a && a->est_bytes >= 20 * MiB);
    CHECK(b && b->drifted && b->method == DS_PLAN_WHOLE);
    t_free(&t);
}

/* Today's cumulative update starts from yesterday's, both new in this plan
 * (same directory, planned earlier); another directory does not chain. */
static void test_chain_in_plan(void)
{
    struct t t;
    const ds_plan_item_t *a, *b, *c;

    t_init(&t);
    want(&t, "patches/11/kb1.msu", 7, 64 * MiB);
    want(&t, "patches/11/kb2.msu", 8, 66 * MiB);
    want(&t, "patches/12/kb3.msu", 9, 66 * MiB);
    F.shared[8][7] = 60 * MiB;
    F.shared[9][7] = 60 * MiB;
    F.shared[9][8] = 60 * MiB;
    build(&t);
    a = item(&t, "patches/11/kb1.msu");
    b = item(&t, "patches/11/kb2.msu");
    c = item(&t, "patches/12/kb3.msu");
    CHECK(a && a->method == DS_PLAN_WHOLE);
    CHECK(b && b->action == DS_PLAN_CREATE && b->method == DS_PLAN_DELTA);
    CHECK_STR(b ? b->basis : NULL, "patches/11/kb1.msu");
    CHECK(b && b->basis_sha256[0] == 7);
    CHECK(c && c->method == DS_PLAN_WHOLE);
    t_free(&t);
}

/* Identical contents are sent once per run: a later path with the content
 * of an earlier file of the plan (created or updated) or of a kept file is
 * a COPY of it on the target, whatever the folders. */
static void test_same_content_once(void)
{
    struct t t;
    const ds_plan_item_t *a, *b, *c, *d;

    t_init(&t);
    want(&t, "engines/bin/git", 5, 4 * MiB);
    want(&t, "engines/lib/git-core/git", 5, 4 * MiB);
    want(&t, "engines/lib/kept", 6, 100000);
    want(&t, "engines/lib/zz-kept-again", 6, 100000);
    have(&t, "engines/lib/git-core/git", 4, 4 * MiB, 0);
    have(&t, "engines/lib/kept", 6, 100000, 0);
    build(&t);
    a = item(&t, "engines/bin/git");
    b = item(&t, "engines/lib/git-core/git");
    c = item(&t, "engines/lib/kept");
    d = item(&t, "engines/lib/zz-kept-again");
    CHECK(a && a->action == DS_PLAN_CREATE && a->method != DS_PLAN_COPY);
    CHECK(b && b->action == DS_PLAN_UPDATE && b->method == DS_PLAN_COPY);
    CHECK_STR(b ? b->basis : NULL, "engines/bin/git");
    CHECK(b && b->basis_sha256[0] == 5 && b->est_bytes <= DS_PLAN_FILE_OVERHEAD);
    CHECK(c && c->action == DS_PLAN_KEEP);
    CHECK(d && d->action == DS_PLAN_CREATE && d->method == DS_PLAN_COPY);
    CHECK_STR(d ? d->basis : NULL, "engines/lib/kept");
    CHECK_STR(ds_plan_method_name(DS_PLAN_COPY), "copy");
    t_free(&t);
}

/* A file unreadable in the store (issue 7 item 5): nothing is sent, the
 * target keeps its copy even with prune, and that copy still serves as a
 * delta basis for other files. */
static void test_unreadable(void)
{
    struct t t;
    const ds_plan_item_t *u, *v, *n;

    t_init(&t);
    t.in.prune = 1;
    want(&t, "patches/u.msu", 0, 100 * 1024);
    t.want[0].unreadable = 1;
    want(&t, "patches/v.msu", 0, 10);
    t.want[1].unreadable = 1;
    want(&t, "patches/new.msu", 5, 100 * 1024);
    have(&t, "patches/u.msu", 4, 100 * 1024, 0);
    F.shared[5][4] = 90 * 1024;
    build(&t);
    u = item(&t, "patches/u.msu");
    v = item(&t, "patches/v.msu");
    n = item(&t, "patches/new.msu");
    CHECK(u && u->action == DS_PLAN_UNREADABLE && u->method == DS_PLAN_NONE);
    CHECK(v && v->action == DS_PLAN_UNREADABLE); /* absent on the target: not created */
    CHECK(n && n->action == DS_PLAN_CREATE && n->method == DS_PLAN_DELTA && n->basis &&
          strcmp(n->basis, "patches/u.msu") == 0);
    CHECK_INT(t.plan->totals.del, 0);
    CHECK_INT(t.plan->totals.unreadable, 2);
    CHECK_INT(t.plan->totals.keep, 0);
    CHECK_STR(ds_plan_action_name(DS_PLAN_UNREADABLE), "unreadable");
    t_free(&t);
}

static void test_names(void)
{
    CHECK_STR(ds_plan_action_name(DS_PLAN_CREATE), "create");
    CHECK_STR(ds_plan_action_name(DS_PLAN_DELETE), "delete");
    CHECK_STR(ds_plan_method_name(DS_PLAN_DELTA), "delta");
    CHECK_STR(ds_plan_method_name(DS_PLAN_ADOPT), "adopt");
    ds_plan_free(NULL);
}

int main(void)
{
    RUN(test_create_keep);
    RUN(test_update_own_basis);
    RUN(test_renamed_basis);
    RUN(test_low_overlap_delta);
    RUN(test_near_zero_overlap);
    RUN(test_small_same_path);
    RUN(test_prune);
    RUN(test_manifest_entry_gone);
    RUN(test_guard_unscanned_empty);
    RUN(test_guard_max_delete);
    RUN(test_guard_absent_class);
    RUN(test_need_hash);
    RUN(test_drift);
    RUN(test_hash_of_clean_path);
    RUN(test_missing_hash_is_unknown);
    RUN(test_changing_path_not_basis);
    RUN(test_rsync_fallback);
    RUN(test_whole_only);
    RUN(test_chain_in_plan);
    RUN(test_same_content_once);
    RUN(test_unreadable);
    RUN(test_names);
    return CHECK_DONE();
}

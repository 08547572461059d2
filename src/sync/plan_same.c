/*
 * Identical contents in one plan: an open-addressing table from SHA-256 to
 * the first path of the plan that puts (or keeps) that content on the
 * target. A later path with the same content is then a COPY of that file
 * on the target (DS_PLAN_COPY) instead of a second transfer: git's
 * /usr/bin/git and /usr/lib/git-core/git are one program.
 */
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "plan_same.h"

struct slot {
    uint8_t sha[DS_SHA256_LEN];
    const char *path; /* NULL: empty */
};

struct ds__plan_same {
    struct slot *t;
    size_t cap, n; /* cap: a power of two, at least twice the contents */
};

ds__plan_same_t *ds__plan_same_new(size_t n)
{
    ds__plan_same_t *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->cap = 16;
    while (s->cap < 2 * n)
        s->cap *= 2;
    s->t = calloc(s->cap, sizeof(*s->t));
    if (s->t == NULL) {
        free(s);
        return NULL;
    }
    return s;
}

void ds__plan_same_free(ds__plan_same_t *s)
{
    if (s == NULL)
        return;
    free(s->t);
    free(s);
}

/* The slot of sha: its own, or the empty one where it would go. */
static struct slot *slot_of(const ds__plan_same_t *s, const uint8_t *sha)
{
    size_t h;

    memcpy(&h, sha, sizeof(h)); /* SHA-256 bytes are already uniform */
    for (size_t i = h & (s->cap - 1);; i = (i + 1) & (s->cap - 1))
        if (s->t[i].path == NULL || memcmp(s->t[i].sha, sha, DS_SHA256_LEN) == 0)
            return &s->t[i];
}

int ds__plan_same_add(ds__plan_same_t *s, const uint8_t sha256[DS_SHA256_LEN], const char *path)
{
    struct slot *e = slot_of(s, sha256);

    if (e->path != NULL)
        return 0;
    if (2 * (s->n + 1) > s->cap)
        return DS_ENOMEM;
    memcpy(e->sha, sha256, DS_SHA256_LEN);
    e->path = path;
    s->n++;
    return 0;
}

const char *ds__plan_same_find(const ds__plan_same_t *s, const uint8_t sha256[DS_SHA256_LEN])
{
    return slot_of(s, sha256)->path;
}

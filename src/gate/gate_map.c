/* String-keyed maps of the upgrade gate: clients by ID, grants by token. */
#include <stdlib.h>
#include <string.h>

#include "gate_int.h"

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void *ds__gmap_get(const struct gmap *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == NULL)
            return NULL;
        if (strcmp(m->keys[i], key) == 0)
            return m->vals[i];
    }
}

static void place(struct gmap *m, const char *key, void *val)
{
    size_t i = hash(key) & (m->cap - 1);

    while (m->keys[i] != NULL && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & (m->cap - 1);
    m->n += m->keys[i] == NULL;
    m->keys[i] = key;
    m->vals[i] = val;
}

static int grow(struct gmap *m)
{
    struct gmap bigger = {.cap = m->cap ? 2 * m->cap : 64};

    bigger.keys = calloc(bigger.cap, sizeof(*bigger.keys));
    bigger.vals = calloc(bigger.cap, sizeof(*bigger.vals));
    if (bigger.keys == NULL || bigger.vals == NULL) {
        ds__gmap_free(&bigger);
        return DS_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] != NULL)
            place(&bigger, m->keys[i], m->vals[i]);
    ds__gmap_free(m);
    *m = bigger;
    return 0;
}

int ds__gmap_put(struct gmap *m, const char *key, void *val)
{
    if ((m->n + 1) * 4 > m->cap * 3 && grow(m) < 0)
        return DS_ENOMEM;
    place(m, key, val);
    return 0;
}

void ds__gmap_del(struct gmap *m, const char *key)
{
    size_t i, j, home;

    if (m->cap == 0)
        return;
    for (i = hash(key) & (m->cap - 1); m->keys[i] != NULL; i = (i + 1) & (m->cap - 1))
        if (strcmp(m->keys[i], key) == 0)
            break;
    if (m->keys[i] == NULL)
        return;
    m->keys[i] = NULL;
    m->n--;
    /* backward shift: move later entries of the cluster into the hole
     * when their home slot does not lie (cyclically) in (i, j] */
    for (j = (i + 1) & (m->cap - 1); m->keys[j] != NULL; j = (j + 1) & (m->cap - 1)) {
        home = hash(m->keys[j]) & (m->cap - 1);
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            m->keys[j] = NULL;
            i = j;
        }
    }
}

void ds__gmap_free(struct gmap *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->n = 0;
}

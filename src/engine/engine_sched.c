/*
 * Which server of a batch starts next: in batch order, the first queued
 * server whose site (if any) is below its limit, while fewer than the
 * global limit run. Pure: unit-tested in tests/unit/test_engine.c.
 */
#include <stdlib.h>

#include "distsync/error.h"
#include "engine_int.h"

int ds__sched_init(ds_sched_t *s, size_t n, const int *site, size_t nsites,
                   const unsigned *site_max, unsigned max)
{
    *s = (ds_sched_t){.n = n, .site = site, .nsites = nsites, .max = max ? max : 1};
    s->state = calloc(n + 1, 1);
    s->site_max = calloc(nsites + 1, sizeof(*s->site_max));
    s->site_active = calloc(nsites + 1, sizeof(*s->site_active));
    if (s->state == NULL || s->site_max == NULL || s->site_active == NULL) {
        ds__sched_free(s);
        return DS_ENOMEM;
    }
    for (size_t k = 0; k < nsites; k++)
        s->site_max[k] = site_max[k] ? site_max[k] : 1;
    return 0;
}

void ds__sched_free(ds_sched_t *s)
{
    free(s->state);
    free(s->site_max);
    free(s->site_active);
    s->state = NULL;
    s->site_max = s->site_active = NULL;
}

long ds__sched_next(ds_sched_t *s)
{
    if (s->active >= s->max)
        return -1;
    for (size_t i = 0; i < s->n; i++) {
        int k = s->site[i];

        if (s->state[i] != 0)
            continue;
        if (k >= 0 && (size_t)k < s->nsites && s->site_active[k] >= s->site_max[k])
            continue;
        s->state[i] = 1;
        s->active++;
        if (k >= 0 && (size_t)k < s->nsites)
            s->site_active[k]++;
        return (long)i;
    }
    return -1;
}

void ds__sched_end(ds_sched_t *s, size_t i)
{
    int k = s->site[i];

    if (s->state[i] == 1) {
        s->active--;
        if (k >= 0 && (size_t)k < s->nsites)
            s->site_active[k]--;
    }
    s->state[i] = 2;
}

int ds__sched_all_ended(const ds_sched_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->state[i] != 2)
            return 0;
    return 1;
}

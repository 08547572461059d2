/*
 * A configuration's bandwidth caps as a limiter tree (see caps.h): one
 * entry per capped level, its table and zone, and when its rate next
 * changes. Reload builds the new entries beside the old ones (zones loaded
 * first, so a failure changes nothing), reusing limiter nodes by name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/caps.h"
#include "distsync/error.h"

#define SEC 1000000000LL

struct cap {
    char *name; /* site or server name; NULL for the global cap */
    char *site; /* a server's site, NULL when none */
    ds_rl_node_t *node;
    ds_bw_table_t table;
    const ds_tz_t *tz; /* one of the zones */
    int64_t next;      /* wall-clock second of the next change, DS_BW_NEVER */
    int64_t until;     /* the same instant on the limiter's clock */
};

struct zones {
    char **name; /* "" for the console's zone */
    ds_tz_t **tz;
    size_t n;
};

struct set {
    struct cap global;
    struct cap *sites, *servers;
    size_t nsites, nservers;
    struct zones zones;
};

struct ds_caps {
    ds_rl_t *rl;
    struct set cur;
};

static void set_free(struct set *s)
{
    for (size_t i = 0; i < s->nsites; i++)
        free(s->sites[i].name);
    for (size_t i = 0; i < s->nservers; i++) {
        free(s->servers[i].name);
        free(s->servers[i].site);
    }
    for (size_t i = 0; i < s->zones.n; i++) {
        free(s->zones.name[i]);
        ds_tz_free(s->zones.tz[i]);
    }
    free(s->sites);
    free(s->servers);
    free(s->zones.name);
    free(s->zones.tz);
    memset(s, 0, sizeof(*s));
}

/* The zone called name (NULL: the console's), loaded once per set. */
static int zone(struct zones *z, const char *name, const ds_tz_t **out, char *err, size_t errlen)
{
    const char *key = name ? name : "";
    char **nn;
    ds_tz_t **nt, *tz = NULL;
    int rc;

    for (size_t i = 0; i < z->n; i++)
        if (strcmp(z->name[i], key) == 0) {
            *out = z->tz[i];
            return 0;
        }
    if ((rc = ds_tz_load(name, &tz)) < 0) {
        snprintf(err, errlen, "bandwidth: cannot load time zone '%s': %s",
                 name ? name : "(the console's)", ds_strerror(rc));
        return rc;
    }
    nn = realloc(z->name, (z->n + 1) * sizeof(*nn));
    if (nn != NULL)
        z->name = nn;
    nt = nn ? realloc(z->tz, (z->n + 1) * sizeof(*nt)) : NULL;
    if (nt != NULL)
        z->tz = nt;
    if (nt == NULL || (z->name[z->n] = strdup(key)) == NULL) {
        ds_tz_free(tz);
        return DS_ENOMEM;
    }
    z->tz[z->n++] = tz;
    *out = tz;
    return 0;
}

static const struct cap *find(const struct cap *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return &v[i];
    return NULL;
}

static const char *site_zone(const ds_config_t *cfg, const char *site)
{
    const ds_site_cfg_t *s = site ? ds_config_site(cfg, site) : NULL;

    return s ? s->tz : NULL;
}

/* Fills s from cfg; nodes are reused from old (by name, and for servers by
 * site) or added to rl. */
static int set_build(struct set *s, const ds_config_t *cfg, ds_rl_t *rl, const struct set *old,
                     char *err, size_t errlen)
{
    int rc;

    s->sites = calloc(cfg->nsites + 1, sizeof(*s->sites));
    s->servers = calloc(cfg->nservers + 1, sizeof(*s->servers));
    if (s->sites == NULL || s->servers == NULL)
        return DS_ENOMEM;
    s->global = (struct cap){.node = ds_rl_root(rl), .table = cfg->bandwidth.table};
    if ((rc = zone(&s->zones, NULL, &s->global.tz, err, errlen)) < 0)
        return rc;
    for (size_t i = 0; i < cfg->nsites; i++, s->nsites++) {
        const ds_site_cfg_t *si = &cfg->sites[i];
        const struct cap *o = find(old->sites, old->nsites, si->name);
        struct cap *c = &s->sites[i];

        c->table = si->bandwidth.table;
        if ((c->name = strdup(si->name)) == NULL)
            return DS_ENOMEM;
        if ((rc = zone(&s->zones, si->tz, &c->tz, err, errlen)) < 0)
            return rc;
        c->node = o ? o->node : NULL;
        if (c->node == NULL && (rc = ds_rl_add(rl, ds_rl_root(rl), &c->node)) < 0)
            return rc;
    }
    for (size_t i = 0; i < cfg->nservers; i++, s->nservers++) {
        const ds_server_cfg_t *sv = &cfg->servers[i];
        const struct cap *o = find(old->servers, old->nservers, sv->name);
        const struct cap *site = sv->site ? find(s->sites, s->nsites, sv->site) : NULL;
        struct cap *c = &s->servers[i];

        c->table = sv->bandwidth.table;
        if ((c->name = strdup(sv->name)) == NULL ||
            (sv->site && (c->site = strdup(sv->site)) == NULL))
            return DS_ENOMEM;
        if ((rc = zone(&s->zones, site_zone(cfg, sv->site), &c->tz, err, errlen)) < 0)
            return rc;
        if (o && ((o->site == NULL) == (c->site == NULL)) &&
            (o->site == NULL || strcmp(o->site, c->site) == 0))
            c->node = o->node;
        if (c->node == NULL &&
            (rc = ds_rl_add(rl, site ? site->node : ds_rl_root(rl), &c->node)) < 0)
            return rc;
    }
    return 0;
}

/* Sets c's rate as at wall / mono. Returns 1 when it changed, 0, DS_ERANGE. */
static int eval(ds_rl_t *rl, struct cap *c, int64_t wall, int64_t mono)
{
    uint64_t bps, before = ds_rl_cap(c->node);
    int64_t next;
    int rc = ds_bw_rate_at(&c->table, c->tz, wall / SEC, &bps, &next);

    if (rc < 0)
        return rc;
    c->next = next;
    c->until = next == DS_BW_NEVER || next - wall / SEC > INT64_MAX / SEC / 2
                   ? DS_RL_NEVER
                   : mono + next * SEC - wall;
    ds_rl_set_rate(rl, c->node, mono, bps, c->until);
    return before != bps;
}

static int tick_all(ds_caps_t *c, int64_t wall, int64_t mono, int force, int64_t *due)
{
    struct cap *all[3] = {&c->cur.global, c->cur.sites, c->cur.servers};
    size_t n[3] = {1, c->cur.nsites, c->cur.nservers};
    int changed = 0, rc;

    *due = DS_RL_NEVER;
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < n[k]; i++) {
            struct cap *x = &all[k][i];

            if (force || wall / SEC >= x->next) {
                if ((rc = eval(c->rl, x, wall, mono)) < 0)
                    return rc;
                changed |= rc;
            }
            if (x->until < *due)
                *due = x->until;
        }
    }
    return changed;
}

int ds_caps_new(const ds_config_t *cfg, int64_t wall, int64_t mono, ds_caps_t **out, char *err,
                size_t errlen)
{
    ds_caps_t *c = calloc(1, sizeof(*c));
    struct set none = {0};
    int64_t due;
    int rc = DS_ENOMEM;

    *out = NULL;
    if (c == NULL || ds_rl_new(&c->rl) < 0)
        goto out;
    rc = set_build(&c->cur, cfg, c->rl, &none, err, errlen);
    if (rc == 0)
        rc = tick_all(c, wall, mono, 1, &due);
out:
    if (rc < 0) {
        ds_caps_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void ds_caps_free(ds_caps_t *c)
{
    if (c == NULL)
        return;
    set_free(&c->cur);
    ds_rl_free(c->rl);
    free(c);
}

ds_rl_t *ds_caps_limiter(ds_caps_t *c)
{
    return c->rl;
}

ds_rl_node_t *ds_caps_server(ds_caps_t *c, const char *name)
{
    const struct cap *x = find(c->cur.servers, c->cur.nservers, name);

    return x ? x->node : NULL;
}

int ds_caps_tick(ds_caps_t *c, int64_t wall, int64_t mono, int64_t *due)
{
    return tick_all(c, wall, mono, 0, due);
}

int ds_caps_reload(ds_caps_t *c, const ds_config_t *cfg, int64_t wall, int64_t mono, char *err,
                   size_t errlen)
{
    struct set next = {0}, old = c->cur;
    int64_t due;
    int rc = set_build(&next, cfg, c->rl, &c->cur, err, errlen);

    if (rc < 0) {
        set_free(&next);
        return rc;
    }
    c->cur = next;
    rc = tick_all(c, wall, mono, 1, &due);
    if (rc < 0) {
        c->cur = old;
        set_free(&next);
        tick_all(c, wall, mono, 1, &due);
        snprintf(err, errlen, "bandwidth: %s", ds_strerror(rc));
        return rc;
    }
    set_free(&old);
    return 0;
}

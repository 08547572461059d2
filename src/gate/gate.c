/*
 * The upgrade gate's life cycle (build from the configuration, load the
 * state back), the servers' facts, the rollouts' controls (pause, resume,
 * promote), ring opening and the status. The decisions are gate_admit.c.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "distsync/freeze.h"
#include "distsync/tz.h"
#include "gate_int.h"

static int cmp_pkg(const void *a, const void *b)
{
    return ds_version_cmp((*(const ds_package_cfg_t *const *)a)->version,
                          (*(const ds_package_cfg_t *const *)b)->version);
}

static int rollout_init(const ds_config_t *cfg, const ds_rollout_cfg_t *rc, struct rollout *r)
{
    r->cfg = rc;
    r->nrings = rc->rings.n;
    r->rings = calloc(r->nrings, sizeof(*r->rings));
    r->outs = calloc(r->nrings, sizeof(*r->outs));
    r->chain = calloc(cfg->npackages + 1, sizeof(*r->chain));
    r->queues = calloc(cfg->nsites + 1, sizeof(*r->queues));
    if (r->rings == NULL || r->outs == NULL || r->chain == NULL || r->queues == NULL)
        return DS_ENOMEM;
    for (size_t i = 0; i < r->nrings; i++)
        r->rings[i].cfg = ds_config_ring(cfg, rc->rings.v[i]);
    for (size_t i = 0; i < cfg->npackages; i++) {
        const ds_package_cfg_t *k = &cfg->packages[i];

        if (strcmp(k->product, rc->product) == 0 && ds_version_cmp(k->version, rc->version) <= 0)
            r->chain[r->nchain++] = k;
    }
    qsort(r->chain, r->nchain, sizeof(*r->chain), cmp_pkg);
    return 0;
}

static int cmp_seq(const void *a, const void *b)
{
    int64_t x = (*(struct client *const *)a)->seq, y = (*(struct client *const *)b)->seq;

    return x < y ? -1 : x > y;
}

static int site_index(const ds_config_t *cfg, const char *name)
{
    for (size_t i = 0; name != NULL && i < cfg->nsites; i++)
        if (strcmp(cfg->sites[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int server_index(const ds_config_t *cfg, const char *name)
{
    for (size_t i = 0; name != NULL && i < cfg->nservers; i++)
        if (strcmp(cfg->servers[i].name, name) == 0)
            return (int)i;
    return -1;
}

int ds__gate_rollout_index(const ds_gate_t *g, const char *name)
{
    for (size_t i = 0; i < g->nro; i++)
        if (strcmp(g->ro[i].cfg->name, name) == 0)
            return (int)i;
    return -1;
}

static int load_row(void *arg, const ds_gate_row_t *row)
{
    ds_gate_t *g = arg;
    int ri = ds__gate_rollout_index(g, row->rollout);
    struct client *c;

    if (ri < 0 || !ds_client_id_ok(row->client))
        return 0; /* a rollout no longer configured */
    if ((c = ds__gate_client(g, ri, row->client)) == NULL)
        return DS_ENOMEM;
    c->site = site_index(g->cfg, row->site);
    snprintf(c->from, sizeof(c->from), "%s", row->from ? row->from : "");
    snprintf(c->version, sizeof(c->version), "%s", row->version ? row->version : "");
    snprintf(c->token, sizeof(c->token), "%s", row->token ? row->token : "");
    c->seq = row->seq;
    c->granted_at = row->granted_at;
    c->expires_at = row->expires_at;
    c->at = c->last_seen = row->at;
    c->reported = row->reported;
    c->at_target = row->status == DS_GATE_ST_SUCCEEDED &&
                   ds_version_cmp(c->version, g->ro[ri].cfg->version) >= 0;
    if (c->ring >= 0 && c->at_target)
        g->ro[ri].rings[c->ring].at_target++;
    if (c->token[0] != '\0' && ds__gmap_put(&g->tokens, c->token, c) < 0)
        return DS_ENOMEM;
    if (row->status == DS_GATE_ST_GRANTED) {
        c->server = server_index(g->cfg, row->server);
        c->rate = g->ro[ri].cfg->client_rate;
        if (ds__gate_take(g, c) < 0)
            return DS_ENOMEM;
    }
    if (row->seq < g->ro[ri].seq_lo)
        g->ro[ri].seq_lo = row->seq;
    if (row->seq > g->ro[ri].seq_hi)
        g->ro[ri].seq_hi = row->seq;
    ds__gate_set_status(g, c, row->status);
    if (row->status == DS_GATE_ST_WAITING && c->site >= 0)
        return ds__queue_push(&g->ro[ri].queues[c->site], c);
    if (row->status == DS_GATE_ST_WAITING)
        ds__gate_set_status(g, c, DS_GATE_ST_IDLE);
    return 0;
}

static int load_ctl(void *arg, const ds_gate_ctl_t *ctl)
{
    ds_gate_t *g = arg;
    int ri = ds__gate_rollout_index(g, ctl->rollout);

    if (ri < 0)
        return 0;
    g->ro[ri].paused = ctl->paused;
    snprintf(g->ro[ri].reason, sizeof(g->ro[ri].reason), "%s", ctl->reason ? ctl->reason : "");
    g->ro[ri].opened = ctl->promoted;
    return 0;
}

int ds_gate_new(const ds_config_t *cfg, const ds_gate_state_t *state, int64_t now, ds_gate_t **out,
                char *err, size_t errlen)
{
    ds_gate_t *g = calloc(1, sizeof(*g));
    size_t nsv = cfg->nservers + 1, nsi = cfg->nsites + 1;
    int rc = DS_ENOMEM;

    *out = NULL;
    if (g == NULL) {
        state->close(state->ctx);
        return ds_errf(err, errlen, DS_ENOMEM, "gate: out of memory");
    }
    g->cfg = cfg;
    g->st = *state;
    g->next_expiry = INT64_MAX;
    g->ro = calloc(cfg->nrollouts + 1, sizeof(*g->ro));
    g->site_used = calloc(nsi, sizeof(*g->site_used));
    g->site_bw = calloc(nsi, sizeof(*g->site_bw));
    g->server_used = calloc(nsv, sizeof(*g->server_used));
    g->frozen = calloc(nsv, 1);
    g->holds = calloc(nsv * (cfg->npackages + 1), 1);
    if (g->ro == NULL || g->site_used == NULL || g->site_bw == NULL || g->server_used == NULL ||
        g->frozen == NULL || g->holds == NULL)
        goto out;
    for (g->nro = 0; g->nro < cfg->nrollouts; g->nro++)
        if ((rc = rollout_init(cfg, &cfg->rollouts[g->nro], &g->ro[g->nro])) < 0)
            goto out;
    rc = g->st.load(g->st.ctx, load_row, load_ctl, g);
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < g->nro; i++)
        for (size_t s = 0; s < cfg->nsites; s++)
            if (g->ro[i].queues[s].n > 1)
                qsort(g->ro[i].queues[s].v, g->ro[i].queues[s].n, sizeof(struct client *), cmp_seq);
    ds__gate_expire(g, now);
out:
    if (rc < 0) {
        ds_errf(err, errlen, rc, "gate: loading its state: %s", ds_strerror(rc));
        ds_gate_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

void ds_gate_free(ds_gate_t *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < g->nro; i++) {
        struct rollout *r = &g->ro[i];

        for (size_t k = 0; k < r->clients.cap; k++)
            if (r->clients.keys[k] != NULL) {
                free(((struct client *)r->clients.vals[k])->id);
                free(r->clients.vals[k]);
            }
        ds__gmap_free(&r->clients);
        for (size_t s = 0; s < g->cfg->nsites; s++)
            free(r->queues[s].v);
        free(r->queues);
        free(r->rings);
        free(r->outs);
        free(r->chain);
    }
    if (g->st.close != NULL)
        g->st.close(g->st.ctx);
    ds__gmap_free(&g->tokens);
    free(g->ro);
    free(g->granted);
    free(g->site_used);
    free(g->site_bw);
    free(g->server_used);
    free(g->frozen);
    free(g->holds);
    free(g);
}

int ds_gate_flush(ds_gate_t *g)
{
    /* a write failed: the batch lacks a change the gate made in memory, so
     * it must not be committed as if whole */
    return g->failed ? DS_ECATALOG : g->st.flush(g->st.ctx);
}

/* See gate_int.h. */
ds_gate_row_t ds__gate_row(const ds_gate_t *g, const struct client *c, const char *detail)
{
    return (ds_gate_row_t){
        .rollout = g->ro[c->rollout].cfg->name,
        .client = c->id,
        .status = c->st,
        .site = c->site >= 0 ? g->cfg->sites[c->site].name : "",
        .server = c->server >= 0 ? g->cfg->servers[c->server].name : "",
        .from = c->from,
        .version = c->version,
        .token = c->token,
        .seq = c->seq,
        .granted_at = c->granted_at,
        .expires_at = c->expires_at,
        .at = c->at,
        .reported = c->reported,
        .detail = detail ? detail : "",
    };
}

int ds__gate_write(ds_gate_t *g, const struct client *c, const char *detail)
{
    ds_gate_row_t row = ds__gate_row(g, c, detail);
    int rc = g->st.put_row(g->st.ctx, &row);

    if (rc < 0)
        g->failed = 1;
    return rc;
}

int ds__gate_write_ctl(ds_gate_t *g, const struct rollout *r, int64_t now)
{
    ds_gate_ctl_t ctl = {.rollout = r->cfg->name,
                         .paused = r->paused,
                         .reason = r->reason,
                         .promoted = r->opened,
                         .at = now};
    int rc = g->st.put_ctl(g->st.ctx, &ctl);

    if (rc < 0)
        g->failed = 1;
    return rc;
}

/* The first ring of r whose members hold id: the file's IDs, then the
 * globs. *by_glob tells which. -1 when none. */
static int ring_of(const struct rollout *r, const char *id, int *by_glob)
{
    for (size_t i = 0; i < r->nrings; i++) {
        const ds_ring_cfg_t *rc = r->rings[i].cfg;
        size_t lo = 0, hi = rc->ids.n;

        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            int c = strcmp(rc->ids.v[mid], id);

            if (c == 0) {
                *by_glob = 0;
                return (int)i;
            }
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (size_t k = 0; k < rc->members.n; k++)
            if (fnmatch(rc->members.v[k], id, 0) == 0) {
                *by_glob = 1;
                return (int)i;
            }
    }
    return -1;
}

struct client *ds__gate_client(ds_gate_t *g, int ri, const char *id)
{
    struct rollout *r = &g->ro[ri];
    struct client *c = ds__gmap_get(&r->clients, id);
    int by_glob = 0;

    if (c != NULL)
        return c;
    if ((c = calloc(1, sizeof(*c))) == NULL || (c->id = strdup(id)) == NULL ||
        ds__gmap_put(&r->clients, c->id, c) < 0) {
        if (c != NULL)
            free(c->id);
        free(c);
        return NULL;
    }
    c->rollout = ri;
    c->site = c->server = -1;
    c->ring = ring_of(r, id, &by_glob);
    if (c->ring >= 0) {
        r->rings[c->ring].seen_glob += by_glob;
        r->rings[c->ring].n[DS_GATE_ST_IDLE]++;
    }
    return c;
}

void ds__gate_set_status(ds_gate_t *g, struct client *c, ds_gate_status_t st)
{
    struct ring *rg = c->ring >= 0 ? &g->ro[c->rollout].rings[c->ring] : NULL;

    if (rg != NULL) {
        rg->n[c->st]--;
        rg->n[st]++;
    }
    c->st = st;
}

int ds__gate_take(ds_gate_t *g, struct client *c)
{
    struct client **v;

    if (g->ngranted == g->capgranted) {
        size_t cap = g->capgranted ? 2 * g->capgranted : 64;

        if ((v = realloc(g->granted, cap * sizeof(*v))) == NULL)
            return DS_ENOMEM;
        g->granted = v;
        g->capgranted = cap;
    }
    g->granted[g->ngranted++] = c;
    c->in_granted = (int)g->ngranted;
    g->used++;
    g->bw += c->rate;
    if (c->site >= 0) {
        g->site_used[c->site]++;
        g->site_bw[c->site] += c->rate;
    }
    if (c->server >= 0)
        g->server_used[c->server]++;
    if (c->expires_at < g->next_expiry)
        g->next_expiry = c->expires_at;
    return 0;
}

void ds__gate_release(ds_gate_t *g, struct client *c)
{
    size_t i = (size_t)c->in_granted - 1;

    if (c->in_granted == 0)
        return;
    g->granted[i] = g->granted[--g->ngranted];
    g->granted[i]->in_granted = (int)i + 1;
    c->in_granted = 0;
    g->used--;
    g->bw -= c->rate;
    if (c->site >= 0) {
        g->site_used[c->site]--;
        g->site_bw[c->site] -= c->rate;
    }
    if (c->server >= 0)
        g->server_used[c->server]--;
}

int ds__queue_push(struct queue *q, struct client *c)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 16;
        struct client **v = realloc(q->v, cap * sizeof(*v));

        if (v == NULL)
            return DS_ENOMEM;
        q->v = v;
        q->cap = cap;
    }
    q->v[q->n++] = c;
    return 0;
}

void ds__queue_del(struct queue *q, struct client *c)
{
    for (size_t i = 0; i < q->n; i++)
        if (q->v[i] == c) {
            memmove(q->v + i, q->v + i + 1, (q->n - i - 1) * sizeof(*q->v));
            q->n--;
            return;
        }
}

unsigned ds__ring_members(const struct ring *r)
{
    return r->cfg->size ? r->cfg->size : (unsigned)r->cfg->ids.n + r->seen_glob;
}

/* See gate_int.h. */
void ds__gate_fmt_time(int64_t t, char *buf, size_t len)
{
    if (ds_tz_format_utc(t, buf, len) < 0)
        snprintf(buf, len, "%lld", (long long)t);
}

/* Whether ring i of r may open now, the earlier rings being open. */
static int ring_ready(const struct rollout *r, int i, int64_t now, char *why, size_t len)
{
    const struct ring *prev;
    unsigned m;
    char when[40];

    if (r->rings[i].cfg->opens > now) {
        ds__gate_fmt_time(r->rings[i].cfg->opens, when, sizeof(when));
        snprintf(why, len, "ring closed until %s", when);
        return 0;
    }
    if (i == 0)
        return 1;
    prev = &r->rings[i - 1];
    m = ds__ring_members(prev);
    if (m > 0 && (uint64_t)prev->at_target * 10000 >= (uint64_t)r->cfg->min_success_bp * m)
        return 1;
    snprintf(why, len, "ring closed until ring %s reaches min_success %u.%02u%% (%u of %u on %s)",
             prev->cfg->name, r->cfg->min_success_bp / 100, r->cfg->min_success_bp % 100,
             prev->at_target, m, r->cfg->version);
    return 0;
}

int ds__gate_ring_open(ds_gate_t *g, struct rollout *r, int i, int64_t now, char *why, size_t len)
{
    int opened = r->opened;

    /* rings open in order: the first closed one before i says why */
    while (r->opened <= i && ring_ready(r, r->opened, now, why, len))
        r->opened++; /* latched: counts moving later do not close it */
    if (r->opened != opened)
        (void)ds__gate_write_ctl(g, r, now);
    return i < r->opened;
}

int ds_gate_server_set(ds_gate_t *g, const char *server, const char *product, const char *version,
                       int holds, int frozen)
{
    int sv = server_index(g->cfg, server);
    const ds_package_cfg_t *k = ds_config_package(g->cfg, product, version);

    if (sv < 0 || k == NULL)
        return DS_ENOTFOUND;
    g->holds[(size_t)sv * g->cfg->npackages + (size_t)(k - g->cfg->packages)] = holds != 0;
    g->frozen[sv] = frozen != 0;
    return 0;
}

int ds_gate_refresh(ds_gate_t *g, ds_catalog_t *cat, int64_t now)
{
    ds_freeze_t f;
    int rc = 0, holds;

    for (size_t s = 0; rc >= 0 && s < g->cfg->nservers; s++) {
        const char *name = g->cfg->servers[s].name;

        rc = ds_freeze_get(cat, name, now, &f);
        g->frozen[s] = rc == 0;
        rc = rc == DS_ENOTFOUND ? 0 : rc;
        for (size_t k = 0; rc == 0 && k < g->cfg->npackages; k++) {
            rc = ds_catalog_server_holds(cat, name, g->cfg->packages[k].path, &holds);
            g->holds[s * g->cfg->npackages + k] = rc == 0 && holds;
        }
    }
    return rc;
}

int ds_gate_reload_ctl(ds_gate_t *g)
{
    return g->st.load_ctl(g->st.ctx, load_ctl, g);
}

int ds_gate_pause(ds_gate_t *g, const char *rollout, const char *reason, int64_t now)
{
    int ri = ds__gate_rollout_index(g, rollout);

    if (ri < 0)
        return DS_ENOTFOUND;
    g->ro[ri].paused = 1;
    snprintf(g->ro[ri].reason, sizeof(g->ro[ri].reason), "%s",
             reason && *reason ? reason : "paused by the operator");
    return ds__gate_write_ctl(g, &g->ro[ri], now);
}

int ds_gate_resume(ds_gate_t *g, const char *rollout, int64_t now)
{
    int ri = ds__gate_rollout_index(g, rollout);

    if (ri < 0)
        return DS_ENOTFOUND;
    g->ro[ri].paused = 0;
    g->ro[ri].reason[0] = '\0';
    return ds__gate_write_ctl(g, &g->ro[ri], now);
}

int ds_gate_promote(ds_gate_t *g, const char *rollout, int64_t now, char *err, size_t errlen)
{
    int ri = ds__gate_rollout_index(g, rollout);
    struct rollout *r;

    if (ri < 0)
        return ds_errf(err, errlen, DS_ENOTFOUND, "no rollout %s in the configuration", rollout);
    r = &g->ro[ri];
    if (r->nrings > 0) /* the rings open by their own rules first */
        (void)ds__gate_ring_open(g, r, (int)r->nrings - 1, now, err, errlen);
    if ((size_t)r->opened >= r->nrings)
        return ds_errf(err, errlen, DS_EUSAGE, "rollout %s: every ring is open already", rollout);
    r->opened++;
    return ds__gate_write_ctl(g, r, now);
}

int ds_gate_status(ds_gate_t *g, const char *rollout, int64_t now, ds_gate_rollout_status_t *out)
{
    int ri = ds__gate_rollout_index(g, rollout);
    struct rollout *r;
    const ds_package_cfg_t *k;

    if (ri < 0)
        return DS_ENOTFOUND;
    ds__gate_expire(g, now);
    r = &g->ro[ri];
    memset(out, 0, sizeof(*out));
    out->name = r->cfg->name;
    out->product = r->cfg->product;
    out->version = r->cfg->version;
    out->paused = r->paused;
    snprintf(out->reason, sizeof(out->reason), "%s", r->reason);
    for (size_t i = 0; i < r->nrings; i++) {
        struct ring *rg = &r->rings[i];
        ds_gate_ring_status_t *o = &r->outs[i];

        memset(o, 0, sizeof(*o));
        o->name = rg->cfg->name;
        o->members = ds__ring_members(rg);
        o->granted = rg->n[DS_GATE_ST_GRANTED];
        o->waiting = rg->n[DS_GATE_ST_WAITING];
        o->succeeded = rg->n[DS_GATE_ST_SUCCEEDED];
        o->failed = rg->n[DS_GATE_ST_FAILED];
        o->expired = rg->n[DS_GATE_ST_EXPIRED];
        o->open = ds__gate_ring_open(g, r, (int)i, now, o->why, sizeof(o->why));
        out->granted += o->granted;
        out->waiting += o->waiting;
        out->succeeded += o->succeeded;
        out->failed += o->failed;
        out->expired += o->expired;
    }
    out->rings = r->outs;
    out->nrings = r->nrings;
    k = ds_config_package(g->cfg, r->cfg->product, r->cfg->version);
    for (size_t s = 0; k != NULL && s < g->cfg->nservers; s++) {
        if (g->cfg->servers[s].site == NULL)
            continue;
        out->servers++;
        out->staged += g->holds[s * g->cfg->npackages + (size_t)(k - g->cfg->packages)];
    }
    return 0;
}

int ds_gate_staged(const ds_gate_t *g, const char *rollout, size_t i)
{
    int ri = ds__gate_rollout_index(g, rollout);
    const ds_package_cfg_t *k;

    if (ri < 0 || i >= g->cfg->nservers || g->cfg->servers[i].site == NULL)
        return -1;
    k = ds_config_package(g->cfg, g->ro[ri].cfg->product, g->ro[ri].cfg->version);
    return k != NULL && g->holds[i * g->cfg->npackages + (size_t)(k - g->cfg->packages)];
}

int ds_gate_usage(const ds_gate_t *g, const char *level, const char *name, unsigned *used,
                  unsigned *cap, uint64_t *bw_used, uint64_t *bw_cap)
{
    int i;

    *bw_used = 0;
    *bw_cap = DS_BW_OFF;
    if (strcmp(level, "global") == 0) {
        *used = g->used;
        *cap = g->cfg->max_upgrades;
        *bw_used = g->bw;
        *bw_cap = g->cfg->upgrade_bw;
    } else if (strcmp(level, "site") == 0 && (i = site_index(g->cfg, name)) >= 0) {
        *used = g->site_used[i];
        *cap = g->cfg->sites[i].max_upgrades;
        *bw_used = g->site_bw[i];
        *bw_cap = g->cfg->sites[i].upgrade_bw;
    } else if (strcmp(level, "server") == 0 && (i = server_index(g->cfg, name)) >= 0) {
        *used = g->server_used[i];
        *cap = g->cfg->servers[i].max_upgrades;
    } else {
        return DS_ENOTFOUND;
    }
    return 0;
}

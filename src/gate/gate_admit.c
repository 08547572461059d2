/*
 * The upgrade gate's decisions: request (grant, wait or none), heartbeat,
 * report, priority, and the expiry of leases. Every change is written
 * through the state (gate.c, ds__gate_write) before the function returns;
 * the caller flushes before it answers.
 *
 * Admission: a client waits in the queue of its rollout and site, in seq
 * order. It is granted when its place in that queue (1 for the head) is
 * within the slots free for it now: the least of the global, the site's
 * and the bandwidth's spare room, and the free slots of the site's servers
 * that hold the package and are not frozen. A waiting client that has not
 * asked again for a lease period leaves the queue.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "gate_int.h"

#define BIG 0x7fffffffu

static int write_outcome(ds_gate_t *g, const struct client *c, const char *outcome, int late,
                         const char *detail)
{
    ds_gate_row_t row = ds__gate_row(g, c, detail); /* the outcome's columns among them */
    int rc = g->st.put_outcome(g->st.ctx, &row, outcome, late);

    if (rc < 0)
        g->failed = 1;
    return rc;
}

void ds__gate_expire(ds_gate_t *g, int64_t now)
{
    int64_t next = INT64_MAX;
    size_t i = 0;

    if (now < g->next_expiry)
        return;
    while (i < g->ngranted) {
        struct client *c = g->granted[i];

        if (c->expires_at > now) {
            next = c->expires_at < next ? c->expires_at : next;
            i++;
            continue;
        }
        ds__gate_release(g, c); /* swaps the last grant into i */
        ds__gate_set_status(g, c, DS_GATE_ST_EXPIRED);
        c->at = now;
        (void)ds__gate_write(g, c, NULL);
        (void)write_outcome(g, c, "expired", 0, NULL);
    }
    g->next_expiry = next;
}

/* The site of req: as given, else the first [site] whose clients = match.
 * -1 with err when none. */
static int site_of(const ds_gate_t *g, const struct client *c, const char *site, char *err,
                   size_t errlen)
{
    for (size_t i = 0; i < g->cfg->nsites; i++) {
        const ds_site_cfg_t *s = &g->cfg->sites[i];

        if (site != NULL && strcmp(s->name, site) == 0)
            return (int)i;
        for (size_t k = 0; site == NULL && k < s->clients.n; k++)
            if (fnmatch(s->clients.v[k], c->id, 0) == 0)
                return (int)i;
    }
    if (site != NULL)
        ds_errf(err, errlen, DS_EUSAGE, "unknown site '%.64s'", site);
    else
        ds_errf(err, errlen, DS_EUSAGE,
                "client %s has no site: send \"site\", or list it in a [site] clients =", c->id);
    return -1;
}

/* The next step of r's chain for a client at version v: the newest package
 * newer than v (up to the target) that upgrades from v. NULL when none. */
static const ds_package_cfg_t *next_step(const struct rollout *r, const char *v)
{
    for (size_t i = r->nchain; i-- > 0;) {
        const ds_package_cfg_t *k = r->chain[i];

        if (ds_version_cmp(k->version, v) > 0 &&
            (k->from == NULL || ds_version_cmp(k->from, v) <= 0))
            return k;
    }
    return NULL;
}

static unsigned room(unsigned cap, unsigned used)
{
    return cap == 0 ? BIG : cap > used ? cap - used : 0;
}

static unsigned bw_room(uint64_t cap, uint64_t used, uint64_t rate)
{
    if (rate == 0 || cap == DS_BW_OFF)
        return BIG;
    return cap > used ? (unsigned)((cap - used) / rate > BIG ? BIG : (cap - used) / rate) : 0;
}

/* Slots free now for a grant of package k at site si; *server gets the
 * first server with one (-1: none), why the cap that binds when 0. */
static unsigned slots(const ds_gate_t *g, const struct rollout *r, int si,
                      const ds_package_cfg_t *k, int *server, char *why, size_t len)
{
    const ds_config_t *cfg = g->cfg;
    const ds_site_cfg_t *site = &cfg->sites[si];
    size_t ki = (size_t)(k - cfg->packages);
    unsigned servers = 0, holding = 0, n;

    *server = -1;
    for (size_t s = 0; s < cfg->nservers; s++) {
        if (cfg->servers[s].site == NULL || strcmp(cfg->servers[s].site, site->name) != 0 ||
            !g->holds[s * cfg->npackages + ki])
            continue;
        holding++;
        if (g->frozen[s])
            continue;
        n = room(cfg->servers[s].max_upgrades, g->server_used[s]);
        if (n > 0 && *server < 0)
            *server = (int)s;
        servers = servers + n > BIG ? BIG : servers + n;
    }
    if (servers == 0) {
        if (holding == 0)
            snprintf(why, len, "no server of site %s holds %s %s verified yet", site->name,
                     k->product, k->version);
        else
            snprintf(why, len,
                     "every server of site %s holding %s %s is frozen or at "
                     "max_concurrent_upgrades",
                     site->name, k->product, k->version);
        return 0;
    }
    n = servers;
    if (room(cfg->max_upgrades, g->used) < n && (n = room(cfg->max_upgrades, g->used)) == 0)
        snprintf(why, len, "max_concurrent_upgrades (%u) reached", cfg->max_upgrades);
    if (n > 0 && room(site->max_upgrades, g->site_used[si]) < n &&
        (n = room(site->max_upgrades, g->site_used[si])) == 0)
        snprintf(why, len, "site %s at max_concurrent_upgrades (%u)", site->name,
                 site->max_upgrades);
    if (n > 0 && bw_room(cfg->upgrade_bw, g->bw, r->cfg->client_rate) < n &&
        (n = bw_room(cfg->upgrade_bw, g->bw, r->cfg->client_rate)) == 0)
        snprintf(why, len, "max_upgrade_bandwidth reached");
    if (n > 0 && bw_room(site->upgrade_bw, g->site_bw[si], r->cfg->client_rate) < n &&
        (n = bw_room(site->upgrade_bw, g->site_bw[si], r->cfg->client_rate)) == 0)
        snprintf(why, len, "site %s at max_upgrade_bandwidth", site->name);
    return n;
}

/* c's place in q (0: the head), dropping the clients ahead of it that have
 * not asked for a lease period. q->n when c is not in q. */
static size_t place_in(ds_gate_t *g, struct rollout *r, struct queue *q, struct client *c,
                       int64_t now)
{
    size_t i = 0;

    while (i < q->n && q->v[i] != c) {
        struct client *o = q->v[i];

        if (now - o->last_seen <= (int64_t)r->cfg->lease_s) {
            i++;
            continue;
        }
        ds__queue_del(q, o);
        ds__gate_set_status(g, o, DS_GATE_ST_IDLE);
        o->at = now;
        (void)ds__gate_write(g, o, NULL);
    }
    return i;
}

static void fill_grant(const ds_gate_t *g, const struct client *c, int64_t now,
                       ds_gate_decision_t *out)
{
    const struct rollout *r = &g->ro[c->rollout];
    const ds_package_cfg_t *k = ds_config_package(g->cfg, r->cfg->product, c->version);

    out->kind = DS_GATE_GRANT;
    snprintf(out->token, sizeof(out->token), "%s", c->token);
    snprintf(out->version, sizeof(out->version), "%s", c->version);
    snprintf(out->server, sizeof(out->server), "%s",
             c->server >= 0 ? g->cfg->servers[c->server].name : "");
    snprintf(out->path, sizeof(out->path), "%s", k ? k->path : "");
    out->expires_in = c->expires_at > now ? (unsigned)(c->expires_at - now) : 0;
}

static int new_token(char *buf)
{
    unsigned char raw[DS_GATE_TOKEN_LEN / 2];

    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return DS_EINTERNAL;
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(buf + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

static int grant(ds_gate_t *g, struct rollout *r, struct client *c, const ds_package_cfg_t *k,
                 int server, const char *from, int64_t now, ds_gate_decision_t *out)
{
    char token[DS_GATE_TOKEN_LEN + 1];
    int rc = new_token(token);

    if (rc < 0)
        return rc;
    if (c->st == DS_GATE_ST_WAITING)
        ds__queue_del(&r->queues[c->site], c);
    if (c->token[0] != '\0')
        ds__gmap_del(&g->tokens, c->token);
    memcpy(c->token, token, sizeof(token));
    snprintf(c->from, sizeof(c->from), "%s", from);
    snprintf(c->version, sizeof(c->version), "%s", k->version);
    c->server = server;
    c->rate = r->cfg->client_rate;
    c->granted_at = c->at = now;
    c->expires_at = now + r->cfg->lease_s;
    c->reported = 0;
    if ((rc = ds__gmap_put(&g->tokens, c->token, c)) < 0 || (rc = ds__gate_take(g, c)) < 0) {
        ds__gmap_del(&g->tokens, c->token);
        c->token[0] = '\0';
        ds__gate_set_status(g, c, DS_GATE_ST_IDLE);
        return rc;
    }
    ds__gate_set_status(g, c, DS_GATE_ST_GRANTED);
    fill_grant(g, c, now, out);
    return ds__gate_write(g, c, NULL);
}

static int none(ds_gate_decision_t *out, const char *fmt, const char *a, const char *b)
{
    out->kind = DS_GATE_NONE;
    snprintf(out->reason, sizeof(out->reason), fmt, a, b);
    return 0;
}

/* The client is at the target (or newer): counted once towards its
 * ring's min_success. */
static int up_to_date(ds_gate_t *g, struct rollout *r, struct client *c, const char *v, int64_t now,
                      ds_gate_decision_t *out)
{
    if (!c->at_target) {
        c->at_target = 1;
        if (c->ring >= 0)
            r->rings[c->ring].at_target++;
        snprintf(c->version, sizeof(c->version), "%s", v);
        c->at = now;
        if (c->st == DS_GATE_ST_WAITING) /* upgraded some other way */
            ds__queue_del(&r->queues[c->site], c);
        ds__gate_set_status(g, c, DS_GATE_ST_SUCCEEDED);
        (void)ds__gate_write(g, c, NULL);
    }
    return none(out, "up to date%s%s", "", "");
}

static int admit(ds_gate_t *g, struct rollout *r, struct client *c, const ds_package_cfg_t *k,
                 const char *from, int64_t now, ds_gate_decision_t *out)
{
    struct queue *q = &r->queues[c->site];
    int server;
    char why[256] = "";
    unsigned n = slots(g, r, c->site, k, &server, why, sizeof(why));
    size_t pos = place_in(g, r, q, c, now);
    int rc;

    c->last_seen = now;
    if (pos < n && server >= 0)
        return grant(g, r, c, k, server, from, now, out);
    if (c->st != DS_GATE_ST_WAITING) {
        if ((rc = ds__queue_push(q, c)) < 0)
            return rc;
        c->seq = ++r->seq_hi;
        c->at = now;
        snprintf(c->from, sizeof(c->from), "%s", from);
        ds__gate_set_status(g, c, DS_GATE_ST_WAITING);
        (void)ds__gate_write(g, c, NULL);
    }
    out->kind = DS_GATE_WAIT;
    out->position = (unsigned)pos + 1;
    out->retry_after = r->cfg->lease_s / 4 < 5    ? 5
                       : r->cfg->lease_s / 4 > 60 ? 60
                                                  : r->cfg->lease_s / 4;
    snprintf(out->reason, sizeof(out->reason), "%s",
             why[0] ? why : "clients ahead in the queue take the free slots");
    return 0;
}

static int find_rollout(const ds_gate_t *g, const char *product)
{
    for (size_t i = 0; i < g->nro; i++)
        if (strcmp(g->ro[i].cfg->product, product) == 0)
            return (int)i;
    return -1;
}

int ds_gate_product_rollout(const ds_gate_t *g, const char *product)
{
    int ri = product != NULL ? find_rollout(g, product) : -1;

    return ri < 0 ? DS_ENOTFOUND : ri;
}

int ds_gate_token_rollout(const ds_gate_t *g, const char *token)
{
    const struct client *c = token != NULL ? ds__gmap_get(&g->tokens, token) : NULL;

    return c == NULL ? DS_ENOTFOUND : c->rollout;
}

int ds_gate_request(ds_gate_t *g, const ds_gate_request_t *req, int64_t now,
                    ds_gate_decision_t *out, char *err, size_t errlen)
{
    struct rollout *r;
    struct client *c;
    const ds_package_cfg_t *k, *cur;
    char why[256], when[40];
    int ri, si, fresh;

    memset(out, 0, sizeof(*out));
    if (req->client == NULL || !ds_client_id_ok(req->client))
        return ds_errf(err, errlen, DS_EUSAGE,
                       "\"client\": expected 1 to %d letters, digits and . _ - : @",
                       DS_CLIENT_ID_MAX);
    if (req->version == NULL || !ds_version_ok(req->version))
        return ds_errf(err, errlen, DS_EUSAGE,
                       "\"version\": expected a version such as 7.2.1 (no empty part)");
    if (req->product == NULL || (ri = find_rollout(g, req->product)) < 0)
        return ds_errf(err, errlen, DS_EUSAGE, "\"product\": no rollout of product '%.64s'",
                       req->product ? req->product : "");
    r = &g->ro[ri];
    ds__gate_expire(g, now);
    fresh = ds__gmap_get(&r->clients, req->client) == NULL;
    if ((c = ds__gate_client(g, ri, req->client)) == NULL)
        return ds_errf(err, errlen, DS_ENOMEM, "gate: out of memory");
    if (c->st == DS_GATE_ST_GRANTED) {
        fill_grant(g, c, now, out);
        return 0;
    }
    if ((si = site_of(g, c, req->site, err, errlen)) < 0)
        return DS_EUSAGE;
    if (c->st == DS_GATE_ST_WAITING && c->site != si) { /* moved: queue again there */
        ds__queue_del(&r->queues[c->site], c);
        ds__gate_set_status(g, c, DS_GATE_ST_IDLE);
    }
    c->site = si;
    if (fresh) /* seen: a member of its ring by glob counts from now on, after a restart too */
        (void)ds__gate_write(g, c, NULL);
    if (ds_version_cmp(req->version, r->cfg->version) >= 0)
        return up_to_date(g, r, c, req->version, now, out);
    if (r->paused)
        return none(out, "rollout paused: %.200s%s", r->reason, "");
    if (c->ring < 0)
        return none(out, "client %s is in no ring of rollout %s", c->id, r->cfg->name);
    if (!ds__gate_ring_open(g, r, c->ring, now, why, sizeof(why)))
        return none(out, "%.250s%s", why, "");
    if ((k = next_step(r, req->version)) == NULL)
        return none(out, "no upgrade path from %s to %s", req->version, r->cfg->version);
    cur = ds_config_package(g->cfg, r->cfg->product, req->version);
    if (cur != NULL && cur->soak_s > 0 && c->st == DS_GATE_ST_SUCCEEDED &&
        ds_version_cmp(c->version, req->version) == 0 && now < c->at + cur->soak_s) {
        ds__gate_fmt_time(c->at + cur->soak_s, when, sizeof(when));
        return none(out, "soaking on %s until %s", req->version, when);
    }
    return admit(g, r, c, k, req->version, now, out);
}

/* The client of token (after the expiries at now), checked against
 * client. NULL with *rc and err set when refused. */
static struct client *token_client(ds_gate_t *g, const char *token, const char *client, int64_t now,
                                   int *rc, char *err, size_t errlen)
{
    struct client *c = token ? ds__gmap_get(&g->tokens, token) : NULL;

    ds__gate_expire(g, now);
    if (c == NULL) {
        *rc = ds_errf(err, errlen, DS_ENOTFOUND, "unknown token");
        return NULL;
    }
    if (client != NULL && strcmp(client, c->id) != 0) {
        *rc = ds_errf(err, errlen, -EACCES, "the token belongs to another client");
        return NULL;
    }
    return c;
}

int ds_gate_heartbeat(ds_gate_t *g, const char *token, const char *client, int64_t now,
                      unsigned *expires_in, char *err, size_t errlen)
{
    int rc = 0;
    struct client *c = token_client(g, token, client, now, &rc, err, errlen);

    if (c == NULL)
        return rc;
    if (c->st != DS_GATE_ST_GRANTED)
        return ds_errf(err, errlen, DS_ENOTFOUND, "the token's lease %s",
                       c->st == DS_GATE_ST_EXPIRED ? "expired" : "ended with a report");
    c->expires_at = now + g->ro[c->rollout].cfg->lease_s;
    if (expires_in != NULL)
        *expires_in = g->ro[c->rollout].cfg->lease_s;
    return ds__gate_write(g, c, NULL);
}

int ds_gate_lease(ds_gate_t *g, const char *token, int64_t now, ds_gate_lease_t *out, char *err,
                  size_t errlen)
{
    int rc = 0;
    struct client *c = token_client(g, token, NULL, now, &rc, err, errlen);
    const ds_package_cfg_t *k;

    memset(out, 0, sizeof(*out));
    if (c == NULL)
        return rc;
    if (c->st != DS_GATE_ST_GRANTED)
        return ds_errf(err, errlen, -ESTALE, "the token's lease %s",
                       c->st == DS_GATE_ST_EXPIRED ? "expired" : "ended with a report");
    k = ds_config_package(g->cfg, g->ro[c->rollout].cfg->product, c->version);
    if (k == NULL || c->site < 0 || c->server < 0)
        return ds_errf(err, errlen, DS_ECONFIG, "the grant's package %s is not configured",
                       c->version);
    out->rollout = g->ro[c->rollout].cfg->name;
    out->rollout_index = c->rollout;
    out->client = c->id;
    out->site = g->cfg->sites[c->site].name;
    out->site_index = c->site;
    out->server = g->cfg->servers[c->server].name;
    out->path = k->path;
    out->expires_at = c->expires_at;
    return 0;
}

/* A failure that puts ring's failures over max_failure pauses r. */
static int trip(ds_gate_t *g, struct rollout *r, const struct ring *rg, int64_t now)
{
    unsigned m = ds__ring_members(rg), f = rg->n[DS_GATE_ST_FAILED];

    if ((uint64_t)f * 10000 <= (uint64_t)r->cfg->max_failure_bp * m || r->paused)
        return 0;
    r->paused = 1;
    snprintf(r->reason, sizeof(r->reason),
             "ring %s: %u of %u clients failed, over max_failure %u.%02u%%", rg->cfg->name, f, m,
             r->cfg->max_failure_bp / 100, r->cfg->max_failure_bp % 100);
    return ds__gate_write_ctl(g, r, now);
}

int ds_gate_report(ds_gate_t *g, const char *token, const char *client, const char *outcome,
                   const char *version, const char *detail, int64_t now, char *err, size_t errlen)
{
    int rc = 0, ok = outcome && strcmp(outcome, "success") == 0, late;
    struct client *c;
    struct rollout *r;

    if (!ok && (outcome == NULL || strcmp(outcome, "failure") != 0))
        return ds_errf(err, errlen, DS_EUSAGE, "\"outcome\": expected success or failure");
    if (version != NULL && !ds_version_ok(version))
        return ds_errf(err, errlen, DS_EUSAGE,
                       "\"version\": expected a version such as 7.2.1 (no empty part)");
    if ((c = token_client(g, token, client, now, &rc, err, errlen)) == NULL)
        return rc;
    if (c->reported)
        return ds_errf(err, errlen, DS_EUSAGE, "the token's outcome is already reported");
    r = &g->ro[c->rollout];
    late = c->st == DS_GATE_ST_EXPIRED;
    ds__gate_release(g, c);
    ds__gate_set_status(g, c, ok ? DS_GATE_ST_SUCCEEDED : DS_GATE_ST_FAILED);
    if (version != NULL)
        snprintf(c->version, sizeof(c->version), "%s", version);
    c->at = now;
    c->reported = 1;
    if ((rc = ds__gate_write(g, c, detail)) < 0 ||
        (rc = write_outcome(g, c, ok ? "success" : "failure", late, detail)) < 0)
        return rc;
    if (ok && !c->at_target && ds_version_cmp(c->version, r->cfg->version) >= 0) {
        c->at_target = 1;
        if (c->ring >= 0)
            r->rings[c->ring].at_target++;
    }
    return !ok && c->ring >= 0 ? trip(g, r, &r->rings[c->ring], now) : 0;
}

int ds_gate_priority(ds_gate_t *g, const char *client, int64_t now, char *err, size_t errlen)
{
    int found = 0;

    for (size_t i = 0; client != NULL && i < g->nro; i++) {
        struct rollout *r = &g->ro[i];
        struct client *c = ds__gmap_get(&r->clients, client);
        struct queue *q;

        if (c == NULL || c->st != DS_GATE_ST_WAITING)
            continue;
        q = &r->queues[c->site];
        ds__queue_del(q, c);
        memmove(q->v + 1, q->v, q->n * sizeof(*q->v)); /* room: c's slot */
        q->v[0] = c;
        q->n++;
        c->seq = --r->seq_lo;
        c->last_seen = now;
        found = 1;
        if (ds__gate_write(g, c, NULL) < 0)
            return ds_errf(err, errlen, DS_ECATALOG, "gate: cannot record the priority");
    }
    return found ? 0
                 : ds_errf(err, errlen, DS_ENOTFOUND, "client %.64s is not waiting",
                           client ? client : "");
}

/*
 * Configuration of the upgrade gate (distsync/gate.h): the [rollout NAME],
 * [ring NAME] and [package NAME] sections, the caps on concurrent upgrades
 * ([console], [site NAME], [server NAME] max_concurrent_upgrades, [console]
 * and [site NAME] max_upgrade_bandwidth) and the client-to-site mapping
 * ([site NAME] clients = globs). config_parse.c hands every such key to
 * ds__config_gate_key; the checks across sections run after the file is
 * read (ds__config_check_rollouts).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_internal.h"
#include "distsync/error.h"
#include "distsync/schedule.h"
#include "distsync/tz.h"

#define MEMBERS_FILE_MAX (64u << 20)
#define LEASE_DEFAULT_S  900u
#define LEASE_MAX_S      (7u * 86400u)

int ds_client_id_ok(const char *id)
{
    size_t i;

    for (i = 0; id[i] != '\0'; i++)
        if (!isalnum((unsigned char)id[i]) && strchr("._-:@", id[i]) == NULL)
            return 0;
    return i > 0 && i <= DS_CLIENT_ID_MAX;
}

int ds_version_ok(const char *v)
{
    size_t i;

    for (i = 0; v[i] != '\0'; i++)
        if (!isalnum((unsigned char)v[i]) &&
            (strchr("._-+", v[i]) == NULL || !isalnum((unsigned char)v[i + 1])))
            return 0; /* "1.0.", "1..0", "1.-rc": an empty part */
    return i > 0 && i < DS_VERSION_MAX && isalnum((unsigned char)v[0]);
}

int ds_version_cmp(const char *a, const char *b)
{
    while (*a != '\0' || *b != '\0') {
        size_t na = strcspn(a, ".-"), nb = strcspn(b, ".-");
        int da = na > 0 && strspn(a, "0123456789") >= na,
            db = nb > 0 && strspn(b, "0123456789") >= nb;
        int c;

        if (na == 0 && *a == '\0')
            return -1; /* a is a prefix of b: older ("7.1" < "7.1.1") */
        if (nb == 0 && *b == '\0')
            return 1;
        if (da && db) {
            while (na > 1 && *a == '0')
                a++, na--;
            while (nb > 1 && *b == '0')
                b++, nb--;
            c = na != nb ? (na < nb ? -1 : 1) : memcmp(a, b, na);
        } else if (da != db) {
            c = da ? 1 : -1; /* a number is newer than text ("7.1" > "7.rc1") */
        } else {
            c = strncmp(a, b, na < nb ? na : nb);
            if (c == 0 && na != nb)
                c = na < nb ? -1 : 1;
        }
        if (c != 0)
            return c < 0 ? -1 : 1;
        a += na + (a[na] != '\0');
        b += nb + (b[nb] != '\0');
    }
    return 0;
}

/* A glob over client IDs: the ID characters and * ? [ ] !. */
static int glob_ok(const char *g)
{
    size_t i;

    for (i = 0; g[i] != '\0'; i++)
        if (!isalnum((unsigned char)g[i]) && strchr("._-:@*?[]!", g[i]) == NULL)
            return 0;
    return i > 0 && i <= DS_CLIENT_ID_MAX;
}

static int push(ds_strlist_t *l, const char *s, size_t n)
{
    char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

    if (v == NULL)
        return DS_ENOMEM;
    l->v = v;
    if ((l->v[l->n] = strndup(s, n)) == NULL)
        return DS_ENOMEM;
    l->n++;
    return 0;
}

/* "a*, b?" into out: comma or space separated globs. */
static int set_globs(const char *v, ds_strlist_t *out, char *msg, size_t msglen)
{
    const char *s = v, *t;
    size_t n;
    int rc;

    while ((t = ds__config_item(&s, &n)) != NULL) {
        if ((rc = push(out, t, n)) < 0)
            return rc;
        if (!glob_ok(out->v[out->n - 1]))
            return ds_errf(msg, msglen, DS_ECONFIG,
                           "invalid glob '%.64s' (client IDs are letters, digits and . _ - : @;"
                           " globs add * ? [ ])",
                           out->v[out->n - 1]);
    }
    if (out->n == 0)
        return ds_errf(msg, msglen, DS_ECONFIG, "empty list (separate globs with commas)");
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads a members file: one client ID a line; blank lines and lines
 * starting with # are skipped. The IDs end up sorted, duplicates refused. */
static int read_members(const char *path, ds_strlist_t *out, char *msg, size_t msglen)
{
    FILE *f = fopen(path, "r");
    char line[512];
    int rc = 0, n = 0;

    if (f == NULL)
        return ds_errf(msg, msglen, -errno, "cannot read '%s': %s", path, strerror(errno));
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        size_t len = strlen(line);

        n++;
        while (len > 0 && isspace((unsigned char)line[len - 1]))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        if (!ds_client_id_ok(line))
            rc =
                ds_errf(msg, msglen, DS_ECONFIG, "%s:%d: invalid client ID '%.64s'", path, n, line);
        else if (out->n >= MEMBERS_FILE_MAX / 8)
            rc = ds_errf(msg, msglen, DS_ECONFIG, "%s: too many IDs", path);
        else
            rc = push(out, line, len);
    }
    if (rc == 0 && ferror(f))
        rc = ds_errf(msg, msglen, -EIO, "cannot read '%s': %s", path, strerror(EIO));
    fclose(f);
    if (rc < 0)
        return rc;
    qsort(out->v, out->n, sizeof(*out->v), cmp_str);
    for (size_t i = 1; i < out->n; i++)
        if (strcmp(out->v[i - 1], out->v[i]) == 0)
            return ds_errf(msg, msglen, DS_ECONFIG, "%s: client ID '%s' listed twice", path,
                           out->v[i]);
    return 0;
}

/* N from 1 to max. */
static int count(const char *v, unsigned max, unsigned *dst, char *msg, size_t msglen)
{
    char *end;
    unsigned long n;

    errno = 0;
    n = isdigit((unsigned char)*v) ? strtoul(v, &end, 10) : 0;
    if (n < 1 || n > max || errno == ERANGE || *end != '\0')
        return ds_errf(msg, msglen, DS_ECONFIG, "expected a number from 1 to %u, got '%.64s'", max,
                       v);
    *dst = (unsigned)n;
    return 0;
}

/* "95%" or "99.5%" (at most two decimals) into basis points. */
static int percent(const char *v, unsigned *bp, char *msg, size_t msglen)
{
    unsigned whole = 0, frac = 0, nd = 0;
    const char *s = v;

    for (; isdigit((unsigned char)*s) && whole <= 100; s++)
        whole = whole * 10 + (unsigned)(*s - '0');
    if (*s == '.')
        for (s++; isdigit((unsigned char)*s) && nd < 2; s++, nd++)
            frac = frac * 10 + (unsigned)(*s - '0');
    frac *= nd == 1 ? 10 : 1;
    if (s == v || strcmp(s, "%") != 0 || whole * 100 + frac > 10000)
        return ds_errf(msg, msglen, DS_ECONFIG,
                       "expected a percentage from 0%% to 100%% (e.g. 95%%, 99.5%%), got '%.64s'",
                       v);
    *bp = whole * 100 + frac;
    return 0;
}

static int rate(const char *v, uint64_t *dst, char *msg, size_t msglen)
{
    int rc = ds_bw_parse_rate(v, dst, msg, msglen);

    if (rc == 0 && *dst == DS_BW_PAUSED)
        return ds_errf(msg, msglen, DS_ECONFIG, "a rate of 0 admits nobody (use off: no cap)");
    return rc;
}

static int duration(const char *v, int64_t *dst, char *msg, size_t msglen)
{
    char err[128];

    if (ds_schedule_parse_window(v, dst, err, sizeof(err)) < 0)
        return ds_errf(msg, msglen, DS_ECONFIG,
                       "expected a duration such as 90m, 24h or 2d, got '%.64s'", v);
    return 0;
}

static int text(const char *v, char **dst, int (*ok)(const char *), const char *what, char *msg,
                size_t msglen)
{
    if (ok == ds_version_ok && !ok(v))
        return ds_errf(msg, msglen, DS_ECONFIG,
                       "invalid version '%.64s' (parts of letters and digits joined by . _ - +, "
                       "none empty, such as 7.2.1)",
                       v);
    if (ok != NULL && !ok(v))
        return ds_errf(msg, msglen, DS_ECONFIG, "invalid %s '%.64s'", what, v);
    *dst = strdup(v);
    return *dst ? 0 : DS_ENOMEM;
}

static int path_ok(const char *p)
{
    size_t n;

    if (*p == '/' || *p == '\0')
        return 0;
    for (const char *s = p; *s != '\0'; s += n + (s[n] == '/')) {
        n = strcspn(s, "/");
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return 0;
    }
    return 1;
}

static int rollout_key(ds_rollout_cfg_t *r, const char *key, const char *v, int line,
                       const char *base_dir, char *msg, size_t msglen)
{
    int64_t secs;
    int rc;

    if (strcmp(key, "product") == 0)
        return r->product_line = line,
               text(v, &r->product, ds__config_name_ok, "product name", msg, msglen);
    if (strcmp(key, "version") == 0)
        return r->version_line = line, text(v, &r->version, ds_version_ok, "version", msg, msglen);
    if (strcmp(key, "rings") == 0)
        return r->rings_line = line, ds__config_split(v, &r->rings, msg, msglen);
    if (strcmp(key, "min_success") == 0)
        return percent(v, &r->min_success_bp, msg, msglen);
    if (strcmp(key, "max_failure") == 0)
        return percent(v, &r->max_failure_bp, msg, msglen);
    if (strcmp(key, "client_rate") == 0)
        return rate(v, &r->client_rate, msg, msglen);
    if (strcmp(key, "lease") == 0) {
        if ((rc = duration(v, &secs, msg, msglen)) < 0)
            return rc;
        if (secs > LEASE_MAX_S)
            return ds_errf(msg, msglen, DS_ECONFIG, "at most 7d, got '%.64s'", v);
        r->lease_s = (unsigned)secs;
        return 0;
    }
    /* token_file */
    r->token_file_line = line;
    r->token_file = ds__config_abs(base_dir, v);
    return r->token_file ? 0 : DS_ENOMEM;
}

static int ring_key(ds_ring_cfg_t *g, const char *key, const char *v, int line,
                    const char *base_dir, char *msg, size_t msglen)
{
    if (strcmp(key, "members") == 0)
        return g->members_line = line, set_globs(v, &g->members, msg, msglen);
    if (strcmp(key, "size") == 0)
        return count(v, 100000000u, &g->size, msg, msglen);
    if (strcmp(key, "opens") == 0) {
        if (ds_tz_parse_rfc3339(v, &g->opens) < 0 || g->opens <= 0)
            return ds_errf(msg, msglen, DS_ECONFIG,
                           "expected a time such as 2026-12-01T08:00:00Z, got '%.64s'", v);
        return 0;
    }
    /* members_file */
    g->members_file_line = line;
    if ((g->members_file = ds__config_abs(base_dir, v)) == NULL)
        return DS_ENOMEM;
    return read_members(g->members_file, &g->ids, msg, msglen);
}

static int package_key(ds_package_cfg_t *k, const char *key, const char *v, int line, char *msg,
                       size_t msglen)
{
    if (strcmp(key, "product") == 0)
        return k->product_line = line,
               text(v, &k->product, ds__config_name_ok, "product name", msg, msglen);
    if (strcmp(key, "version") == 0)
        return k->version_line = line, text(v, &k->version, ds_version_ok, "version", msg, msglen);
    if (strcmp(key, "from") == 0)
        return k->from_line = line, text(v, &k->from, ds_version_ok, "version", msg, msglen);
    if (strcmp(key, "soak") == 0)
        return duration(v, &k->soak_s, msg, msglen);
    if (!path_ok(v))
        return ds_errf(msg, msglen, DS_ECONFIG,
                       "expected a path relative to the store, without '.' or '..', got '%.64s'",
                       v);
    return text(v, &k->path, NULL, NULL, msg, msglen);
}

int ds__config_gate_key(ds_config_t *cfg, const char *type, size_t idx, const char *key,
                        const char *v, int line, const char *base_dir, char *msg, size_t msglen)
{
    int caps = strcmp(key, "max_concurrent_upgrades") == 0;
    int bw = strcmp(key, "max_upgrade_bandwidth") == 0;

    if (strcmp(type, "console") == 0)
        return caps ? count(v, DS_CONFIG_MAX_UPGRADES_MAX, &cfg->max_upgrades, msg, msglen)
                    : rate(v, &cfg->upgrade_bw, msg, msglen);
    if (strcmp(type, "site") == 0) {
        ds_site_cfg_t *s = &cfg->sites[idx];

        if (caps)
            return count(v, DS_CONFIG_MAX_UPGRADES_MAX, &s->max_upgrades, msg, msglen);
        return bw ? rate(v, &s->upgrade_bw, msg, msglen) : set_globs(v, &s->clients, msg, msglen);
    }
    if (strcmp(type, "server") == 0)
        return count(v, DS_CONFIG_MAX_UPGRADES_MAX, &cfg->servers[idx].max_upgrades, msg, msglen);
    if (strcmp(type, "rollout") == 0)
        return rollout_key(&cfg->rollouts[idx], key, v, line, base_dir, msg, msglen);
    if (strcmp(type, "ring") == 0)
        return ring_key(&cfg->rings[idx], key, v, line, base_dir, msg, msglen);
    return package_key(&cfg->packages[idx], key, v, line, msg, msglen);
}

/* Whole-file checks. */

static int check_package(const ds_config_t *cfg, ds_package_cfg_t *k, struct ds__config_err *e)
{
    char label[160];

    snprintf(label, sizeof(label), "package %s", k->name);
    if (k->product == NULL || k->version == NULL || k->path == NULL)
        return ds__config_fail(e, k->line, label, NULL, "missing required key '%s'",
                               k->product == NULL   ? "product"
                               : k->version == NULL ? "version"
                                                    : "path");
    if (k->from != NULL && ds_version_cmp(k->from, k->version) >= 0)
        return ds__config_fail(e, k->from_line, label, "from",
                               "'%s' is not older than the package's version '%s'", k->from,
                               k->version);
    for (const ds_package_cfg_t *o = cfg->packages; o < k; o++)
        if (strcmp(o->product, k->product) == 0 && ds_version_cmp(o->version, k->version) == 0)
            return ds__config_fail(e, k->version_line, label, "version",
                                   "%s %s is already [package %s] (line %d)", k->product,
                                   k->version, o->name, o->line);
    return 0;
}

static int check_rollout(const ds_config_t *cfg, ds_rollout_cfg_t *r, struct ds__config_err *e)
{
    char label[160];

    snprintf(label, sizeof(label), "rollout %s", r->name);
    if (r->product == NULL || r->version == NULL || r->rings.n == 0 || r->token_file == NULL)
        return ds__config_fail(e, r->line, label, NULL, "missing required key '%s'",
                               r->product == NULL   ? "product"
                               : r->version == NULL ? "version"
                               : r->rings.n == 0    ? "rings"
                                                    : "token_file");
    if (ds_config_package(cfg, r->product, r->version) == NULL)
        return ds__config_fail(e, r->version_line, label, "version",
                               "no [package] has product = %s and version = %s", r->product,
                               r->version);
    for (size_t i = 0; i < r->rings.n; i++)
        if (ds_config_ring(cfg, r->rings.v[i]) == NULL)
            return ds__config_fail(e, r->rings_line, label, "rings",
                                   "unknown ring '%s' (define it with [ring %s])", r->rings.v[i],
                                   r->rings.v[i]);
    for (const ds_rollout_cfg_t *o = cfg->rollouts; o < r; o++)
        if (strcmp(o->product, r->product) == 0)
            return ds__config_fail(e, r->product_line, label, "product",
                                   "product %s already has [rollout %s] (line %d)", r->product,
                                   o->name, o->line);
    if (r->lease_s == 0)
        r->lease_s = LEASE_DEFAULT_S;
    if (r->client_rate == DS_BW_OFF)
        r->client_rate = 0;
    return 0;
}

int ds__config_check_rollouts(ds_config_t *cfg, struct ds__config_err *e)
{
    char label[160];
    int rc = 0;

    if (cfg->upgrade_bw == 0)
        cfg->upgrade_bw = DS_BW_OFF;
    for (size_t i = 0; i < cfg->nsites; i++)
        if (cfg->sites[i].upgrade_bw == 0)
            cfg->sites[i].upgrade_bw = DS_BW_OFF;
    for (size_t i = 0; rc == 0 && i < cfg->nrings; i++) {
        ds_ring_cfg_t *g = &cfg->rings[i];

        snprintf(label, sizeof(label), "ring %s", g->name);
        if (g->members.n == 0 && g->members_file == NULL)
            rc = ds__config_fail(e, g->line, label, NULL,
                                 "missing required key 'members' or 'members_file'");
    }
    for (size_t i = 0; rc == 0 && i < cfg->npackages; i++)
        rc = check_package(cfg, &cfg->packages[i], e);
    for (size_t i = 0; rc == 0 && i < cfg->nrollouts; i++)
        rc = check_rollout(cfg, &cfg->rollouts[i], e);
    return rc;
}

void ds__config_rollouts_free(ds_config_t *cfg)
{
    for (size_t i = 0; i < cfg->nsites; i++)
        ds__config_list_free(&cfg->sites[i].clients);
    for (size_t i = 0; i < cfg->nrollouts; i++) {
        ds_rollout_cfg_t *r = &cfg->rollouts[i];

        free(r->name);
        free(r->product);
        free(r->version);
        free(r->token_file);
        ds__config_list_free(&r->rings);
    }
    for (size_t i = 0; i < cfg->nrings; i++) {
        free(cfg->rings[i].name);
        free(cfg->rings[i].members_file);
        ds__config_list_free(&cfg->rings[i].members);
        ds__config_list_free(&cfg->rings[i].ids);
    }
    for (size_t i = 0; i < cfg->npackages; i++) {
        ds_package_cfg_t *k = &cfg->packages[i];

        free(k->name);
        free(k->product);
        free(k->version);
        free(k->path);
        free(k->from);
    }
    free(cfg->rollouts);
    free(cfg->rings);
    free(cfg->packages);
}

const ds_rollout_cfg_t *ds_config_rollout(const ds_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nrollouts; i++)
        if (strcmp(cfg->rollouts[i].name, name) == 0)
            return &cfg->rollouts[i];
    return NULL;
}

const ds_ring_cfg_t *ds_config_ring(const ds_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nrings; i++)
        if (strcmp(cfg->rings[i].name, name) == 0)
            return &cfg->rings[i];
    return NULL;
}

const ds_package_cfg_t *ds_config_package(const ds_config_t *cfg, const char *product,
                                          const char *version)
{
    for (size_t i = 0; i < cfg->npackages; i++) {
        const ds_package_cfg_t *k = &cfg->packages[i];

        if (k->product && k->version && strcmp(k->product, product) == 0 &&
            ds_version_cmp(k->version, version) == 0)
            return k;
    }
    return NULL;
}

int ds_config_rollout_token(const ds_rollout_cfg_t *r, char *buf, size_t len, char *err,
                            size_t errlen)
{
    return ds_config_token_file(r->token_file, buf, len, err, errlen);
}

int ds_config_token_file(const char *path, char *buf, size_t len, char *err, size_t errlen)
{
    struct stat st;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rc = 0;

    if (fd < 0)
        return ds_errf(err, errlen, -errno, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0)
        rc = ds_errf(err, errlen, -errno, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0)
        rc = ds_errf(err, errlen, DS_ECONFIG,
                     "%s: mode %04o, group or others may use it (chmod 600 it)", path,
                     (unsigned)(st.st_mode & 07777));
    else if ((n = read(fd, buf, len - 1)) < 0)
        rc = ds_errf(err, errlen, -errno, "%s: %s", path, strerror(errno));
    else {
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        n = (ssize_t)strlen(buf);
        if (n < 16)
            rc = ds_errf(err, errlen, DS_ECONFIG, "%s: the token is shorter than 16 characters",
                         path);
        else if (strchr(" \t", buf[0]) != NULL || strchr(" \t", buf[n - 1]) != NULL)
            rc = ds_errf(err, errlen, DS_ECONFIG,
                         "%s: the token begins or ends with a blank (a bearer token cannot)", path);
    }
    close(fd);
    return rc;
}

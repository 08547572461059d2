/*
 * Configuration: entry points, the checks that need the whole file (required
 * keys, references between sections, chunk sizes), URL shapes, lookups.
 * The line-by-line reading is in config_parse.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_internal.h"
#include "distsync/error.h"
#include "distsync/schedule.h"
#include "distsync/tz.h"

#define CONFIG_MAX_BYTES (1u << 20)
#define DEFAULT_CLASSES  "patches engines definitions"

int ds__config_fail(struct ds__config_err *e, int line, const char *section, const char *key,
                    const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    size_t n;

    if (e->failed)
        return DS_ECONFIG;
    e->failed = 1;
    if (e->buf == NULL || e->len == 0)
        return DS_ECONFIG;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    n = (size_t)snprintf(e->buf, e->len, "%s:", e->file);
    if (line > 0 && n < e->len)
        n += (size_t)snprintf(e->buf + n, e->len - n, "%d:", line);
    if (section != NULL && n < e->len)
        n += (size_t)snprintf(e->buf + n, e->len - n, " [%s]", section);
    if (key != NULL && n < e->len)
        n += (size_t)snprintf(e->buf + n, e->len - n, " key '%s'", key);
    if (n < e->len)
        snprintf(e->buf + n, e->len - n, "%s %s", section || key ? ":" : "", msg);
    for (char *s = e->buf; *s != '\0'; s++) /* one line, whatever the input held */
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
    return DS_ECONFIG;
}

/* URLs. Messages never repeat the URL: it may carry a user name or worse. */

/* A URL error (ds_errf, error.h). */
#define url_fail(err, errlen, ...) ds_errf(err, errlen, DS_ECONFIG, __VA_ARGS__)

static int span(const char *s, const char *end, const char *extra)
{
    const char *t = s;

    while (t < end && *t != '\0' &&
           (((*t | 0x20) >= 'a' && (*t | 0x20) <= 'z') || (*t >= '0' && *t <= '9') ||
            strchr(extra, *t) != NULL))
        t++;
    return (int)(t - s);
}

/* host[:port] or [v6][:port] in [h, end). */
static int check_host(const char *h, const char *end, char *msg, size_t len)
{
    const char *t = h;
    long port = 0;

    if (*t == '[') {
        t += 1 + span(t + 1, end, ":.");
        if (t >= end || *t != ']' || t == h + 1)
            return url_fail(msg, len, "invalid IPv6 host (use [addr])");
        t++;
    } else {
        t += span(t, end, ".-_");
        if (t == h)
            return url_fail(msg, len, "missing or invalid host name");
    }
    if (t < end && *t == ':') {
        const char *d = ++t;

        for (; t < end && *t >= '0' && *t <= '9' && port <= 65535; t++)
            port = port * 10 + (*t - '0');
        if (t == d || port < 1 || port > 65535)
            return url_fail(msg, len, "invalid port (use 1 to 65535)");
    }
    if (t != end)
        return url_fail(msg, len, "invalid host name");
    return 0;
}

static int check_url_path(const char *path, const char *what, char *msg, size_t len)
{
    const char *s;

    if (path[0] != '/' || path[1] == '\0' || path[1] == '/')
        return url_fail(msg, len, "missing %s after the host", what);
    for (s = path; *s != '\0'; s++)
        if (s[0] == '/' && s[1] == '.' && s[2] == '.' && (s[3] == '/' || s[3] == '\0'))
            return url_fail(msg, len, "the path must not contain '..'");
    return 0;
}

/* 1 when the scheme of url (ending at sep) is scheme. */
static int slen_is(const char *url, const char *sep, const char *scheme)
{
    return (size_t)(sep - url) == strlen(scheme) && memcmp(url, scheme, strlen(scheme)) == 0;
}

int ds__config_check_url(const char *url, char *msg, size_t msglen)
{
    const char *sep = strstr(url, "://"), *auth, *path, *at;
    size_t slen;
    int rc;

    for (const char *s = url; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return url_fail(msg, msglen, "contains control characters");
    if (sep == NULL)
        return url_fail(msg, msglen,
                        "not a URL (use file:///path, ssh://[user@]host[:port]/path "
                        "or smb://host[:port]/share/dir)");
    slen = (size_t)(sep - url);
    auth = sep + 3;
    path = auth + strcspn(auth, "/");
    at = memrchr(auth, '@', (size_t)(path - auth));
    if (at != NULL && memchr(auth, ':', (size_t)(at - auth)) != NULL)
        return url_fail(msg, msglen, "passwords are not allowed in URLs; remove it (%s)",
                        slen_is(url, sep, "ssh")   ? "an ssh:// server logs in with identity = "
                                                     "KEYFILE or ssh-agent"
                        : slen_is(url, sep, "smb") ? "an smb:// server reads them from "
                                                     "credentials = FILE"
                                                   : "no URL takes one");
    if (slen == 0 || slen > 16 || span(url, sep, "+.-") != (int)slen)
        return url_fail(msg, msglen, "invalid URL scheme (use file://, ssh:// or smb://)");
    if (slen == 4 && memcmp(url, "file", 4) == 0) {
        if (path != auth)
            return url_fail(msg, msglen, "file:// URLs take no host (use file:///absolute/path)");
        return check_url_path(path, "path", msg, msglen);
    }
    if (slen != 3 || (memcmp(url, "ssh", 3) != 0 && memcmp(url, "smb", 3) != 0))
        return url_fail(msg, msglen, "unsupported scheme '%.*s' (use file://, ssh:// or smb://)",
                        (int)slen, url);
    if (at != NULL && url[1] == 'm')
        return url_fail(msg, msglen,
                        "smb:// URLs take no user name (credentials will be read "
                        "from a credential file)");
    if (at != NULL && (at == auth || span(auth, at, "._-") != (int)(at - auth)))
        return url_fail(msg, msglen, "invalid user name (use letters, digits, '.', '_', '-')");
    rc = check_host(at ? at + 1 : auth, path, msg, msglen);
    if (rc == 0)
        rc = check_url_path(path, url[1] == 'm' ? "share" : "path", msg, msglen);
    return rc;
}

unsigned ds_config_smb_connections(const ds_server_cfg_t *s)
{
    if (s->url == NULL || strncmp(s->url, "smb://", 6) != 0)
        return 1;
    return s->connections ? s->connections : DS_CONFIG_SMB_CONNECTIONS_DEFAULT;
}

/* Lists. */

int ds_config_list_has(const ds_strlist_t *list, const char *s)
{
    for (size_t i = 0; list != NULL && i < list->n; i++)
        if (strcmp(list->v[i], s) == 0)
            return 1;
    return 0;
}

void ds__config_list_free(ds_strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int ds__config_list_copy(ds_strlist_t *dst, const ds_strlist_t *src)
{
    dst->v = calloc(src->n ? src->n : 1, sizeof(*dst->v));
    if (dst->v == NULL)
        return DS_ENOMEM;
    for (dst->n = 0; dst->n < src->n; dst->n++) {
        dst->v[dst->n] = strdup(src->v[dst->n]);
        if (dst->v[dst->n] == NULL)
            return DS_ENOMEM;
    }
    return 0;
}

/* Whole-file checks. */

static int check_chunk(const ds_config_t *cfg, const struct ds__config_lines *l,
                       struct ds__config_err *e)
{
    const ds_chunker_params_t *c = &cfg->chunk;

    if (c->min_size < DS_CHUNK_MIN_LIMIT)
        return ds__config_fail(e, l->chunk_min, "console", "chunk_min", "must be at least %u B",
                               DS_CHUNK_MIN_LIMIT);
    if (c->avg_size == 0 || (c->avg_size & (c->avg_size - 1)) != 0)
        return ds__config_fail(e, l->chunk_avg, "console", "chunk_avg",
                               "%u is not a power of two (e.g. 64KiB)", c->avg_size);
    if (c->max_size > DS_CHUNK_MAX_LIMIT)
        return ds__config_fail(e, l->chunk_max, "console", "chunk_max", "must be at most 64MiB");
    if (c->min_size > c->avg_size)
        return ds__config_fail(e, l->chunk_min > l->chunk_avg ? l->chunk_min : l->chunk_avg,
                               "console", l->chunk_min > l->chunk_avg ? "chunk_min" : "chunk_avg",
                               "chunk_min (%u) exceeds chunk_avg (%u)", c->min_size, c->avg_size);
    if (c->avg_size > c->max_size)
        return ds__config_fail(e, l->chunk_avg > l->chunk_max ? l->chunk_avg : l->chunk_max,
                               "console", l->chunk_avg > l->chunk_max ? "chunk_avg" : "chunk_max",
                               "chunk_avg (%u) exceeds chunk_max (%u)", c->avg_size, c->max_size);
    return 0;
}

static int check_console(ds_config_t *cfg, const struct ds__config_lines *l,
                         struct ds__config_err *e)
{
    char msg[160];
    int rc;

    if (l->console == 0)
        return ds__config_fail(e, 0, NULL, NULL,
                               "missing section [console] (it needs store = and state =)");
    if (cfg->store == NULL || cfg->state == NULL)
        return ds__config_fail(e, l->console, "console", NULL, "missing required key '%s'",
                               cfg->store == NULL ? "store" : "state");
    if (cfg->listen != NULL && cfg->api_token_file == NULL)
        return ds__config_fail(e, cfg->listen_line, "console", "listen",
                               "the TCP listener needs a bearer token: add api_token_file = "
                               "(a file of mode 0600 holding the token)");
    if ((cfg->api_tls_cert == NULL) != (cfg->api_tls_key == NULL) ||
        (cfg->api_tls_cert != NULL && cfg->listen == NULL))
        return ds__config_fail(e, cfg->api_tls_line, "console",
                               cfg->api_tls_cert ? "api_tls_cert" : "api_tls_key",
                               cfg->listen == NULL ? "TLS is for the TCP listener: set listen = too"
                                                   : "give both api_tls_cert and api_tls_key");
    if (cfg->classes.n == 0) {
        rc = ds__config_split(DEFAULT_CLASSES, &cfg->classes, msg, sizeof(msg));
        if (rc < 0)
            return rc;
    }
    return check_chunk(cfg, l, e);
}

/* Every class of list must be in known; names the first that is not. */
static int check_refs(const ds_strlist_t *list, const ds_strlist_t *known, int line,
                      const char *label, const char *key, const char *what,
                      struct ds__config_err *e)
{
    for (size_t i = 0; i < list->n; i++)
        if (!ds_config_list_has(known, list->v[i]))
            return ds__config_fail(e, line, label, key, "unknown class '%s' (not in [console] %s)",
                                   list->v[i], what);
    return 0;
}

/* The transport and the ssh-only keys fit the URL's scheme. */
static int check_scheme(const ds_server_cfg_t *s, const char *label, struct ds__config_err *e)
{
    const char *t = s->transport;

    if (strncmp(s->url, "smb://", 6) != 0 && s->smb_key_line != 0)
        return ds__config_fail(e, s->smb_key_line, label, s->smb_key,
                               "applies to smb:// servers only");
    if (strncmp(s->url, "ssh://", 6) == 0) {
        if (t != NULL && strcmp(t, "local") == 0)
            return ds__config_fail(e, s->transport_line, label, "transport",
                                   "'local' does not apply to an ssh:// server (use agent, "
                                   "sftp or auto)");
        return 0;
    }
    if (t != NULL && strcmp(t, "local") != 0 && strcmp(t, "agent") != 0)
        return ds__config_fail(e, s->transport_line, label, "transport",
                               "'%s' applies to ssh:// servers only (use local or agent)", t);
    if (s->ssh_key_line != 0)
        return ds__config_fail(e, s->ssh_key_line, label, s->ssh_key,
                               "applies to ssh:// servers only");
    if (strncmp(s->url, "smb://", 6) != 0 && s->remote_key_line != 0)
        return ds__config_fail(e, s->remote_key_line, label, s->remote_key,
                               "applies to ssh:// and smb:// servers only");
    return 0;
}

static int check_servers(ds_config_t *cfg, struct ds__config_err *e)
{
    char label[160];
    int rc;

    for (size_t i = 0; i < cfg->nservers; i++) {
        ds_server_cfg_t *s = &cfg->servers[i];

        snprintf(label, sizeof(label), "server %s", s->name);
        if (s->url == NULL)
            return ds__config_fail(e, s->line, label, NULL, "missing required key 'url'");
        rc = check_scheme(s, label, e);
        if (rc < 0)
            return rc;
        if (s->site != NULL && ds_config_site(cfg, s->site) == NULL)
            return ds__config_fail(e, s->site_line, label, "site",
                                   "unknown site '%s' (define it with [site %s])", s->site,
                                   s->site);
        rc =
            check_refs(&s->classes, &cfg->classes, s->classes_line, label, "classes", "classes", e);
        if (rc == 0 && s->classes.n == 0)
            rc = ds__config_list_copy(&s->classes, &cfg->classes);
        if (rc < 0)
            return rc;
        if (s->max_delete_line == 0) {
            s->max_delete = cfg->max_delete;
            s->max_delete_pct = cfg->max_delete_pct;
        }
    }
    return 0;
}

static int check_names(const ds_strlist_t *list, const ds_config_t *cfg, int servers, int line,
                       const char *label, struct ds__config_err *e)
{
    for (size_t i = 0; i < list->n; i++) {
        if (servers && ds_config_server(cfg, list->v[i]) == NULL)
            return ds__config_fail(e, line, label, "servers", "unknown server '%s'", list->v[i]);
        if (!servers && ds_config_site(cfg, list->v[i]) == NULL)
            return ds__config_fail(e, line, label, "sites", "unknown site '%s'", list->v[i]);
    }
    return 0;
}

/* Validates a schedule's when/window/tz with the schedule engine, so a bad
 * rule is a config error naming its line and key. */
static int check_when(const ds_schedule_cfg_t *s, const char *label, struct ds__config_err *e)
{
    ds_schedule_rule_t rule;
    ds_tz_t *tz = NULL;
    int64_t win;
    char msg[256];

    if (ds_schedule_parse_rule(s->when, &rule, msg, sizeof(msg)) < 0)
        return ds__config_fail(e, s->when_line, label, "when", "%s", msg);
    if (s->window && ds_schedule_parse_window(s->window, &win, msg, sizeof(msg)) < 0)
        return ds__config_fail(e, s->window_line, label, "window", "%s", msg);
    if (s->tz && ds_tz_load(s->tz, &tz) < 0)
        return ds__config_fail(e, s->tz_line, label, "tz", "unknown time zone '%s'", s->tz);
    ds_tz_free(tz);
    return 0;
}

static int check_schedules(const ds_config_t *cfg, struct ds__config_err *e)
{
    char label[160];
    int rc;

    for (size_t i = 0; i < cfg->nschedules; i++) {
        const ds_schedule_cfg_t *s = &cfg->schedules[i];
        int both = s->servers_line && s->sites_line;

        snprintf(label, sizeof(label), "schedule %s", s->name);
        if (s->when == NULL)
            return ds__config_fail(e, s->line, label, NULL, "missing required key 'when'");
        if (both)
            return ds__config_fail(
                e, s->servers_line > s->sites_line ? s->servers_line : s->sites_line, label,
                s->servers_line > s->sites_line ? "servers" : "sites",
                "use exactly one of 'servers' or 'sites'");
        if (!s->servers_line && !s->sites_line)
            return ds__config_fail(e, s->line, label, NULL,
                                   "missing required key 'servers' or 'sites'");
        rc = check_names(s->servers_line ? &s->servers : &s->sites, cfg, s->servers_line != 0,
                         s->servers_line ? s->servers_line : s->sites_line, label, e);
        if (rc == 0)
            rc = check_refs(&s->classes, &cfg->classes, s->classes_line, label, "classes",
                            "classes", e);
        if (rc == 0)
            rc = check_when(s, label, e);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static ds_config_t *config_new(const char *name)
{
    ds_config_t *cfg = calloc(1, sizeof(*cfg));
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    if (cfg == NULL)
        return NULL;
    cfg->path = strdup(name);
    if (cfg->path == NULL) {
        free(cfg);
        return NULL;
    }
    cfg->chunk.min_size = DS_CHUNK_MIN_DEFAULT;
    cfg->chunk.avg_size = DS_CHUNK_AVG_DEFAULT;
    cfg->chunk.max_size = DS_CHUNK_MAX_DEFAULT;
    cfg->scan_threads = cpus < 1 ? 1 : cpus > 1024 ? 1024 : (unsigned)cpus;
    cfg->max_delete = DS_MAX_DELETE_DEFAULT_PCT;
    cfg->max_delete_pct = 1;
    cfg->timeout_s = DS_CONFIG_TIMEOUT_DEFAULT;
    cfg->retries = DS_CONFIG_RETRIES_DEFAULT;
    cfg->retry_backoff_s = 1;
    return cfg;
}

int ds_config_parse(const char *text, const char *name, const char *base_dir, ds_config_t **out,
                    char *err, size_t errlen)
{
    struct ds__config_lines lines = {0};
    struct ds__config_err e = {.file = name ? name : "config", .buf = err, .len = errlen};
    ds_config_t *cfg = config_new(e.file);
    int rc = DS_ENOMEM;

    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (cfg == NULL)
        goto out;
    rc = ds__config_read(text, base_dir, cfg, &lines, &e);
    if (rc == 0)
        rc = check_console(cfg, &lines, &e);
    for (size_t i = 0; rc == 0 && i < cfg->nservers; i++)
        if (cfg->servers[i].timeout_s == 0) /* [console] may come after [server] */
            cfg->servers[i].timeout_s = cfg->timeout_s;
    for (size_t i = 0; rc == 0 && i < cfg->nservers; i++) {
        ds_server_cfg_t *sv = &cfg->servers[i];

        sv->retries = sv->retries_line ? sv->retries : cfg->retries;
        sv->retry_backoff_s = sv->retry_backoff_line ? sv->retry_backoff_s : cfg->retry_backoff_s;
    }
    if (rc == 0)
        rc = check_servers(cfg, &e);
    if (rc == 0)
        rc = check_schedules(cfg, &e);
    if (rc == 0)
        rc = ds__config_check_caps(cfg, &e);
    if (rc == 0)
        rc = ds__config_check_rollouts(cfg, &e);
out:
    if (rc == DS_ENOMEM && err != NULL && errlen > 0)
        snprintf(err, errlen, "%s: out of memory", e.file);
    if (rc < 0) {
        ds_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

/* Reads a whole file into a new NUL-terminated buffer of *len bytes.
 * Returns 0, -errno, or DS_ETOOBIG. */
static int slurp(const char *path, char **out, size_t *len)
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    ssize_t r;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        goto out;
    }
    if (st.st_size > CONFIG_MAX_BYTES) {
        rc = DS_ETOOBIG;
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        rc = DS_ENOMEM;
        goto out;
    }
    while (n < (size_t)st.st_size && (r = read(fd, buf + n, (size_t)st.st_size - n)) != 0) {
        if (r < 0 && errno != EINTR) {
            rc = -errno;
            goto out;
        }
        n += r > 0 ? (size_t)r : 0;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

int ds_config_load(const char *path, ds_config_t **out, char *err, size_t errlen)
{
    char *text = NULL, *base = NULL, *slash;
    size_t len = 0;
    int rc;

    *out = NULL;
    rc = slurp(path, &text, &len);
    if (rc < 0) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "cannot read config %s: %s", path,
                     rc == DS_ETOOBIG ? "larger than 1 MiB" : ds_strerror(rc));
        return rc == DS_ETOOBIG ? DS_ECONFIG : rc;
    }
    if (strlen(text) != len) {
        struct ds__config_err e = {.file = path, .buf = err, .len = errlen};
        int line = 1;

        for (const char *s = text; *s != '\0'; s++)
            line += *s == '\n';
        rc = ds__config_fail(&e, line, NULL, NULL, "NUL byte in a text file");
        goto out;
    }
    base = strdup(path);
    if (base == NULL) {
        rc = DS_ENOMEM;
        goto out;
    }
    slash = strrchr(base, '/');
    if (slash == NULL)
        strcpy(base, ".");
    else if (slash == base)
        base[1] = '\0'; /* "/x.conf": the root */
    else
        *slash = '\0';
    rc = ds_config_parse(text, path, base, out, err, errlen);
out:
    free(base);
    free(text);
    return rc;
}

void ds_config_free(ds_config_t *cfg)
{
    if (cfg == NULL)
        return;
    ds__config_caps_free(cfg);
    ds__config_rollouts_free(cfg);
    for (size_t i = 0; i < cfg->nsites; i++)
        free(cfg->sites[i].name);
    for (size_t i = 0; i < cfg->nservers; i++) {
        free(cfg->servers[i].name);
        free(cfg->servers[i].url);
        free(cfg->servers[i].site);
        free(cfg->servers[i].transport);
        free(cfg->servers[i].identity);
        free(cfg->servers[i].credentials);
        free(cfg->servers[i].known_hosts);
        free(cfg->servers[i].agent);
        ds__config_list_free(&cfg->servers[i].classes);
    }
    for (size_t i = 0; i < cfg->nschedules; i++) {
        ds_schedule_cfg_t *s = &cfg->schedules[i];

        free(s->name);
        free(s->when);
        free(s->tz);
        free(s->window);
        ds__config_list_free(&s->servers);
        ds__config_list_free(&s->sites);
        ds__config_list_free(&s->classes);
    }
    ds__config_list_free(&cfg->classes);
    free(cfg->sites);
    free(cfg->servers);
    free(cfg->schedules);
    free(cfg->path);
    free(cfg->store);
    free(cfg->state);
    free(cfg->listen);
    free(cfg->api_token_file);
    free(cfg->api_tls_cert);
    free(cfg->api_tls_key);
    free(cfg);
}

const ds_server_cfg_t *ds_config_server(const ds_config_t *cfg, const char *name)
{
    for (size_t i = 0; cfg != NULL && i < cfg->nservers; i++)
        if (strcmp(cfg->servers[i].name, name) == 0)
            return &cfg->servers[i];
    return NULL;
}

const ds_site_cfg_t *ds_config_site(const ds_config_t *cfg, const char *name)
{
    for (size_t i = 0; cfg != NULL && i < cfg->nsites; i++)
        if (strcmp(cfg->sites[i].name, name) == 0)
            return &cfg->sites[i];
    return NULL;
}

const ds_schedule_cfg_t *ds_config_schedule(const ds_config_t *cfg, const char *name)
{
    for (size_t i = 0; cfg != NULL && i < cfg->nschedules; i++)
        if (strcmp(cfg->schedules[i].name, name) == 0)
            return &cfg->schedules[i];
    return NULL;
}

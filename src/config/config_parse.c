/*
 * Configuration reader. inih does the INI syntax; this file feeds it the
 * text line by line through a reader callback, which is how we know the
 * line number of every key (inih's handler is not given one), and turns
 * each key into a field of ds_config_t.
 *
 * inih only calls the handler for keys, so a section without keys (the
 * usual [site NAME]) would go unseen. After each header line the reader
 * hands inih one synthetic "@=section" line; the handler recognises it by
 * the reader's state (not by its text) and opens the section there, with
 * the section name exactly as inih parsed it.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <ini.h>

#include "config_internal.h"
#include "distsync/error.h"
#include "distsync/schedule.h"
#include "distsync/strdist.h"

#define MARKER_LINE  "@=section\n"
#define NAME_MAX_LEN 128
#define MAX_KEYS     32 /* most keys of any section, with room to grow */

enum kind { K_NONE, K_CONSOLE, K_SITE, K_SERVER, K_SCHEDULE, K_ROLLOUT, K_RING, K_PACKAGE };

struct parser;
typedef int (*key_fn)(struct parser *p, const char *key, const char *value);

struct keydef {
    const char *name;
    key_fn fn;
};

struct sectdef {
    const char *type;
    enum kind kind;
    const struct keydef *keys;
    const char *hint; /* the keys, for "unknown key" messages */
};

struct parser {
    ds_config_t *cfg;
    struct ds__config_lines *lines;
    struct ds__config_err *e;
    const char *base_dir;
    const char *text;
    size_t pos;
    int line;      /* physical line last handed to inih */
    int inih_line; /* lines handed to inih, synthetic ones included */
    int *map;      /* map[inih_line] = physical line */
    size_t cap;
    int marker_pending, in_marker;
    int err_inih_line; /* inih line of our first error, 0: none */
    int nomem;
    const struct sectdef *sect;
    char label[8 + NAME_MAX_LEN + 2]; /* "server paris-1" */
    size_t idx;                       /* current site/server/schedule */
    int seen[MAX_KEYS];               /* line of each key of the section, 0: unseen */
};

/* Copies s into out for a message: at most 60 bytes, control bytes as '?'. */
static const char *shown(const char *s, char *out, size_t outlen)
{
    size_t i;

    for (i = 0; s[i] != '\0' && i + 1 < outlen && i < 60; i++)
        out[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    out[i] = '\0';
    return out;
}

static int fail(struct parser *p, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct parser *p, const char *key, const char *fmt, ...)
{
    char msg[384];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!p->e->failed)
        p->err_inih_line = p->inih_line;
    return ds__config_fail(p->e, p->line, p->sect ? p->label : NULL, key, "%s", msg);
}

int ds__config_name_ok(const char *s)
{
    size_t i, dots = 0;

    for (i = 0; s[i] != '\0'; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
        dots += s[i] == '.';
    }
    /* a leading '-' would read as an option on every command line that
     * names it (distsync trust -rf) */
    return i > 0 && i <= NAME_MAX_LEN && dots < i && s[0] != '-';
}

static int list_push(ds_strlist_t *l, char *s)
{
    char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

    if (v == NULL)
        return DS_ENOMEM;
    l->v = v;
    l->v[l->n++] = s;
    return 0;
}

/* See config_internal.h. */
const char *ds__config_item(const char **s, size_t *n)
{
    const char *p = *s, *t;

    while (*p == ',' || isspace((unsigned char)*p))
        p++;
    for (t = p; *p != '\0' && *p != ',' && !isspace((unsigned char)*p); p++)
        ;
    *s = p;
    *n = (size_t)(p - t);
    return *n > 0 ? t : NULL;
}

int ds__config_split(const char *value, ds_strlist_t *out, char *msg, size_t msglen)
{
    const char *s = value, *t;
    char buf[64], *item;
    size_t n;

    while ((t = ds__config_item(&s, &n)) != NULL) {
        item = strndup(t, n);
        if (item == NULL)
            return DS_ENOMEM;
        if (!ds__config_name_ok(item) || ds_config_list_has(out, item)) {
            snprintf(msg, msglen, "%s '%s'%s",
                     ds__config_name_ok(item) ? "duplicate entry" : "invalid name",
                     shown(item, buf, sizeof(buf)),
                     ds__config_name_ok(item)
                         ? ""
                         : " (use letters, digits, '.', '_' and '-', not first)");
            free(item);
            return DS_ECONFIG;
        }
        if (list_push(out, item) < 0) {
            free(item);
            return DS_ENOMEM;
        }
    }
    if (out->n == 0) {
        snprintf(msg, msglen, "empty list (separate names with commas or spaces)");
        return DS_ECONFIG;
    }
    return 0;
}

/* Value parsers: return 0, or DS_ECONFIG after recording the message. */

static int set_list(struct parser *p, const char *key, const char *v, ds_strlist_t *dst)
{
    char msg[160];
    int rc = ds__config_split(v, dst, msg, sizeof(msg));

    if (rc == DS_ECONFIG)
        return fail(p, key, "%s", msg);
    return rc;
}

static int set_text(struct parser *p, const char *key, const char *v, char **dst)
{
    if (*v == '\0')
        return fail(p, key, "empty value");
    *dst = strdup(v);
    return *dst ? 0 : DS_ENOMEM;
}

/* Appends the path components of rel to out (holding an absolute path),
 * dropping empty and "." components. */
static void path_append(char *out, const char *rel)
{
    size_t n = strlen(out);
    const char *s = rel, *t;

    while (*s != '\0') {
        while (*s == '/')
            s++;
        for (t = s; *s != '\0' && *s != '/'; s++)
            ;
        if (s == t || (s - t == 1 && *t == '.'))
            continue;
        if (n > 1)
            out[n++] = '/';
        memcpy(out + n, t, (size_t)(s - t));
        n += (size_t)(s - t);
        out[n] = '\0';
    }
}

/* Returns a new absolute path for v: as is when absolute, else joined to
 * base_dir (itself joined to the current directory when relative). */
static char *abs_path(const char *base_dir, const char *v)
{
    char cwd[PATH_MAX];
    size_t need = strlen(v) + 2 + (base_dir ? strlen(base_dir) : 0) + sizeof(cwd);
    char *out = malloc(need);

    if (out == NULL)
        return NULL;
    strcpy(out, "/");
    if (v[0] != '/') {
        if (base_dir == NULL || base_dir[0] != '/') {
            if (getcwd(cwd, sizeof(cwd)) == NULL) {
                free(out);
                return NULL;
            }
            path_append(out, cwd);
        }
        if (base_dir != NULL)
            path_append(out, base_dir);
    }
    path_append(out, v);
    return out;
}

char *ds__config_abs(const char *base_dir, const char *v)
{
    return abs_path(base_dir, v);
}

static int set_path(struct parser *p, const char *key, const char *v, char **dst, int *line)
{
    if (*v == '\0')
        return fail(p, key, "empty value (expected a directory)");
    free(*dst);
    *dst = abs_path(p->base_dir, v);
    if (*dst == NULL)
        return errno == ENOMEM ? DS_ENOMEM : fail(p, key, "cannot resolve '%s'", v);
    *line = p->line;
    return 0;
}

static int parse_size(const char *v, uint32_t *out, char *msg, size_t msglen)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {{"", 1},        {"b", 1},         {"k", 1024},    {"kib", 1024},
                 {"m", 1 << 20}, {"mib", 1 << 20}, {"g", 1 << 30}, {"gib", 1 << 30}};
    char buf[64];
    char *end;
    unsigned long long n;

    if (!isdigit((unsigned char)*v)) {
        snprintf(msg, msglen, "expected a size such as 64KiB, got '%s'", shown(v, buf, 64));
        return DS_ECONFIG;
    }
    errno = 0;
    n = strtoull(v, &end, 10);
    while (isspace((unsigned char)*end))
        end++;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(end, units[i].unit) != 0)
            continue;
        if (errno == ERANGE || n > UINT32_MAX / units[i].mult) {
            snprintf(msg, msglen, "size '%s' is too large", shown(v, buf, 64));
            return DS_ECONFIG;
        }
        *out = (uint32_t)(n * units[i].mult);
        return 0;
    }
    snprintf(msg, msglen, "unknown unit '%s' (use B, KiB, MiB or GiB)", shown(end, buf, 64));
    return DS_ECONFIG;
}

static int set_size(struct parser *p, const char *key, const char *v, uint32_t *dst, int *line)
{
    char msg[160];

    if (parse_size(v, dst, msg, sizeof(msg)) < 0)
        return fail(p, key, "%s", msg);
    *line = p->line;
    return 0;
}

/* A duration: N, Ns, Nm or Nh, from 1 s to DS_CONFIG_TIMEOUT_MAX. */
static int set_timeout(struct parser *p, const char *key, const char *v, unsigned *dst)
{
    char *end, buf[64];
    unsigned long n, mult = 1;

    errno = 0;
    n = isdigit((unsigned char)*v) ? strtoul(v, &end, 10) : 0;
    if (n > 0 && errno == 0 && (strcmp(end, "m") == 0 || strcmp(end, "h") == 0))
        mult = *end == 'm' ? 60 : 3600;
    else if (n > 0 && errno == 0 && strcmp(end, "s") != 0 && *end != '\0')
        n = 0;
    if (n == 0 || n > DS_CONFIG_TIMEOUT_MAX / mult)
        return fail(p, key, "expected a duration from 1s to 24h (e.g. 120s, 5m), got '%s'",
                    shown(v, buf, sizeof(buf)));
    *dst = (unsigned)(n * mult);
    return 0;
}

/* [console] */

static int k_store(struct parser *p, const char *key, const char *v)
{
    p->cfg->store_line = p->line;
    return set_path(p, key, v, &p->cfg->store, &p->lines->store);
}

static int k_state(struct parser *p, const char *key, const char *v)
{
    return set_path(p, key, v, &p->cfg->state, &p->lines->state);
}

static int k_cclasses(struct parser *p, const char *key, const char *v)
{
    p->lines->classes = p->line;
    return set_list(p, key, v, &p->cfg->classes);
}

static int k_chunk_min(struct parser *p, const char *key, const char *v)
{
    return set_size(p, key, v, &p->cfg->chunk.min_size, &p->lines->chunk_min);
}

static int k_chunk_avg(struct parser *p, const char *key, const char *v)
{
    return set_size(p, key, v, &p->cfg->chunk.avg_size, &p->lines->chunk_avg);
}

static int k_chunk_max(struct parser *p, const char *key, const char *v)
{
    return set_size(p, key, v, &p->cfg->chunk.max_size, &p->lines->chunk_max);
}

static int k_ctimeout(struct parser *p, const char *key, const char *v)
{
    return set_timeout(p, key, v, &p->cfg->timeout_s);
}

/* A zstd level, 1 to 22, into *out. */
static int set_level(struct parser *p, const char *key, const char *v, int *out)
{
    char *end, buf[64];
    long n;

    errno = 0;
    n = isdigit((unsigned char)*v) ? strtol(v, &end, 10) : 0;
    if (n < 1 || n > 22 || errno == ERANGE || *end != '\0')
        return fail(p, key, "expected a zstd level from 1 to 22, got '%s'",
                    shown(v, buf, sizeof(buf)));
    *out = (int)n;
    return 0;
}

static int k_delta_level(struct parser *p, const char *key, const char *v)
{
    return set_level(p, key, v, &p->cfg->delta_level);
}

static int k_sync_delta_level(struct parser *p, const char *key, const char *v)
{
    return set_level(p, key, v, &p->cfg->sync_delta_level);
}

static int k_threads(struct parser *p, const char *key, const char *v)
{
    char *end, buf[64];
    unsigned long n;

    errno = 0;
    n = isdigit((unsigned char)*v) ? strtoul(v, &end, 10) : 0;
    if (n < 1 || n > 1024 || errno == ERANGE || *end != '\0')
        return fail(p, key, "expected a number of threads from 1 to 1024, got '%s'",
                    shown(v, buf, sizeof(buf)));
    p->cfg->scan_threads = (unsigned)n;
    return 0;
}

/* max_delete = N (a count of files) or P% (0-100). */
static int set_max_delete(struct parser *p, const char *key, const char *v, uint64_t *n, int *pct)
{
    char *end, buf[64];
    unsigned long long x;

    errno = 0;
    x = isdigit((unsigned char)*v) ? strtoull(v, &end, 10) : 0;
    if (!isdigit((unsigned char)*v) || errno == ERANGE || x > DS_MAX_DELETE_COUNT ||
        (strcmp(end, "%") != 0 && *end != '\0') || (*end == '%' && x > 100))
        return fail(p, key,
                    "expected a number of files (0 to %llu) or a percentage of the server's "
                    "files (0%% to 100%%), got '%s'",
                    (unsigned long long)DS_MAX_DELETE_COUNT, shown(v, buf, sizeof(buf)));
    *n = x;
    *pct = *end == '%';
    return 0;
}

static ds_server_cfg_t *cur_server(struct parser *p);

/* max_servers = N, max_files = N: a count from 1 to max. */
static int set_count(struct parser *p, const char *key, const char *v, unsigned max, unsigned *dst)
{
    char *end, buf[64];
    unsigned long n;

    errno = 0;
    n = isdigit((unsigned char)*v) ? strtoul(v, &end, 10) : 0;
    if (n < 1 || n > max || errno == ERANGE || *end != '\0')
        return fail(p, key, "expected a number from 1 to %u, got '%s'", max,
                    shown(v, buf, sizeof(buf)));
    *dst = (unsigned)n;
    return 0;
}

static int k_cmax_servers(struct parser *p, const char *key, const char *v)
{
    return set_count(p, key, v, DS_CONFIG_MAX_SERVERS_MAX, &p->cfg->max_servers);
}

static int k_site_max_servers(struct parser *p, const char *key, const char *v)
{
    return set_count(p, key, v, DS_CONFIG_MAX_SERVERS_MAX, &p->cfg->sites[p->idx].max_servers);
}

static int k_max_files(struct parser *p, const char *key, const char *v)
{
    return set_count(p, key, v, DS_CONFIG_MAX_FILES_MAX, &cur_server(p)->max_files);
}

static int k_cmax_delete(struct parser *p, const char *key, const char *v)
{
    return set_max_delete(p, key, v, &p->cfg->max_delete, &p->cfg->max_delete_pct);
}

#define LEASE_TTL_MIN 5u
#define LEASE_TTL_MAX (7u * 24 * 3600)

static int k_lease_ttl(struct parser *p, const char *key, const char *v)
{
    char *end, buf[64];
    unsigned long n;

    errno = 0;
    n = isdigit((unsigned char)*v) ? strtoul(v, &end, 10) : 0;
    if (n < LEASE_TTL_MIN || n > LEASE_TTL_MAX || errno == ERANGE || *end != '\0')
        return fail(p, key, "expected a number of seconds from %u to %u, got '%s'", LEASE_TTL_MIN,
                    LEASE_TTL_MAX, shown(v, buf, sizeof(buf)));
    p->cfg->lease_ttl = (unsigned)n;
    return 0;
}

/* catch_up = 24h: how old a fire missed while the daemon was down may be
 * and still run at its start; "0" turns catch-up off. */
static int k_catch_up(struct parser *p, const char *key, const char *v)
{
    char err[256], buf[64];
    int64_t secs;

    if (strcmp(v, "0") == 0) {
        p->cfg->catch_up_s = -1;
        return 0;
    }
    if (ds_schedule_parse_window(v, &secs, err, sizeof(err)) < 0)
        return fail(p, key, "expected a duration such as 90m, 24h or 2d (or 0: off), got '%s'",
                    shown(v, buf, sizeof(buf)));
    p->cfg->catch_up_s = secs;
    return 0;
}

/* listen = 127.0.0.1:8750 or [::1]:8750: an address and a port. */
static int k_listen(struct parser *p, const char *key, const char *v)
{
    char host[64], buf[80], bin[16];
    const char *colon = strrchr(v, ':'), *orig = v;
    unsigned long port = 0;
    char *end = NULL;
    size_t hl;

    if (colon != NULL) {
        errno = 0;
        port = isdigit((unsigned char)colon[1]) ? strtoul(colon + 1, &end, 10) : 0;
    }
    hl = colon ? (size_t)(colon - v) : 0;
    if (hl > 2 && v[0] == '[' && v[hl - 1] == ']') { /* [::1]:8750 */
        v++;
        hl -= 2;
    }
    if (colon == NULL || port < 1 || port > 65535 || errno == ERANGE || *end != '\0' || hl == 0 ||
        hl >= sizeof(host))
        return fail(p, key, "expected ADDRESS:PORT such as 127.0.0.1:8750, got '%s'",
                    shown(v, buf, sizeof(buf)));
    memcpy(host, v, hl);
    host[hl] = '\0';
    if (inet_pton(AF_INET, host, bin) != 1 && inet_pton(AF_INET6, host, bin) != 1)
        return fail(p, key, "'%s' is not an IPv4 or IPv6 address (names are not resolved)",
                    shown(host, buf, sizeof(buf)));
    free(p->cfg->listen);
    p->cfg->listen = strdup(orig);
    p->cfg->listen_line = p->line;
    return p->cfg->listen ? 0 : DS_ENOMEM;
}

/* A file path key of the API (token, TLS certificate and key). */
static int set_api_file(struct parser *p, const char *key, const char *v, const char *what,
                        char **dst, int *line)
{
    if (*v == '\0')
        return fail(p, key, "empty value (expected %s)", what);
    free(*dst);
    *dst = abs_path(p->base_dir, v);
    if (*dst == NULL)
        return errno == ENOMEM ? DS_ENOMEM : fail(p, key, "cannot resolve '%s'", v);
    *line = p->line;
    return 0;
}

/* api_token_file = PATH: the bearer token of the TCP listener. */
static int k_api_token_file(struct parser *p, const char *key, const char *v)
{
    return set_api_file(p, key, v, "a file holding the API token", &p->cfg->api_token_file,
                        &p->cfg->api_token_file_line);
}

/* api_tls_cert = PATH, api_tls_key = PATH: TLS on the TCP listener. */
static int k_api_tls_cert(struct parser *p, const char *key, const char *v)
{
    return set_api_file(p, key, v, "a PEM certificate chain", &p->cfg->api_tls_cert,
                        &p->cfg->api_tls_line);
}

static int k_api_tls_key(struct parser *p, const char *key, const char *v)
{
    return set_api_file(p, key, v, "a PEM private key", &p->cfg->api_tls_key,
                        &p->cfg->api_tls_line);
}

static int set_bandwidth(struct parser *p, const char *key, const char *v, ds_bw_cfg_t *dst)
{
    char msg[384];
    int rc = ds__config_bandwidth(v, p->line, dst, msg, sizeof(msg));

    return rc == DS_ECONFIG ? fail(p, key, "%s", msg) : rc;
}

static int k_cbandwidth(struct parser *p, const char *key, const char *v)
{
    return set_bandwidth(p, key, v, &p->cfg->bandwidth);
}

/* [site NAME] */

static int k_site_bandwidth(struct parser *p, const char *key, const char *v)
{
    return set_bandwidth(p, key, v, &p->cfg->sites[p->idx].bandwidth);
}

static int k_site_tz(struct parser *p, const char *key, const char *v)
{
    p->cfg->sites[p->idx].tz_line = p->line;
    return set_text(p, key, v, &p->cfg->sites[p->idx].tz);
}

/* [server NAME] */

static ds_server_cfg_t *cur_server(struct parser *p)
{
    return &p->cfg->servers[p->idx];
}

static int k_url(struct parser *p, const char *key, const char *v)
{
    char msg[200];

    if (ds__config_check_url(v, msg, sizeof(msg)) < 0)
        return fail(p, key, "%s", msg);
    cur_server(p)->url_line = p->line;
    return set_text(p, key, v, &cur_server(p)->url);
}

static int k_site(struct parser *p, const char *key, const char *v)
{
    char buf[64];

    if (!ds__config_name_ok(v))
        return fail(p, key, "invalid site name '%s'", shown(v, buf, sizeof(buf)));
    cur_server(p)->site_line = p->line;
    return set_text(p, key, v, &cur_server(p)->site);
}

static int k_sclasses(struct parser *p, const char *key, const char *v)
{
    cur_server(p)->classes_line = p->line;
    return set_list(p, key, v, &cur_server(p)->classes);
}

/* yes|true|1 or no|false|0 into *out. */
static int yesno(struct parser *p, const char *key, const char *v, int *out)
{
    static const char *yes[] = {"yes", "true", "1"}, *no[] = {"no", "false", "0"};
    char buf[64];

    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
            *out = strcasecmp(v, yes[i]) == 0;
            return 0;
        }
    }
    return fail(p, key, "expected yes or no, got '%s'", shown(v, buf, sizeof(buf)));
}

static int k_precompute(struct parser *p, const char *key, const char *v)
{
    return yesno(p, key, v, &p->cfg->precompute);
}

static int k_prune(struct parser *p, const char *key, const char *v)
{
    return yesno(p, key, v, &cur_server(p)->prune);
}

static int k_create_root(struct parser *p, const char *key, const char *v)
{
    return yesno(p, key, v, &cur_server(p)->create_root);
}

static int k_max_delete(struct parser *p, const char *key, const char *v)
{
    cur_server(p)->max_delete_line = p->line;
    return set_max_delete(p, key, v, &cur_server(p)->max_delete, &cur_server(p)->max_delete_pct);
}

static int k_transport(struct parser *p, const char *key, const char *v)
{
    char buf[64];

    /* which values fit the URL's scheme is checked once the section is read */
    if (strcmp(v, "local") != 0 && strcmp(v, "agent") != 0 && strcmp(v, "sftp") != 0 &&
        strcmp(v, "auto") != 0)
        return fail(p, key,
                    "expected local or agent (file://), agent, sftp or auto (ssh://), got '%s'",
                    shown(v, buf, sizeof(buf)));
    cur_server(p)->transport_line = p->line;
    return set_text(p, key, v, &cur_server(p)->transport);
}

static int k_agent(struct parser *p, const char *key, const char *v)
{
    return set_text(p, key, v, &cur_server(p)->agent);
}

static int k_stimeout(struct parser *p, const char *key, const char *v)
{
    ds_server_cfg_t *s = cur_server(p);

    if (s->timeout_line != 0) /* timeout and io_timeout are one setting */
        return fail(p, key, "the inactivity timeout is already set at line %d", s->timeout_line);
    s->timeout_line = p->line;
    return set_timeout(p, key, v, &s->timeout_s);
}

/* ssh:// keys; a file:// or smb:// server holding one is refused after
 * reading. */
static void ssh_key(struct parser *p, const char *key)
{
    cur_server(p)->ssh_key_line = p->line;
    cur_server(p)->ssh_key = strcmp(key, "identity") == 0 ? "identity" : "known_hosts";
}

/* ssh:// and smb:// keys (connect_timeout, verify); refused on file://. */
static void remote_key(struct parser *p, const char *key)
{
    cur_server(p)->remote_key_line = p->line;
    cur_server(p)->remote_key = strcmp(key, "verify") == 0 ? "verify" : "connect_timeout";
}

/* A file path as given when it starts with ~/ (expanded when used), else
 * made absolute against the config file's directory. */
static int set_file(struct parser *p, const char *key, const char *v, char **dst)
{
    if (*v == '\0')
        return fail(p, key, "empty value (expected a file)");
    free(*dst);
    *dst = strncmp(v, "~/", 2) == 0 ? strdup(v) : abs_path(p->base_dir, v);
    if (*dst == NULL)
        return errno == ENOMEM ? DS_ENOMEM : fail(p, key, "cannot resolve '%s'", v);
    return 0;
}

static int k_identity(struct parser *p, const char *key, const char *v)
{
    ssh_key(p, key);
    cur_server(p)->identity_line = p->line;
    return set_file(p, key, v, &cur_server(p)->identity);
}

static int k_known_hosts(struct parser *p, const char *key, const char *v)
{
    ssh_key(p, key);
    return set_file(p, key, v, &cur_server(p)->known_hosts);
}

static int k_connect_timeout(struct parser *p, const char *key, const char *v)
{
    remote_key(p, key);
    return set_timeout(p, key, v, &cur_server(p)->connect_timeout_s);
}

/* retries = N: 0 (never reconnect) to DS_CONFIG_RETRIES_MAX. */
static int set_retries(struct parser *p, const char *key, const char *v, unsigned *dst)
{
    char *end, buf[64];
    unsigned long n;

    errno = 0;
    n = isdigit((unsigned char)*v) ? strtoul(v, &end, 10) : ULONG_MAX;
    if (n > DS_CONFIG_RETRIES_MAX || errno == ERANGE || *end != '\0')
        return fail(p, key, "expected a number from 0 to %u, got '%s'", DS_CONFIG_RETRIES_MAX,
                    shown(v, buf, sizeof(buf)));
    *dst = (unsigned)n;
    return 0;
}

static int k_cretries(struct parser *p, const char *key, const char *v)
{
    return set_retries(p, key, v, &p->cfg->retries);
}

static int k_cretry_backoff(struct parser *p, const char *key, const char *v)
{
    return set_timeout(p, key, v, &p->cfg->retry_backoff_s);
}

static int k_retries(struct parser *p, const char *key, const char *v)
{
    cur_server(p)->retries_line = p->line;
    return set_retries(p, key, v, &cur_server(p)->retries);
}

static int k_retry_backoff(struct parser *p, const char *key, const char *v)
{
    cur_server(p)->retry_backoff_line = p->line;
    return set_timeout(p, key, v, &cur_server(p)->retry_backoff_s);
}

/* verify = size | readback (SFTP mode: read each upload back, SHA-256) */
static int k_verify(struct parser *p, const char *key, const char *v)
{
    char buf[64];

    if (strcmp(v, "size") != 0 && strcmp(v, "readback") != 0)
        return fail(p, key, "expected size or readback, got '%s'", shown(v, buf, sizeof(buf)));
    remote_key(p, key);
    cur_server(p)->verify_readback = strcmp(v, "readback") == 0;
    return 0;
}

/* quick_deltas = auto | no (README "Quick deltas") */
static int k_quick_deltas(struct parser *p, const char *key, const char *v)
{
    char buf[64];

    if (strcmp(v, "auto") != 0 && strcmp(v, "no") != 0)
        return fail(p, key, "expected auto or no, got '%s'", shown(v, buf, sizeof(buf)));
    cur_server(p)->quick_off = strcmp(v, "no") == 0;
    return 0;
}

/* smb:// keys; another server holding one is refused after reading. */
static int k_credentials(struct parser *p, const char *key, const char *v)
{
    ds_server_cfg_t *s = cur_server(p);

    s->smb_key_line = s->credentials_line = p->line;
    s->smb_key = "credentials";
    return set_file(p, key, v, &s->credentials);
}

static int k_encrypt(struct parser *p, const char *key, const char *v)
{
    cur_server(p)->smb_key_line = p->line;
    cur_server(p)->smb_key = "encrypt";
    return yesno(p, key, v, &cur_server(p)->encrypt);
}

/* connections = N: SMB connections to the server, each in a process */
static int k_connections(struct parser *p, const char *key, const char *v)
{
    cur_server(p)->smb_key_line = p->line;
    cur_server(p)->smb_key = "connections";
    return set_count(p, key, v, DS_CONFIG_SMB_CONNECTIONS_MAX, &cur_server(p)->connections);
}

static int k_sbandwidth(struct parser *p, const char *key, const char *v)
{
    return set_bandwidth(p, key, v, &cur_server(p)->bandwidth);
}

/* [schedule NAME] */

static ds_schedule_cfg_t *cur_sched(struct parser *p)
{
    return &p->cfg->schedules[p->idx];
}

static int k_when(struct parser *p, const char *key, const char *v)
{
    cur_sched(p)->when_line = p->line;
    return set_text(p, key, v, &cur_sched(p)->when);
}

static int k_tz(struct parser *p, const char *key, const char *v)
{
    cur_sched(p)->tz_line = p->line;
    return set_text(p, key, v, &cur_sched(p)->tz);
}

static int k_window(struct parser *p, const char *key, const char *v)
{
    cur_sched(p)->window_line = p->line;
    return set_text(p, key, v, &cur_sched(p)->window);
}

static int k_servers(struct parser *p, const char *key, const char *v)
{
    cur_sched(p)->servers_line = p->line;
    return set_list(p, key, v, &cur_sched(p)->servers);
}

static int k_sites(struct parser *p, const char *key, const char *v)
{
    cur_sched(p)->sites_line = p->line;
    return set_list(p, key, v, &cur_sched(p)->sites);
}

static int k_dclasses(struct parser *p, const char *key, const char *v)
{
    cur_sched(p)->classes_line = p->line;
    return set_list(p, key, v, &cur_sched(p)->classes);
}

/* The upgrade gate's keys, in every section (config_rollout.c). */
static int k_gate(struct parser *p, const char *key, const char *v)
{
    char msg[384];
    int rc = ds__config_gate_key(p->cfg, p->sect->type, p->idx, key, v, p->line, p->base_dir, msg,
                                 sizeof(msg));

    return rc == DS_ENOMEM || rc == 0 ? rc : fail(p, key, "%s", msg);
}

static const struct keydef console_keys[] = {
    {"store", k_store},
    {"state", k_state},
    {"classes", k_cclasses},
    {"chunk_min", k_chunk_min},
    {"chunk_avg", k_chunk_avg},
    {"chunk_max", k_chunk_max},
    {"scan_threads", k_threads},
    {"max_delete", k_cmax_delete},
    {"timeout", k_ctimeout},
    {"lease_ttl", k_lease_ttl},
    {"bandwidth", k_cbandwidth},
    {"delta_level", k_delta_level},
    {"sync_delta_level", k_sync_delta_level},
    {"precompute", k_precompute},
    {"max_servers", k_cmax_servers},
    {"retries", k_cretries},
    {"retry_backoff", k_cretry_backoff},
    {"catch_up", k_catch_up},
    {"listen", k_listen},
    {"api_token_file", k_api_token_file},
    {"api_tls_cert", k_api_tls_cert},
    {"api_tls_key", k_api_tls_key},
    {"max_concurrent_upgrades", k_gate},
    {"max_upgrade_bandwidth", k_gate},
    {NULL, NULL},
};
static const struct keydef site_keys[] = {
    {"bandwidth", k_site_bandwidth},
    {"tz", k_site_tz},
    {"max_servers", k_site_max_servers},
    {"clients", k_gate},
    {"max_concurrent_upgrades", k_gate},
    {"max_upgrade_bandwidth", k_gate},
    {NULL, NULL},
};
static const struct keydef server_keys[] = {
    {"url", k_url},
    {"site", k_site},
    {"classes", k_sclasses},
    {"prune", k_prune},
    {"create_root", k_create_root},
    {"transport", k_transport},
    {"agent", k_agent},
    {"max_delete", k_max_delete},
    {"timeout", k_stimeout},
    {"io_timeout", k_stimeout},
    {"identity", k_identity},
    {"known_hosts", k_known_hosts},
    {"connect_timeout", k_connect_timeout},
    {"verify", k_verify},
    {"quick_deltas", k_quick_deltas},
    {"bandwidth", k_sbandwidth},
    {"max_files", k_max_files},
    {"retries", k_retries},
    {"retry_backoff", k_retry_backoff},
    {"credentials", k_credentials},
    {"encrypt", k_encrypt},
    {"connections", k_connections},
    {"max_concurrent_upgrades", k_gate},
    {NULL, NULL},
};
static const struct keydef schedule_keys[] = {
    {"when", k_when},       {"tz", k_tz},       {"window", k_window},
    {"servers", k_servers}, {"sites", k_sites}, {"classes", k_dclasses},
    {NULL, NULL},
};
static const struct keydef rollout_keys[] = {
    {"product", k_gate},     {"version", k_gate},     {"rings", k_gate},
    {"min_success", k_gate}, {"max_failure", k_gate}, {"client_rate", k_gate},
    {"lease", k_gate},       {"token_file", k_gate},  {NULL, NULL},
};
static const struct keydef ring_keys[] = {
    {"members", k_gate}, {"members_file", k_gate}, {"size", k_gate}, {"opens", k_gate},
    {NULL, NULL},
};
static const struct keydef package_keys[] = {
    {"product", k_gate}, {"version", k_gate}, {"path", k_gate},
    {"from", k_gate},    {"soak", k_gate},    {NULL, NULL},
};

static const struct sectdef sections[] = {
    {"console", K_CONSOLE, console_keys,
     "store, state, classes, chunk_min, chunk_avg, chunk_max, scan_threads, max_delete, timeout, "
     "lease_ttl, bandwidth, delta_level, sync_delta_level, precompute, max_servers, retries, "
     "retry_backoff, "
     "catch_up, max_concurrent_upgrades, max_upgrade_bandwidth"},
    {"site", K_SITE, site_keys,
     "bandwidth, tz, max_servers, clients, max_concurrent_upgrades, max_upgrade_bandwidth"},
    {"server", K_SERVER, server_keys,
     "url, site, classes, prune, create_root, transport, agent, max_delete, timeout, io_timeout, "
     "identity, known_hosts, connect_timeout, verify, quick_deltas, bandwidth, max_files, retries, "
     "retry_backoff, credentials, encrypt, connections, max_concurrent_upgrades"},
    {"schedule", K_SCHEDULE, schedule_keys, "when, tz, window, servers, sites, classes"},
    {"rollout", K_ROLLOUT, rollout_keys,
     "product, version, rings, min_success, max_failure, client_rate, lease, token_file"},
    {"ring", K_RING, ring_keys, "members, members_file, size, opens"},
    {"package", K_PACKAGE, package_keys, "product, version, path, from, soak"},
};

/* Returns the header line of an existing section of this kind and name, or 0. */
static int find_section(const ds_config_t *cfg, enum kind kind, const char *name)
{
    const ds_site_cfg_t *si;
    const ds_server_cfg_t *se;
    const ds_schedule_cfg_t *sc;

    if (kind == K_SITE && (si = ds_config_site(cfg, name)) != NULL)
        return si->line;
    if (kind == K_SERVER && (se = ds_config_server(cfg, name)) != NULL)
        return se->line;
    if (kind == K_SCHEDULE && (sc = ds_config_schedule(cfg, name)) != NULL)
        return sc->line;
    for (size_t i = 0; kind == K_ROLLOUT && i < cfg->nrollouts; i++)
        if (strcmp(cfg->rollouts[i].name, name) == 0)
            return cfg->rollouts[i].line;
    for (size_t i = 0; kind == K_RING && i < cfg->nrings; i++)
        if (strcmp(cfg->rings[i].name, name) == 0)
            return cfg->rings[i].line;
    for (size_t i = 0; kind == K_PACKAGE && i < cfg->npackages; i++)
        if (strcmp(cfg->packages[i].name, name) == 0)
            return cfg->packages[i].line;
    return 0;
}

/* Appends a zeroed element to *arr (of *n elements of size sz). */
static void *grow(void *arr, size_t *n, size_t sz)
{
    char *a = realloc(arr, (*n + 1) * sz);

    if (a == NULL)
        return NULL;
    memset(a + *n * sz, 0, sz);
    (*n)++;
    return a;
}

static int add_section(struct parser *p, enum kind kind, const char *name)
{
    ds_config_t *c = p->cfg;
    void *a;
    char *dup = strdup(name);

    if (dup == NULL)
        return DS_ENOMEM;
    if (kind == K_SITE && (a = grow(c->sites, &c->nsites, sizeof(*c->sites))) != NULL) {
        c->sites = a;
        c->sites[c->nsites - 1] = (ds_site_cfg_t){.name = dup, .line = p->line};
        p->idx = c->nsites - 1;
    } else if (kind == K_SERVER && (a = grow(c->servers, &c->nservers, sizeof(*c->servers)))) {
        c->servers = a;
        c->servers[c->nservers - 1].name = dup;
        c->servers[c->nservers - 1].line = p->line;
        p->idx = c->nservers - 1;
    } else if (kind == K_SCHEDULE &&
               (a = grow(c->schedules, &c->nschedules, sizeof(*c->schedules))) != NULL) {
        c->schedules = a;
        c->schedules[c->nschedules - 1].name = dup;
        c->schedules[c->nschedules - 1].line = p->line;
        p->idx = c->nschedules - 1;
    } else if (kind == K_ROLLOUT &&
               (a = grow(c->rollouts, &c->nrollouts, sizeof(*c->rollouts))) != NULL) {
        c->rollouts = a;
        c->rollouts[c->nrollouts - 1] = (ds_rollout_cfg_t){
            .name = dup, .line = p->line, .min_success_bp = 9500, .max_failure_bp = 500};
        p->idx = c->nrollouts - 1;
    } else if (kind == K_RING && (a = grow(c->rings, &c->nrings, sizeof(*c->rings))) != NULL) {
        c->rings = a;
        c->rings[c->nrings - 1].name = dup;
        c->rings[c->nrings - 1].line = p->line;
        p->idx = c->nrings - 1;
    } else if (kind == K_PACKAGE &&
               (a = grow(c->packages, &c->npackages, sizeof(*c->packages))) != NULL) {
        c->packages = a;
        c->packages[c->npackages - 1].name = dup;
        c->packages[c->npackages - 1].line = p->line;
        p->idx = c->npackages - 1;
    } else {
        free(dup);
        return DS_ENOMEM;
    }
    return 0;
}

/* Splits a header "type name" into its words. Returns the word count (up to
 * 3, 3 meaning "more than two"). */
static int header_words(const char *s, const char *w[2], size_t wl[2])
{
    int n = 0;

    for (;;) {
        while (isspace((unsigned char)*s))
            s++;
        if (*s == '\0' || n == 2)
            return *s == '\0' ? n : 3;
        w[n] = s;
        while (*s != '\0' && !isspace((unsigned char)*s))
            s++;
        wl[n] = (size_t)(s - w[n]);
        n++;
    }
}

static int open_section(struct parser *p, const char *section)
{
    const char *w[2] = {"", ""};
    size_t wl[2] = {0, 0};
    int n = header_words(section, w, wl), first;
    char raw[64], name[NAME_MAX_LEN + 1];

    p->sect = NULL;
    memset(p->seen, 0, sizeof(p->seen));
    shown(section, raw, sizeof(raw));
    for (size_t i = 0; n > 0 && i < sizeof(sections) / sizeof(sections[0]); i++)
        if (strlen(sections[i].type) == wl[0] && memcmp(sections[i].type, w[0], wl[0]) == 0)
            p->sect = &sections[i];
    if (p->sect == NULL)
        return ds__config_fail(p->e, p->line, raw, NULL,
                               "unknown section type '%.*s' (use [console], [site NAME], "
                               "[server NAME], [schedule NAME], [rollout NAME], [ring NAME] "
                               "or [package NAME])",
                               (int)(wl[0] < 32 ? wl[0] : 32), w[0]);
    if (p->sect->kind == K_CONSOLE) {
        snprintf(p->label, sizeof(p->label), "console");
        if (n != 1)
            return fail(p, NULL, "takes no name");
        if (p->lines->console)
            return fail(p, NULL, "duplicate section (first at line %d)", p->lines->console);
        p->lines->console = p->line;
        return 0;
    }
    snprintf(name, sizeof(name), "%.*s", (int)(wl[1] < NAME_MAX_LEN ? wl[1] : NAME_MAX_LEN), w[1]);
    snprintf(p->label, sizeof(p->label), "%s %s", p->sect->type, name);
    if (n != 2 || wl[1] > NAME_MAX_LEN || !ds__config_name_ok(name)) {
        const char *type = p->sect->type;

        p->sect = NULL;
        if (n == 1)
            return ds__config_fail(p->e, p->line, raw, NULL, "missing name (use [%s NAME])", type);
        if (n == 3)
            return ds__config_fail(p->e, p->line, raw, NULL,
                                   "expected [%s NAME], one name without spaces", type);
        return ds__config_fail(p->e, p->line, raw, NULL,
                               "invalid name (use at most %d letters, digits, '.', '_' and "
                               "'-', not first)",
                               NAME_MAX_LEN);
    }
    first = find_section(p->cfg, p->sect->kind, name);
    if (first)
        return fail(p, NULL, "duplicate section (first at line %d)", first);
    return add_section(p, p->sect->kind, name);
}

/* The section's key closest to an unknown one (a typo: at most 2 edits,
 * fewer than its length; "timezone" for tz), or NULL. */
static const char *near_key(const struct sectdef *sd, const char *name)
{
    const char *best = NULL;
    size_t bestd = 3;
    int zone = strcmp(name, "timezone") == 0 || strcmp(name, "time_zone") == 0;

    for (const struct keydef *k = sd->keys; k->name != NULL; k++) {
        size_t d = zone && strcmp(k->name, "tz") == 0 ? 0 : ds_strdist(name, k->name);

        if (d < bestd && d < strlen(name)) {
            best = k->name;
            bestd = d;
        }
    }
    return best;
}

static int set_key(struct parser *p, const char *name, const char *value)
{
    const char *near;
    const struct keydef *k;
    char buf[64];

    if (p->sect == NULL)
        return ds__config_fail(p->e, p->line, NULL, shown(name, buf, sizeof(buf)),
                               "outside any section (add [console], [site NAME], [server NAME] "
                               "or [schedule NAME] above it)");
    for (k = p->sect->keys; k->name != NULL; k++)
        if (strcmp(k->name, name) == 0)
            break;
    if (k->name == NULL && strcmp(name, "bwlimit") == 0)
        return fail(p, name, "unknown key (the cap is 'bandwidth =')");
    if (k->name == NULL && p->sect->kind == K_SITE && strcmp(name, "concurrency") == 0)
        return fail(p, name, "not supported yet");
    if (k->name == NULL && (near = near_key(p->sect, name)) != NULL)
        return fail(p, shown(name, buf, sizeof(buf)),
                    "unknown key (did you mean '%s'? known keys: %s)", near, p->sect->hint);
    if (k->name == NULL)
        return fail(p, shown(name, buf, sizeof(buf)), "unknown key (known keys: %s)",
                    p->sect->hint);
    if (k - p->sect->keys >= MAX_KEYS) /* a section grew past MAX_KEYS: raise it */
        return fail(p, name, "internal error: too many keys in this section");
    if (p->seen[k - p->sect->keys])
        return fail(p, name, "duplicate key (first at line %d)", p->seen[k - p->sect->keys]);
    p->seen[k - p->sect->keys] = p->line;
    return k->fn(p, name, value);
}

/* value without an inline comment: inih strips " ;..." itself, this strips
 * " #..." too (a '#' after a space or tab starts a comment, as ';' does).
 * NULL when there is none, else a copy to free. */
static char *uncomment(const char *value)
{
    const char *c = value;
    size_t n;

    if (*value == '\0')
        return NULL;
    while ((c = strchr(c + 1, '#')) != NULL && c[-1] != ' ' && c[-1] != '\t')
        ;
    if (c == NULL)
        return NULL;
    for (n = (size_t)(c - value); n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'); n--)
        ;
    return strndup(value, n); /* out of memory: NULL, the value as it is */
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct parser *p = user;
    char *v = NULL;
    int rc;

    if (p->e->failed || p->nomem)
        return 0;
    if (!p->in_marker)
        v = uncomment(value);
    rc = p->in_marker ? open_section(p, section) : set_key(p, name, v ? v : value);
    free(v);
    if (rc == DS_ENOMEM)
        p->nomem = 1;
    if (rc < 0 && p->err_inih_line == 0)
        p->err_inih_line = p->inih_line;
    return rc == 0;
}

/* Records that inih's next line is physical line p->line. */
static int map_line(struct parser *p)
{
    int *m;

    if ((size_t)p->inih_line + 1 >= p->cap) {
        p->cap = p->cap ? 2 * p->cap : 256;
        m = realloc(p->map, p->cap * sizeof(*m));
        if (m == NULL) {
            p->nomem = 1;
            return 0;
        }
        p->map = m;
    }
    p->map[++p->inih_line] = p->line;
    return 1;
}

/* inih's fgets-style reader: one physical line per call, leading blanks
 * removed (so there are no continuation lines), a synthetic line after
 * each header. */
static char *reader(char *buf, int num, void *stream)
{
    struct parser *p = stream;
    const char *s = p->text + p->pos, *nl;
    size_t len;

    if (p->e->failed || p->nomem)
        return NULL;
    p->in_marker = p->marker_pending;
    p->marker_pending = 0;
    if (p->in_marker)
        return map_line(p) ? strcpy(buf, MARKER_LINE) : NULL;
    if (*s == '\0')
        return NULL;
    nl = strchr(s, '\n');
    len = nl ? (size_t)(nl - s) + 1 : strlen(s);
    p->pos += len;
    p->line++;
    if (p->line == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        s += 3;
        len -= 3;
    }
    for (; len > 0 && (*s == ' ' || *s == '\t'); len--)
        s++;
    if (len + 1 > (size_t)num) {
        p->err_inih_line = p->inih_line + 1;
        ds__config_fail(p->e, p->line, NULL, NULL, "line too long (at most %d characters)",
                        num - 2);
        return NULL;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    p->marker_pending = buf[0] == '[';
    return map_line(p) ? buf : NULL;
}

int ds__config_read(const char *text, const char *base_dir, ds_config_t *cfg,
                    struct ds__config_lines *lines, struct ds__config_err *e)
{
    struct parser p = {.cfg = cfg, .lines = lines, .e = e, .base_dir = base_dir, .text = text};
    int rc = ini_parse_stream(reader, &p, handler, &p);

    if (p.nomem || rc == -2) {
        rc = DS_ENOMEM;
    } else if (rc > 0 && (!e->failed || rc < p.err_inih_line)) {
        e->failed = 0;
        rc = ds__config_fail(e, p.map[rc], NULL, NULL,
                             "syntax error (expected '[section]' or 'key = value')");
    } else {
        rc = e->failed ? DS_ECONFIG : 0;
    }
    free(p.map);
    return rc;
}

int ds_config_key_at(size_t i, const char **section, const char **key)
{
    for (size_t s = 0; s < sizeof(sections) / sizeof(sections[0]); s++) {
        for (const struct keydef *k = sections[s].keys; k->name; k++, i--) {
            if (i == 0) {
                *section = sections[s].type;
                *key = k->name;
                return 0;
            }
        }
    }
    return DS_ENOTFOUND;
}

/* Configuration: the example file, value parsing, and one error per rule,
 * each checked for its exact file:line, section and key. */
#include <errno.h>

#include "check.h"
#include "distsync/config.h"
#include "distsync/error.h"

#define CONSOLE "[console]\nstore = s\nstate = st\n" /* lines 1-3 */

/* Parses text as "t.conf" (base /base) and checks that it fails with
 * DS_ECONFIG and a message starting with want. */
#define EXPECT_ERR(text, want)                                                                     \
    do {                                                                                           \
        char e_[512] = "";                                                                         \
        ds_config_t *c_ = NULL;                                                                    \
        int rc_ = ds_config_parse(text, "t.conf", "/base", &c_, e_, sizeof(e_));                   \
        CHECK_INT(rc_, DS_ECONFIG);                                                                \
        CHECK(c_ == NULL);                                                                         \
        if (strncmp(e_, want, strlen(want)) != 0) {                                                \
            fprintf(stderr, "%s:%d: got  '%s'\n  want '%s...'\n", __FILE__, __LINE__, e_, want);   \
            CHECK(!"message");                                                                     \
        }                                                                                          \
        CHECK(strchr(e_, '\n') == NULL);                                                           \
        ds_config_free(c_);                                                                        \
    } while (0)

static ds_config_t *parse_ok(const char *text, const char *base)
{
    char err[512] = "";
    ds_config_t *cfg = NULL;
    int rc = ds_config_parse(text, "t.conf", base, &cfg, err, sizeof(err));

    if (rc != 0)
        fprintf(stderr, "unexpected error %d: %s\n", rc, err);
    CHECK_INT(rc, 0);
    return cfg;
}

static void source_path(char *out, size_t len, const char *rel)
{
    const char *src = getenv("DS_SRC");
    const char *cut = strstr(__FILE__, "tests/unit/test_config.c");

    if (src != NULL)
        snprintf(out, len, "%s/%s", src, rel);
    else if (cut != NULL)
        snprintf(out, len, "%.*s%s", (int)(cut - __FILE__), __FILE__, rel);
    else
        snprintf(out, len, "../../%s", rel);
}

static void test_example_loads(void)
{
    char path[4096], err[512] = "";
    ds_config_t *cfg = NULL;
    const ds_server_cfg_t *s;
    const ds_schedule_cfg_t *d;

    source_path(path, sizeof(path), "conf/distsync.conf");
    CHECK_INT(ds_config_load(path, &cfg, err, sizeof(err)), 0);
    if (cfg == NULL) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    CHECK_STR(cfg->path, path);
    CHECK_STR(cfg->store, "/srv/distsync/store");
    CHECK_STR(cfg->state, "/var/lib/distsync");
    CHECK_INT(cfg->classes.n, 3);
    CHECK_INT(cfg->chunk.min_size, 16384);
    CHECK_INT(cfg->chunk.avg_size, 65536);
    CHECK_INT(cfg->chunk.max_size, 262144);
    CHECK_INT(cfg->scan_threads, 2);
    CHECK_INT(cfg->nsites, 2);
    CHECK_INT(cfg->nservers, 3);
    CHECK_INT(cfg->nschedules, 2);
    s = ds_config_server(cfg, "paris-1");
    CHECK(s != NULL && strncmp(s->url, "ssh://", 6) == 0);
    CHECK(s != NULL && s->prune == 0 && s->classes.n == 2 && s->site_line > s->line);
    CHECK(s != NULL && s->timeout_s == 300);
    CHECK_INT(cfg->timeout_s, 120);
    s = ds_config_server(cfg, "paris-local");
    CHECK(s != NULL && s->prune == 1 && s->classes.n == 3); /* default: the console's */
    CHECK(s != NULL && s->max_delete == 200 && !s->max_delete_pct);
    CHECK(cfg->max_delete == 10 && cfg->max_delete_pct);
    CHECK(s != NULL && s->timeout_s == 120);
    s = ds_config_server(cfg, "lyon-1");
    CHECK(s != NULL && strncmp(s->url, "smb://", 6) == 0 && strcmp(s->site, "lyon") == 0);
    d = ds_config_schedule(cfg, "patch-tuesday");
    CHECK(d != NULL);
    if (d != NULL) {
        CHECK_STR(d->when, "monthly second tuesday +4 days 02:00");
        CHECK_STR(d->tz, "Europe/Paris");
        CHECK_STR(d->window, "4h");
        CHECK(d->when_line == d->line + 1 && d->tz_line == d->line + 2);
        CHECK_INT(d->sites.n, 2);
        CHECK_INT(d->servers.n, 0);
    }
    d = ds_config_schedule(cfg, "nightly-definitions");
    CHECK(d != NULL && d->tz == NULL && d->window == NULL && d->servers.n == 2);
    ds_config_free(cfg);
}

static void test_missing_file(void)
{
    char err[512] = "";
    ds_config_t *cfg = (ds_config_t *)&err;

    CHECK_INT(ds_config_load("/nonexistent/x.conf", &cfg, err, sizeof(err)), -ENOENT);
    CHECK(cfg == NULL);
    CHECK_STR(err, "cannot read config /nonexistent/x.conf: No such file or directory");
}

static void test_defaults_and_syntax(void)
{
    ds_config_t *cfg;

    /* BOM, CRLF, indentation, inline comments, name: value. */
    cfg = parse_ok("\xEF\xBB\xBF[console]\r\n  store = /a ; comment\r\n\tstate: /b\r\n", "/x");
    if (cfg != NULL) {
        CHECK_STR(cfg->store, "/a");
        CHECK_STR(cfg->state, "/b");
        CHECK_INT(cfg->classes.n, 3);
        CHECK_STR(cfg->classes.v[0], "patches");
        CHECK_STR(cfg->classes.v[2], "definitions");
        CHECK_INT(cfg->chunk.avg_size, DS_CHUNK_AVG_DEFAULT);
        CHECK(cfg->scan_threads >= 1);
        CHECK_STR(cfg->path, "t.conf");
    }
    ds_config_free(cfg);
}

static void test_relative_paths(void)
{
    char dir[4096], path[4200], want[4300], err[512] = "", cwd[4096];
    ds_config_t *cfg;
    FILE *f;

    cfg = parse_ok("[console]\nstore = store\nstate = ./a//b/./c/\n", "/etc/ds");
    if (cfg != NULL) {
        CHECK_STR(cfg->store, "/etc/ds/store");
        CHECK_STR(cfg->state, "/etc/ds/a/b/c");
    }
    ds_config_free(cfg);
    cfg = parse_ok("[console]\nstore = data\nstate = /abs/st\n", NULL);
    if (cfg != NULL && getcwd(cwd, sizeof(cwd)) != NULL) {
        snprintf(want, sizeof(want), "%s/data", strcmp(cwd, "/") ? cwd : "");
        CHECK_STR(cfg->store, want);
        CHECK_STR(cfg->state, "/abs/st");
    }
    ds_config_free(cfg);

    /* ds_config_load: relative to the file's directory. */
    snprintf(dir, sizeof(dir), "%s/test_config.XXXXXX",
             getenv("DS_TEST_TMP") ? getenv("DS_TEST_TMP") : "/tmp");
    mkdir(getenv("DS_TEST_TMP") ? getenv("DS_TEST_TMP") : "/tmp", 0755);
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/d.conf", dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    fputs("[console]\nstore = content\nstate = ../st\n", f);
    fclose(f);
    cfg = NULL;
    CHECK_INT(ds_config_load(path, &cfg, err, sizeof(err)), 0);
    snprintf(want, sizeof(want), "%s/content", dir);
    CHECK(cfg != NULL && strcmp(cfg->store, want) == 0);
    snprintf(want, sizeof(want), "%s/../st", dir);
    CHECK(cfg != NULL && strcmp(cfg->state, want) == 0);
    ds_config_free(cfg);
    unlink(path);
    rmdir(dir);
}

static void test_lists(void)
{
    ds_config_t *cfg = parse_ok("[console]\nstore=/s\nstate=/t\nclasses = a,b  c , d,,e\n"
                                "[server x]\nurl = file:///x\nclasses = e a\n",
                                "/");

    if (cfg == NULL)
        return;
    CHECK_INT(cfg->classes.n, 5);
    CHECK_STR(cfg->classes.v[0], "a");
    CHECK_STR(cfg->classes.v[1], "b");
    CHECK_STR(cfg->classes.v[2], "c");
    CHECK_STR(cfg->classes.v[3], "d");
    CHECK_STR(cfg->classes.v[4], "e");
    CHECK(ds_config_list_has(&cfg->classes, "c"));
    CHECK(!ds_config_list_has(&cfg->classes, "f"));
    CHECK(!ds_config_list_has(NULL, "a"));
    CHECK_INT(cfg->servers[0].classes.n, 2);
    CHECK_STR(cfg->servers[0].classes.v[0], "e");
    ds_config_free(cfg);
    EXPECT_ERR(CONSOLE "classes = a b a\n",
               "t.conf:4: [console] key 'classes': duplicate entry 'a'");
    EXPECT_ERR(CONSOLE "classes = a b/c\n",
               "t.conf:4: [console] key 'classes': invalid name 'b/c'");
    EXPECT_ERR(CONSOLE "classes = , ,\n", "t.conf:4: [console] key 'classes': empty list");
    EXPECT_ERR(CONSOLE "classes = a ..\n", "t.conf:4: [console] key 'classes': invalid name '..'");
}

static void test_lookups(void)
{
    ds_config_t *cfg = parse_ok(CONSOLE "[site s1]\n[server a]\nurl = file:///a\nsite = s1\n"
                                        "[schedule n]\nwhen = daily 02:00\nservers = a\n",
                                "/");

    if (cfg == NULL)
        return;
    CHECK(ds_config_site(cfg, "s1") != NULL && ds_config_site(cfg, "s1")->line == 4);
    CHECK(ds_config_site(cfg, "s2") == NULL);
    CHECK(ds_config_server(cfg, "a") != NULL && ds_config_server(cfg, "a")->url_line == 6);
    CHECK(ds_config_server(cfg, "s1") == NULL);
    CHECK(ds_config_schedule(cfg, "n") != NULL && ds_config_schedule(cfg, "n")->line == 8);
    CHECK(ds_config_schedule(cfg, "a") == NULL);
    CHECK(ds_config_server(NULL, "a") == NULL);
    ds_config_free(cfg);
}

static void test_structure_errors(void)
{
    EXPECT_ERR("", "t.conf: missing section [console]");
    EXPECT_ERR("[console]\nstate = x\n", "t.conf:1: [console]: missing required key 'store'");
    EXPECT_ERR("[console]\nstore = x\n", "t.conf:1: [console]: missing required key 'state'");
    EXPECT_ERR(CONSOLE "[foo]\n", "t.conf:4: [foo]: unknown section type 'foo' (use");
    EXPECT_ERR(CONSOLE "\n[]\n", "t.conf:5: []: unknown section type '' (use");
    EXPECT_ERR(CONSOLE "[console]\n", "t.conf:4: [console]: duplicate section (first at line 1)");
    EXPECT_ERR(CONSOLE "[site a]\n\n[site a]\n", "t.conf:6: [site a]: duplicate section (first");
    EXPECT_ERR(CONSOLE "[server]\n", "t.conf:4: [server]: missing name");
    EXPECT_ERR(CONSOLE "[server a b]\n", "t.conf:4: [server a b]: expected [server NAME]");
    EXPECT_ERR(CONSOLE "[server a/b]\n", "t.conf:4: [server a/b]: invalid name");
    /* found by the red team: [server -rf] was accepted, and then `distsync
     * trust -rf` took the name for options */
    EXPECT_ERR(CONSOLE "[server -rf]\n", "t.conf:4: [server -rf]: invalid name (use at most");
    EXPECT_ERR(CONSOLE "[site -x]\n", "t.conf:4: [site -x]: invalid name");
    EXPECT_ERR(CONSOLE "classes = a -b\n", "t.conf:4: [console] key 'classes': invalid name '-b'");
    EXPECT_ERR(CONSOLE "[console x]\n", "t.conf:4: [console]: takes no name");
    EXPECT_ERR("k = v\n" CONSOLE, "t.conf:1: key 'k': outside any section");
    EXPECT_ERR(CONSOLE "colour = red\n", "t.conf:4: [console] key 'colour': unknown key");
    EXPECT_ERR(CONSOLE "store = y\n", "t.conf:4: [console] key 'store': duplicate key (first at "
                                      "line 2)");
    EXPECT_ERR(CONSOLE "[site a]\nbwlimit = 1Mbit\n", "t.conf:5: [site a] key 'bwlimit': unknown "
                                                      "key (the cap is 'bandwidth =')");
    EXPECT_ERR(CONSOLE "[site a]\nfoo = 1\n", "t.conf:5: [site a] key 'foo': unknown key");
    /* Line numbers stay exact across the synthetic section lines. */
    EXPECT_ERR(CONSOLE "[site a]\n[site b]\n\n# c\n[site c]\noops\n",
               "t.conf:9: syntax error (expected '[section]' or 'key = value')");
    EXPECT_ERR(CONSOLE "[site a\n", "t.conf:4: syntax error");
    EXPECT_ERR(CONSOLE "[site a]\n[site b\n", "t.conf:5: syntax error");
    EXPECT_ERR(CONSOLE "  indented continuation\n", "t.conf:4: syntax error");
}

static void test_long_line(void)
{
    char text[600];

    snprintf(text, sizeof(text), CONSOLE "# %0300d\n", 7);
    EXPECT_ERR(text, "t.conf:4: line too long");
    snprintf(text, sizeof(text), CONSOLE "bad line\n# %0300d\n", 7);
    EXPECT_ERR(text, "t.conf:4: syntax error");
}

static void test_values(void)
{
    EXPECT_ERR("[console]\nstore =\nstate = x\n", "t.conf:2: [console] key 'store': empty value");
    EXPECT_ERR(CONSOLE "chunk_avg = 48KiB\n", "t.conf:4: [console] key 'chunk_avg': 49152 is not "
                                              "a power of two");
    EXPECT_ERR(CONSOLE "chunk_min = 32\n", "t.conf:4: [console] key 'chunk_min': must be at least "
                                           "64 B");
    EXPECT_ERR(CONSOLE "chunk_max = 128MiB\n", "t.conf:4: [console] key 'chunk_max': must be at "
                                               "most 64MiB");
    EXPECT_ERR(CONSOLE "chunk_avg = 64KiB\nchunk_min = 128KiB\n",
               "t.conf:5: [console] key 'chunk_min': chunk_min (131072) exceeds chunk_avg");
    EXPECT_ERR(CONSOLE "chunk_max = 32KiB\n",
               "t.conf:4: [console] key 'chunk_max': chunk_avg (65536) exceeds chunk_max");
    EXPECT_ERR(CONSOLE "chunk_min = 16KB\n", "t.conf:4: [console] key 'chunk_min': unknown unit "
                                             "'KB'");
    EXPECT_ERR(CONSOLE "chunk_min = lots\n", "t.conf:4: [console] key 'chunk_min': expected a "
                                             "size");
    EXPECT_ERR(CONSOLE "chunk_max = 99999999999GiB\n", "t.conf:4: [console] key 'chunk_max': size");
    EXPECT_ERR(CONSOLE "scan_threads = 0\n", "t.conf:4: [console] key 'scan_threads': expected");
    EXPECT_ERR(CONSOLE "scan_threads = 4x\n", "t.conf:4: [console] key 'scan_threads': expected");

    ds_config_t *cfg =
        parse_ok(CONSOLE "chunk_min = 64\nchunk_avg = 1 MiB\nchunk_max=64mib\n", "/");
    CHECK(cfg != NULL && cfg->chunk.min_size == 64 && cfg->chunk.avg_size == (1u << 20) &&
          cfg->chunk.max_size == (64u << 20));
    ds_config_free(cfg);
}

#define SRV "[server paris-1]\n" /* line 4 */

/* timeout = in [console] (the default) and [server]: a duration, 1s..24h. */
static void test_timeout(void)
{
    static const char *bad[] = {"0", "0s", "25h", "86401", "abc", "5x", "-1", "2 m", "1d", ""};
    ds_config_t *cfg;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[256];

        snprintf(text, sizeof(text), CONSOLE "timeout = %s\n", bad[i]);
        EXPECT_ERR(text, "t.conf:4: [console] key 'timeout': ");
    }
    EXPECT_ERR(CONSOLE "[server a]\nurl = file:///t\ntimeout = 0\n",
               "t.conf:6: [server a] key 'timeout': expected a duration from 1s to 24h");
    cfg = parse_ok(CONSOLE "[server a]\nurl = file:///a\n[server b]\nurl = file:///b\n"
                           "timeout = 5m\n[server c]\nurl = file:///c\ntimeout = 7\n",
                   "/");
    CHECK(cfg != NULL && cfg->timeout_s == DS_CONFIG_TIMEOUT_DEFAULT);
    CHECK(cfg != NULL && cfg->servers[0].timeout_s == 120 && cfg->servers[1].timeout_s == 300 &&
          cfg->servers[2].timeout_s == 7);
    ds_config_free(cfg);
    /* a [console] default declared after the servers still applies */
    cfg =
        parse_ok("[server a]\nurl = file:///a\n[server b]\nurl = file:///b\ntimeout = 1h\n" CONSOLE
                 "timeout = 24h\n",
                 "/");
    CHECK(cfg != NULL && cfg->timeout_s == 86400 && cfg->servers[0].timeout_s == 86400 &&
          cfg->servers[1].timeout_s == 3600);
    ds_config_free(cfg);
}

/* retries = 0..100 and retry_backoff = a duration, in [console] (the
 * servers' defaults, even when declared after them) or [server NAME]. */
static void test_retries(void)
{
    ds_config_t *cfg;

    EXPECT_ERR(CONSOLE "retries = 101\n",
               "t.conf:4: [console] key 'retries': expected a number from 0 to 100, got '101'");
    EXPECT_ERR(CONSOLE "[server a]\nurl = file:///t\nretries = -1\n",
               "t.conf:6: [server a] key 'retries': expected a number from 0 to 100");
    EXPECT_ERR(CONSOLE "[server a]\nurl = file:///t\nretry_backoff = 0\n",
               "t.conf:6: [server a] key 'retry_backoff': expected a duration from 1s to 24h");
    cfg = parse_ok(CONSOLE "[server a]\nurl = file:///a\n[server b]\nurl = file:///b\n", "/");
    CHECK(cfg != NULL && cfg->servers[0].retries == DS_CONFIG_RETRIES_DEFAULT &&
          cfg->servers[0].retry_backoff_s == 1);
    ds_config_free(cfg);
    cfg = parse_ok("[server a]\nurl = file:///a\nretries = 0\n[server b]\nurl = file:///b\n"
                   "retry_backoff = 5s\n" CONSOLE "retries = 7\nretry_backoff = 2m\n",
                   "/");
    CHECK(cfg != NULL && cfg->servers[0].retries == 0 && cfg->servers[0].retry_backoff_s == 120);
    CHECK(cfg != NULL && cfg->servers[1].retries == 7 && cfg->servers[1].retry_backoff_s == 5);
    ds_config_free(cfg);
}

/* delta_level = in [console]: a zstd level 1..22; 0 (absent) is the default. */
static void test_delta_level(void)
{
    static const char *bad[] = {"0", "23", "-3", "abc", "19x", ""};
    ds_config_t *cfg;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[256];

        snprintf(text, sizeof(text), CONSOLE "delta_level = %s\n", bad[i]);
        EXPECT_ERR(text,
                   "t.conf:4: [console] key 'delta_level': expected a zstd level from 1 to 22");
    }
    cfg = parse_ok(CONSOLE "delta_level = 3\n", "/");
    CHECK(cfg != NULL && cfg->delta_level == 3);
    ds_config_free(cfg);
    cfg = parse_ok(CONSOLE, "/");
    CHECK(cfg != NULL && cfg->delta_level == 0 && cfg->sync_delta_level == 0);
    ds_config_free(cfg);
    EXPECT_ERR(CONSOLE "sync_delta_level = 23\n",
               "t.conf:4: [console] key 'sync_delta_level': expected a zstd level from 1 to 22");
    cfg = parse_ok(CONSOLE "sync_delta_level = 9\n", "/");
    CHECK(cfg != NULL && cfg->sync_delta_level == 9 && cfg->delta_level == 0);
    ds_config_free(cfg);
}

/* max_servers on [console] and [site], max_files on [server]: counts,
 * 0 when absent (the engine's defaults apply). */
static void test_concurrency(void)
{
    static const char *bad[] = {"0", "1025", "-1", "x", "4 servers", ""};
    ds_config_t *cfg;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512];

        snprintf(text, sizeof(text), CONSOLE "max_servers = %s\n", bad[i]);
        EXPECT_ERR(text, "t.conf:4: [console] key 'max_servers': expected a number from 1 to 1024");
        snprintf(text, sizeof(text), CONSOLE "[site s]\nmax_servers = %s\n", bad[i]);
        EXPECT_ERR(text, "t.conf:5: [site s] key 'max_servers': expected a number from 1 to 1024");
    }
    EXPECT_ERR(CONSOLE "[server a]\nurl = file:///t/a\nmax_files = 4097\n",
               "t.conf:6: [server a] key 'max_files': expected a number from 1 to 4096");
    cfg = parse_ok(CONSOLE "max_servers = 20\n[site s]\nmax_servers = 2\n"
                           "[server a]\nurl = file:///t/a\nsite = s\nmax_files = 8\n"
                           "[server b]\nurl = file:///t/b\n",
                   "/");
    CHECK(cfg != NULL && cfg->max_servers == 20 && cfg->sites[0].max_servers == 2);
    CHECK(cfg != NULL && cfg->servers[0].max_files == 8 && cfg->servers[1].max_files == 0);
    ds_config_free(cfg);
    cfg = parse_ok(CONSOLE, "/");
    CHECK(cfg != NULL && cfg->max_servers == 0);
    ds_config_free(cfg);
}

static void test_urls(void)
{
    static const char *good[] = {
        "file:///srv/dist",   "ssh://h/p",       "ssh://u.x-y@host.example:22/srv/d",
        "ssh://[::1]:2222/x", "smb://fs1/share", "smb://fs1:445/share/dir/sub",
    };
    char text[512], err[512];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ds_config_t *cfg = NULL;

        snprintf(text, sizeof(text), CONSOLE SRV "url = %s\n", good[i]);
        CHECK_INT(ds_config_parse(text, "t.conf", "/", &cfg, err, sizeof(err)), 0);
        CHECK(cfg != NULL && strcmp(cfg->servers[0].url, good[i]) == 0);
        ds_config_free(cfg);
    }
    EXPECT_ERR(CONSOLE SRV "\nurl = ftp://h/x\n", "t.conf:6: [server paris-1] key 'url': "
                                                  "unsupported scheme 'ftp' (use file://, ssh:// "
                                                  "or smb://)");
    EXPECT_ERR(CONSOLE SRV "url = /srv/x\n", "t.conf:5: [server paris-1] key 'url': not a URL");
    EXPECT_ERR(CONSOLE SRV "url = file://host/x\n", "t.conf:5: [server paris-1] key 'url': "
                                                    "file:// URLs take no host");
    EXPECT_ERR(CONSOLE SRV "url = file:///\n", "t.conf:5: [server paris-1] key 'url': missing "
                                               "path");
    EXPECT_ERR(CONSOLE SRV "url = ssh://host\n", "t.conf:5: [server paris-1] key 'url': missing "
                                                 "path");
    EXPECT_ERR(CONSOLE SRV "url = ssh://h:70000/x\n", "t.conf:5: [server paris-1] key 'url': "
                                                      "invalid port");
    EXPECT_ERR(CONSOLE SRV "url = ssh://h:/x\n", "t.conf:5: [server paris-1] key 'url': invalid "
                                                 "port");
    EXPECT_ERR(CONSOLE SRV "url = ssh://h a/x\n", "t.conf:5: [server paris-1] key 'url': invalid "
                                                  "host");
    EXPECT_ERR(CONSOLE SRV "url = ssh://h/a/../b\n", "t.conf:5: [server paris-1] key 'url': the "
                                                     "path must not contain '..'");
    EXPECT_ERR(CONSOLE SRV "url = smb://u@fs/share\n", "t.conf:5: [server paris-1] key 'url': "
                                                       "smb:// URLs take no user name");
    EXPECT_ERR(CONSOLE SRV "url = smb://fs/\n", "t.conf:5: [server paris-1] key 'url': missing "
                                                "share");
    EXPECT_ERR(CONSOLE SRV "site = x\n", "t.conf:4: [server paris-1]: missing required key 'url'");
}

static void test_password_never_echoed(void)
{
    static const char *bad[] = {
        "ssh://alice:Hunter2pw@h/x",
        "smb://alice:Hunter2pw@fs/share",
        "ftp://alice:Hunter2pw@h/x",
        "ssh://alice:Hunter2pw@h",
    };
    /* what to use instead, per scheme */
    static const char *instead[] = {"identity = KEYFILE or ssh-agent", "credentials = FILE",
                                    "no URL takes one", "identity = KEYFILE or ssh-agent"};
    char text[512], err[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ds_config_t *cfg = NULL;

        snprintf(text, sizeof(text), CONSOLE SRV "url = %s\n", bad[i]);
        CHECK_INT(ds_config_parse(text, "t.conf", "/", &cfg, err, sizeof(err)), DS_ECONFIG);
        CHECK(strncmp(err, "t.conf:5: [server paris-1] key 'url': passwords are not allowed", 63) ==
              0);
        CHECK(strstr(err, "Hunter2pw") == NULL);
        CHECK(strstr(err, "alice") == NULL);
        CHECK(strstr(err, instead[i]) != NULL);
    }
}

static void test_server_refs(void)
{
    ds_config_t *cfg;

    /* A site may be defined after the servers that name it. */
    cfg = parse_ok(CONSOLE SRV "url = file:///x\nsite = late\n[site late]\n", "/");
    CHECK(cfg != NULL && strcmp(cfg->servers[0].site, "late") == 0);
    ds_config_free(cfg);
    EXPECT_ERR(CONSOLE SRV "url = file:///x\n\nsite = nowhere\n",
               "t.conf:7: [server paris-1] key 'site': unknown site 'nowhere'");
    EXPECT_ERR(CONSOLE SRV "url = file:///x\nsite = a b\n", "t.conf:6: [server paris-1] key "
                                                            "'site': invalid site name");
    EXPECT_ERR(CONSOLE SRV "url = file:///x\nclasses = patches music\n",
               "t.conf:6: [server paris-1] key 'classes': unknown class 'music' (not in "
               "[console] classes)");
    EXPECT_ERR(CONSOLE SRV "url = file:///x\nprune = maybe\n",
               "t.conf:6: [server paris-1] key 'prune': expected yes or no");
    cfg = parse_ok(CONSOLE SRV "url = file:///x\nprune = TRUE\n", "/");
    CHECK(cfg != NULL && cfg->servers[0].prune == 1);
    ds_config_free(cfg);
}

#define SCHED CONSOLE "[site s]\n[server a]\nurl = file:///a\n[schedule n]\n" /* n: line 7 */

static void test_schedules(void)
{
    EXPECT_ERR(SCHED "servers = a\n", "t.conf:7: [schedule n]: missing required key 'when'");
    EXPECT_ERR(SCHED "when = daily 02:00\n",
               "t.conf:7: [schedule n]: missing required key 'servers' or 'sites'");
    EXPECT_ERR(SCHED "when = daily 02:00\nsites = s\nservers = a\n",
               "t.conf:10: [schedule n] key 'servers': use exactly one of 'servers' or 'sites'");
    EXPECT_ERR(SCHED "when = daily 02:00\nservers = a, b\n",
               "t.conf:9: [schedule n] key 'servers': unknown server 'b'");
    EXPECT_ERR(SCHED "when = daily 02:00\nsites = a\n",
               "t.conf:9: [schedule n] key 'sites': unknown site 'a'");
    EXPECT_ERR(SCHED "when = daily 02:00\nsites = s\nclasses = movies\n",
               "t.conf:10: [schedule n] key 'classes': unknown class");
    EXPECT_ERR(SCHED "when =\n", "t.conf:8: [schedule n] key 'when': empty value");
    EXPECT_ERR(SCHED "when = x\nwhen = y\n", "t.conf:9: [schedule n] key 'when': duplicate key");
    EXPECT_ERR(SCHED "every = day\n", "t.conf:8: [schedule n] key 'every': unknown key");

    EXPECT_ERR(SCHED "when = anything goes\nsites = s\n",
               "t.conf:8: [schedule n] key 'when': word 'anything' is not a rule");
    EXPECT_ERR(SCHED "when = monthly second tuesday +40 days 02:00\nsites = s\n",
               "t.conf:8: [schedule n] key 'when': delay +40 days is out of range 0..31");
    EXPECT_ERR(SCHED "when = daily 02:00\nwindow = 4x\nsites = s\n",
               "t.conf:9: [schedule n] key 'window'");
    EXPECT_ERR(SCHED "when = daily 02:00\ntz = Europe/Pariss\nsites = s\n",
               "t.conf:9: [schedule n] key 'tz': unknown time zone 'Europe/Pariss'");

    ds_config_t *cfg = parse_ok(SCHED "when = daily 02:00\nwindow = 4h\nsites = s\n", "/");
    const ds_schedule_cfg_t *d = ds_config_schedule(cfg, "n");
    CHECK(d != NULL && d->when_line == 8 && d->window_line == 9 && d->sites_line == 10);
    CHECK(d != NULL && d->tz == NULL && d->tz_line == 0 && d->classes.n == 0);
    ds_config_free(cfg);
}

static void test_max_delete(void)
{
    ds_config_t *cfg;
    const ds_server_cfg_t *a, *b, *c;

    /* default 10%; a [console] default; a server's own count or percentage */
    cfg = parse_ok(CONSOLE "[server a]\nurl = file:///a\n", "/");
    a = cfg ? ds_config_server(cfg, "a") : NULL;
    CHECK(cfg && cfg->max_delete == 10 && cfg->max_delete_pct == 1);
    CHECK(a && a->max_delete == 10 && a->max_delete_pct == 1 && a->max_delete_line == 0);
    ds_config_free(cfg);
    cfg = parse_ok("[server a]\nurl = file:///a\n"
                   "[server b]\nurl = file:///b\nmax_delete = 50\n"
                   "[server c]\nurl = file:///c\nmax_delete = 0%\n" CONSOLE "max_delete = 25%\n",
                   "/");
    a = cfg ? ds_config_server(cfg, "a") : NULL;
    b = cfg ? ds_config_server(cfg, "b") : NULL;
    c = cfg ? ds_config_server(cfg, "c") : NULL;
    CHECK(a && a->max_delete == 25 && a->max_delete_pct == 1); /* console default, set later */
    CHECK(b && b->max_delete == 50 && b->max_delete_pct == 0 && b->max_delete_line == 5);
    CHECK(c && c->max_delete == 0 && c->max_delete_pct == 1);
    ds_config_free(cfg);
    cfg = parse_ok(CONSOLE "max_delete = 0\n[server a]\nurl = file:///a\nmax_delete = 100%\n", "/");
    a = cfg ? ds_config_server(cfg, "a") : NULL;
    CHECK(cfg && cfg->max_delete == 0 && cfg->max_delete_pct == 0);
    CHECK(a && a->max_delete == 100 && a->max_delete_pct == 1);
    ds_config_free(cfg);

    EXPECT_ERR(CONSOLE "max_delete = 101%\n", "t.conf:4: [console] key 'max_delete': expected a "
                                              "number of files (0 to 1000000000) or a percentage");
    EXPECT_ERR(CONSOLE "[server a]\nurl = file:///a\nmax_delete = -1\n",
               "t.conf:6: [server a] key 'max_delete': expected a number of files");
    EXPECT_ERR(CONSOLE "[server a]\nurl = file:///a\nmax_delete = ten\n",
               "t.conf:6: [server a] key 'max_delete': expected");
    EXPECT_ERR(CONSOLE "[server a]\nmax_delete = 10%%\nurl = file:///a\n",
               "t.conf:5: [server a] key 'max_delete': expected");
    EXPECT_ERR(CONSOLE "[server a]\nmax_delete = 5 files\nurl = file:///a\n",
               "t.conf:5: [server a] key 'max_delete': expected");
    EXPECT_ERR(CONSOLE "[server a]\nmax_delete = %\nurl = file:///a\n",
               "t.conf:5: [server a] key 'max_delete': expected");
    EXPECT_ERR(CONSOLE "[server a]\nmax_delete = 1000000001\nurl = file:///a\n",
               "t.conf:5: [server a] key 'max_delete': expected");
    EXPECT_ERR(CONSOLE "[server a]\nmax_delete = 99999999999999999999999\nurl = file:///a\n",
               "t.conf:5: [server a] key 'max_delete': expected");
    EXPECT_ERR(CONSOLE "[server a]\nmax_delete =\nurl = file:///a\n",
               "t.conf:5: [server a] key 'max_delete': ");
    EXPECT_ERR(CONSOLE "[server a]\nurl = file:///a\nmax_delete = 5\nmax_delete = 6\n",
               "t.conf:7: [server a] key 'max_delete': duplicate key (first at line 6)");
}

static void test_no_err_buffer(void)
{
    ds_config_t *cfg = (ds_config_t *)1;

    CHECK_INT(ds_config_parse("[x]\n", NULL, NULL, &cfg, NULL, 0), DS_ECONFIG);
    CHECK(cfg == NULL);
    ds_config_free(NULL);
}

/* bandwidth = on [console], [site] and [server]; tz = on [site]. */
static void test_bandwidth(void)
{
    ds_config_t *cfg = parse_ok(CONSOLE "bandwidth = 1Gbit\n[site lyon]\ntz = Europe/Paris\n"
                                        "bandwidth = 20Mbit; Mon-Fri 08:00-18:00 512kbit\n"
                                        "[site b]\n[server a]\nurl = file:///a\nsite = lyon\n"
                                        "bandwidth = 2MB\n[server c]\nurl = file:///c\n",
                                "/");

    CHECK(cfg != NULL);
    if (cfg == NULL)
        return;
    CHECK(cfg->bandwidth.table.dflt == 1000000000 && cfg->bandwidth.line == 4);
    CHECK_STR(cfg->sites[0].tz, "Europe/Paris");
    CHECK(cfg->sites[0].bandwidth.table.dflt == 20000000 && cfg->sites[0].bandwidth.table.n == 1);
    CHECK_INT(cfg->sites[0].bandwidth.line, 7);
    CHECK(cfg->sites[1].bandwidth.text == NULL && cfg->sites[1].bandwidth.table.dflt == DS_BW_OFF);
    CHECK(cfg->servers[0].bandwidth.table.dflt == 16000000);
    CHECK(cfg->servers[1].bandwidth.table.dflt == DS_BW_OFF &&
          cfg->servers[1].bandwidth.table.n == 0);
    ds_config_free(cfg);
    cfg = parse_ok(CONSOLE, "/");
    CHECK(cfg != NULL && cfg->bandwidth.text == NULL && cfg->bandwidth.table.dflt == DS_BW_OFF);
    ds_config_free(cfg);
    EXPECT_ERR(CONSOLE "bandwidth = 20\n", "t.conf:4: [console] key 'bandwidth': rate '20' has no "
                                           "unit");
    EXPECT_ERR(CONSOLE "[site a]\nbandwidth = 1Mbit; Mon 08:00-18:00 0; Mon 17:00-19:00 off\n",
               "t.conf:5: [site a] key 'bandwidth': window 'Mon 08:00-18:00 0' overlaps window "
               "'Mon 17:00-19:00 off' (both cover Mon 17:00-18:00)");
    EXPECT_ERR(CONSOLE "[server a]\nurl = file:///a\nbandwidth = 5 Mbit\n",
               "t.conf:6: [server a] key 'bandwidth': write the rate without a space ('5Mbit')");
    EXPECT_ERR(CONSOLE "[site a]\nbandwidth = off\nbandwidth = 0\n",
               "t.conf:6: [site a] key 'bandwidth': duplicate key (first at line 5)");
    EXPECT_ERR(CONSOLE "[site a]\n\ntz = Mars/Base\n",
               "t.conf:6: [site a] key 'tz': unknown time zone 'Mars/Base'");
}

int main(void)
{
    RUN(test_example_loads);
    RUN(test_missing_file);
    RUN(test_defaults_and_syntax);
    RUN(test_relative_paths);
    RUN(test_lists);
    RUN(test_lookups);
    RUN(test_structure_errors);
    RUN(test_long_line);
    RUN(test_values);
    RUN(test_timeout);
    RUN(test_retries);
    RUN(test_delta_level);
    RUN(test_concurrency);
    RUN(test_urls);
    RUN(test_password_never_echoed);
    RUN(test_server_refs);
    RUN(test_schedules);
    RUN(test_max_delete);
    RUN(test_no_err_buffer);
    RUN(test_bandwidth);
    return CHECK_DONE();
}

/*
 * distsync daemon [--no-scan]: runs the configured schedules until SIGTERM
 * or SIGINT (the library's daemon layer, daemon.h); SIGHUP reloads the
 * configuration. Logs to stderr, one line per event, each naming the run
 * (SCHEDULE@FIRE) and the server; under systemd (JOURNAL_STREAM set) each
 * line starts with the journal's "<N>" priority prefix.
 */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "distsync/daemon.h"
#include "distsync/escape.h"
#include "sync_cli.h"

static ds_daemon_t *volatile the_daemon;

static void on_stop(int sig)
{
    static volatile sig_atomic_t seen;

    if (seen++)
        _exit(128 + sig); /* a second signal: at once */
    if (the_daemon != NULL)
        ds_daemon_stop(the_daemon);
}

static void on_hup(int sig)
{
    (void)sig;
    if (the_daemon != NULL)
        ds_daemon_reload(the_daemon);
}

static void signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_hup;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* The daemon's log sink: the CLI's line ("distsync: info: ..."), or under
 * systemd the journal's priority prefix (sd-daemon(3): <3> error, <4>
 * warning, <6> info, <7> debug); then the logging thread's run and server
 * (log.h: "run=NAME@FIRE server=S: "), so every line of a run names it,
 * the library's too. */
static int journal; /* JOURNAL_STREAM is set: systemd reads our stderr */

/* When p starts with word, then name, then ": " (or " " when space is
 * set: "run ID server S: ..."), the length of that repeat; else 0. */
static size_t repeat_len(const char *p, const char *word, const char *name, int space)
{
    size_t w = strlen(word), n = name ? strlen(name) : 0;

    if (n == 0 || strncmp(p, word, w) != 0 || strncmp(p + w, name, n) != 0)
        return 0;
    p += w + n;
    return p[0] == ':' && p[1] == ' ' ? w + n + 2 : space && p[0] == ' ' ? w + n + 1 : 0;
}

/* msg into out without what the line's prefix says already: a leading
 * "run ID: " (the daemon's lines name their run in words, for where no
 * context is set), a leading "server S: ", and an error string's
 * ": server S: " breadcrumb inside, so each line names its run and server
 * once. */
static void drop_repeats(const char *msg, const char *run, const char *srv, char *out, size_t len)
{
    const char *p = msg;
    size_t o = 0, k;

    p += repeat_len(p, "run ", run, 1);
    p += repeat_len(p, "server ", srv, 0);
    while (*p != '\0' && o + 1 < len) {
        if (p[0] == ':' && p[1] == ' ' && (k = repeat_len(p + 2, "server ", srv, 0)) > 0)
            p += k; /* ": server S: x" -> ": x" */
        else
            out[o++] = *p++;
    }
    out[o] = '\0';
}

static void log_daemon(void *ctx, ds_log_level_t level, const char *msg)
{
    static const int prio[] = {3, 4, 6, 7};
    static const char *names[] = {"error", "warning", "info", "debug"};
    const char *run = ds_log_context_get(), *srv = ds_log_server_get();
    struct cli *cli = ctx;
    char esc[4 * 2048 + 16], r[4 * 256 + 16], s[4 * 256 + 16], who[sizeof(r) + sizeof(s) + 16];
    char once[2048];

    if ((level == DS_LOG_DEBUG && !cli->verbose) || (level == DS_LOG_INFO && cli->quiet))
        return;
    drop_repeats(msg, strncmp(run, "run=", 4) == 0 ? run + 4 : NULL, srv, once, sizeof(once));
    ds_escape_name(once, strlen(once), esc, sizeof(esc));
    ds_escape_name(run, strlen(run), r, sizeof(r));
    ds_escape_name(srv ? srv : "", srv ? strlen(srv) : 0, s, sizeof(s));
    snprintf(who, sizeof(who), "%s%s%s%s%s", r, r[0] && s[0] ? " " : "", s[0] ? "server=" : "", s,
             r[0] || s[0] ? ": " : "");
    if (journal)
        fprintf(stderr, "<%d>%s%s\n", prio[level], who, esc);
    else
        fprintf(stderr, "distsync: %s: %s%s\n", names[level], who, esc);
}

/* See cli.h. */
void cli_log_daemon_set(struct cli *cli)
{
    journal = getenv("JOURNAL_STREAM") != NULL;
    ds_log_set(log_daemon, cli);
}

static int parse_args(int argc, char **argv, int *no_scan)
{
    static const struct option opts[] = {
        {"no-scan", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ch == 's')
            *no_scan = 1;
        else {
            fprintf(ch == 'h' ? stdout : stderr, "usage: distsync daemon [--no-scan]\n");
            return ch == 'h' ? -1 : CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_err("daemon: unexpected argument '%s'", cli_esc(argv[optind]));
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* The test clock, only in test builds (cmake -DDS_TEST_HOOKS=ON): a release
 * never reads these variables. */
static void test_clock(ds_daemon_opts_t *o)
{
#ifdef DS_TEST_HOOKS
    if (getenv("DISTSYNC_TEST_NOW") != NULL)
        o->test_now0 = strtoll(getenv("DISTSYNC_TEST_NOW"), NULL, 10);
    if (getenv("DISTSYNC_TEST_SPEED") != NULL)
        o->test_speed = strtod(getenv("DISTSYNC_TEST_SPEED"), NULL);
    if (getenv("DISTSYNC_TEST_SCAN_PAUSE_MS") != NULL) /* a long scan, whatever the disk */
        o->test_scan_pause_ms = (unsigned)atoi(getenv("DISTSYNC_TEST_SCAN_PAUSE_MS"));
#else
    (void)o;
#endif
}

int cmd_daemon(struct cli *cli, int argc, char **argv)
{
    ds_daemon_opts_t o = {0};
    ds_config_t *cfg = NULL;
    ds_sync_t *sy = NULL;
    ds_daemon_t *d = NULL;
    char err[1024];
    int rc = parse_args(argc, argv, &o.no_scan);

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    cli_log_daemon_set(cli);
    signals();
    rc = cli_config_load(cli, &cfg);
    if (rc == 0)
        rc = sync_cli_open(cfg, NULL, NULL, 0, NULL, &sy);
    if (rc != 0)
        goto out;
    cli_catalog_warn(ds_sync_catalog(sy), cfg->state);
    o.sync = sy;
    o.config_path = cfg->path;
    test_clock(&o);
    if (ds_daemon_new(&o, &d, err, sizeof(err)) < 0) {
        cli_err("daemon: %s", err);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    the_daemon = d;
    rc = ds_daemon_run(d) < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    the_daemon = NULL;
out:
    ds_daemon_free(d);
    ds_sync_close(sy);
    ds_config_free(cfg);
    return rc;
}

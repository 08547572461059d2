/*
 * distsync rollout list|status NAME|pause NAME|resume NAME|promote NAME:
 * the upgrade gate's rollouts (distsync/gate.h), read from and written to
 * the state database directly (the daemon reads the controls back). list
 * and status never write; pause, resume and promote commit their change.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "distsync/gate.h"
#include "distsync/json.h"

#define ROLLOUT_USAGE                                                                              \
    "usage: distsync rollout list [--json] | status NAME [--json] | pause NAME [--reason TEXT] "   \
    "| resume NAME | promote NAME\n"

struct rollout_args {
    const char *action, *name, *reason;
    int json;
};

static int parse_args(int argc, char **argv, struct rollout_args *a)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"reason", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ch == 'j')
            a->json = 1;
        else if (ch == 'r')
            a->reason = optarg;
        else {
            fputs(ROLLOUT_USAGE, ch == 'h' ? stdout : stderr);
            return ch == 'h' ? -1 : CLI_EXIT_USAGE;
        }
    }
    a->action = optind < argc ? argv[optind] : NULL;
    a->name = optind + 1 < argc ? argv[optind + 1] : NULL;
    if (a->action == NULL || optind + 2 + (strcmp(a->action, "list") != 0) <= argc ||
        (strcmp(a->action, "list") != 0 && a->name == NULL) ||
        (strcmp(a->action, "list") == 0 && a->name != NULL)) {
        fputs(ROLLOUT_USAGE, stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(a->action, "list") != 0 && strcmp(a->action, "status") != 0 &&
        strcmp(a->action, "pause") != 0 && strcmp(a->action, "resume") != 0 &&
        strcmp(a->action, "promote") != 0) {
        cli_err("rollout: unknown action '%s' (list, status, pause, resume, promote)", a->action);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* The gate over the state database, its servers' facts read from the
 * catalog (pre-staging, freezes). */
static int open_gate(const ds_config_t *cfg, ds_gate_t **g)
{
    char path[PATH_MAX], err[1024];
    ds_gate_state_t st;
    ds_catalog_t *cat = NULL;
    int64_t now = (int64_t)time(NULL);
    int rc = cli_catalog_path_made(cfg, path, sizeof(path));

    if (rc != 0)
        return rc;
    if (ds_gate_state_sqlite(path, &st, err, sizeof(err)) < 0 ||
        ds_gate_new(cfg, &st, now, g, err, sizeof(err)) < 0 ||
        ds_catalog_open(path, &cat, err, sizeof(err)) < 0) {
        cli_err("%s", err);
        return CLI_EXIT_FAIL;
    }
    rc = ds_gate_refresh(*g, cat, now);
    ds_catalog_free(cat);
    if (rc < 0) {
        cli_err("%s: reading the servers' packages: %s", cli_esc(path), ds_strerror(rc));
        return CLI_EXIT_FAIL;
    }
    return 0;
}

static void print_status(const ds_gate_t *g, const ds_config_t *cfg,
                         const ds_gate_rollout_status_t *st)
{
    const char *sep = " (not yet: ";

    printf("rollout %s: %s %s, %s%s%s\n", cli_esc(st->name), cli_esc(st->product),
           cli_esc(st->version), st->paused ? "paused: " : "active",
           st->paused ? cli_esc(st->reason) : "", "");
    printf("  staged on %u of %u servers", st->staged, st->servers);
    for (size_t i = 0; i < cfg->nservers; i++)
        if (ds_gate_staged(g, st->name, i) == 0) {
            printf("%s%s", sep, cli_esc(cfg->servers[i].name));
            sep = ", ";
        }
    printf("%s\n", sep[0] == ',' ? ")" : "");
    printf("  %-16s %8s %8s %8s %9s %7s %8s  %s\n", "ring", "members", "granted", "waiting",
           "succeeded", "failed", "expired", "state");
    for (size_t i = 0; i < st->nrings; i++) {
        const ds_gate_ring_status_t *r = &st->rings[i];

        printf("  %-16s %8u %8u %8u %9u %7u %8u  %s\n", cli_esc(r->name), r->members, r->granted,
               r->waiting, r->succeeded, r->failed, r->expired, r->open ? "open" : cli_esc(r->why));
    }
}

static int show(ds_gate_t *g, const ds_config_t *cfg, const struct rollout_args *a)
{
    ds_gate_rollout_status_t st;
    ds_json_t j;
    int64_t now = (int64_t)time(NULL);

    if (a->json)
        ds_json_init(&j, stdout);
    if (a->json && a->name == NULL)
        ds_json_arr_begin(&j);
    for (size_t i = 0; i < cfg->nrollouts; i++) {
        if (a->name != NULL && strcmp(a->name, cfg->rollouts[i].name) != 0)
            continue;
        if (ds_gate_status(g, cfg->rollouts[i].name, now, &st) < 0)
            continue;
        if (a->json)
            ds_gate_status_json(g, &st, &j);
        else if (a->name != NULL)
            print_status(g, cfg, &st);
        else
            printf("%-16s %-12s %-10s %-7s granted %u waiting %u succeeded %u failed %u "
                   "expired %u\n",
                   cli_esc(st.name), cli_esc(st.product), cli_esc(st.version),
                   st.paused ? "paused" : "active", st.granted, st.waiting, st.succeeded, st.failed,
                   st.expired);
    }
    if (a->json && a->name == NULL)
        ds_json_arr_end(&j);
    if (a->json)
        ds_json_end(&j);
    return CLI_EXIT_OK;
}

static int control(ds_gate_t *g, const struct rollout_args *a)
{
    int64_t now = (int64_t)time(NULL);
    char err[512] = "";
    int rc;

    if (strcmp(a->action, "pause") == 0)
        rc = ds_gate_pause(g, a->name, a->reason, now);
    else if (strcmp(a->action, "resume") == 0)
        rc = ds_gate_resume(g, a->name, now);
    else
        rc = ds_gate_promote(g, a->name, now, err, sizeof(err));
    if (rc == 0)
        rc = ds_gate_flush(g);
    if (rc < 0) {
        cli_err("rollout %s %s: %s", a->action, cli_esc(a->name), err[0] ? err : ds_strerror(rc));
        return rc == DS_EUSAGE ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    printf("rollout %s %s\n", cli_esc(a->name),
           strcmp(a->action, "pause") == 0    ? "paused"
           : strcmp(a->action, "resume") == 0 ? "resumed"
                                              : "promoted: the next ring is open");
    return CLI_EXIT_OK;
}

int cmd_rollout(struct cli *cli, int argc, char **argv)
{
    struct rollout_args a = {0};
    ds_config_t *cfg = NULL;
    ds_gate_t *g = NULL;
    int rc = parse_args(argc, argv, &a);

    if (rc == 0)
        rc = cli_config_load(cli, &cfg);
    if (rc == 0 && a.name != NULL && ds_config_rollout(cfg, a.name) == NULL) {
        cli_err("rollout: no [rollout %s] in %s", cli_esc(a.name), cli_esc(cfg->path));
        rc = CLI_EXIT_USAGE;
    }
    if (rc == 0)
        rc = open_gate(cfg, &g);
    if (rc == 0)
        rc = strcmp(a.action, "list") == 0 || strcmp(a.action, "status") == 0 ? show(g, cfg, &a)
                                                                              : control(g, &a);
    ds_gate_free(g);
    ds_config_free(cfg);
    return rc < 0 ? CLI_EXIT_OK : rc;
}

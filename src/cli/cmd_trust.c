/*
 * distsync trust SERVER [--yes]: records an ssh:// server's host key in its
 * known_hosts file. Connects (no login), shows the key's SHA256
 * fingerprint, asks on the terminal (/dev/tty), then appends the key.
 * Without a terminal it refuses unless --yes. A key that differs from the
 * recorded one is never replaced here: the old entry must be removed by
 * hand first (ssh-keygen -R), after checking why the key changed.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "distsync/error.h"
#include "distsync/transport.h"

#define TRUST_USAGE "usage: distsync trust SERVER [--yes]\n"

/* Asks on the terminal. Returns 1 for yes, 0 for no, -1 without a tty. */
static int ask(const char *server, const ds_ssh_hostkey_t *hk)
{
    char answer[16] = "";
    FILE *tty = fopen("/dev/tty", "r+e");
    int yes;

    if (tty == NULL)
        return -1;
    fprintf(tty, "Record this key for server %s in %s? [y/N] ", server, hk->known_hosts);
    fflush(tty);
    yes = fgets(answer, sizeof(answer), tty) != NULL &&
          (strcmp(answer, "y\n") == 0 || strcmp(answer, "yes\n") == 0);
    fclose(tty);
    return yes;
}

static int parse_args(int argc, char **argv, int *yes)
{
    static const struct option opts[] = {
        {"yes", no_argument, NULL, 'y'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "yh", opts, NULL)) != -1) {
        if (ch == 'y') {
            *yes = 1;
            continue;
        }
        fputs(TRUST_USAGE, ch == 'h' ? stdout : stderr);
        return ch == 'h' ? -1 : CLI_EXIT_USAGE;
    }
    if (argc - optind != 1) {
        fputs(TRUST_USAGE, stderr);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* Shows the key and records it when the user (or --yes) agrees. */
static int decide(const struct cli *cli, const ds_server_cfg_t *srv, ds_ssh_hostkey_t *hk, int yes)
{
    char err[600], msg[600];
    int answer;

    if (hk->state == 0) {
        printf("trust %s: %s %s is already in %s\n", srv->name, hk->type, hk->fp, hk->known_hosts);
        return CLI_EXIT_OK;
    }
    if (hk->state == 3) {
        cli_err("trust %s: HOST KEY REVOKED: the server presents %s %s, which %s marks "
                "@revoked; it is not recorded (ask the server's administrator for its new key)",
                srv->name, hk->type, hk->fp, hk->known_hosts);
        return CLI_EXIT_SERVER;
    }
    if (hk->state == 2) {
        cli_err("trust %s: HOST KEY CHANGED: the server has %s %s, %s records %s; check why, "
                "remove the old entry (ssh-keygen -R '%s' -f %s) and run trust again",
                srv->name, hk->type, hk->fp, hk->known_hosts, hk->old_fp, hk->entry,
                hk->known_hosts);
        return CLI_EXIT_SERVER;
    }
    printf("server %s (%s) presents host key %s %s\n", srv->name, cli_esc(srv->url), hk->type,
           hk->fp);
    fflush(stdout);
    answer = yes ? 1 : ask(srv->name, hk);
    if (answer < 0) {
        snprintf(msg, sizeof(msg),
                 "trust %s: no terminal to ask on: compare the fingerprint, then run "
                 "'distsync trust %s --yes'",
                 srv->name, srv->name);
        cli_err("%s", cli_hint(cli, msg));
        return CLI_EXIT_USAGE;
    }
    if (answer == 0) {
        printf("trust %s: not recorded\n", srv->name);
        return CLI_EXIT_FAIL;
    }
    if (ds_ssh_hostkey_trust(hk, err, sizeof(err)) < 0) {
        cli_err("trust %s: %s", srv->name, err);
        return CLI_EXIT_FAIL;
    }
    printf("trust %s: recorded %s %s in %s\n", srv->name, hk->type, hk->fp, hk->known_hosts);
    return CLI_EXIT_OK;
}

int cmd_trust(struct cli *cli, int argc, char **argv)
{
    ds_ssh_hostkey_t hk = {0};
    ds_config_t *cfg = NULL;
    const ds_server_cfg_t *srv;
    char err[1024];
    int yes = 0, rc = parse_args(argc, argv, &yes);

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    rc = cli_config_load(cli, &cfg);
    if (rc != 0)
        return rc;
    srv = ds_config_server(cfg, argv[optind]);
    if (srv == NULL) {
        cli_err("trust: unknown server '%s'", argv[optind]);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if (strncmp(srv->url, "ssh://", 6) != 0) {
        cli_err("trust %s: not an ssh:// server (%s)", srv->name, srv->url);
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    ds_transport_cfg_t tc = {.url = srv->url,
                             .server = srv->name,
                             .known_hosts = srv->known_hosts,
                             .connect_timeout_s = srv->connect_timeout_s};
    if (ds_ssh_hostkey_fetch(&tc, &hk, err, sizeof(err)) < 0) {
        cli_err("trust %s: %s", srv->name, err);
        rc = CLI_EXIT_SERVER;
        goto out;
    }
    rc = decide(cli, srv, &hk, yes);
out:
    ds_ssh_hostkey_free(&hk);
    ds_config_free(cfg);
    return rc;
}

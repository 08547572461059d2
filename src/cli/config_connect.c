/* distsync config check --connect: after the checks, connects to each
 * smb:// and ssh:// server (all, or those named), one after the other
 * (libsmbclient: one context per process at a time): an smb:// server's
 * share and directory; an ssh:// server's host key, login, target root and
 * mode (the agent, or SFTP and why). Nothing is written. */
#include <string.h>

#include "cli.h"
#include "distsync/smb.h"
#include "distsync/smbcred.h"
#include "distsync/transport.h"

/* One server: 0 when it answered, else prints why and returns < 0. */
static int connect_one(const ds_server_cfg_t *s)
{
    ds_smbcred_t cred = {0};
    ds_smb_ctx_t *ctx = NULL;
    char err[1024];
    int rc;

    rc = s->credentials != NULL ? ds_smbcred_load(s->credentials, &cred, err, sizeof(err))
                                : ds_smbcred_from_env(&cred, err, sizeof(err));
    if (rc < 0) {
        cli_err("server %s: credentials: %s", s->name, err);
        goto out;
    }
    rc = ds_smb_ctx_new(&(ds_smb_opts_t){.server = s->name,
                                         .url = s->url,
                                         .cred = &cred,
                                         .encrypt = s->encrypt,
                                         .timeout_s = s->connect_timeout_s},
                        &ctx, err, sizeof(err));
    if (rc == 0)
        rc = ds_smb_ctx_connect(ctx, err, sizeof(err));
    if (rc < 0)
        cli_err("%s", err);
    else
        printf("connect    %s: ok (%s, user %s, signed%s)\n", s->name, s->url, cred.username,
               s->encrypt ? ", encrypted" : "");
out:
    ds_smb_ctx_free(ctx);
    ds_smbcred_clear(&cred);
    return rc;
}

/* One ssh:// server: the open a sync makes (host key, login, the agent or
 * SFTP, the root), then the close. 0 when it answered, else prints why. */
static int connect_ssh(const struct cli *cli, const ds_server_cfg_t *s)
{
    int agent_only = s->transport != NULL && strcmp(s->transport, "agent") == 0;
    /* auto sends the agent HELLO and reads its answer (agent alone would
     * only start the command): with transport = agent, SFTP means failure */
    ds_transport_cfg_t tc = {.url = s->url,
                             .mode = agent_only ? "auto" : s->transport,
                             .agent = s->agent,
                             .server = s->name,
                             .identity = s->identity,
                             .known_hosts = s->known_hosts,
                             .connect_timeout_s = s->connect_timeout_s,
                             .timeout_s = s->timeout_s};
    ds_transport_t *t = NULL;
    char err[1024];
    int rc = ds_transport_open(&tc, &t, err, sizeof(err));

    if (rc < 0) {
        cli_err("server %s: %s", s->name, cli_hint(cli, err));
        return rc;
    }
    if (agent_only && t->note[0]) { /* "SFTP mode (transport = auto: WHY): ..." */
        const char *why = strstr(t->note, "auto: "), *end = strstr(t->note, "): ");
        int n = why && end > why ? (int)(end - why - 6) : (int)strlen(t->note);

        cli_err("server %s: transport = agent, but %.*s", s->name, n, why ? why + 6 : t->note);
        ds_transport_free(t);
        return DS_ETRANSPORT;
    }
    printf("connect    %s: ok (%s, %s)\n", s->name, s->url,
           t->note[0] ? t->note : "agent mode: the agent answered");
    ds_transport_kill(t); /* no HELLO was sent: nothing to end politely */
    ds_transport_free(t);
    return 0;
}

static int remote(const ds_server_cfg_t *s)
{
    return strncmp(s->url, "smb://", 6) == 0 || strncmp(s->url, "ssh://", 6) == 0;
}

/* See cli.h. */
int cli_config_connect(const struct cli *cli, const ds_config_t *cfg, int argc, char **argv)
{
    int failed = 0;

    for (int i = 0; i < argc; i++) {
        const ds_server_cfg_t *s = ds_config_server(cfg, argv[i]);

        if (s == NULL) {
            cli_err("config check --connect: no server '%s' in %s", argv[i], cfg->path);
            return CLI_EXIT_USAGE;
        }
        if (!remote(s)) {
            cli_err("config check --connect: server %s is not an smb:// or ssh:// server", argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    for (size_t i = 0; i < cfg->nservers; i++) {
        const ds_server_cfg_t *s = &cfg->servers[i];
        int named = argc == 0;

        for (int k = 0; k < argc && !named; k++)
            named = strcmp(argv[k], s->name) == 0;
        if (named && strncmp(s->url, "smb://", 6) == 0 && connect_one(s) < 0)
            failed = 1;
        if (named && strncmp(s->url, "ssh://", 6) == 0 && connect_ssh(cli, s) < 0)
            failed = 1;
    }
    return failed ? CLI_EXIT_SERVER : CLI_EXIT_OK;
}

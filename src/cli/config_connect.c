/* distsync config check --connect: after the checks, connects to each
 * smb:// server (all, or those named) and checks its share and directory,
 * one server after the other (libsmbclient: one context per process at a
 * time). */
#include <string.h>

#include "cli.h"
#include "distsync/smb.h"
#include "distsync/smbcred.h"

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

/* See cli.h. */
int cli_config_connect(const ds_config_t *cfg, int argc, char **argv)
{
    int failed = 0;

    for (int i = 0; i < argc; i++) {
        const ds_server_cfg_t *s = ds_config_server(cfg, argv[i]);

        if (s == NULL) {
            cli_err("config check --connect: no server '%s' in %s", argv[i], cfg->path);
            return CLI_EXIT_USAGE;
        }
        if (strncmp(s->url, "smb://", 6) != 0) {
            cli_err("config check --connect: server %s is not an smb:// server", argv[i]);
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
    }
    return failed ? CLI_EXIT_SERVER : CLI_EXIT_OK;
}

/*
 * smb:// backend: the server's SMB worker (`distsync smb-worker`, which
 * runs the receiver over libsmbclient: smb_worker.c) behind the pipe
 * transport, spawned like an agent. The credentials, from the server's
 * credentials file or the environment, are written into the worker's
 * stdin ahead of the protocol: ps shows only the URL and the server name.
 */
#include <stdio.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/smbcred.h"
#include "distsync/smbworker.h"
#include "distsync/transport.h"

int ds__transport_smb_open(const ds_transport_cfg_t *cfg, ds_transport_t **out, char *err,
                           size_t errlen)
{
    const char *server = cfg->server != NULL ? cfg->server : cfg->url;
    unsigned char pre[DS_SMB_WORKER_CRED_MAX + 4];
    ds_smbcred_t cred = {0};
    char label[512], timeout[16], conns[16], msg[400];
    char *args[16];
    int n = 0, len, rc;

    *out = NULL;
    snprintf(label, sizeof(label), "SMB worker for server %s", server);
    rc = cfg->smb_credentials != NULL
             ? ds_smbcred_load(cfg->smb_credentials, &cred, msg, sizeof(msg))
             : ds_smbcred_from_env(&cred, msg, sizeof(msg));
    if (rc < 0) {
        snprintf(err, errlen, "server %s: %s", server, msg);
        return rc;
    }
    len = ds_smb_worker_preamble(&cred, pre, sizeof(pre));
    ds_smbcred_clear(&cred);
    if (len < 0) {
        snprintf(err, errlen, "server %s: credentials too long", server);
        return len;
    }
    snprintf(timeout, sizeof(timeout), "%u", cfg->connect_timeout_s);
    args[n++] = "smb-worker";
    args[n++] = "--url";
    args[n++] = (char *)cfg->url;
    args[n++] = "--server";
    args[n++] = (char *)server;
    args[n++] = "--timeout";
    args[n++] = timeout;
    if (cfg->smb_encrypt)
        args[n++] = "--encrypt";
    if (cfg->verify_readback)
        args[n++] = "--readback";
    if (cfg->smb_retain != NULL) {
        args[n++] = "--retain";
        args[n++] = (char *)cfg->smb_retain;
    }
    if (cfg->smb_connections > 1) {
        snprintf(conns, sizeof(conns), "%u", cfg->smb_connections);
        args[n++] = "--connections";
        args[n++] = conns;
    }
    args[n] = NULL;
    rc = ds__transport_pipe_open_cmd(label, cfg->agent, args, pre, (size_t)len, cfg->timeout_s,
                                     cfg->spawner, out, err, errlen);
    explicit_bzero(pre, sizeof(pre));
    if (rc == 0)
        (*out)->caps |= DS_TRANSPORT_PLAIN | DS_TRANSPORT_REMOTE_BASIS;
    return rc;
}

/*
 * `distsync trust`: fetch an ssh:// server's host key and record it in the
 * known_hosts file (the CLI shows the fingerprint and asks in between).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"

#include "ssh_int.h"

/* See transport.h. */
int ds_ssh_hostkey_fetch(const ds_transport_cfg_t *cfg, ds_ssh_hostkey_t *hk, char *err,
                         size_t errlen)
{
    struct ds__ssh_opened r;
    struct ds__ssh_hostkey *k = calloc(1, sizeof(*k));
    int rc = DS_ENOMEM;

    memset(hk, 0, sizeof(*hk));
    if (k == NULL) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    if (ds__ssh_kh_path(cfg->known_hosts, hk->known_hosts, sizeof(hk->known_hosts)) < 0) {
        snprintf(err, errlen, "HOME is not set (needed for ~/.ssh/known_hosts)");
        rc = DS_EUSAGE;
    } else {
        rc = ds__ssh_open_blocking(cfg, DS__SSH_GOAL_HOSTKEY, &r, err, errlen);
    }
    if (rc < 0) {
        free(k);
        return rc;
    }
    ds__ssh_conn_close(&r.c, 1);
    *k = r.hk;
    hk->state = k->state == DS__HK_MATCH     ? 0
                : k->state == DS__HK_UNKNOWN ? 1
                : k->state == DS__HK_CHANGED ? 2
                                             : 3;
    snprintf(hk->type, sizeof(hk->type), "%s", k->type);
    snprintf(hk->fp, sizeof(hk->fp), "%s", k->fp);
    snprintf(hk->old_fp, sizeof(hk->old_fp), "%s", k->old_fp);
    snprintf(hk->entry, sizeof(hk->entry), "%s", k->entry);
    hk->priv = k;
    return 0;
}

/* See transport.h. */
int ds_ssh_hostkey_trust(const ds_ssh_hostkey_t *hk, char *err, size_t errlen)
{
    const struct ds__ssh_hostkey *k = hk->priv;

    if (k == NULL || k->key == NULL) {
        snprintf(err, errlen, "no host key fetched");
        return DS_EUSAGE;
    }
    return ds__ssh_hostkey_append(hk->known_hosts, k, err, errlen);
}

/* See transport.h. */
void ds_ssh_hostkey_free(ds_ssh_hostkey_t *hk)
{
    struct ds__ssh_hostkey *k = hk ? hk->priv : NULL;

    if (k != NULL)
        free(k->key);
    free(k);
    if (hk != NULL)
        hk->priv = NULL;
}

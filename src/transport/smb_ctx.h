/*
 * The libsmbclient context behind a ds_smb_ctx_t (distsync/smb.h), for the
 * transport's SMB files (the worker's filesystem backend): they make their
 * smbc_* calls on it (through ds__smbc, smb_dl.h) and keep libsmbclient
 * behind transport/.
 */
#ifndef DS_TRANSPORT_SMB_CTX_H
#define DS_TRANSPORT_SMB_CTX_H

#include "distsync/smb.h"
#include "transport/smb_dl.h"

/* The context's SMBCCTX, initialised (security options set); it lives as
 * long as c and is used from one thread only. */
SMBCCTX *ds__smb_ctx_raw(ds_smb_ctx_t *c);

/* A message for errno e after a failed smbc_* call: "server X: WHAT:
 * REASON" (what says what was done, e.g. "opening dir/f"), naming the user
 * for EACCES/EPERM; never the password. */
void ds__smb_ctx_errmsg(const ds_smb_ctx_t *c, const char *what, int e, char *err, size_t errlen);

#endif

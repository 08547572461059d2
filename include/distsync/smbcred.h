/*
 * SMB credentials: a server's `credentials = FILE` (lines `username=`,
 * `password=`, `domain=`; mode 0600 or stricter), or the environment
 * (DISTSYNC_SMB_USER, DISTSYNC_SMB_PASSWORD, DISTSYNC_SMB_DOMAIN) for an
 * smb:// server without that key.
 *
 * The password is a secret: no message built here ever contains it, and
 * ds_smbcred_clear wipes it (explicit_bzero) before freeing. Messages name
 * the file, the line and the key, never a value.
 */
#ifndef DISTSYNC_SMBCRED_H
#define DISTSYNC_SMBCRED_H

#include <stddef.h>

#include "distsync/error.h"

#define DS_SMBCRED_FILE_MAX 65536 /* bytes; a larger file is refused */

#define DS_SMBCRED_ENV_USER     "DISTSYNC_SMB_USER"
#define DS_SMBCRED_ENV_PASSWORD "DISTSYNC_SMB_PASSWORD"
#define DS_SMBCRED_ENV_DOMAIN   "DISTSYNC_SMB_DOMAIN"

typedef struct ds_smbcred {
    char *username; /* owned; never NULL after a successful load */
    char *password; /* owned, a secret; never NULL after a successful load */
    char *domain;   /* owned; "" when absent */
} ds_smbcred_t;

/* Parses the text of a credentials file (len bytes, NUL bytes refused).
 * name is used in messages ("NAME:LINE: ..."). Lines are `key=value` with
 * blanks around the key and the value ignored; blank lines and lines
 * starting with '#' are skipped; keys are username, password and domain,
 * each at most once; username and password are required. On success
 * returns 0 and fills *out (empty before the call); on failure returns
 * DS_ECONFIG (or DS_ENOMEM) with a message in err that names the line and
 * the key but never a value, and leaves *out empty. Pure: no I/O. */
DS_MUST_CHECK int ds_smbcred_parse(const char *text, size_t len, const char *name,
                                   ds_smbcred_t *out, char *err, size_t errlen);

/* Reads and parses the credentials file at path (a leading "~/" is the
 * home directory). Refuses, with a message naming the file and the reason:
 * a file that cannot be opened (errno name), not a regular file, one whose
 * mode gives any access to the group or others ("mode 0644, must be 0600:
 * run chmod 600 PATH"), one larger than DS_SMBCRED_FILE_MAX. Returns 0 or
 * DS_ECONFIG / -errno / DS_ENOMEM; *out as for ds_smbcred_parse. */
DS_MUST_CHECK int ds_smbcred_load(const char *path, ds_smbcred_t *out, char *err, size_t errlen);

/* Takes the credentials from the environment: DISTSYNC_SMB_USER and
 * DISTSYNC_SMB_PASSWORD (required), DISTSYNC_SMB_DOMAIN (optional). The
 * first call copies them and then scrubs the password from the process's
 * environment (unset, and its bytes in the original environment block
 * overwritten, so neither /proc/PID/environ, `ps e` nor a child process
 * sees it); later calls return the copy. Returns 0, DS_ENOTFOUND with a
 * message saying which variable is missing, or DS_ENOMEM. */
DS_MUST_CHECK int ds_smbcred_from_env(ds_smbcred_t *out, char *err, size_t errlen);

/* Wipes and frees what cred holds; cred is empty after. NULL is a no-op. */
void ds_smbcred_clear(ds_smbcred_t *cred);

#endif

/*
 * The SMB backend's directory cache (smb_fs.c): the URLs of directories
 * this session has seen exist. Every SMB path stat is a CREATE + GETINFO +
 * CLOSE round trip of about 900 bytes, and the receiver's safe-path walk
 * opens every component of a file's path two or three times per file (a
 * real package's .so files sit 5 directories deep), so a known directory is
 * not asked again. A link a listing showed (a reparse point, or a folder
 * whose ".." is not its parent: smb_fs_known.c) is never added; the server still
 * resolves every path it is given, so a directory removed behind our back
 * fails the next open of a name inside it (ENOENT), as it would have a
 * moment after the check. The backend forgets a URL, and every URL under
 * it, when it removes or renames that URL itself.
 */
#ifndef DS_TRANSPORT_SMB_DIRCACHE_H
#define DS_TRANSPORT_SMB_DIRCACHE_H

#include <stddef.h>

typedef struct ds_smb_dircache {
    char **v; /* URLs, unordered */
    size_t n, cap;
} ds_smb_dircache_t;

/* Whether url is a known directory. */
int ds__smb_dircache_has(const ds_smb_dircache_t *c, const char *url);

/* Remembers url (copied) as a directory; out of memory it is simply not
 * remembered (the next walk asks the server again). */
void ds__smb_dircache_add(ds_smb_dircache_t *c, const char *url);

/* Forgets url and every URL under it (url + "/..."). */
void ds__smb_dircache_forget(ds_smb_dircache_t *c, const char *url);

/* Frees every URL; c is then empty and reusable. */
void ds__smb_dircache_close(ds_smb_dircache_t *c);

#endif

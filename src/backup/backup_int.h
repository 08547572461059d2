/* Backup internals shared by the writer, the checker and restore. */
#ifndef DS_BACKUP_INT_H
#define DS_BACKUP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/backup.h"

/* Writes "distsync-backup 1\n..." for m into a malloc'd NUL-terminated
 * buffer (*out, caller frees; *len without the NUL). Returns 0, DS_ENOMEM,
 * or DS_EPATH when a destination holds a control byte (the line format
 * cannot carry it). */
DS_MUST_CHECK int ds__backup_manifest_format(const ds_backup_manifest_t *m, char **out,
                                             size_t *len);

/* 1 when p is absolute and normal: no empty, "." or ".." component, no
 * control byte, not "/" alone. */
DS_MUST_CHECK int ds__backup_path_normal(const char *p);

/* Lexically normalises the absolute path p into out (collapses "//", "."
 * and ".."). Returns 0, DS_EPATH (relative), or -ENAMETOOLONG. */
DS_MUST_CHECK int ds__backup_normalize(const char *p, char *out, size_t cap);

/* The files a config names, by role: the known_hosts files its ssh://
 * servers use and their identity files, each resolved ("~/" against $HOME)
 * and normalised, without duplicates. Returns 0 with *out (n entries,
 * caller frees each string and the array) or DS_ENOMEM / DS_EPATH (a "~/"
 * path without $HOME; err names the server). */
typedef struct ds__backup_want {
    ds_backup_role_t role;
    char *path;
} ds__backup_want_t;
DS_MUST_CHECK int ds__backup_config_files(const ds_config_t *cfg, ds__backup_want_t **out,
                                          size_t *n, char *err, size_t errlen);
void ds__backup_wants_free(ds__backup_want_t *w, size_t n);

/* Called for each block of a member's data while the archive is walked
 * (f is the manifest's record). Return 0 to go on, or an error that stops
 * the walk (with err set). */
typedef int (*ds__backup_data_fn)(void *ctx, const ds_backup_file_t *f, const void *p, size_t n,
                                  char *err, size_t errlen);

/*
 * Walks an archive (fd rewound, or p/n in memory when fd < 0): MANIFEST
 * first, parsed into *m when m->files is NULL and otherwise required to be
 * byte-identical to what m holds; then each member checked (a regular file
 * the manifest names once, size and SHA-256 as recorded, no bomb) and its
 * data fed to fn. Returns 0 or the first error, with err naming the member.
 */
DS_MUST_CHECK int ds__backup_walk(int fd, const void *p, size_t n, ds_backup_manifest_t *m,
                                  ds__backup_data_fn fn, void *ctx, char *err, size_t errlen);

#endif

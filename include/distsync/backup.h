/*
 * Console backup and restore (src/backup/): one tar archive, zstd
 * compressed (libarchive), holding what a console needs to come back on a
 * fresh machine:
 *
 *   MANIFEST       first member: what the archive holds (format below)
 *   config.0       the config file
 *   catalog.db     the SQLite state, copied with SQLite's online backup API
 *                  (one read transaction: consistent while a daemon or a
 *                  sync writes)
 *   known_hosts.N  the known_hosts files the ssh:// servers use
 *   secret.N       files the config names that hold secrets (identity =
 *                  private keys), only when asked for
 *
 * MANIFEST is text, one record per line, fields separated by one space,
 * the destination path last (it may hold spaces, never a control byte):
 *
 *   distsync-backup 1
 *   version 0.1.0
 *   console HOST:12HEX
 *   created 1796332800
 *   file NAME ROLE SHA256HEX SIZE MODE DEST
 *   omitted ROLE DEST
 *
 * ROLE is config, catalog, known_hosts or secret; MODE is octal (0600);
 * DEST is the absolute path the file came from and goes back to.
 * "omitted" lists the secrets left out. A reader refuses an unknown record,
 * a second format line, a name that is not NAME-shaped, a DEST that is not
 * absolute and normal, and sizes past DS_BACKUP_MEMBER_MAX.
 *
 * Restore reads the archive twice: first it checks everything (the manifest,
 * every member's type, size and SHA-256, the expansion ratio) and writes
 * nothing; then it writes each member beside its destination, migrates the
 * catalog, and renames them into place. Every destination must be one the
 * restored config itself names (its own path, <state>/catalog.db, its
 * known_hosts and identity files): an archive cannot direct a write
 * elsewhere.
 */
#ifndef DISTSYNC_BACKUP_H
#define DISTSYNC_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/config.h"
#include "distsync/digest.h"
#include "distsync/error.h"

#define DS_BACKUP_FORMAT       1
#define DS_BACKUP_MANIFEST     "MANIFEST"
#define DS_BACKUP_MANIFEST_MAX (1u << 20) /* bytes */
#define DS_BACKUP_CONFIG_MAX   (1u << 20) /* a config file kept in memory */
#define DS_BACKUP_MEMBERS_MAX  4096u
#define DS_BACKUP_MEMBER_MAX   (1ull << 40) /* 1 TiB: any one member */
/* Decompression bombs: past DS_BACKUP_RATIO_FREE bytes out, the archive
 * may not expand more than DS_BACKUP_RATIO_MAX times its compressed size. */
#define DS_BACKUP_RATIO_FREE (64ull << 20)
#define DS_BACKUP_RATIO_MAX  1000u

typedef enum ds_backup_role {
    DS_BACKUP_CONFIG = 0,
    DS_BACKUP_CATALOG,
    DS_BACKUP_KNOWN_HOSTS,
    DS_BACKUP_SECRET,
    DS_BACKUP__ROLES,
} ds_backup_role_t;

/* "config", "catalog", "known_hosts", "secret" (static), "?" otherwise. */
const char *ds_backup_role_name(ds_backup_role_t r);

typedef struct ds_backup_file {
    char name[32]; /* member name in the archive */
    ds_backup_role_t role;
    uint8_t sha256[DS_SHA256_LEN];
    uint64_t size;
    unsigned mode; /* permission bits */
    char *dest;    /* absolute path, owned */
} ds_backup_file_t;

typedef struct ds_backup_omitted {
    ds_backup_role_t role;
    char *dest; /* owned */
} ds_backup_omitted_t;

/* A parsed MANIFEST (and, once an archive was checked, its config text). */
typedef struct ds_backup_manifest {
    char version[64];
    char console[256];
    int64_t created;
    ds_backup_file_t *files;
    size_t nfiles;
    ds_backup_omitted_t *omitted;
    size_t nomitted;
    char *config_text; /* the config member's bytes, NUL-terminated (check only) */
    size_t config_len;
    uint8_t manifest_sha256[DS_SHA256_LEN]; /* of the MANIFEST member (check only) */
} ds_backup_manifest_t;

/* Frees what m owns and zeroes it. NULL is a no-op. */
void ds_backup_manifest_clear(ds_backup_manifest_t *m);

/* Parses MANIFEST text (len bytes, untrusted). Returns 0 with *m filled
 * (clear it with ds_backup_manifest_clear), DS_EVERSION for a newer format,
 * or DS_ECORRUPT with "line N: reason" in err; *m is cleared on failure. */
DS_MUST_CHECK int ds_backup_manifest_parse(const char *text, size_t len, ds_backup_manifest_t *m,
                                           char *err, size_t errlen);

/* What ds_backup_write put in the archive. */
typedef struct ds_backup_opts {
    const ds_config_t *cfg; /* borrowed; cfg->path is the config backed up */
    const char *out;        /* archive path (written as out.tmp.XXXXXX, renamed) */
    int include_secrets;
    const char *console_id; /* recorded in MANIFEST */
    int64_t now;            /* seconds since the epoch, recorded */
} ds_backup_opts_t;

/*
 * Writes the backup archive at o->out atomically (a temp file in the same
 * folder, fsync, rename, mode 0600). Fills *m with the MANIFEST written
 * (clear it with ds_backup_manifest_clear). Returns 0, or a negative code
 * with err naming the file that failed and why (a config file that names a
 * missing identity is DS_ENOTFOUND only with include_secrets; a missing
 * known_hosts file is skipped).
 */
DS_MUST_CHECK int ds_backup_write(const ds_backup_opts_t *o, ds_backup_manifest_t *m, char *err,
                                  size_t errlen);

/*
 * Reads the whole archive from fd (positioned anywhere; it is rewound) and
 * checks it without writing anything: MANIFEST first, each member a regular
 * file named in it once, its size and SHA-256 as recorded, every member
 * present, no expansion past the bomb limits. Returns 0 with *m filled
 * (config_text set), or DS_ECORRUPT / DS_EPATH / DS_ETOOBIG / DS_EHASH /
 * DS_EVERSION / -errno with err saying which member and why.
 */
DS_MUST_CHECK int ds_backup_check_fd(int fd, ds_backup_manifest_t *m, char *err, size_t errlen);

/* The same over an archive in memory (the fuzz target's entry). */
DS_MUST_CHECK int ds_backup_check_mem(const void *p, size_t n, ds_backup_manifest_t *m, char *err,
                                      size_t errlen);

/* One file restore put in place (bak: where the file it replaced went, or
 * NULL), or would put in place under DS_BACKUP_DRY_RUN. */
typedef void (*ds_backup_restored_fn)(void *ctx, const ds_backup_file_t *f, const char *bak);

#define DS_BACKUP_FORCE   1u /* replace existing files, keeping each as DEST.bak */
#define DS_BACKUP_DRY_RUN 2u /* every check, no write: fn says what would be done */

/*
 * Restores the archive fd that ds_backup_check_fd accepted into m: checks
 * every destination against the restored config, refuses (DS_EEXISTS,
 * naming them) when one exists unless DS_BACKUP_FORCE (then the old file
 * is kept as DEST.bak; a catalog still open elsewhere is refused), writes
 * each member beside its destination with its mode, runs the catalog's
 * migrations and integrity_check on the copy, then renames them into
 * place. fn (may be NULL) is called per file placed. Returns 0 or a
 * negative code with err naming the destination and the reason.
 */
DS_MUST_CHECK int ds_backup_restore(int fd, const ds_backup_manifest_t *m, unsigned flags,
                                    ds_backup_restored_fn fn, void *ctx, char *err, size_t errlen);

#endif

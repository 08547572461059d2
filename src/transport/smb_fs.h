/*
 * The filesystem seam's libsmbclient backend (distsync/fs.h), for the SMB
 * worker: the one receiver (target/apply*.c) writes an SMB share through
 * it. Paths are smb:// URLs: the receiver's root is the server's URL, and
 * every other name is joined to the URL of the directory handle it is
 * opened at. libsmbclient is blocking and not thread-safe: one backend per
 * process, used from one thread.
 */
#ifndef DS_TRANSPORT_SMB_FS_H
#define DS_TRANSPORT_SMB_FS_H

#include <stdint.h>

#include "distsync/fs.h"
#include "distsync/smb.h"

/* Bytes through libsmbclient, counted by the backend. */
typedef struct ds_smb_fs_stats {
    uint64_t bytes_written;   /* file payload written (smbc_write) */
    uint64_t bytes_read;      /* file payload read (smbc_read) */
    uint64_t write_calls;     /* smbc_write calls (each up to DS_SMB_FS_WRITE_MAX) */
    uint64_t read_calls;      /* smbc_read calls */
    uint64_t splice_calls;    /* smbc_splice calls (server-side copies) */
    uint64_t bytes_spliced;   /* bytes copied on the server */
    uint64_t splice_fallback; /* splices that moved the bytes through this process */
    uint64_t replace_retries; /* renames retried after a sharing violation */
} ds_smb_fs_stats_t;

/* Writes are gathered per file up to this size before one smbc_write: at
 * 40 ms RTT, 64 KiB writes reach 1.5 MiB/s and 8 MiB writes 54 MiB/s. */
#define DS_SMB_FS_WRITE_MAX (8u << 20)

typedef struct ds_smb_fs ds_smb_fs_t;

/* A backend on ctx (borrowed: must outlive it). Returns 0 and *out, or
 * DS_ENOMEM. */
DS_MUST_CHECK int ds__smb_fs_new(ds_smb_ctx_t *ctx, ds_smb_fs_t **out);

/* The seam to pass in ds_apply_opts_t.fs (lives as long as s). */
const ds_fs_t *ds__smb_fs(ds_smb_fs_t *s);

const ds_smb_fs_stats_t *ds__smb_fs_stats(const ds_smb_fs_t *s);

/* How long a rename refused by a sharing violation (a target held open by
 * an endpoint) is retried, in ms (default 5000; 0: not retried). */
void ds__smb_fs_set_replace_wait(ds_smb_fs_t *s, unsigned ms);

/* Tests only: splices read their source through another share of the same
 * directory (a cross-share copy, which libsmbclient does through this
 * process), to prove the detection of that fallback. Returns 0 or
 * DS_ENOMEM. */
DS_MUST_CHECK int ds__smb_fs_test_splice_share(ds_smb_fs_t *s, const char *share);

/* Tests only: a replace onto a file named name (NULL: none) stops for
 * good between its delete and its rename (name must outlive s). */
void ds__smb_fs_test_replace_pause(ds_smb_fs_t *s, const char *name);

/* Frees the backend, closing every handle still open. NULL is a no-op. */
void ds__smb_fs_free(ds_smb_fs_t *s);

#endif

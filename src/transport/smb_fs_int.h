/*
 * Inside the SMB backend (smb_fs.c, smb_fs_known.c, smb_fs_copy.c): its handle table and
 * state, and what it knows of the share without asking the server
 * (smb_fs_known.c). Not for use outside src/transport/smb_fs*.c.
 */
#ifndef DS_TRANSPORT_SMB_FS_INT_H
#define DS_TRANSPORT_SMB_FS_INT_H

#include <dirent.h>
#include <errno.h>
#include <libsmbclient.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "smb_ctx.h"
#include "smb_dircache.h"
#include "smb_fs.h"

#define FD_BASE 3 /* never 0..2: a mixed-up fd is then EBADF, not stdin */

struct sh {
    char *url;
    int dir;        /* a directory handle (no SMB open) */
    SMBCFILE *f;    /* open file; NULL when sealed or not (yet) locked */
    int sealed;     /* written, flushed and closed; fstat and rename by url */
    int wrote;      /* something was written through f */
    int locked;     /* f was opened with share mode DENY_ALL */
    int have_mtime; /* futimens waiting for the seal */
    struct timespec mtime;
    int fresh;         /* created empty by this open (O_EXCL or O_TRUNC), only written */
    uint64_t pos, end; /* fresh: the write offset, and the size so far */
    int known;         /* sealed with its mtime set: known_st is what a stat shows */
    struct stat known_st;
    int opened_ok;         /* a read handle's fstat succeeded: opened_st holds it */
    struct stat opened_st; /* (kept for an fstatat of the same path while open) */
    uint8_t *wbuf;         /* gathered writes, DS_SMB_FS_WRITE_MAX */
    size_t wlen;
    SMBCFILE *d; /* directory stream (fdopendir) */
    struct dirent de;
    struct stat de_st; /* de's attributes as the listing gave them */
    int de_ok;         /* de_st is set: an fstatat of de's name needs no round trip */
    ino_t dot_ino;     /* the server's file id of this folder ("." in its listing), or 0 */
};

struct ds_smb_fs {
    ds_fs_t fs; /* fs.ctx points back here */
    ds_smb_ctx_t *ctx;
    SMBCCTX *c;
    struct sh **h;
    size_t nh;
    unsigned replace_wait_ms;
    int no_splice;                /* the server does not copy on its side: refuse copy_range */
    int splice_sure;              /* a splice of SPLICE_SURE bytes or more copied on the server */
    uint64_t short_len, short_io; /* short splices so far: their bytes, the bytes moved */
    char *test_share;             /* tests: splice sources through this share */
    ds_smb_dircache_t dirs;       /* directories known to exist (smb_dircache.h) */
    ds_smb_dircache_t links;      /* reparse points a listing showed (never entered) */
    char *told_link;              /* the last one refused, logged once */
    char *seen_file;              /* the last file fstatat found: a rename onto it deletes first */
    const char *test_pause;       /* tests: a replace onto this name stops after its delete */
    int times_kept; /* a sealed file's stat showed the mtime set (1) or not (-1); 0: not yet */
    ds_smb_fs_stats_t st;
};

static inline struct ds_smb_fs *S(const ds_fs_t *fs)
{
    return fs->ctx;
}

static inline struct sh *get(const ds_fs_t *fs, int fd)
{
    struct ds_smb_fs *s = S(fs);
    size_t i = (size_t)(fd - FD_BASE);

    if (fd < FD_BASE || i >= s->nh || s->h[i] == NULL) {
        errno = EBADF;
        return NULL;
    }
    return s->h[i];
}

/* Writes what h gathered. Returns 0 or -1 with errno. */
int ds__smb_fs_flush(struct ds_smb_fs *s, struct sh *h);

/* smb_fs_copy.c: the seam's copy_range and copy_state (server-side copy;
 * see ds_fs_ops_t). */
int ds__smb_fs_copy_range(const ds_fs_t *fs, int src_fd, off_t src_off, int dst_fd, size_t len);
int ds__smb_fs_copy_state(const ds_fs_t *fs);

/* A fresh file's write offset is now pos (its size so far follows). */
void ds__smb_fs_moved_to(struct sh *h, uint64_t pos);

/* Records what a stat of the fresh file h, just sealed with mtime mt, will
 * show: the size written and mt as it went on the wire. */
void ds__smb_fs_know(struct sh *h, const struct timespec *mt);

/* Whether st can be answered for h without asking: a sealed fresh file
 * whose time the server is known to keep (st filled: 1; else 0). */
int ds__smb_fs_known(const struct ds_smb_fs *s, const struct sh *h, struct stat *st);

/* Notes a stat st the server gave for h: the first of a sealed fresh file
 * tells whether the server keeps the times set; a read handle's is kept
 * for ds__smb_fs_opened. */
void ds__smb_fs_stated(struct ds_smb_fs *s, struct sh *h, const struct stat *st);

/* Whether this session holds url open for reading with its fstat known
 * (st filled: 1; else 0). */
int ds__smb_fs_opened(const struct ds_smb_fs *s, const char *url, struct stat *st);

/* Whether name is the entry dirfd's listing returned last (st filled from
 * the listing: 1; else 0). */
int ds__smb_fs_listed(const ds_fs_t *fs, int dirfd, const char *name, struct stat *st);

/* Forgets every listed entry's attributes (a name was created, removed or
 * renamed here). */
void ds__smb_fs_unlisted(struct ds_smb_fs *s);

/* A stat from libsmbclient made POSIX-like (a regular file has a link). */
void ds__smb_fs_fix_stat(struct stat *st);

/* FILE_ATTRIBUTE_REPARSE_POINT: a symlink or junction on a Windows server,
 * an MS-DFS link on Samba; the server resolves it, outside the root maybe. */
#define DS_SMB_ATTR_REPARSE 0x400u

/* A listing entry with DOS attributes attrs shown as POSIX shows a symlink
 * (st_mode S_IFLNK, never a directory to descend into) when it is a reparse
 * point. Returns 1 if it is one, else 0 (st untouched). */
int ds__smb_fs_reparse(struct stat *st, uint32_t attrs);

/* Notes the "." or ".." entry (file id ino) of folder h's listing. Returns
 * 1 when ".." is not the folder h was opened in (that folder's own "."
 * seen on a handle still open): the server reached h through a link it
 * resolves itself (a symlink on Samba), so its parent is elsewhere; else 0. */
int ds__smb_fs_dots(const struct ds_smb_fs *s, struct sh *h, const char *name, ino_t ino);

/* Whether url is a reparse point a listing showed: then logs that it is
 * refused (not again for the same url in a row) and sets errno to ELOOP,
 * as O_NOFOLLOW does on a symlink. Returns 1 if refused, else 0. */
int ds__smb_fs_refuse_link(struct ds_smb_fs *s, const char *url);

#endif

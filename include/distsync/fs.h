/*
 * The receiver's filesystem seam: the POSIX calls the receiver makes
 * (apply*.c, lease.c, the manifest's load and store, the safe-path walk,
 * the atomic write), as a small vtable, so one receiver writes through
 * POSIX (local, agent) or through another backend (the SMB worker's
 * libsmbclient backend, transport/smb_fs.c).
 *
 * Every op keeps its POSIX contract: it returns what the system call
 * returns (-1, or NULL, with errno set on failure), and "fd" is the
 * backend's own handle number, meaningful only to that backend's ops.
 * AT_FDCWD as a directory handle names the backend's own namespace (a
 * path for POSIX, an smb:// URL for SMB). A backend may be used by one
 * thread at a time unless it says otherwise (POSIX: any thread).
 */
#ifndef DISTSYNC_FS_H
#define DISTSYNC_FS_H

#include <dirent.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

typedef struct ds_fs ds_fs_t;
typedef struct ds_fs_dir ds_fs_dir_t; /* an open directory stream */

typedef struct ds_fs_ops {
    const char *name; /* "posix", "smb" */
    /* The backend shows only regular files and directories (no symbolic
     * links, devices or FIFOs: SMB without unix extensions), so the safe
     * open needs no type check before open(); each check is a round trip
     * there. */
    int no_special;
    /* Every call is a round trip to a server (SMB at up to 40 ms and
     * more): the receiver then checks the lease file at a publish only if
     * it did not already find it its own in the same second (apply_lease.c
     * says why that keeps the guarantee). */
    int remote;
    /* The backend's fds are the kernel's, on a local file system: one
     * syncfs(2) makes every written file and every rename on it durable,
     * so the receiver publishes sealed files in batches (apply_batch.c). */
    int can_syncfs;
    int (*openat)(const ds_fs_t *fs, int dirfd, const char *name, int flags, mode_t mode);
    ssize_t (*read)(const ds_fs_t *fs, int fd, void *buf, size_t n);
    ssize_t (*pread)(const ds_fs_t *fs, int fd, void *buf, size_t n, off_t off);
    ssize_t (*write)(const ds_fs_t *fs, int fd, const void *buf, size_t n);
    int (*close)(const ds_fs_t *fs, int fd);
    int (*fsync)(const ds_fs_t *fs, int fd);
    int (*fstat)(const ds_fs_t *fs, int fd, struct stat *st);
    int (*fstatat)(const ds_fs_t *fs, int dirfd, const char *name, struct stat *st, int flags);
    int (*futimens)(const ds_fs_t *fs, int fd, const struct timespec ts[2]);
    int (*fchmod)(const ds_fs_t *fs, int fd, mode_t mode);
    int (*renameat)(const ds_fs_t *fs, int olddir, const char *oldname, int newdir,
                    const char *newname);
    int (*unlinkat)(const ds_fs_t *fs, int dirfd, const char *name, int flags);
    int (*mkdirat)(const ds_fs_t *fs, int dirfd, const char *name, mode_t mode);
    int (*dup)(const ds_fs_t *fs, int fd);
    /* Optional (NULL: none): appends len bytes of src_fd at src_off to the
     * end of what dst_fd holds without moving them through this process (a
     * server-side copy). 0, or -1 with errno; ENOTSUP when the server does
     * not copy (then nothing was appended and the caller copies itself). */
    int (*copy_range)(const ds_fs_t *fs, int src_fd, off_t src_off, int dst_fd, size_t len);
    /* Optional (NULL: unknown): what copy_range has shown so far: 1 the
     * server copies on its side, -1 it does not (the next copy_range fails
     * ENOTSUP), 0 not known yet. */
    int (*copy_state)(const ds_fs_t *fs);
    /* Optional (NULL: never): 1 when this backend's listings showed a link
     * that it refuses to enter (an SMB reparse point): the receiver then
     * applies every file itself, none through helpers (apply_fan.c), whose
     * own connections did not list it; else 0. */
    int (*links_seen)(const ds_fs_t *fs);
    /* An exclusive, non-blocking lock held while fd stays open: flock(2)
     * with LOCK_EX | LOCK_NB (EWOULDBLOCK when another holds it). */
    int (*lock)(const ds_fs_t *fs, int fd);
    /* Directory streams: fdopendir takes fd over (closedir closes it). */
    ds_fs_dir_t *(*fdopendir)(const ds_fs_t *fs, int fd);
    struct dirent *(*readdir)(const ds_fs_t *fs, ds_fs_dir_t *d);
    void (*rewinddir)(const ds_fs_t *fs, ds_fs_dir_t *d);
    int (*closedir)(const ds_fs_t *fs, ds_fs_dir_t *d);
    int (*dirfd)(const ds_fs_t *fs, ds_fs_dir_t *d);
} ds_fs_ops_t;

struct ds_fs {
    const ds_fs_ops_t *ops;
    void *ctx; /* the backend's state */
};

/* The POSIX backend (thread-safe, stateless). */
extern const ds_fs_t ds_fs_posix;

/* Shorthands: fs NULL means ds_fs_posix. */
#define DS_FS(fs)                          ((fs) != NULL ? (fs) : &ds_fs_posix)
#define ds_fs_openat(fs, d, n, f, m)       (DS_FS(fs)->ops->openat(DS_FS(fs), d, n, f, m))
#define ds_fs_read(fs, fd, b, n)           (DS_FS(fs)->ops->read(DS_FS(fs), fd, b, n))
#define ds_fs_pread(fs, fd, b, n, o)       (DS_FS(fs)->ops->pread(DS_FS(fs), fd, b, n, o))
#define ds_fs_write(fs, fd, b, n)          (DS_FS(fs)->ops->write(DS_FS(fs), fd, b, n))
#define ds_fs_close(fs, fd)                (DS_FS(fs)->ops->close(DS_FS(fs), fd))
#define ds_fs_fsync(fs, fd)                (DS_FS(fs)->ops->fsync(DS_FS(fs), fd))
#define ds_fs_fstat(fs, fd, st)            (DS_FS(fs)->ops->fstat(DS_FS(fs), fd, st))
#define ds_fs_fstatat(fs, d, n, st, f)     (DS_FS(fs)->ops->fstatat(DS_FS(fs), d, n, st, f))
#define ds_fs_futimens(fs, fd, ts)         (DS_FS(fs)->ops->futimens(DS_FS(fs), fd, ts))
#define ds_fs_fchmod(fs, fd, m)            (DS_FS(fs)->ops->fchmod(DS_FS(fs), fd, m))
#define ds_fs_renameat(fs, od, on, nd, nn) (DS_FS(fs)->ops->renameat(DS_FS(fs), od, on, nd, nn))
#define ds_fs_unlinkat(fs, d, n, f)        (DS_FS(fs)->ops->unlinkat(DS_FS(fs), d, n, f))
#define ds_fs_mkdirat(fs, d, n, m)         (DS_FS(fs)->ops->mkdirat(DS_FS(fs), d, n, m))
#define ds_fs_dup(fs, fd)                  (DS_FS(fs)->ops->dup(DS_FS(fs), fd))
#define ds_fs_lock(fs, fd)                 (DS_FS(fs)->ops->lock(DS_FS(fs), fd))
#define ds_fs_fdopendir(fs, fd)            (DS_FS(fs)->ops->fdopendir(DS_FS(fs), fd))
#define ds_fs_readdir(fs, d)               (DS_FS(fs)->ops->readdir(DS_FS(fs), d))
#define ds_fs_rewinddir(fs, d)             (DS_FS(fs)->ops->rewinddir(DS_FS(fs), d))
#define ds_fs_closedir(fs, d)              (DS_FS(fs)->ops->closedir(DS_FS(fs), d))
#define ds_fs_dirfd(fs, d)                 (DS_FS(fs)->ops->dirfd(DS_FS(fs), d))

#endif

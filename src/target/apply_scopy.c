/*
 * Receiver: server-side copies. On a filesystem backend with a copy_range
 * op (the SMB worker's: smbc_splice, FSCTL_SRV_COPYCHUNK) a COPY range of
 * a trusted basis is copied on the server, so only literal bytes cross the
 * network. Adjacent ranges are merged (each copy costs round trips) and a
 * pending copy is flushed before any other output, so the file is built in
 * order.
 *
 * Verification without reading back: the copied bytes never pass through
 * the receiver. A basis is trusted only when its size and mtime still match
 * its manifest entry, whose content the console holds in its retain store
 * and built the delta against; any other basis is read as before and
 * hashed. The running SHA-256 of a file built with server-side copies is
 * fed with the same ranges of the console's copy of that version
 * (apply_local.c), so FILE_COMMIT checks it as any other file; without such
 * a copy the file is checked by size. verify = readback
 * (ds_apply_opts_t.readback) adds a SHA-256 read back from the tmp file
 * before the rename.
 *
 * A server that does not copy on its side (it refuses the copy, or
 * smbc_splice copied through this process: the backend then refuses the
 * next ones) makes every later COPY of a trusted basis fail its file with
 * DS_ESRVCOPY instead of reading the basis across the link: the console
 * sends that file again whole, and the rest of the run whole files.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>

#include "apply_int.h"
#include "distsync/fsutil.h"
#include "distsync/log.h"

/* 1 when e matches size and mtime: as committed, or as HASH found it. */
static int seen_as(const ds_apply_t *ap, const ds_manifest_entry_t *e, uint64_t size, int64_t mtime)
{
    const ds_manifest_entry_t *h = ap->hashed ? ds_manifest_get(ap->hashed, e->path) : NULL;

    if (e->size != size)
        return 0;
    return e->mtime_ns == mtime || (h != NULL && h->size == size && h->mtime_ns == mtime &&
                                    memcmp(h->sha256, e->sha256, DS_SHA256_LEN) == 0);
}

void ds__apply_scopy_trust(ds_apply_t *ap, struct afile *f, const char *name, const struct stat *st)
{
    const ds_manifest_entry_t *e;

    f->basis_trusted = 0;
    if (ap->fs->ops->copy_range == NULL || ap->man == NULL)
        return;
    e = ds_manifest_get(ap->man, name);
    f->basis_trusted =
        e != NULL && seen_as(ap, e, (uint64_t)st->st_size, ds_timespec_ns(&st->st_mtim));
    if (f->basis_trusted)
        memcpy(f->basis_sha, e->sha256, DS_SHA256_LEN);
}

void ds__apply_scopy_hashed(ds_apply_t *ap, const char *name, uint64_t size, int64_t mtime_ns,
                            const uint8_t sha[DS_SHA256_LEN])
{
    const ds_manifest_entry_t *e = ap->man ? ds_manifest_get(ap->man, name) : NULL;

    /* only where a basis would be refused for its mtime alone: the content
     * is the manifest's (at most one entry per manifest entry) */
    if (ap->fs->ops->copy_range == NULL || e == NULL || e->size != size ||
        e->mtime_ns == mtime_ns || memcmp(e->sha256, sha, DS_SHA256_LEN) != 0)
        return;
    if ((ap->hashed != NULL || ds_manifest_new(&ap->hashed) == 0) &&
        ds_manifest_put(ap->hashed, name, size, mtime_ns, sha) == 0)
        return;
    ds_log(DS_LOG_WARN, "%s: '%s': out of memory: a basis with a changed mtime is not trusted",
           ap->root, name); /* copies are then read through the worker, as before */
}

/* The server does not copy on its side: f fails with DS_ESRVCOPY (sent
 * again whole by the console) rather than read its basis across the link.
 * Returns 1 (f failed). */
static int refuse(ds_apply_t *ap, struct afile *f, uint32_t id)
{
    if (!ap->scopy_off)
        ds_log(DS_LOG_WARN,
               "%s: the server does not copy on its side (server-side copy unavailable): files "
               "with a basis are refused, to be sent whole, not built by reading the basis here",
               ap->root);
    ap->scopy_off = 1;
    return ds__apply_file_fail(ap, f, id, DS_ESRVCOPY,
                               "basis '%s': server-side copy unavailable, not read across the "
                               "link (to be sent whole)",
                               f->basis_name),
           1;
}

int ds__apply_scopy_flush(ds_apply_t *ap, struct afile *f, uint32_t id)
{
    uint64_t off = f->pc_off, len = f->pc_len;

    if (len == 0)
        return 0;
    f->pc_len = 0;
    if (ap->fs->ops->copy_range(ap->fs, f->basis_fd, (off_t)off, f->fd, (size_t)len) == 0) {
        ap->stats.bytes_copied += len;
        ap->stats.server_copies++;
        return f->local != NULL ? ds__apply_local_feed(ap, f, id, off, len) : 0;
    }
    if (errno != ENOTSUP)
        return ds__apply_file_fail(ap, f, id, -errno,
                                   "server-side copy of basis '%s' at %" PRIu64 "+%" PRIu64 ": %s",
                                   f->basis_name, off, len, strerror(errno)),
               1;
    return refuse(ap, f, id);
}

int ds__apply_scopy_add(ds_apply_t *ap, struct afile *f, uint32_t id, uint64_t off, uint64_t len)
{
    if (!f->basis_trusted || f->basis_fd < 0)
        return 1;
    if (ap->scopy_off)
        return refuse(ap, f, id), -1;
    if (f->pc_len > 0 && f->pc_off + f->pc_len != off && ds__apply_scopy_flush(ap, f, id))
        return -1;
    ds__apply_local_open(ap, f);
    if (f->pc_len == 0)
        f->pc_off = off;
    f->pc_len += len;
    f->written += len;
    f->spliced = 1;
    f->unhashed |= f->local == NULL; /* no copy on the console: by size */
    return 0;
}

int ds__apply_scopy_verify(ds_apply_t *ap, struct afile *f, uint32_t id,
                           const uint8_t want[DS_SHA256_LEN])
{
    uint8_t sum[DS_SHA256_LEN];
    uint64_t size;
    int fd = -1, rc;

    if (!ap->opts.readback)
        return 0;
    if (ds_fs_fsync(ap->fs, f->fd) < 0) /* what is gathered reaches the file */
        rc = -errno;
    else if ((fd = ds_fs_openat(ap->fs, ap->tmpfd, f->tmpname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC,
                                0)) < 0)
        rc = -errno;
    else
        rc = ds__apply_hash_fd(ap, fd, sum, &size);
    if (rc == 0 && memcmp(sum, want, DS_SHA256_LEN) != 0)
        rc = DS_EHASH;
    if (fd >= 0)
        ds_fs_close(ap->fs, fd);
    if (rc < 0)
        return ds__apply_file_fail(
                   ap, f, id, rc, "read-back of %s/.distsync/tmp/%s: %s", ap->root, f->tmpname,
                   rc == DS_EHASH ? "SHA-256 differs from the expected one" : ds_strerror(rc)),
               1;
    return 0;
}

/*
 * Receiver: the SHA-256 of a file built with server-side copies, computed
 * without reading anything back over the network. The copied bytes never
 * pass through the receiver (apply_scopy.c), but the console holds every
 * basis version a server references (its retain store): the receiver feeds
 * the file's running SHA-256 with the same ranges read from the console's
 * copy of the basis version (ds_apply_opts_t.local, found by the SHA-256
 * of the basis's manifest entry; the copy is checked whole against that
 * SHA-256 first), and the literals as they are written. FILE_COMMIT then
 * compares it with the expected SHA-256 as for any other file: a delta that
 * does not rebuild the file from that version (a corrupted or wrong delta,
 * a decoder bug) fails the file and the tmp file is discarded.
 *
 * What it cannot see: a basis altered on the share with its size and mtime
 * kept (that is verify = readback's). Without a copy of the version on the
 * console, or with one that fails its SHA-256 (the console checked the
 * basis when it computed the delta; a damaged copy says nothing of the
 * delta), the file is checked by size, as before, and that is logged.
 */
#include <inttypes.h>
#include <string.h>

#include "apply_int.h"
#include "distsync/log.h"

void ds__apply_local_open(ds_apply_t *ap, struct afile *f)
{
    const ds_apply_local_t *l = ap->opts.local;
    char hex[2 * DS_SHA256_LEN + 1];
    int rc;

    if (f->local_tried)
        return;
    f->local_tried = 1;
    if (l == NULL)
        return;
    rc = l->open(l->arg, f->basis_sha, f->basis_size, &f->local);
    if (rc == 0) {
        f->local_ops = l;
        return;
    }
    f->local = NULL;
    ds_hex(f->basis_sha, DS_SHA256_LEN, hex);
    ds_log(DS_LOG_WARN,
           "%s: '%s': %s basis '%s' (version %.16s) on the console (%s): the file is "
           "checked by size only",
           ap->root, f->path,
           rc == DS_EHASH || rc == DS_ECORRUPT ? "damaged copy of" : "no copy of", f->basis_name,
           hex, ds_strerror(rc));
}

int ds__apply_local_feed(ds_apply_t *ap, struct afile *f, uint32_t id, uint64_t off, uint64_t len)
{
    while (len > 0) {
        size_t n = len > APPLY_IOBUF ? APPLY_IOBUF : (size_t)len;
        long r = f->local_ops->pread(f->local, off, ap->iobuf, n);

        if (r <= 0)
            return ds__apply_file_fail(
                       ap, f, id, r < 0 ? r : DS_ECORRUPT,
                       "reading the console's copy of basis '%s' at %" PRIu64 ": %s", f->basis_name,
                       off, r < 0 ? ds_strerror((int)r) : "shorter than its size"),
                   1;
        ds_sha256_update(&f->sha, ap->iobuf, (size_t)r);
        ap->stats.bytes_local += (uint64_t)r;
        off += (uint64_t)r;
        len -= (uint64_t)r;
    }
    return 0;
}

void ds__apply_local_close(struct afile *f)
{
    if (f->local != NULL)
        f->local_ops->close(f->local);
    f->local = NULL;
    f->local_ops = NULL;
    f->local_tried = 0;
}

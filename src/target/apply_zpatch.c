/*
 * Receiver: DELTA runs that carry a zpatch (protocol version 3; format in
 * include/distsync/zpatch.h). The basis file is read one record's range at
 * a time (pread into one buffer, ds_zpatch_basis_fd: never mmap, so a basis
 * truncated behind our back fails this file instead of raising SIGBUS in
 * the console's process); output streams into the file's
 * tmp file through ds__apply_file_write (size-checked and hashed there), so
 * the SHA-256 check at FILE_COMMIT is the same as for every other file.
 * Memory: one segment's zstd window (at most DS_ZPATCH_SEG_MAX), its basis
 * range (at most DS_ZPATCH_WINDOW) and 256 KiB; a BSDIFF record (version 5)
 * its basis range (at most DS_ZPATCH_BS_BASIS_MAX, 32 MiB), its control and
 * extra parts and an 8 MiB window (at most 24 MiB besides the range).
 */
#include <stdlib.h>
#include <string.h>

#include "apply_int.h"
#include "distsync/error.h"
#include "distsync/zpatch.h"

struct zout {
    ds_apply_t *ap;
    struct afile *f;
    uint32_t id;
};

/* The decoder's output: written to the tmp file. A failed write has
 * already failed the file; the decoder just stops. */
static int write_out(void *ctx, const uint8_t *p, size_t n)
{
    struct zout *o = ctx;

    return ds__apply_file_write(o->ap, o->f, o->id, p, n) ? DS_EABORTED : 0;
}

int ds__apply_zpatch_sniff(const ds_apply_t *ap, const uint8_t *p, size_t n)
{
    return ap->version >= DS_PROTO_VERSION_ZPATCH && n >= 4 && memcmp(p, DS_ZPATCH_MAGIC, 4) == 0;
}

/* A COPY record as a server-side copy (apply_scopy.c). */
static int zcopy(void *ctx, uint64_t off, uint64_t len)
{
    struct zout *o = ctx;
    int rc = ds__apply_scopy_add(o->ap, o->f, o->id, off, len);

    return rc < 0 ? DS_EABORTED : rc;
}

void ds__apply_zpatch_free(struct afile *f)
{
    ds_zpatch_dec_free(f->zdec);
    f->zdec = NULL;
    ds_zpatch_basis_close(f->zbasis);
    free(f->zbasis);
    f->zbasis = NULL;
}

int ds__apply_zpatch_begin(ds_apply_t *ap, struct afile *f, uint32_t id)
{
    struct zout *o = NULL;

    f->zbasis = calloc(1, sizeof(*f->zbasis) + sizeof(*o));
    if (f->zbasis == NULL)
        return ds__apply_file_fail(ap, f, id, DS_ENOMEM, "out of memory for a zpatch"), 1;
    ds_zpatch_basis_fd(f->zbasis, f->basis_fd, f->basis_size);
    f->zbasis->fs = f->fs;
    o = (struct zout *)(f->zbasis + 1);
    o->ap = ap;
    o->f = f;
    if (f->basis_trusted) { /* COPY records become server-side copies */
        f->zbasis->copy = zcopy;
        f->zbasis->copy_ctx = o;
    }
    if (ds_zpatch_dec_new(f->zbasis, write_out, o, &f->zdec) < 0)
        return ds__apply_file_fail(ap, f, id, DS_ENOMEM, "out of memory for a zpatch"), 1;
    ds_zpatch_dec_max_version(f->zdec, ap->version >= DS_PROTO_VERSION_ONE      ? 3
                                       : ap->version >= DS_PROTO_VERSION_BSDIFF ? 2
                                                                                : 1);
    return 0;
}

/* Fails the file with the decoder's reason (unless a write already did). */
static int zfail(ds_apply_t *ap, struct afile *f, uint32_t id, int rc)
{
    if (!f->failed)
        ds__apply_file_fail(ap, f, id, rc == DS_EABORTED ? DS_EDELTA : rc,
                            "zpatch against basis '%s': %s", f->basis_name,
                            ds_zpatch_dec_error(f->zdec));
    return 1;
}

int ds__apply_zpatch_feed(ds_apply_t *ap, struct afile *f, uint32_t id, const uint8_t *p, size_t n)
{
    struct zout *o = (struct zout *)(f->zbasis + 1);
    int rc;

    o->id = id;
    rc = ds_zpatch_dec_feed(f->zdec, p, n);
    return rc < 0 ? zfail(ap, f, id, rc) : 0;
}

int ds__apply_zpatch_end(ds_apply_t *ap, struct afile *f, uint32_t id)
{
    int rc = ds_zpatch_dec_finish(f->zdec);

    if (rc < 0)
        return zfail(ap, f, id, rc);
    ds__apply_zpatch_free(f); /* the run is over: COPY / LITERAL / commit may follow */
    return 0;
}

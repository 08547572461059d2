/*
 * rsync-style fallback on the console: a librsync delta of a store file
 * against the signature the agent sent (SIG_DATA) of a target file whose
 * content the console cannot read. Used only for unknown target content:
 * everywhere else the console signs a version it holds and no signature
 * crosses the link.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include <librsync.h>

#include "distsync/error.h"
#include "distsync/fsutil.h"
#include "proto/rsjob.h"
#include "sync_int.h"

#define IOBUF (256u * 1024)

uint32_t ds__sync_sig_block(uint64_t size)
{
    /* rsync's rule: about sqrt(size), at least 700 bytes, at most 128 KiB */
    double r = sqrt((double)size);
    uint32_t b = (uint32_t)r & ~7u;

    if (b < 704)
        b = 704;
    if (b > 131072)
        b = 131072;
    return b;
}

/* Parses a signature the target sent: untrusted bytes. */
static int load_sig(const uint8_t *sig, size_t n, rs_signature_t **out)
{
    rs_job_t *job = rs_loadsig_begin(out);
    rs_buffers_t b = {.next_in = (char *)sig, .avail_in = n, .eof_in = 1};
    char dummy[64];
    size_t made;
    int rc;

    if (job == NULL)
        return DS_ENOMEM;
    do
        rc = ds__rsjob_pump(job, &b, dummy, sizeof(dummy), &made);
    while (rc == 0);
    rs_job_free(job);
    if (rc < 0)
        return rc == DS_ENOMEM ? rc : DS_ECORRUPT;
    return rs_build_hash_table(*out) == RS_DONE ? 0 : DS_ENOMEM;
}

/* Streams tfd through the delta job, writing the delta to out_fd. */
static int run_delta(rs_job_t *job, int tfd, int out_fd, char *in, char *out, uint64_t *dsize)
{
    rs_buffers_t b = {0};
    uint64_t off = 0;
    size_t made;
    int rc;

    for (;;) {
        if (b.avail_in == 0 && !b.eof_in) {
            ssize_t r = pread(tfd, in, IOBUF, (off_t)off);

            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return -errno;
            off += (uint64_t)r;
            b.next_in = in;
            b.avail_in = (size_t)r;
            b.eof_in = r == 0;
        }
        rc = ds__rsjob_pump(job, &b, out, IOBUF, &made);
        if (made > 0) {
            int wrc = ds_write_all(out_fd, out, made);

            if (wrc < 0)
                return wrc;
            *dsize += made;
        }
        if (rc == 1)
            return 0;
        if (rc < 0)
            return rc == DS_ENOMEM ? rc : DS_EDELTA;
    }
}

int ds__sync_sig_delta(const uint8_t *sig, size_t n, int tfd, int out_fd, uint64_t *dsize)
{
    rs_signature_t *sumset = NULL;
    rs_job_t *job = NULL;
    char *in = malloc(IOBUF), *out = malloc(IOBUF);
    int rc = in && out ? load_sig(sig, n, &sumset) : DS_ENOMEM;

    *dsize = 0;
    if (rc == 0 && (job = rs_delta_begin(sumset)) == NULL)
        rc = DS_ENOMEM;
    if (rc == 0)
        rc = run_delta(job, tfd, out_fd, in, out, dsize);
    if (job)
        rs_job_free(job);
    if (sumset)
        rs_free_sumset(sumset);
    free(in);
    free(out);
    return rc;
}

/* The one librsync job pump: bounded output slices, input refills, errors,
 * and the stall guard (ds__rsjob_pump in src/proto/rsjob.c). */
#include <stdlib.h>

#include "check.h"
#include "distsync/error.h"
#include "proto/rsjob.h"
#include "session.h"

static uint8_t data[200000];

/* A signature produced through a 100-byte window, with input offered in
 * 7 KiB pieces, equals the one librsync's whole-file call produces. */
static void test_slices_equal_whole(void)
{
    rs_job_t *job = rs_sig_begin(1024, 16, RS_RK_BLAKE2_SIG_MAGIC);
    rs_buffers_t b = {0};
    static uint8_t got[65536];
    size_t off = 0, len = 0, made, calls = 0;
    FILE *in = fmemopen(data, sizeof(data), "rb");
    char *want = NULL;
    size_t wantn = 0;
    FILE *sig = open_memstream(&want, &wantn);
    int rc = 0;

    CHECK(rs_sig_file(in, sig, 1024, 16, RS_RK_BLAKE2_SIG_MAGIC, NULL) == RS_DONE);
    fclose(in);
    fclose(sig);
    while (rc == 0 && calls++ < 100000) {
        if (b.avail_in == 0 && !b.eof_in) {
            size_t k = sizeof(data) - off < 7168 ? sizeof(data) - off : 7168;

            b.next_in = (char *)data + off;
            b.avail_in = k;
            b.eof_in = k == 0;
            off += k;
        }
        CHECK(len + 100 <= sizeof(got));
        if (len + 100 > sizeof(got))
            break;
        rc = ds__rsjob_pump(job, &b, got + len, 100, &made);
        CHECK(made <= 100);
        len += made;
    }
    CHECK_INT(rc, 1);
    CHECK(len == wantn && memcmp(got, want, len) == 0);
    rs_job_free(job);
    free(want);
}

/* Bytes that are not a signature: refused, not looped on. */
static void test_garbage_signature(void)
{
    rs_signature_t *sumset = NULL;
    rs_job_t *job = rs_loadsig_begin(&sumset);
    rs_buffers_t b = {.next_in = "garbage!garbage!", .avail_in = 16, .eof_in = 1};
    char out[64];
    size_t made;

    CHECK_INT(ds__rsjob_pump(job, &b, out, sizeof(out), &made), DS_EDELTA);
    rs_job_free(job);
    if (sumset)
        rs_free_sumset(sumset);
}

/* A signature cut short at end of input ends with an error, not a hang. */
static void test_truncated_at_eof(void)
{
    FILE *in = fmemopen(data, sizeof(data), "rb");
    char *sig = NULL;
    size_t n = 0, made;
    FILE *out = open_memstream(&sig, &n);
    rs_signature_t *sumset = NULL;
    rs_job_t *job;
    rs_buffers_t b = {0};
    char dummy[64];
    int rc;

    CHECK(rs_sig_file(in, out, 1024, 16, RS_RK_BLAKE2_SIG_MAGIC, NULL) == RS_DONE);
    fclose(in);
    fclose(out);
    job = rs_loadsig_begin(&sumset);
    b.next_in = sig;
    b.avail_in = n / 2 + 5; /* mid-block */
    b.eof_in = 1;
    rc = ds__rsjob_pump(job, &b, dummy, sizeof(dummy), &made);
    CHECK(rc == DS_EDELTA || rc == DS_ECORRUPT);
    rs_job_free(job);
    if (sumset)
        rs_free_sumset(sumset);
    free(sig);
}

int main(void)
{
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)((i * 2654435761u) >> 11);
    RUN(test_slices_equal_whole);
    RUN(test_garbage_signature);
    RUN(test_truncated_at_eof);
    return CHECK_DONE();
}

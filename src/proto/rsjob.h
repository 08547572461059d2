/* One pump for every librsync job (signature, loadsig, delta, patch): the
 * only caller of rs_job_iter, with the stall guard, and the one place that
 * routes librsync's log. */
#ifndef DS_RSJOB_H
#define DS_RSJOB_H

#include <stddef.h>

#include <librsync.h>
#include "distsync/error.h"

/*
 * Runs job over the input in b (next_in/avail_in; the caller sets eof_in
 * once no more input will come) into out[0, cap), calling rs_job_iter until
 * the job is done, has taken all the input and wants more, or has filled
 * out. *made is the number of bytes written to out; b->next_in/avail_in
 * tell what input is left.
 * Returns 1 when the job is done, 0 when it wants more input
 * (b->avail_in == 0 && !b->eof_in) or more output room (*made == cap),
 * DS_ENOMEM, DS_EDELTA when librsync refuses the stream (bad magic, corrupt
 * data, a copy callback's error; the reason is logged at debug level), or
 * DS_ECORRUPT when iterations move neither input nor output although both
 * are possible (a truncated or stuck stream, which would loop forever).
 */
DS_MUST_CHECK int ds__rsjob_pump(rs_job_t *job, rs_buffers_t *b, void *out, size_t cap,
                                 size_t *made);

#endif

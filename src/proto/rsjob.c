/*
 * librsync job pump: every job (signature, loadsig, delta, patch) in the
 * library is driven here, so each gets the same stall guard and librsync's
 * trace output goes to ds_log instead of stderr.
 */
#include <pthread.h>

#include "distsync/error.h"
#include "distsync/log.h"
#include "rsjob.h"

/* Iterations in a row without progress before a job counts as stuck;
 * librsync may change state once or twice without moving a byte. */
#define RSJOB_MAX_STALLS 3

static pthread_once_t trace_once = PTHREAD_ONCE_INIT;

static void trace_fn(rs_loglevel level, char const *msg)
{
    (void)level; /* the caller reports the failure with its context */
    ds_log(DS_LOG_DEBUG, "librsync: %s", msg);
}

static void trace_init(void)
{
    rs_trace_to(trace_fn);
    rs_trace_set_level(RS_LOG_ERR);
}

static int map_result(rs_result res)
{
    ds_log(DS_LOG_DEBUG, "librsync job failed: %s", rs_strerror(res));
    return res == RS_MEM_ERROR ? DS_ENOMEM : DS_EDELTA;
}

int ds__rsjob_pump(rs_job_t *job, rs_buffers_t *b, void *out, size_t cap, size_t *made)
{
    int stalls = 0;

    pthread_once(&trace_once, trace_init);
    *made = 0;
    for (;;) {
        size_t in0 = b->avail_in, room = cap - *made;
        rs_result res;

        b->next_out = (char *)out + *made;
        b->avail_out = room;
        res = rs_job_iter(job, b);
        *made += room - b->avail_out;
        if (res == RS_DONE)
            return 1;
        if (res != RS_BLOCKED)
            return map_result(res);
        if (*made == cap || (b->avail_in == 0 && !b->eof_in))
            return 0;
        if (b->avail_in == in0 && b->avail_out == room) {
            if (++stalls >= RSJOB_MAX_STALLS)
                return DS_ECORRUPT;
        } else {
            stalls = 0;
        }
    }
}

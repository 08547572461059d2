/* Scan internals: the hashing worker pool (scan_hash.c) used by the walker
 * (scan.c). */
#ifndef DS_SCAN_INT_H
#define DS_SCAN_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>

#include "distsync/chunker.h"
#include "distsync/digest.h"
#include "distsync/error.h"

/* One file to hash. The walker fills the request part; a worker fills the
 * result part. */
struct scan_job {
    struct scan_job *next;
    /* request */
    char *path;          /* relative to the store root, owned */
    const char *klass;   /* borrowed from the scan options */
    int had_row;         /* the catalog had a row for path */
    int64_t old_content; /* its content id (0: none) */
    /* result */
    int err;          /* 0, or the reason the file was skipped */
    const char *what; /* static warning text when err < 0 */
    int unreadable;   /* err is a scan error: the file cannot be read */
    struct stat st;   /* fstat taken before reading (equal to the one after);
                         the walker's stat until then */
    uint64_t bytes;   /* bytes read */
    uint8_t sha256[DS_SHA256_LEN];
    uint8_t *chunks; /* nchunks records of DS_CATALOG_CHUNK_REC bytes, owned */
    uint32_t nchunks, cap;
};

struct scan_pool {
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    struct scan_job *todo, *todo_tail;
    struct scan_job *done, *done_tail;
    size_t inflight; /* submitted and not yet collected */
    size_t ndone;    /* finished and not yet collected */
    int stop;
    int rootfd;
    ds_chunker_params_t params;
    pthread_t *threads;
    unsigned nthreads;
    _Atomic uint64_t bytes_read; /* live count, for progress */
};

/* Starts n workers reading files under rootfd (borrowed: must stay open
 * until ds__scan_pool_stop). Returns 0 or a negative error. */
DS_MUST_CHECK int ds__scan_pool_start(struct scan_pool *p, int rootfd,
                                      const ds_chunker_params_t *params, unsigned n);

/* Queues job; the pool owns it until collected. */
void ds__scan_pool_submit(struct scan_pool *p, struct scan_job *job);

/* Returns a finished job (the caller owns it again), waiting up to wait_ms
 * for one; NULL when none is ready in time or nothing is in flight. */
struct scan_job *ds__scan_pool_collect(struct scan_pool *p, int wait_ms);

/* Discards queued jobs, joins the workers and frees what the pool holds.
 * Safe on a pool that failed to start or was zeroed. */
void ds__scan_pool_stop(struct scan_pool *p);

/* Frees a job. NULL is a no-op. */
void ds__scan_job_free(struct scan_job *job);

#endif

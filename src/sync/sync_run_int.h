/*
 * One server's run as a phase machine (src/sync_run.c), its results and
 * records (src/sync_events.c). The engine (src/engine.c) steps it; a run
 * never blocks: it says what it waits for (fds and directions, a wake time,
 * or a job for a worker thread).
 */
#ifndef DS_SYNC_RUN_INT_H
#define DS_SYNC_RUN_INT_H

#include <stdint.h>

#include "sync_int.h"
#include "distsync/verify.h"
#include "distsync/error.h"

/* A cancelled run waits at most this long on a silent target while it
 * winds down (seconds). */
#define DS_RUN_WIND_DOWN_S 10
/* Longest sleep between two steps: a ds_sync_cancel() flag and lease
 * renewals are seen within it (nanoseconds). */
#define DS_RUN_TICK_NS 1000000000LL
/* After a cancel, how long a close stepped on the loop may still end politely. */
#define DS_RUN_CLOSE_GRACE_NS 3000000000LL
/* Deltas computed ahead of the file being sent, per run. */
#define DS_RUN_PREFETCH 4
/* Warm-up jobs (deltas computed while runs connect) in flight, for all
 * the runs of a ds_sync_t together: the worker pool keeps threads free for
 * the transports' opens (sync_prefetch.c). */
#define DS_SYNC_WARM 2

/* Work a run hands to a worker thread: fn(job) runs there (it must not
 * touch the catalog), then the engine marks it done and steps the run. */
typedef struct ds_run_job ds_run_job_t;
struct ds_run_job {
    void (*fn)(ds_run_job_t *j);
    int queued, done;
    void *engine; /* the engine's per-job state (uv_work_t) */
};

/* What a step leaves the run waiting for. */
typedef struct ds_run_wait {
    int again;                               /* step again at once (a transport without fds) */
    int rfd, wfd;                            /* poll rfd for reading, wfd for wev; -1: none */
    short wev;                               /* POLLOUT or 0 */
    int64_t wake_ns;                         /* step at this monotonic instant at the latest */
    ds_run_job_t *jobs[DS_RUN_PREFETCH + 5]; /* to queue now (NULL-ended): deltas, the
                                                next block, retain, open or close */
    int done;                                /* the run ended: see its result */
} ds_run_wait_t;

typedef struct ds_run ds_run_t;

/* The run's phases, in order; a cancel jumps to WIND_*, a failure to
 * TCLOSE. */
enum ds_run_phase {
    RP_START,
    RP_OPEN,  /* transport opening: stepped (ssh://) or on a worker */
    RP_READY, /* HELLO, LEASE, MANIFEST_GET, LIST */
    RP_HASH,  /* HASH of uncertain target files */
    RP_PLAN,
    RP_SIGS,    /* rsync fallback signatures */
    RP_SEND,    /* creates, updates, deletes */
    RP_COMMIT,  /* MANIFEST_COMMIT, the MANIFEST_GET of what was published
                   and BYE, sent together */
    RP_CLOSE,   /* LEASE release, BYE */
    RP_CLOSING, /* BYE acknowledged */
    RP_WIND_READY,
    RP_WIND_IDLE,
    RP_WIND_COMMIT,
    RP_WIND_REFRESH,
    RP_WIND_BYE,
    RP_RETRY,      /* the link dropped: its transport closing on a worker */
    RP_RETRY_WAIT, /* the backoff before the next connect */
    RP_TCLOSE,     /* transport closing on a worker */
    RP_DONE,
};

/* Pacing hooks the engine gives a run (NULL: none): the transport the
 * session writes to is wrapped (see engine_pace.c). */
typedef struct ds_run_pace {
    /* wraps t; returns the transport the session should use (it
     * forwards close, kill and free to t) or NULL (out of memory) */
    ds_transport_t *(*wrap)(void *ctx, ds_transport_t *t);
    /* the session over the wrapped transport (control bytes, rate) */
    void (*bind)(void *ctx, ds_session_t *ss);
    /* 1 when writes are held by the cap, with *wake its monotonic instant */
    int (*throttled)(void *ctx, int64_t *wake);
    /* the session's output is empty: its share goes to the others */
    void (*idle)(void *ctx, int64_t now);
    /* the server's cap now in bytes/s: 0 none, 1 paused (NULL: none) */
    uint64_t (*rate)(void *ctx);
    void *ctx;
} ds_run_pace_t;

/* A delta computed ahead on a worker (the catalog lookups are done on
 * the loop thread first: basis is a store file, or NULL when none). */
struct ds_run_prefetch {
    ds_run_job_t job;
    struct ds_run *r;
    size_t idx;               /* plan item */
    const ds_plan_item_t *it; /* that item (of the warm-up plan when warm) */
    int warm;                 /* a warm-up job, counted in the ds_sync_t's warm_fly */
    struct ds_pf_src src;     /* what its job reads */
    int fmt;                  /* DS_DELTA_FMT_*, DS_DELTA_QUICK or'ed in for a quick delta */
    _Atomic int stop;         /* set on the loop: nobody wants the delta now, the job gives up */
    int news;                 /* what the job found: DS_PF_* (sync_int.h) */
    /* the delta: basis and target content (the key of the cache entry) */
    uint8_t bsha[DS_SHA256_LEN], tsha[DS_SHA256_LEN];
    int flying;  /* in the ds_sync_t's list (sync_prefetch.c) */
    int held;    /* planned, its job not queued yet ... */
    int waiting; /* ... because another job computes the same delta */
};

struct ds_run {
    ds_sync_t *sy;
    const ds_server_cfg_t *srv;
    ds_sync_result_t *res;
    ds_sync_mode_t mode;
    const char *trigger;      /* recorded with the run (NULL: "manual") */
    const ds_strlist_t *only; /* the classes acted on (NULL: the server's) */
    enum ds_run_phase phase;
    int64_t t0;
    ds_transport_t *t; /* the transport (paced wrapper when pacing) */
    ds_session_t *ss;
    ds_run_pace_t pace;
    int has_pace;
    const ds_spawner_t *spawner;   /* agents under the engine's loop (NULL: fork) */
    const ds_resolver_t *resolver; /* DNS on the engine's loop (NULL: blocking) */
    /* an ssh:// open stepped on the loop (NULL: none, or open_job) */
    ds_transport_opening_t *opening;
    /* asks the engine to step the run soon (NULL: its tick steps it) */
    void (*wake)(void *arg);
    void *wake_arg;
    int reaped; /* the transport's child was reaped */
    /* a close stepped on the loop: when a cancel found it (0: none), and
     * whether it was then cut */
    int64_t close_cancel_at;
    int close_killed;
    /* open and close on a worker */
    ds_run_job_t open_job, close_job;
    /* the sender's next block, read and compressed on a worker */
    ds_run_job_t send_job;
    int job_rc;
    char job_err[512];
    ds_transport_t *raw; /* opened by the worker */
    /* retaining the versions the target references, on a worker
     * (sync_retain.c): planned by ds__run_remember, queued when the
     * engine's retain handle is free, collected before the run ends */
    ds_run_job_t retain_job;
    ds_sync_retain_t *rt;
    int rt_early;   /* rt: the plan's new versions, begun as sending started */
    int rt_again;   /* committed while it ran: the manifest's versions next */
    int rt_planned; /* early jobs planned: RT_WARM, RT_SEND (once a run each) */
    /* delta prefetch: slot i serves plan items in turn */
    struct ds_run_prefetch pf[DS_RUN_PREFETCH];
    size_t pf_next;    /* next plan item to consider */
    uint8_t *pf_state; /* per item: 0 none, 1 queued, 2 done */
    /* warm-up while connecting: the plan against the manifest the target
     * confirmed last, its next item, the format its receiver applied */
    ds_plan_t *warm;
    size_t warm_next, warm_landed; /* warm_landed: its jobs that came back */
    int warm_fmt, warm_done;
    int64_t run_id; /* 0: not recorded */
    ds_plan_want_t *want;
    size_t nwant;
    ds_plan_have_t *have;
    size_t nhave;
    ds_plan_hash_t *hashes;
    size_t nhashes, hash_cap;
    struct sender *sd;
    uint8_t **sig; /* per plan item: the target file's signature (rsync) */
    size_t *siglen;
    int sender_done, manifest_done;
    /* a verify run (sync_run_verify.c; NULL: sync, plan or status): its
     * result, and the manifest entries HASHed (sorted; tag: the index) */
    ds_verify_result_t *vres;
    const ds_manifest_entry_t **vman;
    size_t vn;
    int scanned;          /* the catalog has a completed scan */
    int cancelling;       /* ds_sync_cancel() seen: winding down */
    int rec_rc;           /* first failure to write the run's record, or 0 */
    char first_fail[400]; /* the first failed file: "PATH: reason" ("": none) */
    const char *rec_what; /* what could not be recorded (static) */
    uint64_t files_done, files_total, bytes_done, bytes_total;
    /* progress within files (sync_events.c): the sender's queued target
     * bytes of the files done (the rest is in flight); the last report */
    uint64_t prog_acked, prog_files;
    int64_t prog_ns;
    /* inactivity watchdog: only time waiting on the target counts */
    uint64_t moved;
    int64_t silent_ns, wait_since; /* wait_since 0: not waiting on it */
    const char **cls;              /* the classes acted on: the server's, within the run's */
    size_t ncls;
    const char **absent; /* those of cls whose folder is missing from the store */
    size_t nabsent;
    /* reconnects after a dropped link (sync_retry.c) */
    unsigned attempt; /* reconnects so far */
    int linked_once;  /* a session reached READY (a link that worked) */
    int64_t retry_at; /* RP_RETRY_WAIT: when to connect again */
    struct {          /* the counters of the earlier attempts */
        uint64_t out, in, literal, delta, wire_out, wire_in;
    } prev;
    int no_basis; /* server-side copy unavailable: whole files (sync_whole.c) */
    /* sync_pipeline.c: the session's options (with the target cache) made
     * before the open, auto's prelude for its probe, whether this attempt
     * pipelines the first requests behind HELLO, and never again in this
     * run once an agent refused it */
    ds_session_opts_t so;
    uint8_t *prelude;
    size_t nprelude;
    int pipeline, no_pipeline;
};

/* sync_events.c: failures, events, results (one run). */
int ds__run_fail(struct ds_run *r, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A busy lease: "server X is being synced by console Y ...". */
DS_MUST_CHECK int ds__run_fail_busy(struct ds_run *r, const char *msg);
void ds__run_event(struct ds_run *r, int kind, int level, const char *path, const char *outcome,
                   const char *msg);
void ds__run_progress(struct ds_run *r);
/* Records the lines the target wrote on its side channel since the last
 * call (the agent's stderr over SSH; bounded by the transport) as events. */
void ds__run_notes(struct ds_run *r);
/* Handles the session's results and the sender's console-side failures,
 * their events in one transaction. Returns 0 or < 0 (run failed). */
DS_MUST_CHECK int ds__run_take_results(struct ds_run *r);
/* A store file the scan could not read: not shipped, so the run fails. */
void ds__run_unreadable(struct ds_run *r, const ds_plan_item_t *it);
/* Records the manifest the target now has and plans the retaining of its
 * versions (r->rt: the job sync_run.c queues). */
void ds__run_remember(struct ds_run *r);
/* Begins the run's record (RUN mode). Returns 0 or < 0 (reported). */
DS_MUST_CHECK int ds__run_record_begin(struct ds_run *r);
/* Final result and the run's record. */
void ds__run_finish(struct ds_run *r);

/* sync_retry.c: reconnecting after a dropped link. retry_begin: 1 when
 * the failure just recorded (res->rc) gets another attempt (event
 * recorded, failure cleared, r->retry_at set), 0 when the run fails.
 * retry_idle: 1 when no prefetch job of the attempt is out. retry_reset:
 * once the transport closed and the jobs are back, frees what the attempt
 * built (its counters kept for the result). retry_wait: the backoff: 1
 * when it is over, 0 while it lasts (w's wake time set), -1 when the sync
 * was cancelled meanwhile (the run failed as cancelled). retry_resumed: a
 * session is READY (records "reconnected" after a retry). */
int ds__run_retry_begin(struct ds_run *r, int64_t now);
int ds__run_retry_idle(const struct ds_run *r);
void ds__run_retry_reset(struct ds_run *r);
DS_MUST_CHECK int ds__run_retry_wait(struct ds_run *r, int64_t now, ds_run_wait_t *w);
void ds__run_retry_resumed(struct ds_run *r);

/* sync_whole.c: x is a file the receiver refused with DS_ESRVCOPY (its
 * server does not copy on its side): queues it to be sent again whole,
 * switches the run to whole files (r->no_basis, one event) and returns 1;
 * 0 when x is another result, or was refused twice (then a failure). */
DS_MUST_CHECK int ds__run_srvcopy_refused(struct ds_run *r, const ds_session_result_t *x);
/* At the start of a run: a server remembered not to copy on its side
 * (ds_sync_srvcopy_off) gets whole files from the start (r->no_basis, one
 * event); an expired record is dropped (and the run probes again). */
void ds__run_srvcopy_recall(struct ds_run *r);

/* sync_run_io.c: hands j to the engine (queued when the step returns). */
void ds__run_queue_job(ds_run_wait_t *w, ds_run_job_t *j);
/* Checks the target, then starts the transport's open: stepped on the
 * loop (ssh://), else queued on a worker. Returns 0 or < 0 (the run
 * failed). */
DS_MUST_CHECK int ds__run_connect_begin(struct ds_run *r, ds_run_wait_t *w);
/* Steps the stepped open (the socket and deadline it waits for go into
 * w), or hands its blocking rest or a whole open to a worker. Returns 1
 * once the open is over (r->raw, or r->job_rc < 0 with r->job_err), 0
 * while it goes on. */
DS_MUST_CHECK int ds__run_open_step(struct ds_run *r, int64_t now, ds_run_wait_t *w);
/* The open is back: starts the agent (on the loop), the session on the
 * transport. Returns 0 or < 0 (the run failed). */
DS_MUST_CHECK int ds__run_connect_end(struct ds_run *r);
/* Worker jobs: the transport's close; the sender's next block. */
void ds__run_close_work(ds_run_job_t *j);
void ds__run_send_work(ds_run_job_t *j);
/* The retain job (ds__run_remember planned it): queued once the engine's
 * retain handle is free, collected when done. Returns 1 when nothing is
 * left to retain, 0 while the run waits for it. */
DS_MUST_CHECK int ds__run_retain_step(struct ds_run *r, int64_t now, ds_run_wait_t *w);
/* In any phase: a retain job that is done is collected (and the next
 * one planned, ds__run_retain_step), so the engine's one retain handle
 * does not wait for the run's next retain step (a run in READY, HASH,
 * COMMIT or winding down) while other runs' jobs wait for it. */
void ds__run_retain_collect(struct ds_run *r, int64_t now, ds_run_wait_t *w);
/* While the run connects (plan: the warm-up's, against the manifest the
 * target confirmed last; which RT_WARM) and as it starts sending (its own
 * plan; RT_SEND): plans, once for each, the job retaining the new versions
 * plan sends that are not retained yet, and steps it (sync_retain.c). */
#define RT_WARM 1
#define RT_SEND 2
void ds__run_retain_early(struct ds_run *r, const ds_plan_t *plan, int which, int64_t now,
                          ds_run_wait_t *w);
/* After the close: 1 once the transport's child exited (its exit wakes
 * the run; a bad exit becomes the close's error), 0 while it waits. */
/* Steps the transport's close on the loop (one whose close steps):
 * marks close_job queued, then done when closed (job_rc its result). A
 * cancel cuts it DS_RUN_CLOSE_GRACE_NS later. Returns 1 once closed. */
int ds__run_close_step(struct ds_run *r, int64_t now, ds_run_wait_t *w);
DS_MUST_CHECK int ds__run_reap(struct ds_run *r, int64_t now, ds_run_wait_t *w);

/* sync_prefetch.c: collects finished prefetch jobs and queues the deltas
 * of the next items (0 or < 0: the run failed); the sender's gate: 1 when
 * item idx may start (its delta is in the cache, or it needs none). */
DS_MUST_CHECK int ds__run_prefetch(struct ds_run *r, ds_run_wait_t *w);
DS_MUST_CHECK int ds__run_prefetch_ready(void *ctx, size_t idx);
/* Collects r's finished prefetch jobs (any phase): the runs waiting for
 * the same deltas are woken. */
void ds__run_prefetch_collect(struct ds_run *r);
/* Before its plan (connecting, HELLO, LIST, HASH): queues the deltas a
 * sync run will likely want, planned against the manifest its target
 * confirmed last (ds_sync_plan_known), on free prefetch slots and within
 * the ds_sync_t's DS_SYNC_WARM; a pair cached or in flight is skipped, and
 * so is a file of a class the run leaves out (--class); none for a run
 * sent whole files (SFTP, a share remembered to refuse server-side copy).
 * The run's prefetch then finds them cached, or waits for the job. */
void ds__run_warm(struct ds_run *r, ds_run_wait_t *w);
/* The plan is made: the warm-up ends (its jobs in flight finish), and the
 * debug log says how many of its jobs came back before. */
void ds__run_warm_end(struct ds_run *r);
/* After a step: r's prefetch jobs in flight give up (ds__sender_prefetch's
 * stop) once r is past sending (ended, failed, cancelled; not between two
 * attempts) and no slot of any run waits for their delta: the run's end
 * (it waits for its jobs) is not held back by deltas nobody sends. */
void ds__run_prefetch_stop(struct ds_run *r);
/* r's prefetch slots leave the batch's list (before they are freed or
 * reset): the runs waiting for their deltas are woken. */
void ds__run_prefetch_forget(struct ds_run *r);

/* sync_run_verify.c: a verify run. record: its "verify" record (a
 * failure is logged; the check still runs). begin: the session is READY:
 * queues HASH of every manifest entry of the run's classes (0 or < 0: the
 * run failed). result: one HASH answer against its entry (0 or < 0).
 * end: fills the verify result from the run's and ends the record. */
void ds__run_verify_record(struct ds_run *r);
DS_MUST_CHECK int ds__run_verify_begin(struct ds_run *r);
DS_MUST_CHECK int ds__run_verify_result(struct ds_run *r, const ds_session_result_t *x);
void ds__run_verify_end(struct ds_run *r);

/* Creates a run of srv in mode; res is filled as it goes. trigger and only
 * (borrowed for the run's life) are the run's trigger and classes (NULL:
 * "manual", the server's). Returns 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds__run_new(ds_sync_t *sy, const ds_server_cfg_t *srv, ds_sync_mode_t mode,
                              const char *trigger, const ds_strlist_t *only, ds_sync_result_t *res,
                              const ds_run_pace_t *pace, ds_run_t **out);

/* Advances as far as it can without blocking (now: CLOCK_MONOTONIC ns) and
 * fills *w with what it waits for. Jobs in w->jobs must be queued (and
 * the run stepped once each is done). */
void ds__run_step(ds_run_t *r, int64_t now, ds_run_wait_t *w);

/* Agents (transport = agent on file://) of run r are started by sp, on
 * the loop thread (borrowed for the run's life). Before its first step. */
void ds__run_set_spawner(ds_run_t *r, const ds_spawner_t *sp);

/* ssh:// DNS lookups of run r go through rv, on the loop thread (borrowed
 * for the run's life; NULL: a blocking lookup). Before its first step. */
void ds__run_set_resolver(ds_run_t *r, const ds_resolver_t *rv);

/* wake(arg) asks the engine to step run r soon, from the loop thread
 * (while another run steps: it must not step r at once). Before its first
 * step. */
void ds__run_set_wake(ds_run_t *r, void (*wake)(void *arg), void *arg);

/* Makes r (made in DS_SYNC_PLAN mode: a read-only session) a verify run
 * filling *v (borrowed for the run's life; zeroed by the caller). Before
 * its first step. */
void ds__run_set_verify(ds_run_t *r, ds_verify_result_t *v);

/* The server of a run. */
const ds_server_cfg_t *ds__run_server(const ds_run_t *r);

/* Frees a run (ended or not: a run not ended is torn down, its transport
 * killed). NULL is a no-op. */
void ds__run_free(ds_run_t *r);

/* Runs jobs inline: a driver without workers (tests). */
void ds__run_job_inline(ds_run_job_t *j);

/* sync_pipeline.c */
/* Before an open: the run's session options into r->so (the target
 * cache loaded), and whether the attempt pipelines (r->pipeline: an agent
 * over ssh:// whose last session spoke version 4 or later, a known copy,
 * no refusal earlier in the run); for auto, the prelude its probe writes
 * (r->prelude). Failures only mean no cache or no pipelining. */
void ds__run_opts_prepare(struct ds_run *r);
/* After the open (r->raw): moves r->so into *so for ds_session_new (the
 * session owns the target cache from there), pipelining only when the
 * transport is the agent's and, for auto, its probe's prelude was
 * answered. */
void ds__run_opts_take(struct ds_run *r, ds_session_opts_t *so);
/* Frees what r->so and r->prelude hold (a run that ends before its
 * session, or a new attempt). */
void ds__run_opts_drop(struct ds_run *r);
/* A failed attempt that pipelined and had no HELLO_OK: when its agent
 * refused the pipelined HELLO, sets the run to start over at once without
 * pipelining (an event says so) and returns 1; else forgets the recorded
 * version when the agent may have had the requests, and returns 0. */
int ds__run_pipeline_failed(struct ds_run *r, int64_t now);

#endif

/* Sync internals shared by sync.c (driver), sync_state.c (desired set,
 * oracle, retain) and sync_send.c (plan items to frames). */
#ifndef DS_SYNC_INT_H
#define DS_SYNC_INT_H

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include "distsync/catalog.h"
#include "distsync/delta.h"
#include "distsync/plan.h"
#include "distsync/retain.h"
#include "distsync/session.h"
#include "distsync/sync.h"
#include "distsync/transport.h"
#include "distsync/error.h"

/* Idle retain handles a ds_sync_t keeps for its worker jobs, at most. */
#define DS_SYNC_RPOOL 16

/* One store file of the catalog snapshot. content_id 0: unreadable in the
 * store (the scan could not read it; sha256 is zero). */
struct sfile_row {
    char *path, *klass;
    uint64_t size;
    int64_t mtime_ns;
    int64_t content_id;
    uint8_t sha256[DS_SHA256_LEN];
    /* pinned snapshots (sync_pin.c): the version's bytes when the store's
     * file no longer holds them (a copy from the retain store; NULL: the
     * store file), or gone: not retained either, never shipped; stale:
     * the store's file no longer holds this version (its file row id was 0) */
    char *src;
    int gone, stale;
};

struct ds_sync {
    ds_sync_opts_t o;
    ds_catalog_t *cat;
    ds_retain_t *ret;   /* the loop thread's handle */
    ds_retain_t *ret_w; /* the retain job's handle (sync_retain.c; opened there) */
    int retain_busy;    /* a retain job holds ret_w */
    /* the retain store's directory (STATE/retain) */
    char retain_dir[4096];
    /* the worker jobs' idle retain handles (sync_rpool.c), under rpool_mu,
     * and how many were opened and taken since the last drain */
    pthread_mutex_t rpool_mu;
    ds_retain_t *rpool[DS_SYNC_RPOOL];
    size_t nrpool;
    unsigned rpool_opens, rpool_takes;
    ds_delta_cache_t *dc;
    char console_id[256], host[256];
    /* catalog snapshot: rows by path, and indexes by content id */
    struct sfile_row *rows;
    size_t nrows;
    struct sfile_row **by_content; /* sorted by content_id (gone rows left out) */
    size_t nby_content;
    int loaded;
    int64_t pin_gen; /* ds_sync_pin: the generation planned against (0: the newest) */
    char *pin_what;  /* its description, for messages */
    /* answers shared by the servers of a batch (sync_state.c): content ids,
     * best bases, versions known to be retained */
    struct sync_memo *memo;
    /* compressed frames shared by the servers' sessions */
    ds_session_zcache_t *zcache;
    /* the prefetch slots of the batch's runs whose job computes a delta,
     * and those waiting for one of them (sync_prefetch.c; loop thread):
     * a fan-out computes each delta once */
    struct ds_run_prefetch **pf_fly;
    size_t npf_fly, pf_fly_cap;
    /* of those, the warm-up jobs of runs still connecting (at most
     * DS_SYNC_WARM; sync_prefetch.c) */
    unsigned warm_fly;
    /* the sender's read buffer, kept between servers (fresh pages cost) */
    uint8_t *send_buf;
    /* set by ds_sync_cancel() (from a signal handler): runs wind down */
    volatile sig_atomic_t cancel;
    /* repair (sync_verify.c): paths HASHed even when the listing agrees with
     * the manifest, and the kind of run recorded ("sync" when NULL) */
    const char *const *force_hash;
    size_t nforce_hash;
    const char *run_kind;
    /* the engine ds_sync_server() runs its batch of one on (made by the
     * engine layer on first use; ds_sync_close frees it through
     * engine_free, so this layer does not call the one above it) */
    struct ds_engine *engine;
    void (*engine_free)(struct ds_engine *e);
};

/* sync_precompute.c: the server's last-known manifest (*m, caller frees)
 * as the target's manifest and listing (*have, caller frees; every entry a
 * clean regular file, paths borrowed from *m). *m NULL: the catalog knows
 * none. Returns 0 or < 0. */
DS_MUST_CHECK int ds__sync_last_known(ds_sync_t *s, const ds_server_cfg_t *srv, ds_manifest_t **m,
                                      ds_plan_have_t **have, size_t *nhave);
/* m's entries as the target's listing (*have, caller frees; every entry a
 * clean regular file, paths borrowed from m). Returns 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds__sync_have_of(const ds_manifest_t *m, ds_plan_have_t **have, size_t *nhave);

/* sync_send.c: opens store file path for reading, expecting a regular
 * file of size bytes; -1 when it is not that (or cannot be opened). */
int ds__sync_open_sized(const char *path, uint64_t size);
/* sync_send.c: the delta format (DS_DELTA_FMT_*) a receiver speaking
 * protocol version applies; remote_basis: its basis reads cross the WAN
 * (an SMB worker). */
int ds__sync_delta_fmt(unsigned version, int remote_basis);
/* sync_precompute.c: the delta format srv's receiver applied in its last
 * run (the catalog's record; an smb:// server's reads cross the WAN), the
 * newest protocol's when none is recorded. */
int ds__sync_server_fmt(ds_sync_t *s, const ds_server_cfg_t *srv);

/* sync_send.c: the delta of it in format fmt (DS_DELTA_FMT_*) from the
 * delta cache, computed if needed: the basis from a store file holding that
 * content, else from the retain store. *dfd (caller closes) holds *dsize
 * bytes. Returns 0 or < 0 (DS_ENOTFOUND: the console holds no basis). */
DS_MUST_CHECK int ds__sync_delta_get(ds_sync_t *sy, int fmt, const ds_plan_item_t *it, int tfd,
                                     int *dfd, uint64_t *dsize);

/* sync_state.c */
/* Loads the catalog snapshot once. Returns 0 or < 0. */
DS_MUST_CHECK int ds__sync_load(ds_sync_t *s);
/* zpatch levels (README "Delta levels"). ahead: of the deltas computed
 * before a sync (ds_sync_precompute): [console] delta_level, else 19. run:
 * of a delta a sync must compute itself, none being cached at that level
 * or above, while its server waits: sync_delta_level, else the lower of
 * DS_SYNC_LEVEL_DEFAULT and the ahead level (on the libc6 update, level 12
 * costs a fifth of level 19's CPU for 0.75% more bytes). */
#define DS_SYNC_LEVEL_DEFAULT 12
int ds__sync_ahead_level(const ds_config_t *cfg);
int ds__sync_run_level(const ds_config_t *cfg);
/* Drops the snapshot (and the memo): the next ds__sync_load() reads the
 * catalog again, so a long-lived engine sees new scans. */
void ds__sync_snapshot_reset(ds_sync_t *s);
/* The store row holding content id (NULL when no current file has it). */
const struct sfile_row *ds__sync_row_by_content(const ds_sync_t *s, int64_t id);
/* The row of path in the snapshot (NULL: none). */
const struct sfile_row *ds__sync_row_by_path(const ds_sync_t *s, const char *path);
/* Fills an oracle backed by the catalog and retain store. */
void ds__sync_oracle(ds_sync_t *s, ds_plan_oracle_t *o);
/* 1 when the retain store holds sha (positive answers memoized), 0 when
 * not, < 0 on error. */
DS_MUST_CHECK int ds__sync_retained(ds_sync_t *s, const uint8_t sha[DS_SHA256_LEN]);
/* ds__sync_retained without teaching the memo: for a version no recorded
 * manifest references yet, which a gc of another process may free
 * (sync_retain.c, the early jobs). */
DS_MUST_CHECK int ds__sync_retained_peek(ds_sync_t *s, const uint8_t sha[DS_SHA256_LEN]);
/* The memo learns that sha is retained now. */
void ds__sync_note_retained(ds_sync_t *s, const uint8_t sha[DS_SHA256_LEN]);

/* sync_pin.c */
/* After a pinned load: the source of each row whose version the store's
 * file no longer holds (stale): a copy from the retain store, or gone.
 * Returns 0 or < 0 (out of memory, a catalog or retain failure). */
DS_MUST_CHECK int ds__sync_pin_sources(ds_sync_t *s);
/* Removes the row's copy of its pinned version, if any. */
void ds__sync_pin_drop(struct sfile_row *x);
/* In buf: the file holding row x's version (x NULL: the store file of
 * path). Returns 0 or -ENAMETOOLONG. */
DS_MUST_CHECK int ds__sync_row_file(const ds_sync_t *s, const struct sfile_row *x, const char *path,
                                    char *buf, size_t len);

/* sync_rpool.c: worker threads: a retain handle for a job, idle (no
 * snapshot held: it sees every version committed so far) and owned by the
 * caller until ds__sync_retain_give(); one kept from an earlier job, else
 * a new one. Returns 0 or ds_retain_open's error. */
DS_MUST_CHECK int ds__sync_retain_take(ds_sync_t *s, ds_retain_t **out);
/* Any thread: gives r back for a later job (its readers freed first);
 * closed instead when it is not idle or the list is full. NULL is a
 * no-op. */
void ds__sync_retain_give(ds_sync_t *s, ds_retain_t *r);
/* Any thread: closes the idle handles (those taken stay with their jobs,
 * given back later) and logs how many the jobs opened. The batch's end and
 * ds_sync_close() call it. */
void ds__sync_retain_drain(ds_sync_t *s);

/* sync_retain.c: retaining the versions a server references, the file I/O
 * on a worker thread, the catalog and the memo on the loop thread. */
typedef struct ds_sync_retain ds_sync_retain_t;
/* Loop thread: the versions of man the store can provide and the retain
 * store does not hold yet, with their store files and chunk lists. *out is
 * NULL when there is nothing to retain (or on failure, logged). Returns 0
 * or < 0 (catalog, memory). */
DS_MUST_CHECK int ds__sync_retain_plan(ds_sync_t *s, const ds_manifest_t *man, const char *server,
                                       ds_sync_retain_t **out);
/* Loop thread: the same for the new versions plan p sends (its creates and
 * updates), retained as the run starts sending. */
DS_MUST_CHECK int ds__sync_retain_plan_new(ds_sync_t *s, const ds_plan_t *p, const char *server,
                                           ds_sync_retain_t **out);
/* Any thread: the job stops before its next version (its run failed); the
 * versions left are not recorded as retained. */
void ds__sync_retain_stop(ds_sync_retain_t *j);
/* Loop thread: 1 when the caller may hand a job to a worker now (it holds
 * the worker handle until ds__sync_retain_end), 0 when another job does. */
DS_MUST_CHECK int ds__sync_retain_begin(ds_sync_t *s);
/* Worker thread: retains the job's versions (file I/O and retain.db only;
 * never the catalog). */
void ds__sync_retain_work(ds_sync_retain_t *j);
/* Loop thread: after the work, logs what could not be retained, records
 * the rest in the memo, releases the worker handle and frees j. */
void ds__sync_retain_end(ds_sync_retain_t *j);
/* Frees a job never handed to a worker. NULL is a no-op. */
void ds__sync_retain_free(ds_sync_retain_t *j);
/* Catalog content id of a SHA-256 (memoized), 0 when unknown. */
int64_t ds__sync_content_id(ds_sync_t *s, const uint8_t sha[DS_SHA256_LEN]);
/* Forgets what the memo knows (after a gc: retained versions may be gone).
 * ds__sync_memo_free() frees it; NULL-safe. */
void ds__sync_memo_reset(ds_sync_t *s);
void ds__sync_memo_free(ds_sync_t *s);

/* sync_sig.c: rsync fallback. Signature block length for a file of size
 * bytes (about its square root, as rsync), and the delta of the file in tfd
 * against a signature, written to out_fd (*dsize bytes). Returns 0,
 * DS_ECORRUPT (bad signature), DS_EDELTA, DS_ENOMEM or -errno. */
uint32_t ds__sync_sig_block(uint64_t size);
DS_MUST_CHECK int ds__sync_sig_delta(const uint8_t *sig, size_t n, int tfd, int out_fd,
                                     uint64_t *dsize);

/* sync_target.c */
/* CLOCK_MONOTONIC in nanoseconds. */
int64_t ds__sync_mono_ns(void);
/* Records a run's first failure: "server NAME: <fmt...>" into error
 * (errlen bytes) and *res_rc (rc, or DS_EINTERNAL when rc is not
 * negative). A later failure keeps the first. Returns *res_rc. */
DS_MUST_CHECK int ds__sync_vfail(int *res_rc, char *error, size_t errlen, const char *server,
                                 int rc, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

/* target_cache.c */
typedef struct ds_target_cache ds_target_cache_t;
/* Loads server's cached manifest and listing from STATE/targets/ (a bad or
 * missing file: none) into so->known_*, and sets so->fetched* to save what
 * the session receives (atomically, checksummed). The session owns the
 * cache from ds_session_new() on. Returns 0 or DS_ENOMEM (so unchanged). */
DS_MUST_CHECK int ds__target_cache_attach(const char *state_dir, const char *server,
                                          ds_session_opts_t *so);

/* sync_send.c: turns plan items into frames on a session. */
struct sender;
DS_MUST_CHECK int ds__sender_new(ds_sync_t *sy, ds_session_t *ss, const ds_plan_t *plan,
                                 struct sender **out);
void ds__sender_free(struct sender *sd);
/* Gives item idx (method rsync) the target file's signature (ownership of
 * sig passes to the sender). */
void ds__sender_set_sig(struct sender *sd, size_t idx, uint8_t *sig, size_t len);
/* Queues frames while the session has room. Returns 1 when every item was
 * issued, 0 when more remain, < 0 on a fatal error. */
DS_MUST_CHECK int ds__sender_pump(struct sender *sd);
/* Items failed on the console side (source unreadable...) since the last
 * call: returns 1 with *idx and the message, 0 when none. */
DS_MUST_CHECK int ds__sender_local_failure(struct sender *sd, size_t *idx, const char **msg);
/* The console's message for item idx (read error...), or NULL. */
const char *ds__sender_item_msg(const struct sender *sd, size_t idx);
/* 1 when item idx's cached delta was corrupt (dropped and recomputed). */
DS_MUST_CHECK int ds__sender_item_cache_dropped(const struct sender *sd, size_t idx);
/* Cancels: stops streaming the active file and starts no other item (the
 * session's ds_session_cancel_sends() aborts what went out uncommitted). */
void ds__sender_cancel(struct sender *sd);
/* The engine's gate: the pump starts item idx only when gate(ctx, idx)
 * says 1 (its delta was computed ahead on a worker); else it stops and
 * ds__sender_blocked() says 1 until a later pump passes. */
void ds__sender_set_gate(struct sender *sd, int (*gate)(void *ctx, size_t idx), void *ctx);
DS_MUST_CHECK int ds__sender_blocked(const struct sender *sd);
/* The active file's next block is read and compressed off the loop
 * thread: ds__sender_take_work() says 1 once per block, when the driver
 * should run ds__sender_work() on a worker (the sender's buffers and file
 * are its alone until then); ds__sender_work_back() once that is done,
 * then pump again. ds__sender_working(): a block is out on a worker. */
DS_MUST_CHECK int ds__sender_take_work(struct sender *sd);
void ds__sender_work(struct sender *sd);
void ds__sender_work_back(struct sender *sd);
DS_MUST_CHECK int ds__sender_working(const struct sender *sd);
/* The next item the pump will start. */
size_t ds__sender_next(const struct sender *sd);
/* What a delta prefetch reads, found on the loop thread. */
struct ds_pf_src {
    char *target; /* store path of the new version */
    char *basis;  /* store path of a file holding the basis (NULL: retained only) */
    uint64_t tsize, bsize;
    ds_content_t tc; /* the new version's catalog chunks, when it is large (else none) */
};

/* Delta prefetch of a DELTA item: on the loop thread, the catalog lookups
 * into *src (cleared first; the caller frees it with
 * ds__sender_prefetch_clear): returns 1 with them set, 0 when neither the
 * store nor the retain store holds the basis (the sender finds out
 * inline), or DS_ENOMEM. Then on a worker,
 * ds__sender_prefetch() puts the delta in the cache, reading a retained
 * basis through a retain handle of its own (errors are left for the
 * sender to find and report); it gives up (nothing cached) once the batch
 * is cancelled or *stop is set (NULL: never), its next read failing with
 * -ECANCELED. */
DS_MUST_CHECK int ds__sender_prefetch_plan(ds_sync_t *sy, const ds_plan_item_t *it,
                                           struct ds_pf_src *src);
/* Then, for a job that will run (not for a delta already cached: one
 * catalog read on the loop thread), src->tc: the catalog's chunk list of a
 * target large enough for the encoder to match by lists
 * (DS_ZPATCH_KNOWN_MIN); none when the catalog fails or lacks it (the
 * encoder chunks the target). */
void ds__sender_prefetch_chunks(ds_sync_t *sy, const ds_plan_item_t *it, struct ds_pf_src *src);
void ds__sender_prefetch_clear(struct ds_pf_src *src);
/* tsrc reads the new version src names, open as fd, with its chunk list. */
static inline void ds__pf_target_src(ds_delta_src_t *tsrc, const struct ds_pf_src *src, int fd)
{
    ds_delta_src_fd(tsrc, fd, src->tsize);
    tsrc->chunks = src->tc.chunks;
    tsrc->nchunks = src->tc.nchunks;
}
/* The delta format ss's receiver applies (its protocol version). */
int ds__sender_delta_fmt(ds_session_t *ss);
DS_MUST_CHECK int ds__sender_prefetch(ds_sync_t *sy, int fmt, const ds_plan_item_t *it,
                                      const struct ds_pf_src *src, const _Atomic int *stop);
/* What a prefetch found (ds__sender_prefetch returns them): the cache
 * dropped a corrupt entry (another thread's drop at the same instant may
 * be counted too), reported like one the sender found; the store file is
 * no longer the version scanned, so the sender fails the file instead of
 * sending it whole for the far end to refuse. */
#define DS_PF_DROPPED 1
#define DS_PF_CHANGED 2
void ds__sender_note_prefetch(struct sender *sd, size_t idx, int news);
/* Item idx's delta is asked for quick (DS_DELTA_QUICK: its prefetch
 * found the link idle, sync_prefetch.c); ds__sender_item_quick() says so
 * (a committed file whose item_delta is not 0 went as a quick delta). */
void ds__sender_set_quick(struct sender *sd, size_t idx);
DS_MUST_CHECK int ds__sender_item_quick(const struct sender *sd, size_t idx);
/* The receiver cannot use a basis without reading it across the link (it
 * refused a file with DS_ESRVCOPY): from now on every file goes whole (no
 * delta, no COPY of a file on the target; ADOPT in place stays).
 * ds__sender_resend_whole() also queues item idx, refused, to be sent
 * again whole before the next plan item: 0, DS_EEXISTS when idx was sent
 * again already (its second refusal is a failure), DS_ENOMEM.
 * ds__sender_whole(): 1 once either was called (sd may be NULL).
 * ds__sender_item_whole(): 1 when item idx went whole in place of its
 * plan's method (a delta, a COPY of a file on the target). */
void ds__sender_set_whole(struct sender *sd);
DS_MUST_CHECK int ds__sender_item_whole(const struct sender *sd, size_t idx);
DS_MUST_CHECK int ds__sender_resend_whole(struct sender *sd, size_t idx);
DS_MUST_CHECK int ds__sender_whole(const struct sender *sd);
/* Delta bytes (before zstd) and literal bytes sent for item idx. */
uint64_t ds__sender_item_delta(const struct sender *sd, size_t idx);
/* Data bytes (after zstd) sent on the wire for item idx. */
uint64_t ds__sender_item_wire(const struct sender *sd, size_t idx);
/* Progress within files: the target bytes of item idx queued so far (a
 * delta's in proportion to its stream), and their sum over the items. */
uint64_t ds__sender_item_progress(const struct sender *sd, size_t idx);
uint64_t ds__sender_progress(const struct sender *sd);

#endif

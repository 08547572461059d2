/*
 * Sender: plan items to frames. Whole files go as LITERAL frames (the
 * session zstd-compresses each frame when that pays), updates with a basis
 * as a delta taken from the per-pair delta cache (computed once, reused for
 * every server): a zpatch for a version 3 receiver, a librsync delta for an
 * older one; whichever is smaller, the delta or the whole file, is sent, files the target already
 * holds as ADOPT (recorded in place; a COPY of themselves for a version 1 receiver), deletions as
 * DELETE. One file streams at a time, in frames, while the session has room; many files are in
 * flight.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "distsync/error.h"
#include "distsync/log.h"
#include "distsync/proto.h"
#include "distsync/zpatch.h"
#include "sync_int.h"

#define SEND_BLOCK (4u << 20)

/* sender.item_whole flags */
#define WENT_WHOLE 1u
#define RESENT     2u

struct sender {
    ds_sync_t *sy;
    ds_session_t *ss;
    const ds_plan_t *plan;
    size_t next; /* next item to start */
    /* the file being streamed */
    int active;
    size_t idx;
    uint32_t fid;
    int fd;
    uint64_t off, len;
    const char *basis; /* DELTA: target path of the basis; NULL: LITERAL */
    int one;           /* goes as one FILE_ONE frame (version 6): no FILE_BEGIN sent */
    uint32_t mode;
    /* FILE_ONE of a zpatch: rewritten as stream version 3 on the worker */
    int w_compact;
    uint8_t *cbuf;
    size_t ccap;
    const uint8_t *w_p; /* the data to send: buf, or cbuf when rewritten */
    size_t w_n;
    uint8_t *buf;
    /* per item */
    char **msg;
    uint8_t *news;  /* per item, what its prefetch found: DS_PF_* bits */
    uint8_t *quick; /* the item's delta is asked for quick (DS_DELTA_QUICK) */
    uint64_t *delta_raw;
    uint64_t *wire; /* data bytes on the wire (after zstd) */
    uint64_t *prog; /* target bytes queued so far (a delta's: its share) */
    uint64_t prog_total;
    uint8_t **sig; /* rsync items: the target file's signature */
    size_t *siglen;
    /* the engine's gate: may item idx start (its delta prefetched)? */
    int (*gate)(void *ctx, size_t idx);
    void *gate_ctx;
    int blocked; /* the last pump stopped at the gate, or for a block */
    /* the next block of the active file, read and zstd-compressed on a
     * worker (ds__sender_work) so the loop thread never does either */
    int work; /* 0 none, 1 set up (the run queues it), 2 on a worker, 3 back */
    uint64_t w_off;
    size_t w_want;
    int w_level; /* zstd level, -1: none */
    ssize_t w_r; /* pread's answer */
    int w_errno;
    const uint8_t *w_z; /* its zstd frame (w_zlen 0: sent raw) */
    size_t w_zlen;
    ds_session_zctx_t *zx;
    /* console-side failures (no session result follows) */
    size_t *lf;
    size_t nlf, lf_head;
    /* the receiver cannot use a basis without reading it across the link
     * (DS_ESRVCOPY): every file goes whole; refused items are sent again
     * whole, each once (again[again_head, nagain)). Per item: WENT_WHOLE
     * (sent whole in place of its plan's method), RESENT. */
    int whole;
    uint8_t *item_whole;
    size_t *again;
    size_t nagain, again_head;
};

int ds__sender_new(ds_sync_t *sy, ds_session_t *ss, const ds_plan_t *plan, struct sender **out)
{
    struct sender *sd = calloc(1, sizeof(*sd));

    *out = NULL;
    if (sd == NULL)
        return DS_ENOMEM;
    sd->sy = sy;
    sd->ss = ss;
    sd->plan = plan;
    sd->fd = -1;
    sd->buf = sy->send_buf ? sy->send_buf : malloc(SEND_BLOCK);
    sy->send_buf = NULL;
    sd->msg = calloc(plan->n + 1, sizeof(*sd->msg));
    sd->news = calloc(plan->n + 1, 1);
    sd->quick = calloc(plan->n + 1, 1);
    sd->delta_raw = calloc(plan->n + 1, sizeof(*sd->delta_raw));
    sd->wire = calloc(plan->n + 1, sizeof(*sd->wire));
    sd->prog = calloc(plan->n + 1, sizeof(*sd->prog));
    sd->sig = calloc(plan->n + 1, sizeof(*sd->sig));
    sd->siglen = calloc(plan->n + 1, sizeof(*sd->siglen));
    sd->lf = calloc(plan->n + 1, sizeof(*sd->lf));
    sd->item_whole = calloc(plan->n + 1, 1);
    if (sd->item_whole == NULL || sd->buf == NULL || sd->msg == NULL || sd->news == NULL ||
        sd->quick == NULL || sd->delta_raw == NULL || sd->lf == NULL || sd->wire == NULL ||
        sd->prog == NULL || sd->sig == NULL || sd->siglen == NULL) {
        ds__sender_free(sd);
        return DS_ENOMEM;
    }
    *out = sd;
    return 0;
}

void ds__sender_free(struct sender *sd)
{
    if (sd == NULL)
        return;
    if (sd->fd >= 0)
        close(sd->fd);
    for (size_t i = 0; sd->msg && i < sd->plan->n; i++)
        free(sd->msg[i]);
    for (size_t i = 0; sd->sig && i < sd->plan->n; i++)
        free(sd->sig[i]);
    free(sd->sig);
    free(sd->siglen);
    free(sd->msg);
    free(sd->news);
    free(sd->quick);
    free(sd->delta_raw);
    free(sd->wire);
    free(sd->prog);
    free(sd->lf);
    free(sd->item_whole);
    free(sd->again);
    ds_session_zctx_free(sd->zx);
    if (sd->sy->send_buf == NULL)
        sd->sy->send_buf = sd->buf; /* the next server's sender reuses it */
    else
        free(sd->buf);
    free(sd->cbuf);
    free(sd);
}

static void note(struct sender *sd, size_t idx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void note(struct sender *sd, size_t idx, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    free(sd->msg[idx]);
    sd->msg[idx] = strdup(buf);
}

/* The item failed before anything was sent for it. */
static void local_fail(struct sender *sd, size_t idx)
{
    sd->lf[sd->nlf++] = idx;
}

int ds__sender_local_failure(struct sender *sd, size_t *idx, const char **msg)
{
    if (sd->lf_head >= sd->nlf)
        return 0;
    *idx = sd->lf[sd->lf_head++];
    *msg = sd->msg[*idx] ? sd->msg[*idx] : "failed";
    return 1;
}

const char *ds__sender_item_msg(const struct sender *sd, size_t idx)
{
    return sd->msg[idx];
}

int ds__sender_item_cache_dropped(const struct sender *sd, size_t idx)
{
    return (sd->news[idx] & DS_PF_DROPPED) != 0;
}

uint64_t ds__sender_item_delta(const struct sender *sd, size_t idx)
{
    return sd->delta_raw[idx];
}

uint64_t ds__sender_item_wire(const struct sender *sd, size_t idx)
{
    return sd->wire[idx];
}

uint64_t ds__sender_item_progress(const struct sender *sd, size_t idx)
{
    return sd->prog[idx];
}

uint64_t ds__sender_progress(const struct sender *sd)
{
    return sd->prog_total;
}

/* The active item has off of its len stream bytes queued: its target
 * bytes so far (a delta's in proportion, as its stream says nothing
 * finer). */
static void progress(struct sender *sd, uint64_t off)
{
    uint64_t size = sd->plan->items[sd->idx].size, now;

    now = sd->basis == NULL ? off
          : sd->len == 0    ? size
                            : (uint64_t)((unsigned __int128)off * size / sd->len);
    if (now > size)
        now = size;
    sd->prog_total += now - sd->prog[sd->idx]; /* it only grows */
    sd->prog[sd->idx] = now;
}

/* Opens the store file of an item (or its pinned version's copy, see
 * sync_pin.c) and checks it still has the planned size. */
static int open_store(struct sender *sd, const char *rel, uint64_t size, int *fd, uint32_t *mode)
{
    char path[8192];
    struct stat st;

    if (ds__sync_row_file(sd->sy, ds__sync_row_by_path(sd->sy, rel), rel, path, sizeof(path)) < 0)
        return -ENAMETOOLONG;
    *fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (*fd < 0)
        return -errno;
    if (fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != size) {
        close(*fd);
        *fd = -1;
        return DS_ECHANGED;
    }
    if (mode)
        *mode = (uint32_t)st.st_mode & 0777;
    return 0;
}

/* The delta format a session's receiver applies (one that reads the basis
 * only through COPY when its basis reads cross the WAN). */
int ds__sync_delta_fmt(unsigned v, int remote_basis)
{
    if (v >= DS_PROTO_VERSION_ZPATCH && remote_basis)
        return DS_DELTA_FMT_ZPATCH_COPY;
    return v >= DS_PROTO_VERSION_BSDIFF   ? DS_DELTA_FMT_ZPATCH2
           : v >= DS_PROTO_VERSION_ZPATCH ? DS_DELTA_FMT_ZPATCH
                                          : DS_DELTA_FMT_RSYNC;
}

int ds__sender_delta_fmt(ds_session_t *ss)
{
    return ds__sync_delta_fmt(ds_session_version(ss), ds_session_remote_basis(ss));
}

int ds__sync_delta_get(ds_sync_t *sy, int fmt, const ds_plan_item_t *it, int tfd, int *dfd,
                       uint64_t *dsize)
{
    const struct sfile_row *row;
    ds_delta_src_t bsrc, tsrc;
    ds_retain_reader_t *rd = NULL;
    int bfd = -1, rc = DS_ENOTFOUND;
    char path[8192];
    struct stat st;

    if (ds_delta_cache_lookup(sy->dc, fmt, it->basis_sha256, it->sha256, dfd, dsize) == 0)
        return 0; /* cached: no basis to open (a retained one costs catalog queries) */
    ds_delta_src_fd(&tsrc, tfd, it->size);
    row = ds__sync_row_by_content(sy, ds__sync_content_id(sy, it->basis_sha256));
    if (row && ds__sync_row_file(sy, row, NULL, path, sizeof(path)) == 0 &&
        (bfd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
        if (fstat(bfd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == row->size) {
            ds_delta_src_fd(&bsrc, bfd, row->size);
            rc = ds_delta_cache_get(sy->dc, fmt, it->basis_sha256, it->sha256, &bsrc, &tsrc, dfd,
                                    dsize);
        }
        close(bfd);
        if (rc == 0 || (rc != DS_ECHANGED && rc != DS_ENOTFOUND))
            return rc;
    }
    if (sy->ret && ds_retain_open_version(sy->ret, it->basis_sha256, 0, &rd) == 0) {
        ds_delta_src_retain(&bsrc, rd);
        bsrc.size = ds_retain_reader_size(rd);
        rc =
            ds_delta_cache_get(sy->dc, fmt, it->basis_sha256, it->sha256, &bsrc, &tsrc, dfd, dsize);
        ds_retain_reader_free(rd);
    }
    return rc;
}

/* The item's delta in the session's format (ds__sync_delta_get), quick
 * when its prefetch was. */
static int get_delta_from(struct sender *sd, size_t idx, const ds_plan_item_t *it, int tfd,
                          int *dfd, uint64_t *dsize)
{
    int fmt = ds__sender_delta_fmt(sd->ss);

    if (sd->quick[idx] && fmt != DS_DELTA_FMT_RSYNC)
        fmt |= DS_DELTA_QUICK;
    return ds__sync_delta_get(sd->sy, fmt, it, tfd, dfd, dsize);
}

/* get_delta_from, noting whether the cache dropped a corrupt entry for it. */
static int get_delta(struct sender *sd, size_t idx, const ds_plan_item_t *it, int tfd, int *dfd,
                     uint64_t *dsize)
{
    ds_delta_cache_stats_t before, after;
    int rc;

    ds_delta_cache_stats(sd->sy->dc, &before);
    rc = get_delta_from(sd, idx, it, tfd, dfd, dsize);
    ds_delta_cache_stats(sd->sy->dc, &after);
    sd->news[idx] |= after.dropped > before.dropped ? DS_PF_DROPPED : 0; /* or its prefetch */
    return rc;
}

/* See sync_int.h. */
void ds__sender_prefetch_chunks(ds_sync_t *sy, const ds_plan_item_t *it, struct ds_pf_src *src)
{
    int64_t id;

    if (it->size < DS_ZPATCH_KNOWN_MIN || (id = ds__sync_content_id(sy, it->sha256)) <= 0)
        return;
    if (ds_catalog_content_get(sy->cat, id, &src->tc) < 0 || src->tc.size != it->size ||
        memcmp(src->tc.sha256, it->sha256, DS_SHA256_LEN) != 0)
        ds_content_clear(&src->tc);
}

int ds__sender_prefetch_plan(ds_sync_t *sy, const ds_plan_item_t *it, struct ds_pf_src *src)
{
    const struct sfile_row *row;
    char path[8192];

    memset(src, 0, sizeof(*src));
    row = ds__sync_row_by_content(sy, ds__sync_content_id(sy, it->basis_sha256));
    if (row == NULL && (sy->ret == NULL || ds__sync_retained(sy, it->basis_sha256) != 1))
        return 0;
    if (ds__sync_row_file(sy, ds__sync_row_by_path(sy, it->path), it->path, path, sizeof(path)) <
            0 ||
        (src->target = strdup(path)) == NULL)
        return DS_ENOMEM;
    if (row != NULL && (ds__sync_row_file(sy, row, NULL, path, sizeof(path)) < 0 ||
                        (src->basis = strdup(path)) == NULL))
        return DS_ENOMEM;
    src->tsize = it->size;
    src->bsize = row ? row->size : 0;
    return 1;
}

void ds__sender_prefetch_clear(struct ds_pf_src *src)
{
    free(src->target);
    free(src->basis);
    ds_content_clear(&src->tc);
    memset(src, 0, sizeof(*src));
}

/* See sync_int.h. */
int ds__sync_open_sized(const char *path, uint64_t size)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

    if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != size)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* The retained version sha as a source, through a retain handle of the
 * pool (*ret, *rd: the caller frees the reader, then gives the handle
 * back). Returns 0 or < 0. */
static int open_retained(ds_sync_t *sy, const uint8_t *sha, ds_retain_t **ret,
                         ds_retain_reader_t **rd, ds_delta_src_t *src)
{
    int rc = ds__sync_retain_take(sy, ret);

    if (rc == 0)
        rc = ds_retain_open_version(*ret, sha, 0, rd);
    if (rc == 0)
        ds_delta_src_retain(src, *rd);
    return rc;
}

/* A source that fails its reads once the prefetch gives up. */
struct stop_src {
    ds_delta_src_t in;
    const ds_sync_t *sy;
    const _Atomic int *stop;
};

static long stop_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    struct stop_src *s = ctx;

    if (s->sy->cancel || (s->stop != NULL && atomic_load(s->stop)))
        return -ECANCELED;
    return s->in.read(s->in.ctx, off, buf, len);
}

static void stoppable(ds_delta_src_t *src, struct stop_src *s, const ds_sync_t *sy,
                      const _Atomic int *stop)
{
    *s = (struct stop_src){*src, sy, stop};
    src->read = stop_read; /* the rest (size, verified, chunks) is the source's */
    src->ctx = s;
}

/* 1 when the store file open as fd is not (any longer) item it's version
 * (its delta failed as changed: the basis may be what changed); a read
 * error is not a change (the sender meets it again and says so). */
static int store_changed(int fd, const ds_plan_item_t *it)
{
    uint8_t got[DS_SHA256_LEN];
    ds_delta_src_t src;
    int rc;

    ds_delta_src_fd(&src, fd, it->size);
    rc = ds_delta_src_sha256(&src, got);
    return rc == DS_ECHANGED || (rc == 0 && memcmp(got, it->sha256, DS_SHA256_LEN) != 0);
}

int ds__sender_prefetch(ds_sync_t *sy, int fmt, const ds_plan_item_t *it,
                        const struct ds_pf_src *src, const _Atomic int *stop)
{
    const char *target = src->target, *basis = src->basis;
    uint64_t tsize = src->tsize, bsize = src->bsize;
    struct stop_src bs, ts;
    ds_delta_cache_stats_t before, after;
    ds_delta_src_t bsrc, tsrc;
    ds_retain_t *ret = NULL;
    ds_retain_reader_t *rd = NULL;
    uint64_t dsize = 0;
    int tfd = ds__sync_open_sized(target, tsize), dfd = -1, news = 0, rc;
    int bfd = basis ? ds__sync_open_sized(basis, bsize) : -1;

    ds_delta_cache_stats(sy->dc, &before);
    if (tfd >= 0 && (bfd >= 0 || (basis == NULL &&
                                  open_retained(sy, it->basis_sha256, &ret, &rd, &bsrc) == 0))) {
        ds__pf_target_src(&tsrc, src, tfd);
        if (bfd >= 0)
            ds_delta_src_fd(&bsrc, bfd, bsize);
        stoppable(&bsrc, &bs, sy, stop);
        stoppable(&tsrc, &ts, sy, stop);
        rc = ds_delta_cache_get(sy->dc, fmt, it->basis_sha256, it->sha256, &bsrc, &tsrc, &dfd,
                                &dsize);
        if (rc == 0)
            close(dfd);
        if (rc == DS_ECHANGED && store_changed(tfd, it))
            news |= DS_PF_CHANGED;
    }
    if (tfd >= 0)
        close(tfd);
    if (bfd >= 0)
        close(bfd);
    ds_retain_reader_free(rd);
    ds__sync_retain_give(sy, ret);
    ds_delta_cache_stats(sy->dc, &after);
    return news | (after.dropped > before.dropped ? DS_PF_DROPPED : 0);
}

void ds__sender_note_prefetch(struct sender *sd, size_t idx, int news)
{
    sd->news[idx] |= (uint8_t)news;
}

void ds__sender_set_quick(struct sender *sd, size_t idx)
{
    if (idx < sd->plan->n)
        sd->quick[idx] = 1;
}

int ds__sender_item_quick(const struct sender *sd, size_t idx)
{
    return idx < sd->plan->n && sd->quick[idx];
}

void ds__sender_set_sig(struct sender *sd, size_t idx, uint8_t *sig, size_t len)
{
    free(sd->sig[idx]);
    sd->sig[idx] = sig;
    sd->siglen[idx] = len;
}

/* The delta of the store file against the target file's signature, in an
 * unnamed temporary file of the state directory. */
static int rsync_delta(struct sender *sd, size_t idx, int tfd, int *dfd, uint64_t *dsize)
{
    int rc;

    if (sd->sig[idx] == NULL)
        return DS_ENOTFOUND;
    *dfd = open(sd->sy->o.cfg->state, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (*dfd < 0)
        return -errno;
    rc = ds__sync_sig_delta(sd->sig[idx], sd->siglen[idx], tfd, *dfd, dsize);
    free(sd->sig[idx]);
    sd->sig[idx] = NULL;
    if (rc < 0) {
        close(*dfd);
        *dfd = -1;
    }
    return rc;
}

/* The target file already holds the content: ADOPT records it in place
 * (version 2); a version 1 receiver gets a COPY of the file onto itself.
 * DS_PLAN_COPY: the content is at another path of the target (an earlier
 * file of this run, or a kept one): a COPY of all of it. */
static int start_adopt(struct sender *sd, size_t idx, const ds_plan_item_t *it)
{
    uint32_t fid;
    int rc;

    if (ds_session_version(sd->ss) >= DS_PROTO_VERSION_ADOPT && strcmp(it->basis, it->path) == 0)
        return ds_session_adopt(sd->ss, it->path, it->size, it->mtime_ns, it->sha256, idx);
    if (ds_session_version(sd->ss) >= DS_PROTO_VERSION_ONE) { /* a zpatch of one COPY */
        uint8_t z[32];
        ds_session_one_t o = {.path = it->path,
                              .size = it->size,
                              .mode = 0644,
                              .mtime_ns = it->mtime_ns,
                              .basis = it->basis,
                              .raw = z};

        memcpy(o.sha256, it->sha256, DS_SHA256_LEN);
        if (ds_zpatch_copy_stream(it->size, z, sizeof(z), &o.n) == 0)
            return ds_session_file_one(sd->ss, &o, idx);
    }
    rc = ds_session_file_begin(sd->ss, it->path, it->size, 0644, it->mtime_ns, idx, &fid);
    if (rc == 0 && it->size > 0)
        rc = ds_session_file_copy(sd->ss, fid, it->basis, 0, it->size);
    if (rc == 0)
        rc = ds_session_file_commit(sd->ss, fid, it->size, it->sha256);
    return rc;
}

/* Opens the sources of a create/update and begins the file. */
static int start_file(struct sender *sd, size_t idx, const ds_plan_item_t *it)
{
    uint32_t mode = 0644;
    uint64_t dsize = 0;
    int tfd = -1, dfd = -1, rc;

    rc = sd->news[idx] & DS_PF_CHANGED ? DS_ECHANGED /* sent whole, the far end would refuse it */
                                       : open_store(sd, it->path, it->size, &tfd, &mode);
    if (rc < 0) {
        note(sd, idx, "store file %s/%s: %s (run distsync scan)", sd->sy->o.cfg->store, it->path,
             rc == DS_ECHANGED ? "changed since the last scan" : ds_strerror(rc));
        local_fail(sd, idx);
        return 0;
    }
    if (it->method == DS_PLAN_DELTA && !sd->whole) {
        rc = get_delta(sd, idx, it, tfd, &dfd, &dsize);
        if (rc < 0)
            ds_log(DS_LOG_WARN, "%s: no delta from %s (%s): sending it whole", it->path, it->basis,
                   ds_strerror(rc));
    }
    if (it->method == DS_PLAN_RSYNC && !sd->whole) {
        rc = rsync_delta(sd, idx, tfd, &dfd, &dsize);
        if (rc < 0)
            ds_log(DS_LOG_INFO, "%s: no rsync delta (%s): sending it whole", it->path,
                   ds_strerror(rc));
    }
    if (dfd >= 0 && dsize >= it->size) { /* no gain: whole is cheaper to apply */
        close(dfd);
        dfd = -1;
    }
    sd->len = dfd >= 0 ? dsize : it->size;
    sd->one = ds_session_version(sd->ss) >= DS_PROTO_VERSION_ONE &&
              sd->len <= ds_session_data_block(sd->ss) && sd->len <= SEND_BLOCK;
    sd->fid = 0;
    sd->mode = mode;
    rc = sd->one
             ? 0
             : ds_session_file_begin(sd->ss, it->path, it->size, mode, it->mtime_ns, idx, &sd->fid);
    if (rc < 0) {
        close(tfd);
        if (dfd >= 0)
            close(dfd);
        return rc;
    }
    sd->active = 1;
    sd->idx = idx;
    sd->off = 0;
    if (dfd >= 0) {
        close(tfd);
        sd->fd = dfd;
        sd->basis = it->basis;
    } else {
        sd->fd = tfd;
        sd->basis = NULL;
    }
    return 0;
}

/* Queues the active file as one FILE_ONE frame: raw[0, n), z[0, zlen) its
 * zstd frame (zlen 0: raw). */
static int send_one(struct sender *sd, const uint8_t *raw, size_t n, const uint8_t *z, size_t zlen)
{
    const ds_plan_item_t *it = &sd->plan->items[sd->idx];
    ds_session_one_t o = {.path = it->path,
                          .size = it->size,
                          .mode = sd->mode,
                          .mtime_ns = it->mtime_ns,
                          .basis = sd->basis,
                          .raw = raw,
                          .n = n,
                          .z = z,
                          .zlen = zlen};

    memcpy(o.sha256, it->sha256, DS_SHA256_LEN);
    progress(sd, sd->len);
    sd->wire[sd->idx] += zlen ? zlen : n;
    if (sd->basis)
        sd->delta_raw[sd->idx] += n;
    return ds_session_file_one(sd->ss, &o, sd->idx);
}

/* Sets up the read (and zstd) of the active file's next block for a
 * worker; the pump stops until it is back. */
static void want_block(struct sender *sd)
{
    size_t block = ds_session_data_block(sd->ss); /* one frame: room() is checked between */
    size_t want = block < SEND_BLOCK ? block : SEND_BLOCK;

    if (sd->len - sd->off < want)
        want = (size_t)(sd->len - sd->off);
    sd->w_off = sd->off;
    sd->w_want = want;
    sd->w_level = ds_session_frame_level(sd->ss, sd->fid, want);
    sd->w_compact = sd->one && sd->basis != NULL;
    if (sd->w_compact && sd->ccap < want + 64) {
        uint8_t *c = realloc(sd->cbuf, want + 64);

        sd->w_compact = c != NULL;
        sd->cbuf = c ? c : sd->cbuf;
        sd->ccap = c ? want + 64 : sd->ccap;
    }
    if (sd->w_level >= 0 && sd->zx == NULL && ds_session_zctx_new(&sd->zx) < 0)
        sd->w_level = -1;
    sd->work = 1;
}

void ds__sender_work(struct sender *sd)
{
    size_t n = 0;
    ssize_t r;

    do
        r = pread(sd->fd, sd->buf, sd->w_want, (off_t)sd->w_off);
    while (r < 0 && errno == EINTR);
    sd->w_r = r;
    sd->w_errno = r < 0 ? errno : 0;
    sd->w_z = NULL;
    sd->w_zlen = 0;
    sd->w_p = sd->buf;
    sd->w_n = r > 0 ? (size_t)r : 0;
    /* a whole zpatch (version 1 or 2, as cached) in compact framing; a
     * librsync delta is not one and goes as it is */
    if (r > 0 && sd->w_compact && (uint64_t)r == sd->len &&
        ds_zpatch_compact(sd->buf, (size_t)r, sd->cbuf, sd->ccap, &n) == 0 && n < (size_t)r) {
        sd->w_p = sd->cbuf;
        sd->w_n = n;
    }
    if (sd->w_n > 0 && sd->w_level >= 0)
        sd->w_zlen =
            ds_session_zstd(sd->sy->zcache, sd->zx, sd->w_level, sd->w_p, sd->w_n, &sd->w_z);
}

int ds__sender_take_work(struct sender *sd)
{
    if (sd->work != 1)
        return 0;
    sd->work = 2;
    return 1;
}

void ds__sender_work_back(struct sender *sd)
{
    if (sd->work == 2)
        sd->work = 3;
}

int ds__sender_working(const struct sender *sd)
{
    return sd->work == 2;
}

/* Sends the next block of the active file, once a worker has read (and
 * compressed) it; finishes the file at the end. */
static int stream(struct sender *sd)
{
    const ds_plan_item_t *it = &sd->plan->items[sd->idx];
    ssize_t r = 0;
    int rc = 0;

    if (sd->work == 0 && sd->off < sd->len && !ds_session_file_failed(sd->ss, sd->fid))
        want_block(sd);
    if (sd->work == 1 || sd->work == 2) {
        sd->blocked = 1; /* its block is read on a worker: its job wakes the run */
        return 0;
    }
    if (sd->work == 3 && ds_session_file_failed(sd->ss, sd->fid))
        sd->work = 0; /* the target gave up on the file meanwhile: dropped */
    if (sd->work == 3) {
        sd->work = 0;
        r = sd->w_r;
        if (r <= 0 || (sd->one && (uint64_t)r != sd->len)) {
            note(sd, sd->idx, "reading %s: %s", it->path,
                 r < 0 ? strerror(sd->w_errno) : "file shrank");
            if (!sd->one)
                rc = ds_session_file_abort(sd->ss, sd->fid);
            else
                local_fail(sd, sd->idx);
            goto done;
        }
        if (sd->one) {
            rc = send_one(sd, sd->w_p, sd->w_n, sd->w_z, sd->w_zlen);
            goto done;
        }
        rc = ds_session_file_frame(sd->ss, sd->fid, sd->basis, sd->buf, (size_t)r, sd->w_z,
                                   sd->w_zlen, sd->w_level >= 0);
        sd->wire[sd->idx] += sd->w_zlen ? sd->w_zlen : (uint64_t)r;
        sd->off += (uint64_t)r;
        progress(sd, sd->off);
        if (sd->basis)
            sd->delta_raw[sd->idx] += (uint64_t)r;
        if (rc < 0 || sd->off < sd->len)
            return rc;
    }
    if (sd->one) { /* an empty file */
        rc = send_one(sd, sd->buf, 0, NULL, 0);
        goto done;
    }
    if (sd->basis)
        rc = ds_session_file_delta_end(sd->ss, sd->fid);
    if (rc == 0)
        rc = ds_session_file_commit(sd->ss, sd->fid, it->size, it->sha256);
done:
    close(sd->fd);
    sd->fd = -1;
    sd->active = 0;
    return rc;
}

static int start(struct sender *sd, size_t idx)
{
    const ds_plan_item_t *it = &sd->plan->items[idx];

    switch (it->action) {
    case DS_PLAN_DELETE:
        return ds_session_delete(sd->ss, it->path, idx);
    case DS_PLAN_CREATE:
    case DS_PLAN_UPDATE:
        if (it->method == DS_PLAN_ADOPT || (it->method == DS_PLAN_COPY && !sd->whole))
            return start_adopt(sd, idx, it);
        if (sd->whole)
            sd->item_whole[idx] |= WENT_WHOLE;
        return start_file(sd, idx, it);
    default:
        return 0; /* keep, extra */
    }
}

void ds__sender_cancel(struct sender *sd)
{
    if (sd->active) {
        note(sd, sd->idx, "cancelled");
        if (sd->work != 2) { /* else a worker reads it: closed when freed */
            close(sd->fd);
            sd->fd = -1;
        }
        sd->active = 0;
    }
    sd->next = sd->plan->n;
    sd->again_head = sd->nagain;
}

void ds__sender_set_gate(struct sender *sd, int (*gate)(void *ctx, size_t idx), void *ctx)
{
    sd->gate = gate;
    sd->gate_ctx = ctx;
}

int ds__sender_blocked(const struct sender *sd)
{
    return sd->blocked;
}

size_t ds__sender_next(const struct sender *sd)
{
    return sd->next;
}

int ds__sender_pump(struct sender *sd)
{
    int rc = 0;

    sd->blocked = 0;
    while (rc == 0 && ds_session_room(sd->ss)) {
        if (sd->active) {
            rc = stream(sd);
            if (sd->blocked)
                return rc;
            continue;
        }
        if (sd->again_head < sd->nagain) {
            rc = start(sd, sd->again[sd->again_head++]); /* whole: start_file */
            continue;
        }
        if (sd->next >= sd->plan->n)
            return 1;
        if (sd->gate != NULL && !sd->whole && !sd->gate(sd->gate_ctx, sd->next)) {
            sd->blocked = 1; /* its delta computes on a worker */
            return 0;
        }
        rc = start(sd, sd->next++);
    }
    return rc < 0 ? rc : (!sd->active && sd->next >= sd->plan->n && sd->again_head == sd->nagain);
}

void ds__sender_set_whole(struct sender *sd)
{
    sd->whole = 1;
}

int ds__sender_whole(const struct sender *sd)
{
    return sd != NULL && sd->whole;
}

int ds__sender_item_whole(const struct sender *sd, size_t idx)
{
    return idx < sd->plan->n && (sd->item_whole[idx] & WENT_WHOLE);
}

int ds__sender_resend_whole(struct sender *sd, size_t idx)
{
    sd->whole = 1;
    if (sd->again == NULL && (sd->again = calloc(sd->plan->n + 1, sizeof(*sd->again))) == NULL)
        return DS_ENOMEM;
    if (idx >= sd->plan->n || (sd->item_whole[idx] & RESENT))
        return DS_EEXISTS;
    sd->item_whole[idx] |= RESENT;
    sd->again[sd->nagain++] = idx; /* at most once per item: never past plan->n */
    free(sd->msg[idx]);
    sd->msg[idx] = NULL;
    sd->delta_raw[idx] = 0;
    return 0;
}

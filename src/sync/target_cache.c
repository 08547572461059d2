/*
 * Target cache: per server, the manifest bytes and the listing a target sent
 * last time, in the state directory (STATE/targets/<server>.manifest and
 * .list), so a version 4 session can ask "send it only if it changed"
 * (ds_session_opts_t.known_*). A file is the bytes as received, framed and
 * checksummed:
 *
 *   "DSTCACHE" | u32 version 1 | u32 kind (1 manifest, 2 listing) | body |
 *   u64 body_len | sha256 of every preceding byte
 *
 * A missing, truncated or corrupt file is ignored (a full fetch) and
 * replaced by the next one received; files are written atomically (tmp +
 * fsync + rename + directory fsync). The cache is only a hint: the target
 * answers *_SAME only when its bytes hash the same as the body.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "distsync/digest.h"
#include "distsync/error.h"
#include "distsync/fsutil.h"
#include "distsync/log.h"
#include "sync_int.h"

#define TC_MAGIC   "DSTCACHE"
#define TC_HDR     16
#define TC_TRAILER (8 + DS_SHA256_LEN)
#define TC_DIR     "targets"

struct tc_writer {
    int fd;
    int failed;
    uint64_t len;
    ds_sha256_t sha;
    const char *tmp; /* the cache's tmp name of this file */
};

struct ds_target_cache {
    char path[2][4096]; /* manifest, list */
    char tmp[2][4200];
    char dir[3800];
    char server[256];
    uint8_t *body[2];
    size_t len[2];
    uint8_t *file[2]; /* the files as read (body points inside) */
    struct tc_writer w[2];
};

static const char *const tc_ext[2] = {"manifest", "list"};

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Reads and checks cache file what; leaves body NULL when unusable. */
static void tc_load(ds_target_cache_t *c, int what)
{
    uint8_t *f = NULL, sha[DS_SHA256_LEN];
    struct stat st;
    size_t got = 0;
    int fd = open(c->path[what], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    const char *why = NULL;

    if (fd < 0) {
        if (errno != ENOENT)
            ds_log(DS_LOG_WARN, "server %s: target cache %s: %s (fetching in full)", c->server,
                   c->path[what], strerror(errno));
        return;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < TC_HDR + TC_TRAILER ||
        (uint64_t)st.st_size > DS_SESSION_LIST_MAX + TC_HDR + TC_TRAILER)
        why = "not a cache file of a plausible size";
    if (why == NULL && (f = malloc((size_t)st.st_size)) == NULL)
        why = "out of memory";
    while (why == NULL && got < (size_t)st.st_size) {
        ssize_t n = read(fd, f + got, (size_t)st.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            why = n < 0 ? strerror(errno) : "file shrank while read";
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (why == NULL) {
        size_t blen = got - TC_HDR - TC_TRAILER;

        if (memcmp(f, TC_MAGIC, 8) != 0 || get_be(f + 8, 4) != 1 ||
            get_be(f + 12, 4) != (uint64_t)what + 1 || get_be(f + got - TC_TRAILER, 8) != blen)
            why = "bad header or length";
        else if (ds_sha256(f, got - DS_SHA256_LEN, sha) < 0 ||
                 memcmp(sha, f + got - DS_SHA256_LEN, DS_SHA256_LEN) != 0)
            why = "checksum mismatch";
        else {
            c->file[what] = f;
            c->body[what] = f + TC_HDR;
            c->len[what] = blen;
            return;
        }
    }
    ds_log(DS_LOG_WARN, "server %s: target cache %s ignored: %s (fetching in full)", c->server,
           c->path[what], why);
    free(f);
}

static void tc_write(ds_target_cache_t *c, struct tc_writer *w, const uint8_t *p, size_t n)
{
    int rc;

    if (w->failed)
        return;
    rc = ds_write_all(w->fd, p, n);
    if (rc == 0) {
        ds_sha256_update(&w->sha, p, n);
        w->len += n;
        return;
    }
    ds_log(DS_LOG_WARN, "server %s: target cache %s: %s (not kept)", c->server, w->tmp,
           ds_strerror(rc));
    w->failed = 1;
}

static void tc_close(struct tc_writer *w)
{
    if (w->fd >= 0) {
        close(w->fd);
        if (w->tmp)
            unlink(w->tmp);
    }
    ds_sha256_close(&w->sha);
    memset(w, 0, sizeof(*w));
    w->fd = -1;
}

static void tc_begin(ds_target_cache_t *c, int what)
{
    struct tc_writer *w = &c->w[what];
    uint8_t hdr[TC_HDR];
    int rc;

    w->tmp = c->tmp[what];
    rc = ds_mkdir_p(c->dir);
    if (rc == 0) {
        unlink(w->tmp);
        w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        rc = w->fd < 0 ? -errno : ds_sha256_init(&w->sha);
    }
    if (rc < 0) {
        ds_log(DS_LOG_WARN, "server %s: target cache %s: %s (not kept)", c->server, w->tmp,
               ds_strerror(rc));
        w->failed = 1;
        return;
    }
    memcpy(hdr, TC_MAGIC, 8);
    put_be(hdr + 8, 1, 4);
    put_be(hdr + 12, (uint64_t)what + 1, 4);
    w->len = 0;
    tc_write(c, w, hdr, sizeof(hdr));
    w->len = 0;
}

static void tc_commit(ds_target_cache_t *c, int what)
{
    struct tc_writer *w = &c->w[what];
    uint8_t tr[TC_TRAILER];
    int rc = 0, dfd;

    put_be(tr, w->len, 8);
    tc_write(c, w, tr, 8);
    if (!w->failed) {
        ds_sha256_final(&w->sha, tr + 8);
        rc = ds_write_all(w->fd, tr + 8, DS_SHA256_LEN);
    }
    if (!w->failed && rc == 0 && fsync(w->fd) < 0)
        rc = -errno;
    if (!w->failed && rc == 0 && rename(w->tmp, c->path[what]) < 0)
        rc = -errno;
    if (!w->failed && rc == 0) {
        close(w->fd);
        w->fd = -1;
        dfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    } else if (rc < 0) {
        ds_log(DS_LOG_WARN, "server %s: target cache %s: %s (not kept)", c->server, c->path[what],
               ds_strerror(rc));
    }
    tc_close(w);
}

/* ds_session_opts_t.fetched: streams what was received into the tmp file. */
static void tc_fetched(void *arg, int what, const uint8_t *p, size_t n, int end)
{
    ds_target_cache_t *c = arg;
    struct tc_writer *w = &c->w[what & 1];

    if (w->fd < 0 && !w->failed)
        tc_begin(c, what & 1);
    if (end)
        tc_commit(c, what & 1);
    else
        tc_write(c, w, p, n);
}

static void tc_free(void *arg)
{
    ds_target_cache_t *c = arg;

    if (c == NULL)
        return;
    for (int i = 0; i < 2; i++) {
        tc_close(&c->w[i]);
        free(c->file[i]);
    }
    free(c);
}

int ds__target_cache_attach(const char *state_dir, const char *server, ds_session_opts_t *so)
{
    ds_target_cache_t *c;

    if (state_dir == NULL || server == NULL)
        return 0;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return DS_ENOMEM;
    snprintf(c->server, sizeof(c->server), "%s", server);
    snprintf(c->dir, sizeof(c->dir), "%.3700s/" TC_DIR, state_dir);
    for (int i = 0; i < 2; i++) {
        snprintf(c->path[i], sizeof(c->path[i]), "%s/%.255s.%s", c->dir, server, tc_ext[i]);
        snprintf(c->tmp[i], sizeof(c->tmp[i]), "%s.tmp.%ld", c->path[i], (long)getpid());
        c->w[i].fd = -1;
        tc_load(c, i);
    }
    so->known_manifest = c->body[0];
    so->known_manifest_len = c->len[0];
    so->known_list = c->body[1];
    so->known_list_len = c->len[1];
    so->fetched = tc_fetched;
    so->fetched_free = tc_free;
    so->fetched_arg = c;
    return 0;
}

/* Sender session against an in-process receiver (file:// local), the agent
 * over pipes (when $DISTSYNC names the CLI), and a full ds_sync run from a
 * scanned store into a scratch directory, compared byte for byte. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>

#include "check.h"
#include "testdata.h"
#include "distsync/config.h"
#include "distsync/delta.h"
#include "distsync/error.h"
#include "distsync/proto.h"
#include "distsync/scan.h"
#include "distsync/session.h"
#include "distsync/sync.h"
#include "distsync/transport.h"

static char root[4096];

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(p, 1, n, f) == n;

    if (f)
        fclose(f);
    return ok ? 0 : -1;
}

/* Steps s until the phase is at least want or it fails (bounded). */
static int pump(ds_session_t *s, int (*done)(ds_session_t *))
{
    for (int i = 0; i < 100000; i++) {
        int rfd, wfd;
        short ev;

        if (ds_session_step(s, time(NULL)) < 0)
            return -1;
        if (done(s))
            return 0;
        if (!ds_session_poll(s, &rfd, &wfd, &ev)) {
            struct timespec ts = {0, 1000000};

            nanosleep(&ts, NULL);
        }
    }
    return -1;
}

static int is_ready(ds_session_t *s)
{
    return ds_session_phase(s) == DS_SESSION_READY;
}

static int is_idle(ds_session_t *s)
{
    return ds_session_idle(s);
}

static int is_done(ds_session_t *s)
{
    return ds_session_phase(s) == DS_SESSION_DONE;
}

static ds_session_t *open_session(ds_transport_t **t, const char *mode, const char *console,
                                  int write)
{
    ds_transport_cfg_t tc = {.mode = mode, .agent = getenv("DISTSYNC"), .no_fsync = 1};
    ds_session_opts_t so = {.console_id = console, .host = "testhost", .pid = 77, .write = write};
    char url[4200], err[512];
    ds_session_t *s = NULL;

    snprintf(url, sizeof(url), "file://%s", root);
    tc.url = url;
    if (ds_transport_open(&tc, t, err, sizeof(err)) != 0) {
        fprintf(stderr, "transport: %s\n", err);
        return NULL;
    }
    if (ds_session_new(*t, &so, &s) != 0 || ds_session_start(s) != 0) {
        ds_session_free(s);
        return NULL;
    }
    return s;
}

static void close_session(ds_session_t *s, ds_transport_t *t)
{
    CHECK_INT(ds_session_close(s), 0);
    CHECK_INT(pump(s, is_done), 0);
    CHECK_INT(ds_transport_close(t), 0);
    ds_session_free(s);
    ds_transport_free(t);
}

static void send_whole(ds_session_t *s, const char *path, const uint8_t *p, size_t n, uint64_t tag)
{
    uint8_t sum[DS_SHA256_LEN];
    uint32_t fid;

    CHECK_INT(ds_sha256(p, n, sum), 0);
    CHECK_INT(ds_session_file_begin(s, path, n, 0644, DS_PROTO_NO_MTIME, tag, &fid), 0);
    CHECK_INT(ds_session_file_data(s, fid, NULL, p, n), 0);
    CHECK_INT(ds_session_file_commit(s, fid, n, sum), 0);
}

/* Sends three files, checks the outcomes, the tree and the manifest. */
static void round_one(const char *mode)
{
    size_t nbig = 9u << 20, nt = 200000;
    uint8_t *big = malloc(nbig), *text = malloc(nt), small[100];
    ds_transport_t *t = NULL;
    ds_session_t *s = open_session(&t, mode, "console-one", 1);
    ds_session_result_t r;
    char path[4300];
    int ok = 0, man = 0;

    CHECK(s != NULL && big && text);
    if (s == NULL || big == NULL || text == NULL)
        goto out;
    fill(big, nbig, 1);
    for (size_t i = 0; i < nt; i++)
        text[i] = "distsync compresses this\n"[i % 25];
    fill(small, sizeof(small), 2);
    CHECK_INT(pump(s, is_ready), 0);
    CHECK_INT(ds_manifest_count(ds_session_manifest(s)), 0);
    send_whole(s, "patches/big.msu", big, nbig, 1);
    send_whole(s, "engines/e/text.txt", text, nt, 2);
    send_whole(s, "definitions/small.dat", small, sizeof(small), 3);
    CHECK_INT(ds_session_commit_manifest(s), 0);
    CHECK_INT(pump(s, is_idle), 0);
    while (ds_session_next_result(s, &r)) {
        if (r.kind == DS_SRES_FILE && r.rc == 0)
            ok++;
        if (r.kind == DS_SRES_MANIFEST && r.rc == 0 && r.value == 3)
            man++;
        if (r.rc != 0)
            fprintf(stderr, "result %d %s: %s\n", r.kind, r.path, r.message);
    }
    CHECK_INT(ok, 3);
    CHECK_INT(man, 1);
    /* zstd only where it pays: the text shrank, the random data did not */
    CHECK(ds_session_stats(s)->literal_wire < nbig + nt / 10);
    CHECK(ds_session_stats(s)->literal_raw == nbig + nt + sizeof(small));
    CHECK(ds_session_stats(s)->bytes_out < nbig + nt / 5);
    close_session(s, t);
    snprintf(path, sizeof(path), "%s/patches/big.msu", root);
    CHECK(file_is(path, big, nbig));
    snprintf(path, sizeof(path), "%s/engines/e/text.txt", root);
    CHECK(file_is(path, text, nt));
    snprintf(path, sizeof(path), "%s/definitions/small.dat", root);
    CHECK(file_is(path, small, sizeof(small)));
    snprintf(path, sizeof(path), "%s/.distsync/lease", root);
    CHECK(access(path, F_OK) != 0); /* released */
out:
    free(big);
    free(text);
}

/* The librsync delta turning old into nw, in a malloc'd buffer. */
static uint8_t *make_delta(const uint8_t *old, const uint8_t *nw, size_t n, size_t *dn)
{
    char dir[4096], po[4200], pn[4200], pd[4200];
    int fo, fn, fd;
    ds_delta_src_t bs, ts;
    struct stat st;
    uint8_t *d = NULL;

    snprintf(dir, sizeof(dir), "%s", check_tmpdir("test_session_delta"));
    snprintf(po, sizeof(po), "%s/old", dir);
    snprintf(pn, sizeof(pn), "%s/new", dir);
    snprintf(pd, sizeof(pd), "%s/delta", dir);
    write_file(po, old, n);
    write_file(pn, nw, n);
    fo = open(po, O_RDONLY);
    fn = open(pn, O_RDONLY);
    fd = open(pd, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ds_delta_src_fd(&bs, fo, n);
    ds_delta_src_fd(&ts, fn, n);
    if (ds_delta_compute(&bs, &ts, NULL, fd, NULL) == 0 && fstat(fd, &st) == 0) {
        *dn = (size_t)st.st_size;
        d = malloc(*dn + 1);
        if (d && pread(fd, d, *dn, 0) != (ssize_t)*dn) {
            free(d);
            d = NULL;
        }
    }
    close(fo);
    close(fn);
    close(fd);
    return d;
}

/* Adopt by COPY, delta against the previous version, delete, hash. */
static void round_two(const char *mode)
{
    size_t n = 9u << 20, dn = 0;
    uint8_t *old = malloc(n), *nw = malloc(n), *delta = NULL, sum[DS_SHA256_LEN];
    const ds_session_entry_t *e;
    ds_transport_t *t = NULL;
    ds_session_t *s = open_session(&t, mode, "console-one", 1);
    ds_session_result_t r;
    char path[4300];
    size_t ne;
    uint32_t fid;
    int got = 0;

    CHECK(s && old && nw);
    if (!s || !old || !nw)
        goto out;
    fill(old, n, 1);
    memcpy(nw, old, n);
    memset(nw + 5000000, 'x', 3000);
    delta = make_delta(old, nw, n, &dn);
    CHECK(delta != NULL && dn < 100000);
    if (delta == NULL)
        goto out;
    CHECK_INT(pump(s, is_ready), 0);
    CHECK_INT(ds_manifest_count(ds_session_manifest(s)), 3);
    ds_session_listing(s, &e, &ne);
    CHECK(ne >= 5); /* 3 files, 2 directories */
    /* the old bytes kept under a second name, copied on the target */
    CHECK_INT(ds_sha256(old, n, sum), 0);
    CHECK_INT(ds_session_file_begin(s, "patches/copy.msu", n, 0644, DS_PROTO_NO_MTIME, 11, &fid),
              0);
    CHECK_INT(ds_session_file_copy(s, fid, "patches/big.msu", 0, n), 0);
    CHECK_INT(ds_session_file_commit(s, fid, n, sum), 0);
    CHECK_INT(ds_sha256(nw, n, sum), 0);
    CHECK_INT(ds_session_file_begin(s, "patches/big.msu", n, 0644, DS_PROTO_NO_MTIME, 10, &fid), 0);
    CHECK_INT(ds_session_file_data(s, fid, "patches/big.msu", delta, dn), 0);
    CHECK_INT(ds_session_file_delta_end(s, fid), 0);
    CHECK_INT(ds_session_file_commit(s, fid, n, sum), 0);
    CHECK_INT(ds_session_delete(s, "definitions/small.dat", 12), 0);
    CHECK_INT(ds_session_hash(s, "engines/e/text.txt", 13), 0);
    CHECK_INT(ds_session_sig(s, "patches/copy.msu", n, 4096, 8, 14), 0);
    CHECK_INT(ds_session_sig(s, "patches/nosuch", 0, 4096, 8, 15), 0);
    CHECK_INT(ds_session_commit_manifest(s), 0);
    CHECK_INT(pump(s, is_idle), 0);
    while (ds_session_next_result(s, &r)) {
        if (r.rc != 0 && r.tag != 15)
            fprintf(stderr, "result %d %s: %s\n", r.kind, r.path, r.message);
        got += r.rc == 0;
        if (r.kind == DS_SRES_DELETE)
            CHECK(r.tag == 12 && r.value == 1);
        if (r.kind == DS_SRES_HASH)
            CHECK(r.tag == 13 && r.size == 200000);
        if (r.kind == DS_SRES_MANIFEST)
            CHECK_INT(r.value, 3);
        if (r.kind == DS_SRES_SIG && r.tag == 14) /* 12 B header, 12 B per block */
            CHECK(r.len == 12 + (n / 4096) * 12 && memcmp(r.data, "rs\x01\x47", 4) == 0);
        if (r.kind == DS_SRES_SIG && r.tag == 15)
            CHECK(r.rc == -ENOENT && r.data == NULL);
    }
    CHECK_INT(got, 6);
    CHECK(ds_session_stats(s)->bytes_out < 200000); /* no 9 MiB crossed */
    close_session(s, t);
    snprintf(path, sizeof(path), "%s/patches/big.msu", root);
    CHECK(file_is(path, nw, n));
    snprintf(path, sizeof(path), "%s/patches/copy.msu", root);
    CHECK(file_is(path, old, n));
    snprintf(path, sizeof(path), "%s/definitions/small.dat", root);
    CHECK(access(path, F_OK) != 0);
out:
    free(delta);
    free(old);
    free(nw);
}

/* 1 when root/.distsync/tmp holds no file. */
static int tmp_empty(void)
{
    char p[4400];
    DIR *d;
    struct dirent *e;
    int n = 0;

    snprintf(p, sizeof(p), "%s/.distsync/tmp", root);
    if ((d = opendir(p)) == NULL)
        return 1;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n == 0;
}

/* ds_session_cancel_sends: what is queued and not on the wire is dropped
 * (no result, nothing on the target); a file begun on the wire without its
 * commit is aborted (DS_EABORTED, no partial file left); a file committed
 * before the cancel completes. */
static void test_cancel_sends(void)
{
    uint8_t a[5000], b[7000];
    ds_transport_t *t = NULL;
    ds_session_result_t r;
    ds_session_t *s;
    char path[4400];
    uint32_t fid;
    int nres = 0, got_a = 0, aborted_c = 0;

    snprintf(root, sizeof(root), "%s", check_tmpdir("test_session_cancel"));
    fill(a, sizeof(a), 1);
    fill(b, sizeof(b), 2);
    s = open_session(&t, "local", "console-cancel", 1);
    CHECK(s && pump(s, is_ready) == 0);
    if (s == NULL)
        return;
    send_whole(s, "patches/a.bin", a, sizeof(a), 1); /* committed, then stepped out */
    CHECK_INT(ds_session_step(s, time(NULL)), 0);
    send_whole(s, "patches/b.bin", b, sizeof(b), 2); /* queued only */
    CHECK_INT(ds_session_cancel_sends(s), 0);
    CHECK_INT(
        ds_session_file_begin(s, "patches/c.bin", sizeof(b), 0644, DS_PROTO_NO_MTIME, 3, &fid), 0);
    CHECK_INT(ds_session_file_data(s, fid, NULL, b, 3000), 0);
    CHECK_INT(ds_session_step(s, time(NULL)), 0); /* c's begin and data reach the target */
    CHECK_INT(ds_session_cancel_sends(s), 0);
    CHECK_INT(pump(s, is_idle), 0);
    while (ds_session_next_result(s, &r)) {
        nres++;
        if (r.tag == 1 && r.rc == 0)
            got_a = 1;
        if (r.tag == 3 && r.rc == DS_EABORTED)
            aborted_c = 1;
        CHECK(r.tag != 2); /* b never reached the target: no result */
    }
    CHECK_INT(nres, 2);
    CHECK(got_a);
    CHECK(aborted_c);
    snprintf(path, sizeof(path), "%s/patches/a.bin", root);
    CHECK(file_is(path, a, sizeof(a)));
    snprintf(path, sizeof(path), "%s/patches/b.bin", root);
    CHECK(access(path, F_OK) != 0);
    snprintf(path, sizeof(path), "%s/patches/c.bin", root);
    CHECK(access(path, F_OK) != 0);
    CHECK(tmp_empty());
    close_session(s, t);
}

static void test_local(void)
{
    snprintf(root, sizeof(root), "%s", check_tmpdir("test_session_local"));
    round_one("local");
    round_two("local");
}

static void test_busy(void)
{
    ds_transport_t *t1 = NULL, *t2 = NULL;
    ds_session_t *a, *b;

    snprintf(root, sizeof(root), "%s", check_tmpdir("test_session_busy"));
    a = open_session(&t1, "local", "console-one", 1);
    CHECK(a && pump(a, is_ready) == 0);
    b = open_session(&t2, "local", "console-two", 1);
    CHECK(b && pump(b, is_ready) < 0);
    CHECK(b && ds_session_busy(b));
    CHECK(b && strstr(ds_session_error(b), "being synced by console console-one (pid 77 on host "
                                           "testhost)") != NULL);
    /* read-only sessions need no lease */
    if (b) {
        ds_session_free(b);
        ds_transport_free(t2);
    }
    b = open_session(&t2, "local", "console-two", 0);
    CHECK(b && pump(b, is_ready) == 0);
    if (b)
        close_session(b, t2);
    if (a)
        close_session(a, t1);
}

static void test_agent_pipe(void)
{
    if (getenv("DISTSYNC") == NULL) {
        printf("skip test_agent_pipe: $DISTSYNC not set\n");
        return;
    }
    snprintf(root, sizeof(root), "%s", check_tmpdir("test_session_pipe"));
    round_one("agent");
    round_two("agent");
}

/* Counts the regular files under dir (not .distsync) and checks that each
 * one equals its twin under other. Returns the count, or -1 on a mismatch. */
static long tree_same(const char *dir, const char *other)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    long n = 0;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        char a[4096], b[4096];
        struct stat st;

        if (de->d_name[0] == '.')
            continue;
        snprintf(a, sizeof(a), "%s/%s", dir, de->d_name);
        snprintf(b, sizeof(b), "%s/%s", other, de->d_name);
        if (lstat(a, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            long k = tree_same(a, b);

            n = k < 0 || n < 0 ? -1 : n + k;
        } else {
            char cmd[8400];

            snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", a, b);
            if (system(cmd) != 0) {
                fprintf(stderr, "differs: %s %s\n", a, b);
                n = -1;
            } else if (n >= 0) {
                n++;
            }
        }
    }
    closedir(d);
    return n;
}

static int scan(const ds_config_t *cfg, ds_catalog_t *cat)
{
    ds_scan_opts_t o = {.store = cfg->store,
                        .classes = (const char *const *)cfg->classes.v,
                        .nclasses = cfg->classes.n,
                        .threads = 2};

    return ds_scan_run(&o, cat, NULL);
}

/* ds_sync_server end to end: a scanned store into an empty target, then an
 * edited store; the target equals the store's classes both times. */
static void test_full_sync(void)
{
    char base[1024], store[1100], text[16384], p[16384], tgt[1100];
    size_t n = 3u << 20;
    uint8_t *buf = malloc(n);
    ds_config_t *cfg = NULL;
    ds_sync_opts_t o = {0};
    ds_sync_t *sy = NULL;
    ds_sync_result_t res;
    char err[1024];

    snprintf(base, sizeof(base), "%s", check_tmpdir("test_session_full"));
    snprintf(store, sizeof(store), "%s/store", base);
    snprintf(tgt, sizeof(tgt), "%s/target", base);
    snprintf(text, sizeof(text),
             "[console]\nstore = %s\nstate = %s/state\n[server t]\nurl = file://%s\n", store, base,
             tgt);
    snprintf(p, sizeof(p), "mkdir -p %s/patches/m %s/engines/e %s/definitions %s", store, store,
             store, tgt);
    CHECK(buf && system(p) == 0);
    CHECK_INT(ds_config_parse(text, "test.conf", NULL, &cfg, err, sizeof(err)), 0);
    if (cfg == NULL || buf == NULL)
        goto out;
    fill(buf, n, 9);
    snprintf(p, sizeof(p), "%s/patches/m/a.msu", store);
    write_file(p, buf, n);
    snprintf(p, sizeof(p), "%s/engines/e/engine.bin", store);
    write_file(p, buf + 1000, 500000);
    snprintf(p, sizeof(p), "%s/definitions/d-1.dat", store);
    write_file(p, buf + 7, 1000000);
    o.cfg = cfg;
    o.no_fsync = 1;
    CHECK_INT(ds_sync_open(&o, &sy, err, sizeof(err)), 0);
    CHECK_INT(scan(cfg, ds_sync_catalog(sy)), 0);
    CHECK_INT(ds_sync_server(sy, &cfg->servers[0], DS_SYNC_RUN, &res), 0);
    CHECK_INT(res.created, 3);
    CHECK(res.bytes_wire >= n && res.bytes_wire < n + 1600000);
    ds_sync_result_clear(&res);
    snprintf(p, sizeof(p), "%s/patches", store);
    snprintf(text, sizeof(text), "%s/patches", tgt);
    CHECK_INT(tree_same(p, text), 1);
    ds_sync_close(sy);
    sy = NULL;

    /* next version: an in-place edit, a renamed definition file, a deletion */
    buf[1000 + 250000] ^= 0xff;
    snprintf(p, sizeof(p), "%s/engines/e/engine.bin", store);
    write_file(p, buf + 1000, 500000);
    snprintf(p, sizeof(p), "%s/definitions/d-1.dat", store);
    unlink(p);
    buf[7 + 400000] ^= 0xff;
    snprintf(p, sizeof(p), "%s/definitions/d-2.dat", store);
    write_file(p, buf + 7, 1000000);
    CHECK_INT(ds_sync_open(&o, &sy, err, sizeof(err)), 0);
    CHECK_INT(scan(cfg, ds_sync_catalog(sy)), 0);
    CHECK_INT(ds_sync_server(sy, &cfg->servers[0], DS_SYNC_PLAN, &res), 0);
    CHECK(res.plan && res.plan->totals.create == 1 && res.plan->totals.update == 1);
    ds_sync_result_clear(&res);
    CHECK_INT(ds_sync_server(sy, &cfg->servers[0], DS_SYNC_RUN, &res), 0);
    CHECK_INT(res.created, 1);
    CHECK_INT(res.updated, 1);
    CHECK(res.bytes_delta > 0);
    CHECK(res.bytes_wire < 100000); /* 1.5 MB of files, two bytes changed */
    ds_sync_result_clear(&res);
    for (int i = 0; i < 2; i++) {
        static const char *const cls[] = {"engines", "definitions"};

        snprintf(p, sizeof(p), "%s/%s", store, cls[i]);
        snprintf(text, sizeof(text), "%s/%s", tgt, cls[i]);
        CHECK_INT(tree_same(p, text), 1);
    }
    CHECK_INT(ds_sync_server(sy, &cfg->servers[0], DS_SYNC_STATUS, &res), 0);
    CHECK(res.plan && res.plan->totals.extra == 1 && res.plan->totals.keep == 3);
    ds_sync_result_clear(&res);
out:
    ds_sync_close(sy);
    ds_config_free(cfg);
    free(buf);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(test_local);
    RUN(test_cancel_sends);
    RUN(test_busy);
    RUN(test_agent_pipe);
    RUN(test_full_sync);
    return CHECK_DONE();
}

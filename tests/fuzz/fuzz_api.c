/*
 * The daemon API's request handler (ds__api_route): paths, query strings
 * and JSON bodies from outside, against a real daemon (a scratch store,
 * state directory and configuration with two servers, a site and a
 * schedule, and a rollout for the upgrade gate's endpoints; its listeners
 * are not started: requests come straight from the fuzzer). Byte 0 picks the method; the path runs
 * to the first newline, the body is the rest. Every reply must be a status from 200 to 599 with a
 * JSON body; what a request queued or froze is undone after it, so each input starts from the same
 * state (except the gate's: its grants and queues stay, as they would on a daemon).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/api_int.h"
#include "distsync/freeze.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ds_daemon_t *d;
static ds_sync_t *sy;
static ds_config_t *cfg;

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
        abort();
}

static void setup(void)
{
    char base[] = "/tmp/fuzz_api.XXXXXX", path[512], conf[4096], err[1024];
    ds_sync_opts_t so = {0};
    ds_daemon_opts_t o = {0};

    if (mkdtemp(base) == NULL)
        abort();
    snprintf(path, sizeof(path), "%s/store", base);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/store/patches", base);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/store/patches/a.bin", base);
    put(path, "a");
    snprintf(path, sizeof(path), "%s/t1", base);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/t2", base);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/token", base);
    put(path, "enrol\n");
    if (chmod(path, 0600) < 0)
        abort();
    snprintf(conf, sizeof(conf),
             "[console]\nstore = %s/store\nstate = %s/state\nclasses = patches\n"
             "bandwidth = 8Mbit\nmax_concurrent_upgrades = 2\n\n[site east]\nclients = c*\n"
             "bandwidth = Mon-Fri 08:00-18:00 1Mbit\n"
             "tz = Europe/Paris\n\n[server s1]\nurl = file://%s/t1\nclasses = patches\n\n"
             "[server s2]\nurl = file://%s/t2\nsite = east\nclasses = patches\n\n"
             "[schedule nightly]\nwhen = daily 02:00\ntz = UTC\nwindow = 4h\nservers = s1 s2\n"
             "\n[package p7]\nproduct = agent\nversion = 7.0\npath = patches/a.bin\n"
             "\n[ring all]\nmembers = c*\n\n[rollout agent]\nproduct = agent\nversion = 7.0\n"
             "rings = all\ntoken_file = %s/token\n",
             base, base, base, base, base);
    snprintf(path, sizeof(path), "%s/d.conf", base);
    put(path, conf);
    if (ds_config_load(path, &cfg, err, sizeof(err)) < 0)
        abort();
    snprintf(path, sizeof(path), "%s/state", base);
    mkdir(path, 0700);
    so.cfg = cfg;
    so.no_fsync = 1;
    if (ds_sync_open(&so, &sy, err, sizeof(err)) < 0)
        abort();
    o.sync = sy;
    o.config_path = cfg->path;
    o.no_scan = 1;
    if (ds_daemon_new(&o, &d, err, sizeof(err)) < 0)
        abort();
}

/* What a request changed goes back: queued runs end, freezes go. */
static void undo(void)
{
    for (struct drun *r; (r = ds__drun_queued(d)) != NULL;)
        ds__drun_end(d, r, "cancelled", NULL);
    for (size_t i = 0; i < cfg->nservers; i++)
        (void)ds_freeze_del(ds_sync_catalog(sy), cfg->servers[i].name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET",  "POST",  "PUT", "DELETE",
                                          "HEAD", "PATCH", "",    "get"};
    const char *nl;
    struct api_req rq = {0};
    struct api_res rs = {0};

    if (d == NULL)
        setup();
    if (size < 1)
        return 0;
    rq.method = methods[data[0] % 8];
    rq.method_len = strlen(rq.method);
    data++;
    size--;
    nl = memchr(data, '\n', size);
    rq.path = (const char *)data;
    rq.path_len = nl ? (size_t)(nl - (const char *)data) : size;
    rq.body = nl ? nl + 1 : NULL;
    rq.body_len = nl ? size - rq.path_len - 1 : 0;
    ds__api_route(d, &rq, &rs);
    if (rs.defer && ds__api_gate_commit(d) < 0 && rs.status == 200)
        abort(); /* the gate's commit failed: a scratch state never should */
    if (rs.status < 200 || rs.status > 599 || rs.body == NULL || rs.len == 0 ||
        (rs.body[0] != '{' && rs.body[0] != '['))
        abort();
    free(rs.body);
    undo();
    return 0;
}

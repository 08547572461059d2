/* distsync files: list the catalog. */
#include <getopt.h>
#include <limits.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "distsync/catalog.h"
#include "distsync/error.h"
#include "distsync/scan.h"
#include "distsync/json.h"
#include "distsync/tz.h"
#include "select.h"

#define FILES_USAGE "usage: distsync files [--json] [--class C] [PATH_PREFIX]\n"

struct files_args {
    int json;
    const char *klass;
    const char *prefix;
    const char *chunks; /* hidden debug option: --chunks PATH */
};

/* RFC 3339 UTC, second precision ("2026-11-22T02:00:48Z"). */
static void fmt_mtime(char *buf, size_t len, int64_t ns)
{
    int64_t s = ns / 1000000000LL - (ns % 1000000000LL < 0);

    if (ds_tz_format_utc(s, buf, len) < 0)
        snprintf(buf, len, "invalid");
}

static void print_row(ds_json_t *j, const ds_file_row_t *r)
{
    char sha[2 * DS_SHA256_LEN + 1] = "unreadable", mt[40];

    if (r->has_sha)
        ds_hex(r->sha256, DS_SHA256_LEN, sha);
    fmt_mtime(mt, sizeof(mt), r->mtime_ns);
    if (j == NULL) {
        printf("%s\t%s\t%llu\t%s\t%u\t%s\n", cli_esc(r->path), cli_esc(r->klass),
               (unsigned long long)r->size, sha, r->nchunks, mt);
        return;
    }
    ds_json_obj_begin(j);
    ds_json_kstr(j, "path", r->path);
    ds_json_kstr(j, "class", r->klass);
    ds_json_kuint(j, "size", r->size);
    ds_json_key(j, "sha256");
    if (r->has_sha)
        ds_json_str(j, sha);
    else
        ds_json_null(j);
    ds_json_kuint(j, "chunks", r->nchunks);
    ds_json_kstr(j, "mtime", mt);
    ds_json_kint(j, "mtime_ns", r->mtime_ns);
    ds_json_kbool(j, "unreadable", r->content_id <= 0); /* the scan could not read it */
    ds_json_obj_end(j);
}

/* Lists rows under the prefix (narrowed to the class when given). */
static int list(ds_catalog_t *cat, const struct files_args *a)
{
    char prefix[PATH_MAX];
    ds_catalog_cursor_t *cur = NULL;
    ds_file_row_t r;
    ds_json_t j;
    int rc;

    snprintf(prefix, sizeof(prefix), "%s", a->prefix ? a->prefix : "");
    if (a->klass != NULL && prefix[0] == '\0')
        snprintf(prefix, sizeof(prefix), "%s/", a->klass);
    rc = ds_catalog_cursor_open(cat, prefix, &cur);
    if (rc < 0)
        return rc;
    if (a->json) {
        ds_json_init(&j, stdout);
        ds_json_arr_begin(&j);
    } else if (isatty(STDOUT_FILENO)) {
        printf("PATH\tCLASS\tSIZE\tSHA256\tCHUNKS\tMTIME\n");
    }
    while ((rc = ds_catalog_cursor_next(cur, &r)) > 0) {
        if (a->klass != NULL && strcmp(r.klass, a->klass) != 0)
            continue;
        print_row(a->json ? &j : NULL, &r);
    }
    if (a->json) {
        ds_json_arr_end(&j);
        ds_json_end(&j);
    }
    ds_catalog_cursor_free(cur);
    return rc;
}

/* --chunks PATH: each chunk's offset, length and XXH3-128 (as xxhsum -H2). */
static int chunks(ds_catalog_t *cat, const struct files_args *a)
{
    char buf[2 * PATH_MAX], hex[2 * DS_XXH128_LEN + 1];
    ds_content_t c = {0};
    ds_file_row_t r;
    uint64_t off = 0;
    ds_json_t j;
    int rc = ds_catalog_file_get(cat, a->chunks, &r, buf, sizeof(buf));

    if (rc == 0)
        rc = r.content_id > 0 ? ds_catalog_content_get(cat, r.content_id, &c) : DS_ENOTFOUND;
    if (rc < 0) {
        cli_err("files --chunks %s: %s", a->chunks, ds_strerror(rc));
        return rc;
    }
    ds_json_init(&j, stdout);
    if (a->json)
        ds_json_arr_begin(&j);
    for (uint32_t i = 0; i < c.nchunks; i++) {
        const uint8_t *rec = c.chunks + (size_t)i * DS_CATALOG_CHUNK_REC;
        const uint8_t *l = rec + DS_XXH128_LEN;
        uint32_t len =
            (uint32_t)l[0] | (uint32_t)l[1] << 8 | (uint32_t)l[2] << 16 | (uint32_t)l[3] << 24;

        ds_hex(rec, DS_XXH128_LEN, hex);
        if (a->json) {
            ds_json_obj_begin(&j);
            ds_json_kuint(&j, "offset", off);
            ds_json_kuint(&j, "length", len);
            ds_json_kstr(&j, "xxh3", hex);
            ds_json_obj_end(&j);
        } else {
            printf("%llu\t%u\t%s\n", (unsigned long long)off, len, hex);
        }
        off += len;
    }
    if (a->json) {
        ds_json_arr_end(&j);
        ds_json_end(&j);
    }
    ds_content_clear(&c);
    return 0;
}

static int parse_args(int argc, char **argv, struct files_args *a)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"class", required_argument, NULL, 'C'},
        {"chunks", required_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    while ((ch = getopt_long(argc, argv, "jC:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'j':
            a->json = 1;
            break;
        case 'C':
            a->klass = optarg;
            break;
        case 'K':
            a->chunks = optarg;
            break;
        case 'h':
            fputs(FILES_USAGE, stdout);
            return -1;
        default:
            fputs(FILES_USAGE, stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc)
        a->prefix = argv[optind++];
    if (optind < argc) {
        cli_err("files: unexpected argument '%s'", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

int cmd_files(struct cli *cli, int argc, char **argv)
{
    struct files_args a = {0};
    ds_config_t *cfg = NULL;
    ds_catalog_t *cat = NULL;
    char path[PATH_MAX];
    int rc = parse_args(argc, argv, &a);

    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;
    rc = cli_config_load(cli, &cfg);
    if (rc != 0)
        return rc;
    if (a.klass != NULL && (rc = cli_select_check_class("files", cfg, a.klass)) != 0)
        goto out;
    if ((rc = cli_catalog_open_existing(cfg, path, sizeof(path), &cat)) != 0)
        goto out;
    cli_catalog_warn(cat, cfg->state);
    rc = a.chunks ? chunks(cat, &a) : list(cat, &a);
    if (rc < 0 && !a.chunks)
        cli_err("files: reading %s failed: %s", path, ds_strerror(rc));
    rc = rc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
out:
    ds_catalog_free(cat);
    ds_config_free(cfg);
    return rc;
}

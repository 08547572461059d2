/*
 * The bundle's text parts (include/distsync/bundle.h): the header and the
 * index, encoded and parsed. Pure: bytes in, structs out. Both parts come
 * from outside on the import side, so the parsers check every field: a
 * line of the wrong shape, a number out of range, an unsafe or repeated
 * path refuses the bundle.
 *
 * Index lines, fields separated by one tab (a safe path holds no tab or
 * newline: ds_pathsafe_check refuses control characters):
 *   put PATH SIZE MODE(octal) MTIME_NS SHA256 HOW BASIS|- BASIS_SHA256|- DATA_LEN DATA_SHA256|-
 *   del PATH
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/bundle.h"
#include "distsync/pathsafe.h"
#include "distsync/proto.h"

#define PUT_FIELDS 11

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

int ds_bundle_hdr_encode(const ds_bundle_hdr_t *h, char **out, size_t *len)
{
    char basis[2 * DS_SHA256_LEN + 1] = "none", result[2 * DS_SHA256_LEN + 1];
    int n;

    if (h->has_basis)
        ds_hex(h->basis, DS_SHA256_LEN, basis);
    ds_hex(h->result, DS_SHA256_LEN, result);
    n = asprintf(out,
                 "%s %u\nserver %s\nconsole %s\nbasis %s\nresult %s\ncreated %" PRId64
                 "\nitems %" PRIu64 "\ndata %" PRIu64 "\n",
                 DS_BUNDLE_HEADER, h->version, h->server, h->console, basis, result, h->created,
                 h->items, h->data_bytes);
    if (n < 0) {
        *out = NULL;
        return DS_ENOMEM;
    }
    *len = (size_t)n;
    return 0;
}

/* A printable value without control bytes, at most max - 1 bytes. */
static int text_value(const char *v, size_t n, char *out, size_t max)
{
    if (n == 0 || n >= max)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return -1;
    memcpy(out, v, n);
    out[n] = '\0';
    return 0;
}

/* A decimal u64 of exactly n bytes. */
static int parse_u64(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;

    if (n == 0 || n > 20)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9' || x > (UINT64_MAX - (uint64_t)(v[i] - '0')) / 10)
            return -1;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return 0;
}

static int parse_i64(const char *v, size_t n, int64_t *out)
{
    uint64_t x;
    int neg = n > 0 && v[0] == '-';

    if (parse_u64(v + neg, n - (size_t)neg, &x) < 0 || x > (uint64_t)INT64_MAX + (uint64_t)neg)
        return -1;
    *out = neg ? (int64_t)(0 - x) : (int64_t)x;
    return 0;
}

static int parse_sha(const char *v, size_t n, uint8_t out[DS_SHA256_LEN])
{
    char hex[2 * DS_SHA256_LEN + 1];

    if (n != 2 * DS_SHA256_LEN)
        return -1;
    memcpy(hex, v, n);
    hex[n] = '\0';
    return ds_unhex(hex, out, DS_SHA256_LEN) < 0 ? -1 : 0;
}

/* One "key value" header line into h; *seen gets the key's bit. */
static int hdr_line(const char *k, size_t kn, const char *v, size_t vn, ds_bundle_hdr_t *h,
                    unsigned *seen)
{
    static const char *const keys[] = {"server",  "console", "basis", "result",
                                       "created", "items",   "data"};
    uint64_t u = 0;
    int rc = 0;
    size_t i;

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strlen(keys[i]) == kn && memcmp(keys[i], k, kn) == 0)
            break;
    if (i == sizeof(keys) / sizeof(keys[0]))
        return 0; /* a later version's key */
    if (*seen & (1u << i))
        return -1;
    *seen |= 1u << i;
    switch (i) {
    case 0:
        return text_value(v, vn, h->server, sizeof(h->server));
    case 1:
        return text_value(v, vn, h->console, sizeof(h->console));
    case 2:
        h->has_basis = !(vn == 4 && memcmp(v, "none", 4) == 0);
        return h->has_basis ? parse_sha(v, vn, h->basis) : 0;
    case 3:
        return parse_sha(v, vn, h->result);
    case 4:
        return parse_i64(v, vn, &h->created);
    case 5:
        rc = parse_u64(v, vn, &u);
        h->items = u;
        return rc < 0 || u > DS_BUNDLE_ITEMS_MAX ? -1 : 0;
    default:
        rc = parse_u64(v, vn, &u);
        h->data_bytes = u;
        return rc < 0 || u > DS_BUNDLE_BYTES_MAX ? -1 : 0;
    }
}

int ds_bundle_hdr_parse(const char *buf, size_t len, ds_bundle_hdr_t *h, char *err, size_t errlen)
{
    const char *p = buf, *end = buf + len;
    unsigned seen = 0, line = 0;
    uint64_t v;

    memset(h, 0, sizeof(*h));
    if (len > DS_BUNDLE_HEADER_MAX)
        return fail(err, errlen, DS_ECORRUPT, "header over %u bytes", DS_BUNDLE_HEADER_MAX);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *sp;

        line++;
        if (nl == NULL)
            return fail(err, errlen, DS_ECORRUPT, "header line %u has no newline", line);
        sp = memchr(p, ' ', (size_t)(nl - p));
        if (sp == NULL)
            return fail(err, errlen, DS_ECORRUPT, "header line %u is not 'key value'", line);
        if (line == 1) {
            size_t kn = (size_t)(sp - p);

            if (kn != strlen(DS_BUNDLE_HEADER) || memcmp(p, DS_BUNDLE_HEADER, kn) != 0 ||
                parse_u64(sp + 1, (size_t)(nl - sp - 1), &v) < 0)
                return fail(err, errlen, DS_ECORRUPT, "not a distsync bundle header");
            if (v == 0 || v > DS_BUNDLE_VERSION)
                return fail(err, errlen, DS_EVERSION,
                            "bundle format version %" PRIu64 " (this distsync reads 1 to %d)", v,
                            DS_BUNDLE_VERSION);
            h->version = (unsigned)v;
        } else if (hdr_line(p, (size_t)(sp - p), sp + 1, (size_t)(nl - sp - 1), h, &seen) < 0) {
            return fail(err, errlen, DS_ECORRUPT, "header line %u: bad or repeated value", line);
        }
        p = nl + 1;
    }
    if (h->version == 0 || (seen & 0x7f) != 0x7f)
        return fail(err, errlen, DS_ECORRUPT,
                    "header lacks a field (server, console, basis, "
                    "result, created, items, data)");
    return 0;
}

static int grow(char **buf, size_t *len, size_t *cap, size_t need)
{
    if (*len + need + 1 > *cap) {
        size_t c = *cap ? *cap : 4096;
        char *b;

        while (c < *len + need + 1)
            c *= 2;
        if ((b = realloc(*buf, c)) == NULL)
            return DS_ENOMEM;
        *buf = b;
        *cap = c;
    }
    return 0;
}

static const char *how_name(ds_bundle_how_t h)
{
    return h == DS_BUNDLE_LIT ? "lit" : h == DS_BUNDLE_DELTA ? "delta" : "copy";
}

int ds_bundle_item_encode(const ds_bundle_item_t *it, char **buf, size_t *len, size_t *cap)
{
    char sha[2 * DS_SHA256_LEN + 1], bsha[2 * DS_SHA256_LEN + 1] = "-",
                                                              dsha[2 * DS_SHA256_LEN + 1] = "-";
    size_t need = strlen(it->path) + (it->basis ? strlen(it->basis) : 1) + 320;
    int n;

    if (grow(buf, len, cap, need) < 0)
        return DS_ENOMEM;
    if (it->op == DS_BUNDLE_DEL) {
        n = snprintf(*buf + *len, *cap - *len, "del\t%s\n", it->path);
        *len += (size_t)n;
        return 0;
    }
    ds_hex(it->sha256, DS_SHA256_LEN, sha);
    if (it->basis)
        ds_hex(it->basis_sha256, DS_SHA256_LEN, bsha);
    if (it->how == DS_BUNDLE_LIT || it->how == DS_BUNDLE_DELTA)
        ds_hex(it->data_sha256, DS_SHA256_LEN, dsha);
    n = snprintf(*buf + *len, *cap - *len,
                 "put\t%s\t%" PRIu64 "\t%o\t%" PRId64 "\t%s\t%s\t%s\t%s\t%" PRIu64 "\t%s\n",
                 it->path, it->size, (unsigned)(it->mode & 0777), it->mtime_ns, sha,
                 how_name(it->how), it->basis ? it->basis : "-", bsha, it->data_len, dsha);
    *len += (size_t)n;
    return 0;
}

/* A malloc'd copy of a field that must be a safe path. */
static char *path_field(const char *v, size_t n)
{
    char *s;

    if (n == 0 || n > DS_PATHSAFE_MAX || memchr(v, '\0', n) != NULL || (s = malloc(n + 1)) == NULL)
        return NULL;
    memcpy(s, v, n);
    s[n] = '\0';
    if (ds_pathsafe_check(s, NULL) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

static int parse_mode(const char *v, size_t n, uint32_t *mode)
{
    uint32_t m = 0;

    if (n == 0 || n > 4)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '7')
            return -1;
        m = m * 8 + (uint32_t)(v[i] - '0');
    }
    *mode = m & 0777;
    return m > 0777 ? -1 : 0;
}

static int parse_how(const char *v, size_t n, ds_bundle_how_t *how)
{
    if (n == 3 && memcmp(v, "lit", 3) == 0)
        *how = DS_BUNDLE_LIT;
    else if (n == 5 && memcmp(v, "delta", 5) == 0)
        *how = DS_BUNDLE_DELTA;
    else if (n == 4 && memcmp(v, "copy", 4) == 0)
        *how = DS_BUNDLE_COPY;
    else
        return -1;
    return 0;
}

/* The fields of a put line (f[i], fn[i]) into it. */
static int put_fields(const char **f, const size_t *fn, ds_bundle_item_t *it)
{
    int has_data, has_basis = !(fn[7] == 1 && f[7][0] == '-');

    it->op = DS_BUNDLE_PUT;
    if ((it->path = path_field(f[1], fn[1])) == NULL)
        return DS_EPATH;
    if (parse_u64(f[2], fn[2], &it->size) < 0 || it->size > DS_PROTO_MAX_FILE ||
        parse_mode(f[3], fn[3], &it->mode) < 0 || parse_i64(f[4], fn[4], &it->mtime_ns) < 0 ||
        parse_sha(f[5], fn[5], it->sha256) < 0 || parse_how(f[6], fn[6], &it->how) < 0 ||
        parse_u64(f[9], fn[9], &it->data_len) < 0 || it->data_len > DS_BUNDLE_BYTES_MAX)
        return DS_ECORRUPT;
    has_data = it->how != DS_BUNDLE_COPY;
    if (has_basis != (it->how != DS_BUNDLE_LIT))
        return DS_ECORRUPT; /* a basis exactly for delta and copy */
    if (has_basis && ((it->basis = path_field(f[7], fn[7])) == NULL))
        return DS_EPATH;
    if (has_basis ? parse_sha(f[8], fn[8], it->basis_sha256) < 0 : !(fn[8] == 1 && f[8][0] == '-'))
        return DS_ECORRUPT;
    if (has_data ? parse_sha(f[10], fn[10], it->data_sha256) < 0
                 : !(fn[10] == 1 && f[10][0] == '-') || it->data_len != 0)
        return DS_ECORRUPT;
    if (it->how == DS_BUNDLE_LIT && it->data_len != it->size)
        return DS_ECORRUPT; /* the size lies */
    return 0;
}

/* One index line into it. */
static int index_line(const char *p, size_t n, ds_bundle_item_t *it)
{
    const char *f[PUT_FIELDS];
    size_t fn[PUT_FIELDS], nf = 0;
    const char *q = p, *end = p + n;

    memset(it, 0, sizeof(*it));
    while (nf < PUT_FIELDS) {
        const char *tab = memchr(q, '\t', (size_t)(end - q));

        f[nf] = q;
        fn[nf++] = (size_t)((tab ? tab : end) - q);
        if (tab == NULL)
            break;
        q = tab + 1;
    }
    if (nf == 2 && fn[0] == 3 && memcmp(f[0], "del", 3) == 0) {
        it->op = DS_BUNDLE_DEL;
        return (it->path = path_field(f[1], fn[1])) ? 0 : DS_EPATH;
    }
    if (nf != PUT_FIELDS || fn[0] != 3 || memcmp(f[0], "put", 3) != 0 ||
        f[PUT_FIELDS - 1] + fn[PUT_FIELDS - 1] != end)
        return DS_ECORRUPT;
    return put_fields(f, fn, it);
}

static int cmp_path(const void *a, const void *b)
{
    return strcmp((*(const ds_bundle_item_t *const *)a)->path,
                  (*(const ds_bundle_item_t *const *)b)->path);
}

/* Each path appears once. */
static int unique_paths(ds_bundle_item_t *items, size_t n, char *err, size_t errlen)
{
    const ds_bundle_item_t **v = calloc(n + 1, sizeof(*v));
    int rc = 0;

    if (v == NULL)
        return DS_ENOMEM;
    for (size_t i = 0; i < n; i++)
        v[i] = &items[i];
    qsort(v, n, sizeof(*v), cmp_path);
    for (size_t i = 1; i < n && rc == 0; i++)
        if (strcmp(v[i - 1]->path, v[i]->path) == 0)
            rc = fail(err, errlen, DS_ECORRUPT, "index names %s twice", v[i]->path);
    free(v);
    return rc;
}

int ds_bundle_index_parse(const char *buf, size_t len, ds_bundle_item_t **items, size_t *n,
                          char *err, size_t errlen)
{
    const char *p = buf, *end = buf + len;
    ds_bundle_item_t *v = NULL;
    size_t k = 0, cap = 0;
    int rc = 0;

    *items = NULL;
    *n = 0;
    if (len > DS_BUNDLE_INDEX_MAX)
        return fail(err, errlen, DS_ETOOBIG, "index over %u bytes", DS_BUNDLE_INDEX_MAX);
    while (p < end && rc == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));

        if (nl == NULL) {
            rc = fail(err, errlen, DS_ECORRUPT, "index line %zu has no newline", k + 1);
            break;
        }
        if (k == cap) {
            ds_bundle_item_t *w;

            cap = cap ? 2 * cap : 64;
            if (cap > DS_BUNDLE_ITEMS_MAX + 1 || (w = realloc(v, cap * sizeof(*v))) == NULL) {
                rc = cap > DS_BUNDLE_ITEMS_MAX + 1
                         ? fail(err, errlen, DS_ETOOBIG, "index over %u items", DS_BUNDLE_ITEMS_MAX)
                         : DS_ENOMEM;
                break;
            }
            v = w;
        }
        rc = index_line(p, (size_t)(nl - p), &v[k]);
        k++;
        if (rc < 0 && rc != DS_ENOMEM)
            rc = fail(err, errlen, rc, "index line %zu: %s", k,
                      rc == DS_EPATH ? "unsafe path" : "malformed");
        p = nl + 1;
    }
    if (rc == 0)
        rc = unique_paths(v, k, err, errlen);
    if (rc < 0) {
        ds_bundle_items_free(v, k);
        return rc;
    }
    *items = v;
    *n = k;
    return 0;
}

void ds_bundle_items_free(ds_bundle_item_t *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++) {
        free(items[i].path);
        free(items[i].basis);
    }
    free(items);
}

void ds_bundle_data_name(size_t i, char *out, size_t outlen)
{
    snprintf(out, outlen, "data/%08zu", i);
}

/*
 * The bundle reader (include/distsync/bundle.h): libarchive, tar and zstd
 * only. A bundle comes from outside, on media anyone could have written, so
 * the first pass reads it whole before anything is applied and refuses, naming
 * the bundle and the entry: an entry that is not a regular file (symlink,
 * hard link, directory, device), a name that is unsafe ('..', leading '/')
 * or not the one expected at that place, a size other than the index
 * declares, data whose SHA-256 differs from the index, a truncated archive,
 * an archive that is not zstd, a stream expanding past the caps (its
 * declared size, DS_BUNDLE_RATIO_MAX times the compressed bytes, or
 * DS_BUNDLE_BYTES_MAX), and an expected manifest that does not match the
 * header or the index. The second pass (the import) reads the data again
 * and checks each entry's SHA-256 again, so a bundle swapped in between
 * fails.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "distsync/bundle.h"
#include "distsync/manifest.h"

#define READ_BLOCK  (1u << 20)
#define TAR_SLACK   (64u << 10) /* end blocks, padding, pax headers */
#define TAR_PER_ENT 2048u       /* header and padding of one entry */

struct ds_bundle_reader {
    struct archive *a;
    int fd;
    const void *mem;
    size_t memlen;
    char name[512];
    uint64_t cap; /* the tar stream may not grow past this */
    ds_bundle_hdr_t hdr;
    ds_bundle_item_t *items;
    size_t n;
    char *hdr_text, *index;
    size_t hdr_len, index_len;
    uint8_t *manifest;
    size_t mlen;
    /* the data entry being read */
    size_t next; /* the next item that may have a data entry */
    size_t cur;
    int open_entry;
    uint64_t left;
    ds_sha256_t sh;
    char entry[256];
};

static int fail(ds_bundle_reader_t *r, char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail(ds_bundle_reader_t *r, char *err, size_t errlen, int rc, const char *fmt, ...)
{
    char msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "bundle %s: %s", r->name, msg);
    return rc;
}

static int archive_open(ds_bundle_reader_t *r, char *err, size_t errlen)
{
    int rc;

    if (r->a != NULL)
        archive_read_free(r->a);
    if ((r->a = archive_read_new()) == NULL)
        return DS_ENOMEM;
    /* tar and zstd only: no other format's parser sees these bytes */
    archive_read_support_filter_zstd(r->a);
    archive_read_support_format_tar(r->a);
    if (r->fd >= 0) {
        if (lseek(r->fd, 0, SEEK_SET) < 0)
            return fail(r, err, errlen, -errno, "cannot read: %s", strerror(errno));
        rc = archive_read_open_fd(r->a, r->fd, 64 << 10);
    } else {
        rc = archive_read_open_memory(r->a, r->mem, r->memlen);
    }
    if (rc != ARCHIVE_OK)
        return fail(r, err, errlen, DS_ECORRUPT, "not a zstd-compressed tar archive (%s)",
                    archive_error_string(r->a) ? archive_error_string(r->a) : "unreadable");
    return 0;
}

/* The caps on the tar stream's growth, checked after every read. */
static int check_bomb(ds_bundle_reader_t *r, char *err, size_t errlen)
{
    uint64_t out = (uint64_t)archive_filter_bytes(r->a, 0);
    uint64_t in = (uint64_t)archive_filter_bytes(r->a, -1);

    if (out > r->cap)
        return fail(r, err, errlen, DS_ETOOBIG,
                    "entry %s: the archive expands past the %" PRIu64
                    " bytes its header declares (a decompression bomb?)",
                    r->entry, r->cap);
    if (out > DS_BUNDLE_RATIO_FLOOR && out / DS_BUNDLE_RATIO_MAX > in)
        return fail(r, err, errlen, DS_ETOOBIG,
                    "entry %s: expands over %u times its compressed size (a decompression bomb?)",
                    r->entry, DS_BUNDLE_RATIO_MAX);
    return 0;
}

/* Why an entry name is unsafe, or NULL. */
static const char *unsafe_name(const char *nm)
{
    if (nm[0] == '/')
        return "an absolute name";
    for (const char *p = nm; (p = strstr(p, "..")) != NULL; p += 2)
        if ((p == nm || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
            return "a '..' component";
    return NULL;
}

/*
 * Moves to the next entry and checks it is a regular file named want of
 * want_size bytes (UINT64_MAX: any up to max). Returns 0, or 1 at the end of
 * the archive when want is NULL, or < 0.
 */
static int next_entry(ds_bundle_reader_t *r, const char *want, uint64_t want_size, uint64_t max,
                      char *err, size_t errlen)
{
    struct archive_entry *e;
    const char *nm, *why;
    int rc = archive_read_next_header(r->a, &e);

    if (rc == ARCHIVE_EOF && want == NULL)
        return 1;
    if (rc == ARCHIVE_EOF)
        return fail(r, err, errlen, DS_ECORRUPT, "truncated: the archive ends before entry %s",
                    want);
    if (rc != ARCHIVE_OK)
        return fail(r, err, errlen, DS_ECORRUPT, "truncated or corrupt after entry %s: %s",
                    r->entry, archive_error_string(r->a) ? archive_error_string(r->a) : "?");
    if (archive_filter_code(r->a, 0) != ARCHIVE_FILTER_ZSTD)
        return fail(r, err, errlen, DS_ECORRUPT, "not zstd-compressed");
    nm = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    snprintf(r->entry, sizeof(r->entry), "%.200s", nm);
    if ((why = unsafe_name(nm)) != NULL)
        return fail(r, err, errlen, DS_EPATH, "entry %s: %s", r->entry, why);
    if (archive_entry_hardlink(e) != NULL)
        return fail(r, err, errlen, DS_ESYMLINK, "entry %s: a hard link entry", r->entry);
    if (archive_entry_filetype(e) == AE_IFLNK || archive_entry_symlink(e) != NULL)
        return fail(r, err, errlen, DS_ESYMLINK, "entry %s: a symbolic link entry", r->entry);
    if (archive_entry_filetype(e) != AE_IFREG)
        return fail(r, err, errlen, DS_ENOTREG, "entry %s: not a regular file", r->entry);
    if (want == NULL || strcmp(nm, want) != 0)
        return fail(r, err, errlen, DS_ECORRUPT, "entry %s: unexpected (want %s)", r->entry,
                    want ? want : "the end of the archive");
    if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0 ||
        (want_size != UINT64_MAX && (uint64_t)archive_entry_size(e) != want_size) ||
        (uint64_t)archive_entry_size(e) > max)
        return fail(r, err, errlen, DS_ECORRUPT, "entry %s: size %" PRId64 " is not the %s",
                    r->entry, (int64_t)archive_entry_size(e),
                    want_size != UINT64_MAX ? "size the index declares" : "allowed size");
    r->left = (uint64_t)archive_entry_size(e);
    return check_bomb(r, err, errlen);
}

/* Reads the current entry's r->left bytes into a malloc'd buffer, grown as
 * the bytes arrive (a size that lies costs no more memory than the data). */
static int slurp(ds_bundle_reader_t *r, char **out, size_t *len, char *err, size_t errlen)
{
    size_t n = (size_t)r->left, got = 0, cap = n < READ_BLOCK ? n : READ_BLOCK;
    char *b = malloc(cap + 1), *nb;

    *out = NULL;
    if (b == NULL)
        return DS_ENOMEM;
    while (got < n) {
        la_ssize_t k;

        if (got == cap) {
            cap = n - cap < cap ? n : 2 * cap;
            if ((nb = realloc(b, cap + 1)) == NULL) {
                free(b);
                return DS_ENOMEM;
            }
            b = nb;
        }
        k = archive_read_data(r->a, b + got, cap - got);
        if (k <= 0) {
            free(b);
            return fail(r, err, errlen, DS_ECORRUPT, "entry %s: truncated (%zu of %zu bytes): %s",
                        r->entry, got, n,
                        k < 0 && archive_error_string(r->a) ? archive_error_string(r->a) : "end");
        }
        got += (size_t)k;
    }
    b[n] = '\0';
    *out = b;
    *len = n;
    return check_bomb(r, err, errlen);
}

/* The expected manifest agrees with the header and the index. */
static int check_manifest(ds_bundle_reader_t *r, char *err, size_t errlen)
{
    uint8_t sha[DS_SHA256_LEN];
    ds_manifest_t *m = NULL;
    char why[256] = "";
    int rc = ds_sha256(r->manifest, r->mlen, sha);

    if (rc == 0 && memcmp(sha, r->hdr.result, DS_SHA256_LEN) != 0)
        return fail(r, err, errlen, DS_ECORRUPT, "entry manifest: not the one the header names");
    if (rc == 0 && (rc = ds_manifest_decode(r->manifest, r->mlen, &m, why, sizeof(why))) < 0)
        return fail(r, err, errlen, rc, "entry manifest: %s", why);
    for (size_t i = 0; rc == 0 && i < r->n; i++) {
        const ds_bundle_item_t *it = &r->items[i];
        const ds_manifest_entry_t *e = ds_manifest_get(m, it->path);
        int ok = it->op == DS_BUNDLE_DEL
                     ? e == NULL
                     : e && e->size == it->size && !memcmp(e->sha256, it->sha256, DS_SHA256_LEN);

        if (!ok)
            rc = fail(r, err, errlen, DS_ECORRUPT, "entry index: %s disagrees with the manifest",
                      it->path);
    }
    ds_manifest_free(m);
    return rc;
}

/* Header, manifest and index, then the stream's cap. */
static int read_meta(ds_bundle_reader_t *r, char *err, size_t errlen)
{
    uint64_t data = 0;
    size_t nd = 0;
    int rc;

    r->cap = DS_BUNDLE_HEADER_MAX + TAR_SLACK;
    snprintf(r->entry, sizeof(r->entry), "(none)");
    if ((rc = next_entry(r, DS_BUNDLE_HEADER, UINT64_MAX, DS_BUNDLE_HEADER_MAX, err, errlen)) < 0 ||
        (rc = slurp(r, &r->hdr_text, &r->hdr_len, err, errlen)) < 0)
        return rc;
    if ((rc = ds_bundle_hdr_parse(r->hdr_text, r->hdr_len, &r->hdr, err, errlen)) < 0) {
        char why[256];

        snprintf(why, sizeof(why), "%s", err);
        return fail(r, err, errlen, rc, "entry %s: %s", DS_BUNDLE_HEADER, why);
    }
    r->cap = DS_BUNDLE_HEADER_MAX + DS_BUNDLE_MANIFEST_MAX + DS_BUNDLE_INDEX_MAX + TAR_SLACK;
    if ((rc = next_entry(r, DS_BUNDLE_MANIFEST, UINT64_MAX, DS_BUNDLE_MANIFEST_MAX, err, errlen)) <
            0 ||
        (rc = slurp(r, (char **)&r->manifest, &r->mlen, err, errlen)) < 0 ||
        (rc = next_entry(r, DS_BUNDLE_INDEX, UINT64_MAX, DS_BUNDLE_INDEX_MAX, err, errlen)) < 0 ||
        (rc = slurp(r, &r->index, &r->index_len, err, errlen)) < 0)
        return rc;
    if ((rc = ds_bundle_index_parse(r->index, r->index_len, &r->items, &r->n, err, errlen)) < 0) {
        char why[256];

        snprintf(why, sizeof(why), "%s", err);
        return fail(r, err, errlen, rc, "entry %s: %s", DS_BUNDLE_INDEX, why);
    }
    for (size_t i = 0; i < r->n; i++) {
        data += r->items[i].data_len;
        nd += r->items[i].how == DS_BUNDLE_LIT || r->items[i].how == DS_BUNDLE_DELTA;
        if (data > DS_BUNDLE_BYTES_MAX)
            break;
    }
    if (r->n != r->hdr.items || data != r->hdr.data_bytes)
        return fail(r, err, errlen, DS_ECORRUPT,
                    "entry %s: %zu items of %" PRIu64 " data bytes, the header says %" PRIu64
                    " of %" PRIu64,
                    DS_BUNDLE_INDEX, r->n, data, r->hdr.items, r->hdr.data_bytes);
    r->cap =
        r->hdr_len + r->mlen + r->index_len + data + (nd + 3) * (uint64_t)TAR_PER_ENT + TAR_SLACK;
    return check_manifest(r, err, errlen);
}

int ds_bundle_reader_data(ds_bundle_reader_t *r, size_t i, char *err, size_t errlen)
{
    char want[32];
    int rc;

    for (;;) {
        const ds_bundle_item_t *it;

        while (r->next < r->n && r->items[r->next].how != DS_BUNDLE_LIT &&
               r->items[r->next].how != DS_BUNDLE_DELTA)
            r->next++;
        if (r->next >= r->n || r->next > i)
            return fail(r, err, errlen, DS_EINTERNAL, "item %zu has no data entry", i);
        it = &r->items[r->next];
        ds_bundle_data_name(r->next, want, sizeof(want));
        rc = next_entry(r, want, it->data_len, DS_BUNDLE_BYTES_MAX, err, errlen);
        if (rc < 0)
            return rc;
        r->cur = r->next++;
        ds_sha256_close(&r->sh);
        r->open_entry = 1;
        if ((rc = ds_sha256_init(&r->sh)) < 0)
            return rc;
        if (r->cur == i)
            return 0;
        while ((rc = (int)ds_bundle_reader_read(r, NULL, 0, err, errlen)) > 0)
            ;
        if (rc < 0)
            return rc;
    }
}

long ds_bundle_reader_read(ds_bundle_reader_t *r, void *buf, size_t len, char *err, size_t errlen)
{
    uint8_t sink[16 << 10];
    uint8_t sha[DS_SHA256_LEN];
    la_ssize_t k;
    int rc;

    if (!r->open_entry)
        return 0;
    if (buf == NULL || len == 0) {
        buf = sink; /* skipping: read (and hash) into scratch */
        len = sizeof(sink);
    }
    if (r->left == 0) {
        ds_sha256_final(&r->sh, sha);
        r->open_entry = 0;
        if (memcmp(sha, r->items[r->cur].data_sha256, DS_SHA256_LEN) != 0)
            return fail(r, err, errlen, DS_EHASH,
                        "entry %s: its SHA-256 is not the one the index declares", r->entry);
        return 0;
    }
    k = archive_read_data(r->a, buf, len < r->left ? len : (size_t)r->left);
    if (k <= 0)
        return fail(r, err, errlen, DS_ECORRUPT,
                    "entry %s: truncated (%" PRIu64 " bytes short): %s", r->entry, r->left,
                    k < 0 && archive_error_string(r->a) ? archive_error_string(r->a) : "end");
    if ((rc = check_bomb(r, err, errlen)) < 0)
        return rc;
    ds_sha256_update(&r->sh, buf, (size_t)k);
    r->left -= (uint64_t)k;
    return (long)k;
}

/* Past the three metadata entries again, checking they did not change. */
static int skip_meta(ds_bundle_reader_t *r, char *err, size_t errlen)
{
    const char *names[3] = {DS_BUNDLE_HEADER, DS_BUNDLE_MANIFEST, DS_BUNDLE_INDEX};
    const void *kept[3] = {r->hdr_text, r->manifest, r->index};
    size_t lens[3] = {r->hdr_len, r->mlen, r->index_len};
    int rc = 0;

    for (int i = 0; i < 3 && rc == 0; i++) {
        char *b = NULL;
        size_t n = 0;

        rc = next_entry(r, names[i], lens[i], lens[i], err, errlen);
        if (rc == 0)
            rc = slurp(r, &b, &n, err, errlen);
        if (rc == 0 && memcmp(b, kept[i], n) != 0)
            rc = fail(r, err, errlen, DS_ECHANGED, "entry %s changed since it was checked",
                      names[i]);
        free(b);
    }
    return rc;
}

int ds_bundle_reader_rewind(ds_bundle_reader_t *r, char *err, size_t errlen)
{
    int rc = archive_open(r, err, errlen);

    r->next = 0;
    r->open_entry = 0;
    return rc < 0 ? rc : skip_meta(r, err, errlen);
}

/* The first pass: everything, then the end of the archive. */
static int check_all(ds_bundle_reader_t *r, char *err, size_t errlen)
{
    int rc = read_meta(r, err, errlen);
    long k = 0;

    for (size_t i = 0; rc == 0 && i < r->n; i++) {
        if (r->items[i].how != DS_BUNDLE_LIT && r->items[i].how != DS_BUNDLE_DELTA)
            continue;
        rc = ds_bundle_reader_data(r, i, err, errlen);
        while (rc == 0 && (k = ds_bundle_reader_read(r, NULL, 0, err, errlen)) > 0)
            ;
        rc = rc == 0 && k < 0 ? (int)k : rc;
    }
    if (rc == 0 && (rc = next_entry(r, NULL, 0, 0, err, errlen)) == 1)
        rc = 0; /* the end, where it belongs (another entry fails next_entry) */
    return rc;
}

int ds_bundle_reader_open(const char *path, const void *mem, size_t len, const char *name,
                          ds_bundle_reader_t **out, char *err, size_t errlen)
{
    ds_bundle_reader_t *r = calloc(1, sizeof(*r));
    struct stat st;
    int rc = 0;

    *out = NULL;
    if (r == NULL)
        return DS_ENOMEM;
    r->fd = -1;
    snprintf(r->name, sizeof(r->name), "%s", path ? path : name ? name : "(memory)");
    if (path != NULL) {
        r->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (r->fd < 0)
            rc = fail(r, err, errlen, -errno, "cannot open: %s", strerror(errno));
        else if (fstat(r->fd, &st) < 0 || !S_ISREG(st.st_mode))
            rc = fail(r, err, errlen, DS_ENOTREG, "not a regular file");
    } else {
        r->mem = mem;
        r->memlen = len;
    }
    if (rc == 0)
        rc = archive_open(r, err, errlen);
    if (rc == 0)
        rc = check_all(r, err, errlen);
    if (rc < 0) {
        ds_bundle_reader_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

const ds_bundle_hdr_t *ds_bundle_reader_hdr(const ds_bundle_reader_t *r)
{
    return &r->hdr;
}

const ds_bundle_item_t *ds_bundle_reader_items(const ds_bundle_reader_t *r, size_t *n)
{
    *n = r->n;
    return r->items;
}

const uint8_t *ds_bundle_reader_manifest(const ds_bundle_reader_t *r, size_t *len)
{
    *len = r->mlen;
    return r->manifest;
}

void ds_bundle_reader_free(ds_bundle_reader_t *r)
{
    if (r == NULL)
        return;
    if (r->a != NULL)
        archive_read_free(r->a);
    if (r->fd >= 0)
        close(r->fd);
    ds_sha256_close(&r->sh);
    ds_bundle_items_free(r->items, r->n);
    free(r->hdr_text);
    free(r->index);
    free(r->manifest);
    free(r);
}

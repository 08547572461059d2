/* Target manifest: in-memory hash table, encoder, atomic store (the
 * decoder is in manifest_stream.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "distsync/error.h"
#include "distsync/fsutil.h"
#include "distsync/log.h"
#include "distsync/manifest.h"
#include "distsync/pathsafe.h"

#define MAGIC     "DSMANIF\n"
#define HDR_LEN   24 /* magic, u32 version, u32 flags, u64 count */
#define ENT_FIXED (2 + 8 + 8 + DS_SHA256_LEN)
#define NIL       UINT32_MAX

struct ds_manifest {
    ds_manifest_entry_t *e;
    uint32_t *next; /* hash chain, parallel to e */
    size_t n, cap;
    uint32_t *bucket;
    size_t nbucket; /* power of two */
};

static size_t slot_of(const ds_manifest_t *m, const char *path)
{
    return (size_t)XXH3_64bits(path, strlen(path)) & (m->nbucket - 1);
}

static void link_entry(ds_manifest_t *m, uint32_t i)
{
    size_t s = slot_of(m, m->e[i].path);

    m->next[i] = m->bucket[s];
    m->bucket[s] = i;
}

static void unlink_entry(ds_manifest_t *m, uint32_t i)
{
    uint32_t *pp = &m->bucket[slot_of(m, m->e[i].path)];

    while (*pp != NIL && *pp != i)
        pp = &m->next[*pp];
    if (*pp == i)
        *pp = m->next[i];
}

static int rehash(ds_manifest_t *m, size_t nbucket)
{
    uint32_t *b = malloc(nbucket * sizeof(*b));

    if (b == NULL)
        return DS_ENOMEM;
    free(m->bucket);
    m->bucket = b;
    m->nbucket = nbucket;
    for (size_t i = 0; i < nbucket; i++)
        b[i] = NIL;
    for (size_t i = 0; i < m->n; i++)
        link_entry(m, (uint32_t)i);
    return 0;
}

int ds_manifest_new(ds_manifest_t **out)
{
    ds_manifest_t *m = calloc(1, sizeof(*m));

    *out = NULL;
    if (m == NULL || rehash(m, 64) < 0) {
        free(m);
        return DS_ENOMEM;
    }
    *out = m;
    return 0;
}

void ds_manifest_free(ds_manifest_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->e[i].path);
    free(m->e);
    free(m->next);
    free(m->bucket);
    free(m);
}

size_t ds_manifest_count(const ds_manifest_t *m)
{
    return m->n;
}

static uint32_t find(const ds_manifest_t *m, const char *path)
{
    uint32_t i = m->bucket[slot_of(m, path)];

    while (i != NIL && strcmp(m->e[i].path, path) != 0)
        i = m->next[i];
    return i;
}

const ds_manifest_entry_t *ds_manifest_get(const ds_manifest_t *m, const char *path)
{
    uint32_t i = find(m, path);

    return i == NIL ? NULL : &m->e[i];
}

static int grow(ds_manifest_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    ds_manifest_entry_t *e;
    uint32_t *nx;

    if (cap >= NIL)
        return DS_ENOMEM;
    e = realloc(m->e, cap * sizeof(*e));
    if (e == NULL)
        return DS_ENOMEM;
    m->e = e;
    nx = realloc(m->next, cap * sizeof(*nx));
    if (nx == NULL)
        return DS_ENOMEM;
    m->next = nx;
    m->cap = cap;
    return 0;
}

int ds_manifest_put(ds_manifest_t *m, const char *path, uint64_t size, int64_t mtime_ns,
                    const uint8_t sha256[DS_SHA256_LEN])
{
    uint32_t i;
    int rc;

    if (ds_pathsafe_check(path, NULL) < 0)
        return DS_EPATH;
    i = find(m, path);
    if (i == NIL) {
        char *dup = strdup(path);

        if (dup == NULL)
            return DS_ENOMEM;
        if (m->n == m->cap && (rc = grow(m)) < 0) {
            free(dup);
            return rc;
        }
        i = (uint32_t)m->n++;
        m->e[i].path = dup;
        link_entry(m, i);
        if (m->n > m->nbucket && rehash(m, m->nbucket * 4) < 0)
            return DS_ENOMEM; /* entry is in; lookups still work on the old table */
    }
    m->e[i].size = size;
    m->e[i].mtime_ns = mtime_ns;
    memcpy(m->e[i].sha256, sha256, DS_SHA256_LEN);
    return 0;
}

int ds_manifest_remove(ds_manifest_t *m, const char *path)
{
    uint32_t i = find(m, path), last;

    if (i == NIL)
        return DS_ENOTFOUND;
    unlink_entry(m, i);
    free(m->e[i].path);
    last = (uint32_t)(m->n - 1);
    if (i != last) {
        unlink_entry(m, last);
        m->e[i] = m->e[last];
        link_entry(m, i);
    }
    m->n--;
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    const ds_manifest_entry_t *const *x = a, *const *y = b;

    return strcmp((*x)->path, (*y)->path);
}

int ds_manifest_sorted(const ds_manifest_t *m, const ds_manifest_entry_t ***out, size_t *n)
{
    const ds_manifest_entry_t **v = malloc((m->n ? m->n : 1) * sizeof(*v));

    *out = NULL;
    *n = 0;
    if (v == NULL)
        return DS_ENOMEM;
    for (size_t i = 0; i < m->n; i++)
        v[i] = &m->e[i];
    qsort(v, m->n, sizeof(*v), cmp_entry);
    *out = v;
    *n = m->n;
    return 0;
}

static uint8_t *put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    return p + n;
}

int ds_manifest_encode(const ds_manifest_t *m, uint8_t **buf, size_t *len)
{
    const ds_manifest_entry_t **v = NULL;
    size_t n, total = HDR_LEN + DS_SHA256_LEN;
    uint8_t *b, *p;
    int rc;

    *buf = NULL;
    *len = 0;
    rc = ds_manifest_sorted(m, &v, &n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        total += ENT_FIXED + strlen(v[i]->path);
    b = malloc(total);
    if (b == NULL) {
        free(v);
        return DS_ENOMEM;
    }
    memcpy(b, MAGIC, 8);
    p = put_be(b + 8, DS_MANIFEST_VERSION, 4);
    p = put_be(p, 0, 4);
    p = put_be(p, n, 8);
    for (size_t i = 0; i < n; i++) {
        size_t pl = strlen(v[i]->path);

        p = put_be(p, pl, 2);
        memcpy(p, v[i]->path, pl);
        p = put_be(p + pl, v[i]->size, 8);
        p = put_be(p, (uint64_t)v[i]->mtime_ns, 8);
        memcpy(p, v[i]->sha256, DS_SHA256_LEN);
        p += DS_SHA256_LEN;
    }
    free(v);
    rc = ds_sha256(b, (size_t)(p - b), p);
    if (rc < 0) {
        free(b);
        return rc;
    }
    *buf = b;
    *len = total;
    return 0;
}

static int read_all(const ds_fs_t *fs, int fd, uint8_t **buf, size_t *len)
{
    struct stat st;
    uint8_t *b;
    size_t got = 0;

    if (ds_fs_fstat(fs, fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return DS_ENOTREG;
    if ((uint64_t)st.st_size > DS_MANIFEST_MAX)
        return DS_ETOOBIG;
    b = malloc((size_t)st.st_size + 1);
    if (b == NULL)
        return DS_ENOMEM;
    while (got < (size_t)st.st_size) {
        ssize_t r = ds_fs_read(fs, fd, b + got, (size_t)st.st_size - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(b);
            return r < 0 ? -errno : DS_ECHANGED;
        }
        got += (size_t)r;
    }
    *buf = b;
    *len = got;
    return 0;
}

/* Reads and decodes the manifest file name in dsdir (err names it).
 * Returns 0, -ENOENT (no such file) or the error. */
static int load_one(const ds_fs_t *fs, int dsdir, const char *name, ds_manifest_t **out, char *err,
                    size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int fd, rc;

    rc = ds_pathsafe_open_state_fs(fs, dsdir, name, O_RDONLY, &fd);
    if (rc == -ENOENT)
        return rc;
    if (rc < 0) {
        snprintf(err, errlen, DS_STATE_DIR "/%s: cannot open: %s%s", name,
                 rc == DS_ENOTREG || rc == DS_ESYMLINK ? ds_pathsafe_reason(rc) : ds_strerror(rc),
                 rc == DS_ENOTREG || rc == DS_ESYMLINK ? ": remove it" : "");
        return rc;
    }
    rc = read_all(fs, fd, &buf, &len);
    ds_fs_close(fs, fd);
    if (rc < 0) {
        snprintf(err, errlen, DS_STATE_DIR "/%s: cannot read: %s", name, ds_strerror(rc));
        return rc;
    }
    rc = ds_manifest_decode(buf, len, out, err, errlen);
    free(buf);
    return rc;
}

int ds_manifest_load_fs(const ds_fs_t *fs, int dsdir, ds_manifest_t **out, char *err, size_t errlen)
{
    char why[256];
    int rc;

    *out = NULL;
    rc = load_one(fs, dsdir, DS_MANIFEST_NAME, out, err, errlen);
    if (rc != -ENOENT)
        return rc;
    /* No manifest: a replace that is delete + rename (SMB) may have died
     * between the two, leaving the complete new copy under its tmp name
     * (written, flushed and closed before the delete). A tmp that does
     * not decode (its SHA-256 trailer) was cut short while written. */
    if (load_one(fs, dsdir, DS_MANIFEST_TMP_NAME, out, why, sizeof(why)) == 0) {
        ds_log(DS_LOG_WARN,
               DS_STATE_DIR "/" DS_MANIFEST_NAME " is missing: using " DS_STATE_DIR
                            "/" DS_MANIFEST_TMP_NAME ", whose replace was interrupted");
        return 1;
    }
    ds_manifest_free(*out);
    *out = NULL;
    return ds_manifest_new(out);
}

int ds_manifest_store_fs(const ds_fs_t *fs, int dsdir, const ds_manifest_t *m)
{
    uint8_t *buf;
    size_t len;
    int rc = ds_manifest_encode(m, &buf, &len);

    if (rc < 0)
        return rc;
    rc = ds_atomic_write_fs(fs, dsdir, DS_MANIFEST_NAME, buf, len);
    free(buf);
    return rc;
}

int ds_manifest_load(int dsdir, ds_manifest_t **out, char *err, size_t errlen)
{
    return ds_manifest_load_fs(&ds_fs_posix, dsdir, out, err, errlen);
}

int ds_manifest_store(int dsdir, const ds_manifest_t *m)
{
    return ds_manifest_store_fs(&ds_fs_posix, dsdir, m);
}

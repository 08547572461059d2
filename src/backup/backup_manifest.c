/*
 * The backup archive's MANIFEST (format in include/distsync/backup.h):
 * parsing it as untrusted text, writing it, and the path rules its
 * destinations follow.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup_int.h"

static const char *const role_names[DS_BACKUP__ROLES] = {"config", "catalog", "known_hosts",
                                                         "secret"};

const char *ds_backup_role_name(ds_backup_role_t r)
{
    return (unsigned)r < DS_BACKUP__ROLES ? role_names[r] : "?";
}

static int role_parse(const char *s, ds_backup_role_t *r)
{
    for (int i = 0; i < DS_BACKUP__ROLES; i++) {
        if (strcmp(s, role_names[i]) == 0) {
            *r = (ds_backup_role_t)i;
            return 0;
        }
    }
    return DS_ECORRUPT;
}

void ds_backup_manifest_clear(ds_backup_manifest_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nfiles; i++)
        free(m->files[i].dest);
    for (size_t i = 0; i < m->nomitted; i++)
        free(m->omitted[i].dest);
    free(m->files);
    free(m->omitted);
    free(m->config_text);
    memset(m, 0, sizeof(*m));
}

int ds__backup_path_normal(const char *p)
{
    const char *c = p;

    if (p[0] != '/' || p[1] == '\0')
        return 0;
    for (const unsigned char *u = (const unsigned char *)p; *u; u++)
        if (*u < 0x20 || *u == 0x7f)
            return 0;
    while (*c == '/') {
        const char *e = strchr(c + 1, '/');
        size_t len = e ? (size_t)(e - c - 1) : strlen(c + 1);

        if (len == 0 || (len == 1 && c[1] == '.') || (len == 2 && c[1] == '.' && c[2] == '.'))
            return 0;
        if (e == NULL)
            break;
        c = e;
    }
    return 1;
}

int ds__backup_normalize(const char *p, char *out, size_t cap)
{
    size_t o = 0;

    if (p[0] != '/')
        return DS_EPATH;
    while (*p) {
        size_t len;

        while (*p == '/')
            p++;
        len = strcspn(p, "/");
        if (len == 0 || (len == 1 && p[0] == '.')) {
            p += len;
            continue;
        }
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            while (o > 0 && out[--o] != '/')
                ;
            p += len;
            continue;
        }
        if (o + 1 + len + 1 > cap)
            return -ENAMETOOLONG;
        out[o++] = '/';
        memcpy(out + o, p, len);
        o += len;
        p += len;
    }
    if (o == 0) {
        if (cap < 2)
            return -ENAMETOOLONG;
        out[o++] = '/';
    }
    out[o] = '\0';
    return 0;
}

/* NAME: [a-z_]+, optionally ".N" (N decimal), or "catalog.db"; < 32 bytes. */
static int name_ok(const char *s)
{
    size_t i = 0;

    if (strcmp(s, "catalog.db") == 0)
        return 1;
    while ((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_')
        i++;
    if (i == 0 || i > 16)
        return 0;
    if (s[i] == '\0')
        return 1;
    if (s[i++] != '.' || s[i] < '0' || s[i] > '9' || strlen(s + i) > 5)
        return 0;
    for (; s[i]; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int fail(char *err, size_t errlen, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int line, const char *fmt, ...)
{
    int k = snprintf(err, errlen, "%s line %d: ", DS_BACKUP_MANIFEST, line);
    va_list ap;

    va_start(ap, fmt);
    if (k >= 0 && (size_t)k < errlen)
        vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
    va_end(ap);
    return DS_ECORRUPT;
}

/* "file NAME ROLE SHA SIZE MODE DEST" (rest: after "file "). */
static int parse_file(ds_backup_manifest_t *m, char *rest, int ln, char *err, size_t errlen)
{
    char *f[5], *dest, *end;
    ds_backup_file_t *x;
    unsigned long long size;
    unsigned long mode;

    for (int i = 0; i < 5; i++) {
        f[i] = rest;
        if ((rest = strchr(rest, ' ')) == NULL)
            return fail(err, errlen, ln, "a file record has 7 fields");
        *rest++ = '\0';
    }
    dest = rest;
    if (m->nfiles >= DS_BACKUP_MEMBERS_MAX)
        return fail(err, errlen, ln, "more than %u files", DS_BACKUP_MEMBERS_MAX);
    x = realloc(m->files, (m->nfiles + 1) * sizeof(*x));
    if (x == NULL)
        return DS_ENOMEM;
    m->files = x;
    x = &m->files[m->nfiles];
    memset(x, 0, sizeof(*x));
    if (!name_ok(f[0]))
        return fail(err, errlen, ln, "bad member name");
    for (size_t i = 0; i < m->nfiles; i++)
        if (strcmp(m->files[i].name, f[0]) == 0)
            return fail(err, errlen, ln, "member %s listed twice", f[0]);
    snprintf(x->name, sizeof(x->name), "%s", f[0]);
    if (role_parse(f[1], &x->role) < 0)
        return fail(err, errlen, ln, "unknown role");
    if (strlen(f[2]) != 2 * DS_SHA256_LEN || ds_unhex(f[2], x->sha256, DS_SHA256_LEN) < 0)
        return fail(err, errlen, ln, "bad SHA-256");
    errno = 0;
    size = strtoull(f[3], &end, 10);
    if (f[3][0] < '0' || f[3][0] > '9' || *end || errno || size > DS_BACKUP_MEMBER_MAX)
        return fail(err, errlen, ln, "bad size (at most %llu)",
                    (unsigned long long)DS_BACKUP_MEMBER_MAX);
    mode = strtoul(f[4], &end, 8);
    if (f[4][0] < '0' || f[4][0] > '7' || *end || mode > 0777)
        return fail(err, errlen, ln, "bad mode (octal, at most 0777)");
    if (!ds__backup_path_normal(dest))
        return fail(err, errlen, ln, "destination is not an absolute normal path");
    if ((x->dest = strdup(dest)) == NULL)
        return DS_ENOMEM;
    x->size = size;
    x->mode = (unsigned)mode;
    m->nfiles++;
    return 0;
}

static int parse_omitted(ds_backup_manifest_t *m, char *rest, int ln, char *err, size_t errlen)
{
    char *sp = strchr(rest, ' ');
    ds_backup_omitted_t *x;

    if (sp == NULL)
        return fail(err, errlen, ln, "an omitted record has 3 fields");
    *sp++ = '\0';
    if (m->nomitted >= DS_BACKUP_MEMBERS_MAX)
        return fail(err, errlen, ln, "too many omitted records");
    x = realloc(m->omitted, (m->nomitted + 1) * sizeof(*x));
    if (x == NULL)
        return DS_ENOMEM;
    m->omitted = x;
    x = &m->omitted[m->nomitted];
    if (role_parse(rest, &x->role) < 0 || !ds__backup_path_normal(sp))
        return fail(err, errlen, ln, "bad omitted record");
    if ((x->dest = strdup(sp)) == NULL)
        return DS_ENOMEM;
    m->nomitted++;
    return 0;
}

static int parse_line(ds_backup_manifest_t *m, char *l, int ln, char *err, size_t errlen)
{
    char *end;

    if (ln == 1) {
        if (strncmp(l, "distsync-backup ", 16) != 0)
            return fail(err, errlen, ln, "not a distsync backup manifest");
        if (strcmp(l + 16, "1") != 0) {
            snprintf(err, errlen, "%s: format %.20s is newer than this distsync reads (%d)",
                     DS_BACKUP_MANIFEST, l + 16, DS_BACKUP_FORMAT);
            return DS_EVERSION;
        }
        return 0;
    }
    if (strncmp(l, "file ", 5) == 0)
        return parse_file(m, l + 5, ln, err, errlen);
    if (strncmp(l, "omitted ", 8) == 0)
        return parse_omitted(m, l + 8, ln, err, errlen);
    if (strncmp(l, "version ", 8) == 0 && strlen(l + 8) < sizeof(m->version) && !m->version[0])
        return snprintf(m->version, sizeof(m->version), "%s", l + 8) < 0 ? DS_EINTERNAL : 0;
    if (strncmp(l, "console ", 8) == 0 && strlen(l + 8) < sizeof(m->console) && !m->console[0])
        return snprintf(m->console, sizeof(m->console), "%s", l + 8) < 0 ? DS_EINTERNAL : 0;
    if (strncmp(l, "created ", 8) == 0 && l[8] >= '0' && l[8] <= '9') {
        errno = 0;
        m->created = (int64_t)strtoll(l + 8, &end, 10);
        if (*end == '\0' && errno == 0)
            return 0;
    }
    return fail(err, errlen, ln, "unknown or repeated record");
}

/* Exactly one config, at most one catalog. */
static int check_roles(const ds_backup_manifest_t *m, char *err, size_t errlen)
{
    size_t n[DS_BACKUP__ROLES] = {0};

    for (size_t i = 0; i < m->nfiles; i++)
        n[m->files[i].role]++;
    if (n[DS_BACKUP_CONFIG] != 1 || n[DS_BACKUP_CATALOG] > 1) {
        snprintf(err, errlen, "%s: needs one config file and at most one catalog",
                 DS_BACKUP_MANIFEST);
        return DS_ECORRUPT;
    }
    if (m->version[0] == '\0' || m->console[0] == '\0') {
        snprintf(err, errlen, "%s: no version or console record", DS_BACKUP_MANIFEST);
        return DS_ECORRUPT;
    }
    return 0;
}

int ds_backup_manifest_parse(const char *text, size_t len, ds_backup_manifest_t *m, char *err,
                             size_t errlen)
{
    char *buf = NULL, *l, *nl;
    int rc = 0, ln = 0;

    memset(m, 0, sizeof(*m));
    if (len > DS_BACKUP_MANIFEST_MAX || memchr(text, '\0', len) != NULL || len == 0 ||
        text[len - 1] != '\n') {
        snprintf(err, errlen, "%s: not a text file of lines (at most %u bytes)", DS_BACKUP_MANIFEST,
                 DS_BACKUP_MANIFEST_MAX);
        return DS_ECORRUPT;
    }
    if ((buf = malloc(len + 1)) == NULL)
        return DS_ENOMEM;
    memcpy(buf, text, len);
    buf[len] = '\0';
    for (l = buf; rc == 0 && *l; l = nl + 1) {
        nl = strchr(l, '\n');
        *nl = '\0';
        rc = parse_line(m, l, ++ln, err, errlen);
    }
    if (rc == 0)
        rc = check_roles(m, err, errlen);
    free(buf);
    if (rc == DS_ENOMEM)
        snprintf(err, errlen, "%s: out of memory", DS_BACKUP_MANIFEST);
    if (rc < 0)
        ds_backup_manifest_clear(m);
    return rc;
}

/* Appends to a growing buffer. */
struct sbuf {
    char *p;
    size_t len, cap;
    int rc;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int k;

    if (b->rc)
        return;
    va_start(ap, fmt);
    k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0 || b->len + (size_t)k + 1 > b->cap) {
        size_t cap = (b->len + (size_t)(k < 0 ? 0 : k) + 1) * 2;
        char *p = k < 0 ? NULL : realloc(b->p, cap);

        if (p == NULL) {
            b->rc = DS_ENOMEM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)k;
}

int ds__backup_manifest_format(const ds_backup_manifest_t *m, char **out, size_t *len)
{
    struct sbuf b = {0};
    char hex[2 * DS_SHA256_LEN + 1];

    for (size_t i = 0; i < m->nfiles; i++)
        if (!ds__backup_path_normal(m->files[i].dest))
            return DS_EPATH;
    for (size_t i = 0; i < m->nomitted; i++)
        if (!ds__backup_path_normal(m->omitted[i].dest))
            return DS_EPATH;
    sb_add(&b, "distsync-backup %d\nversion %s\nconsole %s\ncreated %" PRId64 "\n",
           DS_BACKUP_FORMAT, m->version, m->console, m->created);
    for (size_t i = 0; i < m->nfiles; i++) {
        const ds_backup_file_t *f = &m->files[i];

        ds_hex(f->sha256, DS_SHA256_LEN, hex);
        sb_add(&b, "file %s %s %s %" PRIu64 " %04o %s\n", f->name, ds_backup_role_name(f->role),
               hex, f->size, f->mode & 0777u, f->dest);
    }
    for (size_t i = 0; i < m->nomitted; i++)
        sb_add(&b, "omitted %s %s\n", ds_backup_role_name(m->omitted[i].role), m->omitted[i].dest);
    if (b.rc) {
        free(b.p);
        return b.rc;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

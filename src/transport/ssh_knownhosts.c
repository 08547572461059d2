/*
 * Host keys for ssh:// servers against an OpenSSH known_hosts file (plain
 * and hashed entries, [host]:port for other ports), through libssh2's
 * knownhost API, which parses the file; we only pick the key type to
 * negotiate, fingerprint, and append (`distsync trust`).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "distsync/error.h"
#include "distsync/fsutil.h"

#include "ssh_int.h"

/* Key types in OpenSSH's preference order, with libssh2's names for them. */
static const struct {
    int kh;           /* LIBSSH2_KNOWNHOST_KEY_* */
    int hostkey;      /* LIBSSH2_HOSTKEY_TYPE_* */
    const char *name; /* method name in the SSH protocol */
} key_types[] = {
    {LIBSSH2_KNOWNHOST_KEY_ED25519, LIBSSH2_HOSTKEY_TYPE_ED25519, "ssh-ed25519"},
    {LIBSSH2_KNOWNHOST_KEY_ECDSA_256, LIBSSH2_HOSTKEY_TYPE_ECDSA_256, "ecdsa-sha2-nistp256"},
    {LIBSSH2_KNOWNHOST_KEY_ECDSA_384, LIBSSH2_HOSTKEY_TYPE_ECDSA_384, "ecdsa-sha2-nistp384"},
    {LIBSSH2_KNOWNHOST_KEY_ECDSA_521, LIBSSH2_HOSTKEY_TYPE_ECDSA_521, "ecdsa-sha2-nistp521"},
    {LIBSSH2_KNOWNHOST_KEY_SSHRSA, LIBSSH2_HOSTKEY_TYPE_RSA, "ssh-rsa"},
};
#define NTYPES (sizeof(key_types) / sizeof(key_types[0]))

/* See ssh_int.h. */
int ds__ssh_kh_path(const char *v, char *out, size_t cap)
{
    const char *home = getenv("HOME");

    if (v != NULL && strncmp(v, "~/", 2) != 0) {
        snprintf(out, cap, "%s", v);
        return 0;
    }
    if (home == NULL || *home == '\0')
        return DS_EUSAGE;
    snprintf(out, cap, "%s/%s", home, v ? v + 2 : ".ssh/known_hosts");
    return 0;
}

void ds__ssh_fingerprint(const unsigned char *key, size_t len, char out[64])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    char b64[48];
    int n;

    EVP_Digest(key, len, md, &mdlen, EVP_sha256(), NULL);
    n = EVP_EncodeBlock((unsigned char *)b64, md, 32);
    while (n > 0 && b64[n - 1] == '=')
        n--;
    snprintf(out, 64, "SHA256:%.*s", n, b64);
}

/* Loads kh into a new collection (an absent file is an empty one). The
 * file is fed to libssh2 line by line: a line it cannot parse (a key type
 * or marker it does not know, such as @cert-authority) is skipped instead
 * of failing the whole file, as OpenSSH does. Returns the collection, or
 * NULL with err set. */
static LIBSSH2_KNOWNHOSTS *load(LIBSSH2_SESSION *s, const char *kh, char *err, size_t errlen)
{
    LIBSSH2_KNOWNHOSTS *h = libssh2_knownhost_init(s);
    FILE *f = NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f = fopen(kh, "re");
    if (f == NULL && errno == ENOENT)
        return h;
    if (f == NULL) {
        snprintf(err, errlen, "known_hosts %s: cannot read it: %s", kh, strerror(errno));
        libssh2_knownhost_free(h);
        return NULL;
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        const char *p = line + strspn(line, " \t");

        if (*p == '#' || *p == '\n' || *p == '@')
            continue;
        libssh2_knownhost_readline(h, line, (size_t)n, LIBSSH2_KNOWNHOST_FILE_OPENSSH);
    }
    free(line);
    fclose(f);
    return h;
}

/* Looks key (raw, of known_hosts type kh_type) up for u in h. Returns a
 * LIBSSH2_KNOWNHOST_CHECK_* value; *found is the entry on MISMATCH. */
static int check(LIBSSH2_KNOWNHOSTS *h, const struct ds__ssh_url *u, const void *key, size_t len,
                 int kh_type, struct libssh2_knownhost **found)
{
    int mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | kh_type;

    *found = NULL;
    return libssh2_knownhost_checkp(h, u->host, u->port == 22 ? -1 : u->port, key, len, mask,
                                    found);
}

/* The key types h has an entry of for u (hashed or not), but skip_kh, as
 * a comma-separated list in out (200 bytes): a probe with a dummy key of
 * each type answers MISMATCH when there is one (libssh2 has no lookup by
 * name alone for hashed entries). Returns a bit per key_types[] index. */
static unsigned known_types(LIBSSH2_KNOWNHOSTS *h, const struct ds__ssh_url *u, int skip_kh,
                            char out[200])
{
    struct libssh2_knownhost *found;
    unsigned bits = 0;

    out[0] = '\0';
    for (size_t i = 0; h != NULL && i < NTYPES; i++) {
        if (key_types[i].kh == skip_kh ||
            check(h, u, "x", 1, key_types[i].kh, &found) != LIBSSH2_KNOWNHOST_CHECK_MISMATCH)
            continue;
        bits |= 1u << i;
        snprintf(out + strlen(out), 200 - strlen(out), "%s%s", out[0] ? "," : "",
                 key_types[i].name);
    }
    return bits;
}

/* See ssh_int.h. The types known_hosts holds for u come first; the others
 * follow in OpenSSH's order, so a server that no longer offers a known
 * type (ssh-rsa: OpenSSH 8.8 and later refuse its SHA-1 signatures, all
 * libssh2 1.10 verifies) shows its key as unknown, as OpenSSH's ssh does,
 * instead of failing the key exchange without a reason. */
int ds__ssh_hostkey_prefer(LIBSSH2_SESSION *s, const char *kh, const struct ds__ssh_url *u)
{
    char prefs[200], err[8];
    LIBSSH2_KNOWNHOSTS *h = load(s, kh, err, sizeof(err));
    unsigned known = known_types(h, u, 0, prefs);

    if (h != NULL)
        libssh2_knownhost_free(h);
    for (size_t i = 0; i < NTYPES; i++)
        if (!(known & (1u << i)))
            snprintf(prefs + strlen(prefs), sizeof(prefs) - strlen(prefs), "%s%s",
                     prefs[0] ? "," : "", key_types[i].name);
    return libssh2_session_method_pref(s, LIBSSH2_METHOD_HOSTKEY, prefs) == 0 ? 0 : DS_ENOMEM;
}

/* The first n characters of b64 decoded into raw (cap 4096). Returns the
 * length, or -1 when it is not base64 or too long. */
static int unbase64(const char *b64, size_t n, unsigned char raw[4096])
{
    int len;

    if (n == 0 || n > 4 * (4096 / 3) || n % 4 != 0)
        return -1;
    len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
    if (len <= 0)
        return -1;
    while (n > 0 && b64[n - 1] == '=') /* DecodeBlock counts padding as zeros */
        n--, len--;
    return len;
}

/* The recorded key of a known_hosts entry (base64) as a fingerprint. */
static void entry_fp(const struct libssh2_knownhost *e, char out[64])
{
    unsigned char raw[4096];
    int len = unbase64(e->key, strlen(e->key), raw);

    snprintf(out, 64, "(unreadable key)");
    if (len > 0)
        ds__ssh_fingerprint(raw, (size_t)len, out);
}

/* 1 when kh has a `@revoked HOSTS TYPE BASE64` line whose key is key[len],
 * whatever its hosts: a key someone revoked is refused for every server
 * (OpenSSH refuses it for the hosts the line names; libssh2 cannot match
 * OpenSSH's host patterns, and a revoked key is no safer elsewhere). An
 * unreadable file holds none (load() reports it). */
static int revoked(const char *kh, const void *key, size_t len)
{
    FILE *f = fopen(kh, "re");
    char *line = NULL, *save = NULL;
    size_t cap = 0;
    int hit = 0;
    unsigned char raw[4096];

    while (f != NULL && !hit && getline(&line, &cap, f) > 0) {
        const char *mark = strtok_r(line, " \t\r\n", &save);
        const char *b64 = NULL;

        if (mark == NULL || strcmp(mark, "@revoked") != 0)
            continue;
        if (strtok_r(NULL, " \t\r\n", &save) != NULL && /* hosts */
            strtok_r(NULL, " \t\r\n", &save) != NULL)   /* key type */
            b64 = strtok_r(NULL, " \t\r\n", &save);
        hit = b64 != NULL && unbase64(b64, strlen(b64), raw) == (int)len &&
              memcmp(raw, key, len) == 0;
    }
    free(line);
    if (f != NULL)
        fclose(f);
    return hit;
}

/* See ssh_int.h. */
int ds__ssh_hostkey_lookup(LIBSSH2_SESSION *s, const char *kh, const struct ds__ssh_url *u,
                           struct ds__ssh_hostkey *hk, char *err, size_t errlen)
{
    LIBSSH2_KNOWNHOSTS *h = NULL;
    struct libssh2_knownhost *found;
    size_t len = 0;
    int type = 0, rc = DS_ETRANSPORT;
    const char *key = libssh2_session_hostkey(s, &len, &type);

    memset(hk, 0, sizeof(*hk));
    if (u->port == 22)
        snprintf(hk->entry, sizeof(hk->entry), "%s", u->host);
    else
        snprintf(hk->entry, sizeof(hk->entry), "[%s]:%d", u->host, u->port);
    for (size_t i = 0; i < NTYPES; i++)
        if (key_types[i].hostkey == type) {
            hk->kh_type = key_types[i].kh;
            snprintf(hk->type, sizeof(hk->type), "%s", key_types[i].name);
        }
    if (key == NULL || len == 0 || hk->kh_type == 0) {
        snprintf(err, errlen, "%s: the server sent no host key of a type we know", u->where);
        goto out;
    }
    hk->key = malloc(len);
    if (hk->key == NULL) {
        rc = DS_ENOMEM;
        snprintf(err, errlen, "%s: out of memory", u->where);
        goto out;
    }
    memcpy(hk->key, key, len);
    hk->keylen = len;
    ds__ssh_fingerprint(hk->key, len, hk->fp);
    h = load(s, kh, err, errlen);
    if (h == NULL)
        goto out;
    switch (check(h, u, key, len, hk->kh_type, &found)) {
    case LIBSSH2_KNOWNHOST_CHECK_MATCH:
        hk->state = DS__HK_MATCH;
        break;
    case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
        hk->state = DS__HK_CHANGED;
        entry_fp(found, hk->old_fp);
        break;
    case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
        hk->state = DS__HK_UNKNOWN;
        (void)known_types(h, u, hk->kh_type, hk->others);
        break;
    default:
        snprintf(err, errlen, "%s: known_hosts %s: check failed: %s", u->where, kh,
                 ds__ssh_errmsg(s));
        goto out;
    }
    if (revoked(kh, key, len))
        hk->state = DS__HK_REVOKED;
    rc = 0;
out:
    if (h != NULL)
        libssh2_knownhost_free(h);
    if (rc < 0) {
        free(hk->key);
        hk->key = NULL;
    }
    return rc;
}

/* mkdir of kh's directory (0700) when missing. */
static void make_dir(const char *kh)
{
    char dir[4096];
    char *slash;

    snprintf(dir, sizeof(dir), "%s", kh);
    slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return;
    *slash = '\0';
    mkdir(dir, 0700);
}

/* 1 when the file at fd is empty or ends with a newline. */
static int ends_in_newline(int fd)
{
    off_t size = lseek(fd, 0, SEEK_END);
    char c = '\n';

    if (size > 0 && pread(fd, &c, 1, size - 1) != 1)
        c = '\n';
    return c == '\n';
}

/* See ssh_int.h. */
int ds__ssh_hostkey_append(const char *kh, const struct ds__ssh_hostkey *hk, char *err,
                           size_t errlen)
{
    LIBSSH2_SESSION *s = libssh2_session_init();
    LIBSSH2_KNOWNHOSTS *h = s ? libssh2_knownhost_init(s) : NULL;
    struct libssh2_knownhost *e = NULL;
    char line[8192];
    size_t n = 0; /* line has room for one more byte in front */
    int fd = -1, rc = DS_ENOMEM;

    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (libssh2_knownhost_addc(
            h, hk->entry, NULL, (const char *)hk->key, hk->keylen, "added by distsync trust", 23,
            LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | hk->kh_type, &e) != 0 ||
        libssh2_knownhost_writeline(h, e, line, sizeof(line) - 2, &n,
                                    LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0) {
        rc = DS_EINTERNAL;
        snprintf(err, errlen, "cannot format the known_hosts line: %s", ds__ssh_errmsg(s));
        goto out;
    }
    make_dir(kh);
    fd = open(kh, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0 && !ends_in_newline(fd)) { /* never glue our line to the last one */
        memmove(line + 1, line, n);
        line[0] = '\n';
        n++;
    }
    rc = fd < 0 ? -errno : ds_write_all(fd, line, n); /* a short write is an error too */
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (rc < 0) {
        snprintf(err, errlen, "known_hosts %s: %s", kh, ds_strerror(rc));
        goto out;
    }
out:
    if (fd >= 0)
        close(fd);
    if (h != NULL)
        libssh2_knownhost_free(h);
    if (s != NULL)
        libssh2_session_free(s);
    return rc;
}

/*
 * The libsmbclient context of one SMB server: security defaults (signing
 * required, SMB2 floor, SMB3 encryption with encrypt = yes, no Kerberos, no
 * anonymous fallback), credentials from ds_smbcred_t through the auth
 * callback, the timeout; and the connect check that tells a wrong password
 * from a missing share, a missing directory and an unreachable host.
 *
 * libsmbclient reads its settings from an smb.conf (the system's, else
 * ~/.smb/smb.conf), which could weaken signing. smbc_setConfiguration
 * reloads them from a file of ours instead: a memfd holding only the
 * client settings below, read through /proc/self/fd (no file on disk).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "distsync/fsutil.h"
#include "distsync/log.h"
#include "transport/smb_ctx.h"
#include "transport/smb_neg.h"

struct ds_smb_ctx {
    SMBCCTX *smbc;
    ds_smb_url_t url;
    ds_smbcred_t cred;
    char *server;
    int encrypt;
    unsigned timeout_s;
    char root[4096]; /* smb://host:port/share */
};

/* Where a URL's host ends ([v6] or name), or NULL. */
static const char *host_end(const char *s)
{
    if (*s == '[') {
        const char *e = strchr(s, ']');
        return e ? e + 1 : NULL;
    }
    return s + strcspn(s, ":/");
}

static int url_fail(char *err, size_t errlen, const char *url, const char *why)
{
    snprintf(err, errlen, "%s: %s", url, why);
    return DS_EUSAGE;
}

/* See distsync/smb.h. */
int ds_smb_url_parse(const char *url, ds_smb_url_t *out, char *err, size_t errlen)
{
    const char *h = url + 6, *he, *sh, *se;
    size_t n;

    memset(out, 0, sizeof(*out));
    out->port = DS_SMB_PORT_DEFAULT;
    if (strncmp(url, "smb://", 6) != 0)
        return url_fail(err, errlen, url, "not an smb:// URL");
    he = host_end(h);
    if (memchr(h, '@', strcspn(h, "/")) != NULL)
        return url_fail(err, errlen, url, "smb:// URLs take no user name (use credentials =)");
    if (he == NULL || he == h || (size_t)(he - h) >= sizeof(out->host))
        return url_fail(err, errlen, url, "invalid host");
    memcpy(out->host, h, (size_t)(he - h));
    if (*he == ':') {
        char *pe;
        unsigned long p = strtoul(he + 1, &pe, 10);

        if (pe == he + 1 || p == 0 || p > 65535 || *pe != '/')
            return url_fail(err, errlen, url, "invalid port");
        out->port = (unsigned)p;
        he = pe;
    }
    if (*he != '/' || he[1] == '/' || he[1] == '\0')
        return url_fail(err, errlen, url, "missing share after the host");
    sh = he + 1;
    se = sh + strcspn(sh, "/");
    if ((size_t)(se - sh) >= sizeof(out->share))
        return url_fail(err, errlen, url, "share name too long");
    memcpy(out->share, sh, (size_t)(se - sh));
    while (*se == '/')
        se++;
    n = strlen(se);
    while (n > 0 && se[n - 1] == '/')
        n--;
    if (n >= sizeof(out->dir))
        return url_fail(err, errlen, url, "directory too long");
    memcpy(out->dir, se, n);
    if (strstr(url, "/../") != NULL || (n >= 2 && strcmp(se + n - 2, "..") == 0))
        return url_fail(err, errlen, url, "the path must not contain '..'");
    return 0;
}

/* libsmbclient asks for credentials per server and share: always ours. */
static void auth_fn(SMBCCTX *smbc, const char *srv, const char *shr, char *wg, int wglen, char *un,
                    int unlen, char *pw, int pwlen)
{
    const ds_smb_ctx_t *c = ds__smbc.getOptionUserData(smbc);

    (void)srv;
    (void)shr;
    if (c->cred.domain[0] != '\0')
        snprintf(wg, (size_t)wglen, "%s", c->cred.domain);
    snprintf(un, (size_t)unlen, "%s", c->cred.username);
    snprintf(pw, (size_t)pwlen, "%s", c->cred.password);
}

/* libsmbclient's own messages, at debug level (they never hold passwords;
 * smbc_setDebug keeps them to level 0 and 1). */
static void log_fn(void *priv, int level, const char *msg)
{
    (void)priv;
    ds_log(DS_LOG_DEBUG, "libsmbclient[%d]: %.*s", level, (int)strcspn(msg, "\n"), msg);
}

/* Points libsmbclient at our settings (see the top of the file). */
static int load_settings(SMBCCTX *smbc, int encrypt)
{
    char path[64], text[512];
    int fd = memfd_create("distsync-smb.conf", MFD_CLOEXEC), rc, n;

    if (fd < 0)
        return -errno;
    n = snprintf(text, sizeof(text),
                 "[global]\n"
                 "client signing = required\n"
                 "client ipc signing = required\n"
                 "client min protocol = SMB2_02\n"
                 "client use kerberos = off\n"
                 "client smb encrypt = %s\n"
                 "client lanman auth = no\n"
                 "client ntlmv2 auth = yes\n",
                 encrypt ? "required" : "default");
    rc = ds_write_all(fd, text, (size_t)n);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    if (rc == 0 && ds__smbc.setConfiguration(smbc, path) != 0)
        rc = -EINVAL;
    close(fd);
    return rc;
}

static int ctx_init(ds_smb_ctx_t *c, const ds_smb_opts_t *o, char *err, size_t errlen)
{
    char why[256];
    int rc = ds__smbc_load(why, sizeof(why));

    if (rc < 0) {
        snprintf(err, errlen, "server %s: %s", o->server, why);
        return rc;
    }
    c->smbc = ds__smbc.new_context();
    if (c->smbc == NULL) {
        snprintf(err, errlen, "server %s: cannot create an SMB context: %s", o->server,
                 strerror(errno));
        return DS_ETRANSPORT;
    }
    rc = load_settings(c->smbc, o->encrypt);
    if (rc < 0) {
        snprintf(err, errlen, "server %s: cannot load the SMB client settings: %s", o->server,
                 ds_strerror(rc));
        return DS_ETRANSPORT;
    }
    ds__smbc.setDebug(c->smbc, 0);
    ds__smbc.setLogCallback(c->smbc, NULL, log_fn);
    ds__smbc.setOptionUserData(c->smbc, c);
    ds__smbc.setFunctionAuthDataWithContext(c->smbc, auth_fn);
    ds__smbc.setOptionUseKerberos(c->smbc, 0);
    ds__smbc.setOptionFallbackAfterKerberos(c->smbc, 0);
    ds__smbc.setOptionNoAutoAnonymousLogin(c->smbc, 1);
    ds__smbc.setOptionUseCCache(c->smbc, 0);
    ds__smbc.setOptionProtocols(c->smbc, "SMB2_02", NULL);
    ds__smbc.setOptionSmbEncryptionLevel(c->smbc, o->encrypt ? SMBC_ENCRYPTLEVEL_REQUIRE
                                                             : SMBC_ENCRYPTLEVEL_DEFAULT);
    ds__smbc.setTimeout(c->smbc,
                        (int)(o->timeout_s ? o->timeout_s : DS_SMB_TIMEOUT_DEFAULT_S) * 1000);
    if (ds__smbc.init_context(c->smbc) == NULL) {
        snprintf(err, errlen, "server %s: cannot initialise the SMB client: %s", o->server,
                 strerror(errno));
        return DS_ETRANSPORT;
    }
    return 0;
}

static int copy_cred(ds_smbcred_t *dst, const ds_smbcred_t *src)
{
    dst->username = strdup(src->username);
    dst->password = strdup(src->password);
    dst->domain = strdup(src->domain != NULL ? src->domain : "");
    return dst->username && dst->password && dst->domain ? 0 : DS_ENOMEM;
}

/* See distsync/smb.h. */
int ds_smb_ctx_new(const ds_smb_opts_t *o, ds_smb_ctx_t **out, char *err, size_t errlen)
{
    ds_smb_ctx_t *c = calloc(1, sizeof(*c));
    char msg[512];
    int rc;

    *out = NULL;
    if (c == NULL)
        return DS_ENOMEM;
    rc = ds_smb_url_parse(o->url, &c->url, msg, sizeof(msg));
    if (rc < 0) {
        snprintf(err, errlen, "server %s: %s", o->server, msg);
        goto out;
    }
    c->server = strdup(o->server);
    c->encrypt = o->encrypt;
    c->timeout_s = o->timeout_s ? o->timeout_s : DS_SMB_TIMEOUT_DEFAULT_S;
    rc = c->server == NULL ? DS_ENOMEM : copy_cred(&c->cred, o->cred);
    if (rc == 0 && (size_t)snprintf(c->root, sizeof(c->root), "smb://%s:%u/%s", c->url.host,
                                    c->url.port, c->url.share) >= sizeof(c->root))
        rc = -ENAMETOOLONG;
    if (rc == 0)
        rc = ctx_init(c, o, err, errlen);
out:
    if (rc < 0)
        ds_smb_ctx_free(c);
    else
        *out = c;
    return rc;
}

/* See distsync/smb.h. */
void ds_smb_ctx_free(ds_smb_ctx_t *c)
{
    if (c == NULL)
        return;
    if (c->smbc != NULL)
        ds__smbc.free_context(c->smbc, 1);
    ds_smbcred_clear(&c->cred);
    free(c->server);
    free(c);
}

/* See smb_ctx.h. */
SMBCCTX *ds__smb_ctx_raw(ds_smb_ctx_t *c)
{
    return c->smbc;
}

/* See distsync/smb.h. */
const ds_smb_url_t *ds_smb_ctx_url(const ds_smb_ctx_t *c)
{
    return &c->url;
}

/* See distsync/smb.h. */
int ds_smb_ctx_path(const ds_smb_ctx_t *c, const char *rel, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s%s%s%s%s", c->root, c->url.dir[0] ? "/" : "", c->url.dir,
                     rel && *rel ? "/" : "", rel ? rel : "");

    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* See smb_ctx.h. */
void ds__smb_ctx_errmsg(const ds_smb_ctx_t *c, const char *what, int e, char *err, size_t errlen)
{
    if (e == EACCES || e == EPERM)
        snprintf(err, errlen, "server %s: %s: %s (user %s)", c->server, what, strerror(e),
                 c->cred.username);
    else
        snprintf(err, errlen, "server %s: %s: %s", c->server, what, strerror(e));
}

/* After EACCES on the share: a session that can list the server's shares
 * logged in (the share refused the user), else the login failed. */
static int access_or_auth(ds_smb_ctx_t *c, char *err, size_t errlen)
{
    char url[600];
    SMBCFILE *d;

    snprintf(url, sizeof(url), "smb://%s:%u/", c->url.host, c->url.port);
    d = ds__smbc.getFunctionOpendir(c->smbc)(c->smbc, url);
    if (d != NULL) {
        ds__smbc.getFunctionClosedir(c->smbc)(c->smbc, d);
        snprintf(err, errlen, "server %s: user %s may not open share %s on %s:%u", c->server,
                 c->cred.username, c->url.share, c->url.host, c->url.port);
        return -EACCES;
    }
    snprintf(err, errlen, "server %s: SMB authentication failed for user %s on %s:%u", c->server,
             c->cred.username, c->url.host, c->url.port);
    return DS_EAUTH;
}

/* Why the share could not be opened (errno e). */
static int share_fail(ds_smb_ctx_t *c, int e, char *err, size_t errlen)
{
    if (e == EACCES || e == EPERM)
        return access_or_auth(c, err, errlen);
    if (e == ENOENT || e == ENODEV) {
        snprintf(err, errlen, "server %s: share %s does not exist on %s:%u", c->server,
                 c->url.share, c->url.host, c->url.port);
        return DS_ENOTFOUND;
    }
    snprintf(err, errlen, "server %s: cannot connect to %s:%u (share %s): %s", c->server,
             c->url.host, c->url.port, c->url.share, strerror(e));
    return e > 0 ? -e : DS_ETRANSPORT;
}

/* What the server offers, before any credentials are sent: signing, and
 * SMB3 encryption when encrypt = yes (see smb_negotiate.c). */
static int check_offer(ds_smb_ctx_t *c, char *err, size_t errlen)
{
    ds_smb_neg_t neg;
    int rc = ds__smb_negotiate(c->url.host, c->url.port, c->timeout_s, &neg);

    if (rc == DS_EPROTO || (rc == 0 && neg.status != 0)) {
        snprintf(err, errlen, "server %s: %s:%u does not speak SMB2 or later (status 0x%08x)",
                 c->server, c->url.host, c->url.port, rc == 0 ? neg.status : 0);
        return DS_ETRANSPORT;
    }
    if (rc < 0) {
        snprintf(err, errlen, "server %s: cannot connect to %s:%u: %s", c->server, c->url.host,
                 c->url.port, rc == -ENXIO ? "the host name does not resolve" : ds_strerror(rc));
        return rc;
    }
    if ((neg.security_mode & DS_SMB_SIGNING_ENABLED) == 0) {
        snprintf(err, errlen,
                 "server %s: %s:%u does not offer SMB signing, which distsync requires", c->server,
                 c->url.host, c->url.port);
        return DS_ETRANSPORT;
    }
    if (c->encrypt && !ds__smb_neg_encrypts(&neg)) {
        snprintf(err, errlen,
                 "server %s: encrypt = yes, but %s:%u does not offer SMB3 encryption "
                 "(dialect %x.%x.%x)",
                 c->server, c->url.host, c->url.port, neg.dialect >> 8, (neg.dialect >> 4) & 0xf,
                 neg.dialect & 0xf);
        return DS_ETRANSPORT;
    }
    return 0;
}

/* See distsync/smb.h. */
int ds_smb_ctx_connect(ds_smb_ctx_t *c, char *err, size_t errlen)
{
    char url[4096];
    struct stat st;
    int rc = check_offer(c, err, errlen);

    if (rc < 0)
        return rc;
    errno = 0;
    if (ds__smbc.getFunctionStat(c->smbc)(c->smbc, c->root, &st) < 0)
        return share_fail(c, errno, err, errlen);
    if (c->url.dir[0] == '\0')
        return 0;
    if (ds_smb_ctx_path(c, NULL, url, sizeof(url)) < 0) {
        snprintf(err, errlen, "server %s: URL too long", c->server);
        return -ENAMETOOLONG;
    }
    errno = 0;
    if (ds__smbc.getFunctionStat(c->smbc)(c->smbc, url, &st) < 0) {
        int e = errno;

        if (e == ENOENT) {
            snprintf(err, errlen, "server %s: directory %s does not exist in share %s on %s:%u",
                     c->server, c->url.dir, c->url.share, c->url.host, c->url.port);
            return DS_ENOTFOUND;
        }
        ds__smb_ctx_errmsg(c, c->url.dir, e, err, errlen);
        return e > 0 ? -e : DS_ETRANSPORT;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "server %s: %s in share %s is not a directory", c->server, c->url.dir,
                 c->url.share);
        return -ENOTDIR;
    }
    return 0;
}

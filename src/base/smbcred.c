/* SMB credentials: the credentials file parser, its loader (mode 0600) and
 * the environment, scrubbed once read. No message carries a value. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "distsync/smbcred.h"

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static void wipe_free(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* See distsync/smbcred.h. */
void ds_smbcred_clear(ds_smbcred_t *cred)
{
    if (cred == NULL)
        return;
    wipe_free(cred->username);
    wipe_free(cred->password);
    wipe_free(cred->domain);
    cred->username = cred->password = cred->domain = NULL;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* [s, e) without blanks at either end. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && is_blank(**s))
        (*s)++;
    while (*e > *s && is_blank((*e)[-1]))
        (*e)--;
}

/* One `key=value` line [s, e) (comments and blank lines already skipped). */
static int parse_line(const char *s, const char *e, const char *name, int line, ds_smbcred_t *out,
                      char *err, size_t errlen)
{
    const char *eq = memchr(s, '=', (size_t)(e - s)), *ks = s, *ke, *vs, *ve = e;
    char **dst;

    if (eq == NULL) {
        snprintf(err, errlen, "%s:%d: expected key=value (keys: username, password, domain)", name,
                 line);
        return DS_ECONFIG;
    }
    ke = eq;
    vs = eq + 1;
    trim(&ks, &ke);
    trim(&vs, &ve);
    if ((size_t)(ke - ks) == 8 && memcmp(ks, "username", 8) == 0)
        dst = &out->username;
    else if ((size_t)(ke - ks) == 8 && memcmp(ks, "password", 8) == 0)
        dst = &out->password;
    else if ((size_t)(ke - ks) == 6 && memcmp(ks, "domain", 6) == 0)
        dst = &out->domain;
    else {
        /* the text is not shown: it might be a password on the wrong line */
        snprintf(err, errlen, "%s:%d: unknown key (keys: username, password, domain)", name, line);
        return DS_ECONFIG;
    }
    if (*dst != NULL) {
        snprintf(err, errlen, "%s:%d: key '%.*s' is set twice", name, line, (int)(ke - ks), ks);
        return DS_ECONFIG;
    }
    if (vs == ve && dst != &out->domain) {
        snprintf(err, errlen, "%s:%d: key '%.*s' is empty", name, line, (int)(ke - ks), ks);
        return DS_ECONFIG;
    }
    *dst = dup_n(vs, (size_t)(ve - vs));
    return *dst == NULL ? DS_ENOMEM : 0;
}

/* See distsync/smbcred.h. */
int ds_smbcred_parse(const char *text, size_t len, const char *name, ds_smbcred_t *out, char *err,
                     size_t errlen)
{
    const char *s = text, *end = text + len;
    int line = 0, rc = 0;

    memset(out, 0, sizeof(*out));
    if (memchr(text, '\0', len) != NULL) {
        snprintf(err, errlen, "%s: holds a NUL byte (not a text file)", name);
        return DS_ECONFIG;
    }
    while (rc == 0 && s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s)), *e = nl ? nl : end, *ts = s, *te = e;

        line++;
        trim(&ts, &te);
        if (ts < te && *ts != '#')
            rc = parse_line(ts, te, name, line, out, err, errlen);
        s = e + (nl != NULL);
    }
    if (rc == 0 && (out->username == NULL || out->password == NULL)) {
        snprintf(err, errlen, "%s: missing %s= line", name,
                 out->username == NULL ? "username" : "password");
        rc = DS_ECONFIG;
    }
    if (rc == 0 && out->domain == NULL && (out->domain = strdup("")) == NULL)
        rc = DS_ENOMEM;
    if (rc < 0)
        ds_smbcred_clear(out);
    return rc;
}

/* "~/x" under $HOME, else path itself, into buf. */
static const char *expand(const char *path, char *buf, size_t cap)
{
    const char *home = getenv("HOME");

    if (strncmp(path, "~/", 2) != 0 || home == NULL)
        return path;
    if ((size_t)snprintf(buf, cap, "%s/%s", home, path + 2) >= cap)
        return path;
    return buf;
}

/* The open file's checks: regular, owner-only, not too large. */
static int check_file(int fd, const char *path, char *err, size_t errlen)
{
    struct stat st;

    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "credentials file %s: %s", path, strerror(errno));
        return -errno;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "credentials file %s: not a regular file", path);
        return DS_ECONFIG;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(err, errlen,
                 "credentials file %s has mode %04o, must be 0600 (readable by its owner only): "
                 "run chmod 600 %s",
                 path, (unsigned)(st.st_mode & 07777), path);
        return DS_ECONFIG;
    }
    if (st.st_size > DS_SMBCRED_FILE_MAX) {
        snprintf(err, errlen, "credentials file %s: larger than %d bytes", path,
                 DS_SMBCRED_FILE_MAX);
        return DS_ECONFIG;
    }
    return 0;
}

/* See distsync/smbcred.h. */
int ds_smbcred_load(const char *path, ds_smbcred_t *out, char *err, size_t errlen)
{
    char pbuf[4096], *buf = NULL;
    const char *p = expand(path, pbuf, sizeof(pbuf));
    ssize_t n = 0, got;
    int fd, rc;

    memset(out, 0, sizeof(*out));
    fd = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "credentials file %s: %s", p, strerror(errno));
        goto out;
    }
    rc = check_file(fd, p, err, errlen);
    if (rc < 0)
        goto out;
    buf = malloc(DS_SMBCRED_FILE_MAX + 1);
    if (buf == NULL) {
        rc = DS_ENOMEM;
        goto out;
    }
    while ((got = read(fd, buf + n, (size_t)(DS_SMBCRED_FILE_MAX + 1 - n))) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = -errno;
            snprintf(err, errlen, "credentials file %s: %s", p, strerror(errno));
            goto out;
        }
        n += got;
        if (n > DS_SMBCRED_FILE_MAX) {
            snprintf(err, errlen, "credentials file %s: larger than %d bytes", p,
                     DS_SMBCRED_FILE_MAX);
            rc = DS_ECONFIG;
            goto out;
        }
    }
    rc = ds_smbcred_parse(buf, (size_t)n, p, out, err, errlen);
out:
    if (buf != NULL) {
        explicit_bzero(buf, DS_SMBCRED_FILE_MAX + 1);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

/* The environment's credentials, taken once (see the header). */
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static ds_smbcred_t env_cred;
static int env_rc;

/* Copies variable name, then scrubs it from the environment. */
static int take_env(const char *name, char **dst, int secret)
{
    char *v = getenv(name);

    if (v == NULL)
        return 0;
    *dst = strdup(v);
    if (*dst == NULL)
        return DS_ENOMEM;
    if (secret) {
        explicit_bzero(v, strlen(v));
        unsetenv(name);
    }
    return 0;
}

static void env_init(void)
{
    env_rc = take_env(DS_SMBCRED_ENV_PASSWORD, &env_cred.password, 1);
    if (env_rc == 0)
        env_rc = take_env(DS_SMBCRED_ENV_USER, &env_cred.username, 0);
    if (env_rc == 0)
        env_rc = take_env(DS_SMBCRED_ENV_DOMAIN, &env_cred.domain, 0);
}

/* See distsync/smbcred.h. */
int ds_smbcred_from_env(ds_smbcred_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (pthread_once(&env_once, env_init) != 0 || env_rc < 0)
        return DS_ENOMEM;
    if (env_cred.username == NULL || env_cred.password == NULL) {
        snprintf(err, errlen, "%s is not set",
                 env_cred.username == NULL ? DS_SMBCRED_ENV_USER : DS_SMBCRED_ENV_PASSWORD);
        return DS_ENOTFOUND;
    }
    out->username = strdup(env_cred.username);
    out->password = strdup(env_cred.password);
    out->domain = strdup(env_cred.domain != NULL ? env_cred.domain : "");
    if (out->username == NULL || out->password == NULL || out->domain == NULL) {
        ds_smbcred_clear(out);
        return DS_ENOMEM;
    }
    return 0;
}

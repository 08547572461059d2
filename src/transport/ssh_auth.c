/*
 * User authentication for ssh:// servers: a private key file (identity =)
 * or the keys of ssh-agent. libssh2 1.10 signs RSA keys with ssh-rsa
 * (SHA-1) only, which OpenSSH 8.8 and later refuse; an RSA key is named as
 * the reason instead of a bare "refused". Nothing here logs a secret: no
 * passphrase is read, no key material is printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "distsync/error.h"

#include "ssh_int.h"

#define RSA_ADVICE                                                                                 \
    "libssh2 1.10 can sign RSA keys only with ssh-rsa (SHA-1), which OpenSSH 8.8 and later "       \
    "refuse; make an ed25519 key (ssh-keygen -t ed25519), add its .pub to the user's "             \
    "~/.ssh/authorized_keys on the server, and set identity = to it"

/* 1 when the blob (an SSH public key, or the start of an OpenSSH private
 * key file, decoded) names the key type ssh-rsa. */
static int blob_is_rsa(const unsigned char *b, size_t n)
{
    static const unsigned char tag[] = {0, 0, 0, 7, 's', 's', 'h', '-', 'r', 's', 'a'};

    for (size_t i = 0; i + sizeof(tag) <= n && i < 128; i++)
        if (memcmp(b + i, tag, sizeof(tag)) == 0)
            return 1;
    return 0;
}

/* 1 when the private key file at path holds an RSA key: PEM "RSA PRIVATE
 * KEY", or an OpenSSH-format file whose public part (unencrypted, near the
 * start) is ssh-rsa. 0 otherwise or when unreadable (the auth call then
 * says why). */
static int file_is_rsa(const char *path)
{
    static const char begin[] = "-----BEGIN OPENSSH PRIVATE KEY-----";
    char text[1024], b64[600];
    unsigned char raw[450];
    size_t n = 0, k = 0;
    FILE *f = fopen(path, "re");
    const char *p;
    int len;

    if (f == NULL)
        return 0;
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    if (strstr(text, "BEGIN RSA PRIVATE KEY") != NULL)
        return 1;
    if ((p = strstr(text, begin)) == NULL)
        return 0;
    for (p += sizeof(begin) - 1; *p != '\0' && *p != '-' && k < sizeof(b64) - 1; p++)
        if (*p != '\n' && *p != '\r')
            b64[k++] = *p;
    k -= k % 4;
    len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)k);
    return len > 0 && blob_is_rsa(raw, (size_t)len);
}

static int with_identity(LIBSSH2_SESSION *s, const struct ds__ssh_url *u, const char *identity,
                         char *err, size_t errlen)
{
    int rc;

    if (file_is_rsa(identity)) {
        snprintf(err, errlen, "authentication as user '%s' on %s:%d: identity %s is an RSA key: %s",
                 u->user, u->host, u->port, identity, RSA_ADVICE);
        return DS_EAUTH;
    }
    rc = libssh2_userauth_publickey_fromfile_ex(s, u->user, (unsigned)strlen(u->user), NULL,
                                                identity, NULL);
    if (rc == 0)
        return 0;
    if (rc == LIBSSH2_ERROR_FILE)
        snprintf(err, errlen,
                 "authentication as user '%s' on %s:%d: cannot use identity %s (missing, "
                 "unreadable, or protected by a passphrase: load such a key into ssh-agent and "
                 "drop identity =)",
                 u->user, u->host, u->port, identity);
    else if (rc == LIBSSH2_ERROR_TIMEOUT || rc == LIBSSH2_ERROR_SOCKET_RECV ||
             rc == LIBSSH2_ERROR_SOCKET_SEND)
        snprintf(err, errlen, "authentication as user '%s' on %s:%d: %s", u->user, u->host, u->port,
                 ds__ssh_errmsg(s));
    else
        snprintf(err, errlen,
                 "authentication as user '%s' on %s:%d failed: the server refused the key %s "
                 "(is the user right, and its .pub in that user's ~/.ssh/authorized_keys?)",
                 u->user, u->host, u->port, identity);
    return DS_EAUTH;
}

static int with_agent(LIBSSH2_SESSION *s, const struct ds__ssh_url *u, char *err, size_t errlen)
{
    LIBSSH2_AGENT *a = NULL;
    struct libssh2_agent_publickey *id = NULL, *prev = NULL;
    int tried = 0, rsa = 0, rc = DS_EAUTH;

    if (getenv("SSH_AUTH_SOCK") == NULL) {
        snprintf(err, errlen,
                 "authentication as user '%s' on %s:%d: no identity = set and no ssh-agent "
                 "(SSH_AUTH_SOCK is unset): set identity = to a private key file",
                 u->user, u->host, u->port);
        return DS_EAUTH;
    }
    a = libssh2_agent_init(s);
    if (a == NULL || libssh2_agent_connect(a) != 0 || libssh2_agent_list_identities(a) != 0) {
        snprintf(err, errlen, "authentication as user '%s' on %s:%d: cannot use ssh-agent: %s",
                 u->user, u->host, u->port, ds__ssh_errmsg(s));
        goto out;
    }
    while (libssh2_agent_get_identity(a, &id, prev) == 0) {
        prev = id;
        if (blob_is_rsa(id->blob, id->blob_len < 16 ? id->blob_len : 16)) {
            rsa++;
            continue;
        }
        tried++;
        if (libssh2_agent_userauth(a, u->user, id) == 0) {
            rc = 0;
            goto out;
        }
    }
    if (tried == 0 && rsa > 0)
        snprintf(err, errlen,
                 "authentication as user '%s' on %s:%d: ssh-agent holds only RSA keys: %s", u->user,
                 u->host, u->port, RSA_ADVICE);
    else if (tried == 0)
        snprintf(err, errlen,
                 "authentication as user '%s' on %s:%d: ssh-agent holds no key (ssh-add one, or "
                 "set identity =)",
                 u->user, u->host, u->port);
    else
        snprintf(err, errlen,
                 "authentication as user '%s' on %s:%d failed: the server refused the %d key(s) "
                 "of ssh-agent (is the user right, and the key in that user's "
                 "~/.ssh/authorized_keys?)",
                 u->user, u->host, u->port, tried);
out:
    if (a != NULL) {
        libssh2_agent_disconnect(a);
        libssh2_agent_free(a);
    }
    return rc;
}

/* See ssh_int.h. */
int ds__ssh_auth(LIBSSH2_SESSION *s, const struct ds__ssh_url *u, const char *identity, char *err,
                 size_t errlen)
{
    if (identity != NULL)
        return with_identity(s, u, identity, err, errlen);
    return with_agent(s, u, err, errlen);
}

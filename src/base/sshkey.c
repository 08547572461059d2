/*
 * The identity = file check (distsync/sshkey.h): what a key file holds is
 * read from its first KiB only: the PEM armour line, a PEM header saying
 * it is encrypted, and for the OpenSSH format the start of the decoded
 * blob ("openssh-key-v1", the cipher name, the public key's type).
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
#include "distsync/sshkey.h"

#define RSA_ADVICE "an RSA key: " DS_SSHKEY_RSA_ADVICE

#define OPENSSH_BEGIN "-----BEGIN OPENSSH PRIVATE KEY-----"
#define OPENSSH_MAGIC "openssh-key-v1"

static int fail(char *why, size_t whylen, const char *fmt, const char *arg)
{
    snprintf(why, whylen, fmt, arg);
    return DS_EAUTH;
}

/* See distsync/sshkey.h. */
int ds_sshkey_blob_is_rsa(const unsigned char *b, size_t n)
{
    static const unsigned char tag[] = {0, 0, 0, 7, 's', 's', 'h', '-', 'r', 's', 'a'};

    for (size_t i = 0; i + sizeof(tag) <= n && i < 128; i++)
        if (memcmp(b + i, tag, sizeof(tag)) == 0)
            return 1;
    return 0;
}

/* The start of an OpenSSH-format key (text after its BEGIN line):
 * encrypted (its cipher is not "none") or RSA. Returns 0 or DS_EAUTH. */
static int check_openssh(const char *p, char *why, size_t whylen)
{
    static const char none[] = {0, 0, 0, 4, 'n', 'o', 'n', 'e'};
    char b64[600];
    unsigned char raw[450];
    size_t k = 0, m = sizeof(OPENSSH_MAGIC);
    int len;

    for (; *p != '\0' && *p != '-' && k < sizeof(b64) - 1; p++)
        if (*p != '\n' && *p != '\r')
            b64[k++] = *p;
    k -= k % 4;
    len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)k);
    if (len < (int)(m + sizeof(none)) || memcmp(raw, OPENSSH_MAGIC, m) != 0)
        return fail(why, whylen, "%s", "not a valid OpenSSH private key (damaged?)");
    if (memcmp(raw + m, none, sizeof(none)) != 0)
        return fail(why, whylen, "%s",
                    "protected by a passphrase, which distsync never asks for: load the key "
                    "into ssh-agent (ssh-add) and drop identity =, or use a key without one");
    if (ds_sshkey_blob_is_rsa(raw, (size_t)len))
        return fail(why, whylen, "%s", RSA_ADVICE);
    return 0;
}

/* See distsync/sshkey.h. */
int ds_sshkey_check_text(const char *text, char *why, size_t whylen)
{
    const char *p;

    if ((p = strstr(text, OPENSSH_BEGIN)) != NULL)
        return check_openssh(p + sizeof(OPENSSH_BEGIN) - 1, why, whylen);
    if (strncmp(text, "ssh-", 4) == 0 || strncmp(text, "ecdsa-", 6) == 0 ||
        strncmp(text, "sk-", 3) == 0)
        return fail(why, whylen, "%s",
                    "a public key, not a private one: identity = names the private key file "
                    "(the one without .pub)");
    if (strstr(text, "PRIVATE KEY-----") == NULL)
        return fail(why, whylen, "%s", "not a private key file (no BEGIN ... PRIVATE KEY line)");
    if (strstr(text, "ENCRYPTED") != NULL)
        return fail(why, whylen, "%s",
                    "protected by a passphrase, which distsync never asks for: load the key "
                    "into ssh-agent (ssh-add) and drop identity =, or use a key without one");
    if (strstr(text, "BEGIN RSA PRIVATE KEY") != NULL)
        return fail(why, whylen, "%s", RSA_ADVICE);
    return 0;
}

/* See distsync/sshkey.h. */
int ds_sshkey_check(const char *path, char *why, size_t whylen)
{
    char buf[4096], text[1024];
    const char *home = getenv("HOME");
    struct stat st;
    ssize_t n;
    int fd, rc;

    if (strncmp(path, "~/", 2) == 0 && home != NULL &&
        (size_t)snprintf(buf, sizeof(buf), "%s/%s", home, path + 2) < sizeof(buf))
        path = buf;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return fail(why, whylen, "%s", strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(why, whylen, "%s", "not a regular file");
    }
    n = read(fd, text, sizeof(text) - 1);
    rc = n < 0 ? -errno : 0;
    close(fd);
    if (rc < 0)
        return fail(why, whylen, "%s", strerror(-rc));
    text[n] = '\0';
    if ((rc = ds_sshkey_check_text(text, why, whylen)) < 0)
        return rc;
    if (st.st_uid == getuid() && (st.st_mode & 077) != 0) { /* OpenSSH's rule */
        snprintf(why, whylen,
                 "permissions %04o are too open: other users can read this private key "
                 "(chmod 600 it; ssh refuses it too)",
                 (unsigned)(st.st_mode & 07777));
        return DS_EAUTH;
    }
    return 0;
}

/*
 * User authentication for ssh:// servers: a private key file (identity =)
 * or the keys of ssh-agent. libssh2 1.10 signs RSA keys with ssh-rsa
 * (SHA-1) only, which OpenSSH 8.8 and later refuse; an RSA key is named as
 * the reason instead of a bare "refused". Nothing here logs a secret: no
 * passphrase is read, no key material is printed. The session is
 * non-blocking: each call goes as far as the socket allows (ssh_open.c
 * steps it again when the socket moves); ssh-agent itself is a local
 * socket, asked without waiting on the network.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "distsync/error.h"
#include "distsync/sshkey.h"

#include "ssh_int.h"

/* The server refused, or the key file could not be used: the message. */
static int identity_failed(LIBSSH2_SESSION *s, int rc, const struct ds__ssh_url *u,
                           const char *identity, char *err, size_t errlen)
{
    if (rc == LIBSSH2_ERROR_FILE)
        snprintf(err, errlen,
                 "authentication as user '%s' on %s: cannot use identity %s (missing, "
                 "unreadable, or protected by a passphrase: load such a key into ssh-agent and "
                 "drop identity =)",
                 u->user, u->hostport, identity);
    else if (rc == LIBSSH2_ERROR_TIMEOUT || rc == LIBSSH2_ERROR_SOCKET_RECV ||
             rc == LIBSSH2_ERROR_SOCKET_SEND)
        snprintf(err, errlen, "authentication as user '%s' on %s: %s", u->user, u->hostport,
                 ds__ssh_errmsg(s));
    else
        snprintf(err, errlen,
                 "authentication as user '%s' on %s failed: the server refused the key %s "
                 "(is the user right, and its .pub in that user's ~/.ssh/authorized_keys?)",
                 u->user, u->hostport, identity);
    return DS_EAUTH;
}

static int with_identity(LIBSSH2_SESSION *s, struct ds__ssh_auth *a, const struct ds__ssh_url *u,
                         const char *identity, char *err, size_t errlen)
{
    int rc;

    char why[512];

    if (!a->checked && ds_sshkey_check(identity, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "authentication as user '%s' on %s: identity %s: %s", u->user,
                 u->hostport, identity, why);
        return DS_EAUTH;
    }
    a->checked = 1;
    rc = libssh2_userauth_publickey_fromfile_ex(s, u->user, (unsigned)strlen(u->user), NULL,
                                                identity, NULL);
    if (rc == LIBSSH2_ERROR_EAGAIN)
        return 1;
    return rc == 0 ? 0 : identity_failed(s, rc, u, identity, err, errlen);
}

/* Whether SSH_AUTH_SOCK (sock) names a socket; else says why in err
 * (libssh2 only says "failed connecting with agent"). Returns 0 or
 * DS_EAUTH. */
static int agent_sock(const char *sock, const struct ds__ssh_url *u, char *err, size_t errlen)
{
    struct stat st;
    const char *why = NULL;

    if (sock == NULL || sock[0] == '\0')
        why = "SSH_AUTH_SOCK is unset";
    else if (stat(sock, &st) < 0)
        why = strerror(errno);
    else if (!S_ISSOCK(st.st_mode))
        why = "not a socket";
    if (why == NULL)
        return 0;
    snprintf(err, errlen,
             "authentication as user '%s' on %s: no identity = set and no ssh-agent "
             "(%s%s%s%s): set identity = to a private key file, or start ssh-agent and ssh-add "
             "a key",
             u->user, u->hostport, sock && sock[0] ? "SSH_AUTH_SOCK " : "",
             sock && sock[0] ? sock : "", sock && sock[0] ? ": " : "", why);
    return DS_EAUTH;
}

/* Connects to ssh-agent and lists its keys. Returns 0 or DS_EAUTH. */
static int agent_start(LIBSSH2_SESSION *s, struct ds__ssh_auth *a, const struct ds__ssh_url *u,
                       char *err, size_t errlen)
{
    if (agent_sock(getenv("SSH_AUTH_SOCK"), u, err, errlen) < 0)
        return DS_EAUTH;
    a->a = libssh2_agent_init(s);
    if (a->a == NULL || libssh2_agent_connect(a->a) != 0 ||
        libssh2_agent_list_identities(a->a) != 0) {
        snprintf(err, errlen, "authentication as user '%s' on %s: cannot use ssh-agent: %s",
                 u->user, u->hostport, ds__ssh_errmsg(s));
        return DS_EAUTH;
    }
    return 0;
}

/* Every key of ssh-agent was tried or skipped: why none worked. */
static int agent_failed(const struct ds__ssh_auth *a, const struct ds__ssh_url *u, char *err,
                        size_t errlen)
{
    if (a->tried == 0 && a->rsa > 0)
        snprintf(err, errlen,
                 "authentication as user '%s' on %s: ssh-agent holds only RSA keys: %s", u->user,
                 u->hostport, DS_SSHKEY_RSA_ADVICE);
    else if (a->tried == 0)
        snprintf(err, errlen,
                 "authentication as user '%s' on %s: ssh-agent holds no key (ssh-add one, or "
                 "set identity =)",
                 u->user, u->hostport);
    else
        snprintf(err, errlen,
                 "authentication as user '%s' on %s failed: the server refused the %d key(s) "
                 "of ssh-agent (is the user right, and the key in that user's "
                 "~/.ssh/authorized_keys?)",
                 u->user, u->hostport, a->tried);
    return DS_EAUTH;
}

/* Moves a->id to the agent's next key that is not RSA. Returns 0, or 1
 * when no key is left. */
static int agent_next(struct ds__ssh_auth *a)
{
    struct libssh2_agent_publickey *prev = a->id;

    while (libssh2_agent_get_identity(a->a, &a->id, prev) == 0) {
        prev = a->id;
        if (!ds_sshkey_blob_is_rsa(a->id->blob, a->id->blob_len < 16 ? a->id->blob_len : 16)) {
            a->tried++;
            return 0;
        }
        a->rsa++;
    }
    return 1;
}

/* Offers ssh-agent's keys in turn; a key whose offer waits on the socket
 * is offered again on the next step (libssh2 keeps its state). */
static int with_agent(LIBSSH2_SESSION *s, struct ds__ssh_auth *a, const struct ds__ssh_url *u,
                      char *err, size_t errlen)
{
    int rc;

    if (a->a == NULL) {
        if ((rc = agent_start(s, a, u, err, errlen)) < 0)
            return rc;
        if (agent_next(a) != 0)
            return agent_failed(a, u, err, errlen);
    }
    for (;;) {
        rc = libssh2_agent_userauth(a->a, u->user, a->id);
        if (rc == LIBSSH2_ERROR_EAGAIN || rc == 0)
            return rc == 0 ? 0 : 1;
        if (agent_next(a) != 0)
            return agent_failed(a, u, err, errlen);
    }
}

/* See ssh_int.h. */
int ds__ssh_auth_step(LIBSSH2_SESSION *s, struct ds__ssh_auth *a, const struct ds__ssh_url *u,
                      const char *identity, char *err, size_t errlen)
{
    if (identity != NULL)
        return with_identity(s, a, u, identity, err, errlen);
    return with_agent(s, a, u, err, errlen);
}

/* See ssh_int.h. */
void ds__ssh_auth_end(struct ds__ssh_auth *a)
{
    if (a->a != NULL) {
        libssh2_agent_disconnect(a->a);
        libssh2_agent_free(a->a);
    }
    a->a = NULL;
    a->id = NULL;
}

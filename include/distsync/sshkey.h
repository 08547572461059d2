/*
 * An ssh:// server's identity = file, checked before it is used: by
 * `config check` and by the login (ssh_auth.c), so both say the same thing
 * and say it precisely. libssh2 1.10 reports every unusable key file with
 * one code (LIBSSH2_ERROR_FILE), which named "missing, unreadable, or
 * protected by a passphrase" for a public key given by mistake as well.
 * Nothing secret is read into a message: only the key's type and whether
 * it is encrypted are looked at.
 */
#ifndef DISTSYNC_SSHKEY_H
#define DISTSYNC_SSHKEY_H

#include <stddef.h>

/* Why an RSA key cannot log in, and what to do instead. */
#define DS_SSHKEY_RSA_ADVICE                                                                       \
    "libssh2 1.10 can sign RSA keys only with ssh-rsa (SHA-1), which OpenSSH 8.8 and later "       \
    "refuse; make an ed25519 key (ssh-keygen -t ed25519), add its .pub to the user's "             \
    "~/.ssh/authorized_keys on the server, and set identity = to it"

/* 1 when the blob (an SSH public key, or the start of a decoded OpenSSH
 * private key file; n bytes) names the key type ssh-rsa near its start. */
int ds_sshkey_blob_is_rsa(const unsigned char *b, size_t n);

/* Checks the private key file at path ("~/" expanded with $HOME): a
 * regular file this process can read, not open to group or others when
 * it is ours (OpenSSH's rule), holding an unencrypted OpenSSH or
 * PEM private key that is not RSA (libssh2 1.10 signs RSA only with
 * ssh-rsa, which OpenSSH 8.8 and later refuse). Returns 0, or DS_EAUTH
 * with why set to the reason and what to do (the path not included). */
int ds_sshkey_check(const char *path, char *why, size_t whylen);

/* The same check on the start of a key file's text (NUL-terminated; the
 * first KiB is what ds_sshkey_check reads). Returns 0 or DS_EAUTH. */
int ds_sshkey_check_text(const char *text, char *why, size_t whylen);

#endif

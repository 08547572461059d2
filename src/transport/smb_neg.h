/*
 * distsync's own SMB2 NEGOTIATE probe (smb_negotiate.c): what a server
 * offers (signing, dialect, encryption), checked before libsmbclient
 * connects, because libsmbclient does not report it.
 */
#ifndef DS_TRANSPORT_SMB_NEG_H
#define DS_TRANSPORT_SMB_NEG_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/error.h"

#define DS_SMB_SIGNING_ENABLED 0x0001 /* SecurityMode bits */
#define DS_SMB_CAP_ENCRYPTION  0x40   /* SMB2_GLOBAL_CAP_ENCRYPTION (SMB 3.0, 3.0.2) */
#define DS_SMB_DIALECT_311     0x0311 /* encryption offered by negotiate context */

typedef struct ds_smb_neg {
    uint32_t status;        /* the reply's NT status (0: success) */
    uint16_t security_mode; /* DS_SMB_SIGNING_ENABLED, ... */
    uint16_t dialect;       /* 0x0202, 0x0210, 0x0300, 0x0302, 0x0311 */
    uint32_t capabilities;  /* DS_SMB_CAP_ENCRYPTION, ... */
    uint16_t cipher;        /* 3.1.1: the cipher the server chose (0: none) */
} ds_smb_neg_t;

/* Whether the reply offers SMB3 encryption: the capability flag (3.0,
 * 3.0.2) or a cipher in the ENCRYPTION_CAPABILITIES context (3.1.1). */
static inline int ds__smb_neg_encrypts(const ds_smb_neg_t *n)
{
    if (n->dialect == DS_SMB_DIALECT_311)
        return n->cipher != 0;
    return n->dialect >= 0x0300 && (n->capabilities & DS_SMB_CAP_ENCRYPTION) != 0;
}

/* Parses an SMB2 NEGOTIATE reply (the message after its 4-byte NetBIOS
 * header, len bytes), with a 3.1.1 reply's negotiate contexts. Returns 0
 * with *out filled (status != 0: the server refused; the other fields are
 * 0), or DS_EPROTO (out zeroed) when it is not one. Pure. */
DS_MUST_CHECK int ds__smb_neg_parse(const uint8_t *msg, size_t len, ds_smb_neg_t *out);

/* Connects to host:port (TCP), sends a NEGOTIATE offering SMB 2.0.2 to
 * 3.1.1 with signing required and encryption (every AES cipher), reads the reply, closes.
 * Everything within timeout_s. Returns 0 with *out, or -errno
 * (-ECONNREFUSED, -ETIMEDOUT, -ENXIO when the name does not resolve...),
 * DS_EPROTO (the reply is not an SMB2 NEGOTIATE reply). */
DS_MUST_CHECK int ds__smb_negotiate(const char *host, unsigned port, unsigned timeout_s,
                                    ds_smb_neg_t *out);

#endif

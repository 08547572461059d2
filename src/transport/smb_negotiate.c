/*
 * The SMB2 NEGOTIATE exchange distsync makes itself before libsmbclient
 * connects: it tells what the server offers, which libsmbclient does not
 * report. libsmbclient 4.17 goes on unencrypted when encryption is
 * required and the server does not offer it (it only prints a line), so
 * encrypt = yes is enforced here: a server that does not offer SMB3
 * encryption, or does not offer signing, is refused before any credentials
 * are sent.
 *
 * One request (dialects 2.0.2 to 3.1.1; for 3.1.1 the preauth integrity
 * and encryption negotiate contexts, as MS-SMB2 2.2.3.1 requires), one
 * reply parsed by ds__smb_neg_parse (pure, fuzzed: fuzz_smb_negotiate).
 * SMB 3.0 and 3.0.2 offer encryption by a capability flag; 3.1.1 by the
 * cipher the server picks in its ENCRYPTION_CAPABILITIES context (none:
 * the context is absent or names cipher 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "transport/smb_neg.h"

#define HDR         64 /* SMB2 header */
#define NEG_BODY    65 /* NEGOTIATE response StructureSize */
#define REPLY_MAX   65536
#define CTX_ALIGN   8 /* negotiate contexts start 8-byte aligned */
#define CTX_HDR     8 /* ContextType, DataLength, Reserved */
#define CTX_PREAUTH 0x0001
#define CTX_ENCRYPT 0x0002

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* The negotiate contexts of a 3.1.1 reply: count of them from off (from
 * the SMB2 header). Sets out->cipher from ENCRYPTION_CAPABILITIES (the
 * server names exactly one cipher). Returns 0 or DS_EPROTO. */
static int parse_contexts(const uint8_t *msg, size_t len, unsigned count, size_t off,
                          ds_smb_neg_t *out)
{
    for (unsigned i = 0; i < count; i++) {
        size_t dlen;

        if (off > len || len - off < CTX_HDR)
            return DS_EPROTO;
        dlen = le16(msg + off + 2);
        if (len - off - CTX_HDR < dlen)
            return DS_EPROTO;
        if (le16(msg + off) == CTX_ENCRYPT) {
            if (dlen < 4 || le16(msg + off + CTX_HDR) != 1)
                return DS_EPROTO;
            out->cipher = le16(msg + off + CTX_HDR + 2);
        }
        off += CTX_HDR + dlen;
        off = (off + CTX_ALIGN - 1) & ~(size_t)(CTX_ALIGN - 1);
    }
    return 0;
}

/* See smb_neg.h. */
int ds__smb_neg_parse(const uint8_t *msg, size_t len, ds_smb_neg_t *out)
{
    memset(out, 0, sizeof(*out));
    if (len < HDR + NEG_BODY - 1 || memcmp(msg, "\xfeSMB", 4) != 0 || le16(msg + 4) != HDR)
        return DS_EPROTO;
    if (le16(msg + 12) != 0 /* NEGOTIATE */ || (msg[16] & 0x01) == 0 /* a response */)
        return DS_EPROTO;
    out->status = le32(msg + 8);
    if (out->status != 0)
        return 0;
    if (le16(msg + HDR) != NEG_BODY)
        return DS_EPROTO;
    out->security_mode = le16(msg + HDR + 2);
    out->dialect = le16(msg + HDR + 4);
    out->capabilities = le32(msg + HDR + 24);
    if (out->dialect == DS_SMB_DIALECT_311 &&
        parse_contexts(msg, len, le16(msg + HDR + 6), le32(msg + HDR + 60), out) < 0) {
        memset(out, 0, sizeof(*out));
        return DS_EPROTO;
    }
    return 0;
}

/* A negotiate context at p: type, data length, data. Returns its length
 * padded to CTX_ALIGN (the padding is already zero). */
static size_t put_ctx(uint8_t *p, uint16_t type, const uint8_t *data, size_t n)
{
    put16(p, type);
    put16(p + 2, (uint16_t)n);
    memcpy(p + CTX_HDR, data, n);
    return (CTX_HDR + n + CTX_ALIGN - 1) & ~(size_t)(CTX_ALIGN - 1);
}

/* NetBIOS session header + SMB2 header + NEGOTIATE request with the two
 * 3.1.1 contexts into buf (at least REQ_MAX bytes). Returns its length. */
#define REQ_MAX 256
static size_t build_request(uint8_t *buf)
{
    static const uint16_t dialects[] = {0x0202, 0x0210, 0x0300, 0x0302, DS_SMB_DIALECT_311};
    /* SHA-512, then a 32-byte salt (fixed: this connection never signs) */
    static const uint8_t preauth[38] = {1, 0, 32, 0, 1, 0, 'd', 's'};
    /* AES-128-GCM, AES-128-CCM, AES-256-GCM, AES-256-CCM */
    static const uint8_t ciphers[10] = {4, 0, 2, 0, 1, 0, 4, 0, 3, 0};
    const size_t nd = sizeof(dialects) / sizeof(dialects[0]);
    uint8_t *h = buf + 4, *b = h + HDR;
    size_t ctx = (HDR + 36 + 2 * nd + CTX_ALIGN - 1) & ~(size_t)(CTX_ALIGN - 1), n;

    memset(buf, 0, REQ_MAX);
    memcpy(h, "\xfeSMB", 4);
    put16(h + 4, HDR);
    put16(h + 14, 1);                       /* CreditRequest */
    put16(b, 36);                           /* StructureSize */
    put16(b + 2, (uint16_t)nd);             /* DialectCount */
    put16(b + 4, 0x0003);                   /* signing enabled and required */
    b[8] = DS_SMB_CAP_ENCRYPTION;           /* Capabilities */
    memcpy(b + 12, "distsync-negprob", 16); /* ClientGuid */
    b[28] = (uint8_t)ctx;                   /* NegotiateContextOffset (< 256) */
    put16(b + 32, 2);                       /* NegotiateContextCount */
    for (size_t i = 0; i < nd; i++)
        put16(b + 36 + 2 * i, dialects[i]);
    n = ctx + put_ctx(h + ctx, CTX_PREAUTH, preauth, sizeof(preauth));
    put_ctx(h + n, CTX_ENCRYPT, ciphers, sizeof(ciphers));
    n += CTX_HDR + sizeof(ciphers); /* the last context is not padded */
    buf[1] = (uint8_t)(n >> 16);
    buf[2] = (uint8_t)(n >> 8);
    buf[3] = (uint8_t)n;
    return 4 + n;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline. Returns 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = events};

    for (;;) {
        int64_t left = deadline - now_ms();
        int rc;

        if (left <= 0)
            return -ETIMEDOUT;
        rc = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -errno;
    }
}

/* A TCP connection to host:port, non-blocking, until deadline. */
static int tcp_connect(const char *host, unsigned port, int64_t deadline, int *fdp)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL, *ai;
    char serv[16];
    int rc = -EHOSTUNREACH, fd = -1;

    snprintf(serv, sizeof(serv), "%u", port);
    if (getaddrinfo(host, serv, &hints, &res) != 0)
        return -ENXIO;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        socklen_t sl = sizeof(int);
        int soerr = 0;

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        rc = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS ? 0 : -errno;
        if (rc == 0)
            rc = wait_fd(fd, POLLOUT, deadline);
        if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr != 0)
            rc = -soerr;
        if (rc == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    *fdp = fd;
    return rc;
}

/* Reads exactly n bytes until deadline. */
static int read_n(int fd, uint8_t *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        ssize_t got = read(fd, p, n);

        if (got > 0) {
            p += got;
            n -= (size_t)got;
            continue;
        }
        if (got == 0)
            return -ECONNRESET;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
        int rc = wait_fd(fd, POLLIN, deadline);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int exchange(int fd, int64_t deadline, uint8_t *reply, ds_smb_neg_t *out)
{
    uint8_t req[REQ_MAX];
    size_t n = build_request(req), off = 0, len;
    int rc = 0;

    while (rc == 0 && off < n) {
        ssize_t w = write(fd, req + off, n - off);

        if (w > 0)
            off += (size_t)w;
        else if (w < 0 && errno != EAGAIN && errno != EINTR)
            rc = -errno;
        else
            rc = wait_fd(fd, POLLOUT, deadline);
    }
    if (rc == 0)
        rc = read_n(fd, reply, 4, deadline);
    if (rc < 0)
        return rc;
    len = (size_t)reply[1] << 16 | (size_t)reply[2] << 8 | reply[3];
    if (reply[0] != 0 || len > REPLY_MAX || len < HDR)
        return DS_EPROTO;
    rc = read_n(fd, reply, len, deadline);
    return rc < 0 ? rc : ds__smb_neg_parse(reply, len, out);
}

/* See smb_neg.h. */
int ds__smb_negotiate(const char *host, unsigned port, unsigned timeout_s, ds_smb_neg_t *out)
{
    int64_t deadline = now_ms() + (int64_t)timeout_s * 1000;
    uint8_t *reply = malloc(REPLY_MAX);
    int fd = -1, rc;

    memset(out, 0, sizeof(*out));
    if (reply == NULL)
        return DS_ENOMEM;
    rc = tcp_connect(host, port, deadline, &fd);
    if (rc == 0)
        rc = exchange(fd, deadline, reply, out);
    if (fd >= 0)
        close(fd);
    free(reply);
    return rc;
}

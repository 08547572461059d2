/*
 * The SMB2 NEGOTIATE exchange distsync makes itself before libsmbclient
 * connects: it tells what the server offers, which libsmbclient does not
 * report. libsmbclient 4.17 goes on unencrypted when encryption is
 * required and the server does not offer it (it only prints a line), so
 * encrypt = yes is enforced here: a server that does not offer SMB 3.0
 * encryption, or does not offer signing, is refused before any credentials
 * are sent.
 *
 * One request (dialects 2.0.2 to 3.0.2: no negotiate contexts needed), one
 * reply parsed by ds__smb_neg_parse (pure, fuzzed: fuzz_smb_negotiate).
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

#define HDR       64 /* SMB2 header */
#define NEG_BODY  65 /* NEGOTIATE response StructureSize */
#define REPLY_MAX 65536

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
    return 0;
}

/* NetBIOS session header + SMB2 header + NEGOTIATE request into buf (at
 * least 4 + 64 + 36 + 8 bytes). Returns its length. */
static size_t build_request(uint8_t *buf)
{
    static const uint16_t dialects[] = {0x0202, 0x0210, 0x0300, 0x0302};
    uint8_t *h = buf + 4, *b = h + HDR;
    size_t n = HDR + 36 + 2 * 4;

    memset(buf, 0, 4 + n);
    buf[1] = (uint8_t)(n >> 16);
    buf[2] = (uint8_t)(n >> 8);
    buf[3] = (uint8_t)n;
    memcpy(h, "\xfeSMB", 4);
    put16(h + 4, HDR);
    put16(h + 14, 1);                       /* CreditRequest */
    put16(b, 36);                           /* StructureSize */
    put16(b + 2, 4);                        /* DialectCount */
    put16(b + 4, 0x0003);                   /* signing enabled and required */
    b[8] = DS_SMB_CAP_ENCRYPTION;           /* Capabilities */
    memcpy(b + 12, "distsync-negprob", 16); /* ClientGuid */
    for (size_t i = 0; i < 4; i++)
        put16(b + 36 + 2 * i, dialects[i]);
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
    uint8_t req[256];
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

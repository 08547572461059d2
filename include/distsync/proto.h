/*
 * Apply protocol: frame codec. Pure functions over byte buffers (no I/O, no
 * clock), shared by the receiver (src/target/apply.c), the console side and every
 * transport. The wire format is specified in src/PROTOCOL.md.
 *
 * Frame: 12-byte header then payload, all integers big-endian:
 *   u32 payload_len | u8 type | u8 flags | u16 reserved (0) | u32 id
 * payload_len <= DS_PROTO_MAX_PAYLOAD. Strings are u16 length + bytes (no
 * NUL inside, <= DS_PROTO_STR_MAX); hashes are 32 raw bytes.
 *
 * Decoded messages borrow from the input buffer: every pointer in a
 * ds_msg_t stays valid as long as the buffer passed to ds_proto_decode().
 */
#ifndef DISTSYNC_PROTO_H
#define DISTSYNC_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/digest.h"
#include "distsync/error.h"

#define DS_PROTO_MAGIC          0x44534150u /* "DSAP" */
#define DS_PROTO_VERSION_MIN    1
#define DS_PROTO_VERSION_MAX    6
#define DS_PROTO_VERSION_ADOPT  2 /* first version with ADOPT */
#define DS_PROTO_VERSION_ZPATCH 3 /* first version with zpatch DELTA runs */
#define DS_PROTO_VERSION_COND   4 /* packed MANIFEST_DATA/LIST_DATA, *_SAME */
#define DS_PROTO_VERSION_BSDIFF 5 /* zpatch stream version 2 (BSDIFF records) */
#define DS_PROTO_VERSION_ONE    6 /* FILE_ONE: a whole file in one frame */
#define DS_PROTO_HDR_LEN        12
#define DS_PROTO_MAX_PAYLOAD    (8u << 20)                    /* 8 MiB */
#define DS_PROTO_MAX_DATA       (DS_PROTO_MAX_PAYLOAD - 8192) /* data bytes in one frame */
#define DS_PROTO_STR_MAX        4096
#define DS_PROTO_MAX_FILE       (1ull << 40) /* 1 TiB: largest declared file size */
#define DS_PROTO_NO_MTIME       INT64_MIN    /* FILE_BEGIN: leave the mtime alone */

/* Frame flags. */
#define DS_PROTO_F_MORE  0x01 /* a streamed reply continues in the next frame */
#define DS_PROTO_F_FATAL 0x02 /* ERR: the session is over */
/* Version 4, MANIFEST_DATA and LIST_DATA only: the payload is packed
 * (u8 comp, u32 raw_len, data), see ds_proto_pack(). */
#define DS_PROTO_F_PACKED 0x04

/* Compression of LITERAL/DELTA data. */
/* FILE_ONE kinds: its data is the whole file (LITERAL), or a whole delta
 * stream against the target file at its own path, or at basis. */
#define DS_PROTO_ONE_LITERAL    0
#define DS_PROTO_ONE_DELTA_SELF 1
#define DS_PROTO_ONE_DELTA_FROM 2

#define DS_PROTO_COMP_NONE 0
#define DS_PROTO_COMP_ZSTD 1

/* LEASE operations. */
#define DS_LEASE_OP_ACQUIRE 1
#define DS_LEASE_OP_RENEW   2
#define DS_LEASE_OP_RELEASE 3

/* LIST entry types. */
#define DS_PROTO_T_FILE    1
#define DS_PROTO_T_DIR     2
#define DS_PROTO_T_SYMLINK 3
#define DS_PROTO_T_OTHER   4

typedef enum ds_msg_type {
    /* console -> agent */
    DS_MSG_HELLO = 0x01,
    DS_MSG_LEASE = 0x02,
    DS_MSG_MANIFEST_GET = 0x03,
    DS_MSG_LIST = 0x04,
    DS_MSG_HASH = 0x05,
    DS_MSG_SIG = 0x06, /* librsync signature of a target file (rsync fallback) */
    DS_MSG_FILE_BEGIN = 0x10,
    DS_MSG_COPY = 0x11,
    DS_MSG_LITERAL = 0x12,
    DS_MSG_DELTA = 0x13,
    DS_MSG_DELTA_END = 0x14,
    DS_MSG_FILE_COMMIT = 0x15,
    DS_MSG_FILE_ABORT = 0x16,
    DS_MSG_ADOPT = 0x17,    /* version 2: record a matching target file in place */
    DS_MSG_FILE_ONE = 0x18, /* version 6: FILE_BEGIN, one data frame, FILE_COMMIT */
    DS_MSG_DELETE = 0x20,
    DS_MSG_MANIFEST_COMMIT = 0x21,
    DS_MSG_BYE = 0x3f,
    /* agent -> console */
    DS_MSG_HELLO_OK = 0x81,
    DS_MSG_LEASE_OK = 0x82,
    DS_MSG_BUSY = 0x83,
    DS_MSG_MANIFEST_DATA = 0x84,
    DS_MSG_LIST_DATA = 0x85,
    DS_MSG_HASH_OK = 0x86,
    DS_MSG_FILE_OK = 0x87,
    DS_MSG_FILE_ERR = 0x88,
    DS_MSG_OK = 0x89,
    DS_MSG_ERR = 0x8a,
    DS_MSG_SIG_DATA = 0x8b,
    DS_MSG_MANIFEST_SAME = 0x8c, /* version 4: the manifest hashes as the console's */
    DS_MSG_LIST_SAME = 0x8d,     /* version 4: the listing hashes as the console's */
    DS_MSG_FILE_DONE = 0x8e,     /* version 6: FILE_ONE committed (FILE_OK without echoes) */
} ds_msg_type_t;

/* A borrowed string: n bytes at p, not NUL-terminated. */
typedef struct ds_pstr {
    const char *p;
    uint16_t n;
} ds_pstr_t;

/* One LIST_DATA entry. */
typedef struct ds_list_entry {
    ds_pstr_t path;
    uint8_t type; /* DS_PROTO_T_* */
    uint64_t size;
    int64_t mtime_ns;
    uint32_t mode;
} ds_list_entry_t;

typedef struct ds_msg {
    uint8_t type;  /* ds_msg_type_t */
    uint8_t flags; /* DS_PROTO_F_* */
    uint32_t id;   /* request id; a reply carries its request's id */
    union {
        struct {
            uint32_t magic;
            uint16_t min_version, max_version;
            ds_pstr_t console_id, software;
        } hello;
        struct {
            uint16_t version;
            ds_pstr_t software;
            uint32_t max_payload, max_open_files;
        } hello_ok;
        struct {
            uint8_t op;
            ds_pstr_t console_id;
            uint32_t pid;
            ds_pstr_t host;
            uint32_t ttl_s;
        } lease;
        struct {
            int64_t expiry; /* unix seconds */
            uint32_t tmp_cleaned;
        } lease_ok;
        struct {
            ds_pstr_t console_id;
            uint32_t pid;
            ds_pstr_t host;
            int64_t expiry;
            ds_pstr_t message;
        } busy;
        struct {
            ds_pstr_t path; /* LIST: directory ("" = root); HASH, DELETE: file */
            /* LIST and MANIFEST_GET (version 4): the SHA-256 of the bytes
             * the console holds, when has_known */
            int has_known;
            uint8_t known[DS_SHA256_LEN];
        } path;
        struct {
            ds_pstr_t path;
            uint32_t block_len; /* signature block length, bytes */
            uint8_t strong_len; /* strong sum bytes per block */
        } sig;
        struct {
            uint32_t file_id;
            ds_pstr_t path;
            uint64_t size;
            uint32_t mode;
            int64_t mtime_ns; /* DS_PROTO_NO_MTIME: not set */
        } begin;
        struct {
            uint32_t file_id;
            ds_pstr_t basis;
            uint64_t offset, length;
        } copy;
        struct {
            ds_pstr_t path;
            uint64_t size;
            int64_t mtime_ns; /* DS_PROTO_NO_MTIME: leave */
            uint8_t sha256[DS_SHA256_LEN];
        } adopt;
        struct {
            uint32_t file_id;
            ds_pstr_t basis; /* DELTA only */
            uint8_t comp;
            uint32_t raw_len; /* bytes after decompression */
            const uint8_t *data;
            uint32_t data_len;
        } data; /* LITERAL and DELTA */
        struct {
            ds_pstr_t path;
            uint64_t size;
            uint32_t mode;
            int64_t mtime_ns; /* DS_PROTO_NO_MTIME: not set */
            uint8_t kind;     /* DS_PROTO_ONE_* */
            ds_pstr_t basis;  /* DS_PROTO_ONE_DELTA_FROM only */
            uint8_t sha256[DS_SHA256_LEN];
            uint8_t comp;
            uint32_t raw_len;
            const uint8_t *data;
            uint32_t data_len;
        } one; /* FILE_ONE (version 6) */
        struct {
            uint32_t file_id; /* DELTA_END, FILE_ABORT */
        } file;
        struct {
            uint32_t file_id;
            uint64_t size;
            uint8_t sha256[DS_SHA256_LEN];
        } commit;
        struct {
            const uint8_t *data;
            uint32_t len;
        } blob; /* MANIFEST_DATA, SIG_DATA */
        struct {
            uint32_t n;
            const uint8_t *entries; /* walk with ds_proto_list_next() */
            uint32_t len;
        } list;
        struct {
            uint8_t comp;     /* DS_PROTO_COMP_* */
            uint32_t raw_len; /* payload bytes after decompression */
            const uint8_t *data;
            uint32_t data_len;
        } packed; /* flags & DS_PROTO_F_PACKED */
        struct {
            uint8_t sha256[DS_SHA256_LEN]; /* of the bytes found the same */
        } same;                            /* MANIFEST_SAME, LIST_SAME */
        struct {
            ds_pstr_t path;
            uint64_t size;
            int64_t mtime_ns;
            uint8_t sha256[DS_SHA256_LEN];
        } hash_ok;
        struct {
            uint32_t file_id;
            uint64_t size;
            int64_t mtime_ns;
            uint8_t sha256[DS_SHA256_LEN];
        } file_ok; /* FILE_OK; FILE_DONE carries mtime_ns only */
        struct {
            uint32_t file_id; /* FILE_ERR only */
            int32_t code;     /* DS_E* or -errno (Linux numbering) */
            ds_pstr_t path, message;
        } err; /* FILE_ERR and ERR */
        struct {
            uint64_t value;
        } ok;
    } u;
} ds_msg_t;

/* Growable output buffer. Zero-initialise; ds_proto_buf_free() releases. */
typedef struct ds_proto_buf {
    uint8_t *p;
    size_t len, cap;
} ds_proto_buf_t;

/* Ensures room for n more bytes. Returns 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds_proto_buf_reserve(ds_proto_buf_t *b, size_t n);
/* Appends n bytes. Returns 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds_proto_buf_append(ds_proto_buf_t *b, const void *p, size_t n);
/* Drops the first n bytes (n <= len). */
void ds_proto_buf_consume(ds_proto_buf_t *b, size_t n);
void ds_proto_buf_free(ds_proto_buf_t *b);

/* Builds a ds_pstr_t from a C string (truncated at DS_PROTO_STR_MAX). */
ds_pstr_t ds_pstr(const char *s);

/*
 * Looks for one complete frame at the start of buf.
 * Returns the frame's total length (> 0) when complete, 0 when more bytes are
 * needed, DS_EPROTO when the header is invalid (payload_len over the limit,
 * reserved bits set, unknown type). Never reads past len.
 */
long ds_proto_frame_len(const uint8_t *buf, size_t len);

/*
 * Decodes one complete frame of total length len (as returned by
 * ds_proto_frame_len) into m. Returns 0, DS_EPROTO (malformed payload: wrong
 * length, string with NUL or too long, bad enum value) or DS_EVERSION (HELLO
 * with a bad magic). m borrows from buf.
 */
DS_MUST_CHECK int ds_proto_decode(const uint8_t *buf, size_t len, ds_msg_t *m);

/*
 * Appends the frame for m to out. Fails with DS_ETOOBIG when the payload
 * would exceed DS_PROTO_MAX_PAYLOAD, DS_EPROTO on an unknown type, DS_ENOMEM.
 * On failure out is unchanged.
 */
DS_MUST_CHECK int ds_proto_encode(ds_proto_buf_t *out, const ds_msg_t *m);

/* Appends one LIST_DATA entry to an entries blob (for m->u.list). */
DS_MUST_CHECK int ds_proto_list_put(ds_proto_buf_t *b, const ds_list_entry_t *e);

/*
 * Takes the next entry from a LIST_DATA entries blob, advancing *p and *len.
 * Returns 1 with *e filled, 0 at the end, DS_EPROTO when malformed.
 */
DS_MUST_CHECK int ds_proto_list_next(const uint8_t **p, size_t *len, ds_list_entry_t *e);

/*
 * Version 4 packing of a MANIFEST_DATA or LIST_DATA message m (not packed):
 * appends the frame whose payload is u8 comp, u32 raw_len and m's plain
 * payload, zstd-compressed with zc (a ZSTD_CCtx *) at level when that makes
 * it smaller (comp 1), else as is (comp 0). Returns 0, DS_EPROTO (another
 * type), DS_ETOOBIG (plain payload over DS_PROTO_MAX_DATA) or DS_ENOMEM.
 * On failure out is unchanged.
 */
DS_MUST_CHECK int ds_proto_pack(ds_proto_buf_t *out, const ds_msg_t *m, void *zc, int level);

/* Unpacks packed frames; holds one decompression context and one buffer of
 * at most DS_PROTO_HDR_LEN + DS_PROTO_MAX_DATA bytes. Zero-initialise;
 * ds_proto_unpacker_free() releases. */
typedef struct ds_proto_unpacker {
    void *dctx; /* ZSTD_DCtx */
    ds_proto_buf_t buf;
} ds_proto_unpacker_t;

/*
 * Decodes the plain message packed in m (flags & DS_PROTO_F_PACKED) into
 * *out, which borrows from u until its next call. Decompression never
 * writes more than m's raw_len (<= DS_PROTO_MAX_DATA) bytes: a zstd frame
 * that would produce more, or less, is DS_ECORRUPT. Returns 0, DS_ECORRUPT,
 * DS_EPROTO (the plain payload is malformed) or DS_ENOMEM.
 */
DS_MUST_CHECK int ds_proto_unpack(ds_proto_unpacker_t *u, const ds_msg_t *m, ds_msg_t *out);
void ds_proto_unpacker_free(ds_proto_unpacker_t *u);

/* Static name of a message type ("FILE_BEGIN"), "?" when unknown. */
const char *ds_proto_type_name(uint8_t type);

#endif

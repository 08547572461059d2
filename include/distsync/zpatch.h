/*
 * zpatch: the console's delta format for protocol version 3. The console
 * knows both the basis and the new version, so it compresses the new
 * version with zstd using a range of the basis as a referenced prefix
 * (ZSTD_CCtx_refPrefix) and long-distance matching: matches at any offset,
 * not on block boundaries, which is what survives a rebuilt binary whose
 * every block moved.
 *
 * Stream (all integers big-endian):
 *
 *   header  "DSZP", u8 version = 1, u8 flags = 0, u16 reserved = 0,
 *           u64 target_size
 *   records, each starting with a u8 kind:
 *     1 ZSTD  u64 basis_off, u64 basis_len, u32 raw_len, u32 comp_len,
 *             comp_len bytes: one zstd frame declaring raw_len as its
 *             content size, to be decompressed with basis bytes
 *             [basis_off, basis_off + basis_len) as its prefix;
 *             1 <= raw_len <= DS_ZPATCH_SEG_MAX
 *     2 COPY  u64 basis_off, u64 len: basis bytes copied as they are
 *     3 BSDIFF (stream version 2 only) u64 basis_off, u64 basis_len,
 *             u32 raw_len, u32 ctrl_len, u32 ctrl_comp, u32 extra_len,
 *             u32 extra_comp, u32 diff_comp, u8 diff_codec, then three
 *             parts of ctrl_comp, extra_comp and diff_comp bytes
 *             decompressing to ctrl_len, extra_len and raw_len - extra_len
 *             bytes (a part of 0 bytes has none: its comp length is 0):
 *             zstd frames, but the diff part is one bzip2 stream when
 *             diff_codec is 1 (0: zstd);
 *             1 <= raw_len <= DS_ZPATCH_BS_SEG_MAX, ctrl_len at most
 *             DS_ZPATCH_BS_CTRL_MAX, frames with windows of at most
 *             2^DS_ZPATCH_BS_WINDOW_LOG bytes. ctrl is a sequence of
 *             triples of LEB128 varints (add, extra, seek; seek zigzag-
 *             coded, signed): add bytes, each the next diff byte plus the
 *             basis byte at the position (mod 256; the position starts at
 *             basis_off and advances with it), then extra bytes taken as
 *             they are from the extra part, then the position moves by
 *             seek; it must stay within the basis range. A record ends with
 *             every part consumed exactly.
 *     0 END   the stream ends here; the records produced target_size bytes
 *
 * Stream version 3 (protocol 6) has the records of version 2 with compact
 * framing: the header is "DSZP", u8 version = 3, u8 w (1 to 8), then
 * target_size in w bytes; ZSTD is u8 kind = 1, u8 (high nibble: bytes of
 * basis_off, 0 to 8; low: bytes of basis_len, 0 to 8), u8 (high: bytes of
 * raw_len, 1 to 4; low: bytes of comp_len, 1 to 4), the four fields in
 * those widths (a width of 0 is the value 0), then a zstd frame in the
 * magicless format (ZSTD_f_zstd1_magicless: the frame without its 4-byte
 * magic number); COPY is u8 kind = 2, u8 (high: bytes of basis_off, low:
 * bytes of len, each 0 to 8), the two fields; BSDIFF and END are as in
 * version 2. ds_zpatch_compact rewrites a version 1 or 2 stream so.
 *
 * Stream version 1 (protocol 3 and 4) has records 1, 2 and 0; version 2
 * (protocol 5) adds BSDIFF, which a rebuilt executable rewards: shifted
 * addresses become small byte-wise differences along long alignments
 * (C. Percival's method, src/delta/zpatch_bsdiff.c).
 *
 * A target larger than one segment is split into segments (windows) that
 * each carry their own basis range, so the receiver's memory is bounded by
 * one segment whatever the file size: it reads the basis range (pread, into
 * one buffer of at most DS_ZPATCH_WINDOW bytes) and decompresses through a
 * zstd window of at most raw_len bytes.
 */
#ifndef DISTSYNC_ZPATCH_H
#define DISTSYNC_ZPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/delta.h"
#include "distsync/error.h"

#define DS_ZPATCH_MAGIC   "DSZP"
#define DS_ZPATCH_HDR_LEN 16
/* Target bytes per zstd frame: bounds the receiver's decompression window. */
#define DS_ZPATCH_SEG_MAX (32u << 20)
/* A basis larger than this gives each segment without copied neighbours a
 * window of this size around its proportional position (each frame reloads
 * its prefix into the match finder: the window bounds the CPU per segment). */
#define DS_ZPATCH_WINDOW (DS_ZPATCH_SEG_MAX + (32u << 20))
/* BSDIFF records: target bytes per record, control bytes per record, the
 * largest basis the encoder suffix-sorts (4 bytes of index per basis byte:
 * 128 MiB at most) and the frames' window. */
#define DS_ZPATCH_BS_SEG_MAX    (8u << 20)
#define DS_ZPATCH_BS_CTRL_MAX   (8u << 20)
#define DS_ZPATCH_BS_BASIS_MAX  (32u << 20)
#define DS_ZPATCH_BS_WINDOW_LOG 23
#define DS_ZPATCH_BS_REC_LEN    42 /* kind byte and fields */
#define DS_ZPATCH_BS_ZSTD       0  /* diff_codec values */
#define DS_ZPATCH_BS_BZIP2      1
#define DS_ZPATCH_REC_BSDIFF    3
/* Default zstd level (bytes vs console CPU: README "Delta format"). */
#define DS_ZPATCH_LEVEL_DEFAULT 19
/* The level of a run-now's --fast (README "Delta format": the curve). */
#define DS_ZPATCH_LEVEL_FAST 3
/* A pair whose basis or target is over DS_ZPATCH_WINDOW (windows, not the
 * whole basis, as prefix) is encoded at DS_ZPATCH_LEVEL_BIG at most: level
 * 19 runs at about 0.9 MB/s on a rebuilt file (a 4 GiB rebuild: 80 min of
 * console CPU), level 9 at about 60 MB/s with the same bytes on a 128 MiB
 * rebuild (README "Memory for a 4 GiB file"). */
#define DS_ZPATCH_LEVEL_BIG 9

typedef struct ds_zpatch_stats {
    uint64_t segments;     /* ZSTD records */
    uint64_t copies;       /* COPY records (identical chunks, merged) */
    uint64_t copied_bytes; /* target bytes they cover */
    uint64_t delta_bytes;  /* stream bytes written */
    uint64_t bsdiff;       /* BSDIFF records (0: another candidate won) */
    /* the zstd candidates were first written at a scouting level (3), as
     * BSDIFF was tried too; and the best of them again at the level asked
     * for, as it could still win (src/delta/zpatch.c, SCOUT_LEVEL) */
    int scouted, redone;
    /* the copies were found from the sources' chunk lists, neither source
     * chunked (ds_delta_src_t chunks, DS_ZPATCH_KNOWN_MIN) */
    int known;
} ds_zpatch_stats_t;

/* A target of this size or more whose sources both carry the catalog's
 * chunk lists (ds_delta_src_t chunks) has its copies found from them
 * rather than by chunking it and its basis again (src/delta/zpatch_chunks.c,
 * ds__zp_spans_known), when they cover half of it at least. Smaller files
 * and denser edits keep the encoder's finer chunks (4/16/64 KiB against
 * the catalog's 16/64/256 KiB), which find more copies. */
#define DS_ZPATCH_KNOWN_MIN (16u << 20)

/*
 * Writes the zpatch turning basis into target to out_fd, a regular file,
 * from its position (which it leaves at the end), compressed at zstd level
 * (0: DS_ZPATCH_LEVEL_DEFAULT; at most DS_ZPATCH_LEVEL_BIG for a source over
 * DS_ZPATCH_WINDOW). The smaller of two candidates is kept:
 * identical chunks as COPY records with zstd between them, and (unless the
 * copies cover 90% of the target, or it is 1 MiB or more) zstd over the
 * whole target; both are written, the larger is cut off (ftruncate).
 * basis_sha256 / target_sha256 (NULL: unchecked) are checked as the sources
 * are read (not a verified basis: ds_delta_src_t). When neither is to be
 * checked and both sources carry chunk lists (a target of 16 MiB or more),
 * identical chunks are found from the lists, trusting their XXH3-128
 * without comparing bytes: check such a delta before use (ds_zpatch_check;
 * the delta cache does). st may be NULL. Memory: the basis range (at most
 * DS_ZPATCH_WINDOW), one segment and the compressor's tables.
 * Returns 0, DS_ECHANGED (a source does not match its size or SHA-256), a
 * source's error, -errno from writing, DS_ENOMEM or DS_EDELTA (zstd failed).
 */
DS_MUST_CHECK int ds_zpatch_encode(const ds_delta_src_t *basis, const ds_delta_src_t *target,
                                   int level, const uint8_t *basis_sha256,
                                   const uint8_t *target_sha256, int out_fd, ds_zpatch_stats_t *st);

/* Or'ed into ds_zpatch_encode_v's version: ZSTD records reference no
 * basis range (basis_len 0) and no BSDIFF record is written, so only COPY
 * records read the basis (for a receiver whose basis reads cross the WAN). */
#define DS_ZPATCH_COPY_ONLY 0x100

/*
 * ds_zpatch_encode writing stream version version (1 or 2). Version 2 adds
 * a third candidate when the basis has 1 to DS_ZPATCH_BS_BASIS_MAX bytes
 * and copies cover less than 90% of the target: BSDIFF records over the
 * whole basis; the smallest of the three is kept. Memory: that of
 * ds_zpatch_encode plus 4 bytes per basis byte and 24 MiB.
 */
DS_MUST_CHECK int ds_zpatch_encode_v(const ds_delta_src_t *basis, const ds_delta_src_t *target,
                                     int level, int version, const uint8_t *basis_sha256,
                                     const uint8_t *target_sha256, int out_fd,
                                     ds_zpatch_stats_t *st);

/*
 * Rewrites the zpatch stream in[0, n) (version 1 or 2) as stream version 3
 * (the same records, compact framing: above) into out[0, cap); *out_len is
 * its length. Pure: no I/O, no allocation. The result is at most n bytes
 * unless COPY records have 8-byte offsets and lengths (one byte more each).
 * Returns 0, DS_EDELTA (in is not a complete version 1 or 2 stream: send it
 * as it is) or DS_ETOOBIG (out too small).
 */
DS_MUST_CHECK int ds_zpatch_compact(const uint8_t *in, size_t n, uint8_t *out, size_t cap,
                                    size_t *out_len);

/*
 * Writes to out[0, cap) the stream version 3 that copies all of a basis of
 * size bytes (one COPY record: at most 24 bytes); *out_len is its length.
 * Returns 0 or DS_ETOOBIG.
 */
DS_MUST_CHECK int ds_zpatch_copy_stream(uint64_t size, uint8_t *out, size_t cap, size_t *out_len);

/* Gives read access to [off, off + len) of a basis; *p stays valid until
 * release is called with it. Returns 0 or a negative error. */
typedef struct ds_zpatch_basis {
    int (*get)(void *ctx, uint64_t off, uint64_t len, const void **p);
    void (*release)(void *ctx, const void *p, uint64_t len);
    void *ctx;
    /* Optional: puts COPY record [off, off + len) of the basis into the
     * output without reading it (the receiver's server-side copy). Returns
     * 0 (done), 1 (declined: the decoder reads and writes the range) or a
     * negative error. NULL: never. */
    int (*copy)(void *copy_ctx, uint64_t off, uint64_t len);
    void *copy_ctx;
    uint64_t size;
    /* ds_zpatch_basis_fd's own: the file and its reused read buffer */
    int fd;
    const struct ds_fs *fs; /* fd's filesystem (distsync/fs.h); NULL: POSIX */
    uint8_t *buf;
    size_t cap;
    int busy;
} ds_zpatch_basis_t;

/* A basis reading ranges of fd (borrowed) with pread into one buffer kept
 * between records (never mmap: a file truncated under a mapping raises
 * SIGBUS; here a short read fails the record with DS_ECHANGED). b must stay
 * at its address while in use; free the buffer with ds_zpatch_basis_close. */
void ds_zpatch_basis_fd(ds_zpatch_basis_t *b, int fd, uint64_t size);

/* Frees the read buffer of a ds_zpatch_basis_fd basis (not the fd). NULL is
 * a no-op. */
void ds_zpatch_basis_close(ds_zpatch_basis_t *b);

/* Writes n bytes of output. Returns 0 or a negative error (which stops the
 * decoder and is returned by ds_zpatch_dec_feed). */
typedef int (*ds_zpatch_out_fn)(void *ctx, const uint8_t *p, size_t n);

typedef struct ds_zpatch_dec ds_zpatch_dec_t;

/* Creates a decoder of one stream against basis (borrowed: must outlive the
 * decoder) writing through out. Returns 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds_zpatch_dec_new(const ds_zpatch_basis_t *basis, ds_zpatch_out_fn out,
                                    void *out_ctx, ds_zpatch_dec_t **d);

/* The highest stream version d accepts (1 to 3; 3 unless set): a version 3
 * or 4 receiver allows 1 only, a version 5 receiver 2. */
void ds_zpatch_dec_max_version(ds_zpatch_dec_t *d, int version);

/* Frees a decoder (and any basis range it holds). NULL is a no-op. */
void ds_zpatch_dec_free(ds_zpatch_dec_t *d);

/*
 * Feeds the next n bytes of the stream (any slicing). Memory stays bounded
 * whatever the bytes say: one segment's window, 256 KiB of output buffer.
 * Returns 0; DS_EDELTA (malformed: bad header, unknown record, a frame
 * without its content size, bytes after END), DS_ERANGE (a range outside
 * the basis), DS_ETOOBIG (more output than declared), DS_ECORRUPT (zstd
 * refused the data, or it decompressed to another length), or the error of
 * out / the basis. After an error every call returns it again;
 * ds_zpatch_dec_error says why.
 */
DS_MUST_CHECK int ds_zpatch_dec_feed(ds_zpatch_dec_t *d, const uint8_t *p, size_t n);

/* Ends the stream. Returns 0 when it ended with END having produced
 * exactly its target size, else DS_EDELTA (truncated) or the earlier error. */
DS_MUST_CHECK int ds_zpatch_dec_finish(ds_zpatch_dec_t *d);

/* Why the decoder failed ("" if it did not). Valid until the next call. */
const char *ds_zpatch_dec_error(const ds_zpatch_dec_t *d);

/* The target size its header declared (0 before the header). */
uint64_t ds_zpatch_dec_target_size(const ds_zpatch_dec_t *d);

/*
 * Applies the zpatch in delta_fd (delta_size bytes from offset 0) to basis
 * and checks the result's size and SHA-256 without storing it.
 * Returns 0, DS_EHASH on a mismatch, or the decoder's error.
 */
DS_MUST_CHECK int ds_zpatch_check(const ds_delta_src_t *basis, int delta_fd, uint64_t delta_size,
                                  uint64_t target_size, const uint8_t target_sha256[DS_SHA256_LEN]);

#endif

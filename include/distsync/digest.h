/*
 * Digests: XXH3-128 for chunk identity (fast, not collision-resistant
 * against an adversary, so never the only check) and SHA-256 for whole-file
 * integrity (OpenSSL libcrypto, SHA-NI when the CPU has it).
 */
#ifndef DISTSYNC_DIGEST_H
#define DISTSYNC_DIGEST_H

#include <stddef.h>
#include <stdint.h>
#include "distsync/error.h"

#define DS_XXH128_LEN 16
#define DS_SHA256_LEN 32

/* Incremental SHA-256. Embed it; ds_sha256_close() is safe on any state. */
typedef struct ds_sha256 {
    void *md; /* EVP_MD_CTX, owned */
} ds_sha256_t;

/* Returns 0, or DS_ENOMEM. On failure s is left closed. */
DS_MUST_CHECK int ds_sha256_init(ds_sha256_t *s);
void ds_sha256_update(ds_sha256_t *s, const void *p, size_t n);
/* Writes the digest and releases the context (close is then a no-op). */
void ds_sha256_final(ds_sha256_t *s, uint8_t out[DS_SHA256_LEN]);
void ds_sha256_close(ds_sha256_t *s);
/* One-shot SHA-256 of a buffer. Returns 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds_sha256(const void *p, size_t n, uint8_t out[DS_SHA256_LEN]);

/* XXH3-128 of a buffer in canonical (big-endian) byte order: its hex form
 * equals what `xxhsum -H2` prints. */
void ds_xxh128(const void *p, size_t n, uint8_t out[DS_XXH128_LEN]);

/* Lower-case hex of n bytes into out, which must hold 2n+1 chars. */
void ds_hex(const uint8_t *p, size_t n, char *out);
/* Parses exactly 2n hex chars (case-insensitive, NUL-terminated) into out.
 * Returns 0 or DS_ECORRUPT. */
DS_MUST_CHECK int ds_unhex(const char *s, uint8_t *out, size_t n);

#endif

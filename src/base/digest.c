/* Digest primitives: XXH3-128 chunk identity and SHA-256 file integrity. */
#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "distsync/digest.h"
#include "distsync/error.h"

/* The SHA-256 implementation, fetched once: EVP_sha256() makes every
 * EVP_DigestInit_ex() look the provider up again (under a lock), which
 * costs about as much as hashing a 1 KB file. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

int ds_sha256_init(ds_sha256_t *s)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    const EVP_MD *type;

    s->md = NULL;
    if (md == NULL)
        return DS_ENOMEM;
    pthread_once(&sha256_once, fetch_sha256);
    type = sha256_md != NULL ? sha256_md : EVP_sha256();
    if (EVP_DigestInit_ex(md, type, NULL) != 1) {
        EVP_MD_CTX_free(md);
        return DS_ENOMEM;
    }
    s->md = md;
    return 0;
}

void ds_sha256_update(ds_sha256_t *s, const void *p, size_t n)
{
    EVP_DigestUpdate(s->md, p, n);
}

void ds_sha256_final(ds_sha256_t *s, uint8_t out[DS_SHA256_LEN])
{
    unsigned int len = DS_SHA256_LEN;

    EVP_DigestFinal_ex(s->md, out, &len);
    ds_sha256_close(s);
}

void ds_sha256_close(ds_sha256_t *s)
{
    EVP_MD_CTX_free(s->md);
    s->md = NULL;
}

int ds_sha256(const void *p, size_t n, uint8_t out[DS_SHA256_LEN])
{
    ds_sha256_t s;
    int rc = ds_sha256_init(&s);

    if (rc < 0)
        return rc;
    ds_sha256_update(&s, p, n);
    ds_sha256_final(&s, out);
    return 0;
}

void ds_xxh128(const void *p, size_t n, uint8_t out[DS_XXH128_LEN])
{
    XXH128_canonical_t c;

    XXH128_canonicalFromHash(&c, XXH3_128bits(p, n));
    memcpy(out, c.digest, DS_XXH128_LEN);
}

void ds_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ds_unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi, lo;

        if (s[2 * i] == '\0' || s[2 * i + 1] == '\0')
            return DS_ECORRUPT;
        hi = nibble(s[2 * i]);
        lo = nibble(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return DS_ECORRUPT;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return s[2 * n] == '\0' ? 0 : DS_ECORRUPT;
}

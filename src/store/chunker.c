/*
 * Content-defined chunker: FastCDC-style gear hash with normalized chunking.
 * The cut rule is documented in include/distsync/chunker.h; it is part of
 * the identity of every stored chunk, so neither the table nor the rule may
 * change once released (tests/unit/test_chunker.c pins both).
 */
#include "distsync/chunker.h"
#include "distsync/error.h"

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Bytes hashed before the first candidate cut: the gear hash window. */
#define WINDOW 64u

/* splitmix64 outputs 0..255, seed 0x6469737473796e63 ("distsync").
 * Regenerate with: s += 0x9e3779b97f4a7c15; z = s;
 * z = (z ^ z >> 30) * 0xbf58476d1ce4e5b9; z = (z ^ z >> 27) * 0x94d049bb133111eb;
 * out = z ^ z >> 31. */
static const uint64_t gear[256] = {
    0xc3989cc0b520b430ULL, 0x334fbaeb0e6977b5ULL, 0x01b7a8bdbd47bd9cULL, 0x221375d08559f596ULL,
    0x0eb592b78075d3cfULL, 0x921f5ccf17a7262eULL, 0x7d493306d5b1308eULL, 0x811338b6d9444b96ULL,
    0x7f1d9690419962ceULL, 0x05f8d489e130a030ULL, 0x6d1afd49ccd78451ULL, 0x6b96d128945bb1feULL,
    0x43ff8094a480e261ULL, 0x0a9bb0a7d9bc3b2fULL, 0xeef470f7bebd5e18ULL, 0x752bbb9aab752a23ULL,
    0x82655c7f937ab401ULL, 0x4280764a7add8c90ULL, 0x7eb405c27fdcaee0ULL, 0xc3ce3c9c9c37ec21ULL,
    0x3cb9308d1d84e095ULL, 0xf74b09b28fd10b40ULL, 0x5e3064552da08fc1ULL, 0x86d806a1828e5331ULL,
    0x2195483be110f131ULL, 0x9710e459377cb1d4ULL, 0x06e0b34f96a6f994ULL, 0xda5717fb452c8c25ULL,
    0xae6687c5d57740fcULL, 0x60bed38f6d1e3af0ULL, 0xc52ebc78ea681801ULL, 0x3dbaaac8658bb301ULL,
    0x4762d3563ec61cb5ULL, 0xf1429f9d8fc7ec43ULL, 0x47559a29c6b2dfe0ULL, 0x3abcdf40f9241b29ULL,
    0x139d7b9c7fdac704ULL, 0xbabfab1453f50b86ULL, 0xe47358ac440a2083ULL, 0x12385dc4da17544fULL,
    0xcdce36a032625351ULL, 0xf07fca1ed5f7d544ULL, 0x3f2c259ed68c3445ULL, 0x9dd5db9574f3adbcULL,
    0xdf6fa782cbd0ee69ULL, 0xdc17923c74f41825ULL, 0x952bc1519c3c2fc5ULL, 0x5712fa656ed9c048ULL,
    0x73709262af925cf1ULL, 0x2780496311175641ULL, 0x68853323f26e3dbfULL, 0xbc6a172d13f6b151ULL,
    0x5f2b0c5bb253acbaULL, 0x64f8871f29cfd2deULL, 0x4fdaccf745794870ULL, 0xc570aea8df47a8d4ULL,
    0x4eb9286e930928f1ULL, 0x839969098246b50aULL, 0xa84b2b97962ee919ULL, 0xdb2fa3a17fd83e24ULL,
    0xa332572beedcb22eULL, 0x6e6f79d8ef017b91ULL, 0xb4f16228f2c4b98bULL, 0xbd3c7cc7131446e7ULL,
    0x4ec13edb4f6928d5ULL, 0x3016dc838483c06eULL, 0xe04573a703a03da2ULL, 0x1639e88d8e72758cULL,
    0x40b71f294b14238cULL, 0xf53e1826e3b2b477ULL, 0x3f23ac0d7279956fULL, 0x1943be4d3e1e019cULL,
    0x247ff70fe10ccdeaULL, 0x3205ae6823675c51ULL, 0xac9f3f1de7954bf2ULL, 0xfdbfaca6ae3941fcULL,
    0x68c5154d97211452ULL, 0xc6bc3fa7cc6933d3ULL, 0x021daac4762cbe7cULL, 0xf3bf6c7197619772ULL,
    0x749789cbbfa303e0ULL, 0x1bbf7b9fdc3d97cbULL, 0x751097155620a9d5ULL, 0x55b1d17b18eb9ffcULL,
    0xb20e75a1bd23f20dULL, 0xa0901de7e51072c4ULL, 0x804c13c7d542ea3bULL, 0x2353273adde6c7e2ULL,
    0x1e644baac3755941ULL, 0x8e43b017dfcf7c38ULL, 0xf1a9c0e129b02219ULL, 0x416d49524cd4a50eULL,
    0x8ef0db196cfd373bULL, 0x5ee137907876a6ccULL, 0xf8b2766983fe688bULL, 0x2b04036b95f63045ULL,
    0x42591925d2fb8cd1ULL, 0x6a074a74cea34f0aULL, 0xb86ee236a4686b75ULL, 0xb550d5ce9f15acd0ULL,
    0x75aac85b6c895115ULL, 0x3464180b9242ea51ULL, 0x8ba8421754ac3267ULL, 0xb8e945ad17d128b8ULL,
    0x5f8b7cacd37a3844ULL, 0x9d3e9bbe392c0324ULL, 0x483f1e386aed68daULL, 0x3679d16eaf73f674ULL,
    0xb88990342521a816ULL, 0xfa2209c3bf817f2cULL, 0x29a801fa9ba2734eULL, 0xf84dc145990cd1c4ULL,
    0xb4e9d3c8d78b36eaULL, 0x7681e1c9fd933a01ULL, 0x225532b71c00441dULL, 0x8bf2bdfaeb1a0140ULL,
    0x62a82e1a2111a611ULL, 0x3630a85258eb90d7ULL, 0xc899a2f1664d8903ULL, 0x18e5521f91cd66d8ULL,
    0xadec06da25b9d9dcULL, 0x6c3d881652c843daULL, 0xded1a09de73a127cULL, 0xa8fd4c67653f0343ULL,
    0x8fa907d181d87f6cULL, 0x09c753c858270093ULL, 0xe7f3ff28431b2a65ULL, 0xcdafd45a69853110ULL,
    0xc9ad8dc2091e7c27ULL, 0x236bcc1dfda2dd8aULL, 0xc304936e44e79e2fULL, 0xb7f77e1c457c9b72ULL,
    0xd356c842da56fde1ULL, 0xa1267d5831980944ULL, 0x33facc96a86e995cULL, 0x8239382da4c55536ULL,
    0xf50e4cf384d490a4ULL, 0x8a13edf7313ce2ecULL, 0xa94396f57d15bcb8ULL, 0x622a35263198fe63ULL,
    0x254b2dffeab47d47ULL, 0x5b8048e5797a62c2ULL, 0x1d4e4478104ad1dcULL, 0x14143ba736f0954bULL,
    0x97ad8ad2cc3f88baULL, 0xbd767f30a345d56fULL, 0x6d55e89f59cec98eULL, 0xc5a9f3215de27d87ULL,
    0xa1ea50bcba4d78f0ULL, 0x9f1afa84c05731ffULL, 0x84be8992ca7aa4c4ULL, 0x9b7e2760f5cd8250ULL,
    0xf0465e1be71f1f1cULL, 0x9612d6bb8f7c8bb5ULL, 0x2cb2a13cf4613726ULL, 0x1c22f3afa6f5403cULL,
    0xca5b452b1ce686e2ULL, 0x28c83161f20eb7fdULL, 0x172a8b25d6dccd86ULL, 0xcfbb30df941d1f8dULL,
    0x73781f39bb4ed510ULL, 0x209c3394bd4f0257ULL, 0x27003cb76c12c028ULL, 0xa4c3000dfd167773ULL,
    0x557b0ef1872aaef3ULL, 0x0db8bde913bcdc3bULL, 0x4ab4403ddf88f633ULL, 0xb228354f583fd490ULL,
    0xb96694dbbc7a9d79ULL, 0xf196d2d833261326ULL, 0x48370f2350b86e2fULL, 0x67b7961e3a68468fULL,
    0xb968138cc4660172ULL, 0x5bc2c18de0576b56ULL, 0xadee50289d9eaa7fULL, 0x730dea3584b0a1d2ULL,
    0x2e1a2b686caf6cedULL, 0x36e6078c054304c1ULL, 0x1380c9f6c23723d3ULL, 0x3ab15b0890c065e0ULL,
    0x9a7ca4c91d5a37d5ULL, 0xffca1b89aa50891bULL, 0x76679b6a46907c5dULL, 0x76c37bde5b4a4d53ULL,
    0xe49fbbf1ebeacf42ULL, 0x24538fdc0af52c1aULL, 0x5229cb858aa0c1f9ULL, 0x4cdf2821253af095ULL,
    0xc3d2248cf4906f82ULL, 0x5fafe6467c83128dULL, 0xe12410b11cc9ce8aULL, 0x79edc726ed8dfff2ULL,
    0x7103f96a3f968a7dULL, 0x616455d95e7a99ceULL, 0x8ccd40e5c8f93342ULL, 0x0ab6013fe55c9cd7ULL,
    0x59e212ed2a374dc7ULL, 0xb8fc490431da00eaULL, 0x21621c1157bed027ULL, 0x15a80d5a303c6a09ULL,
    0xea3f65bd3151edeaULL, 0x9281221104064f89ULL, 0xff64835264c4b3fdULL, 0x30f2e5a5e38a86a7ULL,
    0x8ba503345ec51116ULL, 0xcb2fda11c550c37aULL, 0x317ace627646722dULL, 0xcb754e8980a0129dULL,
    0x3db37c3044590ba0ULL, 0x8311cbdfb8256fe2ULL, 0x3db734e3bb0a803cULL, 0x5b371b7adb878effULL,
    0xfcd72eea87e86f19ULL, 0xcc016193dab8eaffULL, 0xce97b4513d2315f8ULL, 0xff9fd3ef6a987f49ULL,
    0x5234fa11c980d799ULL, 0x1f20b45a5ac2eed9ULL, 0x6cd1c9b55ff0e883ULL, 0xdf5ce63399bf3430ULL,
    0xece9e47b10c848e0ULL, 0x54eeda3c02ea8ba1ULL, 0x3330ed2470369a54ULL, 0x0f683de67f3f2d03ULL,
    0xab42895e6729dea9ULL, 0xa4deee12b8ebd79bULL, 0x17c6fb2f8f7588e8ULL, 0x0f3233287e7bec8dULL,
    0xb14ffc7a2f564ad6ULL, 0x4d2d11aaa9c28d5fULL, 0x115723d5974d93a0ULL, 0x140c67e0144c0d86ULL,
    0x24063e6d7d5fa1c8ULL, 0x9e909bba7ed5f105ULL, 0x25c30b873e3bc060ULL, 0xf638769332f55f7dULL,
    0xb3a98a31968930b9ULL, 0xea7cb5c32b206bb7ULL, 0x1724f08af1002b85ULL, 0xd01adf073dfa524aULL,
    0xa1fb566dc1b70629ULL, 0x1ecaa2732c383d0cULL, 0x88671e67bd9578caULL, 0x285fc186ba43c69eULL,
    0x844b1d80f3506318ULL, 0xf76022349d7bcc13ULL, 0xf6a2fde843b37311ULL, 0x930c1ce2bccd0796ULL,
    0x970b522ff9349956ULL, 0x7ccc94fd6c819373ULL, 0xd67103467f19b743ULL, 0xcbec97a8682c4556ULL,
    0xc9fc55e0b7b37441ULL, 0xa95a467640b52c62ULL, 0x48c233895e57cbb9ULL, 0x427bfffa41c01f81ULL,
};

const uint64_t *ds__chunker_gear(void)
{
    return gear;
}

static unsigned log2u(uint32_t v)
{
    unsigned b = 0;

    while (v >>= 1)
        b++;
    return b;
}

int ds_chunker_init(ds_chunker_t *c, const ds_chunker_params_t *params)
{
    ds_chunker_params_t def = {DS_CHUNK_MIN_DEFAULT, DS_CHUNK_AVG_DEFAULT, DS_CHUNK_MAX_DEFAULT};
    const ds_chunker_params_t *p = params ? params : &def;
    unsigned bits;

    if (p->min_size < DS_CHUNK_MIN_LIMIT || p->min_size > p->avg_size ||
        p->avg_size > p->max_size || p->max_size > DS_CHUNK_MAX_LIMIT ||
        (p->avg_size & (p->avg_size - 1)) != 0)
        return DS_ERANGE;
    bits = log2u(p->avg_size); /* 6..26, so both shifts below are in range */
    c->min_size = p->min_size;
    c->avg_size = p->avg_size;
    c->max_size = p->max_size;
    c->mask_s = ~0ULL << (64 - (bits + 2));
    c->mask_l = ~0ULL << (64 - (bits - 2));
    ds_chunker_reset(c);
    return 0;
}

void ds_chunker_reset(ds_chunker_t *c)
{
    c->hash = 0;
    c->pos = 0;
}

/* Rolls p[0, n) into *hp without looking for a cut. */
static void warm(uint64_t *hp, const uint8_t *p, size_t n)
{
    uint64_t h = *hp;

    for (size_t i = 0; i < n; i++)
        h = (h << 1) + gear[p[i]];
    *hp = h;
}

/*
 * Rolls p[0, n) into *hp and stops after the first byte whose hash has no bit
 * of mask set. Returns that byte's index + 1, or 0 if there is none (then
 * all n bytes were rolled).
 */
static size_t scan1(uint64_t *hp, const uint8_t *p, size_t n, uint64_t mask)
{
    uint64_t h = *hp;

    for (size_t i = 0; i < n; i++) {
        h = (h << 1) + gear[p[i]];
        if (unlikely(!(h & mask))) {
            *hp = h;
            return i + 1;
        }
    }
    *hp = h;
    return 0;
}

/* Lanes scanned side by side; spans handed to scan_lanes(). A lane starts
 * with WINDOW bytes of warm-up, and on a hit the lanes after the one that
 * hit have been rolled for nothing: ~2 KiB lanes balance the two. */
#define LANES      4
#define LANES_MIN  (LANES * 256u)
#define LANES_SPAN (LANES * 2048u)

/*
 * scan1() over a long span, split into LANES lanes of seg bytes (the last
 * lane also takes the n - LANES * seg tail) that are rolled side by side:
 * one rolling hash is a serial chain of one shift-add per byte, so
 * independent lanes keep the core busy while each chain waits (1.15 ->
 * 0.72 cycles per byte on EPYC, bench_chunk). Lanes 1.. start from a
 * hash of the WINDOW bytes before them, which equals the running hash there
 * since a gear hash forgets a byte after 64 shifts; so results, including
 * *hp, are exactly those of scan1(). When lane s hits at step i, the lanes
 * before it (which had no hit up to step i) are finished first: an earlier
 * lane's later hit is still the first cut.
 */
static size_t scan_lanes(uint64_t *hp, const uint8_t *p, size_t n, uint64_t mask)
{
    const size_t seg = n / (2 * LANES) * 2; /* even: the loop takes two steps */
    const uint8_t *q0 = p, *q1 = p + seg, *q2 = p + 2 * seg, *q3 = p + 3 * seg;
    uint64_t h0 = *hp, h1 = 0, h2 = 0, h3 = 0, hs[LANES];
    size_t i, r;
    int s;

    for (i = WINDOW; i > 0; i--) {
        h1 = (h1 << 1) + gear[q1[-(ptrdiff_t)i]];
        h2 = (h2 << 1) + gear[q2[-(ptrdiff_t)i]];
        h3 = (h3 << 1) + gear[q3[-(ptrdiff_t)i]];
    }
#define STEP(h, q, lane)                                                                           \
    h = (h << 1) + gear[q[i]];                                                                     \
    if (unlikely(!(h & mask))) {                                                                   \
        s = lane;                                                                                  \
        goto hit;                                                                                  \
    }
    for (i = 0; i < seg; i++) {
        STEP(h0, q0, 0);
        STEP(h1, q1, 1);
        STEP(h2, q2, 2);
        STEP(h3, q3, 3);
        i++;
        STEP(h0, q0, 0);
        STEP(h1, q1, 1);
        STEP(h2, q2, 2);
        STEP(h3, q3, 3);
    }
#undef STEP
    r = scan1(&h3, q3 + seg, n - LANES * seg, mask);
    *hp = h3;
    return r ? LANES * seg + r : 0;
hit:
    hs[0] = h0, hs[1] = h1, hs[2] = h2, hs[3] = h3;
    for (int k = 0; k < s; k++) {
        r = scan1(&hs[k], p + (size_t)k * seg + i + 1, seg - i - 1, mask);
        if (r) {
            *hp = hs[k];
            return (size_t)k * seg + i + 1 + r;
        }
    }
    *hp = hs[s];
    return (size_t)s * seg + i + 1;
}

/* scan1() in spans of LANES_SPAN (the last one up to twice that) split
 * into lanes; a tail shorter than LANES_MIN is rolled alone. */
static size_t scan(uint64_t *hp, const uint8_t *p, size_t n, uint64_t mask)
{
    size_t off = 0, k, r;

    while (n - off >= LANES_MIN) {
        k = n - off >= 2 * LANES_SPAN ? LANES_SPAN : n - off;
        r = scan_lanes(hp, p + off, k, mask);
        if (r)
            return off + r;
        off += k;
    }
    r = scan1(hp, p + off, n - off, mask);
    return r ? off + r : 0;
}

static size_t min_sz(uint64_t a, size_t b)
{
    return a < b ? (size_t)a : b;
}

/* Consumes up to `end - pos` bytes of the region ending at chunk offset end,
 * scanning with mask. Returns 1 if a cut was found; *i and c->pos advance. */
static int region(ds_chunker_t *c, const uint8_t *p, size_t len, size_t *i, uint64_t end,
                  uint64_t mask)
{
    size_t k, r;

    if (c->pos >= end)
        return 0;
    k = min_sz(end - c->pos, len - *i);
    r = scan(&c->hash, p + *i, k, mask);
    k = r ? r : k;
    *i += k;
    c->pos += k;
    return r != 0;
}

size_t ds_chunker_next(ds_chunker_t *c, const void *buf, size_t len, int *cut)
{
    const uint8_t *p = buf;
    uint64_t hstart = c->min_size - WINDOW, k;
    size_t i = 0;

    *cut = 0;
    if (c->pos < hstart) {
        k = min_sz(hstart - c->pos, len);
        i += k;
        c->pos += k;
    }
    /* Bytes at offsets [min - 64, min - 1): hashed, never a cut. */
    if (c->pos >= hstart && c->pos < c->min_size - 1u) {
        k = min_sz(c->min_size - 1u - c->pos, len - i);
        warm(&c->hash, p + i, k);
        i += k;
        c->pos += k;
    }
    if (c->pos < c->min_size - 1u)
        return i;
    /* Candidate lengths L = pos + 1: strict while L <= avg, loose up to max. */
    if (region(c, p, len, &i, c->avg_size, c->mask_s) ||
        region(c, p, len, &i, c->max_size, c->mask_l) || c->pos == c->max_size) {
        *cut = 1;
        ds_chunker_reset(c);
    }
    return i;
}

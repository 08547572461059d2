/*
 * libFuzzer target for the chunker: chunks the input one-shot and in splits
 * derived from the input, and aborts if the cut points differ or a chunk
 * size leaves [min, max] (the last chunk may be shorter than min).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/chunker.h"

#define MAX_CUTS 65536

static const ds_chunker_params_t param_sets[] = {
    {64, 64, 64}, {64, 128, 512}, {64, 256, 1024}, {100, 256, 300}, {128, 512, 512},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Chunk ends of data fed in pieces; piece lengths come from a generator
 * seeded by seed (0: one piece). Returns the number of cuts. */
static size_t chunk(const ds_chunker_params_t *p, const uint8_t *data, size_t size, uint64_t seed,
                    uint64_t *ends)
{
    ds_chunker_t c;
    size_t off = 0, n = 0;
    int cut;

    if (ds_chunker_init(&c, p) != 0)
        abort();
    while (off < size) {
        size_t end = size;

        if (seed != 0) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            end = off + seed % (seed & 1 ? 8 : p->max_size + 2);
            end = end > size ? size : end;
        }
        while (off < end) {
            off += ds_chunker_next(&c, data + off, end - off, &cut);
            if (cut && n < MAX_CUTS)
                ends[n++] = off;
        }
    }
    if (c.pos > 0 && n < MAX_CUTS)
        ends[n++] = off;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint64_t one[MAX_CUTS], split[MAX_CUTS];
    const ds_chunker_params_t *p;
    uint64_t seed = 0x9e3779b97f4a7c15ULL, prev = 0;
    size_t n1, n2;

    if (size < 1)
        return 0;
    p = &param_sets[data[0] % (sizeof(param_sets) / sizeof(param_sets[0]))];
    for (size_t i = 0; i < size && i < 16; i++)
        seed = (seed ^ data[i]) * 0x100000001b3ULL;
    seed |= 1;
    n1 = chunk(p, data, size, 0, one);
    n2 = chunk(p, data, size, seed, split);
    if (n1 != n2 || memcmp(one, split, n1 * sizeof(one[0])) != 0)
        abort();
    for (size_t i = 0; i < n1; i++) {
        uint64_t sz = one[i] - prev;

        if (sz > p->max_size || (i + 1 < n1 && sz < p->min_size) || sz == 0)
            abort();
        prev = one[i];
    }
    if (prev != size)
        abort();
    return 0;
}

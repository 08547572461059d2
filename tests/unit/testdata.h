/*
 * Test helper: deterministic data, file comparison and a short nap, shared
 * by the session tests (test_session, test_session_ctl, test_session_slow).
 */
#ifndef DS_TEST_TESTDATA_H
#define DS_TEST_TESTDATA_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* n pseudo-random bytes from seed (an LCG: the same bytes every run). */
static inline void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* 1 when path holds exactly p[0, n). */
static inline int file_is(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *b = malloc(n + 1);
    size_t got = f && b ? fread(b, 1, n + 1, f) : 0;
    int same = f && b && got == n && memcmp(b, p, n) == 0;

    if (f)
        fclose(f);
    free(b);
    return same;
}

/* 1 ms: lets a receiver thread or an agent answer between steps. */
static inline void nap(void)
{
    struct timespec ts = {0, 1000000};

    nanosleep(&ts, NULL);
}

#endif

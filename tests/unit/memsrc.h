/*
 * Test helper: a whole file written from memory, and a memory source for
 * the delta encoders (ds_delta_src_t). Shared by test_zpatch and
 * test_zpatch_bsdiff.
 */
#ifndef DS_TEST_MEMSRC_H
#define DS_TEST_MEMSRC_H

#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "distsync/delta.h"

/* Writes p[0, n) to path (created or truncated). Returns 0 or -1. */
static inline int write_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int ok = fd >= 0 && write(fd, p, n) == (ssize_t)n;

    if (fd >= 0)
        close(fd);
    return ok ? 0 : -1;
}

/* A memory source for the encoder. */
struct mem {
    const uint8_t *p;
};

static inline long mem_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    memcpy(buf, ((struct mem *)ctx)->p + off, len);
    return (long)len;
}

/* s reads p[0, n) through m. */
static inline void src_mem(ds_delta_src_t *s, struct mem *m, const uint8_t *p, size_t n)
{
    m->p = p;
    s->read = mem_read;
    s->ctx = m;
    s->size = n;
    s->verified = 0;
    s->chunks = NULL;
    s->nchunks = 0;
}

#endif

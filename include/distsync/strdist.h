/*
 * How far apart two short names are, for "did you mean" hints (an unknown
 * command, an unknown configuration key).
 */
#ifndef DISTSYNC_STRDIST_H
#define DISTSYNC_STRDIST_H

#include <stddef.h>

/* Edit distance of a and b (each cut at 63 bytes): insertions, deletions,
 * substitutions and swaps of two neighbours ("sycn" is 1 from "sync"). */
size_t ds_strdist(const char *a, const char *b);

#endif

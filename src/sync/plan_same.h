/* The planner's index of contents already placed on the target by the
 * plan (plan_same.c), so that a content is sent once per run. */
#ifndef DS_PLAN_SAME_H
#define DS_PLAN_SAME_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/digest.h"
#include "distsync/error.h"

typedef struct ds__plan_same ds__plan_same_t;

/* Creates an index for up to n contents. Returns NULL when out of memory. */
ds__plan_same_t *ds__plan_same_new(size_t n);

/* Frees it. NULL is a no-op. */
void ds__plan_same_free(ds__plan_same_t *s);

/* Records that the target holds sha256 at path (borrowed: must outlive s)
 * once the plan's items before this one are applied. The first path
 * recorded for a content stays. Returns 0 or DS_ENOMEM (full). */
DS_MUST_CHECK int ds__plan_same_add(ds__plan_same_t *s, const uint8_t sha256[DS_SHA256_LEN],
                                    const char *path);

/* The first path recorded with sha256, or NULL. */
const char *ds__plan_same_find(const ds__plan_same_t *s, const uint8_t sha256[DS_SHA256_LEN]);

#endif

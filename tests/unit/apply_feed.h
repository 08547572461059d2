/* Feeding a session to the receiver (ds_apply) in the unit tests, as the
 * agent does. Header-only, after check.h and session.h. */
#ifndef DS_TEST_APPLY_FEED_H
#define DS_TEST_APPLY_FEED_H

#include <stdint.h>

#include "check.h"
#include "distsync/apply.h"
#include "session.h"

/* Offers s's bytes to ap in pieces of at most step bytes (SIZE_MAX: all at
 * once), drains ap's output into out (cap bytes, a CHECK when it would
 * overflow) after each offer, and offers the rest again until ap consumed
 * it all and wants more, or failed; then empties s. Sets *total to the
 * output bytes. Returns ap's last feed result: <0 on failure (a DS_E*
 * code), >=0 otherwise. */
static inline long s_feed(ds_apply_t *ap, struct sess *s, size_t step, uint8_t *out, size_t cap,
                          size_t *total)
{
    const uint8_t *p;
    size_t n, off = 0;
    long rc;

    *total = 0;
    for (;;) {
        size_t k = s->b.len - off < step ? s->b.len - off : step;

        rc = ds_apply_feed(ap, s->b.p + off, k);
        if (rc > 0)
            off += (size_t)rc;
        ds_apply_output(ap, &p, &n);
        CHECK(*total + n <= cap);
        if (*total + n > cap)
            break;
        memcpy(out + *total, p, n);
        *total += n;
        ds_apply_output_consume(ap, n);
        if (rc < 0 || (off == s->b.len && ds_apply_want_input(ap)))
            break;
    }
    s->b.len = 0;
    return rc;
}

#endif

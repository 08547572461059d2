/* A time on the command line: RFC 3339, or a duration (90m, 4h, 2d) back
 * from now or ahead of it (sync --as-of, freeze --until). */
#include <time.h>

#include "cli.h"
#include "distsync/schedule.h"
#include "distsync/tz.h"

int cli_parse_when(const char *s, int dir, int64_t *t)
{
    char err[256];
    int64_t secs, now = (int64_t)time(NULL);

    if (ds_tz_parse_rfc3339(s, t) == 0)
        return (dir < 0 ? *t <= now : *t > now) ? 0 : 1;
    if (ds_schedule_parse_window(s, &secs, err, sizeof(err)) == 0) {
        *t = dir < 0 ? now - secs : now + secs;
        return 0;
    }
    return -1;
}

/* The CLI's one escaping helper: every path or message it prints goes
 * through cli_esc(), so no command writes a raw control character. */
#include <string.h>

#include "cli.h"
#include "distsync/scan.h"

#define ESC_SLOTS 8
#define ESC_LEN   (4 * 4096 + 16) /* a 4095-byte path with every byte as \xNN */

const char *cli_esc(const char *s)
{
    static char buf[ESC_SLOTS][ESC_LEN];
    static unsigned next;
    char *out = buf[next++ % ESC_SLOTS];

    if (s == NULL)
        return "-";
    ds_escape_name(s, strlen(s), out, ESC_LEN);
    return out;
}

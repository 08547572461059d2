/* The CLI's one escaping helper: every path or message it prints goes
 * through cli_esc(), so no command writes a raw control character; and the
 * two printers to stderr built on it (shared by distsync and
 * distsync-agent). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "distsync/escape.h"
#include "distsync/log.h"

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

void cli_err(const char *fmt, ...)
{
    va_list ap;
    char msg[4096];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "distsync: %s\n", cli_esc(msg));
}

/* Called from the library's threads too (the local receiver's): escapes
 * into its own buffer, not cli_esc()'s shared ones. */
void cli_log_stderr(void *ctx, ds_log_level_t level, const char *msg)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    struct cli *cli = ctx;
    char esc[4 * 2048 + 16]; /* ds_log's longest message, every byte \xNN */

    if (level == DS_LOG_DEBUG && !cli->verbose)
        return;
    if (level == DS_LOG_INFO && cli->quiet)
        return;
    ds_escape_name(msg, strlen(msg), esc, sizeof(esc));
    fprintf(stderr, "distsync: %s: %s\n", names[level], esc);
}

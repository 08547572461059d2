/* Log sink: formats messages and hands them to the front end's callback. */
#include <stdio.h>

#include "distsync/log.h"

static ds_log_fn log_fn;
static void *log_ctx;

void ds_log_set(ds_log_fn fn, void *ctx)
{
    log_fn = fn;
    log_ctx = ctx;
}

void ds_log(ds_log_level_t level, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;

    if (log_fn == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    log_fn(log_ctx, level, buf);
}

/* Log sink: formats messages and hands them to the front end's callback. */
#include <stdio.h>

#include "distsync/log.h"

static ds_log_fn log_fn;
static void *log_ctx;
static _Thread_local char log_context[256];
static _Thread_local const char *log_server;

void ds_log_context(const char *ctx)
{
    snprintf(log_context, sizeof(log_context), "%s", ctx != NULL ? ctx : "");
}

const char *ds_log_context_get(void)
{
    return log_context;
}

void ds_log_server(const char *name)
{
    log_server = name;
}

const char *ds_log_server_get(void)
{
    return log_server;
}

void ds_log_set(ds_log_fn fn, void *ctx)
{
    log_fn = fn;
    log_ctx = ctx;
}

void ds_log_scope_save(ds_log_scope_t *s)
{
    snprintf(s->ctx, sizeof(s->ctx), "%s", log_context);
    s->server = log_server;
}

void ds_log_scope_set(const ds_log_scope_t *s)
{
    ds_log_context(s != NULL ? s->ctx : NULL);
    log_server = s != NULL ? s->server : NULL;
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

/*
 * Logging contract. The library never prints: it reports through a callback
 * that the front end installs. The CLI prints to stderr; the daemon logs to
 * the journal. Messages never contain secrets (passwords, keys, tokens).
 */
#ifndef DISTSYNC_LOG_H
#define DISTSYNC_LOG_H

#include <stdarg.h>

typedef enum ds_log_level {
    DS_LOG_ERROR = 0,
    DS_LOG_WARN = 1,
    DS_LOG_INFO = 2,
    DS_LOG_DEBUG = 3,
} ds_log_level_t;

/* msg is a complete line without trailing newline; valid only during the call. */
typedef void (*ds_log_fn)(void *ctx, ds_log_level_t level, const char *msg);

/* Installs the process-wide log sink (NULL: discard). Not thread-safe to
 * call while other threads log; set it once at start-up. */
void ds_log_set(ds_log_fn fn, void *ctx);

/* The calling thread's log context, e.g. "run=NAME@2026-03-29T02:00Z",
 * copied (at most 255 bytes); NULL or "" clears it. The sink reads it with
 * ds_log_context_get() during its call (ds_log calls the sink on the
 * logging thread), so each line can name the run it belongs to. */
void ds_log_context(const char *ctx);
/* The calling thread's context ("" when none); valid until it is set again. */
const char *ds_log_context_get(void);
/* The server the calling thread works for now (NULL: none), borrowed: the
 * caller keeps name alive until it sets another. The sink reads it with
 * ds_log_server_get() (NULL when none). */
void ds_log_server(const char *name);
const char *ds_log_server_get(void);

/* A thread's context and server, carried to the threads and jobs that
 * work for it: saved where the work is handed over, set where it runs. */
typedef struct ds_log_scope {
    char ctx[256];
    const char *server; /* borrowed, as ds_log_server says */
} ds_log_scope_t;
/* The calling thread's context and server into *s. */
void ds_log_scope_save(ds_log_scope_t *s);
/* Makes *s the calling thread's context and server (NULL: clears both). */
void ds_log_scope_set(const ds_log_scope_t *s);

/* Formats and delivers a message to the sink. Thread-safe. */
void ds_log(ds_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

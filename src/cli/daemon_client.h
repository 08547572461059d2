/*
 * The CLI's side of the daemon's API (src/cli/daemon_client.c): requests
 * over the Unix socket STATE/distsync.sock with libcurl, replies parsed
 * with jansson. The commands that use a running daemon (sync, freeze,
 * thaw, schedule next, history, status --offline, runs, cancel) ask it;
 * with no daemon they work standalone (runs and cancel need one).
 */
#ifndef DS_CLI_DAEMON_CLIENT_H
#define DS_CLI_DAEMON_CLIENT_H

#include <jansson.h>

#include "distsync/config.h"

/* 1 when a daemon answers on cfg's socket, 0 when none does (no socket,
 * or nobody listening on it: a daemon that died). */
int cli_daemon_up(const ds_config_t *cfg);

/*
 * One request (body: JSON text or NULL). Returns the HTTP status with the
 * reply's JSON in *out (free with json_decref; NULL when it is not JSON),
 * or 0 after printing why the daemon did not answer. A 4xx/5xx's message
 * is the reply's "error" (cli_daemon_error).
 */
long cli_daemon_call(const ds_config_t *cfg, const char *method, const char *path, const char *body,
                     json_t **out);

/* s percent-encoded for a path segment (malloc'd; NULL on ENOMEM). */
char *cli_daemon_escape(const char *s);

/* A GET that also keeps the reply's bytes in *raw (malloc'd, NUL-ended;
 * NULL when the daemon did not answer), to print them as they came. */
long cli_daemon_get_raw(const ds_config_t *cfg, const char *path, json_t **out, char **raw);

/* The "error" of a reply, or a stand-in naming the status. */
const char *cli_daemon_error(const json_t *reply, long status);

#endif

/*
 * The bandwidth caps of a configuration as a limiter tree: the global cap
 * at the root, one node per site, one leaf per server (under its site, or
 * under the root), each table evaluated in its zone (a site's tz, else the
 * console's; a server's in its site's). This is what an engine drives:
 * ds_caps_tick at every table change it was told about, ds_caps_reload on
 * SIGHUP, ds_rl_request on the server's leaf before each write.
 *
 * Only ds_caps_new and ds_caps_reload touch the system (they load zones);
 * time is an argument everywhere: wall-clock nanoseconds since the epoch
 * (CLOCK_REALTIME) for the tables, the
 * limiter's monotonic nanoseconds for everything else.
 */
#ifndef DISTSYNC_CAPS_H
#define DISTSYNC_CAPS_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/config.h"
#include "distsync/ratelimit.h"
#include "distsync/error.h"

typedef struct ds_caps ds_caps_t;

/*
 * Builds the caps of cfg into *out (free with ds_caps_free) with every rate
 * as at wall-clock instant wall, limiter instant mono. Returns 0, DS_ENOMEM,
 * DS_ETZ or DS_ERANGE (message naming the site or zone in err).
 */
DS_MUST_CHECK int ds_caps_new(const ds_config_t *cfg, int64_t wall, int64_t mono, ds_caps_t **out,
                              char *err, size_t errlen);

/* Frees c and its limiter; NULL is a no-op. */
void ds_caps_free(ds_caps_t *c);

/* The limiter (lives as long as c) and the leaf of server name (NULL when
 * the configuration has no such server; lives as long as c). */
ds_rl_t *ds_caps_limiter(ds_caps_t *c);
ds_rl_node_t *ds_caps_server(ds_caps_t *c, const char *name);

/*
 * Re-evaluates every table whose next change is due at wall / mono and
 * stores in *due the limiter instant of the next change of any table
 * (DS_RL_NEVER when none will change). Returns 1 when a rate changed (the
 * caller re-asks for every waiting leaf), 0 when none did, or DS_ERANGE.
 */
DS_MUST_CHECK int ds_caps_tick(ds_caps_t *c, int64_t wall, int64_t mono, int64_t *due);

/*
 * Live reload: takes the tables and zones of cfg and applies them at once,
 * keeping what running transfers have used. A server or site new in cfg
 * gets a node; one that left keeps its idle node; a server that changed
 * site gets a new leaf (ask ds_caps_server again). On failure (DS_ENOMEM,
 * DS_ETZ, DS_ERANGE, message in err) c keeps its old caps.
 */
DS_MUST_CHECK int ds_caps_reload(ds_caps_t *c, const ds_config_t *cfg, int64_t wall, int64_t mono,
                                 char *err, size_t errlen);

#endif

/*
 * Configuration: an INI file (parsed with Debian's inih) describing the
 * console, its sites, distribution servers and schedules. See
 * conf/distsync.conf for the annotated example.
 *
 * Every error message names the file, the line and the key, for example
 *   distsync.conf:12: [server paris-1] key 'url': unsupported scheme 'ftp'
 */
#ifndef DISTSYNC_CONFIG_H
#define DISTSYNC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "distsync/bandwidth.h"
#include "distsync/chunker.h"
#include "distsync/error.h"

/* max_delete: the default (a percentage) and the largest count accepted. */
#define DS_MAX_DELETE_DEFAULT_PCT 10
#define DS_MAX_DELETE_COUNT       1000000000ull

/* Seconds a target may stay silent while the console waits on it (a
 * request unanswered, or output it does not take) before the server fails;
 * `timeout =` in [console] (the default) or [server NAME], 1s..1d. */
#define DS_CONFIG_TIMEOUT_DEFAULT 120u
#define DS_CONFIG_TIMEOUT_MAX     86400u

/* Reconnects after a dropped link (`retries =`, `retry_backoff =`): the
 * backoff doubles per attempt and stops growing at the last one. */
#define DS_CONFIG_RETRIES_DEFAULT     3u
#define DS_CONFIG_RETRIES_MAX         100u
#define DS_CONFIG_RETRY_BACKOFF_MAX_S 60u

/* Concurrency limits: servers syncing at once ([console] and [site NAME]
 * max_servers =) and files in flight per server ([server NAME] max_files
 * =); the defaults are the engine's (distsync/engine.h). */
#define DS_CONFIG_MAX_SERVERS_MAX 1024u
#define DS_CONFIG_MAX_FILES_MAX   4096u
/* smb:// connections = N: SMB connections per server (each a process) */
#define DS_CONFIG_SMB_CONNECTIONS_MAX     16u
#define DS_CONFIG_SMB_CONNECTIONS_DEFAULT 4u

typedef struct ds_strlist {
    char **v; /* owned strings */
    size_t n;
} ds_strlist_t;

/* A `bandwidth =` key (see distsync/bandwidth.h for the grammar). */
typedef struct ds_bw_cfg {
    char *text;          /* as written, NULL when absent */
    ds_bw_table_t table; /* parsed; "off" at all times when absent */
    int line;            /* 0 when absent */
} ds_bw_cfg_t;

typedef struct ds_site_cfg {
    char *name;
    int line;              /* line of the [site NAME] header */
    ds_bw_cfg_t bandwidth; /* the site's cap, shared by its servers */
    char *tz;              /* IANA zone of the site's windows (and its
                              servers'), NULL: the console's zone */
    int tz_line;
    unsigned max_servers; /* servers of the site syncing at once (0: default) */
    /* The upgrade gate (distsync/gate.h): clients = globs over client IDs
     * mapping clients to this site; max_concurrent_upgrades (0: no cap);
     * max_upgrade_bandwidth in bits/s (DS_BW_OFF: no cap). */
    ds_strlist_t clients;
    unsigned max_upgrades;
    uint64_t upgrade_bw;
} ds_site_cfg_t;

typedef struct ds_server_cfg {
    char *name;
    char *url;  /* file:///..., ssh://user@host[:port]/path, smb://host[:port]/share/dir */
    char *site; /* NULL when the server belongs to no site */
    ds_strlist_t classes; /* content classes this server receives */
    int prune;            /* prune = yes: delete files that left the desired set */
    int create_root;      /* create_root = yes: create a missing file:// target root */
    /* max_delete = N | P%: most files one sync may delete without --force
     * (a count, or a percentage of the files the server holds when
     * max_delete_pct); absent: the [console] default. */
    uint64_t max_delete;
    int max_delete_pct;
    char *transport; /* file://: local|agent (NULL: local); ssh://: agent|sftp|auto (NULL: auto) */
    /* agent = file://: PATH of the distsync binary run as the agent (NULL:
     * self); ssh://: the remote command (NULL: "distsync agent") */
    char *agent;
    unsigned timeout_s; /* timeout = (or io_timeout =) seconds without progress */
    /* ssh:// only: identity = private key file (NULL: ssh-agent),
     * known_hosts = file (NULL: ~/.ssh/known_hosts), connect_timeout =
     * seconds for the whole connect (0: 30 s). */
    char *identity, *known_hosts;
    unsigned connect_timeout_s;
    /* retries = N reconnects after a link dropped mid-run (ssh://) or a lost
     * SMB worker (smb://; 0: none),
     * retry_backoff = the first wait, doubled per attempt up to
     * DS_CONFIG_RETRY_BACKOFF_MAX_S; absent: the [console] values */
    unsigned retries, retry_backoff_s;
    int retries_line, retry_backoff_line; /* 0 when absent */

    int verify_readback; /* ssh://, smb://: verify = readback; else size */
    int quick_off;       /* quick_deltas = no: never a quick delta (sync_prefetch.c) */
    int transport_line, ssh_key_line, timeout_line; /* 0 when absent */
    int identity_line;                              /* 0 when absent */
    const char *ssh_key; /* the ssh-only key at ssh_key_line (static text) */
    /* ssh:// and smb:// only (connect_timeout, verify): the last one's line
     * and name (static text), 0 / NULL when absent */
    int remote_key_line;
    const char *remote_key;
    /* smb:// only: credentials = FILE (username=, password=, domain= lines,
     * mode 0600; NULL: the environment, see distsync/smbcred.h), encrypt =
     * yes (SMB3 encryption required); smb_key names the last of them */
    char *credentials;
    int encrypt;
    unsigned connections;               /* connections = N (0: DS_CONFIG_SMB_CONNECTIONS_DEFAULT) */
    int smb_key_line, credentials_line; /* 0 when absent */
    const char *smb_key;
    ds_bw_cfg_t bandwidth; /* the server's own cap (windows in its site's zone) */
    unsigned max_files;    /* files in flight (0: default) */
    int line;
    int url_line, site_line, classes_line, max_delete_line; /* 0 when the key is absent */
    unsigned max_upgrades; /* max_concurrent_upgrades = clients downloading (0: no cap) */
} ds_server_cfg_t;

typedef struct ds_schedule_cfg {
    char *name;
    char *when;           /* rule text, validated by the schedule module */
    char *tz;             /* IANA zone, NULL: the console's zone */
    char *window;         /* e.g. "4h", NULL: no window */
    ds_strlist_t servers; /* servers = ... */
    ds_strlist_t sites;   /* sites = ... */
    ds_strlist_t classes; /* classes = ... */
    int line;             /* line of the [schedule NAME] header */
    int when_line, tz_line, window_line;
    int servers_line, sites_line, classes_line; /* 0 when the key is absent */
} ds_schedule_cfg_t;

/* The upgrade gate's sections (src/config/config_rollout.c). */

/* Largest max_concurrent_upgrades; longest client ID and version. */
#define DS_CONFIG_MAX_UPGRADES_MAX 1000000u
#define DS_CLIENT_ID_MAX           128
#define DS_VERSION_MAX             64

/* [ring NAME]: a group of clients opened together. */
typedef struct ds_ring_cfg {
    char *name;
    int line;
    ds_strlist_t members; /* members = globs over client IDs */
    char *members_file;   /* members_file = one ID a line (absolute), NULL: none */
    ds_strlist_t ids;     /* the IDs read from members_file, sorted */
    unsigned size;        /* size = members for the thresholds (0: counted) */
    int64_t opens;        /* opens = earliest open time (0: none) */
    int members_line, members_file_line;
} ds_ring_cfg_t;

/* [package NAME]: one version of a product, a step of its chain. */
typedef struct ds_package_cfg {
    char *name;
    int line;
    char *product, *version;
    char *path;     /* in the store, relative (what the grant names) */
    char *from;     /* from = oldest version it upgrades from (NULL: any) */
    int64_t soak_s; /* soak = time clients stay on it before the next step */
    int product_line, version_line, from_line;
} ds_package_cfg_t;

/* [rollout NAME]: a product's target version through rings. */
typedef struct ds_rollout_cfg {
    char *name;
    int line;
    char *product, *version;
    ds_strlist_t rings;      /* in opening order */
    unsigned min_success_bp; /* basis points (9500: 95%) */
    unsigned max_failure_bp;
    uint64_t client_rate; /* bits/s each grant reserves (0: none) */
    unsigned lease_s;     /* lease = seconds without a heartbeat */
    char *token_file;     /* token_file = the enrolment token (mode 0600) */
    int product_line, version_line, rings_line, token_file_line;
} ds_rollout_cfg_t;

typedef struct ds_config {
    char *path;                /* file it was read from */
    char *store;               /* [console] store = content-store root (absolute) */
    char *state;               /* [console] state = state directory (absolute) */
    int store_line;            /* of store = (0: absent) */
    ds_strlist_t classes;      /* [console] classes = (default patches engines definitions) */
    ds_chunker_params_t chunk; /* [console] chunk_min/chunk_avg/chunk_max */
    unsigned scan_threads;     /* [console] scan_threads = (default: online CPUs) */
    uint64_t max_delete;       /* [console] max_delete = servers' default (10%) */
    int max_delete_pct;
    unsigned timeout_s;    /* [console] timeout = (default DS_CONFIG_TIMEOUT_DEFAULT) */
    unsigned lease_ttl;    /* [console] lease_ttl = seconds (0: 300) */
    ds_bw_cfg_t bandwidth; /* [console] bandwidth = the global cap (console's zone) */
    int delta_level;       /* [console] delta_level = zstd level of zpatch deltas (0: default) */
    int sync_delta_level;  /* [console] sync_delta_level = level of a delta a sync computes
                              itself (0: ds_config_sync_level's default) */
    int precompute;        /* [console] precompute = yes: scan computes the servers' deltas */
    unsigned max_servers;  /* [console] max_servers = servers syncing at once (0: default) */

    /* [console] retries = and retry_backoff = : the servers' defaults
     * (DS_CONFIG_RETRIES_DEFAULT, 1 s) */
    unsigned retries, retry_backoff_s;
    int64_t catch_up_s; /* [console] catch_up = seconds (0: default 24h, -1: off) */
    /* [console] listen = HOST:PORT: the daemon's API over TCP (NULL: the
     * Unix socket only), with the bearer token of api_token_file = */
    char *listen;
    char *api_token_file; /* absolute; NULL: none */
    /* api_tls_cert = and api_tls_key = : TLS on the TCP listener (PEM; both
     * or neither; absolute; NULL: plain HTTP) */
    char *api_tls_cert, *api_tls_key;
    int listen_line, api_token_file_line, api_tls_line;
    ds_site_cfg_t *sites;
    size_t nsites;
    ds_server_cfg_t *servers;
    size_t nservers;
    ds_schedule_cfg_t *schedules;
    size_t nschedules;
    /* [console] max_concurrent_upgrades (0: no cap), max_upgrade_bandwidth
     * (bits/s, DS_BW_OFF: no cap): over all rollouts */
    unsigned max_upgrades;
    uint64_t upgrade_bw;
    ds_rollout_cfg_t *rollouts;
    size_t nrollouts;
    ds_ring_cfg_t *rings;
    size_t nrings;
    ds_package_cfg_t *packages;
    size_t npackages;
} ds_config_t;

/*
 * Reads and validates the configuration at path. On success returns 0 and
 * stores a new config in *out (free with ds_config_free). On failure returns
 * DS_ECONFIG (or -errno when the file cannot be read), leaves *out NULL and
 * writes a one-line message naming file, line and key into err.
 */
DS_MUST_CHECK int ds_config_load(const char *path, ds_config_t **out, char *err, size_t errlen);

/* Same as ds_config_load, from text in memory; name is used in messages and
 * relative paths resolve against base_dir (NULL: the current directory). */
DS_MUST_CHECK int ds_config_parse(const char *text, const char *name, const char *base_dir,
                                  ds_config_t **out, char *err, size_t errlen);

void ds_config_free(ds_config_t *cfg);

/* What `config check` adds to loading (src/config/config_check.c): the store is an
 * existing directory, no file:// target is inside the store or the state
 * directory, no two servers have the same URL (trailing slashes aside).
 * Returns 0, or DS_ECONFIG with one line naming file, line and server. */
DS_MUST_CHECK int ds_config_check(const ds_config_t *cfg, char *err, size_t errlen);

/* What `config check` warns about without refusing the configuration: a
 * [ring] whose members = globs have no size = (its thresholds would count
 * only the clients seen so far); create_root = yes on a server that is not
 * file:// (it has no effect there). Calls fn(arg, message) for each
 * (message names file, line and section); returns how many. */
typedef void (*ds_config_warn_fn)(void *arg, const char *msg);
size_t ds_config_warnings(const ds_config_t *cfg, ds_config_warn_fn fn, void *arg);

/* The part of ds_config_check for one server, which every command that
 * opens a target runs too: a file:// root that is (or, through symlinks,
 * will be) inside the store or the state directory. Returns 0 or
 * DS_ECONFIG with err naming the file, line and server. */
DS_MUST_CHECK int ds_config_check_target(const ds_config_t *cfg, const ds_server_cfg_t *s,
                                         char *err, size_t errlen);

/* Lookups. The returned pointers live as long as cfg. NULL when absent. */
const ds_server_cfg_t *ds_config_server(const ds_config_t *cfg, const char *name);
const ds_site_cfg_t *ds_config_site(const ds_config_t *cfg, const char *name);
const ds_schedule_cfg_t *ds_config_schedule(const ds_config_t *cfg, const char *name);

const ds_rollout_cfg_t *ds_config_rollout(const ds_config_t *cfg, const char *name);
const ds_ring_cfg_t *ds_config_ring(const ds_config_t *cfg, const char *name);
/* The [package] of product at version, NULL when none. */
const ds_package_cfg_t *ds_config_package(const ds_config_t *cfg, const char *product,
                                          const char *version);

/* Compares two versions: dot- or dash-separated parts, numeric parts as
 * numbers ("7.10" > "7.9"), others as text. <0, 0 or >0 as strcmp. */
DS_MUST_CHECK int ds_version_cmp(const char *a, const char *b);

/* Returns 1 when v is a valid version: 1 to DS_VERSION_MAX - 1 letters,
 * digits and ". _ - +", starting and ending with a letter or digit, no two
 * of ". _ - +" in a row (no empty part: "1.0." and "1..0" are refused). */
DS_MUST_CHECK int ds_version_ok(const char *v);

/* Returns 1 when id is a valid client ID: 1 to DS_CLIENT_ID_MAX bytes of
 * letters, digits and ". _ - : @". */
DS_MUST_CHECK int ds_client_id_ok(const char *id);

/* Reads rollout r's enrolment token (token_file, its first line) into buf.
 * Refuses a file that group or others may read or write (mode must be 0600
 * or stricter). Returns 0, DS_ECONFIG (err names the file and why: the
 * mode, an empty token) or -errno (err names the file). */
DS_MUST_CHECK int ds_config_rollout_token(const ds_rollout_cfg_t *r, char *buf, size_t len,
                                          char *err, size_t errlen);

/* Reads the bearer token in path (its first line) into buf, as
 * ds_config_rollout_token does: the file must be a regular file, not a
 * symlink, mode 0600 or stricter, and the token at least 16 characters,
 * neither beginning nor ending with a blank.
 * Returns 0, DS_ECONFIG or -errno; err names the file and why. */
DS_MUST_CHECK int ds_config_token_file(const char *path, char *buf, size_t len, char *err,
                                       size_t errlen);

#define DS_API_TOKEN_MAX 4096 /* the API's bearer token, at most, with its NUL */

/* Reads cfg's api_token_file (not NULL) with ds_config_token_file's rules:
 * the one reader of the API's bearer token, for the daemon (start and
 * reload) and config check. Returns as ds_config_token_file; err reads
 * "CONF:LINE: [console] key 'api_token_file': PATH: reason". */
DS_MUST_CHECK int ds_config_api_token(const ds_config_t *cfg, char *buf, size_t len, char *err,
                                      size_t errlen);

/* SMB connections to server s: its connections = N, else
 * DS_CONFIG_SMB_CONNECTIONS_DEFAULT for an smb:// server, 1 for others. */
unsigned ds_config_smb_connections(const ds_server_cfg_t *s);

/* Returns 1 when list holds s (exact match), else 0. list may be NULL. */
DS_MUST_CHECK int ds_config_list_has(const ds_strlist_t *list, const char *s);

/* The i-th key the parser accepts (0, 1, ...): sets *section ("console",
 * "server"...) and *key and returns 0; returns DS_ENOTFOUND past the last.
 * The documentation (distsync.conf(5)) is generated from this list. */
DS_MUST_CHECK int ds_config_key_at(size_t i, const char **section, const char **key);

#endif

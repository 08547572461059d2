/*
 * What each configuration key means, for distsync.conf(5). The key list
 * itself comes from the parser (ds_config_key_at, src/config/config_parse.c): the
 * documentation generator (doc/gen_doc.c) fails the build when a key the
 * parser accepts has no entry here.
 */
#include <string.h>

#include "help.h"

const struct help_key help_keys[] = {
    {"console", "store", "PATH",
     "the content store: one top-level folder per content class; relative paths resolve "
     "against the configuration file's directory"},
    {"console", "state", "PATH", "the state directory: state database, retain store, logs"},
    {"console", "classes", "LIST",
     "the content classes (default: patches engines definitions); commas and/or spaces"},
    {"console", "chunk_min", "SIZE", "smallest content-defined chunk (B, KiB, MiB; at least 64)"},
    {"console", "chunk_avg", "SIZE",
     "average chunk size, a power of two between chunk_min and chunk_max"},
    {"console", "chunk_max", "SIZE", "largest chunk (at most 64MiB)"},
    {"console", "scan_threads", "N", "threads hashing files during a scan (default: the CPUs)"},
    {"console", "max_delete", "N|N%",
     "most files one sync may delete on a prune = yes server without --force: a count or a "
     "percentage of the files the server holds (default 10%); over it, sync deletes nothing "
     "and exits 25"},
    {"console", "timeout", "DURATION",
     "how long a server may stay silent before it fails (N, Ns, Nm or Nh; 1s to 24h; default "
     "120s)"},
    {"console", "lease_ttl", "SECONDS",
     "how long a server's write lease lasts (5 to 604800, default 300); renewed every third"},
    {"console", "delta_level", "N",
     "zstd level of the deltas computed ahead of the syncs (scan --precompute, precompute = "
     "yes), 1 to 22 (default 19); computed once per (old, new) pair and cached for every "
     "server; a cached delta of a lower level is recomputed at this one"},
    {"console", "sync_delta_level", "N",
     "zstd level of a delta a sync computes itself while its server waits (none cached at this "
     "level or above), 1 to 22 (default 12, or delta_level when lower)"},
    {"console", "precompute", "yes|no",
     "after each scan, compute the deltas the servers' next syncs need (the same as scan "
     "--precompute; the daemon too, after each of its scans that changed the catalog, in a "
     "worker process at nice +10; default no)"},
    {"console", "bandwidth", "TABLE",
     "global bandwidth cap: a default rate, then windows "
     "\"[DAYS] [HH:MM-HH:MM] RATE\" separated by ';'; rates per second with a unit (512kbit, "
     "20Mbit, 2MB, 1.5MiB), off = no cap, 0 = paused"},
    {"console", "max_servers", "N",
     "how many servers sync in parallel (1 to 1024, default 8); more wait their turn"},
    {"console", "retries", "N",
     "ssh:// and smb://: how often a run reconnects after its connection dropped or its SMB "
     "worker died or hung (0 to 100, default 3); the run resumes: files already committed are "
     "not sent again"},
    {"console", "retry_backoff", "DURATION",
     "ssh:// and smb://: the wait before the first reconnect, doubled for each next one up to 60s "
     "(default 1s)"},
    {"site", "bandwidth", "TABLE", "the site's bandwidth cap (see [console] bandwidth)"},
    {"console", "catch_up", "DURATION",
     "distsync daemon: how old a fire missed while the daemon was down may be and still run "
     "once at its start (90m, 24h, 2d; 0: never; default 24h)"},
    {"console", "listen", "ADDRESS:PORT",
     "distsync daemon: also serve the HTTP API over TCP (127.0.0.1:8750, [::1]:8750); every "
     "request needs the bearer token of api_token_file (default: the Unix socket "
     "STATE/distsync.sock only)"},
    {"console", "api_token_file", "PATH",
     "the file holding the API's bearer token for listen (first line, at least 16 characters "
     "for config check; mode 0600: the daemon refuses a token group or others can read)"},
    {"console", "api_tls_cert", "PATH",
     "TLS on the listen = listener: its PEM certificate chain (with api_tls_key; TLS 1.2 or "
     "newer; default: plain HTTP)"},
    {"console", "api_tls_key", "PATH",
     "the PEM private key of api_tls_cert (mode 0600: the daemon refuses a key group or "
     "others can read)"},
    {"site", "max_servers", "N",
     "how many of the site's servers sync in parallel (1 to 1024, default 4)"},
    {"server", "max_files", "N",
     "files in flight to this server (sent, not yet acknowledged; 1 to 4096, default 64)"},
    {"site", "tz", "ZONE",
     "IANA zone of the site's (and its servers') bandwidth windows (default: the console's)"},
    {"server", "bandwidth", "TABLE", "the server's bandwidth cap (see [console] bandwidth)"},
    {"server", "url", "URL",
     "file:///absolute/path, ssh://[user@]host[:port]/path or smb://host[:port]/share/dir"},
    {"server", "site", "NAME", "the [site] this server belongs to (optional)"},
    {"server", "classes", "LIST", "the classes this server receives (default: all)"},
    {"server", "prune", "yes|no",
     "delete files that left the desired set (default no; only files distsync put there)"},
    {"server", "transport", "local|agent|sftp|auto",
     "for file:// servers: the receiver in the console (local, default) or a distsync agent "
     "child process over a pipe; for ssh:// servers: agent (distsync agent on the server), "
     "sftp (changed files go whole over SFTP), or auto (default: the agent when it runs and "
     "speaks our protocol, else SFTP, and the run's events say why)"},
    {"server", "agent", "PATH|COMMAND",
     "file://: the distsync (or distsync-agent) binary run as the agent (default: this one); "
     "ssh://: the command "
     "run on the server, given --root PATH (default: distsync agent)"},
    {"server", "identity", "FILE",
     "ssh://: the ed25519 or ECDSA private key to log in with (default: the keys of ssh-agent "
     "through SSH_AUTH_SOCK); ~/ is the home directory"},
    {"server", "known_hosts", "FILE",
     "ssh://: the OpenSSH known_hosts file the server's host key must be in (default "
     "~/.ssh/known_hosts; record a key with distsync trust SERVER)"},
    {"server", "connect_timeout", "DURATION",
     "ssh://: bound of the whole connect (DNS, TCP, handshake, host key, login, agent start; "
     "default 30s); smb://: bound of the connect and of each SMB request"},
    {"server", "credentials", "FILE",
     "smb://: a file of username=, password= and domain= lines, mode 0600 (refused otherwise); "
     "without it the environment's DISTSYNC_SMB_USER, DISTSYNC_SMB_PASSWORD and "
     "DISTSYNC_SMB_DOMAIN; never logged or shown"},
    {"server", "encrypt", "yes|no",
     "smb://: require SMB3 encryption of the whole session (default no: signed, SMB2 or later)"},
    {"server", "connections", "N",
     "smb://: SMB connections at once, each a process; small files are applied on all of "
     "them (1 to 16, default 4)"},
    {"server", "retries", "N", "this server's own retries (see [console])"},
    {"server", "retry_backoff", "DURATION", "this server's own retry_backoff (see [console])"},
    {"server", "verify", "size|readback",
     "ssh:// in SFTP mode and smb://: how an upload is checked before it is moved into place: "
     "its size on the server (default), or its SHA-256 read back from the server (readback; "
     "reads every file once more)"},
    {"server", "quick_deltas", "auto|no",
     "auto (default): while this server's link is idle (no cap under 100 Mbit/s, less than "
     "256 KiB waiting to cross it), a delta this run must compute is made quick (zstd level 3, "
     "no BSDIFF: about 8x less console CPU for about 3x the bytes of a full one) instead of "
     "keeping the link waiting; no: always the full delta"},
    {"server", "io_timeout", "DURATION",
     "another name for this server's timeout: seconds without progress before the server "
     "fails (set one of the two)"},
    {"server", "max_delete", "N|N%", "this server's own max_delete (see [console])"},
    {"server", "timeout", "DURATION", "this server's own timeout (see [console])"},
    {"server", "create_root", "yes|no",
     "create a missing file:// target root directory (default no: a missing root is an "
     "error)"},
    {"schedule", "when", "RULE", "when the schedule fires (e.g. daily 02:00)"},
    {"schedule", "tz", "ZONE", "IANA time zone of the rule (default: the console's)"},
    {"schedule", "window", "DURATION", "how long a run may go on"},
    {"schedule", "servers", "LIST", "the servers it targets (exclusive with sites)"},
    {"schedule", "sites", "LIST", "the sites it targets (exclusive with servers)"},
    {"schedule", "classes", "LIST", "restricts the classes (default: what each server receives)"},
    {"console", "max_concurrent_upgrades", "N",
     "upgrade gate: client upgrades in progress at once over all sites and rollouts (1 to "
     "1000000; default: no cap)"},
    {"console", "max_upgrade_bandwidth", "RATE",
     "upgrade gate: the sum of the client_rate of the upgrades in progress may not pass it "
     "(default: off)"},
    {"site", "clients", "GLOBS",
     "upgrade gate: the client IDs of this site (globs: * ? [ ]); a client is in the first "
     "site that matches, unless its request names a site"},
    {"site", "max_concurrent_upgrades", "N", "upgrade gate: the site's cap on upgrades at once"},
    {"site", "max_upgrade_bandwidth", "RATE", "upgrade gate: the site's bandwidth for upgrades"},
    {"server", "max_concurrent_upgrades", "N",
     "upgrade gate: clients downloading from this server at once; when full (or frozen) the "
     "site's next server in file order serves"},
    {"rollout", "product", "NAME", "the product this rollout upgrades (one rollout a product)"},
    {"rollout", "version", "VERSION", "the target version; a [package] of it must exist"},
    {"rollout", "rings", "LIST", "the [ring] sections, in the order they open"},
    {"rollout", "min_success", "PERCENT",
     "a ring opens once the previous ring has this share of its members on the target version "
     "(default 95%)"},
    {"rollout", "max_failure", "PERCENT",
     "a ring whose failed members exceed this share (strictly) pauses the rollout (default "
     "5%)"},
    {"rollout", "client_rate", "RATE",
     "bandwidth each grant reserves against max_upgrade_bandwidth (default: none)"},
    {"rollout", "lease", "DURATION",
     "a grant lapses after this long without a heartbeat (default 15m; at most 7d)"},
    {"rollout", "token_file", "PATH",
     "the enrolment token clients send (first line; mode 0600, checked by config check)"},
    {"ring", "members", "GLOBS", "the ring's clients, as globs over client IDs"},
    {"ring", "members_file", "PATH", "the ring's clients, one ID a line (# comments)"},
    {"ring", "size", "N",
     "members counted for min_success and max_failure (default: the file's IDs plus the "
     "clients seen so far that match members; set it for a ring of globs: config check "
     "warns)"},
    {"ring", "opens", "TIME", "earliest time the ring opens (RFC 3339, e.g. 2026-12-01T08:00Z)"},
    {"package", "product", "NAME", "the product this package is a version of"},
    {"package", "version", "VERSION",
     "its version (7.2, 7.10.1: numeric parts compare as numbers)"},
    {"package", "path", "PATH", "the package in the content store (relative); grants name it"},
    {"package", "from", "VERSION",
     "the oldest version it upgrades from; an older client gets an earlier step first "
     "(default: any)"},
    {"package", "soak", "DURATION",
     "how long a client stays on this version before its next step (e.g. 24h)"},
    {NULL, NULL, NULL, NULL},
};

const struct help_key *help_key_find(const char *section, const char *key)
{
    for (const struct help_key *k = help_keys; k->section; k++)
        if (strcmp(k->section, section) == 0 && strcmp(k->key, key) == 0)
            return k;
    return NULL;
}

/*
 * The command table behind every help text, the man page distsync(1) and
 * the bash completion (see help.h). A command's --help lists exactly the
 * options of its getopt table; tests/func/cli_help.sh checks both agree.
 */
#include <string.h>

#include "distsync/strdist.h"
#include "help.h"

#define O_JSON                                                                                     \
    {                                                                                              \
        "json", 0, NULL, "print JSON on stdout instead of text"                                    \
    }
#define O_JSONJ                                                                                    \
    {                                                                                              \
        "json", 'j', NULL, "print JSON on stdout instead of text"                                  \
    }
#define O_NO_SCAN                                                                                  \
    {                                                                                              \
        "no-scan", 0, NULL, "skip the incremental scan of the store before planning"               \
    }
#define O_HELP                                                                                     \
    {                                                                                              \
        "help", 'h', NULL, "print this help and exit"                                              \
    }
#define O_END                                                                                      \
    {                                                                                              \
        NULL, 0, NULL, NULL                                                                        \
    }

/* The selection every server command takes (src/cli/select.c). */
#define O_SITE                                                                                     \
    {                                                                                              \
        "site", 0, "S", "every server of site S (repeatable)"                                      \
    }
#define O_ALL                                                                                      \
    {                                                                                              \
        "all", 'a', NULL, "every configured server"                                                \
    }
#define O_CLASS                                                                                    \
    {                                                                                              \
        "class", 0, "C", "only content class C (repeatable; default: every class)"                 \
    }
#define O_SERVER                                                                                   \
    {                                                                                              \
        "server", 0, "S", "server S (deprecated: name it as an argument)"                          \
    }

static const struct help_opt o_version[] = {O_HELP, O_END};
static const struct help_opt o_freeze[] = {
    O_SITE,
    {"until", 0, "TIME", "end of the freeze: RFC 3339 or a duration from now (4h, 2d)"},
    {"reason", 0, "TEXT", "why (shown by runs that skip the server and by status)"},
    O_HELP,
    O_END,
};
static const struct help_opt o_thaw[] = {O_SITE, O_ALL, O_HELP, O_END};
static const struct help_opt o_runs[] = {
    {"json", 0, NULL, "the daemon's JSON ({\"runs\": [...]}, as GET /v1/runs?live=1)"},
    O_HELP,
    O_END,
};
static const struct help_opt o_cancel[] = {O_HELP, O_END};
static const struct help_opt o_rollout[] = {
    {"json", 0, NULL, "list and status: one JSON document (the daemon API's shape)"},
    {"reason", 0, "TEXT", "pause: why (shown to clients: \"rollout paused: TEXT\")"},
    O_HELP,
    O_END,
};
static const struct help_opt o_daemon[] = {
    {"no-scan", 0, NULL, "do not scan the store before each run"},
    O_HELP,
    O_END,
};
static const struct help_opt o_help[] = {O_HELP, O_END};
static const struct help_opt o_config[] = {
    O_JSON,
    {"connect", 0, NULL,
     "then connect to each smb:// and ssh:// server (or those named): an SMB share and "
     "directory; an SSH host key, login, target root and the agent (or SFTP and why)"},
    O_HELP,
    O_END,
};
static const struct help_opt o_schedule[] = {
    {"rule", 0, "RULE", "preview this rule instead of a configured schedule"},
    {"tz", 0, "ZONE", "IANA time zone of --rule (default: the console's)"},
    {"window", 0, "W", "run window of --rule (e.g. 4h)"},
    {"from", 0, "RFC3339", "list fire times after this instant (default: now)"},
    {"count", 'n', "N", "how many fire times to print (default 10)"},
    O_JSON,
    O_HELP,
    O_END,
};
static const struct help_opt o_scan[] = {
    O_JSONJ,
    {"threads", 't', "N", "threads hashing files (default: scan_threads, else the CPUs)"},
    {"precompute", 0, NULL,
     "then compute the deltas the servers' next syncs need, on every CPU (also: [console] "
     "precompute = yes)"},
    O_HELP,
    O_END,
};
static const struct help_opt o_files[] = {
    O_JSONJ,
    {"class", 'C', "C", "list only content class C"},
    {"chunks", 0, "PATH", "print each chunk (offset, length, XXH3-128) of the file PATH"},
    O_HELP,
    O_END,
};
static const struct help_opt o_scans[] = {O_JSONJ, O_HELP, O_END};
static const struct help_opt o_trust[] = {
    {"yes", 'y', NULL, "record the key without asking (for scripts; check the fingerprint first)"},
    O_HELP,
    O_END,
};
static const struct help_opt o_backup[] = {
    {"out", 'o', "FILE", "the archive to write (tar + zstd, mode 0600; required)"},
    {"include-secrets", 0, NULL,
     "also save the secret files the config names (identity = private keys)"},
    O_HELP,
    O_END,
};
static const struct help_opt o_restore[] = {
    {"force", 0, NULL, "replace existing files, keeping each old one as FILE.bak"},
    {"dry-run", 'n', NULL,
     "check the archive and the destinations, print what would be restored, "
     "write nothing"},
    O_HELP,
    O_END,
};
static const struct help_opt o_import[] = {O_HELP, O_END};
static const struct help_opt o_agent[] = {
    {"root", 'r', "DIR", "the target directory the agent writes into (required)"},
    {"import", 0, "BUNDLE",
     "apply a bundle made by distsync export instead of serving stdin/stdout"},
    O_HELP,
    O_END,
};
static const struct help_opt o_export[] = {
    {"out", 'o', "FILE", "the bundle to write (required; written whole or not at all)"},
    {"since-manifest", 'm', "MANIFEST",
     "the server's state: its .distsync/manifest (default: the catalog's last-known manifest)"},
    {"full", 0, NULL, "a self-contained bundle: every file whole or as a copy, no basis needed"},
    {"force", 0, NULL, "allow deletions over max_delete (never without a completed scan)"},
    O_NO_SCAN,
    O_HELP,
    O_END,
};
static const struct help_opt o_precompute_worker[] = {
    {"parent", 0, "PID", "the daemon's pid: the worker dies with it"},
    {"scan", 0, "scan:N", "the scan generation it follows, for its log lines"},
    O_END,
};
static const struct help_opt o_smb_worker[] = {
    {"url", 0, "URL", "smb://host[:port]/share/dir"},
    {"server", 0, "NAME", "the server's name, for messages"},
    {"timeout", 0, "S", "connect and request timeout in seconds"},
    {"encrypt", 0, NULL, "require SMB3 encryption"},
    {"readback", 0, NULL, "read back files built with server-side copies (verify = readback)"},
    {"retain", 0, "DIR", "the console's retain store: check files built with server-side copies"},
    O_HELP,
    O_END,
};
static const struct help_opt o_plan[] = {O_SITE,  O_ALL,     O_CLASS, O_SERVER,
                                         O_JSONJ, O_NO_SCAN, O_HELP,  O_END};
static const struct help_opt o_sync[] = {
    O_JSONJ,
    {"dry-run", 'n', NULL, "print the plan, change nothing"},
    O_SITE,
    O_ALL,
    O_CLASS,
    O_SERVER,
    {"force", 0, NULL, "prune past max_delete (never without a completed scan)"},
    O_NO_SCAN,
    {"as-of", 0, "TIME|scan:GEN",
     "ship the store as it was at TIME (RFC 3339, or a duration back: 2d): the versions of the "
     "latest scan that started by then; or exactly as scan generation GEN recorded it (distsync "
     "scans lists them); a version no longer held is reported, never replaced"},
    {"wait", 0, "[=SECONDS]",
     "wait for a busy server's lease (polls with backoff; default 600 s), else report it busy"},
    {"delta-level", 0, "N",
     "zstd level (1-22) of the deltas this run computes (default: sync_delta_level); cached "
     "deltas of level N or higher are used as they are"},
    {"fast", 0, NULL, "the same as --delta-level 3: for a run that cannot wait"},
    O_HELP,
    O_END,
};
static const struct help_opt o_status[] = {
    O_SITE,
    O_ALL,
    O_CLASS,
    O_SERVER,
    O_JSONJ,
    O_NO_SCAN,
    {"offline", 0, NULL,
     "report from the catalog's last-known manifests without reading the servers (offline "
     "servers, after import-manifest; drift cannot show)"},
    O_HELP,
    O_END,
};
static const struct help_opt o_verify[] = {
    O_JSONJ, {"repair", 'r', NULL, "re-send drifted or missing files, then verify again"},
    O_SITE,  O_ALL,
    O_CLASS, O_SERVER,
    O_HELP,  O_END,
};
static const struct help_opt o_history[] = {
    O_SITE,
    O_ALL,
    O_SERVER,
    {"class", 0, "C", "refused: a run covers every class of its server"},
    {"limit", 'n', "N", "at most N runs (newest first)"},
    {"events", 'e', NULL, "also print each run's events"},
    O_JSONJ,
    O_HELP,
    O_END,
};
static const struct help_opt o_gc[] = {
    O_JSONJ,
    {"keep-history", 'k', "DAYS", "also delete run history older than DAYS days"},
    {"force", 'f', NULL,
     "collect even while a server's manifest is unknown; prune runs younger than a day"},
    {"dry-run", 'n', NULL, "report what would be freed, change nothing"},
    O_HELP,
    O_END,
};
static const struct help_opt o_complete[] = {O_HELP, O_END};

const struct help_opt help_global[] = {
    {"config", 'c', "FILE",
     "configuration file (else $DISTSYNC_CONFIG, else ./distsync.conf, else "
     "/etc/distsync/distsync.conf)"},
    {"quiet", 'q', NULL, "no progress or notes on stderr (warnings and errors stay)"},
    {"verbose", 'v', NULL,
     "debug log on stderr (the configuration file, the scan, each server's connection)"},
    {"version", 0, NULL, "print the version and exit"},
    {"help", 'h', NULL, "print the command list and exit"},
    O_END,
};

const struct help_cmd help_cmds[] = {
    {"help", "[COMMAND]", "print the command list, or one command's options",
     "Without COMMAND lists the commands; with one, prints its usage and every option "
     "(the same as COMMAND --help).",
     o_help, 0},
    {"version", "", "print the version", "Prints the version (also: distsync --version).",
     o_version, 0},
    {"config", "check [--json] [--connect [SERVER...]]", "check the configuration",
     "Loads and validates the configuration, then prints a summary. With --connect, then "
     "connects to each smb:// server (or those named), signed and with its credentials, and "
     "checks that its share and directory exist, and opens each ssh:// server as a sync "
     "would (host key, login, target root, the agent or SFTP), writing nothing. Exit status "
     "0 when valid, 2 when not (the "
     "error names file, line, section and key), 4 when a server could not be reached or "
     "refused the login.",
     o_config, 0},
    {"schedule", "next [NAME] [--rule RULE [--tz ZONE] [--window W]] [--from RFC3339] [--count N]",
     "preview schedule fire times",
     "Prints the next fire times of the named schedule, of every schedule, or of --rule, as "
     "RFC 3339 timestamps in the schedule's zone.",
     o_schedule, 0},
    {"scan", "[--json] [--threads N] [--precompute]", "scan the content store into the catalog",
     "Hashes new and changed files of the store into the catalog (incremental). With "
     "--precompute, then plans every server against the manifest it last committed and computes "
     "the deltas those plans need into the delta cache, so the next sync only sends. Exit status "
     "23 when some store files could not be read (the rest was scanned).",
     o_scan, 0},
    {"files", "[--json] [--class C] [PATH_PREFIX]", "list the catalog",
     "Lists the catalog's files (path, class, size, SHA-256, chunks, mtime).", o_files, 0},
    {"scans", "[--json]", "list the kept scan generations",
     "Lists the scan generations the catalog keeps (62 days, longer while a pending fire pins "
     "one), oldest first: scan:GEN, when it started and completed, and the schedule fires that "
     "pinned it. sync --as-of scan:GEN ships the store exactly as that scan recorded it.",
     o_scans, 0},
    {"agent", "--root DIR [--import BUNDLE]", "receive a sync session on stdin/stdout",
     "Speaks the apply protocol (src/PROTOCOL.md) on stdin/stdout and writes into DIR. Run by "
     "the console over SSH or for transport = agent; not for interactive use. With --import, "
     "applies a bundle made by distsync export, on the offline server itself, with the same "
     "receiver: the whole bundle is checked first (a hostile or damaged one is refused, naming "
     "the entry), then every basis file by SHA-256 (a bundle made for another state is refused "
     "with nothing changed), then each file is built, verified and renamed into place and the "
     "manifest written. A rerun after an interruption resumes; a bundle applied twice is a "
     "no-op. Exit 1 when the bundle is refused or a file fails.",
     o_agent, 0},
    {"export", "SERVER --out FILE [--since-manifest MANIFEST] [--full] [--force] [--no-scan]",
     "write an update bundle for an offline server",
     "After the incremental scan, plans SERVER as a sync would (the same deltas from the delta "
     "cache, copies, deletions under prune and its guards) against the state it is known to hold "
     "(the catalog's last-known manifest, or --since-manifest, or nothing with --full) and "
     "writes it as a bundle: a tar archive compressed with zstd holding a header (server, "
     "console, basis and result manifest hashes, format version), the expected manifest, an "
     "index and the data. Carry it to the server and apply it there with distsync agent --root "
     "DIR --import FILE. Exit 1 when the bundle could not be written (the message names the "
     "file).",
     o_export, 0},
    {"plan", "SERVER... | --site S | --all [--class C] [--json] [--no-scan]",
     "what a sync would do",
     "Prints the operations a sync of each server would perform (read-only: no lease is taken). "
     "Exit 4 when the server could not be read.",
     o_plan, 0},
    {"sync",
     "SERVER... | --site S | --all [--class C] [--as-of TIME|scan:GEN] [--dry-run] [--json] "
     "[--force] "
     "[--no-scan] [--wait[=SECONDS]] [--delta-level N | --fast]",
     "sync now",
     "Syncs the servers after the incremental scan, up to max_servers at once under the "
     "bandwidth caps (distsync.conf(5)). SIGHUP re-reads the configuration's caps and applies "
     "them to the running transfers (a broken file is reported and the old caps stay); SIGINT or "
     "SIGTERM cancels. A server whose lease another console holds is reported as busy (exit 5) "
     "unless --wait waits for it. --as-of TIME ships the desired set as the store was at TIME "
     "(snapshot pinning, as a delayed schedule's fire does; standalone or through the daemon): "
     "a version that neither the store nor the retain store holds any more fails its file "
     "(reported, the server keeps what it has), and a TIME older than every kept scan (62 "
     "days) is an error. --as-of scan:GEN ships exactly the scan generation GEN (distsync scans "
     "lists them; one not kept is an error naming the kept range). Exit 4 when a server failed, 25 "
     "when a prune guard held deletions "
     "back.",
     o_sync, 0},
    {"status", "[SERVER... | --site S | --all] [--class C] [--json] [--no-scan]",
     "file status report",
     "For each server: files missing, outdated, drifted, unrecorded, extra and in sync, with "
     "counts and bytes. Read-only. Exit 0 when every server is in sync, 6 when a sync would "
     "change something, 3 when files drifted, 4 when a server could not be read (listed in the "
     "JSON with its error).",
     o_status, 0},
    {"verify", "SERVER... | --site S | --all [--class C] [--repair] [--json]",
     "hash every file on servers",
     "The receiver hashes every file of the server's manifest and the console compares; the "
     "servers are verified at once, up to max_servers. Exit 3 "
     "when drifted, missing or unreadable files were found, 4 when a server could not be "
     "verified or repair failed.",
     o_verify, 0},
    {"history", "[SERVER... | --site S | --all] [--limit N] [--events] [--json]", "list sync runs",
     "Lists the recorded sync runs, newest first, optionally with their events.", o_history, 0},
    {"daemon", "[--no-scan]", "run the configured schedules",
     "Runs the [schedule NAME] sections: each fire scans the store (incrementally) and syncs the "
     "schedule's servers and sites under the caps. A fire missed while the daemon was down runs "
     "once at start-up when it is within catch_up (default 24h); a fire not started by fire + "
     "window is skipped and recorded. SIGHUP reloads the configuration (a broken file is logged "
     "with file:line and the old one stays); SIGTERM or SIGINT stops cleanly (the running fire "
     "is recorded interrupted and caught up at the next start). Logs to stderr, with systemd's "
     "<N> priority prefix when JOURNAL_STREAM is set. It serves the HTTP API on "
     "STATE/distsync.sock (and on [console] listen = with a bearer token), which sync, freeze, "
     "thaw, history, schedule next, runs and cancel use while it runs. Exit 0 after a clean stop.",
     o_daemon, 0},
    {"runs", "[--json]", "the daemon's live runs",
     "Lists the running daemon's queued and running runs with their progress: bytes done of "
     "the total, bytes on the wire, the rate and the ETA, per server. With no daemon running "
     "there are none.",
     o_runs, 0},
    {"cancel", "RUN", "cancel a daemon run",
     "Cancels the daemon's run RUN (an id from distsync runs): a queued run at once, a running "
     "one winds down (files in flight aborted, leases released) and is recorded cancelled. "
     "Exit 1 when no daemon runs or there is no such live run.",
     o_cancel, 0},
    {"freeze", "SERVER... | --site S [--until TIME] [--reason TEXT]", "stop all writes to servers",
     "Freezes the servers (for migrations and server upgrades) until thawed or until TIME: "
     "every run (sync, the daemon's schedules) skips a frozen server and says so; status lists "
     "it as frozen. Plans and status still read it.",
     o_freeze, 0},
    {"thaw", "SERVER... | --site S | --all", "end a freeze",
     "Thaws the servers: runs write to them again.", o_thaw, 0},
    {"gc", "[--keep-history DAYS] [--force] [--dry-run] [--json]",
     "free unreferenced retained versions",
     "Frees retained versions no configured server references and reports the space used by "
     "the retain store and the delta cache.",
     o_gc, 0},
    {"trust", "SERVER [--yes]", "record an ssh:// server's host key",
     "Connects to the ssh:// server SERVER (no login), prints its host key's SHA256 "
     "fingerprint, asks on the terminal, and appends the key to the server's known_hosts file "
     "(created 0600 if missing). Without a terminal it refuses unless --yes. A key that differs "
     "from the recorded one is refused: remove the old entry first (ssh-keygen -R). Exit 4 when "
     "the server cannot be reached or its key differs from the recorded one, 2 for a server "
     "that is not ssh:// or with no terminal to ask on (and no --yes), 1 when the answer is no "
     "or known_hosts cannot be written.",
     o_trust, 0},
    {"backup", "--out FILE [--include-secrets]", "save the console's config and state",
     "Writes one tar + zstd archive (atomically, mode 0600) holding the config file, the state "
     "catalog (copied with SQLite's online backup API: consistent while the daemon or a sync "
     "runs) and the known_hosts files of the ssh:// servers, with a MANIFEST of the distsync "
     "version, the console id, the date and every file's SHA-256. Secret files the config names "
     "(identity =) are saved only with --include-secrets; otherwise the MANIFEST lists them as "
     "left out and a line on stderr says so. The retain store and the delta cache are not saved "
     "(they refill). Back up before every upgrade. Exit 1 when a file cannot be read or the "
     "archive written.",
     o_backup, 0},
    {"restore", "FILE [--force] [--dry-run]", "put a backup back on a console",
     "Checks the whole archive first (the MANIFEST, every member's SHA-256 and size; links, "
     "unsafe names, sizes that lie and decompression bombs are refused) and writes nothing "
     "until it passed. Each file goes back to the path it came from, which must be one the "
     "restored config names; an existing config, catalog or known_hosts is refused unless "
     "--force, which keeps it as FILE.bak. Files are written aside with their modes and renamed "
     "into place; the catalog's migrations run, so a backup of an older distsync restores on a "
     "newer one. The destinations come from the archive: run with --dry-run first to see them. "
     "Exit 1 when refused or when a file cannot be written.",
     o_restore, 0},
    {"import-manifest", "SERVER FILE", "record an offline server's manifest",
     "Makes FILE, the manifest an offline server holds in ROOT/.distsync/manifest (written "
     "there by distsync agent --import and carried back), the catalog's last-known manifest of "
     "SERVER, so status --offline, gc and the next export see what the server holds. FILE is "
     "checked as untrusted input first (the manifest decoder: format, safe paths, its SHA-256 "
     "trailer); a bad one is refused naming the file and nothing is recorded. The import is "
     "recorded as a run whose totals are the files created, updated and deleted since the "
     "manifest known before. Exit 2 for an unknown server, 1 for a refused file.",
     o_import, 0},
    {"rollout",
     "list [--json] | status NAME [--json] | pause NAME [--reason TEXT] | resume NAME "
     "| promote NAME",
     "client-upgrade rollouts: counts, pause, resume, promote",
     "The upgrade gate's rollouts ([rollout NAME] in distsync.conf(5)), read from the state "
     "database. list: one line per rollout (state and counts); status: its rings with members, "
     "granted, waiting, succeeded, failed and expired clients, whether each is open or why not, "
     "and on how many servers the target package is staged. pause stops new grants (clients are "
     "told \"rollout paused: REASON\"; grants in progress go on); resume lifts a pause, the "
     "operator's or one a ring's failures over max_failure caused; promote opens the next closed "
     "ring whatever its min_success and opening time. Exit 2 for an unknown rollout or a "
     "promote with every ring open.",
     o_rollout, 0},
    {"complete", "servers|sites|classes|rollouts", "names for shell completion",
     "Prints the configured server, site, content class or rollout names, one a line (used by "
     "the bash completion).",
     o_complete, 1},
    {"smb-worker", "--url URL --server NAME", "the SMB worker of one smb:// server",
     "Spawned by the console for each smb:// server: reads the credentials and then speaks the "
     "apply protocol on stdin/stdout, writing through libsmbclient; not for interactive use.",
     o_smb_worker, 1},
    {"precompute-worker", "--parent PID [--scan scan:N]", "the daemon's precompute after a scan",
     "Spawned by distsync daemon after a scan that changed the catalog when [console] precompute "
     "= yes: computes the deltas the servers' next runs need at nice +10 and writes scan --json's "
     "\"precompute\" object; not for interactive use.",
     o_precompute_worker, 1},
    {NULL, NULL, NULL, NULL, NULL, 0},
};

const struct help_exit help_exits[] = {
    {0, "success; status: every server in sync; verify: no drift"},
    {1, "the command failed on the console (catalog, store, state directory...)"},
    {2, "usage or configuration error"},
    {3, "drift: files on a server differ from its manifest (verify, status)"},
    {4, "a server failed or could not be reached (sync, plan, status, verify)"},
    {5, "a server is busy: another console holds its lease (sync without --wait, or the wait "
        "ran out)"},
    {6, "work pending: a sync would change a server (status: files missing, outdated, "
        "unrecorded, unreadable in the store, or extra ones prune would delete)"},
    {23, "scan finished, but some store files could not be read"},
    {25, "sync: a prune guard held deletions back (see max_delete, --force)"},
    {130, "interrupted by SIGINT (143: SIGTERM)"},
    {-1, NULL},
};

const struct help_signal help_signals[] = {
    {"SIGHUP", "sync: re-read the configuration file's bandwidth caps and apply them to the "
               "running transfers; a file that does not load is reported (file:line) and the "
               "old caps stay. verify: ignored. Other commands: the default action (they end)."},
    {"SIGINT", "sync and verify: cancel; no new file is started, what is in flight is "
               "aborted, the lease is released and the run is recorded as cancelled; exit 130. "
               "A second one exits at once. Other commands: the default action (they end)."},
    {"SIGTERM", "as SIGINT; exit 143."},
    {NULL, NULL},
};

const struct help_cmd *help_find(const char *name)
{
    for (const struct help_cmd *c = help_cmds; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

const char *help_suggest(const char *name)
{
    const char *best = NULL;
    size_t bestd = 4, len = strlen(name);

    for (const struct help_cmd *c = help_cmds; c->name; c++) {
        size_t d = c->hidden ? 99 : ds_strdist(name, c->name);

        if (d < bestd && d < len) {
            best = c->name;
            bestd = d;
        }
    }
    return best;
}

static void print_opt(FILE *f, const struct help_opt *o)
{
    char left[64];
    int n = 0;

    if (o->shrt)
        n = snprintf(left, sizeof(left), "-%c, ", o->shrt);
    snprintf(left + n, sizeof(left) - (size_t)n, "--%s%s%s", o->lng,
             o->arg && o->arg[0] != '[' ? " " : "", o->arg ? o->arg : "");
    fprintf(f, "  %-24s %s\n", left, o->desc);
}

void help_print_main(FILE *f)
{
    fputs("usage: distsync [-c FILE] [-q] [-v] COMMAND [ARGS]\n"
          "       distsync --version | --help\n\ncommands:\n",
          f);
    for (const struct help_cmd *c = help_cmds; c->name; c++)
        if (!c->hidden)
            fprintf(f, "  %-15s %s\n", c->name, c->summary); /* import-manifest: 15 */
    fputs("\nglobal options:\n", f);
    for (const struct help_opt *o = help_global; o->lng; o++)
        print_opt(f, o);
    fputs("\nRun 'distsync help COMMAND' or 'distsync COMMAND --help' for a command's options.\n"
          "Exit statuses: see 'man distsync' or README.md.\n",
          f);
}

/* Prints text wrapped at 78 columns. */
static void print_wrapped(FILE *f, const char *text)
{
    size_t col = 0;

    while (*text) {
        size_t w = strcspn(text, " ");

        if (col > 0 && col + 1 + w > 78) {
            fputc('\n', f);
            col = 0;
        } else if (col > 0) {
            fputc(' ', f);
            col++;
        }
        fprintf(f, "%.*s", (int)w, text);
        col += w;
        text += w;
        text += strspn(text, " ");
    }
    fputc('\n', f);
}

void help_print_cmd(FILE *f, const struct help_cmd *c)
{
    fprintf(f, "usage: distsync [-c FILE] %s%s%s\n%s\n\n", c->name, c->synopsis[0] ? " " : "",
            c->synopsis, c->summary);
    print_wrapped(f, c->text);
    fputs("\noptions:\n", f);
    for (const struct help_opt *o = c->opts; o->lng; o++)
        print_opt(f, o);
}

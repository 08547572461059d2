/*
 * distsync agent --root DIR: the receiver of the apply protocol on
 * stdin/stdout (exec'd by the console over SSH, or over a pipe). Exit 0 on
 * BYE or end of input at a frame boundary, 1 when the session ended on a
 * protocol error or mid-frame, 2 on bad usage. Diagnostics go to stderr.
 *
 * distsync agent --root DIR --import FILE: applies a bundle (made by
 * `distsync export`) with the same receiver, in process. Exit 0 when the
 * server holds the bundle's manifest, 1 when the bundle was refused or a
 * file failed (nothing changed when refused; a rerun resumes otherwise).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "distsync/apply.h"
#include "distsync/bundle.h"
#include "distsync/error.h"

/*
 * Serves the session (ds_apply_serve: bounded memory, whatever the console
 * pipelines), then ends it: at end of input the manifest is written and the
 * lease released. Returns the exit status.
 */
static int agent_serve(ds_apply_t *ap)
{
    char err[512] = "";
    int rc = ds_apply_serve(ap, STDIN_FILENO, STDOUT_FILENO, err, sizeof(err));
    int frc = ds_apply_finish(ap);

    if (rc < 0) {
        cli_err("agent: %s", err);
        return CLI_EXIT_FAIL;
    }
    return frc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* --import FILE: the bundle through the receiver. Returns the exit status. */
static int agent_import(const char *root, const char *bundle)
{
    ds_bundle_import_opts_t io = {.root = root, .bundle = bundle};
    ds_bundle_import_stats_t st;
    char err[1536], host[256] = "";

    if (gethostname(host, sizeof(host) - 1) == 0)
        io.host = host;
#ifdef DS_TEST_HOOKS /* test builds only (cmake -DDS_TEST_HOOKS=ON): never in a release */
    io.no_fsync = getenv("DISTSYNC_TEST_NO_FSYNC") != NULL;
    if (getenv("DISTSYNC_TEST_IMPORT_PAUSE_MS") != NULL)
        io.pause_ms = (unsigned)atoi(getenv("DISTSYNC_TEST_IMPORT_PAUSE_MS"));
#endif
    if (ds_bundle_import(&io, &st, err, sizeof(err)) < 0) {
        cli_err("agent: import: %s", err);
        return CLI_EXIT_FAIL;
    }
    if (st.noop)
        printf("import %s: already applied: %s holds its manifest, nothing to do\n",
               cli_esc(bundle), cli_esc(root));
    else
        printf("import %s: %" PRIu64 " file%s written, %" PRIu64 " already there (%" PRIu64
               " recorded), %" PRIu64 " deleted; manifest written\n",
               cli_esc(bundle), st.written, st.written == 1 ? "" : "s", st.already, st.adopted,
               st.deleted);
    return CLI_EXIT_OK;
}

int cmd_agent(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"root", required_argument, NULL, 'r'},
        {"import", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *root = NULL, *bundle = NULL;
    char err[512];
    ds_apply_t *ap = NULL;
    ds_apply_opts_t ao = {.peer_reports = 1}; /* the console prints FILE_ERR and ERR */
    int ch, status;

    while ((ch = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'r':
            root = optarg;
            break;
        case 'i':
            bundle = optarg;
            break;
        case 'h':
            printf("usage: distsync agent --root DIR [--import BUNDLE]\n"
                   "Speaks the apply protocol (src/PROTOCOL.md) on stdin/stdout, or applies a\n"
                   "bundle made by distsync export.\n");
            return CLI_EXIT_OK;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (root == NULL || optind != argc) {
        cli_err("usage: distsync agent --root DIR [--import BUNDLE]");
        return CLI_EXIT_USAGE;
    }
    if (bundle != NULL)
        return agent_import(root, bundle);
    signal(SIGPIPE, SIG_IGN);
    /* tests only: act as an older agent (protocol version negotiation) */
    if (getenv("DISTSYNC_TEST_MAX_PROTOCOL") != NULL)
        ao.max_version = (unsigned)atoi(getenv("DISTSYNC_TEST_MAX_PROTOCOL"));
    if (ds_apply_new(root, &ao, &ap, err, sizeof(err)) < 0) {
        cli_err("agent: %s", err);
        return CLI_EXIT_FAIL;
    }
    status = agent_serve(ap);
    ds_apply_free(ap);
    return status;
}

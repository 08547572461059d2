/*
 * distsync agent --root DIR: the receiver of the apply protocol on
 * stdin/stdout (exec'd by the console over SSH, or over a pipe). Exit 0 on
 * BYE or end of input at a frame boundary, 1 when the session ended on a
 * protocol error or mid-frame, 2 on bad usage. Diagnostics go to stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "distsync/apply.h"
#include "distsync/error.h"

#define AGENT_READ (1u << 20)

/* Writes every queued reply byte (blocking: a slow console slows us). */
static int flush_out(ds_apply_t *ap)
{
    const uint8_t *p;
    size_t len, off = 0;

    ds_apply_output(ap, &p, &len);
    while (off < len) {
        ssize_t w = write(STDOUT_FILENO, p + off, len - off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        off += (size_t)w;
    }
    ds_apply_output_consume(ap, off);
    return 0;
}

static int at_eof(ds_apply_t *ap)
{
    size_t partial = ds_apply_pending(ap);
    int rc = ds_apply_finish(ap);

    if (partial) {
        cli_err("agent: input ended inside a frame (%zu bytes buffered)", partial);
        return CLI_EXIT_FAIL;
    }
    return rc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/*
 * Reads input only when the receiver wants it (its output drained, no reply
 * streaming) and the previous read is consumed, so memory stays bounded
 * whatever the console pipelines.
 */
static int agent_loop(ds_apply_t *ap, uint8_t *buf)
{
    size_t off = 0, n = 0;

    for (;;) {
        long used;

        if (off == n && ds_apply_want_input(ap)) {
            ssize_t r = read(STDIN_FILENO, buf, AGENT_READ);

            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                cli_err("agent: reading stdin: %s", strerror(errno));
                return CLI_EXIT_FAIL;
            }
            if (r == 0)
                return at_eof(ap);
            off = 0;
            n = (size_t)r;
        }
        used = ds_apply_feed(ap, buf + off, n - off);
        if (used > 0)
            off += (size_t)used;
        if (flush_out(ap) < 0) {
            cli_err("agent: writing stdout: %s", strerror(errno));
            return CLI_EXIT_FAIL;
        }
        if (used < 0) {
            cli_err("agent: session ended: %s", ds_strerror((int)used));
            return CLI_EXIT_FAIL;
        }
        if (ds_apply_done(ap))
            return CLI_EXIT_OK;
    }
}

int cmd_agent(struct cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"root", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *root = NULL;
    char err[512];
    ds_apply_t *ap = NULL;
    uint8_t *buf;
    ds_apply_opts_t ao = {0};
    int ch, status;

    while ((ch = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'r':
            root = optarg;
            break;
        case 'h':
            printf("usage: distsync agent --root DIR\n"
                   "Speaks the apply protocol (src/PROTOCOL.md) on stdin/stdout.\n");
            return CLI_EXIT_OK;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (root == NULL || optind != argc) {
        cli_err("usage: distsync agent --root DIR");
        return CLI_EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    /* tests only: act as an older agent (protocol version negotiation) */
    if (getenv("DISTSYNC_TEST_MAX_PROTOCOL") != NULL)
        ao.max_version = (unsigned)atoi(getenv("DISTSYNC_TEST_MAX_PROTOCOL"));
    if (ds_apply_new(root, &ao, &ap, err, sizeof(err)) < 0) {
        cli_err("agent: %s", err);
        return CLI_EXIT_FAIL;
    }
    buf = malloc(AGENT_READ);
    if (buf == NULL) {
        ds_apply_free(ap);
        cli_err("agent: out of memory");
        return CLI_EXIT_FAIL;
    }
    status = agent_loop(ap, buf);
    free(buf);
    ds_apply_free(ap);
    return status;
}

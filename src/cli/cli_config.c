/* Loading the configuration for any subcommand that needs it. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "distsync/config.h"

/* path as one shell word: bare when every byte is plain, else in double
 * quotes, else (it holds one of "$`\!) in single quotes, a ' as '"'"'
 * (no backslash: cli_esc would double it). */
static void shell_word(const char *path, char *out, size_t len)
{
    size_t n = 0;

    if (path[0] != '\0' && strspn(path, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                        "0123456789_./+,:=@%-") == strlen(path)) {
        snprintf(out, len, "%s", path);
        return;
    }
    if (strpbrk(path, "\"$`\\!") == NULL) {
        snprintf(out, len, "\"%s\"", path);
        return;
    }
    n += (size_t)snprintf(out + n, len - n, "'");
    for (const char *p = path; *p && n < len; p++)
        n += (size_t)snprintf(out + n, len - n, *p == '\'' ? "'\"'\"'" : "%c", *p);
    if (n < len)
        snprintf(out + n, len - n, "'");
}

/* See cli.h. */
const char *cli_hint(const struct cli *cli, const char *msg)
{
    static const char cmd[] = "'distsync trust ";
    static char buf[2048];
    char word[1024];
    const char *at = strstr(msg, cmd);

    if (cli->config_flag == NULL || at == NULL)
        return msg;
    shell_word(cli->config_flag, word, sizeof(word));
    snprintf(buf, sizeof(buf), "%.*s'distsync -c %s trust %s", (int)(at - msg), msg, word,
             at + sizeof(cmd) - 1);
    return buf;
}

int cli_config_load(struct cli *cli, ds_config_t **out)
{
    char err[512];

    if (cli->config_path == NULL) {
        cli_err(
            "no configuration: give -c FILE, set $DISTSYNC_CONFIG, or create ./" CLI_LOCAL_CONFIG
            " or " CLI_SYSTEM_CONFIG " (see conf/distsync.conf)");
        return CLI_EXIT_USAGE;
    }
    if (ds_config_load(cli->config_path, out, err, sizeof(err)) < 0) {
        cli_err("%s", err);
        return CLI_EXIT_USAGE;
    }
    if (cli->verbose) /* which of the four places it came from */
        cli_err("debug: configuration %s", cli->config_path);
    return 0;
}

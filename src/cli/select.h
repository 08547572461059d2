/*
 * Selecting servers and classes, the same way for plan, sync, status,
 * verify and history (src/cli/select.c):
 *   SERVER...      these servers
 *   --site S       every server of site S (repeatable)
 *   --all          every server
 *   --class C      only content class C (repeatable; default: every class)
 *   --server S     deprecated alias of SERVER
 * plus the command's own flags. Unknown names exit 2, listing the valid ones.
 */
#ifndef DS_CLI_SELECT_H
#define DS_CLI_SELECT_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"

/* One command flag: --name (and -shortc when not 0). With num, the flag
 * takes a number >= 0 stored there; else *set becomes 1. With optional
 * (long form only: --name[=N]), the number may be left out: *set becomes 1
 * and *num keeps its value. With text (and num NULL) it takes a text
 * argument: *text points at it (an argv string). */
struct cli_flag {
    const char *name;
    int shortc;
    int *set;
    int64_t *num;
    int optional;
    const char **text;
};

#define CLI_FLAGS_MAX 16 /* flags of one command, at most */

struct cli_select {
    char **names; /* SERVER... and --server values (argv strings) */
    size_t nnames;
    char **legacy; /* --server values alone (history: an unchecked filter) */
    size_t nlegacy;
    char **sites;
    size_t nsites;
    char **classes;
    size_t nclasses;
    int all;
};

/* Parses argv (argv[0] is the command) into sel and flags; usage is printed
 * for --help (to stdout) and for bad options (to stderr). Returns 0, -1
 * after --help, or CLI_EXIT_USAGE. Free sel with cli_select_free. */
int cli_select_parse(const char *usage, int argc, char **argv, const struct cli_flag *flags,
                     struct cli_select *sel);

void cli_select_free(struct cli_select *sel);

/* The servers sel names, in configuration order, into *srv (cfg->nservers
 * slots, free() it). Nothing named: every server when all_by_default, else
 * a usage error. Checks every --class against [console] classes. Prints
 * the error (naming the unknown server, site or class and listing the
 * valid ones) and returns CLI_EXIT_USAGE, else 0. */
int cli_select_resolve(const char *cmd, const ds_config_t *cfg, const struct cli_select *sel,
                       int all_by_default, const ds_server_cfg_t ***srv, size_t *n);

/* Whether klass is one of cfg's [console] classes: 0, or CLI_EXIT_USAGE
 * after printing "CMD: unknown class" with the valid ones. */
int cli_select_check_class(const char *cmd, const ds_config_t *cfg, const char *klass);

/* sel's classes as a list for ds_sync_opts_t.only_classes (NULL: all). */
const ds_strlist_t *cli_select_classes(const struct cli_select *sel, ds_strlist_t *buf);

#endif

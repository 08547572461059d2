/*
 * The one description of distsync's command line (src/cli/help.c) and of
 * its configuration keys (src/cli/help_conf.c). `distsync help`, every
 * `CMD --help`, the man pages distsync(1) and distsync.conf(5) and the bash
 * completion (doc/gen_doc.c, run by CMake) are all printed from these
 * tables, so they cannot disagree. No dependency on the rest of the CLI:
 * the documentation generator links these two files alone.
 */
#ifndef DS_CLI_HELP_H
#define DS_CLI_HELP_H

#include <stdio.h>

struct help_opt {
    const char *lng;  /* long name without "--" */
    char shrt;        /* short letter, 0: none */
    const char *arg;  /* argument name, NULL: a flag; "[=X]": optional */
    const char *desc; /* one line */
};

struct help_cmd {
    const char *name;
    const char *synopsis; /* arguments after the command name */
    const char *summary;  /* one line, for the command list */
    const char *text;     /* a paragraph: what it does, exit statuses */
    const struct help_opt *opts;
    int hidden; /* not listed, not documented (debug helpers) */
};

struct help_exit {
    int code;
    const char *meaning;
};

struct help_signal {
    const char *name, *meaning;
};

/* The commands, ending with a NULL name. */
extern const struct help_cmd help_cmds[];
/* The global options (before the command), ending with a NULL lng. */
extern const struct help_opt help_global[];
/* The exit statuses, ending with code -1. */
extern const struct help_exit help_exits[];
/* The signals a running command acts on, ending with a NULL name. */
extern const struct help_signal help_signals[];

/* The command named name, or NULL. */
const struct help_cmd *help_find(const char *name);

/* The visible command closest to name (Levenshtein distance at most 3 and
 * less than name's length), or NULL. */
const char *help_suggest(const char *name);

/* Prints "usage: ..." and the command list (the output of `distsync help`). */
void help_print_main(FILE *f);

/* Prints a command's usage, text and one line per option. */
void help_print_cmd(FILE *f, const struct help_cmd *c);

/* One configuration key: section ("console", "server"...), key, value
 * syntax and a description (src/cli/help_conf.c). */
struct help_key {
    const char *section, *key, *value, *desc;
};

/* The documented keys, ending with a NULL section. */
extern const struct help_key help_keys[];

/* The description of key in section, or NULL when undocumented. */
const struct help_key *help_key_find(const char *section, const char *key);

#endif

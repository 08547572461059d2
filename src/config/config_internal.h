/*
 * Configuration internals shared by config.c (entry points, cross-section
 * checks, lookups) and config_parse.c (inih driver, per-key value parsing).
 */
#ifndef DS_CONFIG_INTERNAL_H
#define DS_CONFIG_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

#include "distsync/config.h"
#include "distsync/error.h"

/* Lines of the [console] keys, for cross-key checks after the file is read. */
struct ds__config_lines {
    int console, store, state, classes, chunk_min, chunk_avg, chunk_max;
};

/* Error sink: the first error wins; later ones are ignored. */
struct ds__config_err {
    const char *file; /* name used in messages */
    char *buf;
    size_t len;
    int failed;
};

/* Records "FILE:LINE: [SECTION] key 'KEY': MSG" (section and key may be
 * NULL; line 0 omits the line). Returns DS_ECONFIG. */
int ds__config_fail(struct ds__config_err *e, int line, const char *section, const char *key,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Runs inih over text and fills cfg with the sections and keys it holds.
 * Checks syntax, names, duplicates and each value on its own; the checks
 * that need the whole file are left to the caller. Returns 0 or DS_ECONFIG
 * (message in e), DS_ENOMEM. */
DS_MUST_CHECK int ds__config_read(const char *text, const char *base_dir, ds_config_t *cfg,
                                  struct ds__config_lines *lines, struct ds__config_err *e);

/* Splits a list value ("a, b c") into out (empty before the call). Each
 * entry must be a valid name; duplicates are rejected. Returns 0, DS_ENOMEM,
 * or DS_ECONFIG with a message (without location) in msg. */
DS_MUST_CHECK int ds__config_split(const char *value, ds_strlist_t *out, char *msg, size_t msglen);
/* The next item of a list separated by commas or white space: its start
 * (its length in *n), *s moved past it; NULL at the end of the list. */
const char *ds__config_item(const char **s, size_t *n);

/* Returns 1 when s is a valid name: [A-Za-z0-9._-]+, not only dots. */
DS_MUST_CHECK int ds__config_name_ok(const char *s);

/* Checks the shape of a server URL (file:///abs, ssh://[user@]host[:port]/path,
 * smb://host[:port]/share[/dir]). Returns 0, or DS_ECONFIG with a message in
 * msg that never repeats the URL's user information. */
DS_MUST_CHECK int ds__config_check_url(const char *url, char *msg, size_t msglen);

/* Parses a `bandwidth =` value at line into dst (empty before the call).
 * Returns 0, DS_ENOMEM, or DS_ECONFIG with a message in msg. */
DS_MUST_CHECK int ds__config_bandwidth(const char *value, int line, ds_bw_cfg_t *dst, char *msg,
                                       size_t msglen);

/* After reading: absent caps become "off", site zones must load. Returns 0,
 * or DS_ECONFIG (message in e). */
DS_MUST_CHECK int ds__config_check_caps(ds_config_t *cfg, struct ds__config_err *e);

/* Frees what a site's and a server's caps hold. */
void ds__config_caps_free(ds_config_t *cfg);

void ds__config_list_free(ds_strlist_t *l);
/* Deep copy of src into dst (empty before the call). 0 or DS_ENOMEM. */
DS_MUST_CHECK int ds__config_list_copy(ds_strlist_t *dst, const ds_strlist_t *src);

/* config_parse.c: v made absolute against base_dir (malloc'ed; NULL: out of memory). */
char *ds__config_abs(const char *base_dir, const char *v);

/* config_rollout.c: one key of the upgrade gate in a section of type
 * ("console", "site", "server", "rollout", "ring", "package") at index idx
 * (of its kind). Returns 0, DS_ENOMEM, DS_ECONFIG or -errno (a members file
 * that cannot be read) with a message (no location) in msg. */
DS_MUST_CHECK int ds__config_gate_key(ds_config_t *cfg, const char *type, size_t idx,
                                      const char *key, const char *v, int line,
                                      const char *base_dir, char *msg, size_t msglen);

/* After reading: rollouts name packages and rings that exist, one rollout
 * per product, defaults filled in. Returns 0 or DS_ECONFIG (message in e). */
DS_MUST_CHECK int ds__config_check_rollouts(ds_config_t *cfg, struct ds__config_err *e);

/* Frees what the gate's sections hold. */
void ds__config_rollouts_free(ds_config_t *cfg);

#endif

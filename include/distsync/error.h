/*
 * distsync error codes.
 *
 * Every function in libdistsync that can fail returns int: 0 on success, a
 * negative code on failure. System errors are returned as -errno (always
 * below DS_E__FIRST in absolute value); distsync's own codes come from the
 * table below. Codes are never renumbered: append new ones at the end.
 */
#ifndef DISTSYNC_ERROR_H
#define DISTSYNC_ERROR_H

#include <stdarg.h>
#include <stddef.h>

/* DS_MUST_CHECK marks a function whose int result is an error code (or a
 * value the caller needs): the compiler warns, and -Werror fails the build,
 * when a caller drops it. A caller that really has nothing to do with a
 * failure writes (void) and, when the reason is not obvious, says why. */
#if defined(__has_c_attribute)
#if __has_c_attribute(nodiscard)
/* GCC's warn_unused_result ignores a (void) cast; C2x's nodiscard, which
 * GCC accepts in C11 mode, does not. */
#define DS_MUST_CHECK [[nodiscard]]
#endif
#endif
#if !defined(DS_MUST_CHECK) && (defined(__GNUC__) || defined(__clang__))
#define DS_MUST_CHECK __attribute__((warn_unused_result))
#elif !defined(DS_MUST_CHECK)
#define DS_MUST_CHECK
#endif

/* X(name, value, message) */
#define DS_ERRNO_MAP(X)                                                                            \
    X(CONFIG, -10001, "invalid configuration")                                                     \
    X(USAGE, -10002, "invalid argument")                                                           \
    X(NOMEM, -10003, "out of memory")                                                              \
    X(CATALOG, -10004, "state database error")                                                     \
    X(SCHEMA, -10005, "state database schema is newer than this distsync")                         \
    X(CORRUPT, -10006, "data is corrupt or malformed")                                             \
    X(PROTO, -10007, "protocol violation by peer")                                                 \
    X(VERSION, -10008, "unsupported protocol or format version")                                   \
    X(PATH, -10009, "path is unsafe (absolute, '..', or escapes the root)")                        \
    X(SYMLINK, -10010, "path goes through a symbolic link")                                        \
    X(NOTREG, -10011, "not a regular file")                                                        \
    X(CHANGED, -10012, "file changed while it was read")                                           \
    X(HASH, -10013, "content does not match its expected hash")                                    \
    X(LEASE, -10014, "server is locked by another console")                                        \
    X(NOTFOUND, -10015, "not found")                                                               \
    X(EXISTS, -10016, "already exists")                                                            \
    X(RANGE, -10017, "value out of range")                                                         \
    X(TZ, -10018, "unknown time zone")                                                             \
    X(SCHEDULE, -10019, "invalid schedule rule")                                                   \
    X(DELTA, -10020, "delta computation failed")                                                   \
    X(TRANSPORT, -10021, "transport failure")                                                      \
    X(HOSTKEY, -10022, "SSH host key is unknown or does not match")                                \
    X(AUTH, -10023, "authentication failed")                                                       \
    X(ABORTED, -10024, "operation aborted")                                                        \
    X(ENCODING, -10025, "name is not valid UTF-8")                                                 \
    X(TOOBIG, -10026, "size exceeds the allowed limit")                                            \
    X(INTERNAL, -10027, "internal error")                                                          \
    X(HELD, -10028, "deletions held back by a prune guard")                                        \
    X(FROZEN, -10029, "server is frozen")                                                          \
    X(SRVCOPY, -10030, "server-side copy unavailable")

enum {
#define DS__ERR_ENUM(name, val, msg) DS_E##name = (val),
    DS_ERRNO_MAP(DS__ERR_ENUM)
#undef DS__ERR_ENUM
        DS_E__FIRST = -10001,
};

/* Returns a static, human-readable message for any code (DS_E* or -errno). */
const char *ds_strerror(int err);

/* Returns the symbolic name ("DS_ECONFIG", "ENOENT"...) of a code. Static. */
const char *ds_err_name(int err);

/* The one "fail with a message" helper of parsers and checks: formats the
 * message into err (errlen bytes; nothing when err is NULL or errlen 0) and
 * returns rc, so a caller writes `return ds_errf(err, len, DS_ECONFIG,
 * "...", ...)`. ds_verrf takes a va_list. */
int ds_errf(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int ds_verrf(char *err, size_t errlen, int rc, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#endif

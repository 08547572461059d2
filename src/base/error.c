/* Error code table: messages and names for DS_E* codes and -errno. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "distsync/error.h"

const char *ds_strerror(int err)
{
    switch (err) {
#define DS__ERR_MSG(name, val, msg)                                                                \
    case DS_E##name:                                                                               \
        return msg;
        DS_ERRNO_MAP(DS__ERR_MSG)
#undef DS__ERR_MSG
    case 0:
        return "success";
    default:
        break;
    }
    if (err < 0 && err > DS_E__FIRST)
        return strerror(-err);
    return "unknown error";
}

const char *ds_err_name(int err)
{
    switch (err) {
#define DS__ERR_NAME(name, val, msg)                                                               \
    case DS_E##name:                                                                               \
        return "DS_E" #name;
        DS_ERRNO_MAP(DS__ERR_NAME)
#undef DS__ERR_NAME
    case 0:
        return "OK";
    default:
        break;
    }
    if (err < 0 && err > DS_E__FIRST) {
        const char *n = strerrorname_np(-err);
        return n ? n : "EUNKNOWN";
    }
    return "EUNKNOWN";
}

int ds_verrf(char *err, size_t errlen, int rc, const char *fmt, va_list ap)
{
    if (err != NULL && errlen > 0)
        vsnprintf(err, errlen, fmt, ap);
    return rc;
}

int ds_errf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    rc = ds_verrf(err, errlen, rc, fmt, ap);
    va_end(ap);
    return rc;
}

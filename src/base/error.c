/* Error code table: messages and names for DS_E* codes and -errno. */
#include <errno.h>
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

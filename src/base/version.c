/* Library version. */
#include "distsync/version.h"

const char *ds_version(void)
{
    return DS_VERSION_STRING;
}

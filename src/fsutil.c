/* File-system helpers: mkdir -p. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "distsync/fsutil.h"

int ds_mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;

            *p = '\0';
            if (mkdir(buf, 0750) < 0 && errno != EEXIST)
                return -errno;
            *p = c;
            if (c == '\0')
                break;
        }
    }
    return 0;
}

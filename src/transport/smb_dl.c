/*
 * libsmbclient through dlopen (smb_dl.h): the table filled once, under a
 * pthread_once, the first time an SMB context is made.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "distsync/error.h"
#include "transport/smb_dl.h"

/* The soname Debian 12's libsmbclient0 installs (libsmbclient-dev links it). */
#define SMBC_SONAME "libsmbclient.so.0"

struct ds_smbc_api ds__smbc;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_err[256]; /* "" when loaded */

/* One table entry: its field in ds__smbc and its symbol. */
#define ENTRY(name)                                                                                \
    {                                                                                              \
        (void **)&ds__smbc.name, "smbc_" #name                                                     \
    }
static const struct {
    void **slot;
    const char *sym;
} entries[] = {
    ENTRY(new_context),
    ENTRY(init_context),
    ENTRY(free_context),
    ENTRY(setConfiguration),
    ENTRY(setDebug),
    ENTRY(setLogCallback),
    ENTRY(setTimeout),
    ENTRY(setFunctionAuthDataWithContext),
    ENTRY(setOptionFallbackAfterKerberos),
    ENTRY(setOptionNoAutoAnonymousLogin),
    ENTRY(setOptionOpenShareMode),
    ENTRY(setOptionProtocols),
    ENTRY(setOptionSmbEncryptionLevel),
    ENTRY(setOptionUseCCache),
    ENTRY(setOptionUseKerberos),
    ENTRY(setOptionUserData),
    ENTRY(getOptionUserData),
    ENTRY(getFunctionOpen),
    ENTRY(getFunctionClose),
    ENTRY(getFunctionRead),
    ENTRY(getFunctionWrite),
    ENTRY(getFunctionLseek),
    ENTRY(getFunctionFstat),
    ENTRY(getFunctionStat),
    ENTRY(getFunctionUnlink),
    ENTRY(getFunctionRename),
    ENTRY(getFunctionMkdir),
    ENTRY(getFunctionRmdir),
    ENTRY(getFunctionOpendir),
    ENTRY(getFunctionClosedir),
    ENTRY(getFunctionUtimes),
    ENTRY(getFunctionSplice),
    ENTRY(getFunctionReaddirPlus2),
};
#undef ENTRY

static void load(void)
{
    const char *e;
    void *h = dlopen(SMBC_SONAME, RTLD_NOW | RTLD_LOCAL);

    if (h == NULL) {
        e = dlerror();
        snprintf(load_err, sizeof(load_err), "cannot load %s: %s", SMBC_SONAME,
                 e != NULL ? e : "unknown reason");
        return;
    }
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
        *entries[i].slot = dlsym(h, entries[i].sym);
        if (*entries[i].slot == NULL) {
            snprintf(load_err, sizeof(load_err), "%s has no %s", SMBC_SONAME, entries[i].sym);
            memset(&ds__smbc, 0, sizeof(ds__smbc));
            return; /* the handle stays open: dlclose of libsmbclient is not safe */
        }
    }
}

int ds__smbc_load(char *err, size_t errlen)
{
    pthread_once(&load_once, load);
    if (load_err[0] == '\0')
        return 0;
    snprintf(err, errlen, "%s", load_err);
    return DS_ETRANSPORT;
}

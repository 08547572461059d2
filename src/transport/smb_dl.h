/*
 * libsmbclient loaded on first use (dlopen), not linked: it pulls in about
 * a hundred Samba, Kerberos, LDAP and ICU libraries, and the dynamic loader
 * mapped and relocated them at every start of `distsync`, SMB or not
 * (`distsync agent` over SSH answered HELLO 46 ms after exec, 3 ms without
 * them). The SMB files call libsmbclient through ds__smbc only, after
 * ds__smbc_load() succeeded.
 */
#ifndef DS_TRANSPORT_SMB_DL_H
#define DS_TRANSPORT_SMB_DL_H

#include <libsmbclient.h>
#include <stddef.h>

#define DS_SMBC_FN(name) __typeof__(smbc_##name) *name
/* The libsmbclient functions distsync calls, by their name less "smbc_". */
struct ds_smbc_api {
    DS_SMBC_FN(new_context);
    DS_SMBC_FN(init_context);
    DS_SMBC_FN(free_context);
    DS_SMBC_FN(setConfiguration);
    DS_SMBC_FN(setDebug);
    DS_SMBC_FN(setLogCallback);
    DS_SMBC_FN(setTimeout);
    DS_SMBC_FN(setFunctionAuthDataWithContext);
    DS_SMBC_FN(setOptionFallbackAfterKerberos);
    DS_SMBC_FN(setOptionNoAutoAnonymousLogin);
    DS_SMBC_FN(setOptionOpenShareMode);
    DS_SMBC_FN(setOptionProtocols);
    DS_SMBC_FN(setOptionSmbEncryptionLevel);
    DS_SMBC_FN(setOptionUseCCache);
    DS_SMBC_FN(setOptionUseKerberos);
    DS_SMBC_FN(setOptionUserData);
    DS_SMBC_FN(getOptionUserData);
    DS_SMBC_FN(getFunctionOpen);
    DS_SMBC_FN(getFunctionClose);
    DS_SMBC_FN(getFunctionRead);
    DS_SMBC_FN(getFunctionWrite);
    DS_SMBC_FN(getFunctionLseek);
    DS_SMBC_FN(getFunctionFstat);
    DS_SMBC_FN(getFunctionStat);
    DS_SMBC_FN(getFunctionUnlink);
    DS_SMBC_FN(getFunctionRename);
    DS_SMBC_FN(getFunctionMkdir);
    DS_SMBC_FN(getFunctionRmdir);
    DS_SMBC_FN(getFunctionOpendir);
    DS_SMBC_FN(getFunctionClosedir);
    DS_SMBC_FN(getFunctionUtimes);
    DS_SMBC_FN(getFunctionSplice);
    DS_SMBC_FN(getFunctionReaddirPlus2);
};
#undef DS_SMBC_FN

/* The table; valid (every pointer set) once ds__smbc_load() returned 0. */
extern struct ds_smbc_api ds__smbc;

/* Loads libsmbclient and fills ds__smbc, once per process (thread-safe; a
 * later call returns the first one's result). Returns 0, or DS_ETRANSPORT
 * with err naming the library or the missing function and dlerror()'s reason. */
int ds__smbc_load(char *err, size_t errlen);

#endif

/*
 * SFTP mode, ADOPT and DELETE, the requests on one target file other
 * than an upload (sftp_slot.c) and HASH (sftp_hash.c), with the same path
 * checks (no symlinked parent, a regular file), blocking, once every
 * earlier file's reply went out.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distsync/error.h"
#include "distsync/pathsafe.h"

#include "sftp_int.h"

/* The path checks of a request on one target file: safe, parents not
 * symlinks, the file regular. Returns 0 (*present) or a refusal (fs.err). */
static int check(struct ds__sftp_recv *r, const char *path, int *present,
                 LIBSSH2_SFTP_ATTRIBUTES *a)
{
    const char *why = NULL;

    if (ds_pathsafe_check(path, &why) < 0) {
        ds__sftp_errf(&r->fs, "%s", why);
        return DS_EPATH;
    }
    return ds__sftp_walk(&r->fs, path, 0, present, a);
}

int ds__sftp_adopt(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    ds_msg_t ok = {.type = DS_MSG_FILE_OK, .id = m->id};
    char path[DS_PROTO_STR_MAX + 1];
    LIBSSH2_SFTP_ATTRIBUTES a;
    uint8_t sha[DS_SHA256_LEN];
    uint64_t size = 0;
    int present = 0, rc;
    const char *abs;

    ds__sftp_cstr(m->u.adopt.path, path);
    rc = check(r, path, &present, &a);
    if (rc == 0 && !present)
        rc = -ENOENT;
    if (rc == 0 && !ds__sftp_lease_valid(r)) {
        ds__sftp_errf(&r->fs, "%s", r->lease_msg);
        rc = DS_ELEASE;
    }
    abs = ds__sftp_abs(&r->fs, 0, path);
    if (rc == 0)
        rc = ds__sftp_hash(&r->fs, abs, sha, &size);
    if (rc == 0 && (size != m->u.adopt.size || memcmp(sha, m->u.adopt.sha256, DS_SHA256_LEN))) {
        ds__sftp_errf(&r->fs, "ADOPT: the file does not hold the wanted bytes");
        rc = DS_EHASH;
    }
    ok.u.file_ok.mtime_ns = (int64_t)a.mtime * 1000000000;
    if (rc == 0 && m->u.adopt.mtime_ns != DS_PROTO_NO_MTIME) {
        LIBSSH2_SFTP_ATTRIBUTES t = {.flags = LIBSSH2_SFTP_ATTR_ACMODTIME};
        int64_t s = m->u.adopt.mtime_ns / 1000000000;

        t.atime = t.mtime = (unsigned long)s;
        if (libssh2_sftp_stat_ex(r->fs.sftp, abs, (unsigned)strlen(abs), LIBSSH2_SFTP_SETSTAT,
                                 &t) != 0)
            rc = ds__sftp_fail(&r->fs, "setstat", abs);
        /* not t.mtime: libssh2 zeroes t when the SETSTAT succeeds, and a
         * manifest mtime of 0 made every later run hash the file again */
        ok.u.file_ok.mtime_ns = s * 1000000000;
    }
    if (rc == 0)
        rc = ds_manifest_put(r->man, path, size, ok.u.file_ok.mtime_ns, sha);
    if (rc == DS_ETRANSPORT || rc == DS_ENOMEM)
        return rc;
    if (rc < 0) {
        ds_msg_t e = {.type = DS_MSG_FILE_ERR, .id = m->id};

        e.u.err.code = rc;
        e.u.err.path = ds_pstr(path);
        e.u.err.message = ds_pstr(r->fs.err[0] ? r->fs.err : ds_strerror(rc));
        return ds__sftp_reply(r, &e);
    }
    r->man_dirty = 1;
    ok.u.file_ok.size = size;
    memcpy(ok.u.file_ok.sha256, sha, DS_SHA256_LEN);
    return ds__sftp_reply(r, &ok);
}

int ds__sftp_delete(struct ds__sftp_recv *r, const ds_msg_t *m)
{
    ds_msg_t ok = {.type = DS_MSG_OK, .id = m->id};
    char path[DS_PROTO_STR_MAX + 1];
    LIBSSH2_SFTP_ATTRIBUTES a;
    int present = 0, rc;
    const char *abs;

    ds__sftp_cstr(m->u.path.path, path);
    rc = check(r, path, &present, &a);
    if (rc == 0 && !ds__sftp_lease_valid(r)) {
        ds__sftp_errf(&r->fs, "%s", r->lease_msg);
        rc = DS_ELEASE;
    }
    abs = ds__sftp_abs(&r->fs, 0, path);
    if (rc == 0 && present && libssh2_sftp_unlink_ex(r->fs.sftp, abs, (unsigned)strlen(abs)) != 0)
        rc = ds__sftp_fail(&r->fs, "unlink", abs);
    if (rc == -ENOENT)
        rc = present = 0;
    if (rc == DS_ETRANSPORT)
        return rc;
    if (rc < 0)
        return ds__sftp_reply_err(r, m->id, rc, path, r->fs.err);
    if (r->man != NULL && ds_manifest_remove(r->man, path) == 0)
        r->man_dirty = 1;
    ok.u.ok.value = (uint64_t)present;
    return ds__sftp_reply(r, &ok);
}

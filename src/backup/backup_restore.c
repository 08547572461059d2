/*
 * distsync restore: puts a checked backup archive's files back where the
 * restored config says they belong, each written aside, fsynced and
 * renamed into place; the catalog is migrated before it is renamed.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup_int.h"
#include "distsync/catalog.h"
#include "distsync/fsutil.h"

struct slot {
    char tmp[PATH_MAX];
    int fd;
    int exists;
};

struct restore {
    const ds_backup_manifest_t *m;
    struct slot *s; /* per m->files */
    char *err;
    size_t errlen;
};

static int rfail(struct restore *r, int rc, const char *what, const char *path)
{
    snprintf(r->err, r->errlen, "%s: %s: %s", path, what,
             rc < 0 && rc > -4096 ? strerror(-rc) : ds_strerror(rc));
    return rc;
}

/* Is dest one the restored config names for f's role? */
static int allowed(const ds_backup_file_t *f, const ds_config_t *cfg, const char *cfg_dest,
                   const ds__backup_want_t *w, size_t nw)
{
    char p[PATH_MAX], cat[PATH_MAX];

    switch (f->role) {
    case DS_BACKUP_CONFIG:
        return strcmp(f->dest, cfg_dest) == 0;
    case DS_BACKUP_CATALOG:
        return ds_catalog_path(cfg->state, p, sizeof(p)) == 0 &&
               ds__backup_normalize(p, cat, sizeof(cat)) == 0 && strcmp(f->dest, cat) == 0;
    default:
        for (size_t i = 0; i < nw; i++)
            if (w[i].role == f->role && strcmp(w[i].path, f->dest) == 0)
                return 1;
        return 0;
    }
}

/* Every destination is named by the config the archive restores. */
static int check_dests(struct restore *r)
{
    const ds_backup_manifest_t *m = r->m;
    const char *cfg_dest = NULL;
    ds__backup_want_t *w = NULL;
    ds_config_t *cfg = NULL;
    char base[PATH_MAX], msg[768];
    size_t nw = 0;
    int rc;

    for (size_t i = 0; i < m->nfiles; i++)
        if (m->files[i].role == DS_BACKUP_CONFIG)
            cfg_dest = m->files[i].dest;
    snprintf(base, sizeof(base), "%s", cfg_dest);
    rc = ds_config_parse(m->config_text, cfg_dest, dirname(base), &cfg, msg, sizeof(msg));
    if (rc < 0) {
        snprintf(r->err, r->errlen, "the backed-up config does not load: %s", msg);
        return rc;
    }
    if ((rc = ds__backup_config_files(cfg, &w, &nw, r->err, r->errlen)) < 0)
        goto out;
    for (size_t i = 0; i < m->nfiles; i++) {
        if (!allowed(&m->files[i], cfg, cfg_dest, w, nw)) {
            snprintf(r->err, r->errlen,
                     "entry '%s': destination %.300s is not a %s file the restored config names: "
                     "refused",
                     m->files[i].name, m->files[i].dest, ds_backup_role_name(m->files[i].role));
            rc = DS_EPATH;
            goto out;
        }
    }
out:
    ds__backup_wants_free(w, nw);
    ds_config_free(cfg);
    return rc;
}

/* An existing catalog's WAL folded in (a clean close removes it), so the
 * .bak is whole; a WAL that stays means a process still has it open. */
static int settle_catalog(struct restore *r, const char *dest)
{
    char wal[PATH_MAX + 8], msg[512];
    ds_catalog_t *cat = NULL;
    int rc;

    snprintf(wal, sizeof(wal), "%s-wal", dest);
    if (access(wal, F_OK) != 0)
        return 0;
    rc = ds_catalog_open(dest, &cat, msg, sizeof(msg));
    ds_catalog_free(cat);
    if (rc == 0 && access(wal, F_OK) != 0)
        return 0;
    snprintf(r->err, r->errlen,
             "%s: in use (its -wal file stays after a checkpoint): stop the daemon and any sync "
             "first",
             dest);
    return DS_EEXISTS;
}

/* Refuses existing destinations unless force (a dry run lists them). */
static int check_existing(struct restore *r, int force, int dry)
{
    char wal[PATH_MAX + 8], list[1024] = "";
    struct stat st;
    int n = 0, rc;

    for (size_t i = 0; i < r->m->nfiles; i++) {
        const ds_backup_file_t *f = &r->m->files[i];
        size_t k = strlen(list);

        snprintf(wal, sizeof(wal), "%s-wal", f->dest);
        r->s[i].exists = lstat(f->dest, &st) == 0;
        if (!r->s[i].exists && !(f->role == DS_BACKUP_CATALOG && lstat(wal, &st) == 0))
            continue;
        if (r->s[i].exists && S_ISDIR(st.st_mode)) {
            snprintf(r->err, r->errlen, "%s: a folder is in the way", f->dest);
            return DS_EEXISTS;
        }
        n++;
        snprintf(list + k, sizeof(list) - k, "%s%s", k ? ", " : "", f->dest);
        if (force && !dry && f->role == DS_BACKUP_CATALOG && (rc = settle_catalog(r, f->dest)) < 0)
            return rc;
    }
    if (n > 0 && !force && !dry) {
        snprintf(r->err, r->errlen,
                 "%s exist%s: refusing to overwrite (restore --force replaces them and keeps "
                 "each as .bak)",
                 list, n == 1 ? "s" : "");
        return DS_EEXISTS;
    }
    return 0;
}

static int open_tmps(struct restore *r)
{
    char d[PATH_MAX], b[PATH_MAX];
    int rc;

    for (size_t i = 0; i < r->m->nfiles; i++) {
        const ds_backup_file_t *f = &r->m->files[i];
        struct slot *s = &r->s[i];

        snprintf(d, sizeof(d), "%s", f->dest);
        snprintf(b, sizeof(b), "%s", f->dest);
        if ((rc = ds_mkdir_p(dirname(d))) < 0)
            return rfail(r, rc, "cannot create its folder", f->dest);
        snprintf(d, sizeof(d), "%s", f->dest);
        if ((size_t)snprintf(s->tmp, sizeof(s->tmp), "%s/.%s.restore.XXXXXX", dirname(d),
                             basename(b)) >= sizeof(s->tmp))
            return rfail(r, -ENAMETOOLONG, "cannot name a temporary file", f->dest);
        if ((s->fd = mkstemp(s->tmp)) < 0) {
            s->tmp[0] = '\0';
            return rfail(r, -errno, "cannot create a temporary file beside it", f->dest);
        }
        if (fchmod(s->fd, f->mode & 0777u) < 0)
            return rfail(r, -errno, "chmod", s->tmp);
    }
    return 0;
}

static int write_block(void *ctx, const ds_backup_file_t *f, const void *p, size_t n, char *err,
                       size_t errlen)
{
    struct restore *r = ctx;
    struct slot *s = &r->s[f - r->m->files];
    int rc = ds_write_all(s->fd, p, n);

    if (rc < 0)
        snprintf(err, errlen, "%s: write failed: %s", s->tmp, strerror(-rc));
    return rc;
}

/* fsync and close every temp; migrate and check the catalog's. */
static int finish_tmps(struct restore *r)
{
    char msg[768];
    ds_catalog_t *cat = NULL;
    int rc;

    for (size_t i = 0; i < r->m->nfiles; i++) {
        struct slot *s = &r->s[i];

        rc = fsync(s->fd) < 0 ? -errno : 0;
        if (close(s->fd) < 0 && rc == 0)
            rc = -errno;
        s->fd = -1;
        if (rc < 0)
            return rfail(r, rc, "fsync", s->tmp);
        if (r->m->files[i].role != DS_BACKUP_CATALOG)
            continue;
        /* an older backup on a newer binary: its migrations run here */
        rc = ds_catalog_open(s->tmp, &cat, msg, sizeof(msg));
        if (rc == 0)
            rc = ds_catalog_integrity(cat, msg, sizeof(msg));
        ds_catalog_free(cat);
        cat = NULL;
        if (rc < 0) {
            snprintf(r->err, r->errlen, "the backed-up catalog for %.300s: %s", r->m->files[i].dest,
                     msg);
            return rc;
        }
    }
    return 0;
}

static int fsync_dir_of(const char *path)
{
    char d[PATH_MAX];
    int fd, rc = 0;

    snprintf(d, sizeof(d), "%s", path);
    if ((fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -errno;
    if (fsync(fd) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* Renames each temp into place, the old file (if any) to .bak first. */
static int commit(struct restore *r, ds_backup_restored_fn fn, void *ctx)
{
    char bak[PATH_MAX + 8];
    int rc;

    for (size_t i = 0; i < r->m->nfiles; i++) {
        const ds_backup_file_t *f = &r->m->files[i];
        struct slot *s = &r->s[i];

        snprintf(bak, sizeof(bak), "%s.bak", f->dest);
        if (s->exists && rename(f->dest, bak) < 0)
            return rfail(r, -errno, "cannot keep the old file as .bak", f->dest);
        if (rename(s->tmp, f->dest) < 0)
            return rfail(r, -errno, "cannot rename into place", f->dest);
        s->tmp[0] = '\0';
        if ((rc = fsync_dir_of(f->dest)) < 0)
            return rfail(r, rc, "fsync of its folder", f->dest);
        if (fn)
            fn(ctx, f, s->exists ? bak : NULL);
    }
    return 0;
}

/* Dry run: what commit would do. */
static void tell(struct restore *r, ds_backup_restored_fn fn, void *ctx)
{
    char bak[PATH_MAX + 8];

    for (size_t i = 0; fn && i < r->m->nfiles; i++) {
        snprintf(bak, sizeof(bak), "%s.bak", r->m->files[i].dest);
        fn(ctx, &r->m->files[i], r->s[i].exists ? bak : NULL);
    }
}

int ds_backup_restore(int fd, const ds_backup_manifest_t *m, unsigned flags,
                      ds_backup_restored_fn fn, void *ctx, char *err, size_t errlen)
{
    struct restore r = {.m = m, .err = err, .errlen = errlen};
    ds_backup_manifest_t again;
    int rc;

    if ((r.s = calloc(m->nfiles + 1, sizeof(*r.s))) == NULL)
        return DS_ENOMEM;
    for (size_t i = 0; i < m->nfiles; i++)
        r.s[i].fd = -1;
    if ((rc = check_dests(&r)) < 0 ||
        (rc = check_existing(&r, !!(flags & DS_BACKUP_FORCE), !!(flags & DS_BACKUP_DRY_RUN))) < 0)
        goto out;
    if (flags & DS_BACKUP_DRY_RUN) {
        tell(&r, fn, ctx);
        goto out;
    }
    if ((rc = open_tmps(&r)) < 0)
        goto out;
    again = *m; /* the second pass checks the MANIFEST is the one checked */
    rc = ds__backup_walk(fd, NULL, 0, &again, write_block, &r, err, errlen);
    if (rc == 0)
        rc = finish_tmps(&r);
    if (rc == 0)
        rc = commit(&r, fn, ctx);
out:
    for (size_t i = 0; i < m->nfiles; i++) {
        if (r.s[i].fd >= 0)
            close(r.s[i].fd);
        if (r.s[i].tmp[0])
            unlink(r.s[i].tmp);
    }
    free(r.s);
    return rc;
}

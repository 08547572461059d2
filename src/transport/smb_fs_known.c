/*
 * What the SMB backend knows of the share without asking the server (each
 * stat by path is a CREATE + GETINFO + CLOSE, 3 round trips, 120 ms at
 * 40 ms): the attributes a directory listing gave, the size and mtime of a
 * tmp file it wrote and sealed itself, and the fstat of a file it holds
 * open. Measured with tests/func/smb_requests.sh: a new file went from 19
 * round trips to 10, one replaced through a delta from 34 to 18, and an
 * unchanged one in the LIST walk from 8.3 to 1.1.
 */
#include <stdlib.h>
#include <string.h>

#include "distsync/log.h"
#include "smb_fs_int.h"

void ds__smb_fs_fix_stat(struct stat *st)
{
    if (S_ISREG(st->st_mode) && st->st_nlink == 0)
        st->st_nlink = 1;
}

/* A fresh file's write offset is now pos. */
void ds__smb_fs_moved_to(struct sh *h, uint64_t pos)
{
    h->pos = pos;
    if (pos > h->end)
        h->end = pos;
}

/* What a stat of the fresh file h, sealed with mtime mt, shows, without
 * asking (a stat by path is 3 round trips): the size written, and the time
 * set as it went on the wire (whole microseconds; NTFS and Samba on a
 * POSIX filesystem keep 100 ns). The first sealed file of the session is
 * still asked, and if the server showed another size or time (a coarser
 * filesystem), every later one is asked too (times_kept). */
void ds__smb_fs_know(struct sh *h, const struct timespec *mt)
{
    memset(&h->known_st, 0, sizeof(h->known_st));
    h->known_st.st_mode = S_IFREG | 0644;
    h->known_st.st_nlink = 1;
    h->known_st.st_size = (off_t)h->end;
    h->known_st.st_mtim.tv_sec = mt->tv_sec;
    h->known_st.st_mtim.tv_nsec = mt->tv_nsec / 1000 * 1000;
    h->known_st.st_atim = h->known_st.st_mtim;
    h->known_st.st_ctim = h->known_st.st_mtim;
    h->known = 1;
}

int ds__smb_fs_known(const struct ds_smb_fs *s, const struct sh *h, struct stat *st)
{
    if (h->f != NULL || !h->known || s->times_kept <= 0)
        return 0;
    *st = h->known_st;
    return 1;
}

void ds__smb_fs_stated(struct ds_smb_fs *s, struct sh *h, const struct stat *st)
{
    if (h->f == NULL && h->known && s->times_kept == 0) /* the first: does it keep them? */
        s->times_kept = st->st_size == h->known_st.st_size &&
                                st->st_mtim.tv_sec == h->known_st.st_mtim.tv_sec &&
                                st->st_mtim.tv_nsec == h->known_st.st_mtim.tv_nsec
                            ? 1
                            : -1;
    if (h->f != NULL && !h->wrote) {
        h->opened_st = *st;
        h->opened_ok = 1;
    }
}

/* Whether this session holds url open for reading with its fstat known
 * (the basis of the file being published): st is that fstat. Our open
 * shares read and write but not delete, so while it lasts the path cannot
 * be removed, renamed or replaced by a directory; its type is what the
 * fstat saw (size and times as of then: another writer may move them). */
int ds__smb_fs_opened(const struct ds_smb_fs *s, const char *url, struct stat *st)
{
    for (size_t i = 0; i < s->nh; i++) {
        const struct sh *h = s->h[i];

        if (h != NULL && !h->dir && h->f != NULL && !h->wrote && h->opened_ok &&
            strcmp(h->url, url) == 0) {
            *st = h->opened_st;
            return 1;
        }
    }
    return 0;
}

/* Whether name is the entry dirfd's listing returned last: its attributes
 * (size, times, type) came with the listing, so a walk that stats every
 * entry costs no round trip per entry (st filled). Anything this session
 * changes in the namespace forgets it (unlisted). */
int ds__smb_fs_listed(const ds_fs_t *fs, int dirfd, const char *name, struct stat *st)
{
    const struct sh *d = dirfd == AT_FDCWD ? NULL : get(fs, dirfd);

    if (d == NULL || !d->de_ok || strcmp(d->de.d_name, name) != 0)
        return 0;
    *st = d->de_st;
    return 1;
}

/* Forgets every listed entry's attributes (a name was created, removed or
 * renamed here). */
void ds__smb_fs_unlisted(struct ds_smb_fs *s)
{
    for (size_t i = 0; i < s->nh; i++)
        if (s->h[i] != NULL)
            s->h[i]->de_ok = 0;
}

/* A reparse point is shown as a symlink: the receiver's walks already
 * refuse to descend into one, to create a file through one, and list it as
 * a symlink (the console reports it), as on a POSIX target. */
int ds__smb_fs_reparse(struct stat *st, uint32_t attrs)
{
    if (!(attrs & DS_SMB_ATTR_REPARSE))
        return 0;
    st->st_mode = S_IFLNK | 0777;
    st->st_nlink = 1;
    return 1;
}

int ds__smb_fs_refuse_link(struct ds_smb_fs *s, const char *url)
{
    if (!ds__smb_dircache_has(&s->links, url))
        return 0;
    if (s->told_link == NULL || strcmp(s->told_link, url) != 0) {
        ds_log(DS_LOG_WARN,
               "%s: a reparse point (symlink or junction) on the share, refused for safety (the "
               "server would follow it, maybe outside the target's root: make it a real folder)",
               url);
        free(s->told_link);
        s->told_link = strdup(url); /* NULL: logged again next time */
    }
    errno = ELOOP;
    return 1;
}

/* A symlink on Samba shows as a plain folder (0x10), with its target's
 * file id; but the ".." of its listing is the target's parent, not the
 * folder it was reached from (measured against Samba 4.17: lyon/patches ->
 * ../other lists ".." as the share's root, not lyon). */
int ds__smb_fs_dots(const struct ds_smb_fs *s, struct sh *h, const char *name, ino_t ino)
{
    const char *slash = strrchr(h->url, '/');
    size_t plen = slash != NULL ? (size_t)(slash - h->url) : 0;

    if (strcmp(name, ".") == 0) {
        h->dot_ino = ino;
        return 0;
    }
    if (strcmp(name, "..") != 0 || ino == 0 || plen == 0)
        return 0;
    for (size_t i = 0; i < s->nh; i++) {
        const struct sh *p = s->h[i];

        if (p != NULL && p->dir && p->dot_ino != 0 && strlen(p->url) == plen &&
            memcmp(p->url, h->url, plen) == 0)
            return ino != p->dot_ino && ino != h->dot_ino;
    }
    return 0; /* the parent's "." not seen: nothing to compare */
}

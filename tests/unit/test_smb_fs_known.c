/* smb_fs_known: a sealed fresh file's stat is answered without asking
 * the server only once the first sealed file of the session showed the
 * size and mtime set; a server that showed another (a coarser filesystem)
 * has every later sealed file asked again (the fallback e539fe0 checked
 * by hand with a skew of 1 ns). A listed entry's attributes answer an
 * fstatat of that name at that directory handle only, and are forgotten
 * by ds__smb_fs_unlisted (called when this session creates, removes or
 * renames a name) on every handle. A listing entry with
 * FILE_ATTRIBUTE_REPARSE_POINT (0x400, what a Windows junction or directory
 * symlink shows, and Samba's MS-DFS links: tests/func/smb_reparse.sh) reads
 * as a symlink, and an open of one a listing showed is refused (ELOOP).
 * A folder whose listing's ".." is not the "." of the folder it was opened
 * in (a symlink Samba resolves: tests/func/smb_reparse.sh) is flagged. */
#include "check.h"
#include "transport/smb_fs_int.h"

/* h: a fresh file of size bytes, sealed with mtime mt (as seal() leaves it). */
static void sealed(struct sh *h, uint64_t size, const struct timespec *mt)
{
    memset(h, 0, sizeof(*h));
    h->fresh = 1;
    ds__smb_fs_moved_to(h, size);
    ds__smb_fs_know(h, mt);
}

/* What the server showed for h: its known size and mtime, the time moved by skew_ns. */
static struct stat shown(const struct sh *h, long skew_ns)
{
    struct stat st = h->known_st;

    st.st_mtim.tv_nsec += skew_ns;
    return st;
}

static void test_times_kept(void)
{
    struct ds_smb_fs s = {0};
    struct timespec mt = {1700000000, 123456789};
    struct sh a, b;
    struct stat st;

    sealed(&a, 20000, &mt);
    CHECK_INT(a.known_st.st_mtim.tv_nsec, 123456000); /* whole microseconds, as on the wire */
    CHECK(!ds__smb_fs_known(&s, &a, &st));            /* the first is asked */
    st = shown(&a, 0);
    ds__smb_fs_stated(&s, &a, &st);
    CHECK_INT(s.times_kept, 1);
    sealed(&b, 30000, &mt);
    memset(&st, 0, sizeof(st));
    CHECK(ds__smb_fs_known(&s, &b, &st)); /* later ones are not */
    CHECK_INT((long long)st.st_size, 30000);
    CHECK_INT(st.st_mtim.tv_sec, mt.tv_sec);
    CHECK_INT(st.st_mtim.tv_nsec, 123456000);
}

static void test_times_not_kept(void)
{
    struct ds_smb_fs s = {0};
    struct timespec mt = {1700000000, 123456789};
    struct sh a, b;
    struct stat st;

    sealed(&a, 20000, &mt);
    CHECK(!ds__smb_fs_known(&s, &a, &st));
    st = shown(&a, 1); /* a skew of 1 ns */
    ds__smb_fs_stated(&s, &a, &st);
    CHECK_INT(s.times_kept, -1);
    for (int i = 0; i < 3; i++) { /* every later one is asked */
        sealed(&b, 30000, &mt);
        CHECK(!ds__smb_fs_known(&s, &b, &st));
        st = shown(&b, 0); /* even one the server shows as set does not turn it back */
        ds__smb_fs_stated(&s, &b, &st);
        CHECK_INT(s.times_kept, -1);
    }
    /* a size the server showed otherwise counts as well */
    memset(&s, 0, sizeof(s));
    sealed(&a, 20000, &mt);
    st = shown(&a, 0);
    st.st_size = 20001;
    ds__smb_fs_stated(&s, &a, &st);
    CHECK_INT(s.times_kept, -1);
    sealed(&b, 30000, &mt);
    CHECK(!ds__smb_fs_known(&s, &b, &st));
}

/* d: a directory handle whose listing last returned name, size bytes. */
static void listing(struct sh *d, const char *name, off_t size)
{
    memset(d, 0, sizeof(*d));
    d->dir = 1;
    snprintf(d->de.d_name, sizeof(d->de.d_name), "%s", name);
    d->de_st.st_mode = S_IFREG | 0644;
    d->de_st.st_size = size;
    d->de_ok = 1;
}

static void test_listed_unlisted(void)
{
    struct ds_smb_fs s = {0};
    struct sh a, b, *h[3] = {&a, NULL, &b}; /* the middle handle closed */
    struct stat st;

    s.fs.ctx = &s;
    s.h = h;
    s.nh = 3;
    listing(&a, "a.txt", 100);
    listing(&b, "b.txt", 7);
    memset(&st, 0, sizeof(st));
    CHECK(ds__smb_fs_listed(&s.fs, FD_BASE, "a.txt", &st));
    CHECK_INT((long long)st.st_size, 100);
    CHECK(ds__smb_fs_listed(&s.fs, FD_BASE + 2, "b.txt", &st));
    CHECK_INT((long long)st.st_size, 7);
    CHECK(!ds__smb_fs_listed(&s.fs, FD_BASE, "b.txt", &st));     /* another handle's entry */
    CHECK(!ds__smb_fs_listed(&s.fs, FD_BASE, "a", &st));         /* not the listed name */
    CHECK(!ds__smb_fs_listed(&s.fs, FD_BASE + 1, "a.txt", &st)); /* a closed handle */
    CHECK(!ds__smb_fs_listed(&s.fs, AT_FDCWD, "a.txt", &st));
    ds__smb_fs_unlisted(&s); /* a name was created, removed or renamed */
    CHECK(!ds__smb_fs_listed(&s.fs, FD_BASE, "a.txt", &st));
    CHECK(!ds__smb_fs_listed(&s.fs, FD_BASE + 2, "b.txt", &st));
    CHECK_INT(a.de_ok, 0);
    CHECK_INT(b.de_ok, 0);
}

static void test_reparse_attrs(void)
{
    struct stat st = {.st_mode = S_IFDIR | 0755, .st_size = 0};

    CHECK(!ds__smb_fs_reparse(&st, 0x10)); /* a plain directory */
    CHECK(S_ISDIR(st.st_mode));
    CHECK(!ds__smb_fs_reparse(&st, 0x37)); /* every other legacy bit */
    CHECK(S_ISDIR(st.st_mode));
    CHECK(ds__smb_fs_reparse(&st, 0x410)); /* a junction */
    CHECK(S_ISLNK(st.st_mode));
    st.st_mode = S_IFREG | 0644;
    st.st_size = 42;
    CHECK(ds__smb_fs_reparse(&st, 0x420)); /* a file symlink (archive bit too) */
    CHECK(S_ISLNK(st.st_mode));
    CHECK_INT((long long)st.st_size, 42);
}

static void test_refuse_link(void)
{
    struct ds_smb_fs s = {0};

    ds__smb_dircache_add(&s.links, "smb://h/share/t/patches");
    errno = 0;
    CHECK(!ds__smb_fs_refuse_link(&s, "smb://h/share/t/engines"));
    CHECK(!ds__smb_fs_refuse_link(&s, "smb://h/share/t/patchesX"));
    CHECK_INT(errno, 0);
    CHECK(ds__smb_fs_refuse_link(&s, "smb://h/share/t/patches"));
    CHECK_INT(errno, ELOOP);
    ds__smb_dircache_forget(&s.links, "smb://h/share/t"); /* the parent renamed away */
    CHECK(!ds__smb_fs_refuse_link(&s, "smb://h/share/t/patches"));
    ds__smb_dircache_close(&s.links);
    free(s.told_link);
}

static void test_dots(void)
{
    struct ds_smb_fs s = {0};
    struct sh root = {.url = "smb://h/s/t", .dir = 1}, real = {.url = "smb://h/s/t/real", .dir = 1},
              link = {.url = "smb://h/s/t/patches", .dir = 1};
    struct sh *h[3] = {&root, &real, &link};

    s.h = h;
    s.nh = 3;
    CHECK(!ds__smb_fs_dots(&s, &root, ".", 100));
    CHECK(!ds__smb_fs_dots(&s, &root, "..", 7)); /* the root's parent: not open */
    CHECK(!ds__smb_fs_dots(&s, &real, ".", 101));
    CHECK(!ds__smb_fs_dots(&s, &real, "..", 100)); /* a real folder of t */
    CHECK(!ds__smb_fs_dots(&s, &real, "a.txt", 5));
    CHECK(!ds__smb_fs_dots(&s, &link, ".", 300));
    CHECK(ds__smb_fs_dots(&s, &link, "..", 7));  /* t/patches -> ../other: ".." is the share */
    CHECK(!ds__smb_fs_dots(&s, &link, "..", 0)); /* a server that gives no file id */
    root.dot_ino = 0;                            /* the parent's "." not seen */
    CHECK(!ds__smb_fs_dots(&s, &link, "..", 7));
}

int main(void)
{
    RUN(test_times_kept);
    RUN(test_times_not_kept);
    RUN(test_listed_unlisted);
    RUN(test_reparse_attrs);
    RUN(test_refuse_link);
    RUN(test_dots);
    return CHECK_DONE();
}

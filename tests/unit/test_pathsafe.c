/* Safe path resolution: syntax, symlinks in the middle and at the leaf, devices. */
#include <errno.h>
#include <fcntl.h>
#include <sys/sysmacros.h>

#include "check.h"
#include "distsync/error.h"
#include "distsync/pathsafe.h"

static void test_syntax(void)
{
    static const char *bad[] = {
        "",        "/abs",      "..",   "../x",      "a/..",
        "a/../b",  ".",         "./a",  "a/.",       "a//b",
        "a/",      "/",         "a\\b", ".distsync", ".distsync/manifest",
        "a/\x01b", "tab\there",
    };
    static const char *good[] = {"a",   "a/b/c.txt", ".hidden",      "a/.distsync",
                                 "..a", "a..",       ".distsyncx/y", "d\xc3\xa9j\xc3\xa0/vu"};
    char longp[5000];
    const char *why;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        CHECK_INT(ds_pathsafe_check(bad[i], &why), DS_EPATH);
        CHECK(why != NULL);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CHECK_INT(ds_pathsafe_check(good[i], NULL), 0);
    memset(longp, 'a', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    CHECK_INT(ds_pathsafe_check(longp, &why), DS_EPATH);
    for (int i = 100; i < 4000; i += 101)
        longp[i] = '/';
    longp[4095] = '\0';
    CHECK_INT(ds_pathsafe_check(longp, NULL), 0);
    CHECK_INT(ds_pathsafe_check("..", &why), DS_EPATH);
    CHECK_STR(why, "'..' component");
}

static void test_resolution(void)
{
    const char *root = check_tmpdir("pathsafe");
    char p[4300], out[4200];
    const char *leaf;
    struct stat st;
    int rootfd, dir, fd;

    snprintf(out, sizeof(out), "%s.outside", root);
    mkdir(out, 0755);
    snprintf(p, sizeof(p), "%s/real", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/real/f.txt", root);
    close(open(p, O_CREAT | O_WRONLY, 0644));
    snprintf(p, sizeof(p), "%s/mid", root);
    CHECK_INT(symlink(out, p), 0);
    snprintf(p, sizeof(p), "%s/real/leaflink", root);
    CHECK_INT(symlink("f.txt", p), 0);
    snprintf(p, sizeof(p), "%s/real/fifo", root);
    CHECK_INT(mkfifo(p, 0644), 0);
    snprintf(p, sizeof(p), "%s/real/null", root);
    CHECK_INT(mknod(p, S_IFCHR | 0666, makedev(1, 3)), 0);
    rootfd = open(root, O_RDONLY | O_DIRECTORY);

    CHECK_INT(ds_pathsafe_open_file(rootfd, "real/f.txt", &fd, &st), 0);
    CHECK(fd >= 0 && S_ISREG(st.st_mode));
    close(fd);
    CHECK_INT(ds_pathsafe_open_file(rootfd, "mid/x", &fd, NULL), DS_ESYMLINK);
    CHECK_INT(fd, -1);
    CHECK_INT(ds_pathsafe_open_file(rootfd, "real/leaflink", &fd, NULL), DS_ESYMLINK);
    CHECK_INT(ds_pathsafe_open_file(rootfd, "real/fifo", &fd, NULL), DS_ENOTREG);
    CHECK_INT(ds_pathsafe_open_file(rootfd, "real/null", &fd, NULL), DS_ENOTREG);
    CHECK_INT(ds_pathsafe_open_file(rootfd, "real", &fd, NULL), DS_ENOTREG);
    CHECK_INT(ds_pathsafe_open_file(rootfd, "real/f.txt/x", &fd, NULL), DS_ENOTREG);
    CHECK_INT(ds_pathsafe_open_file(rootfd, "nope/x", &fd, NULL), -ENOENT);
    CHECK_INT(ds_pathsafe_open_file(rootfd, "../x", &fd, NULL), DS_EPATH);
    CHECK_INT(ds_pathsafe_open_file(rootfd, ".distsync/manifest", &fd, NULL), DS_EPATH);

    /* parent creation never goes through the symlink */
    CHECK_INT(ds_pathsafe_open_parent(rootfd, "mid/new/file", 1, &dir, &leaf), DS_ESYMLINK);
    snprintf(p, sizeof(p), "%s/new", out);
    CHECK(access(p, F_OK) != 0);
    CHECK_INT(ds_pathsafe_open_parent(rootfd, "a/b/c/file", 0, &dir, &leaf), -ENOENT);
    CHECK_INT(ds_pathsafe_open_parent(rootfd, "a/b/c/file", 1, &dir, &leaf), 0);
    CHECK_STR(leaf, "file");
    close(dir);
    snprintf(p, sizeof(p), "%s/a/b/c", root);
    CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK_INT(ds_pathsafe_open_parent(rootfd, "top", 0, &dir, &leaf), 0);
    CHECK_STR(leaf, "top");
    close(dir);
    CHECK_STR(ds_pathsafe_reason(DS_ESYMLINK), "path goes through a symbolic link");
    close(rootfd);
}

int main(void)
{
    RUN(test_syntax);
    RUN(test_resolution);
    return CHECK_DONE();
}

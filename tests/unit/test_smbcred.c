/* smbcred: the credentials file's lines, its mode, and the environment
 * (copied once, the password scrubbed from the process's environment). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>

#include "check.h"
#include "distsync/smbcred.h"

static int parse(const char *text, ds_smbcred_t *c, char *err, size_t len)
{
    return ds_smbcred_parse(text, strlen(text), "t.cred", c, err, len);
}

static void test_parse(void)
{
    ds_smbcred_t c;
    char err[256];

    CHECK_INT(parse("# x\n username = u1 \r\n\npassword=p w=2\ndomain=D\n", &c, err, sizeof(err)),
              0);
    CHECK_STR(c.username, "u1");
    CHECK_STR(c.password, "p w=2");
    CHECK_STR(c.domain, "D");
    ds_smbcred_clear(&c);
    CHECK(c.username == NULL && c.password == NULL && c.domain == NULL);
    CHECK_INT(parse("username=u\npassword=p", &c, err, sizeof(err)), 0); /* no final newline */
    CHECK_STR(c.domain, "");
    ds_smbcred_clear(&c);

    CHECK_INT(parse("username=u\nsecret\n", &c, err, sizeof(err)), DS_ECONFIG);
    CHECK_STR(err, "t.cred:2: expected key=value (keys: username, password, domain)");
    CHECK(c.username == NULL && c.password == NULL);
    CHECK_INT(parse("username=u\nsecret=x\n", &c, err, sizeof(err)), DS_ECONFIG);
    CHECK_STR(err, "t.cred:2: unknown key (keys: username, password, domain)");
    CHECK_INT(parse("password=p\n", &c, err, sizeof(err)), DS_ECONFIG);
    CHECK_STR(err, "t.cred: missing username= line");
    CHECK_INT(parse("username=u\npassword=\n", &c, err, sizeof(err)), DS_ECONFIG);
    CHECK_STR(err, "t.cred:2: key 'password' is empty");
    CHECK_INT(ds_smbcred_parse("username=u\0", 11, "t.cred", &c, err, sizeof(err)), DS_ECONFIG);
    CHECK(strstr(err, "NUL") != NULL);
    ds_smbcred_clear(NULL);
}

static void test_load_mode(void)
{
    char dir[] = "/tmp/test_smbcred.XXXXXX", path[128], err[512];
    ds_smbcred_t c;
    int fd;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/c", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0 && write(fd, "username=u\npassword=pw\n", 23) == 23);
    close(fd);
    CHECK_INT(ds_smbcred_load(path, &c, err, sizeof(err)), 0);
    CHECK_STR(c.password, "pw");
    ds_smbcred_clear(&c);
    CHECK(chmod(path, 0604) == 0);
    CHECK_INT(ds_smbcred_load(path, &c, err, sizeof(err)), DS_ECONFIG);
    CHECK(strstr(err, "has mode 0604, must be 0600") != NULL && strstr(err, "pw") == NULL);
    CHECK(c.password == NULL);
    CHECK(unlink(path) == 0);
    CHECK_INT(ds_smbcred_load(path, &c, err, sizeof(err)), -ENOENT);
    CHECK(rmdir(dir) == 0);
}

static void test_env(void)
{
    extern char **environ;
    ds_smbcred_t c;
    char err[256];

    CHECK(setenv("DISTSYNC_SMB_USER", "eu", 1) == 0);
    CHECK(setenv("DISTSYNC_SMB_PASSWORD", "env-secret", 1) == 0);
    CHECK_INT(ds_smbcred_from_env(&c, err, sizeof(err)), 0);
    CHECK_STR(c.username, "eu");
    CHECK_STR(c.password, "env-secret");
    CHECK_STR(c.domain, "");
    ds_smbcred_clear(&c);
    /* scrubbed: gone from the environment */
    CHECK(getenv("DISTSYNC_SMB_PASSWORD") == NULL);
    for (char **e = environ; *e != NULL; e++)
        CHECK(strstr(*e, "env-secret") == NULL);
    /* the copy stays for later calls */
    CHECK_INT(ds_smbcred_from_env(&c, err, sizeof(err)), 0);
    CHECK_STR(c.password, "env-secret");
    ds_smbcred_clear(&c);
}

int main(void)
{
    RUN(test_parse);
    RUN(test_load_mode);
    RUN(test_env);
    return CHECK_DONE();
}

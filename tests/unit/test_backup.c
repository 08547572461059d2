/* Backup MANIFEST: parse (untrusted text), print, and the path rules its
 * destinations follow (src/backup/backup_manifest.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backup/backup_int.h"
#include "check.h"
#include "distsync/backup.h"
#include "distsync/error.h"

#define SHA  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEAD "distsync-backup 1\nversion 0.1.0\nconsole h:0123456789ab\ncreated 1796000000\n"
#define CFG  "file config.0 config " SHA " 12 0644 /etc/distsync/distsync.conf\n"

static int parse(const char *text, ds_backup_manifest_t *m, char *err)
{
    return ds_backup_manifest_parse(text, strlen(text), m, err, 256);
}

static void test_paths(void)
{
    char out[64];

    CHECK(ds__backup_path_normal("/a/b"));
    CHECK(!ds__backup_path_normal("a/b"));
    CHECK(!ds__backup_path_normal("/"));
    CHECK(!ds__backup_path_normal("/a//b"));
    CHECK(!ds__backup_path_normal("/a/./b"));
    CHECK(!ds__backup_path_normal("/a/../b"));
    CHECK(!ds__backup_path_normal("/a/b/"));
    CHECK(!ds__backup_path_normal("/a/\nb"));
    CHECK_INT(ds__backup_normalize("/a//b/./c/../d/", out, sizeof(out)), 0);
    CHECK_STR(out, "/a/b/d");
    CHECK_INT(ds__backup_normalize("/../..", out, sizeof(out)), 0);
    CHECK_STR(out, "/");
    CHECK_INT(ds__backup_normalize("rel", out, sizeof(out)), DS_EPATH);
    CHECK_INT(ds__backup_normalize("/0123456789/0123456789", out, 12), -ENAMETOOLONG);
}

static void test_roundtrip(void)
{
    ds_backup_manifest_t m, again;
    char err[256] = "", *text = NULL;
    const char *in = HEAD CFG "file catalog.db catalog " SHA " 98304 0600 /var/lib/d s/catalog.db\n"
                              "omitted secret /root/.ssh/id_ed25519\n";
    size_t len = 0;

    CHECK_INT(parse(in, &m, err), 0);
    CHECK_INT((int)m.nfiles, 2);
    CHECK_STR(m.files[1].dest, "/var/lib/d s/catalog.db"); /* a space in DEST */
    CHECK_INT((int)m.files[1].mode, 0600);
    CHECK_INT((int)m.nomitted, 1);
    CHECK_STR(m.console, "h:0123456789ab");
    CHECK_INT(ds__backup_manifest_format(&m, &text, &len), 0);
    CHECK_STR(text, in);
    CHECK_INT(parse(text, &again, err), 0);
    free(text);
    ds_backup_manifest_clear(&m);
    ds_backup_manifest_clear(&again);
}

static void test_refused(void)
{
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"distsync-backup 1\n", "one config"},
        {HEAD, "one config"},
        {HEAD CFG CFG, "line 6: member config.0 listed twice"},
        {HEAD CFG "file ../x known_hosts " SHA " 1 0644 /x\n", "line 6: bad member name"},
        {HEAD CFG "file known_hosts.0 known_hosts " SHA " 1 0644 x\n", "line 6: destination"},
        {HEAD CFG "file known_hosts.0 known_hosts " SHA " 1 0644 /a/../etc/passwd\n",
         "line 6: destination"},
        {HEAD CFG "file known_hosts.0 known_hosts " SHA " 1 4755 /x\n", "line 6: bad mode"},
        {HEAD CFG "file known_hosts.0 known_hosts " SHA " 99999999999999999 0644 /x\n",
         "line 6: bad size"},
        {HEAD CFG "file known_hosts.0 known_hosts abc 1 0644 /x\n", "line 6: bad SHA-256"},
        {HEAD CFG "file known_hosts.0 root " SHA " 1 0644 /x\n", "line 6: unknown role"},
        {HEAD CFG "symlink a b\n", "line 6: unknown or repeated record"},
        {HEAD "version 0.2.0\n" CFG, "line 5: unknown or repeated record"},
        {"tar\n", "line 1: not a distsync backup manifest"},
        {HEAD CFG "no newline at the end", "not a text file of lines"},
    };
    ds_backup_manifest_t m;
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK_INT(parse(bad[i].text, &m, err), DS_ECORRUPT);
        CHECK(strstr(err, bad[i].why) != NULL);
        CHECK(m.files == NULL && m.nfiles == 0); /* cleared */
    }
    CHECK_INT(parse("distsync-backup 2\n", &m, err), DS_EVERSION);
    CHECK(strstr(err, "format 2 is newer") != NULL);
}

int main(void)
{
    RUN(test_paths);
    RUN(test_roundtrip);
    RUN(test_refused);
    return CHECK_DONE();
}

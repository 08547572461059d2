/*
 * The ssh:// URL parser and the fingerprint format (src/ssh_conn.c,
 * src/ssh_knownhosts.c): user, host, port, path; IPv6 literals; default
 * user and port; IPv6 literals in brackets in messages; bad shapes refused
 * naming the URL; SHA256 fingerprints as
 * OpenSSH prints them (base64 without padding).
 */
#include "check.h"
#include "distsync/error.h"
#include "transport/ssh_int.h"

static void test_url_full(void)
{
    struct ds__ssh_url u;
    char err[256] = "";

    CHECK_INT(ds__ssh_url_parse("ssh://bob@h.example:2222/srv/d x", &u, err, sizeof(err)), 0);
    CHECK(strcmp(u.user, "bob") == 0);
    CHECK(strcmp(u.host, "h.example") == 0);
    CHECK_INT(u.port, 2222);
    CHECK(strcmp(u.path, "/srv/d x") == 0);
    CHECK(strcmp(u.where, "bob@h.example:2222") == 0);
    CHECK(strcmp(u.hostport, "h.example:2222") == 0);
}

static void test_url_defaults(void)
{
    struct ds__ssh_url u;
    char err[256] = "";

    setenv("USER", "alice", 1);
    CHECK_INT(ds__ssh_url_parse("ssh://host/p", &u, err, sizeof(err)), 0);
    CHECK(strcmp(u.user, "alice") == 0);
    CHECK_INT(u.port, 22);
    CHECK_INT(ds__ssh_url_parse("ssh://u@[::1]:2200/p", &u, err, sizeof(err)), 0);
    CHECK(strcmp(u.host, "::1") == 0);
    CHECK_INT(u.port, 2200);
    /* an IPv6 literal in messages as OpenSSH writes it, not u@::1:2200 */
    CHECK(strcmp(u.where, "u@[::1]:2200") == 0);
    CHECK(strcmp(u.hostport, "[::1]:2200") == 0);
    CHECK_INT(ds__ssh_url_parse("ssh://[fe80::2]/p", &u, err, sizeof(err)), 0);
    CHECK(strcmp(u.host, "fe80::2") == 0);
    CHECK_INT(u.port, 22);
    CHECK(strcmp(u.where, "alice@[fe80::2]:22") == 0);
}

static void test_url_bad(void)
{
    static const char *bad[] = {"file:///x",       "ssh://host",   "ssh://@h/p", "ssh://h:0/p",
                                "ssh://h:70000/p", "ssh://[::1/p", "ssh:///p",   "ssh://u@:22/p",
                                "ssh://h:22x/p",   "ssh://h:/p"};
    struct ds__ssh_url u;
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK_INT(ds__ssh_url_parse(bad[i], &u, err, sizeof(err)), DS_EUSAGE);
        CHECK(strstr(err, bad[i]) != NULL);
    }
}

static void test_fingerprint(void)
{
    char fp[64];

    /* sha256("") = e3b0c442...; base64 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU= */
    ds__ssh_fingerprint((const unsigned char *)"", 0, fp);
    CHECK(strcmp(fp, "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU") == 0);
}

int main(void)
{
    RUN(test_url_full);
    RUN(test_url_defaults);
    RUN(test_url_bad);
    RUN(test_fingerprint);
    return CHECK_DONE();
}

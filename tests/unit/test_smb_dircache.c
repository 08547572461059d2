/* smb_dircache: the SMB backend's known directories; forgetting a URL
 * forgets everything under it and nothing beside it. */
#include <stdio.h>

#include "check.h"
#include "transport/smb_dircache.h"

static void test_forget(void)
{
    ds_smb_dircache_t c = {0};

    ds__smb_dircache_add(&c, "smb://h/s/d");
    ds__smb_dircache_add(&c, "smb://h/s/d/a");
    ds__smb_dircache_add(&c, "smb://h/s/d/a/b");
    ds__smb_dircache_add(&c, "smb://h/s/dd");
    ds__smb_dircache_add(&c, "smb://h/s/d"); /* once only */
    CHECK_INT((int)c.n, 4);
    CHECK(ds__smb_dircache_has(&c, "smb://h/s/d/a/b"));
    CHECK(!ds__smb_dircache_has(&c, "smb://h/s/d/a/c"));
    ds__smb_dircache_forget(&c, "smb://h/s/d/a");
    CHECK(!ds__smb_dircache_has(&c, "smb://h/s/d/a"));
    CHECK(!ds__smb_dircache_has(&c, "smb://h/s/d/a/b"));
    CHECK(ds__smb_dircache_has(&c, "smb://h/s/d"));
    ds__smb_dircache_forget(&c, "smb://h/s/d/"); /* a trailing slash names the same */
    CHECK(!ds__smb_dircache_has(&c, "smb://h/s/d"));
    CHECK(ds__smb_dircache_has(&c, "smb://h/s/dd")); /* a sibling with the prefix stays */
    ds__smb_dircache_close(&c);
    CHECK_INT((int)c.n, 0);
    ds__smb_dircache_close(&c); /* twice is fine */
}

static void test_many(void)
{
    ds_smb_dircache_t c = {0};
    char url[64];

    for (int i = 0; i < 1000; i++) {
        snprintf(url, sizeof(url), "smb://h/s/%d", i);
        ds__smb_dircache_add(&c, url);
    }
    CHECK_INT((int)c.n, 1000);
    CHECK(ds__smb_dircache_has(&c, "smb://h/s/999"));
    ds__smb_dircache_forget(&c, "smb://h/s/5");
    CHECK_INT((int)c.n, 999);
    CHECK(ds__smb_dircache_has(&c, "smb://h/s/50"));
    ds__smb_dircache_close(&c);
}

int main(void)
{
    RUN(test_forget);
    RUN(test_many);
    return CHECK_DONE();
}

/*
 * Minimal test harness for unit tests. Each test file defines test
 * functions and lists them in main() with RUN(). A failed CHECK records the
 * failure with file and line and lets the test continue; main returns
 * non-zero when any check failed. The last line printed is
 * "N passed, M failed".
 */
#ifndef DS_TEST_CHECK_H
#define DS_TEST_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int check_failures;
static int check_test_failed;
static int tests_passed, tests_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            check_failures++;                                                                      \
            check_test_failed = 1;                                                                 \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (va_ != vb_) {                                                                          \
            fprintf(stderr, "%s:%d: CHECK_INT failed: %s == %lld, expected %s == %lld\n",          \
                    __FILE__, __LINE__, #a, va_, #b, vb_);                                         \
            check_failures++;                                                                      \
            check_test_failed = 1;                                                                 \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        if (sa_ == NULL || sb_ == NULL || strcmp(sa_, sb_) != 0) {                                 \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s == \"%s\", expected \"%s\"\n", __FILE__,  \
                    __LINE__, #a, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");                     \
            check_failures++;                                                                      \
            check_test_failed = 1;                                                                 \
        }                                                                                          \
    } while (0)

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        check_test_failed = 0;                                                                     \
        fn();                                                                                      \
        if (check_test_failed) {                                                                   \
            tests_failed++;                                                                        \
            fprintf(stderr, "FAIL %s\n", #fn);                                                     \
        } else {                                                                                   \
            tests_passed++;                                                                        \
            printf("ok   %s\n", #fn);                                                              \
        }                                                                                          \
    } while (0)

#define CHECK_DONE()                                                                               \
    (printf("%d passed, %d failed\n", tests_passed, tests_failed), tests_failed ? 1 : 0)

#define CHECK_TMP_MAX 64
static char check_tmp_made[CHECK_TMP_MAX][4096];
static int check_tmp_n;
static pid_t check_tmp_owner;

/* At exit of the test process (not of a child it forked): removes the
 * scratch directories it made, unless a check failed or KEEP=1 is set. */
static inline void check_tmp_cleanup(void)
{
    char cmd[4096 + 64];

    if (getpid() != check_tmp_owner || check_failures > 0 || tests_failed > 0 ||
        getenv("KEEP") != NULL)
        return;
    for (int i = 0; i < check_tmp_n; i++) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%.4000s'", check_tmp_made[i]);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", check_tmp_made[i]);
    }
}

/* A fresh, empty scratch directory for this test binary (under DS_TEST_TMP
 * or /tmp), removed when the binary exits with every check passed.
 * Returns a static buffer. */
static inline const char *check_tmpdir(const char *name)
{
    static char path[4096];
    const char *base = getenv("DS_TEST_TMP");
    char cmd[2 * sizeof(path) + 64];

    if (base == NULL)
        base = "/tmp";
    snprintf(path, sizeof(path), "%s/%s.%d", base, name, (int)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", path, path);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot create %s\n", path);
        exit(2);
    }
    if (check_tmp_n == 0) {
        check_tmp_owner = getpid();
        atexit(check_tmp_cleanup);
    }
    if (check_tmp_n < CHECK_TMP_MAX)
        snprintf(check_tmp_made[check_tmp_n++], sizeof(check_tmp_made[0]), "%s", path);
    return path;
}

#endif

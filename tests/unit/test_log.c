/* The log sink and the per-thread context (log.h): a line carries the
 * context of the thread that logs it, a scope carries it to another
 * thread, and clearing it leaves none. */
#include <pthread.h>

#include "check.h"
#include "distsync/log.h"

static char got_ctx[256], got_srv[64], got_msg[256];

static void sink(void *ctx, ds_log_level_t level, const char *msg)
{
    const char *srv = ds_log_server_get();

    (void)ctx;
    (void)level;
    snprintf(got_ctx, sizeof(got_ctx), "%s", ds_log_context_get());
    snprintf(got_srv, sizeof(got_srv), "%s", srv ? srv : "(none)");
    snprintf(got_msg, sizeof(got_msg), "%s", msg);
}

static void *worker(void *arg)
{
    const ds_log_scope_t *s = arg;

    ds_log(DS_LOG_INFO, "before"); /* a new thread has no context */
    CHECK(strcmp(got_ctx, "") == 0);
    CHECK(strcmp(got_srv, "(none)") == 0);
    ds_log_scope_set(s);
    ds_log(DS_LOG_INFO, "in %d", 7);
    CHECK(strcmp(got_ctx, "run=nightly@2026-03-10T02:00Z") == 0);
    CHECK(strcmp(got_srv, "s1") == 0);
    CHECK(strcmp(got_msg, "in 7") == 0);
    ds_log_scope_set(NULL);
    ds_log(DS_LOG_INFO, "after");
    CHECK(strcmp(got_ctx, "") == 0);
    CHECK(strcmp(got_srv, "(none)") == 0);
    return NULL;
}

static void test_scope(void)
{
    ds_log_scope_t s;
    pthread_t t;

    ds_log_set(sink, NULL);
    ds_log_context("run=nightly@2026-03-10T02:00Z");
    ds_log_server("s1");
    ds_log(DS_LOG_INFO, "here");
    CHECK(strcmp(got_ctx, "run=nightly@2026-03-10T02:00Z") == 0);
    CHECK(strcmp(got_srv, "s1") == 0);
    ds_log_scope_save(&s);
    ds_log_context(NULL); /* the saved scope is a copy */
    ds_log_server(NULL);
    CHECK(pthread_create(&t, NULL, worker, &s) == 0);
    pthread_join(t, NULL);
    ds_log(DS_LOG_INFO, "cleared");
    CHECK(strcmp(got_ctx, "") == 0);
    CHECK(strcmp(got_srv, "(none)") == 0);
    ds_log_set(NULL, NULL);
}

int main(void)
{
    RUN(test_scope);
    return CHECK_DONE();
}

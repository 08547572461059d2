/*
 * The DNS lookup of an ssh:// host, bounded by the connect deadline:
 * getaddrinfo(3) cannot be cancelled and may hang for as long as the
 * resolver's retries last, so it runs on a detached thread of its own and
 * the caller waits for it until the deadline at most. A lookup that
 * answers late frees its own result; the caller has gone on with a clear
 * error naming the host.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "distsync/error.h"

#include "ssh_int.h"

/* Shared by the caller and the lookup thread; the last one out frees it. */
struct lookup {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs, done, gai;
    struct addrinfo *res;
    char host[256], port[8];
    unsigned delay_ms;
};

static void unref(struct lookup *q)
{
    int left;

    pthread_mutex_lock(&q->mu);
    left = --q->refs;
    pthread_mutex_unlock(&q->mu);
    if (left > 0)
        return;
    if (q->res != NULL)
        freeaddrinfo(q->res);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

static void *lookup_main(void *arg)
{
    struct lookup *q = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    struct timespec nap = {q->delay_ms / 1000, (long)(q->delay_ms % 1000) * 1000000};
    int gai;

    while (q->delay_ms > 0 && nanosleep(&nap, &nap) < 0 && errno == EINTR)
        ;
    gai = getaddrinfo(q->host, q->port, &hints, &res);
    pthread_mutex_lock(&q->mu);
    q->gai = gai;
    q->res = gai == 0 ? res : NULL;
    q->done = 1;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    unref(q);
    return NULL;
}

static struct lookup *lookup_new(const struct ds__ssh_url *u)
{
    struct lookup *q = calloc(1, sizeof(*q));
    pthread_condattr_t ca;

    if (q == NULL)
        return NULL;
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(q->host, sizeof(q->host), "%s", u->host);
    snprintf(q->port, sizeof(q->port), "%d", u->port);
    q->delay_ms = u->test_dns_delay_ms;
    q->refs = 2; /* the caller and the thread */
    return q;
}

/* See ssh_int.h. */
int ds__ssh_resolve(const struct ds__ssh_url *u, int64_t deadline_ns, unsigned connect_s,
                    struct addrinfo **out, char *err, size_t errlen)
{
    struct lookup *q = lookup_new(u);
    struct timespec until = {(time_t)(deadline_ns / 1000000000), (long)(deadline_ns % 1000000000)};
    pthread_attr_t ta;
    pthread_t th;
    int rc = 0;

    *out = NULL;
    if (q == NULL) {
        snprintf(err, errlen, "%s: out of memory", u->where);
        return DS_ENOMEM;
    }
    pthread_attr_init(&ta);
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&th, &ta, lookup_main, q);
    pthread_attr_destroy(&ta);
    if (rc != 0) {
        q->refs = 1;
        unref(q);
        snprintf(err, errlen, "%s: cannot resolve host '%s': %s", u->where, u->host, strerror(rc));
        return -rc;
    }
    pthread_mutex_lock(&q->mu);
    while (!q->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&q->cv, &q->mu, &until);
    if (q->done && q->gai == 0) {
        *out = q->res;
        q->res = NULL;
        rc = 0;
    } else if (q->done) {
        snprintf(err, errlen, "%s: cannot resolve host '%s': %s", u->where, u->host,
                 gai_strerror(q->gai));
        rc = DS_ETRANSPORT;
    } else {
        snprintf(err, errlen,
                 "%s: cannot resolve host '%s': no answer within connect_timeout = %us", u->where,
                 u->host, connect_s);
        rc = DS_ETRANSPORT;
    }
    pthread_mutex_unlock(&q->mu);
    unref(q);
    return rc;
}

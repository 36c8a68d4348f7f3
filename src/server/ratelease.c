/* ratelease.c - the lease thread of a worker on a PostgreSQL store (ratelease.h).
 *
 * The request path (auth/ratelimit.c) claims a caller's lease, queues it and signals the
 * condition variable here; this thread takes the queue, runs one UPDATE per lease
 * (store/store_ratelimit.h) and writes the outcome into the shared slot. A failed lease puts
 * that caller under the node's own limit for a second (fail open, ratelimit.h invariant 4);
 * the first failure and the recovery are logged once each. */
#include "server/ratelease.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/err.h"
#include "core/log.h"
#include "store/store.h"
#include "store/store_ratelimit.h"

struct pt_ratelease {
    const char *datadir; /* borrowed */
    pt_ratelimit *rl;    /* borrowed */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int kicked;      /* under mu */
    pt_store *store; /* the thread's own; NULL until the first lease, or after a failure */
    int failing;     /* the last lease failed (logged once) */
};

static uint64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Called on the request path: must not block (the lock is held only to take the flag). */
static void
wake(void *ctx)
{
    pt_ratelease *r = ctx;
    pthread_mutex_lock(&r->mu);
    r->kicked = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Runs lease l; returns its rc, with the reason logged on the first failure in a row. */
static int
run_lease(pt_ratelease *r, pt_ratelimit_lease *l, int64_t *granted, uint64_t *wait_ns)
{
    char err[256] = "";
    int rc = 0;

    if (r->store == NULL)
        rc = pt_store_open(r->datadir, &r->store, err, sizeof err);
    if (rc == 0) {
        rc = pt_store_rate_lease(r->store, l->key, l->rate.count, l->rate.period, l->want, granted,
                                 wait_ns);
        if (rc != 0)
            snprintf(err, sizeof err, "%s", pt_store_errmsg(r->store));
    }
    if (rc != 0 && !r->failing)
        pt_log_warn("rate limits are per node until the store answers again: %s", err);
    else if (rc == 0 && r->failing)
        pt_log_info("rate limits are shared by the nodes again");
    r->failing = rc != 0;
    if (rc != 0 && rc != PT_EINVAL) {
        /* A fresh connection next time: the store's own reconnect covers an idle drop. */
        pt_store_close(r->store);
        r->store = NULL;
    }
    return rc;
}

static void *
lease_main(void *arg)
{
    pt_ratelease *r = arg;

    for (;;) {
        pt_ratelimit_lease l;
        pthread_mutex_lock(&r->mu);
        while (!r->kicked)
            pthread_cond_wait(&r->cv, &r->mu);
        r->kicked = 0;
        pthread_mutex_unlock(&r->mu);
        while (pt_ratelimit_lease_next(r->rl, &l)) {
            int64_t granted = 0;
            uint64_t wait_ns = 0;
            int rc = run_lease(r, &l, &granted, &wait_ns);
            pt_ratelimit_lease_done(r->rl, &l, rc, granted, wait_ns, mono_ns());
        }
    }
    return NULL;
}

int
pt_ratelease_start(const char *datadir, pt_ratelimit *rl, pt_ratelease **out, char *err,
                   size_t errsz)
{
    pt_ratelease *r = NULL;
    int rc = 0;

    if (rl == NULL) {
        snprintf(err, errsz, "no rate limit table");
        return PT_EINVAL;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL) {
        snprintf(err, errsz, "out of memory");
        return PT_ENOMEM;
    }
    r->datadir = datadir;
    r->rl = rl;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->thread, NULL, lease_main, r) != 0) {
        snprintf(err, errsz, "cannot start the rate limit lease thread");
        rc = PT_ENOMEM;
        goto fail;
    }
    pthread_detach(r->thread);
    pt_ratelimit_cluster(rl, wake, r); /* cannot fail: rl and wake are set */
    *out = r;
    return 0;
fail:
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
    return rc;
}

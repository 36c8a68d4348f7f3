/* testrun.c - test runs (issue 9, section 5): one request through a script's handler, exactly
 * as a published request runs (pt_py_handle: same pq, memory budget, print() capture), with a
 * watchdog for the timeout; a draft gets a version below 0, which handler.c caches apart from
 * the published versions' modules. */
#include "py/py_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "py/py.h"

/* Each draft run compiles afresh: its version in the cache is the next of these. */
static atomic_int draft_versions;

/* The watchdog: interrupts the handler's thread once the timeout passes. */
typedef struct watchdog {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;  /* the handler returned (under mu) */
    int fired; /* the timeout passed and the handler was interrupted (under mu) */
    double timeout;
    unsigned long ident; /* the Python thread running the handler */
} watchdog;

static void *
watchdog_main(void *arg)
{
    watchdog *wd = arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)wd->timeout;
    until.tv_nsec += (long)((wd->timeout - (double)(time_t)wd->timeout) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&wd->mu);
    while (!wd->done && pthread_cond_timedwait(&wd->cv, &wd->mu, &until) == 0)
        ;
    if (!wd->done) {
        wd->fired = 1;
        /* Under mu: the running thread marks the handler done under mu (without the GIL), so
         * a handler that returned is never interrupted. */
        PyGILState_STATE st = PyGILState_Ensure();
        pt_py_interrupt(wd->ident);
        PyGILState_Release(st);
    }
    pthread_mutex_unlock(&wd->mu);
    return NULL;
}

static double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

double
pt_py_test_run(const pt_script_ref *script, int draft, const pt_request *req, double timeout,
               pt_response *resp)
{
    pt_script_ref ref = *script;
    watchdog wd = {.timeout = timeout};
    pthread_t thread;
    int have_watchdog = 0;

    if (draft) /* a version below 0: compiled afresh, and cached apart (handler.c) */
        ref.version = -1 - atomic_fetch_add(&draft_versions, 1);
    PyGILState_STATE st = PyGILState_Ensure();
    double start = now_ms();
    if (timeout > 0) {
        pthread_mutex_init(&wd.mu, NULL);
        pthread_cond_init(&wd.cv, NULL);
        wd.ident = PyThread_get_thread_ident();
        have_watchdog = pthread_create(&thread, NULL, watchdog_main, &wd) == 0;
        if (!have_watchdog)
            pt_log_warn("test run %s: no watchdog thread; the timeout does not apply", req->id);
    }
    pt_py_handle(&ref, req, resp);
    if (have_watchdog) {
        /* Without the GIL: the watchdog may be waiting for it, holding mu, to interrupt. */
        PyThreadState *ts = PyEval_SaveThread();
        pthread_mutex_lock(&wd.mu);
        wd.done = 1;
        pthread_cond_signal(&wd.cv);
        pthread_mutex_unlock(&wd.mu);
        pthread_join(thread, NULL);
        PyEval_RestoreThread(ts);
        if (wd.fired) {
            /* An interrupt that fired as the handler returned must not hit later code. */
            pt_py_clear_interrupt();
            pt_response_error(resp, 504, "handler timed out", req->id);
            char why[96];
            int n = snprintf(why, sizeof(why),
                             "TimeoutError: the handler ran past the timeout (%gs)", timeout);
            if (resp->traceback.len == 0)
                pt_response_set_traceback(resp, why, (size_t)n);
        }
        pthread_cond_destroy(&wd.cv);
        pthread_mutex_destroy(&wd.mu);
    }
    double ms = now_ms() - start;
    PyGILState_Release(st);
    return ms;
}

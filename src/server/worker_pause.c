/* worker_pause.c - the crash breaker's answer (breaker.h): 503 with Retry-After for an
 * endpoint whose handler keeps killing workers, held back for PT_PAUSE_HOLD_MS first, so that
 * a client that ignores Retry-After and asks again at once costs the worker a timer rather
 * than a busy loop of requests. */
#include <stdio.h>

#include "server/worker_int.h"

/* A held answer: lives in the request's pool; disposed with it (client gone or answered). */
typedef struct paused {
    h2o_timeout_entry_t te; /* first: the timer hands us the entry */
    h2o_req_t *req;
    snapshot *snap; /* reference held: route lives in it */
    const struct route *route;
    int retry_after;
} paused;

static void
on_hold_over(h2o_timeout_entry_t *te)
{
    paused *p = (paused *)te;
    char ra[16];
    snprintf(ra, sizeof(ra), "%d", p->retry_after);
    pt_send_simple(&pt_worker_self, p->req, p->route, 503, NULL, NULL,
                   "endpoint paused: its handler keeps crashing workers; retry later",
                   "retry-after", ra);
}

static void
on_dispose(void *arg)
{
    paused *p = arg;
    if (h2o_timeout_is_linked(&p->te))
        h2o_timeout_unlink(&p->te);
    pt_worker_snapshot_release(p->snap);
}

void
pt_pause_answer(worker *w, h2o_req_t *req, snapshot *snap, const struct route *route,
                int retry_after)
{
    paused *p = h2o_mem_alloc_shared(&req->pool, sizeof(*p), on_dispose);
    *p = (paused){.req = req, .snap = snap, .route = route, .retry_after = retry_after};
    p->te.cb = on_hold_over;
    atomic_fetch_add(&snap->refs, 1);
    h2o_timeout_link(w->loop, &w->pause_hold, &p->te);
}

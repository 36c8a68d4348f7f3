/* worker_pool.c - the threads that run a worker: a leader/follower pool over the event loop,
 * and the monitor that hands the loop over, grows the pool and enforces the handler timeout.
 *
 * Design notes
 * ------------
 * The hot path must cost what an inline call costs, yet a handler that blocks (sleeps, waits
 * on a partner's API) must not hold up the worker's other connections. So the worker runs a
 * leader/follower pool:
 *
 *   - Exactly one thread, the leader, drives the event loop. HTTP callbacks never run Python:
 *     they route the request, copy it into a job and queue it (`ready`). When the loop
 *     iteration returns, the leader takes the GIL and runs the queued jobs itself, inline, then
 *     sends each response directly. No thread hand-off happens on this path.
 *   - A monitor thread looks at the leader every millisecond. If the leader has been inside
 *     the same handler since the previous look and a follower is idle, the monitor demotes
 *     the leader (one CAS on `lstate`) and wakes a follower, which becomes the new leader and
 *     carries on with the loop and the rest of `ready`. If no follower is idle, it starts a
 *     new thread (up to 4 x --threads), which takes the loop over at the next tick.
 *   - A demoted thread finishes its handler, then posts the job to the leader through the
 *     loop's multithread queue (`done`) and becomes a follower, or the leader again if there
 *     is none. It never touches h2o state after being demoted.
 *   - The monitor also times handlers out (a CAS on the job's state against the running
 *     thread; the 504 goes out through the loop) and lends the connection of a handler still
 *     running after a tick to the master (holds.h), so that it is answered if the worker dies.
 *
 * The invariants these rely on are in worker_int.h.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "py/py.h"
#include "server/holds.h"
#include "server/worker_int.h"

_Thread_local slot *pt_pool_current;

/* Runs the handler of j on the calling thread. Needs the GIL. */
static void
run_handler(worker *w, slot *s, job *j)
{
    atomic_fetch_add(&j->refs, 1); /* the running thread's reference */
    atomic_store(&j->state, JOB_RUNNING);
    memcpy(s->id, j->req.id, sizeof(s->id));
    s->endpoint = j->route != NULL ? j->route->ep->name : NULL; /* NULL: an admin job */
    atomic_store(&s->fd, j->fd);
    atomic_store(&s->started, now_sec());
    pthread_mutex_lock(&s->lock);
    atomic_store(&s->job, j);
    pthread_mutex_unlock(&s->lock);
    j->py_ident = s->py_ident;
    j->slot = s;
    if (j->run != NULL) {
        /* An admin job: C that may wait on the store or a password hash; Python threads
         * (and the syntax check, which takes the GIL itself) go on meanwhile. */
        pt_py_gil_release();
        j->run(w, j);
        pt_py_gil_acquire();
    } else if (j->route->script == NULL) {
        pt_response_error(&j->resp, 500, "endpoint script is missing", j->req.id);
        pt_log_error("request %s: endpoint %s has no script '%s'", j->req.id, j->route->ep->name,
                     j->route->ep->script);
    } else {
        pt_script_ref ref = {j->route->script->name, j->route->script->version,
                             j->route->script->source, j->route->script->source_len,
                             j->route->script->id};
        pt_py_handle(&ref, &j->req, &j->resp);
    }
    /* Cleared with the GIL still held: pt_send_finish() checks it under the GIL before it
     * interrupts this thread, so a TimeoutError never lands in a later request. */
    pthread_mutex_lock(&s->lock);
    atomic_store(&s->job, NULL);
    atomic_store(&s->fd, -1);
    atomic_store(&s->lent, 0); /* from here on j->lent alone says what pt_send_finish owes */
    pthread_mutex_unlock(&s->lock);
    if (s->interrupted) {
        pt_py_clear_interrupt();
        s->interrupted = 0;
    }
}

/* Runs queued jobs as the leader. Returns 1 while still the leader, 0 once demoted (the
 * thread then holds no GIL and must not touch h2o). */
static int
lead_jobs(worker *w, slot *s)
{
    int have_gil = 0;
    job *j;
    for (;;) {
        pthread_mutex_lock(&w->ready_mu);
        if ((j = w->ready_head) != NULL) {
            w->ready_head = j->next;
            if (w->ready_head == NULL)
                w->ready_tail = NULL;
        }
        pthread_mutex_unlock(&w->ready_mu);
        if (j == NULL)
            break;
        j->next = NULL;
        /* framing: a request whose client left while it waited never runs (issue 14 s3). */
        if (pt_job_waited_cancelled(j)) {
            pt_job_drop(w, j);
            continue;
        }
        if (!have_gil) {
            pt_py_gil_acquire();
            have_gil = 1;
        }
        uint64_t seq = ++w->seq;
        atomic_store(&w->lstate, (seq << 1) | 1);
        run_handler(w, s, j);
        uint_fast64_t expect = (seq << 1) | 1;
        int still_leader = atomic_compare_exchange_strong(&w->lstate, &expect, seq << 1);
        int expect_state = JOB_RUNNING;
        int mine = atomic_compare_exchange_strong(&j->state, &expect_state, JOB_DONE);
        if (still_leader) {
            if (mine)
                pt_send_finish(w, j, 0);
            pt_job_release(j);
            continue;
        }
        /* Demoted while the handler ran: hand the job to whoever leads now. */
        pt_py_gil_release();
        if (mine)
            h2o_multithread_send_message(&w->done_rx, &j->msg);
        pt_job_release(j);
        return 0;
    }
    if (have_gil)
        pt_py_gil_release();
    return 1;
}

/* The leader's loop. Returns when the thread has been demoted. */
static void
lead(worker *w, slot *s)
{
    /* A new leader first lets the loop deliver what is pending (timeouts, jobs finished by
     * demoted threads) without waiting, then runs the queue. */
    h2o_evloop_run(w->loop, 0);
    for (;;) {
        if (!lead_jobs(w, s))
            return;
        pt_send_flush_log(w);
        if (atomic_load(&w->stopping)) {
            if (w->inflight == 0 || now_sec() > w->stop_deadline) {
                /* Let h2o flush what it has written, then go. A request that still arrives
                 * meanwhile (on a connection told to close with its answer, see on_req) is
                 * answered, not dropped. */
                for (int i = 0; i < 5; i++) {
                    h2o_evloop_run(w->loop, 20);
                    if (!lead_jobs(w, s))
                        return;
                    pt_send_flush_log(w);
                }
                if (w->inflight == 0 || now_sec() > w->stop_deadline)
                    pt_worker_exit(w);
                continue;
            }
            h2o_evloop_run(w->loop, 50);
        } else {
            h2o_evloop_run(w->loop, INT32_MAX);
        }
    }
}

/* A pool thread: a follower waiting on `cv` until no thread leads, then the leader until it
 * is demoted; forever (invariant 4). arg is its slot. */
static void *
pool_main(void *arg)
{
    worker *w = &pt_worker_self;
    slot *s = arg;
    pt_pool_current = s;
    stack_t ss = {.ss_sp = malloc(65536), .ss_size = 65536};
    if (ss.ss_sp != NULL)
        sigaltstack(&ss, NULL);
    pt_py_thread_attach();
    s->py_ident = pt_py_thread_ident();

    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->leader_present) {
            w->idle_followers++;
            pthread_cond_wait(&w->cv, &w->mu);
            w->idle_followers--;
        }
        w->leader_present = 1;
        pthread_mutex_unlock(&w->mu);
        lead(w, s);
        pthread_mutex_lock(&w->mu);
    }
    return NULL;
}

/* Starts one more pool thread (caller holds mu). Returns 0, or PT_EIO when MAX_THREADS run
 * already or the thread cannot be created. */
static int
spawn_thread(worker *w)
{
    pthread_t t;
    pthread_attr_t attr;
    int i = w->nthreads;
    if (i >= MAX_THREADS)
        return PT_EIO;
    atomic_init(&w->slots[i].fd, -1);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 8u << 20);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, pool_main, &w->slots[i]);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return PT_EIO;
    w->nthreads++;
    return 0;
}

/* Keeps the worker able to serve when handlers hang past the timeout: a new thread for each
 * stuck one while no thread is idle (up to 4 per configured thread); when every thread is
 * stuck and no more may start, the worker answers what it holds and exits (the master starts
 * a fresh one). Monitor thread only. */
static void
replace_stuck_threads(worker *w, int nthreads)
{
    int stuck = 0;
    for (int i = 0; i < nthreads; i++)
        stuck += w->slots[i].stuck;
    if (stuck == 0)
        return;
    pthread_mutex_lock(&w->mu);
    int idle = w->idle_followers > 0 || !w->leader_present;
    if (stuck < w->nthreads || idle) {
        /* Some thread can still serve; start another only when none is idle. */
        if (w->idle_followers == 0 && stuck > w->nstuck && w->nthreads < w->cfg->threads * 4 &&
            spawn_thread(w) == 0)
            pt_log_warn("worker %d: %d thread(s) stuck in handlers; started another", w->index,
                        stuck);
        w->nstuck = stuck;
        pthread_mutex_unlock(&w->mu);
        return;
    }
    if (w->nthreads < w->cfg->threads * 4 && spawn_thread(w) == 0) {
        pt_log_warn("worker %d: every thread is stuck in a handler; started another", w->index);
        w->nstuck = stuck;
        pthread_mutex_unlock(&w->mu);
        return;
    }
    pthread_mutex_unlock(&w->mu);
    pt_log_error("worker %d: all %d threads are stuck in handlers; replacing the worker", w->index,
                 nthreads);
    pt_crash_exit_stuck(w);
}

/* The monitor thread: every 1 ms while the leader runs a handler (5 ms otherwise), hands the
 * loop over or grows the pool, lends slow requests' connections to the master, times handlers
 * out and replaces stuck threads. arg is the worker. */
static void *
monitor_main(void *arg)
{
    worker *w = arg;
    uint_fast64_t last = 0;
    for (;;) {
        uint_fast64_t v = atomic_load(&w->lstate);
        struct timespec nap = {0, (v & 1) ? 1000000 : 5000000};
        nanosleep(&nap, NULL);

        /* Hand the loop over when the leader has been in one handler for a whole tick. */
        v = atomic_load(&w->lstate);
        if ((v & 1) && v == last) {
            pthread_mutex_lock(&w->mu);
            uint_fast64_t expect = v;
            if (w->idle_followers > 0 &&
                atomic_compare_exchange_strong(&w->lstate, &expect, v & ~(uint_fast64_t)1)) {
                w->leader_present = 0;
                pthread_cond_signal(&w->cv);
            } else if (w->idle_followers == 0 && w->nthreads < w->cfg->threads * 4) {
                /* Every thread is in a handler: grow the pool (up to 4 x --threads) so that
                 * the loop goes on; the new thread takes it over at the next tick. Threads
                 * are never retired (h2o keeps per-thread state), so the pool stays grown. */
                if (spawn_thread(w) == 0)
                    pt_log_debug("worker %d: all %d threads busy in handlers; started another",
                                 w->index, w->nthreads - 1);
            }
            pthread_mutex_unlock(&w->mu);
        }
        last = v;

        /* Time out handlers; replace threads lost to them. */
        double now = now_sec();
        pthread_mutex_lock(&w->mu);
        int nthreads = w->nthreads;
        pthread_mutex_unlock(&w->mu);
        for (int i = 0; i < nthreads; i++) {
            slot *s = &w->slots[i];
            pthread_mutex_lock(&s->lock);
            job *j = atomic_load(&s->job);
            if (j == NULL)
                s->stuck = 0;
            int fd = atomic_load(&s->fd);
            /* framing: notice a client that leaves while its handler runs (pq.Cancelled). */
            if (j != NULL && fd >= 0 && atomic_load(&j->state) == JOB_RUNNING)
                pt_job_poll(j, now);
            /* A handler still running after a tick: lend its connection to the master so
             * that it can answer 502 if this process dies (holds.h). */
            if (j != NULL && fd >= 0 && !atomic_load(&j->lent) &&
                atomic_load(&j->state) == JOB_RUNNING && now - atomic_load(&s->started) > 0.002 &&
                pt_holds_lend(w->ctl, fd, j->req.id) == 0) {
                atomic_store(&j->lent, 1);
                atomic_store(&s->lent, 1);
            }
            /* An admin job gets a second more: a test run inside it has the handler timeout
             * of its own, and its 504 (with what the draft printed) must win the race. */
            double limit = j != NULL && j->timeout > 0 ? j->timeout : w->cfg->timeout;
            if (j == NULL || s->stuck ||
                now - atomic_load(&s->started) < limit + (j->run != NULL ? 1 : 0)) {
                pthread_mutex_unlock(&s->lock);
                continue;
            }
            /* The running thread cannot release j while we hold the slot lock. */
            int expect = JOB_RUNNING;
            if (atomic_compare_exchange_strong(&j->state, &expect, JOB_TIMED_OUT)) {
                pt_log_warn("request %s: handler timed out after %g s", j->req.id, limit);
                /* The 504 goes out through the loop and the connection moves on: nothing may
                 * be written on it for this job any more (crash answers included). */
                atomic_store(&s->owed_fd, atomic_exchange(&s->fd, -1));
                atomic_store(&s->lent, 0);
                h2o_multithread_send_message(&w->done_rx, &j->msg);
            }
            s->stuck = 1;
            pthread_mutex_unlock(&s->lock);
        }
        replace_stuck_threads(w, nthreads);
    }
    return NULL;
}

int
pt_pool_start(worker *w)
{
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < w->cfg->threads; i++) {
        if (spawn_thread(w) != 0) {
            pthread_mutex_unlock(&w->mu);
            pt_log_error("cannot start threads");
            return PT_EIO;
        }
    }
    pthread_mutex_unlock(&w->mu);
    pthread_t mon;
    if (pthread_create(&mon, NULL, monitor_main, w) != 0) {
        pt_log_error("cannot start the monitor thread");
        return PT_EIO;
    }
    return 0;
}

void
pt_pool_submit(worker *w, job *j)
{
    w->inflight++;
    pthread_mutex_lock(&w->ready_mu);
    if (w->ready_tail != NULL)
        w->ready_tail->next = j;
    else
        w->ready_head = j;
    w->ready_tail = j;
    pthread_mutex_unlock(&w->ready_mu);
}

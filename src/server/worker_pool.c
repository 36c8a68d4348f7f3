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
 * The waiting lane
 * ----------------
 * Demotion costs a thread wake-up or two per blocking request, and while it happens the jobs
 * queued behind the blocking one wait; on a loaded machine a wake-up takes milliseconds, and
 * a hello queued behind a burst of sleepers waited hundreds of them. And pool threads can never
 * exit, so their number must stay small. So an endpoint whose handlers block does not run on
 * the leader at all:
 *
 *   - An endpoint is *slow* once its handlers waited a few times (route->slow reaches SLOW_AT):
 *     a run counts as waiting when it held the leader for a whole monitor tick, or ran for
 *     more than SLOW_AFTER on a runner; quick runs count it down, and below SLOW_AT its jobs
 *     run inline again. A score, not a flag: on a busy machine a quick handler sometimes
 *     loses the CPU for milliseconds, and one such run must not send hello to the runners.
 *   - The leader hands a slow endpoint's job to the run queue (a mutex, a condition variable)
 *     and goes on with the next one: fast jobs never wait behind waiting ones.
 *   - Runner threads take jobs from the run queue, run the handler (GIL taken and dropped as
 *     the handler waits), and post the job to the loop through the `done` queue. They never
 *     touch h2o (invariant 6), so they may come and go: one starts whenever the queue holds
 *     more jobs than runners are idle, up to --max-threads per worker, each with a small stack
 *     (RUNNER_STACK) and its Python thread state created once; one idle for RUNNER_IDLE
 *     seconds exits (its thread state, and the warehouse handles in it, go with it) while
 *     more than RUNNERS_KEEP are left. Beyond --max-threads, jobs wait in the run queue.
 *   - Runners have slots after the pool threads': the monitor times them out and lends their
 *     connections like any other, and the crash paths answer them.
 *
 * The invariants these rely on are in worker_int.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "py/py.h"
#include "server/holds.h"
#include "server/worker_int.h"

_Thread_local slot *pt_pool_current;

/* A handler run longer than this (seconds) counts as waiting. */
#define SLOW_AFTER 0.002
/* An endpoint's score (route->slow): each waiting run adds SLOW_STEP (up to SLOW_MAX), each
 * quick one takes 1 off, and its jobs go to the waiting lane from SLOW_AT on. So one run
 * that merely lost the CPU (a preempted hello on a busy machine) does not send an endpoint
 * there, a handler that waits every time gets there at its third run, and 41 quick runs
 * bring it back. */
#define SLOW_STEP 8
#define SLOW_MAX 64
#define SLOW_AT 24
/* A runner's stack: deep enough for the recursion limit's worth of C recursion in CPython
 * 3.11 (a json.dumps of 1000 nested lists, a recursive repr), small enough that hundreds of
 * runners reserve little address space; RSS is what the thread touches. */
#define RUNNER_STACK (1u << 20)
/* Seconds a runner waits for work before it may exit (PORTICO_RUNNER_IDLE, a hidden setting
 * for tests, overrides it), and how many always stay. */
#define RUNNER_IDLE 10
#define RUNNERS_KEEP 4
/* Each thread's alternate signal stack, for the crash handler on a stack overflow. */
#define ALT_STACK 65536

/* Notes how long a handler of route r ran (see "The waiting lane"). Any thread. */
static void
learn(const struct route *r, double took)
{
    struct route *rw = (struct route *)r; /* only the atomic counter is written */
    if (r == NULL)
        return;
    int v = atomic_load_explicit(&rw->slow, memory_order_relaxed);
    int to = took >= SLOW_AFTER ? (v + SLOW_STEP < SLOW_MAX ? v + SLOW_STEP : SLOW_MAX)
             : v > 0            ? v - 1
                                : 0;
    /* A lost race loses one step of a heuristic: no retry. */
    if (to != v)
        atomic_compare_exchange_strong_explicit(&rw->slow, &v, to, memory_order_relaxed,
                                                memory_order_relaxed);
}

/* An alternate signal stack for the calling thread; returns it (free with free() once the
 * thread no longer runs on it), NULL when none could be allocated. */
static void *
alt_stack_on(void)
{
    stack_t ss = {.ss_sp = malloc(ALT_STACK), .ss_size = ALT_STACK};
    if (ss.ss_sp != NULL)
        sigaltstack(&ss, NULL);
    return ss.ss_sp;
}

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

/* Prepares slot s (never used before) for a thread: no job, no connection. */
static void
slot_init(slot *s)
{
    pthread_mutex_init(&s->lock, NULL);
    atomic_init(&s->job, NULL);
    atomic_init(&s->fd, -1);
    atomic_init(&s->owed_fd, -1);
    atomic_init(&s->lent, 0);
}

/* Runs one job of the run queue on runner slot s: the handler, then the answer through the
 * `done` queue. Drops the queue's reference (moved to the loop with the message) or the
 * runner's. Takes and drops the GIL. */
static void
run_waiting(worker *w, slot *s, job *j)
{
    /* A request whose client left while it waited never runs: its 499 goes to the loop. */
    if (pt_job_waited_cancelled(j)) {
        pt_response_error(&j->resp, 499, "client closed request", j->req.id);
        h2o_multithread_send_message(&w->done_rx, &j->msg);
        return;
    }
    pt_py_gil_acquire();
    run_handler(w, s, j);
    learn(j->route, now_sec() - atomic_load(&s->started));
    int expect = JOB_RUNNING;
    int mine = atomic_compare_exchange_strong(&j->state, &expect, JOB_DONE);
    pt_py_gil_release();
    if (mine)
        h2o_multithread_send_message(&w->done_rx, &j->msg); /* the queue's reference moves */
    pt_job_release(j);                                      /* the runner's (run_handler) */
}

/* A runner thread: runs the run queue's jobs until it has been idle for RUNNER_IDLE seconds
 * while more than RUNNERS_KEEP runners are left; then gives its slot back and exits. arg is
 * its slot. */
static void *
runner_main(void *arg)
{
    worker *w = &pt_worker_self;
    slot *s = arg;
    pt_pool_current = s;
    void *alt = alt_stack_on();
    pt_py_thread_attach();
    s->py_ident = pt_py_thread_ident();

    pthread_mutex_lock(&w->run_mu);
    for (;;) {
        job *j = w->run_head;
        if (j == NULL) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += w->runner_idle;
            w->idle_runners++;
            int rc = pthread_cond_timedwait(&w->run_cv, &w->run_mu, &until);
            w->idle_runners--;
            if (rc == ETIMEDOUT && w->run_head == NULL && w->nrunners > RUNNERS_KEEP)
                break;
            continue;
        }
        w->run_head = j->next;
        if (w->run_head == NULL)
            w->run_tail = NULL;
        w->run_queued--;
        pthread_mutex_unlock(&w->run_mu);
        j->next = NULL;
        run_waiting(w, s, j);
        pthread_mutex_lock(&w->run_mu);
    }
    w->nrunners--;
    pthread_mutex_unlock(&w->run_mu);

    pt_py_thread_detach();
    stack_t off = {.ss_flags = SS_DISABLE};
    sigaltstack(&off, NULL);
    free(alt);
    pt_pool_current = NULL;
    /* Last: from here the slot may go to a new runner. */
    pthread_mutex_lock(&w->run_mu);
    s->in_use = 0;
    pthread_mutex_unlock(&w->run_mu);
    return NULL;
}

/* Starts one more runner thread on a free runner slot (caller holds run_mu). Returns 0, or
 * PT_EIO when max_runners run already or the thread cannot be created. */
static int
spawn_runner(worker *w)
{
    if (w->nrunners >= w->max_runners)
        return PT_EIO;
    int n = atomic_load(&w->nslots), i = MAX_THREADS;
    while (i < n && w->slots[i].in_use)
        i++;
    if (i == MAX_THREADS + w->max_runners)
        return PT_EIO; /* every slot still held by a runner on its way out */
    if (i == n)
        slot_init(&w->slots[i]);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, RUNNER_STACK);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, runner_main, &w->slots[i]);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return PT_EIO;
    w->slots[i].in_use = 1;
    if (i == n)
        atomic_store(&w->nslots, n + 1); /* after slot_init: the monitor may look at it now */
    w->nrunners++;
    return 0;
}

/* Queues j (the loop side's reference moves with it) for a runner, starting one when the
 * queue holds more jobs than runners wait. Returns 0, or PT_EIO when no runner exists and
 * none can start (the caller runs j itself). Leader only. */
static int
hand_off(worker *w, job *j)
{
    pthread_mutex_lock(&w->run_mu);
    /* No runner may start and every one is lost to a handler past the timeout: the leader
     * runs the job, and the pool's own limits (stuck threads replaced, then the worker)
     * apply. */
    if (w->run_queued + 1 > w->idle_runners && spawn_runner(w) != 0 &&
        (w->nrunners == 0 || atomic_load(&w->stuck_runners) >= w->nrunners)) {
        pthread_mutex_unlock(&w->run_mu);
        return PT_EIO;
    }
    if (w->run_tail != NULL)
        w->run_tail->next = j;
    else
        w->run_head = j;
    w->run_tail = j;
    w->run_queued++;
    pthread_cond_signal(&w->run_cv);
    pthread_mutex_unlock(&w->run_mu);
    return 0;
}

/* Puts j back at the head of the leader's queue (for the rescue to answer). */
static void
requeue_first(worker *w, job *j)
{
    pthread_mutex_lock(&w->ready_mu);
    j->next = w->ready_head;
    w->ready_head = j;
    if (w->ready_tail == NULL)
        w->ready_tail = j;
    pthread_mutex_unlock(&w->ready_mu);
}

/* Runs queued jobs as the leader. Returns 1 while still the leader, 0 once demoted (the
 * thread then holds no GIL and must not touch h2o). */
static int
lead_jobs(worker *w, slot *s)
{
    int have_gil = 0;
    job *j;
    for (;;) {
        /* A handler's thread crashed (invariant 7): no more Python; the rescue answers. */
        if (atomic_load_explicit(&w->crashed, memory_order_relaxed)) {
            if (have_gil)
                pt_py_gil_release();
            pt_rescue_lead(w);
        }
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
        /* A slow endpoint's job goes to the waiting lane; the next one runs meanwhile. */
        int slow =
            j->route != NULL ? atomic_load_explicit(&j->route->slow, memory_order_relaxed) : 0;
        if (slow >= SLOW_AT && hand_off(w, j) == 0)
            continue;
        if (!have_gil) {
            /* Outside h2o while it waits: should a thread crash holding the GIL, the monitor
             * may lead the rescue instead (invariant 7); then this thread must stop here. */
            atomic_store(&w->gil_wait, 1);
            pt_py_gil_acquire();
            atomic_store(&w->gil_wait, 0);
            have_gil = 1;
            if (atomic_load(&w->crashed)) {
                pt_py_gil_release();
                requeue_first(w, j);
                pt_rescue_lead(w);
            }
        }
        uint64_t seq = ++w->seq;
        atomic_store(&w->lstate, (seq << 1) | 1);
        run_handler(w, s, j);
        /* A long run here was counted by the monitor (a whole tick); a quick one counts down. */
        if (slow > 0 && now_sec() - atomic_load(&s->started) < SLOW_AFTER)
            learn(j->route, 0);
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
            if (pt_worker_drained(w) || now_sec() > w->stop_deadline) {
                /* Let h2o flush what it has written, then go. A request that still arrives
                 * meanwhile (on a connection told to close with its answer, see on_req) is
                 * answered, not dropped. */
                for (int i = 0; i < 5; i++) {
                    h2o_evloop_run(w->loop, 20);
                    if (!lead_jobs(w, s))
                        return;
                    pt_send_flush_log(w);
                }
                if (pt_worker_drained(w) || now_sec() > w->stop_deadline)
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
    alt_stack_on(); /* kept for good, as the thread */
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
        atomic_store(&w->lead_slot, s);
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

/* Counts the runners lost to handlers past the timeout. When all of them are and no more may
 * start, the jobs still in the run queue would never run: they go back to the leader through
 * the `requeue` queue (on_requeue), as hand_off sends new ones meanwhile, and the pool's own
 * limits apply (stuck threads replaced, then the worker). Monitor thread only. */
static void
check_stuck_runners(worker *w, int nslots)
{
    int stuck = 0;
    for (int i = MAX_THREADS; i < nslots; i++)
        stuck += w->slots[i].stuck;
    atomic_store(&w->stuck_runners, stuck);
    pthread_mutex_lock(&w->run_mu);
    job *j = NULL;
    if (stuck > 0 && stuck >= w->nrunners && w->nrunners >= w->max_runners) {
        j = w->run_head;
        w->run_head = w->run_tail = NULL;
        w->run_queued = 0;
    }
    pthread_mutex_unlock(&w->run_mu);
    if (j != NULL)
        pt_log_warn("worker %d: all %d runner threads are stuck in handlers", w->index, stuck);
    while (j != NULL) {
        job *next = j->next;
        j->next = NULL;
        h2o_multithread_send_message(&w->requeue_rx, &j->msg); /* the queue's reference moves */
        j = next;
    }
}

/* The requeue queue's receiver: jobs the run queue gave back go to the leader's queue. Loop
 * side. */
static void
on_requeue(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages)
{
    worker *w = &pt_worker_self;
    (void)rx;
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
        job *j = (job *)msg;
        pthread_mutex_lock(&w->ready_mu);
        if (w->ready_tail != NULL)
            w->ready_tail->next = j;
        else
            w->ready_head = j;
        w->ready_tail = j;
        pthread_mutex_unlock(&w->ready_mu);
    }
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
        /* A handler's thread crashed: lead the rescue if the loop has nobody to run it, and
         * otherwise do nothing more (no demotion, no timeout, no new thread). */
        if (atomic_load(&w->crashed)) {
            pt_rescue_monitor(w);
            continue;
        }

        /* Hand the loop over when the leader has been in one handler for a whole tick. */
        v = atomic_load(&w->lstate);
        if ((v & 1) && v == last) {
            /* That endpoint waits: its next jobs go to the waiting lane. */
            slot *ls = atomic_load(&w->lead_slot);
            pthread_mutex_lock(&ls->lock);
            job *lj = atomic_load(&ls->job);
            if (lj != NULL)
                learn(lj->route, SLOW_AFTER);
            pthread_mutex_unlock(&ls->lock);
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
        int nslots = atomic_load(&w->nslots);
        for (int i = 0; i < nslots; i++) {
            if (i == nthreads)
                i = MAX_THREADS; /* past the pool threads' slots: the runners' */
            if (i >= nslots)
                break;
            slot *s = &w->slots[i];
            pthread_mutex_lock(&s->lock);
            job *j = atomic_load(&s->job);
            if (j == NULL)
                s->stuck = 0;
            int fd = atomic_load(&s->fd);
            /* framing: notice a client that leaves while its handler runs (pq.Cancelled); over
             * TLS too, whose connection has no fd for raw answers (job.peek_fd). */
            if (j != NULL && j->peek_fd >= 0 && atomic_load(&j->state) == JOB_RUNNING)
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
        check_stuck_runners(w, nslots);
        replace_stuck_threads(w, nthreads);
    }
    return NULL;
}

int
pt_pool_start(worker *w)
{
    w->max_runners = w->cfg->max_threads > 0 ? w->cfg->max_threads : PT_RUNNERS_DEFAULT;
    const char *idle = getenv("PORTICO_RUNNER_IDLE");
    w->runner_idle = idle != NULL && atoi(idle) > 0 ? atoi(idle) : RUNNER_IDLE;
    w->slots = calloc((size_t)MAX_THREADS + (size_t)w->max_runners, sizeof(slot));
    if (w->slots == NULL) {
        pt_log_error("cannot allocate the threads' slots");
        return PT_ENOMEM;
    }
    for (int i = 0; i < MAX_THREADS; i++)
        slot_init(&w->slots[i]);
    atomic_store(&w->nslots, MAX_THREADS);
    /* No thread leads the loop yet: registering a receiver is safe. */
    h2o_multithread_register_receiver(w->mq, &w->requeue_rx, on_requeue);
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

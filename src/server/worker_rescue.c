/* worker_rescue.c - a crashed handler's answers through the event loop: while the thread that
 * crashed waits in crash.c, a healthy thread answers every request the worker holds through
 * h2o, so that HTTP/2 and TLS clients get a real 502 (or 503) instead of a closed connection.
 *
 * Design notes
 * ------------
 * A raw answer written on a socket only works for cleartext HTTP/1: TLS records and HTTP/2
 * frames need the connection's state, which lives in h2o, and writing them from a signal
 * handler while another thread may be writing on the same connection is not possible. But
 * the thread that crashes is almost always running a handler, in Python, not in h2o: the loop
 * is then either idle (the crashed thread was the leader) or run by another thread. So:
 *
 *   1. The crashed thread (crash.c, async-signal-safe) blames the endpoint, tells the master
 *      it is going (a spare takes over), writes the raw 502s of cleartext HTTP/1 requests
 *      first, as before, and shuts those connections down (h2o's own answer on them later
 *      fails harmlessly). It sets `crashed` and the slot that crashed, writes `crash_wake_fd`
 *      (which wakes a leader waiting in epoll) and waits on `crash_done_fd` for at most
 *      RESCUE_WAIT_MS (1 s), never returning into the interpreter meanwhile.
 *   2. One healthy thread runs the rescue (invariant 7): the leader, which checks `crashed`
 *      before each job, or the monitor when the leader itself crashed inside a handler or
 *      waits for the GIL. It runs the loop without Python: it stops accepting, takes every
 *      running job from its slot (a CAS RUNNING -> CRASHED, as a timeout takes one) and
 *      answers it 502, answers queued jobs 503 with Retry-After (they never ran; a retry is
 *      safe), sends the answers other threads finished, asks h2o to shut its connections
 *      down (HTTP/2: GOAWAY), runs the loop until the answers are written (or
 *      RESCUE_FLUSH_S), then writes `crash_done_fd` and waits to be killed.
 *   3. The crashed thread, woken, shuts every remaining connection down and dies of its own
 *      signal (os._exit(): exits), so the master logs the cause and the breaker counts it as
 *      before.
 *
 * What the crashed thread may hold, and why it does not stop the rescue:
 *   - the GIL (it was running Python): the rescue never takes it; a timed-out job's 504 skips
 *     its TimeoutError (pt_send_finish); threads waiting for it stay blocked, and their jobs
 *     are answered from their slots.
 *   - a malloc arena lock or corrupt heap (a crash inside malloc): the rescue allocates (h2o
 *     does), and may then block or crash; a second fatal signal kills the process at once
 *     (SA_RESETHAND), and a blocked rescue is given up after RESCUE_WAIT_MS, when the
 *     crashed thread finishes the raw way: exactly today's outcome, one second later.
 *   - a slot lock, `ready_mu`, `run_mu`, `mu`: only held for a few instructions around list
 *     and pointer updates, never around handler code; the same timeout covers them.
 *   - h2o state: a thread with a running job is inside a handler, never in h2o (h2o is only
 *     touched by the leader outside run_handler). A crash with no job running (in h2o, the
 *     monitor, a writer thread) takes the raw path directly.
 * A leader waiting for the GIL (to run a job) when another thread crashed holding it would
 * wait forever: the monitor leads the rescue then (`gil_wait`), and the leader, should it get
 * the GIL after all, puts its job back and stops before it touches h2o again. A leader waiting
 * for the GIL inside h2o (a timed-out job's TimeoutError, in the done queue's callback) cannot
 * be replaced: the crashed thread then finishes the raw way after the timeout.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "server/worker_int.h"

/* How long the rescue runs the loop to get its answers written, at most (seconds); the crashed
 * thread gives it RESCUE_WAIT_MS (crash.c) in all. */
#define RESCUE_FLUSH_S 0.5

/* The wake eventfd's watch: the crash path wrote to it so that a leader waiting in epoll
 * returns and sees `crashed`. Loop side. */
static void
on_wake(h2o_socket_t *sock, const char *err)
{
    uint64_t v;
    (void)err;
    ssize_t rc = read(h2o_socket_get_fd(sock), &v, sizeof(v));
    (void)rc;
}

void
pt_rescue_setup(worker *w)
{
    w->crash_wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->crash_done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->crash_wake_fd < 0 || w->crash_done_fd < 0) {
        pt_log_warn("cannot create the crash rescue's eventfds (%s): a crashed handler's HTTP/2 "
                    "and TLS clients will see their connection closed",
                    strerror(errno));
        if (w->crash_wake_fd >= 0)
            close(w->crash_wake_fd);
        if (w->crash_done_fd >= 0)
            close(w->crash_done_fd);
        w->crash_wake_fd = w->crash_done_fd = -1;
        return;
    }
    w->crash_sock = h2o_evloop_socket_create(w->loop, w->crash_wake_fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(w->crash_sock, on_wake);
}

/* The pool-shared object a rescued answer carries: its dispose runs once h2o is done with the
 * request (the answer written, or the client gone). */
static void
on_answered(void *p)
{
    worker *w = *(worker **)p;
    w->rescue_pending--;
}

/* Answers j (the loop side's reference) with status and why, counting it until written. Its
 * HTTP/1 connection closes after it: this worker takes no more requests. */
static void
answer(worker *w, job *j, int status, const char *why)
{
    if (j->hreq != NULL) {
        j->hreq->http1_is_persistent = 0;
        worker **p = h2o_mem_alloc_shared(&j->hreq->pool, sizeof(worker *), on_answered);
        *p = w;
        w->rescue_pending++;
    }
    pt_send_abandon(w, j, status, why);
}

/* Takes every running job from its slot (the thread running it never answers it then:
 * invariant 2) and answers it 502 with why. */
static void
answer_running(worker *w, const char *why)
{
    int n = atomic_load(&w->nslots);
    for (int i = 0; i < n; i++) {
        slot *s = &w->slots[i];
        pthread_mutex_lock(&s->lock);
        job *j = atomic_load(&s->job);
        int expect = JOB_RUNNING;
        if (j != NULL && !atomic_compare_exchange_strong(&j->state, &expect, JOB_CRASHED))
            j = NULL; /* already answered (a timeout), or being answered by its thread */
        pthread_mutex_unlock(&s->lock);
        if (j != NULL)
            answer(w, j, 502, why);
    }
}

/* Answers 503 each job of the list at j (taken off its queue): it never ran, and none will
 * run here any more. A job whose client left is dropped (499). */
static void
answer_list(worker *w, job *j)
{
    for (job *next; j != NULL; j = next) {
        next = j->next;
        j->next = NULL;
        if (atomic_load(&j->cancelled) || j->hreq == NULL)
            pt_job_drop(w, j);
        else
            answer(w, j, 503, "worker restarting; retry");
    }
}

/* Answers every job waiting for a pool thread or a runner (answer_list). */
static void
answer_queued(worker *w)
{
    pthread_mutex_lock(&w->ready_mu);
    job *ready = w->ready_head;
    w->ready_head = w->ready_tail = NULL;
    pthread_mutex_unlock(&w->ready_mu);
    pthread_mutex_lock(&w->run_mu);
    job *waiting = w->run_head;
    w->run_head = w->run_tail = NULL;
    w->run_queued = 0;
    pthread_mutex_unlock(&w->run_mu);
    answer_list(w, ready);
    answer_list(w, waiting);
}

static void park(void) __attribute__((noreturn));
static void run(worker *w) __attribute__((noreturn));

/* Waits, without touching h2o or Python, for the process to be killed. */
static void
park(void)
{
    for (;;)
        pause();
}

/* The rescue itself, on the one thread that won `rescuer`. */
static void
run(worker *w)
{
    int sig = atomic_load(&w->crashed);
    const char *why = sig == PT_RESCUE_PYEXIT ? "worker exited" : "worker crashed";
    double deadline = now_sec() + RESCUE_FLUSH_S;

    pt_worker_begin_stop(w); /* no more connections; HTTP/1 answers say Connection: close */
    answer_running(w, why);
    answer_queued(w);
    h2o_context_request_shutdown(&w->ctx); /* HTTP/2: GOAWAY, no new streams */
    do {
        h2o_evloop_run(w->loop, 10);
        answer_queued(w); /* streams that arrived before the GOAWAY, answers handed back */
        pt_send_flush_log(w);
    } while (w->rescue_pending > 0 && now_sec() < deadline);
    pt_send_flush_log(w);
    uint64_t one = 1;
    ssize_t rc = write(w->crash_done_fd, &one, sizeof(one));
    (void)rc;
    park();
}

void
pt_rescue_lead(worker *w)
{
    int expect = 0;
    if (atomic_compare_exchange_strong(&w->rescuer, &expect, 1))
        run(w);
    park(); /* another thread leads the rescue: h2o is its alone */
}

void
pt_rescue_monitor(worker *w)
{
    slot *crashed = atomic_load(&w->crash_slot);
    uint_fast64_t v = atomic_load(&w->lstate);
    /* The leader is inside a handler on the slot that crashed: nobody runs the loop. Taking
     * its place is a demotion (the same CAS as the monitor's hand-over), except that no
     * follower is woken: leader_present stays set, and the monitor leads. */
    if (crashed != NULL && (v & 1) && atomic_load(&w->lead_slot) == crashed &&
        atomic_compare_exchange_strong(&w->lstate, &v, v & ~(uint_fast64_t)1))
        pt_rescue_lead(w);
    /* The leader waits for the GIL, outside h2o, which the crashed thread may hold for good:
     * once it has it, it sees `crashed` before it touches h2o again and stops (lead_jobs). */
    if (atomic_load(&w->gil_wait))
        pt_rescue_lead(w);
}

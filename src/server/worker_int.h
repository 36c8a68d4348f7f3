/* worker_int.h - what the files of a worker share: the worker, its pool threads' slots, jobs
 * and metadata snapshots, and the functions they call across files (as SQLite pairs btree.c
 * with btreeInt.h). Not for use outside src/server/worker*.c and crash.c.
 *
 *   worker.c       setup, metadata snapshots, routing a request (on_req), stopping
 *   worker_pool.c  the leader/follower pool that runs jobs, and the monitor
 *   worker_job.c   building a job from an h2o request (one block, percent-decoding)
 *   worker_send.c  responses: plain, streamed (send_*), timeouts, the access log
 *   worker_hook.c  webhook intake: token, source, signature, into the inbox
 *   worker_admin.c the admin listener: its requests become admin jobs (admin/admin.h)
 *   worker_tls.c   the TLS listener and its SSL_CTX, replaced on SIGHUP (tls.h)
 *   worker_pause.c the crash breaker's held 503 (breaker.h)
 *   worker_traffic.c an endpoint's settings on the request path: CORS, body limit, response
 *                  cache (cache.h), bulkhead (bulkhead.h) with its waiting requests
 *   worker_rescue.c a crashed handler's answers through the loop, while its thread is parked
 *   crash.c        the async-signal-safe paths: fatal signals, os._exit(), every thread stuck
 *
 * A function here is named after its file: pt_worker_, pt_pool_, pt_job_, pt_send_, pt_hook_,
 * pt_pause_, pt_rescue_, pt_crash_. "Loop side" means: only the thread leading the event loop calls
 * it (no GIL held).
 *
 * Invariants
 * ----------
 *   1. Only the leader touches h2o objects, `ready`, the snapshot pointer and the store. Leader
 *      changes happen under `mu`, which orders those accesses between threads.
 *   2. A job's response is sent exactly once: the running thread moves the job from RUNNING to
 *      DONE, or the monitor moves it to TIMED_OUT (and a 504 is sent); a CAS decides.
 *   3. A job is freed when its last reference goes: one held by the loop side until the
 *      response is sent, one by the thread running it.
 *   4. Pool threads never exit while the worker runs (h2o keeps per-thread state that buffers
 *      point at); a thread stuck past the timeout is replaced by a new one, up to a cap.
 *   5. The crash paths (crash.c) know running jobs through their slots only, never through
 *      the job (it may be freed concurrently), and write on a connection only after taking
 *      its fd out of the slot (atomic exchange), so each connection gets at most one raw
 *      answer. Queued jobs are read under `ready_mu` and `run_mu`.
 *   6. Runner threads (the waiting lane, worker_pool.c) never touch h2o: they hand finished
 *      jobs to the loop through the `done` queue only. So, unlike pool threads, they may exit
 *      (when idle), giving their slot back; a slot is reused only after its runner left it.
 *   7. Once `crashed` is set (a handler's thread died, crash.c), no thread takes the GIL for a
 *      job any more, and exactly one thread runs the loop to answer what the worker holds
 *      (worker_rescue.c): the one that wins `rescuer`, either the leader, which checks
 *      `crashed` before each job, or the monitor, when the thread that crashed was the leader
 *      inside a handler (it then takes the leader's place with the same CAS on `lstate` as a
 *      demotion) or when the leader waits for the GIL outside h2o (`gil_wait`: the thread that
 *      crashed may hold it for good). Any other thread that sees `crashed` stops touching h2o.
 *
 * A job's life
 * ------------
 *
 *     on_req ──> QUEUED ──(a pool thread runs it)──> RUNNING ──(handler returns, CAS)──> DONE
 *                                                       │                                │
 *                     (monitor: past --timeout, CAS)    │              response sent by  │
 *                                                       v              the loop side     v
 *                                                   TIMED_OUT ──> 504 sent ─────────> freed
 *
 *     RUNNING ──(a handler's thread crashed: the rescue, CAS)──> CRASHED ──> 502 sent
 *
 *     webhook intake ──> RUNNING (in the inbox) ──(stored, or not: 503)──> DONE ──> freed
 *
 * A queued job whose client left (j->cancelled, pt_job_cancelled) skips RUNNING: the leader
 * logs it as 499 and frees it (pt_job_drop) without running it.
 *
 * A job finished by a demoted thread, a timeout and a stored webhook event all reach the loop
 * through the `done` queue (pt_send_on_done); a job the leader ran itself is answered inline.
 * The running thread's reference goes when its handler returns, whichever state won.
 */
#ifndef PT_WORKER_INT_H
#define PT_WORKER_INT_H

#include <h2o.h>
#include <h2o/multithread.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "auth/auth.h"
#include "auth/secrets.h"
#include "auth/webhook_sig.h"
#include "core/buf.h"
#include "server/inbox.h"
#include "server/processor.h"
#include "server/ratelease.h"
#include "server/reqlog.h"
#include "core/request.h"
#include "server/router.h"
#include "server/worker.h"
#include "store/changes.h"
#include "store/store.h"
#include "store/store_webhooks.h"

#define MAX_THREADS 64
/* Runner threads per worker when `serve --max-threads` is not given (cli_serve.c allows 4096). */
#define PT_RUNNERS_DEFAULT 256
#define ACCESS_LOG_FLUSH 16384

struct worker;

/* A job's state (job.state); see "A job's life" above. */
enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_TIMED_OUT, JOB_CRASHED };

/* The metadata a worker serves from: endpoints, the router over them, the current version of
 * every script, and the tokens, keys and issuers requests are authorized against. Immutable
 * once built (but for the auth last-used times, loop side only); refcounted because jobs
 * outlive a reload. */
typedef struct snapshot {
    atomic_int refs;
    uint64_t gen;
    pt_router *router;
    pt_endpoint *eps;
    size_t neps;
    pt_script *scripts;
    size_t nscripts;
    struct route *routes; /* one per endpoint: what the router returns */
    pt_auth *auth;        /* auth.h */
    char *hook_token;     /* the webhook inbox token (store_webhooks.h) */
    pt_webhook_source *hook_sources;
    size_t nhook_sources;
    struct hook_source *hooks; /* one per source: what a request needs to check it */
} snapshot;

/* A webhook source ready to check requests: its scheme, header names, and the secret. */
struct hook_source {
    const pt_webhook_source *src; /* borrowed from the snapshot */
    enum pt_hooksig_scheme scheme;
    char sig_header[64];   /* lower case */
    char dedup_header[64]; /* lower case, "" when none */
    char *secret;          /* sodium memory (pt_secrets_value_free), NULL when unreadable */
    size_t secret_len;
};

/* What the router hands back for an endpoint: the endpoint, its script and auth mode. */
struct route {
    const pt_endpoint *ep;
    const pt_script *script;
    enum pt_auth_mode auth;
    /* How much the endpoint's handlers wait (worker_pool.c, "The waiting lane"): from SLOW_AT
     * on, its jobs go to runner threads instead of the leader. Any thread, relaxed. */
    atomic_int slow;
    uint64_t fingerprint; /* of the endpoint, its settings and script version: cache keys */
    int bh_row;           /* the endpoint's row in the bulkhead table, -1 when none */
    int metric;           /* the endpoint's number in the metrics (pt_metrics_endpoint), or -1 */
};

/* One request on its way through the worker: everything a handler may read, copied out of
 * h2o into one block (worker_job.c), and the response it produces. */
typedef struct job {
    h2o_multithread_message_t msg; /* first: the done queue hands us messages */
    atomic_int refs;
    atomic_int state;
    h2o_req_t *hreq;           /* NULL once h2o disposed of the request (loop side only) */
    struct job **guard;        /* pool-allocated back pointer cleared on dispose */
    snapshot *snap;            /* reference held */
    const struct route *route; /* borrowed from snap */
    pt_request req;
    pt_response resp;
    int fd;                 /* cleartext HTTP/1 connection fd, else -1: crash answers go there */
    int peek_fd;            /* HTTP/1 connection fd (TLS too), else -1: pt_job_cancelled peeks */
    atomic_int lent;        /* the master holds a duplicate of fd (holds.h) */
    double start;           /* when the request arrived */
    unsigned long py_ident; /* Python id of the thread running the handler */
    struct slot *slot;      /* the pool thread that runs (or ran) it, NULL before */
    struct job *next;
    atomic_int cancelled; /* the client left (req.cancelled points here) */
    double next_poll;     /* monitor: when to look at the connection again (pt_job_poll) */
    const char *label;    /* what the access log names instead of an endpoint, or NULL */
    pt_inbox_event hook;  /* webhook jobs: the event handed to the inbox */
    char *dedup_key;      /* webhook jobs: owned */
    /* Admin API jobs (worker_admin.c): run on a pool thread instead of a Python handler,
     * without the GIL. NULL for handler jobs. */
    void (*run)(struct worker *w, struct job *j);
    /* The endpoint's settings on the way (worker_traffic.c), loop side. */
    double timeout;  /* the handler timeout (s); 0: --timeout */
    int bh_held;     /* holds a place in route->bh_row's bulkhead */
    char *cache_key; /* owned; a GET of a cached endpoint: where its answer goes */
    size_t cache_klen;
    double park_until;     /* waiting for a bulkhead place until then */
    struct job *park_next; /* the worker's waiting jobs */
} job;

/* What the monitor and the crash handler know about each pool thread. */
typedef struct slot {
    pthread_mutex_t lock; /* held while the job pointer is set, cleared or inspected */
    _Atomic(job *) job;   /* running job or NULL */
    _Atomic double started;
    atomic_int fd;      /* the running job's connection (HTTP/1), -1 once it must not be used */
    atomic_int lent;    /* the running job's connection is lent to the master (holds.h) */
    atomic_int owed_fd; /* a timed-out job's connection whose 504 is not sent yet, or -1 */
    int interrupted;    /* a TimeoutError was raised in this thread (GIL held to read/write) */
    char id[24];
    const char *endpoint; /* the running job's endpoint name (its snapshot lives while it runs) */
    unsigned long py_ident;
    int stuck;  /* counted as lost to a timed-out handler (monitor only) */
    int in_use; /* runner slots: a runner thread owns it (under run_mu) */
} slot;

/* The worker process: one per process (pt_worker_self). */
typedef struct worker {
    const pt_server_config *cfg;
    int proc; /* the master's process slot (breaker.h blame row) */
    /* The worker number, 0 while a spare: set once, by the loop, on promotion; read by other
     * threads (the request log, the crash handler), hence atomic. */
    atomic_int index;
    char tag[32];          /* "worker 2", "spare 3": log lines */
    h2o_socket_t *ctlsock; /* a spare's watch for its promotion, NULL otherwise */
    int ctl;               /* custody socket to the master (holds.h) */
    int listen_fd;         /* the shared listening socket */
    pid_t pid;             /* this worker's pid (a handler may fork children) */
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_evloop_t *loop;
    h2o_socket_t *listener;
    h2o_globalconf_t admin_conf;       /* the admin listener's host and handler only */
    h2o_accept_ctx_t admin_accept_ctx; /* same context, the admin host */
    h2o_socket_t *admin_listener;      /* NULL when there is no admin listener */
    h2o_socket_t *sigsock;
    h2o_multithread_queue_t *mq;
    h2o_multithread_receiver_t done_rx;
    h2o_timeout_t pause_hold; /* PT_PAUSE_HOLD_MS: the crash breaker's held answers */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int leader_present;          /* under mu */
    int idle_followers;          /* under mu */
    int nthreads;                /* under mu */
    int nstuck;                  /* under mu */
    atomic_uint_fast64_t lstate; /* (seq << 1) | running-a-job, of the leader */
    uint64_t seq;                /* leader only */
    _Atomic(slot *) lead_slot;   /* the leader's slot (the monitor reads its job's route) */
    /* slots[0, MAX_THREADS) belong to pool threads, slots[MAX_THREADS, nslots) to runners;
     * allocated once (init_state) for MAX_THREADS + max_runners, never moved. */
    slot *slots;
    atomic_int nslots; /* slots ever used: what the monitor and crash paths look at */

    /* The waiting lane (worker_pool.c): jobs of slow endpoints, run by runner threads that
     * never touch h2o. All under run_mu. */
    pthread_mutex_t run_mu;
    pthread_cond_t run_cv;
    job *run_head, *run_tail;
    int run_queued;           /* jobs in the run queue */
    int nrunners;             /* runner threads alive */
    int idle_runners;         /* runners waiting on run_cv */
    int max_runners;          /* cfg->max_threads, or PT_RUNNERS_DEFAULT */
    int runner_idle;          /* seconds an idle runner waits before it may exit */
    atomic_int stuck_runners; /* runners in a handler past the timeout (set by the monitor) */
    h2o_multithread_receiver_t requeue_rx; /* run queue jobs given back to the leader */

    /* Jobs waiting for a thread: pushed and popped by the leader; the lock lets the monitor
     * answer them when the worker must go (every thread stuck). Never contended otherwise. */
    pthread_mutex_t ready_mu;
    job *ready_head, *ready_tail;
    size_t inflight; /* leader only: jobs not yet answered */

    pt_store *store;
    pt_secrets *secrets;     /* NULL when the install has no master key */
    pt_inbox *inbox;         /* NULL when the events table cannot be opened */
    pt_processor *processor; /* runs webhook sources' scripts (processor.h) */
    pt_ratelease *ratelease; /* leases rate limits on a PostgreSQL store (ratelease.h) */
    pt_changes *changes;
    snapshot *snap;
    /* A reload that failed (the store unreachable) keeps snap and is tried again from this
     * time on (now_sec), not on every request; reload_failing: a failure was logged. */
    double reload_retry;
    int reload_failing;

    pt_buf access_log; /* leader only: lines flushed once per loop iteration */
    pt_reqlog *reqlog; /* the stored request log's buffer (reqlog.h); NULL when it is off */

    atomic_int stopping;
    double stop_deadline;  /* the leader exits then, whatever is left */
    double drain_deadline; /* with nothing in flight, it exits then even with idle connections */
    atomic_int exit_code;

    /* A crashed handler answered through the loop (worker_rescue.c, invariant 7). */
    atomic_int crashed;         /* 0, else the fatal signal (PT_RESCUE_PYEXIT: os._exit()) */
    _Atomic(slot *) crash_slot; /* the slot of the thread that crashed */
    atomic_int rescuer;         /* 1 once a thread runs the rescue */
    atomic_int gil_wait;        /* the leader waits for the GIL to run a job (outside h2o) */
    int crash_wake_fd;          /* eventfd the crash path writes to wake the loop; -1: no rescue */
    int crash_done_fd;          /* eventfd the rescue writes once its answers are out */
    h2o_socket_t *crash_sock;   /* the loop's watch on crash_wake_fd */
    int rescue_pending;         /* loop side: answers of the rescue not yet written */
} worker;

/* The one worker this process runs. */
extern worker pt_worker_self;

/* Seconds on the monotonic clock. */
static inline double
now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- worker.c -------------------------------------------------------------------------- */

/* Drops one reference to s; the last one frees it. s may be NULL. Any thread. */
void pt_worker_snapshot_release(snapshot *s);
/* Makes sure w->snap is the current metadata (reloading it when the change counter moved; on
 * failure the previous snapshot stays, logged). Loop side. */
void pt_worker_refresh(worker *w);
/* Stops taking connections and drains the open ones: the leader exits once in-flight jobs are
 * answered and every connection is closed (pt_worker_drained), or the stop deadline passed.
 * Loop side. */
void pt_worker_begin_stop(worker *w);
/* 1 when a stopping worker may exit: nothing in flight, and no client connection left open
 * (or the drain deadline passed). Loop side. */
int pt_worker_drained(worker *w);
/* Flushes the access log and auth last-used times, then exits with w->exit_code. */
void pt_worker_exit(worker *w) __attribute__((noreturn));

/* ---- worker_pool.c --------------------------------------------------------------------- */

/* Allocates the threads' slots, starts the configured pool threads and the monitor; the pool
 * then leads the loop (runner threads start on demand). Returns 0, PT_ENOMEM or PT_EIO
 * (logged). Called once, from pt_worker_main. */
int pt_pool_start(worker *w);
/* The slot of the calling pool thread, NULL on other threads (read by the crash paths to
 * blame the endpoint whose handler brought the worker down). */
extern _Thread_local slot *pt_pool_current;
/* Queues j (the loop side's reference moves to the queue) for the leader to run after this
 * loop iteration. Loop side. */
void pt_pool_submit(worker *w, job *j);

/* ---- worker_pause.c -------------------------------------------------------------------- */

#define PT_PAUSE_HOLD_MS 250 /* how long the crash breaker's 503 is held back */

/* Answers req 503 with Retry-After: retry_after (seconds) after PT_PAUSE_HOLD_MS, or not at
 * all when the client leaves first. Takes a reference to snap (route lives in it); req is
 * borrowed until h2o disposes of it. Loop side. */
void pt_pause_answer(worker *w, h2o_req_t *req, snapshot *snap, const struct route *route,
                     int retry_after);

/* ---- worker_traffic.c ------------------------------------------------------------------ */

/* Fills the fingerprint and bulkhead row of s's routes, and raises h2o's body limit to the
 * largest an endpoint of s allows. Loop side, before s is current. */
void pt_traffic_prepare(worker *w, snapshot *s);
/* A CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) for an endpoint
 * with --cors: answers it (204) and returns 1; 0 when it is not one (route it as usual).
 * Loop side. */
int pt_traffic_preflight(worker *w, h2o_req_t *req, snapshot *snap, const char *path, size_t plen);
/* Before a request becomes a job: its body against the endpoint's limit (413), then, for a
 * GET of a cached endpoint, the cache: a hit is answered. Returns 1 when req was answered;
 * 0 with *key (caller frees; NULL when not cacheable) to hand to the job. Loop side. */
int pt_traffic_before(worker *w, h2o_req_t *req, const struct route *route, const pt_caller *caller,
                      char **key, size_t *klen);
/* Hands j to the pool (pt_pool_submit) when its endpoint has a place for it, else waits for
 * one up to the queue wait (the job is parked, not the loop), else answers 503 with
 * Retry-After. Takes the loop side's reference. Loop side. */
void pt_traffic_admit(worker *w, job *j);
/* Before j's answer goes (resp: the one to send): stores it in the cache when it may be,
 * adds X-Cache and the CORS headers, and gives back j's bulkhead place (a waiting request
 * may take it). Loop side. */
void pt_traffic_finish(worker *w, job *j, pt_response *resp, int timed_out);
/* Adds the CORS headers of route's endpoint for req's Origin to resp (nothing when the
 * endpoint has no --cors; Vary: Origin alone for an origin not allowed). route may be NULL. */
void pt_traffic_cors(h2o_req_t *req, const struct route *route, pt_response *resp);
/* Answers 405 with Allow (the methods `allow` of the path) and, when an endpoint at the path
 * has --cors, its CORS headers: the request is counted for no endpoint. Loop side. */
void pt_traffic_method_not_allowed(worker *w, h2o_req_t *req, snapshot *snap, const char *path,
                                   size_t plen, unsigned allow);
/* The http_errors.h CORS hook: adds to req->res.headers the CORS headers of the endpoint
 * req's path and method route to in the current snapshot (an error h2o answered itself, such
 * as 413 over the body limit). Loop side. */
void pt_traffic_error_cors(h2o_req_t *req);

/* ---- worker_job.c ---------------------------------------------------------------------- */

/* Copies everything a handler may read out of the h2o request req (borrowed) into a new job
 * holding one reference, a reference to snap (may be NULL: admin jobs), and route, m and
 * caller's contents (all borrowed; route must live in snap). Returns NULL on allocation
 * failure. Loop side. */
job *pt_job_new(h2o_req_t *req, snapshot *snap, const struct route *route, const pt_route_match *m,
                const pt_caller *caller);
/* Drops one reference to j; the last one frees it and its snapshot reference. Any thread. */
void pt_job_release(job *j);
/* Copies src[0..n) into dst with each %XX (two hex digits) decoded; anything else, including
 * a malformed or cut '%' sequence, is copied as it is. dst must hold n bytes; it is not
 * terminated. Returns the length written (<= n). */
size_t pt_job_percent_decode(char *dst, const char *src, size_t n);
/* Whether the client of j has left: the request was disposed of (HTTP/2 stream reset, the
 * connection closed) or, over HTTP/1, the peer closed its side of the connection (a
 * non-blocking MSG_PEEK reads end of file or an error). Sets j->cancelled when so. Any thread:
 * it reads only j's atomics and descriptor. */
int pt_job_cancelled(job *j);
/* pt_job_cancelled for a job about to run, where it costs a system call only for a job that
 * waited in the queue (JOB_PEEK_AFTER): one that runs as it arrives is not worth it. Loop
 * side. */
int pt_job_waited_cancelled(job *j);
/* The monitor's look at a running job: pt_job_cancelled at most every 10 ms. Caller holds
 * the slot's lock (j cannot be freed meanwhile). */
void pt_job_poll(job *j, double now);
/* Ends a queued job whose client left without running it: a 499 in the access log, nothing
 * the client can read. Drops the queue's reference. Loop side. */
void pt_job_drop(worker *w, job *j);
/* Whether a raw path parameter value src[0..n) may reach a handler: once percent-decoded it
 * holds no '/' and no NUL byte and is not "." or "..". */
int pt_job_param_ok(const char *src, size_t n);

/* ---- worker_send.c --------------------------------------------------------------------- */

/* Answers a request that never became a job: an error (body NULL: JSON with `message`) or a
 * fixed body such as the health check, with one optional extra header (hname: hvalue).
 * route, when known, names the endpoint in the access log. Everything borrowed. Loop side. */
void pt_send_simple(worker *w, h2o_req_t *req, const struct route *route, int status,
                    const char *content_type, const char *body, const char *message,
                    const char *hname, const char *hvalue);
/* Sends resp (borrowed; not streamed) for a request that never became a job, with route's
 * CORS headers, and logs it. Loop side. */
void pt_send_response(worker *w, h2o_req_t *req, const struct route *route, pt_response *resp);
/* pt_send_simple for an error with `message`. */
void pt_send_error(worker *w, h2o_req_t *req, int status, const char *message);
/* Sends j's outcome (its response, or a 504 when timed_out) and drops the loop side's
 * reference. Loop side. */
void pt_send_finish(worker *w, job *j, int timed_out);
/* The done queue's receiver: finishes the jobs posted to it. Loop side. */
void pt_send_on_done(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages);
/* Answers j with a fixed error (status, why; a 503 gets Retry-After: 1) instead of its
 * handler's response, which is never read (the handler may still run, or have died): a job
 * the rescue took from a crashed worker. Takes no GIL. Drops the loop side's reference. Loop
 * side. */
void pt_send_abandon(worker *w, job *j, int status, const char *why);
/* The access-log line of an error h2o answered itself (http_errors.h). Loop side. */
void pt_send_log_h2o_error(h2o_req_t *req, const char *id, int status, size_t bytes);
/* Writes the access-log lines gathered so far (one write(2)). Loop side. */
void pt_send_flush_log(worker *w);

/* ---- worker_hook.c --------------------------------------------------------------------- */

/* Loads the webhook token and sources (with their secrets) into s. Returns 0, or PT_EDB /
 * PT_ENOMEM (logged). A source whose secret cannot be read is kept and answers 503. */
int pt_hook_load(worker *w, snapshot *s);
/* POST|PUT|PATCH /webhook/<token>[/<source>]: checks, then hands the event to the inbox; the
 * answer goes out once it is stored (pt_hook_on_stored). `rest` (borrowed) is the path after
 * "/webhook/". Loop side. */
void pt_hook_intake(worker *w, h2o_req_t *req, const char *rest, size_t n);
/* The inbox's callback (inbox.h), on its writer thread: posts the answer to the loop. */
void pt_hook_on_stored(pt_inbox_event *ev);
/* Replaces the token in ".../webhook/<token>[/...]" by "{token}", in place (never longer);
 * s->p must be writable and is kept NUL-terminated. A segment shorter than "{token}" is left
 * as it is. The stored event and the log then never hold the credential. */
void pt_hook_redact_token(pt_str *s);
/* The path to write in the access log for path[0..*plen): path itself when it holds no
 * "/webhook/", else a redacted copy in buf (bufsz bytes), or a fixed "/webhook/{token}..."
 * when too long to copy. Updates *plen. Returns borrowed memory (path, buf or static). */
const char *pt_hook_log_path(const char *path, size_t *plen, char *buf, size_t bufsz);

/* ---- worker_admin.c -------------------------------------------------------------------- */

/* Watches the admin listening socket (cfg->admin_fd) on the loop with its own host, whose
 * handler turns every request into an admin job. No-op without an admin listener. Exits the
 * process (logged) on failure. Called once from setup. */
void pt_wadmin_setup(worker *w);
/* Stops accepting on the admin socket. Loop side. */
void pt_wadmin_stop(worker *w);

/* Accepts up to max connections waiting on listener into ctx's hosts (fewer once the worker
 * is stopping). Loop side. */
void pt_worker_accept(worker *w, h2o_socket_t *listener, h2o_accept_ctx_t *ctx, int max);

/* Builds the worker's SSL_CTX from cfg->tls (the master's last good pair); 0, or -1 with err
 * (errsz bytes) saying why. No-op without TLS. Before the loop runs. */
int pt_wtls_init(worker *w, char *err, size_t errsz);
/* The current SSL_CTX (borrowed: replaced by pt_wtls_reload), NULL without TLS. Loop side. */
SSL_CTX *pt_wtls_ctx(void);
/* Accepts on the TLS listening socket (cfg->tls_fd). No-op without one. Loop side. */
void pt_wtls_listen(worker *w);
/* Stops accepting on the TLS socket. Loop side. */
void pt_wtls_stop(worker *w);
/* SIGHUP: rereads the certificate and key; new handshakes (public and admin) use them, open
 * connections keep theirs. A bad pair is logged and the current one kept. Loop side. */
void pt_wtls_reload(worker *w);
/* Answers admin job j, when its reply asks for the request log's live tail (admin.h,
 * PT_ADMIN_EVENT_STREAM), with the event stream; returns 1 then, else 0 (the caller sends
 * j's response as usual). Loop side. */
int pt_wadmin_stream(worker *w, job *j);

/* ---- worker_rescue.c ------------------------------------------------------------------- */

/* The value of `crashed` for os._exit() in a handler (a signal number otherwise). */
#define PT_RESCUE_PYEXIT (-1)

/* Creates the eventfds of the rescue and watches the wake one on the loop. Without them
 * (logged) a crash is answered the raw way only. Called once, from setup, before any thread. */
void pt_rescue_setup(worker *w);
/* The leader saw `crashed`: it runs the rescue (when no other thread does) and never
 * returns. Holds no GIL. Leader only. */
void pt_rescue_lead(worker *w) __attribute__((noreturn));
/* The monitor saw `crashed`: when the thread that crashed is the leader inside a handler, or
 * the leader waits for the GIL, it takes the leader's place and runs the rescue (never
 * returning); otherwise returns, and the leader runs it. Monitor thread only. */
void pt_rescue_monitor(worker *w);

/* ---- crash.c (async-signal-safe) ------------------------------------------------------- */

/* Installs the fatal-signal handlers and the os._exit() hook. */
void pt_crash_install(void);
/* Every thread is stuck and no more may start: answers the running handlers' requests (504),
 * the owed 504s and the queued requests (503) on their connections, and exits with
 * PT_WORKER_EXIT_STUCK. Monitor thread. */
void pt_crash_exit_stuck(worker *w) __attribute__((noreturn));

#endif

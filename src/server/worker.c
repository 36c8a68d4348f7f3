/* worker.c - one worker process: an h2o event loop driven by a small pool of threads that
 * take turns leading it, and an embedded CPython interpreter that runs the handlers.
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
 *     carries on with the loop and the rest of `ready`.
 *   - A demoted thread finishes its handler, then posts the job to the leader through the
 *     loop's multithread queue (`done`) and becomes a follower, or the leader again if there
 *     is none. It never touches h2o state after being demoted.
 *
 * Invariants:
 *   1. Only the leader touches h2o objects, `ready`, the snapshot pointer and the store. Leader
 *      changes happen under `mu`, which orders those accesses between threads.
 *   2. A job's response is sent exactly once: the running thread moves the job from RUNNING to
 *      DONE, or the monitor moves it to TIMED_OUT (and a 504 is sent); a CAS decides.
 *   3. A job is freed when its last reference goes: one held by the loop side until the
 *      response is sent, one by the thread running it.
 *   4. Pool threads never exit while the worker runs (h2o keeps per-thread state that buffers
 *      point at); a thread stuck past the timeout is replaced by a new one, up to a cap.
 *
 * When every thread is busy no thread polls the listening socket, so this worker accepts no
 * new connections and the kernel hands them to an idle worker: the listening socket is shared
 * by all workers (no SO_REUSEPORT, whose per-socket queues would park connections behind a
 * busy worker).
 */
#include "server/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <h2o.h>
#include <h2o/multithread.h>
#include <jansson.h>
#include <malloc.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/secrets.h"
#include "auth/webhook_sig.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/json.h"
#include "core/log.h"
#include "py/py.h"
#include "server/crash.h"
#include "server/holds.h"
#include "server/inbox.h"
#include "server/metrics.h"
#include "server/openapi.h"
#include "server/processor.h"
#include "server/http_errors.h"
#include "server/reqid.h"
#include "server/request.h"
#include "server/router.h"
#include "store/changes.h"
#include "store/store.h"
#include "store/store_webhooks.h"

#define MAX_THREADS 64
#define ACCESS_LOG_FLUSH 16384

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_TIMED_OUT };

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

struct route {
    const pt_endpoint *ep;
    const pt_script *script;
    enum pt_auth_mode auth;
};

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
    int fd;          /* connection fd (HTTP/1 only, else -1): crash answers go there */
    atomic_int lent; /* the master holds a duplicate of fd (holds.h) */
    double start;    /* when the request arrived */
    double run_start;
    unsigned long py_ident; /* Python id of the thread running the handler */
    struct slot *slot;      /* the pool thread that runs (or ran) it, NULL before */
    struct job *next;
    const char *label;   /* what the access log names instead of an endpoint, or NULL */
    pt_inbox_event hook; /* webhook jobs: the event handed to the inbox */
    char *dedup_key;     /* webhook jobs: owned */
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
    unsigned long py_ident;
    int stuck; /* counted as lost to a timed-out handler (monitor only) */
} slot;

typedef struct worker {
    const pt_server_config *cfg;
    int index;
    int ctl;       /* custody socket to the master (holds.h) */
    int listen_fd; /* the shared listening socket */
    pid_t pid;     /* this worker's pid (a handler may fork children) */
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_evloop_t *loop;
    h2o_socket_t *listener;
    h2o_socket_t *sigsock;
    h2o_multithread_queue_t *mq;
    h2o_multithread_receiver_t done_rx;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int leader_present;          /* under mu */
    int idle_followers;          /* under mu */
    int nthreads;                /* under mu */
    int nstuck;                  /* under mu */
    atomic_uint_fast64_t lstate; /* (seq << 1) | running-a-job, of the leader */
    uint64_t seq;                /* leader only */
    slot slots[MAX_THREADS];

    /* Jobs waiting for a thread: pushed and popped by the leader; the lock lets the monitor
     * answer them when the worker must go (every thread stuck). Never contended otherwise. */
    pthread_mutex_t ready_mu;
    job *ready_head, *ready_tail;
    size_t inflight; /* leader only: jobs not yet answered */

    pt_store *store;
    pt_secrets *secrets;     /* NULL when the install has no master key */
    pt_inbox *inbox;         /* NULL when the events table cannot be opened */
    pt_processor *processor; /* runs webhook sources' scripts (processor.h) */
    pt_changes *changes;
    snapshot *snap;
    uint64_t forgotten_gen; /* scripts of older generations dropped from Python */

    pt_buf access_log; /* leader only: lines flushed once per loop iteration */

    atomic_int stopping;
    double stop_deadline;
    atomic_int exit_code;
} worker;

static worker W;

static void begin_stop(worker *w);
static void redact_token(pt_str *s);
static void answer_inflight(int status, const char *why);

static double
now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- Snapshots ------------------------------------------------------------------------- */

static void
snapshot_release(snapshot *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    pt_router_free(s->router);
    pt_store_endpoints_free(s->eps, s->neps);
    pt_store_scripts_free(s->scripts, s->nscripts);
    free(s->routes);
    pt_auth_free(s->auth);
    for (size_t i = 0; s->hooks != NULL && i < s->nhook_sources; i++)
        pt_secrets_value_free(s->hooks[i].secret);
    free(s->hooks);
    pt_store_webhook_sources_free(s->hook_sources, s->nhook_sources);
    free(s->hook_token);
    free(s);
}

static void
lower_copy(char *dst, size_t dstsz, const char *src)
{
    size_t i = 0;
    for (; src != NULL && src[i] != '\0' && i + 1 < dstsz; i++)
        dst[i] = (char)((src[i] >= 'A' && src[i] <= 'Z') ? src[i] - 'A' + 'a' : src[i]);
    dst[i] = '\0';
}

/* Loads the webhook token and sources (with their secrets) into s. Returns 0 or -1 (logged). */
static int
load_webhooks(worker *w, snapshot *s)
{
    int rc = pt_store_webhook_token(w->store, 1, &s->hook_token);
    if (rc != 0) {
        pt_log_error("cannot load the webhook token: %s", pt_store_errmsg(w->store));
        return -1;
    }
    if (pt_store_webhook_source_list(w->store, &s->hook_sources, &s->nhook_sources) != 0) {
        pt_log_error("cannot load webhook sources: %s", pt_store_errmsg(w->store));
        return -1;
    }
    s->hooks = calloc(s->nhook_sources ? s->nhook_sources : 1, sizeof(*s->hooks));
    if (s->hooks == NULL)
        return -1;
    for (size_t i = 0; i < s->nhook_sources; i++) {
        struct hook_source *h = &s->hooks[i];
        const pt_webhook_source *src = &s->hook_sources[i];
        h->src = src;
        h->scheme = pt_hooksig_scheme_of(src->verify) < 0 ? PT_HOOKSIG_NONE
                                                          : pt_hooksig_scheme_of(src->verify);
        lower_copy(h->sig_header, sizeof(h->sig_header),
                   src->header != NULL ? src->header : pt_hooksig_default_header(h->scheme));
        const char *dedup = src->dedup_header;
        if (dedup == NULL && h->scheme == PT_HOOKSIG_GITHUB)
            dedup = "x-github-delivery";
        lower_copy(h->dedup_header, sizeof(h->dedup_header), dedup);
        if (h->scheme == PT_HOOKSIG_NONE || src->secret == NULL)
            continue;
        char err[256] = "";
        rc = w->secrets != NULL ? pt_secrets_get(w->secrets, w->store, src->secret, &h->secret,
                                                 &h->secret_len, err, sizeof(err))
                                : PT_ENOTFOUND;
        if (rc == PT_EINVAL || w->secrets == NULL) {
            /* Sealed under a key this worker has not loaded: the master key was rotated (or
             * created) since the worker started. Load the keys again and retry once. */
            pt_secrets *fresh = NULL;
            if (pt_secrets_open(w->cfg->datadir, &fresh, err, sizeof(err)) == 0) {
                pt_secrets_close(w->secrets);
                w->secrets = fresh;
                err[0] = '\0';
                rc = pt_secrets_get(w->secrets, w->store, src->secret, &h->secret, &h->secret_len,
                                    err, sizeof(err));
            }
        }
        if (rc != 0) {
            /* Requests to this source answer 503 until the secret is there. */
            h->secret = NULL;
            pt_log_error("webhook source %s: cannot read secret '%s'%s%s", src->name, src->secret,
                         err[0] ? ": " : "", err);
        }
    }
    return 0;
}

/* Loads endpoints and current scripts from the store. Returns NULL (logged) on failure. */
static snapshot *
snapshot_load(worker *w, uint64_t gen)
{
    snapshot *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    atomic_init(&s->refs, 1);
    s->gen = gen;
    if (pt_store_endpoint_list(w->store, &s->eps, &s->neps) != 0 ||
        pt_store_script_list(w->store, &s->scripts, &s->nscripts) != 0) {
        pt_log_error("cannot load endpoints: %s", pt_store_errmsg(w->store));
        goto fail;
    }
    if (pt_auth_load(w->store, w->cfg->datadir, &s->auth) != 0) {
        pt_log_error("cannot load tokens and API keys: %s", pt_store_errmsg(w->store));
        goto fail;
    }
    if (load_webhooks(w, s) != 0)
        goto fail;
    s->router = pt_router_new();
    s->routes = calloc(s->neps ? s->neps : 1, sizeof(*s->routes));
    if (s->router == NULL || s->routes == NULL)
        goto fail;
    for (size_t i = 0; i < s->neps; i++) {
        struct route *r = &s->routes[i];
        r->ep = &s->eps[i];
        r->auth = pt_auth_mode_of(r->ep->auth);
        for (size_t j = 0; j < s->nscripts; j++) {
            if (strcmp(s->scripts[j].name, r->ep->script) == 0)
                r->script = &s->scripts[j];
        }
        int rc = pt_router_add(s->router, r->ep->path, r->ep->methods, r);
        if (rc != 0)
            pt_log_warn("endpoint %s: path %s not routable (%s)", r->ep->name, r->ep->path,
                        pt_strerror(rc));
    }
    return s;
fail:
    snapshot_release(s);
    return NULL;
}

/* Makes sure the worker serves the current metadata. Leader only. */
static void
refresh_snapshot(worker *w)
{
    uint64_t gen = pt_changes_read(w->changes);
    if (w->snap != NULL && w->snap->gen == gen)
        return;
    snapshot *s = snapshot_load(w, gen);
    if (s == NULL)
        return; /* keep serving the previous snapshot */
    if (w->snap != NULL)
        pt_auth_flush_used(w->snap->auth, w->store, (int64_t)time(NULL), 1);
    snapshot_release(w->snap);
    w->snap = s;
}

/* ---- Jobs ------------------------------------------------------------------------------ */

static void
job_release(job *j)
{
    if (atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    snapshot_release(j->snap);
    pt_response_free(&j->resp);
    free(j->req.block);
    free(j->dedup_key);
    free(j);
}

/* Runs when h2o frees the request's pool: the job must not touch the request any more. */
static void
on_req_dispose(void *p)
{
    job **guard = p;
    if (*guard != NULL)
        (*guard)->hreq = NULL;
}

/* Copies src into dst with %XX sequences decoded; returns the length written (<= n). */
static size_t
percent_decode(char *dst, const char *src, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (src[i] == '%' && i + 2 < n && (hi = pt_hex_digit((unsigned char)src[i + 1])) >= 0 &&
            (lo = pt_hex_digit((unsigned char)src[i + 2])) >= 0) {
            dst[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            dst[o++] = src[i];
        }
    }
    return o;
}

/* A bump allocator over the job's single block. */
typedef struct arena {
    char *p;
    size_t used, cap;
} arena;

static pt_str
arena_copy(arena *a, const char *s, size_t n)
{
    pt_str r = {a->p + a->used, n};
    memcpy(a->p + a->used, s, n);
    a->used += n;
    a->p[a->used++] = '\0';
    return r;
}

/* Copies everything a handler may read out of the h2o request, and who sent it (caller,
 * borrowed). Returns NULL on allocation failure. Loop side. */
static job *
job_new(h2o_req_t *req, snapshot *snap, const struct route *route, const pt_route_match *m,
        const pt_caller *caller)
{
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    const char *query = req->query_at != SIZE_MAX ? req->path.base + req->query_at + 1 : "";
    size_t query_len = req->query_at != SIZE_MAX ? req->path.len - req->query_at - 1 : 0;
    char addr[INET6_ADDRSTRLEN] = "";
    struct sockaddr_storage ss;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (sl != 0 && ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr));
    else if (sl != 0 && ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr));

    size_t need = req->method.len + 1 + 7 + req->authority.len + req->path.len + 1 + path_len + 1 +
                  query_len + 1 + req->entity.len + 1 + strlen(addr) + 1;
    for (size_t i = 0; i < req->headers.size; i++)
        need += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 2;
    for (size_t i = 0; i < m->nparams; i++)
        need += m->params[i].name_len + m->params[i].value_len + 2;
    const char *who[4] = {caller->type, caller->id, caller->name, caller->issuer};
    for (size_t i = 0; i < 4; i++)
        need += who[i] != NULL ? strlen(who[i]) + 1 : 0;
    /* h2o keeps Host in req->authority and consumes Content-Length; handlers see both, as
     * under Flask. */
    char clen[24] = "";
    if (req->entity.base != NULL)
        snprintf(clen, sizeof(clen), "%zu", req->entity.len);
    need += sizeof("host") + req->authority.len + 1 + sizeof("content-length") + strlen(clen) + 1;
    size_t hdr_off = (need + 15) & ~(size_t)15;
    need = hdr_off + (req->headers.size + 2) * sizeof(pt_header);

    job *j = calloc(1, sizeof(*j));
    char *block = malloc(need);
    if (j == NULL || block == NULL) {
        free(j);
        free(block);
        return NULL;
    }
    arena a = {block, 0, need};
    pt_request *r = &j->req;
    r->block = block;
    r->method = arena_copy(&a, req->method.base, req->method.len);
    {
        /* url = http://authority + path?query */
        pt_str u = {a.p + a.used, 7 + req->authority.len + req->path.len};
        memcpy(a.p + a.used, "http://", 7);
        memcpy(a.p + a.used + 7, req->authority.base, req->authority.len);
        memcpy(a.p + a.used + 7 + req->authority.len, req->path.base, req->path.len);
        a.used += u.n;
        a.p[a.used++] = '\0';
        r->url = u;
    }
    r->path = arena_copy(&a, req->path.base, path_len);
    r->query = arena_copy(&a, query, query_len);
    r->body = req->entity.base != NULL ? arena_copy(&a, req->entity.base, req->entity.len)
                                       : arena_copy(&a, "", 0);
    r->remote_addr = arena_copy(&a, addr, strlen(addr));
    r->headers = (pt_header *)(block + hdr_off);
    r->nheaders = req->headers.size;
    r->content_type.p = "";
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        r->headers[i].name = arena_copy(&a, h->name->base, h->name->len);
        r->headers[i].value = arena_copy(&a, h->value.base, h->value.len);
        if (h->name == &H2O_TOKEN_CONTENT_TYPE->buf)
            r->content_type = r->headers[i].value;
    }
    if (req->authority.len > 0 && h2o_find_header(&req->headers, H2O_TOKEN_HOST, -1) < 0) {
        pt_header *h = &r->headers[r->nheaders++];
        h->name = arena_copy(&a, "host", 4);
        h->value = arena_copy(&a, req->authority.base, req->authority.len);
    }
    if (clen[0] != '\0' && h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_LENGTH, -1) < 0) {
        pt_header *h = &r->headers[r->nheaders++];
        h->name = arena_copy(&a, "content-length", 14);
        h->value = arena_copy(&a, clen, strlen(clen));
    }
    r->nparams = m->nparams;
    for (size_t i = 0; i < m->nparams; i++) {
        pt_str name = arena_copy(&a, m->params[i].name, m->params[i].name_len);
        char *v = a.p + a.used;
        size_t vn = percent_decode(v, m->params[i].value, m->params[i].value_len);
        v[vn] = '\0';
        a.used += vn + 1;
        r->params[i].name = name.p;
        r->params[i].name_len = name.n;
        r->params[i].value = v;
        r->params[i].value_len = vn;
    }
    const char **auth_fields[4] = {&r->auth.type, &r->auth.id, &r->auth.name, &r->auth.issuer};
    for (size_t i = 0; i < 4; i++)
        *auth_fields[i] = who[i] != NULL ? arena_copy(&a, who[i], strlen(who[i])).p : NULL;
    pt_reqid_next(r->id);

    atomic_init(&j->refs, 1);
    atomic_init(&j->state, JOB_QUEUED);
    atomic_init(&j->lent, 0);
    j->hreq = req;
    j->snap = snap;
    atomic_fetch_add(&snap->refs, 1);
    j->route = route;
    j->fd = -1;
    if (req->version < 0x200) {
        h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
        if (sock != NULL)
            j->fd = h2o_socket_get_fd(sock);
    }
    pt_response_init(&j->resp, SIZE_MAX / 2);
    /* Linked to the request's pool: on_req_dispose runs when h2o frees the request. */
    j->guard = h2o_mem_alloc_shared(&req->pool, sizeof(job *), on_req_dispose);
    *j->guard = j;
    return j;
}

/* ---- Responses (loop side) ------------------------------------------------------------- */

static void
access_log(worker *w, const job *j, const char *method, size_t mlen, const char *path, size_t plen,
           int status, size_t bytes)
{
    double ms = (now_sec() - j->start) * 1000.0;
    char ts[32];
    struct timespec rt;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &rt);
    gmtime_r(&rt.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    pt_metrics_request(w->cfg->metrics, w->index, status, ms / 1000.0, bytes);
    /* The webhook token is a credential: it never reaches the log, wherever "/webhook/"
     * appears in the path ("//webhook/<token>" too). */
    char redacted[512];
    const char *at = plen <= sizeof(redacted) - 16 ? memmem(path, plen, "/webhook/", 9) : NULL;
    if (at != NULL) {
        pt_str copy = {redacted, plen};
        memcpy(redacted, path, plen);
        redacted[plen] = '\0';
        redact_token(&copy);
        path = redacted;
        plen = copy.n;
    } else if (plen > sizeof(redacted) - 16 && memmem(path, plen, "/webhook/", 9) != NULL) {
        path = "/webhook/{token}...";
        plen = strlen(path);
    }
    pt_buf_printf(&w->access_log,
                  "%s.%03ldZ ACCESS [worker %d] %s %.*s %.*s endpoint=%s status=%d "
                  "duration=%.3fms bytes=%zu\n",
                  ts, rt.tv_nsec / 1000000, w->index, j->req.id, (int)mlen, method, (int)plen, path,
                  j->label != NULL   ? j->label
                  : j->route != NULL ? j->route->ep->name
                                     : "-",
                  status, ms, bytes);
    if (w->access_log.len >= ACCESS_LOG_FLUSH) {
        ssize_t rc = write(2, w->access_log.data, w->access_log.len);
        (void)rc;
        pt_buf_reset(&w->access_log);
    }
}

/* The access-log line of an error h2o answered itself (body too large, ...). */
static void
log_h2o_error(h2o_req_t *req, const char *id, int status, size_t bytes)
{
    job fake;
    memset(&fake, 0, sizeof(fake));
    snprintf(fake.req.id, sizeof(fake.req.id), "%s", id);
    fake.start = now_sec();
    access_log(&W, &fake, req->input.method.base, req->input.method.len, req->input.path.base,
               req->input.query_at != SIZE_MAX ? req->input.query_at : req->input.path.len, status,
               bytes);
}

static void
flush_access_log(worker *w)
{
    if (w->access_log.len > 0) {
        ssize_t rc = write(2, w->access_log.data, w->access_log.len);
        (void)rc;
        pt_buf_reset(&w->access_log);
    }
}

/* A streamed body (request.h: pt_response.stream): each proceed() asks the stream for the next
 * chunk, so at most one chunk per response is in memory here. It lives in the request's pool;
 * the pool's dispose frees the stream (its database connection and cursor) whether the body
 * was finished or the client went away first. Loop side only.
 *
 * The stream never blocks (stream.h): when it has nothing to give yet (PT_STREAM_WAIT with an
 * empty chunk, a PostgreSQL server slow to send the next rows), the generator watches the
 * stream's descriptor on the loop and asks again once it is readable; meanwhile the loop
 * serves the worker's other connections. h2o watches a duplicate of the descriptor, so that
 * closing the watch never closes the database connection's socket. */
typedef struct body_gen {
    h2o_generator_t super; /* first */
    h2o_req_t *req;
    pt_body_stream *stream;
    h2o_socket_t *watch; /* on a duplicate of the stream's wait_fd, once it had to wait */
    pt_buf chunk;        /* being sent: valid until the next proceed() */
    char request_id[24];
} body_gen;

static void
body_gen_release(body_gen *g)
{
    if (g->watch != NULL) { /* before the stream: no callback may see it freed */
        h2o_socket_close(g->watch);
        g->watch = NULL;
    }
    if (g->stream != NULL) {
        g->stream->free(g->stream);
        g->stream = NULL;
    }
}

static void
body_gen_dispose(void *p)
{
    body_gen *g = p;
    body_gen_release(g);
    pt_buf_free(&g->chunk);
}

static void body_gen_fill(body_gen *g);

static void
body_gen_on_readable(h2o_socket_t *sock, const char *err)
{
    (void)err; /* nothing was read (H2O_SOCKET_FLAG_DONT_READ): the stream reads and reports */
    body_gen_fill(sock->data);
}

/* Has the loop call body_gen_on_readable once the stream's descriptor is readable. Returns 0,
 * or PT_EIO when the descriptor cannot be watched (logged). */
static int
body_gen_wait(body_gen *g)
{
    if (g->watch == NULL) {
        int fd = g->stream->wait_fd != NULL ? g->stream->wait_fd(g->stream) : -1;
        int copy = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
        if (copy < 0) {
            pt_log_error("request %s: cannot watch the streamed response's source: %s",
                         g->request_id, fd < 0 ? "no descriptor" : strerror(errno));
            return PT_EIO;
        }
        g->watch =
            h2o_evloop_socket_create(g->req->conn->ctx->loop, copy, H2O_SOCKET_FLAG_DONT_READ);
        g->watch->data = g;
    }
    h2o_socket_read_start(g->watch, body_gen_on_readable);
    return 0;
}

/* Asks the stream for (more of) the chunk, then sends it, or waits when the stream has nothing
 * yet. A part of a chunk is sent as it is: rows that arrived reach the client at once. */
static void
body_gen_fill(body_gen *g)
{
    int rc = g->stream != NULL ? g->stream->next(g->stream, &g->chunk) : PT_EINVAL;

    if (rc == PT_STREAM_WAIT && g->chunk.len == 0) {
        rc = body_gen_wait(g);
        if (rc == 0)
            return;
    }
    if (g->watch != NULL)
        h2o_socket_read_stop(g->watch);
    if (rc == PT_STREAM_WAIT)
        rc = 1;
    if (rc < 0)
        pt_log_error("request %s: streamed response cut short: %s", g->request_id, pt_strerror(rc));
    if (rc != 1)
        body_gen_release(g); /* give the database connection back now, not at dispose */
    h2o_iovec_t vec = h2o_iovec_init(g->chunk.data != NULL ? g->chunk.data : "", g->chunk.len);
    h2o_send(g->req, &vec, 1,
             rc == 1   ? H2O_SEND_STATE_IN_PROGRESS
             : rc == 0 ? H2O_SEND_STATE_FINAL
                       : H2O_SEND_STATE_ERROR);
}

static void
body_gen_proceed(h2o_generator_t *self, h2o_req_t *req)
{
    body_gen *g = (body_gen *)self;

    (void)req; /* the one in g */
    pt_buf_reset(&g->chunk);
    body_gen_fill(g);
}

static void
body_gen_stop(h2o_generator_t *self, h2o_req_t *req)
{
    (void)req;
    body_gen_release((body_gen *)self);
}

/* Starts a streamed response: the part of the body made so far, then the stream's chunks. */
static void
send_streamed(h2o_req_t *req, const char *request_id, pt_response *resp)
{
    body_gen *g = h2o_mem_alloc_shared(&req->pool, sizeof(*g), body_gen_dispose);
    g->super.proceed = body_gen_proceed;
    g->super.stop = body_gen_stop;
    g->req = req;
    g->watch = NULL;
    g->stream = resp->stream;
    resp->stream = NULL;
    snprintf(g->request_id, sizeof(g->request_id), "%s", request_id);
    g->chunk = resp->body; /* the first part moves over */
    g->chunk.max = 0;
    pt_buf_init(&resp->body, 0);
    h2o_start_response(req, &g->super);
    h2o_iovec_t vec = h2o_iovec_init(g->chunk.data != NULL ? g->chunk.data : "", g->chunk.len);
    h2o_send(req, &vec, 1, H2O_SEND_STATE_IN_PROGRESS);
}

/* Sends resp for req with the common headers. */
static void
send_response(h2o_req_t *req, const char *request_id, pt_response *resp)
{
    req->res.status = resp->status;
    req->res.reason = pt_http_reason(resp->status);
    if (resp->content_type != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                       resp->content_type, strlen(resp->content_type));
    for (size_t off = 0; off < resp->headers.len;) {
        const char *name = resp->headers.data + off;
        size_t nlen = strlen(name);
        const char *value = name + nlen + 1;
        size_t vlen = strlen(value);
        off += nlen + vlen + 2;
        h2o_iovec_t lname = h2o_strdup(&req->pool, name, nlen);
        h2o_strtolower(lname.base, lname.len);
        h2o_add_header_by_str(&req->pool, &req->res.headers, lname.base, lname.len, 1, NULL,
                              h2o_strdup(&req->pool, value, vlen).base, vlen);
    }
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
                          h2o_strdup(&req->pool, request_id, strlen(request_id)).base,
                          strlen(request_id));
    if (resp->stream != NULL) {
        send_streamed(req, request_id, resp);
        return;
    }
    req->res.content_length = resp->body.len;
    h2o_send_inline(req, resp->body.data != NULL ? resp->body.data : "", resp->body.len);
}

/* Answers a request that never became a job: an error (body NULL: JSON with `message`) or a
 * fixed body such as the health check, with one optional extra header (Allow,
 * WWW-Authenticate, Retry-After). route, when known, names the endpoint in the access log. */
static void
send_simple(worker *w, h2o_req_t *req, const struct route *route, int status,
            const char *content_type, const char *body, const char *message, const char *hname,
            const char *hvalue)
{
    pt_response resp;
    job fake = {0};
    fake.route = route;
    pt_response_init(&resp, 0);
    pt_reqid_next(fake.req.id);
    fake.start = now_sec();
    if (body != NULL) {
        resp.status = status;
        resp.content_type = content_type;
        pt_buf_puts(&resp.body, body);
    } else {
        pt_response_error(&resp, status, message, fake.req.id);
    }
    if (hname != NULL)
        pt_response_add_header(&resp, hname, strlen(hname), hvalue, strlen(hvalue));
    access_log(w, &fake, req->method.base, req->method.len, req->path.base,
               req->query_at != SIZE_MAX ? req->query_at : req->path.len, status, resp.body.len);
    send_response(req, fake.req.id, &resp);
    pt_response_free(&resp);
}

static void
send_error(worker *w, h2o_req_t *req, int status, const char *message)
{
    send_simple(w, req, NULL, status, NULL, NULL, message, NULL, NULL);
}

/* Runs the check of a jwt or apikey endpoint (auth.h) and answers 401/429/503 itself.
 * Returns 0 when the request may go on, res->caller naming who sent it. Loop side. */
static int
authorize(worker *w, h2o_req_t *req, snapshot *snap, const struct route *route, pt_auth_result *res)
{
    pt_auth_request rq = {.mode = route->auth, .endpoint = route->ep->name};
    struct timespec ts;
    ssize_t i = -1;
    while ((i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, i)) != -1) {
        if (rq.nauthorization++ == 0) {
            rq.authorization = req->headers.entries[i].value.base;
            rq.authorization_len = req->headers.entries[i].value.len;
        }
    }
    i = -1;
    while ((i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-api-key"), i)) != -1) {
        if (rq.napi_key++ == 0) {
            rq.api_key = req->headers.entries[i].value.base;
            rq.api_key_len = req->headers.entries[i].value.len;
        }
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    rq.now = (int64_t)ts.tv_sec;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    rq.mono_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (pt_auth_check(snap->auth, w->cfg->ratelimit, &rq, res) == 0) {
        pt_auth_flush_used(snap->auth, w->store, rq.now, 0); /* at most every few seconds */
        return 0;
    }
    send_simple(w, req, route, res->status, NULL, NULL, res->error, res->header, res->header_value);
    return -1;
}

/* Sends the job's outcome (its response, or a 504 when it timed out) and drops the loop
 * side's reference. Loop side. */
static void
finish_job(worker *w, job *j, int timed_out)
{
    pt_response *resp = &j->resp;
    pt_response timeout_resp;
    if (timed_out) {
        pt_response_init(&timeout_resp, 0);
        pt_response_error(&timeout_resp, 504, "handler timed out", j->req.id);
        resp = &timeout_resp;
        /* Stop the handler where Python can (pure-Python code; not inside a C call). Timed-out
         * jobs only arrive here through the done queue, inside the loop: no GIL held. */
        if (j->slot != NULL) {
            int fd = j->fd;
            atomic_compare_exchange_strong(&j->slot->owed_fd, &fd, -1);
        }
        pt_py_gil_acquire();
        if (j->slot != NULL && atomic_load(&j->slot->job) == j) {
            pt_py_interrupt(j->py_ident);
            j->slot->interrupted = 1;
        }
        pt_py_gil_release();
    }
    access_log(w, j, j->req.method.p, j->req.method.n, j->req.path.p, j->req.path.n, resp->status,
               resp->body.len);
    /* Take the connection back from the master before writing on it. */
    if (atomic_exchange(&j->lent, 0))
        pt_hold_take_back(w->ctl, j->fd);
    if (j->hreq != NULL) {
        *j->guard = NULL;
        send_response(j->hreq, j->req.id, resp);
    }
    if (timed_out)
        pt_response_free(&timeout_resp);
    if (!timed_out && resp->fatal && !atomic_load(&w->stopping)) {
        pt_log_error("worker %d ran out of memory in a handler; it will be replaced", w->index);
        atomic_store(&w->exit_code, PT_WORKER_EXIT_MEMORY);
        begin_stop(w);
    }
    w->inflight--;
    job_release(j);
}

/* Receives jobs finished by demoted threads and timeouts posted by the monitor. */
static void
on_done_messages(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages)
{
    (void)rx;
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
        job *j = (job *)msg;
        finish_job(&W, j, atomic_load(&j->state) == JOB_TIMED_OUT);
    }
}

/* ---- Webhooks (loop side, no GIL) ------------------------------------------------------ */

/* Called by the inbox's writer thread once the event is on disk (or could not be stored):
 * answer through the loop. */
static void
on_event_stored(pt_inbox_event *ev)
{
    job *j = ev->owner;
    if (ev->rc == 0) {
        j->resp.status = 200;
        j->resp.content_type = "application/json";
        pt_buf_printf(&j->resp.body, "{\"status\": \"received\", \"id\": %lld%s}",
                      (long long)ev->id, ev->duplicate ? ", \"duplicate\": true" : "");
    } else {
        pt_response_error(&j->resp, 503, "the event could not be stored; retry later", j->req.id);
    }
    if (ev->rc == 0)
        pt_metrics_event(W.cfg->metrics, W.index, ev->duplicate);
    if (ev->rc == 0 && !ev->duplicate && strcmp(ev->status, "pending") == 0)
        pt_processor_kick(W.processor);
    atomic_store(&j->state, JOB_DONE);
    h2o_multithread_send_message(&W.done_rx, &j->msg);
}

static const h2o_header_t *
find_header(const h2o_req_t *req, const char *lname)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, lname, strlen(lname), -1);
    return i >= 0 ? &req->headers.entries[i] : NULL;
}

/* Stripe's delivery id is the event object's "id". Caller frees. */
static char *
stripe_event_id(const h2o_req_t *req)
{
    json_error_t e;
    json_t *doc =
        json_loadb(req->entity.base != NULL ? req->entity.base : "", req->entity.len, 0, &e);
    const char *id = doc != NULL ? json_string_value(json_object_get(doc, "id")) : NULL;
    char *out = id != NULL ? strdup(id) : NULL;
    json_decref(doc);
    return out;
}

/* Replaces the token in ".../webhook/<token>[/...]" by "{token}", in place (shorter). The
 * stored event and the log then never hold the credential. */
static void
redact_token(pt_str *s)
{
    char *p = (char *)s->p;
    char *at = memmem(p, s->n, "/webhook/", 9);
    if (at == NULL)
        return;
    char *tok = at + 9;
    while (tok < p + s->n && *tok == '/')
        tok++; /* "/webhook//<token>": the token is the first non-empty segment */
    char *end = tok;
    while (end < p + s->n && *end != '/' && *end != '?')
        end++;
    if (end == p + s->n)
        end = NULL;
    size_t tail = end != NULL ? s->n - (size_t)(end - p) : 0;
    static const char mark[] = "{token}";
    size_t toklen = end != NULL ? (size_t)(end - tok) : s->n - (size_t)(tok - p);
    if (toklen < sizeof(mark) - 1)
        return;
    memcpy(tok, mark, sizeof(mark) - 1);
    memmove(tok + sizeof(mark) - 1, end != NULL ? end : tok + toklen, tail);
    s->n = (size_t)(tok - p) + sizeof(mark) - 1 + tail;
    p[s->n] = '\0';
}

/* POST|PUT|PATCH /webhook/<token>[/<source>]: check, then hand the event to the inbox; the
 * answer goes out once it is stored (on_event_stored). `rest` is the path after /webhook/. */
static void
on_webhook(worker *w, h2o_req_t *req, const char *rest, size_t n)
{
    refresh_snapshot(w);
    snapshot *snap = w->snap;
    const char *slash = memchr(rest, '/', n);
    size_t tlen = slash != NULL ? (size_t)(slash - rest) : n;
    if (snap == NULL || snap->hook_token == NULL || tlen != strlen(snap->hook_token) ||
        sodium_memcmp(rest, snap->hook_token, tlen) != 0) {
        send_error(w, req, 404, "not found");
        return;
    }
    const struct hook_source *hs = NULL;
    if (slash != NULL) {
        const char *name = slash + 1;
        size_t nlen = n - tlen - 1;
        for (size_t i = 0; i < snap->nhook_sources && hs == NULL; i++)
            if (strlen(snap->hooks[i].src->name) == nlen &&
                memcmp(snap->hooks[i].src->name, name, nlen) == 0)
                hs = &snap->hooks[i];
        if (hs == NULL) {
            send_error(w, req, 404, "unknown webhook source");
            return;
        }
    }
    unsigned m = pt_router_method_bit(req->method.base, req->method.len);
    if ((m & (PT_M_POST | PT_M_PUT | PT_M_PATCH)) == 0) {
        send_simple(w, req, NULL, 405, NULL, NULL, "webhooks accept POST, PUT and PATCH", "allow",
                    "POST, PUT, PATCH");
        return;
    }
    if (hs != NULL && hs->scheme != PT_HOOKSIG_NONE) {
        if (hs->secret == NULL) {
            send_error(w, req, 503, "webhook source is misconfigured: its secret is unreadable");
            return;
        }
        const h2o_header_t *sig = find_header(req, hs->sig_header);
        char why[128], msg[160];
        int64_t now = (int64_t)time(NULL);
        if (pt_hooksig_verify(hs->scheme, (const unsigned char *)hs->secret, hs->secret_len,
                              sig != NULL ? sig->value.base : NULL,
                              sig != NULL ? sig->value.len : 0,
                              req->entity.base != NULL ? req->entity.base : "", req->entity.len,
                              now, why, sizeof(why)) != 0) {
            snprintf(msg, sizeof(msg), "invalid webhook signature: %s", why);
            send_error(w, req, 401, msg);
            return;
        }
    }
    char *dedup = NULL;
    if (hs != NULL && hs->dedup_header[0] != '\0') {
        const h2o_header_t *d = find_header(req, hs->dedup_header);
        if (d != NULL && d->value.len > 0)
            dedup = strndup(d->value.base, d->value.len);
    } else if (hs != NULL && hs->scheme == PT_HOOKSIG_STRIPE) {
        dedup = stripe_event_id(req);
    }
    pt_route_match none;
    memset(&none, 0, sizeof(none));
    pt_caller nobody = {0};
    job *j = w->inbox != NULL ? job_new(req, snap, NULL, &none, &nobody) : NULL;
    if (j == NULL) {
        free(dedup);
        send_error(w, req, 503, "the webhook inbox is unavailable");
        return;
    }
    j->label = "webhook";
    redact_token(&j->req.path);
    redact_token(&j->req.url);
    j->dedup_key = dedup;
    j->hook.req = &j->req;
    j->hook.source = hs != NULL ? hs->src->name : "";
    j->hook.dedup_key = dedup;
    j->hook.status = hs != NULL && hs->src->script != NULL ? "pending" : "received";
    j->hook.owner = j;
    j->start = now_sec();
    atomic_store(&j->state, JOB_RUNNING);
    w->inflight++;
    pt_inbox_submit(w->inbox, &j->hook);
}

/* ---- The HTTP handler (loop side, no GIL) ---------------------------------------------- */

/* GET /_portico/health, /_portico/metrics, /_portico/openapi.json. */
static void
on_portico(worker *w, h2o_req_t *req, const char *name, size_t n)
{
    pt_buf body;
    char url[512];
    const char *type = "application/json";
    int rc = -1;

    if (pt_router_method_bit(req->method.base, req->method.len) & ~(PT_M_GET | PT_M_HEAD)) {
        send_simple(w, req, NULL, 405, NULL, NULL, "method not allowed", "allow", "GET, HEAD");
        return;
    }
    pt_buf_init(&body, 0);
    if (n == 6 && memcmp(name, "health", 6) == 0) {
        rc = pt_buf_puts(&body, "{\"status\": \"ok\"}");
    } else if (n == 7 && memcmp(name, "metrics", 7) == 0 && w->cfg->metrics != NULL) {
        type = "text/plain; version=0.0.4; charset=utf-8";
        rc = pt_metrics_render(w->cfg->metrics, &body);
    } else if (n == 12 && memcmp(name, "openapi.json", 12) == 0) {
        refresh_snapshot(w);
        snprintf(url, sizeof(url), "http://%.*s", (int)req->authority.len, req->authority.base);
        rc = w->snap != NULL ? pt_openapi_render(w->snap->eps, w->snap->neps, url, &body) : -1;
    } else {
        pt_buf_free(&body);
        send_error(w, req, 404, "not found");
        return;
    }
    if (rc == 0)
        send_simple(w, req, NULL, 200, type, pt_buf_cstr(&body), NULL, NULL, NULL);
    else
        send_error(w, req, 503, "cannot build the document");
    pt_buf_free(&body);
}

static int
on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    worker *w = &W;
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    const char *path = req->path.base;

    size_t header_bytes = req->path.len;
    for (size_t i = 0; i < req->headers.size; i++)
        header_bytes += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    if (header_bytes > w->cfg->max_header) {
        send_error(w, req, 431, "request headers too large");
        return 0;
    }

    if (plen >= 10 && memcmp(path, "/_portico/", 10) == 0) {
        on_portico(w, req, path + 10, plen - 10);
        return 0;
    }
    if (plen >= 9 && memcmp(path, "/webhook/", 9) == 0) {
        on_webhook(w, req, path + 9, plen - 9);
        return 0;
    }

    refresh_snapshot(w);
    snapshot *snap = w->snap;
    if (snap == NULL) {
        send_error(w, req, 503, "endpoints cannot be loaded");
        return 0;
    }
    pt_route_match m;
    unsigned method = pt_router_method_bit(req->method.base, req->method.len);
    switch (pt_router_match(snap->router, method, path, plen, &m)) {
    case PT_ROUTE_NOT_FOUND:
        send_error(w, req, 404, "no endpoint at this path");
        return 0;
    case PT_ROUTE_METHOD: {
        char allow[128];
        pt_router_format_methods(m.allow, allow, sizeof(allow));
        send_simple(w, req, NULL, 405, NULL, NULL, "method not allowed", "allow", allow);
        return 0;
    }
    case PT_ROUTE_FOUND:
        break;
    }
    const struct route *route = m.data;
    pt_auth_result ar;
    ar.caller = (pt_caller){0};
    if (route->auth != PT_AUTH_PUBLIC && authorize(w, req, snap, route, &ar) != 0)
        return 0;
    job *j = job_new(req, snap, route, &m, &ar.caller);
    if (j == NULL) {
        send_error(w, req, 503, "out of memory");
        return 0;
    }
    j->start = now_sec();
    w->inflight++;
    pthread_mutex_lock(&w->ready_mu);
    if (w->ready_tail != NULL)
        w->ready_tail->next = j;
    else
        w->ready_head = j;
    w->ready_tail = j;
    pthread_mutex_unlock(&w->ready_mu);
    return 0;
}

/* ---- Running jobs ---------------------------------------------------------------------- */

/* Runs the handler of j on the calling thread. Needs the GIL. */
static void
run_handler(worker *w, slot *s, job *j)
{
    atomic_fetch_add(&j->refs, 1); /* the running thread's reference */
    atomic_store(&j->state, JOB_RUNNING);
    memcpy(s->id, j->req.id, sizeof(s->id));
    atomic_store(&s->fd, j->fd);
    atomic_store(&s->started, now_sec());
    pthread_mutex_lock(&s->lock);
    atomic_store(&s->job, j);
    pthread_mutex_unlock(&s->lock);
    j->run_start = now_sec();
    j->py_ident = s->py_ident;
    j->slot = s;
    if (j->route->script == NULL) {
        pt_response_error(&j->resp, 500, "endpoint script is missing", j->req.id);
        pt_log_error("request %s: endpoint %s has no script '%s'", j->req.id, j->route->ep->name,
                     j->route->ep->script);
    } else {
        pt_script_ref ref = {j->route->script->name, j->route->script->version,
                             j->route->script->source, j->route->script->source_len};
        pt_py_handle(&ref, &j->req, &j->resp);
    }
    /* Cleared with the GIL still held: finish_job() checks it under the GIL before it
     * interrupts this thread, so a TimeoutError never lands in a later request. */
    pthread_mutex_lock(&s->lock);
    atomic_store(&s->job, NULL);
    atomic_store(&s->fd, -1);
    atomic_store(&s->lent, 0); /* from here on j->lent alone says what finish_job owes */
    pthread_mutex_unlock(&s->lock);
    if (s->interrupted) {
        pt_py_clear_interrupt();
        s->interrupted = 0;
    }
    (void)w;
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
                finish_job(w, j, 0);
            job_release(j);
            continue;
        }
        /* Demoted while the handler ran: hand the job to whoever leads now. */
        pt_py_gil_release();
        if (mine)
            h2o_multithread_send_message(&w->done_rx, &j->msg);
        job_release(j);
        return 0;
    }
    if (have_gil)
        pt_py_gil_release();
    return 1;
}

static void
begin_stop(worker *w)
{
    if (atomic_exchange(&w->stopping, 1))
        return;
    w->stop_deadline = now_sec() + (w->cfg->timeout < 10 ? w->cfg->timeout + 1 : 10);
    if (w->listener != NULL) {
        h2o_socket_read_stop(w->listener);
        h2o_socket_close(w->listener);
        w->listener = NULL;
    }
}

static void __attribute__((noreturn)) worker_exit(worker *w)
{
    flush_access_log(w);
    if (w->snap != NULL)
        pt_auth_flush_used(w->snap->auth, w->store, (int64_t)time(NULL), 1);
    if (w->inflight > 0)
        pt_log_warn("worker %d stopping with %zu requests unanswered", w->index, w->inflight);
    _exit(atomic_load(&w->exit_code));
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
        flush_access_log(w);
        if (atomic_load(&w->stopping)) {
            if (w->inflight == 0 || now_sec() > w->stop_deadline) {
                /* Let h2o flush what it has written, then go. */
                for (int i = 0; i < 5; i++)
                    h2o_evloop_run(w->loop, 20);
                worker_exit(w);
            }
            h2o_evloop_run(w->loop, 50);
        } else {
            h2o_evloop_run(w->loop, INT32_MAX);
        }
    }
}

static void *
pool_main(void *arg)
{
    worker *w = &W;
    slot *s = arg;
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

static int
spawn_thread(worker *w)
{
    pthread_t t;
    pthread_attr_t attr;
    int i = w->nthreads;
    if (i >= MAX_THREADS)
        return -1;
    atomic_init(&w->slots[i].fd, -1);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 8u << 20);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, pool_main, &w->slots[i]);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return -1;
    w->nthreads++;
    return 0;
}

/* ---- The monitor ----------------------------------------------------------------------- */

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
    answer_inflight(504, "handler timed out");
    /* Requests still queued for a thread: nobody will run them here; say so. */
    pthread_mutex_lock(&w->ready_mu);
    for (job *j = w->ready_head; j != NULL; j = j->next)
        if (j->fd >= 0)
            pt_crash_reply(j->fd, 503, "worker restarting; retry", j->req.id);
    _exit(PT_WORKER_EXIT_STUCK);
}

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
            /* A handler still running after a tick: lend its connection to the master so
             * that it can answer 502 if this process dies (holds.h). */
            int fd = atomic_load(&s->fd);
            if (j != NULL && fd >= 0 && !atomic_load(&j->lent) &&
                atomic_load(&j->state) == JOB_RUNNING && now - atomic_load(&s->started) > 0.002 &&
                pt_hold_lend(w->ctl, fd, j->req.id) == 0) {
                atomic_store(&j->lent, 1);
                atomic_store(&s->lent, 1);
            }
            if (j == NULL || s->stuck || now - atomic_load(&s->started) < w->cfg->timeout) {
                pthread_mutex_unlock(&s->lock);
                continue;
            }
            /* The running thread cannot release j while we hold the slot lock. */
            int expect = JOB_RUNNING;
            if (atomic_compare_exchange_strong(&j->state, &expect, JOB_TIMED_OUT)) {
                pt_log_warn("request %s: handler timed out after %g s", j->req.id, w->cfg->timeout);
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

/* ---- Crashes --------------------------------------------------------------------------- */

static size_t
fmt_u(char *out, unsigned long v)
{
    char tmp[24];
    size_t n = 0, o = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        out[o++] = tmp[--n];
    return o;
}

/* Answers, before this process goes away, every request whose handler is running (with
 * `status`) and every timed-out one whose 504 is still owed. Only slot fields are read, never
 * a job (it may be freed concurrently). Async-signal-safe. */
static void
answer_inflight(int status, const char *why)
{
    worker *w = &W;
    /* First stop taking connections: other threads may still lead the loop for a moment while
     * this process dies, and whatever they accepted now would be reset. */
    if (w->listen_fd >= 0)
        close(w->listen_fd);
    for (int i = 0; i < MAX_THREADS; i++) {
        slot *s = &w->slots[i];
        int fd = atomic_exchange(&s->fd, -1);
        if (fd >= 0 && atomic_load(&s->job) != NULL) {
            if (atomic_exchange(&s->lent, 0))
                pt_hold_take_back(w->ctl, fd);
            pt_crash_reply(fd, status, why, s->id);
        }
        int owed = atomic_exchange(&s->owed_fd, -1);
        if (owed >= 0)
            pt_crash_reply(owed, 504, "handler timed out", s->id);
    }
}

/* Is this the worker process itself, rather than a child a handler forked? */
static int
in_worker(void)
{
    return getpid() == W.pid;
}

static void
on_fatal_signal(int sig)
{
    if (in_worker()) {
        answer_inflight(502, "worker crashed");
        /* No stdio or time formatting here: neither is async-signal-safe. */
        char line[128];
        size_t n = 0;
        const char *a = "FATAL [worker ";
        const char *b = "] crashed on signal ";
        memcpy(line, a, strlen(a));
        n += strlen(a);
        n += fmt_u(line + n, (unsigned long)W.index);
        memcpy(line + n, b, strlen(b));
        n += strlen(b);
        n += fmt_u(line + n, (unsigned long)sig);
        line[n++] = '\n';
        ssize_t rc = write(2, line, n);
        (void)rc;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* os._exit() from a handler: answer in-flight requests first. Returns 1 when this is the
 * worker (its exit status then tells the master why), 0 in a child a handler forked. */
static int
on_python_exit(int status)
{
    (void)status;
    if (!in_worker())
        return 0;
    answer_inflight(502, "worker exited");
    return 1;
}

static void
install_crash_handlers(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_fatal_signal;
    sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
    pt_py_on_exit_hook = on_python_exit;
}

/* ---- Setup ----------------------------------------------------------------------------- */

static void
on_accept(h2o_socket_t *listener, const char *err)
{
    worker *w = &W;
    if (err != NULL)
        return;
    for (int i = 0; i < 64 && !atomic_load(&w->stopping); i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            break;
        h2o_accept(&w->accept_ctx, sock);
    }
}

static void
on_signal(h2o_socket_t *sock, const char *err)
{
    worker *w = &W;
    struct signalfd_siginfo si;
    (void)err;
    while (read(h2o_socket_get_fd(sock), &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGTERM)
            begin_stop(w);
    }
}

void
pt_worker_main(const pt_server_config *cfg, int listen_fd, int ctl, int index)
{
    worker *w = &W;
    char tag[32], err[256];
    sigset_t set;

    snprintf(tag, sizeof(tag), "worker %d", index);
    pt_log_init(tag);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    w->cfg = cfg;
    w->index = index;
    w->ctl = ctl;
    w->listen_fd = listen_fd;
    w->pid = getpid();
    atomic_init(&w->lstate, 0);
    atomic_init(&w->stopping, 0);
    atomic_init(&w->exit_code, PT_WORKER_EXIT_OK);
    for (int i = 0; i < MAX_THREADS; i++) {
        atomic_init(&w->slots[i].fd, -1);
        atomic_init(&w->slots[i].owed_fd, -1);
        atomic_init(&w->slots[i].lent, 0);
        pthread_mutex_init(&w->slots[i].lock, NULL);
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    pthread_mutex_init(&w->ready_mu, NULL);
    pt_buf_init(&w->access_log, 0);
    pt_reqid_init();

    /* Signals: SIGTERM arrives through a signalfd on the loop; SIGINT is the master's. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    install_crash_handlers();
    mallopt(M_ARENA_MAX, 2);

    if (pt_store_open(cfg->datadir, &w->store, err, sizeof(err)) != 0 ||
        pt_changes_open(cfg->datadir, &w->changes) != 0) {
        pt_log_error("cannot open the data dir: %s", err);
        _exit(PT_WORKER_EXIT_FAILED);
    }
    if (pt_secrets_open(cfg->datadir, &w->secrets, err, sizeof(err)) != 0)
        w->secrets = NULL; /* no master key: sources that verify signatures answer 503 */
    if (pt_inbox_open(cfg->datadir, on_event_stored, &w->inbox, err, sizeof(err)) != 0) {
        pt_log_error("webhooks disabled: %s", err);
        w->inbox = NULL;
    }
    if (pt_py_init_worker(cfg->datadir) != 0)
        _exit(PT_WORKER_EXIT_FAILED);

    h2o_config_init(&w->globalconf);
    w->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("portico"));
    w->globalconf.max_request_entity_size = cfg->max_body;
    h2o_hostconf_t *host =
        h2o_config_register_host(&w->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_req;
    pt_http_errors_install(pathconf, log_h2o_error);
    pt_http_errors_install(&host->fallback_path, log_h2o_error);
    w->loop = h2o_evloop_create();
    h2o_context_init(&w->ctx, w->loop, &w->globalconf);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = w->globalconf.hosts;
    w->mq = h2o_multithread_create_queue(w->loop);
    h2o_multithread_register_receiver(w->mq, &w->done_rx, on_done_messages);

    /* Without it SIGTERM (blocked above) would never reach this worker: it could not stop
     * gracefully, only be killed at the master's deadline. Fail; the master retries. */
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        pt_log_error("cannot create the signalfd: %s", strerror(errno));
        _exit(PT_WORKER_EXIT_FAILED);
    }
    w->sigsock = h2o_evloop_socket_create(w->loop, sfd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(w->sigsock, on_signal);
    w->listener = h2o_evloop_socket_create(w->loop, listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(w->listener, on_accept);
    refresh_snapshot(w);

    /* Before the pool starts: the inbox's writer reads w->processor once events arrive. */
    if (w->inbox != NULL) {
        /* A claim outlives the handler timeout by a little: past it, the worker running the
         * script is presumed dead and another may retry (docs/WEBHOOKS.md). */
        pt_processor_config pc = {cfg->datadir, cfg->webhook_attempts, cfg->webhook_backoff,
                                  cfg->timeout + 2, tag};
        if (pt_processor_start(&pc, &w->processor, err, sizeof(err)) != 0)
            pt_log_error("webhook processing disabled: %s", err);
    }
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < cfg->threads; i++) {
        if (spawn_thread(w) != 0) {
            pt_log_error("cannot start threads");
            _exit(PT_WORKER_EXIT_FAILED);
        }
    }
    pthread_mutex_unlock(&w->mu);
    /* Handlers may grow Python's heap by --worker-memory from here (py/runtime.c). */
    pt_py_set_memory_budget(cfg->worker_memory);
    pthread_t mon;
    if (pthread_create(&mon, NULL, monitor_main, w) != 0) {
        pt_log_error("cannot start the monitor thread");
        _exit(PT_WORKER_EXIT_FAILED);
    }
    /* The main thread has nothing left to do: the pool leads the loop. */
    for (;;)
        pause();
}

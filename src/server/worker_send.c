/* worker_send.c - responses, loop side: plain and streamed bodies, errors for requests that
 * never became a job, a job's outcome or its 504, and the access log (one write per loop
 * iteration). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/stream.h"
#include "py/py.h"
#include "server/breaker.h"
#include "server/holds.h"
#include "server/metrics.h"
#include "server/reqid.h"
#include "server/reqlog.h"
#include "server/worker_int.h"

/* Hands the request to the stored request log (server/reqlog.h): the buffer append only, which
 * never waits. Requests under /_portico/ are not logged there. out (may be NULL) gives what the
 * handler printed and its traceback. */
static void
log_request(worker *w, const job *j, const char *method, size_t mlen, const char *path, size_t plen,
            int status, size_t bytes, size_t bytes_in, const pt_response *out, int64_t end_ms,
            double ms)
{
    pt_reqlog_entry e;
    const pt_caller *c = &j->req.auth;
    const char *ep = j->label != NULL ? j->label : j->route != NULL ? j->route->ep->name : NULL;

    if (w->reqlog == NULL || (plen >= 10 && memcmp(path, "/_portico/", 10) == 0))
        return;
    e.worker = atomic_load_explicit(&w->index, memory_order_relaxed); /* once: a spare promoted */
    e.ts_ms = end_ms - (int64_t)ms;
    e.status = status;
    e.duration_ms = ms;
    e.bytes_in = (long long)bytes_in;
    e.bytes_out = (long long)bytes;
#define FIELD(i, p, n)                                                                             \
    do {                                                                                           \
        e.s[i] = (p);                                                                              \
        e.len[i] = e.s[i] != NULL ? (n) : 0;                                                       \
    } while (0)
    FIELD(PT_RL_REQUEST_ID, j->req.id, strlen(j->req.id));
    FIELD(PT_RL_ENDPOINT, ep, strlen(ep));
    FIELD(PT_RL_METHOD, method, mlen);
    FIELD(PT_RL_PATH, path, plen);
    FIELD(PT_RL_CALLER_TYPE, c->type, strlen(c->type));
    FIELD(PT_RL_CALLER_ID, c->id, strlen(c->id));
    FIELD(PT_RL_CALLER_NAME, c->name, strlen(c->name));
    FIELD(PT_RL_PRINTED, out != NULL && out->printed.len > 0 ? out->printed.data : NULL,
          out->printed.len);
    FIELD(PT_RL_TRACEBACK, out != NULL && out->traceback.len > 0 ? out->traceback.data : NULL,
          out->traceback.len);
#undef FIELD
    pt_reqlog_append(w->reqlog, &e);
}

/* Appends the access-log line of j (status, bytes, duration since j->start), counts it in the
 * metrics and hands it to the request log; the buffer is written once per loop iteration, or
 * sooner when large. bytes_in is the request body's size, out (may be NULL) the handler's
 * output for the request log. */
static void
access_log(worker *w, const job *j, const char *method, size_t mlen, const char *path, size_t plen,
           int status, size_t bytes, size_t bytes_in, const pt_response *out)
{
    double ms = (now_sec() - j->start) * 1000.0;
    char ts[32];
    struct timespec rt;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &rt);
    gmtime_r(&rt.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    pt_metrics_request(w->cfg->metrics, w->index, status, ms / 1000.0, bytes);
    if (j->route != NULL)
        pt_metrics_endpoint_request(w->cfg->metrics, w->index, j->route->metric, status,
                                    ms / 1000.0);
    /* The webhook token is a credential: it never reaches the log (worker_hook.c). */
    char redacted[512];
    path = pt_hook_log_path(path, &plen, redacted, sizeof(redacted));
    log_request(w, j, method, mlen, path, plen, status, bytes, bytes_in, out,
                (int64_t)rt.tv_sec * 1000 + rt.tv_nsec / 1000000, ms);
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

void
pt_send_log_h2o_error(h2o_req_t *req, const char *id, int status, size_t bytes)
{
    job fake;
    memset(&fake, 0, sizeof(fake));
    snprintf(fake.req.id, sizeof(fake.req.id), "%s", id);
    fake.start = now_sec();
    access_log(&pt_worker_self, &fake, req->input.method.base, req->input.method.len,
               req->input.path.base,
               req->input.query_at != SIZE_MAX ? req->input.query_at : req->input.path.len, status,
               bytes, 0, NULL);
}

void
pt_send_flush_log(worker *w)
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

/* Sends resp for req with the common headers (the body moves to a streamed body's generator
 * when resp->stream is set). */
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

/* Logs and sends resp for req, a request that never became a job (fake: its id, route and
 * start), with the route's CORS headers. */
static void
send_plain(worker *w, h2o_req_t *req, job *fake, pt_response *resp)
{
    pt_traffic_cors(req, fake->route, resp);
    access_log(w, fake, req->method.base, req->method.len, req->path.base,
               req->query_at != SIZE_MAX ? req->query_at : req->path.len, resp->status,
               resp->body.len, req->entity.base != NULL ? req->entity.len : 0, NULL);
    send_response(req, fake->req.id, resp);
}

void
pt_send_simple(worker *w, h2o_req_t *req, const struct route *route, int status,
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
    send_plain(w, req, &fake, &resp);
    pt_response_free(&resp);
}

void
pt_send_response(worker *w, h2o_req_t *req, const struct route *route, pt_response *resp)
{
    job fake = {0};
    fake.route = route;
    pt_reqid_next(fake.req.id);
    fake.start = now_sec();
    send_plain(w, req, &fake, resp);
}

void
pt_send_error(worker *w, h2o_req_t *req, int status, const char *message)
{
    pt_send_simple(w, req, NULL, status, NULL, NULL, message, NULL, NULL);
}

/* Logs and sends j's answer resp (borrowed): the handler's own, or a fixed one (`fixed`: a
 * timeout or the rescue's, when the handler's may still be being written), then drops the
 * loop side's reference. */
static void
finish(worker *w, job *j, pt_response *resp, int fixed)
{
    /* A handler still running may be printing into j->resp: only resp is read. */
    access_log(w, j, j->req.method.p, j->req.method.n, j->req.path.p, j->req.path.n, resp->status,
               resp->body.len, j->req.body.n, resp);
    pt_traffic_finish(w, j, resp, fixed);
    /* Take the connection back from the master before writing on it. */
    if (atomic_exchange(&j->lent, 0))
        pt_holds_take_back(w->ctl, j->fd);
    if (j->hreq != NULL) {
        *j->guard = NULL;
        if (fixed || !pt_wadmin_stream(w, j))
            send_response(j->hreq, j->req.id, resp);
    }
    if (!fixed && resp->fatal && !atomic_load(&w->stopping)) {
        pt_log_error("worker %d ran out of memory in a handler; it will be replaced", w->index);
        if (j->route != NULL)
            pt_breaker_blame(w->cfg->breaker, w->proc, j->route->ep->name);
        atomic_store(&w->exit_code, PT_WORKER_EXIT_MEMORY);
        pt_worker_begin_stop(w);
    }
    w->inflight--;
    if (j->route != NULL)
        pt_metrics_endpoint_end(w->cfg->metrics, w->proc, j->route->metric);
    pt_job_release(j);
}

void
pt_send_finish(worker *w, job *j, int timed_out)
{
    if (!timed_out) {
        finish(w, j, &j->resp, 0);
        return;
    }
    pt_response resp;
    pt_response_init(&resp, 0);
    pt_response_error(&resp, 504, "handler timed out", j->req.id);
    char why[96];
    int n = snprintf(why, sizeof(why), "TimeoutError: the handler ran past the timeout (%gs)",
                     j->timeout > 0 ? j->timeout : w->cfg->timeout);
    pt_response_set_traceback(&resp, why, (size_t)n);
    /* Stop the handler where Python can (pure-Python code; not inside a C call). Timed-out
     * jobs only arrive here through the done queue, inside the loop: no GIL held. Not once a
     * handler crashed: its thread keeps the GIL for good (invariant 7). */
    if (j->slot != NULL) {
        int fd = j->fd;
        atomic_compare_exchange_strong(&j->slot->owed_fd, &fd, -1);
    }
    if (!atomic_load(&w->crashed)) {
        pt_py_gil_acquire();
        if (j->slot != NULL && atomic_load(&j->slot->job) == j) {
            pt_py_interrupt(j->py_ident);
            j->slot->interrupted = 1;
        }
        pt_py_gil_release();
    }
    finish(w, j, &resp, 1);
    pt_response_free(&resp);
}

void
pt_send_abandon(worker *w, job *j, int status, const char *why)
{
    pt_response resp;
    pt_response_init(&resp, 0);
    pt_response_error(&resp, status, why, j->req.id);
    if (status == 503)
        pt_response_add_header(&resp, "Retry-After", 11, "1", 1);
    finish(w, j, &resp, 1);
    pt_response_free(&resp);
}

void
pt_send_on_done(h2o_multithread_receiver_t *rx, h2o_linklist_t *messages)
{
    (void)rx;
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
        job *j = (job *)msg;
        pt_send_finish(&pt_worker_self, j, atomic_load(&j->state) == JOB_TIMED_OUT);
    }
}

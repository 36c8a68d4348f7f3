/* reqlog_sse.c - the live tail of the request log as Server-Sent Events: an h2o generator
 * whose events a loop timer produces (reqlog_sse.h). Loop side only.
 *
 * h2o allows one h2o_send at a time per response: after a send, the next waits for proceed().
 * So a tail is either sending (waiting for proceed) or waiting for its timer, never both; the
 * timer polls the log with a small query (rows after the last id sent) and sends what it found,
 * or a keep-alive comment after a long silence, or re-arms itself. */
#include "server/reqlog_sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"

#define SSE_ROWS_PER_POLL 200

typedef struct sse_tail {
    h2o_generator_t super; /* first */
    h2o_req_t *req;
    h2o_timeout_entry_t timer;
    const char *datadir;
    pt_store_reqlog *db; /* opened on the first poll that finds the file */
    pt_reqlog_filter f;
    char *endpoint, *request_id; /* owned copies of f's strings */
    long long last_id;
    int idle_ms;  /* since the last event or keep-alive */
    int sending;  /* an h2o_send waits for proceed() */
    int stopped;  /* the client went away: nothing more is sent */
    pt_buf chunk; /* what is being sent: valid until proceed() */
} sse_tail;

/* The loop's one poll timer (a worker has one loop). */
static h2o_timeout_t poll_timeout;
static int poll_timeout_ready;

static void tail_poll(h2o_timeout_entry_t *entry);

static void
tail_arm(sse_tail *t)
{
    if (!h2o_timeout_is_linked(&t->timer))
        h2o_timeout_link(t->req->conn->ctx->loop, &poll_timeout, &t->timer);
}

static void
tail_release(sse_tail *t)
{
    t->stopped = 1;
    if (h2o_timeout_is_linked(&t->timer))
        h2o_timeout_unlink(&t->timer);
    pt_store_reqlog_close(t->db);
    t->db = NULL;
}

static void
tail_dispose(void *p)
{
    sse_tail *t = p;
    tail_release(t);
    free(t->endpoint);
    free(t->request_id);
    pt_buf_free(&t->chunk);
}

static void
tail_send(sse_tail *t)
{
    h2o_iovec_t vec = h2o_iovec_init(t->chunk.data, t->chunk.len);
    t->sending = 1;
    t->idle_ms = 0;
    h2o_send(t->req, &vec, 1, H2O_SEND_STATE_IN_PROGRESS);
}

/* Appends the events of the rows after t->last_id to t->chunk. Returns 0 or a pt_err. */
static int
tail_collect(sse_tail *t)
{
    char err[256];
    pt_reqlog_row *rows = NULL;
    size_t n = 0;
    int rc;

    if (t->db == NULL) {
        rc = pt_store_reqlog_open(t->datadir, 1, &t->db, err, sizeof(err));
        if (rc == PT_ENOTFOUND)
            return 0; /* no request logged yet */
        if (rc != 0)
            return rc;
    }
    /* after_id 0 (the log was empty at the start): the newest rows, sent oldest first. */
    t->f.after_id = t->last_id;
    t->f.limit = SSE_ROWS_PER_POLL;
    rc = pt_store_reqlog_query(t->db, &t->f, &rows, &n);
    if (rc != 0)
        return rc;
    /* Without after_id the query gives newest first: reverse to send oldest first. */
    for (size_t k = 0; k < n && rc == 0; k++) {
        const pt_reqlog_row *r = t->f.after_id > 0 ? &rows[k] : &rows[n - 1 - k];
        json_t *o = pt_store_reqlog_row_json(r, t->f.with_output);
        char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (s == NULL)
            rc = PT_ENOMEM;
        else
            rc = pt_buf_printf(&t->chunk, "id: %lld\ndata: %s\n\n", r->id, s);
        free(s);
        if (rc == 0 && r->id > t->last_id)
            t->last_id = r->id;
    }
    pt_store_reqlog_rows_free(rows, n);
    return rc;
}

static void
tail_poll(h2o_timeout_entry_t *entry)
{
    sse_tail *t = H2O_STRUCT_FROM_MEMBER(sse_tail, timer, entry);
    if (t->stopped || t->sending)
        return;
    pt_buf_reset(&t->chunk);
    int rc = tail_collect(t);
    if (rc != 0) {
        pt_log_warn("request log tail: %s",
                    rc == PT_EDB && t->db != NULL ? pt_store_reqlog_error(t->db) : pt_strerror(rc));
        pt_buf_reset(&t->chunk);
    }
    t->idle_ms += PT_SSE_POLL_MS;
    if (t->chunk.len == 0 && t->idle_ms >= PT_SSE_KEEPALIVE_MS)
        pt_buf_puts(&t->chunk, ": keep-alive\n\n");
    if (t->chunk.len > 0)
        tail_send(t);
    else
        tail_arm(t);
}

static void
tail_proceed(h2o_generator_t *self, h2o_req_t *req)
{
    sse_tail *t = (sse_tail *)self;
    (void)req;
    t->sending = 0;
    if (!t->stopped)
        tail_arm(t);
}

static void
tail_stop(h2o_generator_t *self, h2o_req_t *req)
{
    (void)req;
    tail_release((sse_tail *)self);
}

int
pt_reqlog_sse_start(h2o_req_t *req, const char *datadir, const pt_reqlog_filter *f)
{
    long long last = -1;
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("last-event-id"), -1);
    if (i >= 0) {
        char buf[32];
        const h2o_iovec_t *v = &req->headers.entries[i].value;
        char *end;
        if (v->len == 0 || v->len >= sizeof(buf))
            return PT_EINVAL;
        memcpy(buf, v->base, v->len);
        buf[v->len] = '\0';
        last = strtoll(buf, &end, 10);
        if (*end != '\0' || last < 0)
            return PT_EINVAL;
    }
    sse_tail *t = h2o_mem_alloc_shared(&req->pool, sizeof(*t), tail_dispose);
    memset(t, 0, sizeof(*t));
    t->super.proceed = tail_proceed;
    t->super.stop = tail_stop;
    t->req = req;
    t->timer.cb = tail_poll;
    t->datadir = datadir;
    pt_buf_init(&t->chunk, 0);
    t->f.status_min = f->status_min;
    t->f.status_max = f->status_max;
    t->f.with_output = f->with_output;
    if ((f->endpoint != NULL && (t->endpoint = strdup(f->endpoint)) == NULL) ||
        (f->request_id != NULL && (t->request_id = strdup(f->request_id)) == NULL))
        return PT_ENOMEM;
    t->f.endpoint = t->endpoint;
    t->f.request_id = t->request_id;
    if (last < 0 && f->after_id > 0)
        last = f->after_id; /* ?after_id=: what the client saw last (the CLI's --follow) */
    if (last < 0) {
        /* From now on: after the newest row there is. */
        char err[256];
        if (pt_store_reqlog_open(datadir, 1, &t->db, err, sizeof(err)) == 0) {
            long long id = pt_store_reqlog_last_id(t->db);
            last = id > 0 ? id : 0;
        } else {
            last = 0;
        }
    }
    t->last_id = last;
    if (!poll_timeout_ready) {
        h2o_timeout_init(req->conn->ctx->loop, &poll_timeout, PT_SSE_POLL_MS);
        poll_timeout_ready = 1;
    }
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/event-stream; charset=utf-8"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-cache"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-accel-buffering"), 0, NULL,
                          H2O_STRLIT("no"));
    h2o_start_response(req, &t->super);
    pt_buf_puts(&t->chunk, ": the request log, live\nretry: 1000\n\n");
    tail_send(t);
    return 0;
}

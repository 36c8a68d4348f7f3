/* http_errors.c - rewrites error responses generated inside h2o (body too large, malformed
 * request) into Portico's JSON error shape. Responses Portico built itself carry an
 * X-Request-Id header already and pass through untouched. */
#include "server/http_errors.h"

#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "server/reqid.h"
#include "core/request.h"

typedef struct replace_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
} replace_ostream;

/* Drops the original body and sends ours with the final call. */
static void
replace_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                h2o_send_state_t state)
{
    replace_ostream *r = (replace_ostream *)self;
    (void)bufs;
    (void)bufcnt;
    if (h2o_send_state_is_in_progress(state)) {
        h2o_ostream_send_next(&r->super, req, NULL, 0, state);
        return;
    }
    h2o_ostream_send_next(&r->super, req, &r->body, 1, state);
}

static const char *
message_for(int status)
{
    switch (status) {
    case 400:
        return "bad request";
    case 413:
        return "request body too large";
    case 431:
        return "request headers too large";
    default:
        return pt_http_reason(status);
    }
}

typedef struct errors_filter {
    h2o_filter_t super;
    pt_http_errors_log_cb log;
} errors_filter;

static void
on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    static const h2o_iovec_t rid_name = {H2O_STRLIT("x-request-id")};
    errors_filter *f = (errors_filter *)self;
    if (req->res.status >= 400 &&
        h2o_find_header_by_str(&req->res.headers, rid_name.base, rid_name.len, -1) == -1) {
        char id[PT_REQID_SIZE];
        pt_buf b;
        pt_reqid_next(id);
        pt_buf_init(&b, 0);
        const char *msg = message_for(req->res.status);
        if (pt_buf_puts(&b, "{\"error\": ") == 0 && pt_json_string(&b, msg, strlen(msg)) == 0 &&
            pt_buf_puts(&b, ", \"request_id\": ") == 0 && pt_json_string(&b, id, strlen(id)) == 0 &&
            pt_buf_putc(&b, '}') == 0) {
            replace_ostream *r = (void *)h2o_add_ostream(req, sizeof(*r), slot);
            r->super.do_send = replace_do_send;
            r->body = h2o_strdup(&req->pool, b.data, b.len);
            slot = &r->super.next;
            h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE,
                           H2O_STRLIT("application/json"), 1);
            h2o_add_header_by_str(&req->pool, &req->res.headers, rid_name.base, rid_name.len, 0,
                                  NULL, h2o_strdup(&req->pool, id, strlen(id)).base, strlen(id));
            req->res.content_length = b.len;
            if (f->log != NULL)
                f->log(req, id, req->res.status, b.len);
        }
        pt_buf_free(&b);
    }
    h2o_setup_next_ostream(req, slot);
}

void
pt_http_errors_install(h2o_pathconf_t *pathconf, pt_http_errors_log_cb log)
{
    errors_filter *f = (errors_filter *)h2o_create_filter(pathconf, sizeof(*f));
    f->super.on_setup_ostream = on_setup_ostream;
    f->log = log;
}

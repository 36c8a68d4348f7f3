/* http_errors.c - rewrites error responses generated inside h2o (body too large, malformed
 * request) into Portico's JSON error shape, and closes the connections an error ends with a
 * lingering close. Responses Portico built itself carry an X-Request-Id header already and
 * keep their body. */
#include "server/http_errors.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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

/* ---- Lingering close ------------------------------------------------------------------
 *
 * An HTTP/1 error that ends the connection (413 over --max-body, a refused head) is often
 * sent while the client is still sending its body. Closing a socket with unread data makes
 * the kernel reset the connection, and a client still writing then sees the reset, not the
 * answer. So the filter keeps a duplicate of the connection's descriptor: when h2o closes its
 * own, the socket lives on, the duplicate sends FIN after the answer, and whatever the client
 * still sends is read and thrown away, up to LINGER_BYTES or LINGER_MS, before the real close.
 * At most LINGER_MAX connections per worker linger; past that they close at once. */
#define LINGER_MS 5000
#define LINGER_BYTES ((size_t)32 << 20)
#define LINGER_MAX 512

typedef struct lingering {
    int fd;
    h2o_loop_t *loop;
    h2o_socket_t *sock;
    size_t discarded;
    h2o_timeout_entry_t timeout;
} lingering;

static h2o_timeout_t linger_timeout;
static h2o_loop_t *linger_loop; /* the loop linger_timeout was made for */
static size_t nlinger;

static void
linger_end(lingering *l)
{
    h2o_timeout_unlink(&l->timeout);
    h2o_socket_close(l->sock); /* closes l->fd */
    free(l);
    nlinger--;
}

static void
linger_on_read(h2o_socket_t *sock, const char *err)
{
    lingering *l = sock->data;
    l->discarded += sock->input->size;
    h2o_buffer_consume(&sock->input, sock->input->size);
    if (err != NULL || l->discarded > LINGER_BYTES)
        linger_end(l);
}

static void
linger_on_timeout(h2o_timeout_entry_t *entry)
{
    linger_end(H2O_STRUCT_FROM_MEMBER(lingering, timeout, entry));
}

/* h2o closed its descriptor (its socket's on_close): start draining through ours. */
static void
linger_start(void *p)
{
    lingering *l = p;
    shutdown(l->fd, SHUT_WR);
    l->sock = h2o_evloop_socket_create(l->loop, l->fd, 0);
    l->sock->data = l;
    h2o_socket_read_start(l->sock, linger_on_read);
    if (linger_loop != l->loop) {
        h2o_timeout_init(l->loop, &linger_timeout, LINGER_MS);
        linger_loop = l->loop;
    }
    l->timeout.cb = linger_on_timeout;
    h2o_timeout_link(l->loop, &linger_timeout, &l->timeout);
}

/* Arranges a lingering close for req's HTTP/1 connection (clear text only). */
static void
linger_arm(h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || sock->ssl != NULL || sock->on_close.cb != NULL || nlinger >= LINGER_MAX)
        return;
    lingering *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return;
    l->fd = fcntl(h2o_socket_get_fd(sock), F_DUPFD_CLOEXEC, 0);
    if (l->fd < 0) {
        free(l);
        return;
    }
    l->loop = req->conn->ctx->loop;
    nlinger++;
    sock->on_close.cb = linger_start;
    sock->on_close.data = l;
}

/* ---- Rewriting h2o's errors ---------------------------------------------------------- */

typedef struct errors_filter {
    h2o_filter_t super;
    pt_http_errors_log_cb log;
    pt_http_errors_cors_cb cors;
} errors_filter;

static void
on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    static const h2o_iovec_t rid_name = {H2O_STRLIT("x-request-id")};
    errors_filter *f = (errors_filter *)self;
    if (req->res.status >= 400 && req->version < 0x200 && !req->http1_is_persistent)
        linger_arm(req);
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
            if (f->cors != NULL)
                f->cors(req);
            if (f->log != NULL)
                f->log(req, id, req->res.status, b.len);
        }
        pt_buf_free(&b);
    }
    h2o_setup_next_ostream(req, slot);
}

void
pt_http_errors_install_cors(h2o_pathconf_t *pathconf, pt_http_errors_log_cb log,
                            pt_http_errors_cors_cb cors)
{
    errors_filter *f = (errors_filter *)h2o_create_filter(pathconf, sizeof(*f));
    f->super.on_setup_ostream = on_setup_ostream;
    f->log = log;
    f->cors = cors;
}

void
pt_http_errors_install(h2o_pathconf_t *pathconf, pt_http_errors_log_cb log)
{
    pt_http_errors_install_cors(pathconf, log, NULL);
}

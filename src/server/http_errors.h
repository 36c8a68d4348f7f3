/* http_errors.h - makes the errors h2o answers by itself once it has parsed a request (413,
 * a bad Content-Length, ...) look like Portico's own: a JSON body {"error": ...,
 * "request_id": ...} and an X-Request-Id header; and closes an HTTP/1 connection that any
 * error response ends with a lingering close (the client's unread body is drained, so that it
 * reads the answer instead of a reset). Requests h2o cannot parse at all (a garbled
 * request line, more than 100 header fields) are answered by its HTTP/1 code directly, with a
 * fixed plain-text 400 that no filter sees. */
#ifndef PT_HTTP_ERRORS_H
#define PT_HTTP_ERRORS_H

#include <h2o.h>

/* Called for each rewritten answer (the access log): the request, the id given to it, the
 * status and the body size. */
typedef void (*pt_http_errors_log_cb)(h2o_req_t *req, const char *id, int status, size_t bytes);

/* Adds the rewriting filter to a path configuration (use it on every pathconf of the host,
 * including hostconf->fallback_path, where h2o binds requests it rejects early). log may be
 * NULL. */
void pt_http_errors_install(h2o_pathconf_t *pathconf, pt_http_errors_log_cb log);

/* Adds the CORS headers of the endpoint a rewritten answer's request was for (to
 * req->res.headers, from req's pool), so that a browser can read the error. */
typedef void (*pt_http_errors_cors_cb)(h2o_req_t *req);

/* pt_http_errors_install with a CORS hook (NULL: none), called for each rewritten answer. */
void pt_http_errors_install_cors(h2o_pathconf_t *pathconf, pt_http_errors_log_cb log,
                                 pt_http_errors_cors_cb cors);

#endif

/* http_errors.h - makes the errors h2o answers by itself (400, 413, ...) look like Portico's
 * own: a JSON body {"error": ..., "request_id": ...} and an X-Request-Id header. */
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

#endif

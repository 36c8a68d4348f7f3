/* request.c - the pt_response helpers (core/request.h) shared by the worker and the Python
 * runtime. */
#include "core/request.h"

#include <string.h>

#include "core/json.h"

void
pt_response_init(pt_response *r, size_t max_body)
{
    r->status = 200;
    r->content_type = NULL;
    r->fatal = 0;
    r->stream = NULL;
    pt_buf_init(&r->body, max_body);
    pt_buf_init(&r->headers, 64 * 1024);
}

void
pt_response_free(pt_response *r)
{
    pt_buf_free(&r->body);
    pt_buf_free(&r->headers);
    if (r->stream != NULL) {
        r->stream->free(r->stream);
        r->stream = NULL;
    }
}

void
pt_response_error(pt_response *r, int status, const char *message, const char *request_id)
{
    r->status = status;
    r->content_type = "application/json";
    if (r->stream != NULL) {
        r->stream->free(r->stream);
        r->stream = NULL;
    }
    pt_buf_reset(&r->body);
    pt_buf_reset(&r->headers);
    /* Error bodies are tiny; lift the cap so that an error always fits. */
    r->body.max = 0;
    pt_buf_puts(&r->body, "{\"error\": ");
    pt_json_string(&r->body, message, strlen(message));
    pt_buf_puts(&r->body, ", \"request_id\": ");
    pt_json_string(&r->body, request_id, strlen(request_id));
    pt_buf_putc(&r->body, '}');
}

int
pt_response_add_header(pt_response *r, const char *name, size_t nlen, const char *value,
                       size_t vlen)
{
    size_t mark = r->headers.len;
    int rc;

    if ((rc = pt_buf_append(&r->headers, name, nlen)) != 0 ||
        (rc = pt_buf_putc(&r->headers, '\0')) != 0 ||
        (rc = pt_buf_append(&r->headers, value, vlen)) != 0 ||
        (rc = pt_buf_putc(&r->headers, '\0')) != 0) {
        r->headers.len = mark;
        return rc;
    }
    return 0;
}

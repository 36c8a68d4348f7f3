/* response.c - the pt_response helpers (core/response.h) shared by the worker, the admin API
 * and the Python runtime. */
#include "core/response.h"

#include <stdio.h>
#include <stdlib.h>
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
    pt_buf_init(&r->printed, 0);
    pt_buf_init(&r->traceback, 0);
    r->output_cut = 0;
}

void
pt_response_free(pt_response *r)
{
    pt_buf_free(&r->body);
    pt_buf_free(&r->headers);
    pt_buf_free(&r->printed);
    pt_buf_free(&r->traceback);
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

void
pt_response_print(pt_response *r, const char *line, size_t n)
{
    if (r->output_cut > 0 || n + 1 > PT_RESPONSE_PRINTED_MAX - r->printed.len ||
        pt_buf_reserve(&r->printed, n + 1) != 0) {
        /* Once a line is cut, later ones are too: the log never hides a gap. */
        r->output_cut += n + 1;
        return;
    }
    pt_buf_append(&r->printed, line, n);
    pt_buf_putc(&r->printed, '\n');
}

void
pt_response_set_traceback(pt_response *r, const char *text, size_t n)
{
    pt_buf_reset(&r->traceback);
    if (n > PT_RESPONSE_TRACEBACK_MAX) {
        pt_buf_printf(&r->traceback, "[... %zu bytes of the traceback not kept]\n",
                      n - PT_RESPONSE_TRACEBACK_MAX);
        text += n - PT_RESPONSE_TRACEBACK_MAX;
        n = PT_RESPONSE_TRACEBACK_MAX;
    }
    pt_buf_append(&r->traceback, text, n);
}

void
pt_response_output_end(pt_response *r)
{
    if (r->output_cut == 0)
        return;
    pt_buf_printf(&r->printed,
                  "[... %zu bytes of print() output not kept: at most %d per request]\n",
                  r->output_cut, PT_RESPONSE_PRINTED_MAX);
}

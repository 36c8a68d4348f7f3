/* response.h - the answer to one request (pt_response): status, headers, body or a stream,
 * and what the handler printed, kept for the request log and test runs. Filled by py/ (or
 * admin/), sent by server/. */
#ifndef PT_RESPONSE_H
#define PT_RESPONSE_H

#include <stddef.h>

#include "core/buf.h"
#include "core/stream.h"

/* Extra response headers are kept as "name\0value\0" pairs in one buffer. */
typedef struct pt_response {
    int status;
    const char *content_type; /* static string, or NULL when set in headers */
    pt_buf body;
    pt_buf headers; /* name\0value\0 ... */
    int fatal;      /* the worker must be replaced after this response (e.g. out of memory) */
    /* When set, the body goes on past `body` (sent first) with what the stream produces, sent
     * chunked as it is made (large row lists). Owned; pt_response_free frees it unless the
     * sender took it (and set this to NULL). */
    pt_body_stream *stream;
    /* What the handler printed (complete lines, each ending in '\n') and the traceback of the
     * exception it raised, kept for the request log and test runs; bounded (see
     * PT_RESPONSE_PRINTED_MAX), output_cut counts the printed bytes not kept. */
    pt_buf printed;
    pt_buf traceback;
    size_t output_cut;
} pt_response;

/* The most print() output and traceback text one response keeps, in bytes: 64 KiB together. A
 * longer traceback keeps its end (where the error is). */
#define PT_RESPONSE_PRINTED_MAX (56 * 1024)
#define PT_RESPONSE_TRACEBACK_MAX (8 * 1024)

/* Initialises an empty 200 response; the body is capped at max_body bytes. */
void pt_response_init(pt_response *r, size_t max_body);
/* Frees the buffers. */
void pt_response_free(pt_response *r);
/* Replaces the response with a JSON error {"error": message, "request_id": id}. */
void pt_response_error(pt_response *r, int status, const char *message, const char *request_id);
/* Appends a header; returns 0 or a pt_buf error. */
int pt_response_add_header(pt_response *r, const char *name, size_t nlen, const char *value,
                           size_t vlen);
/* Keeps one printed line (line[0..n), without its newline) in r->printed within
 * PT_RESPONSE_PRINTED_MAX; once a line does not fit, it and every later line are counted in
 * r->output_cut instead. Never fails (out of memory counts as cut). */
void pt_response_print(pt_response *r, const char *line, size_t n);
/* Sets r->traceback to text[0..n), or to a marker line and the last PT_RESPONSE_TRACEBACK_MAX
 * bytes when longer. */
void pt_response_set_traceback(pt_response *r, const char *text, size_t n);
/* Ends the output: when printed lines were cut, appends the marker line
 * "[... N bytes of print() output not kept: at most 57344 per request]" to r->printed. */
void pt_response_output_end(pt_response *r);

#endif

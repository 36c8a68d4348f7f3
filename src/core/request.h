/* request.h - both halves of an exchange: one HTTP request as handler code sees it (pt_request),
 * copied out of the HTTP library into memory Portico owns, and the response a handler produces
 * (pt_response, with the pt_response_* helpers of request.c). It sits in core/ because every
 * layer that handles a request uses it: server/ fills and sends them, auth/ checks them, py/
 * hands them to handlers.
 *
 * The copy matters: a handler may run on a thread that is no longer driving the event loop
 * (see server/worker_pool.c), and the library may dispose of its request object when the client
 * goes away. Everything a handler can read lives in one malloc'd block owned by the pt_request. */
#ifndef PT_REQUEST_H
#define PT_REQUEST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/stream.h"
#include "core/http.h"

typedef struct pt_str {
    const char *p;
    size_t n;
} pt_str;

typedef struct pt_header {
    pt_str name; /* lower case, as the HTTP library normalises it */
    pt_str value;
} pt_header;

/* Who a request was authenticated as (DESIGN section 4); every field NULL on public
 * endpoints. Handlers see it as request['auth']. */
typedef struct pt_caller {
    const char *type;   /* "jwt" or "apikey" */
    const char *id;     /* token id (jti) or API key id; NULL for an outside token without jti */
    const char *name;   /* token name, API key name, or the outside token's subject */
    const char *issuer; /* outside tokens: the trusted issuer (iss); NULL otherwise */
} pt_caller;

typedef struct pt_request {
    pt_str method;
    pt_str url;   /* full URL: scheme://authority/path?query */
    pt_str path;  /* without the query string */
    pt_str query; /* without the '?' */
    pt_str body;
    pt_str remote_addr;
    pt_str content_type; /* empty when absent */
    pt_header *headers;
    size_t nheaders;
    pt_route_param params[PT_ROUTER_MAX_PARAMS]; /* names and values point into the block */
    size_t nparams;
    pt_caller auth; /* who authenticated; strings in the block */
    char id[24];    /* request id, NUL-terminated, also sent as X-Request-Id */
    char *block;    /* owns every string above */
    /* Becomes non-zero once the client has gone (connection closed, HTTP/2 stream reset): the
     * answer would reach nobody. Owned by whoever made the request; NULL when no client can
     * leave (a webhook event, `portico run`). Any thread may read it. */
    const atomic_int *cancelled;
} pt_request;

/* A request given by its parts rather than read off a connection: a test run (issue 9). */
typedef struct pt_request_parts {
    const char *method;              /* "GET" when NULL */
    const char *path;                /* "/" when NULL; without the query */
    const char *query;               /* without the '?'; NULL: none */
    const char *const *header_names; /* any case (lowered in the copy) */
    const char *const *header_values;
    size_t nheaders;
    const char *body; /* NULL: none */
    size_t body_len;
    const char *pattern; /* the endpoint's path pattern, whose {params} path fills; or NULL */
    const char *host;    /* the URL's authority; "localhost" when NULL */
} pt_request_parts;

/* Fills r with a copy of p (one block; free with pt_request_clear) and a request id of the
 * form "test-<16 hex digits>". Returns 0, PT_ENOMEM, or PT_EINVAL with the reason in err when
 * the method is not a known one, the path does not start with '/' or does not match pattern,
 * or there are more headers than PT_REQUEST_MAX_HEADERS. */
int pt_request_from_parts(pt_request *r, const pt_request_parts *p, char *err, size_t errsz);
/* Frees what pt_request_from_parts made; r is zeroed. */
void pt_request_clear(pt_request *r);
#define PT_REQUEST_MAX_HEADERS 100

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

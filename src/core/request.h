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
} pt_response;

/* Initialises an empty 200 response; the body is capped at max_body bytes. */
void pt_response_init(pt_response *r, size_t max_body);
/* Frees the buffers. */
void pt_response_free(pt_response *r);
/* Replaces the response with a JSON error {"error": message, "request_id": id}. */
void pt_response_error(pt_response *r, int status, const char *message, const char *request_id);
/* Appends a header; returns 0 or a pt_buf error. */
int pt_response_add_header(pt_response *r, const char *name, size_t nlen, const char *value,
                           size_t vlen);

#endif

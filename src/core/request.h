/* request.h - one HTTP request as handler code sees it (pt_request), copied out of the HTTP
 * library into memory Portico owns; the answer is core/response.h. It sits in core/ because
 * every layer that handles a request uses it: server/ fills it, auth/ checks it, py/ hands it
 * to handlers.
 *
 * The copy matters: a handler may run on a thread that is no longer driving the event loop
 * (see server/worker_pool.c), and the library may dispose of its request object when the client
 * goes away. Everything a handler can read lives in one malloc'd block owned by the pt_request. */
#ifndef PT_REQUEST_H
#define PT_REQUEST_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/http.h"
#include "core/response.h"

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

#endif

/* router.h - maps (method, path) to an endpoint: literal segments, {param} captures and `*`
 * wildcards, one segment each. Pure C, no I/O; built once per metadata generation. */
#ifndef PT_ROUTER_H
#define PT_ROUTER_H

#include <stddef.h>

#include "core/http.h"

typedef struct pt_router pt_router;

/* Returns a new empty router, NULL on allocation failure. Free with pt_router_free. */
pt_router *pt_router_new(void);
void pt_router_free(pt_router *r);

/* Adds a route; pattern is copied, data is borrowed and returned by matches.
 * Returns 0, PT_EINVAL (bad pattern, or no methods) or PT_EEXIST (a route of the same shape,
 * parameter names aside, already has one of these methods; disjoint method sets may share it). */
int pt_router_add(pt_router *r, const char *pattern, unsigned methods, void *data);

typedef struct pt_route_match {
    void *data;     /* the route's data when found */
    unsigned allow; /* methods the path accepts, when PT_ROUTE_METHOD */
    size_t nparams;
    pt_route_param params[PT_ROUTER_MAX_PARAMS];
} pt_route_match;

enum pt_route_result { PT_ROUTE_FOUND = 0, PT_ROUTE_NOT_FOUND = 1, PT_ROUTE_METHOD = 2 };

/* Matches path (without query string, length n) for the given method bit. Literal segments win
 * over {param} and `*` at each position; a path that matches only with other methods yields
 * PT_ROUTE_METHOD with allow set. A trailing '/' is not ignored ("/a/" != "/a"). */
enum pt_route_result pt_router_match(const pt_router *r, unsigned method, const char *path,
                                     size_t n, pt_route_match *m);

#endif

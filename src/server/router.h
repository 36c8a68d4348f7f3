/* router.h - maps (method, path) to an endpoint: literal segments, {param} captures and `*`
 * wildcards, one segment each. Pure C, no I/O; built once per metadata generation. */
#ifndef PT_ROUTER_H
#define PT_ROUTER_H

#include <stddef.h>

#define PT_ROUTER_MAX_PARAMS 16
#define PT_ROUTER_MAX_SEGMENTS 32

/* Method bits; PT_M_HEAD is implied by PT_M_GET when matching. */
enum {
    PT_M_GET = 1 << 0,
    PT_M_POST = 1 << 1,
    PT_M_PUT = 1 << 2,
    PT_M_PATCH = 1 << 3,
    PT_M_DELETE = 1 << 4,
    PT_M_HEAD = 1 << 5,
    PT_M_OPTIONS = 1 << 6,
};

/* Parses "GET,POST" (case-insensitive, spaces allowed) into a mask. Returns 0 or PT_EINVAL. */
int pt_router_parse_methods(const char *list, unsigned *mask);
/* Bit of one method name (exact length n, upper case as sent on the wire); 0 if unknown. */
unsigned pt_router_method_bit(const char *name, size_t n);
/* Writes "GET, POST" for mask into out (size outsz, always NUL-terminated). */
void pt_router_format_methods(unsigned mask, char *out, size_t outsz);

/* Checks an endpoint path pattern: starts with '/', segments of [A-Za-z0-9._~!$&'()+,;=:@-]
 * or a whole-segment "{name}" (name: [A-Za-z_][A-Za-z0-9_]*, unique) or "*"; no empty
 * segments except a trailing '/' on the root; not under /_portico/ or /webhook/.
 * Returns 0 or PT_EINVAL with a one-line reason written into err (size errsz). */
int pt_router_check_path(const char *pattern, char *err, size_t errsz);

typedef struct pt_router pt_router;

/* Returns a new empty router, NULL on allocation failure. Free with pt_router_free. */
pt_router *pt_router_new(void);
void pt_router_free(pt_router *r);

/* Adds a route; pattern is copied, data is borrowed and returned by matches.
 * Returns 0, PT_EINVAL (bad pattern, or no methods) or PT_EEXIST (a route of the same shape,
 * parameter names aside, already has one of these methods; disjoint method sets may share it). */
int pt_router_add(pt_router *r, const char *pattern, unsigned methods, void *data);

typedef struct pt_route_param {
    const char *name; /* borrowed from the router */
    size_t name_len;
    const char *value; /* borrowed from the matched path (not decoded) */
    size_t value_len;
} pt_route_param;

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

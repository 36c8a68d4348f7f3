/* http.h - the HTTP vocabulary every layer shares: method bits, endpoint path patterns and
 * the route parameters a matched path yields. Pure C, no I/O; the router (server/router.h)
 * and the store's endpoint checks both build on it. */
#ifndef PT_HTTP_H
#define PT_HTTP_H

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
int pt_http_parse_methods(const char *list, unsigned *mask);
/* Bit of one method name (exact length n, upper case as sent on the wire); 0 if unknown. */
unsigned pt_http_method_bit(const char *name, size_t n);
/* Writes "GET, POST" for mask into out (size outsz, always NUL-terminated). */
void pt_http_format_methods(unsigned mask, char *out, size_t outsz);

/* Checks an endpoint path pattern: starts with '/', segments of [A-Za-z0-9._~!$&'()+,;=:@-]
 * or a whole-segment "{name}" (name: [A-Za-z_][A-Za-z0-9_]*, unique) or "*"; no empty
 * segments except a trailing '/' on the root; not under /_portico/ or /webhook/.
 * Returns 0 or PT_EINVAL with a one-line reason written into err (size errsz; err may be
 * NULL). */
int pt_http_check_path(const char *pattern, char *err, size_t errsz);

/* The standard reason phrase of an HTTP status ("OK", "Not Found"); "Unknown" if none.
 * A static string; async-signal-safe (the crash paths use it). */
const char *pt_http_reason(int status);

/* One {param} or `*` capture of a matched path. */
typedef struct pt_route_param {
    const char *name; /* borrowed from the router */
    size_t name_len;
    const char *value; /* borrowed from the matched path (not decoded) */
    size_t value_len;
} pt_route_param;

#endif

/* fuzz_router.c - libFuzzer target for the router (server/router.c): patterns with literal,
 * {param} and `*` segments, and paths matched against them.
 *
 * Input: a route count byte; per route a method-mask byte and a pattern up to '\n'; then the
 * method byte and the path (the rest) to match. Every answer is checked against a plain
 * reference matcher written here: the route found is the matching one that is most specific
 * segment by segment (literal, then {param}, then `*`), with an exact method before GET for
 * HEAD; captures are the path's segments at the {param} positions; "method not allowed" carries
 * exactly the methods of every matching route. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "fuzz.h"
#include "server/router.h"

#define MAX_ROUTES 8

typedef struct ref_route {
    char *pattern;
    unsigned methods;
} ref_route;

/* Splits s[0..n) (starting with '/') into segments as the router does: "/" has none. */
static size_t
split(const char *s, size_t n, const char **seg, size_t *len, size_t max)
{
    size_t k = 0;
    if (n <= 1)
        return 0;
    const char *p = s + 1, *end = s + n;
    for (;;) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *stop = slash ? slash : end;
        if (k == max)
            return max + 1;
        seg[k] = p;
        len[k++] = (size_t)(stop - p);
        if (slash == NULL)
            return k;
        p = slash + 1;
    }
}

/* Does pattern match the path segments? Fills rank (0 literal, 1 param, 2 wildcard per
 * segment) and the captures. */
static int
ref_match(const char *pattern, const char **ps, const size_t *pl, size_t pn, int *rank,
          const char **cap, size_t *caplen, size_t *ncap)
{
    const char *seg[PT_ROUTER_MAX_SEGMENTS];
    size_t len[PT_ROUTER_MAX_SEGMENTS];
    size_t n = split(pattern, strlen(pattern), seg, len, PT_ROUTER_MAX_SEGMENTS);

    *ncap = 0;
    if (n != pn)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (pl[i] == 0)
            return 0;
        if (len[i] == 1 && seg[i][0] == '*') {
            rank[i] = 2;
        } else if (seg[i][0] == '{') {
            rank[i] = 1;
            cap[*ncap] = ps[i];
            caplen[(*ncap)++] = pl[i];
        } else if (len[i] == pl[i] && memcmp(seg[i], ps[i], pl[i]) == 0) {
            rank[i] = 0;
        } else {
            return 0;
        }
    }
    return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pt_fuzz_in in = {data, size};
    ref_route routes[MAX_ROUTES];
    size_t nroutes = 0, nadd = pt_fuzz_byte(&in) % (MAX_ROUTES + 1), len;
    pt_router *r = pt_router_new();

    if (r == NULL)
        abort();
    for (size_t i = 0; i < nadd; i++) {
        unsigned methods = pt_fuzz_byte(&in) & 0x7f;
        const char *f = pt_fuzz_field(&in, &len);
        char *pattern = strndup(f, len);
        if (pattern == NULL)
            abort();
        int rc = pt_router_add(r, pattern, methods, &routes[nroutes]);
        if (rc == 0) {
            routes[nroutes].pattern = pattern;
            routes[nroutes++].methods = methods;
            continue;
        }
        if (rc != PT_EINVAL && rc != PT_EEXIST)
            abort();
        free(pattern);
    }
    unsigned method = 1u << (pt_fuzz_byte(&in) % 7);
    /* The path in a buffer of its own size: any read past it is an ASan report. */
    size_t n = in.n;
    char *path = malloc(n ? n : 1);
    if (path == NULL)
        abort();
    memcpy(path, in.p, n);

    pt_route_match m;
    enum pt_route_result res = pt_router_match(r, method, path, n, &m);

    /* The reference: the best matching route for the method, and the methods of all. */
    const char *ps[PT_ROUTER_MAX_SEGMENTS];
    size_t pl[PT_ROUTER_MAX_SEGMENTS];
    size_t pn = n > 0 && path[0] == '/' ? split(path, n, ps, pl, PT_ROUTER_MAX_SEGMENTS)
                                        : PT_ROUTER_MAX_SEGMENTS + 1;
    int best_rank[PT_ROUTER_MAX_SEGMENTS], rank[PT_ROUTER_MAX_SEGMENTS];
    const char *cap[PT_ROUTER_MAX_SEGMENTS], *best_cap[PT_ROUTER_MAX_SEGMENTS];
    size_t caplen[PT_ROUTER_MAX_SEGMENTS], best_caplen[PT_ROUTER_MAX_SEGMENTS], ncap, best_ncap = 0;
    const ref_route *best = NULL;
    int best_exact = 0;
    unsigned allow = 0;
    for (size_t i = 0; pn <= PT_ROUTER_MAX_SEGMENTS && i < nroutes; i++) {
        if (!ref_match(routes[i].pattern, ps, pl, pn, rank, cap, caplen, &ncap))
            continue;
        unsigned ms = routes[i].methods;
        allow |= ms & PT_M_GET ? ms | PT_M_HEAD : ms;
        int exact = (ms & method) != 0;
        if (!exact && !(method == PT_M_HEAD && (ms & PT_M_GET)))
            continue;
        int cmp = best == NULL ? -1 : memcmp(rank, best_rank, pn * sizeof rank[0]);
        if (cmp > 0 || (cmp == 0 && (best_exact || !exact)))
            continue;
        best = &routes[i];
        best_exact = exact;
        memcpy(best_rank, rank, sizeof rank);
        memcpy(best_cap, cap, sizeof cap);
        memcpy(best_caplen, caplen, sizeof caplen);
        best_ncap = ncap;
    }

    if (best != NULL) {
        if (res != PT_ROUTE_FOUND || m.data != best || m.nparams != best_ncap)
            abort();
        for (size_t i = 0; i < m.nparams; i++) {
            if (m.params[i].value != best_cap[i] || m.params[i].value_len != best_caplen[i] ||
                m.params[i].name == NULL || m.params[i].name_len == 0)
                abort();
        }
    } else if (allow != 0) {
        if (res != PT_ROUTE_METHOD || m.allow != allow)
            abort();
    } else if (res != PT_ROUTE_NOT_FOUND) {
        abort();
    }

    free(path);
    pt_router_free(r);
    for (size_t i = 0; i < nroutes; i++)
        free(routes[i].pattern);
    return 0;
}

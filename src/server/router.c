/* router.c - a segment trie mapping (method, path) to endpoints.
 *
 * Design notes.
 *  1. One trie node per distinct pattern prefix "shape": each node has sorted literal children,
 *     at most one {param} child (whatever the parameter's name) and at most one `*` child.
 *     Routes hang off the node their last segment leads to, several per node when their
 *     method sets are disjoint (GET /items/{id} and DELETE /items/{item} may coexist).
 *  2. Matching is a depth-first walk trying, at each segment, the literal child, then the
 *     {param} child, then the `*` child, and backtracking when a branch dead-ends. The first
 *     route found whose methods include the request's wins, so literals beat parameters beat
 *     wildcards position by position, and a route that only has other methods does not hide
 *     a less specific one that has this method.
 *  3. Each trie node is visited at most once per match, so a match costs O(trie size) in the
 *     worst case and O(segments * log(fan-out)) in the usual one. It allocates nothing: path
 *     segments and captures live on the stack (at most PT_ROUTER_MAX_SEGMENTS deep).
 *  4. Empty path segments ("//", a trailing '/') match nothing, since patterns cannot have them;
 *     the root pattern "/" is the node reached by zero segments. */
#include "server/router.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

typedef struct route {
    unsigned methods;
    void *data;    /* borrowed from the caller of pt_router_add */
    char *pattern; /* owned copy; parameter names point into it */
    size_t nparams;
    const char *names[PT_ROUTER_MAX_PARAMS];
    size_t name_lens[PT_ROUTER_MAX_PARAMS];
} route;

typedef struct node node;

typedef struct edge {
    char *seg; /* owned literal segment */
    size_t len;
    node *child;
} edge;

struct node {
    edge *lits; /* sorted by (len, bytes) for binary search */
    size_t nlits;
    node *param; /* the {name} child */
    node *wild;  /* the `*` child */
    route *routes;
    size_t nroutes;
};

struct pt_router {
    node root;
};

pt_router *
pt_router_new(void)
{
    return calloc(1, sizeof(pt_router));
}

static void
node_clear(node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->nlits; i++) {
        node_clear(n->lits[i].child);
        free(n->lits[i].child);
        free(n->lits[i].seg);
    }
    free(n->lits);
    node_clear(n->param);
    free(n->param);
    node_clear(n->wild);
    free(n->wild);
    for (size_t i = 0; i < n->nroutes; i++)
        free(n->routes[i].pattern);
    free(n->routes);
}

void
pt_router_free(pt_router *r)
{
    if (r == NULL)
        return;
    node_clear(&r->root);
    free(r);
}

static int
seg_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return alen < blen ? -1 : 1;
    return memcmp(a, b, alen);
}

/* Index of the literal child seg[0..n), or where it would be inserted (with *found 0). */
static size_t
lit_find(const node *nd, const char *seg, size_t n, int *found)
{
    size_t lo = 0, hi = nd->nlits;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = seg_cmp(nd->lits[mid].seg, nd->lits[mid].len, seg, n);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

/* Returns the child for segment seg[0..n), creating it if needed; NULL when out of memory. */
static node *
child_get(node *nd, const char *seg, size_t n)
{
    node **slot = NULL;

    if (n == 1 && seg[0] == '*')
        slot = &nd->wild;
    else if (seg[0] == '{')
        slot = &nd->param;
    if (slot) {
        if (*slot == NULL)
            *slot = calloc(1, sizeof(node));
        return *slot;
    }

    int found;
    size_t at = lit_find(nd, seg, n, &found);
    if (found)
        return nd->lits[at].child;
    edge *lits = realloc(nd->lits, (nd->nlits + 1) * sizeof(edge));
    if (lits == NULL)
        return NULL;
    nd->lits = lits;
    edge e = {.seg = malloc(n + 1), .len = n, .child = calloc(1, sizeof(node))};
    if (e.seg == NULL || e.child == NULL) {
        free(e.seg);
        free(e.child);
        return NULL;
    }
    memcpy(e.seg, seg, n);
    e.seg[n] = '\0';
    memmove(lits + at + 1, lits + at, (nd->nlits - at) * sizeof(edge));
    lits[at] = e;
    nd->nlits++;
    return e.child;
}

/* Nodes created for a route that then failed to be added stay in the trie, empty; they
 * cannot match anything, since only nodes holding routes produce matches. */
int
pt_router_add(pt_router *r, const char *pattern, unsigned methods_mask, void *data)
{
    route rt = {.methods = methods_mask, .data = data};
    node *nd = &r->root;

    if (methods_mask == 0 || pt_http_check_path(pattern, NULL, 0) < 0)
        return PT_EINVAL;
    rt.pattern = strdup(pattern);
    if (rt.pattern == NULL)
        return PT_ENOMEM;

    char *p = rt.pattern + 1;
    while (*p) {
        char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (p[0] == '{') {
            rt.names[rt.nparams] = p + 1;
            rt.name_lens[rt.nparams++] = n - 2;
        }
        nd = child_get(nd, p, n);
        if (nd == NULL)
            goto nomem;
        p = end ? end + 1 : p + n;
    }
    for (size_t i = 0; i < nd->nroutes; i++) {
        if (nd->routes[i].methods & methods_mask) {
            free(rt.pattern);
            return PT_EEXIST;
        }
    }
    route *routes = realloc(nd->routes, (nd->nroutes + 1) * sizeof(route));
    if (routes == NULL)
        goto nomem;
    nd->routes = routes;
    routes[nd->nroutes++] = rt;
    return 0;

nomem:
    free(rt.pattern);
    return PT_ENOMEM;
}

typedef struct walk {
    const char *seg[PT_ROUTER_MAX_SEGMENTS];
    size_t seglen[PT_ROUTER_MAX_SEGMENTS];
    size_t nseg;
    unsigned method;
    unsigned allow; /* methods of every route whose pattern matched the path */
    const char *cap[PT_ROUTER_MAX_PARAMS];
    size_t caplen[PT_ROUTER_MAX_PARAMS];
    pt_route_match *m;
} walk;

/* The route at nd that serves w->method: an exact method first, then GET for HEAD. */
static const route *
node_route(const node *nd, walk *w)
{
    const route *get = NULL;

    for (size_t i = 0; i < nd->nroutes; i++) {
        unsigned ms = nd->routes[i].methods;
        w->allow |= ms & PT_M_GET ? ms | PT_M_HEAD : ms;
        if (ms & w->method)
            return &nd->routes[i];
        if ((ms & PT_M_GET) && get == NULL)
            get = &nd->routes[i];
    }
    return w->method == PT_M_HEAD ? get : NULL;
}

static int
walk_node(const node *nd, size_t depth, size_t ncap, walk *w)
{
    if (depth == w->nseg) {
        const route *rt = node_route(nd, w);
        if (rt == NULL)
            return 0;
        pt_route_match *m = w->m;
        m->data = rt->data;
        m->nparams = rt->nparams;
        for (size_t i = 0; i < rt->nparams; i++) {
            m->params[i].name = rt->names[i];
            m->params[i].name_len = rt->name_lens[i];
            m->params[i].value = w->cap[i];
            m->params[i].value_len = w->caplen[i];
        }
        return 1;
    }

    const char *seg = w->seg[depth];
    size_t n = w->seglen[depth];
    if (n == 0)
        return 0;
    if (nd->nlits) {
        int found;
        size_t at = lit_find(nd, seg, n, &found);
        if (found && walk_node(nd->lits[at].child, depth + 1, ncap, w))
            return 1;
    }
    if (nd->param && ncap < PT_ROUTER_MAX_PARAMS) {
        w->cap[ncap] = seg;
        w->caplen[ncap] = n;
        if (walk_node(nd->param, depth + 1, ncap + 1, w))
            return 1;
    }
    if (nd->wild && walk_node(nd->wild, depth + 1, ncap, w))
        return 1;
    return 0;
}

enum pt_route_result
pt_router_match(const pt_router *r, unsigned method, const char *path, size_t n, pt_route_match *m)
{
    walk w;

    m->data = NULL;
    m->allow = 0;
    m->nparams = 0;
    if (n == 0 || path[0] != '/')
        return PT_ROUTE_NOT_FOUND;

    /* Split "/a/b" into segments "a", "b"; "/" has none and "/a/" ends with an empty one. */
    w.nseg = 0;
    if (n > 1) {
        const char *p = path + 1, *end = path + n;
        for (;;) {
            const char *slash = memchr(p, '/', (size_t)(end - p));
            const char *stop = slash ? slash : end;
            if (w.nseg == PT_ROUTER_MAX_SEGMENTS)
                return PT_ROUTE_NOT_FOUND; /* deeper than any pattern can be */
            w.seg[w.nseg] = p;
            w.seglen[w.nseg++] = (size_t)(stop - p);
            if (slash == NULL)
                break;
            p = slash + 1;
        }
    }
    w.method = method;
    w.allow = 0;
    w.m = m;
    if (walk_node(&r->root, 0, 0, &w))
        return PT_ROUTE_FOUND;
    if (w.allow) {
        m->allow = w.allow;
        return PT_ROUTE_METHOD;
    }
    return PT_ROUTE_NOT_FOUND;
}

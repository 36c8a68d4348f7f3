/* request.c - building a pt_request out of its parts (core/request.h): test runs and tests. */
#include "core/request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/err.h"
#include "core/hex.h"

#include "core/json.h"

static const char *
pattern_or(const char *pattern)
{
    return pattern != NULL ? pattern : "";
}

/* Bump allocation in the request's block, sized beforehand. */
typedef struct block {
    char *p;
    size_t used;
} block;

static pt_str
put(block *b, const char *s, size_t n)
{
    pt_str out = {b->p + b->used, n};
    if (n > 0)
        memcpy(b->p + b->used, s, n);
    b->p[b->used + n] = '\0';
    b->used += n + 1;
    return out;
}

/* Matches path[0..plen) against an endpoint pattern segment by segment: a literal equal, a
 * {name} capturing the segment (percent-decoded into b), `*` any one segment. Returns 0 with
 * the parameters in r, or -1. */
static int
match_params(block *b, const char *pattern, const char *path, size_t plen, pt_request *r)
{
    const char *p = pattern, *q = path, *qend = path + plen;
    r->nparams = 0;
    while (*p == '/' && q < qend && *q == '/') {
        p++;
        q++;
        size_t pn = strcspn(p, "/"), qn = 0;
        while (q + qn < qend && q[qn] != '/')
            qn++;
        if (pn >= 2 && p[0] == '{') {
            if (qn == 0 || r->nparams >= PT_ROUTER_MAX_PARAMS)
                return -1;
            pt_route_param *prm = &r->params[r->nparams++];
            pt_str name = put(b, p + 1, pn - 2);
            char *v = b->p + b->used;
            size_t vn = 0;
            for (size_t i = 0; i < qn; i++) {
                int hi = q[i] == '%' && i + 2 < qn ? pt_hex_digit(q[i + 1]) : -1;
                int lo = hi >= 0 ? pt_hex_digit(q[i + 2]) : -1;
                if (lo >= 0) {
                    v[vn++] = (char)(hi * 16 + lo);
                    i += 2;
                } else {
                    v[vn++] = q[i];
                }
            }
            v[vn] = '\0';
            b->used += vn + 1;
            prm->name = name.p;
            prm->name_len = name.n;
            prm->value = v;
            prm->value_len = vn;
        } else if (!(pn == 1 && p[0] == '*' && qn > 0) && (pn != qn || memcmp(p, q, pn) != 0)) {
            return -1;
        }
        p += pn;
        q += qn;
    }
    return *p == '\0' && q == qend ? 0 : -1;
}

int
pt_request_from_parts(pt_request *r, const pt_request_parts *p, char *err, size_t errsz)
{
    const char *method = p->method != NULL ? p->method : "GET";
    const char *path = p->path != NULL ? p->path : "/";
    const char *query = p->query != NULL ? p->query : "";
    const char *host = p->host != NULL ? p->host : "localhost";
    size_t plen = strlen(path), qlen = strlen(query), mlen = strlen(method);
    char clen[24] = "";
    uint64_t rnd = 0;

    memset(r, 0, sizeof(*r));
    if (pt_http_method_bit(method, mlen) == 0) {
        snprintf(err, errsz, "unknown method '%s' (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS)",
                 method);
        return PT_EINVAL;
    }
    if (path[0] != '/') {
        snprintf(err, errsz, "the path must start with '/' (got '%s')", path);
        return PT_EINVAL;
    }
    if (p->nheaders > PT_REQUEST_MAX_HEADERS) {
        snprintf(err, errsz, "too many headers (at most %d)", PT_REQUEST_MAX_HEADERS);
        return PT_EINVAL;
    }
    if (p->body != NULL)
        snprintf(clen, sizeof(clen), "%zu", p->body_len);
    /* Everything below is copied at most twice its length (params are decoded copies). */
    size_t need = mlen + 8 + strlen(host) + 2 * plen + qlen + 2 * (p->body_len + 1) + 64 +
                  strlen(clen) + 32 + sizeof("content-length") + strlen(pattern_or(p->pattern));
    for (size_t i = 0; i < p->nheaders; i++)
        need += strlen(p->header_names[i]) + strlen(p->header_values[i]) + 2;
    size_t hdr_off = (need + 15) & ~(size_t)15;
    r->block = malloc(hdr_off + (p->nheaders + 2) * sizeof(pt_header));
    if (r->block == NULL) {
        snprintf(err, errsz, "out of memory");
        return PT_ENOMEM;
    }
    block b = {r->block, 0};
    r->method = put(&b, method, mlen);
    char *u = b.p + b.used;
    int un = sprintf(u, "http://%s%s%s%s", host, path, qlen > 0 ? "?" : "", query);
    b.used += (size_t)un + 1;
    r->url = (pt_str){u, (size_t)un};
    r->path = put(&b, path, plen);
    r->query = put(&b, query, qlen);
    r->body = put(&b, p->body != NULL ? p->body : "", p->body != NULL ? p->body_len : 0);
    r->remote_addr = put(&b, "127.0.0.1", 9);
    r->content_type = (pt_str){"", 0};
    r->headers = (pt_header *)(r->block + hdr_off);
    int has_host = 0, has_clen = 0;
    for (size_t i = 0; i < p->nheaders; i++) {
        pt_header *h = &r->headers[r->nheaders++];
        h->name = put(&b, p->header_names[i], strlen(p->header_names[i]));
        for (size_t k = 0; k < h->name.n; k++)
            if (h->name.p[k] >= 'A' && h->name.p[k] <= 'Z')
                ((char *)h->name.p)[k] = (char)(h->name.p[k] - 'A' + 'a');
        h->value = put(&b, p->header_values[i], strlen(p->header_values[i]));
        if (strcmp(h->name.p, "content-type") == 0)
            r->content_type = h->value;
        has_host |= strcmp(h->name.p, "host") == 0;
        has_clen |= strcmp(h->name.p, "content-length") == 0;
    }
    if (!has_host)
        r->headers[r->nheaders++] = (pt_header){put(&b, "host", 4), put(&b, host, strlen(host))};
    if (!has_clen && clen[0] != '\0')
        r->headers[r->nheaders++] =
            (pt_header){put(&b, "content-length", 14), put(&b, clen, strlen(clen))};
    if (p->pattern != NULL && match_params(&b, p->pattern, path, plen, r) != 0) {
        snprintf(err, errsz, "the path '%s' does not match the endpoint's path %s", path,
                 p->pattern);
        pt_request_clear(r);
        return PT_EINVAL;
    }
    if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        rnd = (uint64_t)(uintptr_t)r ^ (uint64_t)clock();
    snprintf(r->id, sizeof(r->id), "test-%016llx", (unsigned long long)rnd);
    return 0;
}

void
pt_request_clear(pt_request *r)
{
    free(r->block);
    memset(r, 0, sizeof(*r));
}

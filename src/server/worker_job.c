/* worker_job.c - building a job: everything a handler may read, copied out of the h2o request
 * into one block (a bump arena), with path parameters percent-decoded.
 *
 * One malloc per request for the copy: handlers run after the loop iteration (or on another
 * thread once the leader is demoted), when h2o may have reused or freed its buffers, so nothing
 * a handler reads may point into h2o's memory. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/hex.h"
#include "server/reqid.h"
#include "server/worker_int.h"

void
pt_job_release(job *j)
{
    if (atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    pt_worker_snapshot_release(j->snap);
    pt_response_free(&j->resp);
    free(j->req.block);
    free(j->dedup_key);
    free(j->cache_key);
    free(j);
}

/* Runs when h2o frees the request's pool: the job must not touch the request any more. The
 * guard is cleared once the answer is sent, so a job still here was not answered: its client
 * left (a reset HTTP/2 stream, a closed connection). */
static void
on_req_dispose(void *p)
{
    job **guard = p;
    if (*guard != NULL) {
        (*guard)->hreq = NULL;
        atomic_store(&(*guard)->cancelled, 1);
    }
}

int
pt_job_cancelled(job *j)
{
    if (atomic_load(&j->cancelled))
        return 1;
    if (j->peek_fd < 0)
        return 0;
    char c;
    ssize_t n = recv(j->peek_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
        return 0;
    atomic_store(&j->cancelled, 1);
    return 1;
}

/* A queued job is looked at (one recv) only after it waited this long, in seconds. */
#define JOB_PEEK_AFTER 0.001

int
pt_job_waited_cancelled(job *j)
{
    if (atomic_load(&j->cancelled))
        return 1;
    return now_sec() - j->start >= JOB_PEEK_AFTER && pt_job_cancelled(j);
}

void
pt_job_poll(job *j, double now)
{
    if (now < j->next_poll)
        return;
    j->next_poll = now + 0.010;
    pt_job_cancelled(j);
}

void
pt_job_drop(worker *w, job *j)
{
    pt_response_error(&j->resp, 499, "client closed request", j->req.id);
    pt_send_finish(w, j, 0);
}

size_t
pt_job_percent_decode(char *dst, const char *src, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (src[i] == '%' && i + 2 < n && (hi = pt_hex_digit((unsigned char)src[i + 1])) >= 0 &&
            (lo = pt_hex_digit((unsigned char)src[i + 2])) >= 0) {
            dst[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            dst[o++] = src[i];
        }
    }
    return o;
}

int
pt_job_param_ok(const char *src, size_t n)
{
    size_t dots = 0, len = 0;
    for (size_t i = 0; i < n; i++, len++) {
        int c = (unsigned char)src[i], hi, lo;
        if (c == '%' && i + 2 < n && (hi = pt_hex_digit((unsigned char)src[i + 1])) >= 0 &&
            (lo = pt_hex_digit((unsigned char)src[i + 2])) >= 0) {
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == '/' || c == '\0')
            return 0;
        dots += c == '.';
    }
    return !(dots == len && (len == 1 || len == 2));
}

/* A bump allocator over the job's single block, sized beforehand (job_size). */
typedef struct arena {
    char *p;
    size_t used, cap;
} arena;

/* Copies s[0..n) and a terminating NUL; returns the copy. */
static pt_str
arena_copy(arena *a, const char *s, size_t n)
{
    pt_str r = {a->p + a->used, n};
    memcpy(a->p + a->used, s, n);
    a->used += n;
    a->p[a->used++] = '\0';
    return r;
}

/* The client's address as text into addr (INET6_ADDRSTRLEN bytes), "" when unknown. */
static void
peer_addr(h2o_req_t *req, char *addr)
{
    struct sockaddr_storage ss;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    addr[0] = '\0';
    if (sl != 0 && ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, INET6_ADDRSTRLEN);
    else if (sl != 0 && ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, INET6_ADDRSTRLEN);
}

/* What the copy is made of, measured once: the block's size depends on all of it. */
typedef struct job_parts {
    size_t path_len;
    const char *query;
    size_t query_len;
    char addr[INET6_ADDRSTRLEN];
    const char *who[4]; /* caller type, id, name, issuer (NULL: absent) */
    char clen[24];      /* Content-Length as handlers see it, "" without a body */
    size_t hdr_off;     /* where the header array starts in the block (aligned) */
    size_t size;        /* of the whole block */
} job_parts;

/* Measures what req needs. h2o keeps Host in req->authority and consumes Content-Length;
 * handlers see both as headers, as under Flask: two extra header slots are kept for them. */
static void
job_size(h2o_req_t *req, const pt_route_match *m, const pt_caller *caller, job_parts *jp)
{
    jp->path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    jp->query = req->query_at != SIZE_MAX ? req->path.base + req->query_at + 1 : "";
    jp->query_len = req->query_at != SIZE_MAX ? req->path.len - req->query_at - 1 : 0;
    peer_addr(req, jp->addr);
    jp->who[0] = caller->type;
    jp->who[1] = caller->id;
    jp->who[2] = caller->name;
    jp->who[3] = caller->issuer;
    jp->clen[0] = '\0';
    if (req->entity.base != NULL)
        snprintf(jp->clen, sizeof(jp->clen), "%zu", req->entity.len);

    size_t need = req->method.len + 1 + 7 + req->authority.len + req->path.len + 1 + jp->path_len +
                  1 + jp->query_len + 1 + req->entity.len + 1 + strlen(jp->addr) + 1;
    for (size_t i = 0; i < req->headers.size; i++)
        need += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 2;
    for (size_t i = 0; i < m->nparams; i++)
        need += m->params[i].name_len + m->params[i].value_len + 2;
    for (size_t i = 0; i < 4; i++)
        need += jp->who[i] != NULL ? strlen(jp->who[i]) + 1 : 0;
    need +=
        sizeof("host") + req->authority.len + 1 + sizeof("content-length") + strlen(jp->clen) + 1;
    jp->hdr_off = (need + 15) & ~(size_t)15;
    jp->size = jp->hdr_off + (req->headers.size + 2) * sizeof(pt_header);
}

/* The headers, with Host and Content-Length added when h2o kept them apart. */
static void
copy_headers(arena *a, h2o_req_t *req, const job_parts *jp, pt_request *r)
{
    r->headers = (pt_header *)(a->p + jp->hdr_off);
    r->nheaders = req->headers.size;
    r->content_type.p = "";
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        r->headers[i].name = arena_copy(a, h->name->base, h->name->len);
        r->headers[i].value = arena_copy(a, h->value.base, h->value.len);
        if (h->name == &H2O_TOKEN_CONTENT_TYPE->buf)
            r->content_type = r->headers[i].value;
    }
    if (req->authority.len > 0 && h2o_find_header(&req->headers, H2O_TOKEN_HOST, -1) < 0) {
        pt_header *h = &r->headers[r->nheaders++];
        h->name = arena_copy(a, "host", 4);
        h->value = arena_copy(a, req->authority.base, req->authority.len);
    }
    if (jp->clen[0] != '\0' && h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_LENGTH, -1) < 0) {
        pt_header *h = &r->headers[r->nheaders++];
        h->name = arena_copy(a, "content-length", 14);
        h->value = arena_copy(a, jp->clen, strlen(jp->clen));
    }
}

/* Path parameters, their values percent-decoded (never longer than the raw value). */
static void
copy_params(arena *a, const pt_route_match *m, pt_request *r)
{
    r->nparams = m->nparams;
    for (size_t i = 0; i < m->nparams; i++) {
        pt_str name = arena_copy(a, m->params[i].name, m->params[i].name_len);
        char *v = a->p + a->used;
        size_t vn = pt_job_percent_decode(v, m->params[i].value, m->params[i].value_len);
        v[vn] = '\0';
        a->used += vn + 1;
        r->params[i].name = name.p;
        r->params[i].name_len = name.n;
        r->params[i].value = v;
        r->params[i].value_len = vn;
    }
}

/* Fills r from req into the arena sized by job_size. */
static void
copy_request(arena *a, h2o_req_t *req, const pt_route_match *m, const job_parts *jp, pt_request *r)
{
    r->block = a->p;
    r->method = arena_copy(a, req->method.base, req->method.len);
    /* url = http://authority + path?query */
    pt_str u = {a->p + a->used, 7 + req->authority.len + req->path.len};
    memcpy(a->p + a->used, "http://", 7);
    memcpy(a->p + a->used + 7, req->authority.base, req->authority.len);
    memcpy(a->p + a->used + 7 + req->authority.len, req->path.base, req->path.len);
    a->used += u.n;
    a->p[a->used++] = '\0';
    r->url = u;
    r->path = arena_copy(a, req->path.base, jp->path_len);
    r->query = arena_copy(a, jp->query, jp->query_len);
    r->body = req->entity.base != NULL ? arena_copy(a, req->entity.base, req->entity.len)
                                       : arena_copy(a, "", 0);
    r->remote_addr = arena_copy(a, jp->addr, strlen(jp->addr));
    copy_headers(a, req, jp, r);
    copy_params(a, m, r);
    const char **auth_fields[4] = {&r->auth.type, &r->auth.id, &r->auth.name, &r->auth.issuer};
    for (size_t i = 0; i < 4; i++)
        *auth_fields[i] =
            jp->who[i] != NULL ? arena_copy(a, jp->who[i], strlen(jp->who[i])).p : NULL;
}

job *
pt_job_new(h2o_req_t *req, snapshot *snap, const struct route *route, const pt_route_match *m,
           const pt_caller *caller)
{
    job_parts jp;
    job_size(req, m, caller, &jp);
    job *j = calloc(1, sizeof(*j));
    char *block = malloc(jp.size);
    if (j == NULL || block == NULL) {
        free(j);
        free(block);
        return NULL;
    }
    arena a = {block, 0, jp.size};
    copy_request(&a, req, m, &jp, &j->req);
    pt_reqid_next(j->req.id);

    atomic_init(&j->refs, 1);
    atomic_init(&j->state, JOB_QUEUED);
    atomic_init(&j->lent, 0);
    atomic_init(&j->cancelled, 0);
    j->req.cancelled = &j->cancelled;
    j->hreq = req;
    j->snap = snap;
    if (snap != NULL)
        atomic_fetch_add(&snap->refs, 1);
    j->route = route;
    j->fd = j->peek_fd = -1;
    if (req->version < 0x200) {
        /* Raw bytes on a TLS connection would be garbage to its client: TLS connections (and
         * HTTP/2 ones) get no raw answer, only a clean close when the worker dies. A peek at
         * the TCP stream still tells a client that left (end of stream). */
        h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
        if (sock != NULL)
            j->peek_fd = h2o_socket_get_fd(sock);
        if (sock != NULL && sock->ssl == NULL)
            j->fd = j->peek_fd;
    }
    pt_response_init(&j->resp, SIZE_MAX / 2);
    /* Linked to the request's pool: on_req_dispose runs when h2o frees the request. */
    j->guard = h2o_mem_alloc_shared(&req->pool, sizeof(job *), on_req_dispose);
    *j->guard = j;
    return j;
}

/* cache.c - the shared response cache's arena (see cache.h for the design). */
#include "server/cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "core/err.h"

#define ALIGN 64

/* A record's header; key, headers and body follow. */
typedef struct rec {
    uint32_t total; /* bytes, header included, a multiple of ALIGN */
    uint32_t pad;   /* 1: filler up to the arena's end, no key */
    uint64_t hash;
    uint64_t next; /* next record of the bucket: position + 1, 0 at the end */
    double stored, expires;
    int32_t status;
    uint32_t klen, hlen, blen;
    uint32_t live; /* in the index */
} rec;

_Static_assert(sizeof(rec) <= ALIGN, "a pad's header fits in the smallest record");

struct pt_cache {
    pthread_mutex_t mu; /* process-shared, robust */
    size_t size;        /* bytes of the ring */
    size_t nbuckets;
    uint64_t head, tail; /* absolute positions: next write, oldest record */
    uint64_t entries, bytes, evictions;
    uint64_t *buckets; /* position + 1 of the newest record of each bucket; in the mapping */
    char *data;        /* the ring; in the mapping */
};

pt_cache *
pt_cache_create(size_t bytes)
{
    if (bytes < PT_CACHE_SIZE_MIN)
        bytes = PT_CACHE_SIZE_MIN;
    size_t nbuckets = bytes / 1024;
    size_t hdr = (sizeof(pt_cache) + nbuckets * sizeof(uint64_t) + ALIGN - 1) / ALIGN * ALIGN;
    size_t ring = bytes / ALIGN * ALIGN;
    pthread_mutexattr_t attr;
    pt_cache *c = mmap(NULL, hdr + ring, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (c == MAP_FAILED)
        return NULL;
    c->size = ring;
    c->nbuckets = nbuckets;
    c->buckets = (uint64_t *)(c + 1);
    c->data = (char *)c + hdr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init(&c->mu, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
        munmap(c, hdr + ring);
        errno = rc;
        return NULL;
    }
    return c;
}

/* FNV-1a. */
static uint64_t
hash_of(const char *key, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ull;
    }
    return h;
}

static rec *
at(pt_cache *c, uint64_t pos)
{
    return (rec *)(c->data + pos % c->size);
}

/* Empties the arena: a process died holding the mutex, mid-change. */
static void
reset(pt_cache *c)
{
    memset(c->buckets, 0, c->nbuckets * sizeof(uint64_t));
    c->head = c->tail = 0;
    c->entries = c->bytes = 0;
}

static int
lock(pt_cache *c)
{
    int rc = pthread_mutex_lock(&c->mu);
    if (rc == EOWNERDEAD) {
        reset(c);
        pthread_mutex_consistent(&c->mu);
        rc = 0;
    }
    return rc;
}

/* Takes the record at `pos` out of its bucket's chain. */
static void
unlink_rec(pt_cache *c, uint64_t pos)
{
    rec *r = at(c, pos);
    uint64_t *link = &c->buckets[r->hash % c->nbuckets];
    while (*link != 0 && *link != pos + 1)
        link = &at(c, *link - 1)->next;
    if (*link == pos + 1)
        *link = r->next;
    r->live = 0;
    c->entries--;
    c->bytes -= r->total;
}

/* The live record of key, or 0; its position + 1. */
static uint64_t
find(pt_cache *c, uint64_t h, const char *key, size_t klen)
{
    for (uint64_t p = c->buckets[h % c->nbuckets]; p != 0; p = at(c, p - 1)->next) {
        rec *r = at(c, p - 1);
        if (r->hash == h && r->klen == klen && memcmp(r + 1, key, klen) == 0)
            return p;
    }
    return 0;
}

int
pt_cache_get(pt_cache *c, const char *key, size_t klen, double now, pt_response *out, double *age)
{
    if (c == NULL || lock(c) != 0)
        return 0;
    uint64_t h = hash_of(key, klen);
    uint64_t p = find(c, h, key, klen);
    int rc = 0;
    if (p != 0 && at(c, p - 1)->expires <= now) {
        unlink_rec(c, p - 1); /* expired: its room goes with the ring */
        p = 0;
    }
    if (p != 0) {
        rec *r = at(c, p - 1);
        const char *hdrs = (const char *)(r + 1) + r->klen;
        out->status = r->status;
        out->content_type = NULL;
        *age = now - r->stored;
        if (pt_buf_append(&out->headers, hdrs, r->hlen) != 0 ||
            pt_buf_append(&out->body, hdrs + r->hlen, r->blen) != 0)
            rc = PT_ENOMEM;
        else
            rc = 1;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* Evicts the oldest records until n bytes from head are free. */
static void
make_room(pt_cache *c, uint64_t n)
{
    while (c->head + n - c->tail > c->size) {
        rec *r = at(c, c->tail);
        if (r->live) {
            unlink_rec(c, c->tail);
            c->evictions++;
        }
        c->tail += r->total;
    }
}

int
pt_cache_put(pt_cache *c, const char *key, size_t klen, double now, double ttl,
             const pt_response *resp)
{
    size_t ctlen = resp->content_type != NULL ? strlen(resp->content_type) : 0;
    size_t hlen = resp->headers.len + (ctlen > 0 ? sizeof("content-type") + ctlen + 1 : 0);
    uint64_t need = (sizeof(rec) + klen + hlen + resp->body.len + ALIGN - 1) / ALIGN * ALIGN;

    if (c == NULL || resp->stream != NULL)
        return PT_EINVAL;
    if (need > c->size / 8)
        return PT_EINVAL;
    if (lock(c) != 0)
        return PT_EINVAL;
    uint64_t h = hash_of(key, klen);
    uint64_t old = find(c, h, key, klen);
    if (old != 0)
        unlink_rec(c, old - 1);
    uint64_t off = c->head % c->size;
    if (off + need > c->size) { /* no wrapping: a pad up to the end */
        uint64_t padlen = c->size - off;
        make_room(c, padlen);
        rec *pad = at(c, c->head);
        *pad = (rec){.total = (uint32_t)padlen, .pad = 1};
        c->head += padlen;
    }
    make_room(c, need);
    rec *r = at(c, c->head);
    *r = (rec){.total = (uint32_t)need,
               .hash = h,
               .stored = now,
               .expires = now + ttl,
               .status = resp->status,
               .klen = (uint32_t)klen,
               .hlen = (uint32_t)hlen,
               .blen = (uint32_t)resp->body.len,
               .live = 1};
    char *p = (char *)(r + 1);
    memcpy(p, key, klen);
    p += klen;
    if (ctlen > 0) {
        memcpy(p, "content-type", sizeof("content-type"));
        p += sizeof("content-type");
        memcpy(p, resp->content_type, ctlen + 1);
        p += ctlen + 1;
    }
    if (resp->headers.len > 0)
        memcpy(p, resp->headers.data, resp->headers.len);
    p += resp->headers.len;
    if (resp->body.len > 0)
        memcpy(p, resp->body.data, resp->body.len);
    uint64_t *bucket = &c->buckets[h % c->nbuckets];
    r->next = *bucket;
    *bucket = c->head + 1;
    c->entries++;
    c->bytes += need;
    c->head += need;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

int
pt_cache_render(pt_cache *c, pt_buf *out)
{
    unsigned long long bytes, entries, evictions;
    if (c == NULL || lock(c) != 0)
        return 0;
    bytes = c->bytes;
    entries = c->entries;
    evictions = c->evictions;
    pthread_mutex_unlock(&c->mu);
    return pt_buf_printf(out,
                         "# HELP portico_cache_bytes Bytes the response cache's live records "
                         "take.\n# TYPE portico_cache_bytes gauge\nportico_cache_bytes %llu\n"
                         "# HELP portico_cache_entries Responses in the response cache.\n"
                         "# TYPE portico_cache_entries gauge\nportico_cache_entries %llu\n"
                         "# HELP portico_cache_evictions_total Cached responses evicted to make "
                         "room.\n"
                         "# TYPE portico_cache_evictions_total counter\n"
                         "portico_cache_evictions_total %llu\n",
                         bytes, entries, evictions);
}

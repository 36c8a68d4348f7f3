/* cache.h - the response cache shared by every worker: GET responses of endpoints with
 * --cache, kept in one bounded arena of shared memory mapped by the master before it forks,
 * so that a response one worker made is served by all of them without running Python.
 *
 * Design notes.
 *  1. The arena is a ring: records (key, headers, body, expiry) are appended at `head`; room
 *     is made by evicting the oldest records at `tail` (first in, first out, whatever their
 *     expiry). A record never wraps: the space left before the end is filled with a pad.
 *     Records are 64-byte aligned, so a pad's header always fits.
 *  2. An index of buckets (about one per KiB of arena) chains the live records by the hash of
 *     their key; positions are absolute (ever-growing) offsets, the arena offset is the
 *     position modulo its size.
 *  3. One process-shared robust mutex guards everything; it is held for a hash walk and a copy
 *     only. A process that dies holding it leaves the arena emptied by the next locker.
 *  4. Keys are opaque bytes made by the caller (worker_traffic.c: endpoint, its fingerprint,
 *     path, sorted query, caller); a record past its expiry is a miss.
 *  5. A record larger than an eighth of the arena is not stored. */
#ifndef PT_CACHE_H
#define PT_CACHE_H

#include <stddef.h>

#include "core/buf.h"
#include "core/response.h"

typedef struct pt_cache pt_cache;

#define PT_CACHE_SIZE_DEFAULT ((size_t)64 << 20)
#define PT_CACHE_SIZE_MIN ((size_t)1 << 20)

/* Maps an arena of `bytes` (at least PT_CACHE_SIZE_MIN). NULL on failure (errno). Lives until
 * exit. Untouched pages cost no memory. */
pt_cache *pt_cache_create(size_t bytes);
/* Looks key[0..klen) up at time `now` (monotonic seconds). On a hit fills out (initialised by
 * the caller with pt_response_init): status, headers (content type included), body; sets *age
 * to the seconds since the record was stored, and returns 1. 0 on a miss, PT_ENOMEM when out
 * could not hold it (a miss for the caller). c may be NULL (a miss). */
int pt_cache_get(pt_cache *c, const char *key, size_t klen, double now, pt_response *out,
                 double *age);
/* Stores resp (borrowed; status, content type, headers and body; never a streamed one) under
 * key for ttl seconds from now, replacing a record of the same key. Returns 0, or PT_EINVAL
 * when too large to cache. */
int pt_cache_put(pt_cache *c, const char *key, size_t klen, double now, double ttl,
                 const pt_response *resp);
/* Appends portico_cache_bytes, portico_cache_entries and portico_cache_evictions_total.
 * Returns 0 or a pt_buf error; nothing when c is NULL. */
int pt_cache_render(pt_cache *c, pt_buf *out);

#endif

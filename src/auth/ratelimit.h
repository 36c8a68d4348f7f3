/* ratelimit.h - request rate limits per token and per API key, shared by every worker of a
 * server: a table in shared memory that the master maps before it forks the workers.
 *
 * Each limited caller owns one slot holding its GCRA "theoretical arrival time" (TAT), which
 * one compare-and-swap advances per admitted request; no lock, no syscall. A rate of N per
 * period T admits a burst of N and then one request every T/N. Slots are claimed by key hash
 * and never released: the table is sized for every token and key an install will have.
 *
 * Cluster mode (several nodes on one PostgreSQL store; docs/SCALING.md, "Rate limits"). The
 * GCRA above is each node's own limit; the cluster's is a second GCRA kept in the store, from
 * which each node leases slices of requests ahead of need (store/store_ratelimit.h) into the
 * caller's slot, which all workers of the node share. Invariants:
 *   1. The request path never waits on the store: it takes a leased request from the slot
 *      (one CAS) or, having none, one on credit; when the slot runs low it queues one lease
 *      for the worker's lease thread (server/ratelease.c), which runs it off the event loop.
 *      At most one lease per slot is in flight on a node (lease_at is its claim).
 *   2. Credit: a node with no leased requests admits up to credit(N) = max(1, N/50) more,
 *      repaid from its next leases before they count as leased. So a window that the store's
 *      GCRA allows N in admits at most N + nodes * credit(N) across the cluster: 100/min
 *      through two nodes admits at most 104 in a burst, never fewer than 100 when both keep
 *      asking (requests leased by a node are spent only by it).
 *   3. The store refused a whole slice (the budget is spent): the node refuses the caller
 *      until the store said the next request accrues (blocked_until), then may lease again.
 *   4. The store failed, or a lease took over two seconds: the node falls back to its
 *      own limit alone (fail open at N per node) until a lease works again, trying at most
 *      once a second. An unreachable database costs accuracy (up to nodes * N), never
 *      availability.
 *   5. Slice sizes adapt per node: doubled while leases come back sooner than 250 ms apart,
 *      halved when more than 2 s apart, between 1 and max(1, N/10). A caller busy on one
 *      node costs one store round trip per slice, not per request. */
#ifndef PT_RATELIMIT_H
#define PT_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

/* A limit as typed on the command line: "100/min" is {100, 60}. */
typedef struct pt_rate {
    uint32_t count;  /* requests; 0 means no limit */
    uint32_t period; /* seconds: 1, 60, 3600 or 86400 */
} pt_rate;

/* Parses "N/s", "N/sec", "N/second", "N/m", "N/min", "N/minute", "N/h", "N/hour", "N/d",
 * "N/day" (N from 1 to 1000000000). Returns 0 or PT_EINVAL; *out is unchanged on error. */
int pt_ratelimit_parse(const char *s, pt_rate *out);
/* Writes the canonical form ("100/min") into out; "" for no limit. */
void pt_ratelimit_format(const pt_rate *r, char *out, size_t outsz);

typedef struct pt_ratelimit pt_ratelimit;

#define PT_RATELIMIT_SLOTS 16384 /* 1 MiB: callers with a limit a server can track */

/* Maps a table of nslots slots, shared with the children forked afterwards (MAP_SHARED |
 * MAP_ANONYMOUS). Returns NULL when the mapping fails. Free with pt_ratelimit_free. */
pt_ratelimit *pt_ratelimit_new(size_t nslots);
void pt_ratelimit_free(pt_ratelimit *rl); /* NULL is a no-op */

/* The slot key of a caller: a 64-bit hash of kind ("token", "apikey") and id; never 0. */
uint64_t pt_ratelimit_key(const char *kind, const char *id);

/* Counts one request of caller `key` against rate r at time now_ns (CLOCK_MONOTONIC, which
 * all processes share). Returns 0 when admitted, 1 when over the limit with *retry_ns set to
 * the wait until a request would be admitted. A full table admits (fail open) and returns 0
 * after logging once: limits protect capacity, authentication has already happened. */
int pt_ratelimit_hit(pt_ratelimit *rl, uint64_t key, const pt_rate *r, uint64_t now_ns,
                     uint64_t *retry_ns);

/* ---- cluster mode (invariants above) ---------------------------------------------------- */

/* One lease for the lease thread to run: ask the store for `want` requests of key at rate. */
typedef struct pt_ratelimit_lease {
    uint64_t key;
    pt_rate rate;
    int64_t want;
    size_t slot; /* the slot's index, for pt_ratelimit_lease_done */
} pt_ratelimit_lease;

/* Turns cluster mode on in this process (a worker, after the fork): from now on
 * pt_ratelimit_hit also spends leased requests, and queues leases, calling wake(ctx) (from the
 * request path; it must not block) after queueing one. ctx is borrowed for the life of rl.
 * Returns 0 or PT_ENOMEM. */
int pt_ratelimit_cluster(pt_ratelimit *rl, void (*wake)(void *ctx), void *ctx);
/* Takes the next queued lease into *out: 1, or 0 when none is queued. Thread-safe. */
int pt_ratelimit_lease_next(pt_ratelimit *rl, pt_ratelimit_lease *out);
/* Records the outcome of lease l at now_ns (CLOCK_MONOTONIC): rc 0 with the requests granted
 * and, when fewer than wanted, wait_ns until the store has the next (invariant 3); rc < 0: the
 * store failed (invariant 4). Releases the slot's claim. Thread-safe. */
void pt_ratelimit_lease_done(pt_ratelimit *rl, const pt_ratelimit_lease *l, int rc, int64_t granted,
                             uint64_t wait_ns, uint64_t now_ns);
/* The slice to ask for next (invariant 5): slice was the last one (0: none yet), since_ns the
 * time since the lease before it came back (0: none). Pure; for the tests. */
uint32_t pt_ratelimit_slice_next(uint32_t slice, uint32_t count, uint64_t since_ns);
/* How many requests a node may admit on credit (invariant 2). Pure. */
int64_t pt_ratelimit_credit(uint32_t count);

#endif

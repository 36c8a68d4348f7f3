/* ratelimit.h - request rate limits per token and per API key, shared by every worker of a
 * server: a table in shared memory that the master maps before it forks the workers.
 *
 * Each limited caller owns one slot holding its GCRA "theoretical arrival time" (TAT), which
 * one compare-and-swap advances per admitted request; no lock, no syscall. A rate of N per
 * period T admits a burst of N and then one request every T/N, so no window of length T ever
 * admits more than N (plus at most one at the window's edge). Slots are claimed by key hash
 * and never released: the table is sized for every token and key an install will have. */
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

#define PT_RATELIMIT_SLOTS 16384 /* 256 KiB: callers with a limit a server can track */

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

#endif

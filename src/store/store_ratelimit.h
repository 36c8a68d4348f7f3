/* store_ratelimit.h - the cluster-wide budget of a rate-limited caller (auth/ratelimit.h): the
 * nodes of a PostgreSQL store lease slices of it, one atomic UPDATE per slice. */
#ifndef PT_STORE_RATELIMIT_H
#define PT_STORE_RATELIMIT_H

#include <stdint.h>

#include "store/store.h"

/* Leases up to `want` requests of caller `key` (pt_ratelimit_key) under the rate count per
 * period_s, from the GCRA arrival time the store keeps for it (table rate_budget; times are
 * the database's clock, so the nodes' clocks do not matter). Sets *granted (0..want) and, when
 * fewer than want were granted, *wait_ns to the time until the next request's worth accrues
 * (0 otherwise). A PostgreSQL store only (the statement uses its functions); PT_EINVAL on
 * SQLite. Returns 0 or a pt_err (PT_EUNAVAIL when the database cannot be reached), the reason
 * in pt_store_errmsg. */
int pt_store_rate_lease(pt_store *st, uint64_t key, uint32_t count, uint32_t period_s, int64_t want,
                        int64_t *granted, uint64_t *wait_ns);

#endif

/* auth.h - the authorization check a worker runs for every request to a `jwt` or `apikey`
 * endpoint, in C, before any Python: token or key lookup, signature, expiry, revocation,
 * scope, rate limit. Pure computation over a pt_auth built from the metadata store once per
 * metadata generation (it lives in the worker's snapshot); no I/O per request.
 *
 * Failures are answered 401 with a WWW-Authenticate challenge (RFC 6750 style), 429 with
 * Retry-After, or 503 when the install's keys cannot be read. Messages are static strings
 * that never contain the token or key that was presented. */
#ifndef PT_AUTH_H
#define PT_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "auth/ratelimit.h"
#include "core/request.h"
#include "store/store.h"

enum pt_auth_mode { PT_AUTH_PUBLIC = 0, PT_AUTH_JWT, PT_AUTH_APIKEY };

/* "public", "jwt", "apikey" -> mode; anything else is PT_AUTH_JWT (fail closed). */
enum pt_auth_mode pt_auth_mode_of(const char *s);

typedef struct pt_auth pt_auth;

/* Loads tokens, API keys, trusted issuers and the install keys. A missing or unreadable key
 * file does not fail the load (public endpoints keep working): requests that need the key
 * get 503 and the reason is logged once. Returns 0 and *out (caller frees with pt_auth_free)
 * or a store error (message in pt_store_errmsg). */
int pt_auth_load(pt_store *st, const char *datadir, pt_auth **out);
void pt_auth_free(pt_auth *a); /* NULL is a no-op; wipes the keys */

/* What the check looks at; every pointer is borrowed for the call. */
typedef struct pt_auth_request {
    enum pt_auth_mode mode;
    const char *endpoint;      /* the routed endpoint's name */
    const char *authorization; /* the Authorization header value, or NULL */
    size_t authorization_len;
    int nauthorization;  /* how many Authorization headers came (more than 1 is refused) */
    const char *api_key; /* the X-Api-Key header value, or NULL */
    size_t api_key_len;
    int napi_key;
    int64_t now;      /* unix seconds */
    uint64_t mono_ns; /* CLOCK_MONOTONIC nanoseconds, for rate limits */
} pt_auth_request;

typedef struct pt_auth_result {
    int status;         /* 0: allowed; else 401, 429 or 503 */
    const char *error;  /* static message for the JSON error body */
    const char *reason; /* static, when refused: "missing", "malformed", "invalid", "expired",
                         * "scope", "rate_limited" or "unavailable" (the metrics' label) */
    const char *header; /* "www-authenticate", "retry-after" or NULL */
    char header_value[256];
    pt_caller caller; /* when allowed: strings borrowed from the pt_auth or from buf */
    char buf[1200];
} pt_auth_result;

/* Decides whether rq may reach its endpoint; returns res->status. Records the caller's
 * last-used time in a (flushed by pt_auth_flush_used). rl may be NULL (no rate limits). Not
 * thread-safe: a worker calls it on its loop thread only. */
int pt_auth_check(pt_auth *a, pt_ratelimit *rl, const pt_auth_request *rq, pt_auth_result *res);

#define PT_AUTH_FLUSH_SECS 5

/* Writes the last-used times recorded since the previous flush to the store, at most once
 * every PT_AUTH_FLUSH_SECS unless force is set. Returns the number of times written, 0 when
 * there was nothing to do, or a pt_err (PT_EUNAVAIL: the store was busy; they stay pending). */
int pt_auth_flush_used(pt_auth *a, pt_store *st, int64_t now, int force);

#endif

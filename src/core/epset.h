/* epset.h - an endpoint's own settings (timeout, bulkhead, response cache, body limit, CORS):
 * the type every layer shares, and the parsing and printing of their values. */
#ifndef PT_EPSET_H
#define PT_EPSET_H

#include <stddef.h>
#include <stdint.h>

/* Zero in a numeric field means "not set": the server-wide value (timeout, body limit), no
 * bulkhead (max_concurrency), no cache (cache_ms). */
typedef struct pt_ep_settings {
    int64_t timeout_ms;      /* handler timeout; 0: serve --timeout */
    int64_t max_concurrency; /* requests running at once across the workers; 0: unlimited */
    int64_t queue_wait_ms;   /* how long a request beyond max_concurrency waits; 0: none */
    int64_t cache_ms;        /* how long a GET response is cached; 0: not cached */
    int64_t max_body;        /* request body limit in bytes; 0: serve --max-body */
    char *cors;              /* allowed origins, "a,b" or "*"; NULL: no CORS. Owned */
} pt_ep_settings;

/* Bounds of the values (checked by pt_epset_check). */
#define PT_EPSET_TIMEOUT_MAX_MS (86400LL * 1000)
#define PT_EPSET_CONCURRENCY_MAX 100000
#define PT_EPSET_QUEUE_WAIT_MAX_MS (60LL * 1000)
#define PT_EPSET_CACHE_MAX_MS (86400LL * 1000)
#define PT_EPSET_BODY_MAX ((int64_t)1 << 30)
#define PT_EPSET_CORS_MAX 2048  /* bytes of the origin list */
#define PT_EPSET_ORIGIN_MAX 255 /* bytes of one origin */

/* Frees s->cors and zeroes s. s may be NULL. */
void pt_epset_clear(pt_ep_settings *s);
/* Copies src into dst (dst's old contents are not freed). Returns 0 or PT_ENOMEM (dst then
 * zeroed). */
int pt_epset_copy(pt_ep_settings *dst, const pt_ep_settings *src);

/* Parses a duration into milliseconds: a number with the unit ms, s, m or h ("200ms", "5s",
 * "1.5s", "2m"); a plain number is seconds. Returns 0 or PT_EINVAL (negative, not finite, past
 * an hour's worth of days). */
int pt_epset_parse_ms(const char *s, int64_t *ms);
/* Writes ms as the shortest of "200ms", "5s", "1.5s", "2m", "1h" into out. */
void pt_epset_format_ms(int64_t ms, char *out, size_t outsz);
/* Writes bytes as "1MiB", "512KiB" or "1000B" (exact) into out. */
void pt_epset_format_size(int64_t bytes, char *out, size_t outsz);

/* Checks and normalises an origin list in place ("https://a.example, https://b.example/" ->
 * "https://a.example,https://b.example"): each origin is scheme://host[:port] with scheme http
 * or https, nothing after, at most PT_EPSET_ORIGIN_MAX bytes; or the list is exactly "*".
 * Returns 0, or PT_EINVAL with the reason in err. */
int pt_epset_check_cors(char *list, char *err, size_t errsz);
/* Checks every field's range and the CORS list (normalised in place), and that "*" goes with a
 * public endpoint (auth). Returns 0, or PT_EINVAL with err naming the setting (its CLI flag). */
int pt_epset_check(pt_ep_settings *s, const char *auth, char *err, size_t errsz);
/* Is origin[0..n) in the list (s->cors)? "*" allows every origin. 0 when s has no CORS. */
int pt_epset_origin_allowed(const pt_ep_settings *s, const char *origin, size_t n);

#endif

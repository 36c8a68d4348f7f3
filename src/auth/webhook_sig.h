/* webhook_sig.h - signatures of incoming webhooks: GitHub (X-Hub-Signature-256), Stripe
 * (Stripe-Signature with its timestamp) and a generic HMAC-SHA256 of the raw body. */
#ifndef PT_WEBHOOK_SIG_H
#define PT_WEBHOOK_SIG_H

#include <stddef.h>
#include <stdint.h>

#define PT_STRIPE_TOLERANCE 300 /* seconds between Stripe's timestamp and now */
#define PT_STRIPE_TS_DIGITS 15  /* at most this many digits in its t= (unix seconds) */

enum pt_hooksig_scheme {
    PT_HOOKSIG_NONE,
    PT_HOOKSIG_GITHUB,
    PT_HOOKSIG_STRIPE,
    PT_HOOKSIG_HMAC,
};

/* "github", "stripe", "hmac-sha256", "none" (or NULL) -> scheme; -1 when unknown. */
int pt_hooksig_scheme_of(const char *name);

/* Checks `header_value` (the signature header as received, NULL when absent) against the
 * body under the shared secret. Comparisons are constant-time. Returns 0 when it matches,
 * else PT_EINVAL with a short reason for the 401 answer in why (never the secret or the
 * expected signature). `now` is unix seconds (Stripe's tolerance). */
int pt_hooksig_verify(enum pt_hooksig_scheme scheme, const unsigned char *secret, size_t secret_len,
                      const char *header_value, size_t header_len, const char *body,
                      size_t body_len, int64_t now, char *why, size_t whysz);

/* The header each scheme reads by default (lower case): "x-hub-signature-256",
 * "stripe-signature", "x-signature"; NULL for none. */
const char *pt_hooksig_default_header(enum pt_hooksig_scheme scheme);

#endif

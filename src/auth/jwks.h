/* jwks.h - the public keys of an outside identity provider (a JWKS document, RFC 7517) and
 * RS256 / ES256 signature checks with them, through OpenSSL's EVP interface.
 *
 * Only RSA keys of at least 2048 bits and EC keys on P-256 are taken; keys marked for another
 * use than signing, and symmetric ("oct") keys, are skipped, so that a JWKS can never turn
 * into an HMAC secret (the RS256/HS256 algorithm confusion). */
#ifndef PT_JWKS_H
#define PT_JWKS_H

#include <stddef.h>

#include "auth/jwt.h"

typedef struct pt_jwks pt_jwks;

/* Parses a JWKS document (text[0..n)). Returns 0 and *out (caller frees with pt_jwks_free),
 * or PT_EINVAL with a one-line reason in err (also when no usable key is left). *skipped
 * (may be NULL) counts keys ignored as unsupported. */
int pt_jwks_parse(const char *text, size_t n, pt_jwks **out, size_t *skipped, char *err,
                  size_t errsz);
void pt_jwks_free(pt_jwks *set); /* NULL is a no-op */
/* Number of usable keys. */
size_t pt_jwks_count(const pt_jwks *set);
/* Writes a one-line description of key i ("RSA 2048 kid=abc") into out. */
void pt_jwks_describe(const pt_jwks *set, size_t i, char *out, size_t outsz);

/* Verifies the signature of decoded token t (token: its text) with the keys of set: every key
 * of the token's algorithm whose kid equals the token's (keys without a kid, and every key
 * when the token names none, are tried too). A key's type must match the algorithm (RSA for RS256,
 * P-256 for ES256) and its own "alg", when it has one. Returns 0 when a key verifies it,
 * PT_ENOTFOUND when no key fits, PT_EINVAL for a bad signature. Not thread-safe with respect to one
 * set: callers serialise (a worker checks tokens on its loop thread). */
int pt_jwks_verify(const pt_jwks *set, const pt_jwt *t, const char *token);

#endif

/* jwt.h - JSON Web Tokens in compact form: decoding (without trusting anything yet), HS256
 * signing and constant-time HS256 verification. RS256/ES256 signatures are checked with the
 * keys of jwks.h. No allocation survives a call; a decoded token is one flat struct.
 *
 * Decoding is strict, because the decoder sees attacker-controlled input before any
 * signature check: three base64url parts without padding and with canonical trailing bits,
 * JSON objects without duplicate names, registered claims of the right JSON type, no `crit`
 * header. It is the fuzz target tests/fuzz/fuzz_jwt.c. */
#ifndef PT_JWT_H
#define PT_JWT_H

#include <stddef.h>
#include <stdint.h>

#define PT_JWT_MAX 8192    /* longest token accepted, in bytes */
#define PT_JWT_MAX_LIST 16 /* `aud` and `scope` entries kept; more is malformed */
#define PT_JWT_MAX_SIG 512 /* a 4096-bit RSA signature */

enum pt_jwt_alg {
    PT_JWT_ALG_OTHER = 0, /* anything not listed: refused */
    PT_JWT_ALG_NONE,      /* "none": refused, named for the error message */
    PT_JWT_HS256,
    PT_JWT_RS256,
    PT_JWT_ES256,
};

enum { PT_JWT_HAS_EXP = 1, PT_JWT_HAS_NBF = 2, PT_JWT_HAS_IAT = 4, PT_JWT_HAS_SCOPE = 8 };

typedef struct pt_jwt {
    enum pt_jwt_alg alg;
    const char *kid; /* header `kid`, or NULL; every string points into text[] */
    const char *jti, *sub, *iss;
    const char *aud[PT_JWT_MAX_LIST]; /* `aud` as a string or an array of strings */
    size_t naud;
    const char *scope[PT_JWT_MAX_LIST]; /* space-separated string or array of strings */
    size_t nscope;
    int64_t iat, exp, nbf; /* seconds; valid when the PT_JWT_HAS_* bit is set in has */
    unsigned has;
    size_t signed_len; /* bytes of the token the signature covers: "header.payload" */
    unsigned char sig[PT_JWT_MAX_SIG];
    size_t sig_len;
    char text[PT_JWT_MAX]; /* NUL-terminated copies of the string claims */
    size_t text_used;
} pt_jwt;

/* Decodes token[0..n) into *out without verifying it. Returns 0, or PT_EINVAL with *why set to
 * a static, client-safe reason ("malformed token", "token too long", ...). */
int pt_jwt_decode(const char *token, size_t n, pt_jwt *out, const char **why);

/* Verifies the HS256 signature of a decoded token (token: the text it was decoded from) with
 * a PT_KEY_BYTES key, comparing in constant time. Returns 0 when it matches, PT_EINVAL
 * otherwise (also when the token's alg is not HS256). */
int pt_jwt_verify_hs256(const pt_jwt *t, const char *token, const unsigned char *key);

/* What `portico token create` signs. */
typedef struct pt_jwt_claims {
    const char *jti;
    const char *sub;
    int64_t iat;
    int64_t exp;              /* 0: the token does not expire (no claim) */
    const char *const *scope; /* endpoint names; NULL or nscope == 0: no scope claim (all) */
    size_t nscope;
} pt_jwt_claims;

/* Signs claims with HS256 under key and writes the token, NUL-terminated, into out.
 * Returns 0, PT_ETOOBIG (out too small), PT_EINVAL (a claim is not valid UTF-8) or
 * PT_ENOMEM. */
int pt_jwt_sign_hs256(const pt_jwt_claims *c, const unsigned char *key, char *out, size_t outsz);

#endif

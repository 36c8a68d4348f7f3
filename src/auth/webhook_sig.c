/* webhook_sig.c - signatures of incoming webhooks (GitHub, Stripe, generic HMAC-SHA256). */
#include "auth/webhook_sig.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/hex.h"

#define SHA256_LEN 32

int
pt_hooksig_scheme_of(const char *name)
{
    if (name == NULL || strcmp(name, "none") == 0)
        return PT_HOOKSIG_NONE;
    if (strcmp(name, "github") == 0)
        return PT_HOOKSIG_GITHUB;
    if (strcmp(name, "stripe") == 0)
        return PT_HOOKSIG_STRIPE;
    if (strcmp(name, "hmac-sha256") == 0)
        return PT_HOOKSIG_HMAC;
    return -1;
}

const char *
pt_hooksig_default_header(enum pt_hooksig_scheme scheme)
{
    switch (scheme) {
    case PT_HOOKSIG_GITHUB:
        return "x-hub-signature-256";
    case PT_HOOKSIG_STRIPE:
        return "stripe-signature";
    case PT_HOOKSIG_HMAC:
        return "x-signature";
    default:
        return NULL;
    }
}

/* Decodes exactly 64 hex digits into out[32]. Returns 0 or -1. */
static int
unhex32(const char *s, size_t n, unsigned char out[SHA256_LEN])
{
    if (n != 2 * SHA256_LEN)
        return -1;
    for (size_t i = 0; i < SHA256_LEN; i++) {
        int hi = pt_hex_digit((unsigned char)s[2 * i]),
            lo = pt_hex_digit((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* Decodes standard or URL-safe base64 (padding optional) of a 32-byte value. */
static int
unbase64_32(const char *s, size_t n, unsigned char out[SHA256_LEN])
{
    char buf[64];
    unsigned char tmp[48];
    while (n > 0 && s[n - 1] == '=')
        n--;
    if (n != 43)
        return -1;
    for (size_t i = 0; i < n; i++)
        buf[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    buf[43] = '=';
    int len = EVP_DecodeBlock(tmp, (const unsigned char *)buf, 44);
    if (len < SHA256_LEN)
        return -1;
    memcpy(out, tmp, SHA256_LEN);
    return 0;
}

/* HMAC-SHA256 over the concatenation of two parts (prefix may be empty). */
static int
hmac2(const unsigned char *key, size_t keylen, const char *a, size_t alen, const char *b,
      size_t blen, unsigned char out[SHA256_LEN])
{
    crypto_auth_hmacsha256_state st;
    int ok = crypto_auth_hmacsha256_init(&st, key, keylen) == 0 &&
             crypto_auth_hmacsha256_update(&st, (const unsigned char *)a, alen) == 0 &&
             crypto_auth_hmacsha256_update(&st, (const unsigned char *)b, blen) == 0 &&
             crypto_auth_hmacsha256_final(&st, out) == 0;
    sodium_memzero(&st, sizeof(st));
    return ok ? 0 : -1;
}

static int
fail(char *why, size_t whysz, const char *msg)
{
    snprintf(why, whysz, "%s", msg);
    return PT_EINVAL;
}

/* Stripe's timestamp: unix seconds in 1 to PT_STRIPE_TS_DIGITS decimal digits, no sign, no
 * spaces. Anything else (a sign, 20 digits, a letter) is no timestamp: the bound keeps the
 * tolerance arithmetic below far from overflow whatever `now` is. Returns 0 or -1. */
static int
parse_stripe_ts(const char *s, size_t n, int64_t *t)
{
    int64_t v = 0;
    if (n == 0 || n > PT_STRIPE_TS_DIGITS)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *t = v;
    return 0;
}

/* Stripe: "t=1492774577,v1=5257a8...,v1=...,v0=..."; every v1 is tried, the last t counts. */
static int
verify_stripe(const unsigned char *key, size_t keylen, const char *h, size_t hn, const char *body,
              size_t blen, int64_t now, char *why, size_t whysz)
{
    const char *ts = NULL;
    size_t tslen = 0;
    int64_t t = 0;
    unsigned char want[SHA256_LEN], got[SHA256_LEN];
    int have_v1 = 0, match = 0;
    size_t i = 0;

    /* First pass: the timestamp. */
    while (i < hn) {
        size_t j = i;
        while (j < hn && h[j] != ',')
            j++;
        if (j - i >= 2 && h[i] == 't' && h[i + 1] == '=') {
            ts = h + i + 2;
            tslen = j - i - 2;
        }
        i = j + 1;
    }
    if (ts == NULL || parse_stripe_ts(ts, tslen, &t) != 0)
        return fail(why, whysz, "Stripe-Signature has no timestamp");
    /* t is at most 10^PT_STRIPE_TS_DIGITS: t +- tolerance cannot overflow, now may be anything. */
    if (now < t - PT_STRIPE_TOLERANCE || now > t + PT_STRIPE_TOLERANCE)
        return fail(why, whysz, "Stripe-Signature timestamp outside the 5-minute tolerance");
    char prefix[PT_STRIPE_TS_DIGITS + 2];
    int pn = snprintf(prefix, sizeof(prefix), "%.*s.", (int)tslen, ts);
    if (hmac2(key, keylen, prefix, (size_t)pn, body, blen, want) != 0)
        return fail(why, whysz, "cannot compute the signature");
    for (i = 0; i < hn;) {
        size_t j = i;
        while (j < hn && h[j] != ',')
            j++;
        if (j - i > 3 && memcmp(h + i, "v1=", 3) == 0) {
            have_v1 = 1;
            if (unhex32(h + i + 3, j - i - 3, got) == 0 &&
                CRYPTO_memcmp(got, want, SHA256_LEN) == 0)
                match = 1;
        }
        i = j + 1;
    }
    OPENSSL_cleanse(want, sizeof(want));
    if (!have_v1)
        return fail(why, whysz, "Stripe-Signature has no v1 signature");
    return match ? 0 : fail(why, whysz, "signature does not match");
}

int
pt_hooksig_verify(enum pt_hooksig_scheme scheme, const unsigned char *secret, size_t secret_len,
                  const char *header_value, size_t header_len, const char *body, size_t body_len,
                  int64_t now, char *why, size_t whysz)
{
    unsigned char want[SHA256_LEN], got[SHA256_LEN];
    if (scheme == PT_HOOKSIG_NONE)
        return 0;
    if (header_value == NULL)
        return fail(why, whysz, "missing signature header");
    while (header_len > 0 && (header_value[0] == ' ' || header_value[0] == '\t')) {
        header_value++;
        header_len--;
    }
    if (scheme == PT_HOOKSIG_STRIPE)
        return verify_stripe(secret, secret_len, header_value, header_len, body, body_len, now, why,
                             whysz);

    /* GitHub: "sha256=<hex>"; generic: hex or base64, "sha256=" prefix allowed. */
    if (header_len > 7 && strncasecmp(header_value, "sha256=", 7) == 0) {
        header_value += 7;
        header_len -= 7;
    } else if (scheme == PT_HOOKSIG_GITHUB) {
        return fail(why, whysz, "X-Hub-Signature-256 must start with sha256=");
    }
    if (unhex32(header_value, header_len, got) != 0 &&
        (scheme == PT_HOOKSIG_GITHUB || unbase64_32(header_value, header_len, got) != 0))
        return fail(why, whysz, "malformed signature");
    if (hmac2(secret, secret_len, "", 0, body, body_len, want) != 0)
        return fail(why, whysz, "cannot compute the signature");
    int ok = CRYPTO_memcmp(got, want, SHA256_LEN) == 0;
    OPENSSL_cleanse(want, sizeof(want));
    return ok ? 0 : fail(why, whysz, "signature does not match");
}

/* jwks.c - JWKS parsing into OpenSSL keys and RS256 / ES256 verification (jwks.h). */
#include "auth/jwks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <sodium.h>

#include "core/err.h"

#define MAX_KEYS 64
#define MIN_RSA_BITS 2048

typedef struct jwk {
    EVP_PKEY *pkey;
    enum pt_jwt_alg alg; /* PT_JWT_RS256 (RSA) or PT_JWT_ES256 (P-256) */
    char *kid;           /* NULL when the key has none */
} jwk;

struct pt_jwks {
    jwk keys[MAX_KEYS];
    size_t n;
};

void
pt_jwks_free(pt_jwks *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++) {
        EVP_PKEY_free(set->keys[i].pkey);
        free(set->keys[i].kid);
    }
    free(set);
}

size_t
pt_jwks_count(const pt_jwks *set)
{
    return set->n;
}

void
pt_jwks_describe(const pt_jwks *set, size_t i, char *out, size_t outsz)
{
    const jwk *k = &set->keys[i];

    snprintf(out, outsz, "%s %d%s%s", k->alg == PT_JWT_RS256 ? "RSA" : "EC P-256",
             EVP_PKEY_get_bits(k->pkey), k->kid != NULL ? " kid=" : "",
             k->kid != NULL ? k->kid : "");
}

/* Decodes a base64url member of a JWK (padding tolerated) into a new buffer. */
static unsigned char *
member_bytes(json_t *key, const char *name, size_t *len)
{
    json_t *v = json_object_get(key, name);
    const char *s, *end = NULL;
    size_t n;
    unsigned char *buf;

    if (!json_is_string(v))
        return NULL;
    s = json_string_value(v);
    n = json_string_length(v);
    while (n > 0 && s[n - 1] == '=')
        n--;
    buf = malloc(n + 1);
    if (buf == NULL)
        return NULL;
    if (sodium_base642bin(buf, n + 1, s, n, NULL, len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != s + n || *len == 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Builds a public key of type `type` ("RSA", "EC") from params; NULL on failure. */
static EVP_PKEY *
pkey_from(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY_CTX *check = NULL;
    EVP_PKEY *pkey = NULL;

    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        goto done;
    /* Refuse keys that are not what they claim (an EC point off the curve, for one). */
    check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (check == NULL || EVP_PKEY_public_check(check) <= 0) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
done:
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *
rsa_key(json_t *key)
{
    size_t nlen = 0, elen = 0;
    unsigned char *n = member_bytes(key, "n", &nlen), *e = member_bytes(key, "e", &elen);
    BIGNUM *bn = NULL, *be = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;

    if (n == NULL || e == NULL || bld == NULL)
        goto done;
    bn = BN_bin2bn(n, (int)nlen, NULL);
    be = BN_bin2bn(e, (int)elen, NULL);
    if (bn == NULL || be == NULL || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        goto done;
    pkey = pkey_from("RSA", bld);
    if (pkey != NULL && EVP_PKEY_get_bits(pkey) < MIN_RSA_BITS) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
done:
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    return pkey;
}

static EVP_PKEY *
p256_key(json_t *key)
{
    size_t xlen = 0, ylen = 0;
    unsigned char *x = member_bytes(key, "x", &xlen), *y = member_bytes(key, "y", &ylen);
    unsigned char point[65];
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;

    /* RFC 7518 wants both coordinates 32 bytes long, but some encoders (PyJWT 2.6, which
     * Debian ships) drop leading zero bytes, one key in about 64: such a coordinate is the same
     * number, so it is padded back instead of refusing the key. */
    if (x == NULL || y == NULL || bld == NULL || xlen == 0 || xlen > 32 || ylen == 0 || ylen > 32)
        goto done;
    memset(point, 0, sizeof point);
    point[0] = 0x04; /* uncompressed: x || y */
    memcpy(point + 1 + (32 - xlen), x, xlen);
    memcpy(point + 33 + (32 - ylen), y, ylen);
    if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point))
        goto done;
    pkey = pkey_from("EC", bld);
done:
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return pkey;
}

/* Adds one JWK to set when it is usable; returns 1 added, 0 skipped, PT_ENOMEM. */
static int
add_key(pt_jwks *set, json_t *key)
{
    const char *kty = json_string_value(json_object_get(key, "kty"));
    const char *use = json_string_value(json_object_get(key, "use"));
    const char *alg = json_string_value(json_object_get(key, "alg"));
    json_t *kid = json_object_get(key, "kid");
    jwk k = {0};

    if (kty == NULL || (use != NULL && strcmp(use, "sig") != 0) || set->n == MAX_KEYS)
        return 0;
    if (kid != NULL && !json_is_string(kid))
        return 0;
    if (strcmp(kty, "RSA") == 0 && (alg == NULL || strcmp(alg, "RS256") == 0)) {
        k.alg = PT_JWT_RS256;
        k.pkey = rsa_key(key);
    } else if (strcmp(kty, "EC") == 0 && (alg == NULL || strcmp(alg, "ES256") == 0)) {
        const char *crv = json_string_value(json_object_get(key, "crv"));
        if (crv == NULL || strcmp(crv, "P-256") != 0)
            return 0;
        k.alg = PT_JWT_ES256;
        k.pkey = p256_key(key);
    } else {
        return 0; /* "oct" and everything else: never a verification key here */
    }
    if (k.pkey == NULL)
        return 0;
    if (kid != NULL && (k.kid = strdup(json_string_value(kid))) == NULL) {
        EVP_PKEY_free(k.pkey);
        return PT_ENOMEM;
    }
    set->keys[set->n++] = k;
    return 1;
}

int
pt_jwks_parse(const char *text, size_t n, pt_jwks **out, size_t *skipped, char *err, size_t errsz)
{
    json_error_t jerr;
    json_t *doc = NULL, *keys, *key;
    pt_jwks *set = NULL;
    size_t i, skip = 0;
    int rc = PT_EINVAL;

    *out = NULL;
    doc = json_loadb(text, n, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        snprintf(err, errsz, "not valid JSON (line %d: %s)", jerr.line, jerr.text);
        goto done;
    }
    keys = json_object_get(doc, "keys");
    if (!json_is_array(keys)) {
        snprintf(err, errsz, "not a JWKS document (no \"keys\" array)");
        goto done;
    }
    set = calloc(1, sizeof *set);
    if (set == NULL) {
        rc = PT_ENOMEM;
        snprintf(err, errsz, "out of memory");
        goto done;
    }
    json_array_foreach(keys, i, key)
    {
        int added = json_is_object(key) ? add_key(set, key) : 0;
        if (added < 0) {
            rc = added;
            snprintf(err, errsz, "out of memory");
            goto done;
        }
        skip += added == 0;
    }
    if (set->n == 0) {
        snprintf(err, errsz,
                 "no usable key (RSA of at least %d bits for RS256, or EC P-256 for ES256)",
                 MIN_RSA_BITS);
        goto done;
    }
    if (skipped != NULL)
        *skipped = skip;
    *out = set;
    set = NULL;
    rc = 0;
done:
    pt_jwks_free(set);
    json_decref(doc);
    return rc;
}

/* One key, one signature: 1 verified, 0 not. */
static int
verify_one(const jwk *k, const pt_jwt *t, const char *token)
{
    unsigned char der[80], *p = der;
    const unsigned char *sig = t->sig;
    size_t siglen = t->sig_len;
    EVP_MD_CTX *md = NULL;
    int ok = 0;

    if (k->alg == PT_JWT_ES256) {
        /* JWS carries r || s (RFC 7518 3.4); OpenSSL wants a DER ECDSA-Sig-Value. */
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(t->sig, 32, NULL), *s = BN_bin2bn(t->sig + 32, 32, NULL);
        int len;
        if (t->sig_len != 64 || es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s)) {
            BN_free(r);
            BN_free(s);
            ECDSA_SIG_free(es);
            return 0;
        }
        len = i2d_ECDSA_SIG(es, NULL);
        if (len <= 0 || (size_t)len > sizeof der || i2d_ECDSA_SIG(es, &p) != len) {
            ECDSA_SIG_free(es);
            return 0;
        }
        ECDSA_SIG_free(es);
        sig = der;
        siglen = (size_t)len;
    }
    md = EVP_MD_CTX_new();
    if (md != NULL && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
        EVP_DigestVerify(md, sig, siglen, (const unsigned char *)token, t->signed_len) == 1)
        ok = 1;
    EVP_MD_CTX_free(md);
    return ok;
}

int
pt_jwks_verify(const pt_jwks *set, const pt_jwt *t, const char *token)
{
    int tried = 0;

    if (t->alg != PT_JWT_RS256 && t->alg != PT_JWT_ES256)
        return PT_ENOTFOUND;
    for (size_t i = 0; i < set->n; i++) {
        const jwk *k = &set->keys[i];
        if (k->alg != t->alg)
            continue;
        if (t->kid != NULL && k->kid != NULL && strcmp(k->kid, t->kid) != 0)
            continue;
        tried = 1;
        if (verify_one(k, t, token))
            return 0;
    }
    return tried ? PT_EINVAL : PT_ENOTFOUND;
}

/* jwt.c - compact JWT decoding, HS256 signing and verification (jwt.h). */
#include "auth/jwt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "auth/keys.h"
#include "core/err.h"

#define B64URL sodium_base64_VARIANT_URLSAFE_NO_PADDING

static const char malformed[] = "malformed token";

/* Strict base64url (no padding, canonical last bits): src[0..n) into dst (cap bytes).
 * Returns 0 and *len, or PT_EINVAL. */
static int
b64url_decode(const char *src, size_t n, unsigned char *dst, size_t cap, size_t *len)
{
    const char *end = NULL;

    if (sodium_base642bin(dst, cap, src, n, NULL, len, &end, B64URL) != 0 || end != src + n)
        return PT_EINVAL;
    return 0;
}

/* Copies a JSON string into t->text; returns the copy or NULL when it does not fit. */
static const char *
keep(pt_jwt *t, const json_t *s)
{
    size_t n = json_string_length(s);
    char *p;

    if (n + 1 > sizeof t->text - t->text_used)
        return NULL;
    p = t->text + t->text_used;
    memcpy(p, json_string_value(s), n);
    p[n] = '\0';
    t->text_used += n + 1;
    return p;
}

/* A NumericDate: a JSON integer or a finite real, as whole seconds. 0 or PT_EINVAL. */
static int
numeric_date(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || d < -9.2e18 || d > 9.2e18)
            return PT_EINVAL;
        *out = (int64_t)floor(d);
        return 0;
    }
    return PT_EINVAL;
}

/* An optional string claim; absent leaves *out NULL. 0 or PT_EINVAL. */
static int
string_claim(pt_jwt *t, json_t *obj, const char *name, const char **out)
{
    json_t *v = json_object_get(obj, name);

    *out = NULL;
    if (v == NULL)
        return 0;
    if (!json_is_string(v) || (*out = keep(t, v)) == NULL)
        return PT_EINVAL;
    return 0;
}

/* `aud` (RFC 7519 4.1.3): a string or an array of strings. 0 or PT_EINVAL. */
static int
aud_claim(pt_jwt *t, json_t *obj)
{
    json_t *v = json_object_get(obj, "aud"), *e;
    size_t i;

    if (v == NULL)
        return 0;
    if (json_is_string(v)) {
        if ((t->aud[0] = keep(t, v)) == NULL)
            return PT_EINVAL;
        t->naud = 1;
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) > PT_JWT_MAX_LIST)
        return PT_EINVAL;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e) || (t->aud[t->naud++] = keep(t, e)) == NULL)
            return PT_EINVAL;
    }
    return 0;
}

/* `scope`: a space-separated string (RFC 8693) or an array of strings. 0 or PT_EINVAL. */
static int
scope_claim(pt_jwt *t, json_t *obj)
{
    json_t *v = json_object_get(obj, "scope"), *e;
    size_t i;

    if (v == NULL)
        return 0;
    t->has |= PT_JWT_HAS_SCOPE;
    if (json_is_array(v)) {
        if (json_array_size(v) > PT_JWT_MAX_LIST)
            return PT_EINVAL;
        json_array_foreach(v, i, e)
        {
            if (!json_is_string(e) || (t->scope[t->nscope++] = keep(t, e)) == NULL)
                return PT_EINVAL;
        }
        return 0;
    }
    if (!json_is_string(v))
        return PT_EINVAL;
    char *s = (char *)keep(t, v);
    if (s == NULL)
        return PT_EINVAL;
    /* Split in place at spaces. */
    while (*s != '\0') {
        while (*s == ' ')
            *s++ = '\0';
        if (*s == '\0')
            break;
        if (t->nscope == PT_JWT_MAX_LIST)
            return PT_EINVAL;
        t->scope[t->nscope++] = s;
        while (*s != '\0' && *s != ' ')
            s++;
    }
    return 0;
}

static enum pt_jwt_alg
alg_of(const char *s)
{
    if (strcmp(s, "HS256") == 0)
        return PT_JWT_HS256;
    if (strcmp(s, "RS256") == 0)
        return PT_JWT_RS256;
    if (strcmp(s, "ES256") == 0)
        return PT_JWT_ES256;
    if (strcasecmp(s, "none") == 0)
        return PT_JWT_ALG_NONE;
    return PT_JWT_ALG_OTHER;
}

/* Parses a base64url JSON object part; NULL when malformed. Caller frees with json_decref. */
static json_t *
json_part(const char *src, size_t n, unsigned char *scratch, size_t cap)
{
    size_t len = 0;

    if (n == 0 || b64url_decode(src, n, scratch, cap, &len) != 0)
        return NULL;
    json_t *v = json_loadb((const char *)scratch, len, JSON_REJECT_DUPLICATES, NULL);
    if (v != NULL && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

int
pt_jwt_decode(const char *token, size_t n, pt_jwt *t, const char **why)
{
    unsigned char scratch[PT_JWT_MAX];
    json_t *header = NULL, *payload = NULL, *v;
    const char *dot1, *dot2;
    int rc = PT_EINVAL;

    *why = malformed;
    t->alg = PT_JWT_ALG_OTHER;
    t->kid = t->jti = t->sub = t->iss = NULL;
    t->naud = t->nscope = 0;
    t->iat = t->exp = t->nbf = 0;
    t->has = 0;
    t->signed_len = t->sig_len = t->text_used = 0;
    if (n > PT_JWT_MAX) {
        *why = "token too long";
        return PT_EINVAL;
    }
    dot1 = memchr(token, '.', n);
    dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', n - (size_t)(dot1 + 1 - token)) : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', n - (size_t)(dot2 + 1 - token)) != NULL)
        return PT_EINVAL; /* not three parts (JWE has five: not supported) */
    t->signed_len = (size_t)(dot2 - token);

    header = json_part(token, (size_t)(dot1 - token), scratch, sizeof scratch);
    if (header == NULL)
        goto done;
    v = json_object_get(header, "alg");
    if (!json_is_string(v))
        goto done;
    t->alg = alg_of(json_string_value(v));
    if (json_object_get(header, "crit") != NULL) {
        *why = "unsupported critical header";
        goto done;
    }
    if (string_claim(t, header, "kid", &t->kid) != 0)
        goto done;
    v = json_object_get(header, "typ");
    if (v != NULL && !json_is_string(v))
        goto done;

    payload = json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1), scratch, sizeof scratch);
    if (payload == NULL)
        goto done;
    if (string_claim(t, payload, "jti", &t->jti) != 0 ||
        string_claim(t, payload, "sub", &t->sub) != 0 ||
        string_claim(t, payload, "iss", &t->iss) != 0 || aud_claim(t, payload) != 0 ||
        scope_claim(t, payload) != 0)
        goto done;
    if ((v = json_object_get(payload, "exp")) != NULL) {
        if (numeric_date(v, &t->exp) != 0)
            goto done;
        t->has |= PT_JWT_HAS_EXP;
    }
    if ((v = json_object_get(payload, "nbf")) != NULL) {
        if (numeric_date(v, &t->nbf) != 0)
            goto done;
        t->has |= PT_JWT_HAS_NBF;
    }
    if ((v = json_object_get(payload, "iat")) != NULL) {
        if (numeric_date(v, &t->iat) != 0)
            goto done;
        t->has |= PT_JWT_HAS_IAT;
    }
    if (b64url_decode(dot2 + 1, n - (size_t)(dot2 + 1 - token), t->sig, sizeof t->sig,
                      &t->sig_len) != 0)
        goto done;
    rc = 0;
    *why = NULL;
done:
    json_decref(header);
    json_decref(payload);
    return rc;
}

int
pt_jwt_verify_hs256(const pt_jwt *t, const char *token, const unsigned char *key)
{
    if (t->alg != PT_JWT_HS256 || t->sig_len != crypto_auth_hmacsha256_BYTES)
        return PT_EINVAL;
    /* crypto_auth_hmacsha256_verify compares in constant time. */
    if (crypto_auth_hmacsha256_verify(t->sig, (const unsigned char *)token, t->signed_len, key) !=
        0)
        return PT_EINVAL;
    return 0;
}

/* Appends the base64url form of p[0..n) at out + *off (cap bytes in all). */
static int
put_b64(char *out, size_t cap, size_t *off, const void *p, size_t n)
{
    size_t need = sodium_base64_ENCODED_LEN(n, B64URL);

    if (need > cap - *off)
        return PT_ETOOBIG;
    sodium_bin2base64(out + *off, cap - *off, p, n, B64URL);
    *off += need - 1; /* need counts the NUL */
    return 0;
}

int
pt_jwt_sign_hs256(const pt_jwt_claims *c, const unsigned char *key, char *out, size_t outsz)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    json_t *payload = json_object();
    char *text = NULL, *scope = NULL;
    size_t off = 0, slen = 0;
    int rc = PT_ENOMEM;

    if (payload == NULL)
        return PT_ENOMEM;
    if (c->scope != NULL && c->nscope > 0) {
        for (size_t i = 0; i < c->nscope; i++)
            slen += strlen(c->scope[i]) + 1;
        scope = malloc(slen);
        if (scope == NULL)
            goto done;
        scope[0] = '\0';
        for (size_t i = 0; i < c->nscope; i++) {
            if (i > 0)
                strcat(scope, " ");
            strcat(scope, c->scope[i]);
        }
    }
    rc = PT_EINVAL;
    if (json_object_set_new(payload, "jti", json_string(c->jti)) != 0 ||
        json_object_set_new(payload, "sub", json_string(c->sub)) != 0 ||
        json_object_set_new(payload, "iat", json_integer(c->iat)) != 0 ||
        (c->exp != 0 && json_object_set_new(payload, "exp", json_integer(c->exp)) != 0) ||
        (scope != NULL && json_object_set_new(payload, "scope", json_string(scope)) != 0))
        goto done;
    text = json_dumps(payload, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text == NULL) {
        rc = PT_ENOMEM;
        goto done;
    }
    if ((rc = put_b64(out, outsz, &off, header, sizeof header - 1)) != 0)
        goto done;
    if (off + 1 >= outsz) {
        rc = PT_ETOOBIG;
        goto done;
    }
    out[off++] = '.';
    if ((rc = put_b64(out, outsz, &off, text, strlen(text))) != 0)
        goto done;
    crypto_auth_hmacsha256(mac, (const unsigned char *)out, off, key);
    if (off + 1 >= outsz) {
        rc = PT_ETOOBIG;
        goto done;
    }
    out[off++] = '.';
    rc = put_b64(out, outsz, &off, mac, sizeof mac);
done:
    sodium_memzero(mac, sizeof mac);
    free(text);
    free(scope);
    json_decref(payload);
    return rc;
}

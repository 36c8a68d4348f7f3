/* auth.c - the per-request authorization check (auth.h) and the tables it reads.
 *
 * Design notes
 * ------------
 * A pt_auth is immutable after pt_auth_load except for the last-used times, which only the
 * worker's loop thread writes. Lookups are O(1): tokens by jti in an open-addressing table,
 * API keys by the first 8 bytes of their keyed hash (pseudo-random to anyone without the
 * install's apikey.key, so the probe sequence reveals nothing about stored keys).
 *
 * Order of checks for a token, so that nothing is learnt from an unauthenticated token:
 *   1. decode (strict; jwt.c), refuse every alg but HS256, RS256, ES256;
 *   2. verify the signature: HS256 with the install key, constant-time compare (jwt.c);
 *      RS256/ES256 only with the JWKS of a trusted issuer named by `iss` (jwks.c). An HS256
 *      token is never checked against a JWKS and a JWKS never holds HMAC keys, so neither
 *      algorithm confusion nor `alg: none` has a way in;
 *   3. only then the claims: the token must be on file (jti) and not revoked, not expired,
 *      already valid (nbf), in scope; outside tokens must carry exp and the audience asked;
 *   4. the rate limit, last: refused requests do not use up the caller's allowance.
 * API keys: shape check (public facts only), keyed hash, lookup, constant-time comparison of
 * the whole hash, revocation, scope, rate limit.
 */
#include "auth/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "auth/apikey.h"
#include "auth/jwks.h"
#include "auth/jwt.h"
#include "auth/keys.h"
#include "core/err.h"
#include "core/log.h"

/* A token or an API key as the check needs it. */
typedef struct entry {
    char *id;   /* jti, or the API key id in decimal */
    char *name; /* token name (its sub) or API key name */
    int64_t expires;
    int revoked;
    char **scope; /* endpoint names; NULL: every endpoint */
    size_t nscope;
    pt_rate rate;
    uint64_t rl_key;
    int64_t used, flushed; /* last use seen here, and last one written to the store */
    unsigned char hash[PT_APIKEY_HASH_BYTES]; /* API keys */
} entry;

typedef struct issuer {
    char *iss;
    char *aud; /* NULL: any audience */
    pt_jwks *jwks;
} issuer;

/* Open addressing: slots hold index + 1 of an entry, 0 when free. */
typedef struct index {
    uint32_t *slots;
    size_t mask;
} index_t;

struct pt_auth {
    unsigned char *jwt_key;    /* NULL when it cannot be read (key_err says why) */
    unsigned char *apikey_key; /* likewise */
    char key_err[512];
    int key_err_logged;
    entry *tokens;
    size_t ntokens;
    index_t token_index;
    entry *keys;
    size_t nkeys;
    index_t key_index;
    issuer *issuers;
    size_t nissuers;
    int64_t next_flush;
};

enum pt_auth_mode
pt_auth_mode_of(const char *s)
{
    if (strcmp(s, "public") == 0)
        return PT_AUTH_PUBLIC;
    if (strcmp(s, "apikey") == 0)
        return PT_AUTH_APIKEY;
    return PT_AUTH_JWT;
}

/* ---- Loading ---------------------------------------------------------------------------- */

static uint64_t
fnv1a(const char *s)
{
    uint64_t h = 14695981039346656037ULL;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static uint64_t
hash_prefix(const unsigned char *hash)
{
    uint64_t h;

    memcpy(&h, hash, sizeof h);
    return h;
}

static int
index_init(index_t *ix, size_t n)
{
    size_t cap = 16;

    while (cap < n * 2)
        cap *= 2;
    ix->slots = calloc(cap, sizeof *ix->slots);
    ix->mask = cap - 1;
    return ix->slots != NULL ? 0 : PT_ENOMEM;
}

static void
index_put(index_t *ix, uint64_t h, size_t i)
{
    size_t s = (size_t)h & ix->mask;

    while (ix->slots[s] != 0)
        s = (s + 1) & ix->mask;
    ix->slots[s] = (uint32_t)(i + 1);
}

static void
entry_clear(entry *e)
{
    free(e->id);
    free(e->name);
    for (size_t i = 0; i < e->nscope; i++)
        free(e->scope[i]);
    free(e->scope);
}

/* Splits a stored scope ("a b c") into e->scope; NULL or "" leaves every endpoint. */
static int
entry_scope(entry *e, const char *scope)
{
    const char *p = scope;

    if (scope == NULL || scope[0] == '\0')
        return 0;
    e->scope = calloc(strlen(scope) / 2 + 1, sizeof *e->scope);
    if (e->scope == NULL)
        return PT_ENOMEM;
    while (*p != '\0') {
        const char *end;
        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        for (end = p; *end != '\0' && *end != ' '; end++)
            ;
        e->scope[e->nscope] = strndup(p, (size_t)(end - p));
        if (e->scope[e->nscope] == NULL)
            return PT_ENOMEM;
        e->nscope++;
        p = end;
    }
    return 0;
}

/* Fills the parts of an entry that tokens and keys share. */
static int
entry_fill(entry *e, const char *kind, const char *id, const char *name, const char *scope,
           const char *rate, int64_t revoked, int64_t last_used)
{
    e->id = strdup(id);
    e->name = strdup(name);
    if (e->id == NULL || e->name == NULL || entry_scope(e, scope) != 0)
        return PT_ENOMEM;
    e->revoked = revoked != 0;
    if (rate != NULL && pt_ratelimit_parse(rate, &e->rate) != 0)
        pt_log_warn("%s %s: ignoring malformed rate '%s'", kind, name, rate);
    e->rl_key = pt_ratelimit_key(kind, id);
    e->used = e->flushed = last_used;
    return 0;
}

static void
load_keys(pt_auth *a, const char *datadir)
{
    char err[256];
    int rc = pt_keys_load(datadir, PT_KEY_JWT, &a->jwt_key, err, sizeof err);

    if (rc != 0)
        snprintf(a->key_err, sizeof a->key_err, "%s", err);
    rc = pt_keys_load(datadir, PT_KEY_APIKEY, &a->apikey_key, err, sizeof err);
    if (rc != 0 && a->key_err[0] == '\0')
        snprintf(a->key_err, sizeof a->key_err, "%s", err);
}

int
pt_auth_load(pt_store *st, const char *datadir, pt_auth **out)
{
    pt_token *tokens = NULL;
    pt_apikey *keys = NULL;
    pt_issuer *iss = NULL;
    size_t ntokens = 0, nkeys = 0, niss = 0;
    pt_auth *a = NULL;
    int rc;

    *out = NULL;
    if ((rc = pt_store_token_list(st, &tokens, &ntokens)) != 0 ||
        (rc = pt_store_apikey_list(st, &keys, &nkeys)) != 0 ||
        (rc = pt_store_issuer_list(st, &iss, &niss)) != 0)
        goto done;
    rc = PT_ENOMEM;
    a = calloc(1, sizeof *a);
    if (a == NULL)
        goto done;
    load_keys(a, datadir);
    a->tokens = calloc(ntokens + 1, sizeof *a->tokens);
    a->keys = calloc(nkeys + 1, sizeof *a->keys);
    a->issuers = calloc(niss + 1, sizeof *a->issuers);
    if (a->tokens == NULL || a->keys == NULL || a->issuers == NULL ||
        index_init(&a->token_index, ntokens) != 0 || index_init(&a->key_index, nkeys) != 0)
        goto done;
    for (size_t i = 0; i < ntokens; i++) {
        entry *e = &a->tokens[a->ntokens++];
        if (entry_fill(e, "token", tokens[i].id, tokens[i].name, tokens[i].scope, tokens[i].rate,
                       tokens[i].revoked, tokens[i].last_used) != 0)
            goto done;
        e->expires = tokens[i].expires;
        index_put(&a->token_index, fnv1a(e->id), i);
    }
    for (size_t i = 0; i < nkeys; i++) {
        entry *e = &a->keys[a->nkeys++];
        char id[24];
        snprintf(id, sizeof id, "%lld", (long long)keys[i].id);
        if (entry_fill(e, "apikey", id, keys[i].name, keys[i].scope, keys[i].rate, keys[i].revoked,
                       keys[i].last_used) != 0)
            goto done;
        memcpy(e->hash, keys[i].hash, sizeof e->hash);
        index_put(&a->key_index, hash_prefix(e->hash), i);
    }
    for (size_t i = 0; i < niss; i++) {
        issuer *is = &a->issuers[a->nissuers];
        char err[256];
        if (pt_jwks_parse(iss[i].jwks, strlen(iss[i].jwks), &is->jwks, NULL, err, sizeof err) !=
            0) {
            pt_log_warn("trusted issuer %s: its JWKS is unusable (%s); its tokens are refused",
                        iss[i].issuer, err);
            continue;
        }
        is->iss = strdup(iss[i].issuer);
        is->aud = iss[i].audience != NULL ? strdup(iss[i].audience) : NULL;
        a->nissuers++;
        if (is->iss == NULL || (iss[i].audience != NULL && is->aud == NULL))
            goto done;
    }
    *out = a;
    a = NULL;
    rc = 0;
done:
    pt_auth_free(a);
    pt_store_tokens_free(tokens, ntokens);
    pt_store_apikeys_free(keys, nkeys);
    pt_store_issuers_free(iss, niss);
    return rc;
}

void
pt_auth_free(pt_auth *a)
{
    if (a == NULL)
        return;
    pt_keys_free(a->jwt_key);
    pt_keys_free(a->apikey_key);
    for (size_t i = 0; i < a->ntokens; i++)
        entry_clear(&a->tokens[i]);
    for (size_t i = 0; i < a->nkeys; i++)
        entry_clear(&a->keys[i]);
    for (size_t i = 0; i < a->nissuers; i++) {
        free(a->issuers[i].iss);
        free(a->issuers[i].aud);
        pt_jwks_free(a->issuers[i].jwks);
    }
    free(a->tokens);
    free(a->keys);
    free(a->issuers);
    free(a->token_index.slots);
    free(a->key_index.slots);
    free(a);
}

/* ---- Lookups ---------------------------------------------------------------------------- */

static entry *
find_token(pt_auth *a, const char *jti)
{
    size_t s = (size_t)fnv1a(jti) & a->token_index.mask;
    uint32_t v;

    while ((v = a->token_index.slots[s]) != 0) {
        if (strcmp(a->tokens[v - 1].id, jti) == 0)
            return &a->tokens[v - 1];
        s = (s + 1) & a->token_index.mask;
    }
    return NULL;
}

static entry *
find_key(pt_auth *a, const unsigned char *hash)
{
    size_t s = (size_t)hash_prefix(hash) & a->key_index.mask;
    uint32_t v;

    while ((v = a->key_index.slots[s]) != 0) {
        entry *e = &a->keys[v - 1];
        if (sodium_memcmp(e->hash, hash, PT_APIKEY_HASH_BYTES) == 0)
            return e;
        s = (s + 1) & a->key_index.mask;
    }
    return NULL;
}

static const issuer *
find_issuer(const pt_auth *a, const char *iss)
{
    for (size_t i = 0; i < a->nissuers; i++)
        if (strcmp(a->issuers[i].iss, iss) == 0)
            return &a->issuers[i];
    return NULL;
}

static int
in_list(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0)
            return 1;
    return 0;
}

/* ---- Answers ---------------------------------------------------------------------------- */

/* 401 with a Bearer challenge; code is an RFC 6750 error code or NULL (no credentials). */
static int
deny(pt_auth_result *res, enum pt_auth_mode mode, const char *code, const char *message)
{
    const char *scheme = mode == PT_AUTH_APIKEY ? "ApiKey" : "Bearer";

    res->status = 401;
    res->error = message;
    res->reason = code == NULL                              ? "missing"
                  : strcmp(code, "invalid_request") == 0    ? "malformed"
                  : strcmp(code, "insufficient_scope") == 0 ? "scope"
                  : strcmp(message, "token expired") == 0   ? "expired"
                                                            : "invalid";
    res->header = "www-authenticate";
    if (code == NULL)
        snprintf(res->header_value, sizeof res->header_value, "%s realm=\"portico\"", scheme);
    else
        snprintf(res->header_value, sizeof res->header_value,
                 "%s realm=\"portico\", error=\"%s\", error_description=\"%s\"", scheme, code,
                 message);
    return res->status;
}

static int
unavailable(pt_auth *a, pt_auth_result *res)
{
    if (!a->key_err_logged) {
        a->key_err_logged = 1;
        pt_log_error("cannot authorize requests: %s", a->key_err);
    }
    res->status = 503;
    res->error = "authentication is not available (the server's keys cannot be read)";
    res->reason = "unavailable";
    return res->status;
}

/* Counts the request against e's rate; 429 with Retry-After when over it. */
static int
limit(pt_ratelimit *rl, const entry *e, const pt_auth_request *rq, pt_auth_result *res)
{
    uint64_t wait_ns = 0;

    if (rl == NULL || e->rate.count == 0 ||
        pt_ratelimit_hit(rl, e->rl_key, &e->rate, rq->mono_ns, &wait_ns) == 0)
        return 0;
    res->status = 429;
    res->error = "rate limit exceeded";
    res->reason = "rate_limited";
    res->header = "retry-after";
    snprintf(res->header_value, sizeof res->header_value, "%llu",
             (unsigned long long)((wait_ns + 999999999ULL) / 1000000000ULL));
    return res->status;
}

static int
allow(pt_auth_result *res, const char *type, const char *id, const char *name,
      const char *issuer_name)
{
    res->status = 0;
    res->caller.type = type;
    res->caller.id = id;
    res->caller.name = name;
    res->caller.issuer = issuer_name;
    return 0;
}

/* Copies s into res->buf at *used; returns the copy, or NULL when s is NULL or does not fit
 * (the caller refuses such a token rather than name a truncated caller). */
static const char *
keep(pt_auth_result *res, size_t *used, const char *s)
{
    size_t n;

    if (s == NULL)
        return NULL;
    n = strlen(s);
    if (n + 1 > sizeof res->buf - *used)
        return NULL;
    char *p = res->buf + *used;
    memcpy(p, s, n + 1);
    *used += n + 1;
    return p;
}

/* ---- Checks ----------------------------------------------------------------------------- */

/* Time claims common to both kinds of token. */
static const char *
time_claims(const pt_jwt *t, int64_t now)
{
    if ((t->has & PT_JWT_HAS_EXP) && now >= t->exp)
        return "token expired";
    if ((t->has & PT_JWT_HAS_NBF) && now < t->nbf)
        return "token not yet valid";
    return NULL;
}

static int
check_own_token(pt_auth *a, pt_ratelimit *rl, const pt_auth_request *rq, const pt_jwt *t,
                const char *token, pt_auth_result *res)
{
    const char *why;
    entry *e;

    if (a->jwt_key == NULL)
        return unavailable(a, res);
    if (pt_jwt_verify_hs256(t, token, a->jwt_key) != 0)
        return deny(res, rq->mode, "invalid_token", "bad signature");
    /* Authentic from here on: our key signed it. */
    if (t->jti == NULL || (e = find_token(a, t->jti)) == NULL)
        return deny(res, rq->mode, "invalid_token", "unknown token");
    if (e->revoked)
        return deny(res, rq->mode, "invalid_token", "token revoked");
    if ((why = time_claims(t, rq->now)) != NULL)
        return deny(res, rq->mode, "invalid_token", why);
    if (e->expires != 0 && rq->now >= e->expires)
        return deny(res, rq->mode, "invalid_token", "token expired");
    if ((e->scope != NULL && !in_list((const char *const *)e->scope, e->nscope, rq->endpoint)) ||
        ((t->has & PT_JWT_HAS_SCOPE) && !in_list(t->scope, t->nscope, rq->endpoint)))
        return deny(res, rq->mode, "insufficient_scope", "endpoint not in token scope");
    if (limit(rl, e, rq, res) != 0)
        return res->status;
    e->used = rq->now;
    return allow(res, "jwt", e->id, e->name, NULL);
}

static int
check_outside_token(pt_auth *a, const pt_auth_request *rq, const pt_jwt *t, const char *token,
                    pt_auth_result *res)
{
    const issuer *is = t->iss != NULL ? find_issuer(a, t->iss) : NULL;
    const char *why, *iss, *sub, *jti;
    size_t used = 0;
    int rc;

    if (is == NULL)
        return deny(res, rq->mode, "invalid_token", "token issuer is not trusted");
    rc = pt_jwks_verify(is->jwks, t, token);
    if (rc == PT_ENOTFOUND)
        return deny(res, rq->mode, "invalid_token", "no trusted key matches the token");
    if (rc != 0)
        return deny(res, rq->mode, "invalid_token", "bad signature");
    if (!(t->has & PT_JWT_HAS_EXP))
        return deny(res, rq->mode, "invalid_token", "token has no expiry");
    if ((why = time_claims(t, rq->now)) != NULL)
        return deny(res, rq->mode, "invalid_token", why);
    if (is->aud != NULL && !in_list(t->aud, t->naud, is->aud))
        return deny(res, rq->mode, "invalid_token", "token is not for this audience");
    iss = keep(res, &used, t->iss);
    sub = keep(res, &used, t->sub);
    jti = keep(res, &used, t->jti);
    if (iss == NULL || (t->sub != NULL && sub == NULL) || (t->jti != NULL && jti == NULL))
        return deny(res, rq->mode, "invalid_token", "token claims too long");
    return allow(res, "jwt", jti, sub, iss);
}

/* Splits "Scheme credentials"; returns 1 with *cred and *cn set when the scheme is a or b. */
static int
credentials(const char *h, size_t n, const char *a, const char *b, const char **cred, size_t *cn)
{
    size_t i = 0, s;

    while (i < n && h[i] != ' ' && h[i] != '\t')
        i++;
    if (!((strlen(a) == i && strncasecmp(h, a, i) == 0) ||
          (b != NULL && strlen(b) == i && strncasecmp(h, b, i) == 0)))
        return 0;
    s = i;
    while (s < n && (h[s] == ' ' || h[s] == '\t'))
        s++;
    while (n > s && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    *cred = h + s;
    *cn = n - s;
    return 1;
}

static int
check_jwt(pt_auth *a, pt_ratelimit *rl, const pt_auth_request *rq, pt_auth_result *res)
{
    char token[PT_JWT_MAX + 1];
    const char *cred = NULL, *why = NULL;
    size_t cn = 0;
    pt_jwt t;

    if (rq->nauthorization == 0)
        return deny(res, rq->mode, NULL, "missing Authorization header (JWT or Bearer token)");
    if (rq->nauthorization > 1)
        return deny(res, rq->mode, "invalid_request", "more than one Authorization header");
    if (!credentials(rq->authorization, rq->authorization_len, "Bearer", "JWT", &cred, &cn))
        return deny(res, rq->mode, "invalid_request",
                    "unsupported authorization scheme (use Bearer or JWT)");
    if (cn == 0)
        return deny(res, rq->mode, "invalid_request", "empty token");
    if (cn > PT_JWT_MAX)
        return deny(res, rq->mode, "invalid_token", "token too long");
    /* A NUL-terminated copy: the signature covers a prefix of it. */
    memcpy(token, cred, cn);
    token[cn] = '\0';
    if (pt_jwt_decode(token, cn, &t, &why) != 0)
        return deny(res, rq->mode, "invalid_token", why);
    switch (t.alg) {
    case PT_JWT_HS256:
        return check_own_token(a, rl, rq, &t, token, res);
    case PT_JWT_RS256:
    case PT_JWT_ES256:
        return check_outside_token(a, rq, &t, token, res);
    case PT_JWT_ALG_NONE:
        return deny(res, rq->mode, "invalid_token", "unsigned tokens (alg none) are refused");
    case PT_JWT_ALG_OTHER:
        break;
    }
    return deny(res, rq->mode, "invalid_token",
                "unsupported algorithm (HS256, or RS256/ES256 from a trusted issuer)");
}

static int
check_apikey(pt_auth *a, pt_ratelimit *rl, const pt_auth_request *rq, pt_auth_result *res)
{
    unsigned char hash[PT_APIKEY_HASH_BYTES];
    const char *key = NULL;
    size_t kn = 0;
    entry *e;

    if (rq->napi_key > 1)
        return deny(res, rq->mode, "invalid_request", "more than one X-Api-Key header");
    if (rq->napi_key == 1) {
        key = rq->api_key;
        kn = rq->api_key_len;
        while (kn > 0 && (key[kn - 1] == ' ' || key[kn - 1] == '\t'))
            kn--;
        while (kn > 0 && (key[0] == ' ' || key[0] == '\t')) {
            key++;
            kn--;
        }
    } else if (rq->nauthorization == 1) {
        if (!credentials(rq->authorization, rq->authorization_len, "Bearer", NULL, &key, &kn))
            return deny(res, rq->mode, "invalid_request",
                        "unsupported authorization scheme (send X-Api-Key or Bearer)");
    } else if (rq->nauthorization > 1) {
        return deny(res, rq->mode, "invalid_request", "more than one Authorization header");
    } else {
        return deny(res, rq->mode, NULL,
                    "missing API key (X-Api-Key header or Authorization: Bearer)");
    }
    if (a->apikey_key == NULL)
        return unavailable(a, res);
    if (!pt_apikey_well_formed(key, kn))
        return deny(res, rq->mode, "invalid_key", "invalid API key");
    pt_apikey_hash(a->apikey_key, key, kn, hash);
    e = find_key(a, hash);
    sodium_memzero(hash, sizeof hash);
    if (e == NULL)
        return deny(res, rq->mode, "invalid_key", "invalid API key");
    if (e->revoked)
        return deny(res, rq->mode, "invalid_key", "API key revoked");
    if (e->scope != NULL && !in_list((const char *const *)e->scope, e->nscope, rq->endpoint))
        return deny(res, rq->mode, "insufficient_scope", "endpoint not in API key scope");
    if (limit(rl, e, rq, res) != 0)
        return res->status;
    e->used = rq->now;
    return allow(res, "apikey", e->id, e->name, NULL);
}

int
pt_auth_check(pt_auth *a, pt_ratelimit *rl, const pt_auth_request *rq, pt_auth_result *res)
{
    res->status = 0;
    res->error = NULL;
    res->header = NULL;
    res->header_value[0] = '\0';
    memset(&res->caller, 0, sizeof res->caller);
    switch (rq->mode) {
    case PT_AUTH_PUBLIC:
        return 0;
    case PT_AUTH_APIKEY:
        return check_apikey(a, rl, rq, res);
    case PT_AUTH_JWT:
        break;
    }
    return check_jwt(a, rl, rq, res);
}

/* ---- Last used -------------------------------------------------------------------------- */

/* Collects the entries used since their last flush into uses (capacity n). */
static size_t
collect(entry *list, size_t n, pt_store_use *uses)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        if (list[i].used > list[i].flushed) {
            uses[k].id = list[i].id;
            uses[k].when = list[i].used;
            k++;
        }
    }
    return k;
}

int
pt_auth_flush_used(pt_auth *a, pt_store *st, int64_t now, int force)
{
    pt_store_use *tu = NULL, *ku = NULL;
    size_t nt, nk;
    int rc;

    if (a == NULL || (!force && now < a->next_flush))
        return 0;
    a->next_flush = now + PT_AUTH_FLUSH_SECS;
    tu = malloc((a->ntokens + 1) * sizeof *tu);
    ku = malloc((a->nkeys + 1) * sizeof *ku);
    if (tu == NULL || ku == NULL) {
        rc = PT_ENOMEM;
        goto done;
    }
    nt = collect(a->tokens, a->ntokens, tu);
    nk = collect(a->keys, a->nkeys, ku);
    if (nt + nk == 0) {
        rc = 0;
        goto done;
    }
    rc = pt_store_mark_used(st, tu, nt, ku, nk);
    if (rc != 0)
        goto done;
    for (size_t i = 0; i < a->ntokens; i++)
        a->tokens[i].flushed = a->tokens[i].used;
    for (size_t i = 0; i < a->nkeys; i++)
        a->keys[i].flushed = a->keys[i].used;
    rc = (int)(nt + nk);
done:
    free(tu);
    free(ku);
    return rc;
}

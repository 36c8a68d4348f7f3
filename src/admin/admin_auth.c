/* admin_auth.c - /tokens, /apikeys and /issuers: what `--auth jwt|apikey` endpoints accept,
 * with the checks of `portico token|apikey|auth`. A new token or key is in its answer only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "admin/admin.h"
#include "auth/apikey.h"
#include "auth/jwks.h"
#include "auth/jwt.h"
#include "auth/keys.h"
#include "auth/ratelimit.h"
#include "core/config.h"
#include "core/err.h"

#define MAX_SCOPE 16
#define SCOPE_MAX (MAX_SCOPE * 66)
#define JWKS_MAX (1u << 20)

/* The store's space-separated scope as a JSON array (empty: every endpoint). */
static json_t *
scope_json(const char *scope)
{
    json_t *arr = json_array();
    char buf[SCOPE_MAX];
    snprintf(buf, sizeof buf, "%s", scope != NULL ? scope : "");
    for (char *tok = strtok(buf, " "); arr != NULL && tok != NULL; tok = strtok(NULL, " "))
        json_array_append_new(arr, json_string(tok));
    return arr;
}

/* Reads the body's optional "endpoints" (a list of endpoint names) into scope (space-separated,
 * "" when absent: every endpoint) and "rate" ("100/min") into rate ("" when absent). 0, or a
 * refusal in r. */
static int
read_limits(pt_admin_call *c, pt_admin_reply *r, char *scope, char *rate, size_t ratesz)
{
    json_t *eps = json_is_object(c->body) ? json_object_get(c->body, "endpoints") : NULL;
    size_t i, o = 0;
    json_t *v;
    pt_rate rt;

    scope[0] = rate[0] = '\0';
    if (eps != NULL && !json_is_null(eps)) {
        if (!json_is_array(eps) || json_array_size(eps) > MAX_SCOPE)
            return pt_admin_fail(r, 400, "bad_request", "endpoints",
                                 "endpoints is a list of at most %d endpoint names", MAX_SCOPE);
        json_array_foreach(eps, i, v)
        {
            const char *name = json_string_value(v);
            if (name == NULL || !pt_store_name_valid(name))
                return pt_admin_fail(r, 400, "bad_request", "endpoints",
                                     "invalid endpoint name in endpoints");
            o += (size_t)snprintf(scope + o, SCOPE_MAX - o, "%s%s", o > 0 ? " " : "", name);
        }
    }
    const char *text = pt_admin_body_str(c, r, "rate", 0);
    if (r->status != 0)
        return -r->status;
    if (text != NULL) {
        if (pt_ratelimit_parse(text, &rt) != 0)
            return pt_admin_fail(r, 400, "bad_request", "rate",
                                 "rate is N/s, N/min, N/h or N/day, for example 100/min");
        pt_ratelimit_format(&rt, rate, ratesz);
    }
    return 0;
}

/* The body's optional name and "expires" (seconds into *secs, -1 when never); 0 or a refusal. */
static int
read_name_expiry(pt_admin_call *c, pt_admin_reply *r, const char **name, int64_t *secs)
{
    const char *expires;
    if (c->body != NULL && !json_is_object(c->body))
        return pt_admin_fail(r, 400, "bad_request", NULL, "the body must be a JSON object");
    *name = pt_admin_body_str(c, r, "name", 0);
    if (r->status != 0)
        return -r->status;
    expires = pt_admin_body_str(c, r, "expires", 0);
    if (r->status != 0)
        return -r->status;
    if (*name != NULL && !pt_store_name_valid(*name))
        return pt_admin_fail(r, 400, "bad_request", "name",
                             "invalid token name (letters, digits, _ . -; at most 64)");
    *secs = -1;
    if (expires != NULL && (pt_config_parse_duration(expires, secs) != 0 || *secs == 0))
        return pt_admin_fail(r, 400, "bad_request", "expires",
                             "expires is a duration such as 12h or 30d, or never");
    return 0;
}

/* ---- /tokens: the JWTs of `--auth jwt` endpoints ------------------------------------------ */

static json_t *
token_json(const void *item)
{
    const pt_token *t = item;
    return json_pack("{s:s, s:s, s:I, s:I, s:o*, s:s?, s:I, s:I}", "id", t->id, "name", t->name,
                     "created", (json_int_t)t->created, "expires", (json_int_t)t->expires,
                     "endpoints", scope_json(t->scope), "rate", t->rate, "revoked",
                     (json_int_t)t->revoked, "last_used", (json_int_t)t->last_used);
}

static int
token_list(pt_admin_call *c, pt_admin_reply *r)
{
    pt_token *list = NULL;
    size_t n = 0;
    int rc = pt_store_token_list(c->store, &list, &n);
    rc = pt_admin_list_reply(c, r, rc, "tokens", list, n, sizeof *list, token_json);
    pt_store_tokens_free(list, n);
    return rc;
}

static int
token_create(pt_admin_call *c, pt_admin_reply *r)
{
    const char *name = NULL, *scope_list[MAX_SCOPE];
    char scope[SCOPE_MAX], split[SCOPE_MAX], rate[32], id[17], err[512];
    char *token = NULL;
    unsigned char raw[8], *key = NULL;
    int64_t now = (int64_t)time(NULL), secs;
    size_t nscope = 0;
    int rc;

    if ((rc = read_name_expiry(c, r, &name, &secs)) != 0 ||
        (rc = read_limits(c, r, scope, rate, sizeof rate)) != 0)
        return rc;
    if (pt_keys_load(c->datadir, PT_KEY_JWT, &key, err, sizeof err) != 0)
        return pt_admin_fail(r, 503, "unavailable", NULL, "cannot load the token signing key: %s",
                             err);
    if ((token = malloc(PT_JWT_MAX)) == NULL) {
        rc = pt_admin_fail(r, 500, "internal", NULL, "out of memory");
        goto done;
    }
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(id, sizeof id, raw, sizeof raw);
    memcpy(split, scope, sizeof split);
    for (char *p = split; *p != '\0' && nscope < MAX_SCOPE;) {
        scope_list[nscope++] = p;
        if ((p = strchr(p, ' ')) == NULL)
            break;
        *p++ = '\0';
    }
    pt_jwt_claims cl = {id,    name != NULL ? name : id, now, secs > 0 ? now + secs : 0, scope_list,
                        nscope};
    if ((rc = pt_jwt_sign_hs256(&cl, key, token, PT_JWT_MAX)) != 0) {
        rc = pt_admin_fail(r, 500, "internal", NULL, "cannot sign the token: %s", pt_strerror(rc));
        goto done;
    }
    pt_token t = {.id = id,
                  .name = (char *)cl.sub,
                  .created = now,
                  .expires = cl.exp,
                  .scope = scope,
                  .rate = rate[0] != '\0' ? rate : NULL};
    if ((rc = pt_store_token_add(c->store, &t)) != 0) {
        rc = pt_admin_fail_store(r, c->store, rc, rc == PT_ENOTFOUND ? "endpoints" : "name");
        goto done;
    }
    r->status = 201;
    r->body = token_json(&t);
    json_object_set_new(r->body, "token", json_string(token));
    c->audit = json_pack("{s:s, s:s, s:I, s:s, s:s?}", "id", id, "name", t.name, "expires",
                         (json_int_t)t.expires, "endpoints", scope, "rate", t.rate);
    rc = 0;
done:
    if (token != NULL)
        sodium_memzero(token, PT_JWT_MAX);
    free(token);
    pt_keys_free(key);
    return rc;
}

/* Committing the revocation bumps the change counter: workers refuse the token from their
 * next request on. */
static int
token_revoke(pt_admin_call *c, pt_admin_reply *r)
{
    int rc = pt_store_token_revoke(c->store, c->params[0]);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    r->body = json_pack("{s:s}", "revoked", c->params[0]);
    c->audit = json_pack("{s:s}", "id", c->params[0]);
    return 0;
}

/* ---- /apikeys: the keys of `--auth apikey` endpoints --------------------------------------- */

static json_t *
apikey_json(const void *item)
{
    const pt_apikey *k = item;
    return json_pack("{s:s, s:I, s:s, s:I, s:o*, s:s?, s:I, s:I}", "name", k->name, "id",
                     (json_int_t)k->id, "hint", k->hint, "created", (json_int_t)k->created,
                     "endpoints", scope_json(k->scope), "rate", k->rate, "revoked",
                     (json_int_t)k->revoked, "last_used", (json_int_t)k->last_used);
}

static int
apikey_list(pt_admin_call *c, pt_admin_reply *r)
{
    pt_apikey *list = NULL;
    size_t n = 0;
    int rc = pt_store_apikey_list(c->store, &list, &n);
    rc = pt_admin_list_reply(c, r, rc, "apikeys", list, n, sizeof *list, apikey_json);
    pt_store_apikeys_free(list, n);
    return rc;
}

static int
apikey_create(pt_admin_call *c, pt_admin_reply *r)
{
    char scope[SCOPE_MAX], rate[32], err[512], key[PT_APIKEY_LEN + 1], hint[PT_APIKEY_HINT_LEN + 1];
    unsigned char *hash_key = NULL;
    pt_apikey k = {0};
    int rc;

    const char *name = pt_admin_body_str(c, r, "name", 1);
    if (name == NULL)
        return -r->status;
    if (!pt_store_name_valid(name))
        return pt_admin_fail(r, 400, "bad_request", "name",
                             "invalid API key name (letters, digits, _ . -; at most 64)");
    if ((rc = read_limits(c, r, scope, rate, sizeof rate)) != 0)
        return rc;
    if (pt_keys_load(c->datadir, PT_KEY_APIKEY, &hash_key, err, sizeof err) != 0)
        return pt_admin_fail(r, 503, "unavailable", NULL, "cannot load the API key hashing key: %s",
                             err);
    if (pt_apikey_generate(key) != 0) {
        rc = pt_admin_fail(r, 503, "unavailable", NULL, "cannot generate a key");
        goto done;
    }
    pt_apikey_hash(hash_key, key, PT_APIKEY_LEN, k.hash);
    memcpy(hint, key, PT_APIKEY_HINT_LEN);
    hint[PT_APIKEY_HINT_LEN] = '\0';
    k.name = (char *)name;
    k.hint = hint;
    k.created = (int64_t)time(NULL);
    k.scope = scope;
    k.rate = rate[0] != '\0' ? rate : NULL;
    if ((rc = pt_store_apikey_add(c->store, &k)) != 0) {
        rc = pt_admin_fail_store(r, c->store, rc, rc == PT_ENOTFOUND ? "endpoints" : "name");
        goto done;
    }
    r->status = 201;
    r->body = apikey_json(&k);
    json_object_set_new(r->body, "key", json_string(key));
    c->audit = json_pack("{s:s, s:I, s:s, s:s?}", "name", name, "id", (json_int_t)k.id, "endpoints",
                         scope, "rate", k.rate);
    rc = 0;
done:
    sodium_memzero(key, sizeof key);
    pt_keys_free(hash_key);
    return rc;
}

static int
apikey_revoke(pt_admin_call *c, pt_admin_reply *r)
{
    int rc = pt_store_apikey_revoke(c->store, c->params[0]);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    r->body = json_pack("{s:s}", "revoked", c->params[0]);
    c->audit = json_pack("{s:s}", "name", c->params[0]);
    return 0;
}

/* ---- /issuers: outside identity providers and their JWKS ----------------------------------- */

static json_t *
issuer_json(const void *item)
{
    const pt_issuer *is = item;
    pt_jwks *set = NULL;
    char err[256];
    json_t *keys;
    if (pt_jwks_parse(is->jwks, strlen(is->jwks), &set, NULL, err, sizeof err) == 0)
        keys = json_integer((json_int_t)pt_jwks_count(set));
    else
        keys = json_string("unusable");
    pt_jwks_free(set);
    return json_pack("{s:s, s:s?, s:o*, s:I}", "issuer", is->issuer, "audience", is->audience,
                     "keys", keys, "created", (json_int_t)is->created);
}

static int
issuer_list(pt_admin_call *c, pt_admin_reply *r)
{
    pt_issuer *list = NULL;
    size_t n = 0;
    int rc = pt_store_issuer_list(c->store, &list, &n);
    rc = pt_admin_list_reply(c, r, rc, "issuers", list, n, sizeof *list, issuer_json);
    pt_store_issuers_free(list, n);
    return rc;
}

/* POST /issuers {issuer, jwks, audience?}: trusts it, replacing what was stored for it (as
 * `portico auth trust`); jwks is the JWKS document (an object, or its JSON text). */
static int
issuer_add(pt_admin_call *c, pt_admin_reply *r)
{
    const char *iss, *aud;
    char *text = NULL, err[512], desc[160];
    pt_jwks *set = NULL;
    size_t skipped = 0;
    int rc;

    if ((iss = pt_admin_body_str(c, r, "issuer", 1)) == NULL)
        return -r->status;
    aud = pt_admin_body_str(c, r, "audience", 0);
    if (r->status != 0)
        return -r->status;
    if (iss[0] == '\0')
        return pt_admin_fail(r, 400, "bad_request", "issuer", "issuer must not be empty");
    if (aud != NULL && aud[0] == '\0')
        return pt_admin_fail(r, 400, "bad_request", "audience", "audience must not be empty");
    json_t *j = json_object_get(c->body, "jwks");
    if (json_is_object(j))
        text = json_dumps(j, JSON_COMPACT);
    else if (json_is_string(j))
        text = strdup(json_string_value(j));
    else
        return pt_admin_fail(r, 400, "bad_request", "jwks",
                             "jwks is required: the provider's JWKS document");
    if (text == NULL)
        return pt_admin_fail(r, 500, "internal", NULL, "out of memory");
    if (strlen(text) > JWKS_MAX) {
        rc = pt_admin_fail(r, 413, "too_large", "jwks", "the JWKS is over %u bytes", JWKS_MAX);
        goto done;
    }
    if (pt_jwks_parse(text, strlen(text), &set, &skipped, err, sizeof err) != 0) {
        rc = pt_admin_fail(r, 400, "bad_request", "jwks", "%s", err);
        goto done;
    }
    pt_issuer is = {.issuer = (char *)iss, .audience = (char *)aud, .jwks = text};
    if ((rc = pt_store_issuer_put(c->store, &is)) != 0) {
        rc = pt_admin_fail_store(r, c->store, rc, "issuer");
        goto done;
    }
    json_t *keys = json_array();
    for (size_t i = 0; keys != NULL && i < pt_jwks_count(set); i++) {
        pt_jwks_describe(set, i, desc, sizeof desc);
        json_array_append_new(keys, json_string(desc));
    }
    r->status = 201;
    r->body = json_pack("{s:s, s:s?, s:o*, s:I}", "issuer", iss, "audience", aud, "keys", keys,
                        "skipped", (json_int_t)skipped);
    c->audit = json_pack("{s:s, s:s?, s:I}", "name", iss, "audience", aud, "keys",
                         (json_int_t)pt_jwks_count(set));
    rc = 0;
done:
    pt_jwks_free(set);
    free(text);
    return rc;
}

static int
issuer_rm(pt_admin_call *c, pt_admin_reply *r)
{
    int rc = pt_store_issuer_rm(c->store, c->params[0]);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    r->body = json_pack("{s:s}", "removed", c->params[0]);
    c->audit = json_pack("{s:s}", "name", c->params[0]);
    return 0;
}

const pt_admin_route pt_admin_auth_routes[] = {
    {"GET", "/tokens", PT_ROLE_VIEWER, token_list, "The JWTs issued for --auth jwt endpoints"},
    {"POST", "/tokens", PT_ROLE_ADMIN, token_create,
     "Issue a JWT {name?, expires?, endpoints?, rate?}; the token is in this answer only"},
    {"DELETE", "/tokens/{id}", PT_ROLE_ADMIN, token_revoke, "Revoke a JWT"},
    {"GET", "/apikeys", PT_ROLE_VIEWER, apikey_list, "The API keys of --auth apikey endpoints"},
    {"POST", "/apikeys", PT_ROLE_ADMIN, apikey_create,
     "Create an API key {name, endpoints?, rate?}; the key is in this answer only"},
    {"DELETE", "/apikeys/{name}", PT_ROLE_ADMIN, apikey_revoke, "Revoke an API key"},
    {"GET", "/issuers", PT_ROLE_VIEWER, issuer_list, "Trusted outside token issuers"},
    {"POST", "/issuers", PT_ROLE_ADMIN, issuer_add,
     "Trust an issuer {issuer, jwks, audience?} (replaces what was stored for it)"},
    {"DELETE", "/issuers/{issuer}", PT_ROLE_ADMIN, issuer_rm, "Stop trusting an issuer"},
    {NULL, NULL, PT_ROLE_NONE, NULL, NULL},
};

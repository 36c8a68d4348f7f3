/* test_auth.c - unit tests for auth/auth: the request check against a real store, for every
 * way a token or key can be refused, and for what a handler is told about the caller. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sodium.h>

#include "auth/apikey.h"
#include "auth/auth.h"
#include "auth/jwt.h"
#include "auth/keys.h"
#include "auth/ratelimit.h"
#include "core/err.h"
#include "store/store.h"
#include "store/store_test.h"
#include "test.h"

typedef struct fixture {
    char dir[64];
    pt_store *st;
    unsigned char *jwt_key, *hash_key;
    int64_t now;
} fixture;

static int
fixture_open(fixture *f)
{
    char err[512];
    pt_script *s = NULL;
    int version;
    pt_endpoint ep = {
        .name = "accounts", .path = "/accounts", .methods = 1, .script = "s", .auth = "jwt"};

    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/pt-test-auth-XXXXXX");
    unsetenv("PORTICO_MASTER_KEY");
    if (pt_test_store_dir(mkdtemp(f->dir)) == NULL ||
        pt_keys_init(f->dir, NULL, err, sizeof err) != 0 ||
        pt_store_create(f->dir, &f->st, err, sizeof err) != 0 ||
        pt_keys_load(f->dir, PT_KEY_JWT, &f->jwt_key, err, sizeof err) != 0 ||
        pt_keys_load(f->dir, PT_KEY_APIKEY, &f->hash_key, err, sizeof err) != 0 ||
        pt_store_script_put(f->st, "s", "x", 1, &version) != 0 ||
        pt_store_endpoint_add(f->st, &ep) != 0)
        return -1;
    ep.name = "orders";
    ep.path = "/orders";
    if (pt_store_endpoint_add(f->st, &ep) != 0)
        return -1;
    pt_script_free(s);
    f->now = (int64_t)time(NULL);
    return 0;
}

static void
fixture_close(fixture *f)
{
    pt_keys_free(f->jwt_key);
    pt_keys_free(f->hash_key);
    pt_store_close(f->st);
    pt_test_rm_tree(f->dir);
}

/* Issues a token as `portico token create` does: signed, and on file. */
static int
issue(fixture *f, const char *id, const char *scope, const char *rate, int64_t exp, char *out,
      size_t outsz)
{
    const char *list[1] = {scope};
    pt_jwt_claims c = {id, "partner-a", f->now, exp, scope ? list : NULL, scope ? 1 : 0};
    pt_token t = {.id = (char *)id,
                  .name = "partner-a",
                  .created = f->now,
                  .expires = exp,
                  .scope = (char *)scope,
                  .rate = (char *)rate};

    if (pt_jwt_sign_hs256(&c, f->jwt_key, out, outsz) != 0)
        return -1;
    return pt_store_token_add(f->st, &t);
}

static pt_auth_result res;

/* Runs a check of endpoint `ep` with header "Authorization: <authz>" (NULL: none). */
static int
check(fixture *f, pt_ratelimit *rl, enum pt_auth_mode mode, const char *ep, const char *authz,
      const char *api_key)
{
    pt_auth *a = NULL;
    pt_auth_request rq = {.mode = mode, .endpoint = ep, .now = f->now, .mono_ns = 1000000000};
    int status;

    if (pt_auth_load(f->st, f->dir, &a) != 0)
        return -1;
    if (authz != NULL) {
        rq.authorization = authz;
        rq.authorization_len = strlen(authz);
        rq.nauthorization = 1;
    }
    if (api_key != NULL) {
        rq.api_key = api_key;
        rq.api_key_len = strlen(api_key);
        rq.napi_key = 1;
    }
    status = pt_auth_check(a, rl, &rq, &res);
    /* The caller's strings may point into a: keep copies for the assertions. */
    static char type[16], id[64], name[64];
    snprintf(type, sizeof type, "%s", res.caller.type ? res.caller.type : "");
    snprintf(id, sizeof id, "%s", res.caller.id ? res.caller.id : "");
    snprintf(name, sizeof name, "%s", res.caller.name ? res.caller.name : "");
    res.caller.type = type;
    res.caller.id = id;
    res.caller.name = name;
    pt_auth_free(a);
    return status;
}

/* Expects a 401 whose message and challenge contain `why`. */
#define ASSERT_DENIED(expr, why)                                                                   \
    do {                                                                                           \
        ASSERT_EQ((expr), 401);                                                                    \
        ASSERT_TRUE(strstr(res.error, (why)) != NULL);                                             \
        ASSERT_STREQ(res.header, "www-authenticate");                                              \
        ASSERT_TRUE(strncmp(res.header_value, "Bearer realm=\"portico\"", 22) == 0 ||              \
                    strncmp(res.header_value, "ApiKey realm=\"portico\"", 22) == 0);               \
    } while (0)

TEST(auth_accepts_issued_tokens_in_both_schemes)
{
    fixture f;
    char token[1024], header[1100];

    ASSERT_EQ(fixture_open(&f), 0);
    ASSERT_EQ(issue(&f, "tok1", NULL, NULL, 0, token, sizeof token), 0);
    snprintf(header, sizeof header, "JWT %s", token);
    ASSERT_EQ(check(&f, NULL, PT_AUTH_JWT, "accounts", header, NULL), 0);
    ASSERT_STREQ(res.caller.type, "jwt");
    ASSERT_STREQ(res.caller.id, "tok1");
    ASSERT_STREQ(res.caller.name, "partner-a");
    snprintf(header, sizeof header, "bearer   %s  ", token);
    ASSERT_EQ(check(&f, NULL, PT_AUTH_JWT, "orders", header, NULL), 0);
    /* Public endpoints look at nothing. */
    ASSERT_EQ(check(&f, NULL, PT_AUTH_PUBLIC, "accounts", NULL, NULL), 0);
    ASSERT_TRUE(res.caller.type[0] == '\0');
    fixture_close(&f);
}

TEST(auth_refuses_every_bad_token)
{
    fixture f;
    char token[1024], header[1200];
    unsigned char other[PT_KEY_BYTES];

    ASSERT_EQ(fixture_open(&f), 0);
    ASSERT_DENIED(check(&f, NULL, PT_AUTH_JWT, "accounts", NULL, NULL), "missing");
    ASSERT_STREQ(res.header_value, "Bearer realm=\"portico\"");
    ASSERT_DENIED(check(&f, NULL, PT_AUTH_JWT, "accounts", "Basic dXNlcjpwdw==", NULL), "scheme");
    ASSERT_DENIED(check(&f, NULL, PT_AUTH_JWT, "accounts", "Bearer", NULL), "empty");
    ASSERT_DENIED(check(&f, NULL, PT_AUTH_JWT, "accounts", "Bearer not.a.jwt", NULL), "malformed");
    ASSERT_TRUE(strstr(res.header_value, "error=\"invalid_token\"") != NULL);
    ASSERT_DENIED(check(&f, NULL, PT_AUTH_JWT, "accounts",
                        "Bearer eyJhbGciOiJub25lIn0.eyJqdGkiOiJ0b2sxIn0.", NULL),
                  "alg none");

    /* Signed with another key. */
    ASSERT_EQ(issue(&f, "tok1", NULL, NULL, 0, token, sizeof token), 0);
    memset(other, 7, sizeof other);
    pt_jwt_claims c = {"tok1", "partner-a", f.now, 0, NULL, 0};
    ASSERT_EQ(pt_jwt_sign_hs256(&c, other, token, sizeof token), 0);
    snprintf(header, sizeof header, "Bearer %s", token);
    ASSERT_DENIED(check(&f, NULL, PT_AUTH_JWT, "accounts", header, NULL), "bad signature");

    /* Our key, but not on file (e.g. a token of a deleted data dir with the same key). */
    pt_jwt_claims c2 = {"never-issued", "x", f.now, 0, NULL, 0};
    ASSERT_EQ(pt_jwt_sign_hs256(&c2, f.jwt_key, token, sizeof token), 0);
    snprintf(header, sizeof header, "Bearer %s", token);
    ASSERT_DENIED(check(&f, NULL, PT_AUTH_JWT, "accounts", header, NULL), "unknown token");

    /* Expired. */
    ASSERT_EQ(issue(&f, "old", NULL, NULL, f.now - 1, token, sizeof token), 0);
    snprintf(header, sizeof header, "Bearer %s", token);
    ASSERT_DENIED(check(&f, NULL, PT_AUTH_JWT, "accounts", header, NULL), "expired");

    /* Out of scope. */
    ASSERT_EQ(issue(&f, "scoped", "orders", NULL, 0, token, sizeof token), 0);
    snprintf(header, sizeof header, "Bearer %s", token);
    ASSERT_EQ(check(&f, NULL, PT_AUTH_JWT, "orders", header, NULL), 0);
    ASSERT_DENIED(check(&f, NULL, PT_AUTH_JWT, "accounts", header, NULL), "scope");
    ASSERT_TRUE(strstr(res.header_value, "insufficient_scope") != NULL);

    /* Revoked: refused from the next load of the tables on. */
    ASSERT_EQ(issue(&f, "rev", NULL, NULL, 0, token, sizeof token), 0);
    snprintf(header, sizeof header, "Bearer %s", token);
    ASSERT_EQ(check(&f, NULL, PT_AUTH_JWT, "accounts", header, NULL), 0);
    ASSERT_EQ(pt_store_token_revoke(f.st, "rev"), 0);
    ASSERT_DENIED(check(&f, NULL, PT_AUTH_JWT, "accounts", header, NULL), "revoked");
    fixture_close(&f);
}

TEST(auth_rate_limits_tokens)
{
    fixture f;
    char token[1024], header[1100];
    pt_ratelimit *rl = pt_ratelimit_new(64);

    ASSERT_TRUE(rl != NULL);
    ASSERT_EQ(fixture_open(&f), 0);
    ASSERT_EQ(issue(&f, "limited", NULL, "2/min", 0, token, sizeof token), 0);
    snprintf(header, sizeof header, "Bearer %s", token);
    ASSERT_EQ(check(&f, rl, PT_AUTH_JWT, "accounts", header, NULL), 0);
    ASSERT_EQ(check(&f, rl, PT_AUTH_JWT, "accounts", header, NULL), 0);
    ASSERT_EQ(check(&f, rl, PT_AUTH_JWT, "accounts", header, NULL), 429);
    ASSERT_STREQ(res.header, "retry-after");
    ASSERT_STREQ(res.header_value, "30");
    /* A refused request (bad token) does not count. */
    ASSERT_EQ(check(&f, rl, PT_AUTH_JWT, "accounts", "Bearer x", NULL), 401);
    pt_ratelimit_free(rl);
    fixture_close(&f);
}

TEST(auth_api_keys)
{
    fixture f;
    char key[PT_APIKEY_LEN + 1], header[128];
    pt_apikey k = {.name = "partner-b", .hint = "pt_live_xxxx", .scope = "orders"};

    ASSERT_EQ(fixture_open(&f), 0);
    ASSERT_EQ(pt_apikey_generate(key), 0);
    pt_apikey_hash(f.hash_key, key, strlen(key), k.hash);
    ASSERT_EQ(pt_store_apikey_add(f.st, &k), 0);
    ASSERT_EQ(check(&f, NULL, PT_AUTH_APIKEY, "orders", NULL, key), 0);
    ASSERT_STREQ(res.caller.type, "apikey");
    ASSERT_STREQ(res.caller.name, "partner-b");
    snprintf(header, sizeof header, "Bearer %s", key);
    ASSERT_EQ(check(&f, NULL, PT_AUTH_APIKEY, "orders", header, NULL), 0);
    ASSERT_DENIED(check(&f, NULL, PT_AUTH_APIKEY, "accounts", NULL, key), "scope");
    ASSERT_DENIED(check(&f, NULL, PT_AUTH_APIKEY, "orders", NULL, NULL), "missing API key");
    ASSERT_STREQ(res.header_value, "ApiKey realm=\"portico\"");
    char saved = key[20];
    key[20] = saved == 'a' ? 'b' : 'a';
    ASSERT_DENIED(check(&f, NULL, PT_AUTH_APIKEY, "orders", NULL, key), "invalid API key");
    ASSERT_DENIED(check(&f, NULL, PT_AUTH_APIKEY, "orders", NULL, "letmein"), "invalid API key");
    key[20] = saved;
    /* A JWT endpoint does not take API keys, nor the reverse. */
    snprintf(header, sizeof header, "Bearer %s", key);
    ASSERT_DENIED(check(&f, NULL, PT_AUTH_JWT, "orders", header, NULL), "malformed");
    ASSERT_EQ(pt_store_apikey_revoke(f.st, "partner-b"), 0);
    ASSERT_DENIED(check(&f, NULL, PT_AUTH_APIKEY, "orders", NULL, key), "revoked");
    /* The name is free again once revoked. */
    ASSERT_EQ(pt_apikey_generate(key), 0);
    pt_apikey_hash(f.hash_key, key, strlen(key), k.hash);
    ASSERT_EQ(pt_store_apikey_add(f.st, &k), 0);
    ASSERT_EQ(pt_store_apikey_add(f.st, &k), PT_EEXIST);
    fixture_close(&f);
}

TEST(auth_last_used_is_flushed_in_batches)
{
    fixture f;
    char token[1024], header[1100];
    pt_auth *a = NULL;
    pt_token *list = NULL;
    size_t n = 0;

    ASSERT_EQ(fixture_open(&f), 0);
    ASSERT_EQ(issue(&f, "t", NULL, NULL, 0, token, sizeof token), 0);
    snprintf(header, sizeof header, "JWT %s", token);
    ASSERT_EQ(pt_auth_load(f.st, f.dir, &a), 0);
    pt_auth_request rq = {.mode = PT_AUTH_JWT,
                          .endpoint = "accounts",
                          .authorization = header,
                          .authorization_len = strlen(header),
                          .nauthorization = 1,
                          .now = f.now};
    ASSERT_EQ(pt_auth_check(a, NULL, &rq, &res), 0);
    ASSERT_EQ(pt_auth_flush_used(a, f.st, f.now, 0), 1);
    /* Within the interval nothing is written, even after another use. */
    rq.now = f.now + 1;
    ASSERT_EQ(pt_auth_check(a, NULL, &rq, &res), 0);
    ASSERT_EQ(pt_auth_flush_used(a, f.st, f.now + 1, 0), 0);
    ASSERT_EQ(pt_auth_flush_used(a, f.st, f.now + 1, 1), 1);
    ASSERT_EQ(pt_store_token_list(f.st, &list, &n), 0);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(list[0].last_used, f.now + 1);
    pt_store_tokens_free(list, n);
    pt_auth_free(a);
    fixture_close(&f);
}

/* admin_tokens.c - /users/{name}/tokens: a user's admin API tokens (admin role only). A new
 * token is returned once and stored as a digest, as `portico user token create` does. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "admin/admin.h"
#include "auth/users.h"
#include "core/config.h"
#include "core/err.h"
#include "store/store_users.h"

static json_t *
token_json(const pt_admin_token *t)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "id", t->id, "user", t->user, "name",
                     t->name, "created", (json_int_t)t->created, "expires", (json_int_t)t->expires,
                     "revoked", (json_int_t)t->revoked, "last_used", (json_int_t)t->last_used);
}

/* 0 when user `name` exists, else the refusal in r. */
static int
need_user(pt_admin_call *c, pt_admin_reply *r, const char *name)
{
    pt_user u;
    int rc = pt_store_user_get(c->store, name, &u);
    pt_user_clear(&u);
    return rc != 0 ? pt_admin_fail_store(r, c->store, rc, NULL) : 0;
}

static int
list(pt_admin_call *c, pt_admin_reply *r)
{
    pt_admin_token *tokens = NULL;
    size_t n = 0;
    int rc = need_user(c, r, c->params[0]);
    if (rc != 0)
        return rc;
    rc = pt_store_admin_token_list(c->store, c->params[0], &tokens, &n);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++)
        json_array_append_new(arr, token_json(&tokens[i]));
    pt_store_admin_tokens_free(tokens, n);
    r->body = json_pack("{s:o*}", "tokens", arr);
    return 0;
}

static int
create(pt_admin_call *c, pt_admin_reply *r)
{
    const char *label = NULL, *expires = NULL;
    char token[PT_USERS_TOKEN_LEN + 1], id[12], digest[PT_USERS_DIGEST_LEN];
    int64_t secs = -1;
    int rc;

    if (c->body != NULL) {
        if (!json_is_object(c->body))
            return pt_admin_fail(r, 400, "bad_request", NULL, "the body must be a JSON object");
        label = pt_admin_body_str(c, r, "name", 0);
        if (r->status == 0)
            expires = pt_admin_body_str(c, r, "expires", 0);
        if (r->status != 0)
            return -r->status;
    }
    if (label != NULL && !pt_store_name_valid(label))
        return pt_admin_fail(r, 400, "bad_request", "name",
                             "invalid token name (letters, digits, _ . -; at most 64)");
    if (expires != NULL && (pt_config_parse_duration(expires, &secs) != 0 || secs == 0))
        return pt_admin_fail(r, 400, "bad_request", "expires",
                             "expires is a duration such as 12h or 30d, or never");
    if ((rc = need_user(c, r, c->params[0])) != 0)
        return rc;
    if (pt_users_token_new(token, id) != 0)
        return pt_admin_fail(r, 503, "unavailable", NULL, "no randomness");
    pt_admin_token t = {.id = id,
                        .user = (char *)c->params[0],
                        .name = (char *)(label != NULL ? label : c->params[0]),
                        .created = (int64_t)time(NULL)};
    t.expires = secs > 0 ? t.created + secs : 0;
    pt_users_digest(token, strlen(token), digest);
    rc = pt_store_admin_token_add(c->store, &t, digest);
    if (rc != 0) {
        sodium_memzero(token, sizeof token);
        return pt_admin_fail_store(r, c->store, rc, NULL);
    }
    r->status = 201;
    r->body = json_pack("{s:s, s:s, s:s, s:I, s:s}", "id", id, "user", t.user, "name", t.name,
                        "expires", (json_int_t)t.expires, "token", token);
    sodium_memzero(token, sizeof token);
    c->audit = json_pack("{s:s, s:s, s:s}", "user", t.user, "token", id, "name", t.name);
    return 0;
}

static int
revoke(pt_admin_call *c, pt_admin_reply *r)
{
    pt_admin_token *tokens = NULL;
    size_t n = 0;
    int found = 0;
    int rc = pt_store_admin_token_list(c->store, c->params[0], &tokens, &n);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    for (size_t i = 0; i < n; i++)
        found |= strcmp(tokens[i].id, c->params[1]) == 0;
    pt_store_admin_tokens_free(tokens, n);
    if (!found)
        return pt_admin_fail(r, 404, "not_found", NULL, "user '%s' has no token '%s'", c->params[0],
                             c->params[1]);
    rc = pt_store_admin_token_revoke(c->store, c->params[1]);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    r->body = json_pack("{s:s}", "revoked", c->params[1]);
    c->audit = json_pack("{s:s, s:s}", "user", c->params[0], "token", c->params[1]);
    return 0;
}

const pt_admin_route pt_admin_tokens_routes[] = {
    {"GET", "/users/{name}/tokens", PT_ROLE_ADMIN, list, "A user's admin API tokens"},
    {"POST", "/users/{name}/tokens", PT_ROLE_ADMIN, create,
     "Create an admin API token {name?, expires?}; the token is in this answer only"},
    {"DELETE", "/users/{name}/tokens/{id}", PT_ROLE_ADMIN, revoke, "Revoke a token"},
    {NULL, NULL, PT_ROLE_NONE, NULL, NULL},
};

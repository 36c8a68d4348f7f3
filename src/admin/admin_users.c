/* admin_users.c - /users: the admin API's users and their roles (admin role only). Passwords
 * are hashed here, on the pool thread running the call. */
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "auth/users.h"
#include "core/err.h"
#include "store/store_users.h"

static json_t *
user_json(const pt_user *u)
{
    return json_pack("{s:s, s:s, s:I}", "name", u->name, "role", u->role, "created",
                     (json_int_t)u->created);
}

/* The body's "password", checked and hashed into hash; 0, or a refusal in r. */
static int
new_password(pt_admin_call *c, pt_admin_reply *r, const char *password, char *hash)
{
    if (strlen(password) < PT_USERS_PASSWORD_MIN)
        return pt_admin_fail(r, 400, "bad_request", "password",
                             "the password must have at least %d characters",
                             PT_USERS_PASSWORD_MIN);
    if (pt_users_hash_password(password, strlen(password), hash) != 0)
        return pt_admin_fail(r, 503, "unavailable", NULL, "out of memory hashing the password");
    (void)c;
    return 0;
}

static int
list(pt_admin_call *c, pt_admin_reply *r)
{
    pt_user *users = NULL;
    size_t n = 0;
    int rc = pt_store_user_list(c->store, &users, &n);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++)
        json_array_append_new(arr, user_json(&users[i]));
    pt_store_users_free(users, n);
    r->body = json_pack("{s:o*}", "users", arr);
    return 0;
}

static int
add(pt_admin_call *c, pt_admin_reply *r)
{
    const char *name, *role, *password;
    char hash[PT_USERS_HASH_MAX];
    int rc;

    if ((name = pt_admin_body_str(c, r, "name", 1)) == NULL ||
        (role = pt_admin_body_str(c, r, "role", 1)) == NULL ||
        (password = pt_admin_body_str(c, r, "password", 1)) == NULL)
        return -r->status;
    if (!pt_store_name_valid(name))
        return pt_admin_fail(r, 400, "bad_request", "name",
                             "invalid user name (letters, digits, _ . -; at most 64)");
    if (!pt_store_role_valid(role))
        return pt_admin_fail(r, 400, "bad_request", "role", "role must be admin, editor or viewer");
    if ((rc = new_password(c, r, password, hash)) != 0)
        return rc;
    rc = pt_store_user_add(c->store, name, role, hash);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, "name");
    r->status = 201;
    r->body = json_pack("{s:s, s:s}", "name", name, "role", role);
    c->audit = json_pack("{s:s, s:s}", "user", name, "role", role);
    return 0;
}

static int
show(pt_admin_call *c, pt_admin_reply *r)
{
    pt_user u;
    int rc = pt_store_user_get(c->store, c->params[0], &u);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    r->body = user_json(&u);
    pt_user_clear(&u);
    return 0;
}

static int
set(pt_admin_call *c, pt_admin_reply *r)
{
    const char *role = pt_admin_body_str(c, r, "role", 0);
    if (r->status != 0)
        return -r->status;
    const char *password = pt_admin_body_str(c, r, "password", 0);
    char hash[PT_USERS_HASH_MAX];
    int rc;

    if (r->status != 0)
        return -r->status;
    if (!json_is_object(c->body) || (role == NULL && password == NULL))
        return pt_admin_fail(r, 400, "bad_request", NULL,
                             "give a JSON object with 'role' and/or 'password'");
    if (role != NULL && !pt_store_role_valid(role))
        return pt_admin_fail(r, 400, "bad_request", "role", "role must be admin, editor or viewer");
    if (password != NULL && (rc = new_password(c, r, password, hash)) != 0)
        return rc;
    rc = pt_store_user_set(c->store, c->params[0], role, password != NULL ? hash : NULL);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, role != NULL ? "role" : NULL);
    r->body = json_pack("{s:s}", "name", c->params[0]);
    c->audit = json_pack("{s:s}", "user", c->params[0]);
    if (role != NULL) {
        json_object_set_new(r->body, "role", json_string(role));
        json_object_set_new(c->audit, "role", json_string(role));
    }
    if (password != NULL)
        json_object_set_new(c->audit, "password", json_string("changed"));
    return 0;
}

static int
rm(pt_admin_call *c, pt_admin_reply *r)
{
    int rc = pt_store_user_rm(c->store, c->params[0]);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    r->body = json_pack("{s:s}", "removed", c->params[0]);
    c->audit = json_pack("{s:s}", "user", c->params[0]);
    return 0;
}

const pt_admin_route pt_admin_users_routes[] = {
    {"GET", "/users", PT_ROLE_ADMIN, list, "List users and their roles"},
    {"POST", "/users", PT_ROLE_ADMIN, add, "Add a user {name, role, password}"},
    {"GET", "/users/{name}", PT_ROLE_ADMIN, show, "Show one user"},
    {"PATCH", "/users/{name}", PT_ROLE_ADMIN, set, "Change a user's role and/or password"},
    {"DELETE", "/users/{name}", PT_ROLE_ADMIN, rm, "Remove a user, its sessions and tokens"},
    {NULL, NULL, PT_ROLE_NONE, NULL, NULL},
};

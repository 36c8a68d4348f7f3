/* admin_session.c - logging in and out of the admin API, and who the caller is: POST /login
 * (password check on the pool thread, failed logins throttled per user and per address),
 * POST /logout, GET /me. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "admin/admin.h"
#include "auth/users.h"
#include "core/err.h"
#include "store/store_users.h"

/* The Set-Cookie value of a session (value NULL: one that ends it). Caller frees. */
static char *
cookie(const pt_admin_call *c, const char *value)
{
    char *out = NULL;
    const char *secure = c->env->secure ? "; Secure" : "";
    int n = value != NULL ? asprintf(&out, "%s=%s; Path=/_portico/; HttpOnly; SameSite=Strict%s",
                                     PT_ADMIN_COOKIE, value, secure)
                          : asprintf(&out,
                                     "%s=; Path=/_portico/; HttpOnly; SameSite=Strict; "
                                     "Max-Age=0%s",
                                     PT_ADMIN_COOKIE, secure);
    return n < 0 ? NULL : out;
}

/* 429 when key is locked out; 0 otherwise (or another refusal). */
static int
check_blocked(pt_admin_call *c, pt_admin_reply *r, const char *key)
{
    int64_t retry = 0;
    int rc = pt_store_login_blocked(c->store, key, (int64_t)time(NULL), &retry);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    if (retry > 0) {
        r->retry_after = retry;
        return pt_admin_fail(r, 429, "throttled", NULL,
                             "too many failed logins; try again in %lld s", (long long)retry);
    }
    return 0;
}

static int
login(pt_admin_call *c, pt_admin_reply *r)
{
    const char *name = pt_admin_body_str(c, r, "user", 1);
    const char *password = name != NULL ? pt_admin_body_str(c, r, "password", 1) : NULL;
    char ukey[96], akey[80], sid[PT_USERS_RANDOM_LEN], csrf[PT_USERS_RANDOM_LEN];
    char digest[PT_USERS_DIGEST_LEN];
    pt_user u;
    int rc, failures;

    if (password == NULL)
        return -r->status;
    snprintf(ukey, sizeof ukey, "user:%s", name);
    snprintf(akey, sizeof akey, "addr:%s", c->remote_addr);
    if ((rc = check_blocked(c, r, ukey)) != 0 || (rc = check_blocked(c, r, akey)) != 0)
        return rc;
    rc = pt_store_user_get(c->store, name, &u);
    if (rc != 0 && rc != PT_ENOTFOUND)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    if (!pt_users_verify_password(rc == 0 ? u.hash : NULL, password, strlen(password))) {
        pt_user_clear(&u);
        if (pt_store_login_failed(c->store, ukey, (int64_t)time(NULL), pt_users_lockout_user,
                                  &failures) != 0 ||
            pt_store_login_failed(c->store, akey, (int64_t)time(NULL), pt_users_lockout_addr,
                                  &failures) != 0)
            return pt_admin_fail_store(r, c->store, PT_EDB, NULL);
        return pt_admin_fail(r, 401, "unauthorized", NULL, "wrong user name or password");
    }
    pt_store_login_reset(c->store, ukey);
    pt_store_login_reset(c->store, akey);
    if (pt_users_random(sid) != 0 || pt_users_random(csrf) != 0) {
        pt_user_clear(&u);
        return pt_admin_fail(r, 500, "internal", NULL, "no randomness");
    }
    pt_users_digest(sid, strlen(sid), digest);
    rc = pt_store_session_add(c->store, digest, u.name, csrf, (int64_t)time(NULL),
                              c->env->session_idle);
    if (rc == 0 && (r->set_cookie = cookie(c, sid)) == NULL)
        rc = PT_ENOMEM;
    sodium_memzero(sid, sizeof sid);
    if (rc != 0) {
        pt_user_clear(&u);
        return pt_admin_fail_store(r, c->store, rc, NULL);
    }
    r->body = json_pack("{s:s, s:s, s:s}", "user", u.name, "role", u.role, "csrf_token", csrf);
    pt_user_clear(&u);
    return 0;
}

static int
logout(pt_admin_call *c, pt_admin_reply *r)
{
    if (c->session_hash != NULL) {
        int rc = pt_store_session_rm(c->store, c->session_hash);
        if (rc != 0)
            return pt_admin_fail_store(r, c->store, rc, NULL);
        r->set_cookie = cookie(c, NULL);
    }
    r->body = json_pack("{s:b}", "ok", 1);
    return 0;
}

static int
me(pt_admin_call *c, pt_admin_reply *r)
{
    r->body =
        json_pack("{s:s, s:s, s:s, s:s}", "user", c->user, "role", pt_admin_role_name(c->role),
                  "actor", c->actor, "via", c->session_hash != NULL ? "session" : "token");
    if (r->body != NULL && c->csrf != NULL)
        json_object_set_new(r->body, "csrf_token", json_string(c->csrf));
    return 0;
}

const pt_admin_route pt_admin_session_routes[] = {
    {"POST", "/login", PT_ROLE_NONE, login,
     "Log in with {user, password}: sets the session cookie, returns the CSRF token"},
    {"POST", "/logout", PT_ROLE_VIEWER, logout, "End the session"},
    {"GET", "/me", PT_ROLE_VIEWER, me, "Who the caller is, and its role"},
    {NULL, NULL, PT_ROLE_NONE, NULL, NULL},
};

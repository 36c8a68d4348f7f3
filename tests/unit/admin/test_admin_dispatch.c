/* test_admin_dispatch.c - the admin API's dispatcher (admin/admin.c) without a server:
 * requests built by hand, answered by pt_admin_handle against a fresh data dir. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "admin/admin.h"
#include "auth/users.h"
#include "store/store_users.h"
#include "store/store_test.h"
#include "test.h"

/* A data dir with user "ann" (role), and an admin API token for her in token. */
static int
setup(char *dir, const char *role, char *token)
{
    char err[256], id[12], digest[PT_USERS_DIGEST_LEN];
    pt_store *st = NULL;
    if (pt_test_store_dir(mkdtemp(dir)) == NULL || pt_store_create(dir, &st, err, sizeof err) != 0)
        return -1;
    int rc = pt_store_user_add(st, "ann", role, "no-login");
    if (rc == 0)
        rc = pt_users_token_new(token, id);
    pt_admin_token t = {.id = id, .user = "ann", .name = "t", .created = (int64_t)time(NULL)};
    pt_users_digest(token, strlen(token), digest);
    if (rc == 0)
        rc = pt_store_admin_token_add(st, &t, digest);
    pt_store_close(st);
    return rc;
}

/* Answers method path?query with body (may be NULL) and an Authorization header when auth is
 * given; returns the status, and the JSON body in *out (caller frees; NULL when not JSON). */
static int
call(const char *dir, const char *method, const char *path, const char *query, const char *body,
     const char *auth, json_t **out)
{
    pt_admin_env env = {.datadir = dir, .version = "test", .session_idle = 1800};
    pt_header h[1];
    pt_request req;
    pt_response resp;
    memset(&req, 0, sizeof req);
    req.method = (pt_str){method, strlen(method)};
    req.path = (pt_str){path, strlen(path)};
    req.query = (pt_str){query, strlen(query)};
    req.body = (pt_str){body != NULL ? body : "", body != NULL ? strlen(body) : 0};
    req.remote_addr = (pt_str){"127.0.0.1", 9};
    if (auth != NULL) {
        h[0].name = (pt_str){"authorization", 13};
        h[0].value = (pt_str){auth, strlen(auth)};
        req.headers = h;
        req.nheaders = 1;
    }
    pt_response_init(&resp, 0);
    pt_admin_handle(&env, &req, &resp);
    *out = json_loadb(resp.body.data != NULL ? resp.body.data : "", resp.body.len, 0, NULL);
    int status = resp.status;
    pt_response_free(&resp);
    return status;
}

static const char *
error_code(json_t *j)
{
    return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

TEST(admin_dispatch_routes_authenticates_and_refuses)
{
    char dir[] = "/tmp/pt-test-admin-XXXXXX", token[PT_USERS_TOKEN_LEN + 1], auth[80];
    json_t *j = NULL;
    ASSERT_EQ(setup(dir, "editor", token), 0);
    snprintf(auth, sizeof auth, "Bearer %s", token);

    ASSERT_EQ(call(dir, "GET", "/elsewhere", "", NULL, auth, &j), 404);
    ASSERT_STREQ(error_code(j), "not_found");
    json_decref(j);
    ASSERT_EQ(call(dir, "GET", PT_ADMIN_PREFIX "/scripts", "", NULL, NULL, &j), 401);
    ASSERT_STREQ(error_code(j), "unauthorized");
    json_decref(j);
    ASSERT_EQ(call(dir, "GET", PT_ADMIN_PREFIX "/scripts", "", NULL, "Bearer pat_x", &j), 401);
    json_decref(j);
    ASSERT_EQ(call(dir, "PUT", PT_ADMIN_PREFIX "/scripts", "", NULL, auth, &j), 405);
    ASSERT_STREQ(error_code(j), "method_not_allowed");
    json_decref(j);
    ASSERT_EQ(call(dir, "GET", PT_ADMIN_PREFIX "/users", "", NULL, auth, &j), 403);
    ASSERT_STREQ(error_code(j), "forbidden");
    json_decref(j);
    ASSERT_EQ(call(dir, "POST", PT_ADMIN_PREFIX "/scripts", "", "{\"name\":", auth, &j), 400);
    ASSERT_STREQ(error_code(j), "bad_request");
    json_decref(j);

    /* A percent-encoded name is decoded once, as a path parameter; so is the query. */
    ASSERT_EQ(call(dir, "DELETE", PT_ADMIN_PREFIX "/scripts/Load%20-%2541", "", NULL, auth, &j),
              404);
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    if (msg == NULL || strstr(msg, "'Load -%41'") == NULL)
        pt_test_fail(__FILE__, __LINE__, "message %s", msg != NULL ? msg : "(none)");
    json_decref(j);
    ASSERT_EQ(call(dir, "GET", PT_ADMIN_PREFIX "/audit", "actor=token%3At&limit=5", NULL, auth, &j),
              200);
    ASSERT_EQ(json_array_size(json_object_get(j, "entries")), 0); /* refusals are not audited */
    json_decref(j);

    /* Past the body cap: refused before parsing. */
    size_t big = PT_ADMIN_BODY_MAX + 1;
    char *body = malloc(big + 1);
    memset(body, ' ', big);
    body[big] = '\0';
    ASSERT_EQ(call(dir, "POST", PT_ADMIN_PREFIX "/scripts", "", body, auth, &j), 413);
    ASSERT_STREQ(error_code(j), "too_large");
    json_decref(j);
    free(body);
    pt_admin_thread_close();
    pt_test_rm_tree(dir);
}

TEST(admin_openapi_lists_every_route)
{
    json_t *doc = pt_admin_openapi("test");
    json_t *paths = json_object_get(doc, "paths");
    size_t n = 0;
    ASSERT_TRUE(paths != NULL);
    for (size_t t = 0; pt_admin_tables[t] != NULL; t++) {
        for (const pt_admin_route *rt = pt_admin_tables[t]; rt->method != NULL; rt++) {
            char m[8];
            size_t i;
            for (i = 0; rt->method[i] != '\0'; i++)
                m[i] = (char)(rt->method[i] | 0x20);
            m[i] = '\0';
            ASSERT_TRUE(json_object_get(json_object_get(paths, rt->pattern), m) != NULL);
            n++;
        }
    }
    ASSERT_GT(n, 20);
    json_decref(doc);
}

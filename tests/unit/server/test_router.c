/* test_router.c - unit tests for server/router: matching, precedence, 404/405, pattern checks. */
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "server/router.h"
#include "test.h"

static int d_root, d_accounts, d_account, d_me, d_orders, d_mcp, d_wild, d_post, d_deep;

/* Matches the C string path and returns the result. */
static enum pt_route_result
match(const pt_router *r, unsigned method, const char *path, pt_route_match *m)
{
    return pt_router_match(r, method, path, strlen(path), m);
}

static pt_router *
sample(void)
{
    pt_router *r = pt_router_new();
    if (r == NULL)
        return NULL;
    if (pt_router_add(r, "/", PT_M_GET, &d_root) ||
        pt_router_add(r, "/accounts", PT_M_GET | PT_M_POST, &d_accounts) ||
        pt_router_add(r, "/accounts/{id}", PT_M_GET | PT_M_PUT | PT_M_DELETE, &d_account) ||
        pt_router_add(r, "/accounts/me", PT_M_GET, &d_me) ||
        pt_router_add(r, "/accounts/{id}/orders/{order_id}", PT_M_GET, &d_orders) ||
        pt_router_add(r, "/mcp/*/*", PT_M_POST, &d_mcp) ||
        pt_router_add(r, "/files/*", PT_M_GET, &d_wild)) {
        pt_router_free(r);
        return NULL;
    }
    return r;
}

TEST(router_literals)
{
    pt_router *r = sample();
    pt_route_match m;
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(match(r, PT_M_GET, "/", &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.data == &d_root);
    ASSERT_EQ(m.nparams, 0);
    ASSERT_EQ(match(r, PT_M_GET, "/accounts", &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.data == &d_accounts);
    ASSERT_EQ(match(r, PT_M_POST, "/accounts", &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.data == &d_accounts);
    ASSERT_EQ(match(r, PT_M_GET, "/account", &m), PT_ROUTE_NOT_FOUND);
    ASSERT_EQ(match(r, PT_M_GET, "/accountsx", &m), PT_ROUTE_NOT_FOUND);
    ASSERT_EQ(match(r, PT_M_GET, "/Accounts", &m), PT_ROUTE_NOT_FOUND);
    ASSERT_EQ(match(r, PT_M_GET, "/nothing/here", &m), PT_ROUTE_NOT_FOUND);
    ASSERT_TRUE(m.data == NULL);
    pt_router_free(r);
}

TEST(router_params)
{
    pt_router *r = sample();
    pt_route_match m;
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(match(r, PT_M_GET, "/accounts/42", &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.data == &d_account);
    ASSERT_EQ(m.nparams, 1);
    ASSERT_MEMSTR(m.params[0].name, m.params[0].name_len, "id");
    ASSERT_MEMSTR(m.params[0].value, m.params[0].value_len, "42");

    ASSERT_EQ(match(r, PT_M_GET, "/accounts/a%20b/orders/7", &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.data == &d_orders);
    ASSERT_EQ(m.nparams, 2);
    ASSERT_MEMSTR(m.params[0].name, m.params[0].name_len, "id");
    ASSERT_MEMSTR(m.params[0].value, m.params[0].value_len, "a%20b"); /* not decoded */
    ASSERT_MEMSTR(m.params[1].name, m.params[1].name_len, "order_id");
    ASSERT_MEMSTR(m.params[1].value, m.params[1].value_len, "7");

    /* The value points into the path that was passed, which need not be NUL-terminated. */
    const char *buf = "/accounts/99?x=1";
    ASSERT_EQ(pt_router_match(r, PT_M_GET, buf, 12, &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.params[0].value == buf + 10);
    ASSERT_MEMSTR(m.params[0].value, m.params[0].value_len, "99");
    pt_router_free(r);
}

TEST(router_wildcards)
{
    pt_router *r = sample();
    pt_route_match m;
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(match(r, PT_M_POST, "/mcp/a/b", &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.data == &d_mcp);
    ASSERT_EQ(m.nparams, 0); /* wildcards are not captured */
    ASSERT_EQ(match(r, PT_M_POST, "/mcp/a", &m), PT_ROUTE_NOT_FOUND);
    ASSERT_EQ(match(r, PT_M_POST, "/mcp/a/b/c", &m), PT_ROUTE_NOT_FOUND);
    ASSERT_EQ(match(r, PT_M_GET, "/files/report.csv", &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.data == &d_wild);
    /* `*` is one segment, and never an empty one. */
    ASSERT_EQ(match(r, PT_M_GET, "/files/a/b", &m), PT_ROUTE_NOT_FOUND);
    ASSERT_EQ(match(r, PT_M_GET, "/files/", &m), PT_ROUTE_NOT_FOUND);
    ASSERT_EQ(match(r, PT_M_POST, "/mcp//b", &m), PT_ROUTE_NOT_FOUND);
    pt_router_free(r);
}

TEST(router_literal_beats_param)
{
    pt_router *r = sample();
    pt_route_match m;
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(match(r, PT_M_GET, "/accounts/me", &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.data == &d_me);
    ASSERT_EQ(m.nparams, 0);
    /* /accounts/me has no DELETE: the {id} route, which has it, serves the request. */
    ASSERT_EQ(match(r, PT_M_DELETE, "/accounts/me", &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.data == &d_account);
    ASSERT_MEMSTR(m.params[0].value, m.params[0].value_len, "me");
    pt_router_free(r);
}

TEST(router_precedence_per_position_with_backtracking)
{
    pt_router *r = pt_router_new();
    pt_route_match m;
    static int a, b, c, d, e;
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(pt_router_add(r, "/x/{p}/z", PT_M_GET, &a), 0);
    ASSERT_EQ(pt_router_add(r, "/x/y/{q}", PT_M_GET, &b), 0);
    ASSERT_EQ(pt_router_add(r, "/x/*/w", PT_M_GET, &c), 0);
    ASSERT_EQ(pt_router_add(r, "/{s}/y/w", PT_M_GET, &d), 0);
    ASSERT_EQ(pt_router_add(r, "/*/*/*", PT_M_GET, &e), 0);
    /* The literal "y" at position 2 wins over {p}. */
    ASSERT_EQ(match(r, PT_M_GET, "/x/y/z", &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.data == &b);
    ASSERT_MEMSTR(m.params[0].name, m.params[0].name_len, "q");
    ASSERT_MEMSTR(m.params[0].value, m.params[0].value_len, "z");
    /* "/x/y/w": literal x, literal y, then {q}, before the wildcard or {s} routes. */
    ASSERT_EQ(match(r, PT_M_GET, "/x/y/w", &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.data == &b);
    /* The literal y branch dead-ends ("/x/q/z" has no y): backtrack to {p}. */
    ASSERT_EQ(match(r, PT_M_GET, "/x/q/z", &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.data == &a);
    ASSERT_MEMSTR(m.params[0].value, m.params[0].value_len, "q");
    /* {p} dead-ends on w: backtrack to `*`. */
    ASSERT_EQ(match(r, PT_M_GET, "/x/q/w", &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.data == &c);
    ASSERT_EQ(m.nparams, 0);
    /* The whole literal x subtree dead-ends: back to the root's {s}. */
    ASSERT_EQ(match(r, PT_M_GET, "/k/y/w", &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.data == &d);
    ASSERT_MEMSTR(m.params[0].name, m.params[0].name_len, "s");
    ASSERT_MEMSTR(m.params[0].value, m.params[0].value_len, "k");
    ASSERT_EQ(match(r, PT_M_GET, "/k/l/m", &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.data == &e);
    ASSERT_EQ(match(r, PT_M_GET, "/k/l", &m), PT_ROUTE_NOT_FOUND);
    pt_router_free(r);
}

TEST(router_405_with_allow)
{
    pt_router *r = sample();
    pt_route_match m;
    char allow[64];
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(match(r, PT_M_DELETE, "/accounts", &m), PT_ROUTE_METHOD);
    ASSERT_EQ(m.allow, PT_M_GET | PT_M_HEAD | PT_M_POST);
    ASSERT_TRUE(m.data == NULL);
    pt_http_format_methods(m.allow, allow, sizeof(allow));
    ASSERT_STREQ(allow, "GET, POST, HEAD");
    /* The allow mask is the union of every route matching the path. */
    ASSERT_EQ(match(r, PT_M_POST, "/accounts/me", &m), PT_ROUTE_METHOD);
    ASSERT_EQ(m.allow, PT_M_GET | PT_M_HEAD | PT_M_PUT | PT_M_DELETE);
    ASSERT_EQ(match(r, PT_M_GET, "/mcp/a/b", &m), PT_ROUTE_METHOD);
    ASSERT_EQ(m.allow, PT_M_POST);
    /* An unknown method (bit 0) is a 405 on an existing path, not a 404. */
    ASSERT_EQ(match(r, 0, "/accounts", &m), PT_ROUTE_METHOD);
    ASSERT_EQ(match(r, 0, "/missing", &m), PT_ROUTE_NOT_FOUND);
    ASSERT_EQ(m.allow, 0);
    pt_router_free(r);
}

TEST(router_head_matches_get)
{
    pt_router *r = sample();
    pt_route_match m;
    static int head_only;
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(match(r, PT_M_HEAD, "/accounts/7", &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.data == &d_account);
    ASSERT_EQ(match(r, PT_M_HEAD, "/mcp/a/b", &m), PT_ROUTE_METHOD);
    /* An explicit HEAD route wins over GET for HEAD requests. */
    ASSERT_EQ(pt_router_add(r, "/accounts", PT_M_HEAD, &head_only), 0);
    ASSERT_EQ(match(r, PT_M_HEAD, "/accounts", &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.data == &head_only);
    ASSERT_EQ(match(r, PT_M_GET, "/accounts", &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.data == &d_accounts);
    pt_router_free(r);
}

TEST(router_trailing_slash_is_significant)
{
    pt_router *r = sample();
    pt_route_match m;
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(match(r, PT_M_GET, "/accounts/", &m), PT_ROUTE_NOT_FOUND);
    ASSERT_EQ(match(r, PT_M_GET, "/accounts/42/", &m), PT_ROUTE_NOT_FOUND);
    ASSERT_EQ(match(r, PT_M_GET, "//accounts", &m), PT_ROUTE_NOT_FOUND);
    ASSERT_EQ(match(r, PT_M_GET, "/accounts//42", &m), PT_ROUTE_NOT_FOUND);
    ASSERT_EQ(match(r, PT_M_GET, "", &m), PT_ROUTE_NOT_FOUND);
    ASSERT_EQ(match(r, PT_M_GET, "accounts", &m), PT_ROUTE_NOT_FOUND);
    pt_router_free(r);
}

TEST(router_empty_router)
{
    pt_router *r = pt_router_new();
    pt_route_match m;
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(match(r, PT_M_GET, "/", &m), PT_ROUTE_NOT_FOUND);
    ASSERT_EQ(match(r, PT_M_GET, "/a", &m), PT_ROUTE_NOT_FOUND);
    pt_router_free(r);
    pt_router_free(NULL);
}

TEST(router_add_conflicts)
{
    pt_router *r = sample();
    static int x;
    ASSERT_TRUE(r != NULL);
    ASSERT_EQ(pt_router_add(r, "/accounts", PT_M_GET, &x), PT_EEXIST);
    /* Same shape, other parameter name, overlapping methods: a conflict. */
    ASSERT_EQ(pt_router_add(r, "/accounts/{account}", PT_M_PUT, &x), PT_EEXIST);
    /* Same shape with disjoint methods may coexist, with its own parameter names. */
    ASSERT_EQ(pt_router_add(r, "/accounts/{account}", PT_M_PATCH, &x), 0);
    pt_route_match m;
    ASSERT_EQ(match(r, PT_M_PATCH, "/accounts/5", &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.data == &x);
    ASSERT_MEMSTR(m.params[0].name, m.params[0].name_len, "account");
    ASSERT_EQ(match(r, PT_M_PUT, "/accounts/5", &m), PT_ROUTE_FOUND);
    ASSERT_TRUE(m.data == &d_account);
    ASSERT_MEMSTR(m.params[0].name, m.params[0].name_len, "id");
    ASSERT_EQ(pt_router_add(r, "/accounts", PT_M_DELETE, &d_post), 0);
    ASSERT_EQ(pt_router_add(r, "/bad/{x", PT_M_GET, &x), PT_EINVAL);
    ASSERT_EQ(pt_router_add(r, "/ok", 0, &x), PT_EINVAL);
    pt_router_free(r);
}

TEST(router_many_routes)
{
    pt_router *r = pt_router_new();
    static int data[500];
    char path[64];
    pt_route_match m;
    ASSERT_TRUE(r != NULL);
    for (int i = 0; i < 500; i++) {
        snprintf(path, sizeof(path), "/t%d/{id}/x%d", i * 7919 % 500, i);
        ASSERT_EQ(pt_router_add(r, path, PT_M_GET, &data[i]), 0);
    }
    for (int i = 0; i < 500; i++) {
        snprintf(path, sizeof(path), "/t%d/abc/x%d", i * 7919 % 500, i);
        ASSERT_EQ(match(r, PT_M_GET, path, &m), PT_ROUTE_FOUND);
        ASSERT_TRUE(m.data == &data[i]);
        ASSERT_MEMSTR(m.params[0].value, m.params[0].value_len, "abc");
    }
    ASSERT_EQ(match(r, PT_M_GET, "/t1000/abc/x1", &m), PT_ROUTE_NOT_FOUND);
    pt_router_free(r);
}

TEST(router_segment_and_param_limits)
{
    char pat[512], err[128];
    size_t len = 0;
    pt_router *r = pt_router_new();
    pt_route_match m;
    static int deep;
    ASSERT_TRUE(r != NULL);

    /* 32 segments: the maximum. */
    for (int i = 0; i < PT_ROUTER_MAX_SEGMENTS; i++)
        len += (size_t)snprintf(pat + len, sizeof(pat) - len, "/s%d", i);
    ASSERT_EQ(pt_http_check_path(pat, err, sizeof(err)), 0);
    ASSERT_EQ(pt_router_add(r, pat, PT_M_GET, &deep), 0);
    ASSERT_EQ(match(r, PT_M_GET, pat, &m), PT_ROUTE_FOUND);
    /* One more is too many, as a pattern and as a path. */
    snprintf(pat + len, sizeof(pat) - len, "/s32");
    ASSERT_EQ(pt_http_check_path(pat, err, sizeof(err)), PT_EINVAL);
    ASSERT_STREQ(err, "too many segments in path (max 32)");
    ASSERT_EQ(match(r, PT_M_GET, pat, &m), PT_ROUTE_NOT_FOUND);

    /* 16 parameters is the maximum; 17 are rejected. */
    len = 0;
    for (int i = 0; i < PT_ROUTER_MAX_PARAMS; i++)
        len += (size_t)snprintf(pat + len, sizeof(pat) - len, "/{p%d}", i);
    ASSERT_EQ(pt_router_add(r, pat, PT_M_GET, &d_deep), 0);
    ASSERT_EQ(match(r, PT_M_GET, "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p", &m), PT_ROUTE_FOUND);
    ASSERT_EQ(m.nparams, 16);
    ASSERT_MEMSTR(m.params[15].name, m.params[15].name_len, "p15");
    ASSERT_MEMSTR(m.params[15].value, m.params[15].value_len, "p");
    snprintf(pat + len, sizeof(pat) - len, "/{p16}");
    ASSERT_EQ(pt_http_check_path(pat, err, sizeof(err)), PT_EINVAL);
    ASSERT_STREQ(err, "too many parameters in path (max 16)");
    pt_router_free(r);
}

/* Checks that pattern is rejected with exactly the message want. */
static void
check_bad(const char *pattern, const char *want)
{
    char err[128] = "";
    ASSERT_EQ(pt_http_check_path(pattern, err, sizeof(err)), PT_EINVAL);
    ASSERT_STREQ(err, want);
    ASSERT_TRUE(strchr(err, '\n') == NULL);
}

TEST(router_check_path_accepts)
{
    static const char *good[] = {
        "/",          "/a",          "/accounts/{id}",   "/mcp/*/*",    "/v1.2/x~y",
        "/a-b_c/d.e", "/{_x1}",      "/a:b@c!$&'()+,;=", "/_portico_x", "/webhooks",
        "/webhook2",  "/x/_portico", "/x/webhook/y",     "/{a}/{b}/*",  "/..a/b..",
        "/Webhook",
    };
    char err[128];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ASSERT_EQ(pt_http_check_path(good[i], err, sizeof(err)), 0);
        ASSERT_STREQ(err, "");
    }
}

TEST(router_check_path_rejects)
{
    check_bad("", "path must start with '/'");
    check_bad("accounts", "path must start with '/'");
    check_bad(NULL, "path must start with '/'");
    check_bad("/_portico/health", "the /_portico/ prefix is reserved");
    check_bad("/_portico", "the /_portico/ prefix is reserved");
    check_bad("/webhook/abc", "the /webhook/ prefix is reserved");
    check_bad("/webhook", "the /webhook/ prefix is reserved");
    check_bad("/a b", "bad character ' ' in path");
    check_bad("/a%20b", "bad character '%' in path");
    check_bad("/a?x=1", "bad character '?' in path");
    check_bad("/a#x", "bad character '#' in path");
    check_bad("/caf\xc3\xa9", "bad character (byte 0xc3) in path");
    check_bad("/a\tb", "bad character (byte 0x09) in path");
    check_bad("/a//b", "empty segment in path");
    check_bad("//", "empty segment in path");
    check_bad("/a/", "path must not end with '/'");
    check_bad("/a/{id}/{id}", "duplicate parameter name 'id'");
    check_bad("/{}", "empty parameter name in path");
    check_bad("/{1x}", "bad parameter name '1x' (letters, digits and '_', not starting with a "
                       "digit)");
    check_bad("/{a-b}", "bad parameter name 'a-b' (letters, digits and '_', not starting with "
                        "a digit)");
    check_bad("/{id", "a parameter must be a whole segment: '{id'");
    check_bad("/{id}x", "a parameter must be a whole segment: '{id}x'");
    check_bad("/x{id}", "a parameter must be a whole segment: 'x{id}'");
    check_bad("/a*", "'*' must be a whole segment: 'a*'");
    check_bad("/**", "'*' must be a whole segment: '**'");
    check_bad("/a/./b", "'.' and '..' segments are not allowed in path");
    check_bad("/..", "'.' and '..' segments are not allowed in path");
}

TEST(router_check_path_too_long)
{
    char pat[1100], err[128];
    memset(pat, 'a', sizeof(pat) - 1);
    pat[0] = '/';
    pat[sizeof(pat) - 1] = '\0';
    ASSERT_EQ(pt_http_check_path(pat, err, sizeof(err)), PT_EINVAL);
    ASSERT_STREQ(err, "path is too long (max 1024 bytes)");
    /* A NULL or tiny error buffer is fine. */
    ASSERT_EQ(pt_http_check_path(pat, NULL, 0), PT_EINVAL);
    ASSERT_EQ(pt_http_check_path(pat, err, 1), PT_EINVAL);
    ASSERT_STREQ(err, "");
}

TEST(router_methods_parse_and_format)
{
    unsigned mask = 0;
    char out[64];
    ASSERT_EQ(pt_http_parse_methods("GET", &mask), 0);
    ASSERT_EQ(mask, PT_M_GET);
    ASSERT_EQ(pt_http_parse_methods(" get , Post,DELETE ", &mask), 0);
    ASSERT_EQ(mask, PT_M_GET | PT_M_POST | PT_M_DELETE);
    ASSERT_EQ(pt_http_parse_methods("put,patch,head,options", &mask), 0);
    ASSERT_EQ(mask, PT_M_PUT | PT_M_PATCH | PT_M_HEAD | PT_M_OPTIONS);
    mask = 99;
    ASSERT_EQ(pt_http_parse_methods("", &mask), PT_EINVAL);
    ASSERT_EQ(pt_http_parse_methods("GET,", &mask), PT_EINVAL);
    ASSERT_EQ(pt_http_parse_methods("GET,,POST", &mask), PT_EINVAL);
    ASSERT_EQ(pt_http_parse_methods("GET POST", &mask), PT_EINVAL);
    ASSERT_EQ(pt_http_parse_methods("TRACE", &mask), PT_EINVAL);
    ASSERT_EQ(pt_http_parse_methods("GETS", &mask), PT_EINVAL);
    ASSERT_EQ(pt_http_parse_methods("OPTIONSX", &mask), PT_EINVAL);
    ASSERT_EQ(pt_http_parse_methods(NULL, &mask), PT_EINVAL);
    ASSERT_EQ(mask, 99);

    ASSERT_EQ(pt_http_method_bit("GET", 3), PT_M_GET);
    ASSERT_EQ(pt_http_method_bit("OPTIONS", 7), PT_M_OPTIONS);
    ASSERT_EQ(pt_http_method_bit("GETX", 3), PT_M_GET);
    ASSERT_EQ(pt_http_method_bit("get", 3), 0);
    ASSERT_EQ(pt_http_method_bit("GE", 2), 0);
    ASSERT_EQ(pt_http_method_bit("", 0), 0);

    pt_http_format_methods(PT_M_GET | PT_M_POST, out, sizeof(out));
    ASSERT_STREQ(out, "GET, POST");
    pt_http_format_methods(0x7f, out, sizeof(out));
    ASSERT_STREQ(out, "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS");
    pt_http_format_methods(0, out, sizeof(out));
    ASSERT_STREQ(out, "");
    pt_http_format_methods(PT_M_GET | PT_M_POST, out, 8);
    ASSERT_STREQ(out, "GET"); /* cut at a whole name */
    pt_http_format_methods(PT_M_GET, out, 3);
    ASSERT_STREQ(out, "");
}

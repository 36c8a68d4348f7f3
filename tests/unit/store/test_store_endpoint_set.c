/* test_store_endpoint_set.c - unit tests for pt_store_endpoint_set: an endpoint changed in
 * place, in one transaction, with the refusals of add and nothing changed after one. */
#include <stdio.h>
#include <stdlib.h>

#include "core/err.h"
#include "core/http.h"
#include "store/changes.h"
#include "store/store.h"
#include "store/store_test.h"
#include "test.h"

TEST(store_endpoint_set)
{
    char dir[64] = "/tmp/pt-test-epset-XXXXXX", err[256];
    pt_store *st = NULL;
    pt_endpoint ep = {0}, got = {0};
    int v;

    ASSERT_TRUE(pt_test_store_dir(mkdtemp(dir)) != NULL);
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);
    ASSERT_EQ(pt_store_script_put(st, "a", "x = 1\n", 6, &v), 0);
    ASSERT_EQ(pt_store_script_put(st, "b", "x = 2\n", 6, &v), 0);
    ep = (pt_endpoint){.name = "one",
                       .path = "/one",
                       .methods = PT_M_GET,
                       .script = "a",
                       .auth = "public",
                       .created = 1000};
    ASSERT_EQ(pt_store_endpoint_add(st, &ep), 0);
    ep = (pt_endpoint){
        .name = "two", .path = "/two/{id}", .methods = PT_M_GET, .script = "a", .auth = "public"};
    ASSERT_EQ(pt_store_endpoint_add(st, &ep), 0);

    /* Every field but the name and the created time changes; the counter moves. */
    uint64_t before = pt_test_store_counter(dir);
    ep = (pt_endpoint){.name = "one",
                       .path = "/uno",
                       .methods = PT_M_GET | PT_M_POST,
                       .script = "b",
                       .auth = "apikey"};
    ASSERT_EQ(pt_store_endpoint_set(st, &ep), 0);
    ASSERT_GT(pt_test_store_counter(dir), before);
    ASSERT_EQ(pt_store_endpoint_get(st, "one", &got), 0);
    ASSERT_STREQ(got.path, "/uno");
    ASSERT_EQ(got.methods, PT_M_GET | PT_M_POST);
    ASSERT_STREQ(got.script, "b");
    ASSERT_STREQ(got.auth, "apikey");
    ASSERT_EQ(got.created, 1000);
    pt_endpoint_clear(&got);
    /* Keeping its own path is no conflict. */
    ASSERT_EQ(pt_store_endpoint_set(st, &ep), 0);

    /* Refusals change nothing. */
    ep.path = "/two/{x}"; /* the other endpoint's shape */
    ASSERT_EQ(pt_store_endpoint_set(st, &ep), PT_EEXIST);
    ASSERT_STREQ(pt_store_errmsg(st), "endpoint 'two' already uses path /two/{id}");
    ep.path = "/uno";
    ep.script = "ghost";
    ASSERT_EQ(pt_store_endpoint_set(st, &ep), PT_ENOTFOUND);
    ASSERT_STREQ(pt_store_errmsg(st), "no script named 'ghost'");
    ep.script = "a";
    ep.name = "nobody";
    ASSERT_EQ(pt_store_endpoint_set(st, &ep), PT_ENOTFOUND);
    ASSERT_STREQ(pt_store_errmsg(st), "no endpoint named 'nobody'");
    ep.name = "one";
    ep.auth = "basic";
    ASSERT_EQ(pt_store_endpoint_set(st, &ep), PT_EINVAL);
    ASSERT_EQ(pt_store_endpoint_get(st, "one", &got), 0);
    ASSERT_STREQ(got.path, "/uno");
    ASSERT_STREQ(got.script, "b");
    ASSERT_STREQ(got.auth, "apikey");
    pt_endpoint_clear(&got);

    pt_store_close(st);
    pt_test_rm_tree(dir);
}

/* test_store.c - unit tests for the metadata store (store/store.c and the files per record kind)
 * and store/changes, on a temporary data dir. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/http.h"
#include "store/changes.h"
#include "store/store.h"
#include "store/store_test.h"
#include "test.h"

/* Creates an empty data dir; returns its path (static buffer). */
static const char *
tmp_datadir(char *buf, size_t n)
{
    snprintf(buf, n, "/tmp/pt-test-store-XXXXXX");
    return pt_test_store_dir(mkdtemp(buf));
}

TEST(store_name_valid)
{
    ASSERT_TRUE(pt_store_name_valid("accounts"));
    ASSERT_TRUE(pt_store_name_valid("dw_2"));
    ASSERT_TRUE(pt_store_name_valid("a.b-c"));
    ASSERT_TRUE(pt_store_name_valid("_x"));
    ASSERT_FALSE(pt_store_name_valid(""));
    ASSERT_FALSE(pt_store_name_valid("-x"));
    ASSERT_FALSE(pt_store_name_valid(".x"));
    ASSERT_FALSE(pt_store_name_valid("a b"));
    ASSERT_FALSE(pt_store_name_valid("a/b"));
    ASSERT_FALSE(pt_store_name_valid("a'b"));

    char name[80];
    memset(name, 'x', sizeof name);
    name[64] = '\0';
    ASSERT_TRUE(pt_store_name_valid(name)); /* 64 characters: the maximum */
    name[64] = 'x';
    name[65] = '\0';
    ASSERT_FALSE(pt_store_name_valid(name));
}

TEST(store_open_missing_dir)
{
    pt_store *st = NULL;
    char err[256];

    ASSERT_EQ(pt_store_create("/nonexistent/pt-test", &st, err, sizeof err), PT_ENOTFOUND);
    ASSERT_TRUE(st == NULL);
    ASSERT_TRUE(strstr(err, "/nonexistent/pt-test") != NULL);
}

TEST(store_scripts_versions_rollback)
{
    char dir[64], err[256];
    pt_store *st = NULL;
    pt_script *s = NULL, *list = NULL;
    size_t n = 0;
    int v = 0, cur = 0;
    uint64_t c0;

    ASSERT_TRUE(tmp_datadir(dir, sizeof dir) != NULL);
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);
    c0 = pt_test_store_counter(dir);

    ASSERT_EQ(pt_store_script_put(st, "greet", "v1", 2, &v), 0);
    ASSERT_EQ(v, 1);
    ASSERT_EQ(pt_test_store_counter(dir), c0 + 1);
    ASSERT_EQ(pt_store_script_put(st, "greet", "v2", 2, &v), 0);
    ASSERT_EQ(pt_store_script_put(st, "greet", "v3!", 3, &v), 0);
    ASSERT_EQ(v, 3);
    ASSERT_EQ(pt_test_store_counter(dir), c0 + 3);

    ASSERT_EQ(pt_store_script_get(st, "greet", 0, &s), 0);
    ASSERT_EQ(s->version, 3);
    ASSERT_EQ(s->current, 3);
    ASSERT_MEMSTR(s->source, s->source_len, "v3!");
    ASSERT_EQ(s->source[s->source_len], '\0');
    pt_script_free(s);
    s = NULL;
    ASSERT_EQ(pt_store_script_get(st, "greet", 1, &s), 0);
    ASSERT_STREQ(s->source, "v1");
    ASSERT_EQ(s->current, 3);
    pt_script_free(s);
    s = NULL;

    ASSERT_EQ(pt_store_script_get(st, "greet", 9, &s), PT_ENOTFOUND);
    ASSERT_TRUE(strstr(pt_store_errmsg(st), "no version 9") != NULL);
    ASSERT_EQ(pt_store_script_get(st, "nope", 0, &s), PT_ENOTFOUND);
    ASSERT_STREQ(pt_store_errmsg(st), "no script named 'nope'");

    ASSERT_EQ(pt_store_script_rollback(st, "greet", 0, &cur), 0);
    ASSERT_EQ(cur, 2);
    ASSERT_EQ(pt_store_script_rollback(st, "greet", 0, &cur), 0);
    ASSERT_EQ(cur, 1);
    ASSERT_EQ(pt_store_script_rollback(st, "greet", 0, &cur), PT_EINVAL);
    ASSERT_EQ(pt_store_script_rollback(st, "greet", 3, &cur), 0);
    ASSERT_EQ(cur, 3);
    ASSERT_EQ(pt_store_script_rollback(st, "greet", 7, &cur), PT_ENOTFOUND);
    ASSERT_EQ(pt_store_script_rollback(st, "nope", 0, &cur), PT_ENOTFOUND);

    ASSERT_EQ(pt_store_script_versions(st, "greet", &list, &n), 0);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(list[0].version, 1);
    ASSERT_EQ(list[2].version, 3);
    ASSERT_EQ(list[0].current, 3);
    pt_store_scripts_free(list, n);

    ASSERT_EQ(pt_store_script_put(st, "alpha", "a", 1, &v), 0);
    ASSERT_EQ(pt_store_script_list(st, &list, &n), 0);
    ASSERT_EQ(n, 2);
    ASSERT_STREQ(list[0].name, "alpha");
    ASSERT_STREQ(list[1].name, "greet");
    ASSERT_STREQ(list[1].source, "v3!");
    pt_store_scripts_free(list, n);

    /* Removing and re-adding never reuses a version number. */
    ASSERT_EQ(pt_store_script_rm(st, "greet"), 0);
    ASSERT_EQ(pt_store_script_rm(st, "greet"), PT_ENOTFOUND);
    ASSERT_EQ(pt_store_script_put(st, "greet", "again", 5, &v), 0);
    ASSERT_EQ(v, 4);

    ASSERT_EQ(pt_store_script_put(st, " bad name", "x", 1, &v), PT_EINVAL);
    ASSERT_EQ(pt_store_script_put(st, "nul", "a\0b", 3, &v), PT_EINVAL);
    pt_store_close(st);
    pt_test_rm_tree(dir);
}

TEST(store_endpoints)
{
    char dir[64], err[256];
    pt_store *st = NULL;
    pt_endpoint ep = {0}, got = {0}, *list = NULL;
    size_t n = 0;
    int v;

    ASSERT_TRUE(tmp_datadir(dir, sizeof dir) != NULL);
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);
    ASSERT_EQ(pt_store_script_put(st, "acc", "x = 1\n", 6, &v), 0);

    ep.name = "accounts";
    ep.path = "/accounts";
    ep.methods = PT_M_GET | PT_M_POST;
    ep.script = "acc";
    ep.auth = "public";
    ASSERT_EQ(pt_store_endpoint_add(st, &ep), 0);

    ep.name = "accounts";
    ep.path = "/other";
    ASSERT_EQ(pt_store_endpoint_add(st, &ep), PT_EEXIST);
    ASSERT_STREQ(pt_store_errmsg(st), "endpoint 'accounts' already exists");

    ep.name = "a2";
    ep.path = "/accounts";
    ASSERT_EQ(pt_store_endpoint_add(st, &ep), PT_EEXIST);
    ASSERT_STREQ(pt_store_errmsg(st), "endpoint 'accounts' already uses path /accounts");

    ep.name = "cust";
    ep.path = "/customers/{id}";
    ASSERT_EQ(pt_store_endpoint_add(st, &ep), 0);
    ep.name = "cust2";
    ep.path = "/customers/{cid}"; /* the same shape */
    ASSERT_EQ(pt_store_endpoint_add(st, &ep), PT_EEXIST);
    ASSERT_STREQ(pt_store_errmsg(st), "endpoint 'cust' already uses path /customers/{id}");
    ep.path = "/customers/*";
    ASSERT_EQ(pt_store_endpoint_add(st, &ep), PT_EEXIST);
    ep.path = "/customers/me"; /* a literal is a different route */
    ASSERT_EQ(pt_store_endpoint_add(st, &ep), 0);

    ep.name = "bad";
    ep.path = "/_portico/x";
    ASSERT_EQ(pt_store_endpoint_add(st, &ep), PT_EINVAL);
    ep.path = "nope";
    ASSERT_EQ(pt_store_endpoint_add(st, &ep), PT_EINVAL);
    ep.path = "/fine";
    ep.auth = "basic";
    ASSERT_EQ(pt_store_endpoint_add(st, &ep), PT_EINVAL);
    ep.auth = "jwt"; /* the store accepts jwt; only the CLI refuses it for now */
    ep.script = "ghost";
    ASSERT_EQ(pt_store_endpoint_add(st, &ep), PT_ENOTFOUND);
    ASSERT_STREQ(pt_store_errmsg(st), "no script named 'ghost'");
    ep.script = "acc";
    ep.methods = 0;
    ASSERT_EQ(pt_store_endpoint_add(st, &ep), PT_EINVAL);

    ASSERT_EQ(pt_store_endpoint_get(st, "cust", &got), 0);
    ASSERT_STREQ(got.path, "/customers/{id}");
    ASSERT_EQ(got.methods, PT_M_GET | PT_M_POST);
    ASSERT_STREQ(got.script, "acc");
    ASSERT_STREQ(got.auth, "public");
    ASSERT_GT(got.created, 0);
    pt_endpoint_clear(&got);
    ASSERT_EQ(pt_store_endpoint_get(st, "nope", &got), PT_ENOTFOUND);

    ASSERT_EQ(pt_store_endpoint_list(st, &list, &n), 0);
    ASSERT_EQ(n, 3);
    ASSERT_STREQ(list[0].name, "accounts");
    ASSERT_STREQ(list[1].name, "cust");
    ASSERT_STREQ(list[2].name, "cust2");
    pt_store_endpoints_free(list, n);

    ASSERT_EQ(pt_store_script_rm(st, "acc"), PT_EEXIST);
    ASSERT_STREQ(pt_store_errmsg(st), "script 'acc' is used by endpoint 'accounts'");
    ASSERT_EQ(pt_store_endpoint_rm(st, "accounts"), 0);
    ASSERT_EQ(pt_store_endpoint_rm(st, "accounts"), PT_ENOTFOUND);
    ASSERT_EQ(pt_store_endpoint_rm(st, "cust"), 0);
    ASSERT_EQ(pt_store_endpoint_rm(st, "cust2"), 0);
    ASSERT_EQ(pt_store_script_rm(st, "acc"), 0);
    pt_store_close(st);
    pt_test_rm_tree(dir);
}

TEST(store_connections)
{
    char dir[64], err[256], expect[128];
    pt_store *st = NULL;
    pt_connection c = {0}, got = {0}, *list = NULL;
    size_t n = 0;

    ASSERT_TRUE(tmp_datadir(dir, sizeof dir) != NULL);
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);

    ASSERT_EQ(pt_store_connection_get(st, "dw", &got), 0);
    ASSERT_STREQ(got.kind, "sqlite");
    snprintf(expect, sizeof expect, "%s/warehouse/dw", dir);
    ASSERT_STREQ(got.dsn, expect);
    pt_connection_clear(&got);

    c.name = "dw_2";
    c.kind = "sqlite";
    c.dsn = "warehouse/dw_2";
    ASSERT_EQ(pt_store_connection_add(st, &c), 0);
    ASSERT_EQ(pt_store_connection_add(st, &c), PT_EEXIST);
    c.name = "dw";
    ASSERT_EQ(pt_store_connection_add(st, &c), PT_EEXIST);
    c.name = "abs";
    c.dsn = "/srv/wh";
    ASSERT_EQ(pt_store_connection_add(st, &c), 0);
    c.name = "bad";
    c.kind = "oracle";
    ASSERT_EQ(pt_store_connection_add(st, &c), PT_EINVAL);

    ASSERT_EQ(pt_store_connection_get(st, "dw_2", &got), 0);
    snprintf(expect, sizeof expect, "%s/warehouse/dw_2", dir);
    ASSERT_STREQ(got.dsn, expect);
    pt_connection_clear(&got);
    ASSERT_EQ(pt_store_connection_get(st, "abs", &got), 0);
    ASSERT_STREQ(got.dsn, "/srv/wh");
    pt_connection_clear(&got);
    ASSERT_EQ(pt_store_connection_get(st, "nope", &got), PT_ENOTFOUND);

    ASSERT_EQ(pt_store_connection_list(st, &list, &n), 0);
    ASSERT_EQ(n, 3);
    ASSERT_STREQ(list[0].name, "dw");
    ASSERT_STREQ(list[1].name, "abs");
    ASSERT_STREQ(list[2].name, "dw_2");
    pt_store_connections_free(list, n);

    ASSERT_EQ(pt_store_connection_rm(st, "dw"), PT_EINVAL);
    ASSERT_EQ(pt_store_connection_rm(st, "abs"), 0);
    ASSERT_EQ(pt_store_connection_rm(st, "abs"), PT_ENOTFOUND);
    pt_store_close(st);
    pt_test_rm_tree(dir);
}

TEST(store_reopen_keeps_data)
{
    char dir[64], err[256];
    pt_store *a = NULL, *b = NULL;
    pt_script *s = NULL;
    int v;

    ASSERT_TRUE(tmp_datadir(dir, sizeof dir) != NULL);
    ASSERT_EQ(pt_store_create(dir, &a, err, sizeof err), 0);
    ASSERT_EQ(pt_store_create(dir, &b, err, sizeof err), 0); /* two handles, as CLI + worker */
    ASSERT_EQ(pt_store_script_put(a, "s", "one", 3, &v), 0);
    ASSERT_EQ(pt_store_script_get(b, "s", 0, &s), 0);
    ASSERT_STREQ(s->source, "one");
    pt_script_free(s);
    pt_store_close(a);
    pt_store_close(b);
    ASSERT_EQ(pt_store_create(dir, &a, err, sizeof err), 0);
    ASSERT_EQ(pt_store_script_get(a, "s", 1, &s), 0);
    pt_script_free(s);
    pt_store_close(a);
    pt_test_rm_tree(dir);
}

TEST(changes_counter_shared)
{
    char dir[64];
    pt_changes *a = NULL, *b = NULL;
    uint64_t v0;

    ASSERT_TRUE(tmp_datadir(dir, sizeof dir) != NULL);
    ASSERT_EQ(pt_changes_open(dir, &a), 0);
    ASSERT_EQ(pt_changes_open(dir, &b), 0);
    v0 = pt_changes_read(a);
    ASSERT_EQ(v0, 0);
    pt_changes_bump(b);
    ASSERT_EQ(pt_changes_read(a), 1);
    ASSERT_EQ(pt_changes_bump_dir(dir), 0);
    ASSERT_EQ(pt_changes_read(a), 2);
    ASSERT_EQ(pt_changes_read(b), 2);
    pt_changes_close(a);
    pt_changes_close(b);
    pt_changes_close(NULL);
    ASSERT_EQ(pt_changes_bump_dir("/nonexistent/pt-test"), PT_EIO);
    pt_test_rm_tree(dir);
}

TEST(store_only_create_makes_a_store)
{
    char dir[64], path[128], err[512];
    pt_store *st = NULL;
    struct stat sb;
    FILE *f;
    if (pt_test_pg_dsn() != NULL)
        return; /* about SQLite's file: see test_store_pg.c */

    ASSERT_TRUE(tmp_datadir(dir, sizeof dir) != NULL);
    snprintf(path, sizeof path, "%s/portico.db", dir);
    ASSERT_EQ(pt_store_open(dir, &st, err, sizeof err), PT_ENOTFOUND);
    ASSERT_TRUE(strstr(err, "portico init") != NULL);
    ASSERT_TRUE(stat(path, &sb) != 0); /* nothing created */

    f = fopen(path, "w");
    ASSERT_TRUE(f != NULL);
    fclose(f);
    ASSERT_EQ(pt_store_open(dir, &st, err, sizeof err), PT_EDB);
    ASSERT_TRUE(strstr(err, path) != NULL);
    ASSERT_TRUE(strstr(err, "is empty (0 bytes): not a Portico store") != NULL);
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), PT_EDB); /* never replaced either */
    ASSERT_TRUE(stat(path, &sb) == 0 && sb.st_size == 0);

    f = fopen(path, "w");
    ASSERT_TRUE(f != NULL);
    fputs("SQLite format 3 is what this file pretends to be, and nothing more.", f);
    fclose(f);
    ASSERT_EQ(pt_store_open(dir, &st, err, sizeof err), PT_EDB);
    ASSERT_TRUE(strstr(err, "is not a database") != NULL);

    ASSERT_EQ(unlink(path), 0);
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);
    pt_store_close(st);
    ASSERT_EQ(pt_store_open(dir, &st, err, sizeof err), 0);
    pt_store_close(st);
    pt_test_rm_tree(dir);
}

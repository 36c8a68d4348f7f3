/* test_store_auth.c - unit tests for the authorization tables of store/store_auth.c: the
 * migration from schema version 1, which mutations bump the change counter, and last-used
 * times that only ever move forward. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "core/err.h"
#include "store/changes.h"
#include "store/store.h"
#include "store/store_test.h"
#include "test.h"

TEST(store_migrates_version_1_to_the_auth_tables)
{
    char dir[] = "/tmp/pt-test-store-auth-XXXXXX", path[4200], err[256];
    pt_store *st = NULL;
    sqlite3 *db = NULL;
    pt_token *list = NULL;
    size_t n = 9;
    if (pt_test_pg_dsn() != NULL)
        return; /* about SQLite's file: see test_store_pg.c */

    ASSERT_TRUE(pt_test_store_dir(mkdtemp(dir)) != NULL);
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);
    pt_store_close(st);
    st = NULL;
    /* Make it a version 1 store, as issue 2 left it. */
    snprintf(path, sizeof path, "%s/portico.db", dir);
    ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "DROP TABLE tokens; DROP TABLE apikeys; DROP TABLE secrets; "
                           "DROP TABLE issuers; PRAGMA user_version = 1;",
                           NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(db);
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);
    ASSERT_EQ(pt_store_token_list(st, &list, &n), 0);
    ASSERT_EQ(n, 0);
    pt_store_tokens_free(list, n);
    pt_store_close(st);
    pt_test_rm_tree(dir);
}

TEST(store_auth_mutations_bump_but_last_used_does_not)
{
    char dir[] = "/tmp/pt-test-store-auth-XXXXXX", err[256];
    pt_store *st = NULL;
    pt_token t = {.id = "t1", .name = "partner", .created = 100};
    pt_token *list = NULL;
    size_t n = 0;
    uint64_t c0;

    ASSERT_TRUE(pt_test_store_dir(mkdtemp(dir)) != NULL);
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);
    c0 = pt_test_store_counter(dir);
    ASSERT_EQ(pt_store_token_add(st, &t), 0);
    ASSERT_EQ(pt_test_store_counter(dir), c0 + 1);
    ASSERT_EQ(pt_store_token_add(st, &t), PT_EEXIST);
    t.id = "t2";
    t.scope = "no-such-endpoint";
    ASSERT_EQ(pt_store_token_add(st, &t), PT_ENOTFOUND);
    ASSERT_EQ(pt_test_store_counter(dir), c0 + 1);

    pt_store_use use = {"t1", 500};
    ASSERT_EQ(pt_store_mark_used(st, &use, 1, NULL, 0), 0);
    use.when = 400; /* an older batch from another worker: ignored */
    ASSERT_EQ(pt_store_mark_used(st, &use, 1, NULL, 0), 0);
    ASSERT_EQ(pt_test_store_counter(dir), c0 + 1);
    ASSERT_EQ(pt_store_token_list(st, &list, &n), 0);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(list[0].last_used, 500);
    pt_store_tokens_free(list, n);

    ASSERT_EQ(pt_store_token_revoke(st, "t1"), 0);
    ASSERT_EQ(pt_test_store_counter(dir), c0 + 2);
    ASSERT_EQ(pt_store_token_revoke(st, "nope"), PT_ENOTFOUND);
    pt_store_close(st);
    pt_test_rm_tree(dir);
}

TEST(store_refuses_a_newer_schema)
{
    char dir[] = "/tmp/pt-test-store-auth-XXXXXX", path[4200], err[256];
    pt_store *st = NULL;
    sqlite3 *db = NULL;
    if (pt_test_pg_dsn() != NULL)
        return; /* about SQLite's file: see test_store_pg.c */

    ASSERT_TRUE(pt_test_store_dir(mkdtemp(dir)) != NULL);
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);
    pt_store_close(st);
    st = NULL;
    snprintf(path, sizeof path, "%s/portico.db", dir);
    ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    ASSERT_EQ(pt_store_open(dir, &st, err, sizeof err), PT_EINVAL);
    ASSERT_TRUE(st == NULL);
    ASSERT_TRUE(strstr(err, "schema version 99, newer than this portico") != NULL);
    pt_test_rm_tree(dir);
}

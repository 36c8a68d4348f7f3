/* test_db.c - unit tests for the store's SQL driver (store/db.h): fragments, numbered
 * placeholders, binds and columns, RETURNING, transactions and error mapping; on SQLite, and on
 * PostgreSQL when PORTICO_TEST_PG_DSN is set (store_test.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "store/db.h"
#include "store/store.h"
#include "store/store_test.h"
#include "test.h"

/* Opens (another connection to) the database of test directory dir: DIR/t.db, or on
 * PostgreSQL the schema DIR/store.dsn names. */
static int
open_dir(const char *dir, int busy_ms, pt_db **db)
{
    char path[256], err[256];
    char *dsn = NULL;
    int rc = pt_store_dsn_load(dir, &dsn, err, sizeof err);

    if (rc != 0)
        return rc;
    if (dsn != NULL) {
        rc = pt_db_open_pg(dsn, 0, busy_ms, db, err, sizeof err);
        free(dsn);
        return rc;
    }
    snprintf(path, sizeof path, "%s/t.db", dir);
    return pt_db_open_sqlite(path, PT_DB_CREATE, busy_ms, db, err, sizeof err);
}

/* Opens a new database in a new directory; dir receives the directory. */
static int
open_tmp(char *dir, size_t dirsz, pt_db **db)
{
    snprintf(dir, dirsz, "/tmp/pt-test-db-XXXXXX");
    if (pt_test_store_dir(mkdtemp(dir)) == NULL)
        return PT_EIO;
    return open_dir(dir, 1000, db);
}

TEST(db_open_missing_names_the_file)
{
    char err[256] = "";
    pt_db *db = NULL;

    ASSERT_EQ(pt_db_open_sqlite("/nonexistent/pt-test/x.db", 0, 0, &db, err, sizeof err), PT_EIO);
    ASSERT_TRUE(db == NULL);
    ASSERT_TRUE(strstr(err, "/nonexistent/pt-test/x.db") != NULL);
}

TEST(db_fragments_binds_columns_returning)
{
    char dir[64];
    pt_db *db = NULL;
    pt_db_stmt *s = NULL;
    size_t len = 0;
    const unsigned char blob[3] = {0, 0xff, 7};

    ASSERT_EQ(open_tmp(dir, sizeof dir, &db), 0);
    ASSERT_STREQ(pt_db_engine(db), pt_test_pg_dsn() != NULL ? "postgres" : "sqlite");
    ASSERT_EQ(pt_db_exec(db, "CREATE TABLE t(id {id}, name TEXT NOT NULL UNIQUE, n BIGINT, "
                             "b {blob}, note TEXT DEFAULT '{kept}')"),
              0);
    /* ?1 used twice: numbered placeholders are the portable form. */
    ASSERT_EQ(pt_db_prepare(db,
                            "INSERT INTO t(name, n, b) VALUES (?1 || '-' || ?1, ?2, ?3) "
                            "RETURNING id",
                            &s),
              0);
    ASSERT_EQ(pt_db_bind_text(s, 1, "ab", (size_t)-1), 0);
    ASSERT_EQ(pt_db_bind_int64(s, 2, INT64_C(1) << 40), 0);
    ASSERT_EQ(pt_db_bind_blob(s, 3, blob, sizeof blob), 0);
    ASSERT_EQ(pt_db_step(s), PT_DB_ROW);
    ASSERT_EQ(pt_db_column_int64(s, 0), 1);
    ASSERT_EQ(pt_db_step(s), PT_DB_DONE);
    ASSERT_EQ(pt_db_changes(db), 1);
    pt_db_reset(s);
    ASSERT_EQ(pt_db_bind_text(s, 1, "cdX", 2), 0); /* an explicit length */
    ASSERT_EQ(pt_db_bind_opt_int64(s, 2, 0), 0);   /* NULL */
    ASSERT_EQ(pt_db_bind_null(s, 3), 0);
    ASSERT_EQ(pt_db_run(s), 0);
    pt_db_finalize(s);

    ASSERT_EQ(pt_db_prepare(db, "SELECT id, name, n, b, note FROM t ORDER BY {rowid}", &s), 0);
    ASSERT_EQ(pt_db_step(s), PT_DB_ROW);
    ASSERT_STREQ(pt_db_column_text(s, 1, &len), "ab-ab");
    ASSERT_EQ(len, 5);
    ASSERT_EQ(pt_db_column_int64(s, 2), INT64_C(1) << 40);
    ASSERT_TRUE(memcmp(pt_db_column_blob(s, 3, &len), blob, sizeof blob) == 0);
    ASSERT_EQ(len, 3);
    ASSERT_STREQ(pt_db_column_text(s, 4, NULL), "{kept}"); /* unknown braces stay */
    ASSERT_EQ(pt_db_step(s), PT_DB_ROW);
    ASSERT_EQ(pt_db_column_int64(s, 0), 2);
    ASSERT_STREQ(pt_db_column_text(s, 1, NULL), "cd-cd");
    ASSERT_TRUE(pt_db_column_is_null(s, 2));
    ASSERT_TRUE(pt_db_column_is_null(s, 3));
    ASSERT_STREQ(pt_db_column_text(s, 3, &len), ""); /* NULL reads as "" */
    ASSERT_EQ(len, 0);
    ASSERT_EQ(pt_db_step(s), PT_DB_DONE);
    pt_db_finalize(s);
    pt_db_close(db);
    pt_test_rm_tree(dir);
}

TEST(db_errors_map_to_pt_err)
{
    char dir[64];
    pt_db *db = NULL;
    pt_db_stmt *s = NULL;

    ASSERT_EQ(open_tmp(dir, sizeof dir, &db), 0);
    ASSERT_EQ(pt_db_exec(db, "CREATE TABLE p(name TEXT PRIMARY KEY);"
                             "CREATE TABLE c(p TEXT REFERENCES p(name));"
                             "INSERT INTO p VALUES ('a')"),
              0);
    ASSERT_EQ(pt_db_exec(db, "INSERT INTO p VALUES ('a')"), PT_EEXIST);
    ASSERT_TRUE(strcasestr(pt_db_errmsg(db), "UNIQUE") != NULL);
    ASSERT_EQ(pt_db_prepare(db, "INSERT INTO c VALUES (?1)", &s), 0);
    ASSERT_EQ(pt_db_bind_text(s, 1, "nope", (size_t)-1), 0);
    ASSERT_EQ(pt_db_step(s), PT_ENOTFOUND); /* a foreign key */
    pt_db_reset(s);
    ASSERT_EQ(pt_db_bind_text(s, 2, "x", 1), PT_EINVAL); /* no such parameter */
    pt_db_finalize(s);
    if (pt_test_pg_dsn() != NULL) { /* PostgreSQL parses it when it first runs */
        ASSERT_EQ(pt_db_prepare(db, "SELEC 1", &s), 0);
        ASSERT_EQ(pt_db_step(s), PT_EDB);
        pt_db_finalize(s);
    } else {
        ASSERT_EQ(pt_db_prepare(db, "SELEC 1", &s), PT_EDB);
        ASSERT_TRUE(s == NULL);
    }
    ASSERT_TRUE(strstr(pt_db_errmsg(db), "syntax") != NULL);
    pt_db_close(db);
    pt_test_rm_tree(dir);
}

TEST(db_transactions_busy_and_schema_version)
{
    char dir[64];
    pt_db *a = NULL, *b = NULL;
    pt_db_stmt *s = NULL;
    int64_t v = -1;

    ASSERT_EQ(open_tmp(dir, sizeof dir, &a), 0);
    ASSERT_EQ(open_dir(dir, 0, &b), 0);
    ASSERT_EQ(pt_db_schema_version(a, &v), 0);
    ASSERT_EQ(v, 0);
    ASSERT_EQ(pt_db_exec(a, "CREATE TABLE t(x BIGINT)"), 0);

    ASSERT_EQ(pt_db_begin(a), 0);
    ASSERT_TRUE(pt_db_in_transaction(a));
    ASSERT_EQ(pt_db_set_schema_version(a, 7), 0);
    ASSERT_EQ(pt_db_exec(a, "INSERT INTO t VALUES (1)"), 0);
    /* The write lock is taken at begin: another writer is told at once (busy timeout 0). */
    ASSERT_EQ(pt_db_begin(b), PT_EUNAVAIL);
    pt_db_rollback(a);
    ASSERT_FALSE(pt_db_in_transaction(a));
    pt_db_rollback(a); /* outside a transaction: a no-op */
    ASSERT_EQ(pt_db_schema_version(b, &v), 0);
    ASSERT_EQ(v, 0);

    ASSERT_EQ(pt_db_begin(b), 0);
    ASSERT_EQ(pt_db_exec(b, "INSERT INTO t VALUES (2)"), 0);
    ASSERT_EQ(pt_db_commit(b), 0);
    ASSERT_EQ(pt_db_prepare(a, "SELECT count(*), sum(x) FROM t", &s), 0);
    ASSERT_EQ(pt_db_step(s), PT_DB_ROW);
    ASSERT_EQ(pt_db_column_int64(s, 0), 1);
    ASSERT_EQ(pt_db_column_int64(s, 1), 2);
    pt_db_finalize(s);
    ASSERT_EQ(pt_db_set_durable(a, 0), 0);
    ASSERT_EQ(pt_db_set_durable(a, 1), 0);
    pt_db_close(b);
    pt_db_close(a);
    pt_test_rm_tree(dir);
}

TEST(db_open_refuses_a_file_that_is_not_a_database)
{
    char dir[64], path[256], err[256] = "";
    pt_db *db = NULL;
    FILE *f;

    if (pt_test_pg_dsn() != NULL)
        return; /* about SQLite's file */
    snprintf(dir, sizeof dir, "/tmp/pt-test-db-XXXXXX");
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/t.db", dir);
    f = fopen(path, "w");
    ASSERT_TRUE(f != NULL);
    for (int i = 0; i < 4096; i++)
        fputc((i * 7919) & 0xff, f);
    fclose(f);
    ASSERT_EQ(pt_db_open_sqlite(path, 0, 0, &db, err, sizeof err), PT_EDB);
    ASSERT_TRUE(db == NULL);
    ASSERT_TRUE(strstr(err, path) != NULL);
    ASSERT_TRUE(strstr(err, "not a database") != NULL);
    pt_test_rm_tree(dir);
}

/* test_wh_sql.c - unit tests for the statement builder (wh_sql.c): the exact SQL per dialect,
 * quoting, and the names and types it refuses. No database and no Python. */
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "test.h"
#include "warehouse/wh_sql.h"

/* The statement a builder call left in b, or "ERR <rc>". Static buffer. */
static const char *
got(int rc, pt_buf *b)
{
    static char out[1024];

    if (rc != 0)
        snprintf(out, sizeof out, "ERR %d", rc);
    else
        snprintf(out, sizeof out, "%s", pt_buf_cstr(b));
    return out;
}

static const char *const abc[] = {"a", "b", "c"};

TEST(whsql_create_table)
{
    pt_wh_coldef cols[] = {{"id", "bigint"}, {"amount", "numeric(12,2)"}, {"at", "TIMESTAMP"}};
    const char *keys[] = {"id"};
    pt_buf b;

    pt_buf_init(&b, 0);
    ASSERT_STREQ(got(pt_wh_sql_create_table(&b, "sales", "orders", cols, 3, keys, 1), &b),
                 "CREATE TABLE IF NOT EXISTS \"sales\".\"orders\" (\"id\" bigint, \"amount\" "
                 "numeric(12,2), \"at\" TIMESTAMP, PRIMARY KEY (\"id\"))");
    ASSERT_STREQ(got(pt_wh_sql_create_table(&b, "s", "t", cols, 1, NULL, 0), &b),
                 "CREATE TABLE IF NOT EXISTS \"s\".\"t\" (\"id\" bigint)");
    /* No columns, a bad column name, a type that is not a type name. */
    ASSERT_STREQ(got(pt_wh_sql_create_table(&b, "s", "t", cols, 0, NULL, 0), &b), "ERR -2");
    pt_wh_coldef bad_name[] = {{"a\"b", "int"}};
    ASSERT_STREQ(got(pt_wh_sql_create_table(&b, "s", "t", bad_name, 1, NULL, 0), &b), "ERR -2");
    pt_wh_coldef bad_type[] = {{"a", "int); DROP TABLE x; --"}};
    ASSERT_STREQ(got(pt_wh_sql_create_table(&b, "s", "t", bad_type, 1, NULL, 0), &b), "ERR -2");
    pt_wh_coldef no_type[] = {{"a", ""}};
    ASSERT_STREQ(got(pt_wh_sql_create_table(&b, "s", "t", no_type, 1, NULL, 0), &b), "ERR -2");
    pt_buf_free(&b);
}

TEST(whsql_add_column)
{
    pt_wh_coldef c = {"note", "text"};
    pt_buf b;

    pt_buf_init(&b, 0);
    ASSERT_STREQ(got(pt_wh_sql_add_column(&b, "s", "t", &c), &b),
                 "ALTER TABLE \"s\".\"t\" ADD COLUMN \"note\" text");
    c.name = "1st";
    ASSERT_STREQ(got(pt_wh_sql_add_column(&b, "s", "t", &c), &b), "ERR -2");
    pt_buf_free(&b);
}

TEST(whsql_insert_update_delete)
{
    const char *key[] = {"id"}, *two[] = {"parent_id", "k"};
    pt_buf b;

    pt_buf_init(&b, 0);
    ASSERT_STREQ(got(pt_wh_sql_insert(&b, "s", "t", abc, 3, NULL), &b),
                 "INSERT INTO \"s\".\"t\" (\"a\", \"b\", \"c\") VALUES (?, ?, ?)");
    ASSERT_STREQ(got(pt_wh_sql_insert(&b, "s", "t", abc, 1, "id"), &b),
                 "INSERT INTO \"s\".\"t\" (\"a\") VALUES (?) RETURNING \"id\"");
    ASSERT_STREQ(got(pt_wh_sql_insert(&b, "s", "t", abc, 0, NULL), &b), "ERR -2");
    ASSERT_STREQ(got(pt_wh_sql_update(&b, "s", "t", abc, 2, "id"), &b),
                 "UPDATE \"s\".\"t\" SET \"a\" = ?, \"b\" = ? WHERE \"id\" = ?");
    ASSERT_STREQ(got(pt_wh_sql_delete(&b, "s", "t", key, 1), &b),
                 "DELETE FROM \"s\".\"t\" WHERE \"id\" = ?");
    ASSERT_STREQ(got(pt_wh_sql_delete(&b, "s", "t", two, 2), &b),
                 "DELETE FROM \"s\".\"t\" WHERE \"parent_id\" = ? AND \"k\" = ?");
    ASSERT_STREQ(got(pt_wh_sql_delete(&b, "s", "t", two, 0), &b), "ERR -2");
    ASSERT_STREQ(got(pt_wh_sql_select_key(&b, "s", "t", "id"), &b),
                 "SELECT 1 FROM \"s\".\"t\" WHERE \"id\" = ?");
    ASSERT_STREQ(got(pt_wh_sql_lock_table(&b, "s", "t"), &b), "DELETE FROM \"s\".\"t\" WHERE 0");
    ASSERT_STREQ(got(pt_wh_sql_select_all(&b, "s", "t"), &b), "SELECT * FROM \"s\".\"t\"");
    ASSERT_STREQ(got(pt_wh_sql_select_all(&b, NULL, "t"), &b), "SELECT * FROM \"t\"");
    ASSERT_STREQ(got(pt_wh_sql_select_all(&b, NULL, "t;"), &b), "ERR -2");
    pt_buf_free(&b);
}

TEST(whsql_upsert_per_dialect)
{
    const char *cols[] = {"id", "name", "_sdc_batched_at"};
    const char *key[] = {"id"};
    pt_wh_upsert how = {key, 1, NULL, 0};
    pt_buf b;

    pt_buf_init(&b, 0);
    ASSERT_STREQ(got(pt_wh_sql_upsert(&b, PT_WH_SQLITE, "s", "t", cols, 2, &how), &b),
                 "INSERT INTO \"s\".\"t\" AS pq_t (\"id\", \"name\") VALUES (?, ?) ON CONFLICT "
                 "(\"id\") DO UPDATE SET \"name\" = excluded.\"name\" WHERE NOT "
                 "(pq_t.\"name\" IS NOT DISTINCT FROM excluded.\"name\")");
    how.report = 1;
    ASSERT_STREQ(got(pt_wh_sql_upsert(&b, PT_WH_POSTGRES, "s", "t", cols, 2, &how), &b),
                 "INSERT INTO \"s\".\"t\" AS pq_t (\"id\", \"name\") VALUES (?, ?) ON CONFLICT "
                 "(\"id\") DO UPDATE SET \"name\" = excluded.\"name\" WHERE NOT "
                 "(pq_t.\"name\"::text IS NOT DISTINCT FROM excluded.\"name\"::text) RETURNING "
                 "(xmax = 0) AS inserted");
    /* SQLite cannot say what happened. */
    ASSERT_STREQ(got(pt_wh_sql_upsert(&b, PT_WH_SQLITE, "s", "t", cols, 2, &how), &b), "ERR -2");
    /* Only the key: nothing to update. */
    how.report = 0;
    ASSERT_STREQ(got(pt_wh_sql_upsert(&b, PT_WH_SQLITE, "s", "t", cols, 1, &how), &b),
                 "INSERT INTO \"s\".\"t\" AS pq_t (\"id\") VALUES (?) ON CONFLICT (\"id\") DO "
                 "NOTHING");
    /* Ignored columns are written but are no change on their own. */
    how.ignore_prefix = "_sdc_";
    ASSERT_STREQ(got(pt_wh_sql_upsert(&b, PT_WH_SQLITE, "s", "t", cols, 3, &how), &b),
                 "INSERT INTO \"s\".\"t\" AS pq_t (\"id\", \"name\", \"_sdc_batched_at\") VALUES "
                 "(?, ?, ?) ON CONFLICT (\"id\") DO UPDATE SET \"name\" = excluded.\"name\", "
                 "\"_sdc_batched_at\" = excluded.\"_sdc_batched_at\" WHERE NOT (pq_t.\"name\" IS "
                 "NOT DISTINCT FROM excluded.\"name\")");
    /* No key: a plain INSERT. */
    how.nkeys = 0;
    ASSERT_STREQ(got(pt_wh_sql_upsert(&b, PT_WH_POSTGRES, "s", "t", cols, 2, &how), &b),
                 "INSERT INTO \"s\".\"t\" AS pq_t (\"id\", \"name\") VALUES (?, ?)");
    pt_buf_free(&b);
}

TEST(whsql_quoting)
{
    /* Columns read back from a database may be any text: quoted, quotes doubled. */
    const char *odd[] = {"First Name", "say \"hi\""};
    pt_buf b;

    pt_buf_init(&b, 0);
    ASSERT_STREQ(got(pt_wh_sql_insert(&b, "s", "t", odd, 2, NULL), &b),
                 "INSERT INTO \"s\".\"t\" (\"First Name\", \"say \"\"hi\"\"\") VALUES (?, ?)");
    ASSERT_STREQ(got(pt_wh_sql_drop_table(&b, PT_WH_POSTGRES, "My Schema", "a\"b", 0, 1), &b),
                 "DROP TABLE \"My Schema\".\"a\"\"b\" CASCADE");
    ASSERT_STREQ(got(pt_wh_sql_drop_table(&b, PT_WH_SQLITE, "s", "v", 1, 1), &b),
                 "DROP VIEW \"s\".\"v\"");
    pt_buf_reset(&b);
    ASSERT_EQ(pt_wh_sql_literal(&b, "it's"), 0);
    ASSERT_STREQ(pt_buf_cstr(&b), "'it''s'");
    pt_buf_reset(&b);
    ASSERT_EQ(pt_wh_sql_quote(&b, ""), PT_EINVAL);
    pt_buf_free(&b);
}

TEST(whsql_refuses_bad_identifiers)
{
    static const char *const bad[] = {
        "",    "a b", "a\"b", "1abc",
        "a;b", "a-b", "x.y",  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    pt_buf b;

    pt_buf_init(&b, 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_EQ(pt_wh_sql_insert(&b, bad[i], "t", abc, 1, NULL), PT_EINVAL);
        ASSERT_EQ(pt_wh_sql_update(&b, "s", bad[i], abc, 1, "id"), PT_EINVAL);
        ASSERT_EQ(pt_wh_sql_delete(&b, bad[i], "t", abc, 1), PT_EINVAL);
        ASSERT_EQ(pt_wh_sql_select_key(&b, "s", bad[i], "id"), PT_EINVAL);
        ASSERT_EQ(pt_wh_sql_lock_table(&b, bad[i], "t"), PT_EINVAL);
        ASSERT_EQ(pt_wh_sql_upsert(&b, PT_WH_SQLITE, "s", bad[i], abc, 1,
                                   &(pt_wh_upsert){NULL, 0, NULL, 0}),
                  PT_EINVAL);
    }
    /* An empty column name, even where any text goes. */
    const char *empty[] = {"a", ""};
    ASSERT_EQ(pt_wh_sql_insert(&b, "s", "t", empty, 2, NULL), PT_EINVAL);
    ASSERT_EQ(pt_wh_sql_update(&b, "s", "t", abc, 1, ""), PT_EINVAL);
    ASSERT_EQ(pt_wh_sql_drop_table(&b, PT_WH_SQLITE, "", "t", 0, 0), PT_EINVAL);
    pt_buf_free(&b);
}

TEST(whsql_buffer_cap)
{
    pt_buf b;

    pt_buf_init(&b, 16); /* too small for any statement: fails whole, never with a hole */
    ASSERT_EQ(pt_wh_sql_insert(&b, "s", "t", abc, 3, NULL), PT_ETOOBIG);
    pt_buf_free(&b);
}

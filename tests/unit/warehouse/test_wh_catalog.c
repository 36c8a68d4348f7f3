/* test_wh_catalog.c - unit tests for the warehouse catalog (wh_catalog.c and the SQLite
 * driver's part): levels, filters, columns and keys, portable types, dropping. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "test.h"
#include "warehouse/wh.h"

/* Runs sql (no parameters, statements separated by ';'); returns 0 or the pt_err. */
static int
run(pt_wh *wh, const char *sql)
{
    pt_wh_cursor *c = NULL;
    int rc = pt_wh_exec(wh, sql, NULL, 0, &c);

    pt_wh_cursor_free(c);
    return rc;
}

/* A data dir with the embedded warehouse open on it and two schemas:
 *   sales: orders (id INTEGER, line INTEGER, amount NUMERIC(10,2) NOT NULL, day DATE,
 *          PRIMARY KEY (line, id)), "Odd ""Name""" (x), and the view big.
 *   hr: people (id INTEGER PRIMARY KEY). */
static pt_wh *
open_fixture(char *dir, size_t dirsz)
{
    char err[256];
    pt_wh *wh = NULL;

    snprintf(dir, dirsz, "/tmp/pt-test-whcat-XXXXXX");
    if (mkdtemp(dir) == NULL || pt_wh_open(dir, "dw", &wh, err, sizeof err) != 0)
        return NULL;
    if (pt_wh_create_schema(wh, "Sales") != 0 || pt_wh_create_schema(wh, "hr") != 0 ||
        run(wh, "CREATE TABLE sales.orders (id INTEGER, line INTEGER, amount NUMERIC(10,2) "
                "NOT NULL, day DATE, PRIMARY KEY (line, id));"
                "CREATE TABLE sales.\"Odd \"\"Name\"\"\" (x);"
                "CREATE VIEW sales.big AS SELECT id FROM orders WHERE amount > 10;"
                "CREATE TABLE hr.people (id INTEGER PRIMARY KEY)") != 0) {
        pt_wh_close(wh);
        return NULL;
    }
    return wh;
}

TEST(wh_catalog_levels_and_order)
{
    char dir[64];
    pt_wh *wh = open_fixture(dir, sizeof dir);
    pt_wh_catalog *cat = NULL;

    ASSERT_TRUE(wh != NULL);
    ASSERT_EQ(pt_wh_catalog_read(wh, NULL, NULL, PT_WH_CAT_SCHEMAS, &cat), 0);
    ASSERT_STREQ(cat->database, "dw");
    ASSERT_EQ(cat->nschemas, 2);
    ASSERT_STREQ(cat->schemas[0].name, "hr");
    ASSERT_STREQ(cat->schemas[1].name, "sales"); /* lower case, as the file is named */
    ASSERT_EQ(cat->schemas[1].ntables, 0);
    pt_wh_catalog_free(cat);

    ASSERT_EQ(pt_wh_catalog_read(wh, NULL, NULL, PT_WH_CAT_TABLES, &cat), 0);
    ASSERT_EQ(cat->schemas[1].ntables, 3);
    ASSERT_STREQ(cat->schemas[1].tables[0].name, "Odd \"Name\"");
    ASSERT_STREQ(cat->schemas[1].tables[1].name, "big");
    ASSERT_EQ(cat->schemas[1].tables[1].is_view, 1);
    ASSERT_STREQ(cat->schemas[1].tables[2].name, "orders");
    ASSERT_EQ(cat->schemas[1].tables[2].is_view, 0);
    ASSERT_EQ(cat->schemas[1].tables[2].nfields, 0);
    pt_wh_catalog_free(cat);
    pt_wh_close(wh);
    pt_test_rm_tree(dir);
}

TEST(wh_catalog_fields_keys_and_filters)
{
    char dir[64];
    pt_wh *wh = open_fixture(dir, sizeof dir);
    pt_wh_catalog *cat = NULL;
    const pt_wh_table_info *t;

    ASSERT_TRUE(wh != NULL);
    /* Filters match regardless of case on SQLite. */
    ASSERT_EQ(pt_wh_catalog_read(wh, "SALES", "ORDERS", PT_WH_CAT_FIELDS, &cat), 0);
    ASSERT_EQ(cat->nschemas, 1);
    ASSERT_EQ(cat->schemas[0].ntables, 1);
    t = &cat->schemas[0].tables[0];
    ASSERT_STREQ(t->name, "orders");
    ASSERT_EQ(t->nfields, 4);
    ASSERT_STREQ(t->fields[0].name, "id");
    ASSERT_EQ(t->fields[0].pk, 2); /* PRIMARY KEY (line, id) */
    ASSERT_EQ(t->fields[1].pk, 1);
    ASSERT_EQ(t->fields[2].pk, 0);
    ASSERT_STREQ(t->fields[2].sql_type, "numeric(10,2)");
    ASSERT_STREQ(t->fields[2].type, "numeric");
    ASSERT_EQ(t->fields[2].notnull, 1);
    ASSERT_EQ(t->fields[3].notnull, 0);
    ASSERT_STREQ(t->fields[3].type, "date");
    pt_wh_catalog_free(cat);

    /* A schema without a matching table is listed with none; an unknown schema not at all. */
    ASSERT_EQ(pt_wh_catalog_read(wh, "hr", "orders", PT_WH_CAT_FIELDS, &cat), 0);
    ASSERT_EQ(cat->nschemas, 1);
    ASSERT_EQ(cat->schemas[0].ntables, 0);
    pt_wh_catalog_free(cat);
    ASSERT_EQ(pt_wh_catalog_read(wh, "nope", NULL, PT_WH_CAT_TABLES, &cat), 0);
    ASSERT_EQ(cat->nschemas, 0);
    pt_wh_catalog_free(cat);

    /* An untyped column has no declared type and reads as text. */
    ASSERT_EQ(pt_wh_catalog_read(wh, "sales", "Odd \"Name\"", PT_WH_CAT_FIELDS, &cat), 0);
    ASSERT_EQ(cat->schemas[0].ntables, 1);
    ASSERT_STREQ(cat->schemas[0].tables[0].fields[0].sql_type, "");
    ASSERT_STREQ(cat->schemas[0].tables[0].fields[0].type, "text");
    pt_wh_catalog_free(cat);
    pt_wh_close(wh);
    pt_test_rm_tree(dir);
}

TEST(wh_portable_types)
{
    ASSERT_STREQ(pt_wh_portable_type("INTEGER"), "int");
    ASSERT_STREQ(pt_wh_portable_type("bigint"), "int");
    ASSERT_STREQ(pt_wh_portable_type("interval"), "text");
    ASSERT_STREQ(pt_wh_portable_type("double precision"), "float");
    ASSERT_STREQ(pt_wh_portable_type("REAL"), "float");
    ASSERT_STREQ(pt_wh_portable_type("numeric(10,2)"), "numeric");
    ASSERT_STREQ(pt_wh_portable_type("DECIMAL"), "numeric");
    ASSERT_STREQ(pt_wh_portable_type("timestamp with time zone"), "timestamptz");
    ASSERT_STREQ(pt_wh_portable_type("timestamp without time zone"), "timestamp");
    ASSERT_STREQ(pt_wh_portable_type("DATETIME"), "timestamp");
    ASSERT_STREQ(pt_wh_portable_type("date"), "date");
    ASSERT_STREQ(pt_wh_portable_type("time with time zone"), "time");
    ASSERT_STREQ(pt_wh_portable_type("jsonb"), "json");
    ASSERT_STREQ(pt_wh_portable_type("boolean"), "bool");
    ASSERT_STREQ(pt_wh_portable_type("bytea"), "bytes");
    ASSERT_STREQ(pt_wh_portable_type("BLOB"), "bytes");
    ASSERT_STREQ(pt_wh_portable_type("character varying(20)"), "text");
    ASSERT_STREQ(pt_wh_portable_type(""), "text");
}

TEST(wh_drop_table_and_schema)
{
    char dir[64], path[128], err[256];
    pt_wh *wh = open_fixture(dir, sizeof dir), *other = NULL;
    pt_wh_catalog *cat = NULL;

    ASSERT_TRUE(wh != NULL);
    ASSERT_EQ(pt_wh_drop_table(wh, "sales", "Odd \"Name\"", 0, 0), 0);
    ASSERT_EQ(pt_wh_drop_table(wh, "sales", "big", 1, 1), 0);
    ASSERT_EQ(pt_wh_drop_table(wh, "sales", "gone", 0, 0), PT_ENOTFOUND);
    ASSERT_EQ(pt_wh_catalog_read(wh, "sales", NULL, PT_WH_CAT_TABLES, &cat), 0);
    ASSERT_EQ(cat->schemas[0].ntables, 1);
    ASSERT_STREQ(cat->schemas[0].tables[0].name, "orders");
    pt_wh_catalog_free(cat);

    /* A view whose table was dropped is still listed, without columns. */
    ASSERT_EQ(run(wh, "CREATE TABLE hr.tmp (a); CREATE VIEW hr.v AS SELECT a FROM tmp; "
                      "DROP TABLE hr.tmp"),
              0);
    ASSERT_EQ(pt_wh_catalog_read(wh, "hr", NULL, PT_WH_CAT_FIELDS, &cat), 0);
    ASSERT_EQ(cat->schemas[0].ntables, 2);
    ASSERT_STREQ(cat->schemas[0].tables[1].name, "v");
    ASSERT_EQ(cat->schemas[0].tables[1].nfields, 0);
    pt_wh_catalog_free(cat);

    ASSERT_EQ(pt_wh_drop_schema(wh, "bad name"), PT_EINVAL);
    ASSERT_EQ(pt_wh_drop_schema(wh, "main"), PT_EINVAL);
    ASSERT_EQ(pt_wh_drop_schema(wh, "nope"), PT_ENOTFOUND);
    ASSERT_EQ(run(wh, "BEGIN"), 0);
    ASSERT_EQ(pt_wh_drop_schema(wh, "Sales"), PT_EDB); /* not inside a transaction */
    ASSERT_EQ(run(wh, "ROLLBACK"), 0);
    ASSERT_EQ(pt_wh_drop_schema(wh, "Sales"), 0);
    snprintf(path, sizeof path, "%s/warehouse/dw/sales.db", dir);
    ASSERT_EQ(access(path, F_OK), -1);
    ASSERT_EQ(pt_wh_schema_exists(wh, "sales"), 0);
    ASSERT_EQ(pt_wh_catalog_read(wh, NULL, NULL, PT_WH_CAT_SCHEMAS, &cat), 0);
    ASSERT_EQ(cat->nschemas, 1);
    ASSERT_STREQ(cat->schemas[0].name, "hr");
    pt_wh_catalog_free(cat);
    /* Created again, it is empty, for this connection and a new one. */
    ASSERT_EQ(pt_wh_create_schema(wh, "sales"), 0);
    ASSERT_EQ(pt_wh_table_exists(wh, "sales", "orders"), 0);
    ASSERT_EQ(pt_wh_open(dir, "dw", &other, err, sizeof err), 0);
    ASSERT_EQ(pt_wh_table_exists(other, "sales", "orders"), 0);
    ASSERT_EQ(pt_wh_table_exists(other, "hr", "people"), 1);
    pt_wh_close(other);
    pt_wh_close(wh);
    pt_test_rm_tree(dir);
}

/* A connection that had a schema attached when another dropped it does not keep writing into
 * the removed file: it attaches what is there now (pq.delete_schema then get_or_create_schema
 * served by two worker threads). */
TEST(wh_schema_dropped_by_another_connection)
{
    char dir[64], err[256];
    pt_wh *wh = open_fixture(dir, sizeof dir), *other = NULL;
    pt_wh_catalog *cat = NULL;

    ASSERT_TRUE(wh != NULL);
    ASSERT_EQ(pt_wh_open(dir, "dw", &other, err, sizeof err), 0);
    ASSERT_EQ(pt_wh_table_exists(other, "hr", "people"), 1); /* attached by `other` */
    ASSERT_EQ(pt_wh_drop_schema(wh, "hr"), 0);
    ASSERT_EQ(pt_wh_schema_exists(other, "hr"), 0);
    ASSERT_EQ(pt_wh_create_schema(wh, "hr"), 0);
    ASSERT_EQ(run(wh, "CREATE TABLE hr.fresh (a)"), 0);
    /* `other` sees the new file: the new table, not the old one. */
    ASSERT_EQ(pt_wh_create_schema(other, "hr"), 0);
    ASSERT_EQ(pt_wh_table_exists(other, "hr", "people"), 0);
    ASSERT_EQ(pt_wh_table_exists(other, "hr", "fresh"), 1);
    ASSERT_EQ(pt_wh_catalog_read(other, "hr", NULL, PT_WH_CAT_TABLES, &cat), 0);
    ASSERT_EQ(cat->nschemas, 1);
    ASSERT_EQ(cat->schemas[0].ntables, 1);
    pt_wh_catalog_free(cat);
    pt_wh_close(other);
    pt_wh_close(wh);
    pt_test_rm_tree(dir);
}

TEST(wh_qualified_name_and_union_sql)
{
    char dir[64];
    pt_wh *wh = open_fixture(dir, sizeof dir);
    pt_wh_catalog *a = NULL, *b = NULL;
    char *name, *sql = NULL;
    const char *labels[2] = {"Par'is", ""};

    ASSERT_TRUE(wh != NULL);
    name = pt_wh_qualified_name("s", "Odd \"Name\"");
    ASSERT_STREQ(name, "\"s\".\"Odd \"\"Name\"\"\"");
    free(name);
    ASSERT_EQ(run(wh, "CREATE TABLE hr.more (ID INTEGER, amount TEXT, x REAL)"), 0);
    ASSERT_EQ(pt_wh_catalog_read(wh, "sales", "orders", PT_WH_CAT_FIELDS, &a), 0);
    ASSERT_EQ(pt_wh_catalog_read(wh, "hr", "more", PT_WH_CAT_FIELDS, &b), 0);
    {
        const pt_wh_catalog *cats[2] = {a, b};
        ASSERT_EQ(pt_wh_union_sql(wh, cats, 2, labels, &sql), 0);
        /* id and ID are one column on SQLite; amount's types differ (numeric, text): cast. */
        ASSERT_STREQ(sql, "SELECT 'Par''is' AS \"source\", \"id\", \"line\", CAST(\"amount\" AS "
                          "TEXT) AS \"amount\", \"day\", NULL AS \"x\" FROM \"sales\".\"orders\" "
                          "UNION ALL SELECT '' AS \"source\", \"ID\" AS \"id\", NULL AS \"line\", "
                          "CAST(\"amount\" AS TEXT) AS \"amount\", NULL AS \"day\", \"x\" FROM "
                          "\"hr\".\"more\"");
        free(sql);
        sql = NULL;
        ASSERT_EQ(pt_wh_union_sql(wh, cats, 1, NULL, &sql), 0);
        ASSERT_STREQ(sql, "SELECT \"id\", \"line\", \"amount\", \"day\" FROM \"sales\".\"orders\"");
        free(sql);
        ASSERT_EQ(pt_wh_union_sql(wh, cats, 0, NULL, &sql), PT_EINVAL);
    }
    pt_wh_catalog_free(a);
    pt_wh_catalog_free(b);
    pt_wh_close(wh);
    pt_test_rm_tree(dir);
}

/* test_wh.c - unit tests for the warehouse: SQLite driver, schemas, errors, CSV/JSON import. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "store/store.h"
#include "test.h"
#include "warehouse/wh.h"

static const char *
tmp_datadir(char *buf, size_t n)
{
    snprintf(buf, n, "/tmp/pt-test-wh-XXXXXX");
    return mkdtemp(buf);
}

/* Writes content to dir/name; returns the path (static buffer). */
static const char *
write_file(const char *dir, const char *name, const char *content)
{
    static char path[256];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL)
        return NULL;
    fputs(content, f);
    fclose(f);
    return path;
}

/* Runs sql (no parameters) and returns the first column of the first row as an integer, or
 * INT64_MIN on error or when there is no row. */
static int64_t
scalar(pt_wh *wh, const char *sql)
{
    pt_wh_cursor *c = NULL;
    pt_value v;
    int64_t out = INT64_MIN;

    if (pt_wh_exec(wh, sql, NULL, 0, &c) == 0 && pt_wh_cursor_next(c) == 1) {
        pt_wh_cursor_value(c, 0, &v);
        if (v.type == PT_V_INT || v.type == PT_V_BOOL)
            out = v.u.i;
    }
    pt_wh_cursor_free(c);
    return out;
}

/* Runs sql and returns the first column of the first row as text (static buffer), "NULL" for
 * NULL, or "ERROR". */
static const char *
text(pt_wh *wh, const char *sql)
{
    static char buf[256];
    pt_wh_cursor *c = NULL;
    pt_value v;

    snprintf(buf, sizeof buf, "ERROR");
    if (pt_wh_exec(wh, sql, NULL, 0, &c) == 0 && pt_wh_cursor_next(c) == 1) {
        pt_wh_cursor_value(c, 0, &v);
        if (v.type == PT_V_NULL)
            snprintf(buf, sizeof buf, "NULL");
        else if (v.type == PT_V_TEXT)
            snprintf(buf, sizeof buf, "%.*s", (int)v.u.s.n, v.u.s.p);
        else if (v.type == PT_V_INT)
            snprintf(buf, sizeof buf, "%lld", (long long)v.u.i);
        else if (v.type == PT_V_FLOAT)
            snprintf(buf, sizeof buf, "%g", v.u.f);
    }
    pt_wh_cursor_free(c);
    return buf;
}

TEST(wh_ident_valid)
{
    ASSERT_TRUE(pt_wh_ident_valid("accounts"));
    ASSERT_TRUE(pt_wh_ident_valid("_a1$"));
    ASSERT_FALSE(pt_wh_ident_valid("1a"));
    ASSERT_FALSE(pt_wh_ident_valid(""));
    ASSERT_FALSE(pt_wh_ident_valid("a-b"));
    ASSERT_FALSE(pt_wh_ident_valid("a\"b"));
    ASSERT_FALSE(pt_wh_ident_valid(NULL));
}

TEST(wh_open_unknown)
{
    char dir[64], err[256];
    pt_store *st = NULL;
    pt_wh *wh = NULL;

    ASSERT_TRUE(tmp_datadir(dir, sizeof dir) != NULL);
    /* Without a store (only init makes one), no connection but dw can be looked up. */
    ASSERT_EQ(pt_wh_open(dir, "nope", &wh, err, sizeof err), PT_EUNAVAIL);
    ASSERT_TRUE(strstr(err, "portico init") != NULL);
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);
    pt_store_close(st);
    ASSERT_EQ(pt_wh_open(dir, "nope", &wh, err, sizeof err), PT_ENOTFOUND);
    ASSERT_TRUE(strstr(err, "nope") != NULL);
    ASSERT_EQ(pt_wh_open("/nonexistent/pt", "dw", &wh, err, sizeof err), PT_EUNAVAIL);
    pt_test_rm_tree(dir);
}

TEST(wh_exec_params_and_values)
{
    char dir[64], err[256];
    pt_wh *wh = NULL;
    pt_wh_cursor *c = NULL;
    pt_value p[4], v;

    ASSERT_TRUE(tmp_datadir(dir, sizeof dir) != NULL);
    ASSERT_EQ(pt_wh_open(dir, "dw", &wh, err, sizeof err), 0);
    ASSERT_STREQ(pt_wh_name(wh), "dw");
    ASSERT_STREQ(pt_wh_kind(wh), "sqlite");
    ASSERT_EQ(pt_wh_create_schema(wh, "s"), 0);
    ASSERT_EQ(pt_wh_create_schema(wh, "s"), 0);
    ASSERT_EQ(pt_wh_create_schema(wh, "main"), PT_EINVAL);
    ASSERT_EQ(pt_wh_create_schema(wh, "bad-name"), PT_EINVAL);
    ASSERT_EQ(pt_wh_table_exists(wh, "s", "t"), 0);

    ASSERT_EQ(pt_wh_exec(wh,
                         "CREATE TABLE s.t(id INTEGER PRIMARY KEY, name TEXT, x REAL, "
                         "ok BOOLEAN, b BLOB)",
                         NULL, 0, &c),
              0);
    ASSERT_EQ(pt_wh_cursor_ncols(c), 0);
    ASSERT_EQ(pt_wh_cursor_next(c), 0);
    pt_wh_cursor_free(c);
    ASSERT_EQ(pt_wh_table_exists(wh, "s", "t"), 1);
    ASSERT_EQ(pt_wh_table_exists(wh, "S", "T"), 1);
    ASSERT_EQ(pt_wh_table_exists(wh, "nosuch", "t"), 0);

    p[0].type = PT_V_TEXT;
    p[0].u.s.p = "Ann";
    p[0].u.s.n = 3;
    p[1].type = PT_V_FLOAT;
    p[1].u.f = 1.5;
    p[2].type = PT_V_BOOL;
    p[2].u.i = 1;
    p[3].type = PT_V_BLOB;
    p[3].u.s.p = "\0\1";
    p[3].u.s.n = 2;
    ASSERT_EQ(pt_wh_exec(wh, "INSERT INTO s.t(name, x, ok, b) VALUES (?, ?, ?, ?)", p, 4, &c), 0);
    ASSERT_EQ(pt_wh_cursor_changes(c), 1);
    ASSERT_EQ(pt_wh_cursor_last_id(c), 1);
    pt_wh_cursor_free(c);
    /* PostgreSQL-style $N parameters bind by number. */
    ASSERT_EQ(pt_wh_exec(wh, "INSERT INTO s.t(x, name) VALUES ($2, $1)", p, 2, &c), 0);
    ASSERT_EQ(pt_wh_cursor_last_id(c), 2);
    pt_wh_cursor_free(c);
    /* A statement that changes nothing reports 0, not the previous INSERT's count. */
    ASSERT_EQ(pt_wh_exec(wh, "CREATE TABLE s.empty(a)", NULL, 0, &c), 0);
    ASSERT_EQ(pt_wh_cursor_changes(c), 0);
    pt_wh_cursor_free(c);
    ASSERT_EQ(pt_wh_exec(wh, "INSERT INTO s.t(name) VALUES (?)", p, 2, &c), PT_EDB);
    ASSERT_EQ(pt_wh_exec(wh, "INSERT INTO s.t(name, x) VALUES (?, ?)", p, 1, &c), PT_EDB);

    ASSERT_EQ(
        pt_wh_exec(wh, "SELECT id, name, x, ok, b, NULL AS n FROM s.t ORDER BY id", NULL, 0, &c),
        0);
    ASSERT_EQ(pt_wh_cursor_ncols(c), 6);
    ASSERT_STREQ(pt_wh_cursor_colname(c, 1), "name");
    ASSERT_STREQ(pt_wh_cursor_colname(c, 5), "n");
    ASSERT_TRUE(pt_wh_cursor_colname(c, 6) == NULL);
    ASSERT_EQ(pt_wh_cursor_next(c), 1);
    pt_wh_cursor_value(c, 0, &v);
    ASSERT_EQ(v.type, PT_V_INT);
    ASSERT_EQ(v.u.i, 1);
    pt_wh_cursor_value(c, 1, &v);
    ASSERT_EQ(v.type, PT_V_TEXT);
    ASSERT_MEMSTR(v.u.s.p, v.u.s.n, "Ann");
    pt_wh_cursor_value(c, 2, &v);
    ASSERT_EQ(v.type, PT_V_FLOAT);
    ASSERT_TRUE(v.u.f == 1.5);
    pt_wh_cursor_value(c, 3, &v);
    ASSERT_EQ(v.type, PT_V_BOOL);
    ASSERT_EQ(v.u.i, 1);
    pt_wh_cursor_value(c, 4, &v);
    ASSERT_EQ(v.type, PT_V_BLOB);
    ASSERT_MEMEQ(v.u.s.p, v.u.s.n, "\0\1", 2);
    pt_wh_cursor_value(c, 5, &v);
    ASSERT_EQ(v.type, PT_V_NULL);
    ASSERT_EQ(pt_wh_cursor_next(c), 1);
    ASSERT_EQ(pt_wh_cursor_next(c), 0);
    ASSERT_EQ(pt_wh_cursor_next(c), 0);
    pt_wh_cursor_free(c);

    /* Several statements without parameters; the last one is the cursor. */
    ASSERT_EQ(pt_wh_exec(wh,
                         "CREATE TABLE s.u(a); INSERT INTO s.u VALUES (7); -- done\n"
                         "SELECT a FROM s.u; ",
                         NULL, 0, &c),
              0);
    ASSERT_EQ(pt_wh_cursor_next(c), 1);
    pt_wh_cursor_value(c, 0, &v);
    ASSERT_EQ(v.u.i, 7);
    pt_wh_cursor_free(c);
    ASSERT_EQ(pt_wh_exec(wh, "SELECT 1; SELECT ?", p, 1, &c), PT_EDB);
    ASSERT_EQ(pt_wh_exec(wh, "  -- nothing\n", NULL, 0, &c), 0);
    ASSERT_EQ(pt_wh_cursor_ncols(c), 0);
    pt_wh_cursor_free(c);
    pt_wh_close(wh);
    pt_test_rm_tree(dir);
}

TEST(wh_errors_name_table_and_schema)
{
    char dir[64], err[256];
    pt_wh *wh = NULL;
    pt_wh_cursor *c = NULL;

    ASSERT_TRUE(tmp_datadir(dir, sizeof dir) != NULL);
    ASSERT_EQ(pt_wh_open(dir, "dw", &wh, err, sizeof err), 0);
    ASSERT_EQ(pt_wh_create_schema(wh, "s"), 0);
    ASSERT_EQ(pt_wh_exec(wh, "SELECT * FROM s.missing", NULL, 0, &c), PT_ENOTFOUND);
    ASSERT_STREQ(pt_wh_errmsg(wh), "table s.missing not found");
    ASSERT_EQ(pt_wh_exec(wh, "SELECT * FROM nosuch.t", NULL, 0, &c), PT_ENOTFOUND);
    ASSERT_STREQ(pt_wh_errmsg(wh), "table nosuch.t not found");
    ASSERT_EQ(pt_wh_exec(wh, "CREATE TABLE nosuch.t(a)", NULL, 0, &c), PT_ENOTFOUND);
    ASSERT_STREQ(pt_wh_errmsg(wh), "schema nosuch not found");
    ASSERT_EQ(pt_wh_exec(wh, "SELECT * FROM bare", NULL, 0, &c), PT_ENOTFOUND);
    ASSERT_TRUE(strstr(pt_wh_errmsg(wh), "table bare not found") != NULL);
    ASSERT_EQ(pt_wh_exec(wh, "SELEKT 1", NULL, 0, &c), PT_EDB);
    ASSERT_TRUE(strstr(pt_wh_errmsg(wh), "syntax error") != NULL);
    ASSERT_EQ(
        pt_wh_exec(wh, "CREATE TABLE s.k(a PRIMARY KEY); INSERT INTO s.k VALUES (1)", NULL, 0, &c),
        0);
    pt_wh_cursor_free(c);
    ASSERT_EQ(pt_wh_exec(wh, "INSERT INTO s.k VALUES (1)", NULL, 0, &c), PT_EDB);
    ASSERT_TRUE(strstr(pt_wh_errmsg(wh), "UNIQUE") != NULL);
    pt_wh_close(wh);
    pt_test_rm_tree(dir);
}

TEST(wh_schemas_beyond_attach_limit_and_late_schemas)
{
    char dir[64], err[256], sql[128];
    pt_wh *a = NULL, *b = NULL;
    pt_wh_cursor *c = NULL;
    int i;

    ASSERT_TRUE(tmp_datadir(dir, sizeof dir) != NULL);
    ASSERT_EQ(pt_wh_open(dir, "dw", &a, err, sizeof err), 0);
    ASSERT_EQ(pt_wh_open(dir, "dw", &b, err, sizeof err), 0);
    /* b was opened before these schemas existed; it must still find them. */
    for (i = 0; i < 14; i++) {
        snprintf(sql, sizeof sql, "s%d", i);
        ASSERT_EQ(pt_wh_create_schema(a, sql), 0);
        snprintf(sql, sizeof sql, "CREATE TABLE s%d.t(v); INSERT INTO s%d.t VALUES (%d)", i, i, i);
        ASSERT_EQ(pt_wh_exec(a, sql, NULL, 0, &c), 0);
        pt_wh_cursor_free(c);
    }
    for (i = 13; i >= 0; i--) {
        snprintf(sql, sizeof sql, "SELECT v FROM s%d.t", i);
        ASSERT_EQ(scalar(a, sql), i);
        ASSERT_EQ(scalar(b, sql), i);
    }
    ASSERT_EQ(scalar(b, "SELECT (SELECT v FROM s1.t) + (SELECT v FROM s12.t)"), 13);
    ASSERT_EQ(pt_wh_table_exists(b, "s3", "t"), 1);
    pt_wh_close(a);
    pt_wh_close(b);
    /* A fresh connection attaches the existing files at open. */
    ASSERT_EQ(pt_wh_open(dir, "dw", &a, err, sizeof err), 0);
    ASSERT_EQ(scalar(a, "SELECT v FROM s0.t"), 0);
    ASSERT_EQ(scalar(a, "SELECT v FROM s13.t"), 13);
    pt_wh_close(a);
    pt_test_rm_tree(dir);
}

TEST(wh_import_csv)
{
    char dir[64], err[256];
    pt_wh *wh = NULL;
    int64_t rows = -1;
    const char *path;

    ASSERT_TRUE(tmp_datadir(dir, sizeof dir) != NULL);
    ASSERT_EQ(pt_wh_open(dir, "dw", &wh, err, sizeof err), 0);
    path = write_file(dir, "a.csv",
                      "\xEF\xBB\xBFid, name ,amount,price,zip,note\r\n"
                      "1,Alice,9,1.5,01234,plain\r\n"
                      "2,\"Carol, Jr.\",10,2,12345,\"two\nlines\"\r\n"
                      "\r\n"
                      "3,\"say \"\"hi\"\"\",11,,,\r\n"
                      "-4,Dan,,-2.5e3,9,x\"y\n");
    ASSERT_TRUE(path != NULL);
    ASSERT_EQ(pt_wh_import(wh, "sales", "items", path, &rows), 0);
    ASSERT_EQ(rows, 4);
    ASSERT_STREQ(text(wh, "SELECT group_concat(type, ',') FROM pragma_table_info('items', "
                          "'sales')"),
                 "INTEGER,TEXT,INTEGER,REAL,TEXT,TEXT");
    ASSERT_EQ(scalar(wh, "SELECT max(amount) FROM sales.items"), 11);
    ASSERT_STREQ(text(wh, "SELECT name FROM sales.items WHERE id = 2"), "Carol, Jr.");
    ASSERT_STREQ(text(wh, "SELECT note FROM sales.items WHERE id = 2"), "two\nlines");
    ASSERT_STREQ(text(wh, "SELECT name FROM sales.items WHERE id = 3"), "say \"hi\"");
    ASSERT_STREQ(text(wh, "SELECT price FROM sales.items WHERE id = 3"), "NULL");
    ASSERT_STREQ(text(wh, "SELECT zip FROM sales.items WHERE id = 1"), "01234");
    ASSERT_STREQ(text(wh, "SELECT price FROM sales.items WHERE id = -4"), "-2500");
    ASSERT_STREQ(text(wh, "SELECT note FROM sales.items WHERE id = -4"), "x\"y");

    /* Appending to the existing table. */
    path = write_file(dir, "b.csv", "id,name\n5,Eve\n");
    ASSERT_EQ(pt_wh_import(wh, "sales", "items", path, &rows), 0);
    ASSERT_EQ(rows, 1);
    ASSERT_EQ(scalar(wh, "SELECT count(*) FROM sales.items"), 5);
    path = write_file(dir, "c.csv", "id,other\n6,x\n");
    ASSERT_EQ(pt_wh_import(wh, "sales", "items", path, &rows), PT_EINVAL);
    ASSERT_TRUE(strstr(pt_wh_errmsg(wh), "other") != NULL);
    ASSERT_EQ(scalar(wh, "SELECT count(*) FROM sales.items"), 5);

    /* Errors: bad header name, ragged rows, an unclosed quote, a missing file. Nothing is
     * imported on error (one transaction). */
    path = write_file(dir, "d.csv", "id,annual revenue\n1,2\n");
    ASSERT_EQ(pt_wh_import(wh, "sales", "d", path, &rows), PT_EINVAL);
    ASSERT_TRUE(strstr(pt_wh_errmsg(wh), "annual revenue") != NULL);
    path = write_file(dir, "e.csv", "a,b\n1,2\n3\n");
    ASSERT_EQ(pt_wh_import(wh, "sales", "e", path, &rows), PT_EINVAL);
    ASSERT_TRUE(strstr(pt_wh_errmsg(wh), "line 3: expected 2 fields, found 1") != NULL);
    path = write_file(dir, "f.csv", "a,b\n1,\"2\n");
    ASSERT_EQ(pt_wh_import(wh, "sales", "f", path, &rows), PT_EINVAL);
    ASSERT_TRUE(strstr(pt_wh_errmsg(wh), "line 2: quoted field is never closed") != NULL);
    path = write_file(dir, "g.csv", "a,a\n1,2\n");
    ASSERT_EQ(pt_wh_import(wh, "sales", "g", path, &rows), PT_EINVAL);
    ASSERT_EQ(pt_wh_import(wh, "sales", "h", "/nonexistent/x.csv", &rows), PT_EIO);
    ASSERT_TRUE(strstr(pt_wh_errmsg(wh), "/nonexistent/x.csv") != NULL);
    ASSERT_EQ(pt_wh_table_exists(wh, "sales", "e"), 0);
    ASSERT_EQ(pt_wh_import(wh, "sales", "bad-table", path, &rows), PT_EINVAL);
    pt_wh_close(wh);
    pt_test_rm_tree(dir);
}

TEST(wh_import_json)
{
    char dir[64], err[256];
    pt_wh *wh = NULL;
    int64_t rows = -1;
    const char *path;

    ASSERT_TRUE(tmp_datadir(dir, sizeof dir) != NULL);
    ASSERT_EQ(pt_wh_open(dir, "dw", &wh, err, sizeof err), 0);
    path = write_file(dir, "a.json",
                      "[{\"id\": 1, \"city\": \"Ghent\", \"pop\": 265000, \"ok\": true},\n"
                      " {\"id\": 2, \"city\": \"Li\xC3\xA8ge\", \"pop\": 1.5, \"tags\": [1, \"a\"],"
                      "  \"ok\": false, \"meta\": {\"k\": null}},\n"
                      " {\"city\": null, \"id\": 3}]");
    ASSERT_EQ(pt_wh_import(wh, "geo", "cities", path, &rows), 0);
    ASSERT_EQ(rows, 3);
    ASSERT_STREQ(text(wh, "SELECT group_concat(name || ' ' || type, ',') FROM "
                          "pragma_table_info('cities', 'geo')"),
                 "id INTEGER,city TEXT,pop REAL,ok INTEGER,tags TEXT,meta TEXT");
    ASSERT_STREQ(text(wh, "SELECT city FROM geo.cities WHERE id = 2"), "Li\xC3\xA8ge");
    ASSERT_STREQ(text(wh, "SELECT tags FROM geo.cities WHERE id = 2"), "[1,\"a\"]");
    ASSERT_STREQ(text(wh, "SELECT meta FROM geo.cities WHERE id = 2"), "{\"k\":null}");
    ASSERT_EQ(scalar(wh, "SELECT ok FROM geo.cities WHERE id = 2"), 0);
    ASSERT_EQ(scalar(wh, "SELECT ok FROM geo.cities WHERE id = 1"), 1);
    ASSERT_STREQ(text(wh, "SELECT city FROM geo.cities WHERE id = 3"), "NULL");

    path = write_file(dir, "b.json", "[1, 2]");
    ASSERT_EQ(pt_wh_import(wh, "geo", "b", path, &rows), PT_EINVAL);
    ASSERT_TRUE(strstr(pt_wh_errmsg(wh), "element 1 is not an object") != NULL);
    path = write_file(dir, "c.json", "[{\"a\": 1,}]");
    ASSERT_EQ(pt_wh_import(wh, "geo", "c", path, &rows), PT_EINVAL);
    path = write_file(dir, "d.json", "[{\"bad key\": 1}]");
    ASSERT_EQ(pt_wh_import(wh, "geo", "d", path, &rows), PT_EINVAL);
    ASSERT_TRUE(strstr(pt_wh_errmsg(wh), "bad key") != NULL);
    path = write_file(dir, "e.txt", "  [{\"x\": 1}]");
    ASSERT_EQ(pt_wh_import(wh, "geo", "e", path, &rows), 0); /* detected by content */
    ASSERT_EQ(rows, 1);
    pt_wh_close(wh);
    pt_test_rm_tree(dir);
}

/* may_block tells callers when to let other threads run: SQLite's first step runs the query,
 * later ones read on, and a finished cursor never waits. */
TEST(wh_cursor_may_block)
{
    char dir[64], err[256];
    pt_wh *wh = NULL;
    pt_wh_cursor *c = NULL;

    ASSERT_TRUE(tmp_datadir(dir, sizeof dir) != NULL);
    ASSERT_EQ(pt_wh_open(dir, "dw", &wh, err, sizeof err), 0);
    ASSERT_EQ(pt_wh_exec(wh, "SELECT 1 UNION ALL SELECT 2", NULL, 0, &c), 0);
    ASSERT_EQ(pt_wh_cursor_may_block(c), 1);
    ASSERT_EQ(pt_wh_cursor_next(c), 1);
    ASSERT_EQ(pt_wh_cursor_may_block(c), 0);
    ASSERT_EQ(pt_wh_cursor_next(c), 1);
    ASSERT_EQ(pt_wh_cursor_next(c), 0);
    ASSERT_EQ(pt_wh_cursor_may_block(c), 0);
    pt_wh_cursor_free(c);
    ASSERT_EQ(pt_wh_exec(wh, "CREATE TABLE main.x(a)", NULL, 0, &c), 0);
    ASSERT_EQ(pt_wh_cursor_may_block(c), 0); /* ran to completion in exec */
    pt_wh_cursor_free(c);
    pt_wh_close(wh);
    pt_test_rm_tree(dir);
}

/* SQLite reads local files: next_nowait reads as next does and has no socket to wait on. */
TEST(wh_cursor_next_nowait_sqlite)
{
    char dir[64], err[256];
    pt_wh *wh = NULL;
    pt_wh_cursor *c = NULL;
    pt_value v;

    ASSERT_TRUE(tmp_datadir(dir, sizeof dir) != NULL);
    ASSERT_EQ(pt_wh_open(dir, "dw", &wh, err, sizeof err), 0);
    ASSERT_EQ(pt_wh_exec(wh, "SELECT 1 UNION ALL SELECT 2", NULL, 0, &c), 0);
    ASSERT_EQ(pt_wh_cursor_fd(c), -1);
    ASSERT_EQ(pt_wh_cursor_next_nowait(c), 1);
    pt_wh_cursor_value(c, 0, &v);
    ASSERT_EQ(v.u.i, 1);
    ASSERT_EQ(pt_wh_cursor_next_nowait(c), 1);
    pt_wh_cursor_value(c, 0, &v);
    ASSERT_EQ(v.u.i, 2);
    ASSERT_EQ(pt_wh_cursor_next_nowait(c), 0);
    pt_wh_cursor_free(c);
    pt_wh_close(wh);
    pt_test_rm_tree(dir);
}

TEST(wh_other_sqlite_connection)
{
    char dir[64], err[256], whdir[128];
    pt_store *st = NULL;
    pt_wh *wh = NULL;
    pt_wh_cursor *c = NULL;
    pt_connection conn = {"w2", "sqlite", "warehouse/w2"};

    ASSERT_TRUE(tmp_datadir(dir, sizeof dir) != NULL);
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);
    ASSERT_EQ(pt_store_connection_add(st, &conn), 0);
    conn.name = "pg";
    conn.kind = "postgres";
    conn.dsn = "host=localhost";
    ASSERT_EQ(pt_store_connection_add(st, &conn), 0);
    pt_store_close(st);
    snprintf(whdir, sizeof whdir, "%s/warehouse", dir);
    mkdir(whdir, 0700);

    ASSERT_EQ(pt_wh_open(dir, "w2", &wh, err, sizeof err), 0);
    ASSERT_STREQ(pt_wh_name(wh), "w2");
    ASSERT_EQ(pt_wh_create_schema(wh, "crm"), 0);
    ASSERT_EQ(pt_wh_exec(wh, "CREATE TABLE crm.p(n)", NULL, 0, &c), 0);
    pt_wh_cursor_free(c);
    pt_wh_close(wh);
    snprintf(whdir, sizeof whdir, "%s/warehouse/w2/crm.db", dir);
    ASSERT_EQ(access(whdir, F_OK), 0);

    ASSERT_EQ(pt_wh_open(dir, "dw", &wh, err, sizeof err), 0);
    ASSERT_EQ(pt_wh_exec(wh, "SELECT * FROM crm.p", NULL, 0, &c), PT_ENOTFOUND);
    pt_wh_close(wh);
    ASSERT_EQ(pt_wh_open(dir, "pg", &wh, err, sizeof err), PT_EUNAVAIL);
    pt_test_rm_tree(dir);
}

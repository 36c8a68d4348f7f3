/* test_rows.c - unit tests for the row serializer (rows.c) and the value helpers drivers use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "test.h"
#include "warehouse/rows.h"
#include "warehouse/wh.h"
#include "warehouse/wh_int.h"

TEST(rows_iso_datetime)
{
    char out[PT_WH_ISO_MAX];
    size_t n = pt_wh_iso_datetime("2024-05-01 13:45:00+02", 22, out);
    ASSERT_MEMSTR(out, n, "2024-05-01T13:45:00+02:00");
    n = pt_wh_iso_datetime("2024-05-01 13:45:00.5+0530", 26, out);
    ASSERT_MEMSTR(out, n, "2024-05-01T13:45:00.5+05:30");
    n = pt_wh_iso_datetime("2024-05-01", 10, out);
    ASSERT_MEMSTR(out, n, "2024-05-01");
    n = pt_wh_iso_datetime("13:45:00-07", 11, out);
    ASSERT_MEMSTR(out, n, "13:45:00-07:00");
    n = pt_wh_iso_datetime("infinity", 8, out);
    ASSERT_MEMSTR(out, n, "infinity");
}

TEST(rows_value_writers)
{
    pt_buf b;
    pt_value v = {.type = PT_V_BLOB, .u.s = {"\x00\x01\xff", 3}};

    pt_buf_init(&b, 0);
    ASSERT_EQ(pt_rows_json_value(&b, &v, 1), 0);
    ASSERT_MEMSTR(b.data, b.len, "\"AAH/\"");
    pt_buf_reset(&b);
    v.type = PT_V_NUMERIC;
    v.u.s.p = "12.50";
    v.u.s.n = 5;
    ASSERT_EQ(pt_rows_json_value(&b, &v, 1), 0);
    ASSERT_MEMSTR(b.data, b.len, "12.5");
    pt_buf_reset(&b);
    ASSERT_EQ(pt_rows_json_value(&b, &v, 0), 0);
    ASSERT_MEMSTR(b.data, b.len, "\"12.50\"");
    pt_buf_reset(&b);
    v.type = PT_V_JSON;
    v.u.s.p = "{\"a\":[1,2.0,null],\"b\":1e2}";
    v.u.s.n = strlen(v.u.s.p);
    ASSERT_EQ(pt_rows_json_value(&b, &v, 1), 0);
    ASSERT_MEMSTR(b.data, b.len, "{\"a\": [1, 2.0, null], \"b\": 100.0}");
    pt_buf_reset(&b);
    ASSERT_EQ(pt_rows_csv_field(&b, "a,\"b\"", 5), 0);
    ASSERT_EQ(pt_rows_csv_field(&b, "", 0), 0);
    ASSERT_MEMSTR(b.data, b.len, "\"a,\"\"b\"\"\"\"\"");
    pt_buf_free(&b);
}

TEST(rows_dsn_redact)
{
    char out[256];
    pt_wh_dsn_redact("host=h user=u password=secret dbname=d", out, sizeof out);
    ASSERT_TRUE(strstr(out, "secret") == NULL);
    ASSERT_TRUE(strstr(out, "password=***") != NULL);
    pt_wh_dsn_redact("postgresql://u:secret@h:5/d", out, sizeof out);
    ASSERT_TRUE(strstr(out, "secret") == NULL);
    ASSERT_TRUE(strstr(out, "host=h") != NULL);
    /* The passphrase of the client key is as secret as the password, in both forms. */
    pt_wh_dsn_redact("host=h sslkey=/k.pem sslpassword=keysecret password=pw", out, sizeof out);
    ASSERT_TRUE(strstr(out, "keysecret") == NULL);
    ASSERT_TRUE(strstr(out, "pw") == NULL);
    ASSERT_TRUE(strstr(out, "sslpassword=***") != NULL);
    ASSERT_TRUE(strstr(out, "sslkey=/k.pem") != NULL);
    pt_wh_dsn_redact("postgresql://u@h/d?sslpassword=keysecret", out, sizeof out);
    ASSERT_TRUE(strstr(out, "keysecret") == NULL);
    ASSERT_TRUE(strstr(out, "sslpassword=***") != NULL);
}

/* Writes a table through the SQLite driver and serializes it as JSON, CSV, NDJSON in chunks. */
TEST(rows_write_formats_and_chunks)
{
    char dir[] = "/tmp/pt-test-rows-XXXXXX", cmd[128];
    pt_wh *wh = NULL;
    pt_wh_cursor *c = NULL;
    pt_rows *r = NULL;
    pt_rows_opts o = {.format = PT_ROWS_JSON, .python_types = 1};
    pt_buf b;
    char err[256];
    int rc, calls = 0;

    ASSERT_TRUE(mkdtemp(dir) != NULL);
    ASSERT_EQ(pt_wh_sqlite_open("t", dir, &wh, err, sizeof err), 0);
    ASSERT_EQ(pt_wh_create_schema(wh, "s"), 0);
    ASSERT_EQ(pt_wh_exec(wh, "CREATE TABLE s.t (id INTEGER, name TEXT, ok BOOLEAN)", NULL, 0, &c),
              0);
    pt_wh_cursor_free(c);
    ASSERT_EQ(pt_wh_exec(wh,
                         "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE "
                         "x < 1000) INSERT INTO s.t SELECT x, 'n' || x, x % 2 FROM n",
                         NULL, 0, &c),
              0);
    pt_wh_cursor_free(c);
    pt_buf_init(&b, 0);

    ASSERT_EQ(pt_wh_exec(wh, "SELECT id, name, ok, NULL AS z FROM s.t WHERE id < 3", NULL, 0, &c),
              0);
    ASSERT_EQ(pt_rows_new(c, &o, &r), 0);
    ASSERT_EQ(pt_rows_write(r, &b, 0), 0);
    ASSERT_MEMSTR(b.data, b.len,
                  "[{\"id\": 1, \"name\": \"n1\", \"ok\": true, \"z\": null}, {\"id\": 2, "
                  "\"name\": \"n2\", \"ok\": false, \"z\": null}]");
    pt_rows_free(r);
    pt_wh_cursor_free(c);

    o.format = PT_ROWS_CSV;
    pt_buf_reset(&b);
    ASSERT_EQ(pt_wh_exec(wh, "SELECT id, name AS id FROM s.t WHERE id < 3", NULL, 0, &c), 0);
    ASSERT_EQ(pt_rows_new(c, &o, &r), 0);
    ASSERT_EQ(pt_rows_write(r, &b, 0), 0);
    ASSERT_MEMSTR(b.data, b.len, "id\r\nn1\r\nn2\r\n"); /* a name twice: its last value */
    pt_rows_free(r);
    pt_wh_cursor_free(c);

    o.format = PT_ROWS_NDJSON;
    pt_buf_reset(&b);
    ASSERT_EQ(pt_wh_exec(wh, "SELECT id FROM s.t", NULL, 0, &c), 0);
    ASSERT_EQ(pt_rows_new(c, &o, &r), 0);
    while ((rc = pt_rows_write(r, &b, 1024)) == 1)
        calls++;
    ASSERT_EQ(rc, 0);
    ASSERT_GT(calls, 3);
    ASSERT_EQ(b.data[b.len - 1], '\n');
    pt_rows_free(r);
    pt_wh_cursor_free(c);

    pt_buf_free(&b);
    pt_wh_close(wh);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ASSERT_EQ(system(cmd), 0);
}

/* The streams of a process are capped; a stream gives its slot back when freed. */
TEST(rows_stream_slots)
{
    char dir[] = "/tmp/pt-test-slots-XXXXXX", cmd[128];
    pt_rows_opts o = {.format = PT_ROWS_NDJSON, .python_types = 1};
    pt_body_stream *s;
    pt_wh *wh = NULL;
    pt_wh_cursor *c = NULL;
    pt_rows *r = NULL;
    char err[256];
    int i, live = pt_rows_streams_live();

    ASSERT_EQ(live, 0);
    for (i = 0; i < PT_ROWS_MAX_STREAMS; i++)
        ASSERT_EQ(pt_rows_stream_slot(), 1);
    ASSERT_EQ(pt_rows_stream_slot(), 0);
    ASSERT_EQ(pt_rows_streams_live(), PT_ROWS_MAX_STREAMS);
    pt_rows_stream_slot_release();
    ASSERT_EQ(pt_rows_streams_live(), PT_ROWS_MAX_STREAMS - 1);

    /* The last slot goes to a stream, which gives it back when freed. */
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    ASSERT_EQ(pt_wh_sqlite_open("t", dir, &wh, err, sizeof err), 0);
    ASSERT_EQ(pt_wh_exec(wh, "SELECT 1 AS a", NULL, 0, &c), 0);
    ASSERT_EQ(pt_rows_new(c, &o, &r), 0);
    ASSERT_EQ(pt_rows_stream_slot(), 1);
    s = pt_rows_stream_new(wh, c, r, 1024);
    ASSERT_TRUE(s != NULL);
    ASSERT_EQ(pt_rows_stream_slot(), 0);
    s->free(s);
    ASSERT_EQ(pt_rows_streams_live(), PT_ROWS_MAX_STREAMS - 1);
    for (i = 0; i < PT_ROWS_MAX_STREAMS - 1; i++)
        pt_rows_stream_slot_release();
    ASSERT_EQ(pt_rows_streams_live(), 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ASSERT_EQ(system(cmd), 0);
}

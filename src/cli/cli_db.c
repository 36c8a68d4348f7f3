/* cli_db.c - `portico db add|list|rm|import|query`: warehouse connections and their data. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "admin/admin.h"
#include "cli/cli_api.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/file.h"
#include "core/json.h"
#include "store/store.h"
#include "warehouse/rows.h"
#include "warehouse/wh.h"

static const char db_usage[] =
    "db add NAME --sqlite [DIR] | add NAME --postgres DSN | list | rm NAME | "
    "import CONN SCHEMA TABLE FILE [--primary-key COL[,COL]] | "
    "query CONN SQL [--json]";

/* `db add` through --server: DIR is a directory on the server (absolute, existing), the
 * default DATA/warehouse/NAME there. Prints as on the data dir. */
static int
db_add_remote(const char *name, const char *postgres, const char *dir)
{
    pt_cli_reply rep;
    json_t *body = json_pack("{s:s, s:s}", "name", name, "kind", postgres ? "postgres" : "sqlite");
    int rc;

    if (postgres != NULL)
        json_object_set_new(body, "dsn", json_string(postgres));
    if (dir != NULL)
        json_object_set_new(body, "dir", json_string(dir));
    if ((rc = pt_cli_api(NULL, "POST", "/connections", NULL, body, &rep)) != 0)
        return rc;
    printf("connection %s added (%s, %s)\n", name, postgres ? "postgres" : "sqlite",
           json_string_value(json_object_get(rep.body, "location")));
    pt_cli_reply_clear(&rep);
    return 0;
}

static int
db_add(const char *datadir, int argc, char **argv)
{
    const char *usage = "db add NAME --sqlite [DIR] | db add NAME --postgres DSN";
    const char *sqlite = NULL, *postgres = NULL;
    pt_cli_opt opts[] = {{"--sqlite", 0, &sqlite}, {"--postgres", 1, &postgres}, {NULL, 0, NULL}};
    pt_connection conn = {0}, old = {0};
    pt_store *st = NULL;
    char *pos[2], dir[PATH_MAX], rel[256], abs_dir[PATH_MAX], err[512], shown[1024];
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, opts, pos, 1, 2, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if ((sqlite == NULL) == (postgres == NULL))
        return pt_cli_error("db add needs exactly one of --sqlite [DIR] or --postgres DSN");
    if (postgres != NULL && npos != 1)
        return pt_cli_usage(usage);
    if (!pt_store_name_valid(pos[0]))
        return pt_cli_error("invalid connection name '%s' (letters, digits, '_', '.', '-'; at "
                            "most 64; not starting with '.' or '-')",
                            pos[0]);
    if (strcmp(pos[0], "dw") == 0)
        return pt_cli_error("connection 'dw' is the built-in warehouse; choose another name");
    if (pt_cli_api_server() != NULL)
        return db_add_remote(pos[0], postgres, npos == 2 ? pos[1] : NULL);
    rc = pt_cli_open_store(datadir, &st);
    if (rc != 0)
        return rc;
    if (pt_store_connection_get(st, pos[0], &old) == 0) {
        rc = pt_cli_error("connection '%s' already exists (%s)", pos[0], old.kind);
        goto done;
    }

    if (postgres != NULL) {
        /* Checked now, so that a typo shows here rather than as a 503 at request time. */
        pt_wh_dsn_redact(postgres, shown, sizeof shown);
        if (pt_wh_pg_check(postgres, err, sizeof err) != 0) {
            rc = pt_cli_error("%s", err);
            goto done;
        }
        conn.name = pos[0];
        conn.kind = "postgres";
        conn.dsn = (char *)postgres;
        if (pt_store_connection_add(st, &conn) != 0) {
            rc = pt_cli_error("%s", pt_store_errmsg(st));
            goto done;
        }
        printf("connection %s added (postgres, %s)\n", pos[0], shown);
        goto done;
    }
    /* The default directory is stored relative to the data dir, so that the data dir can
     * move; a directory given by the user is stored absolute. */
    if (npos == 2) {
        snprintf(dir, sizeof dir, "%s", pos[1]);
    } else {
        snprintf(rel, sizeof rel, "warehouse/%s", pos[0]);
        snprintf(dir, sizeof dir, "%s/%s", datadir, rel);
    }
    if (pt_cli_mkdir_p(dir, 0700) != 0) {
        rc = pt_cli_error("cannot create %s: %s", dir, strerror(errno));
        goto done;
    }
    if (npos == 2 && realpath(dir, abs_dir) == NULL) {
        rc = pt_cli_error("cannot resolve %s: %s", dir, strerror(errno));
        goto done;
    }
    conn.name = pos[0];
    conn.kind = "sqlite";
    conn.dsn = npos == 2 ? abs_dir : rel;
    if (pt_store_connection_add(st, &conn) != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        goto done;
    }
    printf("connection %s added (sqlite, %s)\n", pos[0], npos == 2 ? abs_dir : dir);
done:
    pt_connection_clear(&old);
    pt_store_close(st);
    return rc;
}

static int
db_list(const char *datadir, int argc, char **argv)
{
    /* The location is SQLite's directory, or a PostgreSQL DSN without its password. */
    static const pt_cli_col cols[] = {
        {"NAME", "name", PT_CLI_COL_TEXT, NULL, NULL},
        {"KIND", "kind", PT_CLI_COL_TEXT, NULL, NULL},
        {"LOCATION", "location", PT_CLI_COL_TEXT, NULL, NULL},
    };

    return pt_cli_api_list_cmd(datadir, argc, argv, "db list", "/connections", "connections", cols,
                               3);
}

static int
db_rm(const char *datadir, int argc, char **argv)
{
    pt_cli_reply rep;
    char *pos[1], path[512];
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, NULL, pos, 1, 1, &npos, "db rm NAME");
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (pt_cli_api_path(path, sizeof path, "connections", pos[0], NULL) != 0)
        return pt_cli_error("the connection name is too long");
    if ((rc = pt_cli_api(datadir, "DELETE", path, NULL, NULL, &rep)) != 0)
        return rc;
    const char *kind = json_string_value(json_object_get(rep.body, "kind"));
    if (kind != NULL && strcmp(kind, "postgres") == 0)
        printf("connection %s removed (the PostgreSQL database is not touched)\n", pos[0]);
    else
        printf("connection %s removed (its data stays in %s)\n", pos[0],
               json_string_value(json_object_get(rep.body, "location")));
    pt_cli_reply_clear(&rep);
    return 0;
}

/* `db import` with --server: the file's text goes to POST /connections/{name}/import (editor),
 * at most the admin API's body limit. pos: CONN SCHEMA TABLE FILE. */
static int
db_import_remote(char **pos, const char *key)
{
    char path[512], err[256];
    char *data = NULL;
    size_t len = 0;
    pt_cli_reply rep;
    const char *base = strrchr(pos[3], '/') != NULL ? strrchr(pos[3], '/') + 1 : pos[3];

    if (pt_cli_api_path(path, sizeof path, "connections", pos[0], "import", NULL) != 0)
        return pt_cli_error("connection name too long");
    int rc = pt_file_read(pos[3], PT_ADMIN_BODY_MAX, &data, &len, err, sizeof err);
    if (rc == PT_ETOOBIG)
        return pt_cli_error("%s: %s; a server takes at most %u bytes in one import (run it on "
                            "the server's host)",
                            pos[3], err, PT_ADMIN_BODY_MAX);
    if (rc != 0)
        return pt_cli_error("%s: %s", pos[3], err);
    json_t *content = json_stringn(data, len);
    free(data);
    if (content == NULL)
        return pt_cli_error("%s is not UTF-8 text (CSV or JSON)", pos[3]);
    json_t *body = json_pack("{s:s, s:s, s:s, s:o, s:s?}", "schema", pos[1], "table", pos[2],
                             "filename", base, "content", content, "primary_key", key);
    if ((rc = pt_cli_api(NULL, "POST", path, NULL, body, &rep)) != 0)
        return rc;
    json_int_t rows = json_integer_value(json_object_get(rep.body, "rows"));
    const char *note = json_string_value(json_object_get(rep.body, "note"));
    printf("imported %" JSON_INTEGER_FORMAT " row%s into %s.%s.%s%s%s\n", rows,
           rows == 1 ? "" : "s", pos[0], pos[1], pos[2], note && note[0] ? "; " : "",
           note ? note : "");
    pt_cli_reply_clear(&rep);
    return 0;
}

static int
db_import(const char *datadir, int argc, char **argv)
{
    const char *usage = "db import CONN SCHEMA TABLE FILE [--primary-key COL[,COL]]";
    const char *key = NULL;
    pt_cli_opt opts[] = {{"--primary-key", 1, &key}, {NULL, 0, NULL}};
    pt_wh_import_result res;
    pt_wh *wh = NULL;
    char *pos[4], err[512];
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, opts, pos, 4, 4, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (pt_cli_api_server() != NULL)
        return db_import_remote(pos, key);
    if (pt_cli_need_datadir(datadir) != 0)
        return PT_CLI_ERROR;
    if (pt_wh_open(datadir, pos[0], &wh, err, sizeof err) != 0)
        return pt_cli_error("%s", err);
    if (pt_wh_import_keyed(wh, pos[1], pos[2], pos[3], key, &res) != 0)
        rc = pt_cli_error("%s", pt_wh_errmsg(wh));
    else
        printf("imported %" PRId64 " row%s into %s.%s.%s%s%s\n", res.rows, res.rows == 1 ? "" : "s",
               pos[0], pos[1], pos[2], res.note[0] ? "; " : "", res.note);
    pt_wh_close(wh);
    return rc;
}

/* Streams the rows as one JSON array of objects, one row per line. */
static int
print_json(pt_wh *wh, pt_wh_cursor *c)
{
    size_t ncols = pt_wh_cursor_ncols(c), i;
    pt_buf b;
    pt_value v;
    int first = 1, rc;

    pt_buf_init(&b, 0);
    fputc('[', stdout);
    while ((rc = pt_wh_cursor_next(c)) == 1) {
        pt_buf_reset(&b);
        rc = pt_buf_puts(&b, first ? "{" : ",\n{");
        for (i = 0; rc == 0 && i < ncols; i++) {
            const char *name = pt_wh_cursor_colname(c, i);
            if (i > 0)
                rc = pt_buf_puts(&b, ", ");
            if (rc == 0)
                rc = pt_json_string(&b, name, strlen(name));
            if (rc == 0)
                rc = pt_buf_puts(&b, ": ");
            pt_wh_cursor_value(c, i, &v);
            if (rc == 0)
                rc = pt_rows_json_value(&b, &v, 1); /* as the HTTP API writes it */
        }
        if (rc == 0)
            rc = pt_buf_putc(&b, '}');
        if (rc != 0) {
            pt_buf_free(&b);
            return pt_cli_error("out of memory");
        }
        fwrite(b.data, 1, b.len, stdout);
        first = 0;
    }
    pt_buf_free(&b);
    fputs("]\n", stdout);
    if (rc < 0)
        return pt_cli_error("%s", pt_wh_errmsg(wh));
    return 0;
}

/* Prints the rows as an aligned table with a "(N rows)" footer. */
static int
print_table(pt_wh *wh, pt_wh_cursor *c)
{
    size_t ncols = pt_wh_cursor_ncols(c), i;
    pt_cli_table *t = pt_cli_table_new(ncols);
    int64_t rows = 0;
    pt_buf b;
    pt_value v;
    int rc = 0;

    pt_buf_init(&b, 0);
    if (t == NULL)
        goto nomem;
    for (i = 0; i < ncols; i++)
        if (pt_cli_table_adds(t, pt_wh_cursor_colname(c, i)) != 0)
            goto nomem;
    while ((rc = pt_wh_cursor_next(c)) == 1) {
        for (i = 0; i < ncols; i++) {
            pt_buf_reset(&b);
            pt_wh_cursor_value(c, i, &v);
            if (pt_rows_text_value(&b, &v) != 0 ||
                pt_cli_table_add(t, b.len > 0 ? b.data : "", b.len))
                goto nomem;
        }
        rows++;
    }
    if (rc < 0) {
        rc = pt_cli_error("%s", pt_wh_errmsg(wh));
        goto done;
    }
    pt_cli_table_print(t, stdout, 1);
    printf("(%" PRId64 " row%s)\n", rows, rows == 1 ? "" : "s");
    rc = 0;
    goto done;
nomem:
    rc = pt_cli_error("out of memory");
done:
    pt_buf_free(&b);
    pt_cli_table_free(t);
    return rc;
}

/* The most rows `db query` gets back from a server (POST /connections/{name}/execute's cap). */
#define REMOTE_ROWS 1000

/* Prints the answer of POST /connections/{name}/execute (body borrowed) as db query prints
 * the rows on the data dir: a JSON array of objects (json), or the table of the display text
 * with its "(N rows)" footer, or "(N rows changed)" for a statement without columns. */
static int
print_remote(json_t *body, int json)
{
    json_t *cols = json_object_get(body, "columns"), *rows = json_object_get(body, "rows");
    json_t *changed = json_object_get(body, "changed"), *row, *cell;
    size_t ncols = json_array_size(cols), i, k;
    pt_cli_table *t = NULL;
    pt_buf b;
    int rc = 0;

    pt_buf_init(&b, 0);
    if (json) {
        fputc('[', stdout);
        json_array_foreach(rows, i, row)
        {
            pt_buf_reset(&b);
            rc = pt_buf_puts(&b, i == 0 ? "{" : ",\n{");
            json_array_foreach(row, k, cell)
            {
                const char *name = json_string_value(json_array_get(cols, k));
                if (rc == 0 && k > 0)
                    rc = pt_buf_puts(&b, ", ");
                if (rc == 0)
                    rc = pt_json_string(&b, name != NULL ? name : "", name ? strlen(name) : 0);
                if (rc == 0)
                    rc = pt_buf_puts(&b, ": ");
                if (rc == 0)
                    rc = pt_rows_json_emit(&b, cell);
            }
            if (rc == 0)
                rc = pt_buf_putc(&b, '}');
            if (rc != 0)
                goto nomem;
            fwrite(b.data, 1, b.len, stdout);
        }
        fputs("]\n", stdout);
    } else if (ncols == 0) {
        json_int_t n = json_integer_value(changed);
        printf("(%" JSON_INTEGER_FORMAT " row%s changed)\n", n, n == 1 ? "" : "s");
    } else {
        if ((t = pt_cli_table_new(ncols)) == NULL)
            goto nomem;
        json_array_foreach(cols, i,
                           cell) if (pt_cli_table_adds(t, json_string_value(cell)) != 0) goto nomem;
        json_array_foreach(rows, i, row) for (k = 0; k < ncols; k++)
        {
            json_t *v = json_array_get(row, k);
            if (pt_cli_table_add(t, json_string_value(v) ? json_string_value(v) : "",
                                 json_string_length(v)) != 0)
                goto nomem;
        }
        pt_cli_table_print(t, stdout, 1);
        printf("(%zu row%s)\n", json_array_size(rows), json_array_size(rows) == 1 ? "" : "s");
    }
    if (json_is_true(json_object_get(body, "truncated")))
        fprintf(stderr, "only the first %d rows: a server gives no more to `db query`\n",
                REMOTE_ROWS);
    goto done;
nomem:
    rc = pt_cli_error("out of memory");
done:
    pt_buf_free(&b);
    pt_cli_table_free(t);
    return rc;
}

/* `db query` with --server: the statement runs in the server (POST .../execute, admin). */
static int
db_query_remote(const char *conn, const char *sql, int json)
{
    char path[512];
    pt_cli_reply rep;
    if (pt_cli_api_path(path, sizeof path, "connections", conn, "execute", NULL) != 0)
        return pt_cli_error("connection name too long");
    json_t *body = json_pack("{s:s, s:i, s:b}", "sql", sql, "limit", REMOTE_ROWS, "text", !json);
    int rc = pt_cli_api(NULL, "POST", path, NULL, body, &rep);
    if (rc != 0)
        return rc;
    rc = print_remote(rep.body, json);
    pt_cli_reply_clear(&rep);
    return rc;
}

static int
db_query(const char *datadir, int argc, char **argv)
{
    const char *usage = "db query CONN SQL [--json]";
    const char *json = NULL;
    pt_cli_opt opts[] = {{"--json", 0, &json}, {NULL, 0, NULL}};
    pt_wh *wh = NULL;
    pt_wh_cursor *c = NULL;
    char *pos[2], err[512];
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, opts, pos, 2, 2, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (pt_cli_api_server() != NULL)
        return db_query_remote(pos[0], pos[1], json != NULL);
    if (pt_cli_need_datadir(datadir) != 0)
        return PT_CLI_ERROR;
    if (pt_wh_open(datadir, pos[0], &wh, err, sizeof err) != 0)
        return pt_cli_error("%s", err);
    if (pt_wh_exec(wh, pos[1], NULL, 0, &c) != 0) {
        rc = pt_cli_error("%s", pt_wh_errmsg(wh));
        goto done;
    }
    if (json != NULL)
        rc = print_json(wh, c);
    else if (pt_wh_cursor_ncols(c) == 0)
        printf("(%" PRId64 " row%s changed)\n", pt_wh_cursor_changes(c),
               pt_wh_cursor_changes(c) == 1 ? "" : "s");
    else
        rc = print_table(wh, c);
done:
    pt_wh_cursor_free(c);
    pt_wh_close(wh);
    return rc;
}

static const pt_cli_sub db_subs[] = {
    {"add", NULL, db_add, PT_CLI_REMOTE},     {"list", "ls", db_list, PT_CLI_REMOTE},
    {"rm", NULL, db_rm, PT_CLI_REMOTE},       {"import", NULL, db_import, PT_CLI_REMOTE},
    {"query", NULL, db_query, PT_CLI_REMOTE}, {NULL, NULL, NULL, 0}};

int
pt_cli_db(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("db", db_usage, db_subs, datadir, argc, argv);
}

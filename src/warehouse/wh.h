/* wh.h - the warehouse: the data that handler scripts read and write through `pq`.
 *
 * A pt_wh is one open warehouse connection (embedded SQLite, or PostgreSQL through libpq). The
 * API is a cursor over typed values so that callers (the pq module, the row serializer, the
 * CLI) never see the driver. Not thread-safe: one pt_wh per thread, or callers serialise. */
#ifndef PT_WH_H
#define PT_WH_H

#include <stddef.h>
#include <stdint.h>

typedef enum pt_vtype {
    PT_V_NULL,
    PT_V_INT,
    PT_V_FLOAT,
    PT_V_TEXT,
    PT_V_BLOB,
    PT_V_BOOL,
    /* Tagged text (u.s holds UTF-8 text): the serializers and pq map these by tag. */
    PT_V_NUMERIC,   /* exact decimal as the database prints it: "12.50", "-3", "NaN" */
    PT_V_DATE,      /* ISO 8601 "2024-05-01" */
    PT_V_TIME,      /* ISO 8601 "13:45:00[.ffffff][+HH:MM]" */
    PT_V_TIMESTAMP, /* ISO 8601 "2024-05-01T13:45:00[.ffffff][+HH:MM]" */
    PT_V_JSON,      /* a JSON document (JSON/JSONB columns, and arrays converted to JSON) */
} pt_vtype;

/* Is t one of the tagged text types (value in u.s)? */
#define PT_V_IS_TEXTLIKE(t) ((t) == PT_V_TEXT || (t) >= PT_V_NUMERIC)
/* Is t a date or time type? */
#define PT_V_IS_DATETIME(t) ((t) == PT_V_DATE || (t) == PT_V_TIME || (t) == PT_V_TIMESTAMP)

typedef struct pt_value {
    pt_vtype type;
    union {
        int64_t i; /* PT_V_INT, PT_V_BOOL (0/1) */
        double f;  /* PT_V_FLOAT */
        struct {
            const char *p; /* PT_V_TEXT (UTF-8), PT_V_BLOB and the tagged text types */
            size_t n;
        } s;
    } u;
} pt_value;

/* Most parameters one statement may take. */
#define PT_WH_MAX_PARAMS 1024

typedef struct pt_wh pt_wh;
typedef struct pt_wh_cursor pt_wh_cursor;

/* The default warehouse's connection name (pq.DW_NAME). It is the embedded SQLite warehouse
 * (DATA/warehouse/dw), or the PostgreSQL database `portico init --warehouse DSN` stored. */
#define PT_WH_DEFAULT "dw"
/* The name under which the embedded SQLite warehouse stays reachable when the default one is
 * PostgreSQL: the webhook inbox (schema `webhooks`) lives in the embedded one unless the
 * metadata store is PostgreSQL (then it is in the store's database: pt_wh_open_events). */
#define PT_WH_EMBEDDED "embedded"

/* Opens connection `name` of data dir `datadir` ("dw" always exists). Returns 0,
 * PT_ENOTFOUND (unknown connection), PT_EUNAVAIL or PT_EDB; on error err says why.
 * Caller frees with pt_wh_close. */
int pt_wh_open(const char *datadir, const char *name, pt_wh **out, char *err, size_t errsz);
/* Opens the embedded SQLite warehouse DATA/warehouse/dw, whatever the default warehouse is
 * (named PT_WH_EMBEDDED): the webhook inbox's events live there. Same returns as pt_wh_open;
 * caller frees with pt_wh_close. */
int pt_wh_open_embedded(const char *datadir, pt_wh **out, char *err, size_t errsz);
/* Opens where the webhook inbox's events are (store/store_events.h): the embedded warehouse
 * (as pt_wh_open_embedded), or the store's database when the metadata store is PostgreSQL.
 * The events table is `events` of the schema written to schema (`webhooks`, or the name
 * pt_events_schema_of gives). Same returns as pt_wh_open; caller frees with pt_wh_close. */
int pt_wh_open_events(const char *datadir, pt_wh **out, char *schema, size_t schemasz, char *err,
                      size_t errsz);
/* Writes sql into out (outsz > 0) with each {events} replaced by the events table of schema (as
 * pt_wh_open_events gave it) and each {bytes} by wh's expression for the byte length of the
 * column `body`. A statement longer than out is cut (callers' statements are constants). */
void pt_wh_events_sql(const pt_wh *wh, const char *schema, const char *sql, char *out,
                      size_t outsz);
void pt_wh_close(pt_wh *wh); /* NULL is a no-op */
/* The connection's name (borrowed). */
const char *pt_wh_name(const pt_wh *wh);
/* The name of the database the connection reaches (borrowed, valid while wh is open): a
 * PostgreSQL connection's database as the server names it (its DSN's dbname); an embedded
 * SQLite connection's own name. */
const char *pt_wh_dbname(const pt_wh *wh);
/* Opens a PostgreSQL database by libpq connection string, outside the store's connections
 * (pq.dbconnect(dict)); `name` is how messages and logs call it. Same returns as pt_wh_open;
 * err never holds the password. Caller frees with pt_wh_close. */
int pt_wh_open_dsn(const char *name, const char *dsn, pt_wh **out, char *err, size_t errsz);
/* The driver's last error message (borrowed, valid until the next call on wh). */
const char *pt_wh_errmsg(const pt_wh *wh);

/* Identifiers (schema, table, column): [A-Za-z_][A-Za-z0-9_$]{0,62}. Returns 1 if valid. */
int pt_wh_ident_valid(const char *s);

/* Runs sql with params bound in order (?1.. / $1..: write `?` in SQLite; the driver maps).
 * On success *out is a cursor positioned before the first row (statements without rows give
 * a cursor with 0 columns). Returns 0, PT_EDB (message in pt_wh_errmsg), PT_ENOTFOUND
 * (unknown schema or table, message says which). Caller frees with pt_wh_cursor_free, which
 * must happen before the next pt_wh_exec on the same wh. */
int pt_wh_exec(pt_wh *wh, const char *sql, const pt_value *params, size_t nparams,
               pt_wh_cursor **out);
/* Advances: 1 = a row is available, 0 = done, <0 = PT_EDB. */
int pt_wh_cursor_next(pt_wh_cursor *c);
/* Could pt_wh_cursor_next(c) have to wait: for a database server to send more rows (PostgreSQL),
 * or to run the query (SQLite's first step)? 1 yes, 0 no (the next row is at hand, or the
 * rows ended). Reads input that has already arrived but never waits itself. Callers that hold
 * a lock others need (Python's GIL) release it around a call to next() that may wait. */
int pt_wh_cursor_may_block(pt_wh_cursor *c);
/* pt_wh_cursor_next that never waits for a database server: PT_EAGAIN when the next row (or
 * the end of the rows) has not arrived yet; call again once pt_wh_cursor_fd(c) is readable.
 * Once a cursor was read this way, freeing it before its rows ended does not wait for the
 * server either: the query is cancelled from another thread and the connection is reset
 * before its next statement. SQLite reads local files and never returns PT_EAGAIN. */
int pt_wh_cursor_next_nowait(pt_wh_cursor *c);
/* The socket whose input pt_wh_cursor_next_nowait waits for, or -1 (SQLite). Borrowed: owned
 * by the connection, valid while the cursor's rows are arriving; never close it. */
int pt_wh_cursor_fd(const pt_wh_cursor *c);
size_t pt_wh_cursor_ncols(const pt_wh_cursor *c);
/* Column name (borrowed, valid while the cursor lives). */
const char *pt_wh_cursor_colname(const pt_wh_cursor *c, size_t i);
/* Current row's value i; text/blob pointers valid until the next pt_wh_cursor_next. */
void pt_wh_cursor_value(const pt_wh_cursor *c, size_t i, pt_value *v);
/* The declared type of column i as a pt_vtype (PT_V_NULL when the driver cannot tell, e.g. an
 * SQLite expression column). Values of the column have this type or are NULL. */
pt_vtype pt_wh_cursor_coltype(const pt_wh_cursor *c, size_t i);
/* Rows changed by the last statement, and the last inserted rowid (SQLite). */
int64_t pt_wh_cursor_changes(const pt_wh_cursor *c);
int64_t pt_wh_cursor_last_id(const pt_wh_cursor *c);
void pt_wh_cursor_free(pt_wh_cursor *c); /* NULL is a no-op */

/* Prepared statements for repeated writes (imports, pq's bulk writes): statements without
 * result rows. pt_wh_stmt_run binds params (needed only during the call), runs the statement to
 * completion and leaves it ready to run again. Same errors as pt_wh_exec. Caller frees with
 * pt_wh_stmt_free, before pt_wh_close. */
typedef struct pt_wh_stmt pt_wh_stmt;
int pt_wh_prepare(pt_wh *wh, const char *sql, pt_wh_stmt **out);
int pt_wh_stmt_run(pt_wh_stmt *s, const pt_value *params, size_t nparams);
void pt_wh_stmt_free(pt_wh_stmt *s); /* NULL is a no-op */

/* Writes a PostgreSQL connection string for display into out, as key=value pairs with every
 * secret option libpq knows (password, sslpassword: the options its table marks "*"), in either
 * the key=value or the URI form, replaced by "***". A string libpq cannot parse is shown as
 * "(invalid connection string)". */
void pt_wh_dsn_redact(const char *dsn, char *out, size_t outsz);
/* Checks that a PostgreSQL connection string parses and that the server answers. Returns 0,
 * PT_EINVAL (malformed) or PT_EUNAVAIL, with a reason without the password in err. */
int pt_wh_pg_check(const char *dsn, char *err, size_t errsz);

/* The connection's kind: "sqlite" or "postgres" (static string). */
const char *pt_wh_kind(const pt_wh *wh);

/* Stops whatever the connection runs once CLOCK_MONOTONIC passes `deadline` (seconds; 0: no
 * deadline), even inside one long step that yields no row: the call in progress fails with
 * PT_EDB and "statement timeout" in pt_wh_errmsg. SQLite only (a progress handler);
 * PostgreSQL has statement_timeout, and this is a no-op there. */
void pt_wh_set_deadline(pt_wh *wh, double deadline);

/* Makes sure schema exists (SQLite: creates and ATTACHes DATA/warehouse/<conn>/<schema>.db;
 * PostgreSQL: creates it only when it is missing, so that a role without the CREATE privilege
 * on the database can still use a schema that exists). */
int pt_wh_create_schema(pt_wh *wh, const char *schema);
/* Does schema exist? 1 yes, 0 no, <0 error. */
int pt_wh_schema_exists(pt_wh *wh, const char *schema);
/* Does schema.table exist? 1 yes, 0 no, <0 error. */
int pt_wh_table_exists(pt_wh *wh, const char *schema, const char *table);
/* The primary key column of schema.table into out (size outsz). Returns 0, PT_ENOTFOUND when the
 * table does not exist or has no single-column primary key (message says which), or PT_EDB. */
int pt_wh_primary_key(pt_wh *wh, const char *schema, const char *table, char *out, size_t outsz);
/* The columns of schema.table, in table order: *names is one allocation (array of n pointers
 * followed by the strings); caller frees it with free(). Returns 0, PT_ENOTFOUND, PT_EDB. */
int pt_wh_columns(pt_wh *wh, const char *schema, const char *table, char ***names, size_t *n);
/* Column type names the driver uses for pq's portable types ("int", "float", "numeric",
 * "text", "bool", "date", "time", "timestamp", "timestamptz", "json", "bytes"); NULL for
 * an unknown portable type (static strings). */
const char *pt_wh_sql_type(const pt_wh *wh, const char *portable);
/* Is the connection inside a transaction it started with BEGIN? */
int pt_wh_in_transaction(pt_wh *wh);

/* Imports a CSV file (header row) or a JSON array of objects (file name ending in .json, or
 * content starting with '[') into schema.table, creating the schema and the table and
 * inferring column types (INTEGER, REAL, TEXT). Replaces an existing table's rows? No:
 * appends; a table that exists must have compatible columns. Files over 1 GiB are refused
 * (PT_ETOOBIG). Returns 0 and the row count, or a negative pt_err with the message (which names
 * the file) in pt_wh_errmsg. */
int pt_wh_import(pt_wh *wh, const char *schema, const char *table, const char *path, int64_t *rows);

/* What pt_wh_import_keyed did. */
typedef struct pt_wh_import_result {
    int64_t rows;
    char note[512]; /* the table's new primary key, or why `id` could not be it; "" otherwise */
} pt_wh_import_result;

/* pt_wh_import with a primary key for the table it creates: primary_key (borrowed; NULL for
 * none named) is "COL[,COL...]", imported columns whose values are all present and distinct;
 * without it, a column named `id` whose values qualify becomes the key. A named key on a table
 * that exists must be its key. Bad names, missing or repeated key values: PT_EINVAL with the
 * message (naming the line or element), nothing written. res (caller's) is always filled. */
int pt_wh_import_keyed(pt_wh *wh, const char *schema, const char *table, const char *path,
                       const char *primary_key, pt_wh_import_result *res);

/* ---- catalog (wh_catalog.c): what pq's metadata functions list ------------------------- */

/* How deep pt_wh_catalog_read goes. */
typedef enum pt_wh_cat_level {
    PT_WH_CAT_SCHEMAS, /* schema names only (SQLite: no schema file is attached) */
    PT_WH_CAT_TABLES,  /* and their tables and views */
    PT_WH_CAT_FIELDS,  /* and the columns of each */
} pt_wh_cat_level;

typedef struct pt_wh_field {
    char *name;
    char *sql_type;   /* declared type, lower case ("integer", "numeric(10,2)"); "" if none */
    const char *type; /* pt_wh_portable_type(sql_type): static */
    int pk;           /* position in the primary key (1-based), 0 when not in it */
    int notnull;
} pt_wh_field;

typedef struct pt_wh_table_info {
    char *name;
    int is_view;
    pt_wh_field *fields;
    size_t nfields;
} pt_wh_table_info;

typedef struct pt_wh_schema_info {
    char *name; /* SQLite: lower case, as its file is named */
    pt_wh_table_info *tables;
    size_t ntables;
} pt_wh_schema_info;

typedef struct pt_wh_catalog {
    char *database; /* the database inside the connection: PostgreSQL's current_database(),
                     * the embedded warehouse's connection name */
    pt_wh_schema_info *schemas;
    size_t nschemas;
} pt_wh_catalog;

/* Reads the catalog of wh, down to `level`, in name order (columns in table order): every
 * schema the connection may use (PostgreSQL: without pg_* and information_schema), or only
 * `schema` when not NULL, and in each its tables and views, or only `table` when not NULL (a
 * schema without a match is listed with no tables). Names match exactly on PostgreSQL and
 * regardless of case on SQLite. Returns 0 with *out (caller frees with pt_wh_catalog_free),
 * PT_EDB, PT_EUNAVAIL or PT_ENOMEM with the message in pt_wh_errmsg. */
int pt_wh_catalog_read(pt_wh *wh, const char *schema, const char *table, pt_wh_cat_level level,
                       pt_wh_catalog **out);
void pt_wh_catalog_free(pt_wh_catalog *cat); /* NULL is a no-op */
/* pq's portable type name ("int", "float", "numeric", "text", "bool", "date", "time",
 * "timestamp", "timestamptz", "json", "bytes") of a declared SQL type (any case); "text" for
 * types without a closer one. Static string. */
const char *pt_wh_portable_type(const char *sql_type);
/* Deletes schema (a valid identifier) with everything in it: PostgreSQL DROP SCHEMA ... CASCADE;
 * SQLite drops its tables and views, detaches it and removes its file. Returns 0, PT_ENOTFOUND,
 * PT_EINVAL (a reserved name) or PT_EDB (e.g. inside a transaction, on SQLite). */
int pt_wh_drop_schema(pt_wh *wh, const char *schema);
/* Drops schema.table (names as the catalog gives them: any text, quoted here), a view when
 * is_view. cascade: also what depends on it (PostgreSQL; SQLite views never block a drop).
 * Returns 0, PT_ENOTFOUND or PT_EDB. */
int pt_wh_drop_table(pt_wh *wh, const char *schema, const char *table, int is_view, int cascade);
/* "schema"."table" as a query names the table (quotes in the names doubled): pq's
 * name_in_query. Caller frees with free(); NULL when out of memory. */
char *pt_wh_qualified_name(const char *schema, const char *table);
/* Builds, for wh's dialect, a UNION ALL query over n tables: tables[i] is the one table of a
 * catalog read at PT_WH_CAT_FIELDS (cats[i]->schemas[0].tables[0]). Its columns are every column
 * of every table in the order first seen (names compared regardless of case on SQLite), NULL
 * where a table lacks one, CAST(... AS TEXT) in every table where the column's portable types
 * differ; with labels (NULL or n strings) a first column "source" holding labels[i] for table
 * i. Identifiers are quoted and labels are string literals, quotes doubled. Returns 0 with *sql
 * (caller frees with free()), PT_EINVAL (n == 0, or a catalog without exactly one table) or
 * PT_ENOMEM, with the message set on wh. */
int pt_wh_union_sql(pt_wh *wh, const pt_wh_catalog *const *cats, size_t n,
                    const char *const *labels, char **sql);

#endif

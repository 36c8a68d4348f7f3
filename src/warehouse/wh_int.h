/* wh_int.h - the warehouse driver interface (internal to src/warehouse/): what wh.c dispatches
 * to and every driver (wh_sqlite.c, wh_pg.c) implements. */
#ifndef PT_WH_INT_H
#define PT_WH_INT_H

#include "warehouse/wh.h"

typedef struct pt_wh_driver {
    const char *kind; /* "sqlite", "postgres" */
    /* Column types used by pt_wh_import for inferred INTEGER, REAL and TEXT columns. */
    const char *type_int;
    const char *type_real;
    const char *type_text;
    void (*close)(pt_wh *wh);
    int (*exec)(pt_wh *wh, const char *sql, const pt_value *params, size_t nparams,
                pt_wh_cursor **out);
    int (*next)(pt_wh_cursor *c);
    int (*may_block)(pt_wh_cursor *c);
    /* wh.h: pt_wh_cursor_next_nowait and pt_wh_cursor_fd; NULL for drivers that never wait
     * on a socket (next is used, and there is no descriptor). */
    int (*next_nowait)(pt_wh_cursor *c);
    int (*fd)(const pt_wh_cursor *c);
    void (*value)(const pt_wh_cursor *c, size_t i, pt_value *v);
    void (*cursor_free)(pt_wh_cursor *c);
    int (*create_schema)(pt_wh *wh, const char *schema);
    int (*table_exists)(pt_wh *wh, const char *schema, const char *table);
    int (*schema_exists)(pt_wh *wh, const char *schema);
    int (*prepare)(pt_wh *wh, const char *sql, pt_wh_stmt **out);
    int (*stmt_run)(pt_wh_stmt *s, const pt_value *params, size_t nparams);
    void (*stmt_free)(pt_wh_stmt *s);
    int (*primary_key)(pt_wh *wh, const char *schema, const char *table, char *out, size_t outsz);
    int (*columns)(pt_wh *wh, const char *schema, const char *table, char ***names, size_t *n);
    int (*in_transaction)(pt_wh *wh);
    /* pq's portable column types: {portable, sql} pairs, ending with {NULL, NULL}. */
    const char *const (*types)[2];
    /* wh.h: pt_wh_catalog_read (cat is zeroed, filled with the pt_wh_catalog_add_* helpers)
     * and pt_wh_drop_schema. */
    int (*catalog)(pt_wh *wh, const char *schema, const char *table, pt_wh_cat_level level,
                   pt_wh_catalog *cat);
    int (*drop_schema)(pt_wh *wh, const char *schema);
    /* wh.h: pt_wh_set_deadline; NULL for drivers with their own statement timeout. */
    void (*set_deadline)(pt_wh *wh, double deadline);
} pt_wh_driver;

/* The part of every connection that wh.c sees; drivers embed it as their first member. */
struct pt_wh {
    const pt_wh_driver *drv;
    char *name; /* owned */
    char err[512];
};

/* Likewise for cursors: the column names and counters live here so that reading them needs no
 * dispatch. colnames is one allocation owned by the cursor (freed by the driver). */
struct pt_wh_cursor {
    pt_wh *wh;
    size_t ncols;
    char **colnames;
    pt_vtype *coltypes; /* ncols entries, or NULL (all unknown); owned, freed by the driver */
    int64_t changes;
    int64_t last_id;
};

struct pt_wh_stmt {
    pt_wh *wh;
};

/* Formats the connection's error message (pt_wh_errmsg). */
void pt_wh_set_error(pt_wh *wh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Opens the embedded SQLite warehouse whose schema files live in directory dir (created if
 * missing). Returns 0, PT_EUNAVAIL or PT_EDB with a reason in err. Caller frees with
 * pt_wh_close. */
int pt_wh_sqlite_open(const char *name, const char *dir, pt_wh **out, char *err, size_t errsz);

/* Opens a PostgreSQL warehouse with libpq connection string dsn. Returns 0, PT_EUNAVAIL (server
 * unreachable, authentication failed) or PT_EINVAL (malformed DSN) with a reason in err that
 * never contains the password. Caller frees with pt_wh_close. */
int pt_wh_pg_open(const char *name, const char *dsn, pt_wh **out, char *err, size_t errsz);

/* The name of the database a PostgreSQL connection is connected to (borrowed, valid while wh
 * is open). */
const char *pt_wh_pg_dbname(const pt_wh *wh);

/* Returns 0 when s (borrowed; NULL is invalid) is a valid identifier (pt_wh_ident_valid), else
 * PT_EINVAL with a message naming it as a `what` ("schema", "table") set on wh. */
int pt_wh_check_ident(pt_wh *wh, const char *what, const char *s);

/* Longest ISO 8601 date/time text a driver writes (with its NUL). */
#define PT_WH_ISO_MAX 64

/* Writes the date/time text in[0..n) the ISO 8601 way into out (PT_WH_ISO_MAX bytes, NUL-
 * terminated): "2024-05-01 13:45:00+02" becomes "2024-05-01T13:45:00+02:00". Text that does not
 * look like a date or time (or is too long) is copied unchanged, truncated to fit. Returns the
 * length written. */
size_t pt_wh_iso_datetime(const char *in, size_t n, char *out);

/* Builds a "names" allocation for pt_wh_columns from n strings. Returns NULL when out of
 * memory. */
char **pt_wh_names_dup(const char *const *src, size_t n);

/* Catalog builders for drivers (wh_catalog.c): append a schema, a table to the last schema, a
 * field to the last table of the last schema (copying the strings; sql_type NULL is ""). Return 0,
 * PT_ENOMEM (with the message set on wh), or PT_EINVAL when there is no schema or table to add
 * to. */
int pt_wh_catalog_add_schema(pt_wh *wh, pt_wh_catalog *cat, const char *name);
int pt_wh_catalog_add_table(pt_wh *wh, pt_wh_catalog *cat, const char *name, int is_view);
int pt_wh_catalog_add_field(pt_wh *wh, pt_wh_catalog *cat, const char *name, const char *sql_type,
                            int pk, int notnull);

#endif

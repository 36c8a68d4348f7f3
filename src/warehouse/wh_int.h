/* wh_int.h - the warehouse driver interface (internal to src/warehouse/): what wh.c dispatches
 * to and every driver (wh_sqlite.c, later wh_pg.c) implements. */
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
    void (*value)(const pt_wh_cursor *c, size_t i, pt_value *v);
    void (*cursor_free)(pt_wh_cursor *c);
    int (*create_schema)(pt_wh *wh, const char *schema);
    int (*table_exists)(pt_wh *wh, const char *schema, const char *table);
    int (*prepare)(pt_wh *wh, const char *sql, pt_wh_stmt **out);
    int (*stmt_run)(pt_wh_stmt *s, const pt_value *params, size_t nparams);
    void (*stmt_free)(pt_wh_stmt *s);
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

#endif

/* db_int.h - the SQL driver interface (internal to src/store/): what db.c dispatches to and
 * every driver (db_sqlite.c, later db_pg.c) implements. */
#ifndef PT_DB_INT_H
#define PT_DB_INT_H

#include "store/db.h"

typedef struct pt_db_driver {
    const char *engine; /* "sqlite", "postgres" */
    /* The fragments of db.h: {name, text} pairs, ending with {NULL, NULL}. */
    const char *const (*fragments)[2];
    void (*close)(pt_db *db);
    int (*exec)(pt_db *db, const char *sql);
    /* sql is expanded already; the driver rewrites placeholders if it must. */
    int (*prepare)(pt_db *db, const char *sql, int persistent, pt_db_stmt **out);
    void (*finalize)(pt_db_stmt *s);
    void (*reset)(pt_db_stmt *s);
    int (*bind_text)(pt_db_stmt *s, int i, const char *p, size_t len);
    int (*bind_blob)(pt_db_stmt *s, int i, const void *p, size_t len);
    int (*bind_int64)(pt_db_stmt *s, int i, int64_t v);
    int (*bind_null)(pt_db_stmt *s, int i);
    int (*param_count)(pt_db_stmt *s);
    int (*step)(pt_db_stmt *s);
    int (*column_is_null)(pt_db_stmt *s, int i);
    int64_t (*column_int64)(pt_db_stmt *s, int i);
    const char *(*column_text)(pt_db_stmt *s, int i, size_t *len);
    const void *(*column_blob)(pt_db_stmt *s, int i, size_t *len);
    int64_t (*changes)(pt_db *db);
    int (*begin)(pt_db *db);
    int (*commit)(pt_db *db);
    void (*rollback)(pt_db *db);
    int (*in_transaction)(pt_db *db);
    int (*defer_constraints)(pt_db *db);
    void (*set_busy_timeout)(pt_db *db, int ms);
    int (*set_durable)(pt_db *db, int durable);
    int (*schema_version)(pt_db *db, int64_t *version);
    int (*set_schema_version)(pt_db *db, int64_t version);
} pt_db_driver;

/* The part of every connection that db.c sees; drivers embed it as their first member. */
struct pt_db {
    const pt_db_driver *drv;
    char err[512];
};

/* Likewise for statements. */
struct pt_db_stmt {
    pt_db *db;
};

/* Records a printf-formatted message as db's error (for drivers). */
void pt_db_seterr(pt_db *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

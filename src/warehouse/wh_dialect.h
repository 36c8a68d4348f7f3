/* wh_dialect.h - PostgreSQL statements that the embedded SQLite warehouse runs after translating
 * them (internal to src/warehouse/; wh_sqlite.c is the one caller). */
#ifndef PT_WH_DIALECT_H
#define PT_WH_DIALECT_H

#include <stddef.h>

/* What one step of a translated statement does. */
typedef enum pt_whd_op {
    PT_WHD_SQL,            /* run sql */
    PT_WHD_CREATE_SCHEMA,  /* create schema `schema`; flag: IF NOT EXISTS (else an existing
                            * schema is an error, as in PostgreSQL) */
    PT_WHD_ADD_COLUMN,     /* run sql (an ALTER TABLE ... ADD COLUMN) unless flag (IF NOT
                            * EXISTS) is set and schema.table already has `column` */
    PT_WHD_DROP_COLUMN,    /* run sql (ALTER TABLE ... DROP COLUMN) unless flag (IF EXISTS) is
                            * set and schema.table has no `column` */
    PT_WHD_RESET_IDENTITY, /* forget the AUTOINCREMENT counter of schema.table (RESTART
                            * IDENTITY) */
} pt_whd_op;

#define PT_WHD_NAME_MAX 64 /* identifier length cap + NUL */

typedef struct pt_whd_step {
    pt_whd_op op;
    char *sql;                    /* owned; NULL for CREATE_SCHEMA and RESET_IDENTITY */
    char schema[PT_WHD_NAME_MAX]; /* "" when the statement did not name one */
    char table[PT_WHD_NAME_MAX];  /* ADD/DROP_COLUMN, RESET_IDENTITY */
    char column[PT_WHD_NAME_MAX]; /* ADD/DROP_COLUMN */
    int flag;                     /* see pt_whd_op */
    int if_table;                 /* ALTER TABLE IF EXISTS: skip the step when there is no
                                   * such table */
} pt_whd_step;

/* A statement's translation: steps run in order, all or none (a savepoint) when there are
 * several. n == 0 means "run the statement as it is". */
typedef struct pt_whd_plan {
    pt_whd_step *steps; /* owned: free with pt_whd_plan_clear */
    size_t n;
} pt_whd_plan;

/* Length of the statement at the start of sql, up to and including its ';' (or to the end):
 * quotes, comments and parentheses are respected. */
size_t pt_whd_stmt_len(const char *sql);

/* Translates the one statement sql[0..len) from PostgreSQL's dialect to SQLite's: TRUNCATE,
 * CREATE SCHEMA, ALTER TABLE ... ADD COLUMN IF NOT EXISTS (and several actions), DROP of several
 * tables or with CASCADE, CREATE INDEX on schema.table, `expr::type` casts, typed literals
 * (date '...'), now(), gen_random_uuid(), ILIKE, serial and identity columns. Identifiers the
 * new statements name are validated and double-quoted; user text is only ever copied into the
 * statement it came from. Returns 0 (plan->n == 0 when nothing needs translating), PT_EINVAL
 * with a message in err for a PostgreSQL form the SQLite warehouse cannot run, or PT_ENOMEM.
 * The caller frees plan with pt_whd_plan_clear, also after an error. */
int pt_whd_translate(const char *sql, size_t len, pt_whd_plan *plan, char *err, size_t errsz);
void pt_whd_plan_clear(pt_whd_plan *plan);

#endif

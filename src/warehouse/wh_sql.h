/* wh_sql.h - the one place that builds the warehouse's data statements (CREATE TABLE, ALTER TABLE
 * ADD COLUMN, INSERT, INSERT ... ON CONFLICT with its change check, UPDATE, DELETE, DROP) for
 * SQLite or PostgreSQL, from validated names, with `?` for every value.
 *
 * Callers (pq's writes, the CSV / JSON import, the catalog) bind the values; nothing here sees a
 * value. Rules for names:
 *  - the schema and table of a statement, and the columns a statement creates (CREATE TABLE,
 *    ADD COLUMN, the key of a new table) must be identifiers (pt_wh_ident_valid);
 *  - the columns a statement only refers to may be any non-empty text (write() names every
 *    column of an existing table, as the database gives them), and so may the names DROP is
 *    given (as the catalog lists them);
 *  - every name is double-quoted with embedded quotes doubled.
 * A column type must be a type name: letters, digits, '_', spaces, parentheses and commas
 * ("numeric(12,2)", "TIMESTAMP WITH TIME ZONE"). Builders replace the contents of out (a buffer
 * the caller owns, inits and frees) and return 0, PT_EINVAL (a name or type the rules refuse,
 * no columns where some are needed), PT_ENOMEM or PT_ETOOBIG (out's cap); after an error out's
 * contents are unspecified. */
#ifndef PT_WH_SQL_H
#define PT_WH_SQL_H

#include <stddef.h>

#include "core/buf.h"
#include "warehouse/wh.h"

typedef enum pt_wh_dialect {
    PT_WH_SQLITE,
    PT_WH_POSTGRES,
} pt_wh_dialect;

/* The dialect of wh's driver (wh borrowed, not NULL). */
pt_wh_dialect pt_wh_dialect_of(const pt_wh *wh);

/* One column of a table being created: name and SQL type (both borrowed). */
typedef struct pt_wh_coldef {
    const char *name;
    const char *type;
} pt_wh_coldef;

/* Appends name (borrowed, any non-empty text) double-quoted, quotes doubled. Unlike the
 * builders it appends to out. Returns 0, PT_EINVAL (empty), PT_ENOMEM or PT_ETOOBIG. */
int pt_wh_sql_quote(pt_buf *out, const char *name);
/* Appends text (borrowed) as a string literal, single quotes doubled; same returns (empty text
 * is allowed). */
int pt_wh_sql_literal(pt_buf *out, const char *text);

/* CREATE TABLE IF NOT EXISTS "schema"."table" ("c1" type1, ..., PRIMARY KEY ("k1", ...)):
 * ncols >= 1 columns; keys: nkeys of them (none: no PRIMARY KEY clause). */
int pt_wh_sql_create_table(pt_buf *out, const char *schema, const char *table,
                           const pt_wh_coldef *cols, size_t ncols, const char *const *keys,
                           size_t nkeys);
/* ALTER TABLE "schema"."table" ADD COLUMN "name" type. */
int pt_wh_sql_add_column(pt_buf *out, const char *schema, const char *table,
                         const pt_wh_coldef *col);
/* INSERT INTO "schema"."table" ("c1", ...) VALUES (?, ...), with RETURNING "returning" when
 * returning is not NULL. ncols >= 1. */
int pt_wh_sql_insert(pt_buf *out, const char *schema, const char *table, const char *const *cols,
                     size_t ncols, const char *returning);
/* UPDATE "schema"."table" SET "c1" = ?, ... WHERE "key" = ?: the values of cols, then the key's.
 * ncols >= 1. */
int pt_wh_sql_update(pt_buf *out, const char *schema, const char *table, const char *const *cols,
                     size_t ncols, const char *key);
/* DELETE FROM "schema"."table" WHERE "k1" = ? AND ...: nkeys >= 1 columns, one value each. */
int pt_wh_sql_delete(pt_buf *out, const char *schema, const char *table, const char *const *keys,
                     size_t nkeys);
/* SELECT 1 FROM "schema"."table" WHERE "key" = ?: is there a row with that key? */
int pt_wh_sql_select_key(pt_buf *out, const char *schema, const char *table, const char *key);
/* SELECT * FROM "schema"."table", or SELECT * FROM "table" when schema is NULL (the connection's
 * search path finds it). */
int pt_wh_sql_select_all(pt_buf *out, const char *schema, const char *table);
/* DELETE FROM "schema"."table" WHERE 0: on SQLite, takes the write lock of the table's schema
 * file and changes nothing (a transaction that must read and then write without another
 * connection writing in between). SQLite only. */
int pt_wh_sql_lock_table(pt_buf *out, const char *schema, const char *table);

/* What pt_wh_sql_upsert builds beyond the INSERT. */
typedef struct pt_wh_upsert {
    const char *const *keys; /* the conflict target, among cols; nkeys 0: a plain INSERT */
    size_t nkeys;
    /* Columns whose name starts with this do not count as a change (NULL: every one counts). */
    const char *ignore_prefix;
    /* PostgreSQL: RETURNING (xmax = 0) AS inserted, which says whether the row was inserted
     * (true), updated (false) or left alone (no row). Refused (PT_EINVAL) for SQLite. */
    int report;
} pt_wh_upsert;

/* INSERT INTO "schema"."table" AS pq_t ("c1", ...) VALUES (?, ...) ON CONFLICT ("k1", ...)
 * DO UPDATE SET "c" = excluded."c", ... (every column but the keys) WHERE NOT (pq_t."c" IS NOT
 * DISTINCT FROM excluded."c" AND ...) (the change check: every non-key column not ignored;
 * PostgreSQL compares their ::text, since some types (json) have no equality), or DO NOTHING
 * when every column is a key. A row whose columns already hold those values is not written. */
int pt_wh_sql_upsert(pt_buf *out, pt_wh_dialect d, const char *schema, const char *table,
                     const char *const *cols, size_t ncols, const pt_wh_upsert *how);

/* DROP TABLE (or VIEW) "schema"."table", with CASCADE on PostgreSQL when cascade (SQLite views
 * never block a drop). Names are any non-empty text (as the catalog lists them). */
int pt_wh_sql_drop_table(pt_buf *out, pt_wh_dialect d, const char *schema, const char *table,
                         int is_view, int cascade);

#endif

/* store_int.h - what the files of the metadata store share (internal to src/store/): the
 * connection, the error message, transactions that bump the change counter, and helpers that
 * run one statement or read rows into arrays, all over the SQL driver of db.h. */
#ifndef PT_STORE_INT_H
#define PT_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "store/db.h"
#include "store/store.h"

/* How long a store call waits for another process's write lock. */
#define PT_STORE_BUSY_TIMEOUT_MS 5000

struct pt_store {
    pt_db *db;
    char *datadir; /* owned */
    char err[512];
    int outer; /* inside pt_store_tx_begin: pt_store_begin nests as a savepoint */
    int depth; /* savepoints open inside the outer transaction */
};

/* ---- errors ----------------------------------------------------------------------------- */

/* Sets the store error message (printf). */
void pt_store_seterr(pt_store *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Records the driver's message after `what` ("metadata store: what: ...") and returns rc. */
int pt_store_fail(pt_store *st, int rc, const char *what);

/* ---- transactions (store.c) ------------------------------------------------------------- */

/* Begins a transaction holding the write lock. */
int pt_store_begin(pt_store *st);
/* Ends it: rc 0 commits and bumps the change counter, anything else rolls back. Returns rc,
 * or COMMIT's error (after rolling back). */
int pt_store_finish(pt_store *st, int rc);
/* As pt_store_finish, without bumping the change counter: for records no worker serves
 * differently because of (script state, run records, last-used times). */
int pt_store_finish_quiet(pt_store *st, int rc);
/* Rolls back the transaction pt_store_begin opened (inside an outer transaction: only its
 * savepoint). */
void pt_store_abort(pt_store *st);

/* ---- statements ------------------------------------------------------------------------- */

/* Prepares sql; a failure is recorded as "metadata store: prepare: ...". Caller frees *out with
 * pt_db_finalize. */
int pt_store_prepare(pt_store *st, const char *sql, pt_db_stmt **out);
/* Steps s to completion and finalizes it; takes ownership of s, even on error. A failed step
 * is recorded after `what`. */
int pt_store_run_stmt(pt_store *st, pt_db_stmt *s, const char *what);
/* Binds text a as ?1 (unless NULL) and integer b as ?2 when the statement has a ?2: the
 * parameters of pt_store_run_sql, pt_store_query_int and pt_store_list. a is borrowed until
 * the statement is finalized. */
int pt_store_bind_ab(pt_db_stmt *s, const char *a, int64_t b);
/* Prepares sql, binds a and b (pt_store_bind_ab) and runs it to completion. */
int pt_store_run_sql(pt_store *st, const char *sql, const char *a, int64_t b, const char *what);
/* Runs a one-row, one-integer query (a and b bound); returns 1 with *v when a row came back,
 * 0 when none, or a pt_err. */
int pt_store_query_int(pt_store *st, const char *sql, const char *a, int64_t b, int64_t *v);
/* Runs a one-statement mutation (pt_store_run_sql) in a transaction of its own; when it changed
 * no row, rolls back and returns PT_ENOTFOUND with the message `missing` (printf). */
int pt_store_mutate_one(pt_store *st, const char *sql, const char *a, int64_t b, const char *what,
                        const char *missing, ...) __attribute__((format(printf, 6, 7)));
/* After a statement that should have changed a row: 0 if it did, else PT_ENOTFOUND with
 * `missing` (copied) as the store error. */
int pt_store_changed_one(pt_store *st, const char *missing);

/* ---- rows ------------------------------------------------------------------------------- */

/* One kind of row a list is made of: how to read it into an element of an array and how to
 * release that element again. */
typedef struct pt_store_kind {
    size_t size; /* of one element */
    /* Fills elem (zeroed) from the statement's current row. Returns 0 or a pt_err (PT_ENOMEM
     * when a copy failed), leaving what it did store for clear. */
    int (*read)(pt_store *st, pt_db_stmt *s, void *elem);
    /* Frees what read stored in elem, which may be zeroed or half filled. */
    void (*clear)(void *elem);
    const char *what; /* names a failed step in the error message, e.g. "list scripts" */
} pt_store_kind;

/* Steps s (prepared and bound by the caller; finalized here, even on error) and reads one
 * element per row into a new array. Returns 0 with *out (NULL when there were no rows) and *n;
 * caller frees with pt_store_free_rows. On error *out is NULL, *n 0, and the store error says
 * "out of memory" or the driver's message after kind->what. */
int pt_store_collect(pt_store *st, pt_db_stmt *s, const pt_store_kind *kind, void **out, size_t *n);
/* Prepares sql, binds a and b (pt_store_bind_ab) and collects its rows. */
int pt_store_list(pt_store *st, const char *sql, const char *a, int64_t b,
                  const pt_store_kind *kind, void **out, size_t *n);
/* Reads the one row of sql (?1 bound to a) into elem, which is zeroed first. Returns 0,
 * PT_ENOTFOUND when there is no row (the caller words the message), or another pt_err with
 * elem zeroed. Caller clears elem as kind does. */
int pt_store_get_row(pt_store *st, const char *sql, const char *a, const pt_store_kind *kind,
                     void *elem, const char *what);
/* Makes room for one more element of size bytes after the len elements of *list (capacity
 * *cap, both updated as it grows) and returns it zeroed; NULL when out of memory (the list is
 * as it was). */
void *pt_store_rows_add(void **list, size_t len, size_t *cap, size_t size);
/* Clears the n elements of list with kind->clear and frees the array; NULL is a no-op. */
void pt_store_free_rows(void *list, size_t n, const pt_store_kind *kind);

/* strdup of a text column; "" for NULL. Caller frees; NULL when out of memory. */
char *pt_store_coldup(pt_db_stmt *s, int i);
/* strdup of a text column, or NULL for SQL NULL; *oom is set when the copy failed. */
char *pt_store_colnull(pt_db_stmt *s, int i, int *oom);

/* ---- validation (store.c) --------------------------------------------------------------- */

/* PT_EINVAL with a message when name is not a valid `what` name (pt_store_name_valid). */
int pt_store_check_name(pt_store *st, const char *what, const char *name);
/* Is name 1 to 128 bytes of well-formed UTF-8 without control characters? (script and secret
 * names) */
int pt_store_text_name_valid(const char *name);

/* ---- schema (store_schema.c) ------------------------------------------------------------ */

/* The schema version this binary writes. */
#define PT_STORE_SCHEMA_VERSION 8
/* Brings the schema to PT_STORE_SCHEMA_VERSION (nothing to do in the common case). */
int pt_store_migrate(pt_store *st);

#endif

/* store_sqlite_int.h - compatibility names (internal to src/store/) for record-kind files
 * written against the store's raw SQLite connection before the store moved onto the SQL driver
 * (db.h). Implemented in store_sqlite_compat.c over store_int.h; new code uses store_int.h
 * and db.h, whose statements also run on PostgreSQL. These go once every file has moved. */
#ifndef PT_STORE_SQLITE_INT_H
#define PT_STORE_SQLITE_INT_H

#include <stddef.h>

#include <sqlite3.h>

#include "store/store.h"

/* The connection (borrowed, valid until pt_store_close); NULL when the store is not on
 * SQLite. */
sqlite3 *pt_store_sqlite_db(pt_store *st);
/* Records SQLite's current message after `what` as the store error; returns PT_EDB. */
int pt_store_sqlite_fail(pt_store *st, const char *what);
/* Sets the store error message (copied). */
void pt_store_sqlite_seterr(pt_store *st, const char *msg);
/* BEGIN IMMEDIATE. */
int pt_store_sqlite_begin(pt_store *st);
/* Ends the transaction: rc 0 commits and bumps the change counter, anything else rolls back.
 * Returns rc, or COMMIT's error (after rolling back). */
int pt_store_sqlite_finish(pt_store *st, int rc);
/* As pt_store_sqlite_finish, without bumping the change counter: for records no worker serves
 * differently because of (script state, run records). */
int pt_store_sqlite_finish_quiet(pt_store *st, int rc);
/* Steps stmt to completion and finalizes it; takes ownership of stmt, even on error. A failed
 * step is recorded as pt_store_sqlite_fail(st, what) does. */
int pt_store_sqlite_run(pt_store *st, sqlite3_stmt *stmt, const char *what);
/* After a statement that should have changed a row: 0 if it did, else PT_ENOTFOUND with
 * `missing` (copied) as the store error. */
int pt_store_sqlite_changed_one(pt_store *st, const char *missing);
/* Binds s (borrowed until the statement is finalized) as text, or NULL when NULL or empty. */
void pt_store_sqlite_bind_opt_text(sqlite3_stmt *stmt, int i, const char *s);

/* One kind of row a list is made of: how to read it into an element of an array and how to
 * release that element again. */
typedef struct pt_store_rowkind {
    size_t size; /* of one element */
    /* Fills elem (zeroed) from the statement's current row. Returns 0 or a pt_err (PT_ENOMEM
     * when a copy failed), leaving what it did store for clear. */
    int (*read)(pt_store *st, sqlite3_stmt *stmt, void *elem);
    /* Frees what read stored in elem, which may be zeroed or half filled. */
    void (*clear)(void *elem);
    const char *what; /* names a failed step in the error message, e.g. "list scripts" */
} pt_store_rowkind;

/* Steps stmt (prepared and bound by the caller; finalized here, even on error) and reads one
 * element per row into a new array. Returns 0 with *out (NULL when there were no rows) and *n;
 * caller frees with pt_store_sqlite_free_rows. On error *out is NULL, *n 0, and the store
 * error says "out of memory" or SQLite's message after kind->what. */
int pt_store_sqlite_rows(pt_store *st, sqlite3_stmt *stmt, const pt_store_rowkind *kind, void **out,
                         size_t *n);
/* Clears the n elements of list with kind->clear and frees the array; NULL is a no-op. */
void pt_store_sqlite_free_rows(void *list, size_t n, const pt_store_rowkind *kind);

#endif

/* store_sqlite_int.h - what the files of the SQLite metadata driver share (internal to
 * src/store/): store_sqlite.c owns the connection and the transaction helpers, the other files
 * (store_webhooks.c) add tables of their own through them. */
#ifndef PT_STORE_SQLITE_INT_H
#define PT_STORE_SQLITE_INT_H

#include <sqlite3.h>

#include "store/store.h"

/* The connection (borrowed, valid until pt_store_close). */
sqlite3 *pt_store_sqlite_db(pt_store *st);
/* Records SQLite's current message after `what` as the store error; returns PT_EDB. */
int pt_store_sqlite_fail(pt_store *st, const char *what);
/* Sets the store error message (copied). */
void pt_store_sqlite_seterr(pt_store *st, const char *msg);
/* BEGIN IMMEDIATE; COMMIT then bump the change counter; ROLLBACK. */
int pt_store_sqlite_begin(pt_store *st);
int pt_store_sqlite_commit(pt_store *st);
void pt_store_sqlite_rollback(pt_store *st);

#endif

/* store_migrate.h - moving an install's embedded SQLite metadata store into an empty
 * PostgreSQL one (`portico store migrate`): every table, ids kept, in one transaction, and the
 * lock that keeps a running server and a migration apart. */
#ifndef PT_STORE_MIGRATE_H
#define PT_STORE_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* The file a server holds a shared lock on while it runs, and a migration an exclusive one. */
#define PT_STORE_LOCK_FILE "run/store.lock"
/* What portico.db is renamed to once its rows are in PostgreSQL (kept for a rollback). */
#define PT_STORE_MIGRATED_FILE "portico.db.migrated"

/* Takes the data dir's store lock (DATA/run/store.lock, flock): shared for a server, which
 * keeps it for its life (the descriptor is inherited by its workers), exclusive for a
 * migration. Never waits. Returns the descriptor (close it to release the lock), PT_EUNAVAIL
 * when the lock is held the other way (a server runs, or a migration does), or another pt_err;
 * err gets a one-line reason. */
int pt_store_lock(const char *datadir, int exclusive, char *err, size_t errsz);

/* Called after each table is copied, with its name (borrowed) and its row count. */
typedef void (*pt_store_copy_progress)(void *ctx, const char *table, int64_t rows);

/* Copies the store src (an embedded SQLite store, opened with pt_store_open) into the
 * PostgreSQL database dsn names (borrowed, never copied into a message):
 *   - src's write lock is taken first and held until pt_store_migrate_switch (or
 *     pt_store_close), so no row is written after it was copied;
 *   - one transaction on the target, holding the store's advisory lock: a database that holds
 *     a Portico store already, or a table of the same name as one of src's, is refused
 *     (PT_EEXIST: a migration never merges two installs); then the tables are made
 *     (store_schema.c) and every table of src's catalog is copied, whatever its name, so a
 *     table added to the schema later is copied without being listed anywhere;
 *   - identity columns continue after the highest id src ever gave (sqlite_sequence), so ids,
 *     like versions, are never reused;
 *   - each table's row count is compared on both sides (PT_EDB on a difference).
 * fn (may be NULL) is told of each table. On success *dst is the target with its transaction
 * still open, so the caller can add what only it can (the sealed install keys), then commit
 * with pt_store_tx_finish(*dst, 0); caller frees *dst with pt_store_close. On error *dst is
 * NULL, nothing was committed, err says why, and src is as it was (still locked). */
int pt_store_migrate_to_pg(pt_store *src, const char *dsn, pt_store_copy_progress fn, void *ctx,
                           pt_store **dst, char *err, size_t errsz);

/* After the target committed: releases and closes src (takes ownership, even on error),
 * records dsn in DATA/store.dsn and renames DATA/portico.db (and a -wal file, if any) to
 * DATA/portico.db.migrated. Returns 0 or a pt_err with the reason in err; store.dsn is removed
 * again when the rename fails, so the data dir keeps using portico.db. */
int pt_store_migrate_switch(pt_store *src, const char *dsn, char *err, size_t errsz);

#endif

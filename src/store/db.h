/* db.h - the thin SQL driver the metadata store runs on: one portable statement, prepared,
 * bound, stepped and read the same way on every engine.
 *
 * The store writes each statement once, in SQL that both SQLite and PostgreSQL accept:
 *   - parameters are `?N` (SQLite's numbered form; a PostgreSQL driver rewrites them to `$N`);
 *   - upserts are INSERT ... ON CONFLICT(col) DO UPDATE SET col = excluded.col;
 *   - new ids come back with RETURNING, never from a "last insert id" call;
 *   - no engine functions (iif, scalar max, datetime): CASE, coalesce and values computed in C.
 * Where the engines differ the driver supplies the fragment: a statement names it in braces,
 * and pt_db_prepare replaces it with the driver's text (see PT_DB_FRAGMENTS below), e.g.
 * "CREATE TABLE t(id {id}, box {blob})". Transactions, the schema version and deferred
 * constraints are calls, not SQL. Engine errors come back as enum pt_err (PT_EUNAVAIL for a
 * busy or locked database, PT_EEXIST for a constraint, PT_EIO for a full disk or an I/O error,
 * PT_EDB for the rest) with the engine's message in pt_db_errmsg.
 *
 * Two drivers: db_sqlite.c (a file) and db_pg.c (PostgreSQL through libpq); the store above
 * is the same on both. A pt_db and its statements belong to one thread at a time. */
#ifndef PT_DB_H
#define PT_DB_H

#include <stddef.h>
#include <stdint.h>

typedef struct pt_db pt_db;
typedef struct pt_db_stmt pt_db_stmt;

/* What pt_db_step returns besides a negative pt_err. */
enum { PT_DB_DONE = 0, PT_DB_ROW = 1 };

/* How pt_db_open_sqlite opens the file. */
enum {
    PT_DB_CREATE = 1,   /* create the file when it does not exist */
    PT_DB_READONLY = 2, /* open read-only */
    /* an existing database must have a schema version (pt_db_schema_version): one without is
     * someone else's, and is refused before anything in it changes */
    PT_DB_VERSIONED = 4,
};

/* Opens the SQLite database at path (flags: PT_DB_*) with a busy timeout of busy_ms. An existing
 * file that SQLite cannot read, or that is shorter than its header says (truncated), is PT_EDB
 * with "PATH is not a database (...)"; nothing in a refused file changes. On error returns a
 * pt_err with a one-line reason in err (naming the file). Caller frees with pt_db_close. */
int pt_db_open_sqlite(const char *path, int flags, int busy_ms, pt_db **out, char *err,
                      size_t errsz);
/* Connects to the PostgreSQL database of dsn (a libpq key=value string or postgresql:// URI;
 * borrowed, never copied into a message) with a lock timeout of busy_ms (flags: PT_DB_READONLY
 * makes every transaction read-only; PT_DB_CREATE and PT_DB_VERSIONED are the caller's to
 * check through pt_db_schema_version). PT_EUNAVAIL with libpq's reason in err when the server
 * cannot be reached. Caller frees with pt_db_close. */
int pt_db_open_pg(const char *dsn, int flags, int busy_ms, pt_db **out, char *err, size_t errsz);
/* Closes db; its statements must have been finalized. NULL is a no-op. */
void pt_db_close(pt_db *db);
/* The engine's name: "sqlite" or "postgres" (static). */
const char *pt_db_engine(const pt_db *db);
/* The last error message (borrowed, valid until the next call on db). */
const char *pt_db_errmsg(const pt_db *db);

/* Runs sql, one or more statements without parameters (fragments expanded), to completion. */
int pt_db_exec(pt_db *db, const char *sql);
/* Prepares one statement (fragments expanded). Caller frees *out with pt_db_finalize. */
int pt_db_prepare(pt_db *db, const char *sql, pt_db_stmt **out);
/* As pt_db_prepare, for a statement kept and reused for the life of db (a hint). */
int pt_db_prepare_persistent(pt_db *db, const char *sql, pt_db_stmt **out);
void pt_db_finalize(pt_db_stmt *s); /* NULL is a no-op */
/* Makes s ready to run again, keeping nothing bound. */
void pt_db_reset(pt_db_stmt *s);

/* Binds parameter i (1-based). Text and blobs are borrowed until the statement is reset or
 * finalized; len (size_t)-1 means strlen(s). Returns 0, PT_EINVAL (no such parameter) or
 * PT_ETOOBIG. */
int pt_db_bind_text(pt_db_stmt *s, int i, const char *text, size_t len);
int pt_db_bind_blob(pt_db_stmt *s, int i, const void *p, size_t len);
int pt_db_bind_int64(pt_db_stmt *s, int i, int64_t v);
int pt_db_bind_null(pt_db_stmt *s, int i);
/* The highest parameter number s has (?N). */
int pt_db_param_count(pt_db_stmt *s);
/* text, or NULL when text is NULL or empty. */
int pt_db_bind_opt_text(pt_db_stmt *s, int i, const char *text);
/* v, or NULL when v is 0. */
int pt_db_bind_opt_int64(pt_db_stmt *s, int i, int64_t v);

/* Runs s to its next row: PT_DB_ROW, PT_DB_DONE, or a pt_err (message in pt_db_errmsg). */
int pt_db_step(pt_db_stmt *s);
/* Steps s until it is done (rows are ignored). Returns 0 or a pt_err. */
int pt_db_run(pt_db_stmt *s);

/* Columns of the current row, 0-based. Text and blobs are borrowed until the next step,
 * reset or finalize; text is NUL-terminated, "" for NULL; len (may be NULL) gets the byte
 * length. */
int pt_db_column_is_null(pt_db_stmt *s, int i);
int64_t pt_db_column_int64(pt_db_stmt *s, int i);
const char *pt_db_column_text(pt_db_stmt *s, int i, size_t *len);
const void *pt_db_column_blob(pt_db_stmt *s, int i, size_t *len);
/* Rows the last INSERT, UPDATE or DELETE run on db changed. */
int64_t pt_db_changes(pt_db *db);

/* Transactions. pt_db_begin takes the write lock up front (SQLite: BEGIN IMMEDIATE), so that
 * concurrent writers wait for each other instead of failing on lock upgrade; PT_EUNAVAIL when
 * the lock stayed busy past the busy timeout. pt_db_rollback is a no-op outside a
 * transaction. */
int pt_db_begin(pt_db *db);
int pt_db_commit(pt_db *db);
void pt_db_rollback(pt_db *db);
int pt_db_in_transaction(pt_db *db);
/* Inside a transaction: foreign keys are checked at COMMIT rather than per statement. */
int pt_db_defer_constraints(pt_db *db);
/* How long a call waits for a lock another connection holds, in ms (0: not at all). */
void pt_db_set_busy_timeout(pt_db *db, int ms);
/* Whether COMMIT waits until the data is on disk (1, the default) or not (0). */
int pt_db_set_durable(pt_db *db, int durable);

/* The schema version the store keeps with its data (0 for a new database). */
int pt_db_schema_version(pt_db *db, int64_t *version);
int pt_db_set_schema_version(pt_db *db, int64_t version);

/* The fragments a statement may name in braces, and what db_sqlite.c supplies:
 *   {id}     an integer primary key the engine assigns, never reused (INTEGER PRIMARY KEY
 *            AUTOINCREMENT)
 *   {blob}   a binary column type (BLOB)
 *   {rowid}  an expression ordering a table's rows by insertion (rowid)
 *   {deferrable}  after a REFERENCES clause: the key may be checked at COMMIT
 *            (pt_db_defer_constraints); nothing on SQLite, whose PRAGMA defers any key
 *   {skip_locked}  at the end of a SELECT in an UPDATE's subquery: rows another transaction
 *            holds are passed over (a queue's claim); nothing on SQLite, which has one writer
 * and what db_pg.c supplies: BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, BYTEA,
 * ctid (insertion order only for rows never updated: a tie-break), DEFERRABLE INITIALLY
 * IMMEDIATE, FOR UPDATE SKIP LOCKED. */
#define PT_DB_FRAGMENTS "id blob rowid deferrable skip_locked"

#endif

/* store_test.h - helpers the store's unit tests share, and the switch that runs them on
 * PostgreSQL: with PORTICO_TEST_PG_DSN set (tests/integration/test_store_pg.py sets it to a
 * server it starts), every store a test makes lives in a new schema of that database. */
#ifndef PT_STORE_TEST_H
#define PT_STORE_TEST_H

#include <stddef.h>
#include <stdint.h>

/* The change counter of data dir `dir` (store/changes.h), or UINT64_MAX when it cannot be
 * read. */
uint64_t pt_test_store_counter(const char *dir);
/* PORTICO_TEST_PG_DSN (borrowed), or NULL when the tests run on SQLite. */
const char *pt_test_pg_dsn(void);
/* Creates a new, empty schema in the test database and writes into out a DSN whose
 * search_path is that schema. 0, or nonzero (also when the tests run on SQLite). */
int pt_test_pg_schema(char *out, size_t outsz);
/* For a new data dir (NULL passes through): on PostgreSQL, records a DSN with a schema of its
 * own (pt_store_dsn_save), so pt_store_create makes the store there. Returns dir, or NULL when
 * that failed. */
char *pt_test_store_dir(char *dir);

#endif

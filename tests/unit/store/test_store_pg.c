/* test_store_pg.c - unit tests only PostgreSQL has (db_pg.c): ?N rewriting around literals,
 * two processes creating one store at the same moment, reconnecting after the server dropped
 * the connection, deferred foreign keys, the change version and its NOTIFY, heartbeats, rate
 * limit leases. Skipped unless PORTICO_TEST_PG_DSN is set (tests/integration/test_store_pg.py
 * runs them against a server it starts). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/err.h"
#include "store/db.h"
#include "store/store.h"
#include "store/store_nodes.h"
#include "store/store_ratelimit.h"
#include "store/store_test.h"
#include "test.h"

/* Opens a connection to a new, empty schema; dsn (1024 bytes) receives its DSN. */
static int
open_schema(char *dsn, pt_db **db)
{
    char err[256];

    if (pt_test_pg_schema(dsn, 1024) != 0)
        return PT_EIO;
    return pt_db_open_pg(dsn, 0, 1000, db, err, sizeof err);
}

TEST(pg_placeholders_outside_literals)
{
    char dsn[1024];
    pt_db *db = NULL;
    pt_db_stmt *s = NULL;

    if (pt_test_pg_dsn() == NULL)
        return;
    ASSERT_EQ(open_schema(dsn, &db), 0);
    ASSERT_EQ(pt_db_prepare(db,
                            "SELECT '?1 it''s ?2', ?1 || \"x?2\".v -- ?3\n"
                            "FROM (SELECT /* ?4 */ 'y' AS v) AS \"x?2\"",
                            &s),
              0);
    ASSERT_EQ(pt_db_param_count(s), 1);
    ASSERT_EQ(pt_db_bind_text(s, 1, "abc", 1), 0); /* an explicit length: "a" */
    ASSERT_EQ(pt_db_bind_text(s, 2, "z", 1), PT_EINVAL);
    ASSERT_EQ(pt_db_step(s), PT_DB_ROW);
    ASSERT_STREQ(pt_db_column_text(s, 0, NULL), "?1 it's ?2");
    ASSERT_STREQ(pt_db_column_text(s, 1, NULL), "ay");
    ASSERT_EQ(pt_db_step(s), PT_DB_DONE);
    pt_db_reset(s);
    ASSERT_EQ(pt_db_bind_text(s, 1, "a\0b", 3), PT_EINVAL); /* PostgreSQL text has no NUL */
    pt_db_finalize(s);
    /* A persistent statement is prepared on the server: errors show at prepare. */
    ASSERT_EQ(pt_db_prepare_persistent(db, "SELEC 1", &s), PT_EDB);
    ASSERT_EQ(pt_db_prepare_persistent(db, "SELECT ?1::bigint + 1", &s), 0);
    ASSERT_EQ(pt_db_bind_int64(s, 1, 41), 0);
    ASSERT_EQ(pt_db_step(s), PT_DB_ROW);
    ASSERT_EQ(pt_db_column_int64(s, 0), 42);
    pt_db_finalize(s);
    pt_db_close(db);
}

TEST(pg_deferred_keys_and_errors)
{
    char dsn[1024];
    pt_db *db = NULL;

    if (pt_test_pg_dsn() == NULL)
        return;
    ASSERT_EQ(open_schema(dsn, &db), 0);
    ASSERT_EQ(pt_db_exec(db, "CREATE TABLE p(name TEXT PRIMARY KEY, n BIGINT CHECK (n > 0));"
                             "CREATE TABLE c(p TEXT NOT NULL REFERENCES p(name) {deferrable});"
                             "INSERT INTO p VALUES ('a', 1); INSERT INTO c VALUES ('a')"),
              0);
    ASSERT_EQ(pt_db_exec(db, "INSERT INTO p VALUES ('a', 2)"), PT_EEXIST);
    ASSERT_EQ(pt_db_exec(db, "INSERT INTO p VALUES ('b', 0)"), PT_EEXIST); /* a check */
    ASSERT_EQ(pt_db_exec(db, "INSERT INTO c VALUES ('zz')"), PT_ENOTFOUND);
    /* A rename across both tables holds once both are updated. */
    ASSERT_EQ(pt_db_begin(db), 0);
    ASSERT_EQ(pt_db_defer_constraints(db), 0);
    ASSERT_EQ(pt_db_exec(db, "UPDATE p SET name = 'b'"), 0);
    ASSERT_EQ(pt_db_exec(db, "UPDATE c SET p = 'b'"), 0);
    ASSERT_EQ(pt_db_changes(db), 1);
    ASSERT_EQ(pt_db_commit(db), 0);
    /* A failed statement fails the transaction: COMMIT says so. */
    ASSERT_EQ(pt_db_begin(db), 0);
    ASSERT_EQ(pt_db_exec(db, "INSERT INTO p VALUES ('b', 1)"), PT_EEXIST);
    ASSERT_EQ(pt_db_commit(db), PT_EDB);
    ASSERT_FALSE(pt_db_in_transaction(db));
    pt_db_close(db);
}

TEST(pg_reconnects_once_outside_a_transaction)
{
    char dsn[1024], err[256], sql[96];
    pt_db *a = NULL, *b = NULL;
    pt_db_stmt *s = NULL;
    int64_t pid;

    if (pt_test_pg_dsn() == NULL)
        return;
    ASSERT_EQ(open_schema(dsn, &a), 0);
    ASSERT_EQ(pt_db_open_pg(dsn, 0, 1000, &b, err, sizeof err), 0);
    ASSERT_EQ(pt_db_prepare_persistent(a, "SELECT pg_backend_pid()", &s), 0);
    for (int round = 0; round < 2; round++) {
        ASSERT_EQ(pt_db_step(s), PT_DB_ROW);
        pid = pt_db_column_int64(s, 0);
        pt_db_reset(s);
        snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)", (long long)pid);
        ASSERT_EQ(pt_db_exec(b, sql), 0);
        /* The next statement finds the connection gone, reconnects, and is sent again: the
         * persistent statement is prepared anew on the new connection. */
        ASSERT_EQ(pt_db_step(s), PT_DB_ROW);
        ASSERT_NE(pt_db_column_int64(s, 0), pid);
        pt_db_reset(s);
    }
    /* Inside a transaction the loss is the caller's to see. */
    ASSERT_EQ(pt_db_begin(a), 0);
    ASSERT_EQ(pt_db_step(s), PT_DB_ROW);
    pid = pt_db_column_int64(s, 0);
    pt_db_reset(s);
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)", (long long)pid);
    ASSERT_EQ(pt_db_exec(b, sql), 0);
    ASSERT_EQ(pt_db_exec(a, "SELECT 1"), PT_EUNAVAIL);
    pt_db_rollback(a);
    ASSERT_EQ(pt_db_exec(a, "SELECT 1"), 0);
    pt_db_finalize(s);
    pt_db_close(a);
    pt_db_close(b);
}

TEST(pg_two_processes_create_one_store_at_once)
{
    char dsn[1024], dirs[2][64], err[256];
    int go[2], status;
    pid_t pids[2];
    pt_db *db = NULL;
    pt_db_stmt *s = NULL;
    pt_store *st = NULL;

    if (pt_test_pg_dsn() == NULL)
        return;
    ASSERT_EQ(pt_test_pg_schema(dsn, sizeof dsn), 0);
    ASSERT_EQ(pipe(go), 0);
    for (int i = 0; i < 2; i++) {
        snprintf(dirs[i], sizeof dirs[i], "/tmp/pt-test-pg-XXXXXX");
        ASSERT_TRUE(mkdtemp(dirs[i]) != NULL);
        ASSERT_EQ(pt_store_dsn_save(dirs[i], dsn, err, sizeof err), 0);
        pids[i] = fork();
        ASSERT_TRUE(pids[i] >= 0);
        if (pids[i] == 0) {
            char byte;
            close(go[1]);
            /* Both start when the parent closes the pipe. */
            int rc = read(go[0], &byte, 1) == 0 ? pt_store_create(dirs[i], &st, err, sizeof err)
                                                : PT_EIO;
            if (rc != 0)
                fprintf(stderr, "child %d: %s\n", i, err);
            pt_store_close(st);
            _exit(rc == 0 ? 0 : 1);
        }
    }
    close(go[0]);
    close(go[1]);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(waitpid(pids[i], &status, 0), pids[i]);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    ASSERT_EQ(pt_db_open_pg(dsn, 0, 1000, &db, err, sizeof err), 0);
    ASSERT_EQ(pt_db_prepare(db, "SELECT count(*), max(version) FROM portico_schema", &s), 0);
    ASSERT_EQ(pt_db_step(s), PT_DB_ROW);
    ASSERT_EQ(pt_db_column_int64(s, 0), 1);
    ASSERT_GT(pt_db_column_int64(s, 1), 4);
    pt_db_finalize(s);
    pt_db_close(db);
    /* Both data dirs open the one store, and a third opens it without creating. */
    ASSERT_EQ(pt_store_open(dirs[1], &st, err, sizeof err), 0);
    ASSERT_STREQ(pt_store_engine(st), "postgres");
    pt_store_close(st);
    pt_test_rm_tree(dirs[0]);
    pt_test_rm_tree(dirs[1]);
}

TEST(pg_open_refuses_a_database_without_a_store)
{
    char dsn[1024], dir[64], err[512];
    pt_store *st = NULL;

    if (pt_test_pg_dsn() == NULL)
        return;
    ASSERT_EQ(pt_test_pg_schema(dsn, sizeof dsn), 0);
    snprintf(dir, sizeof dir, "/tmp/pt-test-pg-XXXXXX");
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    ASSERT_EQ(pt_store_dsn_save(dir, dsn, err, sizeof err), 0);
    ASSERT_EQ(pt_store_open(dir, &st, err, sizeof err), PT_ENOTFOUND);
    ASSERT_TRUE(strstr(err, "holds no Portico store") != NULL);
    ASSERT_TRUE(strstr(err, "password") == NULL);
    pt_test_rm_tree(dir);
}

TEST(pg_commits_announce_changes_and_nodes_beat)
{
    char dsn[1024], dir[64], err[512];
    pt_store *st = NULL;
    pt_store_listener *l = NULL;
    pt_node *nodes = NULL;
    size_t n = 0;
    int64_t v0 = -1, v1 = -1, v2 = -1;
    int version = 0;

    if (pt_test_pg_dsn() == NULL)
        return;
    snprintf(dir, sizeof dir, "/tmp/pt-test-pg-XXXXXX");
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    ASSERT_TRUE(pt_test_store_dir(dir) != NULL);
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);
    char *recorded = NULL;
    ASSERT_EQ(pt_store_dsn_load(dir, &recorded, err, sizeof err), 0);
    ASSERT_TRUE(recorded != NULL);
    snprintf(dsn, sizeof dsn, "%s", recorded);
    free(recorded);
    ASSERT_EQ(pt_store_listen(dsn, &l, err, sizeof err), 0);
    ASSERT_EQ(pt_store_change_version(st, &v0), 0);
    /* A change moves the version and notifies this schema's listeners, on COMMIT. */
    ASSERT_EQ(pt_store_script_put(st, "s", "x = 1\n", 6, &version), 0);
    ASSERT_EQ(pt_store_change_version(st, &v1), 0);
    ASSERT_EQ(v1, v0 + 1);
    int heard = 0;
    for (int i = 0; i < 200 && heard == 0; i++) {
        heard = pt_store_listener_drain(l, err, sizeof err);
        if (heard == 0)
            usleep(10000);
    }
    ASSERT_EQ(heard, 1);
    /* State and heartbeats are quiet: no version move, nothing to hear. */
    pt_node me = {.id = "n1",
                  .host = "h",
                  .addresses = "http://127.0.0.1:1 admin=http://127.0.0.1:2",
                  .version = "0",
                  .pid = 7,
                  .started = 100,
                  .last_seen = 200};
    ASSERT_EQ(pt_store_node_beat(st, &me), 0);
    me.last_seen = 205;
    ASSERT_EQ(pt_store_node_beat(st, &me), 0);
    ASSERT_EQ(pt_store_change_version(st, &v2), 0);
    ASSERT_EQ(v2, v1);
    ASSERT_EQ(pt_store_listener_drain(l, err, sizeof err), 0);
    ASSERT_EQ(pt_store_node_list(st, &nodes, &n), 0);
    ASSERT_EQ(n, 1);
    ASSERT_STREQ(nodes[0].id, "n1");
    ASSERT_EQ(nodes[0].last_seen, 205);
    ASSERT_STREQ(nodes[0].addresses, me.addresses);
    pt_store_nodes_free(nodes, n);
    pt_store_listener_close(l);
    pt_store_close(st);
    pt_test_rm_tree(dir);
}

TEST(pg_rate_lease_grants_what_the_budget_holds)
{
    /* 10/min: the first leases get the whole burst, in slices; then nothing, with the wait
     * until the next request accrues (6 s at 10/min). */
    char dir[64] = "/tmp/pt-test-pg-XXXXXX", err[256];
    pt_store *st = NULL;
    int64_t granted = -1;
    uint64_t wait = 1, key = 0xfedcba9876543210ULL; /* above INT64_MAX: stored as negative */

    if (pt_test_pg_dsn() == NULL)
        return;
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    ASSERT_TRUE(pt_test_store_dir(dir) != NULL); /* a new schema's DSN in dir */
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);
    ASSERT_EQ(pt_store_rate_lease(st, key, 10, 60, 4, &granted, &wait), 0);
    ASSERT_EQ(granted, 4);
    ASSERT_EQ(wait, 0);
    ASSERT_EQ(pt_store_rate_lease(st, key, 10, 60, 4, &granted, &wait), 0);
    ASSERT_EQ(granted, 4);
    ASSERT_EQ(pt_store_rate_lease(st, key, 10, 60, 4, &granted, &wait), 0);
    ASSERT_EQ(granted, 2);
    ASSERT_TRUE(wait > 0 && wait <= 6000000000ULL);
    ASSERT_EQ(pt_store_rate_lease(st, key, 10, 60, 1, &granted, &wait), 0);
    ASSERT_EQ(granted, 0);
    ASSERT_TRUE(wait > 5000000000ULL && wait <= 6000000000ULL);
    /* Another caller has its own budget. */
    ASSERT_EQ(pt_store_rate_lease(st, 7, 10, 60, 10, &granted, &wait), 0);
    ASSERT_EQ(granted, 10);
    pt_store_close(st);
    pt_test_rm_tree(dir);
}

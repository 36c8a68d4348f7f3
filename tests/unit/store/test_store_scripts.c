/* test_store_scripts.c - unit tests for what schema version 3 added to the store: script ids,
 * free-text names, run modes, script state (store_scripts.c) and run records (store_runs.c),
 * and the migration from a version 2 store. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "core/err.h"
#include "store/changes.h"
#include "store/store.h"
#include "store/store_runs.h"
#include "store/store_test.h"
#include "test.h"

static const char *
tmp_datadir(char *buf, size_t n)
{
    snprintf(buf, n, "/tmp/pt-test-scripts-XXXXXX");
    return pt_test_store_dir(mkdtemp(buf));
}

TEST(store_script_name_valid)
{
    char name[200];

    ASSERT_TRUE(pt_store_script_name_valid("Load - Data Warehouse"));
    ASSERT_TRUE(pt_store_script_name_valid("accounts"));
    ASSERT_TRUE(pt_store_script_name_valid("Rapport été / 2026 (v2)"));
    ASSERT_TRUE(pt_store_script_name_valid("x"));
    ASSERT_FALSE(pt_store_script_name_valid(""));
    ASSERT_FALSE(pt_store_script_name_valid(NULL));
    ASSERT_FALSE(pt_store_script_name_valid(" leading"));
    ASSERT_FALSE(pt_store_script_name_valid("trailing "));
    ASSERT_FALSE(pt_store_script_name_valid("tab\there"));
    ASSERT_FALSE(pt_store_script_name_valid("new\nline"));
    ASSERT_FALSE(pt_store_script_name_valid("bad \xff utf-8"));
    ASSERT_FALSE(pt_store_script_name_valid("overlong \xc0\xaf"));
    memset(name, 'n', sizeof name);
    name[128] = '\0';
    ASSERT_TRUE(pt_store_script_name_valid(name)); /* 128 bytes: the maximum */
    name[128] = 'n';
    name[129] = '\0';
    ASSERT_FALSE(pt_store_script_name_valid(name));
    /* Endpoint and connection names keep their stricter rule. */
    ASSERT_FALSE(pt_store_name_valid("Load - Data Warehouse"));
}

TEST(store_script_ids)
{
    char dir[64], err[256];
    pt_store *st = NULL;
    pt_script *s = NULL, *list = NULL;
    size_t n = 0;
    int64_t id = 0, id2 = 0;
    int v = 0;

    ASSERT_TRUE(tmp_datadir(dir, sizeof dir) != NULL);
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);
    ASSERT_EQ(pt_store_script_put(st, "Load - Data Warehouse", "print(1)\n", 9, &v), 0);
    ASSERT_EQ(pt_store_script_get(st, "Load - Data Warehouse", 0, &s), 0);
    id = s->id;
    ASSERT_GT(id, 0);
    ASSERT_STREQ(s->run_mode, "API");
    pt_script_free(s);
    s = NULL;

    /* A new version keeps the id. */
    ASSERT_EQ(pt_store_script_put(st, "Load - Data Warehouse", "print(2)\n", 9, &v), 0);
    ASSERT_EQ(v, 2);
    ASSERT_EQ(pt_store_script_get_by_id(st, id, 0, &s), 0);
    ASSERT_EQ(s->id, id);
    ASSERT_EQ(s->version, 2);
    ASSERT_STREQ(s->source, "print(2)\n");
    pt_script_free(s);
    s = NULL;
    ASSERT_EQ(pt_store_script_get_by_id(st, id, 1, &s), 0);
    ASSERT_STREQ(s->source, "print(1)\n");
    pt_script_free(s);
    s = NULL;
    ASSERT_EQ(pt_store_script_get_by_id(st, 9999, 0, &s), PT_ENOTFOUND);
    ASSERT_STREQ(pt_store_errmsg(st), "no script with id 9999");

    /* pq.add_script: a new name only, with a run mode. */
    ASSERT_EQ(pt_store_script_create(st, "Load - Data Warehouse", "x", 1, "SHELL", &id2),
              PT_EEXIST);
    ASSERT_TRUE(strstr(pt_store_errmsg(st), "already exists") != NULL);
    ASSERT_EQ(pt_store_script_create(st, "report", "x = 1\n", 6, "stream", &id2), PT_EINVAL);
    ASSERT_TRUE(strstr(pt_store_errmsg(st), "run_mode") != NULL);
    ASSERT_EQ(pt_store_script_create(st, " report", "x = 1\n", 6, "SHELL", &id2), PT_EINVAL);
    ASSERT_EQ(pt_store_script_create(st, "report", "x = 1\n", 6, "SHELL", &id2), 0);
    ASSERT_GT(id2, id);
    ASSERT_EQ(pt_store_script_set_run_mode(st, id2, "STREAMLIT"), 0);
    ASSERT_EQ(pt_store_script_set_run_mode(st, id2, "nope"), PT_EINVAL);
    ASSERT_EQ(pt_store_script_set_run_mode(st, 9999, "API"), PT_ENOTFOUND);

    ASSERT_EQ(pt_store_script_list(st, &list, &n), 0);
    ASSERT_EQ(n, 2);
    ASSERT_STREQ(list[0].name, "Load - Data Warehouse");
    ASSERT_EQ(list[0].id, id);
    ASSERT_STREQ(list[1].run_mode, "STREAMLIT");
    pt_store_scripts_free(list, n);

    /* Ids are never reused, not even for the same name after rm. */
    ASSERT_EQ(pt_store_script_rm(st, "report"), 0);
    ASSERT_EQ(pt_store_script_get_by_id(st, id2, 0, &s), PT_ENOTFOUND);
    ASSERT_EQ(pt_store_script_put(st, "report", "y = 2\n", 6, &v), 0);
    ASSERT_EQ(pt_store_script_get(st, "report", 0, &s), 0);
    ASSERT_GT(s->id, id2);
    pt_script_free(s);

    pt_store_close(st);
    pt_test_rm_tree(dir);
}

TEST(store_script_state)
{
    char dir[64], err[256], *value = NULL;
    pt_store *st = NULL;
    pt_script *s = NULL;
    size_t len = 99;
    int64_t id;
    uint64_t c0;
    int v;

    ASSERT_TRUE(tmp_datadir(dir, sizeof dir) != NULL);
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);
    ASSERT_EQ(pt_store_script_put(st, "sync", "x = 1\n", 6, &v), 0);
    ASSERT_EQ(pt_store_script_get(st, "sync", 0, &s), 0);
    id = s->id;
    pt_script_free(s);

    /* Nothing stored yet: NULL, not an error. */
    ASSERT_EQ(pt_store_state_get(st, id, &value, &len), 0);
    ASSERT_TRUE(value == NULL);
    ASSERT_EQ(len, 0);

    c0 = pt_test_store_counter(dir);
    ASSERT_EQ(pt_store_state_set(st, id, "{\"bookmark\": 42}", 16), 0);
    ASSERT_EQ(pt_test_store_counter(dir), c0); /* state does not make workers reload */
    ASSERT_EQ(pt_store_state_get(st, id, &value, &len), 0);
    ASSERT_MEMSTR(value, len, "{\"bookmark\": 42}");
    free(value);

    /* A new version keeps the state; an empty value is stored as such. */
    ASSERT_EQ(pt_store_script_put(st, "sync", "x = 2\n", 6, &v), 0);
    ASSERT_EQ(pt_store_state_get(st, id, &value, &len), 0);
    ASSERT_MEMSTR(value, len, "{\"bookmark\": 42}");
    free(value);
    ASSERT_EQ(pt_store_state_set(st, id, "", 0), 0);
    ASSERT_EQ(pt_store_state_get(st, id, &value, &len), 0);
    ASSERT_TRUE(value != NULL);
    ASSERT_EQ(len, 0);
    free(value);

    /* Unknown ids and oversized values fail clearly. */
    ASSERT_EQ(pt_store_state_get(st, 777, &value, &len), PT_ENOTFOUND);
    ASSERT_STREQ(pt_store_errmsg(st), "no script with id 777");
    ASSERT_EQ(pt_store_state_set(st, 777, "1", 1), PT_ENOTFOUND);
    ASSERT_STREQ(pt_store_errmsg(st), "no script with id 777");
    ASSERT_EQ(pt_store_state_set(st, id, "x", (size_t)PT_STORE_STATE_MAX + 1), PT_ETOOBIG);

    /* Survives reopening, and goes with the script. */
    pt_store_close(st);
    st = NULL;
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);
    ASSERT_EQ(pt_store_state_set(st, id, "7", 1), 0);
    ASSERT_EQ(pt_store_script_rm(st, "sync"), 0);
    ASSERT_EQ(pt_store_state_get(st, id, &value, &len), PT_ENOTFOUND);
    pt_store_close(st);
    pt_test_rm_tree(dir);
}

TEST(store_runs)
{
    char dir[64], err[256];
    pt_store *st = NULL;
    pt_script_run r, got, *list = NULL;
    size_t n = 0;
    int64_t total = 0, first;
    uint64_t c0;
    char *big;

    ASSERT_TRUE(tmp_datadir(dir, sizeof dir) != NULL);
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);
    c0 = pt_test_store_counter(dir);

    memset(&r, 0, sizeof r);
    r.script = "job.py";
    r.trigger = "cli";
    ASSERT_EQ(pt_store_run_start(st, &r), 0);
    ASSERT_GT(r.id, 0);
    ASSERT_GT(r.started, 0);
    first = r.id;
    ASSERT_EQ(pt_store_run_get(st, first, &got), 0);
    ASSERT_STREQ(got.status, "running");
    ASSERT_EQ(got.finished, 0);
    ASSERT_EQ(got.exit_code, -1);
    ASSERT_EQ(got.script_id, 0);
    pt_script_run_clear(&got);

    r.status = "success";
    r.exit_code = 0;
    r.output = "hello\n";
    r.output_len = 6;
    ASSERT_EQ(pt_store_run_finish(st, &r), 0);
    ASSERT_EQ(pt_store_run_get(st, first, &got), 0);
    ASSERT_STREQ(got.status, "success");
    ASSERT_MEMSTR(got.output, got.output_len, "hello\n");
    ASSERT_TRUE(got.error == NULL);
    ASSERT_GE(got.finished, got.started);
    pt_script_run_clear(&got);

    /* A second run, of a script, that fails with more output than is kept. */
    memset(&r, 0, sizeof r);
    r.script_id = 5;
    r.script = "Load - Data Warehouse";
    r.version = 3;
    r.trigger = "pq.run_script";
    ASSERT_EQ(pt_store_run_start(st, &r), 0);
    big = malloc(PT_STORE_RUN_OUTPUT_MAX + 100);
    ASSERT_TRUE(big != NULL);
    memset(big, 'o', PT_STORE_RUN_OUTPUT_MAX + 100);
    r.status = "error";
    r.exit_code = 1;
    r.output = big;
    r.output_len = PT_STORE_RUN_OUTPUT_MAX + 100;
    r.error = "Traceback ...\nValueError: boom";
    ASSERT_EQ(pt_store_run_finish(st, &r), 0);
    free(big);
    r.output = NULL;
    r.output_len = 0;
    ASSERT_EQ(pt_store_run_get(st, r.id, &got), 0);
    ASSERT_EQ(got.output_len, PT_STORE_RUN_OUTPUT_MAX);
    ASSERT_EQ(got.output_dropped, 100);
    ASSERT_STREQ(got.error, "Traceback ...\nValueError: boom");
    ASSERT_EQ(got.version, 3);
    ASSERT_EQ(got.script_id, 5);
    pt_script_run_clear(&got);

    /* Lists: newest first, filtered, paged, without output. */
    ASSERT_EQ(pt_store_run_list(st, 0, NULL, 10, 0, &list, &n, &total), 0);
    ASSERT_EQ(n, 2);
    ASSERT_EQ(total, 2);
    ASSERT_EQ(list[0].id, r.id);
    ASSERT_EQ(list[0].output_len, 0);
    ASSERT_EQ(list[1].id, first);
    pt_store_runs_free(list, n);
    ASSERT_EQ(pt_store_run_list(st, 5, NULL, 10, 0, &list, &n, &total), 0);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(total, 1);
    pt_store_runs_free(list, n);
    ASSERT_EQ(pt_store_run_list(st, 0, "job.py", 10, 0, &list, &n, NULL), 0);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(list[0].id, first);
    pt_store_runs_free(list, n);
    ASSERT_EQ(pt_store_run_list(st, 0, NULL, 1, 1, &list, &n, &total), 0);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(total, 2);
    ASSERT_EQ(list[0].id, first);
    pt_store_runs_free(list, n);

    /* Bad input. */
    ASSERT_EQ(pt_store_run_get(st, 999, &got), PT_ENOTFOUND);
    ASSERT_STREQ(pt_store_errmsg(st), "no run with id 999");
    r.id = 999;
    ASSERT_EQ(pt_store_run_finish(st, &r), PT_ENOTFOUND);
    r.status = "running";
    ASSERT_EQ(pt_store_run_finish(st, &r), PT_EINVAL);
    memset(&r, 0, sizeof r);
    r.script = "x";
    ASSERT_EQ(pt_store_run_start(st, &r), PT_EINVAL); /* no trigger */

    ASSERT_EQ(pt_test_store_counter(dir), c0); /* run records never make workers reload */
    pt_store_close(st);
    pt_test_rm_tree(dir);
}

/* The version 2 tables a store made before script ids has (store_sqlite.c of that time). */
static const char v2_sql[] =
    "CREATE TABLE scripts(name TEXT PRIMARY KEY, current INTEGER NOT NULL,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE script_versions(name TEXT NOT NULL REFERENCES scripts(name) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL, source TEXT NOT NULL, created INTEGER NOT NULL,"
    "  PRIMARY KEY(name, version));"
    "CREATE TABLE script_seq(name TEXT PRIMARY KEY, last INTEGER NOT NULL);"
    "INSERT INTO scripts VALUES ('zeta', 2, 100), ('alpha', 1, 200);"
    "INSERT INTO script_versions VALUES ('zeta', 1, 'z1', 100), ('zeta', 2, 'z2', 150),"
    "  ('alpha', 1, 'a1', 200);"
    "INSERT INTO script_seq VALUES ('zeta', 2), ('alpha', 1);"
    "PRAGMA user_version = 2;";

TEST(store_migrates_v2_to_v3)
{
    char dir[64], path[128], err[256], *value = NULL;
    sqlite3 *db = NULL;
    pt_store *st = NULL;
    pt_script *s = NULL;
    size_t len = 0;
    int64_t zeta, alpha;
    int v;
    if (pt_test_pg_dsn() != NULL)
        return; /* about SQLite's file: see test_store_pg.c */

    ASSERT_TRUE(tmp_datadir(dir, sizeof dir) != NULL);
    snprintf(path, sizeof path, "%s/portico.db", dir);
    ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, v2_sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);
    /* Existing scripts get ids in the order they were created. */
    ASSERT_EQ(pt_store_script_get(st, "zeta", 0, &s), 0);
    zeta = s->id;
    ASSERT_STREQ(s->source, "z2");
    pt_script_free(s);
    ASSERT_EQ(pt_store_script_get(st, "alpha", 0, &s), 0);
    alpha = s->id;
    pt_script_free(s);
    ASSERT_EQ(zeta, 1);
    ASSERT_EQ(alpha, 2);
    ASSERT_EQ(pt_store_state_set(st, alpha, "[1, 2]", 6), 0);
    pt_store_close(st);
    st = NULL;

    /* Opening again changes nothing (idempotent), and new scripts go on from there. */
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);
    ASSERT_EQ(pt_store_script_get(st, "zeta", 0, &s), 0);
    ASSERT_EQ(s->id, zeta);
    pt_script_free(s);
    ASSERT_EQ(pt_store_state_get(st, alpha, &value, &len), 0);
    ASSERT_MEMSTR(value, len, "[1, 2]");
    free(value);
    ASSERT_EQ(pt_store_script_put(st, "new", "n", 1, &v), 0);
    ASSERT_EQ(pt_store_script_get(st, "new", 0, &s), 0);
    ASSERT_EQ(s->id, 3);
    pt_script_free(s);
    pt_store_close(st);
    pt_test_rm_tree(dir);
}

TEST(store_script_rename)
{
    char dir[64], err[256], *value = NULL;
    pt_store *st = NULL;
    pt_script *s = NULL;
    pt_endpoint ep = {0}, got = {0};
    size_t len = 0;
    int64_t id;
    int v = 0;

    ASSERT_TRUE(tmp_datadir(dir, sizeof dir) != NULL);
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);
    ASSERT_EQ(pt_store_script_put(st, "load", "v1", 2, &v), 0);
    ASSERT_EQ(pt_store_script_put(st, "load", "v2", 2, &v), 0);
    ASSERT_EQ(pt_store_script_put(st, "other", "o1", 2, &v), 0);
    ASSERT_EQ(pt_store_script_get(st, "load", 0, &s), 0);
    id = s->id;
    pt_script_free(s);
    s = NULL;
    ASSERT_EQ(pt_store_state_set(st, id, "{\"n\": 1}", 8), 0);
    ep.name = "load";
    ep.path = "/load";
    ep.methods = 1;
    ep.script = "load";
    ep.auth = "public";
    ASSERT_EQ(pt_store_endpoint_add(st, &ep), 0);

    ASSERT_EQ(pt_store_script_rename(st, "load", "Load - Data Warehouse"), 0);
    ASSERT_EQ(pt_store_script_get(st, "load", 0, &s), PT_ENOTFOUND);
    ASSERT_EQ(pt_store_script_get(st, "Load - Data Warehouse", 0, &s), 0);
    ASSERT_EQ(s->id, id);
    ASSERT_EQ(s->version, 2);
    ASSERT_STREQ(s->source, "v2");
    pt_script_free(s);
    s = NULL;
    ASSERT_EQ(pt_store_state_get(st, id, &value, &len), 0);
    ASSERT_MEMSTR(value, len, "{\"n\": 1}");
    free(value);
    ASSERT_EQ(pt_store_endpoint_get(st, "load", &got), 0);
    ASSERT_STREQ(got.script, "Load - Data Warehouse");
    pt_endpoint_clear(&got);

    /* The versions go on under the new name; the old name never reuses them. */
    ASSERT_EQ(pt_store_script_put(st, "Load - Data Warehouse", "v3", 2, &v), 0);
    ASSERT_EQ(v, 3);
    ASSERT_EQ(pt_store_script_put(st, "load", "new", 3, &v), 0);
    ASSERT_EQ(v, 3);

    /* Refused: unknown script, a taken name, a name used before, a bad name. */
    ASSERT_EQ(pt_store_script_rename(st, "nope", "x"), PT_ENOTFOUND);
    ASSERT_EQ(pt_store_script_rename(st, "other", "load"), PT_EEXIST);
    ASSERT_EQ(pt_store_script_rm(st, "load"), 0);
    ASSERT_EQ(pt_store_script_rename(st, "other", "load"), PT_EEXIST);
    ASSERT_TRUE(strstr(pt_store_errmsg(st), "was used before") != NULL);
    ASSERT_EQ(pt_store_script_rename(st, "other", " bad"), PT_EINVAL);
    ASSERT_EQ(pt_store_script_get(st, "other", 0, &s), 0);
    pt_script_free(s);

    pt_store_close(st);
    pt_test_rm_tree(dir);
}

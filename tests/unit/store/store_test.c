/* store_test.c - helpers the store's unit tests share (store_test.h). */
#include "store/store_test.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/changes.h"
#include "store/db.h"
#include "store/store.h"

uint64_t
pt_test_store_counter(const char *dir)
{
    pt_changes *c = NULL;
    uint64_t v;

    if (pt_changes_open(dir, &c) != 0)
        return UINT64_MAX;
    v = pt_changes_read(c);
    pt_changes_close(c);
    return v;
}

const char *
pt_test_pg_dsn(void)
{
    const char *dsn = getenv("PORTICO_TEST_PG_DSN");

    return dsn != NULL && dsn[0] != '\0' ? dsn : NULL;
}

int
pt_test_pg_schema(char *out, size_t outsz)
{
    static unsigned counter;
    char name[64], sql[128], err[256];
    pt_db *db = NULL;
    int rc;

    if (pt_test_pg_dsn() == NULL)
        return -1;
    snprintf(name, sizeof name, "t_%ld_%u", (long)getpid(), ++counter);
    rc = pt_db_open_pg(pt_test_pg_dsn(), 0, 5000, &db, err, sizeof err);
    if (rc == 0) {
        snprintf(sql, sizeof sql, "CREATE SCHEMA %s", name);
        rc = pt_db_exec(db, sql);
        if (rc != 0)
            fprintf(stderr, "pt_test_pg_schema: %s\n", pt_db_errmsg(db));
    } else {
        fprintf(stderr, "pt_test_pg_schema: %s\n", err);
    }
    pt_db_close(db);
    if (rc != 0)
        return rc;
    return snprintf(out, outsz, "%s options='-csearch_path=%s'", pt_test_pg_dsn(), name) <
                   (int)outsz
               ? 0
               : -1;
}

char *
pt_test_store_dir(char *dir)
{
    char dsn[1024], err[256];

    if (dir == NULL || pt_test_pg_dsn() == NULL)
        return dir;
    if (pt_test_pg_schema(dsn, sizeof dsn) != 0 ||
        pt_store_dsn_save(dir, dsn, err, sizeof err) != 0)
        return NULL;
    return dir;
}

/* cli_store.c - `portico store migrate --to DSN`: moves an install's embedded SQLite metadata
 * store into an empty PostgreSQL one (store/store_migrate.h), so more nodes can join it. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "auth/keys.h"
#include "cli/cli.h"
#include "core/err.h"
#include "store/store.h"
#include "store/store_migrate.h"

static const char store_usage[] = "store migrate --to POSTGRESQL_DSN";

typedef struct progress {
    size_t tables;
    int64_t rows;
} progress;

/* One line per table, as it is copied (pt_store_copy_progress). */
static void
on_table(void *ctx, const char *table, int64_t rows)
{
    progress *p = ctx;

    p->tables++;
    p->rows += rows;
    printf("  %-18s %lld row%s\n", table, (long long)rows, rows == 1 ? "" : "s");
    fflush(stdout);
}

/* The order (each step refuses before the next changes anything):
 *   1. the DSN works, the data dir has an SQLite store, no server runs on it (the store lock,
 *      held exclusively to the end, so none starts either);
 *   2. one PostgreSQL transaction: the schema, every table, the install's JWT and API-key keys
 *      sealed under the master key (as `init --store` does), the row counts compared; COMMIT;
 *   3. DATA/store.dsn written, portico.db renamed to portico.db.migrated.
 * A failure in 1 or 2 leaves the data dir exactly as it was. */
static int
store_migrate(const char *datadir, int argc, char **argv)
{
    const char *to = NULL;
    pt_cli_opt opts[] = {{"--to", 1, &to}, {NULL, 0, NULL}};
    char *pos[1], *cur = NULL, err[1024], shown[1024];
    pt_store *src = NULL, *dst = NULL;
    progress p = {0};
    int npos = 0, lock = -1, rc;

    err[0] = '\0';
    rc = pt_cli_parse(argc, argv, opts, pos, 0, 0, &npos, store_usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (to == NULL)
        return pt_cli_usage(store_usage);
    if (pt_cli_need_datadir(datadir) != 0)
        return PT_CLI_ERROR;
    if (pt_store_dsn_load(datadir, &cur, err, sizeof err) != 0)
        return pt_cli_error("%s", err);
    if (cur != NULL) {
        free(cur);
        return pt_cli_error("data dir %s keeps its metadata store in PostgreSQL already (see "
                            "%s/" PT_STORE_DSN_FILE "): nothing to migrate",
                            datadir, datadir);
    }
    if (pt_cli_check_pg_dsn(to, "--to", "the metadata store", shown, sizeof shown) != 0)
        return PT_CLI_ERROR;
    lock = pt_store_lock(datadir, 1, err, sizeof err);
    if (lock == PT_EUNAVAIL)
        return pt_cli_error("a server is running on data dir %s: stop it first (nothing was "
                            "changed)",
                            datadir);
    if (lock < 0)
        return pt_cli_error("%s", err);
    rc = pt_cli_open_store(datadir, &src);
    if (rc != 0)
        goto done;
    printf("copying the metadata store of %s to postgres, %s\n", datadir, shown);
    fflush(stdout);
    if (pt_store_migrate_to_pg(src, to, on_table, &p, &dst, err, sizeof err) != 0) {
        rc = pt_cli_error("cannot migrate: %s (nothing was changed: the install still uses "
                          "%s/portico.db)",
                          err, datadir);
        goto done;
    }
    /* Inside the same transaction: a store without the keys could not be joined. */
    rc = pt_keys_store_sync(datadir, dst, 0, err, sizeof err);
    if (rc == 0)
        printf("  %-18s sealed under the master key\n", "install keys");
    rc = pt_store_tx_finish(dst, rc);
    if (rc != 0) {
        rc = pt_cli_error("cannot migrate: %s (nothing was changed: the install still uses "
                          "%s/portico.db)",
                          err[0] != '\0' ? err : pt_store_errmsg(dst), datadir);
        goto done;
    }
    rc = pt_store_migrate_switch(src, to, err, sizeof err);
    src = NULL;
    if (rc != 0) {
        rc = pt_cli_error("the rows are in PostgreSQL, but %s; the install still uses "
                          "%s/portico.db (empty that PostgreSQL schema before trying again)",
                          err, datadir);
        goto done;
    }
    printf("metadata store: postgres, %s (%zu tables, %lld rows, one transaction)\n", shown,
           p.tables, (long long)p.rows);
    printf("the SQLite store is kept as %s/" PT_STORE_MIGRATED_FILE
           " (to go back: stop the server, remove %s/" PT_STORE_DSN_FILE
           " and rename it to portico.db; changes made after now are not in it)\n",
           datadir, datadir);
    printf("the warehouse and the webhook inbox stay in %s/warehouse\n", datadir);
done:
    pt_store_close(dst);
    pt_store_close(src);
    if (lock >= 0)
        close(lock);
    return rc;
}

/* On the data dir only: it moves the files the server uses. */
static const pt_cli_sub store_subs[] = {{"migrate", NULL, store_migrate, 0}, {NULL, NULL, NULL, 0}};

int
pt_cli_store(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("store", store_usage, store_subs, datadir, argc, argv);
}

/* cli_init.c - `portico init`: creates the data dir, its layout, the install's keys and the
 * metadata store (embedded, or a shared PostgreSQL one it creates or joins), and optionally
 * makes the default warehouse a PostgreSQL database. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/keys.h"
#include "cli/cli.h"
#include "core/err.h"
#include "store/changes.h"
#include "store/store.h"
#include "warehouse/wh.h"

static int
remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes a data dir this run of init created and could not finish, so that a failed init
 * leaves nothing behind (a second try then starts from scratch). Never called for a data dir
 * that existed before. */
static void
remove_new_datadir(const char *datadir)
{
    nftw(datadir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Records dsn as the default warehouse (checked beforehand) and keeps the embedded SQLite
 * warehouse reachable as PT_WH_EMBEDDED, where the webhook inbox stays. Returns 0 or
 * PT_CLI_ERROR (message printed). On a data dir that existed, the default warehouse may only
 * be what it already is. */
static int
set_warehouse(const char *datadir, const char *dsn, int existed)
{
    pt_connection cur = {0},
                  emb = {.name = PT_WH_EMBEDDED, .kind = "sqlite", .dsn = "warehouse/dw"};
    pt_store *st = NULL;
    char err[512];
    int rc = PT_CLI_ERROR;

    if (pt_store_open(datadir, &st, err, sizeof err) != 0)
        return pt_cli_error("%s", err);
    if (existed && pt_store_connection_get(st, PT_WH_DEFAULT, &cur) == 0 &&
        strcmp(cur.kind, "postgres") != 0) {
        pt_cli_error("data dir %s already has the embedded SQLite warehouse as 'dw'; "
                     "--warehouse only applies to a new data dir",
                     datadir);
        goto done;
    }
    if (pt_store_warehouse_set(st, dsn) != 0) {
        pt_cli_error("%s", pt_store_errmsg(st));
        goto done;
    }
    pt_connection_clear(&cur);
    if (pt_store_connection_get(st, PT_WH_EMBEDDED, &cur) == PT_ENOTFOUND &&
        pt_store_connection_add(st, &emb) != 0) {
        pt_cli_error("%s", pt_store_errmsg(st));
        goto done;
    }
    rc = 0;
done:
    pt_connection_clear(&cur);
    pt_store_close(st);
    return rc;
}

/* Layout of a data dir (0700 throughout: it holds keys and data):
 *   portico.db          the metadata store (src/store/, made here by pt_store_create), or
 *   store.dsn           with --store, the PostgreSQL database that holds it (0600)
 *   run/changes         the change counter (changes.c)
 *   run/store.lock      held by a running server, and by `store migrate` (store_migrate.h)
 *   warehouse/dw/       the built-in warehouse, one <schema>.db per schema (wh_sqlite.c); with
 *                       --warehouse, only the webhook inbox's schema lives here (connection
 *                       "embedded") and "dw" is the PostgreSQL database
 *   keys/               jwt.key, apikey.key, master.key: 256-bit keys, 0600 (auth/keys.h);
 *                       master.key only when $PORTICO_MASTER_KEY is not set
 * init creates only what is missing: a key, once made, is never replaced (tokens, API keys
 * and secrets depend on it). --warehouse DSN (or $PORTICO_WAREHOUSE) is checked against the
 * server before anything is created; a data dir that init created and could not finish is
 * removed again.
 *
 * --store DSN (or $PORTICO_STORE) puts the metadata store in PostgreSQL. The first node's init
 * creates it and seals the JWT and API-key keys into it under the master key; init on another
 * data dir with the same DSN and the same master key joins: the keys come from the store
 * (pt_keys_store_sync), so every node accepts the tokens and API keys of every other. */
int
pt_cli_init(const char *datadir, int argc, char **argv)
{
    static const char *subdirs[] = {"run", "warehouse", "warehouse/dw"};
    const char *usage = "init [--warehouse POSTGRESQL_DSN] [--store POSTGRESQL_DSN]";
    const char *warehouse = NULL, *store = NULL;
    pt_cli_opt opts[] = {{"--warehouse", 1, &warehouse}, {"--store", 1, &store}, {NULL, 0, NULL}};
    char path[4096], err[512], shown[1024] = "", shown_store[1024] = "", *cur_dsn = NULL;
    struct stat sb;
    pt_store *st = NULL;
    pt_changes *ch = NULL;
    char *pos[1];
    int npos = 0, existed, dir_existed, rc, nkeys = 0, joined = 0;
    size_t i;

    rc = pt_cli_parse(argc, argv, opts, pos, 0, 0, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (warehouse == NULL && getenv("PORTICO_WAREHOUSE") != NULL &&
        getenv("PORTICO_WAREHOUSE")[0] != '\0')
        warehouse = getenv("PORTICO_WAREHOUSE");
    if (warehouse != NULL) {
        /* Checked first: a DSN that does not work creates nothing. */
        if (pt_cli_check_pg_dsn(warehouse, "--warehouse", "the warehouse", shown, sizeof shown) !=
            0)
            return PT_CLI_ERROR;
    }

    if (store == NULL && getenv("PORTICO_STORE") != NULL && getenv("PORTICO_STORE")[0] != '\0')
        store = getenv("PORTICO_STORE");
    if (store != NULL) {
        if (pt_cli_check_pg_dsn(store, "--store", "the metadata store", shown_store,
                                sizeof shown_store) != 0)
            return PT_CLI_ERROR;
    }

    dir_existed = stat(datadir, &sb) == 0;
    snprintf(path, sizeof path, "%s/portico.db", datadir);
    existed = stat(path, &sb) == 0;
    if (existed && store != NULL)
        return pt_cli_error("data dir %s has an embedded SQLite store; --store applies to a new "
                            "data dir (to move this install to PostgreSQL: portico store "
                            "migrate --to DSN)",
                            datadir);
    if (dir_existed && pt_store_dsn_load(datadir, &cur_dsn, err, sizeof err) != 0)
        return pt_cli_error("%s", err);
    if (cur_dsn != NULL) {
        existed = 1;
        rc = store != NULL && strcmp(store, cur_dsn) != 0;
        free(cur_dsn);
        if (rc)
            return pt_cli_error("data dir %s already uses another PostgreSQL store (see "
                                "%s/" PT_STORE_DSN_FILE ")",
                                datadir, datadir);
    }
    if (pt_cli_mkdir_p(datadir, 0700) != 0)
        return pt_cli_error("cannot create %s: %s", datadir, strerror(errno));
    for (i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", datadir, subdirs[i]);
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            rc = pt_cli_error("cannot create %s: %s", path, strerror(errno));
            goto fail;
        }
    }
    if (store != NULL && !existed && pt_store_dsn_save(datadir, store, err, sizeof err) != 0) {
        rc = pt_cli_error("%s", err);
        goto fail;
    }
    /* The one place a store is made (issue 14): every other command refuses a missing one. */
    if (pt_store_create(datadir, &st, err, sizeof err) != 0) {
        rc = pt_cli_error("%s", err);
        goto fail;
    }
    if (strcmp(pt_store_engine(st), "postgres") == 0) {
        unsigned char *master = NULL;
        joined = pt_keys_store_installed(st);
        if (joined < 0) {
            rc = pt_cli_error("%s", pt_store_errmsg(st));
            goto fail;
        }
        /* Joining needs the install's master key: never make a new one here. */
        if (joined && pt_keys_load(datadir, PT_KEY_MASTER, &master, err, sizeof err) != 0) {
            rc = pt_cli_error("this PostgreSQL store already holds an install: give this node "
                              "its master key (PORTICO_MASTER_KEY, or a copy of its "
                              "keys/master.key in %s/keys/)",
                              datadir);
            goto fail;
        }
        pt_keys_free(master);
    } else {
        pt_store_close(st);
        st = NULL;
    }
    if (warehouse != NULL && (rc = set_warehouse(datadir, warehouse, existed)) != 0)
        goto fail;
    rc = pt_changes_open(datadir, &ch);
    if (rc != 0) {
        rc = pt_cli_error("cannot create %s/run/changes: %s", datadir, pt_strerror(rc));
        goto fail;
    }
    pt_changes_close(ch);
    if (pt_keys_init(datadir, &nkeys, err, sizeof err) != 0) {
        rc = pt_cli_error("%s", err);
        goto fail;
    }
    /* Keys this run made (a new data dir) give way to the install's. */
    if (st != NULL && pt_keys_store_sync(datadir, st, !existed, err, sizeof err) != 0) {
        rc = pt_cli_error("%s", err);
        goto fail;
    }
    pt_store_close(st);
    st = NULL;

    if (existed && nkeys > 0)
        printf("data dir %s is ready (it was already initialised; %d missing key%s created)\n",
               datadir, nkeys, nkeys == 1 ? "" : "s");
    else if (existed)
        printf("data dir %s is ready (it was already initialised)\n", datadir);
    else
        printf("initialised data dir %s\n", datadir);
    if (store != NULL)
        printf("metadata store: postgres, %s (%s)\n", shown_store,
               joined ? "joined the existing install" : "a new install");
    if (warehouse != NULL)
        printf("default warehouse dw: postgres, %s (the webhook inbox stays in the embedded "
               "warehouse, connection '%s')\n",
               shown, PT_WH_EMBEDDED);
    return 0;
fail:
    pt_store_close(st);
    if (!dir_existed)
        remove_new_datadir(datadir);
    return rc;
}

/* store_connections.c - warehouse connections in the metadata store (table connections). The
 * default warehouse "dw" has no row unless `portico init --warehouse` made it PostgreSQL.
 * Relative sqlite DSNs are relative to the data dir (so a data dir can be moved); get and list
 * return them joined with the data dir. */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "store/store_int.h"

/* The built-in warehouse connection, which has no row in `connections`. */
#define DW_NAME "dw"
#define DW_KIND "sqlite"
#define DW_DSN "warehouse/dw"

void
pt_connection_clear(pt_connection *c)
{
    if (c == NULL)
        return;
    free(c->name);
    free(c->kind);
    free(c->dsn);
    memset(c, 0, sizeof *c);
}

static void
connection_clear(void *elem)
{
    pt_connection_clear(elem);
}

/* Fills c; a relative sqlite dsn is joined with the data dir. Returns 0 or PT_ENOMEM. */
static int
connection_fill(pt_store *st, pt_connection *c, const char *name, const char *kind, const char *dsn)
{
    memset(c, 0, sizeof *c);
    c->name = strdup(name);
    c->kind = strdup(kind);
    if (strcmp(kind, "sqlite") == 0 && dsn[0] != '/') {
        size_t n = strlen(st->datadir) + strlen(dsn) + 2;
        c->dsn = malloc(n);
        if (c->dsn != NULL)
            snprintf(c->dsn, n, "%s/%s", st->datadir, dsn);
    } else {
        c->dsn = strdup(dsn);
    }
    if (c->name == NULL || c->kind == NULL || c->dsn == NULL) {
        pt_connection_clear(c);
        pt_store_seterr(st, "out of memory");
        return PT_ENOMEM;
    }
    return 0;
}

/* Fills elem (a pt_connection) from a row (name, kind, dsn) with connection_fill. */
static int
connection_read(pt_store *st, pt_db_stmt *stmt, void *elem)
{
    return connection_fill(st, elem, (const char *)pt_db_column_text(stmt, 0, NULL),
                           (const char *)pt_db_column_text(stmt, 1, NULL),
                           (const char *)pt_db_column_text(stmt, 2, NULL));
}

static const pt_store_kind connection_kind = {.size = sizeof(pt_connection),
                                              .read = connection_read,
                                              .clear = connection_clear,
                                              .what = "list connections"};

void
pt_store_connections_free(pt_connection *list, size_t n)
{
    pt_store_free_rows(list, n, &connection_kind);
}

int
pt_store_connection_add(pt_store *st, const pt_connection *c)
{
    pt_db_stmt *stmt = NULL;
    int64_t one = 0;
    int rc;

    rc = pt_store_check_name(st, "connection", c->name);
    if (rc != 0)
        return rc;
    if (strcmp(c->name, DW_NAME) == 0) {
        pt_store_seterr(st, "connection 'dw' already exists (it is built in)");
        return PT_EEXIST;
    }
    if (c->kind == NULL || (strcmp(c->kind, "sqlite") != 0 && strcmp(c->kind, "postgres") != 0)) {
        pt_store_seterr(st, "invalid connection kind '%s' (sqlite or postgres)",
                        c->kind != NULL ? c->kind : "");
        return PT_EINVAL;
    }
    if (c->dsn == NULL || c->dsn[0] == '\0') {
        pt_store_seterr(st, "connection '%s' needs a %s", c->name,
                        strcmp(c->kind, "sqlite") == 0 ? "directory" : "DSN");
        return PT_EINVAL;
    }
    rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    rc = pt_store_query_int(st, "SELECT 1 FROM connections WHERE name = ?1", c->name, 0, &one);
    if (rc == 1) {
        pt_store_seterr(st, "connection '%s' already exists", c->name);
        rc = PT_EEXIST;
    }
    if (rc != 0)
        goto done;
    rc =
        pt_store_prepare(st, "INSERT INTO connections(name, kind, dsn) VALUES (?1, ?2, ?3)", &stmt);
    if (rc != 0)
        goto done;
    pt_db_bind_text(stmt, 1, c->name, (size_t)-1);
    pt_db_bind_text(stmt, 2, c->kind, (size_t)-1);
    pt_db_bind_text(stmt, 3, c->dsn, (size_t)-1);
    rc = pt_store_run_stmt(st, stmt, "add connection");
done:
    return pt_store_finish(st, rc);
}

int
pt_store_warehouse_set(pt_store *st, const char *dsn)
{
    pt_db_stmt *stmt = NULL;
    pt_connection old = {0};
    int rc;

    if (dsn == NULL || dsn[0] == '\0') {
        pt_store_seterr(st, "the default warehouse needs a PostgreSQL DSN");
        return PT_EINVAL;
    }
    rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    rc = pt_store_get_row(st, "SELECT name, kind, dsn FROM connections WHERE name = ?1", DW_NAME,
                          &connection_kind, &old, "get connection");
    if (rc == 0) {
        /* Same DSN: init run again with the same option. Anything else would strand the data
         * of the warehouse scripts have been writing to. */
        if (strcmp(old.kind, "postgres") != 0 || strcmp(old.dsn, dsn) != 0) {
            pt_store_seterr(st, "the default warehouse 'dw' is already set to another PostgreSQL "
                                "database; it cannot be changed");
            rc = PT_EEXIST;
        }
        goto done;
    }
    if (rc != PT_ENOTFOUND)
        goto done;
    rc = pt_store_prepare(
        st, "INSERT INTO connections(name, kind, dsn) VALUES (?1, 'postgres', ?2)", &stmt);
    if (rc != 0)
        goto done;
    pt_db_bind_text(stmt, 1, DW_NAME, (size_t)-1);
    pt_db_bind_text(stmt, 2, dsn, (size_t)-1);
    rc = pt_store_run_stmt(st, stmt, "set the default warehouse");
done:
    pt_connection_clear(&old);
    return pt_store_finish(st, rc);
}

int
pt_store_connection_get(pt_store *st, const char *name, pt_connection *out)
{
    int rc;

    rc = pt_store_get_row(st, "SELECT name, kind, dsn FROM connections WHERE name = ?1", name,
                          &connection_kind, out, "get connection");
    if (rc == PT_ENOTFOUND && strcmp(name, DW_NAME) == 0)
        return connection_fill(st, out, DW_NAME, DW_KIND, DW_DSN);
    if (rc == PT_ENOTFOUND)
        pt_store_seterr(st, "no connection named '%s'", name);
    return rc;
}

int
pt_store_connection_rm(pt_store *st, const char *name)
{
    if (strcmp(name, DW_NAME) == 0) {
        pt_store_seterr(st, "connection 'dw' is built in and cannot be removed");
        return PT_EINVAL;
    }
    return pt_store_mutate_one(st, "DELETE FROM connections WHERE name = ?1", name, 0,
                               "remove connection", "no connection named '%s'", name);
}

int
pt_store_connection_list(pt_store *st, pt_connection **out, size_t *n)
{
    void *list = NULL;
    int rc;

    /* The default warehouse comes first (its stored row when init made it PostgreSQL, else the
     * built-in one), then the stored ones by name. */
    rc = pt_store_list(st,
                       "SELECT name, kind, dsn FROM ("
                       "SELECT 0 AS builtin, '" DW_NAME "' AS name, '" DW_KIND "' AS kind, '" DW_DSN
                       "' AS dsn WHERE NOT EXISTS (SELECT 1 FROM connections WHERE name = '" DW_NAME
                       "') UNION ALL SELECT CASE WHEN name = '" DW_NAME
                       "' THEN 0 ELSE 1 END, name, kind, dsn "
                       "FROM connections) AS c "
                       "ORDER BY builtin, name",
                       NULL, 0, &connection_kind, &list, n);
    *out = list;
    return rc;
}
